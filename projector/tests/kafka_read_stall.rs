//! A projector whose Kafka client stops reading while the broker is healthy, against a real
//! broker (skipped loudly without `AQS_KAFKA_BROKERS`, a failure in CI). The projector's
//! clients reach the broker through a proxy of the test's own, which hangs the connections
//! one of them has open (the reference client, or the group's events client): its requests
//! are never answered, as for a client whose fetcher or coordinator waits for good after a
//! broker fault (docs/reliability.md, design note 43). Records keep coming past its position.
//!
//! Before the watchdog the projector stayed ready and silent meanwhile. Now readiness must
//! name the stall, the metrics count it, the client is made again, and the ledgers end
//! equal to a clean rebuild of the same topics: nothing skipped, nothing counted twice.

#[path = "support/kafka_proxy.rs"]
mod kafka_proxy;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aqs_eventlog::kafka::{KafkaConfig, KafkaConsumer, KafkaLog};
use aqs_eventlog::{EventLog, PartitionId, Stream};
use aqs_projector::checkpoint::CheckpointStore;
use aqs_projector::metrics::ProjectorMetrics;
use aqs_projector::runner::{Runner, RunnerSettings};
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{Store, WriterSettings};
use aqs_schemas::generator::{GeneratorConfig, generate};
use aqs_schemas::{Decoder, Event};
use aqs_testkit::unique_name;
use kafka_proxy::KafkaProxy;

const PARTITIONS: u32 = 2;
const WITHIN: Duration = Duration::from_secs(90);

/// Waits until `done` holds, or fails with what `describe` says.
fn wait_for(what: &str, done: impl Fn() -> bool, describe: impl Fn() -> String) {
    let deadline = Instant::now() + WITHIN;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: {}", describe());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A small generated month, split in two: what is in the log before the client hangs, and
/// what comes after (half of the reference events and a part of the agents' events).
fn month() -> (Vec<Event>, Vec<Event>) {
    let config = GeneratorConfig::new(20_261_206, 12, "2026-11-01".parse().expect("date"), 10);
    let mut bytes = Vec::new();
    generate(&config, &mut bytes).expect("generate");
    let events: Vec<Event> = bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| Decoder::standard().decode(line).expect("valid"))
        .collect();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let (mut references, mut others) = (0, 0);
    for event in events {
        let later = match PartitionId::of(&event, PARTITIONS).stream {
            Stream::Reference => {
                references += 1;
                references % 2 == 0
            }
            Stream::Events => {
                others += 1;
                others % 3 == 0
            }
        };
        if later {
            after.push(event);
        } else {
            before.push(event);
        }
    }
    (before, after)
}

struct Projector {
    metrics: Arc<ProjectorMetrics>,
    shutdown: Arc<AtomicBool>,
    running: std::thread::JoinHandle<
        Result<aqs_projector::runner::RunSummary, aqs_projector::runner::ProjectorError>,
    >,
    store: std::path::PathBuf,
}

fn start(config: &KafkaConfig, dir: &std::path::Path, until_idle: bool) -> Projector {
    std::fs::create_dir_all(dir).expect("projector dir");
    let metrics = Arc::new(ProjectorMetrics::default());
    let store = dir.join("ledgers.db");
    let settings = RunnerSettings {
        partitions: PARTITIONS,
        until_idle,
        ..RunnerSettings::default()
    };
    let mut runner = Runner::new(
        KafkaConsumer::connect(config).expect("consumer"),
        vec![Store::new(
            SqliteSink::open(&store).expect("store"),
            WriterSettings::default(),
        )],
        CheckpointStore::open(&dir.join("projector.db")).expect("checkpoints"),
        settings,
        Arc::clone(&metrics),
    )
    .expect("runner");
    let shutdown = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&shutdown);
    let running = std::thread::spawn(move || runner.run(&stop));
    Projector {
        metrics,
        shutdown,
        running,
        store,
    }
}

impl Projector {
    fn applied(&self) -> u64 {
        self.metrics.events_applied.load(Ordering::Relaxed)
            + self.metrics.events_duplicate.load(Ordering::Relaxed)
            + self.metrics.events_conflict.load(Ordering::Relaxed)
            + self.metrics.events_retracted.load(Ordering::Relaxed)
            + self.metrics.events_no_effect.load(Ordering::Relaxed)
            + self.metrics.events_overflow.load(Ordering::Relaxed)
            + self.metrics.events_rejected.load(Ordering::Relaxed)
    }

