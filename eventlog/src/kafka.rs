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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant, SystemTime};

use aqs_schemas::{Event, Route};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, DeliveryResult, Message};
use rdkafka::metadata::Metadata;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use tracing::{debug, error, info, warn};

mod transactional;

pub use transactional::TransactionalKafkaLog;

use crate::{
    AppendOutcome, DeadLetter, DeadLetterLimits, EventLog, LogConsumer, LogError, LogRecord,
    PartitionId, Positions, RecordPosition, Stream, UnstableTail,
};

/// Default name of the events topic.
pub const DEFAULT_EVENTS_TOPIC: &str = "aqs.events";
/// Default name of the reference topic.
pub const DEFAULT_REFERENCE_TOPIC: &str = "aqs.reference";
/// Default name of the dead-letter topic.
pub const DEFAULT_DEAD_LETTER_TOPIC: &str = "aqs.dead-letter";
/// Default consumer group of the projectors.
pub const DEFAULT_PROJECTOR_GROUP: &str = "aqs-projector";
/// Default bound on waiting for the broker, in milliseconds.
pub const DEFAULT_MESSAGE_TIMEOUT_MS: u64 = 10_000;

/// Dead-letter records produced and acknowledged at a time, in bytes of their JSON.
const DEAD_LETTER_CHUNK_BYTES: usize = 1024 * 1024;
/// Extra wait for delivery reports beyond the message timeout, after which `append` gives up
/// on its own (librdkafka reports every message by then; this is a second bound).
const DELIVERY_GRACE: Duration = Duration::from_secs(2);
/// Pause before offering a record again when the producer's local queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(5);
/// Longest single wait on the events consumer inside `poll`, so the reference consumer is
/// looked at again soon.
const WAIT_SLICE: Duration = Duration::from_millis(100);
/// Bound on a seek to be acknowledged by the fetcher.
const SEEK_TIMEOUT: Duration = Duration::from_secs(2);
/// High watermarks older than this are asked again before computing the lag.
const WATERMARK_MAX_AGE: Duration = Duration::from_secs(1);
/// Bound on one high-watermark query.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between two looks at the metadata while new topics become ready.
const METADATA_PAUSE: Duration = Duration::from_millis(50);

/// How the client resolves broker host names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AddressFamily {
    /// IPv4 and IPv6.
    Any,
    /// IPv4 only (the test broker listens on 127.0.0.1 only).
    #[default]
    V4,
    /// IPv6 only.
    V6,
}

impl AddressFamily {
    fn as_str(self) -> &'static str {
        match self {
            AddressFamily::Any => "any",
            AddressFamily::V4 => "v4",
            AddressFamily::V6 => "v6",
        }
    }
}

/// Where the Kafka log lives and how it is laid out.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct KafkaConfig {
    /// Kafka bootstrap servers (`host:port,...`). Unset: the embedded log is used.
    #[arg(long = "kafka-brokers", env = "AQS_KAFKA_BROKERS")]
    pub brokers: Option<String>,
    /// Topic of the agent events, partitioned by agent (created when missing).
    #[arg(long, env = "AQS_EVENTS_TOPIC", default_value = DEFAULT_EVENTS_TOPIC)]
    pub events_topic: String,
    /// Topic of the reference data, one partition (created when missing).
    #[arg(long, env = "AQS_REFERENCE_TOPIC", default_value = DEFAULT_REFERENCE_TOPIC)]
    pub reference_topic: String,
    /// Topic of refused input with its reasons (created when missing).
    #[arg(long, env = "AQS_DEAD_LETTER_TOPIC", default_value = DEFAULT_DEAD_LETTER_TOPIC)]
    pub dead_letter_topic: String,
    /// Partitions of the events topic; an existing topic must have exactly this many.
    #[arg(
        long,
        env = "AQS_EVENTS_PARTITIONS",
        default_value_t = crate::DEFAULT_PARTITIONS,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(i32::MAX))
    )]
    pub events_partitions: u32,
    /// Consumer group of the projector instances sharing the events partitions.
    #[arg(long, env = "AQS_PROJECTOR_GROUP", default_value = DEFAULT_PROJECTOR_GROUP)]
    pub projector_group: String,
    /// Replication factor of the topics created here (3 in production).
    #[arg(
        long = "kafka-replication-factor",
        env = "AQS_KAFKA_REPLICATION_FACTOR",
        default_value_t = 1,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub replication_factor: u16,
    /// Longest wait for the broker, in milliseconds: for an append to be acknowledged, and
    /// for each step of connecting.
    #[arg(
        long = "kafka-message-timeout-ms",
        env = "AQS_KAFKA_MESSAGE_TIMEOUT_MS",
        default_value_t = DEFAULT_MESSAGE_TIMEOUT_MS,
        value_parser = clap::value_parser!(u64).range(100..=i32::MAX as u64)
    )]
    pub message_timeout_ms: u64,
    /// Address family used to reach the brokers.
    #[arg(
        long = "kafka-address-family",
        env = "AQS_KAFKA_ADDRESS_FAMILY",
        value_enum,
        default_value_t
    )]
    pub address_family: AddressFamily,
    /// How long the group waits for a silent projector before moving its partitions to the
    /// others (librdkafka `session.timeout.ms`; the broker bounds it, 6000 at least by default).
    #[arg(
        long = "kafka-session-timeout-ms",
        env = "AQS_KAFKA_SESSION_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub session_timeout_ms: u64,
    /// How long and how much the dead letters are kept: the retention of the dead-letter
    /// topic created here (and the bounds of the embedded log's dead letters).
    #[command(flatten)]
    pub dead_letters: DeadLetterLimits,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: None,
            events_topic: DEFAULT_EVENTS_TOPIC.to_owned(),
            reference_topic: DEFAULT_REFERENCE_TOPIC.to_owned(),
            dead_letter_topic: DEFAULT_DEAD_LETTER_TOPIC.to_owned(),
            events_partitions: crate::DEFAULT_PARTITIONS,
            projector_group: DEFAULT_PROJECTOR_GROUP.to_owned(),
            replication_factor: 1,
            message_timeout_ms: DEFAULT_MESSAGE_TIMEOUT_MS,
            address_family: AddressFamily::default(),
            session_timeout_ms: 10_000,
            dead_letters: DeadLetterLimits::default(),
        }
    }
}

