//! Where changed ledger rows go. Every write is idempotent: rows carry a version that only
//! grows with the projector's position, and a store keeps the highest version of each row.
//! Replaying after a crash writes the same rows again and changes nothing.

pub mod clickhouse;
pub mod pending;
pub mod rows;
pub mod sqlite;
pub(crate) mod writer;

use aqs_eventlog::{PartitionId, Positions, Stream};
use aqs_schemas::partition::partition_for_key;

use crate::ledger::LedgerChanges;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("ledger store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("ledger sink unavailable: {0}")]
    Unavailable(String),
    #[error("ClickHouse ledger store")]
    Connect(#[from] aqs_warehouse::ConnectError),
    #[error("ClickHouse ledger store: could not {action} {table}")]
    ClickHouse {
        action: &'static str,
        table: &'static str,
        #[source]
        source: aqs_warehouse::clickhouse::error::Error,
    },
}

impl SinkError {
    /// Whether the failure may pass by itself (the store is away, slow or overloaded)
    /// rather than need an operator (a missing table, refused credentials, a full disk).
    /// Both are retried; the difference shows in the metrics and the logs.
    pub fn is_transient(&self) -> bool {
        match self {
            SinkError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::SystemIoFailure
            ),
            SinkError::Sqlite(_) => false,
            SinkError::Unavailable(_) => true,
            SinkError::Connect(aqs_warehouse::ConnectError::Unreachable { .. }) => true,
            SinkError::Connect(_) => false,
            SinkError::ClickHouse { source, .. } => {
                clickhouse::classify(source) == clickhouse::Failure::Transient
            }
        }
    }

    /// The error with its causes, on one line.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

/// What one publish wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Rows (and tombstones) the store took.
    pub rows: u64,
    /// Rows the store refused for their content, set aside in its dead-letter table.
    pub dead_lettered: u64,
}

/// Versions of rows written at the current position.
///
/// An agent's rows change only with its own partition and with reference data, so their
/// version is (position in the agent's partition, position in the reference stream),
/// packed high and low. Both only grow for the projector that owns the partition, and a
/// projector that takes a partition over replays it from the start, so it writes lower
/// versions (ignored) until it has caught up.
#[derive(Debug, Clone)]
pub struct RowVersions<'a> {
    positions: &'a Positions,
    partitions: u32,
}

impl<'a> RowVersions<'a> {
    pub fn new(positions: &'a Positions, partitions: u32) -> Self {
        Self {
            positions,
            partitions,
        }
    }

    fn position(&self, partition: PartitionId) -> u64 {
        self.positions.get(&partition).copied().unwrap_or(0)
    }

    pub fn reference(&self) -> i64 {
        self.position(PartitionId {
            stream: Stream::Reference,
            partition: 0,
        }) as i64
    }

    pub fn agent(&self, agent_id: &str) -> i64 {
        let partition = PartitionId {
            stream: Stream::Events,
            partition: partition_for_key(agent_id, self.partitions),
        };
        ((self.position(partition) << 32) | (self.reference() as u64 & 0xffff_ffff)) as i64
    }
}

/// A store of ledger rows.
pub trait LedgerSink {
    /// The store's name in metrics, logs and health reports (`sqlite`, `clickhouse`).
    fn name(&self) -> &'static str;

    /// Writes the changed rows at `versions`. A row the store cannot hold for its content
    /// is set aside (counted in [`Written::dead_lettered`]), never a reason to fail the rest;
    /// an error means nothing may be assumed written, and the same changes (or newer ones
    /// merged over them) are written again later.
    fn publish(
        &mut self,
        changes: &LedgerChanges,
        versions: &RowVersions<'_>,
    ) -> Result<Written, SinkError>;
}

/// A store with its own writer thread and pace: see [`WriterSettings`].
pub struct Store {
    pub sink: Box<dyn LedgerSink + Send>,
    pub settings: WriterSettings,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("sink", &self.sink.name())
            .field("settings", &self.settings)
            .finish()
    }
}

impl Store {
    pub fn new(sink: impl LedgerSink + Send + 'static, settings: WriterSettings) -> Self {
        Self {
            sink: Box::new(sink),
            settings,
        }
    }
}

pub use writer::WriterSettings;

/// Rows in a change set, tombstones included (an agent's replaced pending list counts once
/// at least).
pub fn change_rows(changes: &LedgerChanges) -> u64 {
    (changes.agent_outlet_day.len()
        + changes.agent_day.len()
        + changes.plans.len()
        + changes.deleted_plans.len()
        + changes.targets.len()
        + changes.deleted_targets.len()
        + changes.roster.len()
        + changes.deleted_roster.len()
        + changes.assignments.len()
        + changes.deleted_assignments.len()
        + changes
            .pending_cancellations
            .len()
            .max(changes.pending_agents.len())
        + changes.agent_profiles.len()
        + changes.deleted_agent_profiles.len()
        + changes.teams.len()
        + changes.deleted_teams.len()
        + changes.outlets.len()
        + changes.calendar_days.len()
        + changes.deleted_calendar_days.len()
        + changes.supervisor_facts.len()
        + changes.deleted_supervisor_facts.len()) as u64
}
