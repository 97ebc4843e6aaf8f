//! Reading: [`KafkaConsumer`], from the projector's own positions.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tracing::{debug, info, warn};

use super::KafkaConfig;
use super::client::{LoggingContext, WatchedContext};
use super::group::{GroupContext, Shared, lock};
use super::reader_clients::{
    STATISTICS_EVERY, assign_reference, events_client, offsets_clients, reference_client, retire,
    subscribe,
};
use super::release::is_release_record;
use super::topics::{Layout, check_layout, unreachable_broker};
use super::watchdog::{Client, ClientView, Look, POLL_GAP, PartitionLook, Watchdog};
use crate::{
    LogConsumer, LogError, LogRecord, PartitionId, Positions, ReadWatch, Stream, UnstableTail,
};

/// Longest single wait on the events consumer inside `poll`, so the reference consumer is
/// looked at again soon.
const WAIT_SLICE: Duration = Duration::from_millis(100);
/// Bound on a seek to be acknowledged by the fetcher.
const SEEK_TIMEOUT: Duration = Duration::from_secs(2);
/// High watermarks older than this are asked again before computing the lag.
const WATERMARK_MAX_AGE: Duration = Duration::from_secs(1);
/// Bound on one high-watermark query.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads the log for one projector instance: the events partitions its consumer group gives
/// it, and the whole reference topic.
///
/// Call [`LogConsumer::poll`] regularly: it also takes part in the group's rebalances.
pub struct KafkaConsumer {
    config: KafkaConfig,
    events: BaseConsumer<GroupContext>,
    reference: BaseConsumer<WatchedContext>,
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
    /// Notices a client that stopped reading (see the `watchdog` module).
    watchdog: Watchdog,
    /// What the events and reference clients' statistics last said.
    events_view: Arc<Mutex<ClientView>>,
    reference_view: Arc<Mutex<ClientView>>,
    /// When the watchdog last looked, and when the last poll returned.
    last_look: Instant,
    last_poll_end: Option<Instant>,
    /// Whether the last look found a stall, to say when it ends.
    stalled: bool,
}

/// The reference topic's only partition.
const REFERENCE: PartitionId = PartitionId {
    stream: Stream::Reference,
    partition: 0,
};
/// How often the watchdog looks: as often as the clients' statistics come.
const LOOK_EVERY: Duration = STATISTICS_EVERY;

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

impl KafkaConsumer {
    /// Joins the projector group on the events topic and assigns the reference topic's
    /// partition. Checks that both topics exist with the configured partition counts, then
    /// waits (up to the message timeout) for the group's first assignment, so that
    /// [`LogConsumer::assignment`] answers with real partitions from the start.
    pub fn connect(config: &KafkaConfig) -> Result<Self, LogError> {
        config.validate()?;
        let timeout = config.message_timeout();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let events_view = Arc::new(Mutex::new(ClientView::default()));
        let reference_view = Arc::new(Mutex::new(ClientView::default()));
        let events = events_client(config, &shared, &events_view, 0)?;
        let reference = reference_client(config, &reference_view)?;
        let (offsets, uncommitted_offsets) = offsets_clients(config)?;

        let metadata = offsets
            .fetch_metadata(None, timeout)
            .map_err(|error| unreachable_broker(config, &error))?;
        if let Layout::NotReady(why) = check_layout(config, &metadata, false)? {
            return Err(LogError::Unavailable(format!("Kafka log not ready: {why}")));
        }

        subscribe(config, &events)?;
        assign_reference(config, &reference, 0)?;
        lock(&shared).restarted_at.insert(REFERENCE, 0);

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
            watchdog: Watchdog::new(config.read_stall_after()),
            events_view,
            reference_view,
            last_look: Instant::now(),
            last_poll_end: None,
            stalled: false,
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

    /// Release records (see the `release` module) are skipped.
    ///
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
        if is_release_record(message) {
            // Not an event. The position stays: the next record is taken past it as past a
            // transaction marker, and the lag counts it read once the fetch is beyond it.
            return Ok(None);
        }
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
        let client_positions = self.client_positions();
        let shared = lock(&self.shared);
        for (partition, read) in client_positions {
            let next = shared.positions.get(&partition).copied().unwrap_or(0);
            let streaming = shared.restarted_at.contains_key(&partition)
                && !shared.to_seek.contains(&partition);
            if streaming && read >= next {
                fetched.insert(partition, (next, read));
            }
        }
        fetched
    }

    /// librdkafka's application position of every partition its two clients read (those
    /// with a known offset).
    fn client_positions(&self) -> Vec<(PartitionId, u64)> {
        let mut positions = Vec::new();
        for stream in [Stream::Reference, Stream::Events] {
            let list = match stream {
                Stream::Events => self.events.position(),
                Stream::Reference => self.reference.position(),
            };
            let Ok(list) = list else { continue };
            for element in list.elements_for_topic(self.config.topic_of(stream)) {
                let (Ok(number), Offset::Offset(offset)) =
                    (u32::try_from(element.partition()), element.offset())
                else {
                    continue;
                };
                let Ok(offset) = u64::try_from(offset) else {
                    continue;
                };
                let partition = PartitionId {
                    stream,
                    partition: number,
                };
                positions.push((partition, offset));
            }
        }
        positions
    }

