//! The projector loop: read batches and fold them, publish the changed rows, and now and
//! then checkpoint the state with the positions it reflects.
//!
//! Exactly-once effects without log transactions: the checkpoint (state + positions) is
//! one local ACID transaction; sink writes are idempotent and happen before the checkpoint
//! that covers them. A crash anywhere resumes from the last checkpoint and replays the log
//! from its positions: the ledger drops nothing and counts nothing twice, and rows written
//! again carry the same content.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aqs_eventlog::{LogConsumer, LogError, PartitionId, Positions};
use aqs_schemas::{BusinessClock, Decoder, decode_canonical};
use tracing::{info, info_span, warn};

use crate::checkpoint::{CheckpointError, CheckpointStore};
use crate::ledger::{Applied, Ledger, LedgerChanges, digest};
use crate::metrics::ProjectorMetrics;
use crate::sink::{LedgerSink, RowVersions, SinkError};

/// Time between two checkpoints, at least, as a multiple of the last one's duration.
const CHECKPOINT_SPACING: u32 = 9;

/// How the loop paces itself.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Records read and folded per batch.
    pub batch_size: usize,
    /// Changed rows are published when the log is drained, or after this many events, or
    /// (once reads come back short of a batch, near the head of the log) this long after
    /// the previous publish; a row changed again and again while catching up is written
    /// about once.
    pub publish_every_events: u64,
    pub publish_interval: Duration,
    /// Checkpoint after this many events since the last one...
    pub checkpoint_every_events: u64,
    /// ...or after this long, whichever comes first.
    pub checkpoint_interval: Duration,
    /// How long a poll waits when the log is idle.
    pub poll_timeout: Duration,
    /// Stop once the log has nothing more to read.
    pub until_idle: bool,
    pub clock: BusinessClock,
    /// Partitions of the `events` stream.
    pub partitions: u32,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self {
            batch_size: 5_000,
            publish_every_events: 100_000,
            publish_interval: Duration::from_millis(500),
            checkpoint_every_events: 200_000,
            checkpoint_interval: Duration::from_secs(10),
            poll_timeout: Duration::from_millis(200),
            until_idle: false,
            clock: BusinessClock::default(),
            partitions: aqs_eventlog::DEFAULT_PARTITIONS,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("the ledger sink's thread could not be started: {0}")]
    SinkThread(#[source] std::io::Error),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub records_read: u64,
    pub applied_total: u64,
    pub resumed_from_checkpoint: bool,
}

