//! The embedded ledger store: the ledger tables in a SQLite database (`ledgers.db` of the
//! data folder), written by the projector and read by the KPI job and the dashboard.
//!
//! The same tables, columns and keys as in ClickHouse; dates are `YYYY-MM-DD` text (a
//! target's month `YYYY-MM`). A write keeps the newer version of each row
//! (`WHERE excluded.ver >= ver`), so writing the same rows again, or older ones after newer
//! ones, changes nothing.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, params_from_iter};

use super::dump::dump_table;
use super::{
    AgentDayRow, LIVE_ACTIVITY, LedgerBatch, LedgerRow, PendingCancellationRow, PlanRow,
    TableVisitor, visit_tables,
};

/// The tables of the embedded store (created when missing). Their columns are the row
/// types' (a test holds them together).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ledger_agent_outlet_day (
    agent_id TEXT NOT NULL, outlet_id TEXT NOT NULL, business_date TEXT NOT NULL,
    visits INTEGER NOT NULL, consultations INTEGER NOT NULL, customers_consulted INTEGER NOT NULL,
    customers_interested INTEGER NOT NULL, sales INTEGER NOT NULL, premium_fen INTEGER NOT NULL,
    cancellations INTEGER NOT NULL, refunds_fen INTEGER NOT NULL, ver INTEGER NOT NULL,
    PRIMARY KEY (agent_id, outlet_id, business_date)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_agent_day (
    agent_id TEXT NOT NULL, business_date TEXT NOT NULL,
    team_id TEXT NOT NULL, branch_id TEXT NOT NULL, region_id TEXT NOT NULL,
    visits INTEGER NOT NULL, consultations INTEGER NOT NULL, customers_consulted INTEGER NOT NULL,
    customers_interested INTEGER NOT NULL, sales INTEGER NOT NULL, premium_fen INTEGER NOT NULL,
    cancellations INTEGER NOT NULL, refunds_fen INTEGER NOT NULL, ver INTEGER NOT NULL,
    PRIMARY KEY (agent_id, business_date)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS plans (
    agent_id TEXT NOT NULL, period_start TEXT NOT NULL, period_end TEXT NOT NULL,
    visits INTEGER, consultations INTEGER, sales INTEGER, event_id TEXT NOT NULL,
    deleted INTEGER NOT NULL, ver INTEGER NOT NULL,
    PRIMARY KEY (agent_id, period_start, period_end)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS targets (
    scope TEXT NOT NULL, scope_id TEXT NOT NULL, month TEXT NOT NULL,
    premium_fen INTEGER, outlet_activity_rate_bp INTEGER, visits INTEGER, consultations INTEGER,
    sales INTEGER, event_id TEXT NOT NULL, deleted INTEGER NOT NULL, ver INTEGER NOT NULL,
    PRIMARY KEY (scope, scope_id, month)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS roster (
    agent_id TEXT NOT NULL, valid_from TEXT NOT NULL, team_id TEXT NOT NULL, valid_to TEXT,
    deleted INTEGER NOT NULL, ver INTEGER NOT NULL,
    PRIMARY KEY (agent_id, valid_from)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS assignments (
    agent_id TEXT NOT NULL, outlet_id TEXT NOT NULL, valid_from TEXT NOT NULL, valid_to TEXT,
    deleted INTEGER NOT NULL, ver INTEGER NOT NULL,
    PRIMARY KEY (agent_id, outlet_id, valid_from)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS teams (
    team_id TEXT NOT NULL, effective_from TEXT NOT NULL, team_name TEXT NOT NULL,
    branch_id TEXT NOT NULL, branch_name TEXT, region_id TEXT NOT NULL, region_name TEXT,
    supervisor_id TEXT, deleted INTEGER NOT NULL, ver INTEGER NOT NULL,
    PRIMARY KEY (team_id, effective_from)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outlets (
    outlet_id TEXT PRIMARY KEY, bank TEXT NOT NULL, name TEXT NOT NULL, region_id TEXT NOT NULL,
    ver INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_profiles (
    agent_id TEXT PRIMARY KEY, display_name TEXT NOT NULL, origin TEXT NOT NULL, event_id TEXT NOT NULL,
    deleted INTEGER NOT NULL, ver INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calendar_days (
    business_date TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT, event_id TEXT NOT NULL,
    deleted INTEGER NOT NULL, ver INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS supervisor_facts (
    event_id TEXT NOT NULL, source TEXT NOT NULL, event_type TEXT NOT NULL, business_date TEXT NOT NULL,
    occurred_at_ns INTEGER NOT NULL, supervisor_id TEXT NOT NULL, agent_id TEXT NOT NULL,
    team_id TEXT NOT NULL, outlet_id TEXT NOT NULL, linked_event_id TEXT NOT NULL, kind TEXT NOT NULL,
    scope TEXT NOT NULL, scope_id TEXT NOT NULL, month TEXT, due_date TEXT, duration_minutes INTEGER,
    attendees INTEGER, skill TEXT, will TEXT, text TEXT, deleted INTEGER NOT NULL, ver INTEGER NOT NULL,
    PRIMARY KEY (event_id, source)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_cancellations (
    agent_id TEXT NOT NULL, event_id TEXT NOT NULL, policy_id TEXT NOT NULL, business_date TEXT NOT NULL,
    refund_fen INTEGER NOT NULL, deleted INTEGER NOT NULL, ver INTEGER NOT NULL,
    PRIMARY KEY (agent_id, event_id)) WITHOUT ROWID;
";

/// The view of team days: the live agent days of each team, summed (the same columns as
/// ClickHouse's view `ledger_team_day`).
fn team_day_view() -> String {
    format!(
        "CREATE VIEW IF NOT EXISTS ledger_team_day AS
            SELECT team_id, business_date, branch_id, region_id,
                   COUNT(*) AS agents_active,
                   SUM(visits) AS visits, SUM(consultations) AS consultations,
                   SUM(customers_consulted) AS customers_consulted,
                   SUM(customers_interested) AS customers_interested,
                   SUM(sales) AS sales, SUM(premium_fen) AS premium_fen,
                   SUM(cancellations) AS cancellations, SUM(refunds_fen) AS refunds_fen
            FROM {agent_day}
            WHERE team_id != '' AND {LIVE_ACTIVITY}
            GROUP BY team_id, business_date, branch_id, region_id",
        agent_day = AgentDayRow::TABLE
    )
}

/// The business dates the agent-day table has held a row of, one row each: the KPI job's
/// trailing window of rates reaches before its periods, and no key of the agent days leads
/// with the date, so without this a window with no agent day in it costs a scan of the
/// whole table to find out. A date stays once written (a row emptied since is still read
/// and found not live), so a date missing here is certain to have no agent day.
pub const AGENT_DAY_DATES: &str = "ledger_agent_day_dates";

fn agent_day_dates_schema() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {AGENT_DAY_DATES} (business_date TEXT PRIMARY KEY) WITHOUT ROWID"
    )
}

/// Whether the store has the table of agent-day dates (stores written before it had none).
pub fn has_agent_day_dates(connection: &Connection) -> rusqlite::Result<bool> {
    connection.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [AGENT_DAY_DATES],
        |r| r.get(0),
    )
}

/// Makes the table of agent-day dates, filled from the agent days of a store written before
/// it existed.
fn make_agent_day_dates(connection: &Connection) -> rusqlite::Result<()> {
    if has_agent_day_dates(connection)? {
        return Ok(());
    }
    connection.execute_batch(&format!(
        "BEGIN;
         {};
         INSERT OR IGNORE INTO {AGENT_DAY_DATES} SELECT DISTINCT business_date FROM {};
         COMMIT;",
        agent_day_dates_schema(),
        AgentDayRow::TABLE
    ))
}

/// Drops a `teams` table of the form before effective-dated definitions (one row per team,
/// no `effective_from`): its rows cannot say since when a definition holds. The projector's
/// checkpoints of that time are of an older form, so the ledger is rebuilt from the log and
/// the table filled again.
fn drop_teams_of_one_row_per_team(connection: &Connection) -> rusqlite::Result<()> {
    let (columns, dated): (i64, i64) = connection.query_row(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE name = 'effective_from') \
         FROM pragma_table_info('teams')",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if columns > 0 && dated == 0 {
        connection.execute_batch("DROP TABLE teams")?;
    }
    Ok(())
}

/// The page size of a store made by [`LedgerDb::open`].
pub const NEW_STORE_PAGE_BYTES: i64 = 16_384;

/// The embedded ledger store, opened for writing (the projector's).
#[derive(Debug)]
pub struct LedgerDb {
    connection: Connection,
}

impl LedgerDb {
    /// Opens the store at `path`, creating it and its tables when missing.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(Duration::from_secs(30))?;
        // Pages of 16 KiB for a new store (an existing one keeps its size): the projector's
        // upserts walk and write a quarter as many pages as with the default 4 KiB, about a
        // tenth of a replay's CPU at 6 M events (docs/benchmarks.md §1).
        connection.pragma_update(None, "page_size", NEW_STORE_PAGE_BYTES)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // Every write is durable before the checkpoint that covers it is written; the
        // projector writes a few times a second at most, so the sync costs little.
        connection.pragma_update(None, "synchronous", "FULL")?;
        // Upserts land all over the tables; a page cache of 64 MiB keeps their B-tree
        // pages in memory instead of re-reading them for every row.
        connection.pragma_update(None, "cache_size", -65_536)?;
        drop_teams_of_one_row_per_team(&connection)?;
        connection.execute_batch(SCHEMA)?;
        connection.execute_batch(&team_day_view())?;
        make_agent_day_dates(&connection)?;
        Ok(Self { connection })
    }

    /// Empties every table (for a rebuild from offset 0).
    pub fn clear(&mut self) -> rusqlite::Result<()> {
        struct Clear<'t>(&'t Transaction<'t>);
        impl TableVisitor for Clear<'_> {
            type Error = rusqlite::Error;
            fn visit<T: LedgerRow>(&mut self) -> rusqlite::Result<()> {
                if !T::VIEW {
                    self.0.execute(&format!("DELETE FROM {}", T::TABLE), [])?;
                }
                Ok(())
            }
        }
        let transaction = self.connection.transaction()?;
        visit_tables(&mut Clear(&transaction))?;
        transaction.execute(&format!("DELETE FROM {AGENT_DAY_DATES}"), [])?;
        transaction.commit()
    }

    /// Writes `batch` in one transaction, keeping the newer version of every row.
    pub fn write(&mut self, batch: &LedgerBatch) -> rusqlite::Result<()> {
        let transaction = self.connection.transaction()?;
        upsert(&transaction, &batch.agent_outlet_day)?;
        upsert(&transaction, &batch.agent_day)?;
        {
            let mut dated = transaction.prepare_cached(&format!(
                "INSERT OR IGNORE INTO {AGENT_DAY_DATES} (business_date) VALUES (?1)"
            ))?;
            let dates: std::collections::BTreeSet<chrono::NaiveDate> = batch
                .agent_day
                .iter()
                .map(|row| row.business_date)
                .collect();
            for date in dates {
                dated.execute([date.to_string()])?;
            }
        }
        upsert(&transaction, &batch.plans)?;
        upsert(&transaction, &batch.targets)?;
        upsert(&transaction, &batch.roster)?;
        upsert(&transaction, &batch.assignments)?;
        {
            // An agent's pending list is replaced whole: what left it is retired first.
            let mut retire = transaction.prepare_cached(&format!(
                "UPDATE {} SET deleted = 1, ver = ?2 WHERE agent_id = ?1 AND ver <= ?2",
                PendingCancellationRow::TABLE
            ))?;
            for (agent_id, ver) in &batch.pending_replaced {
                retire.execute(rusqlite::params![agent_id, *ver as i64])?;
            }
        }
        upsert(&transaction, &batch.pending_cancellations)?;
        upsert(&transaction, &batch.agent_profiles)?;
        upsert(&transaction, &batch.teams)?;
        upsert(&transaction, &batch.outlets)?;
        upsert(&transaction, &batch.calendar_days)?;
        upsert(&transaction, &batch.supervisor_facts)?;
        transaction.commit()
    }

    /// Every live row of every table as text, sorted by key, versions left out: two stores
    /// holding the same ledgers give the same text.
    pub fn dump(&self) -> rusqlite::Result<String> {
        dump(&self.connection)
    }
}

/// The `INSERT … ON CONFLICT` of `T` that keeps the newer version of a row.
fn upsert_statement<T: LedgerRow>() -> String {
    let columns: Vec<&str> = T::COLUMNS.split(',').map(str::trim).collect();
    let key: Vec<&str> = T::KEY.split(',').map(str::trim).collect();
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let updates: Vec<String> = columns
        .iter()
        .filter(|column| !key.contains(column))
        .map(|column| format!("{column} = excluded.{column}"))
        .collect();
    format!(
        "INSERT INTO {table} ({columns}) VALUES ({placeholders})
         ON CONFLICT ({key}) DO UPDATE SET {updates} WHERE excluded.ver >= ver",
        table = T::TABLE,
        columns = T::COLUMNS,
        placeholders = placeholders.join(", "),
        key = T::KEY,
        updates = updates.join(", "),
    )
}

fn upsert<T: LedgerRow>(transaction: &Transaction<'_>, rows: &[T]) -> rusqlite::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut statement = transaction.prepare_cached(&upsert_statement::<T>())?;
    for row in rows {
        statement.execute(params_from_iter(row.values()))?;
    }
    Ok(())
}

/// Opens the store at `path` for reading only (the KPI job, the dashboard, exports).
pub fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    // A reader's connection is never shared between threads (rusqlite's `Connection` is
    // not `Sync`), so SQLite's per-call mutex is pure overhead on millions of column reads.
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // Pages read through a memory map rather than one `pread` each: reading a month of a
    // large region is tens of thousands of pages, and the copies and calls cost more than
    // the reading itself.
    connection.pragma_update(None, "mmap_size", READ_MMAP_BYTES)?;
    Ok(connection)
}

/// How much of the store a reader maps (SQLite reads the rest, if any, page by page).
const READ_MMAP_BYTES: i64 = 1 << 32;

/// The live rows of `T`, newest versions (the only ones the store keeps), in key order.
pub fn live_rows<T: LedgerRow>(connection: &Connection) -> rusqlite::Result<Vec<T>> {
    let mut statement = connection.prepare(&format!(
        "SELECT {} FROM {} WHERE {} ORDER BY {}",
        T::COLUMNS,
        T::TABLE,
        T::LIVE,
        T::KEY
    ))?;
    statement
        .query_map([], |row| T::from_sqlite(row))?
        .collect()
}

/// The query of every row of `T`, tombstones included, in the store's order: rows of it
/// read back with [`LedgerRow::from_sqlite`] (for streaming a whole table elsewhere).
pub fn every_row_query<T: LedgerRow>() -> String {
    format!("SELECT {} FROM {}", T::COLUMNS, T::TABLE)
}

/// Every row of `T`, tombstones included, in the store's order.
pub fn all_rows<T: LedgerRow>(connection: &Connection) -> rusqlite::Result<Vec<T>> {
    let mut statement = connection.prepare(&every_row_query::<T>())?;
    statement
        .query_map([], |row| T::from_sqlite(row))?
        .collect()
}

/// The canonical dump of the store on `connection` (see [`LedgerDb::dump`]).
pub fn dump(connection: &Connection) -> rusqlite::Result<String> {
    struct Dump<'c> {
        connection: &'c Connection,
        out: String,
    }
    impl TableVisitor for Dump<'_> {
        type Error = rusqlite::Error;
        fn visit<T: LedgerRow>(&mut self) -> rusqlite::Result<()> {
            let rows = live_rows::<T>(self.connection)?;
            dump_table(&mut self.out, &rows);
            Ok(())
        }
    }
    let mut dump = Dump {
        connection,
        out: String::new(),
    };
    visit_tables(&mut dump)?;
    Ok(dump.out)
}

/// The earliest business date of any agent day or live plan, if any (where a batch run
/// over a whole file of events starts).
pub fn first_business_date(connection: &Connection) -> rusqlite::Result<Option<chrono::NaiveDate>> {
    let first: Option<String> = connection.query_row(
        &format!(
            "SELECT MIN(d) FROM (SELECT MIN(business_date) AS d FROM {agent_day}
                                UNION ALL SELECT MIN(period_start) FROM {plans} WHERE deleted = 0)",
            agent_day = AgentDayRow::TABLE,
            plans = PlanRow::TABLE
        ),
        [],
        |r| r.get(0),
    )?;
    first
        .map(|text| {
            text.parse().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })
        })
        .transpose()
}

