//! The settings of the HTTP intake: one typed struct, read from flags or the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser as _;

/// Default listening address: loopback only; containers set `AQS_INGEST_LISTEN=0.0.0.0:8080`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default bound on the events of one batch.
pub const DEFAULT_MAX_BATCH_EVENTS: usize = 5_000;
/// Default bound on the size of one request body: 16 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Default bound on one append to the log (above Kafka's default message timeout of 10 s).
pub const DEFAULT_APPEND_TIMEOUT_MS: u64 = 15_000;
/// Default number of batches handed to the log at the same time.
pub const DEFAULT_MAX_CONCURRENT_APPENDS: usize = 8;
/// Default wait of a batch for an append slot before it is answered 429.
pub const DEFAULT_QUEUE_TIMEOUT_MS: u64 = 2_000;
/// Default bound on the event requests being served at once (bodies held in memory).
pub const DEFAULT_MAX_IN_FLIGHT_REQUESTS: usize = 64;
/// Default `Retry-After` of 429 and 503 answers, in seconds.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 2;
/// Default bound on a graceful shutdown, in milliseconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 30_000;

/// How `aqs ingest` listens, authenticates and bounds its work.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct IngestConfig {
    /// Address and port the HTTP API listens on.
    #[arg(long, env = "AQS_INGEST_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// JSON file mapping each source to the SHA-256 (hex) of its API token, or to a list of
    /// them (see `aqs ingest hash-token`). Required unless `--insecure-no-auth`.
    #[arg(long, env = "AQS_INGEST_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// Accept events without a token, from any source. For local experiments only.
    #[arg(long, conflicts_with = "tokens_file")]
    pub insecure_no_auth: bool,
    /// Most events in one batch; a larger batch is answered 413.
    #[arg(
        long,
        env = "AQS_INGEST_MAX_BATCH_EVENTS",
        default_value_t = DEFAULT_MAX_BATCH_EVENTS,
        value_parser = clap::value_parser!(u64).range(1..).map(|v| v as usize)
    )]
    pub max_batch_events: usize,
    /// Largest request body in bytes; a larger one is answered 413.
    #[arg(
        long,
        env = "AQS_INGEST_MAX_BODY_BYTES",
        default_value_t = DEFAULT_MAX_BODY_BYTES,
        value_parser = clap::value_parser!(u64).range(1..).map(|v| v as usize)
    )]
    pub max_body_bytes: usize,
    /// Longest wait for the log to take a batch, in milliseconds; then the answer is 503.
    #[arg(
        long,
        env = "AQS_INGEST_APPEND_TIMEOUT_MS",
        default_value_t = DEFAULT_APPEND_TIMEOUT_MS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub append_timeout_ms: u64,
    /// Batches handed to the log at the same time; more wait for a slot.
    #[arg(
        long,
        env = "AQS_INGEST_MAX_CONCURRENT_APPENDS",
        default_value_t = DEFAULT_MAX_CONCURRENT_APPENDS,
        value_parser = clap::value_parser!(u64).range(1..=1024).map(|v| v as usize)
    )]
    pub max_concurrent_appends: usize,
    /// Longest wait for an append slot, in milliseconds; then the answer is 429.
    #[arg(
        long,
        env = "AQS_INGEST_QUEUE_TIMEOUT_MS",
        default_value_t = DEFAULT_QUEUE_TIMEOUT_MS
    )]
    pub queue_timeout_ms: u64,
    /// Event requests served at once; more are answered 429 straight away.
    #[arg(
        long,
        env = "AQS_INGEST_MAX_IN_FLIGHT_REQUESTS",
        default_value_t = DEFAULT_MAX_IN_FLIGHT_REQUESTS,
        value_parser = clap::value_parser!(u64).range(1..=65_536).map(|v| v as usize)
    )]
    pub max_in_flight_requests: usize,
    /// Seconds a client is told to wait (`Retry-After`) on 429 and 503 answers.
    #[arg(
        long,
        env = "AQS_INGEST_RETRY_AFTER_SECS",
        default_value_t = DEFAULT_RETRY_AFTER_SECS
    )]
    pub retry_after_secs: u64,
    /// Longest graceful shutdown, in milliseconds: requests and appends in flight finish
    /// within it.
    #[arg(
        long,
        env = "AQS_INGEST_SHUTDOWN_TIMEOUT_MS",
        default_value_t = DEFAULT_SHUTDOWN_TIMEOUT_MS
    )]
    pub shutdown_timeout_ms: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("the default address parses"),
            tokens_file: None,
            insecure_no_auth: false,
            max_batch_events: DEFAULT_MAX_BATCH_EVENTS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            append_timeout_ms: DEFAULT_APPEND_TIMEOUT_MS,
            max_concurrent_appends: DEFAULT_MAX_CONCURRENT_APPENDS,
            queue_timeout_ms: DEFAULT_QUEUE_TIMEOUT_MS,
            max_in_flight_requests: DEFAULT_MAX_IN_FLIGHT_REQUESTS,
            retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
            shutdown_timeout_ms: DEFAULT_SHUTDOWN_TIMEOUT_MS,
        }
    }
}

impl IngestConfig {
    pub fn append_timeout(&self) -> Duration {
        Duration::from_millis(self.append_timeout_ms)
    }

    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        ingest: IngestConfig,
    }

    #[test]
    fn command_line_defaults_match_the_default_config() {
        let parsed = Cli::try_parse_from(["aqs"]).expect("parse");
        assert_eq!(parsed.ingest, IngestConfig::default());
        assert!(Cli::try_parse_from(["aqs", "--max-batch-events", "0"]).is_err());
        assert!(
            Cli::try_parse_from(["aqs", "--tokens-file", "t.json", "--insecure-no-auth"]).is_err()
        );
    }
}
