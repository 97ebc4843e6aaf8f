//! The event log: the durable, ordered, replayable source of truth of accepted events.
//!
//! Two streams: `events`, partitioned by agent (see [`aqs_schemas::partition`]), and
//! `reference`, one partition that every projector reads in full. Each record is an
//! accepted event in its canonical JSON form; its position is (stream, partition, offset).
//!
//! - [`sqlite::SqliteLog`]: the embedded default, a SQLite database on local disk.
//! - [`kafka::KafkaLog`] and [`kafka::KafkaConsumer`]: the same interface over Kafka topics,
//!   for several projector instances sharing the partitions through a consumer group.
//! - [`kafka::TransactionalKafkaLog`]: Kafka appends as transactions ([`TransactionalLog`]),
//!   for a writer that must know whether a batch it lost track of was written.

pub mod dead_letters;
pub mod history;
pub mod kafka;
pub mod sqlite;

pub use dead_letters::{DeadLetterDrops, DeadLetterLimits};

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use aqs_schemas::{Event, Route};
use serde::{Deserialize, Serialize};

/// Default number of partitions of the `events` stream.
pub const DEFAULT_PARTITIONS: u32 = 12;

/// The two streams of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Agent events, partitioned by agent.
    Events,
    /// Reference data, one partition, read in full by every projector.
    Reference,
}

impl Stream {
    pub const fn code(self) -> i64 {
        match self {
            Stream::Events => 0,
            Stream::Reference => 1,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Stream::Events),
            1 => Some(Stream::Reference),
            _ => None,
        }
    }
}

/// A partition of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartitionId {
    pub stream: Stream,
    pub partition: u32,
}

impl PartitionId {
    /// Where an event goes in a log whose `events` stream has `partitions` partitions.
    pub fn of(event: &Event, partitions: u32) -> Self {
        match event.route() {
            route @ Route::Agent(_) => Self {
                stream: Stream::Events,
                partition: route.partition(partitions),
            },
            Route::Reference => Self {
                stream: Stream::Reference,
                partition: 0,
            },
        }
    }
}

/// Next offset to read, per partition: a consumer's position.
pub type Positions = BTreeMap<PartitionId, u64>;

/// One record read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub partition: PartitionId,
    pub offset: u64,
    /// The event's canonical JSON.
    pub bytes: Vec<u8>,
}

/// What happened to one event handed to [`EventLog::append`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Durably appended at this position.
    Appended { partition: PartitionId, offset: u64 },
    /// Already in the log with the same body: a retry, nothing appended.
    Duplicate,
    /// Already in the log with a different body: the first one stays.
    Conflict,
}

/// A refused event kept with its reason, so nothing handed over is silently lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Where it came from, e.g. `import events.ndjson line 12` or `http`.
    pub origin: String,
    pub event_id: Option<String>,
    /// The bytes as received.
    pub body: Vec<u8>,
    /// Why it was refused (JSON: the field errors, or a conflict).
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event log storage: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("event log is unavailable: {0}")]
    Unavailable(String),
    #[error("event log configuration: {0}")]
    Config(String),
    #[error("serialising an event: {0}")]
    Encode(#[from] serde_json::Error),
}

impl LogError {
    /// Whether retrying later may succeed (the caller should back off, not give up).
    pub fn is_transient(&self) -> bool {
        match self {
            LogError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                )
            }
            LogError::Unavailable(_) => true,
            _ => false,
        }
    }
}

/// Appending to the log. Implementations are durable when `append` returns.
pub trait EventLog: Send + Sync {
    /// Appends the events in order; one outcome per event.
    fn append(&self, events: &[Event]) -> Result<Vec<AppendOutcome>, LogError>;
    /// Keeps refused events with their reasons.
    fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), LogError>;
    /// Partitions of the `events` stream.
    fn partitions(&self) -> u32;
    /// Dead letters this log dropped to stay within its limits since it was opened (none
    /// where the store drops them itself, as Kafka's retention does).
    fn dead_letter_drops(&self) -> DeadLetterDrops {
        DeadLetterDrops::default()
    }
}

/// Where one appended record lies in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordPosition {
    pub partition: PartitionId,
    pub offset: u64,
}

/// The writer of a transaction: its stable name and the incarnation that began it. Once the
/// same name has been started again (a new incarnation), every transaction of the earlier
/// one is decided for good: committed, or aborted and never visible.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionWriter {
    pub name: String,
    pub incarnation: String,
}

/// One record of a transaction and the identity of its event: reading it back tells the
/// transaction's fate, since a transaction's records are all visible or none is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub position: RecordPosition,
    pub source: String,
    pub event_id: String,
}

/// What became of a transaction whose commit was not confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Its records are in the log, visible to every reader.
    Committed,
    /// Its records will never be visible.
    Aborted,
    /// Not known yet (the log is away, or still deciding): ask again later.
    Undecided,
}

/// Why a commit did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The transaction was rolled back: none of its records will ever be visible.
    #[error("transaction aborted: {0}")]
    Aborted(String),
    /// The commit may or may not have taken effect; [`TransactionalLog::fate`] tells later.
    #[error("transaction outcome unknown: {0}")]
    InDoubt(String),
}

