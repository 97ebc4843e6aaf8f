//! Throughput and latency of the ingest API, and of the same log without HTTP.
//!
//! For each log (embedded; Kafka behind the dedup index when `AQS_KAFKA_BROKERS` is set) and
//! each batch size, a fresh log is opened, a server started in this process on
//! `127.0.0.1:0`, and `--clients` concurrent clients post batches of new events for
//! `--seconds`. Then the same number of threads append the same kind of batches straight
//! to a fresh log of the same kind. Events come from the seeded generator (the mobile
//! work-log's visits, consultations and sales), given new ids when the pool runs out.
//! Clients and server share the machine: the figures are for the whole.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aqs_eventlog::EventLog;
use aqs_eventlog::kafka::{KafkaConfig, TransactionalKafkaLog};
use aqs_eventlog::sqlite::SqliteLog;
use aqs_ingest::IngestConfig;
use aqs_ingest::auth::{Auth, Tokens};
use aqs_ingest::dedup::{DedupIndex, DedupLog};
use aqs_ingest::readiness::AlwaysReady;
use aqs_ingest::server::{IngestState, serve};
use aqs_schemas::generator::{GeneratorConfig, generate};
use aqs_schemas::{Decoder, Event};
use std::process::ExitCode;

use super::machine;

const SOURCE: &str = "mobile-worklog";
const TOKEN: &str = "bench-token";

#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// Seconds each ingest case runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent clients (HTTP) or appending threads (raw).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 100, 1000])]
    batch_sizes: Vec<usize>,
    /// Kafka bootstrap servers; unset: the embedded log only.
    #[arg(long, env = "AQS_KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
}

impl IngestArgs {
    pub fn new(seconds: u64, kafka_brokers: Option<String>) -> Self {
        Self {
            seconds,
            clients: 8,
            batch_sizes: vec![1, 100, 1000],
            kafka_brokers,
        }
    }
}

/// Events to send: generated once, renamed when reused so that every event is new.
struct Pool {
    lines: Vec<(String, String)>,
    events: Vec<Event>,
}

impl Pool {
    fn generate() -> Self {
        let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
        let mut out = Vec::new();
        generate(&GeneratorConfig::new(7, 400, start, 40), &mut out).expect("generate");
        let mut seen = std::collections::HashSet::new();
        let mut lines = Vec::new();
        let mut events = Vec::new();
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let event = Decoder::standard()
                .decode(line)
                .expect("generated events are valid");
            if event.source != SOURCE || !seen.insert(event.event_id.clone()) {
                continue;
            }
            lines.push((
                event.event_id.clone(),
                String::from_utf8(line.to_vec()).expect("UTF-8"),
            ));
            events.push(event);
        }
        Self { lines, events }
    }

    fn renamed(id: &str, round: u64) -> String {
        format!("{id}~{round}")
    }

    fn json(&self, n: u64) -> String {
        let len = self.lines.len() as u64;
        let (id, line) = &self.lines[(n % len) as usize];
        match n / len {
            0 => line.clone(),
            round => line.replacen(
                &format!("\"event_id\":\"{id}\""),
                &format!("\"event_id\":\"{}\"", Self::renamed(id, round)),
                1,
            ),
        }
    }

    fn event(&self, n: u64) -> Event {
        let len = self.events.len() as u64;
        let mut event = self.events[(n % len) as usize].clone();
        if n / len > 0 {
            event.event_id = Self::renamed(&event.event_id, n / len);
        }
        event
    }

    fn batch_json(&self, first: u64, size: usize) -> String {
        let mut body = String::with_capacity(size * 320);
        body.push('[');
        for k in 0..size as u64 {
            if k > 0 {
                body.push(',');
            }
            body.push_str(&self.json(first + k));
        }
        body.push(']');
        body
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Embedded,
    Kafka,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Embedded => "embedded (SQLite)",
            Kind::Kafka => "Kafka + dedup index",
        }
    }
}

/// A fresh log of `kind`; the folder holds its files.
fn open_log(kind: Kind, args: &IngestArgs, dir: &std::path::Path) -> Arc<dyn EventLog> {
    match kind {
        Kind::Embedded => Arc::new(
            SqliteLog::open(
                aqs_tables::DataDir::new(dir).events(),
                aqs_eventlog::DEFAULT_PARTITIONS,
            )
            .expect("log"),
        ),
        Kind::Kafka => {
            let brokers = args.kafka_brokers.as_deref().expect("brokers");
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let config = KafkaConfig {
                events_topic: format!("aqs-bench-events-{stamp}"),
                reference_topic: format!("aqs-bench-reference-{stamp}"),
                dead_letter_topic: format!("aqs-bench-dead-letter-{stamp}"),
                events_partitions: aqs_eventlog::DEFAULT_PARTITIONS,
                ..KafkaConfig::new(brokers)
            };
            let index = DedupIndex::open(dir.join("ingest-dedup.db")).expect("index");
            // One transactional writer per client, as ingest has one per append slot.
            let kafka = TransactionalKafkaLog::connect(&config, index.instance(), args.clients)
                .expect("kafka");
            Arc::new(DedupLog::new(kafka, index, Duration::from_secs(30)))
        }
    }
}

