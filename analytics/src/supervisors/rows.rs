//! The rows of the supervisor table: per period, one row per supervisor (their coaching,
//! accompanied visits, meetings, evaluations, measures and agents not coached, beside the
//! norms), their sums per branch and region, and per month one row per agent with what the
//! agent received.

use std::collections::{BTreeMap, BTreeSet};

use aqs_schemas::{WorkingCalendar, YearMonth};
use aqs_tables::ledgers::SupervisorFactRow;
use aqs_tables::supervisors::source::SupervisorLedgerData;
use chrono::NaiveDate;

use super::SupervisorParams;
use super::facts::{ACCOMPANIED, COACHING, Facts, MEASURE, MEETING};
use crate::periods::PeriodKind;

/// What a row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum RowKind {
    Agent,
    Branch,
    Region,
    Supervisor,
}

impl RowKind {
    pub(super) const fn name(self) -> &'static str {
        match self {
            RowKind::Agent => "agent",
            RowKind::Branch => "branch",
            RowKind::Region => "region",
            RowKind::Supervisor => "supervisor",
        }
    }
}

/// A period of a row and the days it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Period {
    pub kind: PeriodKind,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// The period's last day, or the as-of date while it is open.
    pub reference: NaiveDate,
    pub working_days: i64,
    /// ISO weeks with a working day in `start..=reference`.
    pub weeks: i64,
}

/// The counts a supervisor row adds up (branch and region rows: sums of them).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Counts {
    /// Supervisors counted: 1 on a supervisor row, those summed on branch and region rows.
    pub supervisors: i64,
    pub coaching_sessions: i64,
    pub agents_coached: i64,
    pub coaching_minutes: i64,
    pub accompanied_visits: i64,
    pub accompanied_visits_logged: i64,
    pub agents_accompanied: i64,
    /// Morning, evening, weekly, monthly.
    pub meetings: [i64; 4],
    pub team_agents: i64,
    pub agents_evaluated: i64,
    pub measures_open: i64,
    pub measures_done: i64,
    pub measures_overdue: i64,
    pub agents_not_coached: i64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.supervisors += other.supervisors;
        self.coaching_sessions += other.coaching_sessions;
        self.agents_coached += other.agents_coached;
        self.coaching_minutes += other.coaching_minutes;
        self.accompanied_visits += other.accompanied_visits;
        self.accompanied_visits_logged += other.accompanied_visits_logged;
        self.agents_accompanied += other.agents_accompanied;
        for (total, count) in self.meetings.iter_mut().zip(other.meetings) {
            *total += count;
        }
        self.team_agents += other.team_agents;
        self.agents_evaluated += other.agents_evaluated;
        self.measures_open += other.measures_open;
        self.measures_done += other.measures_done;
        self.measures_overdue += other.measures_overdue;
        self.agents_not_coached += other.agents_not_coached;
    }
}