/// A log whose appends are transactions: records become visible to readers when their
/// transaction commits, all together, or never.
pub trait TransactionalLog: Send + Sync {
    /// Starts a transaction on a free writer, waiting for one until `deadline`.
    fn begin(&self, deadline: Instant) -> Result<Box<dyn LogTransaction + '_>, LogError>;
    /// What became of a transaction of `writer` holding `probe`. Restarts the writer first
    /// when it has not been restarted since that transaction, so the answer is final
    /// (unless [`Fate::Undecided`]). Waits until `deadline` at most.
    fn fate(
        &self,
        writer: &TransactionWriter,
        probe: &Probe,
        deadline: Instant,
    ) -> Result<Fate, LogError>;
    /// Starts writers that are not running (fencing what earlier incarnations left open).
    fn prepare(&self, deadline: Instant) -> Result<(), LogError>;
    /// Keeps refused events with their reasons (outside any transaction).
    fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), LogError>;
    /// Partitions of the `events` stream.
    fn partitions(&self) -> u32;
    /// Keeps readers from being held back by records the log left open after it was
    /// disturbed: when due, each writer commits a transaction that ends what it may have
    /// left (Kafka: a release record on every partition, which readers skip). For the
    /// writer's upkeep, called every fraction of a second; how many writers released. A
    /// log that cannot be left holding records does nothing.
    fn release_held(&self, _deadline: Instant) -> Result<usize, LogError> {
        Ok(0)
    }
    /// Release transactions since the start.
    fn releases(&self) -> ReleaseFigures {
        ReleaseFigures::default()
    }
}

/// Release transactions of a transactional log ([`TransactionalLog::release_held`]) since
/// the start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseFigures {
    pub committed: u64,
    /// Each is tried again.
    pub failed: u64,
}

/// One open transaction. Dropped without [`LogTransaction::commit`], it is aborted.
pub trait LogTransaction: Send {
    fn writer(&self) -> &TransactionWriter;
    /// Writes the events, in order, into the transaction: durable in the log once this
    /// returns, but visible to readers only after the commit. Their positions, in order.
    fn append(&mut self, events: &[Event]) -> Result<Vec<RecordPosition>, LogError>;
    /// Makes every record of the transaction visible.
    fn commit(self: Box<Self>) -> Result<(), CommitError>;
    /// Rolls the transaction back.
    fn abort(self: Box<Self>);
}

/// Reading the log from positions a projector keeps itself.
pub trait LogConsumer: Send {
    /// Partitions this consumer currently owns (they may change with a consumer group).
    fn assignment(&mut self) -> Vec<PartitionId>;
    /// Starts (or restarts) reading each owned partition at the given position; partitions
    /// without a position start at offset 0.
    fn seek(&mut self, positions: &Positions) -> Result<(), LogError>;
    /// Up to `max` records in offset order per partition; waits up to `timeout` when idle.
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<LogRecord>, LogError>;
    /// Reports progress to the log (Kafka: a commit). Never the source of truth.
    fn report_progress(&mut self, positions: &Positions) -> Result<(), LogError>;
    /// Records not yet read across owned partitions, when known.
    fn lag(&mut self, positions: &Positions) -> Option<u64>;
    /// Owned partitions that hold records readers may not see yet (Kafka: the high watermark
    /// is ahead of the last stable offset, because a transaction is open), with since when
    /// the end of what may be read has not moved. Empty for a log without transactions, and
    /// while the log does not answer.
    fn unstable_tails(&mut self) -> Vec<UnstableTail> {
        Vec::new()
    }
    /// What the consumer's own watchdog found: parts of the log it should be reading and is
    /// not (a partition with readable records past its position and nothing read for a
    /// while, a consumer left outside its group), and what it did about them. Empty for a
    /// log that cannot get stuck so (the embedded one).
    fn read_watch(&mut self) -> ReadWatch {
        ReadWatch::default()
    }
}

/// What a consumer's watchdog reports: the stalls under way and its counts so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadWatch {
    pub stalls: Vec<ReadStall>,
    /// Stalls found since the consumer started, by kind.
    pub partition_stalls_total: u64,
    pub group_stalls_total: u64,
    /// Clients found knowing no broker at all.
    pub brokerless_stalls_total: u64,
    /// Clients closed and made again to end a stall (or because they could not reach the
    /// brokers for as long as a stall takes to count).
    pub client_rebuilds_total: u64,
}

/// A part of the log the consumer should be reading and is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadStall {
    /// The partition, or `None` for the consumer's membership of its group or a client that
    /// knows no broker.
    pub partition: Option<PartitionId>,
    /// What is stuck and why, for an operator: the topic and partition (or the group), the
    /// position, how far the log goes.
    pub description: String,
    /// Since when (the first look that found it so).
    pub since: SystemTime,
    /// How long that is (measured on a monotonic clock).
    pub stalled_for: Duration,
    /// Times the client reading it was made again for this stall.
    pub rebuilds: u32,
}

/// The end of a partition that readers may not see yet: records up to `high_watermark` are
/// in the log, readers get those before `last_stable` only. A transaction that commits or
/// aborts moves `last_stable` on; one left open holds every reader at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnstableTail {
    pub partition: PartitionId,
    /// The name of the partition's topic, for an operator.
    pub topic: String,
    pub last_stable: u64,
    pub high_watermark: u64,
    /// Since when `last_stable` has been at this offset with records beyond it.
    pub stable_since: SystemTime,
    /// How long that is (measured on a monotonic clock).
    pub unchanged_for: Duration,
}

impl UnstableTail {
    /// Records past the end of what readers may see.
    pub fn unstable_records(&self) -> u64 {
        self.high_watermark.saturating_sub(self.last_stable)
    }
}
