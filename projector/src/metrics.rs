//! Projector metrics, with stable names, rendered in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::health::ProjectorHealth;

/// Counters and gauges of one projector.
#[derive(Debug, Default)]
pub struct ProjectorMetrics {
    pub events_applied: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub events_conflict: AtomicU64,
    pub events_retracted: AtomicU64,
    pub events_no_effect: AtomicU64,
    /// Events that count nowhere because their money would overflow a ledger sum.
    pub events_overflow: AtomicU64,
    pub events_rejected: AtomicU64,
    /// Events set aside at fold time, by reason (see [`crate::quarantine`]); undecodable
    /// records are `events_rejected`.
    pub quarantined_dates: AtomicU64,
    pub quarantined_money: AtomicU64,
    pub batches: AtomicU64,
    /// Sum of batch processing time, microseconds.
    pub batch_micros: AtomicU64,
    pub checkpoints: AtomicU64,
    /// Checkpoints put off because a store had not confirmed the rows they would cover.
    pub checkpoints_deferred: AtomicU64,
    pub consumer_lag: AtomicU64,
    /// The stores' health and the runner's state, also behind readiness.
    pub health: ProjectorHealth,
}

impl ProjectorMetrics {
    /// Counts an event set aside for `reason`.
    pub fn quarantined(&self, reason: &crate::quarantine::QuarantineReason) {
        use crate::quarantine::QuarantineReason;
        let counter = match reason {
            QuarantineReason::DateOutOfRange { .. } => &self.quarantined_dates,
            QuarantineReason::MoneyOutOfRange { .. } => &self.quarantined_money,
            QuarantineReason::Undecodable(_) => &self.events_rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

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
            "aqs_projector_events_overflow_total",
            "Events that count nowhere: their money would overflow a ledger sum.",
            get(&self.events_overflow),
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
            "# HELP aqs_projector_events_quarantined_total Events set aside at fold time because a ledger store cannot hold a value of theirs (or the record is no event); they count nowhere.\n# TYPE aqs_projector_events_quarantined_total counter"
        );
        for (reason, value) in [
            ("date_out_of_range", get(&self.quarantined_dates)),
            ("money_out_of_range", get(&self.quarantined_money)),
            ("undecodable", get(&self.events_rejected)),
        ] {
            let _ = writeln!(
                out,
                "aqs_projector_events_quarantined_total{{reason=\"{reason}\"}} {value}"
            );
        }
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
            "# HELP aqs_projector_checkpoints_deferred_total Checkpoints put off because a ledger store had not confirmed the rows they would cover.\n# TYPE aqs_projector_checkpoints_deferred_total counter\naqs_projector_checkpoints_deferred_total {}",
            get(&self.checkpoints_deferred)
        );
        let _ = writeln!(
            out,
            "# HELP aqs_projector_consumer_lag_events Records in the log not yet read.\n# TYPE aqs_projector_consumer_lag_events gauge\naqs_projector_consumer_lag_events {}",
            get(&self.consumer_lag)
        );
        self.render_unstable_tails(&mut out);
        self.render_stores(&mut out);
        out
    }

    /// Per partition read whose end readers may not see yet (a transaction is open): how
    /// many records, and how long the end of what may be read has stood still. The lag
    /// above does not count them.
    fn render_unstable_tails(&self, out: &mut String) {
        let tails = self.health.unstable_tails();
        let _ = writeln!(
            out,
            "# HELP aqs_projector_log_unstable_records Records past the last stable offset of a partition read: in a transaction not yet committed or aborted, not readable yet.\n# TYPE aqs_projector_log_unstable_records gauge"
        );
        for tail in &tails {
            let _ = writeln!(
                out,
                "aqs_projector_log_unstable_records{{topic=\"{}\",partition=\"{}\"}} {}",
                tail.topic,
                tail.partition.partition,
                tail.unstable_records()
            );
        }
        let _ = writeln!(
            out,
            "# HELP aqs_projector_log_stable_offset_unchanged_seconds How long the last stable offset of a partition read has not moved while records wait past it.\n# TYPE aqs_projector_log_stable_offset_unchanged_seconds gauge"
        );
        for tail in &tails {
            let _ = writeln!(
                out,
                "aqs_projector_log_stable_offset_unchanged_seconds{{topic=\"{}\",partition=\"{}\"}} {:.3}",
                tail.topic,
                tail.partition.partition,
                tail.unchanged_for.as_secs_f64()
            );
        }
    }

    /// One series per ledger store of each store metric.
    fn render_stores(&self, out: &mut String) {
        let stores = self.health.stores();
        let statuses: Vec<_> = stores.iter().map(|s| (s, s.status())).collect();
        let mut family = |name: &str, kind: &str, help: &str, lines: Vec<String>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for line in lines {
                let _ = writeln!(out, "{name}{line}");
            }
        };
        let per_store =
            |value: &dyn Fn(&crate::health::StoreHealth, &crate::health::StoreStatus) -> String| {
                statuses
                    .iter()
                    .map(|(store, status)| {
                        format!("{{store=\"{}\"}} {}", store.store(), value(store, status))
                    })
                    .collect::<Vec<_>>()
            };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed).to_string();
        family(
            "aqs_projector_sink_up",
            "gauge",
            "1 while the ledger store takes writes; 0 while its writes fail or hang.",
            per_store(&|_, status| u8::from(status.up).to_string()),
        );
        family(
            "aqs_projector_sink_errors_total",
            "counter",
            "Failed writes to the ledger store, by kind: transient (away, slow, overloaded) or permanent (needs an operator; retried all the same).",
            statuses
                .iter()
                .flat_map(|(store, _)| {
                    [
                        ("transient", &store.errors_transient),
                        ("permanent", &store.errors_permanent),
                    ]
                    .map(|(kind, counter)| {
                        format!(
                            "{{store=\"{}\",kind=\"{kind}\"}} {}",
                            store.store(),
                            load(counter)
                        )
                    })
                })
                .collect(),
        );
        family(
            "aqs_projector_sink_retries_total",
            "counter",
            "Writes to the ledger store that repeated a failed one.",
            per_store(&|store, _| load(&store.retries)),
        );
        family(
            "aqs_projector_sink_writes_total",
            "counter",
            "Successful writes to the ledger store.",
            per_store(&|store, _| load(&store.writes)),
        );
        family(
            "aqs_projector_sink_rows_written_total",
            "counter",
            "Rows (tombstones included) the ledger store took.",
            per_store(&|store, _| load(&store.rows_written)),
        );
        family(
            "aqs_projector_sink_dead_letter_rows_total",
            "counter",
            "Rows the ledger store refused for their content, set aside in its dead-letter table.",
            per_store(&|store, _| load(&store.rows_dead_lettered)),
        );
        family(
            "aqs_projector_sink_pending_rows",
            "gauge",
            "Changed rows handed to the ledger store's writer and not yet written (merged by key).",
            per_store(&|_, status| status.pending_rows.to_string()),
        );
        family(
            "aqs_projector_sink_since_last_write_seconds",
            "gauge",
            "Seconds since the last successful write to the ledger store (NaN before the first).",
            per_store(&|_, status| {
                status
                    .seconds_since_last_write
                    .map_or_else(|| "NaN".to_owned(), |s| format!("{s:.3}"))
            }),
        );
    }
}

