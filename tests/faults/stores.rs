//! What a scenario compares with the clean run: each ledger store (its canonical dump and
//! the KPIs `aqs analytics` computes on it), and the Kafka topics as a reader of them sees
//! them (`read_committed`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aqs_eventlog::DeadLetter;
use aqs_eventlog::kafka::is_release_record;
use aqs_projector::sink::clickhouse::ClickHouseSink;
use aqs_warehouse::{BlockingClient, ClickHouseConfig};
use polars::prelude::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::common::aqs;
use crate::month::{AS_OF, PARTITIONS, PROBE_AGENT};

/// A ledger store a scenario's pipeline writes.
#[derive(Debug, Clone)]
pub enum Store {
    /// `ledgers.db` in a data folder.
    Embedded { data_dir: PathBuf, by: &'static str },
    /// A ClickHouse database.
    ClickHouse {
        config: ClickHouseConfig,
        by: &'static str,
    },
}

impl Store {
    pub fn name(&self) -> String {
        match self {
            Store::Embedded { by, .. } => format!("embedded ({by})"),
            Store::ClickHouse { by, .. } => format!("ClickHouse ({by})"),
        }
    }

    /// The canonical dump, or `None` while the store cannot be read.
    pub fn dump(&self) -> Option<String> {
        match self {
            Store::Embedded { data_dir, .. } => aqs_projector::sink::sqlite::SqliteSink::open(
                &aqs_tables::DataDir::new(data_dir).ledgers(),
            )
            .ok()?
            .dump()
            .ok(),
            Store::ClickHouse { config, .. } => ClickHouseSink::connect(config).ok()?.dump().ok(),
        }
    }

    /// Whether the probe's visit shows in the store.
    pub fn shows_probe(&self) -> bool {
        match self {
            Store::Embedded { data_dir, .. } => {
                let Ok(connection) = rusqlite::Connection::open_with_flags(
                    aqs_tables::DataDir::new(data_dir).ledgers(),
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                ) else {
                    return false;
                };
                connection
                    .query_row(
                        "SELECT COALESCE(SUM(visits), 0) FROM ledger_agent_outlet_day WHERE agent_id = ?1",
                        [PROBE_AGENT],
                        |row| row.get::<_, i64>(0),
                    )
                    .is_ok_and(|visits| visits > 0)
            }
            Store::ClickHouse { config, .. } => {
                let Ok(client) = BlockingClient::new(config) else {
                    return false;
                };
                client
                    .run_within(
                        Duration::from_secs(2),
                        client
                            .client()
                            .query(
                                "SELECT count() FROM ledger_agent_outlet_day FINAL \
                                 WHERE agent_id = ? AND visits > 0",
                            )
                            .bind(PROBE_AGENT)
                            .fetch_one::<u64>(),
                    )
                    .is_ok_and(|rows| rows > 0)
            }
        }
    }