impl KafkaConfig {
    /// The defaults, with these bootstrap servers.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: Some(brokers.into()),
            ..Self::default()
        }
    }

    /// The bound on waiting for the broker.
    pub fn message_timeout(&self) -> Duration {
        Duration::from_millis(self.message_timeout_ms)
    }

    /// The bootstrap servers, or a configuration error when none are set.
    pub fn bootstrap_servers(&self) -> Result<&str, LogError> {
        self.brokers
            .as_deref()
            .map(str::trim)
            .filter(|brokers| !brokers.is_empty())
            .ok_or_else(|| {
                LogError::Config("no Kafka brokers configured (AQS_KAFKA_BROKERS)".into())
            })
    }

    /// Checks what clap cannot: set brokers, distinct non-empty names, sane numbers.
    pub fn validate(&self) -> Result<(), LogError> {
        self.bootstrap_servers()?;
        let topics = [
            &self.events_topic,
            &self.reference_topic,
            &self.dead_letter_topic,
        ];
        if topics.iter().any(|t| t.trim().is_empty()) || self.projector_group.trim().is_empty() {
            return Err(LogError::Config(
                "Kafka topic and group names must not be empty".into(),
            ));
        }
        if topics.iter().collect::<BTreeSet<_>>().len() != topics.len() {
            return Err(LogError::Config(format!(
                "the events, reference and dead-letter topics must differ: {topics:?}"
            )));
        }
        if self.events_partitions == 0 || i32::try_from(self.events_partitions).is_err() {
            return Err(LogError::Config(format!(
                "the events topic needs between 1 and {} partitions, not {}",
                i32::MAX,
                self.events_partitions
            )));
        }
        if self.replication_factor == 0 {
            return Err(LogError::Config(
                "the replication factor must be at least 1".into(),
            ));
        }
        if !(100..=i32::MAX as u64).contains(&self.message_timeout_ms) {
            return Err(LogError::Config(format!(
                "the Kafka message timeout must be between 100 ms and {} ms, not {}",
                i32::MAX,
                self.message_timeout_ms
            )));
        }
        Ok(())
    }

    /// Settings every client here shares. Topics are never created implicitly: a metadata
    /// request or a produce to a missing topic must not make a one-partition topic.
    fn client_config(&self, role: &str) -> Result<ClientConfig, LogError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.bootstrap_servers()?)
            .set("broker.address.family", self.address_family.as_str())
            .set("client.id", format!("aqs-{role}"))
            .set("allow.auto.create.topics", "false");
        Ok(config)
    }

    fn topic_of(&self, stream: Stream) -> &str {
        match stream {
            Stream::Events => &self.events_topic,
            Stream::Reference => &self.reference_topic,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Writing

/// The Kafka event log, for writers. Safe to share between threads.
pub struct KafkaLog {
    config: KafkaConfig,
    /// The producer and a generation, bumped when a producer in a fatal state is replaced.
    producer: RwLock<(u64, ThreadedProducer<DeliveryContext>)>,
}

impl fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaLog")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// Connects to the brokers, creates the three topics when missing and checks that the
    /// events topic has exactly the configured partition count (agents would move
    /// otherwise) and the reference topic exactly one. Each step waits at most the message
    /// timeout; an unreachable broker is [`LogError::Unavailable`].
    pub fn connect(config: &KafkaConfig) -> Result<Self, LogError> {
        config.validate()?;
        provision(config)?;
        Self::open_unchecked(config)
    }

    /// A writer that does not contact the broker now: no topic is created and the partition
    /// count is not checked. For a writer that must start while Kafka is away; prefer
    /// [`KafkaLog::connect`].
    pub fn open_unchecked(config: &KafkaConfig) -> Result<Self, LogError> {
        config.validate()?;
        Ok(Self {
            producer: RwLock::new((0, create_producer(config)?)),
            config: config.clone(),
        })
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// A reader for one projector instance: see [`KafkaConsumer::connect`].
    pub fn consumer(&self) -> Result<KafkaConsumer, LogError> {
        KafkaConsumer::connect(&self.config)
    }

    /// Produces the records and waits until each is acknowledged; their partitions and
    /// offsets in order. Fails as a whole when any is not acknowledged in time. Each payload
    /// is freed once the client has taken its copy, so a batch is not held twice.
    fn produce(&self, records: Vec<Outgoing<'_>>) -> Result<Vec<(i32, u64)>, LogError> {
        let (generation, producer) = {
            let current = self.producer.read().unwrap_or_else(PoisonError::into_inner);
            (current.0, current.1.clone())
        };
        let count = records.len();
        deliver(&producer, records, self.config.message_timeout()).map_err(|undelivered| {
            match undelivered {
                Undelivered::Failed {
                    index,
                    topic,
                    error,
                } => self.failed(generation, &producer, &topic, index, count, &error),
                Undelivered::Unacknowledged(why) => LogError::Unavailable(why),
            }
        })
    }

    /// The error for a record that could not be written; replaces a producer that librdkafka
    /// declared unusable (a fatal error of the idempotent producer).
    fn failed(
        &self,
        generation: u64,
        producer: &ThreadedProducer<DeliveryContext>,
        topic: &str,
        index: usize,
        batch: usize,
        error: &KafkaError,
    ) -> LogError {
        warn!(topic, index, batch, %error, "kafka did not take a record");
        if let Some((code, reason)) = producer.client().fatal_error() {
            error!(%code, reason, "kafka producer failed fatally; starting a new one");
            let mut current = self
                .producer
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if current.0 == generation {
                match create_producer(&self.config) {
                    Ok(fresh) => *current = (generation + 1, fresh),
                    Err(error) => error!(%error, "cannot create a new kafka producer"),
                }
            }
            return LogError::Unavailable(format!("{topic}: producer failed: {code}: {reason}"));
        }
        record_error(topic, index, error)
    }
}

/// The error for record `index` of a batch to `topic` that Kafka did not take.
fn record_error(topic: &str, index: usize, error: &KafkaError) -> LogError {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize) => {
            LogError::Config(format!(
                "{topic}: record {index} is too large for Kafka: {error}"
            ))
        }
        Some(RDKafkaErrorCode::UnknownPartition | RDKafkaErrorCode::UnknownTopic) => {
            LogError::Config(format!(
                "{topic}: {error} (does the topic exist with the configured partitions?)"
            ))
        }
        _ => LogError::Unavailable(format!("{topic}: {error}")),
    }
}

/// Why a batch was not delivered.
enum Undelivered {
    /// Record `index` (to `topic`) was refused or failed.
    Failed {
        index: usize,
        topic: String,
        error: KafkaError,
    },
    /// Some records were not acknowledged in time (or got no report).
    Unacknowledged(String),
}

/// Sends the records on `producer` and waits until each is acknowledged (at most `timeout`
/// and a grace period); their partitions and offsets in order.
fn deliver(
    producer: &ThreadedProducer<DeliveryContext>,
    records: Vec<Outgoing<'_>>,
    timeout: Duration,
) -> Result<Vec<(i32, u64)>, Undelivered> {
    let started = Instant::now();
    let deadline = started + timeout + DELIVERY_GRACE;
    let (reply, replies) = mpsc::channel();
    // Each payload is freed once the client has taken its copy, so a batch is not held twice.
    let topics: Vec<&str> = records.iter().map(|outgoing| outgoing.topic).collect();
    let count = records.len();
    for (index, outgoing) in records.into_iter().enumerate() {
        let opaque = Box::new(Delivery {
            index,
            reply: reply.clone(),
        });
        let mut record: BaseRecord<'_, [u8], [u8], Box<Delivery>> =
            BaseRecord::with_opaque_to(outgoing.topic, opaque).payload(&outgoing.payload[..]);
        if let Some(partition) = outgoing.partition {
            record = record.partition(partition);
        }
        if let Some(key) = outgoing.key {
            record = record.key(key);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    record = back;
                    thread::sleep(QUEUE_FULL_PAUSE);
                }
                Err((error, _)) => {
                    return Err(Undelivered::Failed {
                        index,
                        topic: topics[index].to_owned(),
                        error,
                    });
                }
            }
        }
    }
    drop(reply);

    let mut acknowledged: Vec<Option<(i32, u64)>> = vec![None; count];
    let mut missing = count;
    while missing > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match replies.recv_timeout(left) {
            Ok((index, Ok((partition, offset)))) => {
                let Ok(offset) = u64::try_from(offset) else {
                    return Err(Undelivered::Unacknowledged(format!(
                        "{}: acknowledged without an offset",
                        topics[index]
                    )));
                };
                if acknowledged[index].replace((partition, offset)).is_none() {
                    missing -= 1;
                }
            }
            Ok((index, Err(error))) => {
                return Err(Undelivered::Failed {
                    index,
                    topic: topics[index].to_owned(),
                    error,
                });
            }
            Err(RecvTimeoutError::Timeout) => {
                warn!(
                    records = count,
                    unacknowledged = missing,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "kafka did not acknowledge the batch in time"
                );
                return Err(Undelivered::Unacknowledged(format!(
                    "{missing} of {count} records not acknowledged within {timeout:?}"
                )));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Undelivered::Unacknowledged(format!(
                    "{missing} of {count} records got no delivery report"
                )));
            }
        }
    }
    debug!(
        records = count,
        micros = started.elapsed().as_micros() as u64,
        "batch acknowledged"
    );
    Ok(acknowledged.into_iter().flatten().collect())
}

