//! The ledger tables: one row type per table, column for column (migrations
//! `0002_ledgers.sql`, `0006_agent_profiles.sql`, `0009_calendar_days.sql` and
//! `0012_supervisor_facts.sql` in ClickHouse, [`sqlite::SCHEMA`] in the
//! embedded store), each with its name, key, columns and live-row filter ([`LedgerRow`]).
//!
//! Rows carry a version (`ver`, the projector's positions) and a store keeps the highest
//! version of each key: in ClickHouse every table is a `ReplacingMergeTree(ver)` read with
//! `FINAL`, in SQLite an upsert that keeps the newer row. Removed rows stay as tombstones
//! (zero counters, or `deleted = 1`) so that an older version written later cannot bring
//! them back; [`LIVE_ACTIVITY`] and [`LIVE`] pick the others.
//!
//! - [`sqlite`]: the embedded store (`ledgers.db`): schema, writer, dump.
//! - [`clickhouse`]: the reads and table-wide statements of the ledger store in ClickHouse.
//! - [`export`]: tables of the embedded store as Parquet files, for analysts.
//! - [`window`]: what the KPI job reads for a window of dates, from either engine.

pub mod clickhouse;
mod dump;
pub mod export;
mod rows;
pub mod sqlite;
mod supervision;
pub mod window;

use rusqlite::types::Value;

pub use dump::Cell;
pub use rows::{
    AgentDayRow, AgentOutletDayRow, AgentProfileRow, AssignmentRow, CalendarDayRow,
    LedgerDeadLetterRow, OutletRow, PendingCancellationRow, PlanRow, RosterRow,
    TEAM_DEFINED_FROM_THE_BEGINNING, TargetRow, TeamDayRow, TeamRow,
};
pub use supervision::SupervisorFactRow;

/// Live rows of `ledger_agent_outlet_day` and `ledger_agent_day`: any counter not zero (a
/// row whose counters are all zero is a tombstone). The same text in both engines.
pub const LIVE_ACTIVITY: &str = "NOT (visits = 0 AND consultations = 0 AND customers_consulted = 0 \
     AND customers_interested = 0 AND sales = 0 AND premium_fen = 0 AND cancellations = 0 \
     AND refunds_fen = 0)";

/// Live rows of the tables with a `deleted` column.
pub const LIVE: &str = "deleted = 0";

/// Every row of the table is live (no tombstones: teams, outlets, and the view of team days).
pub(crate) const EVERY_ROW: &str = "1";

/// A row of a ledger table (or view), column for column.
pub trait LedgerRow:
    ::clickhouse::RowOwned + ::clickhouse::RowRead + ::clickhouse::RowWrite + std::fmt::Debug + Sized
{
    /// The table's name, the same in both engines.
    const TABLE: &'static str;
    /// The key columns, in order: the primary key in SQLite, the sort key in ClickHouse, the
    /// order of dumps and reads.
    const KEY: &'static str;
    /// Every column, in order.
    const COLUMNS: &'static str;
    /// Which rows are live.
    const LIVE: &'static str;
    /// A view over another table (read-only; already live rows of the newest versions).
    const VIEW: bool = false;

    /// The row's values in column order, as the embedded store holds them: dates as
    /// `YYYY-MM-DD` (months `YYYY-MM`), versions and flags as integers.
    fn values(&self) -> Vec<Value>;

    /// The row from a SQLite row of its [`COLUMNS`](Self::COLUMNS), in order.
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

/// Calls `visitor` once for each ledger table, in the order of dumps.
pub trait TableVisitor {
    type Error;
    fn visit<T: LedgerRow>(&mut self) -> Result<(), Self::Error>;
}

/// Visits every ledger table (and the view of team days) in one fixed order: the order of
/// dumps, of emptying, of the checks that tie the row types to the schemas.
pub fn visit_tables<V: TableVisitor>(visitor: &mut V) -> Result<(), V::Error> {
    visitor.visit::<AgentOutletDayRow>()?;
    visitor.visit::<AgentDayRow>()?;
    visitor.visit::<TeamDayRow>()?;
    visitor.visit::<PlanRow>()?;
    visitor.visit::<TargetRow>()?;
    visitor.visit::<RosterRow>()?;
    visitor.visit::<AssignmentRow>()?;
    visitor.visit::<TeamRow>()?;
    visitor.visit::<OutletRow>()?;
    visitor.visit::<PendingCancellationRow>()?;
    visitor.visit::<AgentProfileRow>()?;
    visitor.visit::<CalendarDayRow>()?;
    visitor.visit::<SupervisorFactRow>()?;
    Ok(())
}

/// A ledger table's name, key and whether it is a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableInfo {
    pub table: &'static str,
    pub key: &'static str,
    pub columns: &'static str,
    pub view: bool,
}

