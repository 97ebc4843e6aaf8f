//! `aqs-bench`: throughput and memory of the pipeline's stages on generated data, each beside
//! the limit it is measured against. Prints a Markdown table; never passes or fails on time.
//!
//! Every measured stage runs in a child process of its own, so its peak memory (VmHWM) is its
//! own and not the generator's: this binary again for the stages it measures itself, the
//! `aqs` binary ([`aqs_binary`]) for the services it runs (`aqs up`, `aqs projector`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::Context;
use aqs_analytics::kpi::{KpiParams, compute, read_ledgers};
use aqs_eventlog::EventLog;
use aqs_eventlog::sqlite::SqliteLog;
use aqs_schemas::generator::{GeneratorConfig, generate};
use aqs_schemas::{Decoder, Event};
use aqs_tables::ledgers::window::SqliteSource;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

mod aqs_binary;
mod children;
mod compare;
mod freshness;
mod ingest;
mod kpi;
mod parts;
mod replay;
mod soak;
mod stores;

use aqs_binary::aqs_binary;

/// Benchmarks of the aqs pipeline: throughput and memory of each stage on generated data.
#[derive(Debug, clap::Parser)]
#[command(name = "aqs-bench", version, about, long_about = None)]
pub struct BenchArgs {
    #[command(subcommand)]
    scenario: Scenario,
    /// Working folder for generated logs and stores (kept between runs to skip regeneration).
    #[arg(long, default_value = "target/bench", global = true)]
    work_dir: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
enum Scenario {
    /// Every scenario in turn, at the sizes the figures in docs/benchmarks.md come from
    /// (or small ones with --quick). Kafka rows run when AQS_KAFKA_BROKERS is set.
    All {
        /// Small sizes and short runs: checks the whole bench works in a few minutes.
        #[arg(long)]
        quick: bool,
        /// ClickHouse for the comparison of the KPI job with ClickHouse SQL (skipped unset).
        #[command(flatten)]
        clickhouse: aqs_warehouse::ClickHouseConfig,
    },
    /// Projector replay from the embedded log and from Kafka against merely reading and
    /// decoding the same log; on Kafka also with two instances.
    Replay(replay::ReplayArgs),
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
    /// Ingest over HTTP at several batch sizes, beside raw appends to the same log.
    Ingest(ingest::IngestArgs),
    /// Time from ingest's acceptance of an event to its effect in the KPI store of
    /// `aqs up`, under a steady load.
    Freshness(freshness::FreshnessArgs),
    /// Team × month KPIs three ways (the KPI job, ClickHouse SQL, DuckDB on Parquet): equal
    /// results, and their times. Needs ClickHouse and Python's duckdb.
    Compare {
        /// Regions to measure, as AGENTSxDAYS (the `kpi` scenario's folders).
        #[arg(long, value_delimiter = ',', default_value = "2000x365,30000x30")]
        sizes: Vec<String>,
        /// Runs of each SQL engine's query; the best counts.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// The server; each size gets a fresh database named after `--clickhouse-database`.
        #[command(flatten)]
        clickhouse: aqs_warehouse::ClickHouseConfig,
    },
    /// Parts ClickHouse creates per ledger table and second with two projector instances
    /// under a steady load, from `system.parts`. Needs Kafka and ClickHouse.
    Parts(parts::PartsArgs),
    /// Minutes of steady load on `aqs up`: ingest's latency and the process's memory,
    /// minute by minute.
    Soak(soak::SoakArgs),
    /// Embedded stores (SQLite, fjall, redb) on the projector's event records: batched
    /// durable commits with the positions, point reads, disk and memory.
    Stores(stores::StoresArgs),
    /// One measured stage, run by the scenarios in a child process.
    #[command(hide = true)]
    Child {
        stage: String,
        dir: PathBuf,
        #[arg(long)]
        as_of: Option<NaiveDate>,
        #[command(flatten)]
        kafka: replay::KafkaStage,
        /// The kpi stage also writes its table here (Parquet), to compare runs.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Records a store stage writes.
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        #[command(flatten)]
        store: stores::StoreStage,
    },
}

/// What a child reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Measured {
    items: u64,
    seconds: f64,
    peak_rss_mib: f64,
    /// User + system CPU time of the stage's process.
    #[serde(default)]
    cpu_seconds: f64,
    /// What a projector stage's checkpoints cost.
    #[serde(default)]
    checkpoints: Option<replay::CheckpointCost>,
}

const START: &str = "2025-12-01";

