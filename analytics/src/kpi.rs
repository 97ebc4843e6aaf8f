//! The KPI job: every KPI of the domain for scopes agent, team, branch and region and
//! periods day, ISO week and month, as of a business date.
//!
//! Ids become dense integers and dates day numbers in the window read. The rows of the
//! table (a scope and a period with any fact) are known before anything is added up, so
//! they are numbered in output order and every fact is added straight into its rows: an
//! agent's day counts for the agent and for the team, branch and region it belonged to
//! that day, in each of its day, week and month. Distinct outlets assigned and agents on a
//! roster come from runs of days ([`crate::spans`]), not from one row per day and scope;
//! other distinct counts take the facts outlet by outlet (agent by agent). The result is a
//! polars table.

use aqs_schemas::WorkingCalendar;
use aqs_schemas::event::Scope;
use chrono::{Duration, NaiveDate};
use polars::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::data::{Interval, LedgerData, Target};
use crate::periods::{PeriodKind, day_number, time_progress};
use crate::spans::{DistinctCounts, PeriodIndex, Span, SpanIndex, distinct_per_period};

/// What the job computes and the thresholds of its derived views.
#[derive(Debug, Clone)]
pub struct KpiParams {
    /// KPIs count days through this business date.
    pub as_of: NaiveDate,
    /// Earliest date whose periods are computed (periods touching `since..=as_of`).
    pub since: NaiveDate,
    pub calendar: WorkingCalendar,
    /// A month still open is at risk when projected attainment is below this.
    pub at_risk_threshold: f64,
    /// Plan adherence at or above this counts as willing.
    pub will_threshold: f64,
    /// Close rate at or above this share of the team median counts as skilled.
    pub skill_ratio: f64,
}

impl KpiParams {
    pub fn new(as_of: NaiveDate) -> Self {
        Self {
            as_of,
            since: PeriodKind::Month.start_of(as_of),
            calendar: WorkingCalendar::default(),
            at_risk_threshold: 0.9,
            will_threshold: 0.8,
            skill_ratio: 1.0,
        }
    }

