//! Lineage read from a real Kafka (skipped without `AQS_KAFKA_BROKERS`, a failure in CI),
//! on fresh topics written by ingest's transactional writer: the records of the agents asked
//! about and every reference record come back with the broker's timestamps, records of
//! aborted transactions never, a transaction still open past the end offset is not waited
//! for; a broker that does not answer is a clear error within the time limit.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aqs_eventlog::kafka::{KafkaConfig, KafkaHistory, TransactionalKafkaLog};
use aqs_eventlog::{LogError, TransactionalLog};
use aqs_explain::{LineageLog, Record};
use aqs_schemas::partition::partition_for_key;
use aqs_schemas::{Decoder, Event};
use aqs_testkit::unique_name;

const PARTITIONS: u32 = 3;
const WITHIN: Duration = Duration::from_secs(30);

fn config(brokers: &str) -> KafkaConfig {
    KafkaConfig {
        events_topic: unique_name("aqs-test-lineage-events", '-'),
        reference_topic: unique_name("aqs-test-lineage-reference", '-'),
        dead_letter_topic: unique_name("aqs-test-lineage-dead-letter", '-'),
        events_partitions: PARTITIONS,
        projector_group: unique_name("aqs-test-group", '-'),
        ..KafkaConfig::new(brokers)
    }
}

fn visit(id: &str, agent: &str) -> Event {
    let body = format!(
        r#"{{"event_id":"{id}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","agent_id":"{agent}","payload":{{"outlet_id":"O1","purpose":"training"}}}}"#
    );
    Decoder::standard()
        .decode(body.as_bytes())
        .expect("valid visit")
}

fn outlet(id: &str) -> Event {
    let body = format!(
        r#"{{"event_id":"{id}","type":"outlet_registered","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","payload":{{"outlet_id":"{id}","bank":"ICBC","name":"Outlet {id}","region_id":"R1"}}}}"#
    );
    Decoder::standard()
        .decode(body.as_bytes())
        .expect("valid outlet")
}

/// Visits of `agents`, one each, and an outlet; ids `<prefix>-<agent>` and `<prefix>-o`.
fn batch(prefix: &str, agents: &[String]) -> Vec<Event> {
    let mut events: Vec<Event> = agents
        .iter()
        .map(|agent| visit(&format!("{prefix}-{agent}"), agent))
        .collect();
    events.push(outlet(&format!("{prefix}-o")));
    events
}

/// Two agents on one partition (one asked about, one not) and one on another partition
/// (not asked about either: its partition is not read).
fn agents() -> (String, String, String) {
    let named = |i: usize| format!("A{i:04}");
    let asked = named(0);
    let partition = partition_for_key(&asked, PARTITIONS);
    let neighbour = (1..)
        .map(named)
        .find(|a| partition_for_key(a, PARTITIONS) == partition)
        .expect("an agent on the same partition");
    let elsewhere = (1..)
        .map(named)
        .find(|a| partition_for_key(a, PARTITIONS) != partition)
        .expect("an agent on another partition");
    (asked, neighbour, elsewhere)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// Event id → times read, with every record's timestamp.
fn read(log: &KafkaHistory, agents: &BTreeSet<String>) -> (BTreeMap<String, usize>, Vec<Record>) {
    let mut records = Vec::new();
    log.each_record_of(agents, &mut |record| records.push(record))
        .expect("lineage read");
    let mut ids = BTreeMap::new();
    for record in &records {
        let value: serde_json::Value = serde_json::from_slice(&record.bytes).expect("JSON");
        *ids.entry(value["event_id"].as_str().expect("id").to_owned())
            .or_default() += 1;
    }
    (ids, records)
}

fn ids(list: &[&str]) -> BTreeMap<String, usize> {
    list.iter().map(|id| ((*id).to_owned(), 1)).collect()
}

#[test]
fn the_agents_records_and_every_reference_record_come_back_committed_and_timed() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let config = config(kafka.brokers());
    let (asked, neighbour, elsewhere) = agents();
    let everyone = [asked.clone(), neighbour.clone(), elsewhere.clone()];
    let log = TransactionalKafkaLog::connect(&config, &unique_name("aqs-test-lineage", '-'), 2)
        .expect("connect");
    let soon = || Instant::now() + WITHIN;
    let before = now_ms();

    let mut transaction = log.begin(soon()).expect("begin");
    transaction.append(&batch("c1", &everyone)).expect("append");
    transaction.commit().expect("commit");
    let mut transaction = log.begin(soon()).expect("begin");
    transaction
        .append(&batch("aborted", &everyone))
        .expect("append");
    transaction.abort();
    let mut transaction = log.begin(soon()).expect("begin");
    transaction.append(&batch("c2", &everyone)).expect("append");
    transaction.commit().expect("commit");
    let after = now_ms();
    // Left open while lineage reads: past the end offset a read takes, never waited for.
    let mut open = log.begin(soon()).expect("begin");
    open.append(&batch("open", &everyone)).expect("append");

    let history = KafkaHistory::new(&config).expect("history");
    let wanted = BTreeSet::from([asked.clone()]);
    let (read_ids, records) = read(&history, &wanted);
    let c1 = format!("c1-{asked}");
    let c2 = format!("c2-{asked}");
    assert_eq!(read_ids, ids(&["c1-o", "c2-o", &c1, &c2]));
    for record in &records {
        let at = record.appended_at_ms.expect("a timestamp");
        assert!(
            (before..=after).contains(&at),
            "appended at {at}, not between {before} and {after}"
        );
    }

    // Once the open transaction commits, a new read sees it: it was only past the end.
    open.commit().expect("commit");
    let (read_ids, _) = read(
        &history,
        &BTreeSet::from([asked.clone(), elsewhere.clone()]),
    );
    let expected: Vec<String> = ["c1", "c2", "open"]
        .iter()
        .flat_map(|prefix| {
            [
                format!("{prefix}-o"),
                format!("{prefix}-{asked}"),
                format!("{prefix}-{elsewhere}"),
            ]
        })
        .collect();
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(read_ids, ids(&expected));
}

#[test]
fn a_broker_that_does_not_answer_is_a_clear_error_within_the_time_limit() {
    // A listener that takes connections and never answers: a hung broker.
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let address = listener.local_addr().expect("address");
    let held = std::thread::spawn(move || {
        let mut connections = Vec::new();
        for connection in listener.incoming().take(16) {
            connections.push(connection);
        }
    });
    let config = KafkaConfig {
        message_timeout_ms: 1_000,
        ..config(&address.to_string())
    };
    let history = KafkaHistory::new(&config).expect("history");
    let mut read = 0;
    let error = history
        .each_record_of(&BTreeSet::from(["A0001".to_owned()]), &mut |_| read += 1)
        .expect_err("no broker answers");
    assert_eq!(read, 0);
    let LogError::Unavailable(message) = &error else {
        panic!("not an unavailable log: {error:?}");
    };
    assert!(
        message.contains(&config.reference_topic) && message.contains(&address.to_string()),
        "{message}"
    );
    drop(held);
}