    /// The KPIs as of [`AS_OF`] computed by `aqs analytics` on this store (for ClickHouse
    /// also written to its `kpi` table, which is read back and must hold the same).
    pub fn kpis(&self, out: &Path) -> DataFrame {
        match self {
            Store::Embedded { data_dir, .. } => kpis_of_embedded(data_dir, out),
            Store::ClickHouse { config, .. } => {
                let mut analytics = aqs(out);
                with_clickhouse(&mut analytics, config);
                analytics
                    .env("AQS_EVENTS_PARTITIONS", PARTITIONS)
                    .args(["analytics", "--as-of", AS_OF])
                    .arg("--out")
                    .arg(out);
                crate::common::run_ok(analytics);
                let file = read_parquet(
                    &aqs_tables::KpiFiles::new(out).file(AS_OF.parse().expect("as-of date")),
                );
                let table = aqs_tables::kpi::read_kpis(config, AS_OF.parse().expect("as-of date"))
                    .expect("reading the kpi table");
                assert_same_frame(&table, &file, "the kpi table vs the KPI file of its run");
                file
            }
        }
    }
}

/// `aqs analytics --as-of AS_OF --out OUT` over the embedded ledgers of `data_dir`.
pub fn kpis_of_embedded(data_dir: &Path, out: &Path) -> DataFrame {
    let mut analytics = aqs(data_dir);
    analytics
        .args(["analytics", "--as-of", AS_OF])
        .arg("--out")
        .arg(out);
    crate::common::run_ok(analytics);
    read_parquet(&aqs_tables::KpiFiles::new(out).file(AS_OF.parse().expect("as-of date")))
}

/// The `AQS_CLICKHOUSE_*` variables for `config`.
pub fn with_clickhouse(command: &mut std::process::Command, config: &ClickHouseConfig) {
    command
        .env(
            "AQS_CLICKHOUSE_URL",
            config.url.as_deref().unwrap_or_default(),
        )
        .env("AQS_CLICKHOUSE_USER", &config.user)
        .env("AQS_CLICKHOUSE_PASSWORD", &config.password)
        .env("AQS_CLICKHOUSE_DATABASE", &config.database);
}

fn read_parquet(path: &Path) -> DataFrame {
    ParquetReader::new(
        std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .finish()
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Fails with the first cell where two KPI tables differ.
pub fn assert_same_frame(actual: &DataFrame, expected: &DataFrame, what: &str) {
    if actual.equals_missing(expected) {
        return;
    }
    let difference = if actual.get_column_names() != expected.get_column_names() {
        format!(
            "columns {:?} vs {:?}",
            actual.get_column_names(),
            expected.get_column_names()
        )
    } else if actual.height() != expected.height() {
        format!("{} rows vs {}", actual.height(), expected.height())
    } else {
        actual
            .columns()
            .iter()
            .zip(expected.columns())
            .find_map(|(a, b)| {
                (0..actual.height()).find_map(|row| {
                    let (x, y) = (a.get(row).ok()?, b.get(row).ok()?);
                    (x != y).then(|| {
                        let key = |name: &str| {
                            actual
                                .column(name)
                                .ok()
                                .and_then(|c| c.get(row).ok())
                                .map(|v| v.to_string())
                                .unwrap_or_default()
                        };
                        format!(
                            "column {} of {} {} {} {}: {x} vs {y}",
                            a.name(),
                            key("scope"),
                            key("scope_id"),
                            key("period"),
                            key("period_start")
                        )
                    })
                })
            })
            .unwrap_or_else(|| "types differ".to_owned())
    };
    panic!("{what}: {difference}");
}

/// What the topics of a scenario hold, read from the start with `read_committed`.
#[derive(Debug, Default)]
pub struct TopicContents {
    /// Records of the events and reference topics (events; release records aside).
    pub records: u64,
    /// Release records of ingest's writers (not events; every reader skips them).
    pub releases: u64,
    /// How often each identity (`source`, `event_id`) is in them, with the bodies.
    pub by_identity: HashMap<(String, String), Vec<serde_json::Value>>,
    pub dead_letters: Vec<DeadLetter>,
}

impl TopicContents {
    /// Records beyond the first of their identity.
    pub fn repeats(&self) -> u64 {
        self.by_identity
            .values()
            .map(|bodies| bodies.len() as u64 - 1)
            .sum()
    }
}

/// Reads every partition of the three topics from offset 0 to its end.
pub fn read_topics(brokers: &str, topics: &crate::pipeline::Topics) -> TopicContents {
    let consumer: BaseConsumer = aqs_testkit::client_config(brokers)
        .set(
            "group.id",
            aqs_testkit::unique_name("aqs-fault-reader", '-'),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("kafka reader");
    let names = [&topics.events, &topics.reference, &topics.dead_letters];
    let mut ends: HashMap<(String, i32), i64> = HashMap::new();
    {
        let mut assignment = TopicPartitionList::new();
        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .expect("kafka metadata");
        for topic in metadata.topics() {
            if !names.iter().any(|name| *name == topic.name()) {
                continue;
            }
            for partition in topic.partitions() {
                let (_, high) = consumer
                    .fetch_watermarks(topic.name(), partition.id(), Duration::from_secs(10))
                    .expect("watermarks");
                ends.insert((topic.name().to_owned(), partition.id()), high);
                assignment
                    .add_partition_offset(topic.name(), partition.id(), Offset::Beginning)
                    .expect("assign");
            }
        }
        consumer.assign(&assignment).expect("assign");
    }
    assert_eq!(
        ends.keys()
            .map(|(t, _)| t)
            .collect::<std::collections::HashSet<_>>()
            .len(),
        3,
        "the three topics exist: {names:?}"
    );
    let mut contents = TopicContents::default();
    let mut positions: HashMap<(String, i32), i64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = ends
            .iter()
            .all(|(key, end)| *end == 0 || positions.get(key).is_some_and(|p| p >= end));
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reading the topics took too long"
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            // Transaction markers are no messages: the position says how far it got.
            let assignment = consumer.position().expect("position");
            for element in assignment.elements() {
                if let Offset::Offset(offset) = element.offset() {
                    positions.insert((element.topic().to_owned(), element.partition()), offset);
                }
            }
            continue;
        };
        let message = message.expect("kafka message");
        positions.insert(
            (message.topic().to_owned(), message.partition()),
            message.offset() + 1,
        );
        if is_release_record(&message) {
            contents.releases += 1;
            continue;
        }
        let payload = message.payload().unwrap_or_default();
        if message.topic() == topics.dead_letters {
            contents
                .dead_letters
                .push(serde_json::from_slice(payload).expect("a dead letter"));
            continue;
        }
        let body: serde_json::Value = serde_json::from_slice(payload).expect("an event");
        let identity = (
            body["source"].as_str().unwrap_or_default().to_owned(),
            body["event_id"].as_str().unwrap_or_default().to_owned(),
        );
        contents.records += 1;
        contents.by_identity.entry(identity).or_default().push(body);
    }
    contents
}

/// Per partition of the events and reference topics, the last stable offset (the end of what
/// `read_committed` readers see) and the high watermark, one line each.
pub fn stable_and_high(brokers: &str, topics: &crate::pipeline::Topics) -> String {
    let client = |isolation: &str| -> Option<BaseConsumer> {
        aqs_testkit::client_config(brokers)
            .set("isolation.level", isolation)
            .create()
            .ok()
    };
    let (Some(committed), Some(uncommitted)) =
        (client("read_committed"), client("read_uncommitted"))
    else {
        return "no Kafka client".to_owned();
    };
    let timeout = Duration::from_secs(10);
    let mut lines = Vec::new();
    let events_partitions: i32 = PARTITIONS.parse().unwrap_or(1);
    for (topic, partitions) in [(&topics.events, events_partitions), (&topics.reference, 1)] {
        for partition in 0..partitions {
            let stable = committed.fetch_watermarks(topic, partition, timeout);
            let high = uncommitted.fetch_watermarks(topic, partition, timeout);
            lines.push(format!(
                "{topic} [{partition}]: last stable offset {:?}, high watermark {:?}",
                stable.map(|(_, offset)| offset),
                high.map(|(_, offset)| offset)
            ));
        }
    }
    lines.join("\n")
}
