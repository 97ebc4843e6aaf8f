//! The service's metrics, written with [`aqs_http::exposition`]. Every metric of aqs is
//! listed in `docs/metrics.md`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use aqs_http::Exposition;

use crate::answer::{BatchAnswer, EventStatus};

/// Metrics of a component behind the log (the dedup index), rendered after the server's.
pub trait MetricsSource: Send + Sync {
    /// Writes its metrics.
    fn render(&self, metrics: &mut Exposition);
}

/// Upper bounds of the append latency buckets, in seconds.
pub const APPEND_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Statuses listed from the start, so their series exist before the first such answer.
const KNOWN_STATUSES: [u16; 10] = [200, 400, 401, 408, 413, 415, 422, 429, 500, 503];

/// Why a batch request was refused by one of the service's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// More than `--max-in-flight-requests` batches at once (429).
    InFlight,
    /// More than `--max-in-flight-per-source` batches of its source at once (429).
    SourceInFlight,
    /// No room in the body budget within `--budget-wait-ms` (429).
    BodyBudget,
    /// No append slot within `--queue-timeout-ms` (429).
    AppendSlots,
    /// The log was known to be down; refused without trying (503).
    LogDown,
    /// The body did not arrive within `--body-timeout-ms` (408).
    BodyTimeout,
}

impl Refusal {
    pub const ALL: [Refusal; 6] = [
        Refusal::InFlight,
        Refusal::SourceInFlight,
        Refusal::BodyBudget,
        Refusal::AppendSlots,
        Refusal::LogDown,
        Refusal::BodyTimeout,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Refusal::InFlight => "in_flight",
            Refusal::SourceInFlight => "source_in_flight",
            Refusal::BodyBudget => "body_budget",
            Refusal::AppendSlots => "append_slots",
            Refusal::LogDown => "log_down",
            Refusal::BodyTimeout => "body_timeout",
        }
    }
}

/// Figures of the server around the metrics of its requests, read when rendering.
#[derive(Debug)]
pub struct ServerFigures<'a> {
    pub connections: &'a aqs_http::ConnectionStats,
    pub misdirected: u64,
    pub budget_in_use: usize,
    pub budget_total: usize,
    pub dead_letters: aqs_eventlog::DeadLetterDrops,
}

/// The counters of one server.
#[derive(Debug)]
pub struct Metrics {
    requests: Mutex<BTreeMap<u16, u64>>,
    events: [AtomicU64; EventStatus::ALL.len()],
    append_buckets: [AtomicU64; APPEND_BUCKETS.len()],
    append_count: AtomicU64,
    append_nanos: AtomicU64,
    in_flight: AtomicI64,
    refused: [AtomicU64; Refusal::ALL.len()],
    oversized_events: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Mutex::new(KNOWN_STATUSES.iter().map(|&s| (s, 0)).collect()),
            events: Default::default(),
            append_buckets: Default::default(),
            append_count: AtomicU64::new(0),
            append_nanos: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            refused: Default::default(),
            oversized_events: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts one answered `POST /v1/events`.
    pub fn count_request(&self, status: u16) {
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *requests.entry(status).or_default() += 1;
    }

    /// Counts the events of an answered batch by outcome.
    pub fn count_events(&self, answer: &BatchAnswer) {
        for (slot, status) in self.events.iter().zip(EventStatus::ALL) {
            slot.fetch_add(answer.count(status), Ordering::Relaxed);
        }
    }

