//! One writer thread per ledger store, so that one store's outage or slowness never holds the
//! fold or another store back.
//!
//! The runner hands every publish to each writer without waiting. A writer that is busy or
//! failing merges what it is handed by row key ([`PendingChanges`]), so what waits for a
//! store is bounded by the ledger rows changed since its last write, not by the time it has
//! been away. A failed write is retried after a pause that doubles up to a cap, drawn between
//! half and all of it (jitter: instances that lost the same store do not come back in step).
//! A store that wants few large writes (ClickHouse) gets a least interval between writes;
//! what arrives meanwhile is merged into the next one.
//!
//! Exactly-once effects: every write carries the newest positions handed over as versions,
//! and covers every change handed up to them. The runner checkpoints only once every writer
//! has confirmed the last sequence number it was handed ([`StoreWriter::wait_written`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aqs_eventlog::Positions;
use tracing::{info, warn};

use super::pending::PendingChanges;
use super::{LedgerSink, RowVersions, change_rows};
use crate::health::{DEFAULT_STALL_AFTER, StoreHealth};
use crate::ledger::LedgerChanges;

/// How long a checkpoint waits for a store, beyond one write interval, at first.
pub const CHECKPOINT_PATIENCE: Duration = Duration::from_secs(2);

/// How a store's writer paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterSettings {
    /// Least time between the starts of two writes; changes handed over meanwhile are merged
    /// by key and written together. Zero: write as soon as something is handed over.
    pub min_interval: Duration,
    /// Pause after the first failed write; it doubles with every further failure.
    pub retry_initial: Duration,
    /// Cap of that pause.
    pub retry_max: Duration,
    /// A write running this long marks the store down (it may hang): readiness says so and
    /// checkpoints stop waiting for it.
    pub stall_after: Duration,
    /// Rows waiting for this store beyond which the runner stops reading the log until the
    /// store has taken them (memory bound; about 300 bytes a row).
    pub max_pending_rows: u64,
}

impl Default for WriterSettings {
    fn default() -> Self {
        Self {
            min_interval: Duration::ZERO,
            retry_initial: Duration::from_millis(250),
            retry_max: Duration::from_secs(5),
            stall_after: DEFAULT_STALL_AFTER,
            max_pending_rows: 2_000_000,
        }
    }
}

/// Changes waiting in the hand-over slot or in the writer's hands.
#[derive(Debug)]
enum Queued {
    /// One publish, shared by every writer: written as it is when the writer keeps up.
    Fresh(Arc<LedgerChanges>),
    /// Several publishes merged by key.
    Merged(Box<PendingChanges>),
}

impl Queued {
    fn rows(&self) -> u64 {
        match self {
            Queued::Fresh(changes) => change_rows(changes),
            Queued::Merged(pending) => pending.rows() as u64,
        }
    }

    /// `self` with `newer` merged over it.
    fn absorb(self, newer: &Queued) -> Queued {
        let mut pending = match self {
            Queued::Fresh(changes) => Box::new(PendingChanges::from(&*changes)),
            Queued::Merged(pending) => pending,
        };
        match newer {
            Queued::Fresh(changes) => pending.merge(changes),
            Queued::Merged(newer) => pending.merge(&newer.to_changes()),
        }
        Queued::Merged(pending)
    }
}

/// Changes with the positions (and the runner's sequence number) of the newest among them.
#[derive(Debug)]
struct Work {
    changes: Queued,
    positions: Arc<Positions>,
    sequence: u64,
}

