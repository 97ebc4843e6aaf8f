use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use aqs_http::operations::Operations;
use aqs_http::{AllowedHosts, ConnectionLimits, ConnectionStats, Exposition, HostCheckLayer};
use aqs_projector::checkpoint::CheckpointStore;
use aqs_projector::ledger::Ledger;
use aqs_projector::metrics::ProjectorMetrics;
use aqs_projector::runner::{Runner, RunnerSettings};
use aqs_projector::sink::Store;
use aqs_warehouse::ClickHouseConfig;

use aqs_eventlog::LogConsumer;
use aqs_eventlog::kafka::KafkaConfig;

use super::common::{LogWatchArgs, SinkArgs, StoreArgs};
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
    #[command(flatten)]
    watch: LogWatchArgs,
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
    /// Event records (what the fold remembers of each event, about 150 bytes each) held in
    /// memory between checkpoints; past this they go to the checkpoint's store early.
    #[arg(
        long,
        env = "AQS_PROJECTOR_MAX_RECORDS_IN_MEMORY",
        default_value_t = aqs_projector::runner::DEFAULT_MAX_RECORDS_IN_MEMORY
    )]
    max_records_in_memory: usize,
    /// Serve the projector's metrics (Prometheus text) at `http://ADDR/metrics`, and its
    /// probes at `/healthz` (alive) and `/readyz` (every ledger store takes writes).
    #[arg(long, env = "AQS_PROJECTOR_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
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
    if matches!(args.action, Some(ProjectorAction::Quarantined)) {
        // Read beside a running projector, which holds the rest of its store.
        let mut out = std::io::stdout().lock();
        for record in CheckpointStore::quarantined_at(&checkpoint)
            .context("reading the projector's quarantined records")?
        {
            serde_json::to_writer(&mut out, &record)?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut store = CheckpointStore::open(&checkpoint).context("opening the checkpoint store")?;
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
        max_records_in_memory: args.max_records_in_memory,
        checkpoint_interval: Duration::from_secs(args.checkpoint_seconds),
        until_idle: args.until_idle || rebuild,
        clock: args.store.clock()?,
        partitions: args.kafka.events_partitions,
        stuck_transaction_after: args.watch.stuck_transaction_after(),
        ..RunnerSettings::default()
    };
    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&shutdown);
    ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let metrics = Arc::new(ProjectorMetrics::default());
    if let Some(address) = args.metrics_listen {
        serve_operations(address, &args.metrics_allowed_hosts, Arc::clone(&metrics))?;
    }
    let reader = log_to_read(&args.store, &args.kafka)?.open()?;
    let ledger = project(reader, store, stores, settings, &shutdown, metrics)?;
    // The process exits next: freeing a large ledger piece by piece would take seconds.
    std::mem::forget(ledger);
    Ok(ExitCode::SUCCESS)
}

/// The variable that lists the host names the projector's endpoint answers to.
const METRICS_ALLOWED_HOSTS_SETTING: &str = "AQS_PROJECTOR_METRICS_ALLOWED_HOSTS";

/// The limits of the projector's endpoint: its clients are scrapers and probes, which send
/// their request at once and keep a connection alive between scrapes.
const OPERATIONS_LIMITS: ConnectionLimits = ConnectionLimits {
    max_connections: 16,
    header_timeout: Duration::from_secs(2),
    idle_timeout: Duration::from_secs(60),
};

/// What the projector's `/metrics` and `/readyz` answer.
struct ProjectorOperations {
    metrics: Arc<ProjectorMetrics>,
    connections: Arc<ConnectionStats>,
    host_check: HostCheckLayer,
}

impl Operations for ProjectorOperations {
    fn metrics(&self) -> String {
        let mut metrics = Exposition::new();
        self.metrics.write(&mut metrics);
        metrics
            .counter(
                "aqs_projector_misdirected_requests_total",
                "Requests refused for naming a host the endpoint does not answer to (421).",
            )
            .value(self.host_check.refused());
        self.connections.render("projector", &mut metrics);
        metrics.into_text()
    }

    /// Every ledger store takes writes and the runner reads.
    fn readiness(&self) -> Result<(), String> {
        self.metrics.health.check()
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `address` from a thread of its own, for as
/// long as the process runs, with the HTTP stack of every other server of aqs. A request
/// naming a host not in `allowed_hosts` (DNS rebinding) is answered 421.
fn serve_operations(
    address: SocketAddr,
    allowed_hosts: &[String],
    metrics: Arc<ProjectorMetrics>,
) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(address)
        .with_context(|| format!("listening on {address} for metrics"))?;
    listener
        .set_nonblocking(true)
        .context("setting up the metrics listener")?;
    let host_check = HostCheckLayer::new(
        AllowedHosts::new(allowed_hosts)?,
        METRICS_ALLOWED_HOSTS_SETTING,
    );
    let connections = Arc::new(ConnectionStats::default());
    let operations = ProjectorOperations {
        metrics,
        connections: Arc::clone(&connections),
        host_check: host_check.clone(),
    };
    let router = aqs_http::operations::router(Arc::new(operations)).layer(host_check);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the metrics endpoint's runtime")?;
    std::thread::Builder::new()
        .name("projector-metrics".into())
        .spawn(move || {
            let served = runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                aqs_http::serve(
                    listener,
                    router,
                    OPERATIONS_LIMITS,
                    connections,
                    std::future::pending(),
                )
                .await
            });
            if let Err(error) = served {
                tracing::error!(%error, "the projector's metrics endpoint stopped");
            }
        })
        .context("starting the metrics endpoint")?;
    tracing::info!(%address, "serving metrics and probes");
    Ok(())
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
