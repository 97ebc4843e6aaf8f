//! Reading the topics back for lineage ([`History`]): each partition asked for, from its
//! first record to its last stable offset taken when its read starts.
//!
//! Clients of its own per read (one per topic), outside every consumer group: partitions are assigned by
//! hand, nothing is committed, so a read neither moves the projectors' partitions nor shows
//! up as their progress. `read_committed`, as the projector reads: records of aborted or
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
use std::collections::btree_map::Entry;
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
            .set("fetch.queue.backoff.ms", "10");
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

    /// Hands `partition`'s committed records below its end offset to `each`.
    fn read_partition(
        &self,
        client: &BaseConsumer<LoggingContext>,
        partition: PartitionId,
        each: &mut dyn FnMut(TimedRecord),
    ) -> Result<(), LogError> {
        let topic = self.config.topic_of(partition.stream);
        let number = partition.partition as i32;
        let timeout = self.config.message_timeout();
        let (first, end) = client
            .fetch_watermarks(topic, number, timeout)
            .map_err(|error| {
                LogError::Unavailable(format!(
                    "reading {topic} [{number}] for lineage: no offsets from Kafka at {} within {timeout:?}: {error}",
                    self.brokers()
                ))
            })?;
        if end <= first {
            return Ok(());
        }
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, number, Offset::Offset(first))
            .map_err(|error| {
                LogError::Config(format!("reading {topic} [{number}] for lineage: {error}"))
            })?;
        client.assign(&assignment).map_err(|error| {
            LogError::Unavailable(format!(
                "reading {topic} [{number}] for lineage: assigning it: {error}"
            ))
        })?;
        let mut next = first;
        let mut heard_at = Instant::now();
        let mut last_error: Option<KafkaError> = None;
        loop {
            match client.poll(POLL_WAIT) {
                Some(Ok(message)) => {
                    heard_at = Instant::now();
                    // A record of a partition read before, fetched ahead of its end.
                    if message.topic() != topic || message.partition() != number {
                        continue;
                    }
                    let offset = message.offset();
                    if offset >= end {
                        break;
                    }
                    next = offset + 1;
                    if !is_release_record(&message) {
                        each(TimedRecord {
                            partition,
                            offset: offset as u64,
                            appended_at_ms: message.timestamp().to_millis(),
                            bytes: message.payload().unwrap_or_default().to_vec(),
                        });
                    }
                    if next >= end {
                        break;
                    }
                }
                // The end of the committed records (a read_committed reader's end is the
                // last stable offset, at or past `end`): markers and aborted records
                // between the last record handed over and `end` are never delivered.
                Some(Err(KafkaError::PartitionEOF(eof))) if eof == number => break,
                // Of a partition read before.
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                // Transient (a connection lost and made again): librdkafka retries; the
                // time limit below decides.
                Some(Err(error)) => last_error = Some(error),
                None => {}
            }
            if heard_at.elapsed() >= timeout {
                return Err(LogError::Unavailable(format!(
                    "reading {topic} [{number}] for lineage: no record from Kafka at {} for {timeout:?} \
                     at offset {next} of {end}{}",
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
        // A client per topic: an end-of-partition notice names the partition's number only,
        // and the reference topic's partition 0 must not end a read of the events' 0.
        let mut clients = BTreeMap::new();
        for partition in partitions {
            let client = match clients.entry(partition.stream) {
                Entry::Occupied(client) => client.into_mut(),
                Entry::Vacant(entry) => {
                    let client = self.client()?;
                    let count = match partition.stream {
                        Stream::Events => self.config.events_partitions,
                        Stream::Reference => 1,
                    };
                    self.check_topic(&client, self.config.topic_of(partition.stream), count)?;
                    entry.insert(client)
                }
            };
            self.read_partition(client, *partition, each)?;
        }
        Ok(())
    }
}