impl Work {
    fn absorb(self, newer: Work) -> Work {
        Work {
            changes: self.changes.absorb(&newer.changes),
            positions: newer.positions,
            sequence: newer.sequence,
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// Handed over, not yet taken by the writer.
    queued: Option<Work>,
    /// Rows of `queued`.
    queued_rows: u64,
    /// The newest sequence number written.
    written: u64,
    /// No more work will come: write what is there, then stop.
    closing: bool,
    /// Try the next write now, whatever the pace or the pause.
    hurry: bool,
    /// Stop after the attempt under way, written or not.
    abandon: bool,
}

#[derive(Debug, Default)]
struct Shared {
    slot: Mutex<Slot>,
    /// The writer waits on it for work.
    work: Condvar,
    /// The runner waits on it for writes.
    written: Condvar,
    /// Rows in the writer's hands (being written, or waiting for a retry).
    held_rows: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The runner's side of a store's writer thread.
#[derive(Debug)]
pub(crate) struct StoreWriter {
    name: &'static str,
    settings: WriterSettings,
    shared: Arc<Shared>,
    health: Arc<StoreHealth>,
    /// The newest sequence number handed over.
    handed: u64,
    /// How long the next checkpoint waits beyond one write interval.
    patience: Duration,
    /// What was written when a checkpoint last waited in vain.
    written_at_last_miss: Option<u64>,
    thread: Option<JoinHandle<()>>,
}

impl StoreWriter {
    pub(crate) fn spawn(
        sink: Box<dyn LedgerSink + Send>,
        settings: WriterSettings,
        partitions: u32,
    ) -> std::io::Result<Self> {
        let name = sink.name();
        let health = Arc::new(StoreHealth::new(name, settings.stall_after));
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name(format!("projector-sink-{name}"))
            .spawn({
                let shared = Arc::clone(&shared);
                let health = Arc::clone(&health);
                let settings = settings.clone();
                move || write_loop(sink, &shared, &health, &settings, partitions)
            })?;
        Ok(Self {
            name,
            settings,
            shared,
            health,
            handed: 0,
            patience: CHECKPOINT_PATIENCE,
            written_at_last_miss: None,
            thread: Some(thread),
        })
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn health(&self) -> &Arc<StoreHealth> {
        &self.health
    }

    /// Rows handed over and not yet written.
    pub(crate) fn pending_rows(&self) -> u64 {
        self.health.pending_rows.load(Ordering::Relaxed)
    }

    /// Whether the rows waiting for this store exceed its bound.
    pub(crate) fn is_full(&self) -> bool {
        self.pending_rows() > self.settings.max_pending_rows
    }

    /// Hands changes over without waiting: merged into what is still queued, if anything.
    pub(crate) fn hand(
        &mut self,
        changes: &Arc<LedgerChanges>,
        positions: &Arc<Positions>,
        sequence: u64,
    ) {
        let newer = Work {
            changes: Queued::Fresh(Arc::clone(changes)),
            positions: Arc::clone(positions),
            sequence,
        };
        let mut slot = self.shared.lock();
        let work = match slot.queued.take() {
            Some(older) => older.absorb(newer),
            None => newer,
        };
        slot.queued_rows = work.changes.rows();
        slot.queued = Some(work);
        self.health.pending_rows.store(
            slot.queued_rows + self.shared.held_rows.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        drop(slot);
        self.handed = sequence;
        self.shared.work.notify_all();
    }

    /// Waits until everything handed over is written, for a checkpoint. False, at once,
    /// when the store is down or has written nothing since the last time it made a
    /// checkpoint wait in vain; otherwise after one write interval plus the patience, which
    /// starts at [`CHECKPOINT_PATIENCE`] and doubles (up to the stall limit) each time a store
    /// that does make progress was not done in time. So a store that hangs holds the fold
    /// back once, for a few seconds, and a slow one still lets checkpoints through.
    pub(crate) fn wait_written(&mut self) -> bool {
        let written = self.shared.lock().written;
        if written >= self.handed {
            self.patience = CHECKPOINT_PATIENCE;
            self.written_at_last_miss = None;
            return true;
        }
        if self.written_at_last_miss == Some(written) {
            return false;
        }
        let limit = self.settings.min_interval + self.patience;
        if self.wait(limit, true) {
            self.patience = CHECKPOINT_PATIENCE;
            self.written_at_last_miss = None;
            return true;
        }
        let progressed = self
            .written_at_last_miss
            .is_some_and(|before| self.shared.lock().written > before);
        if progressed {
            self.patience = (self.patience * 2).min(self.settings.stall_after);
        }
        self.written_at_last_miss = Some(self.shared.lock().written);
        false
    }

    fn wait(&self, limit: Duration, give_up_when_down: bool) -> bool {
        let deadline = Instant::now() + limit;
        let mut slot = self.shared.lock();
        loop {
            if slot.written >= self.handed {
                return true;
            }
            if give_up_when_down && !self.health.is_up() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // Woken by every attempt; the timeout notices a write that hangs.
            let pause = (deadline - now).min(Duration::from_millis(100));
            slot = self
                .shared
                .written
                .wait_timeout(slot, pause)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Ends the writer: writes what it holds, retrying for up to `grace` while the store
    /// fails. True when everything handed over was written; otherwise the writer is left to
    /// stop after the attempt under way, and the rows it held are written after a restart.
    pub(crate) fn finish(&mut self, grace: Duration) -> bool {
        {
            let mut slot = self.shared.lock();
            slot.closing = true;
            slot.hurry = true;
        }
        self.shared.work.notify_all();
        let written = self.wait(grace, false);
        self.stop(written);
        written
    }

    /// Stops the thread: joined when it has nothing left to do, otherwise left to end after
    /// its attempt under way (which may hang on a store that does not answer).
    fn stop(&mut self, idle: bool) {
        {
            let mut slot = self.shared.lock();
            slot.closing = true;
            slot.abandon = true;
        }
        self.shared.work.notify_all();
        if let Some(thread) = self.thread.take()
            && idle
        {
            let _ = thread.join();
        }
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let idle = self.shared.lock().written >= self.handed;
            self.stop(idle);
        }
    }
}

/// The pause before the next attempt after failures: doubling up to a cap, with jitter.
#[derive(Debug)]
struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    fn pause(&mut self) -> Duration {
        let base = self.next.min(self.max);
        self.next = (base * 2).min(self.max);
        base.mul_f64(0.5 + fastrand::f64() * 0.5)
    }

    fn reset(&mut self) {
        self.next = self.initial;
    }
}

fn write_loop(
    mut sink: Box<dyn LedgerSink + Send>,
    shared: &Shared,
    health: &StoreHealth,
    settings: &WriterSettings,
    partitions: u32,
) {
    let store = health.store();
    let mut held: Option<Work> = None;
    let mut backoff = Backoff::new(settings.retry_initial, settings.retry_max);
    let mut not_before = Instant::now();
    let mut failures: u64 = 0;
    loop {
        let work = {
            let mut slot = shared.lock();
            loop {
                if slot.abandon {
                    return;
                }
                if slot.queued.is_none() && held.is_none() {
                    if slot.closing {
                        return;
                    }
                    slot = shared
                        .work
                        .wait(slot)
                        .unwrap_or_else(PoisonError::into_inner);
                    continue;
                }
                let now = Instant::now();
                if slot.hurry || now >= not_before {
                    slot.hurry = false;
                    break;
                }
                slot = shared
                    .work
                    .wait_timeout(slot, not_before - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            let queued = slot.queued.take();
            slot.queued_rows = 0;
            match (held.take(), queued) {
                (Some(older), Some(newer)) => older.absorb(newer),
                (Some(work), None) | (None, Some(work)) => work,
                (None, None) => continue,
            }
        };
        let rows = work.changes.rows();
        shared.held_rows.store(rows, Ordering::Relaxed);
        health
            .pending_rows
            .store(rows + shared.lock().queued_rows, Ordering::Relaxed);
        if failures > 0 {
            health.retries.fetch_add(1, Ordering::Relaxed);
        }
        let started = Instant::now();
        health.write_started();
        let merged;
        let changes = match &work.changes {
            Queued::Fresh(changes) => &**changes,
            Queued::Merged(pending) => {
                merged = pending.to_changes();
                &merged
            }
        };
        let result = sink.publish(changes, &RowVersions::new(&work.positions, partitions));
        match result {
            Ok(written) => {
                health.write_succeeded(written.rows);
                health
                    .rows_dead_lettered
                    .fetch_add(written.dead_lettered, Ordering::Relaxed);
                if failures > 0 {
                    info!(
                        store,
                        failed_attempts = failures,
                        rows,
                        "ledger store takes writes again"
                    );
                }
                failures = 0;
                backoff.reset();
                not_before = started + settings.min_interval;
                shared.held_rows.store(0, Ordering::Relaxed);
                let mut slot = shared.lock();
                slot.written = work.sequence;
                health
                    .pending_rows
                    .store(slot.queued_rows, Ordering::Relaxed);
                drop(slot);
                tracing::debug!(
                    store,
                    rows,
                    micros = started.elapsed().as_micros() as u64,
                    "changes published"
                );
            }
            Err(error) => {
                let transient = error.is_transient();
                let pause = backoff.pause();
                failures += 1;
                let text = error.chain();
                // Every failure while few, then one in ten: the store's state is in the
                // metrics and readiness meanwhile.
                if failures <= 3 || failures.is_multiple_of(10) {
                    warn!(
                        store,
                        error = %text,
                        transient,
                        attempt = failures,
                        rows,
                        retry_in_ms = pause.as_millis() as u64,
                        "ledger store write failed; the rows wait and are retried"
                    );
                }
                health.write_failed(text, transient);
                not_before = Instant::now() + pause;
                held = Some(work);
            }
        }
        shared.written.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{SinkError, Written};

    /// A store that fails while `down` says so and records what it was given.
    struct Flaky {
        down: Arc<std::sync::atomic::AtomicBool>,
        writes: Arc<Mutex<Vec<(usize, u64)>>>,
    }

    impl LedgerSink for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }

        fn publish(
            &mut self,
            changes: &LedgerChanges,
            versions: &RowVersions<'_>,
        ) -> Result<Written, SinkError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(SinkError::Unavailable("connection refused".into()));
            }
            self.writes
                .lock()
                .expect("lock")
                .push((changes.teams.len(), versions.reference() as u64));
            Ok(Written {
                rows: change_rows(changes),
                dead_lettered: 0,
            })
        }
    }

    fn team(id: &str) -> crate::ledger::TeamRow {
        crate::ledger::TeamRow {
            team_id: id.into(),
            effective_from: None,
            team_name: id.into(),
            branch_id: "B".into(),
            branch_name: None,
            region_id: "R".into(),
            region_name: None,
            supervisor_id: None,
        }
    }

    fn changes(teams: &[&str]) -> Arc<LedgerChanges> {
        Arc::new(LedgerChanges {
            teams: teams.iter().map(|t| team(t)).collect(),
            ..LedgerChanges::default()
        })
    }

    fn positions(reference: u64) -> Arc<Positions> {
        Arc::new(
            [(
                aqs_eventlog::PartitionId {
                    stream: aqs_eventlog::Stream::Reference,
                    partition: 0,
                },
                reference,
            )]
            .into_iter()
            .collect(),
        )
    }

    #[test]
    fn changes_handed_while_the_store_is_down_are_merged_and_written_once_it_is_back() {
        let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let writes = Arc::new(Mutex::new(Vec::new()));
        let settings = WriterSettings {
            retry_initial: Duration::from_millis(5),
            retry_max: Duration::from_millis(20),
            ..WriterSettings::default()
        };
        let mut writer = StoreWriter::spawn(
            Box::new(Flaky {
                down: Arc::clone(&down),
                writes: Arc::clone(&writes),
            }),
            settings,
            1,
        )
        .expect("spawn");
        writer.hand(&changes(&["T1", "T2"]), &positions(2), 1);
        assert!(!writer.wait_written(), "the store is down");
        assert!(!writer.health().is_up());
        writer.hand(&changes(&["T2", "T3"]), &positions(4), 2);
        writer.hand(&changes(&["T1"]), &positions(5), 3);
        // The next retry takes what was handed meanwhile and merges it by key.
        let deadline = Instant::now() + Duration::from_secs(10);
        while writer.pending_rows() != 3 {
            assert!(
                Instant::now() < deadline,
                "one row per team, merged by key: {}",
                writer.pending_rows()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(writes.lock().expect("lock").is_empty());

        down.store(false, Ordering::SeqCst);
        assert!(writer.finish(Duration::from_secs(10)), "written once back");
        assert_eq!(
            *writes.lock().expect("lock"),
            vec![(3, 5)],
            "one write of the three teams at the newest positions"
        );
        assert!(writer.health().is_up());
        assert_eq!(writer.pending_rows(), 0);
        assert!(writer.health().retries.load(Ordering::Relaxed) >= 1);
    }

    #[test]
    fn a_store_with_a_least_interval_gets_one_write_for_several_hand_overs() {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let mut writer = StoreWriter::spawn(
            Box::new(Flaky {
                down: Arc::default(),
                writes: Arc::clone(&writes),
            }),
            WriterSettings {
                min_interval: Duration::from_secs(3600),
                ..WriterSettings::default()
            },
            1,
        )
        .expect("spawn");
        writer.hand(&changes(&["T1"]), &positions(1), 1);
        assert!(writer.wait_written(), "the first write is not held back");
        for n in 2..=20 {
            writer.hand(&changes(&["T1", "T2"]), &positions(n), n);
        }
        // Within the interval nothing more is written; closing writes the rest at once.
        assert_eq!(writes.lock().expect("lock").len(), 1);
        assert!(writer.finish(Duration::from_secs(10)));
        assert_eq!(*writes.lock().expect("lock"), vec![(1, 1), (2, 20)]);
    }

    #[test]
    fn the_pause_doubles_up_to_the_cap_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let pauses: Vec<Duration> = (0..5).map(|_| backoff.pause()).collect();
        let bases = [100, 200, 400, 400, 400];
        for (pause, base) in pauses.iter().zip(bases) {
            let base = Duration::from_millis(base);
            assert!(*pause >= base / 2 && *pause <= base, "{pauses:?}");
        }
        backoff.reset();
        assert!(backoff.pause() <= Duration::from_millis(100));
    }
}
