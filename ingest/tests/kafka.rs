//! The HTTP API in front of the Kafka log: exactly once under retries through transactions
//! and the dedup index, 503 with nothing acknowledged while Kafka is away, and the index
//! pruned to its retention. Needs the test Kafka (`AQS_KAFKA_BROKERS`), except the first
//! half of the unavailability test.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aqs_eventlog::DeadLetter;
use aqs_eventlog::EventLog;
use aqs_eventlog::kafka::{KafkaConfig, TransactionalKafkaLog};
use aqs_ingest::IngestConfig;
use aqs_ingest::dedup::{DedupIndex, DedupLog};
use aqs_ingest::readiness::{AllReady, Readiness};
use aqs_testkit::{KafkaEnv, unique_name};
use common::*;

/// Fresh topics on `brokers`.
fn kafka_config(brokers: &str, partitions: u32) -> KafkaConfig {
    KafkaConfig {
        events_topic: unique_name("aqs-test-ingest-events", '-'),
        reference_topic: unique_name("aqs-test-ingest-reference", '-'),
        dead_letter_topic: unique_name("aqs-test-ingest-dead-letter", '-'),
        events_partitions: partitions,
        ..KafkaConfig::new(brokers)
    }
}

/// The transactional Kafka writer behind the dedup index in `dir` (its writers named after
/// the index's instance), and its readiness probe. `reachable`: connect now (creating the
/// topics) rather than on first use.
fn dedup_log(
    config: &KafkaConfig,
    dir: &Path,
    reachable: bool,
) -> (Arc<DedupLog<TransactionalKafkaLog>>, Arc<dyn Readiness>) {
    let index = DedupIndex::open(dir.join("ingest-dedup.db")).expect("dedup index");
    let slots = IngestConfig::default().max_concurrent_appends;
    let writer = if reachable {
        TransactionalKafkaLog::connect(config, index.instance(), slots).expect("connect")
    } else {
        TransactionalKafkaLog::open_unchecked(config, index.instance(), slots).expect("writer")
    };
    let probe = writer.readiness(Duration::from_millis(500)).expect("probe");
    let log = Arc::new(DedupLog::new(writer, index, Duration::from_secs(10)));
    let readiness = AllReady(vec![
        Arc::clone(&log) as Arc<dyn Readiness>,
        Arc::new(probe),
    ]);
    (log, Arc::new(readiness))
}

/// Every record of `topic` a `read_committed` reader sees.
fn read_topic(kafka: &KafkaEnv, topic: &str) -> Vec<Vec<u8>> {
    kafka
        .read_committed(topic, Duration::from_secs(30))
        .into_iter()
        .map(|record| record.payload)
        .collect()
}

/// Event ids of the records of `topic`, with how often each appears.
fn id_counts(kafka: &KafkaEnv, topic: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for record in read_topic(kafka, topic) {
        let event: serde_json::Value = serde_json::from_slice(&record).expect("event JSON");
        let id = event["event_id"].as_str().expect("event_id").to_owned();
        *counts.entry(id).or_default() += 1;
    }
    counts
}