    /// First day read from the ledgers: the start of every period touching `since`.
    pub fn window_start(&self) -> NaiveDate {
        PeriodKind::Week
            .start_of(self.since)
            .min(PeriodKind::Month.start_of(self.since))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KpiError {
    #[error("KPI computation: {0}")]
    Polars(#[from] PolarsError),
    #[error("as-of date {as_of} is before the first date {since}")]
    Window { as_of: NaiveDate, since: NaiveDate },
    #[error("the sum of {column} of one row exceeds the KPI table's Int64")]
    Overflow { column: &'static str },
}

pub const SCOPES: [Scope; 4] = [Scope::Agent, Scope::Team, Scope::Branch, Scope::Region];

pub fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Agent => "agent",
        Scope::Team => "team",
        Scope::Branch => "branch",
        Scope::Region => "region",
    }
}

/// Interns ids of one kind as dense integers, in order of first sight.
#[derive(Default)]
struct Ids<'a> {
    index: PlHashMap<&'a str, u32>,
    names: Vec<&'a str>,
    // Ledger rows come grouped by agent, so the id just looked up is often the next one.
    last: Option<(&'a str, u32)>,
}

impl<'a> Ids<'a> {
    fn get(&mut self, id: &'a str) -> u32 {
        if let Some((last, key)) = self.last
            && last == id
        {
            return key;
        }
        let next = self.names.len() as u32;
        let key = *self.index.entry(id).or_insert(next);
        if key == next {
            self.names.push(id);
        }
        self.last = Some((id, key));
        key
    }

    fn optional(&mut self, id: Option<&'a str>) -> u32 {
        id.map_or(NONE, |id| self.get(id))
    }

    fn len(&self) -> usize {
        self.names.len()
    }

    /// Keys in the order of their ids (byte order, as the output is sorted).
    fn sorted(&self) -> Vec<u32> {
        let mut keys: Vec<u32> = (0..self.names.len() as u32).collect();
        keys.sort_unstable_by_key(|k| self.names[*k as usize]);
        keys
    }
}

/// No key: a missing team, branch, region or row.
const NONE: u32 = u32::MAX;

/// The business dates read, as day numbers from 0 (the window's first day).
struct Window {
    first: NaiveDate,
    last: NaiveDate,
    days: usize,
}

impl Window {
    fn new(first: NaiveDate, last: NaiveDate) -> Self {
        Self {
            first,
            last,
            days: (last - first).num_days() as usize + 1,
        }
    }

    fn day(&self, date: NaiveDate) -> Option<u32> {
        (self.first <= date && date <= self.last).then(|| (date - self.first).num_days() as u32)
    }

    fn date(&self, day: u32) -> NaiveDate {
        self.first + Duration::days(i64::from(day))
    }

    /// The window's days from `first` through `last`, if any.
    fn days_between(&self, first: NaiveDate, last: NaiveDate) -> Option<(u32, u32)> {
        let (first, last) = (first.max(self.first), last.min(self.last));
        (first <= last).then(|| {
            (
                (first - self.first).num_days() as u32,
                (last - self.first).num_days() as u32,
            )
        })
    }

    /// The window's days of an interval (from `from` through the day before `to`).
    fn interval(&self, interval: &Interval) -> Option<(u32, u32)> {
        let last = interval.to.map_or(self.last, |to| to - Duration::days(1));
        self.days_between(interval.from, last)
    }
}

/// The periods of one kind that the window touches.
struct Grain {
    kind: PeriodKind,
    index: PeriodIndex,
    starts: Vec<NaiveDate>,
    /// The last day of each period inside the window.
    last_days: Vec<u32>,
    /// Earlier periods start before `since`: read for nothing but their days.
    first_reported: u32,
}

impl Grain {
    fn new(kind: PeriodKind, window: &Window, since: NaiveDate) -> Self {
        let mut starts: Vec<NaiveDate> = Vec::new();
        let mut of_day = Vec::with_capacity(window.days);
        for day in 0..window.days as u32 {
            let start = kind.start_of(window.date(day));
            if starts.last() != Some(&start) {
                starts.push(start);
            }
            of_day.push(starts.len() as u32 - 1);
        }
        let mut last_days = vec![0; starts.len()];
        for (day, period) in of_day.iter().enumerate() {
            last_days[*period as usize] = day as u32;
        }
        let since = kind.start_of(since);
        let first_reported = starts.iter().take_while(|s| **s < since).count() as u32;
        Self {
            kind,
            index: PeriodIndex::new(of_day),
            starts,
            last_days,
            first_reported,
        }
    }

    fn periods(&self) -> usize {
        self.index.len()
    }
}

/// Output order of the periods: by name (day, month, week), as the table is sorted.
const GRAIN_ORDER: [usize; 3] = [0, 2, 1];

#[derive(Debug, Clone, Copy)]
struct AgentDayFact {
    agent: u32,
    day: u32,
    /// Team, branch and region as the ledger tagged the day.
    tags: [u32; 3],
    /// The row in `LedgerData::agent_days`.
    row: u32,
}

#[derive(Debug, Clone, Copy)]
struct OutletDayFact {
    outlet: u32,
    agent: u32,
    day: u32,
    visited: bool,
    sold: bool,
}

/// The ledger rows with integer ids and day numbers, and who belonged where each day.
struct Facts<'a> {
    window: Window,
    agents: Ids<'a>,
    teams: Ids<'a>,
    branches: Ids<'a>,
    regions: Ids<'a>,
    outlets: Ids<'a>,
    /// Per team: branch and region keys from the teams table (`NONE`: unknown or empty).
    team_parents: Vec<[u32; 2]>,
    /// Per team: branch and region ids as the teams table spells them.
    team_row: Vec<Option<(&'a str, &'a str)>>,
    agent_days: Vec<AgentDayFact>,
    outlet_days: Vec<OutletDayFact>,
    /// (agent, outlet, first day, last day) of the assignments in the window.
    assignments: Vec<(u32, u32, u32, u32)>,
    /// (agent, team, first day, last day) of the roster intervals in the window.
    roster: Vec<(u32, u32, u32, u32)>,
    plan_agents: Vec<u32>,
    target_keys: Vec<(Scope, u32)>,
    /// Per agent and day: the team of the first roster interval holding the day.
    roster_team: Vec<u32>,
    /// Per agent and day: its fact in `agent_days`, if the window has one.
    agent_day: Vec<u32>,
}

impl<'a> Facts<'a> {
    fn read(data: &'a LedgerData, window: Window) -> Self {
        let mut agents = Ids::default();
        let mut teams = Ids::default();
        let mut branches = Ids::default();
        let mut regions = Ids::default();
        let mut outlets = Ids::default();

        let mut team_row = Vec::new();
        let mut team_parents = Vec::new();
        for team in &data.teams {
            let key = teams.get(&team.team_id) as usize;
            if team_row.len() <= key {
                team_row.resize(key + 1, None);
                team_parents.resize(key + 1, [NONE; 2]);
            }
            team_row[key] = Some((team.branch_id.as_str(), team.region_id.as_str()));
            let non_empty = |id: &'a str| (!id.is_empty()).then_some(id);
            team_parents[key] = [
                branches.optional(non_empty(&team.branch_id)),
                regions.optional(non_empty(&team.region_id)),
            ];
        }

        let agent_days: Vec<AgentDayFact> = data
            .agent_days
            .iter()
            .enumerate()
            .filter_map(|(row, r)| {
                Some(AgentDayFact {
                    day: window.day(r.date)?,
                    agent: agents.get(&r.agent_id),
                    tags: [
                        teams.optional(r.team_id.as_deref()),
                        branches.optional(r.branch_id.as_deref()),
                        regions.optional(r.region_id.as_deref()),
                    ],
                    row: row as u32,
                })
            })
            .collect();
        let outlet_days: Vec<OutletDayFact> = data
            .outlet_days
            .iter()
            .filter_map(|r| {
                Some(OutletDayFact {
                    day: window.day(r.date)?,
                    agent: agents.get(&r.agent_id),
                    outlet: outlets.get(&r.outlet_id),
                    visited: r.visits > 0,
                    sold: r.sales > 0,
                })
            })
            .collect();
        let assignments = data
            .assignments
            .iter()
            .filter_map(|i| {
                let (first, last) = window.interval(i)?;
                Some((agents.get(&i.agent_id), outlets.get(&i.key), first, last))
            })
            .collect();
        let roster: Vec<_> = data
            .roster
            .iter()
            .map(|i| {
                (
                    agents.get(&i.agent_id),
                    teams.get(&i.key),
                    window.interval(i),
                )
            })
            .collect();
        let plan_agents = data.plans.iter().map(|p| agents.get(&p.agent_id)).collect();
        let target_keys = data
            .targets
            .iter()
            .map(|t| {
                let ids = match t.scope {
                    Scope::Agent => &mut agents,
                    Scope::Team => &mut teams,
                    Scope::Branch => &mut branches,
                    Scope::Region => &mut regions,
                };
                (t.scope, ids.get(&t.scope_id))
            })
            .collect();
        team_row.resize(teams.len(), None);
        team_parents.resize(teams.len(), [NONE; 2]);

        let days = window.days;
        let mut roster_team = vec![NONE; agents.len() * days];
        // Backwards, so that the first interval holding a day has the last word.
        for &(agent, team, span) in roster.iter().rev() {
            if let Some((first, last)) = span {
                let base = agent as usize * days;
                roster_team[base + first as usize..=base + last as usize].fill(team);
            }
        }
        let mut agent_day = vec![NONE; agents.len() * days];
        for (index, fact) in agent_days.iter().enumerate() {
            agent_day[fact.agent as usize * days + fact.day as usize] = index as u32;
        }
        let roster = roster
            .into_iter()
            .filter_map(|(agent, team, span)| span.map(|(f, l)| (agent, team, f, l)))
            .collect();
        Self {
            window,
            agents,
            teams,
            branches,
            regions,
            outlets,
            team_parents,
            team_row,
            agent_days,
            outlet_days,
            assignments,
            roster,
            plan_agents,
            target_keys,
            roster_team,
            agent_day,
        }
    }

    fn roster_team(&self, agent: u32, day: u32) -> u32 {
        self.roster_team[agent as usize * self.window.days + day as usize]
    }

    /// The agent's team on a day as its activity counts: the ledger's tag when the agent
    /// has a row that day, else the roster.
    fn activity_team(&self, agent: u32, day: u32) -> u32 {
        match self.agent_day[agent as usize * self.window.days + day as usize] {
            NONE => self.roster_team(agent, day),
            fact => self.agent_days[fact as usize].tags[0],
        }
    }
}

/// Scope keys: agents, then teams, branches and regions, one number space.
#[derive(Debug, Clone, Copy)]
struct Keys {
    teams: u32,
    branches: u32,
    regions: u32,
    end: u32,
}

impl Keys {
    fn new(facts: &Facts<'_>) -> Self {
        let teams = facts.agents.len() as u32;
        let branches = teams + facts.teams.len() as u32;
        let regions = branches + facts.branches.len() as u32;
        Self {
            teams,
            branches,
            regions,
            end: regions + facts.regions.len() as u32,
        }
    }

    fn of(&self, scope: Scope, id: u32) -> u32 {
        if id == NONE {
            return NONE;
        }
        id + match scope {
            Scope::Agent => 0,
            Scope::Team => self.teams,
            Scope::Branch => self.branches,
            Scope::Region => self.regions,
        }
    }

