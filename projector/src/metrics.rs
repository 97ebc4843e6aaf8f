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

/// The variable that lists the host names the metrics endpoint answers to.
pub const METRICS_ALLOWED_HOSTS_SETTING: &str = "AQS_PROJECTOR_METRICS_ALLOWED_HOSTS";

/// Serves `GET /metrics` on `listener` from a thread of its own, for as long as the process
/// runs. Deliberately tiny: one short request per connection, no keep-alive. A request
/// naming a host not in `allowed` (DNS rebinding) is answered 421.
pub fn serve_metrics(
    listener: std::net::TcpListener,
    metrics: std::sync::Arc<ProjectorMetrics>,
    allowed: aqs_http::AllowedHosts,
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
                let host = head.lines().skip(1).find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.trim().eq_ignore_ascii_case("host").then(|| value.trim())
                });
                let (status, kind, body) = if !allowed.allows(host) {
                    (
                        "421 Misdirected Request",
                        "application/json",
                        aqs_http::misdirected(host.unwrap_or_default(), METRICS_ALLOWED_HOSTS_SETTING),
                    )
                } else if head.starts_with("GET /metrics ") {
                    ("200 OK", "text/plain; version=0.0.4", metrics.render())
                } else {
                    ("404 Not Found", "text/plain", "not found\n".to_owned())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
        let allowed = aqs_http::AllowedHosts::new(["metrics.example"]).expect("names");
        serve_metrics(listener, Arc::clone(&metrics), allowed).expect("serve");
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
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

        // DNS rebinding: a browser sends the hostile site's name; the configured name passes.
        let ask = |host: &str| {
            let mut stream = std::net::TcpStream::connect(address).expect("connect");
            stream
                .write_all(format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
                .expect("send");
            let mut answer = String::new();
            stream.read_to_string(&mut answer).expect("read");
            answer
        };
        let refused = ask("rebind.attacker.example:9100");
        assert!(refused.starts_with("HTTP/1.1 421 "), "{refused}");
        assert!(refused.contains(METRICS_ALLOWED_HOSTS_SETTING), "{refused}");
        assert!(!refused.contains("aqs_projector"), "{refused}");
        assert!(ask("metrics.example:9100").starts_with("HTTP/1.1 200 OK"));
        assert!(ask("localhost").starts_with("HTTP/1.1 200 OK"));
    }
}