    fn stop(self) -> String {
        self.shutdown.store(true, Ordering::SeqCst);
        self.running
            .join()
            .expect("join")
            .expect("runner stopped cleanly");
        SqliteSink::open(&self.store)
            .expect("store")
            .dump()
            .expect("dump")
    }
}

/// The whole scenario, with the client named `client_id` hung once the first part is read.
fn a_hung_client_is_noticed_made_again_and_the_ledgers_end_right(client_id: &str) {
    // The watchdog's warnings and the clients made again, for a failure's output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "aqs_eventlog=info,librdkafka=warn".into()),
        )
        .with_test_writer()
        .try_init();
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let topics = KafkaConfig {
        events_topic: unique_name("aqs-test-read-stall-events", '-'),
        reference_topic: unique_name("aqs-test-read-stall-reference", '-'),
        dead_letter_topic: unique_name("aqs-test-read-stall-dead-letter", '-'),
        events_partitions: PARTITIONS,
        projector_group: kafka.fresh_group(),
        // Far below the default (30 s), to keep the test short.
        read_stall_seconds: 3,
        session_timeout_ms: 6_000,
        ..KafkaConfig::new(kafka.brokers())
    };
    let log = KafkaLog::connect(&topics).expect("topics created");
    let (before, after) = month();
    let total = (before.len() + after.len()) as u64;
    log.append(&before).expect("first part appended");

    let proxy = KafkaProxy::start(kafka.brokers()).expect("proxy");
    let through_proxy = KafkaConfig {
        brokers: Some(proxy.address().to_string()),
        ..topics.clone()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let projector = start(&through_proxy, &dir.path().join("watched"), false);
    wait_for(
        "the first part folded",
        || projector.applied() == before.len() as u64 && projector.metrics.health.check().is_ok(),
        || {
            format!(
                "{} of {} folded; {:?}",
                projector.applied(),
                before.len(),
                projector.metrics.health.check()
            )
        },
    );

    let hung = proxy.hang_connections_of(client_id);
    assert!(hung > 0, "no connection of {client_id} to hang");
    log.append(&after).expect("second part appended");

    // Readiness names the stall (before the watchdog: never; the projector stayed ready).
    let check = || projector.metrics.health.check();
    wait_for(
        "readiness reports reading stuck",
        || check().is_err_and(|reason| reason.contains("reading stuck since")),
        || format!("{} of {total} folded; {:?}", projector.applied(), check()),
    );
    let reason = check().expect_err("not ready");
    assert!(
        reason.contains("while the brokers answer") || reason.contains("readable up to"),
        "{reason}"
    );

    // The client is made again and reads on: every event folded, ready again.
    wait_for(
        "every event folded and ready again",
        || projector.applied() == total && check().is_ok(),
        || format!("{} of {total} folded; {:?}", projector.applied(), check()),
    );
    let text = projector.metrics.render();
    let counted = |line: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let stalls = counted("aqs_projector_log_read_stalls_total{kind=\"partition\"}")
        + counted("aqs_projector_log_read_stalls_total{kind=\"group\"}")
        + counted("aqs_projector_log_read_stalls_total{kind=\"no_broker\"}");
    assert!(stalls >= 1.0, "{text}");
    assert!(
        counted("aqs_projector_log_client_rebuilds_total") >= 1.0,
        "{text}"
    );
    assert_eq!(counted("aqs_projector_log_read_stalled"), 0.0, "{text}");
    let watched = projector.stop();
    drop(proxy);

    // A clean rebuild of the same topics, straight to the broker, in a group of its own.
    let clean = KafkaConfig {
        projector_group: kafka.fresh_group(),
        ..topics
    };
    let rebuilt = start(&clean, &dir.path().join("clean"), true);
    wait_for(
        "the clean rebuild read everything",
        || rebuilt.running.is_finished(),
        || format!("{} of {total} folded", rebuilt.applied()),
    );
    assert_eq!(rebuilt.applied(), total);
    let clean_dump = rebuilt.stop();
    assert!(
        watched == clean_dump,
        "the ledgers of the projector whose client hung differ from a clean rebuild \
         ({} lines where the rebuild has {})",
        watched.lines().count(),
        clean_dump.lines().count()
    );
}

#[test]
fn a_hung_reference_client_is_noticed_and_made_again() {
    a_hung_client_is_noticed_made_again_and_the_ledgers_end_right("aqs-projector-reference");
}

#[test]
fn a_hung_group_client_is_noticed_and_made_again() {
    a_hung_client_is_noticed_made_again_and_the_ledgers_end_right("aqs-projector");
}
