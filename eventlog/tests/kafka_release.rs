//! Release transactions of the transactional writer against a real broker (skipped loudly
//! without `AQS_KAFKA_BROKERS`, a failure in CI): after a disturbance every writer commits a
//! marked record on every partition, every reader of the project skips it, and a partition
//! held back longer than a transaction may last calls for releases on its own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aqs_eventlog::kafka::{KafkaConfig, KafkaConsumer, RELEASE_HEADER, TransactionalKafkaLog};
use aqs_eventlog::{Fate, LogConsumer, LogRecord, Positions, Probe, TransactionalLog};
use aqs_schemas::Event;
use aqs_testkit::{KafkaEnv, unique_name};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

#[path = "support/events.rs"]
mod events;
use events::visits_and_an_outlet;
#[path = "support/reading.rs"]
mod reading;
#[path = "support/setup.rs"]
mod setup;

/// Fresh topics and group on the test broker.
fn config(kafka: &KafkaEnv) -> KafkaConfig {
    setup::fresh_topics(kafka.brokers(), "release", PARTITIONS, kafka.fresh_group())
}

/// Visits of six agents (spread over the partitions) and one outlet, ids `<prefix>-<n>`.
fn events(prefix: &str) -> Vec<Event> {
    visits_and_an_outlet(prefix, 6)
}

const WITHIN: Duration = Duration::from_secs(30);
const PARTITIONS: u32 = 3;

/// Appends `events` in one committed transaction; a probe of its first record.
fn append(
    log: &TransactionalKafkaLog,
    events: &[Event],
) -> (aqs_eventlog::TransactionWriter, Probe) {
    let mut transaction = log.begin(Instant::now() + WITHIN).expect("begin");
    let writer = transaction.writer().clone();
    let positions = transaction.append(events).expect("append");
    transaction.commit().expect("commit");
    let probe = Probe {
        position: positions[0],
        source: events[0].source.clone(),
        event_id: events[0].event_id.clone(),
    };
    (writer, probe)
}

/// Calls `release_held` until it has released `writers` writers (the first calls may find
/// the watch's probe not done yet); how many it released in all.
fn release(log: &TransactionalKafkaLog, writers: usize) -> usize {
    let deadline = Instant::now() + WITHIN;
    let mut released = 0;
    while released < writers && Instant::now() < deadline {
        released += log
            .release_held(Instant::now() + WITHIN)
            .expect("release_held");
        std::thread::sleep(Duration::from_millis(100));
    }
    released
}

/// A release record as a raw reader sees it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    topic: String,
    partition: i32,
    writer: String,
    empty: bool,
}

/// Every release record of the two topics, read raw (`read_committed`) to their ends.
fn release_records(kafka: &KafkaEnv, config: &KafkaConfig) -> Vec<Seen> {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", kafka.fresh_group())
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    let partitions = (0..PARTITIONS as i32)
        .map(|partition| (config.events_topic.clone(), partition))
        .chain(std::iter::once((config.reference_topic.clone(), 0)));
    for (topic, partition) in partitions {
        list.add_partition_offset(&topic, partition, Offset::Beginning)
            .expect("partition");
        // With read_committed: the last stable offset.
        let (_, end) = consumer
            .fetch_watermarks(&topic, partition, WITHIN)
            .expect("watermarks");
        ends.insert((topic, partition), end);
    }
    consumer.assign(&list).expect("assign");
    let mut seen = Vec::new();
    let deadline = Instant::now() + WITHIN;
    loop {
        let positions = consumer.position().expect("position");
        let done = ends.iter().all(|((topic, partition), end)| {
            positions
                .find_partition(topic, *partition)
                .is_some_and(|element| matches!(element.offset(), Offset::Offset(at) if at >= *end))
        });
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "topics not read to their ends");
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => {
                let Some(headers) = message.headers() else {
                    continue;
                };
                for header in headers.iter().filter(|h| h.key == RELEASE_HEADER) {
                    seen.push(Seen {
                        topic: message.topic().to_owned(),
                        partition: message.partition(),
                        writer: String::from_utf8_lossy(header.value.unwrap_or_default())
                            .into_owned(),
                        empty: message.payload().unwrap_or_default().is_empty()
                            && message.key().is_none(),
                    });
                }
            }
            Some(Err(error)) => panic!("reading: {error}"),
        }
    }
    seen.sort();
    seen
}

fn id_counts(records: &[LogRecord]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for record in records {
        let value: serde_json::Value = serde_json::from_slice(&record.bytes)
            .unwrap_or_else(|error| panic!("not an event at {record:?}: {error}"));
        *counts
            .entry(value["event_id"].as_str().expect("event_id").to_owned())
            .or_default() += 1;
    }
    counts
}

