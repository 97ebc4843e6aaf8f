//! Writing: the idempotent producer behind [`KafkaLog`], and delivering a batch of records.

use std::fmt;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{PoisonError, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use aqs_schemas::{Event, Route};
use rdkafka::client::ClientContext;
use rdkafka::config::{FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use tracing::{debug, error, warn};

use super::KafkaConfig;
use super::client::log_librdkafka;
use super::consumer::KafkaConsumer;
use super::readiness::KafkaReadiness;
use super::topics::provision;
use crate::{AppendOutcome, DeadLetter, EventLog, LogError, PartitionId, RecordPosition};

/// Dead-letter records produced and acknowledged at a time, in bytes of their JSON.
const DEAD_LETTER_CHUNK_BYTES: usize = 1024 * 1024;
/// Extra wait for delivery reports beyond the message timeout, after which `append` gives up
/// on its own (librdkafka reports every message by then; this is a second bound).
const DELIVERY_GRACE: Duration = Duration::from_secs(2);
/// Pause before offering a record again when the producer's local queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(5);

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

    /// The probe of whether this log can take events now, each check waiting at most
    /// `timeout`: see [`KafkaReadiness::check`].
    pub fn readiness(&self, timeout: Duration) -> Result<KafkaReadiness, LogError> {
        KafkaReadiness::new(&self.config, timeout)
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
pub(super) fn record_error(topic: &str, index: usize, error: &KafkaError) -> LogError {
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
pub(super) enum Undelivered {
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
pub(super) fn deliver(
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
        if let Some(headers) = outgoing.headers {
            record = record.headers(headers);
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
pub(super) fn event_records<'a>(
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
            headers: None,
        });
        targets.push(target);
    }
    Ok((targets, records))
}

/// The positions of acknowledged records, checked against the partitions they were sent to.
pub(super) fn record_positions(
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
                headers: None,
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
pub(super) struct Outgoing<'a> {
    topic: &'a str,
    /// `None`: librdkafka's partitioner (dead letters only).
    partition: Option<i32>,
    key: Option<&'a [u8]>,
    payload: Vec<u8>,
    /// `None` for events and dead letters; the release records' mark.
    headers: Option<OwnedHeaders>,
}

impl<'a> Outgoing<'a> {
    /// A record without key or value, to one partition, carrying only `headers`.
    pub(super) fn headers_only(topic: &'a str, partition: i32, headers: OwnedHeaders) -> Self {
        Self {
            topic,
            partition: Some(partition),
            key: None,
            payload: Vec::new(),
            headers: Some(headers),
        }
    }
}

/// A delivery report: the record's index in its batch, and its partition and offset.
pub(super) type Report = (usize, Result<(i32, i64), KafkaError>);

/// What travels with a record to its delivery report.
pub(super) struct Delivery {
    index: usize,
    reply: mpsc::Sender<Report>,
}

/// Routes delivery reports back to the `append` waiting for them.
pub(super) struct DeliveryContext;

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
