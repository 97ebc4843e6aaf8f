//! Schema migrations: numbered SQL files applied in order, each recorded once it fully succeeded.
//!
//! The files live in `deploy/clickhouse/` and are embedded here at compile time ([`EMBEDDED`]).
//! [`migrate_with`] applies a list of them to a database:
//!
//! 1. creates the database if it is missing, and the bookkeeping table `schema_migrations`
//!    (`version`, `name`, `checksum`, `applied_at`);
//! 2. checks every recorded migration against its file: a changed file (checksum or name) is
//!    an error naming it, never silently applied again;
//! 3. applies the pending files in version order, statement by statement, and records a file
//!    only after all of its statements succeeded.
//!
//! Statements are written idempotently (`CREATE TABLE IF NOT EXISTS`, …), so running a file
//! again after a failure half-way converges. There is no lock: run one `aqs migrate` at a time.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::config::{ClickHouseConfig, ConfigError, check_database_name};

/// The migration files of `deploy/clickhouse/`, in order. A test checks this list against the
/// folder, so a new file cannot be forgotten here.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "0001_events.sql",
        include_str!("../../deploy/clickhouse/0001_events.sql"),
    ),
    (
        "0002_ledgers.sql",
        include_str!("../../deploy/clickhouse/0002_ledgers.sql"),
    ),
    (
        "0003_kpi.sql",
        include_str!("../../deploy/clickhouse/0003_kpi.sql"),
    ),
    (
        "0004_ledger_dead_letters.sql",
        include_str!("../../deploy/clickhouse/0004_ledger_dead_letters.sql"),
    ),
    (
        "0005_wide_money.sql",
        include_str!("../../deploy/clickhouse/0005_wide_money.sql"),
    ),
    (
        "0006_agent_profiles.sql",
        include_str!("../../deploy/clickhouse/0006_agent_profiles.sql"),
    ),
    (
        "0007_quota_columns.sql",
        include_str!("../../deploy/clickhouse/0007_quota_columns.sql"),
    ),
    (
        "0008_quota_views.sql",
        include_str!("../../deploy/clickhouse/0008_quota_views.sql"),
    ),
    (
        "0009_calendar_days.sql",
        include_str!("../../deploy/clickhouse/0009_calendar_days.sql"),
    ),
    (
        "0010_dated_teams.sql",
        include_str!("../../deploy/clickhouse/0010_dated_teams.sql"),
    ),
    (
        "0011_outlet_kpi.sql",
        include_str!("../../deploy/clickhouse/0011_outlet_kpi.sql"),
    ),
    (
        "0012_supervisor_facts.sql",
        include_str!("../../deploy/clickhouse/0012_supervisor_facts.sql"),
    ),
];

/// Name of the bookkeeping table, in the migrated database.
pub const BOOKKEEPING_TABLE: &str = "schema_migrations";

const BOOKKEEPING_DDL: &str = "CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime('UTC')
)
ENGINE = MergeTree()
ORDER BY version";

/// Why migrating failed. Each variant names what it was doing; the server's message is the
/// [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "bad migration file name {file:?}: expected NNNN_name.sql (four digits, then lowercase letters, digits, '_')"
    )]
    BadFileName { file: String },
    #[error("migration {file} has no statements")]
    Empty { file: String },
    #[error("migrations out of order: {file} (version {version}) comes after version {previous}")]
    OutOfOrder {
        file: String,
        version: u32,
        previous: u32,
    },
    #[error("could not create database {database}")]
    CreateDatabase {
        database: String,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error("could not {action} the bookkeeping table {database}.{BOOKKEEPING_TABLE}")]
    Bookkeeping {
        action: &'static str,
        database: String,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error(
        "migration {file} was applied to {database} on {applied_at} with checksum {recorded}, \
         but the file now has checksum {current}: applied migrations must not change \
         (restore the file and put the change in a new migration)"
    )]
    Changed {
        file: String,
        database: String,
        applied_at: DateTime<Utc>,
        recorded: String,
        current: String,
    },
    #[error(
        "migration version {version} was applied to {database} as {recorded}, but the file is now {file}: \
         applied migrations must not be renamed"
    )]
    Renamed {
        version: u32,
        database: String,
        recorded: String,
        file: String,
    },
    #[error(
        "migration {file} failed at statement {index} of {count} in database {database}: {statement}"
    )]
    Statement {
        file: String,
        database: String,
        index: usize,
        count: usize,
        /// The statement, on one line and shortened when long.
        statement: String,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error("migration {file} was applied to {database} but could not be recorded")]
    Record {
        file: String,
        database: String,
        #[source]
        source: clickhouse::error::Error,
    },
}

