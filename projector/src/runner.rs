//! The projector loop: read batches and fold them, publish the changed rows, and now and
//! then checkpoint the state with the positions it reflects.
//!
//! Exactly-once effects without log transactions: the checkpoint (state + positions) is
//! one local ACID transaction; sink writes are idempotent and happen before the checkpoint
//! that covers them. A crash anywhere resumes from the last checkpoint and replays the log
//! from its positions: the ledger drops nothing and counts nothing twice, and rows written
//! again carry the same content.
//!
//! Each ledger store has a writer thread of its own ([`crate::sink::writer`]): a store that
//! is down or slow holds neither the fold nor the other stores back. Its changes wait,
//! merged by key, and are retried; checkpoints wait until every store has confirmed them and
//! are put off while one cannot. Reading stops only when the rows waiting for a store pass
//! its bound.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aqs_eventlog::{LogConsumer, LogError, LogRecord, PartitionId, Positions, Stream};
use aqs_schemas::{BusinessClock, Decoder, Event, decode_canonical};
use tracing::{info, info_span, warn};

use crate::checkpoint::{CheckpointError, CheckpointStore, Quarantined};
use crate::ledger::records::RecordError;
use crate::ledger::{Applied, Ledger, StatePart, digest};
use crate::metrics::ProjectorMetrics;
use crate::quarantine::{self, QuarantineReason};
use crate::sink::Store;
use crate::sink::writer::StoreWriter;

/// Time between two checkpoints, at least, as a multiple of the last one's duration.
const CHECKPOINT_SPACING: u32 = 9;

/// How the loop paces itself.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Records read and folded per batch.
    pub batch_size: usize,
    /// Changed rows are published when the log is drained, or after at most this many
    /// events (fewer for a ledger of few agents: see [`PUBLISH_EVENTS_PER_AGENT`]), or
    /// (once reads come back short of a batch and the lag is under this many events, near
    /// the head of the log) this long after the previous publish. While catching up a row
    /// changed again and again is written about once, and each write to a store keyed by
    /// agent carries several days of each agent: a store's transaction rewrites every page
    /// it touches, so rows per page touched, not rows, set its cost (design note 52).
    pub publish_every_events: u64,
    pub publish_interval: Duration,
    /// Checkpoint after this many events since the last one...
    pub checkpoint_every_events: u64,
    /// ...or after this long, whichever comes first.
    pub checkpoint_interval: Duration,
    /// Event records the fold may hold in memory between checkpoints: past this, they are
    /// written to the checkpoint's store ahead of the next checkpoint and forgotten here.
    pub max_records_in_memory: usize,
    /// How long a poll waits when the log is idle.
    pub poll_timeout: Duration,
    /// Stop once the log has nothing more to read.
    pub until_idle: bool,
    pub clock: BusinessClock,
    /// Partitions of the `events` stream.
    pub partitions: u32,
    /// At shutdown, how long to keep retrying a store that fails before giving up on the
    /// final checkpoint (the rows are then written after the restart).
    pub shutdown_grace: Duration,
    /// A partition whose readers have been held at the same last stable offset this long,
    /// with records beyond it (a transaction left open), makes the projector not ready.
    pub stuck_transaction_after: Duration,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self {
            batch_size: 5_000,
            publish_every_events: 1_000_000,
            publish_interval: Duration::from_millis(500),
            checkpoint_every_events: 200_000,
            checkpoint_interval: Duration::from_secs(10),
            max_records_in_memory: DEFAULT_MAX_RECORDS_IN_MEMORY,
            poll_timeout: Duration::from_millis(200),
            until_idle: false,
            clock: BusinessClock::default(),
            partitions: aqs_eventlog::DEFAULT_PARTITIONS,
            shutdown_grace: Duration::from_secs(10),
            stuck_transaction_after: DEFAULT_STUCK_TRANSACTION_AFTER,
        }
    }
}

/// While catching up, rows are published every this many events per agent of the ledger
/// (within [`PUBLISH_EVERY_EVENTS_AT_LEAST`] and the setting): enough that an agent's rows
/// share the store's pages (design note 52), and no more, since the changed rows of the
/// events between publishes wait in memory. 2,000 agents over 1,000 days: publishes every
/// 250,000 events took the peak from 1,008–1,134 MiB to 859–880 for the same CPU; 66,666
/// agents in a month need the whole million (every 250,000: 16 % more CPU).
pub const PUBLISH_EVENTS_PER_AGENT: u64 = 15;

/// The fewest events between publishes while catching up (unless the setting is lower).
pub const PUBLISH_EVERY_EVENTS_AT_LEAST: u64 = 250_000;

/// Events between publishes while catching up for a ledger of `agents`, the setting being
/// `most`.
fn publish_every_events(agents: usize, most: u64) -> u64 {
    (agents as u64)
        .saturating_mul(PUBLISH_EVENTS_PER_AGENT)
        .clamp(PUBLISH_EVERY_EVENTS_AT_LEAST.min(most), most)
}

/// Default of [`RunnerSettings::max_records_in_memory`].
pub const DEFAULT_MAX_RECORDS_IN_MEMORY: usize = 1_000_000;

/// Default of [`RunnerSettings::stuck_transaction_after`]: three times the transaction
/// timeout ingest gives its writers by default (20 s), after which the broker aborts a
/// transaction on its own.
pub const DEFAULT_STUCK_TRANSACTION_AFTER: Duration = Duration::from_secs(60);

/// How often the consumer lag is measured, whatever the fold does.
const LAG_EVERY: Duration = Duration::from_secs(1);
/// After a checkpoint was put off, the next attempt comes no sooner than this.
const RETRY_CHECKPOINT_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("the ledger sink's thread could not be started: {0}")]
    SinkThread(#[source] std::io::Error),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Records(#[from] RecordError),
    #[error(
        "stopped with rows not yet written to the ledger store(s) {stores}: no final \
         checkpoint; they are written again after a restart ({reasons})"
    )]
    StoresBehind { stores: String, reasons: String },
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub records_read: u64,
    pub applied_total: u64,
    pub resumed_from_checkpoint: bool,
    /// Checkpoints written in this run, the time their saves took (the state written and
    /// synced, the row committed), and the size of the last one's state.
    pub checkpoints: u64,
    pub checkpoint_time: Duration,
    pub state_bytes: u64,
}