#[test]
fn after_a_disturbance_every_writer_commits_a_release_that_readers_skip() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    assert_eq!(
        aqs_testkit::RELEASE_HEADER,
        RELEASE_HEADER,
        "the test kit skips what the writer marks"
    );
    let config = config(&kafka);
    let prefix = unique_name("aqs-test-release", '-');
    let log = TransactionalKafkaLog::connect(&config, &prefix, 2).expect("connect");

    let first = events("r1");
    let (writer, probe) = append(&log, &first);
    // Undisturbed: nothing is due.
    for _ in 0..5 {
        assert_eq!(
            log.release_held(Instant::now() + WITHIN).expect("release"),
            0
        );
    }
    assert_eq!(log.releases().committed, 0);

    log.note_disturbance("a test");
    assert_eq!(release(&log, 2), 2, "both writers release");
    assert_eq!(
        log.release_held(Instant::now() + WITHIN).expect("release"),
        0,
        "a release covers the disturbances seen before it"
    );
    let second = events("r2");
    append(&log, &second);
    // A release last, so that the readers end on one.
    log.note_disturbance("a second test");
    assert_eq!(release(&log, 2), 2);
    assert_eq!(log.releases().committed, 4);
    assert_eq!(log.releases().failed, 0);

    // Raw: two releases per writer on every partition of both topics, no key, no value.
    let mut expected = Vec::new();
    for name in log.writer_names() {
        for _ in 0..2 {
            for partition in 0..PARTITIONS as i32 {
                expected.push(Seen {
                    topic: config.events_topic.clone(),
                    partition,
                    writer: name.clone(),
                    empty: true,
                });
            }
            expected.push(Seen {
                topic: config.reference_topic.clone(),
                partition: 0,
                writer: name.clone(),
                empty: true,
            });
        }
    }
    expected.sort();
    assert_eq!(release_records(&kafka, &config), expected);

    // The projector's reader hands out the events only, and reads to a lag of zero.
    let mut consumer = KafkaConsumer::connect(&config).expect("consumer");
    consumer.seek(&Positions::new()).expect("seek");
    let read = reading::read_to_the_end(&mut consumer, &mut Positions::new(), WITHIN);
    let expected_ids: BTreeMap<String, usize> = first
        .iter()
        .chain(&second)
        .map(|event| (event.event_id.clone(), 1))
        .collect();
    assert_eq!(id_counts(&read), expected_ids);

    // The test kit's reader skips them too.
    let events_read = kafka.read_committed(&config.events_topic, WITHIN).len()
        + kafka.read_committed(&config.reference_topic, WITHIN).len();
    assert_eq!(events_read, first.len() + second.len());

    // The fate reader still finds the first batch committed, releases after it.
    let fate = log
        .fate(&writer, &probe, Instant::now() + WITHIN)
        .expect("fate");
    assert_eq!(fate, Fate::Committed);
}

#[test]
fn a_partition_held_longer_than_a_transaction_may_last_calls_for_releases() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    // The topics are made with the usual timeout: one second is too short for a broker
    // that has just started.
    let topics = config(&kafka);
    drop(
        TransactionalKafkaLog::connect(&topics, &unique_name("aqs-test-held-setup", '-'), 1)
            .expect("topics"),
    );
    // A transaction may last 2 s with this message timeout.
    let config = KafkaConfig {
        message_timeout_ms: 1_000,
        ..topics
    };
    let log = TransactionalKafkaLog::connect(&config, &unique_name("aqs-test-held", '-'), 1)
        .expect("connect");
    append(&log, &events("h1"));
    let settled = Instant::now() + Duration::from_secs(3);
    while Instant::now() < settled {
        log.release_held(Instant::now() + WITHIN).expect("release");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        log.releases().committed,
        0,
        "nothing held, nothing released"
    );

    // Another producer holds partition 1 in a transaction it keeps open.
    let holder: ThreadedProducer<DefaultProducerContext> = kafka
        .client_config()
        .set("transactional.id", unique_name("aqs-test-holder", '-'))
        .set("transaction.timeout.ms", "60000")
        .create()
        .expect("holder");
    holder.init_transactions(WITHIN).expect("init");
    holder.begin_transaction().expect("begin");
    holder
        .send(
            BaseRecord::<(), str>::to(&config.events_topic)
                .partition(1)
                .payload("held"),
        )
        .map_err(|(error, _)| error)
        .expect("send");
    holder.flush(WITHIN).expect("flush");

    let deadline = Instant::now() + WITHIN;
    while log.releases().committed == 0 {
        assert!(
            Instant::now() < deadline,
            "no release while partition 1 stayed held"
        );
        log.release_held(Instant::now() + WITHIN).expect("release");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(log.releases().committed, 1, "the one writer released once");
    holder.abort_transaction(WITHIN).expect("abort");
}
