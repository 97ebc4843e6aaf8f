//! The projector's own ACID store: ledger state and consumed positions, always committed
//! together. A restart resumes from here; the log is then read from these positions, so
//! nothing is lost and nothing counts twice.
//!
//! Three parts, beside each other (`projector.db`, `projector.db.records/`,
//! `projector.db.state-N`):
//! - the event records ([`crate::ledger::records`]) and the checkpoint's row (positions, the
//!   generation of the state file, its size and form) in an embedded key-value store
//!   ([`RecordStore`]), written in one durable batch: the records made since the previous
//!   checkpoint, not all of them;
//! - the rest of the state in a file named by its generation, written and synced before
//!   that batch, and the older file deleted after it: a crash at any point leaves the last
//!   committed row, its records and its file intact (a file of a generation never committed
//!   is removed at open);
//! - the quarantined records, in SQLite (`projector.db`), where checkpoints of earlier
//!   forms also kept their row.
//!
//! The row also says in which form the state was written ([`STATE_FORMAT`]). A checkpoint of
//! an earlier form cannot be read into today's ledger: it is treated as no checkpoint, with
//! a warning, and the projector rebuilds the state from the log (event topics keep
//! everything); its event records are dropped when the store opens, so that the rebuild
//! never takes one for an event it has already counted.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aqs_eventlog::{PartitionId, Positions};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::ledger::Ledger;
use crate::ledger::records::StoredRecord;
use crate::record_store::{RecordStore, RecordStoreError, Visible};

/// The form of the ledger state this build writes and reads. Raise it whenever the state's
/// layout or meaning changes; older checkpoints are then rebuilt from the log.
/// - 1: events known by `event_id` alone.
/// - 2: events known by (`source`, `event_id`); money sums checked.
/// - 3: agents' profiles and the names their joins carry.
/// - 4: the working-day calendar's declared days.
/// - 5: team definitions kept by effective date.
/// - 6: an agent event's digest and contribution in one compact record.
/// - 7: supervisors' facts.
/// - 8: event records in the record store, a filter of them in the state; the checkpoint's
///   row beside them.
/// - 9: an agent's cells grouped by date.
/// - 10: a cell's outlet named by its place among the agent's outlets.
/// - 11: an agent's cells saved month by month, each month in a compact encoding.
/// - 12: events' digests and the record filter's key hashes by XXH3 (FNV-1a and SipHash
///   before).
/// - 13: the dates of event records and cancellations as day numbers.
pub const STATE_FORMAT: i64 = 13;

