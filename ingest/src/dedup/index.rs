//! The dedup index: the events this instance appended, by identity (`source`, `event_id`),
//! with the SHA-256 of their canonical bytes; a SQLite file of its own.
//!
//! Each entry belongs to the transaction that wrote it. A transaction is recorded as
//! *pending* (its writer and one of its records, the probe) before its commit, and the
//! pending row is removed once the commit is known: committed, the entries stay; aborted,
//! they go. Entries of a pending transaction are neither duplicates nor new until its fate
//! is read from the log.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aqs_eventlog::{Fate, LogError, PartitionId, Probe, RecordPosition, Stream, TransactionWriter};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tracing::info;

use crate::auth::{Digest, digest};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS appended (
    source      TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    digest      BLOB    NOT NULL,
    recorded_at INTEGER NOT NULL,
    txn         INTEGER,
    PRIMARY KEY (source, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS appended_by_age ON appended (recorded_at);
CREATE TABLE IF NOT EXISTS pending (
    txn            INTEGER PRIMARY KEY AUTOINCREMENT,
    writer         TEXT    NOT NULL,
    incarnation    TEXT    NOT NULL,
    stream         INTEGER NOT NULL,
    partition      INTEGER NOT NULL,
    record_offset  INTEGER NOT NULL,
    probe_source   TEXT    NOT NULL,
    probe_event_id TEXT    NOT NULL,
    recorded_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// The source of entries recorded before an event's identity included its source.
pub const UNKNOWN_SOURCE: &str = "";

/// An event's identity: its source and its id.
pub type Identity<'a> = (&'a str, &'a str);

/// A pending transaction's number in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransactionId(i64);

/// What the index knows of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Appended under its source and id, with this digest.
    Exact(Digest),
    /// Only its id was recorded, before sources were part of the identity.
    IdOnly(Digest),
    /// Written by a transaction whose commit is not known yet.
    Pending(TransactionId),
}

/// A transaction recorded before its commit and not settled since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTransaction {
    pub id: TransactionId,
    pub writer: TransactionWriter,
    pub probe: Probe,
    /// When it was recorded, in milliseconds since the Unix epoch.
    pub recorded_at_ms: i64,
}

/// The dedup index of one ingest instance; see the module documentation.
#[derive(Debug)]
pub struct DedupIndex {
    path: PathBuf,
    connection: Mutex<Connection>,
    /// The stable name of the instance that owns this index.
    instance: String,
    /// Entries, kept as they change (counting a large table is slow).
    entries: AtomicU64,
}

impl DedupIndex {
    /// Opens or creates the index, migrating an earlier form, and takes it for this process
    /// alone: a second process on the same file is refused (it would share this instance's
    /// transactional writers and fence them).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LogError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| LogError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut connection = Connection::open(&path)?;
        let (instance, entries) =
            prepare(&mut connection, &path).map_err(|error| in_use(&path, error))?;
        Ok(Self {
            path,
            connection: Mutex::new(connection),
            instance,
            entries: AtomicU64::new(entries),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stable name of the ingest instance owning this index (made at its creation): the
    /// prefix of its transactional writers.
    pub fn instance(&self) -> &str {
        &self.instance
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
        let mut statement = connection.prepare_cached(
            "SELECT a.digest, p.txn FROM appended a LEFT JOIN pending p ON p.txn = a.txn
             WHERE a.source = ?1 AND a.event_id = ?2",
        )?;
        let mut read =
            |source: &str, id: &str| -> Result<Option<(Digest, Option<i64>)>, LogError> {
                let stored: Option<(Vec<u8>, Option<i64>)> = statement
                    .query_row(params![source, id], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?;
                stored
                    .map(|(bytes, pending)| {
                        let digest: Digest = bytes.try_into().map_err(|_| {
                            LogError::Unavailable(format!("dedup index: bad digest of {id:?}"))
                        })?;
                        Ok((digest, pending))
                    })
                    .transpose()
            };
        let mut found = HashMap::new();
        for identity @ (source, id) in identities {
            if let Some((digest, pending)) = read(source, id)? {
                let recorded = match pending {
                    Some(txn) => Recorded::Pending(TransactionId(txn)),
                    None => Recorded::Exact(digest),
                };
                found.insert(identity, recorded);
            } else if let Some((digest, _)) = read(UNKNOWN_SOURCE, id)? {
                found.insert(identity, Recorded::IdOnly(digest));
            }
        }
        Ok(found)
    }

    /// Records a transaction about to be committed, with its events, and waits until this is
    /// on disk: whatever happens to the process or the machine after its commit, the index
    /// knows the transaction and can read its fate.
    pub fn record_pending<'a>(
        &self,
        writer: &TransactionWriter,
        probe: &Probe,
        entries: impl IntoIterator<Item = (Identity<'a>, &'a Digest)>,
    ) -> Result<TransactionId, LogError> {
        let now = now_ms();
        let mut connection = self.lock();
        connection.pragma_update(None, "synchronous", "FULL")?;
        let result = (|| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            transaction.execute(
                "INSERT INTO pending (writer, incarnation, stream, partition, record_offset,
                                      probe_source, probe_event_id, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    writer.name,
                    writer.incarnation,
                    probe.position.partition.stream.code(),
                    probe.position.partition.partition,
                    probe.position.offset as i64,
                    probe.source,
                    probe.event_id,
                    now
                ],
            )?;
            let txn = transaction.last_insert_rowid();
            let mut inserted = 0;
            {
                let mut insert = transaction.prepare_cached(
                    "INSERT INTO appended (source, event_id, digest, recorded_at, txn)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for ((source, id), digest) in entries {
                    insert.execute(params![source, id, &digest[..], now, txn])?;
                    inserted += 1;
                }
            }
            transaction.commit()?;
            Ok::<_, LogError>((txn, inserted))
        })();
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        let (txn, inserted) = result?;
        self.entries.fetch_add(inserted, Ordering::Relaxed);
        Ok(TransactionId(txn))
    }

    /// Settles a pending transaction: committed, its entries stay; aborted, they are removed
    /// (a retry appends those events anew). [`Fate::Undecided`] changes nothing. The entries
    /// removed.
    pub fn settle(&self, id: TransactionId, fate: Fate) -> Result<u64, LogError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let recorded_at: Option<i64> = transaction
            .query_row(
                "SELECT recorded_at FROM pending WHERE txn = ?1",
                params![id.0],
                |r| r.get(0),
            )
            .optional()?;
        let Some(recorded_at) = recorded_at else {
            return Ok(0);
        };
        let removed = match fate {
            Fate::Undecided => return Ok(0),
            Fate::Committed => 0,
            // Every entry of a transaction was recorded at the same instant.
            Fate::Aborted => transaction.execute(
                "DELETE FROM appended WHERE recorded_at = ?1 AND txn = ?2",
                params![recorded_at, id.0],
            )? as u64,
        };
        transaction.execute("DELETE FROM pending WHERE txn = ?1", params![id.0])?;
        transaction.commit()?;
        self.entries.fetch_sub(removed, Ordering::Relaxed);
        Ok(removed)
    }

    /// The transactions recorded pending and not settled, oldest first.
    pub fn pending(&self) -> Result<Vec<PendingTransaction>, LogError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT txn, writer, incarnation, stream, partition, record_offset, probe_source,
                    probe_event_id, recorded_at
             FROM pending ORDER BY txn",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, u32>(4)?,
                row.get::<_, i64>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, String>(7)?,
                row.get::<_, i64>(8)?,
            ))
        })?;
        let mut pending = Vec::new();
        for row in rows {
            let (txn, name, incarnation, stream, partition, offset, source, event_id, at) = row?;
            let stream = Stream::from_code(stream).ok_or_else(|| {
                LogError::Unavailable(format!(
                    "dedup index: transaction {txn} has stream {stream}"
                ))
            })?;
            pending.push(PendingTransaction {
                id: TransactionId(txn),
                writer: TransactionWriter { name, incarnation },
                probe: Probe {
                    position: RecordPosition {
                        partition: PartitionId { stream, partition },
                        offset: offset as u64,
                    },
                    source,
                    event_id,
                },
                recorded_at_ms: at,
            });
        }
        Ok(pending)
    }

    /// Removes the entries recorded before `cutoff`, except those of pending transactions, in
    /// chunks of `chunk` so that appends are not held up long; the entries removed.
    pub fn prune(&self, cutoff: SystemTime, chunk: usize) -> Result<u64, LogError> {
        let cutoff = cutoff
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut removed = 0;
        loop {
            let deleted = self.lock().execute(
                "DELETE FROM appended WHERE (source, event_id) IN (
                     SELECT source, event_id FROM appended
                     WHERE recorded_at < ?1
                       AND (txn IS NULL OR txn NOT IN (SELECT txn FROM pending))
                     ORDER BY recorded_at LIMIT ?2)",
                params![cutoff, chunk as i64],
            )? as u64;
            removed += deleted;
            self.entries.fetch_sub(deleted, Ordering::Relaxed);
            if deleted < chunk as u64 {
                return Ok(removed);
            }
        }
    }

    /// Entries in the index.
    pub fn len(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the oldest entry was recorded.
    pub fn oldest(&self) -> Result<Option<SystemTime>, LogError> {
        let oldest: Option<i64> =
            self.lock()
                .query_row("SELECT MIN(recorded_at) FROM appended", [], |r| r.get(0))?;
        Ok(oldest.map(|ms| UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)))
    }

    /// Transactions recorded pending and not settled.
    pub fn pending_count(&self) -> Result<u64, LogError> {
        let count: i64 = self
            .lock()
            .query_row("SELECT COUNT(*) FROM pending", [], |r| r.get(0))?;
        Ok(count as u64)
    }

    /// Size of the database file in bytes (pages in use and free ones).
    pub fn file_bytes(&self) -> Result<u64, LogError> {
        let connection = self.lock();
        let pages: i64 = connection.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let size: i64 = connection.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok((pages * size) as u64)
    }

    /// Whether the index answers (for readiness).
    pub fn check(&self) -> Result<(), LogError> {
        self.lock()
            .query_row("SELECT 1 FROM appended LIMIT 1", [], |_| Ok(()))
            .optional()?;
        Ok(())
    }
}

