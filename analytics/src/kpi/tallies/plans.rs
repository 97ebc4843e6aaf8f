//! Planned counts per row, prorated over the working days of each plan, and the actual
//! counts on the planned days.

use aqs_schemas::WorkingCalendar;
use polars::prelude::PlHashMap;

use super::super::facts::LedgerFacts;
use super::super::ids::{NONE, ScopeKeys};
use super::super::rows::TableRows;
use super::super::window::Periods;
use crate::data::LedgerData;

/// The plan kinds, in the order of [`Plans`]' arrays.
pub(crate) const PLAN_KINDS: [&str; 3] = ["visits", "consultations", "sales"];

/// Bit of a plan day: the agent planned at all that day (the kinds planned are bits 0..3).
const PLANNED_DAY: u8 = 1 << 3;

/// A float sum as polars adds a column's values (compensated, in order), so that sums of
/// prorated plans come out the same to the last bit whichever way they are added up.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sum {
    pub(crate) sum: f64,
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

/// Plans per row.
pub(crate) struct Plans {
    /// Planned visits, consultations and sales; `None` where no plan has the kind.
    pub(crate) planned: Vec<[Option<Sum>; 3]>,
    /// Actual visits, consultations and sales on the days planned for the kind; `None`
    /// where the row has no plan day at all (null, not 0).
    pub(crate) on_plan_days: Vec<Option<[i64; 3]>>,
}

/// Prorates every plan day by day over its working days into the rows of the scopes its
/// agent belonged to that day (a plan over days that are all non-working spreads over its
/// calendar days), then adds the agent's actual counts of the planned days into the rows
/// its activity counts for.
pub(crate) fn add_up(
    data: &LedgerData,
    facts: &LedgerFacts<'_>,
    keys: &ScopeKeys,
    periods: &[Periods; 3],
    rows: &TableRows,
    calendar: &WorkingCalendar,
) -> Plans {
    let window = &facts.window;
    let mut planned = vec![[None; 3]; rows.len()];
    let days = window.days;
    let working: Vec<bool> = (0..days as u32)
        .map(|d| calendar.is_working_day(window.date(d)))
        .collect();
    // Plans share their weeks: working days per range, worked out once.
    let mut working_days = PlHashMap::default();
    let mut planned_kinds = vec![0_u8; facts.agents.len() * days];
    for (plan, &agent) in data.plans.iter().zip(&facts.plan_agents) {
        let Some((first, last)) = window.days_between(plan.start, plan.end) else {
            continue;
        };
        let working_days = *working_days
            .entry((plan.start, plan.end))
            .or_insert_with(|| calendar.working_days_between(plan.start, plan.end));
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
            // The day's part of each kind planned, added to each of its rows in turn.
            let parts = counts.map(|count| count.map(|count| count as f64 * share));
            let team = facts.roster_team(agent, day);
            let day_periods = [0, 1, 2].map(|k| periods[k].index.of(day));
            for scope in keys.of_agent(agent, team, day) {
                if scope == NONE {
                    continue;
                }
                for (k, period) in day_periods.into_iter().enumerate() {
                    let r = rows.of(k, scope, period);
                    if r == NONE {
                        continue;
                    }
                    for (sum, part) in planned[r as usize].iter_mut().zip(parts) {
                        if let Some(part) = part {
                            sum.get_or_insert_with(Sum::default).add(part);
                        }
                    }
                }
            }
            planned_kinds[agent as usize * days + day as usize] |= kinds;
        }
    }

    // The actual side counts for the scopes the day's activity counts for.
    let mut on_plan_days = vec![None; rows.len()];
    for (at, kinds) in planned_kinds.iter().enumerate() {
        if *kinds == 0 {
            continue;
        }
        let (agent, day) = ((at / days) as u32, (at % days) as u32);
        let actual = match facts.agent_day(agent, day) {
            NONE => [0; 3],
            fact => {
                let row = &data.agent_days[facts.agent_days[fact as usize].row as usize];
                [row.visits, row.consultations, row.sales]
            }
        };
        let team = facts.activity_team(agent, day);
        for scope in keys.of_agent(agent, team, day) {
            for r in rows.of_day(periods, scope, day) {
                if r == NONE {
                    continue;
                }
                let sums: &mut [i64; 3] = on_plan_days[r as usize].get_or_insert_default();
                for (bit, (sum, value)) in sums.iter_mut().zip(actual).enumerate() {
                    if kinds & (1 << bit) != 0 {
                        *sum += value;
                    }
                }
            }
        }
    }
    Plans {
        planned,
        on_plan_days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compensated_sum_keeps_what_a_plain_sum_loses() {
        let mut sum = Sum::default();
        for _ in 0..10 {
            sum.add(0.1);
        }
        assert_eq!(sum.sum, 1.0);
        assert_ne!((0..10).map(|_| 0.1).sum::<f64>(), 1.0);
    }
}