    /// Hands out what was read early, then what the clients have, waiting up to `timeout`
    /// when idle.
    fn poll_records(&mut self, max: usize, timeout: Duration) -> Result<Vec<LogRecord>, LogError> {
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

    /// About once a second: lets the watchdog look, and makes again the clients it names.
    fn watch(&mut self) -> Result<(), LogError> {
        let now = Instant::now();
        if self
            .last_poll_end
            .is_some_and(|end| now.duration_since(end) >= POLL_GAP)
        {
            self.watchdog.restart_clocks();
        }
        if now.duration_since(self.last_look) < LOOK_EVERY {
            return Ok(());
        }
        self.last_look = now;
        let look = self.measure(now);
        for (client, reason) in self.watchdog.look(&look) {
            warn!(
                client = ?client,
                reason,
                events_client = %look.events_view.describe(),
                reference_client = %view(&self.reference_view).describe(),
                stall_after_secs = self.config.read_stall_seconds,
                "kafka reader stuck; making its client again"
            );
            self.rebuild(client)?;
        }
        let stalled = !self.watchdog.report(now).stalls.is_empty();
        if self.stalled && !stalled {
            info!("kafka reader reading again");
        }
        self.stalled = stalled;
        Ok(())
    }

    /// What the watchdog looks at: every owned partition's read position and readable end
    /// (no more questions once the brokers do not answer one), the group client's view.
    fn measure(&mut self, now: Instant) -> Look {
        let _ = self.offsets.poll(Duration::ZERO);
        let read = self.read_positions();
        let mut answering = true;
        let mut partitions = Vec::new();
        for partition in self.assignment() {
            let readable_end = if answering {
                self.high_watermark(partition)
            } else {
                None
            };
            answering = readable_end.is_some();
            partitions.push(PartitionLook {
                partition,
                topic: self.config.topic_of(partition.stream).to_owned(),
                read: read.get(&partition).copied().unwrap_or(0),
                readable_end,
            });
        }
        Look {
            now,
            wall: SystemTime::now(),
            partitions,
            events_view: view(&self.events_view),
            reference_view: view(&self.reference_view),
            group: self.config.projector_group.clone(),
        }
    }

    /// How far each partition has been read: the next offset to hand out, or librdkafka's
    /// position when it is further (it moves past release records and transaction markers,
    /// which are never handed out).
    fn read_positions(&self) -> BTreeMap<PartitionId, u64> {
        let client_positions = self.client_positions();
        let shared = lock(&self.shared);
        let mut read: BTreeMap<PartitionId, u64> = shared
            .positions
            .iter()
            .map(|(partition, offset)| (*partition, *offset))
            .collect();
        for (partition, offset) in client_positions {
            let entry = read.entry(partition).or_insert(offset);
            *entry = (*entry).max(offset);
        }
        read
    }

    /// Closes a client and makes a new one in its place, reading from the projector's
    /// positions: the events client joins the group afresh (its partitions start where the
    /// projector's positions say, as at any assignment), the reference client is assigned
    /// its partition at its position. Nothing is read twice or skipped: the position guard
    /// of `admit` holds as after a seek.
    fn rebuild(&mut self, client: Client) -> Result<(), LogError> {
        match client {
            Client::Reference => {
                // A view of its own: the old client may still report while it closes.
                let fresh_view = Arc::new(Mutex::new(ClientView::default()));
                let fresh = reference_client(&self.config, &fresh_view)?;
                let position = lock(&self.shared)
                    .positions
                    .get(&REFERENCE)
                    .copied()
                    .unwrap_or(0);
                assign_reference(&self.config, &fresh, position)?;
                {
                    let mut shared = lock(&self.shared);
                    shared.restarted_at.insert(REFERENCE, position);
                    shared.to_seek.remove(&REFERENCE);
                }
                self.reference_view = fresh_view;
                retire("reference", std::mem::replace(&mut self.reference, fresh));
                info!(
                    topic = self.config.reference_topic,
                    position, "kafka reference client made again"
                );
            }
            Client::Events => {
                let generation = lock(&self.shared).generation + 1;
                let fresh_view = Arc::new(Mutex::new(ClientView::default()));
                let fresh = events_client(&self.config, &self.shared, &fresh_view, generation)?;
                subscribe(&self.config, &fresh)?;
                {
                    let mut shared = lock(&self.shared);
                    shared.generation = generation;
                    shared.assigned.clear();
                    shared
                        .restarted_at
                        .retain(|partition, _| partition.stream == Stream::Reference);
                    shared
                        .to_seek
                        .retain(|partition| partition.stream == Stream::Reference);
                }
                self.events_view = fresh_view;
                retire("events", std::mem::replace(&mut self.events, fresh));
                info!(
                    topic = self.config.events_topic,
                    group = self.config.projector_group,
                    generation,
                    "kafka events client made again; it joins the group afresh"
                );
            }
            Client::Offsets => {
                let (committed, uncommitted) = offsets_clients(&self.config)?;
                retire("offsets", std::mem::replace(&mut self.offsets, committed));
                retire(
                    "offsets",
                    std::mem::replace(&mut self.uncommitted_offsets, uncommitted),
                );
                self.watermarks.clear();
                info!("kafka watermark clients made again");
            }
        }
        Ok(())
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
        self.watch()?;
        let result = self.poll_records(max, timeout);
        self.last_poll_end = Some(Instant::now());
        result
    }

    /// The watchdog looks inside [`LogConsumer::poll`], about once a second.
    fn read_watch(&mut self) -> ReadWatch {
        self.watchdog.report(Instant::now())
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

fn view(view: &Mutex<ClientView>) -> ClientView {
    view.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}