/// The records of `events`, each to the partition [`PartitionId::of`] names, with those
/// partitions in the same order.
fn event_records<'a>(
    config: &'a KafkaConfig,
    events: &'a [Event],
) -> Result<(Vec<PartitionId>, Vec<Outgoing<'a>>), LogError> {
    let partitions = config.events_partitions;
    let mut targets = Vec::with_capacity(events.len());
    let mut records = Vec::with_capacity(events.len());
    for event in events {
        let target = PartitionId::of(event, partitions);
        let key = match event.route() {
            Route::Agent(agent_id) => Some(agent_id.as_bytes()),
            Route::Reference => None,
        };
        records.push(Outgoing {
            topic: config.topic_of(target.stream),
            // Explicit: below i32::MAX by `KafkaConfig::validate`.
            partition: Some(target.partition as i32),
            key,
            payload: serde_json::to_vec(event)?,
        });
        targets.push(target);
    }
    Ok((targets, records))
}

/// The positions of acknowledged records, checked against the partitions they were sent to.
fn record_positions(
    targets: Vec<PartitionId>,
    acknowledged: Vec<(i32, u64)>,
) -> Result<Vec<RecordPosition>, LogError> {
    targets
        .into_iter()
        .zip(acknowledged)
        .map(|(target, (partition, offset))| {
            if partition != target.partition as i32 {
                return Err(LogError::Unavailable(format!(
                    "kafka put a record for {target:?} on partition {partition}"
                )));
            }
            Ok(RecordPosition {
                partition: target,
                offset,
            })
        })
        .collect()
}

impl EventLog for KafkaLog {
    /// Every event is [`AppendOutcome::Appended`] once the batch is acknowledged; repeats are
    /// not detected here (the projector's ledger drops them by `event_id`).
    fn append(&self, events: &[Event]) -> Result<Vec<AppendOutcome>, LogError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (targets, records) = event_records(&self.config, events)?;
        let acknowledged = self.produce(records)?;
        Ok(record_positions(targets, acknowledged)?
            .into_iter()
            .map(|position| AppendOutcome::Appended {
                partition: position.partition,
                offset: position.offset,
            })
            .collect())
    }

    /// Produced a few records at a time ([`DEAD_LETTER_CHUNK_BYTES`]): a record is several
    /// times the size of its letter (the body is a JSON array of numbers), and the client
    /// copies it again, so a large batch of letters at once would cost many times its size.
    fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), LogError> {
        let mut records = Vec::new();
        let mut bytes = 0;
        for letter in letters {
            let payload = serde_json::to_vec(letter)?;
            bytes += payload.len();
            records.push(Outgoing {
                topic: &self.config.dead_letter_topic,
                partition: None,
                key: letter.event_id.as_deref().map(str::as_bytes),
                payload,
            });
            if bytes >= DEAD_LETTER_CHUNK_BYTES {
                self.produce(std::mem::take(&mut records))?;
                bytes = 0;
            }
        }
        if !records.is_empty() {
            self.produce(records)?;
        }
        Ok(())
    }

    fn partitions(&self) -> u32 {
        self.config.events_partitions
    }
}

/// One record to produce.
struct Outgoing<'a> {
    topic: &'a str,
    /// `None`: librdkafka's partitioner (dead letters only).
    partition: Option<i32>,
    key: Option<&'a [u8]>,
    payload: Vec<u8>,
}

/// A delivery report: the record's index in its batch, and its partition and offset.
type Report = (usize, Result<(i32, i64), KafkaError>);

/// What travels with a record to its delivery report.
struct Delivery {
    index: usize,
    reply: mpsc::Sender<Report>,
}

/// Routes delivery reports back to the `append` waiting for them.
struct DeliveryContext;

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka("producer", level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn!(role = "producer", %error, reason, "kafka client error");
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Delivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, delivery: Self::DeliveryOpaque) {
        let outcome = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((error, _)) => Err(error.clone()),
        };
        // The appender may have stopped waiting (its deadline passed); nothing to tell then.
        let _ = delivery.reply.send((delivery.index, outcome));
    }
}

fn create_producer(config: &KafkaConfig) -> Result<ThreadedProducer<DeliveryContext>, LogError> {
    let timeout_ms = config.message_timeout_ms.to_string();
    let mut client = config.client_config("eventlog")?;
    client
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", &timeout_ms)
        // A request in flight is bounded by this one, not by the message timeout.
        .set(
            "request.timeout.ms",
            config.message_timeout_ms.min(30_000).to_string(),
        );
    ThreadedProducer::from_config_and_context(&client, DeliveryContext)
        .map_err(|error| LogError::Config(format!("kafka producer: {error}")))
}

// ---------------------------------------------------------------------------------------
// Topics