/// The number of agent days the store holds, tombstones included.
pub fn agent_day_rows(connection: &Connection) -> rusqlite::Result<i64> {
    connection.query_row(
        &format!("SELECT COUNT(*) FROM {}", AgentDayRow::TABLE),
        [],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledgers::{RosterRow, TeamRow, ledger_tables};

    #[test]
    fn a_new_store_has_large_pages_and_an_existing_one_keeps_its_own() {
        let dir = tempfile::tempdir().expect("dir");
        let page_size = |path: &Path| -> i64 {
            Connection::open(path)
                .expect("open")
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .expect("page size")
        };
        let new = dir.path().join("new.db");
        drop(LedgerDb::open(&new).expect("open"));
        assert_eq!(page_size(&new), NEW_STORE_PAGE_BYTES);
        let old = dir.path().join("old.db");
        Connection::open(&old)
            .expect("open")
            .execute_batch(
                "PRAGMA page_size = 4096; CREATE TABLE t (x); PRAGMA journal_mode = WAL;",
            )
            .expect("an older store");
        let mut ledgers = LedgerDb::open(&old).expect("open an older store");
        ledgers.write(&LedgerBatch::default()).expect("write");
        assert_eq!(page_size(&old), 4096);
    }

    #[test]
    fn the_schema_has_every_row_types_columns_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = LedgerDb::open(&dir.path().join("ledgers.db")).expect("open");
        for table in ledger_tables() {
            let mut statement = db
                .connection
                .prepare(&format!(
                    "SELECT name FROM pragma_table_info('{}')",
                    table.table
                ))
                .expect("table info");
            let declared: Vec<String> = statement
                .query_map([], |r| r.get(0))
                .expect("columns")
                .collect::<Result<_, _>>()
                .expect("names");
            let listed: Vec<&str> = table.columns.split(',').map(str::trim).collect();
            assert_eq!(declared, listed, "{}", table.table);
        }
    }

    #[test]
    fn a_teams_table_of_one_row_per_team_is_dropped_for_the_dated_form() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledgers.db");
        let old = Connection::open(&path).expect("open");
        old.execute_batch(
            "CREATE TABLE teams (team_id TEXT PRIMARY KEY, team_name TEXT NOT NULL, \
             branch_id TEXT NOT NULL, branch_name TEXT, region_id TEXT NOT NULL, \
             region_name TEXT, supervisor_id TEXT, ver INTEGER NOT NULL) WITHOUT ROWID;
             INSERT INTO teams VALUES ('T1', 'T1', 'B1', NULL, 'R1', NULL, NULL, 1);",
        )
        .expect("old form");
        drop(old);
        let db = LedgerDb::open(&path).expect("open");
        assert_eq!(all_rows::<TeamRow>(&db.connection).expect("read"), []);
        // Opening the dated form again keeps its rows.
        let mut db = db;
        let row = TeamRow {
            team_id: "T1".to_owned(),
            effective_from: "2026-11-15".parse().expect("date"),
            team_name: "T1".to_owned(),
            branch_id: "B2".to_owned(),
            branch_name: None,
            region_id: "R1".to_owned(),
            region_name: None,
            supervisor_id: None,
            deleted: 0,
            ver: 2,
        };
        db.write(&LedgerBatch {
            teams: vec![row.clone()],
            ..LedgerBatch::default()
        })
        .expect("write");
        drop(db);
        let db = LedgerDb::open(&path).expect("open again");
        assert_eq!(all_rows::<TeamRow>(&db.connection).expect("read"), [row]);
    }

    fn roster(team_id: &str, ver: u64) -> RosterRow {
        RosterRow {
            agent_id: "A1".to_owned(),
            valid_from: "2026-11-02".parse().expect("date"),
            team_id: team_id.to_owned(),
            valid_to: None,
            deleted: 0,
            ver,
        }
    }

    #[test]
    fn a_row_keeps_its_newest_version_whatever_the_order_of_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = LedgerDb::open(&dir.path().join("ledgers.db")).expect("open");
        let write = |db: &mut LedgerDb, row: RosterRow| {
            let batch = LedgerBatch {
                roster: vec![row],
                ..LedgerBatch::default()
            };
            db.write(&batch).expect("write");
            all_rows::<RosterRow>(&db.connection).expect("read")
        };
        assert_eq!(write(&mut db, roster("T1", 5)), [roster("T1", 5)]);
        assert_eq!(write(&mut db, roster("T2", 9)), [roster("T2", 9)]);
        // Older: ignored; the same version again: taken (a replay writes what it wrote).
        assert_eq!(write(&mut db, roster("T3", 7)), [roster("T2", 9)]);
        assert_eq!(write(&mut db, roster("T2", 9)), [roster("T2", 9)]);
        let tombstone = RosterRow {
            deleted: 1,
            ..roster("", 10)
        };
        assert_eq!(write(&mut db, tombstone.clone()), [tombstone]);
        assert_eq!(live_rows::<RosterRow>(&db.connection).expect("live"), []);
    }
}
