//! `aqs bench`: throughput and memory of the pipeline's stages on generated data, each beside
//! the limit it is measured against. Prints a Markdown table; never passes or fails on time.
//!
//! Every measured stage runs in a child process of its own, so its peak memory (VmHWM) is its
//! own and not the generator's.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use aqs_analytics::data::{LedgerSource, SqliteSource};
use aqs_analytics::kpi::{KpiParams, compute};
use aqs_eventlog::sqlite::SqliteLog;
use aqs_eventlog::{EventLog, LogConsumer};
use aqs_projector::checkpoint::CheckpointStore;
use aqs_projector::runner::RunnerSettings;
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_schemas::generator::{GeneratorConfig, generate};
use aqs_schemas::{Decoder, Event, decode_canonical};
use chrono::{Duration as Days, NaiveDate};
use serde::{Deserialize, Serialize};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    scenario: Scenario,
    /// Working folder for generated logs and stores (kept between runs to skip regeneration).
    #[arg(long, default_value = "target/bench", global = true)]
    work_dir: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
enum Scenario {
    /// Projector replay from the embedded log against merely reading and decoding it.
    Replay {
        /// Event counts to measure (approximate: the generator's region is sized to them).
        #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
        events: Vec<u64>,
    },
    /// The KPI job on a year of 2,000 agents and a month of 30,000 agents (and smaller sizes).
    Kpi {
        /// Regions to measure, as AGENTSxDAYS.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "500x365,2000x365,7500x30,30000x30"
        )]
        sizes: Vec<String>,
    },
    /// One measured stage, run by the scenarios in a child process.
    #[command(hide = true)]
    Child {
        stage: String,
        dir: PathBuf,
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// The kpi stage also writes its table here (Parquet), to compare runs.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// What a child reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Measured {
    items: u64,
    seconds: f64,
    peak_rss_mib: f64,
}

const START: &str = "2025-12-01";

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.scenario {
        Scenario::Replay { events } => replay(&args.work_dir, &events),
        Scenario::Kpi { sizes } => kpi(&args.work_dir, &sizes),
        Scenario::Child {
            stage,
            dir,
            as_of,
            out,
        } => child(&stage, &dir, as_of, out.as_deref()),
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
                    / 1024.0
                    / 1024.0
            })
        })
        .unwrap_or(0.0);
    format!(
        "{} cores ({cpu}), {memory:.0} GiB, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        chrono::Utc::now().format("%Y-%m-%d")
    )
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn run_child(stage: &str, dir: &Path, as_of: Option<NaiveDate>) -> anyhow::Result<Measured> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["bench", "child", stage])
        .arg(dir)
        .env("AQS_LOG", "warn");
    if let Some(as_of) = as_of {
        command.args(["--as-of", &as_of.to_string()]);
    }
    let output = command.output().context("running a benchmark stage")?;
    anyhow::ensure!(
        output.status.success(),
        "stage {stage} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// Generates a region into an embedded log in `dir` unless it is there already.
fn prepare(dir: &Path, agents: u32, days: u32) -> anyhow::Result<(u64, f64)> {
    let marker = dir.join("prepared.json");
    if let Ok(text) = std::fs::read_to_string(&marker) {
        return Ok(serde_json::from_str(&text)?);
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    eprintln!(
        "bench: generating {agents} agents × {days} days into {}",
        dir.display()
    );
    let config = GeneratorConfig::new(17, agents, START.parse()?, days);
    let path = dir.join("events.ndjson");
    generate(
        &config,
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?),
    )?;
    let log = SqliteLog::open(dir.join("events.db"), aqs_eventlog::DEFAULT_PARTITIONS)?;
    let reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&path)?);
    let started = Instant::now();
    let mut batch: Vec<Event> = Vec::with_capacity(5_000);
    let mut appended = 0_u64;
    for line in std::io::BufRead::split(reader, b'\n') {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        batch.push(
            Decoder::standard()
                .decode(&line)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        if batch.len() == 5_000 {
            log.append(&batch)?;
            appended += batch.len() as u64;
            batch.clear();
        }
    }
    appended += batch.len() as u64;
    log.append(&batch)?;
    let append_rate = appended as f64 / started.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    std::fs::write(&marker, serde_json::to_string(&(appended, append_rate))?)?;
    Ok((appended, append_rate))
}

