//! End-to-end freshness of `aqs up`: the time from an event's acceptance by ingest to its
//! effect in the KPI store, under a steady load.
//!
//! `aqs up --demo` runs in a child process (a generated region, month to date, then the
//! KPI job every `--analytics-every` seconds). The bench posts visits at a steady rate; a
//! share of them are probes, visits of one probe agent. When the HTTP answer comes back
//! the probe is accepted; it has taken effect once the KPI store (the Parquet file the job
//! rewrites) shows that many visits on the probe agent's day.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use polars::prelude::*;

use super::children::free_port;
use super::machine;

const PROBE_AGENT: &str = "bench-probe";

#[derive(Debug, Clone, clap::Args)]
pub struct FreshnessArgs {
    /// Agents of the demo regions to measure (the KPI job's size grows with them).
    #[arg(long, value_delimiter = ',', default_value = "200,2000")]
    agents: Vec<u32>,
    /// Events per second posted.
    #[arg(long, default_value_t = 1_000)]
    events_per_second: u32,
    /// Seconds of steady load measured per case.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seconds between two runs of the KPI job in `aqs up`.
    #[arg(long, default_value_t = 1)]
    analytics_every: u64,
    /// Kafka bootstrap servers for a second case on Kafka; unset: the embedded log only.
    #[arg(long = "kafka-brokers", env = "AQS_KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
}

impl FreshnessArgs {
    pub fn new(agents: Vec<u32>, seconds: u64, kafka_brokers: Option<String>) -> Self {
        Self {
            agents,
            events_per_second: 1_000,
            seconds,
            analytics_every: 1,
            kafka_brokers,
        }
    }
}

/// `aqs up` in a child process, stopped when dropped.
struct Up {
    child: Child,
    ingest: SocketAddr,
    dashboard: SocketAddr,
    data_dir: PathBuf,
}

impl Drop for Up {
    fn drop(&mut self) {
        super::children::ask_to_stop(&self.child);
        super::children::wait_or_kill(&mut self.child, Duration::from_secs(20));
    }
}

fn start_up(
    work: &Path,
    agents: u32,
    args: &FreshnessArgs,
    kafka: Option<&str>,
) -> anyhow::Result<Up> {
    let name = format!(
        "freshness-{agents}-{}",
        if kafka.is_some() { "kafka" } else { "embedded" }
    );
    let data_dir = work.join(name);
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)?;
    }
    std::fs::create_dir_all(&data_dir)?;
    let (ingest, dashboard) = (free_port()?, free_port()?);
    let mut command = Command::new(super::aqs_binary()?);
    command
        .args(["up", "--demo", "--demo-events-per-second", "0"])
        .args(["--demo-agents", &agents.to_string()])
        .args(["--analytics-every", &args.analytics_every.to_string()])
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--listen", &ingest.to_string()])
        .args(["--dashboard-listen", &dashboard.to_string()])
        .env("AQS_LOG", "warn")
        .env_remove("AQS_CLICKHOUSE_URL")
        .env_remove("AQS_KAFKA_BROKERS")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(data_dir.join("up.log"))?);
    if let Some(brokers) = kafka {
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)?
            .as_millis();
        let prefix = format!("aqs-freshness-{stamp}");
        command
            .env("AQS_KAFKA_BROKERS", brokers)
            .env("AQS_EVENTS_TOPIC", format!("{prefix}-events"))
            .env("AQS_REFERENCE_TOPIC", format!("{prefix}-reference"))
            .env("AQS_DEAD_LETTER_TOPIC", format!("{prefix}-dead-letter"))
            .env("AQS_PROJECTOR_GROUP", format!("{prefix}-projector"));
    }
    let up = Up {
        child: command.spawn().context("starting aqs up")?,
        ingest,
        dashboard,
        data_dir,
    };
    Ok(up)
}