/// Creates the missing topics, waits until they are usable and checks partition counts.
fn provision(config: &KafkaConfig) -> Result<(), LogError> {
    let timeout = config.message_timeout();
    let admin: AdminClient<LoggingContext> = AdminClient::from_config_and_context(
        &config.client_config("admin")?,
        LoggingContext { role: "admin" },
    )
    .map_err(|error| LogError::Config(format!("kafka admin client: {error}")))?;
    let metadata = admin
        .inner()
        .fetch_metadata(None, timeout)
        .map_err(|error| unreachable_broker(config, &error))?;
    let existing: BTreeSet<&str> = metadata
        .topics()
        .iter()
        .filter(|topic| topic.error().is_none())
        .map(|topic| topic.name())
        .collect();

    let partitions = config.events_partitions as i32;
    let replication = || TopicReplication::Fixed(i32::from(config.replication_factor));
    let min_insync = config
        .replication_factor
        .saturating_sub(1)
        .max(1)
        .to_string();
    let dead_letter_retention_ms = config.dead_letters.retention_ms();
    let dead_letter_retention_bytes = config.dead_letters.max_bytes.to_string();
    let dead_letter_segment_bytes = config.dead_letters.segment_bytes();
    let wanted = [
        NewTopic::new(&config.events_topic, partitions, replication())
            .set("cleanup.policy", "delete")
            .set("retention.ms", "-1")
            .set("retention.bytes", "-1")
            .set("min.insync.replicas", &min_insync),
        NewTopic::new(&config.reference_topic, 1, replication())
            .set("cleanup.policy", "delete")
            .set("retention.ms", "-1")
            .set("retention.bytes", "-1")
            .set("min.insync.replicas", &min_insync),
        NewTopic::new(&config.dead_letter_topic, 1, replication())
            .set("cleanup.policy", "delete")
            .set("retention.ms", &dead_letter_retention_ms)
            .set("retention.bytes", &dead_letter_retention_bytes)
            .set("segment.bytes", &dead_letter_segment_bytes)
            .set("min.insync.replicas", &min_insync),
    ];
    let missing: Vec<&NewTopic<'_>> = wanted
        .iter()
        .filter(|t| !existing.contains(t.name))
        .collect();
    let preexisting: Vec<&str> = [&config.events_topic, &config.reference_topic]
        .into_iter()
        .filter(|name| existing.contains(name.as_str()))
        .map(String::as_str)
        .collect();

    if !missing.is_empty() {
        let options = AdminOptions::new()
            .request_timeout(Some(timeout))
            .operation_timeout(Some(timeout));
        let results = block_on_until(
            admin.create_topics(missing.iter().copied(), &options),
            Instant::now() + timeout,
        )
        .ok_or_else(|| {
            LogError::Unavailable(format!(
                "creating Kafka topics: no answer within {timeout:?}"
            ))
        })?
        .map_err(|error| unreachable_broker(config, &error))?;
        for result in results {
            match result {
                Ok(topic) => info!(topic, "kafka topic created"),
                // Another instance was quicker: the checks below apply to its topic.
                Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    debug!(topic, "kafka topic already exists")
                }
                Err((
                    topic,
                    code @ (RDKafkaErrorCode::InvalidReplicationFactor
                    | RDKafkaErrorCode::InvalidPartitions
                    | RDKafkaErrorCode::InvalidConfig
                    | RDKafkaErrorCode::PolicyViolation
                    | RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed
                    | RDKafkaErrorCode::InvalidTopic),
                )) => {
                    return Err(LogError::Config(format!(
                        "creating Kafka topic {topic}: {code}"
                    )));
                }
                Err((topic, code)) => {
                    return Err(LogError::Unavailable(format!(
                        "creating Kafka topic {topic}: {code}"
                    )));
                }
            }
        }
    }

    let deadline = Instant::now() + timeout;
    loop {
        let metadata = admin
            .inner()
            .fetch_metadata(None, timeout)
            .map_err(|error| unreachable_broker(config, &error))?;
        match check_layout(config, &metadata, true)? {
            Layout::Ready => break,
            Layout::NotReady(why) if Instant::now() >= deadline => {
                return Err(LogError::Unavailable(format!(
                    "Kafka topics not ready after {timeout:?}: {why}"
                )));
            }
            Layout::NotReady(_) => thread::sleep(METADATA_PAUSE),
        }
    }
    warn_on_finite_retention(&admin, &preexisting, timeout);
    if existing.contains(config.dead_letter_topic.as_str()) {
        warn_on_unbounded_dead_letters(&admin, &config.dead_letter_topic, timeout);
    }
    Ok(())
}

enum Layout {
    Ready,
    NotReady(String),
}

/// Whether the metadata shows the topics with the configured partition counts and a leader
/// for every partition. A wrong partition count is an error.
fn check_layout(
    config: &KafkaConfig,
    metadata: &Metadata,
    with_dead_letters: bool,
) -> Result<Layout, LogError> {
    let mut expected = vec![
        (
            config.events_topic.as_str(),
            Some(config.events_partitions as usize),
        ),
        (config.reference_topic.as_str(), Some(1)),
    ];
    if with_dead_letters {
        expected.push((config.dead_letter_topic.as_str(), None));
    }
    for (name, partitions) in expected {
        let Some(topic) = metadata
            .topics()
            .iter()
            .find(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty())
        else {
            return Ok(Layout::NotReady(format!("topic {name} does not exist")));
        };
        if let Some(partitions) = partitions
            && topic.partitions().len() != partitions
        {
            return Err(LogError::Config(format!(
                "Kafka topic {name} has {} partitions, not {partitions}: agents would move partition",
                topic.partitions().len()
            )));
        }
        if let Some(partition) = topic
            .partitions()
            .iter()
            .find(|p| p.error().is_some() || p.leader() < 0)
        {
            return Ok(Layout::NotReady(format!(
                "{name} [{}] has no leader",
                partition.id()
            )));
        }
    }
    Ok(Layout::Ready)
}

/// A warning for a source-of-truth topic made elsewhere that deletes old records.
fn warn_on_finite_retention<C: ClientContext>(
    admin: &AdminClient<C>,
    topics: &[&str],
    timeout: Duration,
) {
    if topics.is_empty() {
        return;
    }
    let resources: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let Some(Ok(results)) = block_on_until(
        admin.describe_configs(&resources, &options),
        Instant::now() + timeout,
    ) else {
        debug!("could not read the retention of the kafka topics");
        return;
    };
    for resource in results.into_iter().flatten() {
        let value = |name: &str| resource.get(name).and_then(|entry| entry.value.clone());
        let retention_ms = value("retention.ms").unwrap_or_default();
        let retention_bytes = value("retention.bytes").unwrap_or_default();
        let cleanup_policy = value("cleanup.policy").unwrap_or_default();
        if retention_ms != "-1" || retention_bytes != "-1" || cleanup_policy.contains("compact") {
            warn!(
                resource = ?resource.specifier,
                retention_ms,
                retention_bytes,
                cleanup_policy,
                "kafka topic is a source of truth but may lose records; \
                 set retention.ms=-1, retention.bytes=-1, cleanup.policy=delete"
            );
        }
    }
}

/// A warning for a dead-letter topic made elsewhere (or before its bounds existed) that
/// keeps records without a bound on their age or their bytes.
fn warn_on_unbounded_dead_letters<C: ClientContext>(
    admin: &AdminClient<C>,
    topic: &str,
    timeout: Duration,
) {
    let resources = [ResourceSpecifier::Topic(topic)];
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let Some(Ok(results)) = block_on_until(
        admin.describe_configs(&resources, &options),
        Instant::now() + timeout,
    ) else {
        debug!("could not read the retention of the dead-letter topic");
        return;
    };
    for resource in results.into_iter().flatten() {
        let value = |name: &str| resource.get(name).and_then(|entry| entry.value.clone());
        let retention_ms = value("retention.ms").unwrap_or_default();
        let retention_bytes = value("retention.bytes").unwrap_or_default();
        if retention_ms == "-1" || retention_bytes == "-1" {
            warn!(
                topic,
                retention_ms,
                retention_bytes,
                "the dead-letter topic may grow without bound; give it a retention.ms and a \
                 retention.bytes (kafka-configs.sh --alter --entity-type topics --add-config)"
            );
        }
    }
}

