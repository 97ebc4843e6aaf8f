//! The row types of the ledger tables and their SQLite form. Each table's columns are listed
//! once, here, in order: the writer, the readers and the dump of both engines go through
//! these.

use chrono::{DateTime, NaiveDate, Utc};
use clickhouse::Row;
use rusqlite::types::Value;
use serde::{Deserialize, Serialize};

use super::{ActivityCounters, EVERY_ROW, LIVE, LIVE_ACTIVITY, LedgerRow};

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

/// A date of the working-day calendar as its declarations decide it (migration
/// `0009_calendar_days.sql`): `kind` is `holiday` or `working_day`, `name` the day's name
/// when the deciding declaration gives one, `event_id` that declaration. A date whose every
/// declaration was retracted is a tombstone (`deleted = 1`, empty kind): it follows the
/// weekday rule again.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct CalendarDayRow {
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub business_date: NaiveDate,
    pub kind: String,
    pub name: Option<String>,
    pub event_id: String,
    pub deleted: u8,
    pub ver: u64,
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

#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
/// A team's definition in force from `effective_from` (the date a later definition takes
/// over ends it): one row per team and effective date. A definition without an effective
/// date holds from the beginning, written as [`TEAM_DEFINED_FROM_THE_BEGINNING`].
pub struct TeamRow {
    pub team_id: String,
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub effective_from: NaiveDate,
    pub team_name: String,
    pub branch_id: String,
    pub branch_name: Option<String>,
    pub region_id: String,
    pub region_name: Option<String>,
    pub supervisor_id: Option<String>,
    pub deleted: u8,
    pub ver: u64,
}

/// The effective date of a team definition that holds from the beginning: the first date
/// both engines store, before every business date of the contract (2000 to 2099).
pub const TEAM_DEFINED_FROM_THE_BEGINNING: NaiveDate =
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a date");

#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct OutletRow {
    pub outlet_id: String,
    pub bank: String,
    pub name: String,
    pub region_id: String,
    pub ver: u64,
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

impl AgentOutletDayRow {
    pub fn new(
        agent_id: String,
        outlet_id: String,
        business_date: NaiveDate,
        counters: ActivityCounters,
        ver: u64,
    ) -> Self {
        let ActivityCounters {
            visits,
            consultations,
            customers_consulted,
            customers_interested,
            sales,
            premium_fen,
            cancellations,
            refunds_fen,
        } = counters;
        Self {
            agent_id,
            outlet_id,
            business_date,
            visits,
            consultations,
            customers_consulted,
            customers_interested,
            sales,
            premium_fen,
            cancellations,
            refunds_fen,
            ver,
        }
    }
}

impl AgentDayRow {
    pub fn new(
        agent_id: String,
        business_date: NaiveDate,
        [team_id, branch_id, region_id]: [String; 3],
        counters: ActivityCounters,
        ver: u64,
    ) -> Self {
        let ActivityCounters {
            visits,
            consultations,
            customers_consulted,
            customers_interested,
            sales,
            premium_fen,
            cancellations,
            refunds_fen,
        } = counters;
        Self {
            agent_id,
            business_date,
            team_id,
            branch_id,
            region_id,
            visits,
            consultations,
            customers_consulted,
            customers_interested,
            sales,
            premium_fen,
            cancellations,
            refunds_fen,
            ver,
        }
    }
}

impl LedgerRow for AgentOutletDayRow {
    const TABLE: &'static str = "ledger_agent_outlet_day";
    const KEY: &'static str = "agent_id, outlet_id, business_date";
    const COLUMNS: &'static str = "agent_id, outlet_id, business_date, visits, consultations, \
        customers_consulted, customers_interested, sales, premium_fen, cancellations, \
        refunds_fen, ver";
    const LIVE: &'static str = LIVE_ACTIVITY;

    fn values(&self) -> Vec<Value> {
        vec![
            text(&self.agent_id),
            text(&self.outlet_id),
            date(self.business_date),
            int(self.visits),
            int(self.consultations),
            int(self.customers_consulted),
            int(self.customers_interested),
            int(self.sales),
            int(self.premium_fen),
            int(self.cancellations),
            int(self.refunds_fen),
            version(self.ver),
        ]
    }

    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            agent_id: r.get(0)?,
            outlet_id: r.get(1)?,
            business_date: get_date(r, 2)?,
            visits: r.get(3)?,
            consultations: r.get(4)?,
            customers_consulted: r.get(5)?,
            customers_interested: r.get(6)?,
            sales: r.get(7)?,
            premium_fen: r.get(8)?,
            cancellations: r.get(9)?,
            refunds_fen: r.get(10)?,
            ver: get_version(r, 11)?,
        })
    }
}

