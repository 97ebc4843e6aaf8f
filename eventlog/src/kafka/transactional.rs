//! Appends as Kafka transactions: a batch becomes visible to `read_committed` readers all at
//! once when its transaction commits, or never.
//!
//! A pool of transactional producers, one per concurrent append (a *slot*), each with a
//! stable `transactional.id` (`<prefix>-<slot>`). Starting a producer under a name
//! (`init_transactions`) fences every earlier producer of that name: a transaction it left
//! open is aborted by the coordinator, one whose commit the coordinator had already taken is
//! completed. So once a name has been started again, every transaction of the earlier
//! *incarnation* is decided, and reading one of its records with `read_committed` tells
//! which way ([`TransactionalLog::fate`]).
//!
//! A slot whose producer failed (a timed-out abort, a commit of unknown outcome, a fatal
//! error) is emptied and started again before its next use. The transaction timeout is
//! twice the message timeout: a transaction of a writer that vanished holds back
//! `read_committed` readers of its partitions at most that long, unless the writer's name is
//! started again sooner.
//!
//! What a broker may leave held beyond that (a commit recorded complete without one
//! partition's marker) is released by a release transaction of every writer after the log
//! was disturbed: see the `release` module and [`TransactionalLog::release_held`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aqs_schemas::Event;
use rdkafka::Message;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tracing::{debug, info, warn};

use super::producer::Outgoing;
use super::release::{CONFIRM_WAIT, PROBE_TIMEOUT, ReleaseWatch, SLOW_OPERATION, release_records};
use super::{
    DeliveryContext, KafkaConfig, KafkaLog, KafkaReadiness, LoggingContext, Undelivered, deliver,
    event_records, provision, record_error, record_positions,
};
use crate::{
    CommitError, DeadLetter, Fate, LogError, LogTransaction, Probe, RecordPosition, ReleaseFigures,
    Stream, TransactionWriter, TransactionalLog,
};

/// Longest single wait of the fate reader, so its deadline is looked at again soon.
const FATE_POLL_SLICE: Duration = Duration::from_millis(100);
/// Longest wait for a busy writer before a release passes it over until the next call.
const RELEASE_SLOT_WAIT: Duration = Duration::from_millis(500);
/// Pause between two attempts of a commit that failed with a retriable error.
const COMMIT_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The Kafka event log for a writer that must know what became of every batch: appends are
/// transactions, see the module documentation.
pub struct TransactionalKafkaLog {
    config: KafkaConfig,
    /// Dead letters are kept outside transactions, through the idempotent producer.
    plain: KafkaLog,
    /// Tells this process's incarnations of the writers from earlier processes' ones.
    life: String,
    slots: Vec<Slot>,
    /// Which slots are in use, and a signal when one is given back.
    busy: Mutex<Vec<bool>>,
    returned: Condvar,
    /// Reads records back with `read_committed` to learn a transaction's fate.
    reader: Mutex<Option<BaseConsumer<LoggingContext>>>,
    /// Disturbances of the log seen so far: every writer owes a release until its last
    /// release covers the latest.
    disturbances: AtomicU64,
    /// Built on the first [`TransactionalLog::release_held`].
    watch: Mutex<Option<ReleaseWatch>>,
    releases_committed: AtomicU64,
    releases_failed: AtomicU64,
}

impl fmt::Debug for TransactionalKafkaLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransactionalKafkaLog")
            .field("config", &self.config)
            .field("writers", &self.writer_names())
            .finish_non_exhaustive()
    }
}

/// One producer of the pool and its name.
struct Slot {
    name: String,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    /// `None` until started, and again after a failure.
    producer: Option<ThreadedProducer<DeliveryContext>>,
    /// The incarnation of the running producer.
    incarnation: Option<String>,
    /// Producers started under this name by this process.
    starts: u64,
    /// The count of disturbances its last committed release covered.
    released: u64,
}

impl TransactionalKafkaLog {
    /// Creates the missing topics (as [`KafkaLog::connect`]) and starts every writer, which
    /// fences what earlier writers of the same names left open. The writers are named
    /// `<prefix>-0` … `<prefix>-<slots - 1>`; `prefix` must be stable for one writing
    /// instance across its restarts and differ between instances.
    pub fn connect(config: &KafkaConfig, prefix: &str, slots: usize) -> Result<Self, LogError> {
        config.validate()?;
        provision(config)?;
        let log = Self::open_unchecked(config, prefix, slots)?;
        log.prepare(Instant::now() + config.message_timeout())?;
        Ok(log)
    }