/// Every ledger table (and the view of team days), in the order of [`visit_tables`].
pub fn ledger_tables() -> Vec<TableInfo> {
    struct List(Vec<TableInfo>);
    impl TableVisitor for List {
        type Error = std::convert::Infallible;
        fn visit<T: LedgerRow>(&mut self) -> Result<(), Self::Error> {
            self.0.push(TableInfo {
                table: T::TABLE,
                key: T::KEY,
                columns: T::COLUMNS,
                view: T::VIEW,
            });
            Ok(())
        }
    }
    let mut list = List(Vec::new());
    let Ok(()) = visit_tables(&mut list);
    list.0
}

/// The rows of one write to a ledger store, table by table, tombstones included, each at
/// its version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerBatch {
    pub agent_outlet_day: Vec<AgentOutletDayRow>,
    pub agent_day: Vec<AgentDayRow>,
    pub plans: Vec<PlanRow>,
    pub targets: Vec<TargetRow>,
    pub roster: Vec<RosterRow>,
    pub assignments: Vec<AssignmentRow>,
    pub teams: Vec<TeamRow>,
    pub outlets: Vec<OutletRow>,
    /// The new pending lists of the agents in `pending_replaced`.
    pub pending_cancellations: Vec<PendingCancellationRow>,
    pub agent_profiles: Vec<AgentProfileRow>,
    /// Declared dates of the working-day calendar, tombstones included.
    pub calendar_days: Vec<CalendarDayRow>,
    /// Supervisors' facts, tombstones of retracted ones included.
    pub supervisor_facts: Vec<SupervisorFactRow>,
    /// Agents whose list of pending cancellations is replaced whole, with the version of the
    /// replacement: a stored row of theirs that is not in `pending_cancellations` and not
    /// newer than that version becomes a tombstone at it.
    pub pending_replaced: Vec<(String, u64)>,
}

impl LedgerBatch {
    /// Rows in the batch, tombstones included (not counting the ones retired from the
    /// replaced pending lists, which only the store knows).
    pub fn rows(&self) -> usize {
        self.agent_outlet_day.len()
            + self.agent_day.len()
            + self.plans.len()
            + self.targets.len()
            + self.roster.len()
            + self.assignments.len()
            + self.teams.len()
            + self.outlets.len()
            + self.pending_cancellations.len()
            + self.agent_profiles.len()
            + self.calendar_days.len()
            + self.supervisor_facts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows() == 0 && self.pending_replaced.is_empty()
    }
}

/// The eight activity counters of an agent's day or agent × outlet × day, in the order of
/// their columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityCounters {
    pub visits: i64,
    pub consultations: i64,
    pub customers_consulted: i64,
    pub customers_interested: i64,
    pub sales: i64,
    pub premium_fen: i64,
    pub cancellations: i64,
    pub refunds_fen: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_types_column_list_is_its_fields() {
        struct Check;
        impl TableVisitor for Check {
            type Error = String;
            fn visit<T: LedgerRow>(&mut self) -> Result<(), String> {
                let listed: Vec<&str> = T::COLUMNS.split(',').map(str::trim).collect();
                let fields: Vec<&str> = <T as ::clickhouse::Row>::COLUMN_NAMES.to_vec();
                if listed != fields {
                    return Err(format!("{}: {listed:?} != {fields:?}", T::TABLE));
                }
                let key: Vec<&str> = T::KEY.split(',').map(str::trim).collect();
                if !key.iter().all(|column| listed.contains(column)) {
                    return Err(format!("{}: key {key:?} not among its columns", T::TABLE));
                }
                Ok(())
            }
        }
        visit_tables(&mut Check).expect("the lists agree");
    }
}
