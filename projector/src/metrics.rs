//! Projector metrics, with stable names, rendered in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters and gauges of one projector.
#[derive(Debug, Default)]
pub struct ProjectorMetrics {
    pub events_applied: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub events_conflict: AtomicU64,
    pub events_retracted: AtomicU64,
    pub events_no_effect: AtomicU64,
    pub events_rejected: AtomicU64,
    pub batches: AtomicU64,
    /// Sum of batch processing time, microseconds.
    pub batch_micros: AtomicU64,
    pub checkpoints: AtomicU64,
    pub consumer_lag: AtomicU64,
}

impl ProjectorMetrics {
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "aqs_projector_events_applied_total",
            "Events that took effect on the ledgers.",
            get(&self.events_applied),
        );
        counter(
            "aqs_projector_events_duplicate_total",
            "Events seen before with the same body.",
            get(&self.events_duplicate),
        );
        counter(
            "aqs_projector_events_conflict_total",
            "Events seen before with a different body (first kept).",
            get(&self.events_conflict),
        );
        counter(
            "aqs_projector_events_retracted_total",
            "Events that arrived already retracted.",
            get(&self.events_retracted),
        );
        counter(
            "aqs_projector_events_no_effect_total",
            "Events accepted without effect.",
            get(&self.events_no_effect),
        );
        counter(
            "aqs_projector_events_rejected_total",
            "Log records that could not be decoded.",
            get(&self.events_rejected),
        );
        counter(
            "aqs_projector_batches_total",
            "Batches processed.",
            get(&self.batches),
        );
        let _ = writeln!(
            out,
            "# HELP aqs_projector_batch_seconds_total Time spent processing batches.\n# TYPE aqs_projector_batch_seconds_total counter\naqs_projector_batch_seconds_total {:.6}",
            get(&self.batch_micros) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "# HELP aqs_projector_checkpoints_total Checkpoints written.\n# TYPE aqs_projector_checkpoints_total counter\naqs_projector_checkpoints_total {}",
            get(&self.checkpoints)
        );
        let _ = writeln!(
            out,
            "# HELP aqs_projector_consumer_lag_events Records in the log not yet read.\n# TYPE aqs_projector_consumer_lag_events gauge\naqs_projector_consumer_lag_events {}",
            get(&self.consumer_lag)
        );
        out
    }
}
