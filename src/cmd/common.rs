//! Settings shared by the subcommands that touch the event log and the stores.

use std::path::PathBuf;

use anyhow::Context;
use aqs_schemas::BusinessClock;

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

    pub fn path(&self, file: &str) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating the data folder {}", self.data_dir.display()))?;
        Ok(self.data_dir.join(file))
    }

    /// Opens (or creates, with `partitions` partitions) the embedded event log, keeping its
    /// dead letters within `dead_letters`.
    pub fn open_embedded_log(
        &self,
        partitions: u32,
        dead_letters: aqs_eventlog::DeadLetterLimits,
    ) -> anyhow::Result<aqs_eventlog::sqlite::SqliteLog> {
        let path = self.path("events.db")?;
        aqs_eventlog::sqlite::SqliteLog::open(&path, partitions)
            .and_then(|log| log.with_dead_letter_limits(dead_letters))
            .with_context(|| format!("opening the event log {}", path.display()))
    }
}
