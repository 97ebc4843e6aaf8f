//! The Kafka topic table of deploy/README.md ("## Kafka topics") against the code: the names
//! and partitions against `KafkaConfig`'s defaults, and — on a real Kafka — the partitions,
//! settings and record keys of the topics the event log creates and writes with those
//! defaults (only the names are fresh, so that tests do not share topics).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aqs_eventlog::kafka::is_release_record;
use aqs_eventlog::kafka::{
    DEFAULT_DEAD_LETTER_TOPIC, DEFAULT_EVENTS_TOPIC, DEFAULT_REFERENCE_TOPIC, KafkaConfig, KafkaLog,
};
use aqs_eventlog::{DeadLetter, EventLog};
use aqs_schemas::partition::partition_for_key;
use aqs_schemas::{Decoder, Event};
use aqs_testkit::{KafkaEnv, block_on, unique_name};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

/// One row of the table.
#[derive(Debug)]
struct Row {
    topic: String,
    partitions: u32,
    /// The first `code` of the key cell, or `None` when the cell says the records have none.
    key: Option<String>,
    /// Every `name=value` of the settings cell.
    settings: BTreeMap<String, String>,
}

fn readme() -> String {
    let path = PathBuf::from(manifest_dir()).join("deploy/README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `code` spans of a Markdown cell.
fn code_spans(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// The rows of the table under "## Kafka topics", in order.
fn topic_table() -> Vec<Row> {
    let text = readme();
    let section = text
        .split("\n## Kafka topics\n")
        .nth(1)
        .expect("deploy/README.md has a section \"## Kafka topics\"");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut lines = section.lines().skip_while(|line| !line.starts_with('|'));
    let header: Vec<&str> = cells(lines.next().expect("the topic table"));
    assert_eq!(
        header,
        ["topic", "partitions", "key", "holds", "settings"],
        "the columns of the topic table"
    );
    lines
        .skip(1)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells = cells(line);
            let topic = code_spans(cells[0]).first().map(|t| (*t).to_owned());
            let key = match cells[2] {
                none if none.starts_with("none") => None,
                cell => Some(
                    (*code_spans(cell)
                        .first()
                        .unwrap_or_else(|| panic!("key cell {cell:?}: a `name` or none")))
                    .to_owned(),
                ),
            };
            let settings = code_spans(cells[4])
                .into_iter()
                .filter_map(|span| span.split_once('='))
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect();
            Row {
                topic: topic.unwrap_or_else(|| panic!("topic cell {:?}", cells[0])),
                partitions: cells[1]
                    .parse()
                    .unwrap_or_else(|_| panic!("partitions cell {:?} is a number", cells[1])),
                key,
                settings,
            }
        })
        .collect()
}

fn cells(line: &str) -> Vec<&str> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect()
}

/// The rows for the events, reference and dead-letter topics, in that order.
fn rows_by_stream() -> [Row; 3] {
    let rows = topic_table();
    let names: Vec<&str> = rows.iter().map(|row| row.topic.as_str()).collect();
    assert_eq!(
        names,
        [
            DEFAULT_EVENTS_TOPIC,
            DEFAULT_REFERENCE_TOPIC,
            DEFAULT_DEAD_LETTER_TOPIC
        ],
        "the topic table lists the default topics, in the order events, reference, dead letters"
    );
    rows.try_into().expect("three rows")
}

#[test]
fn the_topic_table_names_the_defaults_of_the_log() {
    let defaults = KafkaConfig::default();
    let [events, reference, dead_letter] = rows_by_stream();
    assert_eq!(events.topic, defaults.events_topic);
    assert_eq!(reference.topic, defaults.reference_topic);
    assert_eq!(dead_letter.topic, defaults.dead_letter_topic);
    assert_eq!(
        events.partitions, defaults.events_partitions,
        "partitions of {} (AQS_EVENTS_PARTITIONS)",
        events.topic
    );
    assert_eq!(
        dead_letter.settings.get("retention.ms"),
        Some(&defaults.dead_letters.retention_ms()),
        "retention of the dead letters (AQS_DEAD_LETTER_MAX_AGE_DAYS)"
    );
    assert_eq!(
        dead_letter.settings.get("retention.bytes"),
        Some(&defaults.dead_letters.max_bytes.to_string()),
        "size of the dead letters (AQS_DEAD_LETTER_MAX_BYTES)"
    );
    for row in [&events, &reference] {
        assert_eq!(
            row.settings.get("retention.ms").map(String::as_str),
            Some("-1"),
            "{} is kept forever",
            row.topic
        );
    }
}