fn visits(prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            visit(
                &format!("{prefix}-{i:03}"),
                WORKLOG.0,
                &format!("O{}", i % 11),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_through_kafka_are_appended_exactly_once() {
    trace();
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = kafka_config(kafka.brokers(), 3);
    let (log, readiness) = dedup_log(&config, dir.path(), true);
    let server = TestServer::start(
        Arc::clone(&log) as Arc<dyn EventLog>,
        readiness,
        tokens(),
        IngestConfig::default(),
    )
    .await;
    assert_eq!(server.get("/readyz").await.status, 200);

    let batch = visits("k", 60);
    let first = server.publish(WORKLOG.1, &batch).await;
    assert_eq!(
        (first.status, first.count("accepted")),
        (200, 60),
        "{}",
        first.body
    );
    let outlets: Vec<String> = (0..5).map(|i| outlet(&format!("ko-{i}"), CRM.0)).collect();
    let reference = server.publish(CRM.1, &outlets).await;
    assert_eq!(reference.count("accepted"), 5, "{}", reference.body);

    // Sequential retries, as JSON and NDJSON, then racing retries.
    for _ in 0..2 {
        let again = server.publish(WORKLOG.1, &batch).await;
        assert_eq!(
            (again.status, again.count("duplicate")),
            (200, 60),
            "{}",
            again.body
        );
    }
    let lines = server
        .post("/v1/events", Some(WORKLOG.1), Some(NDJSON), ndjson(&batch))
        .await;
    assert_eq!(lines.count("duplicate"), 60);
    let mut racing = tokio::task::JoinSet::new();
    let more = visits("kr", 40);
    for _ in 0..4 {
        let (base, body) = (server.base.clone(), json_array(&more));
        racing.spawn(async move {
            let reply = reqwest::Client::new()
                .post(format!("{base}/v1/events"))
                .header("authorization", format!("Bearer {}", WORKLOG.1))
                .header("content-type", JSON)
                .body(body)
                .send()
                .await
                .expect("request");
            assert_eq!(reply.status(), 200);
            let answer: serde_json::Value =
                serde_json::from_str(&reply.text().await.expect("body")).expect("JSON");
            answer["accepted"].as_u64().expect("accepted")
        });
    }
    let accepted: u64 = racing.join_all().await.into_iter().sum();
    assert_eq!(accepted, 40);

    // A changed event under a known id, and an invalid one: both end as dead letters.
    let mixed = vec![
        visit("k-000", WORKLOG.0, "O-changed"),
        bad_sale("k-bad", WORKLOG.0),
        batch[1].clone(),
    ];
    let reply = server.publish(WORKLOG.1, &mixed).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.statuses(), ["conflict", "rejected", "duplicate"]);
    server.stop().await;

    let events = id_counts(&kafka, &config.events_topic);
    assert_eq!(events.len(), 100);
    assert!(
        events.values().all(|&n| n == 1),
        "repeats in the log: {events:?}"
    );
    let expected: BTreeSet<String> = (0..60)
        .map(|i| format!("k-{i:03}"))
        .chain((0..40).map(|i| format!("kr-{i:03}")))
        .collect();
    assert_eq!(events.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(id_counts(&kafka, &config.reference_topic).len(), 5);
    assert_eq!(log.index().len(), 105);

    let letters: Vec<DeadLetter> = read_topic(&kafka, &config.dead_letter_topic)
        .iter()
        .map(|record| serde_json::from_slice(record).expect("dead letter JSON"))
        .collect();
    let kept: BTreeSet<(Option<String>, String)> = letters
        .into_iter()
        .map(|letter| (letter.event_id, letter.origin))
        .collect();
    assert_eq!(
        kept,
        BTreeSet::from([
            (
                Some("k-000".to_owned()),
                "http mobile-worklog item 0".to_owned()
            ),
            (
                Some("k-bad".to_owned()),
                "http mobile-worklog item 1".to_owned()
            ),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_kafka_answers_503_and_the_retry_is_accepted_once() {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let kafka = aqs_testkit::kafka();
    let config = kafka_config(kafka.as_ref().map_or("127.0.0.1:1", KafkaEnv::brokers), 2);

    // Nothing listens on 127.0.0.1:1: every append fails after the message timeout.
    let away = KafkaConfig {
        brokers: Some("127.0.0.1:1".to_owned()),
        message_timeout_ms: 1_000,
        ..config.clone()
    };
    let (log, readiness) = dedup_log(&away, dir.path(), false);
    let server = TestServer::start(
        Arc::clone(&log) as Arc<dyn EventLog>,
        readiness,
        tokens(),
        IngestConfig::default(),
    )
    .await;
    let batch = visits("away", 12);
    let refused = server.publish(WORKLOG.1, &batch).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.json()["error"], "unavailable");
    assert!(refused.header("retry-after").is_some());
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(
        ready.json()["reason"]
            .as_str()
            .is_some_and(|r| r.contains("kafka"))
    );
    // Nothing recorded as appended: the retry will not be mistaken for a duplicate.
    assert!(log.index().is_empty());
    server.stop().await;
    drop(log);

    // Kafka is back: the same batch, same index, is accepted in full, and appears once.
    let Some(kafka) = kafka else { return };
    let (log, readiness) = dedup_log(&config, dir.path(), true);
    let server = TestServer::start(log, readiness, tokens(), IngestConfig::default()).await;
    assert_eq!(server.get("/readyz").await.status, 200);
    let retry = server.publish(WORKLOG.1, &batch).await;
    assert_eq!(
        (retry.status, retry.count("accepted")),
        (200, 12),
        "{}",
        retry.body
    );
    let again = server.publish(WORKLOG.1, &batch).await;
    assert_eq!(again.count("duplicate"), 12);
    server.stop().await;
    let events = id_counts(&kafka, &config.events_topic);
    assert_eq!(events.len(), 12);
    assert!(events.values().all(|&n| n == 1));
}

/// A metric's value in a `/metrics` text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dedup_index_forgets_events_older_than_its_retention_and_shows_its_size() {
    trace();
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = kafka_config(kafka.brokers(), 2);
    let retention = Duration::from_secs(6);
    let index = DedupIndex::open(dir.path().join("ingest-dedup.db")).expect("dedup index");
    let writer = TransactionalKafkaLog::connect(&config, index.instance(), 2).expect("connect");
    let log =
        Arc::new(DedupLog::new(writer, index, Duration::from_secs(10)).with_retention(retention));
    DedupLog::spawn_upkeep(&log, Duration::from_secs(1)).expect("upkeep");
    let server = TestServer::start(
        Arc::clone(&log) as Arc<dyn EventLog>,
        Arc::new(aqs_ingest::readiness::AlwaysReady),
        tokens(),
        IngestConfig::default(),
    )
    .await;
    server
        .state
        .add_metrics_source(Arc::clone(&log) as Arc<dyn aqs_ingest::metrics::MetricsSource>);

    let old = visits("old", 20);
    assert_eq!(server.publish(WORKLOG.1, &old).await.count("accepted"), 20);
    let text = server.get("/metrics").await.body;
    assert_eq!(
        metric(&text, "aqs_ingest_dedup_entries"),
        Some(20.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "aqs_ingest_dedup_pending_transactions"),
        Some(0.0)
    );
    assert!(metric(&text, "aqs_ingest_dedup_bytes").is_some_and(|b| b > 0.0));

    // Once the first batch is older than the retention, the next pruning removes it.
    tokio::time::sleep(retention + Duration::from_millis(500)).await;
    let recent = visits("recent", 10);
    assert_eq!(
        server.publish(WORKLOG.1, &recent).await.count("accepted"),
        10
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = server.get("/metrics").await.body;
        if metric(&text, "aqs_ingest_dedup_pruned_entries_total") == Some(20.0) {
            break text;
        }
        assert!(Instant::now() < deadline, "not pruned: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        metric(&text, "aqs_ingest_dedup_entries"),
        Some(10.0),
        "{text}"
    );
    assert!(
        metric(&text, "aqs_ingest_dedup_oldest_entry_age_seconds")
            .is_some_and(|age| age < retention.as_secs_f64()),
        "{text}"
    );
    assert_eq!(log.index().len(), 10);

    // A resend within the retention is a duplicate; one older is appended again.
    let resend = vec![recent[0].clone(), old[0].clone()];
    let reply = server.publish(WORKLOG.1, &resend).await;
    assert_eq!(
        reply.statuses(),
        ["duplicate", "accepted"],
        "{}",
        reply.body
    );
    server.stop().await;
    let events = id_counts(&kafka, &config.events_topic);
    assert_eq!(events.len(), 30);
    assert_eq!(events["old-000"], 2, "appended again after the retention");
    assert_eq!(events["recent-000"], 1);
}

/// Forwards connections on `listener` to `target` until dropped (aborted).
async fn forward(listener: tokio::net::TcpListener, target: String) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

async fn eventually_async<F, Fut>(what: &str, condition: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition().await {
        assert!(Instant::now() < deadline, "not within 60 s: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_known_to_be_down_is_answered_503_at_once_and_used_again_once_back() {
    trace();
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // The topics exist on the broker; the service reaches it through a port where nothing
    // listens yet.
    let config = kafka_config(kafka.brokers(), 2);
    drop(
        TransactionalKafkaLog::connect(&config, &unique_name("aqs-topics", '-'), 1)
            .expect("topics created"),
    );
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("address").port()
    };
    let away = KafkaConfig {
        brokers: Some(format!("127.0.0.1:{port}")),
        ..config.clone()
    };
    let (log, readiness) = dedup_log(&away, dir.path(), false);
    let server = TestServer::start(
        Arc::clone(&log) as Arc<dyn EventLog>,
        readiness,
        tokens(),
        IngestConfig::default(),
    )
    .await;
    eventually_async("the service knows Kafka is down", || async {
        server.get("/readyz").await.status == 503
    })
    .await;

    let batch = visits("fast", 12);
    let refused = server.publish(WORKLOG.1, &batch).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.json()["error"], "unavailable");
    assert!(
        refused.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("event log is unavailable") && m.contains("kafka")),
        "{}",
        refused.body
    );
    assert_eq!(refused.header("retry-after"), Some("2"));
    // Refused without waiting on Kafka: the log was not asked at all.
    let metrics = server.get("/metrics").await.body;
    assert_eq!(
        metric(&metrics, "aqs_ingest_append_seconds_count"),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "aqs_ingest_refused_requests_total{reason=\"log_down\"}"
        ),
        Some(1.0)
    );
    assert!(log.index().is_empty());

    // Kafka is reachable again: the service notices by itself and takes the same batch.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the port is still free");
    let forwarder = tokio::spawn(forward(listener, kafka.brokers().to_owned()));
    eventually_async("the service knows Kafka is back", || async {
        server.get("/readyz").await.status == 200
    })
    .await;
    let accepted = server.publish(WORKLOG.1, &batch).await;
    assert_eq!(
        (accepted.status, accepted.count("accepted")),
        (200, 12),
        "{}",
        accepted.body
    );
    server.stop().await;
    forwarder.abort();
    let events = id_counts(&kafka, &config.events_topic);
    assert_eq!(events.len(), 12);
    assert!(events.values().all(|&n| n == 1));
}
