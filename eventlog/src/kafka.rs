//! The Kafka event log: the same interface as [`crate::sqlite`], over three topics.
//!
//! Layout:
//! - the events topic (`aqs.events`): agent events, `events_partitions` partitions, each
//!   record on the partition [`PartitionId::of`] names (murmur2 of the agent id, as Kafka's
//!   own partitioner would), key = agent id, value = the event's canonical JSON;
//! - the reference topic (`aqs.reference`): one partition, no key, read whole by every
//!   projector;
//! - the dead-letter topic (`aqs.dead-letter`): refused input, the JSON of a [`DeadLetter`].
//!
//! The events and reference topics are the source of truth: they are created with
//! `retention.ms=-1` and `retention.bytes=-1`.
//!
//! Writing ([`KafkaLog`]): an idempotent producer with `acks=all`; `append` returns once every
//! record of the batch is acknowledged, or fails within the message timeout. Kafka cannot
//! tell that an event is already in the log, so `append` never answers
//! [`AppendOutcome::Duplicate`] or [`AppendOutcome::Conflict`]: a batch retried after an
//! error may be written twice, and the projector's ledger drops repeats by identity.
//! [`TransactionalKafkaLog`] writes each batch as a transaction instead (see its module), for
//! a writer that keeps track of what it appended (ingest's dedup index).
//!
//! Reading ([`KafkaConsumer`]): the events topic through the projector's consumer group, the
//! reference topic through a consumer with a fixed assignment, both `read_committed`: records
//! of aborted or open transactions are never read. Positions are the projector's
//! own: a partition the group hands over is read from the position the projector gave in
//! [`LogConsumer::seek`] (0 without one), never from the group's committed offset, which is
//! only progress reporting.
//!
//! The adapter's parts, one file each under `kafka/`: `config` (settings), `producer`
//! (writing), `topics` (creating and checking the topics), `consumer` (reading), `group` (the
//! consumer group's rebalances), `history` (reading partitions back whole, for lineage),
//! `client` (what every client shares), `reader_clients` (making the reader's clients), `readiness` (the probe
//! of a service's `/readyz`), `transactional` (appends as transactions), `release` (ending
//! what a broker left held) and `watchdog` (noticing a reader that stopped, design note 43).

mod client;
mod config;
mod consumer;
mod group;
mod history;
mod producer;
mod reader_clients;
mod readiness;
mod release;
mod topics;
mod transactional;
mod watchdog;

pub use config::{
    AddressFamily, DEFAULT_DEAD_LETTER_TOPIC, DEFAULT_EVENTS_TOPIC, DEFAULT_MESSAGE_TIMEOUT_MS,
    DEFAULT_PROJECTOR_GROUP, DEFAULT_READ_STALL_SECONDS, DEFAULT_REFERENCE_TOPIC, KafkaConfig,
};
pub use consumer::KafkaConsumer;
pub use history::KafkaHistory;
pub use producer::KafkaLog;
pub use readiness::KafkaReadiness;
pub use release::{RELEASE_HEADER, SLOW_OPERATION, is_release_record};
pub use transactional::TransactionalKafkaLog;

use client::LoggingContext;
use producer::{
    DeliveryContext, Undelivered, deliver, event_records, record_error, record_positions,
};
use topics::provision;
