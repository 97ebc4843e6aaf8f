//! `supervisor_facts`: the supervisors' facts, one row per event (migration
//! `0012_supervisor_facts.sql` in ClickHouse, [`super::sqlite::SCHEMA`] in the embedded store).

use chrono::NaiveDate;
use clickhouse::Row;
use rusqlite::types::Value;
use serde::{Deserialize, Serialize};

use super::rows::{
    date, get_date, get_optional_date, get_version, int, optional_count, optional_text, text,
    version,
};
use super::{LIVE, LedgerRow};

/// A coaching session, accompanied visit, team meeting, skill-and-will evaluation,
/// improvement measure or review of one, keyed by its identity (`event_id`, `source`).
/// Columns a type has not are empty or null; a retracted fact is a tombstone (`deleted = 1`,
/// its other columns empty). Which version is in force where several compete (an agent's
/// evaluation of a month, a measure's reviews) is the reader's choice, by `occurred_at_ns`,
/// then `event_id`, then `source`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct SupervisorFactRow {
    pub event_id: String,
    pub source: String,
    /// `coaching_session`, `accompanied_visit`, `team_meeting`, `skill_will_evaluation`,
    /// `improvement_measure` or `improvement_measure_status`.
    pub event_type: String,
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub business_date: NaiveDate,
    pub occurred_at_ns: i64,
    /// Who coached, accompanied or evaluated; a measure's owner; empty otherwise.
    pub supervisor_id: String,
    pub agent_id: String,
    /// A meeting's team.
    pub team_id: String,
    pub outlet_id: String,
    /// An accompanied visit's `visit_event_id`; a review's `measure_event_id`.
    pub linked_event_id: String,
    /// A coaching topic, a meeting kind or a review's status.
    pub kind: String,
    /// A measure's scope and scope id.
    pub scope: String,
    pub scope_id: String,
    /// First day of an evaluation's or a measure's month.
    #[serde(with = "clickhouse::serde::chrono::date::option")]
    pub month: Option<NaiveDate>,
    #[serde(with = "clickhouse::serde::chrono::date::option")]
    pub due_date: Option<NaiveDate>,
    pub duration_minutes: Option<u32>,
    pub attendees: Option<u32>,
    pub skill: Option<String>,
    pub will: Option<String>,
    /// A note, or a measure's text.
    pub text: Option<String>,
    pub deleted: u8,
    pub ver: u64,
}

impl SupervisorFactRow {
    /// The tombstone of a retracted fact.
    pub fn tombstone(event_id: String, source: String, ver: u64) -> Self {
        Self {
            event_id,
            source,
            event_type: String::new(),
            business_date: crate::ledgers::TEAM_DEFINED_FROM_THE_BEGINNING,
            occurred_at_ns: 0,
            supervisor_id: String::new(),
            agent_id: String::new(),
            team_id: String::new(),
            outlet_id: String::new(),
            linked_event_id: String::new(),
            kind: String::new(),
            scope: String::new(),
            scope_id: String::new(),
            month: None,
            due_date: None,
            duration_minutes: None,
            attendees: None,
            skill: None,
            will: None,
            text: None,
            deleted: 1,
            ver,
        }
    }
}

impl LedgerRow for SupervisorFactRow {
    const TABLE: &'static str = "supervisor_facts";
    const KEY: &'static str = "event_id, source";
    const COLUMNS: &'static str = "event_id, source, event_type, business_date, occurred_at_ns, \
        supervisor_id, agent_id, team_id, outlet_id, linked_event_id, kind, scope, scope_id, \
        month, due_date, duration_minutes, attendees, skill, will, text, deleted, ver";
    const LIVE: &'static str = LIVE;

    fn values(&self) -> Vec<Value> {
        let optional_date = |value: Option<NaiveDate>| value.map_or(Value::Null, date);
        vec![
            text(&self.event_id),
            text(&self.source),
            text(&self.event_type),
            date(self.business_date),
            int(self.occurred_at_ns),
            text(&self.supervisor_id),
            text(&self.agent_id),
            text(&self.team_id),
            text(&self.outlet_id),
            text(&self.linked_event_id),
            text(&self.kind),
            text(&self.scope),
            text(&self.scope_id),
            optional_date(self.month),
            optional_date(self.due_date),
            optional_count(self.duration_minutes),
            optional_count(self.attendees),
            optional_text(self.skill.as_deref()),
            optional_text(self.will.as_deref()),
            optional_text(self.text.as_deref()),
            Value::Integer(self.deleted.into()),
            version(self.ver),
        ]
    }

    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            event_id: r.get(0)?,
            source: r.get(1)?,
            event_type: r.get(2)?,
            business_date: get_date(r, 3)?,
            occurred_at_ns: r.get(4)?,
            supervisor_id: r.get(5)?,
            agent_id: r.get(6)?,
            team_id: r.get(7)?,
            outlet_id: r.get(8)?,
            linked_event_id: r.get(9)?,
            kind: r.get(10)?,
            scope: r.get(11)?,
            scope_id: r.get(12)?,
            month: get_optional_date(r, 13)?,
            due_date: get_optional_date(r, 14)?,
            duration_minutes: r.get(15)?,
            attendees: r.get(16)?,
            skill: r.get(17)?,
            will: r.get(18)?,
            text: r.get(19)?,
            deleted: r.get(20)?,
            ver: get_version(r, 21)?,
        })
    }
}
