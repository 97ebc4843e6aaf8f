//! The embedded ledger store: the ledger tables in a SQLite database that analytics reads.
//! Removed rows stay as tombstones (zero counters or `deleted = 1`) so that an older
//! version replayed later cannot bring them back.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use aqs_schemas::event::Scope;
use rusqlite::{Connection, Transaction, params};

use super::{LedgerSink, RowVersions, SinkError, Written, change_rows};
use crate::ledger::{Counters, LedgerChanges};

const SCHEMA: &str = "
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
CREATE VIEW IF NOT EXISTS ledger_team_day AS
    SELECT team_id, business_date, branch_id, region_id,
           COUNT(*) AS agents_active,
           SUM(visits) AS visits, SUM(consultations) AS consultations,
           SUM(customers_consulted) AS customers_consulted, SUM(customers_interested) AS customers_interested,
           SUM(sales) AS sales, SUM(premium_fen) AS premium_fen,
           SUM(cancellations) AS cancellations, SUM(refunds_fen) AS refunds_fen
    FROM ledger_agent_day
    WHERE team_id != '' AND (visits != 0 OR consultations != 0 OR sales != 0 OR cancellations != 0)
    GROUP BY team_id, business_date, branch_id, region_id;
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
    team_id TEXT PRIMARY KEY, team_name TEXT NOT NULL, branch_id TEXT NOT NULL, branch_name TEXT,
    region_id TEXT NOT NULL, region_name TEXT, supervisor_id TEXT, ver INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outlets (
    outlet_id TEXT PRIMARY KEY, bank TEXT NOT NULL, name TEXT NOT NULL, region_id TEXT NOT NULL,
    ver INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_profiles (
    agent_id TEXT PRIMARY KEY, display_name TEXT NOT NULL, origin TEXT NOT NULL, event_id TEXT NOT NULL,
    deleted INTEGER NOT NULL, ver INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_cancellations (
    agent_id TEXT NOT NULL, event_id TEXT NOT NULL, policy_id TEXT NOT NULL, business_date TEXT NOT NULL,
    refund_fen INTEGER NOT NULL, deleted INTEGER NOT NULL, ver INTEGER NOT NULL,
    PRIMARY KEY (agent_id, event_id)) WITHOUT ROWID;
";

/// Tables and their key columns, for dumps in a stable order.
const TABLES: &[(&str, &str)] = &[
    (
        "ledger_agent_outlet_day",
        "agent_id, outlet_id, business_date",
    ),
    ("ledger_agent_day", "agent_id, business_date"),
    ("ledger_team_day", "team_id, business_date"),
    ("plans", "agent_id, period_start, period_end"),
    ("targets", "scope, scope_id, month"),
    ("roster", "agent_id, valid_from"),
    ("assignments", "agent_id, outlet_id, valid_from"),
    ("teams", "team_id"),
    ("outlets", "outlet_id"),
    ("pending_cancellations", "agent_id, event_id"),
    ("agent_profiles", "agent_id"),
];

#[derive(Debug)]
pub struct SqliteSink {
    connection: Connection,
}

fn counter_values(c: &Counters) -> [i64; 8] {
    [
        c.visits,
        c.consultations,
        c.customers_consulted,
        c.customers_interested,
        c.sales,
        c.premium.units(),
        c.cancellations,
        c.refunds.units(),
    ]
}

impl SqliteSink {
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(Duration::from_secs(30))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // Every publish is durable before the checkpoint that covers it is written; the
        // projector publishes a few times a second at most, so the sync costs little.
        connection.pragma_update(None, "synchronous", "FULL")?;
        // Upserts land all over the tables; a page cache of 64 MiB keeps their B-tree
        // pages in memory instead of re-reading them for every row.
        connection.pragma_update(None, "cache_size", -65_536)?;
        connection.execute_batch(SCHEMA)?;
        Ok(Self { connection })
    }

    /// Empties every table (for a rebuild from offset 0).
    pub fn clear(&mut self) -> Result<(), SinkError> {
        let transaction = self.connection.transaction()?;
        for (table, _) in TABLES.iter().filter(|(t, _)| *t != "ledger_team_day") {
            transaction.execute(&format!("DELETE FROM {table}"), [])?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Every live row of every table as text, sorted by key, versions left out: two stores
    /// holding the same ledgers give the same text.
    pub fn dump(&self) -> Result<String, SinkError> {
        let mut out = String::new();
        for (table, key) in TABLES {
            let live = match *table {
                "ledger_agent_outlet_day" | "ledger_agent_day" => {
                    "WHERE NOT (visits = 0 AND consultations = 0 AND customers_consulted = 0 AND customers_interested = 0 AND sales = 0 AND premium_fen = 0 AND cancellations = 0 AND refunds_fen = 0)"
                }
                "plans"
                | "targets"
                | "roster"
                | "assignments"
                | "pending_cancellations"
                | "agent_profiles" => "WHERE deleted = 0",
                _ => "",
            };
            let mut statement = self
                .connection
                .prepare(&format!("SELECT * FROM {table} {live} ORDER BY {key}"))?;
            let columns: Vec<String> = statement
                .column_names()
                .into_iter()
                .map(str::to_owned)
                .collect();
            let keep: Vec<usize> = (0..columns.len())
                .filter(|i| columns[*i] != "ver" && columns[*i] != "deleted")
                .collect();
            let _ = writeln!(out, "## {table}");
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let cells: Vec<String> = keep
                    .iter()
                    .map(|i| match row.get_ref(*i) {
                        Ok(value) => format!("{value:?}"),
                        Err(e) => format!("<{e}>"),
                    })
                    .collect();
                let _ = writeln!(out, "{}", cells.join("|"));
            }
        }
        Ok(out)
    }

    fn write(
        transaction: &Transaction<'_>,
        changes: &LedgerChanges,
        versions: &RowVersions<'_>,
    ) -> Result<(), SinkError> {
        let counters = "visits, consultations, customers_consulted, customers_interested, sales, premium_fen, cancellations, refunds_fen";
        let updates = "visits = excluded.visits, consultations = excluded.consultations, customers_consulted = excluded.customers_consulted, customers_interested = excluded.customers_interested, sales = excluded.sales, premium_fen = excluded.premium_fen, cancellations = excluded.cancellations, refunds_fen = excluded.refunds_fen, ver = excluded.ver";
        {
            let mut statement = transaction.prepare_cached(&format!(
                "INSERT INTO ledger_agent_outlet_day (agent_id, outlet_id, business_date, {counters}, ver)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (agent_id, outlet_id, business_date) DO UPDATE SET {updates} WHERE excluded.ver >= ver"
            ))?;
            for row in &changes.agent_outlet_day {
                let c = counter_values(&row.counters);
                statement.execute(params![
                    row.agent_id,
                    row.outlet_id,
                    row.business_date.to_string(),
                    c[0],
                    c[1],
                    c[2],
                    c[3],
                    c[4],
                    c[5],
                    c[6],
                    c[7],
                    versions.agent(&row.agent_id)
                ])?;
            }
        }
        {
            let mut statement = transaction.prepare_cached(&format!(
                "INSERT INTO ledger_agent_day (agent_id, business_date, team_id, branch_id, region_id, {counters}, ver)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT (agent_id, business_date) DO UPDATE SET team_id = excluded.team_id,
                     branch_id = excluded.branch_id, region_id = excluded.region_id, {updates}
                 WHERE excluded.ver >= ver"
            ))?;
            for row in &changes.agent_day {
                let c = counter_values(&row.counters);
                statement.execute(params![
                    row.agent_id,
                    row.business_date.to_string(),
                    row.team_id,
                    row.branch_id,
                    row.region_id,
                    c[0],
                    c[1],
                    c[2],
                    c[3],
                    c[4],
                    c[5],
                    c[6],
                    c[7],
                    versions.agent(&row.agent_id)
                ])?;
            }
        }
        {
            let mut statement = transaction.prepare_cached(
                "INSERT INTO plans (agent_id, period_start, period_end, visits, consultations, sales, event_id, deleted, ver)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (agent_id, period_start, period_end) DO UPDATE SET visits = excluded.visits,
                     consultations = excluded.consultations, sales = excluded.sales, event_id = excluded.event_id,
                     deleted = excluded.deleted, ver = excluded.ver
                 WHERE excluded.ver >= ver",
            )?;
            for row in &changes.plans {
                statement.execute(params![
                    row.agent_id,
                    row.period_start.to_string(),
                    row.period_end.to_string(),
                    row.visits,
                    row.consultations,
                    row.sales,
                    row.event_id,
                    0,
                    versions.agent(&row.agent_id)
                ])?;
            }
            for (agent_id, start, end) in &changes.deleted_plans {
                statement.execute(params![
                    agent_id,
                    start.to_string(),
                    end.to_string(),
                    None::<u32>,
                    None::<u32>,
                    None::<u32>,
                    "",
                    1,
                    versions.agent(agent_id)
                ])?;
            }
        }
        {
            let mut statement = transaction.prepare_cached(
                "INSERT INTO targets (scope, scope_id, month, premium_fen, outlet_activity_rate_bp, visits, consultations, sales, event_id, deleted, ver)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (scope, scope_id, month) DO UPDATE SET premium_fen = excluded.premium_fen,
                     outlet_activity_rate_bp = excluded.outlet_activity_rate_bp, visits = excluded.visits,
                     consultations = excluded.consultations, sales = excluded.sales, event_id = excluded.event_id,
                     deleted = excluded.deleted, ver = excluded.ver
                 WHERE excluded.ver >= ver",
            )?;
            let version = |scope: Scope, scope_id: &str| {
                if scope == Scope::Agent {
                    versions.agent(scope_id)
                } else {
                    versions.reference()
                }
            };
            for row in &changes.targets {
                statement.execute(params![
                    row.scope.as_str(),
                    row.scope_id,
                    row.month.to_string(),
                    row.premium.map(|m| m.units()),
                    row.outlet_activity_rate.map(|r| r.units()),
                    row.visits,
                    row.consultations,
                    row.sales,
                    row.event_id,
                    0,
                    version(row.scope, &row.scope_id)
                ])?;
            }
            for (scope, scope_id, month) in &changes.deleted_targets {
                statement.execute(params![
                    scope.as_str(),
                    scope_id,
                    month.to_string(),
                    None::<i64>,
                    None::<i64>,
                    None::<u32>,
                    None::<u32>,
                    None::<u32>,
                    "",
                    1,
                    version(*scope, scope_id)
                ])?;
            }
        }
        {
            let mut statement = transaction.prepare_cached(
                "INSERT INTO roster (agent_id, valid_from, team_id, valid_to, deleted, ver) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (agent_id, valid_from) DO UPDATE SET team_id = excluded.team_id, valid_to = excluded.valid_to,
                     deleted = excluded.deleted, ver = excluded.ver
                 WHERE excluded.ver >= ver",
            )?;
            for row in &changes.roster {
                statement.execute(params![
                    row.agent_id,
                    row.valid_from.to_string(),
                    row.team_id,
                    row.valid_to.map(|d| d.to_string()),
                    0,
                    versions.agent(&row.agent_id)
                ])?;
            }
            for (agent_id, from) in &changes.deleted_roster {
                statement.execute(params![
                    agent_id,
                    from.to_string(),
                    "",
                    None::<String>,
                    1,
                    versions.agent(agent_id)
                ])?;
            }
        }
        {
            let mut statement = transaction.prepare_cached(
                "INSERT INTO assignments (agent_id, outlet_id, valid_from, valid_to, deleted, ver) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (agent_id, outlet_id, valid_from) DO UPDATE SET valid_to = excluded.valid_to,
                     deleted = excluded.deleted, ver = excluded.ver
                 WHERE excluded.ver >= ver",
            )?;
            for row in &changes.assignments {
                statement.execute(params![
                    row.agent_id,
                    row.outlet_id,
                    row.valid_from.to_string(),
                    row.valid_to.map(|d| d.to_string()),
                    0,
                    versions.agent(&row.agent_id)
                ])?;
            }
            for (agent_id, outlet_id, from) in &changes.deleted_assignments {
                statement.execute(params![
                    agent_id,
                    outlet_id,
                    from.to_string(),
                    None::<String>,
                    1,
                    versions.agent(agent_id)
                ])?;
            }
        }
        {
            // The pending list of an agent is replaced whole.
            let mut retire = transaction.prepare_cached(
                "UPDATE pending_cancellations SET deleted = 1, ver = ?2 WHERE agent_id = ?1 AND ver <= ?2",
            )?;
            for agent_id in &changes.pending_agents {
                retire.execute(params![agent_id, versions.agent(agent_id)])?;
            }
            let mut statement = transaction.prepare_cached(
                "INSERT INTO pending_cancellations (agent_id, event_id, policy_id, business_date, refund_fen, deleted, ver)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)
                 ON CONFLICT (agent_id, event_id) DO UPDATE SET policy_id = excluded.policy_id,
                     business_date = excluded.business_date, refund_fen = excluded.refund_fen, deleted = 0, ver = excluded.ver
                 WHERE excluded.ver >= ver",
            )?;
            for row in &changes.pending_cancellations {
                statement.execute(params![
                    row.agent_id,
                    row.event_id,
                    row.policy_id,
                    row.business_date.to_string(),
                    row.refund.units(),
                    versions.agent(&row.agent_id)
                ])?;
            }
        }
        {
            let mut statement = transaction.prepare_cached(
                "INSERT INTO agent_profiles (agent_id, display_name, origin, event_id, deleted, ver)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (agent_id) DO UPDATE SET display_name = excluded.display_name,
                     origin = excluded.origin, event_id = excluded.event_id, deleted = excluded.deleted,
                     ver = excluded.ver
                 WHERE excluded.ver >= ver",
            )?;
            for row in &changes.agent_profiles {
                statement.execute(params![
                    row.agent_id,
                    row.display_name,
                    row.origin.as_str(),
                    row.event_id,
                    0,
                    versions.agent(&row.agent_id)
                ])?;
            }
            for agent_id in &changes.deleted_agent_profiles {
                statement.execute(params![agent_id, "", "", "", 1, versions.agent(agent_id)])?;
            }
        }
        {
            let mut statement = transaction.prepare_cached(
                "INSERT INTO teams (team_id, team_name, branch_id, branch_name, region_id, region_name, supervisor_id, ver)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (team_id) DO UPDATE SET team_name = excluded.team_name, branch_id = excluded.branch_id,
                     branch_name = excluded.branch_name, region_id = excluded.region_id, region_name = excluded.region_name,
                     supervisor_id = excluded.supervisor_id, ver = excluded.ver
                 WHERE excluded.ver >= ver",
            )?;
            for row in &changes.teams {
                statement.execute(params![
                    row.team_id,
                    row.team_name,
                    row.branch_id,
                    row.branch_name,
                    row.region_id,
                    row.region_name,
                    row.supervisor_id,
                    versions.reference()
                ])?;
            }
            let mut statement = transaction.prepare_cached(
                "INSERT INTO outlets (outlet_id, bank, name, region_id, ver) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (outlet_id) DO UPDATE SET bank = excluded.bank, name = excluded.name,
                     region_id = excluded.region_id, ver = excluded.ver
                 WHERE excluded.ver >= ver",
            )?;
            for row in &changes.outlets {
                statement.execute(params![
                    row.outlet_id,
                    row.bank,
                    row.name,
                    row.region_id,
                    versions.reference()
                ])?;
            }
        }
        Ok(())
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
        let transaction = self.connection.transaction()?;
        Self::write(&transaction, changes, versions)?;
        transaction.commit()?;
        Ok(Written {
            rows: change_rows(changes),
            dead_lettered: 0,
        })
    }
}
