//! Reading the topics back for lineage ([`History`]): each partition asked for, from its
//! first record to its last stable offset taken when its read starts.
//!
//! Clients of its own per read (one per topic, reading the topic's partitions asked for at
//! once), outside every consumer group: partitions are assigned by hand, nothing is
//! committed, so a read neither moves the projectors' partitions nor shows up as their
//! progress. `read_committed`, as the projector reads: records of aborted or
//! still open transactions are never handed over. Offsets are not dense on Kafka
//! (transaction markers and aborted records take offsets), so a read ends on reaching the
//! end offset or the partition's end, never after a count of records; records appended
//! after the end offset was taken are not waited for.
//!
//! `appended_at_ms` is the record's timestamp: the broker's clock when the topic keeps
//! `message.timestamp.type=LogAppendTime` (as the topics aqs creates do), the producer's
//! clock at the time it produced the record with `CreateTime` (Kafka's default, for topics
//! made elsewhere).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::KafkaConfig;
use super::client::LoggingContext;
use super::release::is_release_record;
use crate::history::{History, TimedRecord};
use crate::{LogError, PartitionId, Stream};

/// Kilobytes a reader's client fetches ahead at most (librdkafka's
/// `queued.max.messages.kbytes`).
const QUEUED_KBYTES: u32 = 16 * 1024;

/// How long one poll waits before the read looks at its time limit again.
const POLL_WAIT: Duration = Duration::from_millis(100);

/// The Kafka topics read back for lineage (see the module).
#[derive(Debug, Clone)]
pub struct KafkaHistory {
    config: KafkaConfig,
}

impl KafkaHistory {
    /// A reader of the topics `config` names; it talks to the brokers only when it reads.
    pub fn new(config: &KafkaConfig) -> Result<Self, LogError> {
        config.validate()?;
        Ok(Self {
            config: config.clone(),
        })
    }