impl LedgerRow for AgentDayRow {
    const TABLE: &'static str = "ledger_agent_day";
    const KEY: &'static str = "agent_id, business_date";
    const COLUMNS: &'static str = "agent_id, business_date, team_id, branch_id, region_id, \
        visits, consultations, customers_consulted, customers_interested, sales, premium_fen, \
        cancellations, refunds_fen, ver";
    const LIVE: &'static str = LIVE_ACTIVITY;

    fn values(&self) -> Vec<Value> {
        vec![
            text(&self.agent_id),
            date(self.business_date),
            text(&self.team_id),
            text(&self.branch_id),
            text(&self.region_id),
            int(self.visits),
            int(self.consultations),
            int(self.customers_consulted),
            int(self.customers_interested),
            int(self.sales),
            int(self.premium_fen),
            int(self.cancellations),
            int(self.refunds_fen),
            version(self.ver),
        ]
    }

    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            agent_id: r.get(0)?,
            business_date: get_date(r, 1)?,
            team_id: r.get(2)?,
            branch_id: r.get(3)?,
            region_id: r.get(4)?,
            visits: r.get(5)?,
            consultations: r.get(6)?,
            customers_consulted: r.get(7)?,
            customers_interested: r.get(8)?,
            sales: r.get(9)?,
            premium_fen: r.get(10)?,
            cancellations: r.get(11)?,
            refunds_fen: r.get(12)?,
            ver: get_version(r, 13)?,
        })
    }
}

impl LedgerRow for TeamDayRow {
    const TABLE: &'static str = "ledger_team_day";
    const KEY: &'static str = "team_id, business_date";
    const COLUMNS: &'static str = "team_id, business_date, branch_id, region_id, \
        agents_active, visits, consultations, customers_consulted, customers_interested, sales, \
        premium_fen, cancellations, refunds_fen";
    const LIVE: &'static str = EVERY_ROW;
    const VIEW: bool = true;

    fn values(&self) -> Vec<Value> {
        vec![
            text(&self.team_id),
            date(self.business_date),
            text(&self.branch_id),
            text(&self.region_id),
            Value::Integer(self.agents_active as i64),
            int(self.visits),
            int(self.consultations),
            int(self.customers_consulted),
            int(self.customers_interested),
            int(self.sales),
            wide_int(self.premium_fen),
            int(self.cancellations),
            wide_int(self.refunds_fen),
        ]
    }

    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            team_id: r.get(0)?,
            business_date: get_date(r, 1)?,
            branch_id: r.get(2)?,
            region_id: r.get(3)?,
            agents_active: r.get::<_, i64>(4)? as u64,
            visits: r.get(5)?,
            consultations: r.get(6)?,
            customers_consulted: r.get(7)?,
            customers_interested: r.get(8)?,
            sales: r.get(9)?,
            premium_fen: i128::from(r.get::<_, i64>(10)?),
            cancellations: r.get(11)?,
            refunds_fen: i128::from(r.get::<_, i64>(12)?),
        })
    }
}

impl LedgerRow for PlanRow {
    const TABLE: &'static str = "plans";
    const KEY: &'static str = "agent_id, period_start, period_end";
    const COLUMNS: &'static str =
        "agent_id, period_start, period_end, visits, consultations, sales, event_id, deleted, ver";
    const LIVE: &'static str = LIVE;

    fn values(&self) -> Vec<Value> {
        vec![
            text(&self.agent_id),
            date(self.period_start),
            date(self.period_end),
            optional_count(self.visits),
            optional_count(self.consultations),
            optional_count(self.sales),
            text(&self.event_id),
            Value::Integer(self.deleted.into()),
            version(self.ver),
        ]
    }

    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            agent_id: r.get(0)?,
            period_start: get_date(r, 1)?,
            period_end: get_date(r, 2)?,
            visits: r.get(3)?,
            consultations: r.get(4)?,
            sales: r.get(5)?,
            event_id: r.get(6)?,
            deleted: r.get(7)?,
            ver: get_version(r, 8)?,
        })
    }
}

impl LedgerRow for TargetRow {
    const TABLE: &'static str = "targets";
    const KEY: &'static str = "scope, scope_id, month";
    const COLUMNS: &'static str = "scope, scope_id, month, premium_fen, \
        outlet_activity_rate_bp, visits, consultations, sales, event_id, deleted, ver";
    const LIVE: &'static str = LIVE;

