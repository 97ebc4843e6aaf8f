//! Where changed ledger rows go. Every write is idempotent: rows carry a version that only
//! grows with the projector's position, and a store keeps the highest version of each row.
//! Replaying after a crash writes the same rows again and changes nothing.

pub mod clickhouse;
pub mod sqlite;

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
    fn publish(
        &mut self,
        changes: &LedgerChanges,
        versions: &RowVersions<'_>,
    ) -> Result<(), SinkError>;
}

/// Publishes to two stores, the first then the second; both stay idempotent, so a failure of
/// the second is repaired by the replay after a restart.
#[derive(Debug)]
pub struct BothSinks<A, B>(pub A, pub B);

impl<A: LedgerSink, B: LedgerSink> LedgerSink for BothSinks<A, B> {
    fn publish(
        &mut self,
        changes: &LedgerChanges,
        versions: &RowVersions<'_>,
    ) -> Result<(), SinkError> {
        self.0.publish(changes, versions)?;
        self.1.publish(changes, versions)
    }
}
