//! The projector's Kafka clients, one function each: how the events, reference and offsets
//! clients are made (at the start, and again when the reader's watchdog asks), and how a
//! replaced client is closed without holding the reader up.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tracing::{info, warn};

use super::KafkaConfig;
use super::client::{LoggingContext, WatchedContext};
use super::group::{GroupContext, Shared};
use super::watchdog::ClientView;
use crate::LogError;

/// How often librdkafka sends a client's statistics (the watchdog looks as often).
pub(super) const STATISTICS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The events client: a member of the projector group, subscribing to nothing yet.
pub(super) fn events_client(
    config: &KafkaConfig,
    shared: &Arc<Mutex<Shared>>,
    view: &Arc<Mutex<ClientView>>,
    generation: u64,
) -> Result<BaseConsumer<GroupContext>, LogError> {
    let mut group = config.client_config("projector")?;
    group
        .set("group.id", &config.projector_group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Only committed transactions (librdkafka's default, stated): a batch ingest
        // aborted, or one still open, is never read.
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
        // When its local queue is full (64 MB by default, reached quickly while
        // catching up on many partitions), librdkafka waits a whole second before the
        // next fetch by default, which left a replay idle most of the time.
        .set("fetch.queue.backoff.ms", "10")
        // Incremental rebalancing: a partition stays put (with the state built for it)
        // unless it has to move.
        .set("partition.assignment.strategy", "cooperative-sticky")
        // For the watchdog: the group's state as the client sees it.
        .set(
            "statistics.interval.ms",
            STATISTICS_EVERY.as_millis().to_string(),
        );
    BaseConsumer::from_config_and_context(
        &group,
        GroupContext {
            topic: config.events_topic.clone(),
            shared: Arc::clone(shared),
            generation,
            view: Arc::clone(view),
        },
    )
    .map_err(|error| LogError::Config(format!("kafka consumer: {error}")))
}

pub(super) fn subscribe(
    config: &KafkaConfig,
    events: &BaseConsumer<GroupContext>,
) -> Result<(), LogError> {
    events.subscribe(&[&config.events_topic]).map_err(|error| {
        LogError::Unavailable(format!("subscribing to {}: {error}", config.events_topic))
    })
}

/// The reference topic's client, assigned its partition by hand.
pub(super) fn reference_client(
    config: &KafkaConfig,
    view: &Arc<Mutex<ClientView>>,
) -> Result<BaseConsumer<WatchedContext>, LogError> {
    // librdkafka wants a group id for a manual assignment, but this consumer never joins
    // the group and never commits.
    let mut fixed = config.client_config("projector-reference")?;
    fixed
        .set("group.id", &config.projector_group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set(
            "statistics.interval.ms",
            STATISTICS_EVERY.as_millis().to_string(),
        );
    BaseConsumer::from_config_and_context(
        &fixed,
        WatchedContext {
            role: "projector",
            view: Arc::clone(view),
        },
    )
    .map_err(|error| LogError::Config(format!("kafka consumer: {error}")))
}

pub(super) fn assign_reference(
    config: &KafkaConfig,
    reference: &BaseConsumer<WatchedContext>,
    offset: u64,
) -> Result<(), LogError> {
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&config.reference_topic, 0, Offset::Offset(offset as i64))
        .map_err(|error| {
            LogError::Config(format!("assigning {}: {error}", config.reference_topic))
        })?;
    reference.assign(&assignment).map_err(|error| {
        LogError::Unavailable(format!("assigning {}: {error}", config.reference_topic))
    })
}

/// The clients that ask watermarks: with `read_committed` (their "high watermark" is the
/// last stable offset) and with `read_uncommitted` (the real end of the log).
pub(super) fn offsets_clients(
    config: &KafkaConfig,
) -> Result<(BaseConsumer<LoggingContext>, BaseConsumer<LoggingContext>), LogError> {
    let mut committed = config.client_config("projector-offsets")?;
    committed.set("isolation.level", "read_committed");
    let committed: BaseConsumer<LoggingContext> =
        BaseConsumer::from_config_and_context(&committed, LoggingContext { role: "projector" })
            .map_err(|error| LogError::Config(format!("kafka client: {error}")))?;
    let mut uncommitted = config.client_config("projector-offsets")?;
    uncommitted.set("isolation.level", "read_uncommitted");
    let uncommitted: BaseConsumer<LoggingContext> =
        BaseConsumer::from_config_and_context(&uncommitted, LoggingContext { role: "projector" })
            .map_err(|error| LogError::Config(format!("kafka client: {error}")))?;
    Ok((committed, uncommitted))
}

/// Closes a client that was made again on a thread of its own: a broken client may take
/// long to close (a group member waits for its revocation), and the reader must go on.
pub(super) fn retire<C: Send + 'static>(name: &'static str, client: C) {
    let spawned = std::thread::Builder::new()
        .name("aqs-kafka-retire".into())
        .spawn(move || {
            let started = Instant::now();
            drop(client);
            info!(
                client = name,
                seconds = started.elapsed().as_secs_f64(),
                "replaced kafka client closed"
            );
        });
    if let Err(error) = spawned {
        warn!(client = name, %error, "no thread to close a replaced kafka client; it is left open");
    }
}
