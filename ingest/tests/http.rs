//! The HTTP API against the embedded log, through a real server on `127.0.0.1:0`.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aqs_eventlog::EventLog;
use aqs_eventlog::sqlite::SqliteLog;
use aqs_ingest::IngestConfig;
use aqs_ingest::auth::Auth;
use aqs_ingest::readiness::{AlwaysReady, EmbeddedReadiness, Readiness};
use common::*;
use tempfile::TempDir;

/// A server over a fresh embedded log.
struct Fixture {
    server: TestServer,
    log: Arc<SqliteLog>,
    _dir: TempDir,
}

async fn embedded(config: IngestConfig) -> Fixture {
    embedded_with(config, tokens()).await
}

async fn embedded_with(config: IngestConfig, auth: Auth) -> Fixture {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(SqliteLog::open(dir.path().join("events.db"), 4).expect("log"));
    let readiness = Arc::new(EmbeddedReadiness::new(log.path()));
    let server = TestServer::start(
        Arc::clone(&log) as Arc<dyn EventLog>,
        readiness,
        auth,
        config,
    )
    .await;
    Fixture {
        server,
        log,
        _dir: dir,
    }
}

fn visits(prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            visit(
                &format!("{prefix}-{i:04}"),
                WORKLOG.0,
                &format!("O{}", i % 13),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_of_the_same_batch_are_appended_exactly_once() {
    let fixture = embedded(IngestConfig::default()).await;
    let server = &fixture.server;
    let batch = visits("retry", 120);

    let first = server.publish(WORKLOG.1, &batch).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.count("accepted"), 120);

    // The same batch again, as a JSON array and as NDJSON: all duplicates, a success.
    let again = server.publish(WORKLOG.1, &batch).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        (again.count("accepted"), again.count("duplicate")),
        (0, 120)
    );
    let lines = server
        .post("/v1/events", Some(WORKLOG.1), Some(NDJSON), ndjson(&batch))
        .await;
    assert_eq!(lines.status, 200, "{}", lines.body);
    assert_eq!(lines.count("duplicate"), 120);
    assert_eq!(lines.json()["results"][5]["line"], 6);

    // Retries racing each other with a new batch: each event is appended by one of them.
    let racing = visits("race", 80);
    let answers = futures_join(server, &racing, 6).await;
    let accepted: u64 = answers.iter().map(|a| a.count("accepted")).sum();
    let duplicate: u64 = answers.iter().map(|a| a.count("duplicate")).sum();
    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!((accepted, duplicate), (80, 5 * 80));

    assert_eq!(fixture.log.len().expect("len"), 200);
    fixture.server.stop().await;
}

