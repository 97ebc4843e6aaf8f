//! The embedded ledger store: the ledger tables in a SQLite database that analytics reads
//! (`aqs_tables::ledgers::sqlite`). Removed rows stay as tombstones (zero counters or
//! `deleted = 1`) so that an older version replayed later cannot bring them back.

use std::path::Path;

use aqs_tables::ledgers::sqlite::LedgerDb;

use super::rows::ledger_batch;
use super::{LedgerSink, RowVersions, SinkError, Written, change_rows};
use crate::ledger::LedgerChanges;

#[derive(Debug)]
pub struct SqliteSink {
    db: LedgerDb,
}

impl SqliteSink {
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        Ok(Self {
            db: LedgerDb::open(path)?,
        })
    }

    /// Empties every table (for a rebuild from offset 0).
    pub fn clear(&mut self) -> Result<(), SinkError> {
        Ok(self.db.clear()?)
    }

    /// Every live row of every table as text, sorted by key, versions left out: two stores
    /// holding the same ledgers give the same text.
    pub fn dump(&self) -> Result<String, SinkError> {
        Ok(self.db.dump()?)
    }
}

impl LedgerSink for SqliteSink {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn publish(
        &mut self,
        changes: &LedgerChanges,
        versions: &RowVersions<'_>,
    ) -> Result<Written, SinkError> {
        if changes.is_empty() {
            return Ok(Written::default());
        }
        self.db.write(&ledger_batch(changes, versions))?;
        Ok(Written {
            rows: change_rows(changes),
            dead_lettered: 0,
        })
    }
}
