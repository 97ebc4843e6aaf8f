//! Peak memory of the ingest server per request, for hostile and for legitimate bodies.
//!
//! ```sh
//! cargo run --release -p aqs-ingest --example ingest_memory            # every scenario
//! cargo run --release -p aqs-ingest --example ingest_memory -- --only valid-max -- --max-body-bytes 33554432
//! cargo run --release -p aqs-ingest --example ingest_memory -- --kafka-brokers 127.0.0.1:19092
//! ```
//!
//! Each scenario starts a fresh server process (this program with `serve`, over an embedded
//! log in a temporary folder, or over fresh Kafka topics behind the dedup index with
//! `--kafka-brokers`; without authentication), reads its peak resident memory
//! (`VmHWM` of `/proc/<pid>/status`) once it listens, sends the scenario's requests (the
//! concurrent ones at the same time, from threads), and reads the peak again. The table
//! shows the growth of the peak as a multiple of the bytes of the largest body and of all
//! bodies sent at once, the size of the answers and of what the dead letters kept. Settings
//! after `--` go to every server (`aqs ingest`'s flags). Linux only; it prints figures and
//! never passes or fails on them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aqs_eventlog::EventLog;
use aqs_eventlog::kafka::{KafkaConfig, TransactionalKafkaLog};
use aqs_eventlog::sqlite::SqliteLog;
use aqs_ingest::IngestConfig;
use aqs_ingest::auth::Auth;
use aqs_ingest::dedup::{DedupIndex, DedupLog};
use aqs_ingest::readiness::AlwaysReady;
use aqs_ingest::server::{IngestState, serve};
use aqs_testkit::unique_name;
use clap::Parser;

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Run only the scenarios with these names.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Serve over fresh topics of this Kafka (behind the dedup index), not the embedded log.
    #[arg(long)]
    kafka_brokers: Option<String>,
    /// Settings passed to every server, as `aqs ingest` flags.
    #[arg(last = true)]
    server_args: Vec<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Run one server and print its port; stops when standard input closes.
    Serve {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        kafka: Option<String>,
        #[command(flatten)]
        config: IngestConfig,
    },
}

/// One measured situation: bodies sent at the same time.
struct Scenario {
    name: &'static str,
    what: &'static str,
    bodies: Vec<Vec<u8>>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Mode::Serve {
        data_dir,
        kafka,
        config,
    }) = cli.mode
    {
        return run_server(&data_dir, kafka.as_deref(), config);
    }
    let scenarios = scenarios()
        .into_iter()
        .filter(|s| cli.only.is_empty() || cli.only.iter().any(|name| name == s.name))
        .collect::<Vec<_>>();
    println!(
        "| scenario | bodies | largest body | peak RSS at start | peak RSS growth | × largest body | × bodies at once | answers | dead letters | statuses |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for scenario in &scenarios {
        match measure(scenario, cli.kafka_brokers.as_deref(), &cli.server_args) {
            Ok(row) => println!("{row}"),
            Err(error) => println!("| {} | failed: {error} |", scenario.name),
        }
    }
    for scenario in &scenarios {
        println!("- `{}`: {}", scenario.name, scenario.what);
    }
    ExitCode::SUCCESS
}

fn scenarios() -> Vec<Scenario> {
    let hostile = unknown_fields_event(500_000);
    let hostile_six: Vec<Vec<u8>> = (0..6).map(|_| unknown_fields_event(375_000)).collect();
    // Room for the longer ids of the renamed copies.
    let valid = valid_batch(16 * 1024 * 1024 - 64 * 1024);
    let invalid = invalid_batch(16 * 1024 * 1024);
    vec![
        Scenario {
            name: "unknown-fields",
            what: "one event with 500 k unknown fields",
            bodies: vec![hostile],
        },
        Scenario {
            name: "unknown-fields-x6",
            what: "six such events of 375 k unknown fields, at once",
            bodies: hostile_six,
        },
        Scenario {
            name: "valid-max",
            what: "a batch of valid visits with 2000-character notes, just under 16 MiB",
            bodies: vec![valid.clone()],
        },
        Scenario {
            name: "invalid-max",
            what: "a batch of invalid events (20 problems each), just under 16 MiB",
            bodies: vec![invalid],
        },
        Scenario {
            name: "tiny-invalid",
            what: "5000 tiny invalid events (about 10 problems each)",
            bodies: vec![tiny_invalid_batch(5_000)],
        },
        Scenario {
            name: "small-unknown",
            what: "5000 visits with 30 short unknown fields each",
            bodies: vec![small_unknown_batch(5_000)],
        },
        Scenario {
            name: "valid-max-x8",
            what: "eight batches of valid visits just under 16 MiB each, at once",
            bodies: (0..8).map(|i| renamed(&valid, i)).collect(),
        },
        Scenario {
            name: "mixed-x16",
            what: "sixteen bodies at once: four of each of valid-max, invalid-max, \
                   small-unknown and tiny-invalid",
            bodies: (0..16)
                .map(|i| match i % 4 {
                    0 => renamed(&valid, 10 + i),
                    1 => invalid_batch(16 * 1024 * 1024),
                    2 => small_unknown_batch(5_000),
                    _ => tiny_invalid_batch(5_000),
                })
                .collect(),
        },
    ]
}