pub struct Runner<C: LogConsumer> {
    consumer: C,
    writers: Vec<StoreWriter>,
    /// Number of the last publish handed to the writers.
    published: u64,
    store: CheckpointStore,
    settings: RunnerSettings,
    metrics: Arc<ProjectorMetrics>,
    ledger: Ledger,
    positions: Positions,
    owned: BTreeSet<PartitionId>,
    /// Partitions (and the offset) already reported as held back by a stuck transaction.
    reported_stuck: BTreeSet<(PartitionId, u64)>,
    applied_total: u64,
    since_checkpoint: u64,
    /// Events folded whose changed rows are not published yet.
    unpublished: u64,
    last_publish: Instant,
    last_checkpoint: Instant,
    last_checkpoint_took: Duration,
    /// Checkpoint saves of this life: their total time and the last state's size.
    checkpoint_saves_took: Duration,
    last_state_bytes: u64,
    /// A checkpoint was put off; the next attempt not before this.
    checkpoint_retry_at: Option<Instant>,
    /// When this runner started, and the checkpoints it has written since.
    started: Instant,
    checkpoints_this_life: u64,
    /// How long after the start the last checkpoint of this life came.
    life_at_last_checkpoint: Duration,
    last_lag: Instant,
    /// The lag last measured is a publish's worth of events or more: rows are published by
    /// count only, not by time (see `run_until`).
    catching_up: bool,
    resumed: bool,
}

impl<C: LogConsumer> std::fmt::Debug for Runner<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("positions", &self.positions)
            .field("applied_total", &self.applied_total)
            .finish_non_exhaustive()
    }
}