    fn values(&self) -> Vec<Value> {
        vec![
            text(&self.scope),
            text(&self.scope_id),
            month(self.month),
            self.premium_fen.map_or(Value::Null, int),
            self.outlet_activity_rate_bp.map_or(Value::Null, int),
            optional_count(self.visits),
            optional_count(self.consultations),
            optional_count(self.sales),
            text(&self.event_id),
            Value::Integer(self.deleted.into()),
            version(self.ver),
        ]
    }

    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            scope: r.get(0)?,
            scope_id: r.get(1)?,
            month: get_month(r, 2)?,
            premium_fen: r.get(3)?,
            outlet_activity_rate_bp: r.get(4)?,
            visits: r.get(5)?,
            consultations: r.get(6)?,
            sales: r.get(7)?,
            event_id: r.get(8)?,
            deleted: r.get(9)?,
            ver: get_version(r, 10)?,
        })
    }
}

impl LedgerRow for RosterRow {
    const TABLE: &'static str = "roster";
    const KEY: &'static str = "agent_id, valid_from";
    const COLUMNS: &'static str = "agent_id, valid_from, team_id, valid_to, deleted, ver";
    const LIVE: &'static str = LIVE;

    fn values(&self) -> Vec<Value> {
        vec![
            text(&self.agent_id),
            date(self.valid_from),
            text(&self.team_id),
            self.valid_to.map_or(Value::Null, date),
            Value::Integer(self.deleted.into()),
            version(self.ver),
        ]
    }

    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            agent_id: r.get(0)?,
            valid_from: get_date(r, 1)?,
            team_id: r.get(2)?,
            valid_to: get_optional_date(r, 3)?,
            deleted: r.get(4)?,
            ver: get_version(r, 5)?,
        })
    }
}

impl LedgerRow for AssignmentRow {
    const TABLE: &'static str = "assignments";
    const KEY: &'static str = "agent_id, outlet_id, valid_from";
    const COLUMNS: &'static str = "agent_id, outlet_id, valid_from, valid_to, deleted, ver";
    const LIVE: &'static str = LIVE;

    fn values(&self) -> Vec<Value> {
        vec![
            text(&self.agent_id),
            text(&self.outlet_id),
            date(self.valid_from),
            self.valid_to.map_or(Value::Null, date),
            Value::Integer(self.deleted.into()),
            version(self.ver),
        ]
    }

    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            agent_id: r.get(0)?,
            outlet_id: r.get(1)?,
            valid_from: get_date(r, 2)?,
            valid_to: get_optional_date(r, 3)?,
            deleted: r.get(4)?,
            ver: get_version(r, 5)?,
        })
    }
}

impl LedgerRow for TeamRow {
    const TABLE: &'static str = "teams";
    const KEY: &'static str = "team_id, effective_from";
    const COLUMNS: &'static str = "team_id, effective_from, team_name, branch_id, branch_name, \
        region_id, region_name, supervisor_id, deleted, ver";
    const LIVE: &'static str = LIVE;

    fn values(&self) -> Vec<Value> {
        vec![
            text(&self.team_id),
            date(self.effective_from),
            text(&self.team_name),
            text(&self.branch_id),
            optional_text(self.branch_name.as_deref()),
            text(&self.region_id),
            optional_text(self.region_name.as_deref()),
            optional_text(self.supervisor_id.as_deref()),
            Value::Integer(self.deleted.into()),
            version(self.ver),
        ]
    }

    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            team_id: r.get(0)?,
            effective_from: get_date(r, 1)?,
            team_name: r.get(2)?,
            branch_id: r.get(3)?,
            branch_name: r.get(4)?,
            region_id: r.get(5)?,
            region_name: r.get(6)?,
            supervisor_id: r.get(7)?,
            deleted: r.get(8)?,
            ver: get_version(r, 9)?,
        })
    }
}

impl LedgerRow for OutletRow {
    const TABLE: &'static str = "outlets";
    const KEY: &'static str = "outlet_id";
    const COLUMNS: &'static str = "outlet_id, bank, name, region_id, ver";
    const LIVE: &'static str = EVERY_ROW;

    fn values(&self) -> Vec<Value> {
        vec![
            text(&self.outlet_id),
            text(&self.bank),
            text(&self.name),
            text(&self.region_id),
            version(self.ver),
        ]
    }

    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            outlet_id: r.get(0)?,
            bank: r.get(1)?,
            name: r.get(2)?,
            region_id: r.get(3)?,
            ver: get_version(r, 4)?,
        })
    }
}

