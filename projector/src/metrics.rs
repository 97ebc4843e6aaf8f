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

/// Serves `GET /metrics` on `listener` from a thread of its own, for as long as the process
/// runs. Deliberately tiny: one short request per connection, no keep-alive.
pub fn serve_metrics(
    listener: std::net::TcpListener,
    metrics: std::sync::Arc<ProjectorMetrics>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    use std::io::{Read, Write};
    std::thread::Builder::new()
        .name("projector-metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut request = [0_u8; 2048];
                let read = stream.read(&mut request).unwrap_or(0);
                let head = String::from_utf8_lossy(&request[..read]);
                let (status, body) = if head.starts_with("GET /metrics ") {
                    ("200 OK", metrics.render())
                } else {
                    ("404 Not Found", "not found\n".to_owned())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn metrics_are_served_in_prometheus_text() {
        let metrics = Arc::new(ProjectorMetrics::default());
        metrics.events_applied.fetch_add(42, Ordering::Relaxed);
        metrics.consumer_lag.store(7, Ordering::Relaxed);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        serve_metrics(listener, Arc::clone(&metrics)).expect("serve");
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(
            answer.contains("\naqs_projector_events_applied_total 42\n"),
            "{answer}"
        );
        assert!(
            answer.contains("\naqs_projector_consumer_lag_events 7\n"),
            "{answer}"
        );
    }
}
