//! A ClickHouse client for synchronous code: the client and a small Tokio runtime of its own
//! to drive it. For the projector's sink and the KPI job, whose interfaces are synchronous.
//!
//! Not for use inside an async context: [`BlockingClient::run`] blocks the calling thread
//! and Tokio refuses to nest runtimes.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use clickhouse::Client;
use tokio::runtime::{Builder, Runtime};

use crate::config::{ClickHouseConfig, ConfigError};

/// How long [`BlockingClient::connect`] waits for the server's answer: a server that accepts
/// the connection and hangs must not hold the caller.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a [`BlockingClient`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not start the runtime of the ClickHouse client")]
    Runtime(#[source] std::io::Error),
    #[error("could not reach ClickHouse at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error("database {database} lacks the table(s) {missing}: run `aqs migrate` against it first")]
    MissingTables { database: String, missing: String },
}

/// `future`'s output, or `None` when it takes longer than `limit`. For futures run by
/// [`BlockingClient::run`], whose runtime has the timers this needs.
pub async fn timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    tokio::time::timeout(limit, future).await.ok()
}

/// A [`Client`] bound to the configured database, with a current-thread runtime to run it.
pub struct BlockingClient {
    runtime: Runtime,
    client: Client,
    database: String,
    url: String,
}

impl fmt::Debug for BlockingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingClient")
            .field("url", &self.url)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl BlockingClient {
    /// A client for `config`'s database. Does not talk to the server yet.
    pub fn new(config: &ClickHouseConfig) -> Result<Self, ConnectError> {
        let client = config.client()?;
        let runtime = Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ConnectError::Runtime)?;
        Ok(Self {
            runtime,
            client,
            database: config.database.clone(),
            url: config.url.clone().unwrap_or_default(),
        })
    }

    /// A client for `config`'s database after checking that the server answers and that
    /// the database holds every table of `tables` (made by `aqs migrate`).
    pub fn connect(config: &ClickHouseConfig, tables: &[&str]) -> Result<Self, ConnectError> {
        let client = Self::new(config)?;
        let started = Instant::now();
        // Asked without the database: a missing database is then a missing table, not an
        // error of the request.
        let server = config.server_client()?;
        let present: Vec<String> = client
            .run_within(
                CONNECT_TIMEOUT,
                server
                    .query("SELECT name FROM system.tables WHERE database = ?")
                    .bind(client.database.as_str())
                    .fetch_all(),
            )
            .map_err(|source| ConnectError::Unreachable {
                url: client.url.clone(),
                source,
            })?;
        let missing: Vec<&str> = tables
            .iter()
            .copied()
            .filter(|table| !present.iter().any(|name| name == table))
            .collect();
        if !missing.is_empty() {
            return Err(ConnectError::MissingTables {
                database: client.database.clone(),
                missing: missing.join(", "),
            });
        }
        tracing::debug!(
            url = %client.url,
            database = %client.database,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "clickhouse connected"
        );
        Ok(client)
    }

    /// The async client, bound to the database.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The database the client is bound to.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Runs `future` to completion on this client's runtime, blocking the thread.
    pub fn run<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Runs a request, giving up with [`clickhouse::error::Error::TimedOut`] after `limit`:
    /// a server that accepts the connection and never answers must not hold the caller
    /// forever.
    pub fn run_within<T>(
        &self,
        limit: Duration,
        future: impl Future<Output = Result<T, clickhouse::error::Error>>,
    ) -> Result<T, clickhouse::error::Error> {
        self.runtime.block_on(async {
            tokio::time::timeout(limit, future)
                .await
                .unwrap_or(Err(clickhouse::error::Error::TimedOut))
        })
    }

    /// Waits until no mutation of `table` is pending (after an `ALTER TABLE … DELETE`), or
    /// `timeout` passed: returns whether they finished.
    pub fn wait_for_mutations(
        &self,
        table: &str,
        timeout: Duration,
    ) -> Result<bool, clickhouse::error::Error> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            let pending: u64 = self.run(
                self.client
                    .query(
                        "SELECT count() FROM system.mutations \
                         WHERE database = ? AND table = ? AND is_done = 0",
                    )
                    .bind(self.database.as_str())
                    .bind(table)
                    .fetch_one(),
            )?;
            if pending == 0 {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}
