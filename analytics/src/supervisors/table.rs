//! The supervisor rows as the contract's columns
//! (`aqs_tables::supervisors::SUPERVISOR_COLUMNS`), in order, with the norms' targets and
//! attainments worked out from the counts.

use aqs_tables::supervisors::SUPERVISOR_COLUMNS;
use chrono::NaiveDate;
use polars::prelude::*;

use super::SupervisorParams;
use super::rows::{Counts, Detail, Received, Row};
use crate::cells::{Cell, column};
use crate::periods::PeriodKind;

fn counts(row: &Row) -> Option<&Counts> {
    match &row.detail {
        Detail::Supervision(counts) => Some(counts),
        Detail::Agent(_) => None,
    }
}

fn received(row: &Row) -> Option<&Received> {
    match &row.detail {
        Detail::Agent(received) => Some(received),
        Detail::Supervision(_) => None,
    }
}

/// `actual` / `target`; null without a target (or a target of 0).
fn ratio(actual: Option<i64>, target: Option<f64>) -> Option<f64> {
    match (actual, target) {
        (Some(actual), Some(target)) if target > 0.0 => Some(actual as f64 / target),
        _ => None,
    }
}

/// The norms over a row's working days and weeks, times the supervisors it counts (agent
/// rows have none).
struct Targets {
    coaching: Option<f64>,
    accompanied_visits: Option<f64>,
    weekly_meetings: Option<f64>,
    evaluated_share: Option<f64>,
}

fn targets(row: &Row, params: &SupervisorParams) -> Targets {
    let Some(counts) = counts(row) else {
        return Targets {
            coaching: None,
            accompanied_visits: None,
            weekly_meetings: None,
            evaluated_share: None,
        };
    };
    let supervisors = counts.supervisors as f64;
    let working_days = row.period.working_days as f64;
    Targets {
        coaching: Some(params.coachings_per_working_day * working_days * supervisors),
        accompanied_visits: Some(
            params.accompanied_visits_per_week * working_days / 5.0 * supervisors,
        ),
        weekly_meetings: (row.period.kind != PeriodKind::Day)
            .then_some(params.weekly_meetings_per_week * row.period.weeks as f64 * supervisors),
        evaluated_share: (row.period.kind == PeriodKind::Month).then_some(params.evaluated_share),
    }
}

/// The share of the team evaluated: `agents_evaluated` / `team_agents`, null without agents.
fn evaluated_share(counts: &Counts) -> Option<f64> {
    (counts.team_agents > 0).then(|| counts.agents_evaluated as f64 / counts.team_agents as f64)
}

fn cell(row: &Row, column: &str, targets: &Targets, as_of: NaiveDate) -> Cell {
    use Cell::*;
    let c = counts(row);
    let r = received(row);
    let count = |get: fn(&Counts) -> i64| Int(c.map(get));
    // Columns both kinds of row have: the supervisor's own, or what the agent received.
    let either = |supervision: fn(&Counts) -> i64, agent: fn(&Received) -> i64| {
        Int(c.map(supervision).or(r.map(agent)))
    };
    match column {
        "scope" => Text(Some(row.scope.name().to_owned())),
        "scope_id" => Text(Some(row.scope_id.clone())),
        "supervisor_id" => Text(row.supervisor_id.clone()),
        "open_measures" => Text(row.open_measures.clone()),
        "team_ids" => Text(row.team_ids.clone()),
        "branch_id" => Text(row.branch_id.clone()),
        "region_id" => Text(row.region_id.clone()),
        "period" => Text(Some(row.period.kind.name().to_owned())),
        "period_start" => Date(Some(row.period.start)),
        "period_end" => Date(Some(row.period.end)),
        "reference_date" => Date(Some(row.period.reference)),
        "as_of" => Date(Some(as_of)),
        "working_days" => Int(Some(row.period.working_days)),
        "weeks" => Int(Some(row.period.weeks)),
        "supervisors" => count(|c| c.supervisors),
        "coaching_sessions" => either(|c| c.coaching_sessions, |r| r.coaching_sessions),
        "agents_coached" => count(|c| c.agents_coached),
        "coaching_minutes" => either(|c| c.coaching_minutes, |r| r.coaching_minutes),
        "coaching_target" => Float(targets.coaching),
        "coaching_attainment" => Float(ratio(c.map(|c| c.coaching_sessions), targets.coaching)),
        "accompanied_visits" => either(|c| c.accompanied_visits, |r| r.accompanied_visits),
        "accompanied_visits_logged" => either(
            |c| c.accompanied_visits_logged,
            |r| r.accompanied_visits_logged,
        ),
        "agents_accompanied" => count(|c| c.agents_accompanied),
        "accompanied_visits_target" => Float(targets.accompanied_visits),
        "accompanied_visits_attainment" => Float(ratio(
            c.map(|c| c.accompanied_visits),
            targets.accompanied_visits,
        )),
        "morning_meetings" => count(|c| c.meetings[0]),
        "evening_meetings" => count(|c| c.meetings[1]),
        "weekly_meetings" => count(|c| c.meetings[2]),
        "monthly_meetings" => count(|c| c.meetings[3]),
        "weekly_meetings_target" => Float(targets.weekly_meetings),
        "weekly_meetings_attainment" => {
            Float(ratio(c.map(|c| c.meetings[2]), targets.weekly_meetings))
        }
        "team_agents" => count(|c| c.team_agents),
        "agents_evaluated" => count(|c| c.agents_evaluated),
        "evaluated_share" => Float(c.and_then(evaluated_share)),
        "evaluated_share_target" => Float(targets.evaluated_share),
        "evaluation_attainment" => Float(
            match (c.and_then(evaluated_share), targets.evaluated_share) {
                (Some(share), Some(target)) if target > 0.0 => Some(share / target),
                _ => None,
            },
        ),
        "measures_open" => count(|c| c.measures_open),
        "measures_done" => count(|c| c.measures_done),
        "measures_overdue" => count(|c| c.measures_overdue),
        "agents_not_coached" => count(|c| c.agents_not_coached),
        "last_coached_date" => Date(r.and_then(|r| r.last_coached_date)),
        "working_days_since_coached" => Int(r.and_then(|r| r.working_days_since_coached)),
        "not_coached" => Flag(r.and_then(|r| r.not_coached)),
        "evaluation_skill" => Text(r.and_then(|r| r.evaluation_skill.clone())),
        "evaluation_will" => Text(r.and_then(|r| r.evaluation_will.clone())),
        "evaluated_by" => Text(r.and_then(|r| r.evaluated_by.clone())),
        other => unreachable!("no supervisor column {other}"),
    }
}

/// The table of `rows`, the contract's columns in order.
pub(super) fn frame(rows: &[Row], params: &SupervisorParams) -> PolarsResult<DataFrame> {
    let targets: Vec<Targets> = rows.iter().map(|row| targets(row, params)).collect();
    let mut columns = Vec::with_capacity(SUPERVISOR_COLUMNS.len());
    for (name, kind) in SUPERVISOR_COLUMNS {
        let cells = rows
            .iter()
            .zip(&targets)
            .map(|(row, targets)| cell(row, name, targets, params.as_of));
        columns.push(column(name, kind, cells)?);
    }
    DataFrame::new(rows.len(), columns)
}