fn unreachable_broker(config: &KafkaConfig, error: &KafkaError) -> LogError {
    LogError::Unavailable(format!(
        "Kafka at {} is not reachable: {error}",
        config.brokers.as_deref().unwrap_or_default()
    ))
}

// ---------------------------------------------------------------------------------------
// Reading

/// Reads the log for one projector instance: the events partitions its consumer group gives
/// it, and the whole reference topic.
///
/// Call [`LogConsumer::poll`] regularly: it also takes part in the group's rebalances.
pub struct KafkaConsumer {
    config: KafkaConfig,
    events: BaseConsumer<GroupContext>,
    reference: BaseConsumer<LoggingContext>,
    /// A client that reads nothing, for watermark queries: on the consumers' connections
    /// they would wait behind the long-polling fetches.
    offsets: BaseConsumer<LoggingContext>,
    shared: Arc<Mutex<Shared>>,
    /// Records read while waiting for the first assignment, handed out by the next poll.
    early: Vec<LogRecord>,
    /// Last known high watermark per partition, and when it was asked.
    watermarks: BTreeMap<PartitionId, (u64, Instant)>,
    /// Like `offsets`, with `read_uncommitted`: its "high watermark" is the real one, the end
    /// of the log including open transactions.
    uncommitted_offsets: BaseConsumer<LoggingContext>,
    /// Per partition with records past its last stable offset: that offset, and since when.
    stable_since: BTreeMap<PartitionId, (u64, Instant, SystemTime)>,
}

impl fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = lock(&self.shared);
        f.debug_struct("KafkaConsumer")
            .field("group", &self.config.projector_group)
            .field("assigned", &shared.assigned)
            .field("positions", &shared.positions)
            .finish_non_exhaustive()
    }
}

/// State the consumer and its rebalance hook share.
#[derive(Debug, Default)]
struct Shared {
    /// Next offset to hand out, per partition: set by `seek`, advanced by `poll`. A partition
    /// the group assigns is fetched from here (0 when absent).
    positions: Positions,
    /// Events partitions the group currently gives this instance.
    assigned: BTreeSet<u32>,
    /// Assignments received so far.
    assignments: u64,
    /// Partitions whose fetching was (re)started at this offset, for as long as that fetch
    /// goes on (until the next seek or assignment).
    restarted_at: BTreeMap<PartitionId, u64>,
    /// Partitions whose fetch position must be moved to their position.
    to_seek: BTreeSet<PartitionId>,
}

impl KafkaConsumer {
    /// Joins the projector group on the events topic and assigns the reference topic's
    /// partition. Checks that both topics exist with the configured partition counts, then
    /// waits (up to the message timeout) for the group's first assignment, so that
    /// [`LogConsumer::assignment`] answers with real partitions from the start.
    pub fn connect(config: &KafkaConfig) -> Result<Self, LogError> {
        config.validate()?;
        let timeout = config.message_timeout();
        let shared = Arc::new(Mutex::new(Shared::default()));

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
            .set("partition.assignment.strategy", "cooperative-sticky");
        let events: BaseConsumer<GroupContext> = BaseConsumer::from_config_and_context(
            &group,
            GroupContext {
                topic: config.events_topic.clone(),
                shared: Arc::clone(&shared),
            },
        )
        .map_err(|error| LogError::Config(format!("kafka consumer: {error}")))?;

        // librdkafka wants a group id for a manual assignment, but this consumer never joins
        // the group and never commits.
        let mut fixed = config.client_config("projector-reference")?;
        fixed
            .set("group.id", &config.projector_group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed");
        let reference: BaseConsumer<LoggingContext> =
            BaseConsumer::from_config_and_context(&fixed, LoggingContext { role: "projector" })
                .map_err(|error| LogError::Config(format!("kafka consumer: {error}")))?;

        // With read_committed, the "high watermark" it asks for is the last stable offset.
        let mut offsets_client = config.client_config("projector-offsets")?;
        offsets_client.set("isolation.level", "read_committed");
        let offsets: BaseConsumer<LoggingContext> = BaseConsumer::from_config_and_context(
            &offsets_client,
            LoggingContext { role: "projector" },
        )
        .map_err(|error| LogError::Config(format!("kafka client: {error}")))?;
        let mut uncommitted_client = config.client_config("projector-offsets")?;
        uncommitted_client.set("isolation.level", "read_uncommitted");
        let uncommitted_offsets: BaseConsumer<LoggingContext> =
            BaseConsumer::from_config_and_context(
                &uncommitted_client,
                LoggingContext { role: "projector" },
            )
            .map_err(|error| LogError::Config(format!("kafka client: {error}")))?;

        let metadata = offsets
            .fetch_metadata(None, timeout)
            .map_err(|error| unreachable_broker(config, &error))?;
        if let Layout::NotReady(why) = check_layout(config, &metadata, false)? {
            return Err(LogError::Unavailable(format!("Kafka log not ready: {why}")));
        }

        events.subscribe(&[&config.events_topic]).map_err(|error| {
            LogError::Unavailable(format!("subscribing to {}: {error}", config.events_topic))
        })?;
        let reference_partition = PartitionId {
            stream: Stream::Reference,
            partition: 0,
        };
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&config.reference_topic, 0, Offset::Offset(0))
            .map_err(|error| {
                LogError::Config(format!("assigning {}: {error}", config.reference_topic))
            })?;
        reference.assign(&assignment).map_err(|error| {
            LogError::Unavailable(format!("assigning {}: {error}", config.reference_topic))
        })?;
        lock(&shared).restarted_at.insert(reference_partition, 0);

        let mut consumer = Self {
            config: config.clone(),
            events,
            reference,
            offsets,
            shared,
            early: Vec::new(),
            watermarks: BTreeMap::new(),
            uncommitted_offsets,
            stable_since: BTreeMap::new(),
        };
        consumer.await_first_assignment(Instant::now() + timeout)?;
        Ok(consumer)
    }