/// The form of checkpoints written before the form was recorded.
const FIRST_STATE_FORMAT: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Records(#[from] RecordStoreError),
    #[error("checkpoint state could not be encoded or decoded: {0}")]
    Codec(#[from] postcard::Error),
    #[error("checkpoint row is malformed: {0}")]
    Positions(#[from] serde_json::Error),
    #[error("checkpoint state file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint state file {path} holds {found} bytes, the checkpoint names {expected}")]
    Truncated {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
}

/// The checkpoint's row, committed in the record store's batch with the records it covers.
#[derive(Debug, Serialize, Deserialize)]
struct CheckpointRow {
    format: i64,
    positions: Vec<(PartitionId, u64)>,
    applied: u64,
    /// The state file's generation and size; the records of this generation and earlier
    /// ones are the checkpoint's.
    generation: i64,
    bytes: u64,
    /// Earlier generations whose records were written but whose row never committed.
    #[serde(default)]
    abandoned: Vec<u64>,
    /// Milliseconds since the Unix epoch.
    written_at: i64,
}

/// What a save wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Saved {
    /// The state file's size.
    pub state_bytes: u64,
    /// Event records written to the record store (made or changed since the last save).
    pub records: u64,
}

/// A log record set aside at fold time ([`crate::quarantine`]), as kept in the projector's
/// store and listed by `aqs projector quarantined`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantined {
    /// `events` or `reference`.
    pub stream: String,
    pub partition: u32,
    pub offset: u64,
    pub event_id: Option<String>,
    /// `date_out_of_range`, `money_out_of_range` or `undecodable`.
    pub reason_code: String,
    pub reason: String,
    /// The record as read from the log.
    pub body: String,
    /// When it was first set aside (RFC 3339).
    pub quarantined_at: String,
}

/// A restored checkpoint.
#[derive(Debug)]
pub struct Checkpoint {
    pub ledger: Ledger,
    pub positions: Positions,
    /// Events applied in total when it was written.
    pub applied: u64,
}

#[derive(Debug)]
pub struct CheckpointStore {
    connection: Connection,
    records: RecordStore,
    path: PathBuf,
}

impl CheckpointStore {
    pub fn open(path: &Path) -> Result<Self, CheckpointError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(Duration::from_secs(30))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        // `state` holds the whole state in stores written before it moved to a file.
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS checkpoint (
                id         INTEGER PRIMARY KEY CHECK (id = 1),
                positions  TEXT    NOT NULL,
                state      BLOB    NOT NULL,
                applied    INTEGER NOT NULL,
                written_at INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS checkpoint_file (
                id         INTEGER PRIMARY KEY CHECK (id = 1),
                generation INTEGER NOT NULL,
                bytes      INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS quarantine (
                stream         TEXT    NOT NULL,
                partition      INTEGER NOT NULL,
                offset         INTEGER NOT NULL,
                event_id       TEXT,
                reason_code    TEXT    NOT NULL,
                reason         TEXT    NOT NULL,
                body           BLOB    NOT NULL,
                quarantined_at TEXT    NOT NULL,
                PRIMARY KEY (stream, partition, offset)
            );",
        )?;
        let has_format: bool = connection.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('checkpoint') WHERE name = 'format'",
            [],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !has_format {
            connection.execute(
                &format!(
                    "ALTER TABLE checkpoint ADD COLUMN format INTEGER NOT NULL DEFAULT {FIRST_STATE_FORMAT}"
                ),
                [],
            )?;
        }
        let records = RecordStore::open(&companion(path, ".records"))?;
        let mut store = Self {
            connection,
            records,
            path: path.to_owned(),
        };
        let generation = match store.row()? {
            Some(row) => {
                if row.format != STATE_FORMAT {
                    // A checkpoint of an earlier form is never loaded: the ledger is rebuilt
                    // from the log. Its records go now, or the rebuild would read one (for an
                    // id its fresh filter wrongly says it may have seen) and take the event as
                    // already counted. The row stays, to tell that the form changed until a
                    // save replaces it.
                    store.records.clear_records()?;
                }
                store.records.set_visible(Visible {
                    committed: row.generation as u64,
                    abandoned: row.abandoned,
                    pending: None,
                });
                Some(row.generation)
            }
            None => None,
        };
        store.remove_state_files_except(generation)?;
        Ok(store)
    }

    /// The committed row, if there is one of a form that keeps it in the record store.
    fn row(&self) -> Result<Option<CheckpointRow>, CheckpointError> {
        match self.records.checkpoint_row()? {
            Some(row) => Ok(Some(serde_json::from_slice(&row)?)),
            None => Ok(None),
        }
    }

    /// The file of a generation's state.
    fn state_file(&self, generation: i64) -> PathBuf {
        companion(&self.path, &format!(".state-{generation}"))
    }

    fn generation(&self) -> Result<Option<i64>, CheckpointError> {
        Ok(self.row()?.map(|row| row.generation))
    }

    /// Deletes state files of other generations: older ones, and any of a save that
    /// crashed before its commit.
    fn remove_state_files_except(&self, keep: Option<i64>) -> Result<(), CheckpointError> {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut prefix = self.path.file_name().unwrap_or_default().to_owned();
        prefix.push(".state-");
        let prefix = prefix.to_string_lossy().into_owned();
        let entries = std::fs::read_dir(&dir).map_err(|source| CheckpointError::File {
            path: dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(&prefix) else {
                continue;
            };
            let generation = rest
                .strip_suffix(".partial")
                .unwrap_or(rest)
                .parse::<i64>()
                .ok();
            if generation.is_some() && (generation != keep || rest.ends_with(".partial")) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// The form of the committed checkpoint when it is not [`STATE_FORMAT`]: such a
    /// checkpoint is not loaded, and the ledger is rebuilt from the log. Checkpoints of the
    /// forms before 8 kept their row in SQLite.
    pub fn outdated_format(&self) -> Result<Option<i64>, CheckpointError> {
        let format = match self.row()? {
            Some(row) => Some(row.format),
            None => self
                .connection
                .query_row("SELECT format FROM checkpoint WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .optional()?,
        };
        Ok(format.filter(|format| *format != STATE_FORMAT))
    }

    /// The committed checkpoint, if there is one of this build's form. Its event records
    /// stay in the record store, read when a batch needs them ([`Self::fetch_records`]).
    pub fn load(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        if let Some(format) = self.outdated_format()? {
            tracing::warn!(
                checkpoint = %self.path.display(),
                format,
                current = STATE_FORMAT,
                "checkpoint written in an earlier form: the ledger is rebuilt from the log"
            );
            return Ok(None);
        }
        let Some(row) = self.row()? else {
            return Ok(None);
        };
        let path = self.state_file(row.generation);
        let state = std::fs::read(&path).map_err(|source| CheckpointError::File {
            path: path.clone(),
            source,
        })?;
        if state.len() as u64 != row.bytes {
            return Err(CheckpointError::Truncated {
                path,
                found: state.len() as u64,
                expected: row.bytes,
            });
        }
        Ok(Some(Checkpoint {
            ledger: postcard::from_bytes(&state)?,
            positions: row.positions.into_iter().collect(),
            applied: row.applied,
        }))
    }

    /// Writes state and positions atomically, replacing the previous checkpoint: the state
    /// file and the event records in memory (as versions of a new generation) first, then
    /// the row naming that generation in one durable batch. The caller may then forget the
    /// records ([`Ledger::forget_saved_records`]).
    pub fn save(
        &mut self,
        ledger: &Ledger,
        positions: &Positions,
        applied: u64,
    ) -> Result<Saved, CheckpointError> {
        let previous = self.row()?;
        let committed = previous.as_ref().map_or(0, |row| row.generation as u64);
        let last_written = self.records.last_written_generation()?;
        let generation = self.generation_in_making(committed, last_written);
        // A generation whose records were written by a save that never committed is never
        // used again, and its records stay unseen.
        let mut abandoned = previous.map(|row| row.abandoned).unwrap_or_default();
        abandoned.extend((committed + 1..=last_written).filter(|g| *g != generation));
        let path = self.state_file(generation as i64);
        let bytes = write_synced(&path, |file| {
            // Streamed: no second copy of a large state in memory.
            postcard::to_io(ledger, file)
                .map(|_| ())
                .map_err(std::io::Error::other)
        })
        .map_err(|source| CheckpointError::File {
            path: path.clone(),
            source,
        })?;
        let records = self.write_records_of(ledger, generation)?;
        let row = CheckpointRow {
            format: STATE_FORMAT,
            positions: positions.iter().map(|(p, o)| (*p, *o)).collect(),
            applied,
            generation: generation as i64,
            bytes,
            abandoned: abandoned.clone(),
            written_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        };
        self.records.commit_row(&serde_json::to_vec(&row)?)?;
        self.records.set_visible(Visible {
            committed: generation,
            abandoned,
            pending: None,
        });
        // A row of an earlier form would only mislead a reader of the SQLite file.
        self.connection
            .execute_batch("DELETE FROM checkpoint; DELETE FROM checkpoint_file;")?;
        self.remove_state_files_except(Some(generation as i64))?;
        Ok(Saved {
            state_bytes: bytes,
            records,
        })
    }

    /// The generation of the checkpoint being made: the one records were written ahead
    /// for, else the one after the committed generation and after any whose records were
    /// written without a row (`last_written`).
    fn generation_in_making(&self, committed: u64, last_written: u64) -> u64 {
        self.records
            .pending()
            .unwrap_or(committed.max(last_written) + 1)
    }

    /// Writes the event records in memory as versions of `generation`.
    fn write_records_of(&self, ledger: &Ledger, generation: u64) -> Result<u64, CheckpointError> {
        self.records.write_records::<CheckpointError>(
            generation,
            ledger.records_in_memory(),
            |write| ledger.write_unsaved_records(write),
        )
    }

    /// Writes the event records in memory to the store ahead of the next checkpoint, as
    /// versions of that checkpoint's generation: seen by this store's reads from now on,
    /// part of the checkpoint once its row commits, never seen if it does not. The caller
    /// may then forget them ([`Ledger::forget_saved_records`]). Bounds the records in
    /// memory whatever the time between checkpoints. Returns how many.
    pub fn spill_records(&mut self, ledger: &Ledger) -> Result<u64, CheckpointError> {
        let committed = self.generation()?.map_or(0, |g| g as u64);
        let generation =
            self.generation_in_making(committed, self.records.last_written_generation()?);
        let written = self.write_records_of(ledger, generation)?;
        self.records.set_pending(generation);
        Ok(written)
    }

    /// The positions of the committed checkpoint, without loading its state.
    pub fn committed_positions(&self) -> Result<Option<Positions>, CheckpointError> {
        Ok(self.row()?.map(|row| row.positions.into_iter().collect()))
    }

    /// The stored event records of `keys` ([`Ledger::records_to_fetch`]).
    pub fn fetch_records(&self, keys: &[Vec<u8>]) -> Result<Vec<StoredRecord>, CheckpointError> {
        Ok(self.records.fetch(keys)?)
    }

    /// Keeps records set aside at fold time; a record already kept (the same position, set
    /// aside again by a replay) stays as it was.
    pub fn quarantine(&mut self, records: &[Quarantined]) -> Result<(), CheckpointError> {
        if records.is_empty() {
            return Ok(());
        }
        let transaction = self.connection.transaction()?;
        {
            let mut statement = transaction.prepare_cached(
                "INSERT OR IGNORE INTO quarantine
                     (stream, partition, offset, event_id, reason_code, reason, body, quarantined_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for record in records {
                statement.execute(params![
                    record.stream,
                    record.partition,
                    record.offset as i64,
                    record.event_id,
                    record.reason_code,
                    record.reason,
                    record.body.as_bytes(),
                    record.quarantined_at,
                ])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Every record set aside, in log order.
    pub fn quarantined(&self) -> Result<Vec<Quarantined>, CheckpointError> {
        quarantined_in(&self.connection)
    }

    /// Every record set aside in the store at `path`, read without opening the rest of the
    /// store: a running projector holds its record store, and this may be asked meanwhile.
    pub fn quarantined_at(path: &Path) -> Result<Vec<Quarantined>, CheckpointError> {
        let connection =
            Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        connection.busy_timeout(Duration::from_secs(30))?;
        let has_table: bool = connection.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'quarantine'",
            [],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !has_table {
            return Ok(Vec::new());
        }
        quarantined_in(&connection)
    }

    /// Forgets the checkpoint: the next run replays the log from offset 0.
    pub fn clear(&mut self) -> Result<(), CheckpointError> {
        self.records.clear()?;
        let transaction = self.connection.transaction()?;
        transaction.execute("DELETE FROM checkpoint", [])?;
        transaction.execute("DELETE FROM checkpoint_file", [])?;
        transaction.commit()?;
        self.remove_state_files_except(None)?;
        Ok(())
    }
}

/// The quarantined records of a checkpoint store's database, in log order.
fn quarantined_in(connection: &Connection) -> Result<Vec<Quarantined>, CheckpointError> {
    let mut statement = connection.prepare(
        "SELECT stream, partition, offset, event_id, reason_code, reason, body, quarantined_at
         FROM quarantine ORDER BY stream, partition, offset",
    )?;
    let records = statement
        .query_map([], |r| {
            Ok(Quarantined {
                stream: r.get(0)?,
                partition: r.get(1)?,
                offset: r.get::<_, i64>(2)? as u64,
                event_id: r.get(3)?,
                reason_code: r.get(4)?,
                reason: r.get(5)?,
                body: String::from_utf8_lossy(&r.get::<_, Vec<u8>>(6)?).into_owned(),
                quarantined_at: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(records)
}

/// A file or folder beside the checkpoint's database, named after it.
fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    path.with_file_name(name)
}

/// Writes a file durably through `write`: a partial file, synced, renamed into place, and
/// the folder synced so that the rename survives a crash. Returns the bytes written.
fn write_synced(
    path: &Path,
    write: impl FnOnce(&mut Counted<BufWriter<File>>) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let mut file = Counted {
        inner: BufWriter::with_capacity(1 << 20, File::create(&partial)?),
        bytes: 0,
    };
    write(&mut file)?;
    let bytes = file.bytes;
    let file = file.inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&partial, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(bytes)
}

/// A writer that counts what goes through it.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use aqs_eventlog::Stream;
    use aqs_schemas::{BusinessClock, Decoder};

    use super::*;
    use crate::ledger::digest;

    fn ledger() -> Ledger {
        let mut ledger = Ledger::new(BusinessClock::default());
        for n in 0..50 {
            let line = format!(
                r#"{{"event_id":"v{n}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:30:00+08:00","source":"t","agent_id":"A{}","payload":{{"outlet_id":"O{n}","purpose":"promotion"}}}}"#,
                n % 7
            );
            let event = Decoder::standard().decode(line.as_bytes()).expect("valid");
            ledger.apply(&event, digest(line.as_bytes()));
        }
        ledger.take_changes();
        ledger
    }

    #[test]
    fn a_saved_state_comes_back_whole_and_replaces_the_previous_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("projector.db");
        let ledger = ledger();
        let positions: Positions = [(
            PartitionId {
                stream: Stream::Events,
                partition: 3,
            },
            50,
        )]
        .into_iter()
        .collect();
        let mut store = CheckpointStore::open(&path).expect("open");
        // A bigger state first, so that leftover chunks of it would show.
        let mut bigger = ledger.clone();
        let line = r#"{"event_id":"extra","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-03T09:30:00+08:00","source":"t","agent_id":"A9","payload":{"outlet_id":"O9","purpose":"promotion"}}"#;
        bigger.apply(
            &Decoder::standard().decode(line.as_bytes()).expect("valid"),
            digest(line.as_bytes()),
        );
        store.save(&bigger, &positions, 51).expect("save");
        store.save(&ledger, &positions, 50).expect("save");
        let state_files = || {
            std::fs::read_dir(dir.path())
                .expect("list")
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.contains(".state-"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            state_files(),
            ["projector.db.state-2"],
            "the older file is gone"
        );
        // A save that crashed before its commit leaves a file the next open removes.
        std::fs::write(dir.path().join("projector.db.state-3"), b"torn").expect("write");

        drop(store);
        let restored = CheckpointStore::open(&path)
            .expect("reopen")
            .load()
            .expect("load")
            .expect("a checkpoint");
        assert_eq!(restored.applied, 50);
        assert_eq!(restored.positions, positions);
        assert_eq!(restored.ledger.tables(), ledger.tables());
        assert!(
            !restored
                .ledger
                .tables()
                .agent_day
                .iter()
                .any(|d| d.agent_id == "A9"),
            "nothing of the earlier, bigger state is left"
        );
        assert_eq!(state_files(), ["projector.db.state-2"]);
    }

    /// A visit of agent A9 with id `id`, folded into `ledger`.
    fn visit(ledger: &mut Ledger, id: &str) {
        let line = format!(
            r#"{{"event_id":"{id}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-03T09:30:00+08:00","source":"t","agent_id":"A9","payload":{{"outlet_id":"O9","purpose":"promotion"}}}}"#
        );
        let event = Decoder::standard().decode(line.as_bytes()).expect("valid");
        ledger.apply(&event, digest(line.as_bytes()));
    }

    /// How many of the records of `keys` the store sees.
    fn seen(store: &CheckpointStore, keys: &[&Vec<u8>]) -> usize {
        let keys: Vec<Vec<u8>> = keys.iter().map(|key| key.to_vec()).collect();
        store.fetch_records(&keys).expect("fetch").len()
    }

    #[test]
    fn records_of_a_save_that_never_committed_stay_unseen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("projector.db");
        let key = crate::ledger::records::record_key("A9", "t", "late");
        let mut ledger = ledger();
        {
            let mut store = CheckpointStore::open(&path).expect("open");
            store.save(&ledger, &Positions::new(), 50).expect("save");
            ledger.forget_saved_records();
            // The next save writes its records, then the process dies before its row.
            visit(&mut ledger, "late");
            let written = store
                .records
                .write_records::<CheckpointError>(2, ledger.records_in_memory(), |write| {
                    ledger.write_unsaved_records(write)
                })
                .expect("records written");
            assert_eq!(written, 1);
            assert_eq!(seen(&store, &[&key]), 0);
        }
        let mut store = CheckpointStore::open(&path).expect("reopen");
        assert_eq!(
            seen(&store, &[&key]),
            0,
            "a record of the uncommitted generation is not seen after a restart"
        );
        let mut resumed = store.load().expect("load").expect("a checkpoint");
        store
            .save(&resumed.ledger, &Positions::new(), 50)
            .expect("save");
        assert_eq!(
            store.generation().expect("generation"),
            Some(3),
            "2 is not used again"
        );
        assert_eq!(seen(&store, &[&key]), 0, "nor after a later save commits");
        // Once folded again and saved, the record is the checkpoint's.
        visit(&mut resumed.ledger, "late");
        store
            .save(&resumed.ledger, &Positions::new(), 51)
            .expect("save");
        assert_eq!(seen(&store, &[&key]), 1);
        drop(store);
        let store = CheckpointStore::open(&path).expect("reopen");
        assert_eq!(store.row().expect("row").expect("a row").abandoned, vec![2]);
    }

    #[test]
    fn records_written_ahead_are_seen_by_this_store_and_kept_only_by_a_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("projector.db");
        let early = crate::ledger::records::record_key("A9", "t", "early");
        let late = crate::ledger::records::record_key("A9", "t", "late");
        let mut ledger = ledger();
        {
            let mut store = CheckpointStore::open(&path).expect("open");
            store.save(&ledger, &Positions::new(), 50).expect("save");
            ledger.forget_saved_records();
            visit(&mut ledger, "early");
            assert_eq!(store.spill_records(&ledger).expect("spill"), 1);
            ledger.forget_saved_records();
            assert_eq!(
                seen(&store, &[&early]),
                1,
                "this store reads what it wrote ahead"
            );
            // Killed before the checkpoint.
        }
        let mut store = CheckpointStore::open(&path).expect("reopen");
        assert_eq!(
            seen(&store, &[&early]),
            0,
            "records written ahead of a checkpoint that never came are not seen"
        );
        let mut resumed = store.load().expect("load").expect("a checkpoint").ledger;
        visit(&mut resumed, "late");
        store.spill_records(&resumed).expect("spill");
        resumed.forget_saved_records();
        visit(&mut resumed, "early");
        store.save(&resumed, &Positions::new(), 52).expect("save");
        drop(store);
        let store = CheckpointStore::open(&path).expect("reopen");
        assert_eq!(
            seen(&store, &[&early, &late]),
            2,
            "written ahead or at the checkpoint, both are the checkpoint's"
        );
        assert_eq!(store.row().expect("row").expect("a row").abandoned, vec![2]);
    }

    #[test]
    fn a_checkpoint_of_an_earlier_form_is_not_loaded_and_a_new_one_replaces_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("projector.db");
        let ledger = ledger();
        {
            let connection = Connection::open(&path).expect("open");
            connection
                .execute_batch(
                    "CREATE TABLE checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), positions TEXT NOT NULL,
                     state BLOB NOT NULL, applied INTEGER NOT NULL, written_at INTEGER NOT NULL);",
                )
                .expect("schema");
            connection
                .execute(
                    "INSERT INTO checkpoint VALUES (1, '[]', ?1, 50, 0)",
                    params![postcard::to_allocvec(&ledger).expect("encode")],
                )
                .expect("insert");
        }
        // The state of that time cannot be read as today's: no checkpoint, rebuild.
        let mut store = CheckpointStore::open(&path).expect("open");
        assert_eq!(store.outdated_format().expect("format"), Some(1));
        assert!(store.load().expect("load").is_none());
        store
            .save(&ledger, &Positions::new(), 50)
            .expect("save over it");
        assert_eq!(store.outdated_format().expect("format"), None);
        let restored = store.load().expect("load").expect("a checkpoint");
        assert_eq!(restored.applied, 50);
        assert_eq!(restored.ledger.tables(), ledger.tables());
    }

    #[test]
    fn the_records_of_a_checkpoint_of_an_earlier_form_are_never_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("projector.db");
        let key = crate::ledger::records::record_key("A9", "t", "old");
        let mut ledger = ledger();
        visit(&mut ledger, "old");
        {
            let mut store = CheckpointStore::open(&path).expect("open");
            store.save(&ledger, &Positions::new(), 51).expect("save");
            assert_eq!(seen(&store, &[&key]), 1);
            // The row as an earlier release wrote it: the same, in an earlier form.
            let mut row = store.row().expect("row").expect("a row");
            row.format = STATE_FORMAT - 1;
            store
                .records
                .commit_row(&serde_json::to_vec(&row).expect("row"))
                .expect("commit");
        }
        let mut store = CheckpointStore::open(&path).expect("reopen");
        assert_eq!(
            store.outdated_format().expect("format"),
            Some(STATE_FORMAT - 1)
        );
        assert!(store.load().expect("load").is_none());
        assert_eq!(
            seen(&store, &[&key]),
            0,
            "a record of the earlier form would make its event a repeat in the rebuild"
        );
        // The rebuild's first checkpoint, before it meets that event again.
        let rebuilt = self::ledger();
        store.save(&rebuilt, &Positions::new(), 50).expect("save");
        assert_eq!(store.outdated_format().expect("format"), None);
        assert_eq!(seen(&store, &[&key]), 0, "nor once the rebuild saves");
        drop(store);
        let store = CheckpointStore::open(&path).expect("reopen");
        assert_eq!(seen(&store, &[&key]), 0, "nor after a restart");
        assert_eq!(
            store.load().expect("load").expect("a checkpoint").applied,
            50
        );
    }

    /// A checkpoint store as written before the state's form was recorded, with a state
    /// file: what a projector upgraded from then finds.
    #[test]
    fn a_store_of_the_previous_release_reads_as_no_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("projector.db");
        {
            let connection = Connection::open(&path).expect("open");
            connection
                .execute_batch(
                    "CREATE TABLE checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), positions TEXT NOT NULL,
                     state BLOB NOT NULL, applied INTEGER NOT NULL, written_at INTEGER NOT NULL);
                     CREATE TABLE checkpoint_file (id INTEGER PRIMARY KEY CHECK (id = 1),
                     generation INTEGER NOT NULL, bytes INTEGER NOT NULL);
                     INSERT INTO checkpoint VALUES (1, '[[{\"stream\":\"events\",\"partition\":0},7]]', x'', 7, 0);
                     INSERT INTO checkpoint_file VALUES (1, 3, 4);",
                )
                .expect("schema");
            // Bytes no state of today's form reads.
            std::fs::write(
                dir.path().join("projector.db.state-3"),
                [0xff, 0xff, 0xff, 0x7f],
            )
            .expect("state file");
        }
        let store = CheckpointStore::open(&path).expect("open");
        assert_eq!(store.outdated_format().expect("format"), Some(1));
        assert!(store.load().expect("not an error").is_none());
    }

    #[test]
    fn a_truncated_state_file_is_an_error_not_an_empty_ledger() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("projector.db");
        let mut store = CheckpointStore::open(&path).expect("open");
        store.save(&ledger(), &Positions::new(), 50).expect("save");
        let file = dir.path().join("projector.db.state-1");
        let bytes = std::fs::read(&file).expect("read");
        std::fs::write(&file, &bytes[..bytes.len() / 2]).expect("truncate");
        let error = store.load().expect_err("truncated");
        assert!(
            matches!(error, CheckpointError::Truncated { expected, .. } if expected == bytes.len() as u64),
            "{error}"
        );
    }
}