/// One numbered SQL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    version: u32,
    file: String,
    sql: String,
    checksum: String,
}

impl Migration {
    /// A migration from its file name (`NNNN_name.sql`) and text.
    pub fn new(file: impl Into<String>, sql: impl Into<String>) -> Result<Self, MigrationError> {
        let file = file.into();
        let sql = sql.into();
        let version = parse_file_name(&file)
            .ok_or_else(|| MigrationError::BadFileName { file: file.clone() })?;
        if split_statements(&sql).is_empty() {
            return Err(MigrationError::Empty { file });
        }
        let checksum = checksum(&sql);
        Ok(Self {
            version,
            file,
            sql,
            checksum,
        })
    }

    /// The number the file name starts with.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The file name, e.g. `0001_events.sql`.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The file's text.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// SHA-256 of the file's text, in lowercase hex.
    pub fn checksum(&self) -> &str {
        &self.checksum
    }

    /// The statements of the file, in order, without their final `;`.
    pub fn statements(&self) -> Vec<String> {
        split_statements(&self.sql)
    }
}

/// The embedded migrations of `deploy/clickhouse/`, in order.
pub fn embedded() -> Vec<Migration> {
    EMBEDDED
        .iter()
        .map(|(file, sql)| {
            Migration::new(*file, *sql)
                .unwrap_or_else(|error| panic!("embedded migration {file} is invalid: {error}"))
        })
        .collect()
}

/// A migration applied by this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: u32,
    pub file: String,
    pub statements: usize,
    pub elapsed: Duration,
}

/// A row of `schema_migrations`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct RecordedMigration {
    pub version: u32,
    pub name: String,
    pub checksum: String,
    #[serde(with = "clickhouse::serde::chrono::datetime")]
    pub applied_at: DateTime<Utc>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub database: String,
    /// Whether this run created the database.
    pub created_database: bool,
    /// Applied now, in order.
    pub applied: Vec<AppliedMigration>,
    /// Versions that were already recorded and match their files.
    pub already_applied: Vec<u32>,
    /// Recorded migrations this binary has no file for (applied by a newer release); left alone.
    pub unknown: Vec<RecordedMigration>,
}

impl MigrationReport {
    /// Whether the run changed nothing.
    pub fn is_noop(&self) -> bool {
        self.applied.is_empty() && !self.created_database
    }
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.created_database {
            writeln!(f, "created database {}", self.database)?;
        }
        for applied in &self.applied {
            writeln!(
                f,
                "applied {} ({} statement{}, {} ms)",
                applied.file,
                applied.statements,
                if applied.statements == 1 { "" } else { "s" },
                applied.elapsed.as_millis()
            )?;
        }
        for unknown in &self.unknown {
            writeln!(
                f,
                "note: {} is recorded (applied {}) but unknown to this release; left alone",
                unknown.name, unknown.applied_at
            )?;
        }
        if self.applied.is_empty() {
            write!(
                f,
                "database {} is up to date: nothing to apply ({} migration{} already applied)",
                self.database,
                self.already_applied.len(),
                if self.already_applied.len() == 1 {
                    ""
                } else {
                    "s"
                }
            )
        } else {
            write!(
                f,
                "database {}: {} migration{} applied, {} already applied before",
                self.database,
                self.applied.len(),
                if self.applied.len() == 1 { "" } else { "s" },
                self.already_applied.len()
            )
        }
    }
}

/// Applies the embedded migrations to the configured database.
pub async fn migrate(config: &ClickHouseConfig) -> Result<MigrationReport, MigrationError> {
    migrate_with(config, &embedded()).await
}