    /// A writer that does not contact the broker now; each writer starts on first use (or
    /// at [`TransactionalLog::prepare`]). For a writer that must start while Kafka is away.
    pub fn open_unchecked(
        config: &KafkaConfig,
        prefix: &str,
        slots: usize,
    ) -> Result<Self, LogError> {
        config.validate()?;
        if slots == 0 {
            return Err(LogError::Config(
                "a transactional writer needs at least one slot".into(),
            ));
        }
        if prefix.trim().is_empty() {
            return Err(LogError::Config(
                "the transactional id prefix must not be empty".into(),
            ));
        }
        let life = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            .to_string();
        Ok(Self {
            plain: KafkaLog::open_unchecked(config)?,
            config: config.clone(),
            life: format!("{life}.{}", std::process::id()),
            slots: (0..slots)
                .map(|index| Slot {
                    name: format!("{prefix}-{index}"),
                    state: Mutex::new(SlotState::default()),
                })
                .collect(),
            busy: Mutex::new(vec![false; slots]),
            returned: Condvar::new(),
            reader: Mutex::new(None),
            disturbances: AtomicU64::new(0),
            watch: Mutex::new(None),
            releases_committed: AtomicU64::new(0),
            releases_failed: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// The probe of whether this log can take events now: see [`KafkaLog::readiness`].
    pub fn readiness(&self, timeout: Duration) -> Result<KafkaReadiness, LogError> {
        self.plain.readiness(timeout)
    }

    /// The `transactional.id` of every writer.
    pub fn writer_names(&self) -> Vec<String> {
        self.slots.iter().map(|slot| slot.name.clone()).collect()
    }

    /// The transaction timeout given to the coordinator: twice the message timeout.
    pub fn transaction_timeout(&self) -> Duration {
        transaction_timeout(&self.config)
    }

    /// Tells the writer that the log was disturbed (its owner saw it unavailable, say):
    /// every writer commits a release at the next [`TransactionalLog::release_held`] once the
    /// log is healthy.
    pub fn note_disturbance(&self, why: &str) {
        self.disturbed(why);
    }

    /// Counts a disturbance of the log: every writer owes a release.
    fn disturbed(&self, why: &str) {
        let count = self.disturbances.fetch_add(1, Ordering::Relaxed) + 1;
        debug!(
            why,
            disturbances = count,
            "kafka log disturbed; writers owe a release"
        );
    }

    /// Begins a transaction on a slot held by the caller.
    fn begin_on<'a>(
        &'a self,
        slot: SlotGuard<'a>,
        deadline: Instant,
    ) -> Result<KafkaTransaction<'a>, LogError> {
        let (producer, writer) = self.producer(slot.index, deadline).inspect_err(|error| {
            self.disturbed(&format!("starting a writer failed: {error}"));
        })?;
        if let Err(error) = producer.begin_transaction() {
            self.discard(slot.index, "beginning a transaction failed");
            self.disturbed("beginning a transaction failed");
            return Err(LogError::Unavailable(format!(
                "kafka: beginning a transaction: {error}"
            )));
        }
        Ok(KafkaTransaction {
            log: self,
            slot,
            producer,
            writer,
            open: true,
            unanswered: false,
        })
    }

    /// Commits a release transaction with the writer of a slot held by the caller: one
    /// release record on every partition of the events and reference topics.
    /// Where its records went: stream, partition and offset.
    fn release_writer(
        &self,
        slot: SlotGuard<'_>,
        deadline: Instant,
    ) -> Result<Vec<(Stream, i32, u64)>, LogError> {
        let index = slot.index;
        let mut transaction = self.begin_on(slot, deadline)?;
        let records = release_records(&self.config, &self.slots[index].name);
        let count = records.len();
        let written = transaction.send(records)?;
        Box::new(transaction)
            .commit()
            .map_err(|error| LogError::Unavailable(format!("committing a release: {error}")))?;
        debug!(
            writer = self.slots[index].name,
            records = count,
            "kafka release transaction committed"
        );
        // In the order of `release_records`: the events partitions, then the reference one.
        Ok(written
            .into_iter()
            .enumerate()
            .map(|(at, (partition, offset))| {
                let stream = if at < self.config.events_partitions as usize {
                    Stream::Events
                } else {
                    Stream::Reference
                };
                (stream, partition, offset)
            })
            .collect())
    }

    /// Takes a free slot (`wanted`, or any, preferring a started one) until `deadline`.
    fn acquire(&self, wanted: Option<usize>, deadline: Instant) -> Result<SlotGuard<'_>, LogError> {
        let mut busy = lock(&self.busy);
        loop {
            let free = |index: &usize| !busy[*index];
            let chosen = match wanted {
                Some(index) => Some(index).filter(free),
                None => {
                    let started = (0..busy.len())
                        .filter(free)
                        .find(|&index| lock(&self.slots[index].state).producer.is_some());
                    started.or_else(|| (0..busy.len()).find(free))
                }
            };
            if let Some(index) = chosen {
                busy[index] = true;
                return Ok(SlotGuard { log: self, index });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LogError::Unavailable(
                    "every Kafka transactional writer is busy; retry".into(),
                ));
            }
            busy = self
                .returned
                .wait_timeout(busy, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The running producer of a slot held by the caller, started when it is not.
    fn producer(
        &self,
        index: usize,
        deadline: Instant,
    ) -> Result<(ThreadedProducer<DeliveryContext>, TransactionWriter), LogError> {
        let slot = &self.slots[index];
        let mut state = lock(&slot.state);
        if let (Some(producer), Some(incarnation)) = (&state.producer, &state.incarnation) {
            return Ok((
                producer.clone(),
                TransactionWriter {
                    name: slot.name.clone(),
                    incarnation: incarnation.clone(),
                },
            ));
        }
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(self.config.message_timeout());
        let producer = start_producer(&self.config, &slot.name, left)?;
        let incarnation = format!("{}.{}", self.life, state.starts);
        state.starts += 1;
        state.producer = Some(producer.clone());
        state.incarnation = Some(incarnation.clone());
        info!(
            writer = slot.name,
            incarnation, "kafka transactional writer started"
        );
        Ok((
            producer,
            TransactionWriter {
                name: slot.name.clone(),
                incarnation,
            },
        ))
    }

    /// Empties a slot held by the caller: its producer is dropped, the next use starts a
    /// new one (fencing this one).
    fn discard(&self, index: usize, why: &str) {
        let slot = &self.slots[index];
        let dropped = {
            let mut state = lock(&slot.state);
            state.incarnation = None;
            state.producer.take()
        };
        if dropped.is_some() {
            warn!(
                writer = slot.name,
                why, "kafka transactional writer discarded; it starts again on next use"
            );
        }
        // Dropping purges and waits briefly for the producer's queue: outside the lock.
        drop(dropped);
    }

    /// Whether `writer`'s incarnation is fenced: its name has been started again since.
    /// Starts it again (waiting for its slot) when it has not been.
    fn fence(&self, writer: &TransactionWriter, deadline: Instant) -> Result<(), LogError> {
        let Some(index) = self.slots.iter().position(|s| s.name == writer.name) else {
            // Not one of ours (a former pool size): start and drop a producer of that name.
            let left = deadline
                .saturating_duration_since(Instant::now())
                .min(self.config.message_timeout());
            drop(start_producer(&self.config, &writer.name, left)?);
            return Ok(());
        };
        let fenced = |log: &Self| {
            lock(&log.slots[index].state)
                .incarnation
                .as_ref()
                .is_some_and(|current| current != &writer.incarnation)
        };
        if fenced(self) {
            return Ok(());
        }
        let _slot = self.acquire(Some(index), deadline)?;
        if !fenced(self) {
            self.discard(index, "fencing an incarnation with a transaction in doubt");
            self.producer(index, deadline).map(drop)?;
        }
        Ok(())
    }

    /// Reads the probe's offset with `read_committed`: the record there (committed), a later
    /// one or the end of the partition past it (aborted), or nothing yet (undecided: a
    /// transaction before it is still open).
    fn read_fate(&self, probe: &Probe, deadline: Instant) -> Result<Fate, LogError> {
        let mut reader = lock(&self.reader);
        if reader.is_none() {
            let mut client = self.config.client_config("ingest-fate")?;
            client
                // librdkafka wants a group id for a manual assignment; nothing is committed.
                .set("group.id", "aqs-ingest-fate")
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("isolation.level", "read_committed")
                .set("enable.partition.eof", "true");
            *reader = Some(
                BaseConsumer::from_config_and_context(&client, LoggingContext { role: "ingest" })
                    .map_err(|error| LogError::Config(format!("kafka consumer: {error}")))?,
            );
        }
        let Some(consumer) = reader.as_ref() else {
            return Err(LogError::Config("kafka fate reader missing".into()));
        };
        let topic = self.config.topic_of(probe.position.partition.stream);
        let partition = probe.position.partition.partition as i32;
        let offset = probe.position.offset as i64;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, partition, Offset::Offset(offset))
            .map_err(|error| LogError::Config(format!("reading {topic}: {error}")))?;
        consumer
            .assign(&list)
            .map_err(|error| LogError::Unavailable(format!("reading {topic}: {error}")))?;
        let fate = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Ok(Fate::Undecided);
            }
            match consumer.poll(left.min(FATE_POLL_SLICE)) {
                None => {}
                Some(Ok(message)) => {
                    if message.topic() != topic || message.partition() != partition {
                        continue;
                    }
                    if message.offset() == offset {
                        break check_probe(probe, message.payload().unwrap_or_default())
                            .map(|()| Fate::Committed);
                    }
                    if message.offset() > offset {
                        break Ok(Fate::Aborted);
                    }
                }
                Some(Err(KafkaError::PartitionEOF(at))) if at == partition => {
                    // The end of what is committed: past the probe means it was skipped.
                    let reached = consumer.position().ok().and_then(|list| {
                        list.find_partition(topic, partition)
                            .map(|element| element.offset())
                    });
                    if let Some(Offset::Offset(reached)) = reached
                        && reached > offset
                    {
                        break Ok(Fate::Aborted);
                    }
                }
                Some(Err(error)) => {
                    if let Some((code, reason)) = consumer.client().fatal_error() {
                        *reader = None;
                        return Err(LogError::Unavailable(format!(
                            "kafka fate reader failed: {code}: {reason}"
                        )));
                    }
                    debug!(%error, "kafka fate reader");
                }
            }
        };
        let _ = consumer.unassign();
        fate
    }
}

