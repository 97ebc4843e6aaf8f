//! The settings of the HTTP intake: one typed struct, read from flags or the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use aqs_http::{AllowedHosts, ConnectionLimits, HostsError};
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
/// Default bound on one event: the largest legitimate event (a 2000-character note, at most
/// 8000 bytes of UTF-8 or 24000 bytes written as JSON escapes, plus its envelope) several
/// times over.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 * 1024;
/// Default budget of body bytes being read and judged at once (with 3 KiB per event): two
/// batches of the largest size and count, or dozens of ordinary ones.
pub const DEFAULT_BODY_BUDGET_BYTES: usize = 4 * DEFAULT_MAX_BODY_BYTES;
/// Default wait of a request for its share of the body budget before it is answered 429.
pub const DEFAULT_BUDGET_WAIT_MS: u64 = 1_000;
/// Default bound on the event requests of one source being served at once.
pub const DEFAULT_MAX_IN_FLIGHT_PER_SOURCE: usize = 16;
/// Default wait for a complete request header, in milliseconds.
pub const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;
/// Default time a whole request body may take to arrive, in milliseconds.
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 60_000;
/// Default wait for the next request on a kept-alive connection (above the 60 s idle
/// timeout of common load balancers, so that they close first).
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 75_000;
/// Default bound on open connections (keep it below the process's open-file limit).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1_024;
/// The setting that lists the host names ingest answers to (shown when one is refused).
pub const ALLOWED_HOSTS_SETTING: &str = "AQS_INGEST_ALLOWED_HOSTS";

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
    /// Largest single event in bytes; a larger one is rejected (`event_too_large`) before it
    /// is parsed, and its dead letter keeps only this many of its bytes.
    #[arg(
        long,
        env = "AQS_INGEST_MAX_EVENT_BYTES",
        default_value_t = DEFAULT_MAX_EVENT_BYTES,
        value_parser = clap::value_parser!(u64).range(256..).map(|v| v as usize)
    )]
    pub max_event_bytes: usize,
    /// Request body bytes being read and judged at once, over all requests (a body without
    /// `Content-Length` counts as `--max-body-bytes`); must be at least `--max-body-bytes`.
    /// A request that finds no room within `--budget-wait-ms` is answered 429.
    #[arg(
        long,
        env = "AQS_INGEST_BODY_BUDGET_BYTES",
        default_value_t = DEFAULT_BODY_BUDGET_BYTES,
        value_parser = clap::value_parser!(u64).range(1..).map(|v| v as usize)
    )]
    pub body_budget_bytes: usize,
    /// Longest wait for room in the body budget, in milliseconds; then the answer is 429.
    #[arg(
        long,
        env = "AQS_INGEST_BUDGET_WAIT_MS",
        default_value_t = DEFAULT_BUDGET_WAIT_MS
    )]
    pub budget_wait_ms: u64,
    /// Event requests of one source (one token's source) served at once; more are answered
    /// 429 straight away, so that a slow or abusive source cannot hold every slot.
    #[arg(
        long,
        env = "AQS_INGEST_MAX_IN_FLIGHT_PER_SOURCE",
        default_value_t = DEFAULT_MAX_IN_FLIGHT_PER_SOURCE,
        value_parser = clap::value_parser!(u64).range(1..=65_536).map(|v| v as usize)
    )]
    pub max_in_flight_per_source: usize,
    /// Longest wait for a complete request header, in milliseconds, from the opening of a
    /// connection or from the first byte of a request; then the connection is closed.
    #[arg(
        long,
        env = "AQS_INGEST_HEADER_TIMEOUT_MS",
        default_value_t = DEFAULT_HEADER_TIMEOUT_MS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub header_timeout_ms: u64,
    /// Longest time a request body may take to arrive, in milliseconds; a slower one is
    /// answered 408 (`body_timeout`) and its connection closed.
    #[arg(
        long,
        env = "AQS_INGEST_BODY_TIMEOUT_MS",
        default_value_t = DEFAULT_BODY_TIMEOUT_MS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub body_timeout_ms: u64,
    /// Longest wait for the next request on a kept-alive connection, in milliseconds; then
    /// the connection is closed.
    #[arg(
        long,
        env = "AQS_INGEST_IDLE_TIMEOUT_MS",
        default_value_t = DEFAULT_IDLE_TIMEOUT_MS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub idle_timeout_ms: u64,
    /// Most connections open at once. One more closes the connection that has waited longest
    /// without a request; when all are busy, it is closed after up to a second.
    #[arg(
        long,
        env = "AQS_INGEST_MAX_CONNECTIONS",
        default_value_t = DEFAULT_MAX_CONNECTIONS,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000).map(|v| v as usize)
    )]
    pub max_connections: usize,
    /// Host names the API answers to, comma-separated (`ingest.example.com`,
    /// `*.example.com`; `*`: any), besides `localhost` and IP addresses. A request naming
    /// another host in `Host` is answered 421 (a defence against DNS rebinding).
    #[arg(
        long,
        env = "AQS_INGEST_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_parser = parse_allowed_host
    )]
    pub allowed_hosts: Vec<String>,
}

