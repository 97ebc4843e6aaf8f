//! Sums of the agent-day counters and money per row, and the distinct agents who sold.

use super::super::facts::LedgerFacts;
use super::super::ids::{NONE, ScopeKeys};
use super::super::rows::TableRows;
use super::super::window::Periods;
use super::grouped;
use crate::data::LedgerData;

/// The agent-day counters, in the order of [`Activity::counts`].
pub(crate) const COUNTERS: [&str; 6] = [
    "visits",
    "consultations",
    "customers_consulted",
    "customers_interested",
    "sales",
    "cancellations",
];

/// The agent-day counters added up per row.
pub(crate) struct Activity {
    /// Per row: the [`COUNTERS`], kept together; sums checked.
    pub(crate) counts: Vec<[i64; 6]>,
    /// Per row: gross premium and refunds in fen. 128 bits hold any sum of the ledger's
    /// 64-bit cells.
    pub(crate) money: Vec<[i128; 2]>,
    /// Per row: distinct agents with a sale on a day they counted for the row's scope.
    pub(crate) selling_agents: Vec<i64>,
    /// The first counter whose sum did not fit, if one did not.
    pub(crate) overflow: Option<&'static str>,
}

/// Adds every agent-day into the rows of the scopes it was tagged with. The facts are
/// taken agent by agent, so a row already counted for the agent at hand is not counted
/// again as a selling agent.
pub(crate) fn add_up(
    data: &LedgerData,
    facts: &LedgerFacts<'_>,
    keys: &ScopeKeys,
    periods: &[Periods; 3],
    rows: &TableRows,
) -> Activity {
    let mut counts = vec![[0_i64; 6]; rows.len()];
    let mut money = vec![[0_i128; 2]; rows.len()];
    let mut overflow = None;
    let mut selling_agents = vec![0; rows.len()];
    let mut last_agent = vec![NONE; rows.len()];
    let by_agent = grouped(facts.agent_days.iter().map(|f| f.agent), facts.agents.len());
    for &index in &by_agent {
        let fact = &facts.agent_days[index as usize];
        let row = &data.agent_days[fact.row as usize];
        let values = [
            row.visits,
            row.consultations,
            row.customers_consulted,
            row.customers_interested,
            row.sales,
            row.cancellations,
        ];
        let amounts = [i128::from(row.premium_fen), i128::from(row.refunds_fen)];
        for scope in keys.of_tagged(fact.agent, fact.tags) {
            for r in rows.of_day(periods, scope, fact.day) {
                if r == NONE {
                    continue;
                }
                let r = r as usize;
                for ((sum, value), name) in counts[r].iter_mut().zip(values).zip(COUNTERS) {
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
                if row.sales > 0 && last_agent[r] != fact.agent {
                    last_agent[r] = fact.agent;
                    selling_agents[r] += 1;
                }
            }
        }
    }
    Activity {
        counts,
        money,
        selling_agents,
        overflow,
    }
}