    fn split(&self, key: u32) -> (Scope, u32) {
        if key < self.teams {
            (Scope::Agent, key)
        } else if key < self.branches {
            (Scope::Team, key - self.teams)
        } else if key < self.regions {
            (Scope::Branch, key - self.branches)
        } else {
            (Scope::Region, key - self.regions)
        }
    }

    /// The scopes an agent counts for with a team of the roster: itself, the team and the
    /// team's branch and region (`NONE` where unknown).
    fn of_agent(&self, facts: &Facts<'_>, agent: u32, team: u32) -> [u32; 4] {
        let [branch, region] = if team == NONE {
            [NONE; 2]
        } else {
            facts.team_parents[team as usize]
        };
        [
            agent,
            self.of(Scope::Team, team),
            self.of(Scope::Branch, branch),
            self.of(Scope::Region, region),
        ]
    }

    /// The scopes of an agent's day as the ledger tagged it.
    fn of_tagged(&self, fact: &AgentDayFact) -> [u32; 4] {
        [
            fact.agent,
            self.of(Scope::Team, fact.tags[0]),
            self.of(Scope::Branch, fact.tags[1]),
            self.of(Scope::Region, fact.tags[2]),
        ]
    }
}

/// The rows of the table, one per scope and reported period with any fact, numbered in
/// output order; `slots` maps (grain, scope, period) to its row.
struct Rows {
    slots: [Vec<u32>; 3],
    periods: [usize; 3],
    scope: Vec<u32>,
    grain: Vec<u8>,
    period: Vec<u32>,
}

/// A slot with facts, before rows are numbered.
const MARKED: u32 = NONE - 1;

impl Rows {
    fn new(grains: &[Grain; 3], scopes: u32) -> Self {
        let periods = [0, 1, 2].map(|g| grains[g].periods());
        Self {
            slots: periods.map(|p| vec![NONE; p * scopes as usize]),
            periods,
            scope: Vec::new(),
            grain: Vec::new(),
            period: Vec::new(),
        }
    }

    fn slot(&self, grain: usize, scope: u32, period: u32) -> usize {
        scope as usize * self.periods[grain] + period as usize
    }

    fn mark(&mut self, grain: usize, scope: u32, period: u32) {
        let slot = self.slot(grain, scope, period);
        self.slots[grain][slot] = MARKED;
    }

    /// Marks the periods of a day, in every grain, for the scopes given.
    fn mark_day(&mut self, grains: &[Grain; 3], scopes: &[u32], day: u32) {
        for (g, grain) in grains.iter().enumerate() {
            let period = grain.index.of(day);
            for &scope in scopes.iter().filter(|s| **s != NONE) {
                self.mark(g, scope, period);
            }
        }
    }

