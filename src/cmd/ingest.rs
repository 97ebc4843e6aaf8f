use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aqs_eventlog::EventLog;
use aqs_eventlog::kafka::{KafkaConfig, TransactionalKafkaLog};
use aqs_ingest::IngestConfig;
use aqs_ingest::auth::{Auth, hash_token};
use aqs_ingest::dedup::{DedupConfig, DedupIndex, DedupLog};
use aqs_ingest::metrics::MetricsSource;
use aqs_ingest::readiness::{AllReady, EmbeddedReadiness, Readiness};
use aqs_ingest::server::{IngestState, serve, shutdown_signal};

use super::common::StoreArgs;
use crate::backends::{EventLogAt, event_log};

/// File of the dedup index in the data folder (Kafka only).
const DEDUP_INDEX_FILE: &str = "ingest-dedup.db";
/// Bound on one readiness look at Kafka.
const KAFKA_READINESS_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    #[command(subcommand)]
    action: Option<IngestAction>,
    #[command(flatten)]
    config: IngestConfig,
    #[command(flatten)]
    dedup: DedupConfig,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    kafka: KafkaConfig,
}

#[derive(Debug, clap::Subcommand)]
enum IngestAction {
    /// Print the SHA-256 of the token read from standard input (one trailing newline is
    /// ignored), as the tokens file wants it.
    #[command(hide = true)]
    HashToken,
}

pub fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    if let Some(IngestAction::HashToken) = args.action {
        return print_token_hash();
    }
    args.config.validate()?;
    let auth = Auth::from_config(&args.config)?;
    match &auth {
        Auth::Tokens(tokens) => tracing::info!(sources = ?tokens.sources(), "API tokens loaded"),
        Auth::Disabled => tracing::warn!(
            listen = %args.config.listen,
            "authentication is off (--insecure-no-auth): anyone who reaches the API may publish \
             events of any source"
        ),
    }
    let opened = open_log(&args.config, &args.dedup, &args.store, &args.kafka)?;
    let state = opened.serve_with(auth, args.config.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("aqs-ingest")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.config.listen)
            .await
            .with_context(|| format!("listening on {}", args.config.listen))?;
        serve(listener, state, shutdown_signal())
            .await
            .context("serving the ingest API")
    })?;
    // Every append has returned (acknowledged or failed) by now; dropping the state closes
    // the log's writer with nothing pending.
    Ok(ExitCode::SUCCESS)
}

/// The log ingest appends to, its readiness probe, and the metrics of what lies behind it.
pub(crate) struct OpenedLog {
    pub log: Arc<dyn EventLog>,
    pub readiness: Arc<dyn Readiness>,
    pub metrics: Option<Arc<dyn MetricsSource>>,
}

impl OpenedLog {
    /// The state of an ingest server on this log.
    pub fn serve_with(self, auth: Auth, config: IngestConfig) -> IngestState {
        let state = IngestState::new(self.log, self.readiness, auth, config);
        if let Some(metrics) = self.metrics {
            state.add_metrics_source(metrics);
        }
        state
    }
}

/// Opens the configured log for appending (Kafka transactions behind the dedup index, with
/// its upkeep running, or the embedded log), with its readiness probe.
pub(crate) fn open_log(
    config: &IngestConfig,
    dedup: &DedupConfig,
    store: &StoreArgs,
    kafka: &KafkaConfig,
) -> anyhow::Result<OpenedLog> {
    let brokers = match event_log(store, kafka)? {
        EventLogAt::Embedded(log) => {
            tracing::info!(path = %log.path().display(), "appending to the embedded event log");
            let readiness = EmbeddedReadiness::new(log.path());
            return Ok(OpenedLog {
                log: Arc::new(log),
                readiness: Arc::new(readiness),
                metrics: None,
            });
        }
        EventLogAt::Kafka { brokers, .. } => brokers,
    };
    let index_path = store.path(DEDUP_INDEX_FILE)?;
    let index = DedupIndex::open(&index_path)
        .with_context(|| format!("opening the dedup index {}", index_path.display()))?;
    // One transactional writer per append slot, named after this instance's index.
    let slots = config.max_concurrent_appends;
    let writer = match TransactionalKafkaLog::connect(kafka, index.instance(), slots) {
        Ok(writer) => writer,
        Err(error) if error.is_transient() => {
            // Start anyway, not ready: appends answer 503 until the brokers are back.
            tracing::warn!(%error, brokers, "kafka is unreachable; starting not ready");
            TransactionalKafkaLog::open_unchecked(kafka, index.instance(), slots)
                .context("creating the Kafka writer")?
        }
        Err(error) => return Err(error).context("connecting to Kafka"),
    };
    let probe = writer
        .readiness(KAFKA_READINESS_TIMEOUT)
        .context("creating the Kafka readiness probe")?;
    let instance = index.instance().to_owned();
    let log = Arc::new(
        DedupLog::new(writer, index, config.append_timeout()).with_retention(dedup.retention()),
    );
    DedupLog::spawn_upkeep(&log, dedup.prune_interval())
        .context("starting the dedup index upkeep")?;
    tracing::info!(
        brokers,
        events_topic = kafka.events_topic,
        dedup_index = %index_path.display(),
        instance,
        writers = slots,
        retention_secs = dedup.retention_secs,
        "appending to Kafka in transactions"
    );
    let readiness = AllReady(vec![
        Arc::clone(&log) as Arc<dyn Readiness>,
        Arc::new(probe),
    ]);
    Ok(OpenedLog {
        log: Arc::clone(&log) as Arc<dyn EventLog>,
        readiness: Arc::new(readiness),
        metrics: Some(log),
    })
}

fn print_token_hash() -> anyhow::Result<ExitCode> {
    let mut token = String::new();
    std::io::stdin()
        .read_to_string(&mut token)
        .context("reading the token from standard input")?;
    let token = token
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&token);
    anyhow::ensure!(!token.is_empty(), "no token on standard input");
    println!("{}", hash_token(token));
    Ok(ExitCode::SUCCESS)
}