impl Measured {
    /// `items` done in `seconds` by this process, with its peak memory and CPU time so far.
    fn by_this_process(items: u64, seconds: f64) -> Self {
        Self {
            items,
            seconds,
            peak_rss_mib: peak_rss_mib(),
            cpu_seconds: cpu_seconds(),
            checkpoints: None,
        }
    }
}

/// The KPI job's parameters over a generated region (its first day is `START`).
fn kpi_params(as_of: NaiveDate) -> anyhow::Result<KpiParams> {
    let mut params = KpiParams::new(as_of);
    params.since = START.parse()?;
    Ok(params)
}

/// The last day of a generated region of `days` days: the as-of date of its KPIs.
fn region_last_day(days: u32) -> anyhow::Result<NaiveDate> {
    Ok(START.parse::<NaiveDate>()? + chrono::Duration::days(i64::from(days) - 1))
}

/// The whole KPI job over the ledgers of a region's folder, as of `as_of`.
fn kpi_table(dir: &Path, as_of: NaiveDate) -> anyhow::Result<polars::prelude::DataFrame> {
    let started = Instant::now();
    let params = kpi_params(as_of)?;
    let data = read_ledgers(
        &SqliteSource::new(aqs_tables::DataDir::new(dir).ledgers()),
        &params,
    )?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        agent_days = data.agent_days.len(),
        outlet_days = data.outlet_days.len(),
        trailing_agent_days = data.trailing_agent_days.len(),
        "kpi ledgers loaded"
    );
    Ok(compute(data, &params)?)
}

fn main() -> ExitCode {
    aqs_allocator::prefer_large_pages();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AQS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = <BenchArgs as clap::Parser>::parse();
    match run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("aqs-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.scenario {
        Scenario::All { quick, clickhouse } => all(&args.work_dir, quick, &clickhouse),
        Scenario::Replay(replay_args) => replay::replay(&args.work_dir, &replay_args),
        Scenario::Kpi { sizes } => kpi::kpi(&args.work_dir, &sizes),
        Scenario::Ingest(ingest_args) => ingest::ingest(&ingest_args),
        Scenario::Freshness(freshness_args) => {
            freshness::freshness(&args.work_dir, &freshness_args)
        }
        Scenario::Compare {
            sizes,
            runs,
            clickhouse,
        } => compare::compare(&args.work_dir, &sizes, &clickhouse, runs),
        Scenario::Parts(parts_args) => parts::parts(&args.work_dir, &parts_args),
        Scenario::Soak(soak_args) => soak::soak(&args.work_dir, &soak_args),
        Scenario::Stores(stores_args) => stores::stores(&args.work_dir, &stores_args),
        Scenario::Child {
            stage,
            dir,
            as_of,
            kafka,
            out,
            records,
            store,
        } => {
            if stage == "store-crash" {
                stores::crash_child(&dir, store.batch)?;
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(name) = stage.strip_prefix("store-") {
                stores::child(name, &dir, records, &store)?;
                return Ok(ExitCode::SUCCESS);
            }
            child(&stage, &dir, as_of, &kafka, out.as_deref())
        }
    }
}

fn all(
    work: &Path,
    quick: bool,
    clickhouse: &aqs_warehouse::ClickHouseConfig,
) -> anyhow::Result<ExitCode> {
    let kafka = std::env::var("AQS_KAFKA_BROKERS")
        .ok()
        .filter(|b| !b.is_empty());
    // Freshness runs `aqs up`: a missing binary is said now, not after the other scenarios.
    aqs_binary()?;
    let started = Instant::now();
    println!("## aqs-bench all{}\n", if quick { " --quick" } else { "" });
    let sizes = |quick_sizes: &[&str], full: &[&str]| -> Vec<String> {
        let chosen = if quick { quick_sizes } else { full };
        chosen.iter().map(|s| (*s).to_owned()).collect()
    };
    replay::replay(
        work,
        &replay::ReplayArgs::new(
            if quick {
                vec![100_000, 300_000]
            } else {
                vec![1_000_000, 10_000_000]
            },
            kafka.clone(),
        ),
    )?;
    ingest::ingest(&ingest::IngestArgs::new(
        if quick { 3 } else { 10 },
        kafka.clone(),
    ))?;
    kpi::kpi(
        work,
        &sizes(
            &["500x30", "2000x30"],
            &["500x365", "2000x365", "7500x30", "30000x30"],
        ),
    )?;
    if clickhouse.is_configured() {
        let sizes = sizes(&["500x30", "2000x30"], &["2000x365", "30000x30"]);
        let code = compare::compare(work, &sizes, clickhouse, 3)?;
        anyhow::ensure!(code == ExitCode::SUCCESS, "the KPI comparison did not pass");
    } else {
        println!(
            "\n### KPI job beside ClickHouse SQL and DuckDB\n\nSkipped: AQS_CLICKHOUSE_URL is not set.\n"
        );
    }
    freshness::freshness(
        work,
        &freshness::FreshnessArgs::new(
            if quick { vec![200] } else { vec![200, 2000] },
            if quick { 20 } else { 60 },
            kafka.clone(),
        ),
    )?;
    parts::parts(
        work,
        &parts::PartsArgs::new(if quick { 10 } else { 60 }, kafka, clickhouse.clone()),
    )?;
    soak::soak(
        work,
        &if quick {
            soak::SoakArgs::new(10, 2_000, None)
        } else {
            soak::SoakArgs::new(300, 20_000, None)
        },
    )?;
    eprintln!(
        "bench: all scenarios done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
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
    status_mib("VmHWM:")
}

/// This process's resident memory now.
fn current_rss_mib() -> f64 {
    status_mib("VmRSS:")
}

/// A memory figure of /proc/self/status, in MiB.
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A region of the `kpi` scenario, written AGENTSxDAYS: generated and projected into its
/// folder unless that was done before. Returns agents, days, the folder and the events
/// appended.
fn projected_region(work: &Path, size: &str) -> anyhow::Result<(u32, u32, PathBuf, u64)> {
    let (agents, days) = size
        .split_once('x')
        .and_then(|(a, d)| Some((a.parse::<u32>().ok()?, d.parse::<u32>().ok()?)))
        .with_context(|| format!("size {size:?} is not AGENTSxDAYS"))?;
    let dir = work.join(format!("kpi-{agents}x{days}"));
    let (events, _) = prepare(&dir, agents, days)?;
    if !aqs_tables::DataDir::new(&dir).ledgers().exists() || !dir.join("projected").exists() {
        run_child("project", &dir, &[])?;
        std::fs::write(dir.join("projected"), "")?;
    }
    Ok((agents, days, dir, events))
}

/// CPU time (user + system) of this process so far.
fn cpu_seconds() -> f64 {
    // Fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|text| {
            let after_name = &text[text.rfind(')')? + 2..];
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            let ticks =
                fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}

/// The command that runs one stage in a child process.
fn child_command(stage: &str, dir: &Path, extra: &[String]) -> anyhow::Result<Command> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["child", stage])
        .arg(dir)
        .args(extra)
        .env("AQS_LOG", "warn");
    Ok(command)
}