/// Visits of the probe agent on its day in the newest KPI file, if there is one.
fn probe_visits(kpi_file: &Path) -> Option<i64> {
    let file = std::fs::File::open(kpi_file).ok()?;
    let frame = ParquetReader::new(file)
        .with_columns(Some(vec![
            "scope".into(),
            "scope_id".into(),
            "period".into(),
            "visits".into(),
        ]))
        .finish()
        .ok()?;
    let found = frame
        .lazy()
        .filter(
            col("scope")
                .eq(lit("agent"))
                .and(col("scope_id").eq(lit(PROBE_AGENT)))
                .and(col("period").eq(lit("day"))),
        )
        .select([col("visits").sum()])
        .collect()
        .ok()?;
    found
        .column("visits")
        .ok()?
        .get(0)
        .ok()?
        .try_extract::<i64>()
        .ok()
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

/// A visit event at the current time, in the demo region's zone.
fn visit(agent: &str, outlet: &str, id: &str) -> serde_json::Value {
    let now =
        chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08"));
    serde_json::json!({
        "event_id": id,
        "type": "outlet_visit",
        "schema_version": 1,
        "occurred_at": now.to_rfc3339(),
        "source": "demo",
        "agent_id": agent,
        "payload": {"outlet_id": outlet, "purpose": "promotion"},
    })
}

/// What one case measured.
struct Case {
    events_per_second: f64,
    latencies: Vec<Duration>,
    probes_sent: usize,
    kpi_runs: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64()
}

async fn measure(up: &mut Up, args: &FreshnessArgs) -> anyhow::Result<Case> {
    let client = reqwest::Client::new();
    let base = format!("http://{}", up.ingest);
    // The demo region is loaded and the first KPI run written before the load starts.
    let kpi_file = |date: chrono::NaiveDate| {
        aqs_tables::DataDir::new(&up.data_dir)
            .kpi_files()
            .file(date)
    };
    let today = || {
        chrono::Utc::now()
            .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08"))
            .date_naive()
    };
    // Ready: ingest answers, the projector has folded the demo region (lag 0 after some
    // events), and two KPI runs finished since.
    let ready_deadline = Instant::now() + Duration::from_secs(900);
    let mut caught_up_runs: Option<(Option<SystemTime>, u32)> = None;
    loop {
        anyhow::ensure!(
            Instant::now() < ready_deadline,
            "aqs up was not ready within 15 minutes; see {}",
            up.data_dir.join("up.log").display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(Some(status)) = up.child.try_wait() {
            anyhow::bail!(
                "aqs up exited ({status}) before it was ready; see {}",
                up.data_dir.join("up.log").display()
            );
        }
        match &mut caught_up_runs {
            None => {
                let ready = client
                    .get(format!("{base}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                let metrics = match client
                    .get(format!("http://{}/metrics", up.dashboard))
                    .send()
                    .await
                {
                    Ok(response) => response.text().await.unwrap_or_default(),
                    Err(_) => continue,
                };
                let value = |name: &str| {
                    metrics
                        .lines()
                        .find(|l| l.starts_with(name))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse::<f64>().ok())
                };
                if ready
                    && value("aqs_projector_events_total{outcome=\"applied\"}").unwrap_or(0.0) > 0.0
                    && value("aqs_projector_consumer_lag_events") == Some(0.0)
                {
                    caught_up_runs = Some((modified(&kpi_file(today())), 0));
                }
            }
            Some((last, runs)) => {
                let stamp = modified(&kpi_file(today()));
                if stamp.is_some() && stamp != *last {
                    *last = stamp;
                    *runs += 1;
                    if *runs == 2 {
                        break;
                    }
                }
            }
        }
    }
    let token = std::fs::read_to_string(up.data_dir.join("demo-token.txt"))?;
    let token = token.trim().to_owned();

    // Ten batches a second; every fifth batch carries one probe.
    let batch = (args.events_per_second / 10).max(1) as usize;
    let started = Instant::now();
    let end = started + Duration::from_secs(args.seconds);
    let mut accepted_at: Vec<Instant> = Vec::new();
    let mut seen_visits = 0_i64;
    let mut latencies = Vec::new();
    let mut last_modified = None;
    let mut kpi_runs = 0;
    let mut sent = 0_u64;
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tick = 0_u64;
    // Load, then keep watching until every probe took effect (or a minute passed).
    let watch_end = end + Duration::from_secs(60);
    while Instant::now() < watch_end {
        if Instant::now() < end {
            ticker.tick().await;
            tick += 1;
            let probe = tick.is_multiple_of(5);
            let mut events = Vec::with_capacity(batch);
            for k in 0..batch {
                let n = sent + k as u64;
                let id = format!("fresh-{}-{n}", started.elapsed().as_nanos());
                if probe && k == 0 {
                    events.push(visit(PROBE_AGENT, "bench-probe-outlet", &id));
                } else {
                    let agent = format!("bench-agent-{}", n % 500);
                    let outlet = format!("bench-outlet-{}", n % 500);
                    events.push(visit(&agent, &outlet, &id));
                }
            }
            let response = client
                .post(format!("{base}/v1/events"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&events)?)
                .send()
                .await?;
            let status = response.status();
            let body = response.text().await?;
            anyhow::ensure!(status == 200, "ingest answered {status}: {body}");
            if probe {
                accepted_at.push(Instant::now());
            }
            sent += batch as u64;
        } else {
            if seen_visits as usize >= accepted_at.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let file = kpi_file(today());
        let stamp = modified(&file);
        if stamp.is_some() && stamp != last_modified {
            last_modified = stamp;
            kpi_runs += 1;
            if let Some(visits) = probe_visits(&file) {
                let now = Instant::now();
                while seen_visits < visits && (seen_visits as usize) < accepted_at.len() {
                    latencies.push(now - accepted_at[seen_visits as usize]);
                    seen_visits += 1;
                }
            }
        }
    }
    let load_seconds = args.seconds as f64;
    Ok(Case {
        events_per_second: sent as f64 / load_seconds,
        latencies,
        probes_sent: accepted_at.len(),
        kpi_runs,
    })
}

pub fn freshness(work: &Path, args: &FreshnessArgs) -> anyhow::Result<ExitCode> {
    println!(
        "\n### End-to-end freshness in `aqs up`: ingest acceptance to the KPI store — {}\n",
        machine()
    );
    println!(
        "Visits posted in batches ten times a second for {} s; every fifth batch carries a probe; KPI job every {} s; the KPI store is the Parquet file the job rewrites, watched every 100 ms at most.\n",
        args.seconds, args.analytics_every
    );
    if args.kafka_brokers.is_none() {
        println!("Kafka rows skipped: AQS_KAFKA_BROKERS is not set.\n");
    }
    println!(
        "| log | demo agents | events/s posted | probes | seen | p50 s | p99 s | max s | KPI files written |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut logs: Vec<Option<&str>> = vec![None];
    if let Some(brokers) = args.kafka_brokers.as_deref() {
        logs.push(Some(brokers));
    }
    for &agents in &args.agents {
        for kafka in &logs {
            let mut up = start_up(work, agents, args, *kafka)?;
            let mut case = runtime.block_on(measure(&mut up, args))?;
            drop(up);
            case.latencies.sort_unstable();
            println!(
                "| {} | {agents} | {:.0} | {} | {} | {:.2} | {:.2} | {:.2} | {} |",
                if kafka.is_some() {
                    "Kafka"
                } else {
                    "embedded (SQLite)"
                },
                case.events_per_second,
                case.probes_sent,
                case.latencies.len(),
                percentile(&case.latencies, 0.50),
                percentile(&case.latencies, 0.99),
                case.latencies
                    .last()
                    .map_or(f64::NAN, Duration::as_secs_f64),
                case.kpi_runs
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