/// The topic table against topics the log created with the default settings (fresh names):
/// partitions, every setting the table states, and the keys of records written to them.
#[test]
fn the_topic_table_matches_the_topics_the_log_creates_and_writes() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let prefix = unique_name("aqs-topics", '-');
    let config = KafkaConfig {
        events_topic: format!("{prefix}-events"),
        reference_topic: format!("{prefix}-reference"),
        dead_letter_topic: format!("{prefix}-dead-letter"),
        projector_group: format!("{prefix}-projector"),
        ..KafkaConfig::new(kafka.brokers())
    };
    let log = KafkaLog::connect(&config).expect("connecting creates the topics");
    let agent_event = event(
        r#"{"event_id":"topics-1","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:30:00+08:00","source":"mobile-worklog","agent_id":"A000042","payload":{"outlet_id":"O1","purpose":"promotion"}}"#,
    );
    let reference_event = event(
        r#"{"event_id":"topics-2","type":"team_defined","schema_version":1,"occurred_at":"2026-11-01T08:00:00+08:00","source":"hr-roster","payload":{"team_id":"T01","team_name":"East 1","branch_id":"B01","region_id":"R01"}}"#,
    );
    log.append(&[agent_event, reference_event])
        .expect("appended");
    log.dead_letter(&[
        DeadLetter {
            origin: "test".into(),
            event_id: Some("refused-1".into()),
            body: b"{}".to_vec(),
            reason: "test".into(),
        },
        DeadLetter {
            origin: "test".into(),
            event_id: None,
            body: b"not json".to_vec(),
            reason: "test".into(),
        },
    ])
    .expect("dead letters");

    let [events, reference, dead_letter] = rows_by_stream();
    let created = [
        (&events, &config.events_topic),
        (&reference, &config.reference_topic),
        (&dead_letter, &config.dead_letter_topic),
    ];
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create().expect("admin");
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    let mut problems = Vec::new();
    for (row, topic) in created {
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().len());
        if partitions != Some(row.partitions as usize) {
            problems.push(format!(
                "{}: the table says {} partitions, the log created {partitions:?}",
                row.topic, row.partitions
            ));
        }
        let specifier = [ResourceSpecifier::Topic(topic)];
        let described = block_on(admin.describe_configs(&specifier, &AdminOptions::new()))
            .expect("describe configs")
            .into_iter()
            .next()
            .expect("one topic")
            .expect("the topic's settings");
        assert!(
            row.settings.contains_key("retention.ms")
                && row.settings.contains_key("retention.bytes"),
            "{}: the table states its retention.ms and retention.bytes",
            row.topic
        );
        for (name, documented) in &row.settings {
            let actual = described.get(name).and_then(|entry| entry.value.clone());
            if actual.as_deref() != Some(documented.as_str()) {
                problems.push(format!(
                    "{}: the table says {name}={documented}, the log created {name}={actual:?}",
                    row.topic
                ));
            }
        }
    }

    let keys = |topic: &str| -> Vec<(i32, Option<String>)> { records(&kafka, topic, &metadata) };
    let written = keys(&config.events_topic);
    let expected_partition = partition_for_key("A000042", config.events_partitions) as i32;
    if written != [(expected_partition, Some("A000042".to_owned()))] {
        problems.push(format!(
            "{}: an event of agent A000042 was written as {written:?}, not keyed by the \
             table's {:?} on partition {expected_partition} (murmur2 of the agent id)",
            events.topic, events.key
        ));
    }
    if events.key.as_deref() != Some("agent_id") {
        problems.push(format!(
            "{}: key {:?}, not agent_id",
            events.topic, events.key
        ));
    }
    let written = keys(&config.reference_topic);
    if written != [(0, None)] || reference.key.is_some() {
        problems.push(format!(
            "{}: the table says key {:?}, a team_defined event was written as {written:?}",
            reference.topic, reference.key
        ));
    }
    let written = keys(&config.dead_letter_topic);
    if written != [(0, Some("refused-1".to_owned())), (0, None)]
        || dead_letter.key.as_deref() != Some("event_id")
    {
        problems.push(format!(
            "{}: the table says key {:?}, dead letters of event refused-1 and of an unreadable \
             body were written as {written:?}",
            dead_letter.topic, dead_letter.key
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn event(json: &str) -> Event {
    Decoder::standard()
        .decode(json.as_bytes())
        .unwrap_or_else(|e| panic!("a valid event: {e}"))
}

/// Every record of a topic as (partition, key), read from the start of each partition.
fn records(
    kafka: &KafkaEnv,
    topic: &str,
    metadata: &rdkafka::metadata::Metadata,
) -> Vec<(i32, Option<String>)> {
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len() as i32);
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", kafka.fresh_group())
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(topic, partition, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&list).expect("assign");
    let mut found = Vec::new();
    let mut at_end = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while at_end < partitions {
        assert!(Instant::now() < deadline, "{topic}: not read to its end");
        match consumer.poll(Duration::from_millis(200)) {
            // Not events: ingest's writers' release records.
            Some(Ok(message)) if is_release_record(&message) => {}
            Some(Ok(message)) => found.push((
                message.partition(),
                message
                    .key()
                    .map(|key| String::from_utf8_lossy(key).into_owned()),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => at_end += 1,
            Some(Err(error)) => panic!("{topic}: {error}"),
            None => {}
        }
    }
    found
}

/// The package's folder, read when the test runs (cargo sets it) rather than when it was built.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
