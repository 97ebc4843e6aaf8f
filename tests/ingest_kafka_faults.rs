//! What the Kafka log holds after faults under `aqs ingest`, read as the projector and every
//! other reader does (`read_committed`):
//! - the broker hung (SIGSTOP) while appends are in flight, shorter and longer than Kafka's
//!   message timeout, then resumed: every event once, and a retry of an append that went
//!   through after its answer timed out is answered `duplicate`;
//! - ingest killed (SIGKILL) at random points of its appends, 24 times, under a client that
//!   retries every batch until it gets an answer: every acknowledged event once, none lost;
//! - the dedup index pruned to its retention: its size in `/metrics`, and a resend older
//!   than the retention appended again.
//!
//! Each test runs on a Kafka of its own (`aqs_testkit::private`), one test at a time, so that
//! hanging it or leaving transactions open disturbs no other test. Skipped loudly without
//! the test services.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aqs_schemas::generator::Rng;
use aqs_testkit::private::{PrivateServices, Service};
use aqs_testkit::{KafkaEnv, unique_name};

/// One private Kafka at a time: each is a JVM of its own on two shared cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

const SOURCE: &str = "mobile-worklog";
const TOKEN: &str = "fault-test-token-5d1e";

/// The topics of one test, and the `AQS_*` variables naming them.
struct Topics {
    events: String,
    env: Vec<(String, String)>,
}

fn topics(brokers: &str) -> Topics {
    let events = unique_name("aqs-test-faults-events", '-');
    let env = vec![
        ("AQS_KAFKA_BROKERS".to_owned(), brokers.to_owned()),
        ("AQS_EVENTS_TOPIC".to_owned(), events.clone()),
        (
            "AQS_REFERENCE_TOPIC".to_owned(),
            unique_name("aqs-test-faults-reference", '-'),
        ),
        (
            "AQS_DEAD_LETTER_TOPIC".to_owned(),
            unique_name("aqs-test-faults-dead-letter", '-'),
        ),
        ("AQS_EVENTS_PARTITIONS".to_owned(), "4".to_owned()),
    ];
    Topics { events, env }
}