    /// Numbers the marked slots of reported periods in output order.
    fn number(&mut self, grains: &[Grain; 3], scope_order: &[u32]) {
        for &scope in scope_order {
            for g in GRAIN_ORDER {
                for period in grains[g].first_reported..self.periods[g] as u32 {
                    let slot = self.slot(g, scope, period);
                    if self.slots[g][slot] == MARKED {
                        self.slots[g][slot] = self.scope.len() as u32;
                        self.scope.push(scope);
                        self.grain.push(g as u8);
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

    fn len(&self) -> usize {
        self.scope.len()
    }

    /// The rows of a day's periods for one scope, `NONE` where the table has none.
    fn of_day(&self, grains: &[Grain; 3], scope: u32, day: u32) -> [u32; 3] {
        if scope == NONE {
            return [NONE; 3];
        }
        let row = |g: usize| self.slots[g][self.slot(g, scope, grains[g].index.of(day))];
        [row(0), row(1), row(2)]
    }
}

/// Week and month rows' grains, in `PeriodKind::ALL` order.
const WEEK: usize = 1;
const MONTH: usize = 2;

/// Bits of a plan day: which kinds the agent planned that day, and that it planned at all.
const PLANNED_DAY: u8 = 1 << 3;

/// A float sum as polars adds a group's values (compensated, in row order), so that sums
/// of prorated plans come out the same to the last bit.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    sum: f64,
    error: f64,
}

impl Sum {
    fn add(&mut self, value: f64) {
        let y = value - self.error;
        let sum = self.sum + y;
        let error = (sum - self.sum) - y;
        self.sum = sum;
        if error.is_finite() {
            self.error = error;
        }
    }
}

/// Runs two pieces of work at once (the job's machine has two cores).
fn both<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    std::thread::scope(|scope| {
        let a = scope.spawn(a);
        let b = b();
        let a = a
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (a, b)
    })
}

/// Indexes `0..keys.len()` grouped by key (`0..groups`), each group in its original order.
fn grouped(keys: impl Iterator<Item = u32> + Clone, groups: usize) -> Vec<u32> {
    let mut starts = vec![0_u32; groups + 1];
    for key in keys.clone() {
        starts[key as usize + 1] += 1;
    }
    for g in 0..groups {
        starts[g + 1] += starts[g];
    }
    let mut order = vec![0_u32; starts[groups] as usize];
    for (index, key) in keys.enumerate() {
        let at = &mut starts[key as usize];
        order[*at as usize] = index as u32;
        *at += 1;
    }
    order
}

/// The agent-day counters per row.
struct Activity {
    /// Visits, consultations, customers consulted and interested, sales and cancellations,
    /// kept together per row; sums checked.
    counts: Vec<[i64; 6]>,
    /// Gross premium and refunds in fen, per row: 128 bits hold any sum of the ledger's
    /// 64-bit cells.
    money: Vec<[i128; 2]>,
    active_agents: Vec<i64>,
    /// The first counter whose sum did not fit, if one did not.
    overflow: Option<&'static str>,
}

const VISITS: usize = 0;
const CONSULTATIONS: usize = 1;
const CUSTOMERS_CONSULTED: usize = 2;
const CUSTOMERS_INTERESTED: usize = 3;
const SALES: usize = 4;
const CANCELLATIONS: usize = 5;
const COUNT_NAMES: [&str; 6] = [
    "visits",
    "consultations",
    "customers_consulted",
    "customers_interested",
    "sales",
    "cancellations",
];
const GROSS_PREMIUM: usize = 0;
const REFUNDS: usize = 1;

/// Plans per row.
struct Plans {
    /// Planned visits, consultations and sales; `None` where no plan has the kind.
    planned: Vec<[Option<Sum>; 3]>,
    /// Actual visits, consultations and sales on the days planned for the kind; `None`
    /// where the row has no plan day at all (null, not 0).
    on_plan: Vec<Option<[i64; 3]>>,
}

/// Everything the rows are built from, and the passes that add facts into them.
struct Job<'a> {
    data: &'a LedgerData,
    params: &'a KpiParams,
    facts: &'a Facts<'a>,
    keys: Keys,
    grains: &'a [Grain; 3],
    rows: &'a Rows,
}

impl Job<'_> {
    /// Sums of the agent-day counters, and distinct selling agents: the facts are taken
    /// agent by agent, so a row already counted for the agent at hand is not counted again.
    fn activity(&self) -> Activity {
        let (facts, rows) = (self.facts, self.rows);
        let mut counts = vec![[0_i64; 6]; rows.len()];
        let mut money = vec![[0_i128; 2]; rows.len()];
        let mut overflow = None;
        let mut active_agents = vec![0; rows.len()];
        let mut seen = vec![NONE; rows.len()];
        let by_agent = grouped(facts.agent_days.iter().map(|f| f.agent), facts.agents.len());
        for &index in &by_agent {
            let fact = &facts.agent_days[index as usize];
            let row = &self.data.agent_days[fact.row as usize];
            let values = [
                row.visits,
                row.consultations,
                row.customers_consulted,
                row.customers_interested,
                row.sales,
                row.cancellations,
            ];
            let amounts = [i128::from(row.premium_fen), i128::from(row.refunds_fen)];
            for scope in self.keys.of_tagged(fact) {
                for r in rows.of_day(self.grains, scope, fact.day) {
                    if r == NONE {
                        continue;
                    }
                    let r = r as usize;
                    for ((sum, value), name) in counts[r].iter_mut().zip(values).zip(COUNT_NAMES) {
                        match sum.checked_add(value) {
                            Some(total) => *sum = total,
                            None => {
                                overflow.get_or_insert(name);
                            }
                        }
                    }
                    for (sum, amount) in money[r].iter_mut().zip(amounts) {
                        *sum += amount;
                    }
                    if row.sales > 0 && seen[r] != fact.agent {
                        seen[r] = fact.agent;
                        active_agents[r] += 1;
                    }
                }
            }
        }
        Activity {
            counts,
            money,
            active_agents,
            overflow,
        }
    }

    /// Distinct outlets visited, assigned outlets visited, and assigned outlets sold at:
    /// the facts are taken outlet by outlet, so a row already counted for the outlet at hand
    /// is not counted again.
    fn outlets(&self, assigned: &SpanIndex) -> Vec<[u32; 3]> {
        let (facts, rows) = (self.facts, self.rows);
        // Per row and count: the outlet last counted, and the count.
        let mut tally = vec![([NONE; 3], [0_u32; 3]); rows.len()];
        let by_outlet = grouped(
            facts.outlet_days.iter().map(|f| f.outlet),
            facts.outlets.len(),
        );
        for &index in &by_outlet {
            let fact = &facts.outlet_days[index as usize];
            let team = facts.activity_team(fact.agent, fact.day);
            let scopes = self.keys.of_agent(facts, fact.agent, team);
            // Which of the scopes had the outlet assigned that day, in one look at its spans.
            let mut covered = [false; 4];
            for span in assigned.of(fact.outlet) {
                if span.first <= fact.day && fact.day <= span.last {
                    for (covered, scope) in covered.iter_mut().zip(scopes) {
                        *covered |= span.group == scope;
                    }
                }
            }
            for (scope, covered) in scopes.into_iter().zip(covered) {
                if scope == NONE {
                    continue;
                }
                let flags = [fact.visited, fact.visited && covered, fact.sold && covered];
                for r in rows.of_day(self.grains, scope, fact.day) {
                    if r == NONE {
                        continue;
                    }
                    let (seen, counts) = &mut tally[r as usize];
                    for ((seen, count), flag) in seen.iter_mut().zip(counts).zip(flags) {
                        if flag && *seen != fact.outlet {
                            *seen = fact.outlet;
                            *count += 1;
                        }
                    }
                }
            }
        }
        tally.into_iter().map(|(_, counts)| counts).collect()
    }

    /// Planned counts prorated day by day (added in the order polars summed them), and the
    /// actual counts on the planned days.
    fn plans(&self) -> Plans {
        let (facts, rows, window) = (self.facts, self.rows, &self.facts.window);
        let calendar = &self.params.calendar;
        let mut planned = vec![[None; 3]; rows.len()];
        let days = window.days;
        let working: Vec<bool> = (0..days as u32)
            .map(|d| calendar.is_working_day(window.date(d)))
            .collect();
        // Plans share their weeks: working days per range, worked out once.
        let mut working_days = PlHashMap::new();
        let mut planned_kinds = vec![0_u8; facts.agents.len() * days];
        for (plan, &agent) in self.data.plans.iter().zip(&facts.plan_agents) {
            let Some((first, last)) = window.days_between(plan.start, plan.end) else {
                continue;
            };
            let working_days = *working_days
                .entry((plan.start, plan.end))
                .or_insert_with(|| calendar.working_days_between(plan.start, plan.end));
            // A plan over days that are all non-working spreads over its calendar days.
            let (share_days, weighted) = if working_days > 0 {
                (working_days, true)
            } else {
                ((plan.end - plan.start).num_days() as u32 + 1, false)
            };
            let counts = [plan.visits, plan.consultations, plan.sales];
            let kinds = counts
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_some())
                .fold(PLANNED_DAY, |kinds, (bit, _)| kinds | 1 << bit);
            for day in first..=last {
                let share = if !weighted || working[day as usize] {
                    1.0 / f64::from(share_days)
                } else {
                    0.0
                };
                let team = facts.roster_team(agent, day);
                for scope in self.keys.of_agent(facts, agent, team) {
                    for r in rows.of_day(self.grains, scope, day) {
                        if r == NONE {
                            continue;
                        }
                        for (sum, count) in planned[r as usize].iter_mut().zip(counts) {
                            if let Some(count) = count {
                                sum.get_or_insert_with(Sum::default)
                                    .add(count as f64 * share);
                            }
                        }
                    }
                }
                planned_kinds[agent as usize * days + day as usize] |= kinds;
            }
        }

        // The actual side counts for the scopes the day's activity counts for.
        let mut on_plan = vec![None; rows.len()];
        for (at, kinds) in planned_kinds.iter().enumerate() {
            if *kinds == 0 {
                continue;
            }
            let (agent, day) = ((at / days) as u32, (at % days) as u32);
            let actual = match facts.agent_day[at] {
                NONE => [0; 3],
                fact => {
                    let row = &self.data.agent_days[facts.agent_days[fact as usize].row as usize];
                    [row.visits, row.consultations, row.sales]
                }
            };
            let team = facts.activity_team(agent, day);
            for scope in self.keys.of_agent(facts, agent, team) {
                for r in rows.of_day(self.grains, scope, day) {
                    if r == NONE {
                        continue;
                    }
                    let sums: &mut [i64; 3] = on_plan[r as usize].get_or_insert_default();
                    for (bit, (sum, value)) in sums.iter_mut().zip(actual).enumerate() {
                        if kinds & (1 << bit) != 0 {
                            *sum += value;
                        }
                    }
                }
            }
        }
        Plans { planned, on_plan }
    }

