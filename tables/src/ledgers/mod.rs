//! Row types of the ledger tables (migration `0002_ledgers.sql`), column for column.
//!
//! Every table is a `ReplacingMergeTree(ver)` ordered by the row's key: read with `FINAL`.
//! Live rows are those with non-zero counters (the two activity ledgers) or `deleted = 0`
//! ([`LIVE_ACTIVITY`], [`LIVE`]); the others are tombstones.

use chrono::{DateTime, NaiveDate, Utc};
use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// Filter of the live rows of `ledger_agent_outlet_day` and `ledger_agent_day`: any counter
/// not zero.
pub const LIVE_ACTIVITY: &str = "NOT (visits = 0 AND consultations = 0 AND customers_consulted = 0 \
     AND customers_interested = 0 AND sales = 0 AND premium_fen = 0 AND cancellations = 0 \
     AND refunds_fen = 0)";

/// Filter of the live rows of the tables with a `deleted` column.
pub const LIVE: &str = "deleted = 0";

/// The ledger tables and views of `0002_ledgers.sql` (and `0006_agent_profiles.sql`), each with its key columns (the sort
/// order of canonical reads).
pub const LEDGER_TABLES: &[(&str, &str)] = &[
    (
        AgentOutletDayRow::TABLE,
        "agent_id, outlet_id, business_date",
    ),
    (AgentDayRow::TABLE, "agent_id, business_date"),
    (TeamDayRow::TABLE, "team_id, business_date"),
    (PlanRow::TABLE, "agent_id, period_start, period_end"),
    (TargetRow::TABLE, "scope, scope_id, month"),
    (RosterRow::TABLE, "agent_id, valid_from"),
    (AssignmentRow::TABLE, "agent_id, outlet_id, valid_from"),
    (TeamRow::TABLE, "team_id"),
    (OutletRow::TABLE, "outlet_id"),
    (PendingCancellationRow::TABLE, "agent_id, event_id"),
    (AgentProfileRow::TABLE, "agent_id"),
];

/// Agent × outlet × business date.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct AgentOutletDayRow {
    pub agent_id: String,
    pub outlet_id: String,
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub business_date: NaiveDate,
    pub visits: i64,
    pub consultations: i64,
    pub customers_consulted: i64,
    pub customers_interested: i64,
    pub sales: i64,
    pub premium_fen: i64,
    pub cancellations: i64,
    pub refunds_fen: i64,
    pub ver: u64,
}

impl AgentOutletDayRow {
    pub const TABLE: &'static str = "ledger_agent_outlet_day";
    pub const COLUMNS: &'static str = "agent_id, outlet_id, business_date, visits, consultations, \
        customers_consulted, customers_interested, sales, premium_fen, cancellations, \
        refunds_fen, ver";
}

/// Agent × business date, tagged with the agent's team, branch and region on that date
/// (empty strings: no team that day).
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct AgentDayRow {
    pub agent_id: String,
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub business_date: NaiveDate,
    pub team_id: String,
    pub branch_id: String,
    pub region_id: String,
    pub visits: i64,
    pub consultations: i64,
    pub customers_consulted: i64,
    pub customers_interested: i64,
    pub sales: i64,
    pub premium_fen: i64,
    pub cancellations: i64,
    pub refunds_fen: i64,
    pub ver: u64,
}

impl AgentDayRow {
    pub const TABLE: &'static str = "ledger_agent_day";
    pub const COLUMNS: &'static str = "agent_id, business_date, team_id, branch_id, region_id, \
        visits, consultations, customers_consulted, customers_interested, sales, premium_fen, \
        cancellations, refunds_fen, ver";
}

/// A row of the view `ledger_team_day` (live rows only; no version). Its money sums are
/// `Decimal(38, 0)` fen (migration `0005_wide_money.sql`): a sum of Int64 cells may not fit
/// Int64.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct TeamDayRow {
    pub team_id: String,
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub business_date: NaiveDate,
    pub branch_id: String,
    pub region_id: String,
    pub agents_active: u64,
    pub visits: i64,
    pub consultations: i64,
    pub customers_consulted: i64,
    pub customers_interested: i64,
    pub sales: i64,
    pub premium_fen: i128,
    pub cancellations: i64,
    pub refunds_fen: i128,
}

impl TeamDayRow {
    pub const TABLE: &'static str = "ledger_team_day";
    pub const COLUMNS: &'static str = "team_id, business_date, branch_id, region_id, \
        agents_active, visits, consultations, customers_consulted, customers_interested, sales, \
        premium_fen, cancellations, refunds_fen";
}

/// An agent's plan for a date range; a tombstone has `deleted = 1`, null counts and an
/// empty `event_id`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct PlanRow {
    pub agent_id: String,
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub period_start: NaiveDate,
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub period_end: NaiveDate,
    pub visits: Option<u32>,
    pub consultations: Option<u32>,
    pub sales: Option<u32>,
    pub event_id: String,
    pub deleted: u8,
    pub ver: u64,
}

