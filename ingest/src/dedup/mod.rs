//! Exactly-once appends to Kafka under retries: each batch is a Kafka transaction, tied to an
//! embedded index of the events already appended, by identity (`source`, `event_id`).
//!
//! [`DedupLog`] answers an event whose identity is in the index as a duplicate (same
//! canonical bytes) or a conflict (different bytes) without appending it. It appends the
//! others in one transaction of the log ([`TransactionalLog`]): the records are written,
//! then the transaction is recorded in the index as *pending* (its writer, one record as a
//! probe, the events) and synced to disk, then committed, then marked committed. Concurrent
//! batches holding the same new event are serialised by claiming identities, so two
//! requests racing with one event cannot both append it.
//!
//! What each failure leaves:
//! - before the pending record (the write failed or timed out, the process died): the
//!   transaction is aborted (by the writer, by the coordinator when the writer's name starts
//!   again, or by its timeout) and never visible; the index does not know the events, so a
//!   retry appends them anew;
//! - after it (a commit of unknown outcome, a crash before the mark): the events are
//!   *pending*. Their fate is read back from the log once the writer has been restarted
//!   ([`TransactionalLog::fate`]): committed, they are duplicates; aborted, they are
//!   forgotten and a retry appends them. Until it is known, a batch holding one of them is
//!   answered "unavailable, retry" ([`LogError::Unavailable`]).
//!
//! So a retry never appends an event a second time, as long as the index still holds the
//! first append: entries older than the retention are pruned ([`DedupLog::prune`]), and a
//! resend after that is appended again (the projector still counts it once). Each instance
//! has its own index: a resend to another instance is appended again too.
//!
//! Entries recorded when the id alone was the identity carry no source (`''`). Such an entry
//! still answers a resend with the same bytes as a duplicate; an event with that id and
//! other bytes may come from another source, so it is appended and the projector, which
//! sees the sources in the log, tells a conflict from another source's event.

mod claims;
mod config;
mod index;
mod metrics;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use aqs_eventlog::{
    AppendOutcome, CommitError, DeadLetter, EventLog, Fate, LogError, Probe, RecordPosition,
    TransactionalLog,
};
use aqs_schemas::Event;
use tracing::{debug, error, info, warn};

pub use config::{DEFAULT_DEDUP_PRUNE_INTERVAL_SECS, DEFAULT_DEDUP_RETENTION_SECS, DedupConfig};
pub use index::{
    DedupIndex, Identity, PendingTransaction, Recorded, TransactionId, UNKNOWN_SOURCE,
};
pub use metrics::DedupMetrics;

use crate::auth::{Digest, digest};
use crate::metrics::MetricsSource;
use claims::Claims;

/// Entries removed by one statement while pruning.
const PRUNE_CHUNK: usize = 10_000;
/// How often the upkeep looks at pending transactions and idle writers.
const RESOLVE_INTERVAL: Duration = Duration::from_secs(5);
/// Sleep of the upkeep thread between two looks at its schedule.
const UPKEEP_TICK: Duration = Duration::from_millis(250);

fn identity(event: &Event) -> Identity<'_> {
    (&event.source, &event.event_id)
}

/// A log with exactly-once appends under retries: see the module documentation.
#[derive(Debug)]
pub struct DedupLog<L> {
    inner: L,
    index: DedupIndex,
    claims: Claims,
    timeout: Duration,
    retention: Duration,
    metrics: DedupMetrics,
    /// Pending transactions whose append is still running: not the upkeep's to settle.
    in_flight: Mutex<HashSet<TransactionId>>,
}

impl<L> DedupLog<L> {
    /// `timeout` bounds the wait for another request appending the same ids, for a free
    /// writer, and for reading the fate of earlier appends of the batch's events. The
    /// retention is the default one ([`DedupLog::with_retention`]).
    pub fn new(inner: L, index: DedupIndex, timeout: Duration) -> Self {
        Self {
            inner,
            index,
            claims: Claims::default(),
            timeout,
            retention: Duration::from_secs(DEFAULT_DEDUP_RETENTION_SECS),
            metrics: DedupMetrics::default(),
            in_flight: Mutex::new(HashSet::new()),
        }
    }