impl<C: LogConsumer> Runner<C> {
    /// Restores the last checkpoint, if any, and positions the consumer after it; starts a
    /// writer thread for each ledger store.
    pub fn new(
        mut consumer: C,
        stores: Vec<Store>,
        store: CheckpointStore,
        settings: RunnerSettings,
        metrics: Arc<ProjectorMetrics>,
    ) -> Result<Self, ProjectorError> {
        let (mut ledger, positions, applied_total, resumed) = match store.load()? {
            Some(checkpoint) => (
                checkpoint.ledger,
                checkpoint.positions,
                checkpoint.applied,
                true,
            ),
            None => (Ledger::default(), Positions::new(), 0, false),
        };
        ledger.set_clock(settings.clock);
        consumer.seek(&positions)?;
        info!(
            resumed,
            applied_total,
            positions = positions.len(),
            "projector starting"
        );
        let mut writers = Vec::with_capacity(stores.len());
        for Store {
            sink,
            settings: pace,
        } in stores
        {
            let writer = StoreWriter::spawn(sink, pace, settings.partitions)
                .map_err(ProjectorError::SinkThread)?;
            metrics.health.register(Arc::clone(writer.health()));
            writers.push(writer);
        }
        Ok(Self {
            consumer,
            writers,
            published: 0,
            store,
            settings,
            metrics,
            ledger,
            positions,
            owned: BTreeSet::new(),
            reported_stuck: BTreeSet::new(),
            applied_total,
            since_checkpoint: 0,
            unpublished: 0,
            last_publish: Instant::now(),
            last_checkpoint: Instant::now(),
            last_checkpoint_took: Duration::ZERO,
            checkpoint_saves_took: Duration::ZERO,
            last_state_bytes: 0,
            checkpoint_retry_at: None,
            started: Instant::now(),
            checkpoints_this_life: 0,
            life_at_last_checkpoint: Duration::ZERO,
            last_lag: Instant::now() - LAG_EVERY,
            catching_up: false,
            resumed,
        })
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Hands the ledger over, leaving an empty one. A process about to exit can forget it
    /// instead of freeing its millions of small allocations one by one.
    pub fn take_ledger(&mut self) -> Ledger {
        std::mem::take(&mut self.ledger)
    }

    pub fn positions(&self) -> &Positions {
        &self.positions
    }

    /// Runs until `shutdown` is set (or, with `until_idle`, until the log is drained and
    /// every store has taken its rows), then writes a final checkpoint.
    pub fn run(&mut self, shutdown: &AtomicBool) -> Result<RunSummary, ProjectorError> {
        self.metrics.health.set_running();
        let result = self.run_until(shutdown);
        let reason = match &result {
            Ok(_) => "shut down".to_owned(),
            Err(error) => error.to_string(),
        };
        self.metrics.health.set_stopped(reason);
        result
    }

    fn run_until(&mut self, shutdown: &AtomicBool) -> Result<RunSummary, ProjectorError> {
        let mut summary = RunSummary {
            resumed_from_checkpoint: self.resumed,
            ..RunSummary::default()
        };
        while !shutdown.load(Ordering::Relaxed) {
            self.follow_assignment()?;
            self.measure_lag();
            if self.hold_back() {
                // A store holds as many waiting rows as it may: read nothing more until it
                // has taken them (the lag grows, and readiness says why).
                std::thread::sleep(self.settings.poll_timeout);
                continue;
            }
            let read = self.step()?;
            summary.records_read += read as u64;
            // Catching up (full reads, or a lag of a publish's worth and more), rows are
            // published by count: a row changed again and again is written about once, and
            // a long backlog does not turn into a write every interval. Near the head, by
            // time, for freshness.
            if read == 0
                || self.unpublished >= self.publish_every_events()
                || (read < self.settings.batch_size
                    && !self.catching_up
                    && self.last_publish.elapsed() >= self.settings.publish_interval)
            {
                self.publish();
            }
            if read == 0 {
                // Idle: checkpoint what was folded, but not more often than the interval
                // while events trickle in.
                let drained =
                    self.settings.until_idle && self.consumer.lag(&self.positions) == Some(0);
                if self.since_checkpoint > 0 && (drained || self.checkpoint_due()) {
                    self.checkpoint()?;
                }
                if drained && self.since_checkpoint == 0 {
                    break;
                }
            } else if self.checkpoint_due() {
                self.checkpoint()?;
            }
        }
        self.finish()?;
        summary.applied_total = self.applied_total;
        summary.checkpoints = self.checkpoints_this_life;
        summary.checkpoint_time = self.checkpoint_saves_took;
        summary.state_bytes = self.last_state_bytes;
        Ok(summary)
    }

    /// The last checkpoint, once every store has taken its rows (retrying a failing store
    /// for up to the shutdown grace).
    fn finish(&mut self) -> Result<(), ProjectorError> {
        self.publish();
        let grace = self.settings.shutdown_grace;
        let mut behind = Vec::new();
        for writer in &mut self.writers {
            if !writer.finish(grace) {
                behind.push(writer.name());
            }
        }
        if behind.is_empty() {
            if self.since_checkpoint > 0 {
                self.save_checkpoint(Instant::now())?;
            }
            return Ok(());
        }
        let reasons = self
            .metrics
            .health
            .stores()
            .iter()
            .map(|s| s.status())
            .filter(|s| !s.up)
            .map(|s| s.describe())
            .collect::<Vec<_>>()
            .join("; ");
        Err(ProjectorError::StoresBehind {
            stores: behind.join(", "),
            reasons,
        })
    }

    /// Measures the consumer lag about once a second, whether the fold reads or not.
    fn measure_lag(&mut self) {
        if self.last_lag.elapsed() < LAG_EVERY {
            return;
        }
        self.last_lag = Instant::now();
        let lag = self.consumer.lag(&self.positions);
        if let Some(lag) = lag {
            self.metrics.consumer_lag.store(lag, Ordering::Relaxed);
        }
        self.catching_up = lag.is_some_and(|lag| lag >= self.publish_every_events());
        // The lag is measured against the last stable offset: while a transaction holds the
        // readers back it reads 0. The tails past that offset tell.
        let tails = self.consumer.unstable_tails();
        let stuck: BTreeSet<(PartitionId, u64)> = tails
            .iter()
            .filter(|tail| tail.unchanged_for >= self.settings.stuck_transaction_after)
            .map(|tail| (tail.partition, tail.last_stable))
            .collect();
        for tail in &tails {
            let key = (tail.partition, tail.last_stable);
            if stuck.contains(&key) && !self.reported_stuck.contains(&key) {
                warn!(
                    topic = tail.topic,
                    partition = tail.partition.partition,
                    last_stable = tail.last_stable,
                    high_watermark = tail.high_watermark,
                    unchanged_secs = tail.unchanged_for.as_secs(),
                    "readers held back by a transaction left open"
                );
            }
        }
        self.reported_stuck = stuck;
        self.metrics
            .health
            .set_unstable_tails(tails, self.settings.stuck_transaction_after);
        // Reading that stopped although the log goes on: the consumer's watchdog notices it
        // and makes its client again; readiness says so meanwhile.
        self.metrics
            .health
            .set_read_watch(self.consumer.read_watch());
    }

    /// Whether a store has as many rows waiting as it may hold; says so in the health.
    fn hold_back(&self) -> bool {
        let full: Vec<String> = self
            .writers
            .iter()
            .filter(|w| w.is_full())
            .map(|w| {
                format!(
                    "{} rows wait for ledger store {}",
                    w.pending_rows(),
                    w.name()
                )
            })
            .collect();
        let held = !full.is_empty();
        if held != self.metrics.health.held_back().is_some() {
            if held {
                warn!(reason = %full.join("; "), "reading paused until the ledger stores take their rows");
            } else {
                info!("reading resumed");
            }
        }
        self.metrics
            .health
            .set_held_back(held.then(|| full.join("; ")));
        held
    }

    /// Follows changes of the partitions this instance owns. State of a partition that went
    /// elsewhere is kept with its position: it stays exact for that position, so if the
    /// partition comes back, reading resumes there. A partition never held starts at 0.
    fn follow_assignment(&mut self) -> Result<(), ProjectorError> {
        let owned: BTreeSet<PartitionId> = self.consumer.assignment().into_iter().collect();
        if owned == self.owned {
            return Ok(());
        }
        for partition in &owned {
            self.positions.entry(*partition).or_insert(0);
        }
        self.consumer.seek(&self.positions)?;
        info!(owned = owned.len(), "partitions assigned");
        self.owned = owned;
        Ok(())
    }

    /// One batch: read, fold, publish. Returns the records read.
    fn step(&mut self) -> Result<usize, ProjectorError> {
        let records = self
            .consumer
            .poll(self.settings.batch_size, self.settings.poll_timeout)?;
        if records.is_empty() {
            if let Some(lag) = self.consumer.lag(&self.positions) {
                self.metrics.consumer_lag.store(lag, Ordering::Relaxed);
            }
            return Ok(0);
        }
        let started = Instant::now();
        let span = info_span!("batch", records = records.len());
        let _guard = span.enter();
        let mut quarantined = Vec::new();
        let mut events = Vec::with_capacity(records.len());
        for record in &records {
            let expected = self.positions.get(&record.partition).copied().unwrap_or(0);
            if record.offset < expected {
                continue; // already folded
            }
            self.positions.insert(record.partition, record.offset + 1);
            self.since_checkpoint += 1;
            let event = match decode_canonical(&record.bytes) {
                Ok(event) => event,
                Err(_) => match Decoder::standard().decode(&record.bytes) {
                    Ok(event) => event,
                    Err(rejection) => {
                        self.metrics.events_rejected.fetch_add(1, Ordering::Relaxed);
                        // Accepted under an earlier contract, or written by another producer:
                        // what today's contract refuses counts nowhere, with its reasons.
                        let reason = QuarantineReason::Undecodable(rejection.to_string());
                        let named = Named {
                            event_id: rejection.event_id.as_deref(),
                            source: None,
                            event_type: rejection.event_type.as_deref(),
                        };
                        quarantined.push(self.set_aside(record, named, &reason));
                        continue;
                    }
                },
            };
            if let Err(reason) = quarantine::check(&event, &self.settings.clock) {
                self.metrics.quarantined(&reason);
                quarantined.push(self.set_aside(record, Named::of(&event), &reason));
                continue;
            }
            events.push((event, digest(&record.bytes)));
        }
        // The records of earlier events this batch may meet (a repeat, a retraction's
        // target) come back from the store first, so the fold never reads a disk.
        let wanted = self.ledger.records_to_fetch(events.iter().map(|(e, _)| e));
        if !wanted.is_empty() {
            let found = self.store.fetch_records(&wanted)?;
            self.metrics
                .records_read
                .fetch_add(found.len() as u64, Ordering::Relaxed);
            self.ledger.restore_records(found)?;
        }
        for (event, digest) in &events {
            let counter = match self.ledger.apply(event, *digest) {
                Applied::Applied => &self.metrics.events_applied,
                Applied::Duplicate => &self.metrics.events_duplicate,
                Applied::Conflict => {
                    warn!(event_id = %event.event_id, "conflicting event ignored: same event_id, different body; the first stays");
                    &self.metrics.events_conflict
                }
                Applied::Retracted => &self.metrics.events_retracted,
                Applied::NoEffect(_) => &self.metrics.events_no_effect,
                Applied::Overflow(overflow) => {
                    warn!(source = %event.source, event_id = %event.event_id, agent_id = ?event.agent_id, %overflow, "event counts nowhere: its money would overflow a ledger sum");
                    &self.metrics.events_overflow
                }
            };
            counter.fetch_add(1, Ordering::Relaxed);
            self.applied_total += 1;
        }
        if self.ledger.records_in_memory() >= self.settings.max_records_in_memory {
            let written = self.store.spill_records(&self.ledger)?;
            self.ledger.forget_saved_records();
            tracing::debug!(
                records = written,
                "event records written ahead of the checkpoint"
            );
        }
        self.metrics
            .records_in_memory
            .store(self.ledger.records_in_memory() as u64, Ordering::Relaxed);
        self.store.quarantine(&quarantined)?;
        self.unpublished += records.len() as u64;
        let elapsed = started.elapsed();
        self.metrics.batches.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .batch_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        tracing::debug!(
            records = records.len(),
            micros = elapsed.as_micros() as u64,
            "batch folded"
        );
        Ok(records.len())
    }

    /// Warns about a record that counts nowhere, naming it, and makes its record for the
    /// projector's store.
    fn set_aside(
        &self,
        record: &LogRecord,
        event: Named<'_>,
        reason: &QuarantineReason,
    ) -> Quarantined {
        let stream = match record.partition.stream {
            Stream::Events => "events",
            Stream::Reference => "reference",
        };
        warn!(
            event_id = event.event_id,
            source = event.source,
            event_type = event.event_type,
            stream,
            partition = record.partition.partition,
            offset = record.offset,
            reason = reason.code(),
            %reason,
            "event quarantined: it counts nowhere; `aqs projector quarantined` lists it"
        );
        Quarantined {
            stream: stream.to_owned(),
            partition: record.partition.partition,
            offset: record.offset,
            event_id: event.event_id.map(str::to_owned),
            reason_code: reason.code().to_owned(),
            reason: reason.to_string(),
            body: String::from_utf8_lossy(&record.bytes).into_owned(),
            quarantined_at: crate::health::rfc3339(std::time::SystemTime::now()),
        }
    }

    /// Events between publishes while catching up: [`PUBLISH_EVENTS_PER_AGENT`] per agent
    /// of the ledger, at least [`PUBLISH_EVERY_EVENTS_AT_LEAST`], at most the setting.
    fn publish_every_events(&self) -> u64 {
        publish_every_events(
            self.ledger.agent_count(),
            self.settings.publish_every_events,
        )
    }

    /// Hands the rows changed since the last publish to every store's writer. Rows carry the
    /// versions of the current positions, which cover every change folded so far.
    fn publish(&mut self) {
        if self.unpublished == 0 {
            return;
        }
        let changes = self.ledger.take_changes();
        self.unpublished = 0;
        self.last_publish = Instant::now();
        if changes.is_empty() {
            return;
        }
        self.published += 1;
        let changes = Arc::new(changes);
        let positions = Arc::new(self.positions.clone());
        for writer in &mut self.writers {
            writer.hand(&changes, &positions, self.published);
        }
        tracing::debug!(publish = self.published, "changes handed to the stores");
    }

    /// A checkpoint saves the whole state, so its cost grows with the ledger: while
    /// catching up on a long log, checkpoints are spaced so that they take at most about a
    /// tenth of the time (a crash then replays at most about ten checkpoints' worth).
    /// Each life of the projector checkpoints as soon as it has folded something, then,
    /// while it is younger than the checkpoint interval, each time its age has doubled
    /// (still spaced as above): a projector restarted again and again (by a crash loop, or
    /// an impatient orchestrator) moves forward in every life that folds a batch.
    fn checkpoint_due(&self) -> bool {
        if self
            .checkpoint_retry_at
            .is_some_and(|at| Instant::now() < at)
        {
            return false;
        }
        if self.checkpoints_this_life == 0 {
            return self.since_checkpoint > 0;
        }
        let elapsed = self.last_checkpoint.elapsed();
        let spaced = elapsed >= self.last_checkpoint_took * CHECKPOINT_SPACING;
        let young = self.started.elapsed() < self.settings.checkpoint_interval;
        if young && spaced && elapsed >= self.life_at_last_checkpoint {
            return true;
        }
        (self.since_checkpoint >= self.settings.checkpoint_every_events
            || elapsed >= self.settings.checkpoint_interval)
            && spaced
    }

    /// Checkpoints once every store has written the rows it would cover; puts it off (and
    /// says so) while a store cannot.
    fn checkpoint(&mut self) -> Result<(), ProjectorError> {
        let started = Instant::now();
        // Sink writes come before the checkpoint that covers them.
        self.publish();
        let unconfirmed: Vec<&'static str> = self
            .writers
            .iter_mut()
            .filter_map(|w| (!w.wait_written()).then(|| w.name()))
            .collect();
        if !unconfirmed.is_empty() {
            self.metrics
                .checkpoints_deferred
                .fetch_add(1, Ordering::Relaxed);
            if self.checkpoint_retry_at.is_none() {
                warn!(
                    stores = %unconfirmed.join(", "),
                    since_checkpoint = self.since_checkpoint,
                    "checkpoint put off: a ledger store has not taken its rows; folding goes on"
                );
            }
            self.checkpoint_retry_at = Some(Instant::now() + RETRY_CHECKPOINT_AFTER);
            return Ok(());
        }
        self.save_checkpoint(started)
    }

    fn save_checkpoint(&mut self, started: Instant) -> Result<(), ProjectorError> {
        let saving = Instant::now();
        let frozen_months = self.ledger.freeze_untouched_months();
        let saved = self
            .store
            .save(&self.ledger, &self.positions, self.applied_total)?;
        self.ledger.forget_saved_records();
        self.metrics.records_in_memory.store(0, Ordering::Relaxed);
        self.checkpoint_saves_took += saving.elapsed();
        self.last_state_bytes = saved.state_bytes;
        self.consumer.report_progress(&self.positions)?;
        self.metrics.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.checkpoints_this_life += 1;
        self.life_at_last_checkpoint = self.started.elapsed();
        info!(
            applied_total = self.applied_total,
            state_bytes = saved.state_bytes,
            records_written = saved.records,
            frozen_months,
            "checkpoint written"
        );
        log_footprint(&self.ledger);
        self.since_checkpoint = 0;
        self.checkpoint_retry_at = None;
        self.last_checkpoint = Instant::now();
        self.last_checkpoint_took = started.elapsed();
        Ok(())
    }
}

/// Where the state's memory goes, at each checkpoint: entries and estimated heap (MiB, as
/// the allocator holds it) of the structures that grow with history. The walk visits every
/// entry (0.16–0.19 s at 0.93 M events, about 2 s at 9 M), so it is logged at debug level
/// only (`AQS_LOG=aqs_projector=debug`) and skipped otherwise: at the default level it would
/// add seconds to every checkpoint of a large state.
fn log_footprint(ledger: &Ledger) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let walking = Instant::now();
    let footprint = ledger.footprint();
    let mib = |part: StatePart| part.heap.held_bytes as f64 / (1024.0 * 1024.0);
    tracing::debug!(
        state_heap_mib = footprint.total().held_bytes as f64 / (1024.0 * 1024.0),
        agents = footprint.agents.entries,
        event_records = footprint.event_records.entries,
        event_records_mib = mib(footprint.event_records),
        cells = footprint.cells.entries,
        cells_mib = mib(footprint.cells),
        retractions = footprint.retractions.entries,
        retractions_mib = mib(footprint.retractions),
        policies = footprint.policies.entries,
        policies_mib = mib(footprint.policies),
        agent_timelines_mib = mib(footprint.agent_timelines),
        supervisor_facts_mib = mib(footprint.supervisor_facts),
        agents_mib = mib(footprint.agents),
        reference_mib = mib(footprint.reference),
        pending_changes_mib = mib(footprint.pending_changes),
        walk_ms = walking.elapsed().as_millis() as u64,
        "state footprint"
    );
}