impl TransactionalLog for TransactionalKafkaLog {
    fn begin(&self, deadline: Instant) -> Result<Box<dyn LogTransaction + '_>, LogError> {
        let slot = self.acquire(None, deadline)?;
        Ok(Box::new(self.begin_on(slot, deadline)?))
    }

    fn fate(
        &self,
        writer: &TransactionWriter,
        probe: &Probe,
        deadline: Instant,
    ) -> Result<Fate, LogError> {
        self.fence(writer, deadline)?;
        let fate = self.read_fate(probe, deadline)?;
        debug!(
            writer = writer.name,
            incarnation = writer.incarnation,
            ?fate,
            "kafka transaction fate read"
        );
        Ok(fate)
    }

    fn prepare(&self, deadline: Instant) -> Result<(), LogError> {
        let mut first_error = None;
        for index in 0..self.slots.len() {
            if lock(&self.slots[index].state).producer.is_some() {
                continue;
            }
            // A writer in use is running already, or starts with that use.
            let Ok(_slot) = self.acquire(Some(index), Instant::now()) else {
                continue;
            };
            if let Err(error) = self.producer(index, deadline) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), LogError> {
        crate::EventLog::dead_letter(&self.plain, letters)
    }

    fn partitions(&self) -> u32 {
        self.config.events_partitions
    }

    /// Looks at the log (the watch of the `release` module) and, once it is healthy, commits
    /// a release transaction with every writer that owes one. A writer busy with a batch is
    /// passed over until a later call; the first release that fails ends the call, and is
    /// tried again on the next.
    fn release_held(&self, deadline: Instant) -> Result<usize, LogError> {
        let known = self.disturbances.load(Ordering::Relaxed);
        let sight = {
            let mut watch = lock(&self.watch);
            if watch.is_none() {
                let probe = self.plain.readiness(PROBE_TIMEOUT)?;
                *watch = Some(ReleaseWatch::new(
                    &self.config,
                    probe,
                    self.transaction_timeout(),
                )?);
            }
            match watch.as_mut() {
                Some(watch) => watch.look(known),
                None => return Ok(0),
            }
        };
        if let Some(why) = &sight.disturbance {
            self.disturbed(why);
        }
        if !sight.settled {
            return Ok(0);
        }
        let due = self.disturbances.load(Ordering::Relaxed);
        if due > known {
            // Counted while probing: probe again first.
            return Ok(0);
        }
        let mut released = 0;
        let mut written = Vec::new();
        for index in 0..self.slots.len() {
            if lock(&self.slots[index].state).released >= due {
                continue;
            }
            let wait = deadline.min(Instant::now() + RELEASE_SLOT_WAIT);
            let Ok(slot) = self.acquire(Some(index), wait) else {
                // In use for a batch: its turn comes on a later call.
                debug!(
                    writer = self.slots[index].name,
                    "release deferred: writer busy"
                );
                continue;
            };
            match self.release_writer(slot, deadline) {
                Ok(records) => written.extend(records),
                Err(error) => {
                    self.releases_failed.fetch_add(1, Ordering::Relaxed);
                    warn!(
                        writer = self.slots[index].name,
                        %error,
                        "kafka release transaction failed; tried again"
                    );
                    return Err(error);
                }
            }
            lock(&self.slots[index].state).released = due;
            self.releases_committed.fetch_add(1, Ordering::Relaxed);
            released += 1;
        }
        if released > 0 {
            info!(
                writers = released,
                disturbances = due,
                "kafka release transactions committed"
            );
            // A release whose markers the broker skipped too leaves its partition held:
            // seen, it is one more disturbance, and every writer releases again.
            let unconfirmed = lock(&self.watch)
                .as_mut()
                .and_then(|watch| watch.confirm(&written, Instant::now() + CONFIRM_WAIT));
            if let Some(why) = unconfirmed {
                warn!(why, "kafka release not readable in time; releasing again");
                self.disturbed(&why);
            }
        }
        Ok(released)
    }

    fn releases(&self) -> ReleaseFigures {
        ReleaseFigures {
            committed: self.releases_committed.load(Ordering::Relaxed),
            failed: self.releases_failed.load(Ordering::Relaxed),
        }
    }
}

