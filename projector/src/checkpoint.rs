//! The projector's own ACID store: ledger state and consumed positions, always written
//! together in one SQLite transaction. A restart resumes from here; the log is then read
//! from these positions, so nothing is lost and nothing counts twice.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aqs_eventlog::{PartitionId, Positions};
use rusqlite::{Connection, OptionalExtension, params};

use crate::ledger::Ledger;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("checkpoint state could not be encoded or decoded: {0}")]
    Codec(#[from] postcard::Error),
    #[error("checkpoint positions are malformed: {0}")]
    Positions(#[from] serde_json::Error),
}

/// A restored checkpoint.
#[derive(Debug)]
pub struct Checkpoint {
    pub ledger: Ledger,
    pub positions: Positions,
    /// Events applied in total when it was written.
    pub applied: u64,
}

/// The state is stored in chunks: SQLite refuses a value over 1 GB, and the state of a
/// ledger of ten million events is about that size.
const CHUNK_BYTES: usize = 64 << 20;

#[derive(Debug)]
pub struct CheckpointStore {
    connection: Connection,
    chunk_bytes: usize,
}

impl CheckpointStore {
    pub fn open(path: &Path) -> Result<Self, CheckpointError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(Duration::from_secs(30))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS checkpoint (
                id         INTEGER PRIMARY KEY CHECK (id = 1),
                positions  TEXT    NOT NULL,
                state      BLOB    NOT NULL,
                applied    INTEGER NOT NULL,
                written_at INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS checkpoint_state (
                seq   INTEGER PRIMARY KEY,
                bytes BLOB    NOT NULL
            );",
        )?;
        Ok(Self {
            connection,
            chunk_bytes: CHUNK_BYTES,
        })
    }

    /// The same store with smaller chunks, to exercise the chunking.
    #[cfg(test)]
    fn with_chunk_bytes(mut self, chunk_bytes: usize) -> Self {
        self.chunk_bytes = chunk_bytes;
        self
    }

    pub fn load(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        let row: Option<(String, Vec<u8>, i64)> = self
            .connection
            .query_row(
                "SELECT positions, state, applied FROM checkpoint WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((positions, mut state, applied)) = row else {
            return Ok(None);
        };
        // Stores written before the state was chunked keep it in the checkpoint row.
        let mut chunks = self
            .connection
            .prepare("SELECT bytes FROM checkpoint_state ORDER BY seq")?;
        let mut rows = chunks.query([])?;
        while let Some(row) = rows.next()? {
            let chunk: Vec<u8> = row.get(0)?;
            state.extend_from_slice(&chunk);
        }
        let positions: Vec<(PartitionId, u64)> = serde_json::from_str(&positions)?;
        Ok(Some(Checkpoint {
            ledger: postcard::from_bytes(&state)?,
            positions: positions.into_iter().collect(),
            applied: applied as u64,
        }))
    }

    /// Writes state and positions atomically, replacing the previous checkpoint.
    pub fn save(
        &mut self,
        ledger: &Ledger,
        positions: &Positions,
        applied: u64,
    ) -> Result<usize, CheckpointError> {
        let state = postcard::to_allocvec(ledger)?;
        let positions: Vec<(&PartitionId, &u64)> = positions.iter().collect();
        let written_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let transaction = self.connection.transaction()?;
        transaction.execute(
            "INSERT INTO checkpoint (id, positions, state, applied, written_at) VALUES (1, ?1, x'', ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET positions = excluded.positions, state = excluded.state,
                 applied = excluded.applied, written_at = excluded.written_at",
            params![serde_json::to_string(&positions)?, applied as i64, written_at],
        )?;
        transaction.execute("DELETE FROM checkpoint_state", [])?;
        {
            let mut insert =
                transaction.prepare("INSERT INTO checkpoint_state (seq, bytes) VALUES (?1, ?2)")?;
            for (seq, chunk) in state.chunks(self.chunk_bytes).enumerate() {
                insert.execute(params![seq as i64, chunk])?;
            }
        }
        transaction.commit()?;
        Ok(state.len())
    }

    /// Forgets the checkpoint: the next run replays the log from offset 0.
    pub fn clear(&mut self) -> Result<(), CheckpointError> {
        let transaction = self.connection.transaction()?;
        transaction.execute("DELETE FROM checkpoint", [])?;
        transaction.execute("DELETE FROM checkpoint_state", [])?;
        transaction.commit()?;
        Ok(())
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
    fn a_state_in_many_chunks_comes_back_whole_and_replaces_the_previous_one() {
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
        let mut store = CheckpointStore::open(&path)
            .expect("open")
            .with_chunk_bytes(100);
        // A bigger state first, so that leftover chunks of it would show.
        let mut bigger = ledger.clone();
        let line = r#"{"event_id":"extra","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-03T09:30:00+08:00","source":"t","agent_id":"A9","payload":{"outlet_id":"O9","purpose":"promotion"}}"#;
        bigger.apply(
            &Decoder::standard().decode(line.as_bytes()).expect("valid"),
            digest(line.as_bytes()),
        );
        store.save(&bigger, &positions, 51).expect("save");
        let bytes = store.save(&ledger, &positions, 50).expect("save");
        assert!(bytes > 1_000, "the state spans many chunks: {bytes} bytes");

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
    }
}
