//! The dedup index's metrics, rendered after the service's (listed in `docs/metrics.md`).

use std::sync::atomic::{AtomicU64, Ordering};

use aqs_http::Exposition;

/// Counters of one dedup log.
#[derive(Debug, Default)]
pub struct DedupMetrics {
    pub(super) committed: AtomicU64,
    pub(super) aborted: AtomicU64,
    pub(super) in_doubt: AtomicU64,
    pub(super) resolved_committed: AtomicU64,
    pub(super) resolved_aborted: AtomicU64,
    pub(super) pruned: AtomicU64,
}

/// The gauges, read from the index when rendering.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct IndexGauges {
    pub entries: u64,
    pub bytes: Option<u64>,
    pub oldest_age_seconds: Option<f64>,
    pub pending: Option<u64>,
}

impl DedupMetrics {
    /// Entries pruned so far.
    pub fn pruned(&self) -> u64 {
        self.pruned.load(Ordering::Relaxed)
    }

    /// Transactions committed, aborted and of unknown outcome at their commit, so far.
    pub fn transactions(&self) -> (u64, u64, u64) {
        (
            self.committed.load(Ordering::Relaxed),
            self.aborted.load(Ordering::Relaxed),
            self.in_doubt.load(Ordering::Relaxed),
        )
    }

    pub(super) fn render(&self, gauges: IndexGauges, metrics: &mut Exposition) {
        metrics
            .gauge(
                "aqs_ingest_dedup_entries",
                "Events the dedup index remembers.",
            )
            .value(gauges.entries);
        if let Some(bytes) = gauges.bytes {
            metrics
                .gauge("aqs_ingest_dedup_bytes", "Size of the dedup index file.")
                .value(bytes);
        }
        if let Some(seconds) = gauges.oldest_age_seconds {
            metrics
                .gauge(
                    "aqs_ingest_dedup_oldest_entry_age_seconds",
                    "Age of the oldest entry of the dedup index.",
                )
                .value(seconds);
        }
        if let Some(pending) = gauges.pending {
            metrics
                .gauge(
                    "aqs_ingest_dedup_pending_transactions",
                    "Kafka transactions recorded before their commit whose outcome is not known yet.",
                )
                .value(pending);
        }
        metrics
            .counter(
                "aqs_ingest_dedup_pruned_entries_total",
                "Entries removed from the dedup index by its retention.",
            )
            .value(self.pruned.load(Ordering::Relaxed));
        let mut family = metrics.counter(
            "aqs_ingest_kafka_transactions_total",
            "Kafka transactions of appended batches, by outcome of their commit.",
        );
        for (outcome, count) in [
            ("committed", &self.committed),
            ("aborted", &self.aborted),
            ("in_doubt", &self.in_doubt),
        ] {
            family.sample(&[("outcome", outcome)], count.load(Ordering::Relaxed));
        }
        let mut family = metrics.counter(
            "aqs_ingest_dedup_resolved_transactions_total",
            "Transactions of unknown outcome whose fate was read back from Kafka.",
        );
        for (fate, count) in [
            ("committed", &self.resolved_committed),
            ("aborted", &self.resolved_aborted),
        ] {
            family.sample(&[("fate", fate)], count.load(Ordering::Relaxed));
        }
    }
}