/// A slot taken from the pool; given back on drop.
struct SlotGuard<'a> {
    log: &'a TransactionalKafkaLog,
    index: usize,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        lock(&self.log.busy)[self.index] = false;
        self.log.returned.notify_all();
    }
}

/// An open transaction on one slot's producer.
struct KafkaTransaction<'a> {
    log: &'a TransactionalKafkaLog,
    slot: SlotGuard<'a>,
    producer: ThreadedProducer<DeliveryContext>,
    writer: TransactionWriter,
    /// Neither committed nor aborted yet.
    open: bool,
    /// The broker did not answer a write in time: an abort would wait as long again.
    unanswered: bool,
}

impl KafkaTransaction<'_> {
    /// Sends records in the transaction and waits for their acknowledgements; counts a
    /// failure or a slow answer as a disturbance of the log.
    fn send(&mut self, records: Vec<Outgoing<'_>>) -> Result<Vec<(i32, u64)>, LogError> {
        let started = Instant::now();
        let delivered = deliver(&self.producer, records, self.log.config.message_timeout())
            .map_err(|undelivered| match undelivered {
                Undelivered::Failed {
                    index,
                    topic,
                    error,
                } => {
                    if matches!(
                        error.rdkafka_error_code(),
                        Some(RDKafkaErrorCode::MessageTimedOut | RDKafkaErrorCode::RequestTimedOut)
                    ) {
                        self.unanswered = true;
                    }
                    if let Some((code, reason)) = self.producer.client().fatal_error() {
                        return LogError::Unavailable(format!(
                            "kafka transactional producer failed: {code}: {reason}"
                        ));
                    }
                    record_error(&topic, index, &error)
                }
                Undelivered::Unacknowledged(why) => {
                    self.unanswered = true;
                    LogError::Unavailable(why)
                }
            });
        if let Err(error) = &delivered {
            self.log.disturbed(&format!("an append failed: {error}"));
        } else if started.elapsed() > SLOW_OPERATION {
            self.log.disturbed("an append was slow");
        }
        delivered
    }

    /// Aborts; a producer that cannot abort (the broker is away) is discarded, which leaves
    /// the transaction to be aborted by fencing or by its timeout. Whether it was aborted.
    fn roll_back(&mut self) -> bool {
        self.open = false;
        if self.unanswered {
            // Restarting the writer aborts the transaction as surely, without the wait.
            self.log
                .discard(self.slot.index, "the broker did not answer in time");
            return false;
        }
        match self
            .producer
            .abort_transaction(self.log.config.message_timeout())
        {
            Ok(()) => true,
            Err(error) => {
                self.log
                    .discard(self.slot.index, &format!("aborting failed: {error}"));
                false
            }
        }
    }
}

