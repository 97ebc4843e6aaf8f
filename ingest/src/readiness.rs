//! Whether the log can take events now: the answer of `GET /readyz`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aqs_eventlog::kafka::KafkaReadiness;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::dedup::DedupLog;

/// A cheap check that the log is reachable. Blocking; called at most about once a second.
pub trait Readiness: Send + Sync {
    fn check(&self) -> Result<(), String>;
}

/// Always ready (tests, or a log that cannot be away).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysReady;

impl Readiness for AlwaysReady {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The embedded log is ready when its database file opens and answers.
#[derive(Debug, Clone)]
pub struct EmbeddedReadiness {
    path: PathBuf,
}

impl EmbeddedReadiness {
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
        }
    }
}

impl Readiness for EmbeddedReadiness {
    fn check(&self) -> Result<(), String> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| format!("event log {}: {e}", self.path.display()))?;
        connection
            .busy_timeout(Duration::from_secs(1))
            .and_then(|()| {
                connection
                    .query_row("SELECT 1 FROM log LIMIT 1", [], |_| Ok(()))
                    .optional()
            })
            .map(|_| ())
            .map_err(|e| format!("event log {}: {e}", self.path.display()))
    }
}

/// The Kafka log is ready when the brokers answer a metadata request for the log's topics
/// with a leader for every partition: the adapter's own probe
/// ([`TransactionalKafkaLog::readiness`](aqs_eventlog::kafka::TransactionalKafkaLog::readiness)).
impl Readiness for KafkaReadiness {
    fn check(&self) -> Result<(), String> {
        KafkaReadiness::check(self).map_err(|error| error.to_string())
    }
}

/// Ready when every one of the checks is.
#[derive(Clone, Default)]
pub struct AllReady(pub Vec<Arc<dyn Readiness>>);

impl fmt::Debug for AllReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllReady")
            .field("checks", &self.0.len())
            .finish()
    }
}

impl Readiness for AllReady {
    fn check(&self) -> Result<(), String> {
        self.0.iter().try_for_each(|check| check.check())
    }
}

impl<L: Send + Sync> Readiness for DedupLog<L> {
    fn check(&self) -> Result<(), String> {
        self.index()
            .check()
            .map_err(|e| format!("dedup index {}: {e}", self.index().path().display()))
    }
}
