//! Exactly-once appends to a log that cannot tell repeats (Kafka): an embedded index of the
//! events already appended, by identity (`source`, `event_id`), in front of the log.
//!
//! [`DedupLog`] answers an event whose identity is in the index as a duplicate (same
//! canonical bytes) or a conflict (different bytes) without appending it; it appends the
//! others and records them only once the log has acknowledged them. Concurrent batches
//! holding the same new event are serialised by claiming identities, so two requests racing
//! with one event cannot both append it.
//!
//! The residual window: a crash after the log acknowledged a batch and before its events
//! were recorded (or, the index being written without waiting for the disk, a power loss
//! shortly after) lets a retry of that batch append it again. The projector drops repeats
//! by identity, so the ledgers still count each event once.
//!
//! Entries recorded when the id alone was the identity carry no source (`''`). Such an entry
//! still answers a resend with the same bytes as a duplicate; an event with that id and
//! other bytes may come from another source, so it is appended and the projector, which
//! sees the sources in the log, tells a conflict from another source's event.

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
    source      TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    digest      BLOB    NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (source, event_id)
) WITHOUT ROWID;
";

/// The source of entries recorded before an event's identity included its source.
const UNKNOWN_SOURCE: &str = "";

/// Moves an index written when the id alone was the identity (`appended` keyed by
/// `event_id`) to the current table, its entries under [`UNKNOWN_SOURCE`]. Returns the
/// entries moved, or `None` when there was nothing to do.
fn migrate_identity(connection: &mut Connection) -> Result<Option<u64>, LogError> {
    let has_source: bool = connection.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('appended') WHERE name = 'source'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    let exists: bool = connection.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'appended'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !exists || has_source {
        return Ok(None);
    }
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    transaction.execute_batch("ALTER TABLE appended RENAME TO appended_by_id;")?;
    transaction.execute_batch(SCHEMA)?;
    let moved = transaction.execute(
        "INSERT INTO appended (source, event_id, digest, recorded_at)
         SELECT ?1, event_id, digest, recorded_at FROM appended_by_id",
        params![UNKNOWN_SOURCE],
    )?;
    transaction.execute_batch("DROP TABLE appended_by_id;")?;
    transaction.commit()?;
    Ok(Some(moved as u64))
}

/// What the index knows of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded under its source and id, with this digest.
    Exact(Digest),
    /// Only its id was recorded, before sources were part of the identity.
    IdOnly(Digest),
}