impl LogTransaction for KafkaTransaction<'_> {
    fn writer(&self) -> &TransactionWriter {
        &self.writer
    }

    fn append(&mut self, events: &[Event]) -> Result<Vec<RecordPosition>, LogError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (targets, records) = event_records(&self.log.config, events)?;
        let acknowledged = self.send(records)?;
        record_positions(targets, acknowledged)
    }

    fn commit(mut self: Box<Self>) -> Result<(), CommitError> {
        self.open = false;
        let started = Instant::now();
        let deadline = started + self.log.config.message_timeout();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let error = match self.producer.commit_transaction(left) {
                Ok(()) => {
                    if started.elapsed() > SLOW_OPERATION {
                        self.log.disturbed("a commit was slow");
                    }
                    return Ok(());
                }
                Err(error) => error,
            };
            self.log.disturbed(&format!("a commit failed: {error}"));
            let (retriable, abortable) = match &error {
                KafkaError::Transaction(e) => (e.is_retriable(), e.txn_requires_abort()),
                _ => (false, false),
            };
            if retriable && Instant::now() < deadline {
                debug!(%error, "kafka commit failed; retrying");
                std::thread::sleep(COMMIT_RETRY_PAUSE);
                continue;
            }
            if abortable && self.roll_back() {
                return Err(CommitError::Aborted(format!("kafka: {error}")));
            }
            self.log
                .discard(self.slot.index, &format!("commit not confirmed: {error}"));
            return Err(CommitError::InDoubt(format!("kafka: {error}")));
        }
    }

    fn abort(mut self: Box<Self>) {
        self.roll_back();
    }
}

