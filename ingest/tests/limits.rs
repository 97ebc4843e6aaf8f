//! The bounds of the API against hostile and unlucky clients, through a real server on
//! `127.0.0.1:0` over the embedded log: the size of one event, the memory of all bodies,
//! the requests of one source, slow bodies, silent connections and foreign host names.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aqs_eventlog::EventLog;
use aqs_eventlog::sqlite::SqliteLog;
use aqs_http::Closed;
use aqs_ingest::IngestConfig;
use aqs_ingest::metrics::Refusal;
use aqs_ingest::readiness::EmbeddedReadiness;
use common::*;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Fixture {
    server: TestServer,
    log: Arc<SqliteLog>,
    _dir: TempDir,
}

async fn embedded(config: IngestConfig) -> Fixture {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(SqliteLog::open(dir.path().join("events.db"), 4).expect("log"));
    let readiness = Arc::new(EmbeddedReadiness::new(log.path()));
    let server = TestServer::start(
        Arc::clone(&log) as Arc<dyn EventLog>,
        readiness,
        tokens(),
        config,
    )
    .await;
    Fixture {
        server,
        log,
        _dir: dir,
    }
}

fn visits(prefix: &str, source: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| visit(&format!("{prefix}-{i:03}"), source, "O1"))
        .collect()
}