impl PlanRow {
    pub const TABLE: &'static str = "plans";
    pub const COLUMNS: &'static str =
        "agent_id, period_start, period_end, visits, consultations, sales, event_id, deleted, ver";
}

/// An agent's display name in force (migration `0006_agent_profiles.sql`): `origin` is the
/// event type that gave it (`agent_profile`, or `agent_joined_team` as the fallback); a
/// tombstone has `deleted = 1` and empty texts.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct AgentProfileRow {
    pub agent_id: String,
    pub display_name: String,
    pub origin: String,
    pub event_id: String,
    pub deleted: u8,
    pub ver: u64,
}

impl AgentProfileRow {
    pub const TABLE: &'static str = "agent_profiles";
    pub const COLUMNS: &'static str = "agent_id, display_name, origin, event_id, deleted, ver";
}

/// A scope's target for a month (`month` is the month's first day).
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct TargetRow {
    /// `agent`, `team`, `branch` or `region`.
    pub scope: String,
    pub scope_id: String,
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub month: NaiveDate,
    pub premium_fen: Option<i64>,
    /// Basis points (1/10000).
    pub outlet_activity_rate_bp: Option<i64>,
    pub visits: Option<u32>,
    pub consultations: Option<u32>,
    pub sales: Option<u32>,
    pub event_id: String,
    pub deleted: u8,
    pub ver: u64,
}

impl TargetRow {
    pub const TABLE: &'static str = "targets";
    pub const COLUMNS: &'static str = "scope, scope_id, month, premium_fen, \
        outlet_activity_rate_bp, visits, consultations, sales, event_id, deleted, ver";
}

/// An agent's membership of a team from `valid_from` to the day before `valid_to`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct RosterRow {
    pub agent_id: String,
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub valid_from: NaiveDate,
    pub team_id: String,
    #[serde(with = "clickhouse::serde::chrono::date::option")]
    pub valid_to: Option<NaiveDate>,
    pub deleted: u8,
    pub ver: u64,
}

impl RosterRow {
    pub const TABLE: &'static str = "roster";
    pub const COLUMNS: &'static str = "agent_id, valid_from, team_id, valid_to, deleted, ver";
}

/// An outlet assigned to an agent from `valid_from` to the day before `valid_to`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct AssignmentRow {
    pub agent_id: String,
    pub outlet_id: String,
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub valid_from: NaiveDate,
    #[serde(with = "clickhouse::serde::chrono::date::option")]
    pub valid_to: Option<NaiveDate>,
    pub deleted: u8,
    pub ver: u64,
}

impl AssignmentRow {
    pub const TABLE: &'static str = "assignments";
    pub const COLUMNS: &'static str = "agent_id, outlet_id, valid_from, valid_to, deleted, ver";
}

#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct TeamRow {
    pub team_id: String,
    pub team_name: String,
    pub branch_id: String,
    pub branch_name: Option<String>,
    pub region_id: String,
    pub region_name: Option<String>,
    pub supervisor_id: Option<String>,
    pub ver: u64,
}

impl TeamRow {
    pub const TABLE: &'static str = "teams";
    pub const COLUMNS: &'static str = "team_id, team_name, branch_id, branch_name, region_id, \
        region_name, supervisor_id, ver";
}

#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct OutletRow {
    pub outlet_id: String,
    pub bank: String,
    pub name: String,
    pub region_id: String,
    pub ver: u64,
}

impl OutletRow {
    pub const TABLE: &'static str = "outlets";
    pub const COLUMNS: &'static str = "outlet_id, bank, name, region_id, ver";
}

/// A cancellation waiting for its policy's sale.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct PendingCancellationRow {
    pub agent_id: String,
    pub event_id: String,
    pub policy_id: String,
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub business_date: NaiveDate,
    pub refund_fen: i64,
    pub deleted: u8,
    pub ver: u64,
}

impl PendingCancellationRow {
    pub const TABLE: &'static str = "pending_cancellations";
    pub const COLUMNS: &'static str =
        "agent_id, event_id, policy_id, business_date, refund_fen, deleted, ver";
}

/// A ledger row ClickHouse refused for its content, kept with the error (migration
/// `0004_ledger_dead_letters.sql`).
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct LedgerDeadLetterRow {
    /// The ledger table the row was meant for.
    pub table_name: String,
    /// The row as text, its version included.
    pub row: String,
    pub error: String,
    #[serde(with = "clickhouse::serde::chrono::datetime")]
    pub dead_at: DateTime<Utc>,
}

impl LedgerDeadLetterRow {
    pub const TABLE: &'static str = "ledger_dead_letters";
    pub const COLUMNS: &'static str = "table_name, row, error, dead_at";
}
