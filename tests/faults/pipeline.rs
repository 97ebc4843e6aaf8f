//! The pipeline under test: `aqs` processes started by the test, on the private Kafka and
//! ClickHouse, each a child process that can be killed (SIGKILL) and started again, or
//! stopped (SIGTERM) at the end.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aqs_testkit::private::PrivateServices;
use aqs_warehouse::ClickHouseConfig;

use crate::common::aqs;
use crate::month::{GRANTS, PARTITIONS};
use crate::stores::{Store, with_clickhouse};

/// The topics of one scenario.
#[derive(Debug, Clone)]
pub struct Topics {
    pub events: String,
    pub reference: String,
    pub dead_letters: String,
}

/// An `aqs` child process, started again after each kill with the same command.
pub struct Process {
    pub name: &'static str,
    command: Box<dyn Fn() -> Command + Send + Sync>,
    child: Mutex<Option<Child>>,
    log: PathBuf,
    pub kills: AtomicU32,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

impl Process {
    fn start(
        name: &'static str,
        log: PathBuf,
        command: impl Fn() -> Command + Send + Sync + 'static,
    ) -> Self {
        let process = Self {
            name,
            command: Box::new(command),
            child: Mutex::new(None),
            log,
            kills: AtomicU32::new(0),
        };
        process.spawn();
        process
    }

