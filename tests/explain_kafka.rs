//! The events behind a figure and what changed since the previous run with the pipeline on
//! real Kafka (skipped without `AQS_KAFKA_BROKERS`, a failure in CI): the month of
//! `support/explain.rs` posted through `aqs ingest` over HTTP onto fresh topics, the
//! projector on Kafka, the KPI job, then `aqs dashboard` reading the events back from Kafka,
//! once with the ledgers and KPIs in the data folder and once in ClickHouse (skipped
//! without `AQS_CLICKHOUSE_URL`). The dashboard's data folder holds no embedded log: the
//! events can only come from Kafka. The checks are `explain_api.rs`'s.

#[allow(dead_code)]
mod common;
#[path = "support/explain.rs"]
mod explain;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aqs_testkit::{ClickHouseEnv, KafkaEnv, unique_name};
use common::run_ok;
use explain::{FIRST_DAY, TODAY, YESTERDAY};
use serde_json::Value;

/// Events in one request to ingest.
const BATCH: usize = 500;

/// Where the pipeline keeps things: fresh topics, and a fresh database when on ClickHouse.
struct Stores {
    brokers: String,
    topics: [String; 3],
    group: String,
    clickhouse: Option<(ClickHouseEnv, String)>,
}

impl Stores {
    fn new(kafka: &KafkaEnv, clickhouse: Option<ClickHouseEnv>) -> Self {
        let prefix = unique_name("aqs-test-explain", '-');
        Self {
            brokers: kafka.brokers().to_owned(),
            topics: [
                format!("{prefix}.events"),
                format!("{prefix}.reference"),
                format!("{prefix}.dead-letter"),
            ],
            group: format!("{prefix}.projector"),
            clickhouse: clickhouse.map(|env| {
                let database = env.fresh_database_name();
                (env, database)
            }),
        }
    }

    /// `aqs` on `data_dir` with these stores.
    fn aqs(&self, data_dir: &Path) -> Command {
        let mut command = common::aqs(data_dir);
        command
            .env("AQS_KAFKA_BROKERS", &self.brokers)
            .env("AQS_EVENTS_TOPIC", &self.topics[0])
            .env("AQS_REFERENCE_TOPIC", &self.topics[1])
            .env("AQS_DEAD_LETTER_TOPIC", &self.topics[2])
            .env("AQS_EVENTS_PARTITIONS", "4")
            .env("AQS_PROJECTOR_GROUP", &self.group);
        if let Some((env, database)) = &self.clickhouse {
            command
                .env("AQS_CLICKHOUSE_URL", env.url())
                .env("AQS_CLICKHOUSE_USER", env.user())
                .env("AQS_CLICKHOUSE_PASSWORD", env.password())
                .env("AQS_CLICKHOUSE_DATABASE", database);
        }
        command
    }
}