    /// Agent rows: the team of the agent's latest roster day in the period (as the team's
    /// rank by id, so that two teams on one day resolve to the greatest id).
    fn latest_teams(&self, team_rank: &[u32]) -> Vec<(u32, u32)> {
        let mut latest = vec![(NONE, NONE); self.rows.len()];
        for &(agent, team, first, last) in &self.facts.roster {
            for (g, grain) in self.grains.iter().enumerate() {
                for period in grain.index.of(first)..=grain.index.of(last) {
                    let r = self.rows.slots[g][self.rows.slot(g, agent, period)];
                    if r == NONE {
                        continue;
                    }
                    let day = last.min(grain.last_days[period as usize]);
                    let candidate = (day, team_rank[team as usize]);
                    let current = &mut latest[r as usize];
                    if current.0 == NONE || candidate > *current {
                        *current = candidate;
                    }
                }
            }
        }
        latest
    }

    /// Month rows: the index of the scope's target for the month.
    fn targets(&self) -> Vec<u32> {
        let mut targets = vec![NONE; self.rows.len()];
        let keyed = self.data.targets.iter().zip(&self.facts.target_keys);
        for (index, (target, &(scope, id))) in keyed.enumerate() {
            if let Some(period) = target_period(&self.facts.window, &self.grains[MONTH], target) {
                let slot = self.rows.slot(MONTH, self.keys.of(scope, id), period);
                let r = self.rows.slots[MONTH][slot];
                if r != NONE {
                    targets[r as usize] = index as u32;
                }
            }
        }
        targets
    }
}

/// The month of a target, if the window has it.
fn target_period(window: &Window, months: &Grain, target: &Target) -> Option<u32> {
    let start = target.month.first_day();
    if start > window.last || target.month.last_day() < window.first {
        return None;
    }
    Some(months.index.of(window.day(start.max(window.first))?))
}

/// Computes the KPI table.
pub fn compute(data: &LedgerData, params: &KpiParams) -> Result<DataFrame, KpiError> {
    let started = std::time::Instant::now();
    if params.as_of < params.since {
        return Err(KpiError::Window {
            as_of: params.as_of,
            since: params.since,
        });
    }
    let facts = Facts::read(data, Window::new(params.window_start(), params.as_of));
    let grains = PeriodKind::ALL.map(|kind| Grain::new(kind, &facts.window, params.since));
    let keys = Keys::new(&facts);
    let scopes = keys.end as usize;

    // Outlet assignments per scope: the agent's own, and its team's, branch's and region's
    // over the days it belonged to them.
    let mut spans = Vec::with_capacity(facts.assignments.len() * 4);
    for &(agent, outlet, first, last) in &facts.assignments {
        spans.push(Span {
            member: outlet,
            group: agent,
            first,
            last,
        });
        let mut from = first;
        while from <= last {
            let team = facts.roster_team(agent, from);
            let mut to = from;
            while to < last && facts.roster_team(agent, to + 1) == team {
                to += 1;
            }
            for &group in &keys.of_agent(&facts, agent, team)[1..] {
                if group != NONE {
                    spans.push(Span {
                        member: outlet,
                        group,
                        first: from,
                        last: to,
                    });
                }
            }
            from = to + 1;
        }
    }
    let assigned = SpanIndex::new(spans, facts.outlets.len());
    let assigned_outlets = grains
        .each_ref()
        .map(|g| distinct_per_period(assigned.spans(), scopes, &g.index));

    // Agents on the roster of teams, branches and regions.
    let mut spans = Vec::with_capacity(facts.roster.len() * 3);
    for &(agent, team, first, last) in &facts.roster {
        for &group in &keys.of_agent(&facts, agent, team)[1..] {
            if group != NONE {
                spans.push(Span {
                    member: agent,
                    group,
                    first,
                    last,
                });
            }
        }
    }
    let roster = SpanIndex::new(spans, facts.agents.len());
    let agents_on_roster = grains
        .each_ref()
        .map(|g| distinct_per_period(roster.spans(), scopes, &g.index));

    // Which rows the table has: a scope and period with activity, outlet activity,
    // assigned outlets, a roster (for an agent: being on one, weeks and months), a plan day,
    // or (months) a target.
    let mut rows = Rows::new(&grains, keys.end);
    for fact in &facts.agent_days {
        rows.mark_day(&grains, &keys.of_tagged(fact), fact.day);
    }
    for fact in &facts.outlet_days {
        let team = facts.activity_team(fact.agent, fact.day);
        rows.mark_day(&grains, &keys.of_agent(&facts, fact.agent, team), fact.day);
    }
    for g in 0..3 {
        for scope in 0..keys.end {
            for period in 0..grains[g].periods() as u32 {
                if assigned_outlets[g].get(scope, period) > 0
                    || agents_on_roster[g].get(scope, period) > 0
                {
                    rows.mark(g, scope, period);
                }
            }
        }
    }
    // Every agent on a roster in a week or month has its row for it, with zero counts when
    // nothing happened: the agent who does nothing is the one the supervisor must see.
    for &(agent, _, first, last) in &facts.roster {
        for g in [WEEK, MONTH] {
            for period in grains[g].index.of(first)..=grains[g].index.of(last) {
                rows.mark(g, keys.of(Scope::Agent, agent), period);
            }
        }
    }
    for (plan, &agent) in data.plans.iter().zip(&facts.plan_agents) {
        if let Some((first, last)) = facts.window.days_between(plan.start, plan.end) {
            for day in first..=last {
                let team = facts.roster_team(agent, day);
                rows.mark_day(&grains, &keys.of_agent(&facts, agent, team), day);
            }
        }
    }
    for (target, &(scope, id)) in data.targets.iter().zip(&facts.target_keys) {
        if let Some(period) = target_period(&facts.window, &grains[MONTH], target) {
            rows.mark(MONTH, keys.of(scope, id), period);
        }
    }
    let mut scope_order = Vec::with_capacity(scopes);
    for (scope, ids) in [
        (Scope::Agent, &facts.agents),
        (Scope::Branch, &facts.branches),
        (Scope::Region, &facts.regions),
        (Scope::Team, &facts.teams),
    ] {
        scope_order.extend(ids.sorted().into_iter().map(|id| keys.of(scope, id)));
    }
    rows.number(&grains, &scope_order);
    let job = Job {
        data,
        params,
        facts: &facts,
        keys,
        grains: &grains,
        rows: &rows,
    };
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        rows = rows.len(),
        "kpi rows found"
    );