    fn client(&self) -> Result<BaseConsumer<LoggingContext>, LogError> {
        let mut config = self.config.client_config("lineage")?;
        config
            // librdkafka wants a group id for a consumer; with partitions assigned by hand
            // and nothing committed, this one never joins it.
            .set(
                "group.id",
                format!("{}-lineage", self.config.projector_group),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            // Do not idle a second between fetches when the local queue fills (as the
            // projector's reader, see `reader_clients`).
            .set("fetch.queue.backoff.ms", "10")
            // Bounds what a request holds fetched ahead (64 MB by default): the records are
            // copied out and folded as they come, and requests may run side by side.
            .set("queued.max.messages.kbytes", QUEUED_KBYTES.to_string());
        BaseConsumer::from_config_and_context(&config, LoggingContext { role: "lineage" })
            .map_err(|error| LogError::Config(format!("kafka lineage reader: {error}")))
    }

    fn brokers(&self) -> &str {
        self.config.brokers.as_deref().unwrap_or_default()
    }

    /// Checks that `topic` exists with `partitions` partitions: a topic of another layout
    /// would put agents on other partitions than the ones read.
    fn check_topic(
        &self,
        client: &BaseConsumer<LoggingContext>,
        topic: &str,
        partitions: u32,
    ) -> Result<(), LogError> {
        let timeout = self.config.message_timeout();
        let metadata = client.fetch_metadata(Some(topic), timeout).map_err(|error| {
            LogError::Unavailable(format!(
                "reading {topic} for lineage: no metadata from Kafka at {} within {timeout:?}: {error}",
                self.brokers()
            ))
        })?;
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
        match found {
            None => Err(LogError::Unavailable(format!(
                "reading {topic} for lineage: the topic does not exist at {}",
                self.brokers()
            ))),
            Some(t) if t.partitions().len() != partitions as usize => {
                Err(LogError::Config(format!(
                    "reading {topic} for lineage: it has {} partitions, not {partitions}",
                    t.partitions().len()
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// Hands the committed records below their end offsets of `numbers`, partitions of
    /// `stream`'s topic read at once, to `each`: each partition's in offset order, the
    /// partitions' interleaved.
    fn read_partitions(
        &self,
        client: &BaseConsumer<LoggingContext>,
        stream: Stream,
        numbers: &[u32],
        each: &mut dyn FnMut(TimedRecord),
    ) -> Result<(), LogError> {
        let topic = self.config.topic_of(stream);
        let timeout = self.config.message_timeout();
        // Partition → (next offset, end offset), while it has records left to read.
        let mut pending: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
        let mut assignment = TopicPartitionList::new();
        for &number in numbers {
            let number = number as i32;
            let (first, end) = client
                .fetch_watermarks(topic, number, timeout)
                .map_err(|error| {
                    LogError::Unavailable(format!(
                        "reading {topic} [{number}] for lineage: no offsets from Kafka at {} within {timeout:?}: {error}",
                        self.brokers()
                    ))
                })?;
            if end > first {
                pending.insert(number, (first, end));
                assignment
                    .add_partition_offset(topic, number, Offset::Offset(first))
                    .map_err(|error| {
                        LogError::Config(format!("reading {topic} [{number}] for lineage: {error}"))
                    })?;
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        client.assign(&assignment).map_err(|error| {
            LogError::Unavailable(format!(
                "reading {topic} {:?} for lineage: assigning them: {error}",
                pending.keys().collect::<Vec<_>>()
            ))
        })?;
        let mut heard_at = Instant::now();
        let mut last_error: Option<KafkaError> = None;
        while !pending.is_empty() {
            match client.poll(POLL_WAIT) {
                Some(Ok(message)) => {
                    heard_at = Instant::now();
                    let number = message.partition();
                    // Only partitions still being read: a record fetched ahead past the
                    // end, or of a topic this client read before, is not handed over.
                    let Some((next, end)) = pending.get_mut(&number) else {
                        continue;
                    };
                    if message.topic() != topic {
                        continue;
                    }
                    let offset = message.offset();
                    if offset < *end {
                        *next = offset + 1;
                        if !is_release_record(&message) {
                            each(TimedRecord {
                                partition: PartitionId {
                                    stream,
                                    partition: number as u32,
                                },
                                offset: offset as u64,
                                appended_at_ms: message.timestamp().to_millis(),
                                bytes: message.payload().unwrap_or_default().to_vec(),
                            });
                        }
                    }
                    if offset + 1 >= *end {
                        pending.remove(&number);
                    }
                }
                // The end of a partition's committed records (a read_committed reader's
                // end is the last stable offset, at or past the end taken): markers and
                // aborted records before it are never delivered.
                Some(Err(KafkaError::PartitionEOF(number))) => {
                    pending.remove(&number);
                }
                // Transient (a connection lost and made again): librdkafka retries; the
                // time limit below decides.
                Some(Err(error)) => last_error = Some(error),
                None => {}
            }
            if heard_at.elapsed() >= timeout {
                let at: Vec<String> = pending
                    .iter()
                    .map(|(number, (next, end))| format!("[{number}] at offset {next} of {end}"))
                    .collect();
                return Err(LogError::Unavailable(format!(
                    "reading {topic} {} for lineage: no record from Kafka at {} for {timeout:?}{}",
                    at.join(", "),
                    self.brokers(),
                    last_error
                        .map(|error| format!(" (last error: {error})"))
                        .unwrap_or_default()
                )));
            }
        }
        Ok(())
    }
}

impl History for KafkaHistory {
    fn partitions(&self) -> u32 {
        self.config.events_partitions
    }

    fn each_record_in(
        &self,
        partitions: &[PartitionId],
        each: &mut dyn FnMut(TimedRecord),
    ) -> Result<(), LogError> {
        // A client per topic, each reading its partitions at once: an end-of-partition
        // notice names the partition's number only, and the reference topic's partition 0
        // must not end a read of the events' 0. The topics are read in the order their
        // first partition is asked for (the reference first, as lineage asks).
        let mut streams: Vec<Stream> = Vec::new();
        for partition in partitions {
            if !streams.contains(&partition.stream) {
                streams.push(partition.stream);
            }
        }
        for stream in streams {
            let numbers: Vec<u32> = partitions
                .iter()
                .filter(|p| p.stream == stream)
                .map(|p| p.partition)
                .collect();
            let count = match stream {
                Stream::Events => self.config.events_partitions,
                Stream::Reference => 1,
            };
            let client = self.client()?;
            self.check_topic(&client, self.config.topic_of(stream), count)?;
            self.read_partitions(&client, stream, &numbers, each)?;
        }
        Ok(())
    }
}