/// Applies `migrations` (in increasing version order) to the configured database.
pub async fn migrate_with(
    config: &ClickHouseConfig,
    migrations: &[Migration],
) -> Result<MigrationReport, MigrationError> {
    check_order(migrations)?;
    let database = config.database.clone();
    check_database_name(&database)?;
    let server = config.server_client()?;
    let created_database = ensure_database(&server, &database).await?;
    let client = config.client()?;
    client
        .query_raw(BOOKKEEPING_DDL)
        .execute()
        .await
        .map_err(|source| MigrationError::Bookkeeping {
            action: "create",
            database: database.clone(),
            source,
        })?;
    let recorded = read_recorded(&client, &database).await?;

    let mut already_applied = Vec::new();
    let mut unknown = Vec::new();
    for record in recorded.values() {
        match migrations.iter().find(|m| m.version == record.version) {
            Some(migration) => {
                verify_unchanged(migration, record, &database)?;
                already_applied.push(record.version);
            }
            None => {
                warn!(
                    database = %database,
                    version = record.version,
                    name = %record.name,
                    "recorded migration unknown to this release; left alone"
                );
                unknown.push(record.clone());
            }
        }
    }

    let newest_recorded = recorded.keys().max().copied();
    let mut applied = Vec::new();
    for migration in migrations
        .iter()
        .filter(|m| !recorded.contains_key(&m.version))
    {
        if let Some(newest) = newest_recorded.filter(|newest| *newest > migration.version) {
            warn!(
                database = %database,
                file = %migration.file,
                newest_recorded = newest,
                "applying a migration older than one already applied"
            );
        }
        applied.push(apply_one(&client, &database, migration).await?);
    }
    if applied.is_empty() {
        info!(database = %database, already_applied = already_applied.len(), "schema up to date");
    }
    Ok(MigrationReport {
        database,
        created_database,
        applied,
        already_applied,
        unknown,
    })
}

/// Creates the database unless it exists. Looks first, so that a user without the right to
/// create databases can still migrate one that an administrator made.
async fn ensure_database(server: &Client, database: &str) -> Result<bool, MigrationError> {
    let create_error = |source| MigrationError::CreateDatabase {
        database: database.to_owned(),
        source,
    };
    let existing: u64 = server
        .query("SELECT count() FROM system.databases WHERE name = ?")
        .bind(database)
        .fetch_one()
        .await
        .map_err(create_error)?;
    if existing > 0 {
        return Ok(false);
    }
    // The name was checked by `check_database_name`: a plain identifier.
    server
        .query_raw(&format!("CREATE DATABASE IF NOT EXISTS {database}"))
        .execute()
        .await
        .map_err(create_error)?;
    info!(database, "database created");
    Ok(true)
}

async fn read_recorded(
    client: &Client,
    database: &str,
) -> Result<BTreeMap<u32, RecordedMigration>, MigrationError> {
    let rows: Vec<RecordedMigration> = client
        .query(
            "SELECT version, name, checksum, applied_at FROM schema_migrations \
             ORDER BY version, applied_at",
        )
        .fetch_all()
        .await
        .map_err(|source| MigrationError::Bookkeeping {
            action: "read",
            database: database.to_owned(),
            source,
        })?;
    // Two runs racing could record a version twice; the first record is the one that counts.
    let mut recorded = BTreeMap::new();
    for row in rows {
        recorded.entry(row.version).or_insert(row);
    }
    Ok(recorded)
}

fn verify_unchanged(
    migration: &Migration,
    record: &RecordedMigration,
    database: &str,
) -> Result<(), MigrationError> {
    if record.name != migration.file {
        return Err(MigrationError::Renamed {
            version: record.version,
            database: database.to_owned(),
            recorded: record.name.clone(),
            file: migration.file.clone(),
        });
    }
    if record.checksum != migration.checksum {
        return Err(MigrationError::Changed {
            file: migration.file.clone(),
            database: database.to_owned(),
            applied_at: record.applied_at,
            recorded: record.checksum.clone(),
            current: migration.checksum.clone(),
        });
    }
    Ok(())
}