pub struct Runner<C: LogConsumer> {
    consumer: C,
    publisher: Publisher,
    store: CheckpointStore,
    settings: RunnerSettings,
    metrics: Arc<ProjectorMetrics>,
    ledger: Ledger,
    positions: Positions,
    owned: BTreeSet<PartitionId>,
    applied_total: u64,
    since_checkpoint: u64,
    /// Events folded whose changed rows are not published yet.
    unpublished: u64,
    last_publish: Instant,
    last_checkpoint: Instant,
    last_checkpoint_took: Duration,
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
    /// Restores the last checkpoint, if any, and positions the consumer after it.
    pub fn new<S: LedgerSink + Send + 'static>(
        mut consumer: C,
        sink: S,
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
        let publisher = Publisher::spawn(sink, settings.partitions)?;
        Ok(Self {
            consumer,
            publisher,
            store,
            settings,
            metrics,
            ledger,
            positions,
            owned: BTreeSet::new(),
            applied_total,
            since_checkpoint: 0,
            unpublished: 0,
            last_publish: Instant::now(),
            last_checkpoint: Instant::now(),
            last_checkpoint_took: Duration::ZERO,
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

    /// Runs until `shutdown` is set (or, with `until_idle`, until the log is drained), then
    /// writes a final checkpoint.
    pub fn run(&mut self, shutdown: &AtomicBool) -> Result<RunSummary, ProjectorError> {
        let mut summary = RunSummary {
            resumed_from_checkpoint: self.resumed,
            ..RunSummary::default()
        };
        while !shutdown.load(Ordering::Relaxed) {
            self.follow_assignment()?;
            let read = self.step()?;
            summary.records_read += read as u64;
            // Catching up (full reads), rows are published by count: every row is written
            // about once. Near the head, by time, for freshness.
            if read == 0
                || self.unpublished >= self.settings.publish_every_events
                || (read < self.settings.batch_size
                    && self.last_publish.elapsed() >= self.settings.publish_interval)
            {
                self.publish()?;
            }
            if read == 0 {
                // Idle: checkpoint what was folded, but not more often than the interval
                // while events trickle in.
                let drained =
                    self.settings.until_idle && self.consumer.lag(&self.positions) == Some(0);
                if self.since_checkpoint > 0 && (drained || self.checkpoint_due()) {
                    self.checkpoint()?;
                }
                if drained {
                    break;
                }
            } else if self.checkpoint_due() {
                self.checkpoint()?;
            }
        }
        if self.since_checkpoint > 0 {
            self.checkpoint()?;
        }
        summary.applied_total = self.applied_total;
        Ok(summary)
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
        for record in &records {
            let expected = self.positions.get(&record.partition).copied().unwrap_or(0);
            if record.offset < expected {
                continue; // already folded
            }
            self.positions.insert(record.partition, record.offset + 1);
            let event = match decode_canonical(&record.bytes) {
                Ok(event) => event,
                Err(_) => match Decoder::standard().decode(&record.bytes) {
                    Ok(event) => event,
                    Err(rejection) => {
                        self.metrics.events_rejected.fetch_add(1, Ordering::Relaxed);
                        warn!(partition = ?record.partition, offset = record.offset, %rejection, "undecodable record skipped");
                        continue;
                    }
                },
            };
            let counter = match self.ledger.apply(&event, digest(&record.bytes)) {
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
                    // Counted with the events without effect until it has a metric of its own.
                    &self.metrics.events_no_effect
                }
            };
            counter.fetch_add(1, Ordering::Relaxed);
            self.applied_total += 1;
            self.since_checkpoint += 1;
        }
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

    /// Writes the rows changed since the last publish. Rows carry the versions of the
    /// current positions, which cover every change folded so far.
    fn publish(&mut self) -> Result<(), ProjectorError> {
        if self.unpublished == 0 {
            return Ok(());
        }
        let changes = self.ledger.take_changes();
        self.publisher.send(changes, self.positions.clone())?;
        tracing::debug!(events = self.unpublished, "changes handed to the sink");
        self.unpublished = 0;
        self.last_publish = Instant::now();
        Ok(())
    }

    /// A checkpoint saves the whole state, so its cost grows with the ledger: while
    /// catching up on a long log, checkpoints are spaced so that they take at most about a
    /// tenth of the time (a crash then replays at most about ten checkpoints' worth).
    fn checkpoint_due(&self) -> bool {
        let elapsed = self.last_checkpoint.elapsed();
        (self.since_checkpoint >= self.settings.checkpoint_every_events
            || elapsed >= self.settings.checkpoint_interval)
            && elapsed >= self.last_checkpoint_took * CHECKPOINT_SPACING
    }

    fn checkpoint(&mut self) -> Result<(), ProjectorError> {
        let started = Instant::now();
        // Sink writes come before the checkpoint that covers them.
        self.publish()?;
        self.publisher.flush()?;
        let bytes = self
            .store
            .save(&self.ledger, &self.positions, self.applied_total)?;
        self.consumer.report_progress(&self.positions)?;
        self.metrics.checkpoints.fetch_add(1, Ordering::Relaxed);
        info!(
            applied_total = self.applied_total,
            state_bytes = bytes,
            "checkpoint written"
        );
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        self.last_checkpoint_took = started.elapsed();
        Ok(())
    }
}

/// Publishes changed rows on a thread of its own, so that folding goes on while the sink
/// writes (a SQLite transaction, or a round trip to ClickHouse). One publish may wait
/// behind the one being written; [`Publisher::flush`] waits for both, and a checkpoint
/// flushes first, so the rows a checkpoint covers are always written before it.
struct Publisher {
    jobs: Option<SyncSender<(LedgerChanges, Positions)>>,
    results: Receiver<Result<(), SinkError>>,
    in_flight: usize,
    thread: Option<JoinHandle<()>>,
}

impl Publisher {
    fn spawn<S: LedgerSink + Send + 'static>(
        mut sink: S,
        partitions: u32,
    ) -> Result<Self, ProjectorError> {
        let (jobs, queued) = sync_channel::<(LedgerChanges, Positions)>(1);
        let (done, results) = channel();
        let thread = std::thread::Builder::new()
            .name("projector-sink".into())
            .spawn(move || {
                for (changes, positions) in queued {
                    let started = Instant::now();
                    let result = sink.publish(&changes, &RowVersions::new(&positions, partitions));
                    tracing::debug!(
                        micros = started.elapsed().as_micros() as u64,
                        "changes published"
                    );
                    // After a failure nothing more is written: the runner stops, and the
                    // replay after a restart writes these rows again.
                    let failed = result.is_err();
                    if done.send(result).is_err() || failed {
                        break;
                    }
                }
            })
            .map_err(ProjectorError::SinkThread)?;
        Ok(Self {
            jobs: Some(jobs),
            results,
            in_flight: 0,
            thread: Some(thread),
        })
    }

    /// Queues a publish; reports the failure of an earlier one, if any.
    fn send(&mut self, changes: LedgerChanges, positions: Positions) -> Result<(), SinkError> {
        self.collect(false)?;
        let jobs = self.jobs.as_ref().expect("jobs are open until drop");
        if jobs.send((changes, positions)).is_err() {
            // The thread stopped after a failure: report it.
            self.collect(true)?;
            return Err(SinkError::Unavailable("the sink thread stopped".into()));
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Waits until every queued publish is written.
    fn flush(&mut self) -> Result<(), SinkError> {
        self.collect(true)
    }

    fn collect(&mut self, wait: bool) -> Result<(), SinkError> {
        while self.in_flight > 0 {
            let result = if wait {
                match self.results.recv() {
                    Ok(result) => result,
                    Err(_) => {
                        self.in_flight = 0;
                        return Err(SinkError::Unavailable("the sink thread stopped".into()));
                    }
                }
            } else {
                match self.results.try_recv() {
                    Ok(result) => result,
                    Err(_) => return Ok(()),
                }
            };
            self.in_flight -= 1;
            result?;
        }
        Ok(())
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has written what it holds.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use aqs_eventlog::EventLog;
    use aqs_eventlog::sqlite::SqliteLog;

    use super::*;

    /// A store that is down.
    struct DownSink;

    impl LedgerSink for DownSink {
        fn publish(
            &mut self,
            _changes: &LedgerChanges,
            _versions: &RowVersions<'_>,
        ) -> Result<(), SinkError> {
            Err(SinkError::Unavailable("connection refused".into()))
        }
    }

    #[test]
    fn a_failing_sink_stops_the_runner_before_any_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = SqliteLog::open(dir.path().join("events.db"), 4).expect("log");
        let events: Vec<_> = (0..3)
            .map(|n| {
                let line = format!(
                    r#"{{"event_id":"v{n}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:30:00+08:00","source":"t","agent_id":"A1","payload":{{"outlet_id":"O1","purpose":"promotion"}}}}"#
                );
                Decoder::standard().decode(line.as_bytes()).expect("valid")
            })
            .collect();
        log.append(&events).expect("append");
        let store_path = dir.path().join("projector.db");
        let settings = RunnerSettings {
            until_idle: true,
            partitions: 4,
            ..RunnerSettings::default()
        };
        let mut runner = Runner::new(
            log.consumer().expect("consumer"),
            DownSink,
            CheckpointStore::open(&store_path).expect("store"),
            settings,
            Arc::default(),
        )
        .expect("runner");
        let error = runner
            .run(&AtomicBool::new(false))
            .expect_err("the sink is down");
        assert!(
            matches!(error, ProjectorError::Sink(SinkError::Unavailable(ref m)) if m == "connection refused"),
            "{error}"
        );
        let stored = CheckpointStore::open(&store_path).expect("store").load();
        assert!(
            stored.expect("load").is_none(),
            "no checkpoint covers rows that were not written"
        );
    }
}
