//! Which rows the table has, numbered in output order before anything is added up.
//!
//! A row is a scope and a reported period with any fact: activity, outlet activity,
//! assigned outlets, a roster (for an agent: being on one, in its weeks and months), a
//! plan day, or (months) a target. Numbering them first lets every tally add a fact
//! straight into its rows.

use aqs_schemas::event::Scope;

use super::facts::LedgerFacts;
use super::ids::{NONE, ScopeKeys};
use super::window::{DayWindow, KINDS_IN_OUTPUT_ORDER, MONTH, Periods, WEEK};
use crate::data::{LedgerData, Target};
use crate::spans::DistinctCounts;

/// A slot with facts, before rows are numbered.
const MARKED: u32 = NONE - 1;

/// The rows of the table, one per scope and reported period with any fact.
pub(crate) struct TableRows {
    /// Per kind of period: the row of each (scope key, period) slot, `NONE` for none.
    slots: [Vec<u32>; 3],
    periods: [usize; 3],
    /// Per row: its scope key, kind of period (index into `[Periods; 3]`) and period.
    pub(crate) scope: Vec<u32>,
    pub(crate) kind: Vec<u8>,
    pub(crate) period: Vec<u32>,
}

impl TableRows {
    fn new(periods: &[Periods; 3], scopes: usize) -> Self {
        let counts = [0, 1, 2].map(|k| periods[k].len());
        Self {
            slots: counts.map(|p| vec![NONE; p * scopes]),
            periods: counts,
            scope: Vec::new(),
            kind: Vec::new(),
            period: Vec::new(),
        }
    }

    /// The rows of every scope and reported period with a fact, in output order: by scope
    /// name, scope id, period name and period start. `assigned_outlets` and `roster_agents`
    /// are the distinct counts per kind of period, scope key and period.
    pub(crate) fn find(
        data: &LedgerData,
        facts: &LedgerFacts<'_>,
        keys: &ScopeKeys,
        periods: &[Periods; 3],
        assigned_outlets: &[DistinctCounts; 3],
        roster_agents: &[DistinctCounts; 3],
    ) -> Self {
        let mut rows = Self::new(periods, keys.len());
        for fact in &facts.agent_days {
            rows.mark_day(periods, &keys.of_tagged(fact.agent, fact.tags), fact.day);
        }
        for fact in &facts.outlet_days {
            let team = facts.activity_team(fact.agent, fact.day);
            rows.mark_day(
                periods,
                &keys.of_agent(fact.agent, team, fact.day),
                fact.day,
            );
        }
        for (k, of_kind) in periods.iter().enumerate() {
            for scope in 0..keys.len() as u32 {
                for period in 0..of_kind.len() as u32 {
                    if assigned_outlets[k].get(scope, period) > 0
                        || roster_agents[k].get(scope, period) > 0
                    {
                        rows.mark(k, scope, period);
                    }
                }
            }
        }
        // Every agent on a roster in a week or month has its row for it, with zero counts
        // when nothing happened: the agent who does nothing is the one the supervisor must see.
        for stint in &facts.roster {
            for k in [WEEK, MONTH] {
                let index = &periods[k].index;
                for period in index.of(stint.first)..=index.of(stint.last) {
                    rows.mark(k, keys.of(Scope::Agent, stint.agent), period);
                }
            }
        }
        for (plan, &agent) in data.plans.iter().zip(&facts.plan_agents) {
            if let Some((first, last)) = facts.window.days_between(plan.start, plan.end) {
                for day in first..=last {
                    let team = facts.roster_team(agent, day);
                    rows.mark_day(periods, &keys.of_agent(agent, team, day), day);
                }
            }
        }
        for (target, &(scope, number)) in data.targets.iter().zip(&facts.target_scopes) {
            if let Some(period) = target_month(&facts.window, &periods[MONTH], target) {
                rows.mark(MONTH, keys.of(scope, number), period);
            }
        }
        let mut scope_order = Vec::with_capacity(keys.len());
        for (scope, numbers) in [
            (Scope::Agent, &facts.agents),
            (Scope::Branch, &facts.branches),
            (Scope::Region, &facts.regions),
            (Scope::Team, &facts.teams),
        ] {
            let in_order = numbers.in_id_order().into_iter();
            scope_order.extend(in_order.map(|number| keys.of(scope, number)));
        }
        rows.number(periods, &scope_order);
        rows
    }

    fn slot(&self, kind: usize, scope: u32, period: u32) -> usize {
        scope as usize * self.periods[kind] + period as usize
    }

    fn mark(&mut self, kind: usize, scope: u32, period: u32) {
        let slot = self.slot(kind, scope, period);
        self.slots[kind][slot] = MARKED;
    }

    /// Marks the periods of a day, of every kind, for the scopes given.
    fn mark_day(&mut self, periods: &[Periods; 3], scopes: &[u32], day: u32) {
        for (k, of_kind) in periods.iter().enumerate() {
            let period = of_kind.index.of(day);
            for &scope in scopes.iter().filter(|s| **s != NONE) {
                self.mark(k, scope, period);
            }
        }
    }

    /// Numbers the marked slots of reported periods in output order.
    fn number(&mut self, periods: &[Periods; 3], scope_order: &[u32]) {
        for &scope in scope_order {
            for k in KINDS_IN_OUTPUT_ORDER {
                for period in periods[k].first_reported..self.periods[k] as u32 {
                    let slot = self.slot(k, scope, period);
                    if self.slots[k][slot] == MARKED {
                        self.slots[k][slot] = self.scope.len() as u32;
                        self.scope.push(scope);
                        self.kind.push(k as u8);
                        self.period.push(period);
                    }
                }
            }
        }
        // Marks in periods before `since` are not rows.
        for slots in &mut self.slots {
            for slot in slots.iter_mut().filter(|s| **s == MARKED) {
                *slot = NONE;
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.scope.len()
    }

    /// The row of a scope's period, `NONE` where the table has none.
    pub(crate) fn of(&self, kind: usize, scope: u32, period: u32) -> u32 {
        self.slots[kind][self.slot(kind, scope, period)]
    }

    /// The rows of a day's periods (day, week, month) for one scope, `NONE` where the table
    /// has none.
    pub(crate) fn of_day(&self, periods: &[Periods; 3], scope: u32, day: u32) -> [u32; 3] {
        if scope == NONE {
            return [NONE; 3];
        }
        [0, 1, 2].map(|k| self.of(k, scope, periods[k].index.of(day)))
    }

    /// The row's kind of period, as an index into `[Periods; 3]`.
    pub(crate) fn kind_of(&self, row: usize) -> usize {
        usize::from(self.kind[row])
    }
}

/// The month of a target, if the window has it.
pub(crate) fn target_month(window: &DayWindow, months: &Periods, target: &Target) -> Option<u32> {
    let start = target.month.first_day();
    if start > window.last || target.month.last_day() < window.first {
        return None;
    }
    Some(months.index.of(window.day(start.max(window.first))?))
}