/// The variable that lists the host names the metrics endpoint answers to.
pub const METRICS_ALLOWED_HOSTS_SETTING: &str = "AQS_PROJECTOR_METRICS_ALLOWED_HOSTS";

/// Serves `GET /metrics`, `GET /healthz` (alive) and `GET /readyz` (every ledger store takes
/// writes and the runner reads: 200, else 503 with the reasons) on `listener` from a thread
/// of its own, for as long as the process runs. Deliberately tiny: one short request per
/// connection, no keep-alive. The probes answer JSON like ingest's:
/// `{"status": "ready"}` or `{"status": "not_ready", "reason": "…"}`. A request naming a
/// host not in `allowed` (DNS rebinding) is answered 421.
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
                // The request line and the Host header are all that matter: read the head.
                let mut request = [0_u8; 4096];
                let mut read = 0;
                while read < request.len() && !request[..read].windows(4).any(|w| w == b"\r\n\r\n")
                {
                    match stream.read(&mut request[read..]) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => read += n,
                    }
                }
                let head = String::from_utf8_lossy(&request[..read]);
                let host = head.lines().skip(1).find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.trim().eq_ignore_ascii_case("host").then(|| value.trim())
                });
                let (status, content_type, body) = if allowed.allows(host) {
                    answer(&head, &metrics)
                } else {
                    (
                        "421 Misdirected Request",
                        "application/json",
                        aqs_http::misdirected(
                            host.unwrap_or_default(),
                            METRICS_ALLOWED_HOSTS_SETTING,
                        ),
                    )
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })
}

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

fn answer(head: &str, metrics: &ProjectorMetrics) -> (&'static str, &'static str, String) {
    let path = head
        .strip_prefix("GET ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default();
    match path {
        "/metrics" => ("200 OK", PROMETHEUS_TEXT, metrics.render()),
        "/healthz" => (
            "200 OK",
            "application/json",
            serde_json::json!({"status": "ok"}).to_string(),
        ),
        "/readyz" => match metrics.health.check() {
            Ok(()) => (
                "200 OK",
                "application/json",
                serde_json::json!({"status": "ready"}).to_string(),
            ),
            Err(reason) => (
                "503 Service Unavailable",
                "application/json",
                serde_json::json!({"status": "not_ready", "reason": reason}).to_string(),
            ),
        },
        _ => ("404 Not Found", PROMETHEUS_TEXT, "not found\n".to_owned()),
    }
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

    fn get(address: std::net::SocketAddr, path: &str) -> String {
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
            .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer
    }

    #[test]
    fn readiness_and_store_metrics_follow_the_stores_health() {
        let metrics = Arc::new(ProjectorMetrics::default());
        let store = Arc::new(crate::health::StoreHealth::new(
            "clickhouse",
            crate::health::DEFAULT_STALL_AFTER,
        ));
        metrics.health.register(Arc::clone(&store));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let allowed = aqs_http::AllowedHosts::new(Vec::<String>::new()).expect("names");
        serve_metrics(listener, Arc::clone(&metrics), allowed).expect("serve");

        assert!(get(address, "/readyz").starts_with("HTTP/1.1 200 OK"));
        assert!(get(address, "/healthz").starts_with("HTTP/1.1 200 OK"));
        assert!(
            get(address, "/metrics").contains("\naqs_projector_sink_up{store=\"clickhouse\"} 1\n")
        );

        store.write_started();
        store.write_failed("Connection refused".into(), true);
        let ready = get(address, "/readyz");
        assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
        assert!(
            ready.contains("not_ready")
                && ready.contains("clickhouse")
                && ready.contains("Connection refused"),
            "{ready}"
        );
        let text = get(address, "/metrics");
        assert!(
            text.contains("\naqs_projector_sink_up{store=\"clickhouse\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\naqs_projector_sink_errors_total{store=\"clickhouse\",kind=\"transient\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            get(address, "/healthz").starts_with("HTTP/1.1 200 OK"),
            "alive all the same"
        );
    }
}