    let team_order = facts.teams.sorted();
    let mut team_rank = vec![0_u32; team_order.len()];
    for (rank, team) in team_order.iter().enumerate() {
        team_rank[*team as usize] = rank as u32;
    }
    let (outlets, (activity, plans)) =
        both(|| job.outlets(&assigned), || (job.activity(), job.plans()));
    if let Some(column) = activity.overflow {
        return Err(KpiError::Overflow { column });
    }
    let table = Table {
        job: &job,
        activity,
        outlets,
        plans,
        latest_teams: job.latest_teams(&team_rank),
        targets: job.targets(),
        assigned_outlets,
        agents_on_roster,
        team_order,
    };
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "kpi facts added up"
    );
    let frame = table.frame()?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        rows = frame.height(),
        "kpi table built"
    );
    Ok(frame)
}

/// The rows' tallies, turned into the output table: ratios, views, names and parents.
struct Table<'a> {
    job: &'a Job<'a>,
    activity: Activity,
    /// Outlets visited, assigned outlets visited, assigned outlets with a sale.
    outlets: Vec<[u32; 3]>,
    plans: Plans,
    latest_teams: Vec<(u32, u32)>,
    targets: Vec<u32>,
    assigned_outlets: [DistinctCounts; 3],
    agents_on_roster: [DistinctCounts; 3],
    /// Team keys by id, the order of the ranks in `latest_teams`.
    team_order: Vec<u32>,
}

/// `numerator / denominator`, null when the denominator is zero or null.
fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    match denominator {
        Some(d) if d != 0.0 => numerator.map(|n| n / d),
        _ => None,
    }
}

fn ints(name: &str, values: impl Iterator<Item = i64>) -> Column {
    Int64Chunked::from_iter_values(name.into(), values).into_column()
}

fn optional_ints(name: &str, values: impl Iterator<Item = Option<i64>>) -> Column {
    values
        .collect::<Int64Chunked>()
        .with_name(name.into())
        .into_column()
}

fn floats(name: &str, values: impl Iterator<Item = Option<f64>>) -> Column {
    values
        .collect::<Float64Chunked>()
        .with_name(name.into())
        .into_column()
}

fn strings<'s>(name: &str, values: impl Iterator<Item = &'s str>) -> Column {
    StringChunked::from_iter_values(name.into(), values).into_column()
}

fn optional_strings<'s>(name: &str, values: impl Iterator<Item = Option<&'s str>>) -> Column {
    values
        .collect::<StringChunked>()
        .with_name(name.into())
        .into_column()
}

fn dates(name: &str, days: impl Iterator<Item = i32>) -> Column {
    Int32Chunked::from_iter_values(name.into(), days)
        .into_date()
        .into_column()
}

/// Digits of the KPI table's money: Decimal(38, 2) holds any sum of the ledger's 64-bit fen
/// (up to about 9.2e18 fen a cell, times any count of cells below 10^17).
pub const MONEY_PRECISION: usize = 38;

/// Money as Decimal(38, 2) from fen.
fn decimals(fen: Int128Chunked) -> PolarsResult<Column> {
    Ok(fen
        .into_decimal(MONEY_PRECISION, 2)?
        .into_series()
        .into_column())
}

/// Builds one or more columns of the table.
type Build<'a> = Box<dyn Fn() -> PolarsResult<Vec<Column>> + Sync + 'a>;

fn one<'a>(build: impl Fn() -> Column + Sync + 'a) -> Build<'a> {
    Box::new(move || Ok(vec![build()]))
}

fn float<'a>(
    rows: usize,
    name: &'static str,
    value: impl Fn(usize) -> Option<f64> + Sync + 'a,
) -> Build<'a> {
    one(move || floats(name, (0..rows).map(&value)))
}

fn optional_int<'a>(
    rows: usize,
    name: &'static str,
    value: impl Fn(usize) -> Option<i64> + Sync + 'a,
) -> Build<'a> {
    one(move || optional_ints(name, (0..rows).map(&value)))
}

impl<'a> Table<'a> {
    fn grain(&self, r: usize) -> &Grain {
        &self.job.grains[usize::from(self.job.rows.grain[r])]
    }

    fn month_row(&self, r: usize) -> bool {
        usize::from(self.job.rows.grain[r]) == MONTH
    }

    fn agent_row(&self, r: usize) -> bool {
        self.job.rows.scope[r] < self.job.keys.teams
    }

    fn period_start(&self, r: usize) -> NaiveDate {
        self.grain(r).starts[self.job.rows.period[r] as usize]
    }

    fn period_end(&self, r: usize) -> i32 {
        day_number(self.grain(r).kind.end_of(self.period_start(r)))
    }

    /// Agent rows: the agent's team in the period.
    fn agent_team(&self, r: usize) -> Option<u32> {
        let (_, rank) = self.latest_teams[r];
        (rank != NONE).then(|| self.team_order[rank as usize])
    }

    /// Month rows: a count of the scope's target.
    fn target(&self, r: usize, count: fn(&Target) -> Option<i64>) -> Option<i64> {
        match self.targets[r] {
            NONE => None,
            index => count(&self.job.data.targets[index as usize]),
        }
    }

    fn count(&self, r: usize, counter: usize) -> i64 {
        self.activity.counts[r][counter]
    }

    fn net_premium(&self, r: usize) -> i128 {
        let [gross, refunds] = self.activity.money[r];
        gross - refunds
    }

    fn distinct(&self, counts: &[DistinctCounts; 3], r: usize) -> i64 {
        let rows = self.job.rows;
        let grain = usize::from(rows.grain[r]);
        i64::from(counts[grain].get(rows.scope[r], rows.period[r]))
    }

    fn assigned_outlets(&self, r: usize) -> i64 {
        self.distinct(&self.assigned_outlets, r)
    }

    /// Team, branch and region rows: agents on the roster.
    fn agents_on_roster(&self, r: usize) -> Option<i64> {
        (!self.agent_row(r)).then(|| self.distinct(&self.agents_on_roster, r))
    }

    fn active_agents(&self, r: usize) -> Option<i64> {
        (!self.agent_row(r)).then(|| self.activity.active_agents[r])
    }

    fn close_rate(&self, r: usize) -> Option<f64> {
        ratio(
            Some(self.count(r, SALES) as f64),
            Some(self.count(r, CUSTOMERS_CONSULTED) as f64),
        )
    }

    fn outlet_activity_rate(&self, r: usize) -> Option<f64> {
        ratio(
            Some(f64::from(self.outlets[r][2])),
            Some(self.assigned_outlets(r) as f64),
        )
    }

    fn premium_attainment(&self, r: usize) -> Option<f64> {
        ratio(
            Some(self.net_premium(r) as f64),
            self.target(r, |t| t.premium_fen).map(|t| t as f64),
        )
    }

