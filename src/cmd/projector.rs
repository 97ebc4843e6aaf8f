use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use aqs_projector::checkpoint::CheckpointStore;
use aqs_projector::ledger::Ledger;
use aqs_projector::metrics::ProjectorMetrics;
use aqs_projector::runner::{Runner, RunnerSettings};
use aqs_projector::sink::Store;
use aqs_warehouse::ClickHouseConfig;

use aqs_eventlog::LogConsumer;
use aqs_eventlog::kafka::KafkaConfig;

use super::common::{SinkArgs, StoreArgs};
use crate::backends::{Layout, Start, log_to_read, open_ledger_stores};

#[derive(Debug, clap::Args)]
pub struct ProjectorArgs {
    #[command(subcommand)]
    action: Option<ProjectorAction>,
    #[command(flatten)]
    store: StoreArgs,
    /// The Kafka log, used when brokers are set; otherwise the embedded log in the data folder.
    #[command(flatten)]
    kafka: KafkaConfig,
    /// The ledger store: ClickHouse when its URL is set; otherwise `ledgers.db` in the data
    /// folder.
    #[command(flatten)]
    clickhouse: ClickHouseConfig,
    #[command(flatten)]
    sink: SinkArgs,
    /// Names this instance's checkpoint (`projector-<instance>.db`) when several projector
    /// instances share a data folder; each instance keeps its own state.
    #[arg(long, env = "AQS_PROJECTOR_INSTANCE")]
    instance: Option<String>,
    /// Records folded per batch.
    #[arg(long, env = "AQS_PROJECTOR_BATCH_SIZE", default_value_t = 5_000)]
    batch_size: usize,
    /// Checkpoint after this many events...
    #[arg(
        long,
        env = "AQS_PROJECTOR_CHECKPOINT_EVENTS",
        default_value_t = 200_000
    )]
    checkpoint_every: u64,
    /// ...or after this many seconds, whichever comes first.
    #[arg(long, env = "AQS_PROJECTOR_CHECKPOINT_SECONDS", default_value_t = 10)]
    checkpoint_seconds: u64,
    /// Serve the projector's metrics (Prometheus text) at `http://ADDR/metrics`, and its
    /// probes at `/healthz` (alive) and `/readyz` (every ledger store takes writes).
    #[arg(long, env = "AQS_PROJECTOR_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Host names the metrics endpoint answers to, comma-separated (`*.example.com`: the
    /// names under it; `*`: any), besides `localhost` and IP addresses; another `Host` is
    /// answered 421 (a defence against DNS rebinding).
    #[arg(
        long,
        env = "AQS_PROJECTOR_METRICS_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_parser = super::common::parse_allowed_host
    )]
    metrics_allowed_hosts: Vec<String>,
    /// Exit once the log is fully read instead of waiting for more.
    #[arg(long)]
    until_idle: bool,
}

#[derive(Debug, clap::Subcommand)]
enum ProjectorAction {
    /// Forget the checkpoint and the ledgers, replay the log from offset 0, then exit.
    Rebuild,
    /// Print the events this instance set aside because a ledger store cannot hold a value
    /// of theirs (or the record is no event), one JSON object a line: where in the log, the
    /// event id, the reason and the record as read.
    Quarantined,
}

pub fn run(args: ProjectorArgs) -> anyhow::Result<ExitCode> {
    let rebuild = matches!(args.action, Some(ProjectorAction::Rebuild));
    let checkpoint = args.store.data()?.checkpoints(args.instance.as_deref());
    let mut store = CheckpointStore::open(&checkpoint).context("opening the checkpoint store")?;
    if matches!(args.action, Some(ProjectorAction::Quarantined)) {
        let mut out = std::io::stdout().lock();
        for record in store.quarantined()? {
            serde_json::to_writer(&mut out, &record)?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let start = if rebuild {
        Start::Rebuild
    } else {
        Start::Resume
    };
    let stores = open_ledger_stores(
        Layout::Service,
        start,
        &args.store,
        &args.clickhouse,
        &args.sink,
        &mut store,
    )?;
    run_with(args, store, stores, rebuild)
}

fn run_with(
    args: ProjectorArgs,
    store: CheckpointStore,
    stores: Vec<Store>,
    rebuild: bool,
) -> anyhow::Result<ExitCode> {
    let settings = RunnerSettings {
        batch_size: args.batch_size,
        checkpoint_every_events: args.checkpoint_every,
        checkpoint_interval: Duration::from_secs(args.checkpoint_seconds),
        until_idle: args.until_idle || rebuild,
        clock: args.store.clock()?,
        partitions: args.kafka.events_partitions,
        ..RunnerSettings::default()
    };
    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&shutdown);
    ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let metrics = Arc::new(ProjectorMetrics::default());
    if let Some(address) = args.metrics_listen {
        let listener = std::net::TcpListener::bind(address)
            .with_context(|| format!("listening on {address} for metrics"))?;
        let allowed = aqs_http::AllowedHosts::new(&args.metrics_allowed_hosts)?;
        aqs_projector::metrics::serve_metrics(listener, Arc::clone(&metrics), allowed)?;
    }
    let reader = log_to_read(&args.store, &args.kafka)?.open()?;
    let ledger = project(reader, store, stores, settings, &shutdown, metrics)?;
    // The process exits next: freeing a large ledger piece by piece would take seconds.
    std::mem::forget(ledger);
    Ok(ExitCode::SUCCESS)
}

/// Folds the log into the ledger store until idle or shut down; returns the ledger, for
/// the caller to drop or, when the process is about to exit, to forget.
pub fn project<C: LogConsumer>(
    consumer: C,
    store: CheckpointStore,
    stores: Vec<Store>,
    settings: RunnerSettings,
    shutdown: &AtomicBool,
    metrics: Arc<ProjectorMetrics>,
) -> anyhow::Result<Ledger> {
    let mut runner = match Runner::new(consumer, stores, store, settings, Arc::clone(&metrics)) {
        Ok(runner) => runner,
        Err(error) => {
            metrics.health.set_stopped(error.to_string());
            return Err(error.into());
        }
    };
    let started = std::time::Instant::now();
    let summary = runner.run(shutdown)?;
    let ledger = runner.take_ledger();
    drop(runner);
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "projector: {} records read in {seconds:.2} s ({:.0}/s), {} events folded in total{}",
        summary.records_read,
        summary.records_read as f64 / seconds.max(1e-9),
        summary.applied_total,
        if summary.resumed_from_checkpoint {
            ", resumed from checkpoint"
        } else {
            ""
        }
    );
    tracing::debug!(metrics = %metrics.render(), "final metrics");
    Ok(ledger)
}
