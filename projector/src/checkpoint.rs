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

#[derive(Debug)]
pub struct CheckpointStore {
    connection: Connection,
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
            );",
        )?;
        Ok(Self { connection })
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
        let Some((positions, state, applied)) = row else {
            return Ok(None);
        };
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
            "INSERT INTO checkpoint (id, positions, state, applied, written_at) VALUES (1, ?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET positions = excluded.positions, state = excluded.state,
                 applied = excluded.applied, written_at = excluded.written_at",
            params![serde_json::to_string(&positions)?, state, applied as i64, written_at],
        )?;
        transaction.commit()?;
        Ok(state.len())
    }

    /// Forgets the checkpoint: the next run replays the log from offset 0.
    pub fn clear(&mut self) -> Result<(), CheckpointError> {
        self.connection.execute("DELETE FROM checkpoint", [])?;
        Ok(())
    }
}
