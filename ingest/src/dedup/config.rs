//! The settings of the dedup index (Kafka only): how long it remembers, how often it prunes.

use std::time::Duration;

/// Default retention of the dedup index: 7 days, longer than any client's retries of one
/// batch (a retry after an outage of the upstream system over a long holiday included).
pub const DEFAULT_DEDUP_RETENTION_SECS: u64 = 7 * 24 * 3600;
/// Default pause between two prunings of the dedup index.
pub const DEFAULT_DEDUP_PRUNE_INTERVAL_SECS: u64 = 60;

/// How long `aqs ingest` remembers appended events to answer resends `duplicate` (Kafka).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct DedupConfig {
    /// Seconds the dedup index remembers an event appended to Kafka: a resend within them is
    /// answered `duplicate` (or `conflict`); a later one is appended again (the projector
    /// still counts it once).
    #[arg(
        long = "dedup-retention-secs",
        env = "AQS_INGEST_DEDUP_RETENTION_SECS",
        default_value_t = DEFAULT_DEDUP_RETENTION_SECS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub retention_secs: u64,
    /// Seconds between two prunings of the entries older than the retention.
    #[arg(
        long = "dedup-prune-interval-secs",
        env = "AQS_INGEST_DEDUP_PRUNE_INTERVAL_SECS",
        default_value_t = DEFAULT_DEDUP_PRUNE_INTERVAL_SECS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub prune_interval_secs: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            retention_secs: DEFAULT_DEDUP_RETENTION_SECS,
            prune_interval_secs: DEFAULT_DEDUP_PRUNE_INTERVAL_SECS,
        }
    }
}

impl DedupConfig {
    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_secs)
    }

    pub fn prune_interval(&self) -> Duration {
        Duration::from_secs(self.prune_interval_secs)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        dedup: DedupConfig,
    }

    #[test]
    fn command_line_defaults_match_the_default_config() {
        let parsed = Cli::try_parse_from(["aqs"]).expect("parse");
        assert_eq!(parsed.dedup, DedupConfig::default());
        assert_eq!(parsed.dedup.retention(), Duration::from_secs(604_800));
        assert!(Cli::try_parse_from(["aqs", "--dedup-retention-secs", "0"]).is_err());
        let short = Cli::try_parse_from(["aqs", "--dedup-retention-secs", "5"]).expect("parse");
        assert_eq!(short.dedup.retention_secs, 5);
    }
}