/// What is known of a record set aside: all of it for an event, what the decoder could read
/// for a record it refused.
#[derive(Debug, Clone, Copy)]
struct Named<'a> {
    event_id: Option<&'a str>,
    source: Option<&'a str>,
    event_type: Option<&'a str>,
}

impl<'a> Named<'a> {
    fn of(event: &'a Event) -> Self {
        Self {
            event_id: Some(&event.event_id),
            source: Some(&event.source),
            event_type: Some(event.payload.event_type().as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aqs_eventlog::EventLog;
    use aqs_eventlog::sqlite::SqliteLog;
    use aqs_schemas::Payload;

    use super::*;
    use crate::ledger::LedgerChanges;
    use crate::sink::sqlite::SqliteSink;
    use crate::sink::{LedgerSink, RowVersions, SinkError, WriterSettings, Written, change_rows};

    /// A store that refuses writes while `down` is set, and counts the rows it took.
    struct Switchable {
        down: Arc<AtomicBool>,
        rows: Arc<Mutex<u64>>,
    }

    impl LedgerSink for Switchable {
        fn name(&self) -> &'static str {
            "switchable"
        }

        fn publish(
            &mut self,
            changes: &LedgerChanges,
            _versions: &RowVersions<'_>,
        ) -> Result<Written, SinkError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(SinkError::Unavailable("connection refused".into()));
            }
            *self.rows.lock().expect("lock") += change_rows(changes);
            Ok(Written {
                rows: change_rows(changes),
                dead_lettered: 0,
            })
        }
    }

