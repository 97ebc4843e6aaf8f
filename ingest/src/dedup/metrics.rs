//! The dedup index's metrics, rendered with the service's in the Prometheus text format.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `aqs_ingest_dedup_entries` | gauge | events the index remembers |
//! | `aqs_ingest_dedup_bytes` | gauge | size of the index file |
//! | `aqs_ingest_dedup_oldest_entry_age_seconds` | gauge | age of the oldest entry |
//! | `aqs_ingest_dedup_pruned_entries_total` | counter | entries removed by the retention |
//! | `aqs_ingest_dedup_pending_transactions` | gauge | transactions whose commit is not known yet |
//! | `aqs_ingest_kafka_transactions_total` | counter | `outcome`: `committed`, `aborted`, `in_doubt` |
//! | `aqs_ingest_dedup_resolved_transactions_total` | counter | `fate`: `committed`, `aborted` (read back from the log) |

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

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

    pub(super) fn render(&self, gauges: IndexGauges, out: &mut String) {
        let gauge = |out: &mut String, name: &str, help: &str, value: Option<String>| {
            if let Some(value) = value {
                let _ = write!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
                );
            }
        };
        gauge(
            out,
            "aqs_ingest_dedup_entries",
            "Events the dedup index remembers.",
            Some(gauges.entries.to_string()),
        );
        gauge(
            out,
            "aqs_ingest_dedup_bytes",
            "Size of the dedup index file.",
            gauges.bytes.map(|b| b.to_string()),
        );
        gauge(
            out,
            "aqs_ingest_dedup_oldest_entry_age_seconds",
            "Age of the oldest entry of the dedup index.",
            gauges.oldest_age_seconds.map(|s| format!("{s:.3}")),
        );
        gauge(
            out,
            "aqs_ingest_dedup_pending_transactions",
            "Kafka transactions recorded before their commit whose outcome is not known yet.",
            gauges.pending.map(|p| p.to_string()),
        );
        let _ = write!(
            out,
            "# HELP aqs_ingest_dedup_pruned_entries_total Entries removed from the dedup index by its retention.\n\
             # TYPE aqs_ingest_dedup_pruned_entries_total counter\n\
             aqs_ingest_dedup_pruned_entries_total {}\n",
            self.pruned.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP aqs_ingest_kafka_transactions_total Kafka transactions of appended batches, by outcome of their commit.\n\
             # TYPE aqs_ingest_kafka_transactions_total counter"
        );
        for (outcome, count) in [
            ("committed", &self.committed),
            ("aborted", &self.aborted),
            ("in_doubt", &self.in_doubt),
        ] {
            let _ = writeln!(
                out,
                "aqs_ingest_kafka_transactions_total{{outcome=\"{outcome}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP aqs_ingest_dedup_resolved_transactions_total Transactions of unknown outcome whose fate was read back from Kafka.\n\
             # TYPE aqs_ingest_dedup_resolved_transactions_total counter"
        );
        for (fate, count) in [
            ("committed", &self.resolved_committed),
            ("aborted", &self.resolved_aborted),
        ] {
            let _ = writeln!(
                out,
                "aqs_ingest_dedup_resolved_transactions_total{{fate=\"{fate}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
    }
}