/// The events already appended, by (source, event_id), with the SHA-256 of their canonical
/// bytes; a SQLite file.
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
        let mut connection = Connection::open(&path)?;
        connection.busy_timeout(Duration::from_secs(10))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode survives a crash of the process, not of the machine: an
        // entry lost with the machine only widens the residual window described above.
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        if let Some(entries) = migrate_identity(&mut connection)? {
            tracing::info!(
                index = %path.display(),
                entries,
                "dedup index migrated: entries recorded before are kept without a source"
            );
        }
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

    /// What is recorded of each of `identities` (source, event_id) that is known.
    pub fn lookup<'a>(
        &self,
        identities: impl IntoIterator<Item = Identity<'a>>,
    ) -> Result<HashMap<Identity<'a>, Recorded>, LogError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare_cached("SELECT digest FROM appended WHERE source = ?1 AND event_id = ?2")?;
        let mut read = |source: &str, id: &str| -> Result<Option<Digest>, LogError> {
            let stored: Option<Vec<u8>> = statement
                .query_row(params![source, id], |row| row.get(0))
                .optional()?;
            stored
                .map(|bytes| {
                    bytes.try_into().map_err(|_| {
                        LogError::Unavailable(format!("dedup index: bad digest of {id:?}"))
                    })
                })
                .transpose()
        };
        let mut found = HashMap::new();
        for identity @ (source, id) in identities {
            if let Some(digest) = read(source, id)? {
                found.insert(identity, Recorded::Exact(digest));
            } else if let Some(digest) = read(UNKNOWN_SOURCE, id)? {
                found.insert(identity, Recorded::IdOnly(digest));
            }
        }
        Ok(found)
    }

    /// Records appended events; an event already recorded keeps its first digest.
    pub fn record<'a>(
        &self,
        entries: impl IntoIterator<Item = (Identity<'a>, &'a Digest)>,
    ) -> Result<(), LogError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT OR IGNORE INTO appended (source, event_id, digest, recorded_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for ((source, id), digest) in entries {
                insert.execute(params![source, id, &digest[..], now])?;
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

/// An event's identity: its source and its id.
pub type Identity<'a> = (&'a str, &'a str);

fn identity(event: &Event) -> Identity<'_> {
    (&event.source, &event.event_id)
}

/// Events being appended right now, so that one event is never in two appends at once.
#[derive(Debug, Default)]
struct Claims {
    held: Mutex<HashSet<(String, String)>>,
    released: Condvar,
}

impl Claims {
    /// Claims all of `ids` at once, waiting while another batch holds any of them.
    fn claim(&self, ids: &[Identity<'_>], deadline: Instant) -> Result<ClaimGuard<'_>, LogError> {
        let owned = |&(source, id): &Identity<'_>| (source.to_owned(), id.to_owned());
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if !ids.iter().any(|identity| held.contains(&owned(identity))) {
                held.extend(ids.iter().map(owned));
                return Ok(ClaimGuard {
                    claims: self,
                    ids: ids.iter().map(owned).collect(),
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
    ids: Vec<(String, String)>,
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
        let mut first: HashMap<Identity<'_>, usize> = HashMap::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            match first.get(&identity(event)) {
                Some(&j) => outcomes[i] = Some(repeat(&digests[i], &digests[j])),
                None => {
                    first.insert(identity(event), i);
                }
            }
        }
        let ids: Vec<Identity<'_>> = first.keys().copied().collect();
        let _claim = self
            .claims
            .claim(&ids, Instant::now() + self.claim_timeout)?;
        let known = self.index.lookup(ids.iter().copied())?;

        let mut fresh: Vec<usize> = Vec::new();
        for (i, event) in events.iter().enumerate() {
            if outcomes[i].is_some() {
                continue;
            }
            match known.get(&identity(event)) {
                Some(Recorded::Exact(stored)) => outcomes[i] = Some(repeat(&digests[i], stored)),
                Some(Recorded::IdOnly(stored)) if stored == &digests[i] => {
                    outcomes[i] = Some(AppendOutcome::Duplicate);
                }
                // Unknown, or known by id only with other bytes: possibly another source's.
                Some(Recorded::IdOnly(_)) | None => fresh.push(i),
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
                    record.push((identity(&events[i]), &digests[i]));
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
        visit_from("crm", id, outlet)
    }

    fn visit_from(source: &str, id: &str, outlet: &str) -> Event {
        let text = format!(
            r#"{{"event_id":"{id}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"{source}","agent_id":"A1","payload":{{"outlet_id":"{outlet}","purpose":"training"}}}}"#
        );
        Decoder::standard().decode(text.as_bytes()).expect("valid")
    }

    #[test]
    fn another_source_s_event_with_the_same_id_is_another_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dedup(dir.path());
        let first = log
            .append(&[visit_from("crm", "e1", "O1"), visit_from("app", "e1", "O2")])
            .expect("append");
        assert!(
            first
                .iter()
                .all(|o| matches!(o, AppendOutcome::Appended { .. }))
        );
        let again = log
            .append(&[visit_from("app", "e1", "O2"), visit_from("crm", "e1", "O3")])
            .expect("append");
        assert_eq!(again, [AppendOutcome::Duplicate, AppendOutcome::Conflict]);
        assert_eq!(log.index().len().expect("len"), 2);
    }

    #[test]
    fn an_index_recorded_by_id_alone_keeps_answering_repeats() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dedup.db");
        let known = visit_from("crm", "e1", "O1");
        {
            let connection = Connection::open(&path).expect("create");
            connection
                .execute_batch(
                    "CREATE TABLE appended (event_id TEXT PRIMARY KEY, digest BLOB NOT NULL,
                     recorded_at INTEGER NOT NULL) WITHOUT ROWID;",
                )
                .expect("old schema");
            let bytes = serde_json::to_vec(&known).expect("bytes");
            connection
                .execute(
                    "INSERT INTO appended VALUES ('e1', ?1, 0)",
                    params![&digest(&bytes)[..]],
                )
                .expect("old entry");
        }
        let index = DedupIndex::open(&path).expect("an old index opens");
        assert_eq!(index.len().expect("len"), 1);
        let log = DedupLog::new(Blind::default(), index, Duration::from_secs(5));
        let outcomes = log
            .append(&[known.clone(), visit_from("app", "e1", "O1")])
            .expect("append");
        assert_eq!(
            outcomes[0],
            AppendOutcome::Duplicate,
            "the same bytes again"
        );
        assert!(
            matches!(outcomes[1], AppendOutcome::Appended { .. }),
            "the same id from another source is appended"
        );
        assert_eq!(*log.inner().appended.lock().expect("lock"), ["e1"]);
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