impl Drop for KafkaTransaction<'_> {
    fn drop(&mut self) {
        if self.open {
            self.roll_back();
        }
    }
}

/// Twice the message timeout, at least a second (librdkafka's floor).
fn transaction_timeout(config: &KafkaConfig) -> Duration {
    (config.message_timeout() * 2).max(Duration::from_secs(1))
}

/// A transactional producer named `name`, started (`init_transactions`) within `timeout`.
fn start_producer(
    config: &KafkaConfig,
    name: &str,
    timeout: Duration,
) -> Result<ThreadedProducer<DeliveryContext>, LogError> {
    let mut client = config.client_config("ingest")?;
    client
        .set("transactional.id", name)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", config.message_timeout_ms.to_string())
        .set(
            "transaction.timeout.ms",
            transaction_timeout(config).as_millis().to_string(),
        )
        .set(
            "request.timeout.ms",
            config.message_timeout_ms.min(30_000).to_string(),
        );
    let producer = ThreadedProducer::from_config_and_context(&client, DeliveryContext)
        .map_err(|error| LogError::Config(format!("kafka transactional producer: {error}")))?;
    producer.init_transactions(timeout).map_err(|error| {
        let fatal = matches!(&error, KafkaError::Transaction(e) if e.is_fatal());
        let message = format!("kafka: starting the transactional writer {name}: {error}");
        if fatal {
            LogError::Config(message)
        } else {
            LogError::Unavailable(message)
        }
    })?;
    Ok(producer)
}

/// Checks that the record read at a probe's position is the probe's event.
fn check_probe(probe: &Probe, payload: &[u8]) -> Result<(), LogError> {
    #[derive(serde::Deserialize)]
    struct Identity {
        source: String,
        event_id: String,
    }
    let found: Identity = serde_json::from_slice(payload).map_err(|error| {
        LogError::Config(format!(
            "the record at {:?} is not an event: {error}",
            probe.position
        ))
    })?;
    if found.source != probe.source || found.event_id != probe.event_id {
        return Err(LogError::Config(format!(
            "the record at {:?} is event ({}, {}), not ({}, {}): was the topic recreated?",
            probe.position, found.source, found.event_id, probe.source, probe.event_id
        )));
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
