//! Exactly-once appends to a log that cannot tell repeats (Kafka): an embedded index of the
//! event ids already appended, in front of the log.
//!
//! [`DedupLog`] answers an event whose id is in the index as a duplicate (same canonical
//! bytes) or a conflict (different bytes) without appending it; it appends the others and
//! records their ids only once the log has acknowledged them. Concurrent batches holding
//! the same new id are serialised by claiming ids, so two requests racing with one event
//! cannot both append it.
//!
//! The residual window: a crash after the log acknowledged a batch and before its ids were
//! recorded (or, the index being written without waiting for the disk, a power loss
//! shortly after) lets a retry of that batch append it again. The projector drops repeats
//! by `event_id`, so the ledgers still count each event once.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aqs_eventlog::{AppendOutcome, DeadLetter, EventLog, LogError};
use aqs_schemas::Event;
use rusqlite::{Connection, OptionalExtension, params};
use tracing::{debug, error};

use crate::auth::{Digest, digest};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS appended (
    event_id    TEXT    PRIMARY KEY,
    digest      BLOB    NOT NULL,
    recorded_at INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Event ids already appended, with the SHA-256 of their canonical bytes; a SQLite file.
#[derive(Debug)]
pub struct DedupIndex {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl DedupIndex {
    /// Opens or creates the index.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LogError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| LogError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let connection = Connection::open(&path)?;
        connection.busy_timeout(Duration::from_secs(10))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode survives a crash of the process, not of the machine: an
        // entry lost with the machine only widens the residual window described above.
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.execute_batch(SCHEMA)?;
        Ok(Self {
            path,
            connection: Mutex::new(connection),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The digests of those of `ids` that are recorded.
    pub fn lookup<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashMap<String, Digest>, LogError> {
        let connection = self.lock();
        let mut statement =
            connection.prepare_cached("SELECT digest FROM appended WHERE event_id = ?1")?;
        let mut found = HashMap::new();
        for id in ids {
            let stored: Option<Vec<u8>> = statement
                .query_row(params![id], |row| row.get(0))
                .optional()?;
            if let Some(stored) = stored {
                let digest: Digest = stored.try_into().map_err(|_| {
                    LogError::Unavailable(format!("dedup index: bad digest of {id:?}"))
                })?;
                found.insert(id.to_owned(), digest);
            }
        }
        Ok(found)
    }

    /// Records appended events; an id already recorded keeps its first digest.
    pub fn record<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a str, &'a Digest)>,
    ) -> Result<(), LogError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT OR IGNORE INTO appended (event_id, digest, recorded_at) VALUES (?1, ?2, ?3)",
            )?;
            for (id, digest) in entries {
                insert.execute(params![id, &digest[..], now])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Ids recorded.
    pub fn len(&self) -> Result<u64, LogError> {
        let connection = self.lock();
        Ok(
            connection.query_row("SELECT COUNT(*) FROM appended", [], |r| r.get::<_, i64>(0))?
                as u64,
        )
    }

    pub fn is_empty(&self) -> Result<bool, LogError> {
        Ok(self.len()? == 0)
    }

    /// Whether the index answers (for readiness).
    pub fn check(&self) -> Result<(), LogError> {
        self.lock()
            .query_row("SELECT 1 FROM appended LIMIT 1", [], |_| Ok(()))
            .optional()?;
        Ok(())
    }
}

/// Ids being appended right now, so that one id is never in two appends at once.
#[derive(Debug, Default)]
struct Claims {
    held: Mutex<HashSet<String>>,
    released: Condvar,
}

impl Claims {
    /// Claims all of `ids` at once, waiting while another batch holds any of them.
    fn claim(&self, ids: &[&str], deadline: Instant) -> Result<ClaimGuard<'_>, LogError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if !ids.iter().any(|id| held.contains(*id)) {
                held.extend(ids.iter().map(|id| (*id).to_owned()));
                return Ok(ClaimGuard {
                    claims: self,
                    ids: ids.iter().map(|id| (*id).to_owned()).collect(),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LogError::Unavailable(
                    "events of this batch are being appended by another request; retry".into(),
                ));
            }
            held = self
                .released
                .wait_timeout(held, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

struct ClaimGuard<'a> {
    claims: &'a Claims,
    ids: Vec<String>,
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        let mut held = self
            .claims
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for id in &self.ids {
            held.remove(id);
        }
        drop(held);
        self.claims.released.notify_all();
    }
}

/// A log with exactly-once appends under retries: see the module documentation.
#[derive(Debug)]
pub struct DedupLog<L> {
    inner: L,
    index: DedupIndex,
    claims: Claims,
    claim_timeout: Duration,
}

impl<L> DedupLog<L> {
    /// `claim_timeout` bounds the wait for another request appending the same ids.
    pub fn new(inner: L, index: DedupIndex, claim_timeout: Duration) -> Self {
        Self {
            inner,
            index,
            claims: Claims::default(),
            claim_timeout,
        }
    }

    pub fn inner(&self) -> &L {
        &self.inner
    }

    pub fn index(&self) -> &DedupIndex {
        &self.index
    }
}

impl<L: EventLog> EventLog for DedupLog<L> {
    fn append(&self, events: &[Event]) -> Result<Vec<AppendOutcome>, LogError> {
        let digests: Vec<Digest> = events
            .iter()
            .map(|event| serde_json::to_vec(event).map(|bytes| digest(&bytes)))
            .collect::<Result<_, _>>()?;
        let mut outcomes: Vec<Option<AppendOutcome>> = vec![None; events.len()];

        // Repeats inside the batch compare with their first occurrence.
        let mut first: HashMap<&str, usize> = HashMap::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            match first.get(event.event_id.as_str()) {
                Some(&j) => outcomes[i] = Some(repeat(&digests[i], &digests[j])),
                None => {
                    first.insert(&event.event_id, i);
                }
            }
        }
        let ids: Vec<&str> = first.keys().copied().collect();
        let _claim = self
            .claims
            .claim(&ids, Instant::now() + self.claim_timeout)?;
        let known = self.index.lookup(ids.iter().copied())?;

        let mut fresh: Vec<usize> = Vec::new();
        for (i, event) in events.iter().enumerate() {
            if outcomes[i].is_some() {
                continue;
            }
            match known.get(&event.event_id) {
                Some(stored) => outcomes[i] = Some(repeat(&digests[i], stored)),
                None => fresh.push(i),
            }
        }
        if !fresh.is_empty() {
            let batch: Vec<Event> = fresh.iter().map(|&i| events[i].clone()).collect();
            let appended = self.inner.append(&batch)?;
            if appended.len() != batch.len() {
                return Err(LogError::Unavailable(format!(
                    "the log answered {} outcomes for {} events",
                    appended.len(),
                    batch.len()
                )));
            }
            let mut record = Vec::with_capacity(fresh.len());
            for (&i, outcome) in fresh.iter().zip(appended) {
                if matches!(outcome, AppendOutcome::Appended { .. }) {
                    record.push((events[i].event_id.as_str(), &digests[i]));
                }
                outcomes[i] = Some(outcome);
            }
            if let Err(error) = self.index.record(record.iter().copied()) {
                // The events are in the log: they stay accepted. A retry may append them
                // again; the projector drops the repeats.
                error!(
                    %error,
                    events = record.len(),
                    index = %self.index.path().display(),
                    "appended events could not be recorded in the dedup index"
                );
            }
        }
        debug!(
            events = events.len(),
            appended = fresh.len(),
            "dedup append"
        );
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(AppendOutcome::Duplicate))
            .collect())
    }

    fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), LogError> {
        self.inner.dead_letter(letters)
    }

    fn partitions(&self) -> u32 {
        self.inner.partitions()
    }
}

