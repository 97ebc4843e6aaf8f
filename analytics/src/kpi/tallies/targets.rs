//! Each month row's own target: targets apply to the scope they name, never summed up or
//! split down.

use super::super::facts::LedgerFacts;
use super::super::ids::{NONE, ScopeKeys};
use super::super::rows::{TableRows, target_month};
use super::super::window::{MONTH, Periods};
use crate::data::{LedgerData, Target};

/// Per row: the scope's target for the month (month rows only), with its own copy of the
/// targets (one per scope and month) so that the ledger rows can be let go before the
/// columns are built.
pub(crate) struct RowTargets {
    targets: Vec<Target>,
    /// Per row: the index of its target in `targets`, `NONE` for none.
    of_row: Vec<u32>,
}

impl RowTargets {
    pub(crate) fn find(
        data: &LedgerData,
        facts: &LedgerFacts<'_>,
        keys: &ScopeKeys,
        periods: &[Periods; 3],
        rows: &TableRows,
    ) -> Self {
        let mut of_row = vec![NONE; rows.len()];
        let scoped = data.targets.iter().zip(&facts.target_scopes);
        for (index, (target, &(scope, number))) in scoped.enumerate() {
            if let Some(month) = target_month(&facts.window, &periods[MONTH], target) {
                let r = rows.of(MONTH, keys.of(scope, number), month);
                if r != NONE {
                    of_row[r as usize] = index as u32;
                }
            }
        }
        Self {
            targets: data.targets.clone(),
            of_row,
        }
    }

    /// One figure of each row's target (`None`: no target, or not that figure).
    pub(crate) fn figure(
        &self,
        figure: fn(&Target) -> Option<i64>,
    ) -> impl Iterator<Item = Option<i64>> + '_ {
        self.of_row.iter().map(move |index| match *index {
            NONE => None,
            index => figure(&self.targets[index as usize]),
        })
    }
}
