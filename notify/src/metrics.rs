//! The notifier's counters, rendered in Prometheus' text format (docs/metrics.md).

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Deliveries by kind and outcome, and attempts by outcome.
#[derive(Debug, Default)]
pub struct NotifyMetrics {
    deliveries: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    attempts: Mutex<BTreeMap<&'static str, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl NotifyMetrics {
    /// A message settled: `sent`, `failed` (retried at the next tick) or `expired` (its
    /// catch-up window passed unsent).
    pub fn delivery(&self, kind: &'static str, outcome: &'static str) {
        *lock(&self.deliveries).entry((kind, outcome)).or_default() += 1;
    }

    /// One request to a webhook: `ok` or `error`.
    pub fn attempt(&self, outcome: &'static str) {
        *lock(&self.attempts).entry(outcome).or_default() += 1;
    }

    /// The text format; empty until a message was attempted (a process without
    /// destinations exposes nothing of it).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if lock(&self.attempts).is_empty() && lock(&self.deliveries).is_empty() {
            return out;
        }
        out.push_str("# HELP aqs_digest_deliveries_total Digests and alerts settled, by kind (digest, alert) and outcome (sent, failed, expired).\n");
        out.push_str("# TYPE aqs_digest_deliveries_total counter\n");
        for ((kind, outcome), n) in lock(&self.deliveries).iter() {
            out.push_str(&format!(
                "aqs_digest_deliveries_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}\n"
            ));
        }
        out.push_str("# HELP aqs_digest_delivery_attempts_total Requests to webhooks, by outcome (ok, error).\n");
        out.push_str("# TYPE aqs_digest_delivery_attempts_total counter\n");
        for (outcome, n) in lock(&self.attempts).iter() {
            out.push_str(&format!(
                "aqs_digest_delivery_attempts_total{{outcome=\"{outcome}\"}} {n}\n"
            ));
        }
        out
    }
}