/// What one case measured.
struct Row {
    events: u64,
    failures: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Row {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&mut self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies.sort_unstable();
        let rank =
            ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[rank - 1].as_secs_f64() * 1e3
    }
}

async fn http_case(kind: Kind, batch: usize, args: &IngestArgs, pool: &Arc<Pool>) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open_log(kind, args, dir.path());
    let config = IngestConfig {
        max_batch_events: batch.max(5_000),
        queue_timeout_ms: 60_000,
        max_in_flight_requests: 4 * args.clients,
        ..IngestConfig::default()
    };
    let auth = Auth::Tokens(Tokens::from_plain([(SOURCE, TOKEN)]).expect("tokens"));
    let state = IngestState::new(log, Arc::new(AlwaysReady), auth, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address: SocketAddr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let url = format!("http://{address}/v1/events");
    let next = Arc::new(AtomicU64::new(0));
    let expected = format!("{{\"accepted\":{batch},");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..args.clients {
        let (client, url, next, pool, expected) = (
            client.clone(),
            url.clone(),
            Arc::clone(&next),
            Arc::clone(pool),
            expected.clone(),
        );
        clients.spawn(async move {
            let mut latencies = Vec::new();
            let (mut ok, mut failed) = (0_usize, 0_usize);
            while Instant::now() < deadline {
                let first = next.fetch_add(1, Ordering::Relaxed) * batch as u64;
                let body = pool.batch_json(first, batch);
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("authorization", format!("Bearer {TOKEN}"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let accepted = match response {
                    Ok(response) if response.status() == 200 => response
                        .text()
                        .await
                        .is_ok_and(|text| text.starts_with(&expected)),
                    Ok(response) => {
                        let _ = response.text().await;
                        false
                    }
                    Err(_) => false,
                };
                latencies.push(sent.elapsed());
                if accepted {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            (latencies, ok, failed)
        });
    }
    let mut row = Row {
        events: 0,
        failures: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for (latencies, ok, failed) in clients.join_all().await {
        row.events += (ok * batch) as u64;
        row.failures += failed;
        row.latencies.extend(latencies);
    }
    row.elapsed = started.elapsed();
    let _ = stop.send(());
    server.await.expect("server task").expect("serve");
    row
}

fn raw_case(kind: Kind, batch: usize, args: &IngestArgs, pool: &Arc<Pool>) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open_log(kind, args, dir.path());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let threads: Vec<_> = (0..args.clients)
        .map(|_| {
            let (log, next, pool) = (Arc::clone(&log), Arc::clone(&next), Arc::clone(pool));
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let (mut events, mut failed) = (0_u64, 0_usize);
                while Instant::now() < deadline {
                    let first = next.fetch_add(1, Ordering::Relaxed) * batch as u64;
                    let chunk: Vec<Event> =
                        (0..batch as u64).map(|k| pool.event(first + k)).collect();
                    let sent = Instant::now();
                    match log.append(&chunk) {
                        Ok(outcomes) => events += outcomes.len() as u64,
                        Err(_) => failed += 1,
                    }
                    latencies.push(sent.elapsed());
                }
                (latencies, events, failed)
            })
        })
        .collect();
    let mut row = Row {
        events: 0,
        failures: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for thread in threads {
        let (latencies, events, failed) = thread.join().expect("thread");
        row.events += events;
        row.failures += failed;
        row.latencies.extend(latencies);
    }
    row.elapsed = started.elapsed();
    row
}

pub fn ingest(args: &IngestArgs) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args));
    Ok(ExitCode::SUCCESS)
}

async fn run(args: &IngestArgs) {
    let pool = Arc::new(Pool::generate());
    let mut kinds = vec![Kind::Embedded];
    if args.kafka_brokers.is_some() {
        kinds.push(Kind::Kafka);
    }
    println!(
        "\n### Ingest over HTTP, beside appending to the same log without HTTP — {}\n",
        machine()
    );
    println!(
        "{} s per case; {} concurrent clients (HTTP) or appending threads (raw); {} distinct generated events; {} partitions.\n",
        args.seconds,
        args.clients,
        pool.lines.len(),
        aqs_eventlog::DEFAULT_PARTITIONS
    );
    if args.kafka_brokers.is_none() {
        println!("Kafka rows skipped: AQS_KAFKA_BROKERS is not set.\n");
    }
    println!(
        "| log | batch | HTTP events/s | HTTP p50 ms | HTTP p99 ms | raw append events/s (the limit) | raw p50 ms | raw p99 ms | HTTP / raw | failed requests |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &kind in &kinds {
        for &batch in &args.batch_sizes {
            let mut http = http_case(kind, batch, args, &pool).await;
            let (raw_args, raw_pool) = (args.clone(), Arc::clone(&pool));
            let mut raw =
                tokio::task::spawn_blocking(move || raw_case(kind, batch, &raw_args, &raw_pool))
                    .await
                    .expect("raw case");
            print_row(kind, batch, &mut http, &mut raw);
        }
    }
}

fn print_row(kind: Kind, batch: usize, http: &mut Row, raw: &mut Row) {
    println!(
        "| {} | {batch} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
        kind.name(),
        http.rate(),
        http.percentile(0.50),
        http.percentile(0.99),
        raw.rate(),
        raw.percentile(0.50),
        raw.percentile(0.99),
        http.rate() / raw.rate(),
        http.failures + raw.failures
    );
}
