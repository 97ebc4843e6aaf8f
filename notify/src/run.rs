//! One KPI run as the digests and alerts read it: the rows and the organisation beside them.

use std::collections::HashMap;

use aqs_tables::kpi::KpiRow;
use aqs_tables::organisation::Organisation;
use chrono::NaiveDate;
use serde_json::Value;

/// A KPI run (as of a date) with the organisation of that date.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub as_of: NaiveDate,
    pub rows: Vec<KpiRow>,
    pub organisation: Organisation,
}

pub(crate) fn text<'a>(row: &'a KpiRow, column: &str) -> &'a str {
    row.get(column).and_then(Value::as_str).unwrap_or_default()
}

pub(crate) fn int(row: &KpiRow, column: &str) -> i64 {
    row.get(column).and_then(Value::as_i64).unwrap_or(0)
}

pub(crate) fn float(row: &KpiRow, column: &str) -> Option<f64> {
    row.get(column).and_then(Value::as_f64)
}

pub(crate) fn flag(row: &KpiRow, column: &str) -> bool {
    match row.get(column) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// Money as the table carries it (decimal text), with two decimals.
pub(crate) fn money(row: &KpiRow, column: &str) -> Option<String> {
    let value = row.get(column)?;
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    Some(format!(
        "{whole}.{:0<2}",
        &fraction[..fraction.len().min(2)]
    ))
}

impl Run {
    /// The row of `(scope, id, period, start)`.
    pub fn row(&self, scope: &str, id: &str, period: &str, start: NaiveDate) -> Option<&KpiRow> {
        let start = start.to_string();
        self.rows.iter().find(|r| {
            text(r, "scope") == scope
                && text(r, "scope_id") == id
                && text(r, "period") == period
                && text(r, "period_start") == start
        })
    }

    /// Rows of `scope` and `period` starting `start` whose `parent_column` is `parent`, by id.
    pub fn rows_under(
        &self,
        scope: &str,
        period: &str,
        start: NaiveDate,
        parent_column: &str,
        parent: &str,
    ) -> Vec<&KpiRow> {
        let start = start.to_string();
        let mut rows: Vec<&KpiRow> = self
            .rows
            .iter()
            .filter(|r| {
                text(r, "scope") == scope
                    && text(r, "period") == period
                    && text(r, "period_start") == start
                    && text(r, parent_column) == parent
            })
            .collect();
        rows.sort_by(|a, b| text(a, "scope_id").cmp(text(b, "scope_id")));
        rows
    }

    /// An agent's display name, else its id.
    pub fn agent_name(&self, agent_id: &str) -> String {
        self.organisation
            .agent_names
            .get(agent_id)
            .cloned()
            .unwrap_or_else(|| agent_id.to_owned())
    }

    /// A team's name, else its id.
    pub fn team_name(&self, team_id: &str) -> String {
        self.organisation
            .teams
            .iter()
            .find(|t| t.team_id == team_id)
            .map(|t| t.team_name.clone())
            .unwrap_or_else(|| team_id.to_owned())
    }

    /// A branch's name, else its id.
    pub fn branch_name(&self, branch_id: &str) -> String {
        self.organisation
            .teams
            .iter()
            .find(|t| t.branch_id == branch_id)
            .and_then(|t| t.branch_name.clone())
            .unwrap_or_else(|| branch_id.to_owned())
    }

    /// Each team's branch on the run's date.
    pub fn branch_of(&self) -> HashMap<String, String> {
        self.organisation
            .teams
            .iter()
            .map(|t| (t.team_id.clone(), t.branch_id.clone()))
            .collect()
    }
}
