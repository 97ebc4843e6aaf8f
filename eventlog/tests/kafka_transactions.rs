//! Transactional appends to Kafka against a real broker (skipped loudly without
//! `AQS_KAFKA_BROKERS`, a failure in CI): readers see committed batches once and aborted ones
//! never, a restarted writer decides what its predecessor left open, and the projector's
//! consumer reads past transaction markers to a lag of zero.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aqs_eventlog::kafka::{KafkaConfig, KafkaConsumer, TransactionalKafkaLog};
use aqs_eventlog::{
    Fate, LogConsumer, LogRecord, PartitionId, Positions, Probe, RecordPosition, TransactionalLog,
};
use aqs_schemas::Event;
use aqs_testkit::{KafkaEnv, unique_name};

#[path = "support/events.rs"]
mod events;
use events::visits_and_an_outlet;
#[path = "support/reading.rs"]
mod reading;
#[path = "support/setup.rs"]
mod setup;

/// Reads from `positions` to the end of the log (see `reading`).
fn read_to_the_end(consumer: &mut KafkaConsumer, positions: &mut Positions) -> Vec<LogRecord> {
    reading::read_to_the_end(consumer, positions, WITHIN)
}

/// Fresh topics and group on the test broker.
fn config(kafka: &KafkaEnv, partitions: u32) -> KafkaConfig {
    setup::fresh_topics(kafka.brokers(), "txn", partitions, kafka.fresh_group())
}

/// Visits of eight agents (spread over the partitions) and one outlet, ids `<prefix>-<n>`.
fn events(prefix: &str) -> Vec<Event> {
    visits_and_an_outlet(prefix, 8)
}

const WITHIN: Duration = Duration::from_secs(30);

fn probe(event: &Event, position: RecordPosition) -> Probe {
    Probe {
        position,
        source: event.source.clone(),
        event_id: event.event_id.clone(),
    }
}

fn id_counts(records: &[LogRecord]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for record in records {
        let value: serde_json::Value = serde_json::from_slice(&record.bytes).expect("JSON");
        *counts
            .entry(value["event_id"].as_str().expect("event_id").to_owned())
            .or_default() += 1;
    }
    counts
}

fn expected_ids(prefixes: &[&str]) -> BTreeMap<String, usize> {
    prefixes
        .iter()
        .flat_map(|prefix| events(prefix))
        .map(|event| (event.event_id, 1))
        .collect()
}

#[test]
fn committed_transactions_are_read_once_and_aborted_ones_never() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let config = config(&kafka, 3);
    let prefix = unique_name("aqs-test-writer", '-');
    let log = TransactionalKafkaLog::connect(&config, &prefix, 2).expect("connect");
    let soon = || Instant::now() + WITHIN;

    let first = events("c1");
    let mut transaction = log.begin(soon()).expect("begin");
    let writer = transaction.writer().clone();
    let positions = transaction.append(&first).expect("append");
    assert_eq!(positions.len(), first.len());
    transaction.commit().expect("commit");
    let committed_probe = probe(&first[0], positions[0]);

    let aborted = events("a1");
    let mut transaction = log.begin(soon()).expect("begin");
    let aborted_writer = transaction.writer().clone();
    let aborted_positions = transaction.append(&aborted).expect("append");
    transaction.abort();
    let aborted_probe = probe(&aborted[3], aborted_positions[3]);

    let mut transaction = log.begin(soon()).expect("begin");
    transaction.append(&events("a2")).expect("append");
    drop(transaction); // dropped open: aborted

    let mut transaction = log.begin(soon()).expect("begin");
    transaction.append(&events("c2")).expect("append");
    transaction.commit().expect("commit");

    let mut consumer = KafkaConsumer::connect(&config).expect("consumer");
    let mut read_positions = Positions::new();
    consumer.seek(&read_positions).expect("seek");
    let records = read_to_the_end(&mut consumer, &mut read_positions);
    assert_eq!(id_counts(&records), expected_ids(&["c1", "c2"]));

    assert_eq!(
        log.fate(&writer, &committed_probe, soon()).expect("fate"),
        Fate::Committed
    );
    assert_eq!(
        log.fate(&aborted_writer, &aborted_probe, soon())
            .expect("fate"),
        Fate::Aborted
    );

    // A consumer resuming where the first stopped (just before the last commit markers)
    // has nothing to read, and reads what comes next once.
    drop(consumer);
    let mut resumed = KafkaConsumer::connect(&config).expect("consumer");
    resumed.seek(&read_positions).expect("seek");
    assert!(read_to_the_end(&mut resumed, &mut read_positions).is_empty());
    let mut transaction = log.begin(soon()).expect("begin");
    transaction.append(&events("c3")).expect("append");
    transaction.commit().expect("commit");
    let more = read_to_the_end(&mut resumed, &mut read_positions);
    assert_eq!(id_counts(&more), expected_ids(&["c3"]));
    let partitions: Vec<PartitionId> = read_positions.keys().copied().collect();
    assert_eq!(
        partitions.len(),
        4,
        "three events partitions and the reference"
    );
}

#[test]
fn a_restarted_writer_decides_what_its_predecessor_left_open() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let config = config(&kafka, 2);
    let prefix = unique_name("aqs-test-writer", '-');
    let soon = || Instant::now() + WITHIN;
    let before = TransactionalKafkaLog::connect(&config, &prefix, 1).expect("connect");

    // Committed, but as if the writer had died before learning it.
    let kept = events("kept");
    let mut transaction = before.begin(soon()).expect("begin");
    let kept_writer = transaction.writer().clone();
    let kept_positions = transaction.append(&kept).expect("append");
    transaction.commit().expect("commit");

    // Written and left open, as by a writer killed before its commit.
    let open = events("open");
    let mut transaction = before.begin(soon()).expect("begin");
    let open_writer = transaction.writer().clone();
    let open_positions = transaction.append(&open).expect("append");

    // The same names started again: the open transaction is aborted by the coordinator.
    let after = TransactionalKafkaLog::connect(&config, &prefix, 1).expect("connect again");
    assert_eq!(after.writer_names(), before.writer_names());
    assert_eq!(
        after
            .fate(&open_writer, &probe(&open[0], open_positions[0]), soon())
            .expect("fate"),
        Fate::Aborted
    );
    assert_eq!(
        after
            .fate(&kept_writer, &probe(&kept[8], kept_positions[8]), soon())
            .expect("fate"),
        Fate::Committed
    );
    assert!(
        transaction.commit().is_err(),
        "a fenced writer cannot commit"
    );

    let mut transaction = after.begin(soon()).expect("begin");
    transaction.append(&events("new")).expect("append");
    transaction.commit().expect("commit");

    let mut consumer = KafkaConsumer::connect(&config).expect("consumer");
    let mut positions = Positions::new();
    consumer.seek(&positions).expect("seek");
    let records = read_to_the_end(&mut consumer, &mut positions);
    assert_eq!(id_counts(&records), expected_ids(&["kept", "new"]));
}