fn parse_allowed_host(value: &str) -> Result<String, HostsError> {
    AllowedHosts::new([value]).map(|_| value.trim().to_owned())
}

/// Settings that do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "the body budget (AQS_INGEST_BODY_BUDGET_BYTES, {budget} bytes) is smaller than the \
         largest body (AQS_INGEST_MAX_BODY_BYTES, {max_body} bytes): such a body could never \
         be read"
    )]
    BudgetBelowMaxBody { budget: usize, max_body: usize },
    #[error(
        "the largest body (AQS_INGEST_MAX_BODY_BYTES, {max_body} bytes) is over the bound of \
         4 GiB"
    )]
    BodyTooLarge { max_body: usize },
    #[error(transparent)]
    Hosts(#[from] HostsError),
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
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            body_budget_bytes: DEFAULT_BODY_BUDGET_BYTES,
            budget_wait_ms: DEFAULT_BUDGET_WAIT_MS,
            max_in_flight_per_source: DEFAULT_MAX_IN_FLIGHT_PER_SOURCE,
            header_timeout_ms: DEFAULT_HEADER_TIMEOUT_MS,
            body_timeout_ms: DEFAULT_BODY_TIMEOUT_MS,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            allowed_hosts: Vec::new(),
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

    pub fn budget_wait(&self) -> Duration {
        Duration::from_millis(self.budget_wait_ms)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    /// The limits of the connections the API serves.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
        }
    }

    /// The host names the API answers to.
    pub fn allowed_hosts(&self) -> Result<AllowedHosts, HostsError> {
        AllowedHosts::new(&self.allowed_hosts)
    }

    /// Checks what the flags cannot check one by one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if u32::try_from(self.max_body_bytes).is_err() {
            return Err(ConfigError::BodyTooLarge {
                max_body: self.max_body_bytes,
            });
        }
        if self.body_budget_bytes < self.max_body_bytes {
            return Err(ConfigError::BudgetBelowMaxBody {
                budget: self.body_budget_bytes,
                max_body: self.max_body_bytes,
            });
        }
        self.allowed_hosts()?;
        Ok(())
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
        assert_eq!(parsed.ingest.validate(), Ok(()));
    }

    #[test]
    fn settings_that_do_not_fit_together_are_refused() {
        let parsed = Cli::try_parse_from([
            "aqs",
            "--allowed-hosts",
            "ingest.example.com, *.corp.example",
        ])
        .expect("parse");
        assert_eq!(
            parsed.ingest.allowed_hosts,
            ["ingest.example.com", "*.corp.example"]
        );
        assert!(Cli::try_parse_from(["aqs", "--allowed-hosts", "http://x.example"]).is_err());
        let small_budget = IngestConfig {
            body_budget_bytes: DEFAULT_MAX_BODY_BYTES - 1,
            ..IngestConfig::default()
        };
        assert!(matches!(
            small_budget.validate(),
            Err(ConfigError::BudgetBelowMaxBody { .. })
        ));
    }
}
