//! The trailing window of rates: for every row of the month open on the as-of date, the
//! scope's sales, customers consulted and premium (net of refunds) over the days from
//! `KpiParams::trailing_start` through the as-of date, whatever periods they fall in. The
//! formulas turn them into the rates that make the premium needed into activity needed.

use aqs_schemas::event::Scope;

use super::super::facts::LedgerFacts;
use super::super::ids::{NONE, ScopeKeys};
use super::super::rows::TableRows;
use super::super::window::{MONTH, Periods};
use crate::data::{AgentDay, LedgerData};

/// The trailing sums per row; `None` on the rows of other periods than the open month.
pub(crate) struct Trailing {
    /// Sales and customers consulted.
    pub(crate) counts: Vec<Option<[i64; 2]>>,
    /// Premium of the sales minus refunds, in fen.
    pub(crate) premium_fen: Vec<Option<i128>>,
    /// The first counter whose sum did not fit, if one did not.
    pub(crate) overflow: Option<&'static str>,
}

impl Trailing {
    fn add(&mut self, row: u32, day: &AgentDay) {
        if row == NONE {
            return;
        }
        let row = row as usize;
        if let Some(counts) = &mut self.counts[row] {
            let values = [day.sales, day.customers_consulted];
            let names = ["rates_window_sales", "rates_window_customers_consulted"];
            for ((sum, value), name) in counts.iter_mut().zip(values).zip(names) {
                match sum.checked_add(value) {
                    Some(total) => *sum = total,
                    None => {
                        self.overflow.get_or_insert(name);
                    }
                }
            }
        }
        if let Some(fen) = &mut self.premium_fen[row] {
            *fen += i128::from(day.premium_fen) - i128::from(day.refunds_fen);
        }
    }
}

/// Adds every agent day of the trailing window into the open month's rows of the scopes
/// the ledger tagged it with (the agent wherever it worked; a team, branch or region for
/// the days its agents counted for it): the window's own days from the facts, the days
/// before the window from `LedgerData::trailing_agent_days`.
pub(crate) fn add_up(
    data: &LedgerData,
    facts: &LedgerFacts<'_>,
    keys: &ScopeKeys,
    periods: &[Periods; 3],
    rows: &TableRows,
    trailing_start: chrono::NaiveDate,
) -> Trailing {
    let window = &facts.window;
    let open_month = periods[MONTH].index.of(window.days as u32 - 1);
    let mut trailing = Trailing {
        counts: vec![None; rows.len()],
        premium_fen: vec![None; rows.len()],
        overflow: None,
    };
    for row in 0..rows.len() {
        if rows.kind_of(row) == MONTH && rows.period[row] == open_month {
            trailing.counts[row] = Some([0; 2]);
            trailing.premium_fen[row] = Some(0);
        }
    }
    let row_of = |key: u32| {
        if key == NONE {
            NONE
        } else {
            rows.of(MONTH, key, open_month)
        }
    };
    let first_day = window.day(trailing_start).unwrap_or(0);
    for fact in facts.agent_days.iter().filter(|f| f.day >= first_day) {
        let day = &data.agent_days[fact.row as usize];
        for key in keys.of_tagged(fact.agent, fact.tags) {
            trailing.add(row_of(key), day);
        }
    }
    for day in &data.trailing_agent_days {
        if day.date < trailing_start || day.date >= window.first {
            continue;
        }
        let number = |scope: Scope, id: Option<&str>| match id {
            None => NONE,
            Some(id) => {
                let numbers = match scope {
                    Scope::Agent => &facts.agents,
                    Scope::Team => &facts.teams,
                    Scope::Branch => &facts.branches,
                    Scope::Region => &facts.regions,
                };
                numbers.get(id).map_or(NONE, |n| keys.of(scope, n))
            }
        };
        let scopes = [
            number(Scope::Agent, Some(&day.agent_id)),
            number(Scope::Team, day.team_id.as_deref()),
            number(Scope::Branch, day.branch_id.as_deref()),
            number(Scope::Region, day.region_id.as_deref()),
        ];
        for key in scopes {
            trailing.add(row_of(key), day);
        }
    }
    trailing
}
