//! Row types of the tables created by the migrations.

use chrono::{DateTime, NaiveDate, Utc};
use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// Table of [`EventRow`]s (migration `0001_events.sql`).
pub const EVENTS_TABLE: &str = "events";

/// One accepted event in the raw archive, column for column as `0001_events.sql` declares it.
///
/// Times are stored to the second: `DateTime('UTC')`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct EventRow {
    pub event_id: String,
    pub event_type: String,
    pub schema_version: u16,
    #[serde(with = "clickhouse::serde::chrono::datetime")]
    pub occurred_at: DateTime<Utc>,
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub business_date: NaiveDate,
    /// Empty when the event concerns no agent.
    pub agent_id: String,
    pub source: String,
    /// The event's canonical JSON.
    pub payload: String,
    #[serde(with = "clickhouse::serde::chrono::datetime")]
    pub ingested_at: DateTime<Utc>,
}

impl EventRow {
    /// The column list of the table, in order, for `SELECT` statements.
    pub const COLUMNS: &'static str = "event_id, event_type, schema_version, occurred_at, \
        business_date, agent_id, source, payload, ingested_at";
}
