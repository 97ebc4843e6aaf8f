//! A Kafka transaction left open on a partition the projector reads, against a real broker
//! (skipped loudly without `AQS_KAFKA_BROKERS`, a failure in CI). The projector's lag counts
//! to the last stable offset, so it reads 0 while the transaction holds every reader back;
//! readiness must fail all the same, naming the topic and partition, and the metrics must
//! show the records waiting past the last stable offset. Once the transaction ends, both
//! clear.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aqs_eventlog::kafka::{KafkaConfig, KafkaConsumer, KafkaLog};
use aqs_projector::checkpoint::CheckpointStore;
use aqs_projector::metrics::ProjectorMetrics;
use aqs_projector::runner::{Runner, RunnerSettings};
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{Store, WriterSettings};
use aqs_testkit::unique_name;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

const WITHIN: Duration = Duration::from_secs(60);

/// Waits until `done` holds, or fails with what `describe` says.
fn wait_for(what: &str, done: impl Fn() -> bool, describe: impl Fn() -> String) {
    let deadline = Instant::now() + WITHIN;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: {}", describe());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_transaction_left_open_makes_the_projector_not_ready_and_shows_in_its_metrics() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let config = KafkaConfig {
        events_topic: unique_name("aqs-test-open-txn-events", '-'),
        reference_topic: unique_name("aqs-test-open-txn-reference", '-'),
        dead_letter_topic: unique_name("aqs-test-open-txn-dead-letter", '-'),
        events_partitions: 2,
        projector_group: kafka.fresh_group(),
        ..KafkaConfig::new(kafka.brokers())
    };
    KafkaLog::connect(&config).expect("topics created");

    // A writer that opens a transaction, writes one record and neither commits nor aborts;
    // its transaction timeout is far beyond the test.
    let producer: ThreadedProducer<_> = kafka
        .client_config()
        .set("transactional.id", unique_name("aqs-test-open-txn", '-'))
        .set("transaction.timeout.ms", "600000")
        .create()
        .expect("producer");
    producer.init_transactions(WITHIN).expect("init");
    producer.begin_transaction().expect("begin");
    producer
        .send(
            BaseRecord::to(&config.events_topic)
                .partition(1)
                .key("A1")
                .payload("{}"),
        )
        .map_err(|(error, _)| error)
        .expect("send");
    producer.flush(WITHIN).expect("written");

    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Arc::new(ProjectorMetrics::default());
    let settings = RunnerSettings {
        partitions: 2,
        stuck_transaction_after: Duration::from_secs(2),
        ..RunnerSettings::default()
    };
    let mut runner = Runner::new(
        KafkaConsumer::connect(&config).expect("consumer"),
        vec![Store::new(
            SqliteSink::open(&dir.path().join("ledgers.db")).expect("store"),
            WriterSettings::default(),
        )],
        CheckpointStore::open(&dir.path().join("projector.db")).expect("checkpoints"),
        settings,
        Arc::clone(&metrics),
    )
    .expect("runner");
    let shutdown = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&shutdown);
    let running = std::thread::spawn(move || runner.run(&stop));

    let held = format!(
        "log {} partition 1: readers held at offset 0",
        config.events_topic
    );
    wait_for(
        "readiness names the partition held back",
        || {
            metrics
                .health
                .check()
                .is_err_and(|reason| reason.contains(&held))
        },
        || format!("{:?}", metrics.health.check()),
    );
    let reason = metrics.health.check().expect_err("not ready");
    assert!(
        reason.contains("a transaction left open") && reason.contains(" since "),
        "{reason}"
    );
    let text = metrics.render();
    let gap = format!(
        "\naqs_projector_log_unstable_records{{topic=\"{}\",partition=\"1\"}} 1\n",
        config.events_topic
    );
    assert!(text.contains(&gap), "{text}");
    assert!(
        text.contains(&format!(
            "\naqs_projector_log_stable_offset_unchanged_seconds{{topic=\"{}\",partition=\"1\"}} ",
            config.events_topic
        )),
        "{text}"
    );
    // What made the freeze silent before: the lag counts to the last stable offset.
    assert_eq!(metrics.consumer_lag.load(Ordering::Relaxed), 0);

    // The transaction ends (aborted): the readers move on past it, readiness comes back.
    producer.abort_transaction(WITHIN).expect("abort");
    wait_for(
        "ready again once the transaction ended",
        || metrics.health.check().is_ok(),
        || format!("{:?}", metrics.health.check()),
    );
    assert!(!metrics.render().contains(&gap));

    shutdown.store(true, Ordering::SeqCst);
    running
        .join()
        .expect("join")
        .expect("runner stopped cleanly");
}