async fn futures_join(server: &TestServer, batch: &[String], copies: usize) -> Vec<Reply> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..copies {
        let base = server.base.clone();
        let body = json_array(batch);
        tasks.spawn(async move {
            let response = reqwest::Client::new()
                .post(format!("{base}/v1/events"))
                .header("authorization", format!("Bearer {}", WORKLOG.1))
                .header("content-type", JSON)
                .body(body)
                .send()
                .await
                .expect("request");
            Reply {
                status: response.status().as_u16(),
                headers: response.headers().clone(),
                body: response.text().await.expect("body"),
            }
        });
    }
    tasks.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_batch_appends_the_valid_events_and_explains_the_others() {
    let fixture = embedded(IngestConfig::default()).await;
    let batch = vec![
        visit("p-1", WORKLOG.0, "O1"),
        bad_sale("p-2", WORKLOG.0),
        visit("p-3", CRM.0, "O1"),
        r#"{"event_id":"p-4","type":"no_such_type"}"#.to_owned(),
        "17".to_owned(),
        visit("p-1", WORKLOG.0, "O2"),
    ];
    let reply = fixture.server.publish(WORKLOG.1, &batch).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.statuses(),
        [
            "accepted", "rejected", "rejected", "rejected", "rejected", "conflict"
        ]
    );
    let answer = reply.json();
    assert_eq!(
        (
            &answer["accepted"],
            &answer["rejected"],
            &answer["conflict"],
            &answer["duplicate"]
        ),
        (&1.into(), &4.into(), &1.into(), &0.into())
    );
    let results = &answer["results"];
    assert_eq!(results[1]["index"], 1);
    assert_eq!(results[1]["event_id"], "p-2");
    assert_eq!(results[1]["errors"][0]["field"], "payload.premium");
    assert_eq!(results[1]["errors"][0]["code"], "too_many_decimals");
    assert_eq!(results[1]["errors"][0]["max_scale"], 2);
    assert_eq!(results[2]["errors"][0]["field"], "source");
    assert_eq!(results[2]["errors"][0]["code"], "source_mismatch");
    assert_eq!(results[3]["errors"][0]["code"], "unknown_type");
    assert_eq!(results[4]["event_id"], serde_json::Value::Null);
    assert_eq!(results[4]["errors"][0]["code"], "not_an_object");
    assert_eq!(results[5]["errors"][0]["code"], "conflict");
    assert!(results[0].get("errors").is_none());

    assert_eq!(fixture.log.len().expect("len"), 1);
    let letters = fixture.log.dead_letters().expect("dead letters");
    let origins: Vec<&str> = letters.iter().map(|l| l.origin.as_str()).collect();
    assert_eq!(
        origins,
        [
            "http mobile-worklog item 1",
            "http mobile-worklog item 2",
            "http mobile-worklog item 3",
            "http mobile-worklog item 4",
            "http mobile-worklog item 5"
        ]
    );
    assert_eq!(letters[0].body, bad_sale("p-2", WORKLOG.0).as_bytes());
    assert!(letters[0].reason.contains("too_many_decimals"));
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_atomic_batch_is_all_or_nothing() {
    let fixture = embedded(IngestConfig::default()).await;
    let server = &fixture.server;
    let mut batch = visits("atomic", 3);
    batch.push(bad_sale("atomic-bad", WORKLOG.0));

    let refused = server
        .post(
            "/v1/events?atomic=true",
            Some(WORKLOG.1),
            Some(JSON),
            json_array(&batch),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        refused.statuses(),
        ["skipped", "skipped", "skipped", "rejected"]
    );
    assert_eq!(
        (refused.count("skipped"), refused.count("rejected")),
        (3, 1)
    );
    assert_eq!(fixture.log.len().expect("len"), 0);
    assert_eq!(fixture.log.dead_letters().expect("letters").len(), 1);

    batch.pop();
    let accepted = server
        .post(
            "/v1/events?atomic=true",
            Some(WORKLOG.1),
            Some(JSON),
            json_array(&batch),
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(accepted.count("accepted"), 3);
    assert_eq!(fixture.log.len().expect("len"), 3);
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_nothing_stored_is_422() {
    let fixture = embedded(IngestConfig::default()).await;
    let reply = fixture
        .server
        .post(
            "/v1/events",
            Some(WORKLOG.1),
            Some(NDJSON),
            format!("{}\n\nnot json at all\n", bad_sale("n-1", WORKLOG.0)),
        )
        .await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.statuses(), ["rejected", "rejected"]);
    let answer = reply.json();
    assert_eq!(answer["results"][1]["line"], 3);
    assert_eq!(answer["results"][1]["errors"][0]["code"], "malformed_json");
    assert_eq!(fixture.log.len().expect("len"), 0);
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_400_415_and_append_nothing() {
    let fixture = embedded(IngestConfig::default()).await;
    let server = &fixture.server;
    let event = visit("m-1", WORKLOG.0, "O1");
    for (body, code) in [
        (format!("[{event},"), "malformed_body"),
        ("[]".to_owned(), "empty_batch"),
        ("\"events\"".to_owned(), "malformed_body"),
        (String::new(), "empty_batch"),
    ] {
        let reply = server
            .post("/v1/events", Some(WORKLOG.1), Some(JSON), body.clone())
            .await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.json()["error"], code, "{body}");
    }
    let query = server
        .post(
            "/v1/events?atomic=yes",
            Some(WORKLOG.1),
            Some(JSON),
            format!("[{event}]"),
        )
        .await;
    assert_eq!(
        (query.status, &query.json()["error"]),
        (400, &"malformed_query".into())
    );
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let reply = server
            .post(
                "/v1/events",
                Some(WORKLOG.1),
                content_type,
                format!("[{event}]"),
            )
            .await;
        assert_eq!(reply.status, 415, "{content_type:?}");
        assert_eq!(reply.json()["error"], "unsupported_media_type");
    }
    let gzip = reqwest::Client::new()
        .post(format!("{}/v1/events", server.base))
        .header("authorization", format!("Bearer {}", WORKLOG.1))
        .header("content-type", JSON)
        .header("content-encoding", "gzip")
        .body(format!("[{event}]"))
        .send()
        .await
        .expect("request");
    assert_eq!(gzip.status(), 415);
    assert_eq!(fixture.log.len().expect("len"), 0);
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_413_and_append_nothing() {
    let config = IngestConfig {
        max_batch_events: 3,
        max_body_bytes: 4_000,
        ..IngestConfig::default()
    };
    let fixture = embedded(config).await;
    let server = &fixture.server;

    let too_many = server.publish(WORKLOG.1, &visits("big", 4)).await;
    assert_eq!(too_many.status, 413, "{}", too_many.body);
    assert_eq!(too_many.json()["error"], "too_many_events");
    let too_many_lines = server
        .post(
            "/v1/events",
            Some(WORKLOG.1),
            Some(NDJSON),
            ndjson(&visits("big", 4)),
        )
        .await;
    assert_eq!(too_many_lines.status, 413);

    let padding = " ".repeat(5_000);
    let too_large = server
        .post(
            "/v1/events",
            Some(WORKLOG.1),
            Some(JSON),
            format!("[{}{padding}]", visit("big-x", WORKLOG.0, "O1")),
        )
        .await;
    assert_eq!(too_large.status, 413, "{}", too_large.body);
    assert_eq!(too_large.json()["error"], "body_too_large");

    // Without a length up front (chunked), the limit holds as well.
    let chunks = [
        format!("[{}", visit("big-y", WORKLOG.0, "O1")),
        padding,
        "]".to_owned(),
    ];
    assert_eq!(post_chunked(server, &chunks).await, 413);

    let fits = server.publish(WORKLOG.1, &visits("big", 3)).await;
    assert_eq!(fits.status, 200, "{}", fits.body);
    assert_eq!(fixture.log.len().expect("len"), 3);
    fixture.server.stop().await;
}

/// Posts a JSON batch with `Transfer-Encoding: chunked` over a raw connection; the status.
async fn post_chunked(server: &TestServer, chunks: &[String]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let mut request = format!(
        "POST /v1/events HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        WORKLOG.1
    );
    for chunk in chunks {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    // The server may answer and close before reading everything: ignore write errors.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_before_anything_is_appended() {
    let fixture = embedded(IngestConfig::default()).await;
    let server = &fixture.server;
    let batch = json_array(&visits("auth", 2));

    let missing = server
        .post("/v1/events", None, Some(JSON), batch.clone())
        .await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["error"], "unauthorized");
    assert!(
        missing
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer"))
    );
    let wrong = server
        .post("/v1/events", Some("not-a-token"), Some(JSON), batch.clone())
        .await;
    assert_eq!(wrong.status, 401);
    let hashed = server
        .post(
            "/v1/events",
            Some(&aqs_ingest::auth::hash_token(WORKLOG.1)),
            Some(JSON),
            batch.clone(),
        )
        .await;
    assert_eq!(hashed.status, 401, "the stored digest is not a token");
    // Checked before the body is read: an unauthenticated 413-sized body is still 401.
    let unread = server
        .post("/v1/events", None, Some("text/plain"), "x".repeat(100_000))
        .await;
    assert_eq!(unread.status, 401);
    assert_eq!(
        unread.header("connection"),
        Some("close"),
        "the unread body ends the connection, and the client is told so"
    );

    // A valid token of another source: every event is refused, nothing appended.
    let other = server
        .post("/v1/events", Some(CRM.1), Some(JSON), batch)
        .await;
    assert_eq!(other.status, 422, "{}", other.body);
    assert_eq!(other.statuses(), ["rejected", "rejected"]);
    assert_eq!(
        other.json()["results"][0]["errors"][0]["code"],
        "source_mismatch"
    );
    assert_eq!(fixture.log.len().expect("len"), 0);
    assert!(
        fixture
            .log
            .dead_letters()
            .expect("letters")
            .iter()
            .all(|l| l.origin.starts_with("http crm "))
    );

    let mine = server.publish(CRM.1, &[outlet("auth-o", CRM.0)]).await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_authentication_any_source_is_accepted() {
    let fixture = embedded_with(IngestConfig::default(), Auth::Disabled).await;
    let reply = fixture
        .server
        .post(
            "/v1/events",
            None,
            Some(JSON),
            json_array(&[visit("open-1", "anything", "O1"), outlet("open-2", "crm")]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.count("accepted"), 2);
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_health_readiness_metrics_and_openapi_are_served() {
    let fixture = embedded(IngestConfig::default()).await;
    let server = &fixture.server;

    let schemas = server.get("/v1/schema").await;
    assert_eq!(schemas.status, 200);
    let documents = schemas.json();
    assert_eq!(
        documents.as_object().map(|o| o.len()),
        Some(aqs_schemas::schema::all_schema_documents().len())
    );
    assert_eq!(documents["event.json"]["title"], "event");
    let sale = server.get("/v1/schema/sale_closed.json").await;
    assert_eq!(
        (sale.status, &sale.json()["title"]),
        (200, &"sale_closed".into())
    );
    assert_eq!(server.get("/v1/schema/target").await.status, 200);
    assert_eq!(server.get("/v1/schema/nothing.json").await.status, 404);

    assert_eq!(server.get("/healthz").await.json()["status"], "ok");
    let ready = server.get("/readyz").await;
    assert_eq!(
        (ready.status, &ready.json()["status"]),
        (200, &"ready".into())
    );

    let openapi = server.get("/openapi.json").await;
    assert_eq!(openapi.body, aqs_ingest::server::openapi_json());
    assert_eq!(server.get("/v1/nothing").await.json()["error"], "not_found");

    server.publish(WORKLOG.1, &visits("metrics", 2)).await;
    server.publish(WORKLOG.1, &visits("metrics", 3)).await;
    server.post("/v1/events", None, Some(JSON), "[]").await;
    let metrics = server.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/plain"))
    );
    for line in [
        "aqs_ingest_requests_total{status=\"200\"} 2",
        "aqs_ingest_requests_total{status=\"401\"} 1",
        "aqs_ingest_events_total{outcome=\"accepted\"} 3",
        "aqs_ingest_events_total{outcome=\"duplicate\"} 2",
        "aqs_ingest_append_seconds_count 2",
        "aqs_ingest_in_flight_requests 0",
        "# TYPE aqs_ingest_append_seconds histogram",
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "{line} in\n{}",
            metrics.body
        );
    }
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_log() {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(SqliteLog::open(dir.path().join("events.db"), 2).expect("log"));
    let gone: Arc<dyn Readiness> =
        Arc::new(EmbeddedReadiness::new(dir.path().join("missing/events.db")));
    let server = TestServer::start(log, gone, tokens(), IngestConfig::default()).await;
    let reply = server.get("/readyz").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["status"], "not_ready");
    assert!(
        reply.json()["reason"]
            .as_str()
            .is_some_and(|r| r.contains("event log"))
    );
    assert_eq!(server.get("/healthz").await.status, 200);
    server.stop().await;
}

/// Readiness that answers only once opened: the state stays unknown until then.
struct Gate {
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
    inner: EmbeddedReadiness,
}

impl Readiness for Gate {
    fn check(&self) -> Result<(), String> {
        let mut open = self.open.lock().expect("lock");
        while !*open {
            open = self.opened.wait(open).expect("lock");
        }
        self.inner.check()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_tried_while_the_health_of_the_log_is_not_known_yet() {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(SqliteLog::open(dir.path().join("events.db"), 2).expect("log"));
    let gate = Arc::new(Gate {
        open: std::sync::Mutex::new(false),
        opened: std::sync::Condvar::new(),
        inner: EmbeddedReadiness::new(log.path()),
    });
    let server = TestServer::start(
        Arc::clone(&log) as Arc<dyn EventLog>,
        Arc::clone(&gate) as Arc<dyn Readiness>,
        tokens(),
        IngestConfig::default(),
    )
    .await;
    // The first check of the log has not answered: the batch goes to the log.
    let reply = server.publish(WORKLOG.1, &visits("unknown", 3)).await;
    assert_eq!(
        (reply.status, reply.count("accepted")),
        (200, 3),
        "{}",
        reply.body
    );
    assert_eq!(log.len().expect("len"), 3);
    *gate.open.lock().expect("lock") = true;
    gate.opened.notify_all();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_log_answers_429_with_retry_after() {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(Flaky::new(
        SqliteLog::open(dir.path().join("events.db"), 2).expect("log"),
        Duration::from_millis(1_500),
    ));
    let config = IngestConfig {
        max_concurrent_appends: 1,
        queue_timeout_ms: 50,
        retry_after_secs: 3,
        ..IngestConfig::default()
    };
    let server = TestServer::start(
        Arc::clone(&log) as Arc<dyn EventLog>,
        Arc::new(AlwaysReady),
        tokens(),
        config,
    )
    .await;
    let answers = futures_join(&server, &visits("busy", 5), 3).await;
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 429, 429]);
    for busy in answers.iter().filter(|a| a.status == 429) {
        assert_eq!(busy.header("retry-after"), Some("3"));
        assert_eq!(busy.json()["error"], "busy");
    }
    assert_eq!(log.appends.load(Ordering::SeqCst), 1);
    assert_eq!(log.inner.len().expect("len"), 5);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_log_answers_503_and_reports_nothing_accepted() {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(Flaky::new(
        SqliteLog::open(dir.path().join("events.db"), 2).expect("log"),
        Duration::ZERO,
    ));
    log.failing.store(true, Ordering::SeqCst);
    let server = TestServer::start(
        Arc::clone(&log) as Arc<dyn EventLog>,
        Arc::new(AlwaysReady),
        tokens(),
        IngestConfig::default(),
    )
    .await;
    let batch = visits("down", 4);
    let down = server.publish(WORKLOG.1, &batch).await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert_eq!(down.json()["error"], "unavailable");
    assert_eq!(down.header("retry-after"), Some("2"));
    assert_eq!(log.inner.len().expect("len"), 0);

    // Back up: the retry of the same batch is accepted in full.
    log.failing.store(false, Ordering::SeqCst);
    let retry = server.publish(WORKLOG.1, &batch).await;
    assert_eq!((retry.status, retry.count("accepted")), (200, 4));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_slower_than_the_append_timeout_answers_503_and_a_retry_is_safe() {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(Flaky::new(
        SqliteLog::open(dir.path().join("events.db"), 2).expect("log"),
        Duration::from_millis(500),
    ));
    let config = IngestConfig {
        append_timeout_ms: 100,
        ..IngestConfig::default()
    };
    let server = TestServer::start(
        Arc::clone(&log) as Arc<dyn EventLog>,
        Arc::new(AlwaysReady),
        tokens(),
        config,
    )
    .await;
    let batch = visits("slow", 3);
    let slow = server.publish(WORKLOG.1, &batch).await;
    assert_eq!(slow.status, 503, "{}", slow.body);
    assert!(slow.header("retry-after").is_some());
    // The append went on and landed; the retry finds the events there.
    eventually(|| log.inner.len().expect("len") == 3).await;
    let config = IngestConfig {
        append_timeout_ms: 5_000,
        ..server.state.config().clone()
    };
    server.stop().await;
    let server = TestServer::start(
        Arc::clone(&log) as Arc<dyn EventLog>,
        Arc::new(AlwaysReady),
        tokens(),
        config,
    )
    .await;
    let retry = server.publish(WORKLOG.1, &batch).await;
    assert_eq!(
        (retry.status, retry.count("duplicate")),
        (200, 3),
        "{}",
        retry.body
    );
    assert_eq!(log.inner.len().expect("len"), 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_appends_in_flight() {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(Flaky::new(
        SqliteLog::open(dir.path().join("events.db"), 2).expect("log"),
        Duration::from_millis(700),
    ));
    let mut server = TestServer::start(
        Arc::clone(&log) as Arc<dyn EventLog>,
        Arc::new(AlwaysReady),
        tokens(),
        IngestConfig::default(),
    )
    .await;
    let base = server.base.clone();
    let body = json_array(&visits("late", 10));
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{base}/v1/events"))
            .header("authorization", format!("Bearer {}", WORKLOG.1))
            .header("content-type", JSON)
            .body(body)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    });
    // Once the request is in the log, ask for shutdown.
    eventually(|| log.appends.load(Ordering::SeqCst) == 1).await;
    server.signal_shutdown();
    assert_eq!(in_flight.await.expect("request task"), 200);
    let base = server.base.clone();
    server.stop().await;
    assert_eq!(log.inner.len().expect("len"), 10);
    // Not accepting any more.
    assert!(
        reqwest::Client::new()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err()
    );
}

/// Waits until `condition` holds, at most 10 s.
async fn eventually(condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