    fn spawn(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = (self.command)()
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.name));
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
    }

    /// SIGKILL, then the same command again at once.
    pub fn kill_and_restart(&self) {
        {
            let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(mut child) = child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.kills.fetch_add(1, Ordering::Relaxed);
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .expect("log file");
        let _ = writeln!(log, "---- SIGKILL; started again ----");
        self.spawn();
    }

    /// Whether the process has exited on its own.
    pub fn exited(&self) -> Option<ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGTERM, then its exit status (SIGKILL after 60 s).
    pub fn stop(&self) -> ExitStatus {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let child = child.as_mut().expect("a running process");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The end of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!("---- {} ----\n{}", self.name, lines[from..].join("\n"))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Which processes make up the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `aqs ingest` (Kafka), `aqs projector` into ClickHouse and `aqs projector` into its
    /// embedded store, each reading the topics in a consumer group of its own.
    Standalone,
    /// `aqs up` on Kafka with ClickHouse configured (ingest, and a projector writing its
    /// embedded store and ClickHouse), beside `aqs projector` into another ClickHouse
    /// database.
    Up,
}

/// A running pipeline.
#[derive(Debug)]
pub struct Pipeline {
    pub ingest: SocketAddr,
    /// `/metrics` and `/readyz` of each projector (`aqs up`: its dashboard port).
    pub probes: Vec<(&'static str, SocketAddr)>,
    pub ingest_process: Option<Process>,
    pub up: Option<Process>,
    pub projectors: Vec<Process>,
    pub stores: Vec<Store>,
    pub topics: Topics,
    pub tokens: Vec<(String, String)>,
}

/// A port nothing listens on now.
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// A fresh, migrated database of the private ClickHouse.
fn database(services: &PrivateServices) -> ClickHouseConfig {
    let clickhouse = services.clickhouse_env();
    let config = ClickHouseConfig::new(clickhouse.url())
        .with_credentials(clickhouse.user(), clickhouse.password())
        .with_database(clickhouse.fresh_database_name());
    aqs_warehouse::BlockingClient::new(&config)
        .expect("client")
        .run(aqs_warehouse::migrate(&config))
        .expect("migrate");
    config
}

/// A tokens file granting each source of the month its classes; the plain tokens.
fn tokens_file(work: &Path) -> (PathBuf, Vec<(String, String)>) {
    let mut file = serde_json::Map::new();
    let mut tokens = Vec::new();
    for (source, grants) in GRANTS {
        let token = format!("fault-token-{source}");
        let mut hash = aqs(work)
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
            (*source).to_owned(),
            serde_json::json!({"tokens": digest.trim(), "grants": grants}),
        );
        tokens.push(((*source).to_owned(), token));
    }
    let path = work.join("tokens.json");
    std::fs::write(&path, serde_json::Value::Object(file).to_string()).expect("tokens file");
    (path, tokens)
}

impl Pipeline {
    /// Starts the processes of `layout` on fresh topics and databases, and waits until each
    /// is ready. `ingest_flags` are extra flags of ingest (also of `aqs up`).
    pub fn start(
        layout: Layout,
        services: &PrivateServices,
        work: &Path,
        ingest_flags: &[&str],
    ) -> Self {
        let prefix = aqs_testkit::unique_name("aqs-fault", '-');
        let topics = Topics {
            events: format!("{prefix}.events"),
            reference: format!("{prefix}.reference"),
            dead_letters: format!("{prefix}.dead-letter"),
        };
        let brokers = services.kafka_brokers().to_owned();
        let (tokens_path, tokens) = tokens_file(work);
        // A debugging switch: `AQS_FAULT_LOG` sets the services' log filter (e.g.
        // `info,aqs_eventlog::kafka::consumer=debug`) instead of `info`.
        let log_filter = std::env::var("AQS_FAULT_LOG").unwrap_or_else(|_| "info".to_owned());
        let kafka = {
            let topics = topics.clone();
            move |command: &mut Command, group: &str| {
                command
                    .env("AQS_KAFKA_BROKERS", &brokers)
                    .env("AQS_EVENTS_TOPIC", &topics.events)
                    .env("AQS_REFERENCE_TOPIC", &topics.reference)
                    .env("AQS_DEAD_LETTER_TOPIC", &topics.dead_letters)
                    .env("AQS_EVENTS_PARTITIONS", PARTITIONS)
                    .env("AQS_PROJECTOR_GROUP", format!("{prefix}.{group}"))
                    .env("AQS_KAFKA_SESSION_TIMEOUT_MS", "6000")
                    .env("AQS_LOG", &log_filter);
            }
        };
        let ingest = free_port();
        let ingest_flags: Vec<String> = ingest_flags.iter().map(|f| (*f).to_owned()).collect();
        let mut pipeline = Self {
            ingest,
            probes: Vec::new(),
            ingest_process: None,
            up: None,
            projectors: Vec::new(),
            stores: Vec::new(),
            topics,
            tokens,
        };
        let projector = |name: &'static str,
                         data: PathBuf,
                         clickhouse: Option<ClickHouseConfig>,
                         metrics: SocketAddr| {
            let kafka = kafka.clone();
            Process::start(name, work.join(format!("{name}.log")), move || {
                let mut command = aqs(&data);
                kafka(&mut command, name);
                if let Some(config) = &clickhouse {
                    with_clickhouse(&mut command, config);
                }
                command.args(["projector", "--metrics-listen", &metrics.to_string()]);
                command
            })
        };
        match layout {
            Layout::Standalone => {
                let data = work.join("ingest");
                let (kafka, flags, tokens) =
                    (kafka.clone(), ingest_flags.clone(), tokens_path.clone());
                pipeline.ingest_process = Some(Process::start(
                    "ingest",
                    work.join("ingest.log"),
                    move || {
                        let mut command = aqs(&data);
                        kafka(&mut command, "ingest");
                        command
                            .args(["ingest", "--listen", &ingest.to_string()])
                            .arg("--tokens-file")
                            .arg(&tokens)
                            .args(&flags);
                        command
                    },
                ));
                // The topics exist once ingest is ready; the projectors read them.
                wait_ready(&pipeline, "ingest", ingest);
                let warehouse = database(services);
                let (to_clickhouse, to_embedded) = (free_port(), free_port());
                pipeline.projectors.push(projector(
                    "projector-clickhouse",
                    work.join("projector-clickhouse"),
                    Some(warehouse.clone()),
                    to_clickhouse,
                ));
                let embedded = work.join("projector-embedded");
                pipeline.projectors.push(projector(
                    "projector-embedded",
                    embedded.clone(),
                    None,
                    to_embedded,
                ));
                pipeline.probes = vec![
                    ("projector-clickhouse", to_clickhouse),
                    ("projector-embedded", to_embedded),
                ];
                pipeline.stores = vec![
                    Store::ClickHouse {
                        config: warehouse,
                        by: "aqs projector",
                    },
                    Store::Embedded {
                        data_dir: embedded,
                        by: "aqs projector",
                    },
                ];
            }
            Layout::Up => {
                let (warehouse, second) = (database(services), database(services));
                let data = work.join("up");
                let dashboard = free_port();
                let (kafka_up, flags, tokens, config) = (
                    kafka.clone(),
                    ingest_flags.clone(),
                    tokens_path.clone(),
                    warehouse.clone(),
                );
                let up_data = data.clone();
                pipeline.up = Some(Process::start("up", work.join("up.log"), move || {
                    let mut command = aqs(&up_data);
                    kafka_up(&mut command, "up");
                    with_clickhouse(&mut command, &config);
                    command
                        .args(["up", "--listen", &ingest.to_string()])
                        .args(["--dashboard-listen", &dashboard.to_string()])
                        .args(["--analytics-every", "3600"])
                        .arg("--tokens-file")
                        .arg(&tokens)
                        .args(&flags);
                    command
                }));
                wait_ready(&pipeline, "aqs up", ingest);
                let standalone = free_port();
                pipeline.projectors.push(projector(
                    "projector-clickhouse",
                    work.join("projector-clickhouse"),
                    Some(second.clone()),
                    standalone,
                ));
                pipeline.probes = vec![("up", dashboard), ("projector-clickhouse", standalone)];
                pipeline.stores = vec![
                    Store::Embedded {
                        data_dir: data,
                        by: "aqs up",
                    },
                    Store::ClickHouse {
                        config: warehouse,
                        by: "aqs up",
                    },
                    Store::ClickHouse {
                        config: second,
                        by: "aqs projector",
                    },
                ];
            }
        }
        for (name, address) in pipeline.probes.clone() {
            if name != "up" {
                wait_ready(&pipeline, name, address);
            }
        }
        pipeline
    }

    /// Every process, for kills and failure messages.
    pub fn processes(&self) -> impl Iterator<Item = &Process> {
        self.ingest_process
            .iter()
            .chain(self.up.iter())
            .chain(self.projectors.iter())
    }

    /// The logs' ends, for failure messages.
    pub fn logs(&self) -> String {
        self.processes()
            .map(Process::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A metric summed over the pipeline's projectors (`aqs up` included).
    pub fn metric(&self, series: &str) -> f64 {
        self.probes
            .iter()
            .filter_map(|(_, address)| {
                let (_, text) = http_get(*address, "/metrics")?;
                text.lines().find_map(|line| {
                    line.strip_prefix(series)?
                        .strip_prefix(' ')?
                        .parse::<f64>()
                        .ok()
                })
            })
            .sum()
    }

    /// Stops every process with SIGTERM (projectors first, then ingest); fails the test,
    /// with the logs, unless each exits with success.
    pub fn stop(&self) {
        let mut failures = Vec::new();
        for process in self
            .projectors
            .iter()
            .chain(self.up.iter())
            .chain(self.ingest_process.iter())
        {
            let status = process.stop();
            if !status.success() {
                failures.push(format!("{} exited with {status}", process.name));
            }
        }
        assert!(
            failures.is_empty(),
            "{}\n{}",
            failures.join("; "),
            self.logs()
        );
    }
}

/// Waits until `/readyz` of `address` answers 200 (at most three minutes).
fn wait_ready(pipeline: &Pipeline, name: &str, address: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if http_get(address, "/readyz").is_some_and(|(status, _)| status == 200) {
            return;
        }
        if let Some(process) = pipeline.processes().find(|p| p.exited().is_some()) {
            panic!(
                "{} exited before {name} was ready\n{}",
                process.name,
                pipeline.logs()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{name} not ready within 3 minutes\n{}",
            pipeline.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `GET path` without keep-alive: the status and the body, or `None` without an answer
/// within two seconds.
pub fn http_get(address: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