/// `aqs ingest` on a free port, killed when dropped.
struct Ingest {
    child: Child,
    address: String,
}

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tokens file granting every source of `lines` everything; the plain token by source.
fn tokens_file(
    stores: &Stores,
    work: &Path,
    lines: &[Value],
) -> (PathBuf, BTreeMap<String, String>) {
    let mut file = serde_json::Map::new();
    let mut tokens = BTreeMap::new();
    for line in lines {
        let source = line["source"].as_str().expect("source").to_owned();
        if tokens.contains_key(&source) {
            continue;
        }
        let token = format!("explain-token-{source}");
        let mut hash = stores
            .aqs(work)
            .args(["ingest", "hash-token"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("aqs ingest hash-token");
        hash.stdin
            .take()
            .expect("stdin")
            .write_all(token.as_bytes())
            .expect("token");
        let output = hash.wait_with_output().expect("hash");
        let digest = String::from_utf8(output.stdout).expect("digest");
        file.insert(
            source.clone(),
            serde_json::json!({"tokens": digest.trim(), "grants": "all"}),
        );
        tokens.insert(source, token);
    }
    let path = work.join("tokens.json");
    std::fs::write(&path, Value::Object(file).to_string()).expect("tokens file");
    (path, tokens)
}

async fn start_ingest(stores: &Stores, data_dir: &Path, tokens: &Path) -> Ingest {
    let address = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let child = stores
        .aqs(data_dir)
        .args(["ingest", "--listen", &address])
        .arg("--tokens-file")
        .arg(tokens)
        .stderr(Stdio::null())
        .spawn()
        .expect("aqs ingest");
    let ingest = Ingest { child, address };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = http
            .get(format!("http://{}/readyz", ingest.address))
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 200);
        if ready {
            return ingest;
        }
        assert!(Instant::now() < deadline, "ingest not ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Posts `lines` to ingest, each source's events in order with its token, in batches.
async fn post(ingest: &Ingest, tokens: &BTreeMap<String, String>, lines: &[Value]) {
    let http = reqwest::Client::new();
    let mut by_source: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for line in lines {
        by_source
            .entry(line["source"].as_str().expect("source"))
            .or_default()
            .push(line);
    }
    for (source, events) in by_source {
        for batch in events.chunks(BATCH) {
            let answer = http
                .post(format!("http://{}/v1/events", ingest.address))
                .bearer_auth(&tokens[source])
                .header("content-type", "application/json")
                .body(serde_json::to_vec(batch).expect("JSON"))
                .send()
                .await
                .expect("POST /v1/events");
            let status = answer.status().as_u16();
            let body = answer.text().await.expect("answer");
            assert_eq!(status, 200, "{source}: {body}");
        }
    }
}

fn parse(ndjson: &[u8]) -> Vec<Value> {
    ndjson
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).expect("JSON line"))
        .collect()
}

/// The month through ingest, the projector and the KPI job on `stores`, yesterday's run
/// before the late visit and the retraction, today's after; then the checks.
async fn explained_on(stores: Stores) {
    let work = tempfile::tempdir().expect("tempdir");
    let ingest_data = work.path().join("ingest");
    let data = work.path().join("data");
    let (first, second) = explain::month();
    let (first, second) = (parse(&first), parse(&second));
    if stores.clickhouse.is_some() {
        let mut migrate = stores.aqs(&data);
        migrate.arg("migrate");
        run_ok(migrate);
    }
    let all: Vec<Value> = first.iter().chain(&second).cloned().collect();
    let (tokens_path, tokens) = tokens_file(&stores, work.path(), &all);
    let ingest = start_ingest(&stores, &ingest_data, &tokens_path).await;

    let project = || {
        let mut project = stores.aqs(&data);
        project.args(["projector", "--until-idle"]);
        run_ok(project);
    };
    let analytics = |as_of: &str| {
        let mut analytics = stores.aqs(&data);
        analytics.args(["analytics", "--as-of", as_of, "--since", FIRST_DAY]);
        run_ok(analytics);
    };
    post(&ingest, &tokens, &first).await;
    project();
    analytics(YESTERDAY);
    // Yesterday's run is written; the late visit and the retraction are recorded after it.
    post(&ingest, &tokens, &second).await;
    project();
    analytics(TODAY);
    drop(ingest);
    explain::add_supervisor(stores.aqs(&data), "sup1", "T0001");
    explain::add_supervisor(stores.aqs(&data), "sup2", "T0002");
    let events_db = aqs_tables::DataDir::new(&data).events();
    assert!(
        !events_db.exists(),
        "{} exists: the events would not have to come from Kafka",
        events_db.display()
    );
    if stores.clickhouse.is_some() {
        let ledgers_db = aqs_tables::DataDir::new(&data).ledgers();
        assert!(
            !ledgers_db.exists(),
            "{} exists: the roster would not have to come from ClickHouse",
            ledgers_db.display()
        );
    }

    let dashboard = explain::start_dashboard(stores.aqs(&data));
    explain::check_explain_and_changes(&dashboard.base).await;
    drop(dashboard);
    if let Some((env, database)) = &stores.clickhouse {
        env.drop_database(database).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn explained_from_kafka_with_ledgers_in_the_data_folder() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    explained_on(Stores::new(&kafka, None)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn explained_from_kafka_with_ledgers_in_clickhouse() {
    let (Some(kafka), Some(clickhouse)) = (aqs_testkit::kafka(), aqs_testkit::clickhouse()) else {
        return;
    };
    explained_on(Stores::new(&kafka, Some(clickhouse))).await;
}
