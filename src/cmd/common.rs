//! Settings shared by the subcommands that touch the event log and the stores.

use std::path::PathBuf;

use std::time::Duration;

use anyhow::Context;
use aqs_projector::sink::WriterSettings;
use aqs_schemas::BusinessClock;
use aqs_tables::DataDir;

/// Where the embedded stores live and how business dates are read. The partition count of
/// the events stream is a log setting: `--events-partitions` of
/// `aqs_eventlog::kafka::KafkaConfig`, also used for the embedded log.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Folder of the embedded stores: the event log (events.db), the projector checkpoint
    /// (projector.db) and the ledgers (ledgers.db).
    #[arg(long, env = "AQS_DATA_DIR", default_value = "aqs-data")]
    pub data_dir: PathBuf,
    /// The organisation's time zone (IANA name); business dates are read in it.
    #[arg(long, env = "AQS_TIME_ZONE", default_value = "Asia/Shanghai")]
    pub time_zone: String,
}

impl StoreArgs {
    pub fn clock(&self) -> anyhow::Result<BusinessClock> {
        BusinessClock::from_name(&self.time_zone).map_err(anyhow::Error::msg)
    }

    /// The data folder, created when missing, for its owner only (it holds the event log,
    /// the stores and the demo token).
    pub fn data(&self) -> anyhow::Result<DataDir> {
        let data = DataDir::new(&self.data_dir);
        data.create()
            .with_context(|| format!("creating the data folder {}", self.data_dir.display()))?;
        Ok(data)
    }

    /// A file of the data folder that one service keeps for itself (the shared ones are
    /// named by [`DataDir`]); the folder is created when missing.
    pub fn path(&self, file: &str) -> anyhow::Result<PathBuf> {
        Ok(self.data()?.root().join(file))
    }
}

/// How the projector writes its ledger stores (each by a thread of its own that retries a
/// failed write and merges the changes that wait meanwhile).
#[derive(Debug, Clone, clap::Args)]
pub struct SinkArgs {
    /// Least milliseconds between two writes to the ClickHouse ledger store: the changes
    /// folded meanwhile are merged by row and written together, one insert per table.
    #[arg(
        long,
        env = "AQS_PROJECTOR_CLICKHOUSE_WRITE_MS",
        default_value_t = 1_000,
        value_name = "MS"
    )]
    pub clickhouse_write_ms: u64,
    /// Longest pause, in milliseconds, between two attempts to write to a ledger store that
    /// fails (the pause starts at 250 ms and doubles, each drawn between half and all of it).
    #[arg(
        long,
        env = "AQS_PROJECTOR_RETRY_MAX_MS",
        default_value_t = 5_000,
        value_name = "MS"
    )]
    pub retry_max_ms: u64,
    /// Changed rows that may wait for one ledger store (merged by row, about 300 bytes
    /// each) before the projector stops reading the log until the store takes them.
    #[arg(
        long,
        env = "AQS_PROJECTOR_MAX_PENDING_ROWS",
        default_value_t = 2_000_000,
        value_name = "ROWS"
    )]
    pub max_pending_rows: u64,
}

impl SinkArgs {
    /// The embedded store: written as soon as changes are handed over.
    pub fn embedded(&self) -> WriterSettings {
        WriterSettings {
            retry_max: Duration::from_millis(self.retry_max_ms),
            max_pending_rows: self.max_pending_rows,
            ..WriterSettings::default()
        }
    }

    /// ClickHouse: few, large inserts.
    pub fn clickhouse(&self) -> WriterSettings {
        WriterSettings {
            min_interval: Duration::from_millis(self.clickhouse_write_ms),
            ..self.embedded()
        }
    }
}

/// What the projector watches in the log it reads.
#[derive(Debug, Clone, clap::Args)]
pub struct LogWatchArgs {
    /// Seconds a Kafka partition's readers may stay held at one offset while records wait
    /// beyond it (a transaction neither committed nor aborted) before the projector reports
    /// a transaction left open: `/readyz` fails naming the topic and partition.
    #[arg(
        long,
        env = "AQS_PROJECTOR_STUCK_TRANSACTION_SECONDS",
        default_value_t = aqs_projector::runner::DEFAULT_STUCK_TRANSACTION_AFTER.as_secs(),
        value_name = "SECONDS"
    )]
    pub stuck_transaction_seconds: u64,
}

impl LogWatchArgs {
    pub fn stuck_transaction_after(&self) -> Duration {
        Duration::from_secs(self.stuck_transaction_seconds)
    }
}

/// One entry of an `..._ALLOWED_HOSTS` list, checked as the flag is read.
pub fn parse_allowed_host(value: &str) -> Result<String, aqs_http::HostsError> {
    aqs_http::AllowedHosts::new([value]).map(|_| value.trim().to_owned())
}