impl LedgerRow for PendingCancellationRow {
    const TABLE: &'static str = "pending_cancellations";
    const KEY: &'static str = "agent_id, event_id";
    const COLUMNS: &'static str =
        "agent_id, event_id, policy_id, business_date, refund_fen, deleted, ver";
    const LIVE: &'static str = LIVE;

    fn values(&self) -> Vec<Value> {
        vec![
            text(&self.agent_id),
            text(&self.event_id),
            text(&self.policy_id),
            date(self.business_date),
            int(self.refund_fen),
            Value::Integer(self.deleted.into()),
            version(self.ver),
        ]
    }

    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            agent_id: r.get(0)?,
            event_id: r.get(1)?,
            policy_id: r.get(2)?,
            business_date: get_date(r, 3)?,
            refund_fen: r.get(4)?,
            deleted: r.get(5)?,
            ver: get_version(r, 6)?,
        })
    }
}

impl LedgerRow for AgentProfileRow {
    const TABLE: &'static str = "agent_profiles";
    const KEY: &'static str = "agent_id";
    const COLUMNS: &'static str = "agent_id, display_name, origin, event_id, deleted, ver";
    const LIVE: &'static str = LIVE;

    fn values(&self) -> Vec<Value> {
        vec![
            text(&self.agent_id),
            text(&self.display_name),
            text(&self.origin),
            text(&self.event_id),
            Value::Integer(self.deleted.into()),
            version(self.ver),
        ]
    }

    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            agent_id: r.get(0)?,
            display_name: r.get(1)?,
            origin: r.get(2)?,
            event_id: r.get(3)?,
            deleted: r.get(4)?,
            ver: get_version(r, 5)?,
        })
    }
}

impl LedgerRow for CalendarDayRow {
    const TABLE: &'static str = "calendar_days";
    const KEY: &'static str = "business_date";
    const COLUMNS: &'static str = "business_date, kind, name, event_id, deleted, ver";
    const LIVE: &'static str = LIVE;

    fn values(&self) -> Vec<Value> {
        vec![
            date(self.business_date),
            text(&self.kind),
            optional_text(self.name.as_deref()),
            text(&self.event_id),
            Value::Integer(self.deleted.into()),
            version(self.ver),
        ]
    }

    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            business_date: get_date(r, 0)?,
            kind: r.get(1)?,
            name: r.get(2)?,
            event_id: r.get(3)?,
            deleted: r.get(4)?,
            ver: get_version(r, 5)?,
        })
    }
}

// Values as the embedded store holds them.

pub(super) fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

pub(super) fn optional_text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, text)
}

pub(super) fn int(value: i64) -> Value {
    Value::Integer(value)
}

pub(super) fn optional_count(value: Option<u32>) -> Value {
    value.map_or(Value::Null, |count| Value::Integer(count.into()))
}

/// A sum of fen: an integer while it fits 64 bits (beyond, SQLite's own sum fails; in
/// ClickHouse's view it is exact and shown as its digits).
fn wide_int(value: i128) -> Value {
    i64::try_from(value).map_or_else(|_| Value::Text(value.to_string()), Value::Integer)
}

/// Versions are positions: never beyond `i64`.
pub(super) fn version(value: u64) -> Value {
    Value::Integer(value as i64)
}

pub(super) fn date(value: NaiveDate) -> Value {
    Value::Text(value.to_string())
}

/// A target's month: the month's first day in ClickHouse, `YYYY-MM` in the embedded store.
fn month(first_day: NaiveDate) -> Value {
    Value::Text(first_day.format("%Y-%m").to_string())
}

fn conversion_error(
    index: usize,
    error: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(error))
}

pub(super) fn get_date(r: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<NaiveDate> {
    let text = r.get_ref(index)?.as_str()?;
    text.parse().map_err(|e| conversion_error(index, e))
}

pub(super) fn get_optional_date(
    r: &rusqlite::Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<NaiveDate>> {
    match r.get_ref(index)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => get_date(r, index).map(Some),
    }
}

fn get_month(r: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<NaiveDate> {
    let text = r.get_ref(index)?.as_str()?;
    text.parse::<aqs_schemas::YearMonth>()
        .map(|month| month.first_day())
        .map_err(|_| conversion_error(index, MalformedMonth(text.to_owned())))
}

pub(super) fn get_version(r: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<u64> {
    Ok(r.get::<_, i64>(index)? as u64)
}

#[derive(Debug, thiserror::Error)]
#[error("not a month (YYYY-MM): {0:?}")]
struct MalformedMonth(String);