/// Takes the file for this connection alone, brings it to the current form; the instance
/// name and the number of entries.
fn prepare(connection: &mut Connection, path: &Path) -> Result<(String, u64), LogError> {
    connection.busy_timeout(Duration::from_secs(2))?;
    connection.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    // NORMAL in WAL mode survives a crash of the process, not of the machine. The one write
    // whose loss would matter, a transaction recorded as pending before its commit, is
    // written with FULL (see `DedupIndex::record_pending`).
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    // A write now takes the exclusive lock, held until the connection closes.
    connection.execute_batch("BEGIN IMMEDIATE; COMMIT;")?;
    if let Some(entries) = migrate_identity(connection)? {
        info!(
            index = %path.display(),
            entries,
            "dedup index migrated: entries recorded before are kept without a source"
        );
    }
    let table_exists: bool = connection.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'appended'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    let has_txn: bool = connection.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('appended') WHERE name = 'txn'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if table_exists && !has_txn {
        // Entries of before were recorded after their append was acknowledged: they belong
        // to no pending transaction.
        connection.execute_batch("ALTER TABLE appended ADD COLUMN txn INTEGER;")?;
        info!(
            index = %path.display(),
            "dedup index: entries now belong to transactions; building the age index"
        );
    }
    connection.execute_batch(SCHEMA)?;
    let instance = instance_name(connection, path)?;
    let entries: i64 = connection.query_row("SELECT COUNT(*) FROM appended", [], |r| r.get(0))?;
    Ok((instance, entries as u64))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The instance name recorded in the index, made on first use.
fn instance_name(connection: &Connection, path: &Path) -> Result<String, LogError> {
    let existing: Option<String> = connection
        .query_row("SELECT value FROM meta WHERE key = 'instance'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(name) = existing {
        return Ok(name);
    }
    let seed = format!("{}|{}|{}", now_ms(), std::process::id(), path.display());
    let hex: String = digest(seed.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let name = format!("aqs-ingest-{hex}");
    connection.execute(
        "INSERT INTO meta (key, value) VALUES ('instance', ?1)",
        params![name],
    )?;
    info!(index = %path.display(), instance = name, "dedup index created for a new ingest instance");
    Ok(name)
}

/// A clearer error when another process holds the index.
fn in_use(path: &Path, error: LogError) -> LogError {
    match &error {
        LogError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            LogError::Config(format!(
                "the dedup index {} is in use by another process (one ingest instance per data \
                 folder): {error}",
                path.display()
            ))
        }
        _ => error,
    }
}

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
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> TransactionWriter {
        TransactionWriter {
            name: "w-0".into(),
            incarnation: "1.0".into(),
        }
    }

    fn probe(id: &str) -> Probe {
        Probe {
            position: RecordPosition {
                partition: PartitionId {
                    stream: Stream::Events,
                    partition: 1,
                },
                offset: 7,
            },
            source: "crm".into(),
            event_id: id.into(),
        }
    }

    #[test]
    fn pending_entries_are_settled_by_their_fate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = DedupIndex::open(dir.path().join("dedup.db")).expect("open");
        let digest = [7; 32];
        let kept = index
            .record_pending(&writer(), &probe("a"), [(("crm", "a"), &digest)])
            .expect("record");
        let dropped = index
            .record_pending(
                &writer(),
                &probe("b"),
                [(("crm", "b"), &digest), (("crm", "c"), &digest)],
            )
            .expect("record");
        assert_eq!(index.len(), 3);
        let found = index.lookup([("crm", "a"), ("crm", "b")]).expect("lookup");
        assert_eq!(found[&("crm", "a")], Recorded::Pending(kept));
        assert_eq!(found[&("crm", "b")], Recorded::Pending(dropped));
        let pending = index.pending().expect("pending");
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[1].probe, probe("b"));
        assert_eq!(pending[1].writer, writer());

        assert_eq!(index.settle(kept, Fate::Committed).expect("settle"), 0);
        assert_eq!(index.settle(dropped, Fate::Undecided).expect("settle"), 0);
        assert_eq!(index.pending_count().expect("count"), 1);
        assert_eq!(index.settle(dropped, Fate::Aborted).expect("settle"), 2);
        let found = index
            .lookup([("crm", "a"), ("crm", "b"), ("crm", "c")])
            .expect("lookup");
        assert_eq!(found.len(), 1);
        assert_eq!(found[&("crm", "a")], Recorded::Exact(digest));
        assert_eq!(index.len(), 1);
        assert_eq!(index.pending_count().expect("count"), 0);
    }

    #[test]
    fn the_instance_name_is_kept_and_a_second_process_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dedup.db");
        let name = DedupIndex::open(&path).expect("open").instance().to_owned();
        assert!(name.starts_with("aqs-ingest-"), "{name}");
        let index = DedupIndex::open(&path).expect("open again");
        assert_eq!(index.instance(), name);
        // While it is open, another connection (as another process would) cannot take it.
        let error = DedupIndex::open(&path).expect_err("taken");
        assert!(
            error.to_string().contains("in use by another process"),
            "{error}"
        );
    }

    #[test]
    fn pruning_removes_what_is_older_than_the_cutoff_but_not_pending_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = DedupIndex::open(dir.path().join("dedup.db")).expect("open");
        let digest = [1; 32];
        let settled = index
            .record_pending(
                &writer(),
                &probe("old-0"),
                OLD.iter().map(|id| (("crm", *id), &digest)),
            )
            .expect("record");
        index.settle(settled, Fate::Committed).expect("settle");
        let unsettled = index
            .record_pending(&writer(), &probe("open"), [(("crm", "open"), &digest)])
            .expect("record");
        std::thread::sleep(Duration::from_millis(20));
        let cutoff = SystemTime::now();
        std::thread::sleep(Duration::from_millis(20));
        let fresh = index
            .record_pending(&writer(), &probe("new"), [(("crm", "new"), &digest)])
            .expect("record");
        index.settle(fresh, Fate::Committed).expect("settle");

        assert_eq!(index.prune(cutoff, 10).expect("prune"), 25);
        assert_eq!(index.len(), 2);
        let found = index
            .lookup([("crm", "old-3"), ("crm", "open"), ("crm", "new")])
            .expect("lookup");
        assert_eq!(found.get(&("crm", "old-3")), None);
        assert_eq!(found[&("crm", "open")], Recorded::Pending(unsettled));
        assert_eq!(found[&("crm", "new")], Recorded::Exact(digest));
        assert!(index.oldest().expect("oldest").is_some_and(|t| t < cutoff));
    }

    const OLD: [&str; 25] = [
        "old-0", "old-1", "old-2", "old-3", "old-4", "old-5", "old-6", "old-7", "old-8", "old-9",
        "old-10", "old-11", "old-12", "old-13", "old-14", "old-15", "old-16", "old-17", "old-18",
        "old-19", "old-20", "old-21", "old-22", "old-23", "old-24",
    ];
}
