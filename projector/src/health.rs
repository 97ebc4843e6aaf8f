//! Whether the projector and its ledger stores work: what `/readyz` answers, what the
//! metrics and the dashboard's freshness line show.
//!
//! Each store's writer reports every attempt here; the runner reports when it stops or holds
//! back reading. Nothing here decides anything: it only keeps the latest facts and words them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use aqs_eventlog::{ReadWatch, UnstableTail};
use chrono::{DateTime, SecondsFormat, Utc};

/// A store is reported down when one write has been running this long.
pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(10);

/// The health of one ledger store, as its writer sees it.
#[derive(Debug)]
pub struct StoreHealth {
    store: &'static str,
    stall_after: Duration,
    state: Mutex<StoreState>,
    /// Write attempts that failed with an error that may pass (network, timeout, overload).
    pub errors_transient: AtomicU64,
    /// Write attempts that failed with an error that will not pass by itself (a missing
    /// table, refused credentials); retried all the same, for an operator to fix.
    pub errors_permanent: AtomicU64,
    /// Attempts that repeated a failed write.
    pub retries: AtomicU64,
    pub writes: AtomicU64,
    pub rows_written: AtomicU64,
    /// Rows the store refused for their content, set aside in its dead-letter table.
    pub rows_dead_lettered: AtomicU64,
    /// Rows handed to the writer and not yet written (coalesced by key).
    pub pending_rows: AtomicU64,
}

#[derive(Debug, Clone, Default)]
struct StoreState {
    /// The last attempt failed; since when the store is failing, and why.
    failing_since: Option<SystemTime>,
    last_error: Option<String>,
    last_success: Option<(Instant, SystemTime)>,
    /// A write under way, since when.
    writing_since: Option<(Instant, SystemTime)>,
}

/// A snapshot of a store's health.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreStatus {
    pub store: &'static str,
    pub up: bool,
    /// When the store stopped taking writes (the first failed attempt, or the start of a
    /// write that has not finished in time).
    pub down_since: Option<SystemTime>,
    /// The last error, or that a write is hanging.
    pub last_error: Option<String>,
    pub last_success: Option<SystemTime>,
    pub seconds_since_last_write: Option<f64>,
    pub pending_rows: u64,
}

impl StoreHealth {
    pub fn new(store: &'static str, stall_after: Duration) -> Self {
        Self {
            store,
            stall_after,
            state: Mutex::default(),
            errors_transient: AtomicU64::new(0),
            errors_permanent: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            rows_written: AtomicU64::new(0),
            rows_dead_lettered: AtomicU64::new(0),
            pending_rows: AtomicU64::new(0),
        }
    }