fn run_child(stage: &str, dir: &Path, extra: &[String]) -> anyhow::Result<Measured> {
    let output = child_command(stage, dir, extra)?
        .output()
        .context("running a benchmark stage")?;
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
    let log = SqliteLog::open(
        aqs_tables::DataDir::new(dir).events(),
        aqs_eventlog::DEFAULT_PARTITIONS,
    )?;
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
    kafka: &replay::KafkaStage,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    if let Some(measured) = compare::child(stage, dir, as_of)? {
        println!("{}", serde_json::to_string(&measured)?);
        return Ok(ExitCode::SUCCESS);
    }
    let started = Instant::now();
    let mut checkpoints = None;
    let items = match stage {
        "decode" | "project" | "decode-kafka" | "project-kafka" => {
            let (records, cost) = replay::child_stage(stage, dir, kafka)?;
            checkpoints = cost;
            records
        }
        "outlets" => {
            let as_of = as_of.context("the outlets stage needs --as-of")?;
            let mut params = aqs_analytics::outlets::OutletParams::new(as_of);
            params.since = START.parse()?;
            let source = aqs_tables::outlets::source::SqliteOutletSource::new(
                aqs_tables::DataDir::new(dir).ledgers(),
            );
            let data = aqs_analytics::outlets::read_outlet_ledgers(&source, &params)?;
            let loaded = started.elapsed();
            let rows = aqs_analytics::outlets::compute(&data, &params)?.height() as u64;
            tracing::debug!(
                load_ms = loaded.as_millis() as u64,
                compute_ms = (started.elapsed() - loaded).as_millis() as u64,
                outlet_months = data.activity.len(),
                "outlet table computed"
            );
            rows
        }
        "kpi" => {
            let mut table = kpi_table(dir, as_of.context("the kpi stage needs --as-of")?)?;
            if let Some(out) = out {
                aqs_tables::kpi::write_parquet(&mut table, out)?;
            }
            table.height() as u64
        }
        other => anyhow::bail!("unknown stage {other}"),
    };
    let measured = Measured {
        checkpoints,
        ..Measured::by_this_process(items, started.elapsed().as_secs_f64())
    };
    println!("{}", serde_json::to_string(&measured)?);
    Ok(ExitCode::SUCCESS)
}