    fn quick_retries() -> WriterSettings {
        WriterSettings {
            retry_initial: Duration::from_millis(10),
            retry_max: Duration::from_millis(50),
            ..WriterSettings::default()
        }
    }

    /// A log of a few hundred visits over several agents.
    fn log(dir: &std::path::Path) -> SqliteLog {
        let log = SqliteLog::open(dir.join("events.db"), 4).expect("log");
        let events: Vec<_> = (0..300)
            .map(|n| {
                let line = format!(
                    r#"{{"event_id":"v{n}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-{:02}T09:30:00+08:00","source":"t","agent_id":"A{}","payload":{{"outlet_id":"O{}","purpose":"promotion"}}}}"#,
                    n % 20 + 1,
                    n % 7,
                    n % 3
                );
                Decoder::standard().decode(line.as_bytes()).expect("valid")
            })
            .collect();
        log.append(&events).expect("append");
        log
    }

    /// Visits other than those of [`log`].
    fn more_events(count: usize) -> Vec<Event> {
        (0..count)
            .map(|n| {
                let line = format!(
                    r#"{{"event_id":"more{n}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-25T09:30:00+08:00","source":"t","agent_id":"A{}","payload":{{"outlet_id":"O1","purpose":"other"}}}}"#,
                    n % 7
                );
                Decoder::standard().decode(line.as_bytes()).expect("valid")
            })
            .collect()
    }

