//! The checkpoint's embedded key-value store (fjall, an LSM tree; design notes 48 and 49):
//! the event records the fold no longer keeps in memory (`ledger::records`) and the
//! checkpoint's row (positions, generation of the state file, form).
//!
//! A checkpoint's records are written as one sorted run straight into the store's tables
//! (bulk ingestion: no journal, no memtable, written and synced once; a few go through the
//! journal instead), each key suffixed with the checkpoint's generation; then the row naming that generation is committed in a
//! durable batch. A record is read as its latest version of a committed generation, so the
//! records of a checkpoint whose row never committed (a crash between the two) are never
//! seen: the row lists those generations, and no generation is used twice (the last one
//! written is found at open from a marker key written after each run).

use std::path::{Path, PathBuf};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::ledger::records::StoredRecord;

/// The key of the checkpoint's row in the `checkpoint` keyspace.
const CHECKPOINT_KEY: &[u8] = b"checkpoint";

/// The prefix of the marker written after each checkpoint's records, followed by its
/// generation: it sorts after every record key (whose first two bytes are an agent id's
/// length, far below 0xFFFF).
const MARKER_PREFIX: [u8; 2] = [0xFF, 0xFF];

/// Records from which a checkpoint's records are written as a table of their own rather
/// than through the journal.
const INGEST_FROM_RECORDS: usize = 100_000;

/// Block cache for the records' tables: reads are rare (a repeat, a retraction, a false
/// positive of the filter), so a small cache does. Part of the projector's fixed memory.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RecordStoreError {
    #[error(
        "event record store {path} is in use by another process: one projector (or `aqs \
         projector rebuild`) at a time per checkpoint store; give each instance its own \
         (`--instance`)"
    )]
    InUse { path: PathBuf },
    #[error("event record store {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: fjall::Error,
    },
}

fn store_error(path: &Path, source: fjall::Error) -> RecordStoreError {
    match source {
        fjall::Error::Locked => RecordStoreError::InUse {
            path: path.to_owned(),
        },
        source => RecordStoreError::Store {
            path: path.to_owned(),
            source,
        },
    }
}

/// Which versions of the records a reader may see: those of committed generations, and
/// those this process wrote for the checkpoint it is making.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Visible {
    /// The committed checkpoint's generation (0: none).
    pub committed: u64,
    /// Generations at or below it whose records were written but whose row never was.
    pub abandoned: Vec<u64>,
    /// The generation of the checkpoint being made, once records were written for it.
    pub pending: Option<u64>,
}

impl Visible {
    fn sees(&self, generation: u64) -> bool {
        (generation <= self.committed && !self.abandoned.contains(&generation))
            || self.pending == Some(generation)
    }
}

pub struct RecordStore {
    db: Database,
    records: Keyspace,
    checkpoint: Keyspace,
    visible: Visible,
    path: PathBuf,
}

impl std::fmt::Debug for RecordStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStore")
            .field("path", &self.path)
            .field("visible", &self.visible)
            .finish_non_exhaustive()
    }
}

impl RecordStore {
    /// Opens (or makes) the store in folder `path`; nothing is visible until
    /// [`Self::set_visible`].
    pub fn open(path: &Path) -> Result<Self, RecordStoreError> {
        let fail = |source| store_error(path, source);
        let db = Database::builder(path)
            .cache_size(CACHE_BYTES)
            .open()
            .map_err(fail)?;
        let records = db
            .keyspace("records", KeyspaceCreateOptions::default)
            .map_err(fail)?;
        let checkpoint = db
            .keyspace("checkpoint", KeyspaceCreateOptions::default)
            .map_err(fail)?;
        Ok(Self {
            db,
            records,
            checkpoint,
            visible: Visible::default(),
            path: path.to_owned(),
        })
    }

    fn fail(&self, source: fjall::Error) -> RecordStoreError {
        store_error(&self.path, source)
    }

    /// Says which generations readers see (from the committed row).
    pub fn set_visible(&mut self, visible: Visible) {
        self.visible = visible;
    }

    /// The generation of the checkpoint being made, if records were written for it.
    pub fn pending(&self) -> Option<u64> {
        self.visible.pending
    }

    /// Lets readers see the records written for the checkpoint being made.
    pub fn set_pending(&mut self, generation: u64) {
        self.visible.pending = Some(generation);
    }

    /// The committed checkpoint row, if any.
    pub fn checkpoint_row(&self) -> Result<Option<Vec<u8>>, RecordStoreError> {
        Ok(self
            .checkpoint
            .get(CHECKPOINT_KEY)
            .map_err(|e| self.fail(e))?
            .map(|row| row.to_vec()))
    }