    fn await_first_assignment(&mut self, deadline: Instant) -> Result<(), LogError> {
        while lock(&self.shared).assignments == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                warn!(
                    group = self.config.projector_group,
                    "no partition assignment from the consumer group yet; continuing"
                );
                return Ok(());
            }
            let mut early = Vec::new();
            self.receive(Stream::Events, left.min(WAIT_SLICE), &mut early)?;
            self.early.append(&mut early);
        }
        Ok(())
    }

    /// Moves the fetch position of partitions marked `to_seek` to their position. A partition
    /// whose fetcher has not started yet stays marked and is tried again at the next poll.
    fn apply_seeks(&mut self) -> Result<(), LogError> {
        let targets: Vec<(PartitionId, u64)> = {
            let mut shared = lock(&self.shared);
            let assigned = shared.assigned.clone();
            shared
                .to_seek
                .retain(|p| p.stream == Stream::Reference || assigned.contains(&p.partition));
            shared
                .to_seek
                .iter()
                .map(|p| (*p, shared.positions.get(p).copied().unwrap_or(0)))
                .collect()
        };
        if targets.is_empty() {
            return Ok(());
        }
        for stream in [Stream::Reference, Stream::Events] {
            let topic = self.config.topic_of(stream).to_owned();
            let mut list = TopicPartitionList::new();
            for (partition, offset) in targets.iter().filter(|(p, _)| p.stream == stream) {
                list.add_partition_offset(
                    &topic,
                    partition.partition as i32,
                    Offset::Offset(*offset as i64),
                )
                .map_err(|error| LogError::Unavailable(format!("seeking {topic}: {error}")))?;
            }
            if list.count() == 0 {
                continue;
            }
            let result = match stream {
                Stream::Events => self.events.seek_partitions(list, SEEK_TIMEOUT),
                Stream::Reference => self.reference.seek_partitions(list, SEEK_TIMEOUT),
            };
            let list = match result {
                Ok(list) => list,
                Err(error) => {
                    debug!(topic, %error, "seek not applied yet; retried at the next poll");
                    continue;
                }
            };
            let mut shared = lock(&self.shared);
            for element in list.elements() {
                let partition = PartitionId {
                    stream,
                    partition: element.partition() as u32,
                };
                let Offset::Offset(offset) = element.offset() else {
                    continue;
                };
                match element.error() {
                    Ok(()) => {
                        shared.to_seek.remove(&partition);
                        shared.restarted_at.insert(partition, offset as u64);
                        debug!(
                            topic,
                            partition = partition.partition,
                            offset,
                            "fetch position moved"
                        );
                    }
                    Err(error) => {
                        debug!(topic, partition = partition.partition, %error, "seek not applied yet; retried at the next poll");
                    }
                }
            }
        }
        Ok(())
    }

    /// Takes messages from one consumer: the first waits up to `wait`, the rest are taken
    /// while immediately available, up to `max` records in `records`.
    fn drain(
        &self,
        stream: Stream,
        max: usize,
        wait: Duration,
        records: &mut Vec<LogRecord>,
    ) -> Result<(), LogError> {
        let mut wait = wait;
        while records.len() < max {
            if !self.receive(stream, wait, records)? {
                return Ok(());
            }
            wait = Duration::ZERO;
        }
        Ok(())
    }

    /// Polls one consumer once; whether something (a message or an event) came.
    fn receive(
        &self,
        stream: Stream,
        wait: Duration,
        records: &mut Vec<LogRecord>,
    ) -> Result<bool, LogError> {
        let polled = match stream {
            Stream::Events => self.events.poll(wait),
            Stream::Reference => self.reference.poll(wait),
        };
        let message = match polled {
            None => return Ok(false),
            Some(Ok(message)) => message,
            Some(Err(error)) => {
                let client = match stream {
                    Stream::Events => self.events.client().fatal_error(),
                    Stream::Reference => self.reference.client().fatal_error(),
                };
                if let Some((code, reason)) = client {
                    return Err(LogError::Unavailable(format!(
                        "kafka consumer failed: {code}: {reason}"
                    )));
                }
                // librdkafka recovers by itself (reconnects, resets an out-of-range offset).
                warn!(stream = ?stream, %error, "kafka consumer error");
                return Ok(true);
            }
        };
        if let Some(record) = self.admit(stream, &message)? {
            records.push(record);
        }
        Ok(true)
    }

    /// The position guard: a message becomes a record only if it is the next one the
    /// projector expects on that partition, or a later one of the fetch that (re)started at
    /// the partition's position (read with `read_committed`, the offsets in between are
    /// transaction markers and aborted records, or records removed by retention). Anything
    /// else comes from a fetch that started elsewhere (a stale prefetch, the group's
    /// committed offset, a seek not yet applied) and makes the partition seek back to its
    /// position.
    fn admit(
        &self,
        stream: Stream,
        message: &BorrowedMessage<'_>,
    ) -> Result<Option<LogRecord>, LogError> {
        let (Ok(partition), Ok(offset)) = (
            u32::try_from(message.partition()),
            u64::try_from(message.offset()),
        ) else {
            return Ok(None);
        };
        let partition = PartitionId { stream, partition };
        let mut shared = lock(&self.shared);
        if stream == Stream::Events && !shared.assigned.contains(&partition.partition) {
            return Ok(None);
        }
        let expected = shared.positions.get(&partition).copied().unwrap_or(0);
        // Where the fetch delivering this partition (re)started, if it started at a position.
        let fetch_start = shared
            .restarted_at
            .get(&partition)
            .copied()
            .filter(|_| !shared.to_seek.contains(&partition));
        let mut gap_after_restart = false;
        let take = match fetch_start {
            _ if offset == expected => true,
            Some(start) if offset > expected => {
                gap_after_restart = start == expected;
                true
            }
            Some(start) if start == expected => {
                return Err(LogError::Config(format!(
                    "{} [{}]: position {expected} is past the end of the log (it restarted at {offset}); \
                     the topic was recreated or truncated, so the projector must be rebuilt",
                    message.topic(),
                    partition.partition
                )));
            }
            _ => {
                debug!(
                    topic = message.topic(),
                    partition = partition.partition,
                    expected,
                    offset,
                    "record not at the position; seeking"
                );
                shared.to_seek.insert(partition);
                false
            }
        };
        if !take {
            return Ok(None);
        }
        shared.positions.insert(partition, offset + 1);
        shared.to_seek.remove(&partition);
        drop(shared);
        if gap_after_restart {
            self.report_gap(message.topic(), partition, expected, offset);
        }
        Ok(Some(LogRecord {
            partition,
            offset,
            bytes: message.payload().unwrap_or_default().to_vec(),
        }))
    }

    /// Tells whether a gap found where fetching restarted lost records: below the start of
    /// the log they were deleted (retention); above it they were never records for readers
    /// (transaction markers, aborted transactions), which is normal.
    fn report_gap(&self, topic: &str, partition: PartitionId, expected: u64, offset: u64) {
        let low = self
            .offsets
            .fetch_watermarks(topic, partition.partition as i32, WATERMARK_TIMEOUT)
            .ok()
            .and_then(|(low, _)| u64::try_from(low).ok());
        match low {
            Some(low) if expected < low => warn!(
                topic,
                partition = partition.partition,
                expected,
                offset,
                log_start = low,
                "records missing from the kafka log (deleted by retention); continuing after the gap"
            ),
            _ => debug!(
                topic,
                partition = partition.partition,
                expected,
                offset,
                "no records between the position and the next one (transaction markers)"
            ),
        }
    }

    /// Per partition whose fetch started at its position and goes on: the next offset to
    /// hand out, and how far librdkafka has read it (its application position, which moves
    /// past transaction markers and aborted records that never become messages).
    fn fetched_positions(&self) -> BTreeMap<PartitionId, (u64, u64)> {
        let mut fetched = BTreeMap::new();
        let shared = lock(&self.shared);
        for stream in [Stream::Reference, Stream::Events] {
            let list = match stream {
                Stream::Events => self.events.position(),
                Stream::Reference => self.reference.position(),
            };
            let Ok(list) = list else { continue };
            for element in list.elements_for_topic(self.config.topic_of(stream)) {
                let (Ok(number), Offset::Offset(read)) =
                    (u32::try_from(element.partition()), element.offset())
                else {
                    continue;
                };
                let partition = PartitionId {
                    stream,
                    partition: number,
                };
                let Ok(read) = u64::try_from(read) else {
                    continue;
                };
                let next = shared.positions.get(&partition).copied().unwrap_or(0);
                let streaming = shared.restarted_at.contains_key(&partition)
                    && !shared.to_seek.contains(&partition);
                if streaming && read >= next {
                    fetched.insert(partition, (next, read));
                }
            }
        }
        fetched
    }

    fn high_watermark(&mut self, partition: PartitionId) -> Option<u64> {
        if let Some((high, asked)) = self.watermarks.get(&partition)
            && asked.elapsed() < WATERMARK_MAX_AGE
        {
            return Some(*high);
        }
        let topic = self.config.topic_of(partition.stream);
        let fetched =
            self.offsets
                .fetch_watermarks(topic, partition.partition as i32, WATERMARK_TIMEOUT);
        match fetched {
            Ok((_, high)) => {
                let high = u64::try_from(high).ok()?;
                self.watermarks.insert(partition, (high, Instant::now()));
                Some(high)
            }
            Err(error) => {
                debug!(topic, partition = partition.partition, %error, "no high watermark");
                None
            }
        }
    }
}