    fn time_progress(&self, r: usize) -> Option<f64> {
        let params = self.job.params;
        self.month_row(r)
            .then(|| time_progress(&params.calendar, self.period_start(r), params.as_of))
            .flatten()
    }

    fn projected_attainment(&self, r: usize) -> Option<f64> {
        ratio(self.premium_attainment(r), self.time_progress(r))
    }

    fn planned(&self, r: usize, kind: usize) -> Option<f64> {
        self.plans.planned[r][kind].map(|s| s.sum)
    }

    fn plan_adherence(&self, r: usize, kind: usize) -> Option<f64> {
        let actual = self.plans.on_plan[r].map(|sums| sums[kind] as f64);
        ratio(actual, self.planned(r, kind))
    }

    /// Month rows: actual count over the target count.
    fn count_attainment(
        &self,
        r: usize,
        counter: usize,
        count: fn(&Target) -> Option<i64>,
    ) -> Option<f64> {
        ratio(
            Some(self.count(r, counter) as f64),
            self.target(r, count).map(|t| t as f64),
        )
    }

    /// The median close rate of the agents with the same team (or with none) per month, as
    /// polars takes it (halfway between the middle two, as `lower + (upper - lower) / 2`).
    fn team_medians(&self) -> PlHashMap<(u32, u32), f64> {
        let mut rates: PlHashMap<(u32, u32), Vec<f64>> = PlHashMap::new();
        for r in 0..self.job.rows.len() {
            if self.agent_row(r)
                && self.month_row(r)
                && let Some(rate) = self.close_rate(r)
            {
                let team = self.agent_team(r).unwrap_or(NONE);
                rates
                    .entry((team, self.job.rows.period[r]))
                    .or_default()
                    .push(rate);
            }
        }
        rates
            .into_iter()
            .map(|(group, mut values)| {
                values.sort_unstable_by(f64::total_cmp);
                let (lower, upper) = (values[(values.len() - 1) / 2], values[values.len() / 2]);
                let median = if lower == upper {
                    lower
                } else {
                    0.5 * (upper - lower) + lower
                };
                (group, median)
            })
            .collect()
    }