/// What an agent received in a month.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Received {
    pub coaching_sessions: i64,
    pub coaching_minutes: i64,
    pub accompanied_visits: i64,
    pub accompanied_visits_logged: i64,
    pub last_coached_date: Option<NaiveDate>,
    pub working_days_since_coached: Option<i64>,
    /// On a roster on the reference day and not coached for N working days (never coached:
    /// since joining the team).
    pub not_coached: Option<bool>,
    pub evaluation_skill: Option<String>,
    pub evaluation_will: Option<String>,
    pub evaluated_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Detail {
    /// Supervisor, branch and region rows.
    Supervision(Counts),
    Agent(Received),
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Row {
    pub scope: RowKind,
    pub scope_id: String,
    /// Supervisor rows: the supervisor; agent rows: the supervisor of the agent's team.
    pub supervisor_id: Option<String>,
    /// Supervisor rows: the teams led; agent rows: the agent's team.
    pub team_ids: Option<String>,
    pub branch_id: Option<String>,
    pub region_id: Option<String>,
    pub period: Period,
    pub detail: Detail,
    /// Supervisor rows: the improvement measures still open on the period's reference day,
    /// as a JSON list (measure, scope, scope id, month, due date, latest status, overdue),
    /// by due date; none when there are none.
    pub open_measures: Option<String>,
}

/// The periods of `kind` touching `since..=as_of`.
fn periods(kind: PeriodKind, params: &SupervisorParams, calendar: &WorkingCalendar) -> Vec<Period> {
    let mut periods = Vec::new();
    let mut start = kind.start_of(params.since);
    while start <= params.as_of {
        let end = kind.end_of(start);
        let reference = end.min(params.as_of);
        let working: Vec<NaiveDate> = start
            .iter_days()
            .take_while(|day| *day <= reference)
            .filter(|day| calendar.is_working_day(*day))
            .collect();
        let weeks: BTreeSet<NaiveDate> = working
            .iter()
            .map(|day| PeriodKind::Week.start_of(*day))
            .collect();
        periods.push(Period {
            kind,
            start,
            end,
            reference,
            working_days: working.len() as i64,
            weeks: weeks.len() as i64,
        });
        start = end.succ_opt().expect("a next day");
    }
    periods
}

/// The whole table: supervisor rows, their branch and region sums, and the agents' months.
pub(super) fn supervisor_table(data: &SupervisorLedgerData, params: &SupervisorParams) -> Vec<Row> {
    let facts = Facts::new(data);
    let supervisors = facts.supervisors();
    let mut rows = Vec::new();
    for kind in PeriodKind::ALL {
        for period in periods(kind, params, &data.calendar) {
            let supervisor_rows: Vec<Row> = supervisors
                .iter()
                .filter_map(|s| supervisor_row(&facts, s, period, params, &data.calendar))
                .collect();
            rows.extend(rollups(&supervisor_rows, RowKind::Branch, period));
            rows.extend(rollups(&supervisor_rows, RowKind::Region, period));
            rows.extend(supervisor_rows);
            if kind == PeriodKind::Month {
                rows.extend(agent_rows(&facts, period, params, &data.calendar));
            }
        }
    }
    rows.sort_by(|a, b| {
        (
            a.scope.name(),
            &a.scope_id,
            a.period.kind.name(),
            a.period.start,
        )
            .cmp(&(
                b.scope.name(),
                &b.scope_id,
                b.period.kind.name(),
                b.period.start,
            ))
    });
    rows
}

/// The working days after `last` through `reference` (none when `last` is `reference`).
fn working_days_after(calendar: &WorkingCalendar, last: NaiveDate, reference: NaiveDate) -> i64 {
    last.succ_opt()
        .map_or(0, |next| calendar.working_days_between(next, reference)) as i64
}

/// The working days an agent on the roster has waited for coaching on `reference`: after
/// their last session by anyone, or, never coached, since joining the team.
fn waited_for_coaching(
    facts: &Facts<'_>,
    membership: &aqs_tables::ledgers::RosterRow,
    reference: NaiveDate,
    calendar: &WorkingCalendar,
) -> i64 {
    match facts.last_coached(&membership.agent_id, reference) {
        Some(last) => working_days_after(calendar, last, reference),
        None => i64::from(calendar.working_days_between(membership.valid_from, reference)),
    }
}

/// The day a supervisor row of `period` is labelled by: the reference day when the
/// supervisor leads a team on it, else the last day of the period on which they led one.
fn label_day(facts: &Facts<'_>, supervisor: &str, period: Period) -> Option<NaiveDate> {
    period
        .start
        .iter_days()
        .take_while(|day| *day <= period.reference)
        .filter(|day| !facts.teams_led(supervisor, *day).is_empty())
        .last()
}

fn supervisor_row(
    facts: &Facts<'_>,
    supervisor: &str,
    period: Period,
    params: &SupervisorParams,
    calendar: &WorkingCalendar,
) -> Option<Row> {
    let (first, reference) = (period.start, period.reference);
    let mut counts = Counts {
        supervisors: 1,
        ..Counts::default()
    };
    let mut coached = BTreeSet::new();
    for session in facts.dated_of(COACHING, supervisor, first, reference) {
        counts.coaching_sessions += 1;
        counts.coaching_minutes += i64::from(session.duration_minutes.unwrap_or(0));
        coached.insert(session.agent_id.as_str());
    }
    counts.agents_coached = coached.len() as i64;
    let mut accompanied = BTreeSet::new();
    for visit in facts.dated_of(ACCOMPANIED, supervisor, first, reference) {
        counts.accompanied_visits += 1;
        counts.accompanied_visits_logged += i64::from(!visit.linked_event_id.is_empty());
        accompanied.insert(visit.agent_id.as_str());
    }
    counts.agents_accompanied = accompanied.len() as i64;
    for meeting in facts.dated_of(MEETING, supervisor, first, reference) {
        let kind = ["morning", "evening", "weekly", "monthly"]
            .iter()
            .position(|k| *k == meeting.kind);
        if let Some(kind) = kind {
            counts.meetings[kind] += 1;
        }
    }
    let led = facts.teams_led(supervisor, reference);
    let month = YearMonth::of(reference).first_day();
    for agent in facts.agents_of(&led, reference) {
        counts.team_agents += 1;
        let evaluated = facts
            .evaluation(&agent.agent_id, month)
            .is_some_and(|e| e.supervisor_id == supervisor);
        counts.agents_evaluated += i64::from(evaluated);
        let waited = waited_for_coaching(facts, agent, reference, calendar);
        counts.agents_not_coached +=
            i64::from(waited >= i64::from(params.not_coached_working_days));
    }
    let mut open_measures = Vec::new();
    for measure in facts.all_of(MEASURE, supervisor) {
        if measure.month.is_none_or(|m| m > month) {
            continue;
        }
        let status = facts.status_on(measure, reference);
        if status == Some("done") {
            counts.measures_done += 1;
        } else {
            let overdue = measure.due_date.is_some_and(|d| d < reference);
            counts.measures_open += 1;
            counts.measures_overdue += i64::from(overdue);
            open_measures.push(open_measure(measure, status, overdue));
        }
    }
    open_measures.sort_by(|a, b| a["due_date"].as_str().cmp(&b["due_date"].as_str()));
    let any_fact =
        counts.coaching_sessions + counts.accompanied_visits + counts.meetings.iter().sum::<i64>()
            > 0;
    let leads_on_it =
        !led.is_empty() && (period.kind != PeriodKind::Day || calendar.is_working_day(reference));
    if !any_fact && !leads_on_it {
        return None;
    }
    let label = label_day(facts, supervisor, period);
    let label_teams = label.map(|day| facts.teams_led(supervisor, day));
    let parent = label
        .zip(label_teams.as_ref().and_then(|t| t.first()))
        .and_then(|(day, team)| facts.team_on(team, day));
    Some(Row {
        scope: RowKind::Supervisor,
        scope_id: supervisor.to_owned(),
        supervisor_id: Some(supervisor.to_owned()),
        team_ids: label_teams.map(|teams| teams.join(",")),
        branch_id: parent.map(|t| t.branch_id.clone()),
        region_id: parent.map(|t| t.region_id.clone()),
        period,
        detail: Detail::Supervision(counts),
        open_measures: (!open_measures.is_empty())
            .then(|| serde_json::Value::Array(open_measures).to_string()),
    })
}

/// An open measure as the supervisor page lists it.
fn open_measure(
    measure: &SupervisorFactRow,
    status: Option<&str>,
    overdue: bool,
) -> serde_json::Value {
    let date = |d: Option<NaiveDate>| d.map(|d| d.to_string());
    serde_json::json!({
        "event_id": measure.event_id,
        "measure": measure.text,
        "scope": measure.scope,
        "scope_id": measure.scope_id,
        "month": date(measure.month),
        "due_date": date(measure.due_date),
        "status": status.unwrap_or("open"),
        "overdue": overdue,
    })
}

/// The sums of the supervisor rows per branch (or region) they report under.
fn rollups(supervisor_rows: &[Row], scope: RowKind, period: Period) -> Vec<Row> {
    let mut sums: BTreeMap<(String, Option<String>), Counts> = BTreeMap::new();
    for row in supervisor_rows {
        let Detail::Supervision(counts) = &row.detail else {
            continue;
        };
        let key = match scope {
            RowKind::Branch => row.branch_id.clone().map(|b| (b, row.region_id.clone())),
            _ => row.region_id.clone().map(|r| (r, None)),
        };
        if let Some(key) = key {
            sums.entry(key).or_default().add(counts);
        }
    }
    sums.into_iter()
        .map(|((id, region), counts)| Row {
            scope,
            branch_id: (scope == RowKind::Branch).then(|| id.clone()),
            region_id: if scope == RowKind::Branch {
                region
            } else {
                Some(id.clone())
            },
            scope_id: id,
            supervisor_id: None,
            team_ids: None,
            period,
            detail: Detail::Supervision(counts),
            open_measures: None,
        })
        .collect()
}

/// The month's row of every agent on a roster on its reference day or coached or
/// accompanied in it.
fn agent_rows(
    facts: &Facts<'_>,
    period: Period,
    params: &SupervisorParams,
    calendar: &WorkingCalendar,
) -> Vec<Row> {
    let (first, reference) = (period.start, period.reference);
    let mut received: BTreeMap<&str, Received> = facts
        .agents_on(reference)
        .into_iter()
        .map(|agent| (agent, Received::default()))
        .collect();
    for session in facts.dated(COACHING, first, reference) {
        let row = received.entry(&session.agent_id).or_default();
        row.coaching_sessions += 1;
        row.coaching_minutes += i64::from(session.duration_minutes.unwrap_or(0));
    }
    for visit in facts.dated(ACCOMPANIED, first, reference) {
        let row = received.entry(&visit.agent_id).or_default();
        row.accompanied_visits += 1;
        row.accompanied_visits_logged += i64::from(!visit.linked_event_id.is_empty());
    }
    let month = YearMonth::of(reference).first_day();
    received
        .into_iter()
        .map(|(agent, mut row)| {
            row.last_coached_date = facts.last_coached(agent, reference);
            row.working_days_since_coached = row
                .last_coached_date
                .map(|last| working_days_after(calendar, last, reference));
            row.not_coached = facts.membership(agent, reference).map(|held| {
                waited_for_coaching(facts, held, reference, calendar)
                    >= i64::from(params.not_coached_working_days)
            });
            if let Some(evaluation) = facts.evaluation(agent, month) {
                row.evaluation_skill = evaluation.skill.clone();
                row.evaluation_will = evaluation.will.clone();
                row.evaluated_by = Some(evaluation.supervisor_id.clone());
            }
            // The agent's team on the reference day, else on the last day of the month on
            // which they had one.
            let membership = first
                .iter_days()
                .take_while(|day| *day <= reference)
                .filter_map(|day| facts.membership(agent, day).map(|m| (day, m)))
                .last();
            let team = membership.map(|(day, m)| (day, m.team_id.as_str()));
            let definition = team.and_then(|(day, team)| facts.team_on(team, day));
            Row {
                scope: RowKind::Agent,
                scope_id: agent.to_owned(),
                supervisor_id: definition.and_then(|t| t.supervisor_id.clone()),
                team_ids: team.map(|(_, team)| team.to_owned()),
                branch_id: definition.map(|t| t.branch_id.clone()),
                region_id: definition.map(|t| t.region_id.clone()),
                period,
                detail: Detail::Agent(row),
                open_measures: None,
            }
        })
        .collect()
}