impl LogConsumer for KafkaConsumer {
    /// The reference partition, then the events partitions the group currently gives this
    /// instance. Changes only inside [`LogConsumer::poll`].
    fn assignment(&mut self) -> Vec<PartitionId> {
        let shared = lock(&self.shared);
        std::iter::once(PartitionId {
            stream: Stream::Reference,
            partition: 0,
        })
        .chain(shared.assigned.iter().map(|&partition| PartitionId {
            stream: Stream::Events,
            partition,
        }))
        .collect()
    }

    /// Remembers the positions (also for partitions assigned later) and moves the fetch
    /// position of every owned partition there.
    fn seek(&mut self, positions: &Positions) -> Result<(), LogError> {
        self.early.clear();
        {
            let mut shared = lock(&self.shared);
            shared.positions = positions.clone();
            let owned: Vec<PartitionId> = std::iter::once(PartitionId {
                stream: Stream::Reference,
                partition: 0,
            })
            .chain(shared.assigned.iter().map(|&partition| PartitionId {
                stream: Stream::Events,
                partition,
            }))
            .collect();
            shared.restarted_at.clear();
            shared.to_seek.extend(owned);
        }
        self.apply_seeks()
    }

    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<LogRecord>, LogError> {
        let deadline = Instant::now() + timeout;
        let mut records = std::mem::take(&mut self.early);
        if max == 0 {
            self.early = records;
            return Ok(Vec::new());
        }
        if records.len() > max {
            self.early = records.split_off(max);
            return Ok(records);
        }
        loop {
            self.apply_seeks()?;
            self.drain(Stream::Reference, max, Duration::ZERO, &mut records)?;
            self.drain(Stream::Events, max, Duration::ZERO, &mut records)?;
            let left = deadline.saturating_duration_since(Instant::now());
            if !records.is_empty() || left.is_zero() {
                return Ok(records);
            }
            // Idle: wait on the events consumer (it also serves the group's rebalances).
            self.drain(Stream::Events, max, left.min(WAIT_SLICE), &mut records)?;
        }
    }

    /// Commits the events positions of the owned partitions to the group (asynchronously):
    /// for monitoring only; reading never starts from them.
    fn report_progress(&mut self, positions: &Positions) -> Result<(), LogError> {
        let assigned = lock(&self.shared).assigned.clone();
        let mut list = TopicPartitionList::new();
        for partition in assigned {
            let id = PartitionId {
                stream: Stream::Events,
                partition,
            };
            if let Some(&offset) = positions.get(&id) {
                list.add_partition_offset(
                    &self.config.events_topic,
                    partition as i32,
                    Offset::Offset(offset as i64),
                )
                .map_err(|error| LogError::Unavailable(format!("reporting progress: {error}")))?;
            }
        }
        if list.count() == 0 {
            return Ok(());
        }
        self.events
            .commit(&list, CommitMode::Async)
            .map_err(|error| LogError::Unavailable(format!("reporting progress to Kafka: {error}")))
    }

    /// Last stable offset (the end of what `read_committed` readers see) minus position over
    /// the owned partitions (at most a second old); `None` when the broker does not answer.
    /// Offsets after the last record handed out that the fetch went past without a record
    /// (transaction markers) count as read once every record handed out is in `positions`.
    fn lag(&mut self, positions: &Positions) -> Option<u64> {
        // Serves the client's queued events (errors); it has no messages.
        let _ = self.offsets.poll(Duration::ZERO);
        let fetched = self.fetched_positions();
        let mut lag = 0;
        for partition in self.assignment() {
            let high = self.high_watermark(partition)?;
            let mut position = positions.get(&partition).copied().unwrap_or(0);
            if let Some(&(handed_out, read)) = fetched.get(&partition)
                && position >= handed_out
            {
                position = position.max(read);
            }
            lag += high.saturating_sub(position);
        }
        Some(lag)
    }

    /// Asks the last stable offset (at most a second old, as for the lag) and the high
    /// watermark of every owned partition; stops at the first the broker does not answer.
    fn unstable_tails(&mut self) -> Vec<UnstableTail> {
        let _ = self.uncommitted_offsets.poll(Duration::ZERO);
        let owned = self.assignment();
        self.stable_since
            .retain(|partition, _| owned.contains(partition));
        let mut tails = Vec::new();
        for partition in owned {
            let Some(last_stable) = self.high_watermark(partition) else {
                break;
            };
            let topic = self.config.topic_of(partition.stream).to_owned();
            let high = self.uncommitted_offsets.fetch_watermarks(
                &topic,
                partition.partition as i32,
                WATERMARK_TIMEOUT,
            );
            let high_watermark = match high.map(|(_, high)| u64::try_from(high)) {
                Ok(Ok(high)) => high,
                Ok(Err(_)) => continue,
                Err(error) => {
                    debug!(topic, partition = partition.partition, %error, "no high watermark");
                    break;
                }
            };
            if high_watermark <= last_stable {
                self.stable_since.remove(&partition);
                continue;
            }
            let since = self
                .stable_since
                .entry(partition)
                .or_insert_with(|| (last_stable, Instant::now(), SystemTime::now()));
            if since.0 != last_stable {
                *since = (last_stable, Instant::now(), SystemTime::now());
            }
            tails.push(UnstableTail {
                partition,
                topic,
                last_stable,
                high_watermark,
                stable_since: since.2,
                unchanged_for: since.1.elapsed(),
            });
        }
        tails
    }
}