    pub fn store(&self) -> &'static str {
        self.store
    }

    fn state(&self) -> std::sync::MutexGuard<'_, StoreState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write_started(&self) {
        self.state().writing_since = Some((Instant::now(), SystemTime::now()));
    }

    pub(crate) fn write_succeeded(&self, rows: u64) {
        let mut state = self.state();
        state.writing_since = None;
        state.failing_since = None;
        state.last_error = None;
        state.last_success = Some((Instant::now(), SystemTime::now()));
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.rows_written.fetch_add(rows, Ordering::Relaxed);
    }

    pub(crate) fn write_failed(&self, error: String, transient: bool) {
        let mut state = self.state();
        let started = state.writing_since.take().map(|(_, at)| at);
        if state.failing_since.is_none() {
            state.failing_since = Some(started.unwrap_or_else(SystemTime::now));
        }
        state.last_error = Some(error);
        let counter = if transient {
            &self.errors_transient
        } else {
            &self.errors_permanent
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// How long the write under way has been running, if one is.
    pub fn writing_for(&self) -> Option<Duration> {
        self.state()
            .writing_since
            .map(|(started, _)| started.elapsed())
    }

    /// Whether writes go through: the last attempt succeeded (or none was made yet) and no
    /// write has been hanging for longer than the stall limit.
    pub fn is_up(&self) -> bool {
        self.status().up
    }

    pub fn status(&self) -> StoreStatus {
        let state = self.state().clone();
        let stalled = state
            .writing_since
            .filter(|(started, _)| started.elapsed() >= self.stall_after);
        let (up, down_since, last_error) = match (state.failing_since, stalled) {
            (Some(since), _) => (false, Some(since), state.last_error),
            (None, Some((started, at))) => (
                false,
                Some(at),
                Some(format!(
                    "a write has been running for {} s without an answer",
                    started.elapsed().as_secs()
                )),
            ),
            (None, None) => (true, None, None),
        };
        StoreStatus {
            store: self.store,
            up,
            down_since,
            last_error,
            last_success: state.last_success.map(|(_, at)| at),
            seconds_since_last_write: state
                .last_success
                .map(|(instant, _)| instant.elapsed().as_secs_f64()),
            pending_rows: self.pending_rows.load(Ordering::Relaxed),
        }
    }
}

impl StoreStatus {
    /// One line for an operator: which store, since when, the last error.
    pub fn describe(&self) -> String {
        let since = self.down_since.map_or_else(String::new, |at| {
            let seconds = SystemTime::now()
                .duration_since(at)
                .unwrap_or_default()
                .as_secs();
            format!(" since {} ({seconds} s)", rfc3339(at))
        });
        format!(
            "ledger store {} is not taking writes{since}: {}; {} rows wait for it",
            self.store,
            self.last_error.as_deref().unwrap_or("no answer"),
            self.pending_rows
        )
    }
}

/// A time as `2026-11-20T08:15:00Z`.
pub fn rfc3339(at: SystemTime) -> String {
    DateTime::<Utc>::from(at).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The health of the whole projector: its stores, and whether the runner still reads.
#[derive(Debug, Default)]
pub struct ProjectorHealth {
    stores: Mutex<Vec<Arc<StoreHealth>>>,
    /// Why the runner holds back reading, while it does.
    held_back: Mutex<Option<String>>,
    /// Why the runner stopped, once it has.
    stopped: Mutex<Option<String>>,
    /// Whether the runner has started reading (its state restored, its stores open):
    /// before that the projector is not ready, though no store has failed yet.
    running: AtomicBool,
    /// The partitions read whose ends readers may not see yet, as last measured, and how
    /// long one may stay so before it counts as stuck.
    unstable_tails: Mutex<(Vec<UnstableTail>, Duration)>,
    /// What the log consumer's watchdog last reported: reading that stopped although the
    /// log goes on.
    read_watch: Mutex<ReadWatch>,
}

impl ProjectorHealth {
    pub(crate) fn register(&self, store: Arc<StoreHealth>) {
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        stores.retain(|s| s.store() != store.store());
        stores.push(store);
    }

    pub fn stores(&self) -> Vec<Arc<StoreHealth>> {
        self.stores
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_held_back(&self, reason: Option<String>) {
        *self
            .held_back
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = reason;
    }

    /// Records that the runner has restored its state, opened its stores and reads.
    pub(crate) fn set_running(&self) {
        self.running.store(true, Ordering::Release);
    }

    /// Records that the runner stopped, and why (an error, or a clean shutdown).
    pub fn set_stopped(&self, reason: impl Into<String>) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.into());
    }

    pub(crate) fn set_unstable_tails(&self, tails: Vec<UnstableTail>, stuck_after: Duration) {
        *self
            .unstable_tails
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (tails, stuck_after);
    }

    pub(crate) fn set_read_watch(&self, watch: ReadWatch) {
        *self
            .read_watch
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = watch;
    }

    /// What the log consumer's watchdog last reported.
    pub fn read_watch(&self) -> ReadWatch {
        self.read_watch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reading that has stopped although the log goes on: one line each, with since when
    /// and what was done.
    pub fn read_stalls(&self) -> Vec<String> {
        self.read_watch()
            .stalls
            .iter()
            .map(|stall| {
                format!(
                    "reading stuck since {}: {}; its Kafka client made again {} time(s)",
                    rfc3339(stall.since),
                    stall.description,
                    stall.rebuilds
                )
            })
            .collect()
    }

    /// The partitions read whose ends readers may not see yet, as last measured.
    pub fn unstable_tails(&self) -> Vec<UnstableTail> {
        self.unstable_tails
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    /// Partitions whose readers have been held at one offset for longer than allowed, with
    /// records beyond it: one line each, naming the topic, the partition and since when.
    pub fn stuck_transactions(&self) -> Vec<String> {
        let guard = self
            .unstable_tails
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (tails, stuck_after) = &*guard;
        tails
            .iter()
            .filter(|tail| tail.unchanged_for >= *stuck_after)
            .map(|tail| {
                format!(
                    "log {} partition {}: readers held at offset {} since {} ({} s) while the \
                     log goes on to {}: a transaction left open",
                    tail.topic,
                    tail.partition.partition,
                    tail.last_stable,
                    rfc3339(tail.stable_since),
                    tail.unchanged_for.as_secs(),
                    tail.high_watermark
                )
            })
            .collect()
    }

    pub fn held_back(&self) -> Option<String> {
        self.held_back
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn stopped(&self) -> Option<String> {
        self.stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Ready when the runner runs without holding back and every store takes writes;
    /// otherwise every reason, joined.
    pub fn check(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if let Some(reason) = self.stopped() {
            problems.push(format!("projector stopped: {reason}"));
        } else if !self.running.load(Ordering::Acquire) {
            problems.push("projector starting: restoring its state and opening its stores".into());
        }
        if let Some(reason) = self.held_back() {
            problems.push(format!("projector holds back reading: {reason}"));
        }
        problems.extend(self.stuck_transactions());
        problems.extend(self.read_stalls());
        for store in self.stores() {
            let status = store.status();
            if !status.up {
                problems.push(status.describe());
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_makes_the_store_down_until_one_succeeds() {
        let health = ProjectorHealth::default();
        health.set_running();
        let store = Arc::new(StoreHealth::new("clickhouse", DEFAULT_STALL_AFTER));
        health.register(Arc::clone(&store));
        assert_eq!(health.check(), Ok(()));

        store.write_started();
        store.write_failed("connection refused".into(), true);
        store.write_started();
        store.write_failed("connection reset".into(), true);
        let status = store.status();
        assert!(!status.up);
        assert_eq!(status.last_error.as_deref(), Some("connection reset"));
        let reason = health.check().expect_err("down");
        assert!(
            reason.contains("ledger store clickhouse") && reason.contains("connection reset"),
            "{reason}"
        );
        assert_eq!(store.errors_transient.load(Ordering::Relaxed), 2);

        store.write_started();
        store.write_succeeded(12);
        assert_eq!(health.check(), Ok(()));
        assert_eq!(store.rows_written.load(Ordering::Relaxed), 12);
    }

    #[test]
    fn a_write_that_hangs_makes_the_store_down() {
        let store = StoreHealth::new("clickhouse", Duration::ZERO);
        assert!(store.is_up());
        store.write_started();
        let status = store.status();
        assert!(!status.up);
        assert!(
            status
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("without an answer")),
            "{status:?}"
        );
    }

    #[test]
    fn a_log_end_held_back_too_long_makes_the_projector_not_ready() {
        let health = ProjectorHealth::default();
        health.set_running();
        let tail = |unchanged_secs| UnstableTail {
            partition: aqs_eventlog::PartitionId {
                stream: aqs_eventlog::Stream::Events,
                partition: 3,
            },
            topic: "aqs.events".into(),
            last_stable: 1040,
            high_watermark: 3676,
            stable_since: SystemTime::UNIX_EPOCH,
            unchanged_for: Duration::from_secs(unchanged_secs),
        };
        // A transaction under way holds the readers back for a while: that is normal.
        health.set_unstable_tails(vec![tail(59)], Duration::from_secs(60));
        assert_eq!(health.check(), Ok(()));
        health.set_unstable_tails(vec![tail(60)], Duration::from_secs(60));
        let reason = health.check().expect_err("stuck");
        assert!(
            reason.contains("log aqs.events partition 3: readers held at offset 1040 since 1970-01-01T00:00:00Z (60 s)")
                && reason.contains("goes on to 3676"),
            "{reason}"
        );
        health.set_unstable_tails(Vec::new(), Duration::from_secs(60));
        assert_eq!(health.check(), Ok(()));
    }

    #[test]
    fn reading_that_stopped_makes_the_projector_not_ready_until_it_goes_on() {
        let health = ProjectorHealth::default();
        health.set_running();
        let stall = aqs_eventlog::ReadStall {
            partition: Some(aqs_eventlog::PartitionId {
                stream: aqs_eventlog::Stream::Reference,
                partition: 0,
            }),
            description: "log aqs.reference partition 0: nothing read since 31 s at offset 415 \
                          while it is readable up to 465"
                .into(),
            since: SystemTime::UNIX_EPOCH,
            stalled_for: Duration::from_secs(31),
            rebuilds: 1,
        };
        health.set_read_watch(ReadWatch {
            stalls: vec![stall],
            partition_stalls_total: 1,
            client_rebuilds_total: 1,
            ..ReadWatch::default()
        });
        let reason = health.check().expect_err("stuck");
        assert!(
            reason.contains(
                "reading stuck since 1970-01-01T00:00:00Z: log aqs.reference partition 0"
            ) && reason.contains("at offset 415")
                && reason.contains("made again 1 time(s)"),
            "{reason}"
        );
        health.set_read_watch(ReadWatch {
            partition_stalls_total: 1,
            client_rebuilds_total: 1,
            ..ReadWatch::default()
        });
        assert_eq!(health.check(), Ok(()));
    }

    #[test]
    fn a_projector_is_not_ready_before_its_runner_reads() {
        let health = ProjectorHealth::default();
        let error = health.check().expect_err("starting");
        assert!(error.contains("projector starting"), "{error}");
        health.set_running();
        assert_eq!(health.check(), Ok(()));
    }

    #[test]
    fn a_stopped_runner_is_not_ready() {
        let health = ProjectorHealth::default();
        health.set_stopped("event log unavailable");
        assert!(
            health
                .check()
                .expect_err("stopped")
                .contains("event log unavailable")
        );
    }
}
