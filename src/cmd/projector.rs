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
use aqs_projector::sink::clickhouse::ClickHouseSink;
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_warehouse::ClickHouseConfig;

use aqs_eventlog::LogConsumer;
use aqs_eventlog::kafka::{KafkaConfig, KafkaConsumer};

use super::common::{SinkArgs, StoreArgs};

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
    let checkpoint = match &args.instance {
        Some(instance) => format!("projector-{instance}.db"),
        None => "projector.db".to_owned(),
    };
    let mut store = CheckpointStore::open(&args.store.path(&checkpoint)?)
        .context("opening the checkpoint store")?;
    if matches!(args.action, Some(ProjectorAction::Quarantined)) {
        let mut out = std::io::stdout().lock();
        for record in store.quarantined()? {
            serde_json::to_writer(&mut out, &record)?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let upgraded = !rebuild && store.outdated_format()?.is_some();
    let sink = if args.clickhouse.is_configured() {
        let opened = if rebuild {
            // A rebuild empties the tables first: the server must answer now.
            ClickHouseSink::connect(&args.clickhouse)
        } else {
            ClickHouseSink::connect_or_wait(&args.clickhouse)
        };
        let mut sink = opened.with_context(|| {
            format!(
                "opening the ledger store in ClickHouse database {}",
                args.clickhouse.database
            )
        })?;
        if rebuild {
            store.clear()?;
            sink.clear()?;
            tracing::info!(store = "clickhouse", "rebuilding the ledgers from offset 0");
        }
        if upgraded {
            warn_shared_ledgers_kept();
        }
        Store::new(sink, args.sink.clickhouse())
    } else {
        let mut sink = SqliteSink::open(&args.store.path("ledgers.db")?)
            .context("opening the ledger store")?;
        if rebuild {
            store.clear()?;
            sink.clear()?;
            tracing::info!(store = "sqlite", "rebuilding the ledgers from offset 0");
        }
        if upgraded {
            forget_ledgers_of_an_earlier_form(&mut sink)?;
        }
        Store::new(sink, args.sink.embedded())
    };
    run_with(args, store, vec![sink], rebuild)
}

/// The checkpoint was written in an earlier form (it is not loaded: the log is replayed
/// from offset 0). The embedded ledger store is this projector's own: it is emptied so
/// that the replay writes every row again, as `rebuild` does.
pub fn forget_ledgers_of_an_earlier_form(sink: &mut SqliteSink) -> anyhow::Result<()> {
    sink.clear()
        .context("emptying the embedded ledger store for the rebuild")?;
    tracing::warn!(
        store = "sqlite",
        "checkpoint of an earlier release: the ledger store is emptied and rebuilt from the log"
    );
    Ok(())
}

/// The ClickHouse ledger tables may be shared with other projector instances, so an
/// upgrade does not empty them: rows change as the replay passes the checkpoint's old
/// positions, and rows it never changes keep what the earlier release wrote.
pub fn warn_shared_ledgers_kept() {
    tracing::warn!(
        store = "clickhouse",
        "checkpoint of an earlier release: the ledger is rebuilt from the log; the ClickHouse \
         ledger tables are kept (other instances may share them). For ledgers exact under the \
         new rules (events of different sources sharing ids, retractions limited to their own \
         source, checked money sums), stop every instance and run `aqs projector rebuild` on each"
    );
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
    let ledger = if args.kafka.brokers.is_some() {
        let consumer = KafkaConsumer::connect(&args.kafka).context("connecting to Kafka")?;
        project(consumer, store, stores, settings, &shutdown, metrics)?
    } else {
        let log = args
            .store
            .open_embedded_log(args.kafka.events_partitions, args.kafka.dead_letters)?;
        project(log.consumer()?, store, stores, settings, &shutdown, metrics)?
    };
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