    fn settings(until_idle: bool) -> RunnerSettings {
        RunnerSettings {
            until_idle,
            partitions: 4,
            batch_size: 50,
            poll_timeout: Duration::from_millis(20),
            shutdown_grace: Duration::from_millis(300),
            ..RunnerSettings::default()
        }
    }

    /// A projector over `log` into one embedded ledger store at `ledgers`, with its
    /// checkpoint at `checkpoint`.
    fn embedded_runner(
        log: &SqliteLog,
        ledgers: &std::path::Path,
        checkpoint: &std::path::Path,
        settings: RunnerSettings,
        metrics: Arc<ProjectorMetrics>,
    ) -> Runner<aqs_eventlog::sqlite::SqliteConsumer> {
        Runner::new(
            log.consumer().expect("consumer"),
            vec![Store::new(
                SqliteSink::open(ledgers).expect("store"),
                WriterSettings::default(),
            )],
            CheckpointStore::open(checkpoint).expect("store"),
            settings,
            metrics,
        )
        .expect("runner")
    }

    /// The embedded store after a clean run over `log`.
    fn clean_dump(log: &SqliteLog, dir: &std::path::Path) -> String {
        let mut runner = embedded_runner(
            log,
            &dir.join("clean-ledgers.db"),
            &dir.join("clean-projector.db"),
            settings(true),
            Arc::default(),
        );
        runner.run(&AtomicBool::new(false)).expect("run");
        drop(runner);
        SqliteSink::open(&dir.join("clean-ledgers.db"))
            .expect("store")
            .dump()
            .expect("dump")
    }

    /// Retractions of events folded by an earlier life of the projector, whose records are
    /// no longer in memory but in the checkpoint's store. (The embedded log keeps one copy
    /// of an identity, so repeats and conflicts reach the fold only from Kafka; the fold
    /// with records read back meets them in `tests/state_layout.rs`.)
    fn echoes_of_earlier_events() -> Vec<Event> {
        let lines = [
            // v7 retracted by its agent, v8 by a retraction naming no agent.
            r#"{"event_id":"r7","type":"retraction","schema_version":1,"occurred_at":"2026-11-27T09:30:00+08:00","source":"t","agent_id":"A0","payload":{"retracted_event_id":"v7","reason":"entered twice"}}"#,
            r#"{"event_id":"r8","type":"retraction","schema_version":1,"occurred_at":"2026-11-27T09:30:00+08:00","source":"t","payload":{"retracted_event_id":"v8","reason":"entered twice"}}"#,
        ];
        lines
            .iter()
            .map(|line| Decoder::standard().decode(line.as_bytes()).expect("valid"))
            .collect()
    }

    #[test]
    fn publishes_while_catching_up_follow_the_agents_within_their_bounds() {
        // 2,000 agents: the floor; 66,666: fifteen events each, the million.
        assert_eq!(publish_every_events(0, 1_000_000), 250_000);
        assert_eq!(publish_every_events(2_000, 1_000_000), 250_000);
        assert_eq!(publish_every_events(30_000, 1_000_000), 450_000);
        assert_eq!(publish_every_events(66_666, 1_000_000), 999_990);
        assert_eq!(publish_every_events(500_000, 1_000_000), 1_000_000);
        // A setting under the floor is kept as it is.
        assert_eq!(publish_every_events(10, 40), 40);
        assert_eq!(publish_every_events(1_000_000, 40), 40);
    }

    #[test]
    fn events_of_an_earlier_life_are_recognised_from_the_record_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log(dir.path());
        let store_path = dir.path().join("projector.db");
        let ledgers = dir.path().join("ledgers.db");
        let life = |metrics: &Arc<ProjectorMetrics>| {
            let mut runner = embedded_runner(
                &log,
                &ledgers,
                &store_path,
                // Records also go to the store between checkpoints.
                RunnerSettings {
                    max_records_in_memory: 40,
                    ..settings(true)
                },
                Arc::clone(metrics),
            );
            runner.run(&AtomicBool::new(false)).expect("run");
            assert_eq!(
                runner.ledger().records_in_memory(),
                0,
                "saved and forgotten"
            );
        };
        life(&Arc::default());
        log.append(&echoes_of_earlier_events()).expect("append");
        let metrics = Arc::new(ProjectorMetrics::default());
        life(&metrics);