async fn apply_one(
    client: &Client,
    database: &str,
    migration: &Migration,
) -> Result<AppliedMigration, MigrationError> {
    let started = Instant::now();
    let statements = migration.statements();
    let count = statements.len();
    for (position, statement) in statements.iter().enumerate() {
        let index = position + 1;
        // Raw: a `?` in a migration is SQL, not a bind placeholder.
        if let Err(source) = client.query_raw(statement).execute().await {
            warn!(
                database,
                file = %migration.file,
                statement = index,
                statements = count,
                error = %source,
                "migration statement failed"
            );
            return Err(MigrationError::Statement {
                file: migration.file.clone(),
                database: database.to_owned(),
                index,
                count,
                statement: one_line(statement, 300),
                source,
            });
        }
    }
    let record = RecordedMigration {
        version: migration.version,
        name: migration.file.clone(),
        checksum: migration.checksum.clone(),
        applied_at: Utc::now().trunc_subsecs(0),
    };
    let record_error = |source| MigrationError::Record {
        file: migration.file.clone(),
        database: database.to_owned(),
        source,
    };
    let mut insert = client
        .insert::<RecordedMigration>(BOOKKEEPING_TABLE)
        .await
        .map_err(record_error)?;
    insert.write(&record).await.map_err(record_error)?;
    insert.end().await.map_err(record_error)?;
    let elapsed = started.elapsed();
    info!(
        database,
        file = %migration.file,
        version = migration.version,
        statements = count,
        elapsed_ms = elapsed.as_millis() as u64,
        "migration applied"
    );
    Ok(AppliedMigration {
        version: migration.version,
        file: migration.file.clone(),
        statements: count,
        elapsed,
    })
}

fn check_order(migrations: &[Migration]) -> Result<(), MigrationError> {
    for pair in migrations.windows(2) {
        if pair[1].version <= pair[0].version {
            return Err(MigrationError::OutOfOrder {
                file: pair[1].file.clone(),
                version: pair[1].version,
                previous: pair[0].version,
            });
        }
    }
    Ok(())
}

/// `NNNN_name.sql` to `NNNN`, where name is lowercase letters, digits and `_`; version 0 is
/// not a version.
fn parse_file_name(file: &str) -> Option<u32> {
    let stem = file.strip_suffix(".sql")?;
    let (digits, name) = stem.split_once('_')?;
    let valid = digits.len() == 4
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return None;
    }
    digits.parse().ok().filter(|version| *version > 0)
}

/// Splits a migration into statements: a statement ends with a line whose last non-blank
/// character is `;`. Blank lines and lines starting with `--` are dropped; a last statement
/// without `;` still counts.
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("--") {
            continue;
        }
        let line = line.trim_end();
        match line.strip_suffix(';') {
            Some(last) => {
                current.push_str(last);
                let statement = current.trim();
                if !statement.is_empty() {
                    statements.push(statement.to_owned());
                }
                current.clear();
            }
            None => {
                current.push_str(line);
                current.push('\n');
            }
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        statements.push(rest.to_owned());
    }
    statements
}

fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whitespace collapsed to single spaces, cut at `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// The package's folder, read when the test runs (cargo sets it) rather than when it was
    /// built: a build cache shared with a clone in another folder may hold this test built there.
    fn manifest_dir() -> String {
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
    }

    #[test]
    fn embedded_migrations_are_exactly_the_files_of_deploy_clickhouse() {
        let folder = Path::new(&manifest_dir()).join("../deploy/clickhouse");
        let mut on_disk = BTreeMap::new();
        for entry in std::fs::read_dir(&folder).expect("deploy/clickhouse exists") {
            let path = entry.expect("readable entry").path();
            if path.extension().is_some_and(|ext| ext == "sql") {
                let name = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .expect("utf-8 name")
                    .to_owned();
                let text = std::fs::read_to_string(&path).expect("readable file");
                on_disk.insert(name, text);
            }
        }
        let embedded: BTreeMap<String, String> = EMBEDDED
            .iter()
            .map(|(file, sql)| ((*file).to_owned(), (*sql).to_owned()))
            .collect();
        let disk_names: BTreeSet<_> = on_disk.keys().collect();
        let embedded_names: BTreeSet<_> = embedded.keys().collect();
        assert_eq!(
            embedded_names, disk_names,
            "warehouse/src/migrate.rs EMBEDDED must list every .sql file of deploy/clickhouse/"
        );
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn embedded_migrations_are_valid_and_in_order() {
        let migrations = embedded();
        check_order(&migrations).expect("increasing versions");
        let names: Vec<_> = EMBEDDED.iter().map(|(file, _)| *file).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "EMBEDDED is listed in file-name order");
        for (position, migration) in migrations.iter().enumerate() {
            assert_eq!(
                migration.version() as usize,
                position + 1,
                "{}: versions are consecutive from 0001",
                migration.file()
            );
        }
    }

    /// The test server is ClickHouse 18.16 and production runs a current one: keep to what
    /// both accept.
    #[test]
    fn embedded_migrations_stay_in_the_portable_subset() {
        let forbidden = [
            ("lowcardinality", "LowCardinality"),
            ("datetime64", "DateTime64"),
            ("date32", "Date32"),
            ("codec(", "column CODECs"),
            (" ttl ", "TTL"),
            ("add column if not exists", "ADD COLUMN IF NOT EXISTS"),
            ("::", ":: casts"),
            ("delete from", "DELETE FROM"),
            (" over (", "window functions"),
            (" map(", "Map"),
            (" json,", "the JSON type"),
        ];
        for migration in embedded() {
            for statement in migration.statements() {
                let flat = format!(" {} ", one_line(&statement, usize::MAX).to_lowercase());
                for (needle, what) in forbidden {
                    assert!(
                        !flat.contains(needle),
                        "{} uses {what}, which ClickHouse 18.16 rejects: {statement}",
                        migration.file()
                    );
                }
                let creates = flat.trim_start().starts_with("create ");
                if creates {
                    assert!(
                        flat.contains(" if not exists "),
                        "{}: CREATE statements must be idempotent (IF NOT EXISTS): {statement}",
                        migration.file()
                    );
                }
            }
        }
    }

    #[test]
    fn statements_end_with_a_semicolon_at_the_end_of_a_line() {
        let sql = "-- header\n\nCREATE TABLE a\n(\n    x UInt8 -- why\n);\n\n  -- between\nSELECT ';' ;  \nINSERT INTO a VALUES (1)\n";
        assert_eq!(
            split_statements(sql),
            vec![
                "CREATE TABLE a\n(\n    x UInt8 -- why\n)".to_owned(),
                "SELECT ';'".to_owned(),
                "INSERT INTO a VALUES (1)".to_owned(),
            ]
        );
        assert!(split_statements("-- only a comment\n\n").is_empty());
        assert_eq!(split_statements(";\n;\nSELECT 1;"), vec!["SELECT 1"]);
    }

    #[test]
    fn file_names_carry_the_version() {
        assert_eq!(parse_file_name("0001_events.sql"), Some(1));
        assert_eq!(parse_file_name("0120_kpi_daily_v2.sql"), Some(120));
        for bad in [
            "0000_zero.sql",
            "1_events.sql",
            "00001_events.sql",
            "0001-events.sql",
            "0001_.sql",
            "0001_Events.sql",
            "0001_events.SQL",
            "0001_events",
            "abcd_events.sql",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
        assert!(matches!(
            Migration::new("events.sql", "SELECT 1"),
            Err(MigrationError::BadFileName { .. })
        ));
        assert!(matches!(
            Migration::new("0001_x.sql", "-- nothing\n"),
            Err(MigrationError::Empty { .. })
        ));
    }

    #[test]
    fn order_is_checked() {
        let a = Migration::new("0001_a.sql", "SELECT 1").expect("valid");
        let b = Migration::new("0002_b.sql", "SELECT 1").expect("valid");
        assert!(check_order(&[a.clone(), b.clone()]).is_ok());
        let error = check_order(&[b, a.clone()]).expect_err("out of order");
        assert!(error.to_string().contains("0001_a.sql"), "{error}");
        assert!(check_order(&[a.clone(), a]).is_err(), "duplicates");
    }

    #[test]
    fn checksum_is_sha256_of_the_text() {
        let migration = Migration::new("0001_a.sql", "SELECT 1;\n").expect("valid");
        assert_eq!(migration.checksum().len(), 64);
        assert_eq!(
            checksum(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_ne!(
            migration.checksum(),
            Migration::new("0001_a.sql", "SELECT 2;\n")
                .expect("valid")
                .checksum()
        );
    }

    #[test]
    fn long_statements_are_shortened_in_errors() {
        assert_eq!(one_line("a\n   b\tc", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }
}