/// A tokens file for [`SOURCE`] with [`TOKEN`], in `dir`.
fn tokens_file(dir: &Path) -> PathBuf {
    let mut hash = Command::new(env!("CARGO_BIN_EXE_aqs"))
        .args(["ingest", "hash-token"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("aqs ingest hash-token");
    hash.stdin
        .take()
        .expect("stdin")
        .write_all(TOKEN.as_bytes())
        .expect("token");
    let output = hash.wait_with_output().expect("hash");
    let digest = String::from_utf8(output.stdout).expect("UTF-8");
    let path = dir.join("tokens.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"{SOURCE}": {{"tokens": "{}", "grants": "all"}}}}"#,
            digest.trim()
        ),
    )
    .expect("tokens file");
    path
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port")
}

/// One `aqs ingest` process on a fixed port and data folder (kept across restarts).
struct Ingest {
    port: u16,
    data: PathBuf,
    tokens: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Ingest {
    fn new(work: &Path, env: Vec<(String, String)>) -> Self {
        Self {
            port: free_port(),
            data: work.join("data"),
            tokens: tokens_file(work),
            env,
            log: work.join("ingest.log"),
            child: None,
        }
    }

    /// Starts the process and waits until `/readyz` answers 200.
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_aqs"));
        command
            .arg("ingest")
            .env_remove("AQS_CLICKHOUSE_URL")
            .env("AQS_LOG", "warn")
            .env("AQS_DATA_DIR", &self.data)
            .env("AQS_INGEST_TOKENS_FILE", &self.tokens)
            .env("AQS_INGEST_LISTEN", format!("127.0.0.1:{}", self.port))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(command.spawn().expect("start aqs ingest"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("poll"))
            {
                panic!("aqs ingest exited: {status}\n{}", self.log_tail());
            }
            if get(self.port, "/readyz").is_ok_and(|(status, _)| status == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "aqs ingest not ready\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP/1.1 exchange over a fresh connection: status and body.
fn exchange(port: u16, request: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.write_all(request.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    Ok((status, body.to_owned()))
}

fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"),
        "",
    )
}

fn post_events(port: u16, body: &str) -> std::io::Result<(u16, String)> {
    exchange(
        port,
        &format!(
            "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
             Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        ),
        body,
    )
}

/// A batch of visits `<prefix>-<n>` of agents spread over the partitions.
fn batch(prefix: &str, count: usize) -> (Vec<String>, String) {
    let ids: Vec<String> = (0..count).map(|n| format!("{prefix}-{n:03}")).collect();
    let events: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            format!(
                r#"{{"event_id":"{id}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"{SOURCE}","agent_id":"A{:02}","payload":{{"outlet_id":"O{}","purpose":"promotion"}}}}"#,
                n % 37,
                n % 11
            )
        })
        .collect();
    (ids, format!("[{}]", events.join(",")))
}

/// The statuses of a batch answer, in order.
fn statuses(body: &str) -> Vec<String> {
    let answer: serde_json::Value = serde_json::from_str(body).expect("batch answer JSON");
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_str().expect("status").to_owned())
        .collect()
}

/// Sends a batch until a final answer (200 or 422); what each attempt got, the last one
/// final. Gives up at `deadline`.
fn send_until_final(
    port: u16,
    body: &str,
    pause: Duration,
    deadline: Instant,
) -> Vec<(u16, String)> {
    let mut attempts = Vec::new();
    loop {
        match post_events(port, body) {
            Ok((status, answer)) => {
                let last = status == 200 || status == 422;
                attempts.push((status, answer));
                if last {
                    return attempts;
                }
            }
            Err(error) => attempts.push((0, error.to_string())),
        }
        assert!(
            Instant::now() < deadline,
            "no final answer: {:?}",
            &attempts[attempts.len().saturating_sub(5)..]
        );
        std::thread::sleep(pause);
    }
}

/// Event ids in `topic` with how often each appears, read with `read_committed` once every
/// one of `expected` is there (a transaction left open by a hung or killed writer holds
/// readers back until it is decided).
fn committed_ids(
    kafka: &KafkaEnv,
    topic: &str,
    expected: &BTreeSet<String>,
) -> BTreeMap<String, usize> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut counts = BTreeMap::new();
        for record in kafka.read_committed(topic, Duration::from_secs(60)) {
            let event: serde_json::Value =
                serde_json::from_slice(&record.payload).expect("event JSON");
            *counts
                .entry(event["event_id"].as_str().expect("event_id").to_owned())
                .or_insert(0) += 1;
        }
        let complete = expected.iter().all(|id| counts.contains_key(id));
        if complete || Instant::now() >= deadline {
            return counts;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Ids appearing more than once.
fn repeated(counts: &BTreeMap<String, usize>) -> BTreeMap<&String, &usize> {
    counts.iter().filter(|(_, n)| **n > 1).collect()
}

#[test]
fn a_hung_broker_leaves_each_event_once_and_the_retry_is_answered_duplicate() {
    let _serial = serial();
    let Some(services) = PrivateServices::start() else {
        return;
    };
    let kafka = services.kafka_env();
    let work = tempfile::tempdir().expect("tempdir");
    let topics = topics(kafka.brokers());
    let mut env = topics.env.clone();
    // Appends answer 503 after 2 s; Kafka gives up on a record after 6 s.
    env.push(("AQS_INGEST_APPEND_TIMEOUT_MS".into(), "2000".into()));
    env.push(("AQS_KAFKA_MESSAGE_TIMEOUT_MS".into(), "6000".into()));
    let mut ingest = Ingest::new(work.path(), env);
    ingest.start();
    let port = ingest.port;
    let within = || Instant::now() + Duration::from_secs(120);

    let (warm_ids, warm) = batch("warm", 40);
    let answer = send_until_final(port, &warm, Duration::from_millis(200), within());
    assert_eq!(answer.last().map(|a| a.0), Some(200));

    // Hung for 4 s: longer than the append timeout, shorter than Kafka's. The append goes
    // on after its answer (503) and lands; the retry finds it.
    let (short_ids, short) = batch("short", 40);
    services.pause(Service::Kafka);
    let hung_at = Instant::now();
    let (status, body) = post_events(port, &short).expect("answer");
    assert_eq!(status, 503, "{body}");
    std::thread::sleep(Duration::from_secs(4).saturating_sub(hung_at.elapsed()));
    services.resume(Service::Kafka);
    let attempts = send_until_final(port, &short, Duration::from_millis(500), within());
    let (status, body) = attempts.last().expect("final answer");
    assert_eq!(*status, 200, "{attempts:?}");
    assert!(
        statuses(body).iter().all(|s| s == "duplicate"),
        "the retry of an append that went through: {body}"
    );
    let short_attempts = attempts.len();

    // Hung for 14 s: longer than Kafka's timeout too, with the client retrying all along.
    // Whatever the broker takes in when it wakes up, the batch ends in the log once.
    let (long_ids, long) = batch("long", 40);
    services.pause(Service::Kafka);
    let hung_at = Instant::now();
    let mut during = Vec::new();
    while hung_at.elapsed() < Duration::from_secs(14) {
        during.push(
            post_events(port, &long)
                .map(|(status, _)| status)
                .unwrap_or(0),
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    services.resume(Service::Kafka);
    assert!(
        during.iter().all(|&status| status == 503),
        "answers while hung: {during:?}"
    );
    let attempts = send_until_final(port, &long, Duration::from_millis(500), within());
    let (status, body) = attempts.last().expect("final answer");
    assert_eq!(*status, 200, "{attempts:?}");
    let long_statuses = statuses(body);
    assert!(
        long_statuses
            .iter()
            .all(|s| s == "accepted" || s == "duplicate"),
        "{body}"
    );
    let again = send_until_final(port, &long, Duration::from_millis(500), within());
    assert!(
        statuses(&again.last().expect("answer").1)
            .iter()
            .all(|s| s == "duplicate")
    );
    ingest.kill();

    let expected: BTreeSet<String> = [warm_ids, short_ids, long_ids]
        .concat()
        .into_iter()
        .collect();
    let counts = committed_ids(&kafka, &topics.events, &expected);
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the log: {missing:?}"
    );
    assert!(
        repeated(&counts).is_empty(),
        "events in the log more than once: {:?}",
        repeated(&counts)
    );
    assert_eq!(counts.len(), expected.len());
    eprintln!(
        "hung 4 s: answered duplicate after {short_attempts} attempts after the resume; \
         hung 14 s: {} answers 503 while hung, then {} attempts, final answer {:?}; \
         {} events in the log, none twice",
        during.len(),
        attempts.len(),
        long_statuses.first(),
        counts.len()
    );
}

#[test]
fn ingest_killed_at_random_points_loses_nothing_and_doubles_nothing() {
    let _serial = serial();
    let Some(services) = PrivateServices::start() else {
        return;
    };
    let kafka = services.kafka_env();
    let work = tempfile::tempdir().expect("tempdir");
    let topics = topics(kafka.brokers());
    let mut ingest = Ingest::new(work.path(), topics.env.clone());
    ingest.start();
    let port = ingest.port;

    // A client sending batches one after the other, each until it gets a final answer.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(BTreeMap::<String, String>::new()));
    let sent = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let client = {
        let (stop, acknowledged, sent) = (
            Arc::clone(&stop),
            Arc::clone(&acknowledged),
            Arc::clone(&sent),
        );
        std::thread::spawn(move || {
            let mut retries = 0;
            for number in 0.. {
                if stop.load(Ordering::SeqCst) {
                    return retries;
                }
                let (ids, body) = batch(&format!("b{number:04}"), 50);
                sent.lock().expect("lock").extend(ids.iter().cloned());
                let attempts = send_until_final(
                    port,
                    &body,
                    Duration::from_millis(50),
                    Instant::now() + Duration::from_secs(180),
                );
                retries += attempts.len() - 1;
                let (status, answer) = attempts.last().expect("final answer");
                assert_eq!(*status, 200, "{answer}");
                let mut acknowledged = acknowledged.lock().expect("lock");
                for (id, status) in ids.into_iter().zip(statuses(answer)) {
                    acknowledged.insert(id, status);
                }
            }
            retries
        })
    };

    let mut rng = Rng::new(20_261_205);
    let mut kills = Vec::new();
    for _ in 0..24 {
        let after = Duration::from_millis(rng.between(50, 700));
        std::thread::sleep(after);
        ingest.kill();
        kills.push(after.as_millis());
        ingest.start();
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let retries = client.join().expect("client");
    ingest.kill();

    let acknowledged = acknowledged.lock().expect("lock").clone();
    let sent = sent.lock().expect("lock").clone();
    assert!(
        retries >= 24,
        "the client retried through every restart ({retries} retries, kills after {kills:?} ms)"
    );
    assert!(
        acknowledged
            .values()
            .all(|s| s == "accepted" || s == "duplicate"),
        "{acknowledged:?}"
    );
    let expected: BTreeSet<String> = acknowledged.keys().cloned().collect();
    let counts = committed_ids(&kafka, &topics.events, &expected);
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the log: {missing:?}"
    );
    assert!(
        repeated(&counts).is_empty(),
        "{} events in the log more than once (of {}, {retries} retries): {:?}",
        repeated(&counts).len(),
        counts.len(),
        repeated(&counts).iter().take(10).collect::<Vec<_>>()
    );
    assert!(
        counts.keys().all(|id| sent.contains(id)),
        "the log holds events never sent"
    );
    eprintln!(
        "{} kills, {} events acknowledged, {retries} retries, {} in the log",
        kills.len(),
        acknowledged.len(),
        counts.len()
    );
}

/// A metric's value in a `/metrics` text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

#[test]
fn the_dedup_index_is_pruned_to_its_retention() {
    let _serial = serial();
    let Some(services) = PrivateServices::start() else {
        return;
    };
    let kafka = services.kafka_env();
    let work = tempfile::tempdir().expect("tempdir");
    let topics = topics(kafka.brokers());
    let mut env = topics.env.clone();
    env.push(("AQS_INGEST_DEDUP_RETENTION_SECS".into(), "5".into()));
    env.push(("AQS_INGEST_DEDUP_PRUNE_INTERVAL_SECS".into(), "1".into()));
    let mut ingest = Ingest::new(work.path(), env);
    ingest.start();
    let port = ingest.port;
    let within = || Instant::now() + Duration::from_secs(60);

    let (old_ids, old) = batch("old", 30);
    assert_eq!(
        send_until_final(port, &old, Duration::from_millis(200), within())
            .last()
            .map(|a| a.0),
        Some(200)
    );
    let (_, text) = get(port, "/metrics").expect("metrics");
    assert_eq!(
        metric(&text, "aqs_ingest_dedup_entries"),
        Some(30.0),
        "{text}"
    );

    // Past the retention, the next pruning removes them; newer entries stay.
    std::thread::sleep(Duration::from_millis(5_500));
    let (recent_ids, recent) = batch("recent", 10);
    send_until_final(port, &recent, Duration::from_millis(200), within());
    let deadline = within();
    let text = loop {
        let (_, text) = get(port, "/metrics").expect("metrics");
        if metric(&text, "aqs_ingest_dedup_pruned_entries_total") == Some(30.0) {
            break text;
        }
        assert!(Instant::now() < deadline, "never pruned: {text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        metric(&text, "aqs_ingest_dedup_entries"),
        Some(10.0),
        "{text}"
    );

    // A resend within the retention is a duplicate; one past it is appended again (the
    // projector still counts it once).
    let (_, both) = batch("recent", 1);
    let answer = send_until_final(port, &both, Duration::from_millis(200), within());
    assert_eq!(statuses(&answer.last().expect("answer").1), ["duplicate"]);
    let answer = send_until_final(port, &old, Duration::from_millis(200), within());
    assert!(
        statuses(&answer.last().expect("answer").1)
            .iter()
            .all(|s| s == "accepted")
    );
    ingest.kill();
    let expected: BTreeSet<String> = [old_ids.clone(), recent_ids].concat().into_iter().collect();
    let counts = committed_ids(&kafka, &topics.events, &expected);
    assert!(old_ids.iter().all(|id| counts[id] == 2));
}
