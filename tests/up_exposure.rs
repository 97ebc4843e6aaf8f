//! `aqs up` over real sockets: the dashboard, its `/metrics` and ingest answer only to the
//! host names they serve (a defence against DNS rebinding of a loopback dashboard).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[path = "support/up.rs"]
mod up;
use up::Up;

/// The status and body of `GET path` sent to `address` naming `host`.
fn get(address: &str, host: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_dashboard_its_metrics_and_ingest_refuse_foreign_host_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let up = Up::start(
        &dir.path().join("data"),
        &["--dashboard-allowed-hosts", "kpi.example.com"],
    );
    let port = |address: &str| address.rsplit(':').next().expect("port").to_owned();
    let rebind = format!("rebind.attacker.example:{}", port(&up.dashboard));

    for path in ["/", "/api/meta", "/metrics"] {
        let (status, body) = get(&up.dashboard, &rebind, path);
        assert_eq!(status, 421, "dashboard {path}: {body}");
        assert!(body.contains("AQS_DASHBOARD_ALLOWED_HOSTS"), "{body}");
    }
    let (status, body) = get(&up.ingest, &rebind, "/metrics");
    assert_eq!(status, 421, "ingest /metrics: {body}");
    assert!(body.contains("AQS_INGEST_ALLOWED_HOSTS"), "{body}");

    // The names it serves (the sign-in page, open to anyone who reaches it).
    for host in [
        format!("localhost:{}", port(&up.dashboard)),
        up.dashboard.clone(),
        "kpi.example.com".to_owned(),
    ] {
        let (status, body) = get(&up.dashboard, &host, "/login");
        assert_eq!(status, 200, "{host}: {body}");
    }
    let (status, metrics) = get(&up.dashboard, "localhost", "/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("aqs_projector_"), "{metrics}");
    let (status, metrics) = get(&up.ingest, &up.ingest, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("aqs_ingest_misdirected_requests_total 1"),
        "{metrics}"
    );
}
