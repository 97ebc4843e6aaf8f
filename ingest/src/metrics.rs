//! The service's metrics, rendered in the Prometheus text format (version 0.0.4).
//!
//! | name | type | labels |
//! |---|---|---|
//! | `aqs_ingest_requests_total` | counter | `status`: HTTP status of `POST /v1/events` answers |
//! | `aqs_ingest_events_total` | counter | `outcome`: accepted, duplicate, conflict, rejected, skipped |
//! | `aqs_ingest_append_seconds` | histogram | time of one append call to the log |
//! | `aqs_ingest_in_flight_requests` | gauge | `POST /v1/events` requests being served |
//! | `aqs_ingest_refused_requests_total` | counter | `reason`: which bound refused a batch |
//! | `aqs_ingest_oversized_events_total` | counter | events rejected for their size, unread |
//! | `aqs_ingest_body_budget_bytes` | gauge | `state`: `in_use`, `total` |
//! | `aqs_ingest_misdirected_requests_total` | counter | requests naming a host not served (421) |
//! | `aqs_ingest_open_connections`, `aqs_ingest_connections_*` | gauge, counters | see [`aqs_http::ConnectionStats`] |
//! | `aqs_ingest_dead_letters_dropped_total`, `..._bytes_total` | counters | `reason`: `age`, `size` (embedded log) |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::answer::{BatchAnswer, EventStatus};

/// Metrics of a component behind the log (the dedup index), rendered after the server's.
pub trait MetricsSource: Send + Sync {
    /// Appends its metrics in the text format.
    fn render(&self, out: &mut String);
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
        let mut out = String::with_capacity(2048);
        out.push_str(
            "# HELP aqs_ingest_requests_total Event batch requests (POST /v1/events) answered, by HTTP status.\n\
             # TYPE aqs_ingest_requests_total counter\n",
        );
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for (status, count) in requests {
            let _ = writeln!(
                out,
                "aqs_ingest_requests_total{{status=\"{status}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP aqs_ingest_events_total Events of answered batches, by outcome.\n\
             # TYPE aqs_ingest_events_total counter\n",
        );
        for (slot, status) in self.events.iter().zip(EventStatus::ALL) {
            let _ = writeln!(
                out,
                "aqs_ingest_events_total{{outcome=\"{}\"}} {}",
                status.as_str(),
                slot.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP aqs_ingest_append_seconds Time of one append call to the event log.\n\
             # TYPE aqs_ingest_append_seconds histogram\n",
        );
        let count = self.append_count.load(Ordering::Relaxed);
        for (slot, bound) in self.append_buckets.iter().zip(APPEND_BUCKETS) {
            let _ = writeln!(
                out,
                "aqs_ingest_append_seconds_bucket{{le=\"{bound}\"}} {}",
                slot.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "aqs_ingest_append_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let seconds = self.append_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "aqs_ingest_append_seconds_sum {seconds}");
        let _ = writeln!(out, "aqs_ingest_append_seconds_count {count}");
        out.push_str(
            "# HELP aqs_ingest_in_flight_requests Event batch requests being served.\n\
             # TYPE aqs_ingest_in_flight_requests gauge\n",
        );
        let _ = writeln!(
            out,
            "aqs_ingest_in_flight_requests {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP aqs_ingest_refused_requests_total Event batch requests refused by a bound of \
             the service, by reason.\n\
             # TYPE aqs_ingest_refused_requests_total counter\n",
        );
        for refusal in Refusal::ALL {
            let _ = writeln!(
                out,
                "aqs_ingest_refused_requests_total{{reason=\"{}\"}} {}",
                refusal.as_str(),
                self.refusals(refusal)
            );
        }
        let _ = writeln!(
            out,
            "# HELP aqs_ingest_oversized_events_total Events rejected unread for being over the \
             size limit of one event.\n\
             # TYPE aqs_ingest_oversized_events_total counter\n\
             aqs_ingest_oversized_events_total {}",
            self.oversized_events.load(Ordering::Relaxed)
        );
        out
    }

    /// [`Metrics::render`] followed by the server's own figures.
    pub fn render_with(&self, server: &ServerFigures<'_>) -> String {
        let mut out = self.render();
        let _ = writeln!(
            out,
            "# HELP aqs_ingest_body_budget_bytes Request body bytes being read and judged \
             (in_use) out of the budget (total).\n\
             # TYPE aqs_ingest_body_budget_bytes gauge\n\
             aqs_ingest_body_budget_bytes{{state=\"in_use\"}} {}\n\
             aqs_ingest_body_budget_bytes{{state=\"total\"}} {}",
            server.budget_in_use, server.budget_total
        );
        let _ = writeln!(
            out,
            "# HELP aqs_ingest_misdirected_requests_total Requests refused for naming a host \
             the service does not answer to (421).\n\
             # TYPE aqs_ingest_misdirected_requests_total counter\n\
             aqs_ingest_misdirected_requests_total {}",
            server.misdirected
        );
        server.connections.render("ingest", &mut out);
        let drops = server.dead_letters;
        let _ = writeln!(
            out,
            "# HELP aqs_ingest_dead_letters_dropped_total Dead letters the embedded log dropped \
             to stay within its limits (AQS_DEAD_LETTER_MAX_AGE_DAYS, \
             AQS_DEAD_LETTER_MAX_BYTES), oldest first.\n\
             # TYPE aqs_ingest_dead_letters_dropped_total counter\n\
             aqs_ingest_dead_letters_dropped_total{{reason=\"age\"}} {}\n\
             aqs_ingest_dead_letters_dropped_total{{reason=\"size\"}} {}\n\
             # HELP aqs_ingest_dead_letters_dropped_bytes_total Bytes of the dead letters \
             dropped.\n\
             # TYPE aqs_ingest_dead_letters_dropped_bytes_total counter\n\
             aqs_ingest_dead_letters_dropped_bytes_total{{reason=\"age\"}} {}\n\
             aqs_ingest_dead_letters_dropped_bytes_total{{reason=\"size\"}} {}",
            drops.by_age, drops.by_size, drops.by_age_bytes, drops.by_size_bytes
        );
        out
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
