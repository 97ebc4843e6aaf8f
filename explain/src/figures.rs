//! The count and money columns of a KPI row that events explain, added up from a list of
//! explained events.

use std::collections::BTreeSet;

use aqs_projector::ledger::Counters;
use aqs_projector::ledger::lineage::EventLineage;
use aqs_schemas::Money;
use serde::Serialize;

/// The KPI columns of an agent or team row that are sums (or a distinct count) of events.
pub const EXPLAINED_COLUMNS: [&str; 10] = [
    "visits",
    "outlets_visited",
    "consultations",
    "customers_consulted",
    "customers_interested",
    "sales",
    "gross_premium",
    "cancellations",
    "refunds",
    "premium",
];

/// The figures a list of counted events adds up to, one per [`EXPLAINED_COLUMNS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub visits: i64,
    /// Distinct outlets of the counted visits.
    pub outlets_visited: i64,
    pub consultations: i64,
    pub customers_consulted: i64,
    pub customers_interested: i64,
    pub sales: i64,
    pub gross_premium: Money,
    pub cancellations: i64,
    pub refunds: Money,
    /// Gross premium minus refunds (may be negative).
    pub premium: SignedMoney,
}

/// Money that may be negative (net premium), as the KPI table prints it: `-1234.50`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignedMoney(pub i64);

impl std::fmt::Display for SignedMoney {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let fen = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", fen / 100, fen % 100)
    }
}

impl Serialize for SignedMoney {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Figures {
    /// The figures of the events of `events` that count.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a EventLineage>) -> Self {
        let mut sum = Counters::default();
        let mut outlets = BTreeSet::new();
        for event in events {
            sum.add(&event.contribution);
            if event.contribution.visits > 0
                && let Some(outlet) = &event.outlet_id
            {
                outlets.insert(outlet.clone());
            }
        }
        Self {
            visits: sum.visits,
            outlets_visited: outlets.len() as i64,
            consultations: sum.consultations,
            customers_consulted: sum.customers_consulted,
            customers_interested: sum.customers_interested,
            sales: sum.sales,
            gross_premium: sum.premium,
            cancellations: sum.cancellations,
            refunds: sum.refunds,
            premium: SignedMoney(sum.net_premium().units()),
        }
    }

    /// The figure of `column` as the KPI table's JSON rows carry it: a count as a number,
    /// money as its text with two decimals.
    pub fn value(&self, column: &str) -> Option<String> {
        Some(match column {
            "visits" => self.visits.to_string(),
            "outlets_visited" => self.outlets_visited.to_string(),
            "consultations" => self.consultations.to_string(),
            "customers_consulted" => self.customers_consulted.to_string(),
            "customers_interested" => self.customers_interested.to_string(),
            "sales" => self.sales.to_string(),
            "gross_premium" => self.gross_premium.to_string(),
            "cancellations" => self.cancellations.to_string(),
            "refunds" => self.refunds.to_string(),
            "premium" => self.premium.to_string(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_money_prints_like_the_kpi_table() {
        assert_eq!(SignedMoney(-123_450).to_string(), "-1234.50");
        assert_eq!(SignedMoney(5).to_string(), "0.05");
        assert_eq!(SignedMoney(-5).to_string(), "-0.05");
    }
}