/// The events consumer's context: starts every assigned partition at the projector's
/// position instead of the group's committed offset.
struct GroupContext {
    topic: String,
    shared: Arc<Mutex<Shared>>,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka("projector", level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn!(role = "projector", %error, reason, "kafka client error");
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        event: RDKafkaRespErr,
        list: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let partitions: Vec<u32> = list
            .elements_for_topic(&self.topic)
            .iter()
            .filter_map(|element| u32::try_from(element.partition()).ok())
            .collect();
        let mut shared = lock(&self.shared);
        match event {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                for &partition in &partitions {
                    let id = PartitionId {
                        stream: Stream::Events,
                        partition,
                    };
                    let position = shared.positions.get(&id).copied().unwrap_or(0);
                    if let Err(error) = list.set_partition_offset(
                        &self.topic,
                        partition as i32,
                        Offset::Offset(position as i64),
                    ) {
                        error!(topic = self.topic, partition, %error, "cannot set the start offset");
                    }
                    shared.restarted_at.insert(id, position);
                    shared.to_seek.remove(&id);
                }
                let result = if cooperative {
                    consumer.incremental_assign(list)
                } else {
                    shared.assigned.clear();
                    consumer.assign(list)
                };
                match result {
                    Ok(()) => {
                        shared.assigned.extend(partitions.iter().copied());
                        info!(
                            topic = self.topic,
                            added = ?partitions,
                            owned = ?shared.assigned,
                            "kafka partitions assigned"
                        );
                    }
                    Err(error) => {
                        error!(topic = self.topic, %error, "kafka partition assignment failed")
                    }
                }
                shared.assignments += 1;
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let lost = consumer.assignment_lost();
                let result = if cooperative {
                    consumer.incremental_unassign(list)
                } else {
                    consumer.unassign()
                };
                if let Err(error) = result {
                    error!(topic = self.topic, %error, "kafka partition revocation failed");
                }
                if cooperative {
                    for partition in &partitions {
                        shared.assigned.remove(partition);
                    }
                } else {
                    shared.assigned.clear();
                }
                let assigned = shared.assigned.clone();
                shared.restarted_at.retain(|p, _| {
                    p.stream == Stream::Reference || assigned.contains(&p.partition)
                });
                info!(topic = self.topic, removed = ?partitions, lost, owned = ?shared.assigned, "kafka partitions revoked");
            }
            other => {
                error!(topic = self.topic, code = %RDKafkaErrorCode::from(other), "kafka rebalance failed");
                let result = if cooperative {
                    consumer.incremental_unassign(list)
                } else {
                    consumer.unassign()
                };
                if let Err(error) = result {
                    error!(topic = self.topic, %error, "kafka partition revocation failed");
                }
                shared.assigned.clear();
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => debug!(
                topic = self.topic,
                partitions = offsets.count(),
                "progress reported"
            ),
            Err(error) => warn!(topic = self.topic, %error, "reporting progress to kafka failed"),
        }
    }
}

/// A context that only routes librdkafka's logs to `tracing`.
struct LoggingContext {
    role: &'static str,
}

impl ClientContext for LoggingContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka(self.role, level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn!(role = self.role, %error, reason, "kafka client error");
    }
}

impl ConsumerContext for LoggingContext {}

fn log_librdkafka(role: &str, level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            error!(target: "librdkafka", role, facility, "{message}");
        }
        RDKafkaLogLevel::Warning => warn!(target: "librdkafka", role, facility, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            info!(target: "librdkafka", role, facility, "{message}")
        }
        RDKafkaLogLevel::Debug => debug!(target: "librdkafka", role, facility, "{message}"),
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs a future of the admin client (completed by librdkafka's threads) on this thread, up
/// to `deadline`; `None` when it has not finished by then.
fn block_on_until<F: Future>(future: F, deadline: Instant) -> Option<F::Output> {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return Some(output);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        thread::park_timeout(left);
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        kafka: KafkaConfig,
    }

    #[test]
    fn command_line_defaults_and_variables_match_the_default_config() {
        use clap::CommandFactory;

        let command = Cli::command();
        command.clone().debug_assert();
        let argument = |id: &str| {
            let argument = command
                .get_arguments()
                .find(|a| a.get_id() == id)
                .unwrap_or_else(|| panic!("no argument {id}"));
            let default = argument
                .get_default_values()
                .first()
                .map(|v| v.to_string_lossy().into_owned());
            let env = argument.get_env().map(|v| v.to_string_lossy().into_owned());
            (default, env)
        };
        let defaults = KafkaConfig::default();
        let expected = [
            ("brokers", None, "AQS_KAFKA_BROKERS"),
            (
                "events_topic",
                Some(defaults.events_topic.clone()),
                "AQS_EVENTS_TOPIC",
            ),
            (
                "reference_topic",
                Some(defaults.reference_topic.clone()),
                "AQS_REFERENCE_TOPIC",
            ),
            (
                "dead_letter_topic",
                Some(defaults.dead_letter_topic.clone()),
                "AQS_DEAD_LETTER_TOPIC",
            ),
            (
                "events_partitions",
                Some("12".into()),
                "AQS_EVENTS_PARTITIONS",
            ),
            (
                "projector_group",
                Some(defaults.projector_group.clone()),
                "AQS_PROJECTOR_GROUP",
            ),
            (
                "replication_factor",
                Some("1".into()),
                "AQS_KAFKA_REPLICATION_FACTOR",
            ),
            (
                "message_timeout_ms",
                Some("10000".into()),
                "AQS_KAFKA_MESSAGE_TIMEOUT_MS",
            ),
            (
                "address_family",
                Some("v4".into()),
                "AQS_KAFKA_ADDRESS_FAMILY",
            ),
            (
                "max_age_days",
                Some("90".into()),
                "AQS_DEAD_LETTER_MAX_AGE_DAYS",
            ),
            (
                "max_bytes",
                Some("1073741824".into()),
                "AQS_DEAD_LETTER_MAX_BYTES",
            ),
        ];
        for (id, default, env) in expected {
            assert_eq!(argument(id), (default, Some(env.to_owned())), "{id}");
        }
        assert_eq!(defaults.events_topic, "aqs.events");
        assert_eq!(defaults.reference_topic, "aqs.reference");
        assert_eq!(defaults.dead_letter_topic, "aqs.dead-letter");
        assert_eq!(defaults.projector_group, "aqs-projector");
        assert_eq!(defaults.message_timeout(), Duration::from_secs(10));

        // Explicit arguments win over the environment: these parse the same everywhere.
        assert!(Cli::try_parse_from(["aqs", "--events-partitions", "0"]).is_err());
        assert!(Cli::try_parse_from(["aqs", "--kafka-address-family", "v5"]).is_err());
        let parsed = Cli::try_parse_from([
            "aqs",
            "--kafka-brokers",
            "k1:9092,k2:9092",
            "--events-partitions",
            "24",
        ])
        .expect("parse");
        assert_eq!(parsed.kafka.brokers.as_deref(), Some("k1:9092,k2:9092"));
        assert_eq!(parsed.kafka.events_partitions, 24);
    }

    #[test]
    fn validation_refuses_unusable_settings() {
        assert!(matches!(
            KafkaConfig::default().validate(),
            Err(LogError::Config(_))
        ));
        assert!(KafkaConfig::new("127.0.0.1:9092").validate().is_ok());
        let same_topics = KafkaConfig {
            reference_topic: DEFAULT_EVENTS_TOPIC.into(),
            ..KafkaConfig::new("b:9092")
        };
        assert!(matches!(same_topics.validate(), Err(LogError::Config(_))));
        let no_partitions = KafkaConfig {
            events_partitions: 0,
            ..KafkaConfig::new("b:9092")
        };
        assert!(matches!(no_partitions.validate(), Err(LogError::Config(_))));
        assert!(matches!(
            KafkaLog::connect(&KafkaConfig::default()),
            Err(LogError::Config(_))
        ));
    }
}