    /// The last generation whose records were written, committed or not (0: none).
    pub fn last_written_generation(&self) -> Result<u64, RecordStoreError> {
        let last = self.records.prefix(MARKER_PREFIX).next_back();
        let Some(last) = last else {
            return Ok(0);
        };
        let key = last.key().map_err(|e| self.fail(e))?;
        Ok(key
            .get(MARKER_PREFIX.len()..)
            .and_then(|g| g.try_into().ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Writes a checkpoint's records, handed in key order by `records` (`count` of them), as
    /// versions of `generation`, durably; readers see them once a row naming the
    /// generation commits. Many records (a replay catching up) go straight into a new
    /// table; a few (a checkpoint every few seconds at the head of the log) go through the
    /// journal, so that steady work does not make a table per checkpoint. Returns how many.
    pub fn write_records<E: From<RecordStoreError>>(
        &self,
        generation: u64,
        count: usize,
        records: impl FnOnce(&mut dyn FnMut(&[u8], &[u8]) -> Result<(), E>) -> Result<u64, E>,
    ) -> Result<u64, E> {
        let version = generation.to_be_bytes();
        let versioned = |key: &[u8]| {
            let mut versioned = Vec::with_capacity(key.len() + version.len());
            versioned.extend_from_slice(key);
            versioned.extend_from_slice(&version);
            versioned
        };
        let marker = versioned(&MARKER_PREFIX);
        if count < INGEST_FROM_RECORDS {
            let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
            let written = records(&mut |key, value| {
                batch.insert(&self.records, versioned(key), value);
                Ok(())
            })?;
            if written > 0 {
                batch.insert(&self.records, marker, []);
                batch.commit().map_err(|e| E::from(self.fail(e)))?;
            }
            return Ok(written);
        }
        let mut ingestion = self.records.start_ingestion().map_err(|e| self.fail(e))?;
        let written = records(&mut |key, value| {
            ingestion
                .write(versioned(key), value)
                .map_err(|e| E::from(self.fail(e)))
        })?;
        ingestion
            .write(marker, [])
            .map_err(|e| E::from(self.fail(e)))?;
        ingestion.finish().map_err(|e| E::from(self.fail(e)))?;
        Ok(written)
    }

    /// Commits the checkpoint's row, on disk when this returns.
    pub fn commit_row(&self, checkpoint_row: &[u8]) -> Result<(), RecordStoreError> {
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        batch.insert(&self.checkpoint, CHECKPOINT_KEY, checkpoint_row);
        batch.commit().map_err(|e| self.fail(e))
    }

    /// The latest visible version of the records of `keys`; keys without one are left out.
    pub fn fetch(&self, keys: &[Vec<u8>]) -> Result<Vec<StoredRecord>, RecordStoreError> {
        let mut found = Vec::new();
        for key in keys {
            for version in self.records.prefix(key).rev() {
                let (stored, value) = version.into_inner().map_err(|e| self.fail(e))?;
                let Some(generation) = stored
                    .get(key.len()..)
                    .and_then(|g| <[u8; 8]>::try_from(g).ok())
                    .map(u64::from_be_bytes)
                else {
                    continue;
                };
                if self.visible.sees(generation) {
                    found.push((key.clone(), value.to_vec()));
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Forgets every record (and which generations were written), durably; the
    /// checkpoint's row stays.
    pub fn clear_records(&mut self) -> Result<(), RecordStoreError> {
        self.records.clear().map_err(|e| self.fail(e))?;
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// Forgets every record and the checkpoint's row, durably.
    pub fn clear(&mut self) -> Result<(), RecordStoreError> {
        self.records.clear().map_err(|e| self.fail(e))?;
        self.checkpoint.clear().map_err(|e| self.fail(e))?;
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(|e| self.fail(e))?;
        self.visible = Visible::default();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::records::record_key;

    /// Writes `records` records of agent `agent` as `generation`, through the path `count`
    /// chooses.
    fn write(store: &RecordStore, agent: &str, generation: u64, count: usize) -> u64 {
        let mut keys: Vec<Vec<u8>> = (0..count)
            .map(|n| record_key(agent, "t", &format!("e{n}")))
            .collect();
        keys.sort();
        store
            .write_records::<RecordStoreError>(generation, count, |write| {
                for key in &keys {
                    write(key, key)?;
                }
                Ok(keys.len() as u64)
            })
            .expect("written")
    }

    #[test]
    fn both_ways_of_writing_give_versions_seen_only_once_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = RecordStore::open(&dir.path().join("records")).expect("open");
        // Generation 1 as a table of its own, 2 through the journal; 3 never committed.
        let many = INGEST_FROM_RECORDS;
        assert_eq!(write(&store, "A1", 1, many), many as u64);
        assert_eq!(write(&store, "A2", 2, 10), 10);
        assert_eq!(write(&store, "A1", 3, 10), 10);
        assert_eq!(store.last_written_generation().expect("last"), 3);
        let probe = [
            record_key("A1", "t", "e0"),
            record_key("A1", "t", &format!("e{}", many - 1)),
            record_key("A2", "t", "e9"),
            record_key("A1", "t", "e99999999"),
        ];
        assert!(
            store.fetch(&probe).expect("fetch").is_empty(),
            "nothing committed yet"
        );
        store.set_visible(Visible {
            committed: 2,
            abandoned: Vec::new(),
            pending: None,
        });
        let found = store.fetch(&probe).expect("fetch");
        assert_eq!(found.len(), 3);
        assert!(found.iter().all(|(key, value)| key == value));
        store.set_visible(Visible {
            committed: 4,
            abandoned: vec![1, 3],
            pending: None,
        });
        assert_eq!(
            store.fetch(&probe).expect("fetch").len(),
            1,
            "abandoned generations are not seen"
        );
    }
}
