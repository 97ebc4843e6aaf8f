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

    /// A file of the data folder; the folder is created when missing, for its owner only
    /// (it holds the event log, the stores and the demo token).
    pub fn path(&self, file: &str) -> anyhow::Result<PathBuf> {
        let mut folder = std::fs::DirBuilder::new();
        folder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut folder, 0o700);
        folder
            .create(&self.data_dir)
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

/// One entry of an `..._ALLOWED_HOSTS` list, checked as the flag is read.
pub fn parse_allowed_host(value: &str) -> Result<String, aqs_http::HostsError> {
    aqs_http::AllowedHosts::new([value]).map(|_| value.trim().to_owned())
}