fn child(
    stage: &str,
    dir: &Path,
    as_of: Option<NaiveDate>,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let items = match stage {
        "decode" => {
            let log = SqliteLog::open(dir.join("events.db"), aqs_eventlog::DEFAULT_PARTITIONS)?;
            let mut consumer = log.consumer()?;
            consumer.seek(&Default::default())?;
            let mut count = 0_u64;
            loop {
                let records = consumer.poll(20_000, Duration::from_millis(1))?;
                if records.is_empty() {
                    break;
                }
                for record in &records {
                    std::hint::black_box(decode_canonical(&record.bytes)?);
                }
                count += records.len() as u64;
            }
            count
        }
        "project" => {
            for file in [
                "projector.db",
                "ledgers.db",
                "projector.db-wal",
                "ledgers.db-wal",
            ] {
                let _ = std::fs::remove_file(dir.join(file));
            }
            let log = SqliteLog::open(dir.join("events.db"), aqs_eventlog::DEFAULT_PARTITIONS)?;
            let settings = RunnerSettings {
                until_idle: true,
                batch_size: 20_000,
                checkpoint_every_events: u64::MAX,
                checkpoint_interval: Duration::from_secs(3600),
                ..RunnerSettings::default()
            };
            super::projector::project(
                log.consumer()?,
                CheckpointStore::open(&dir.join("projector.db"))?,
                SqliteSink::open(&dir.join("ledgers.db"))?,
                settings,
                &AtomicBool::new(false),
                Default::default(),
            )?;
            log.len()?
        }
        "kpi" => {
            let as_of = as_of.context("the kpi stage needs --as-of")?;
            let mut params = KpiParams::new(as_of);
            params.since = START.parse()?;
            let data = SqliteSource::new(dir.join("ledgers.db"))
                .load(params.window_start(), params.as_of)?;
            tracing::debug!(
                ms = started.elapsed().as_millis() as u64,
                agent_days = data.agent_days.len(),
                outlet_days = data.outlet_days.len(),
                "kpi ledgers loaded"
            );
            let mut table = compute(&data, &params)?;
            if let Some(out) = out {
                aqs_analytics::output::write_parquet(&mut table, out)?;
            }
            table.height() as u64
        }
        other => anyhow::bail!("unknown stage {other}"),
    };
    let measured = Measured {
        items,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_mib: peak_rss_mib(),
    };
    println!("{}", serde_json::to_string(&measured)?);
    Ok(ExitCode::SUCCESS)
}

fn replay(work: &Path, sizes: &[u64]) -> anyhow::Result<ExitCode> {
    println!("Projector replay from the embedded log — {}\n", machine());
    println!(
        "| events | append (events/s) | read + decode (events/s, the limit) | replay (events/s) | replay / limit | replay peak RSS (MiB) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for &size in sizes {
        let days = 30;
        let agents = (size / (5 * u64::from(days))).max(10) as u32;
        let dir = work.join(format!("replay-{size}"));
        let (events, append_rate) = prepare(&dir, agents, days)?;
        let decode = run_child("decode", &dir, None)?;
        let project = run_child("project", &dir, None)?;
        let limit = decode.items as f64 / decode.seconds;
        let rate = project.items as f64 / project.seconds;
        println!(
            "| {events} | {append_rate:.0} | {limit:.0} | {rate:.0} | {:.2} | {:.0} |",
            rate / limit,
            project.peak_rss_mib
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn kpi(work: &Path, sizes: &[String]) -> anyhow::Result<ExitCode> {
    println!("KPI job (all scopes × day, week, month) — {}\n", machine());
    println!(
        "| agents × days | events | ledger agent-days | KPI rows | KPI job (s) | peak RSS (MiB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for size in sizes {
        let (agents, days) = size
            .split_once('x')
            .and_then(|(a, d)| Some((a.parse::<u32>().ok()?, d.parse::<u32>().ok()?)))
            .with_context(|| format!("size {size:?} is not AGENTSxDAYS"))?;
        let dir = work.join(format!("kpi-{agents}x{days}"));
        let (events, _) = prepare(&dir, agents, days)?;
        if !dir.join("ledgers.db").exists() || !dir.join("projected").exists() {
            run_child("project", &dir, None)?;
            std::fs::write(dir.join("projected"), "")?;
        }
        let as_of = START.parse::<NaiveDate>()? + Days::days(i64::from(days) - 1);
        let measured = run_child("kpi", &dir, Some(as_of))?;
        let agent_days: i64 = rusqlite::Connection::open(dir.join("ledgers.db"))?.query_row(
            "SELECT COUNT(*) FROM ledger_agent_day",
            [],
            |r| r.get(0),
        )?;
        println!(
            "| {agents} × {days} | {events} | {agent_days} | {} | {:.2} | {:.0} |",
            measured.items, measured.seconds, measured.peak_rss_mib
        );
    }
    Ok(ExitCode::SUCCESS)
}