/// An outlet visit padded with `fields` unknown fields of about 31 bytes each.
fn unknown_fields_event(fields: usize) -> Vec<u8> {
    let mut body = String::with_capacity(fields * 32 + 512);
    body.push_str(
        r#"{"event_id":"hostile-1","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:30:00+08:00","source":"mobile-worklog","agent_id":"A1","payload":{"outlet_id":"O1","purpose":"promotion"}"#,
    );
    for i in 0..fields {
        body.push_str(&format!(r#","extra_field_{i:07}":"value-{:02}""#, i % 100));
    }
    body.push('}');
    body.into_bytes()
}

/// A JSON array of valid visits with 2000-character Chinese notes, up to `limit` bytes.
fn valid_batch(limit: usize) -> Vec<u8> {
    let note: String = "网点拜访达成效果良好".chars().cycle().take(2000).collect();
    let mut body = Vec::with_capacity(limit);
    body.push(b'[');
    for i in 0.. {
        let event = format!(
            r#"{{"event_id":"v-{i:06}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:30:00+08:00","source":"mobile-worklog","agent_id":"A{agent}","payload":{{"outlet_id":"O{outlet}","purpose":"promotion","outcome_note":"{note}"}}}}"#,
            agent = i % 200,
            outlet = i % 97,
        );
        if body.len() + event.len() + 2 > limit || i == 5_000 {
            break;
        }
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(event.as_bytes());
    }
    body.push(b']');
    body
}

/// A JSON array of events with many problems each, up to `limit` bytes.
fn invalid_batch(limit: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(limit);
    body.push(b'[');
    for i in 0.. {
        let mut event = format!(
            r#"{{"event_id":"bad-{i:06}","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-02","source":"mobile-worklog","agent_id":"A1","payload":{{"outlet_id":"O1","policy_id":"P1","product_code":"X","premium":"12.345","payment_mode":"monthly""#
        );
        for field in 0..14 {
            event.push_str(&format!(r#","unexpected_{field:02}":{{"deep":[1,2,3]}}"#));
        }
        event.push_str(&format!(r#","remark":"{}""#, "x".repeat(3_000)));
        event.push_str("}}");
        if body.len() + event.len() + 2 > limit || i == 5_000 {
            break;
        }
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(event.as_bytes());
    }
    body.push(b']');
    body
}

/// `count` events of a known type with nothing else: about ten problems in 60 bytes each.
fn tiny_invalid_batch(count: usize) -> Vec<u8> {
    let event = r#"{"type":"sale_closed","schema_version":1,"payload":{}}"#;
    format!("[{}]", vec![event; count].join(",")).into_bytes()
}

/// `count` visits with 30 unknown fields of a few bytes each.
fn small_unknown_batch(count: usize) -> Vec<u8> {
    let events: Vec<String> = (0..count)
        .map(|i| {
            let extra: String = (0..30).map(|f| format!(r#","u{f}":1"#)).collect();
            format!(
                r#"{{"event_id":"u-{i:05}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:30:00+08:00","source":"mobile-worklog","agent_id":"A1","payload":{{"outlet_id":"O1","purpose":"promotion"}}{extra}}}"#
            )
        })
        .collect();
    format!("[{}]", events.join(",")).into_bytes()
}

/// The same batch with other event ids, so that concurrent copies are all new events.
fn renamed(body: &[u8], copy: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    text.replace("\"v-", &format!("\"v{copy}-")).into_bytes()
}

fn measure(
    scenario: &Scenario,
    kafka: Option<&str>,
    server_args: &[String],
) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let server = Server::start(dir.path(), kafka, server_args)?;
    let before = server.peak_kib()?;
    let threads: Vec<_> = scenario
        .bodies
        .iter()
        .map(|body| {
            let body = body.clone();
            let port = server.port;
            std::thread::spawn(move || post(port, &body))
        })
        .collect();
    let mut statuses = Vec::new();
    let mut answer_bytes = 0;
    for thread in threads {
        let (status, answer) = thread
            .join()
            .map_err(|_| "client thread panicked".to_owned())??;
        statuses.push(status);
        answer_bytes += answer;
    }
    let after = server.peak_kib()?;
    server.stop();
    let dead_letters = if kafka.is_some() {
        "(in Kafka)".to_owned()
    } else {
        let bytes = dead_letter_bytes(&dir.path().join("events.db"))?;
        format!("{:.2} MB", bytes as f64 / 1e6)
    };
    let largest = scenario.bodies.iter().map(Vec::len).max().unwrap_or(0);
    let all: usize = scenario.bodies.iter().map(Vec::len).sum();
    let growth = (after.saturating_sub(before) * 1024) as f64;
    statuses.sort_unstable();
    statuses.dedup();
    Ok(format!(
        "| {} | {} | {:.1} MB | {:.0} MB | {:.0} MB | {:.1} | {:.1} | {:.2} MB | {} | {:?} |",
        scenario.name,
        scenario.bodies.len(),
        largest as f64 / 1e6,
        (before * 1024) as f64 / 1e6,
        growth / 1e6,
        growth / largest.max(1) as f64,
        growth / all.max(1) as f64,
        answer_bytes as f64 / 1e6,
        dead_letters,
        statuses
    ))
}

/// Posts a JSON body; the status and the size of the answer.
fn post(port: u16, body: &[u8]) -> Result<(u16, usize), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // The server may answer before reading everything (a refusal): ignore write errors.
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body));
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer[..answer.len().min(64)]).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status in {text:?}"))?;
    let body_start = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |p| p + 4);
    Ok((status, answer.len() - body_start))
}

fn dead_letter_bytes(path: &Path) -> Result<u64, String> {
    let connection = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
    connection
        .query_row(
            "SELECT COALESCE(SUM(length(body) + length(reason)), 0) FROM dead_letters",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map(|bytes| bytes as u64)
        .map_err(|e| e.to_string())
}

/// A server process of this program.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path, kafka: Option<&str>, args: &[String]) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut command = Command::new(exe);
        command.arg("serve").arg("--data-dir").arg(dir);
        if let Some(brokers) = kafka {
            command.arg("--kafka").arg(brokers);
        }
        let mut child = command
            .arg("--insecure-no-auth")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let port = line
            .trim()
            .parse()
            .map_err(|_| format!("server said {line:?}"))?;
        // Let the runtime's threads start, so that their stacks are in the baseline.
        std::thread::sleep(Duration::from_millis(300));
        Ok(Self { child, port })
    }

    fn peak_kib(&self) -> Result<u64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|e| e.to_string())?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| "no VmHWM".to_owned())
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn open_log(data_dir: &Path, kafka: Option<&str>) -> Result<Arc<dyn EventLog>, String> {
    let Some(brokers) = kafka else {
        let log = SqliteLog::open(data_dir.join("events.db"), 4).map_err(|e| e.to_string())?;
        return Ok(Arc::new(log));
    };
    let config = KafkaConfig {
        events_topic: unique_name("aqs-memory-events", '-'),
        reference_topic: unique_name("aqs-memory-reference", '-'),
        dead_letter_topic: unique_name("aqs-memory-dead-letter", '-'),
        events_partitions: 4,
        ..KafkaConfig::new(brokers)
    };
    let index = DedupIndex::open(data_dir.join("ingest-dedup.db")).map_err(|e| e.to_string())?;
    let slots = IngestConfig::default().max_concurrent_appends;
    let writer = TransactionalKafkaLog::connect(&config, index.instance(), slots)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(DedupLog::new(
        writer,
        index,
        Duration::from_secs(15),
    )))
}

fn run_server(data_dir: &Path, kafka: Option<&str>, config: IngestConfig) -> ExitCode {
    let log = match open_log(data_dir, kafka) {
        Ok(log) => log,
        Err(error) => {
            eprintln!("opening the log: {error}");
            return ExitCode::FAILURE;
        }
    };
    let state = IngestState::new(log, Arc::new(AlwaysReady), Auth::Disabled, config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?.port());
        std::io::stdout().flush()?;
        let stdin_closed = async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut sink = Vec::new();
                let _ = std::io::stdin().read_to_end(&mut sink);
            })
            .await;
        };
        serve(listener, state, stdin_closed).await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("serving: {error}");
            ExitCode::FAILURE
        }
    }
}