        assert_eq!(metrics.events_applied.load(Ordering::Relaxed), 2);
        // v7 and v8 read back (v8 found under its agent by the filter), nothing else.
        assert_eq!(metrics.records_read.load(Ordering::Relaxed), 2);
        let dump = SqliteSink::open(&ledgers)
            .expect("store")
            .dump()
            .expect("dump");
        assert!(
            dump == clean_dump(&log, dir.path()),
            "two lives with the records in the store give the ledgers of one over the whole log"
        );
    }

    /// Events a store cannot hold, as a log written before dates were checked may hold them,
    /// and a retraction of one of them. Today's contract refuses their dates, so they are
    /// built from valid events given bad values.
    fn unstorable_events() -> Vec<Event> {
        let ymd = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).expect("date");
        let event = |line: &str, change: &dyn Fn(&mut Event)| {
            let mut event = decode_canonical(line.as_bytes()).expect("canonical");
            change(&mut event);
            event
        };
        vec![
            event(
                r#"{"event_id":"bad-plan","type":"activity_plan","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","agent_id":"A1","payload":{"period_start":"2026-11-02","period_end":"2026-11-08","visits":3}}"#,
                &|e| {
                    if let Payload::ActivityPlan(p) = &mut e.payload {
                        p.period_start = ymd(1969, 12, 31);
                    }
                },
            ),
            event(
                r#"{"event_id":"bad-join","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","agent_id":"A2","payload":{"team_id":"T1","effective_date":"2026-11-02"}}"#,
                &|e| {
                    if let Payload::AgentJoinedTeam(j) = &mut e.payload {
                        j.effective_date = ymd(2150, 1, 1);
                    }
                },
            ),
            event(
                r#"{"event_id":"bad-target","type":"target","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","payload":{"month":"2026-11","scope":"team","scope_id":"T1","premium":"10.00"}}"#,
                &|e| {
                    if let Payload::Target(t) = &mut e.payload {
                        t.month = aqs_schemas::YearMonth::new(2150, 1).expect("month");
                    }
                },
            ),
            // The decoder of the log's records reads `occurred_at` as any instant; the
            // projector's own check sets this one aside.
            event(
                r#"{"event_id":"bad-visit","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","agent_id":"A3","payload":{"outlet_id":"O1","purpose":"other"}}"#,
                &|e| {
                    e.occurred_at = aqs_schemas::OccurredAt::new(
                        chrono::DateTime::parse_from_rfc3339("2150-01-01T09:00:00+08:00")
                            .expect("instant"),
                    );
                },
            ),
            event(
                r#"{"event_id":"fix-plan","type":"retraction","schema_version":1,"occurred_at":"2026-11-03T09:00:00+08:00","source":"t","agent_id":"A1","payload":{"retracted_event_id":"bad-plan","reason":"typo"}}"#,
                &|_| {},
            ),
        ]
    }

    #[test]
    fn events_a_store_cannot_hold_are_quarantined_and_the_rest_flows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log(dir.path());
        let expected = clean_dump(&log, dir.path());
        log.append(&unstorable_events()).expect("append");
        let ledgers = dir.path().join("ledgers.db");
        let store_path = dir.path().join("projector.db");
        let metrics = Arc::new(ProjectorMetrics::default());
        let mut runner = embedded_runner(
            &log,
            &ledgers,
            &store_path,
            settings(true),
            Arc::clone(&metrics),
        );
        runner.run(&AtomicBool::new(false)).expect("not wedged");
        drop(runner);
        pretty_assertions::assert_eq!(
            SqliteSink::open(&ledgers)
                .expect("store")
                .dump()
                .expect("dump"),
            expected,
            "the quarantined events count nowhere; the retraction of one changes nothing"
        );
        // Dates in the payload: refused by today's contract when the record is read; the
        // instant of the visit: by the projector's check of what the stores hold.
        assert_eq!(metrics.quarantined_dates.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.events_rejected.load(Ordering::Relaxed), 3);
        let text = metrics.render();
        assert!(
            text.contains(
                "\naqs_projector_events_quarantined_total{reason=\"date_out_of_range\"} 1\n"
            ) && text
                .contains("\naqs_projector_events_quarantined_total{reason=\"undecodable\"} 3\n"),
            "{text}"
        );
        let records = CheckpointStore::open(&store_path)
            .expect("store")
            .quarantined()
            .expect("records");
        let ids: Vec<_> = records
            .iter()
            .filter_map(|r| r.event_id.as_deref())
            .collect();
        assert_eq!(ids.len(), 4, "{records:?}");
        for id in ["bad-plan", "bad-join", "bad-target", "bad-visit"] {
            assert!(ids.contains(&id), "{id} in {ids:?}");
        }
        let plan = records
            .iter()
            .find(|r| r.event_id.as_deref() == Some("bad-plan"))
            .expect("plan");
        assert_eq!(plan.reason_code, "undecodable");
        assert!(
            plan.reason.contains("payload.period_start") && plan.reason.contains("out of range"),
            "{plan:?}"
        );
        let visit = records
            .iter()
            .find(|r| r.event_id.as_deref() == Some("bad-visit"))
            .expect("visit");
        assert_eq!(visit.reason_code, "date_out_of_range");
        assert!(plan.body.contains("\"bad-plan\""));

        // A rebuild quarantines them again and keeps one record each.
        let mut store = CheckpointStore::open(&store_path).expect("store");
        store.clear().expect("clear");
        let mut runner = Runner::new(
            log.consumer().expect("consumer"),
            vec![Store::new(
                SqliteSink::open(&ledgers).expect("store"),
                WriterSettings::default(),
            )],
            store,
            settings(true),
            Arc::default(),
        )
        .expect("runner");
        runner.run(&AtomicBool::new(false)).expect("run");
        drop(runner);
        assert_eq!(
            CheckpointStore::open(&store_path)
                .expect("store")
                .quarantined()
                .expect("records"),
            records
        );
    }

    /// Publishes of a run over `log` in batches of 10, publishing by time at every short
    /// read near the head, with `publish_every_events`; and the ledgers it leaves.
    fn publishes_of_a_run(
        log: &SqliteLog,
        dir: &std::path::Path,
        publish_every_events: u64,
    ) -> (u64, String) {
        let ledgers = dir.join(format!("ledgers-{publish_every_events}.db"));
        let mut runner = embedded_runner(
            log,
            &ledgers,
            &dir.join(format!("projector-{publish_every_events}.db")),
            RunnerSettings {
                batch_size: 10,
                publish_every_events,
                publish_interval: Duration::ZERO,
                ..settings(true)
            },
            Arc::default(),
        );
        runner.run(&AtomicBool::new(false)).expect("run");
        let published = runner.published;
        drop(runner);
        let dump = SqliteSink::open(&ledgers)
            .expect("store")
            .dump()
            .expect("dump");
        (published, dump)
    }

    #[test]
    fn a_backlog_is_published_by_count_not_at_every_short_read() {
        let dir = tempfile::tempdir().expect("dir");
        let log = log(dir.path());
        // 300 events waiting: a lag of a publish's worth (100) and more.
        let (catching_up, caught_up_ledgers) = publishes_of_a_run(&log, dir.path(), 100);
        // The same log with a publish's worth larger than the lag: near the head, rows are
        // published by time, here at every read short of a batch.
        let (near_the_head, head_ledgers) = publishes_of_a_run(&log, dir.path(), 1_000);
        assert!(
            catching_up <= 6,
            "300 events by hundreds, the first checkpoint and the end: {catching_up} publishes"
        );
        assert!(
            near_the_head > catching_up + 5,
            "near the head short reads publish: {near_the_head} against {catching_up}"
        );
        assert_eq!(caught_up_ledgers, head_ledgers);
        assert_eq!(caught_up_ledgers, clean_dump(&log, dir.path()));
    }

    #[test]
    fn a_failing_store_puts_checkpoints_off_until_it_takes_the_rows_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log(dir.path());
        let down = Arc::new(AtomicBool::new(true));
        let rows = Arc::new(Mutex::new(0));
        let store_path = dir.path().join("projector.db");
        let metrics = Arc::new(ProjectorMetrics::default());
        let mut runner = Runner::new(
            log.consumer().expect("consumer"),
            vec![Store::new(
                Switchable {
                    down: Arc::clone(&down),
                    rows: Arc::clone(&rows),
                },
                quick_retries(),
            )],
            CheckpointStore::open(&store_path).expect("store"),
            settings(true),
            Arc::clone(&metrics),
        )
        .expect("runner");
        let running = std::thread::spawn(move || runner.run(&AtomicBool::new(false)));

        // Down: the whole log is folded, nothing checkpointed, and it shows.
        let deadline = Instant::now() + Duration::from_secs(20);
        while metrics.checkpoints_deferred.load(Ordering::Relaxed) < 2 {
            assert!(Instant::now() < deadline, "no checkpoint was put off");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            metrics.checkpoints.load(Ordering::Relaxed),
            0,
            "no checkpoint covers rows that were not written"
        );
        let reason = metrics.health.check().expect_err("not ready");
        assert!(reason.contains("connection refused"), "{reason}");
        assert_eq!(*rows.lock().expect("lock"), 0);

        // Back: the rows are written, the checkpoint follows, the run ends.
        down.store(false, Ordering::SeqCst);
        let summary = running.join().expect("join").expect("run");
        assert_eq!(summary.applied_total, 300);
        let checkpoint = CheckpointStore::open(&store_path)
            .expect("store")
            .load()
            .expect("load")
            .expect("a checkpoint once the store is back");
        assert_eq!(checkpoint.positions.values().sum::<u64>(), 300);
        assert!(*rows.lock().expect("lock") > 0);
        assert_eq!(metrics.checkpoints.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn one_store_down_does_not_hold_the_other_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log(dir.path());
        let expected = clean_dump(&log, dir.path());
        let ledgers = dir.path().join("ledgers.db");
        let store_path = dir.path().join("projector.db");
        let stores = vec![
            Store::new(
                SqliteSink::open(&ledgers).expect("store"),
                WriterSettings::default(),
            ),
            Store::new(
                Switchable {
                    down: Arc::new(AtomicBool::new(true)),
                    rows: Arc::default(),
                },
                quick_retries(),
            ),
        ];
        let metrics = Arc::new(ProjectorMetrics::default());
        let mut runner = Runner::new(
            log.consumer().expect("consumer"),
            stores,
            CheckpointStore::open(&store_path).expect("store"),
            settings(false),
            Arc::clone(&metrics),
        )
        .expect("runner");
        let shutdown = Arc::new(AtomicBool::new(false));
        let running = std::thread::spawn({
            let shutdown = Arc::clone(&shutdown);
            move || runner.run(&shutdown)
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let dump = || {
            SqliteSink::open(&ledgers)
                .expect("store")
                .dump()
                .expect("dump")
        };
        while dump() != expected {
            assert!(
                Instant::now() < deadline,
                "the embedded store did not advance while the other store was down"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(metrics.consumer_lag.load(Ordering::Relaxed), 0);
        shutdown.store(true, Ordering::SeqCst);
        let error = running
            .join()
            .expect("join")
            .expect_err("a store is behind");
        assert!(
            matches!(&error, ProjectorError::StoresBehind { stores, .. } if stores == "switchable"),
            "{error}"
        );
        assert!(
            CheckpointStore::open(&store_path)
                .expect("store")
                .load()
                .expect("load")
                .is_none(),
            "no checkpoint covers rows the second store lacks"
        );
        assert!(
            metrics
                .health
                .stopped()
                .is_some_and(|reason| reason.contains("switchable")),
            "{:?}",
            metrics.health.stopped()
        );
    }

    #[test]
    fn reading_stops_while_a_store_holds_as_many_rows_as_it_may() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log(dir.path());
        let metrics = Arc::new(ProjectorMetrics::default());
        let mut runner = Runner::new(
            log.consumer().expect("consumer"),
            vec![Store::new(
                Switchable {
                    down: Arc::new(AtomicBool::new(true)),
                    rows: Arc::default(),
                },
                WriterSettings {
                    max_pending_rows: 10,
                    ..quick_retries()
                },
            )],
            CheckpointStore::open(&dir.path().join("projector.db")).expect("store"),
            RunnerSettings {
                publish_interval: Duration::ZERO,
                ..settings(false)
            },
            Arc::clone(&metrics),
        )
        .expect("runner");
        let shutdown = Arc::new(AtomicBool::new(false));
        let running = std::thread::spawn({
            let shutdown = Arc::clone(&shutdown);
            move || {
                let result = runner.run(&shutdown);
                (result, runner.applied_total)
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while metrics.health.held_back().is_none() {
            assert!(Instant::now() < deadline, "reading never paused");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Events arriving while reading is paused show in the lag.
        std::thread::sleep(Duration::from_millis(1_200));
        let before = metrics.consumer_lag.load(Ordering::Relaxed);
        log.append(&more_events(50)).expect("append");
        while metrics.consumer_lag.load(Ordering::Relaxed) < before + 50 {
            assert!(
                Instant::now() < deadline,
                "the lag is measured while reading is paused: {} after {before}",
                metrics.consumer_lag.load(Ordering::Relaxed)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let reason = metrics.health.check().expect_err("not ready");
        assert!(reason.contains("holds back reading"), "{reason}");
        shutdown.store(true, Ordering::SeqCst);
        let (result, applied) = running.join().expect("join");
        assert!(result.is_err());
        assert!(applied < 300, "stopped reading at the bound: {applied}");
    }
}