    /// Records the time of one append call.
    pub fn observe_append(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (slot, bound) in self.append_buckets.iter().zip(APPEND_BUCKETS) {
            if seconds <= bound {
                slot.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.append_count.fetch_add(1, Ordering::Relaxed);
        self.append_nanos.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Marks a request in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Counts one batch refused by a bound.
    pub fn count_refusal(&self, refusal: Refusal) {
        self.refused[refusal as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Batches refused so far by this bound.
    pub fn refusals(&self, refusal: Refusal) -> u64 {
        self.refused[refusal as usize].load(Ordering::Relaxed)
    }

    /// Counts events rejected for their size.
    pub fn count_oversized(&self, events: u64) {
        self.oversized_events.fetch_add(events, Ordering::Relaxed);
    }

    /// Events counted so far with this outcome.
    pub fn events(&self, status: EventStatus) -> u64 {
        let position = EventStatus::ALL
            .iter()
            .position(|&s| s == status)
            .unwrap_or_default();
        self.events[position].load(Ordering::Relaxed)
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut metrics = Exposition::new();
        self.write(&mut metrics);
        metrics.into_text()
    }

    /// Writes the metrics of the requests.
    pub fn write(&self, metrics: &mut Exposition) {
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut family = metrics.counter(
            "aqs_ingest_requests_total",
            "Event batch requests (POST /v1/events) answered, by HTTP status.",
        );
        for (status, count) in requests {
            family.sample(&[("status", &status.to_string())], count);
        }
        let mut family = metrics.counter(
            "aqs_ingest_events_total",
            "Events of answered batches, by outcome.",
        );
        for (slot, status) in self.events.iter().zip(EventStatus::ALL) {
            family.sample(
                &[("outcome", status.as_str())],
                slot.load(Ordering::Relaxed),
            );
        }
        let buckets: Vec<(f64, u64)> = APPEND_BUCKETS
            .iter()
            .zip(&self.append_buckets)
            .map(|(&bound, slot)| (bound, slot.load(Ordering::Relaxed)))
            .collect();
        metrics
            .histogram(
                "aqs_ingest_append_seconds",
                "Time of one append call to the event log.",
            )
            .observations(
                &[],
                &buckets,
                self.append_nanos.load(Ordering::Relaxed) as f64 / 1e9,
                self.append_count.load(Ordering::Relaxed),
            );
        metrics
            .gauge(
                "aqs_ingest_in_flight_requests",
                "Event batch requests being served.",
            )
            .value(self.in_flight.load(Ordering::Relaxed));
        let mut family = metrics.counter(
            "aqs_ingest_refused_requests_total",
            "Event batch requests refused by a bound of the service, by reason.",
        );
        for refusal in Refusal::ALL {
            family.sample(&[("reason", refusal.as_str())], self.refusals(refusal));
        }
        metrics
            .counter(
                "aqs_ingest_oversized_events_total",
                "Events rejected unread for being over the size limit of one event.",
            )
            .value(self.oversized_events.load(Ordering::Relaxed));
    }

    /// The metrics of the requests followed by the server's own figures.
    pub fn write_with(&self, server: &ServerFigures<'_>, metrics: &mut Exposition) {
        self.write(metrics);
        metrics
            .gauge(
                "aqs_ingest_body_budget_bytes",
                "Request body bytes being read and judged (in_use) out of the budget (total).",
            )
            .sample(&[("state", "in_use")], server.budget_in_use)
            .sample(&[("state", "total")], server.budget_total);
        metrics
            .counter(
                "aqs_ingest_misdirected_requests_total",
                "Requests refused for naming a host the service does not answer to (421).",
            )
            .value(server.misdirected);
        server.connections.render("ingest", metrics);
        let drops = server.dead_letters;
        metrics
            .counter(
                "aqs_ingest_dead_letters_dropped_total",
                "Dead letters the embedded log dropped to stay within its limits \
                 (AQS_DEAD_LETTER_MAX_AGE_DAYS, AQS_DEAD_LETTER_MAX_BYTES), oldest first.",
            )
            .sample(&[("reason", "age")], drops.by_age)
            .sample(&[("reason", "size")], drops.by_size);
        metrics
            .counter(
                "aqs_ingest_dead_letters_dropped_bytes_total",
                "Bytes of the dead letters dropped.",
            )
            .sample(&[("reason", "age")], drops.by_age_bytes)
            .sample(&[("reason", "size")], drops.by_size_bytes);
    }
}

/// A request in flight; dropping it ends it.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.observe_append(Duration::from_micros(300));
        metrics.observe_append(Duration::from_millis(30));
        metrics.count_request(200);
        metrics.count_request(200);
        let guard = metrics.in_flight();
        let text = metrics.render();
        drop(guard);
        assert!(text.contains("aqs_ingest_requests_total{status=\"200\"} 2\n"));
        assert!(text.contains("aqs_ingest_requests_total{status=\"503\"} 0\n"));
        assert!(text.contains("aqs_ingest_append_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("aqs_ingest_append_seconds_bucket{le=\"0.05\"} 2\n"));
        assert!(text.contains("aqs_ingest_append_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("aqs_ingest_append_seconds_count 2\n"));
        assert!(text.contains("aqs_ingest_in_flight_requests 1\n"));
        assert!(text.contains("aqs_ingest_events_total{outcome=\"skipped\"} 0\n"));
    }
}
