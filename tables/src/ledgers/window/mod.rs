//! What the KPI job reads for a window of business dates ([`LedgerData`]), and the two
//! engines it is read from: the embedded store ([`SqliteSource`]) and ClickHouse
//! ([`ClickHouseSource`]), with the same live rows, window and order.
//!
//! The rows are reduced to what the KPIs need (outlet days only with a visit or a sale) and
//! their ids shared between the rows that repeat them, so that a month of 30,000 agents
//! reads fast.

pub(crate) mod clickhouse;
mod sqlite;

pub use self::clickhouse::ClickHouseSource;
pub use self::sqlite::SqliteSource;

use std::path::PathBuf;
use std::sync::Arc;

use aqs_schemas::event::{DayKind, Scope};
use aqs_schemas::{WorkingCalendar, YearMonth};
use chrono::NaiveDate;

/// An id of the high-volume ledger rows, shared by the rows that repeat it (an agent's
/// days, its team's tags) rather than allocated once per row.
pub type Id = Arc<str>;

/// Agent × business date, tagged with the agent's team, branch and region on that date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentDay {
    pub agent_id: Id,
    pub date: NaiveDate,
    pub team_id: Option<Id>,
    pub branch_id: Option<Id>,
    pub region_id: Option<Id>,
    pub visits: i64,
    pub consultations: i64,
    pub customers_consulted: i64,
    pub customers_interested: i64,
    pub sales: i64,
    /// Gross premium of the day's sales, in fen.
    pub premium_fen: i64,
    pub cancellations: i64,
    /// Refunds of the day's cancellations, in fen.
    pub refunds_fen: i64,
}

/// Agent × outlet × business date, reduced to what outlet KPIs need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutletDay {
    pub agent_id: Id,
    pub outlet_id: Id,
    pub date: NaiveDate,
    pub visits: i64,
    pub sales: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub agent_id: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub visits: Option<i64>,
    pub consultations: Option<i64>,
    pub sales: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scope: Scope,
    pub scope_id: String,
    pub month: YearMonth,
    pub premium_fen: Option<i64>,
    /// Target outlet activity rate in basis points (1/10000).
    pub outlet_activity_rate_bp: Option<i64>,
    pub visits: Option<i64>,
    pub consultations: Option<i64>,
    pub sales: Option<i64>,
}

/// An agent's membership of a team, or an outlet's assignment to an agent, from `from` to
/// the day before `to` (`None`: still running).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    pub agent_id: String,
    /// The team (roster) or the outlet (assignments).
    pub key: String,
    pub from: NaiveDate,
    pub to: Option<NaiveDate>,
}

impl Interval {
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.from <= date && self.to.is_none_or(|to| date < to)
    }
}

/// A team's parents from `effective_from` on, until the team's next effective date (one per
/// live row of the ledger table `teams`; [`crate::ledgers::TEAM_DEFINED_FROM_THE_BEGINNING`]
/// for a definition that holds from the beginning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub team_id: String,
    pub effective_from: NaiveDate,
    pub branch_id: String,
    pub region_id: String,
}

/// Everything the KPI job reads for a window of business dates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerData {
    pub agent_days: Vec<AgentDay>,
    /// Agent days before the window, read only for the trailing window of rates (the
    /// window's own days are in `agent_days`).
    pub trailing_agent_days: Vec<AgentDay>,
    pub outlet_days: Vec<OutletDay>,
    pub plans: Vec<Plan>,
    pub targets: Vec<Target>,
    pub roster: Vec<Interval>,
    pub assignments: Vec<Interval>,
    /// Every live team definition, ordered by team then effective date.
    pub teams: Vec<Team>,
    /// The working-day calendar: every declared date of the ledger table `calendar_days`,
    /// whatever the window (a period's working days reach beyond the dates read).
    pub calendar: WorkingCalendar,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("reading the ledger store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the ledger store holds a malformed value: {0}")]
    Malformed(String),
    #[error("ledger store unavailable: {0}")]
    Unavailable(String),
    #[error("ledger store in ClickHouse")]
    Connect(#[from] aqs_warehouse::ConnectError),
    #[error("reading the ledger table {table} from ClickHouse")]
    ClickHouse {
        table: &'static str,
        #[source]
        source: aqs_warehouse::clickhouse::error::Error,
    },
}

/// Where ledgers are read from (by several threads at once: the KPI job reads the trailing
/// window beside the window itself).
pub trait LedgerSource: Sync {
    /// The rows whose dates fall in `first..=last` (intervals and plans overlapping it).
    fn load(&self, first: NaiveDate, last: NaiveDate) -> Result<LedgerData, SourceError>;

    /// The agent days alone whose dates fall in `first..=last`, with the same filters and
    /// order as `load`'s.
    fn load_agent_days(
        &self,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<AgentDay>, SourceError>;

    /// The working-day calendar the live rows of `calendar_days` declare (`load` reads it
    /// too, into [`LedgerData::calendar`]).
    fn load_calendar(&self) -> Result<WorkingCalendar, SourceError>;
}

/// The working-day calendar of `calendar_days` rows (date, kind) read from either engine.
pub(crate) fn calendar_from_rows(
    rows: impl IntoIterator<Item = (NaiveDate, String)>,
) -> Result<WorkingCalendar, SourceError> {
    let days = rows
        .into_iter()
        .map(|(date, kind)| match DayKind::from_name(&kind) {
            Some(kind) => Ok((date, kind)),
            None => Err(SourceError::Malformed(format!(
                "calendar_days: {date} has the kind {kind:?} (holiday or working_day)"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WorkingCalendar::from_declared(days))
}

/// The outlet days the KPIs use: those with a visit or a sale (coverage and outlet activity
/// count nothing else), a subset of the live ones.
pub(crate) const OUTLET_DAYS_WITH_VISIT_OR_SALE: &str = "(visits != 0 OR sales != 0)";

pub(crate) fn scope_from_name(name: &str) -> Result<Scope, SourceError> {
    Scope::from_name(name).ok_or_else(|| SourceError::Malformed(format!("scope {name:?}")))
}