/// An outlet visit of `source` followed by `fields` unknown fields of about 31 bytes each.
fn with_unknown_fields(id: &str, source: &str, fields: usize) -> String {
    let mut event = visit(id, source, "O1");
    event.pop();
    event.reserve(fields * 32);
    for i in 0..fields {
        event.push_str(&format!(r#","extra_field_{i:07}":"value-{:02}""#, i % 100));
    }
    event.push('}');
    event
}

/// A request whose head and first `sent` bytes of a `length`-byte body (`None`: chunked)
/// are sent at once, and whose rest trickles in a byte every 100 ms until the server
/// answers; the status.
async fn trickle(address: &str, token: &str, body: &str, declare_length: bool, sent: usize) -> u16 {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let framing = if declare_length {
        format!("Content-Length: {}", body.len())
    } else {
        "Transfer-Encoding: chunked".to_owned()
    };
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\n{framing}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let chunk = move |bytes: &[u8]| -> Vec<u8> {
        if declare_length {
            bytes.to_vec()
        } else {
            let mut framed = format!("{:x}\r\n", bytes.len()).into_bytes();
            framed.extend_from_slice(bytes);
            framed.extend_from_slice(b"\r\n");
            framed
        }
    };
    let (first, rest) = body.as_bytes().split_at(sent.min(body.len()));
    if !first.is_empty() {
        stream.write_all(&chunk(first)).await.expect("first bytes");
    }
    let (mut reader, mut writer) = stream.into_split();
    let rest = rest.to_vec();
    let writing = tokio::spawn(async move {
        for byte in rest {
            if writer.write_all(&chunk(&[byte])).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !declare_length {
            let _ = writer.write_all(b"0\r\n\r\n").await;
        }
        // Dropping the writer would half-close the connection before the answer.
        std::future::pending::<()>().await;
    });
    let mut answer = [0_u8; 64];
    let read = reader.read(&mut answer).await.unwrap_or(0);
    writing.abort();
    let text = String::from_utf8_lossy(&answer[..read]);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within 20 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_with_half_a_million_unknown_fields_is_refused_unread_and_kept_in_part() {
    // The defaults: 64 KiB per event, 16 MiB per body.
    let fixture = embedded(IngestConfig::default()).await;
    let server = &fixture.server;
    let hostile = with_unknown_fields("hostile-1", WORKLOG.0, 500_000);
    assert!(hostile.len() > 15_000_000);
    let batch = vec![visit("fine-1", WORKLOG.0, "O1"), hostile.clone()];

    let reply = server.publish(WORKLOG.1, &batch).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        &reply.body[..reply.body.len().min(500)]
    );
    assert_eq!(reply.statuses(), ["accepted", "rejected"]);
    let error = &reply.json()["results"][1]["errors"][0];
    assert_eq!(error["code"], "event_too_large");
    assert_eq!(error["size_bytes"], hostile.len());
    assert_eq!(error["max_bytes"], 65_536);
    // The answer says what happened in a few hundred bytes, not in 40 MB.
    assert!(
        reply.body.len() < 2_000,
        "answer of {} bytes",
        reply.body.len()
    );

    // The dead letter keeps the first 64 KiB and says so.
    let letters = fixture.log.dead_letters().expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].body, hostile.as_bytes()[..65_536]);
    assert!(letters[0].reason.len() < 1_000, "{}", letters[0].reason);
    assert!(
        letters[0].reason.contains("first 65536 bytes"),
        "{}",
        letters[0].reason
    );
    assert_eq!(letters[0].origin, "http mobile-worklog item 1");

    let metrics = server.get("/metrics").await;
    assert!(
        metrics
            .body
            .lines()
            .any(|l| l == "aqs_ingest_oversized_events_total 1"),
        "{}",
        metrics.body
    );
    assert_eq!(fixture.log.len().expect("len"), 1);
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_many_problems_are_answered_in_bounded_words() {
    let fixture = embedded(IngestConfig::default()).await;
    let server = &fixture.server;
    // Under the size limit, but a few hundred problems, with long field names.
    let mut event = visit("many-1", WORKLOG.0, "O1");
    event.pop();
    for i in 0..400 {
        event.push_str(&format!(r#","{}{i}":1"#, "k".repeat(100)));
    }
    event.push('}');
    assert!(event.len() < 65_536);
    let reply = server.publish(WORKLOG.1, &[event.clone()]).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    let errors = reply.json()["results"][0]["errors"]
        .as_array()
        .expect("errors")
        .clone();
    assert!(errors.len() <= 26, "{} errors listed", errors.len());
    assert!(
        reply.body.len() < event.len(),
        "answer of {} bytes",
        reply.body.len()
    );
    let letters = fixture.log.dead_letters().expect("dead letters");
    assert!(letters[0].reason.len() < event.len());
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_beyond_the_memory_budget_wait_then_get_429_and_a_body_without_length_counts_whole()
{
    let config = IngestConfig {
        max_body_bytes: 4_000,
        body_budget_bytes: 4_000,
        budget_wait_ms: 200,
        retry_after_secs: 3,
        ..IngestConfig::default()
    };
    let fixture = embedded(config).await;
    let server = &fixture.server;
    let address = server.base.trim_start_matches("http://").to_owned();

    // A chunked body, trickling: it holds the whole budget while it arrives.
    let slow = json_array(&visits("slow", WORKLOG.0, 2));
    let slow_task = {
        let (address, slow) = (address.clone(), slow.clone());
        tokio::spawn(
            async move { trickle(&address, WORKLOG.1, &slow, false, slow.len() - 20).await },
        )
    };
    eventually("the slow body holds the budget", || {
        server
            .state
            .render_metrics()
            .contains("aqs_ingest_body_budget_bytes{state=\"in_use\"} 4000")
    })
    .await;

    // A small body of another source finds no room.
    let small = server.publish(CRM.1, &[outlet("budget-o1", CRM.0)]).await;
    assert_eq!(small.status, 429, "{}", small.body);
    assert_eq!(small.json()["error"], "busy");
    assert_eq!(small.header("retry-after"), Some("3"));
    assert_eq!(server.state.metrics().refusals(Refusal::BodyBudget), 1);

    // Once the slow one is in, there is room again.
    assert_eq!(slow_task.await.expect("slow request"), 200);
    let again = server.publish(CRM.1, &[outlet("budget-o1", CRM.0)]).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(
        server
            .state
            .render_metrics()
            .contains("aqs_ingest_body_budget_bytes{state=\"in_use\"} 0")
    );
    assert_eq!(fixture.log.len().expect("len"), 3);
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_trickling_bodies_cannot_starve_the_others() {
    let config = IngestConfig {
        max_in_flight_requests: 8,
        max_in_flight_per_source: 4,
        ..IngestConfig::default()
    };
    let fixture = embedded(config).await;
    let server = &fixture.server;
    let address = server.base.trim_start_matches("http://").to_owned();

    // The work-log source opens as many slow requests as the whole service takes.
    let mut slow = Vec::new();
    for i in 0..8 {
        let body = json_array(&visits(&format!("trickle-{i}"), WORKLOG.0, 1));
        let address = address.clone();
        slow.push(tokio::spawn(async move {
            let sent = body.len() - 50;
            trickle(&address, WORKLOG.1, &body, true, sent).await
        }));
    }
    eventually("four slow requests refused", || {
        server.state.metrics().refusals(Refusal::SourceInFlight) == 4
    })
    .await;
    // Another source is served at once.
    let other = server.publish(CRM.1, &[outlet("fair-o1", CRM.0)]).await;
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(other.count("accepted"), 1);
    // And the work-log source itself is told to wait, not served beyond its share.
    let more = server
        .publish(WORKLOG.1, &visits("more", WORKLOG.0, 1))
        .await;
    assert_eq!(more.status, 429, "{}", more.body);
    assert!(
        more.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("mobile-worklog"))
    );
    // All the while the four slow ones were in flight.
    assert!(
        server
            .state
            .render_metrics()
            .contains("\naqs_ingest_in_flight_requests 4\n"),
        "the slow requests ended too early for this test"
    );

    let mut statuses: Vec<u16> = Vec::new();
    for task in slow {
        statuses.push(task.await.expect("slow request"));
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429, 429]);
    assert_eq!(fixture.log.len().expect("len"), 5);
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_the_body_timeout_is_cut_with_408() {
    let config = IngestConfig {
        body_timeout_ms: 500,
        ..IngestConfig::default()
    };
    let fixture = embedded(config).await;
    let server = &fixture.server;
    let address = server.base.trim_start_matches("http://").to_owned();
    let body = json_array(&visits("late", WORKLOG.0, 3));
    // About 100 bytes a second: far too slow for the whole body in half a second.
    let status = trickle(&address, WORKLOG.1, &body, true, 0).await;
    assert_eq!(status, 408);
    assert_eq!(server.state.metrics().refusals(Refusal::BodyTimeout), 1);
    // Sent at once, the same body is accepted.
    let reply = server
        .publish(WORKLOG.1, &visits("late", WORKLOG.0, 3))
        .await;
    assert_eq!(
        (reply.status, reply.count("accepted")),
        (200, 3),
        "{}",
        reply.body
    );
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twice_the_connection_cap_of_silent_connections_does_not_keep_a_source_out() {
    let config = IngestConfig {
        max_connections: 32,
        ..IngestConfig::default()
    };
    let fixture = embedded(config).await;
    let server = &fixture.server;
    let address = server.base.trim_start_matches("http://").to_owned();
    // Half-open connections without a token, sending nothing.
    let mut silent = Vec::new();
    for _ in 0..64 {
        silent.push(TcpStream::connect(&address).await.expect("connect"));
    }
    let connections = || server.state.connections();
    eventually("every silent connection handled", || {
        connections().accepted() + connections().closed(Closed::Refused) >= 64
    })
    .await;
    assert!(connections().open() <= 32);

    let reply = server
        .publish(WORKLOG.1, &visits("through", WORKLOG.0, 2))
        .await;
    assert_eq!(
        (reply.status, reply.count("accepted")),
        (200, 2),
        "{}",
        reply.body
    );
    assert!(connections().closed(Closed::Evicted) >= 32);
    let metrics = server.get("/metrics").await.body;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("aqs_ingest_connections_closed_total{reason=\"evicted\"}")),
        "{metrics}"
    );
    drop(silent);
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_connections_are_closed_after_their_timeouts() {
    let config = IngestConfig {
        header_timeout_ms: 300,
        idle_timeout_ms: 1_000,
        ..IngestConfig::default()
    };
    let fixture = embedded(config).await;
    let server = &fixture.server;
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut silent = TcpStream::connect(&address).await.expect("connect");
    let mut buffer = [0_u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buffer))
        .await
        .expect("closed by the server within 10 s");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(server.state.connections().closed(Closed::HeaderTimeout), 1);

    // The client's pool keeps its connection after this request; the server closes it.
    let reply = server.get("/healthz").await;
    assert_eq!(reply.status, 200);
    eventually("the idle keep-alive connection closed", || {
        server.state.connections().closed(Closed::IdleTimeout) == 1
    })
    .await;
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_naming_a_foreign_host_are_421_on_every_route() {
    let config = IngestConfig {
        allowed_hosts: vec!["ingest.example.com".to_owned()],
        ..IngestConfig::default()
    };
    let fixture = embedded(config).await;
    let server = &fixture.server;
    let address = server.base.trim_start_matches("http://").to_owned();
    let port = address.rsplit(':').next().expect("port").to_owned();
    let client = reqwest::Client::new();
    let get = |host: String, path: &'static str| {
        client
            .get(format!("{}{path}", server.base))
            .header("host", host)
            .send()
    };
    for host in [
        format!("localhost:{port}"),
        address.clone(),
        "ingest.example.com".to_owned(),
    ] {
        let reply = get(host.clone(), "/metrics").await.expect("request");
        assert_eq!(reply.status(), 200, "{host}");
    }
    for path in ["/metrics", "/readyz", "/v1/schema"] {
        let reply = get(format!("rebind.attacker.example:{port}"), path)
            .await
            .expect("request");
        assert_eq!(reply.status(), 421, "{path}");
        let body: serde_json::Value =
            serde_json::from_str(&reply.text().await.expect("body")).expect("JSON");
        assert_eq!(body["error"], "misdirected_request");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("AQS_INGEST_ALLOWED_HOSTS"))
        );
    }
    let posted = client
        .post(format!("{}/v1/events", server.base))
        .header("host", "rebind.attacker.example")
        .header("authorization", format!("Bearer {}", WORKLOG.1))
        .header("content-type", JSON)
        .body(json_array(&visits("rebind", WORKLOG.0, 1)))
        .send()
        .await
        .expect("request");
    assert_eq!(posted.status(), 421);
    assert_eq!(fixture.log.len().expect("len"), 0);
    let metrics = server.get("/metrics").await.body;
    assert!(
        metrics
            .lines()
            .any(|l| l == "aqs_ingest_misdirected_requests_total 4"),
        "{metrics}"
    );
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_beyond_their_bound_are_dropped_oldest_first_and_counted() {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = aqs_eventlog::DeadLetterLimits {
        max_age_days: 90,
        max_bytes: 10_000,
    };
    let log = Arc::new(
        SqliteLog::open(dir.path().join("events.db"), 4)
            .expect("log")
            .with_dead_letter_limits(limits)
            .expect("limits"),
    );
    let readiness = Arc::new(EmbeddedReadiness::new(log.path()));
    let server = TestServer::start(
        Arc::clone(&log) as Arc<dyn EventLog>,
        readiness,
        tokens(),
        IngestConfig::default(),
    )
    .await;
    // Forty rejected sales of about half a kilobyte of dead letter each.
    for round in 0..4 {
        let batch: Vec<String> = (0..10)
            .map(|i| bad_sale(&format!("dl-{round}-{i}"), WORKLOG.0))
            .collect();
        assert_eq!(server.publish(WORKLOG.1, &batch).await.status, 422);
    }
    let kept = log.dead_letters().expect("letters");
    assert!(kept.len() < 40);
    assert!(log.dead_letter_bytes().expect("bytes") <= 10_000);
    // The newest are the ones kept.
    assert_eq!(
        kept.last().and_then(|l| l.event_id.as_deref()),
        Some("dl-3-9")
    );
    assert!(kept.iter().all(|l| {
        !l.event_id
            .as_deref()
            .unwrap_or_default()
            .starts_with("dl-0-")
    }));
    let metrics = server.get("/metrics").await.body;
    let dropped = metrics
        .lines()
        .find_map(|l| l.strip_prefix("aqs_ingest_dead_letters_dropped_total{reason=\"size\"} "))
        .and_then(|n| n.parse::<usize>().ok())
        .expect("the size drops are counted");
    assert_eq!(dropped, 40 - kept.len());
    server.stop().await;
}