    /// How long appended events are remembered.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    pub fn inner(&self) -> &L {
        &self.inner
    }

    pub fn index(&self) -> &DedupIndex {
        &self.index
    }

    pub fn metrics(&self) -> &DedupMetrics {
        &self.metrics
    }

    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Removes the entries older than the retention (never those of pending transactions);
    /// how many.
    pub fn prune(&self) -> Result<u64, LogError> {
        let cutoff = SystemTime::now()
            .checked_sub(self.retention)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let started = Instant::now();
        let pruned = self.index.prune(cutoff, PRUNE_CHUNK)?;
        self.metrics.pruned.fetch_add(pruned, Ordering::Relaxed);
        if pruned > 0 {
            info!(
                pruned,
                entries = self.index.len(),
                retention_secs = self.retention.as_secs(),
                millis = started.elapsed().as_millis() as u64,
                "dedup index pruned"
            );
        }
        Ok(pruned)
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<TransactionId>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<L: TransactionalLog> DedupLog<L> {
    /// Reads from the log the fate of pending transactions (those in `only`, or all but the
    /// ones being appended right now) and settles the decided ones in the index. How many
    /// stay undecided.
    pub fn resolve_pending(
        &self,
        only: Option<&HashSet<TransactionId>>,
        deadline: Instant,
    ) -> Result<u64, LogError> {
        let mut undecided = 0;
        for pending in self.index.pending()? {
            let wanted = match only {
                Some(ids) => ids.contains(&pending.id),
                None => !self.in_flight().contains(&pending.id),
            };
            if !wanted {
                continue;
            }
            let fate = self.inner.fate(&pending.writer, &pending.probe, deadline)?;
            let counter = match fate {
                Fate::Undecided => {
                    undecided += 1;
                    continue;
                }
                Fate::Committed => &self.metrics.resolved_committed,
                Fate::Aborted => &self.metrics.resolved_aborted,
            };
            let forgotten = self.index.settle(pending.id, fate)?;
            counter.fetch_add(1, Ordering::Relaxed);
            info!(
                writer = pending.writer.name,
                incarnation = pending.writer.incarnation,
                transaction = ?pending.id,
                ?fate,
                forgotten,
                "transaction of unknown outcome settled from the log"
            );
        }
        Ok(undecided)
    }

    /// Starts the log's idle writers (fencing what earlier ones left open) and settles the
    /// pending transactions it can.
    fn upkeep(&self) {
        let deadline = Instant::now() + self.timeout;
        if let Err(error) = self.inner.prepare(deadline) {
            debug!(%error, "dedup upkeep: writers not started");
        }
        match self.resolve_pending(None, deadline) {
            Ok(0) => {}
            Ok(undecided) => debug!(undecided, "dedup upkeep: transactions still undecided"),
            Err(error) => {
                warn!(%error, "dedup upkeep: reading the fate of pending transactions failed")
            }
        }
    }

    /// Runs the upkeep in a thread of its own: pending transactions and idle writers every
    /// few seconds, pruning every `prune_interval`; and in a second thread, the log's
    /// releases ([`TransactionalLog::release_held`]) every fraction of a second. The threads
    /// end soon after the last reference to the log is dropped.
    pub fn spawn_upkeep(log: &Arc<Self>, prune_interval: Duration) -> std::io::Result<()>
    where
        L: 'static,
    {
        let weak = Arc::downgrade(log);
        std::thread::Builder::new()
            .name("aqs-dedup-upkeep".into())
            .spawn(move || {
                let mut next_resolve = Instant::now();
                let mut next_prune = Instant::now();
                loop {
                    let Some(log) = weak.upgrade() else {
                        return;
                    };
                    if Instant::now() >= next_resolve {
                        log.upkeep();
                        next_resolve = Instant::now() + RESOLVE_INTERVAL;
                    }
                    if Instant::now() >= next_prune {
                        if let Err(error) = log.prune() {
                            warn!(%error, "dedup index: pruning failed");
                        }
                        next_prune = Instant::now() + prune_interval;
                    }
                    drop(log);
                    std::thread::sleep(UPKEEP_TICK);
                }
            })?;
        // Apart from the upkeep: reading the fate of a transaction may wait for as long as
        // the records the releases are there to free stay held.
        let weak = Arc::downgrade(log);
        std::thread::Builder::new()
            .name("aqs-log-release".into())
            .spawn(move || {
                loop {
                    let Some(log) = weak.upgrade() else {
                        return;
                    };
                    let deadline = Instant::now() + log.timeout;
                    if let Err(error) = log.inner.release_held(deadline) {
                        debug!(%error, "log release: not done yet");
                    }
                    drop(log);
                    std::thread::sleep(UPKEEP_TICK);
                }
            })?;
        Ok(())
    }

    /// Appends fresh events in one transaction, recorded pending before its commit.
    fn append_fresh(
        &self,
        batch: &[Event],
        digests: &[&Digest],
        deadline: Instant,
    ) -> Result<Vec<RecordPosition>, LogError> {
        let mut transaction = self.inner.begin(deadline)?;
        let positions = match transaction.append(batch) {
            Ok(positions) if positions.len() == batch.len() => positions,
            Ok(positions) => {
                transaction.abort();
                self.metrics.aborted.fetch_add(1, Ordering::Relaxed);
                return Err(LogError::Unavailable(format!(
                    "the log answered {} positions for {} events",
                    positions.len(),
                    batch.len()
                )));
            }
            Err(error) => {
                transaction.abort();
                self.metrics.aborted.fetch_add(1, Ordering::Relaxed);
                return Err(error);
            }
        };
        let probe = Probe {
            position: positions[0],
            source: batch[0].source.clone(),
            event_id: batch[0].event_id.clone(),
        };
        let entries = batch
            .iter()
            .zip(digests)
            .map(|(event, digest)| (identity(event), *digest));
        let txn = match self
            .index
            .record_pending(transaction.writer(), &probe, entries)
        {
            Ok(txn) => txn,
            Err(error) => {
                transaction.abort();
                self.metrics.aborted.fetch_add(1, Ordering::Relaxed);
                return Err(error);
            }
        };
        self.in_flight().insert(txn);
        let writer = transaction.writer().clone();
        let committed = transaction.commit();
        let result = match committed {
            Ok(()) => {
                self.metrics.committed.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = self.index.settle(txn, Fate::Committed) {
                    // The events are in the log: they stay accepted. The transaction stays
                    // pending and is settled by reading it back.
                    error!(%error, transaction = ?txn, "a committed transaction could not be marked in the dedup index");
                }
                Ok(positions)
            }
            Err(CommitError::Aborted(why)) => {
                self.metrics.aborted.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = self.index.settle(txn, Fate::Aborted) {
                    error!(%error, transaction = ?txn, "an aborted transaction could not be removed from the dedup index");
                }
                Err(LogError::Unavailable(format!(
                    "the batch was not appended: {why}"
                )))
            }
            Err(CommitError::InDoubt(why)) => {
                self.metrics.in_doubt.fetch_add(1, Ordering::Relaxed);
                warn!(
                    writer = writer.name,
                    transaction = ?txn,
                    events = batch.len(),
                    %why,
                    "commit of unknown outcome; the events are pending until read back"
                );
                Err(LogError::Unavailable(format!(
                    "the batch may or may not have been appended ({why}); its outcome is read \
                     back from the log before its events are taken again: retry later"
                )))
            }
        };
        self.in_flight().remove(&txn);
        result
    }
}

impl<L: TransactionalLog> EventLog for DedupLog<L> {
    fn append(&self, events: &[Event]) -> Result<Vec<AppendOutcome>, LogError> {
        let deadline = Instant::now() + self.timeout;
        let digests: Vec<Digest> = events
            .iter()
            .map(|event| serde_json::to_vec(event).map(|bytes| digest(&bytes)))
            .collect::<Result<_, _>>()?;
        let mut outcomes: Vec<Option<AppendOutcome>> = vec![None; events.len()];

        // Repeats inside the batch compare with their first occurrence.
        let mut first: HashMap<Identity<'_>, usize> = HashMap::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            match first.get(&identity(event)) {
                Some(&j) => outcomes[i] = Some(repeat(&digests[i], &digests[j])),
                None => {
                    first.insert(identity(event), i);
                }
            }
        }
        let ids: Vec<Identity<'_>> = first.keys().copied().collect();
        let _claim = self.claims.claim(&ids, deadline)?;
        let mut known = self.index.lookup(ids.iter().copied())?;

        // Events of an earlier append of unknown outcome: learn it first.
        let pending: HashSet<TransactionId> = known
            .values()
            .filter_map(|recorded| match recorded {
                Recorded::Pending(txn) => Some(*txn),
                _ => None,
            })
            .collect();
        if !pending.is_empty() {
            let undecided = self.resolve_pending(Some(&pending), deadline)?;
            if undecided > 0 {
                let (source, id) = known
                    .iter()
                    .find(|(_, recorded)| matches!(recorded, Recorded::Pending(_)))
                    .map(|(identity, _)| *identity)
                    .unwrap_or_default();
                return Err(LogError::Unavailable(format!(
                    "event {id:?} of source {source:?} is in an earlier append whose outcome the \
                     log has not decided yet; retry later"
                )));
            }
            known = self.index.lookup(ids.iter().copied())?;
        }

        let mut fresh: Vec<usize> = Vec::new();
        for (i, event) in events.iter().enumerate() {
            if outcomes[i].is_some() {
                continue;
            }
            match known.get(&identity(event)) {
                Some(Recorded::Exact(stored)) => outcomes[i] = Some(repeat(&digests[i], stored)),
                Some(Recorded::IdOnly(stored)) if stored == &digests[i] => {
                    outcomes[i] = Some(AppendOutcome::Duplicate);
                }
                Some(Recorded::Pending(_)) => {
                    return Err(LogError::Unavailable(format!(
                        "event {:?} is in an earlier append whose outcome is not known yet; retry",
                        event.event_id
                    )));
                }
                // Unknown, or known by id only with other bytes: possibly another source's.
                Some(Recorded::IdOnly(_)) | None => fresh.push(i),
            }
        }
        if !fresh.is_empty() {
            let batch: Vec<Event> = fresh.iter().map(|&i| events[i].clone()).collect();
            let batch_digests: Vec<&Digest> = fresh.iter().map(|&i| &digests[i]).collect();
            let positions = self.append_fresh(&batch, &batch_digests, deadline)?;
            for (&i, position) in fresh.iter().zip(positions) {
                outcomes[i] = Some(AppendOutcome::Appended {
                    partition: position.partition,
                    offset: position.offset,
                });
            }
        }
        debug!(
            events = events.len(),
            appended = fresh.len(),
            "dedup append"
        );
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(AppendOutcome::Duplicate))
            .collect())
    }

    fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), LogError> {
        self.inner.dead_letter(letters)
    }

    fn partitions(&self) -> u32 {
        self.inner.partitions()
    }
}

impl<L: TransactionalLog> MetricsSource for DedupLog<L> {
    fn render(&self, metrics: &mut aqs_http::Exposition) {
        let now = SystemTime::now();
        let gauges = metrics::IndexGauges {
            entries: self.index.len(),
            bytes: self.index.file_bytes().ok(),
            oldest_age_seconds: self.index.oldest().ok().map(|oldest| {
                oldest
                    .and_then(|at| now.duration_since(at).ok())
                    .map_or(0.0, |age| age.as_secs_f64())
            }),
            pending: self.index.pending_count().ok(),
        };
        self.metrics.render(gauges, metrics);
        let releases = self.inner.releases();
        let mut family = metrics.counter(
            "aqs_ingest_kafka_release_transactions_total",
            "Release transactions of the Kafka writers after the log was disturbed, by outcome.",
        );
        for (outcome, count) in [
            ("committed", releases.committed),
            ("failed", releases.failed),
        ] {
            family.sample(&[("outcome", outcome)], count);
        }
    }
}

fn repeat(digest: &Digest, first: &Digest) -> AppendOutcome {
    if digest == first {
        AppendOutcome::Duplicate
    } else {
        AppendOutcome::Conflict
    }
}

#[cfg(test)]
mod tests;