    /// The scope's name and id, and the team, branch and region ids of a row.
    fn ids(
        &self,
        r: usize,
        branch_region: &PlHashMap<&'a str, &'a str>,
    ) -> (&'static str, &'a str, [Option<&'a str>; 3]) {
        let facts = self.job.facts;
        let (scope, id) = self.job.keys.split(self.job.rows.scope[r]);
        let team = |team: u32| {
            let row = facts.team_row[team as usize];
            [
                Some(facts.teams.names[team as usize]),
                row.map(|(branch, _)| branch),
                row.map(|(_, region)| region),
            ]
        };
        let (name, parents) = match scope {
            Scope::Agent => (
                facts.agents.names[id as usize],
                self.agent_team(r).map_or([None; 3], team),
            ),
            Scope::Team => (facts.teams.names[id as usize], team(id)),
            Scope::Branch => {
                let branch = facts.branches.names[id as usize];
                (
                    branch,
                    [None, Some(branch), branch_region.get(branch).copied()],
                )
            }
            Scope::Region => {
                let region = facts.regions.names[id as usize];
                (region, [None, None, Some(region)])
            }
        };
        (scope_name(scope), name, parents)
    }

    /// The agent-day counters as their columns, in one pass over the rows.
    fn counters(&self) -> PolarsResult<Vec<Column>> {
        let n = self.job.rows.len();
        const COUNTS: [(&str, usize); 6] = [
            (COUNT_NAMES[VISITS], VISITS),
            (COUNT_NAMES[CONSULTATIONS], CONSULTATIONS),
            (COUNT_NAMES[CUSTOMERS_CONSULTED], CUSTOMERS_CONSULTED),
            (COUNT_NAMES[CUSTOMERS_INTERESTED], CUSTOMERS_INTERESTED),
            (COUNT_NAMES[SALES], SALES),
            (COUNT_NAMES[CANCELLATIONS], CANCELLATIONS),
        ];
        let mut counts = COUNTS.map(|_| Vec::with_capacity(n));
        // Premium (net of refunds), gross premium and refunds, in fen.
        let mut money = [0, 1, 2].map(|_| Vec::with_capacity(n));
        let mut per_sale = Vec::with_capacity(n);
        for (row, amounts) in self.activity.counts.iter().zip(&self.activity.money) {
            for (column, (_, counter)) in counts.iter_mut().zip(COUNTS) {
                column.push(row[counter]);
            }
            let (gross, refunds) = (amounts[GROSS_PREMIUM], amounts[REFUNDS]);
            let net = gross - refunds;
            for (column, fen) in money.iter_mut().zip([net, gross, refunds]) {
                column.push(fen);
            }
            let sales = i128::from(row[SALES]);
            per_sale.push((sales != 0).then(|| rounded_division(net, sales)));
        }
        let mut columns: Vec<Column> = COUNTS
            .iter()
            .zip(counts)
            .map(|((name, _), values)| Int64Chunked::from_vec((*name).into(), values).into_column())
            .collect();
        for (name, fen) in ["premium", "gross_premium", "refunds"]
            .into_iter()
            .zip(money)
        {
            columns.push(decimals(Int128Chunked::from_vec(name.into(), fen))?);
        }
        let per_sale: Int128Chunked = per_sale.into_iter().collect();
        columns.push(decimals(per_sale.with_name("premium_per_sale".into()))?);
        Ok(columns)
    }

    fn frame(&self) -> PolarsResult<DataFrame> {
        let n = self.job.rows.len();
        let all = || 0..n;
        let params = self.job.params;
        let as_of = day_number(params.as_of);
        let branch_region: PlHashMap<&str, &str> =
            self.job.facts.team_row.iter().flatten().copied().collect();
        let ids = |r: usize| self.ids(r, &branch_region);
        let medians = self.team_medians();
        let team_median = |r: usize| {
            if !(self.agent_row(r) && self.month_row(r)) {
                return None;
            }
            let team = self.agent_team(r).unwrap_or(NONE);
            medians.get(&(team, self.job.rows.period[r])).copied()
        };
        let quadrant = |r: usize| {
            if !(self.agent_row(r) && self.month_row(r)) {
                return None;
            }
            // Will: visit plan adherence, consultations' when visits were not planned.
            let will = self
                .plan_adherence(r, 0)
                .or_else(|| self.plan_adherence(r, 1))?;
            let skilled = self.close_rate(r)? >= team_median(r)? * params.skill_ratio;
            Some(match (will >= params.will_threshold, skilled) {
                (true, true) => "on_track",
                (true, false) => "does_not_know_how",
                (false, true) => "does_not_do_enough",
                (false, false) => "unwilling",
            })
        };
        let target = |name: &'static str, count: fn(&Target) -> Option<i64>| {
            optional_int(n, name, move |r| self.target(r, count))
        };
        // The heaviest first, so that the two threads finish together.
        let builds: Vec<Build<'_>> = vec![
            Box::new(|| self.counters()),
            one(|| strings("scope", all().map(|r| ids(r).0))),
            one(|| strings("scope_id", all().map(|r| ids(r).1))),
            one(|| optional_strings("team_id", all().map(|r| ids(r).2[0]))),
            one(|| optional_strings("branch_id", all().map(|r| ids(r).2[1]))),
            one(|| optional_strings("region_id", all().map(|r| ids(r).2[2]))),
            one(|| strings("period", all().map(|r| self.grain(r).kind.name()))),
            one(|| optional_strings("coaching_quadrant", all().map(quadrant))),
            one(|| {
                dates(
                    "period_start",
                    all().map(|r| day_number(self.period_start(r))),
                )
            }),
            one(|| dates("period_end", all().map(|r| self.period_end(r)))),
            one(|| dates("as_of", all().map(|_| as_of))),
            one(|| {
                ints(
                    "outlets_visited",
                    self.outlets.iter().map(|o| i64::from(o[0])),
                )
            }),
            one(|| ints("assigned_outlets", all().map(|r| self.assigned_outlets(r)))),
            float(n, "visit_coverage", |r| {
                ratio(
                    Some(f64::from(self.outlets[r][1])),
                    Some(self.assigned_outlets(r) as f64),
                )
            }),
            float(n, "outlet_activity_rate", |r| self.outlet_activity_rate(r)),
            float(n, "close_rate", |r| self.close_rate(r)),
            optional_int(n, "agents_on_roster", |r| self.agents_on_roster(r)),
            optional_int(n, "active_agents", |r| self.active_agents(r)),
            float(n, "agent_activity_rate", |r| {
                ratio(
                    self.active_agents(r).map(|a| a as f64),
                    self.agents_on_roster(r).map(|a| a as f64),
                )
            }),
            Box::new(|| {
                let fen: Int128Chunked = all()
                    .map(|r| self.target(r, |t| t.premium_fen).map(i128::from))
                    .collect();
                Ok(vec![decimals(fen.with_name("premium_target".into()))?])
            }),
            float(n, "premium_attainment", |r| self.premium_attainment(r)),
            float(n, "outlet_activity_rate_target", |r| {
                self.target(r, |t| t.outlet_activity_rate_bp)
                    .map(|bp| bp as f64 / 10_000.0)
            }),
            float(n, "outlet_activity_rate_attainment", |r| {
                ratio(
                    self.outlet_activity_rate(r).map(|rate| rate * 10_000.0),
                    self.target(r, |t| t.outlet_activity_rate_bp)
                        .map(|bp| bp as f64),
                )
            }),
            float(n, "planned_visits", |r| self.planned(r, 0)),
            float(n, "planned_consultations", |r| self.planned(r, 1)),
            float(n, "planned_sales", |r| self.planned(r, 2)),
            float(n, "plan_adherence_visits", |r| self.plan_adherence(r, 0)),
            float(n, "plan_adherence_consultations", |r| {
                self.plan_adherence(r, 1)
            }),
            float(n, "plan_adherence_sales", |r| self.plan_adherence(r, 2)),
            float(n, "time_progress", |r| self.time_progress(r)),
            float(n, "pace_gap", |r| {
                Some(self.premium_attainment(r)? - self.time_progress(r)?)
            }),
            float(n, "projected_attainment", |r| self.projected_attainment(r)),
            one(|| {
                all()
                    .map(|r| {
                        let projected = self.projected_attainment(r)?;
                        let open = self.period_end(r) >= as_of;
                        Some(projected < params.at_risk_threshold && open)
                    })
                    .collect::<BooleanChunked>()
                    .with_name("at_risk".into())
                    .into_column()
            }),
            target("visits_target", |t| t.visits),
            float(n, "visits_attainment", |r| {
                self.count_attainment(r, VISITS, |t| t.visits)
            }),
            target("consultations_target", |t| t.consultations),
            float(n, "consultations_attainment", |r| {
                self.count_attainment(r, CONSULTATIONS, |t| t.consultations)
            }),
            target("sales_target", |t| t.sales),
            float(n, "sales_attainment", |r| {
                self.count_attainment(r, SALES, |t| t.sales)
            }),
            float(n, "team_median_close_rate", Box::new(team_median)),
        ];
        // Two threads take the builds in turn as they finish the previous one.
        let next = AtomicUsize::new(0);
        let work = || {
            let mut built = Vec::new();
            while let Some(build) = builds.get(next.fetch_add(1, Ordering::Relaxed)) {
                built.push(build());
            }
            built
        };
        let (theirs, mine) = both(work, work);
        let mut columns = Vec::with_capacity(OUTPUT_COLUMNS.len());
        for built in theirs.into_iter().chain(mine) {
            columns.extend(built?);
        }
        DataFrame::new(n, columns)?.select(OUTPUT_COLUMNS)
    }
}

/// The output contract, in order. Dashboards and analysts depend on these names.
pub const OUTPUT_COLUMNS: [&str; 49] = [
    "scope",
    "scope_id",
    "team_id",
    "branch_id",
    "region_id",
    "period",
    "period_start",
    "period_end",
    "as_of",
    "visits",
    "outlets_visited",
    "consultations",
    "customers_consulted",
    "customers_interested",
    "sales",
    "premium",
    "assigned_outlets",
    "visit_coverage",
    "outlet_activity_rate",
    "close_rate",
    "premium_per_sale",
    "agents_on_roster",
    "active_agents",
    "agent_activity_rate",
    "premium_target",
    "premium_attainment",
    "outlet_activity_rate_target",
    "outlet_activity_rate_attainment",
    "planned_visits",
    "planned_consultations",
    "planned_sales",
    "plan_adherence_visits",
    "plan_adherence_consultations",
    "plan_adherence_sales",
    "time_progress",
    "pace_gap",
    "projected_attainment",
    "at_risk",
    "coaching_quadrant",
    // Beyond the contract: useful to analysts.
    "gross_premium",
    "refunds",
    "cancellations",
    "visits_target",
    "visits_attainment",
    "consultations_target",
    "consultations_attainment",
    "sales_target",
    "sales_attainment",
    "team_median_close_rate",
];

/// `numerator / denominator` rounded half away from zero.
fn rounded_division(numerator: i128, denominator: i128) -> i128 {
    let sign = if (numerator < 0) != (denominator < 0) {
        -1
    } else {
        1
    };
    let (n, d) = (numerator.abs(), denominator.abs());
    sign * ((2 * n + d) / (2 * d))
}