fn repeat(digest: &Digest, first: &Digest) -> AppendOutcome {
    if digest == first {
        AppendOutcome::Duplicate
    } else {
        AppendOutcome::Conflict
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use aqs_eventlog::{PartitionId, Stream};
    use aqs_schemas::Decoder;

    use super::*;

    /// A log that appends blindly, like Kafka, and can be made to fail.
    #[derive(Default)]
    struct Blind {
        appended: Mutex<Vec<String>>,
        failing: AtomicBool,
        calls: AtomicUsize,
    }

    impl EventLog for Blind {
        fn append(&self, events: &[Event]) -> Result<Vec<AppendOutcome>, LogError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            if self.failing.load(Ordering::SeqCst) {
                return Err(LogError::Unavailable("down".into()));
            }
            let mut appended = self.appended.lock().expect("lock");
            Ok(events
                .iter()
                .map(|event| {
                    appended.push(event.event_id.clone());
                    AppendOutcome::Appended {
                        partition: PartitionId {
                            stream: Stream::Events,
                            partition: 0,
                        },
                        offset: appended.len() as u64 - 1,
                    }
                })
                .collect())
        }

        fn dead_letter(&self, _: &[DeadLetter]) -> Result<(), LogError> {
            Ok(())
        }

        fn partitions(&self) -> u32 {
            1
        }
    }

    fn visit(id: &str, outlet: &str) -> Event {
        let text = format!(
            r#"{{"event_id":"{id}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"crm","agent_id":"A1","payload":{{"outlet_id":"{outlet}","purpose":"training"}}}}"#
        );
        Decoder::standard().decode(text.as_bytes()).expect("valid")
    }

    fn dedup(dir: &Path) -> DedupLog<Blind> {
        let index = DedupIndex::open(dir.join("dedup.db")).expect("index");
        DedupLog::new(Blind::default(), index, Duration::from_secs(5))
    }

    #[test]
    fn repeats_are_answered_without_appending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dedup(dir.path());
        let first = log
            .append(&[
                visit("e1", "O1"),
                visit("e2", "O1"),
                visit("e1", "O1"),
                visit("e2", "O9"),
            ])
            .expect("append");
        assert!(matches!(first[0], AppendOutcome::Appended { .. }));
        assert!(matches!(first[1], AppendOutcome::Appended { .. }));
        assert_eq!(first[2], AppendOutcome::Duplicate);
        assert_eq!(first[3], AppendOutcome::Conflict);
        let again = log
            .append(&[visit("e1", "O1"), visit("e2", "O2"), visit("e3", "O1")])
            .expect("append");
        assert_eq!(again[0], AppendOutcome::Duplicate);
        assert_eq!(again[1], AppendOutcome::Conflict);
        assert!(matches!(again[2], AppendOutcome::Appended { .. }));
        assert_eq!(
            *log.inner().appended.lock().expect("lock"),
            ["e1", "e2", "e3"]
        );
    }

    #[test]
    fn a_failed_append_records_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dedup(dir.path());
        log.inner().failing.store(true, Ordering::SeqCst);
        assert!(log.append(&[visit("e1", "O1")]).is_err());
        assert!(log.index().is_empty().expect("len"));
        log.inner().failing.store(false, Ordering::SeqCst);
        let outcomes = log.append(&[visit("e1", "O1")]).expect("append");
        assert!(matches!(outcomes[0], AppendOutcome::Appended { .. }));
        assert_eq!(log.index().len().expect("len"), 1);
    }

    #[test]
    fn concurrent_retries_append_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Arc::new(dedup(dir.path()));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    log.append(&[visit("e1", "O1"), visit("e2", "O1")])
                        .expect("append")
                })
            })
            .collect();
        let appended: usize = threads
            .into_iter()
            .flat_map(|t| t.join().expect("thread"))
            .filter(|o| matches!(o, AppendOutcome::Appended { .. }))
            .count();
        assert_eq!(appended, 2);
        assert_eq!(log.inner().appended.lock().expect("lock").len(), 2);
    }
}
