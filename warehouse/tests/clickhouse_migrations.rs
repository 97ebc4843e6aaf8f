//! Migrations and the events table against the real ClickHouse, a fresh database per test.

use std::error::Error;

use aqs_testkit::ClickHouseEnv;
use aqs_warehouse::events::{EVENTS_TABLE, EventRow};
use aqs_warehouse::migrate::embedded;
use aqs_warehouse::{ClickHouseConfig, Migration, MigrationError, RecordedMigration};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

/// A config for a database of its own, not created yet: `migrate` must create it.
fn fresh_config(clickhouse: &ClickHouseEnv) -> ClickHouseConfig {
    ClickHouseConfig::new(clickhouse.url())
        .with_credentials(clickhouse.user(), clickhouse.password())
        .with_database(clickhouse.fresh_database_name())
}

async fn recorded(config: &ClickHouseConfig) -> Vec<RecordedMigration> {
    config
        .client()
        .expect("client")
        .query("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
        .fetch_all()
        .await
        .expect("read schema_migrations")
}

async fn table_exists(config: &ClickHouseConfig, table: &str) -> bool {
    let count: u64 = config
        .server_client()
        .expect("client")
        .query("SELECT count() FROM system.tables WHERE database = ? AND name = ?")
        .bind(config.database.as_str())
        .bind(table)
        .fetch_one()
        .await
        .expect("system.tables");
    count > 0
}

/// The error and all its sources, as the CLI prints them.
fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(next) = source {
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}

fn migration(file: &str, sql: &str) -> Migration {
    Migration::new(file, sql).expect("valid migration")
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().expect("valid time")
}

fn event(id: &str, agent: &str, day: u32) -> EventRow {
    let business_date = NaiveDate::from_ymd_opt(2026, 1, day).expect("valid date");
    EventRow {
        event_id: id.to_owned(),
        event_type: "visit_logged".to_owned(),
        schema_version: 1,
        occurred_at: at(1_767_225_600 + i64::from(day) * 86_400 + 3_600),
        business_date,
        agent_id: agent.to_owned(),
        source: "branch-app".to_owned(),
        payload: format!(r#"{{"outlet_id":"o-1","note":"客户 {id}"}}"#),
        ingested_at: at(1_767_225_600 + i64::from(day) * 86_400 + 7_200),
    }
}

#[tokio::test]
async fn migrate_creates_the_schema_and_events_round_trip() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let config = fresh_config(&clickhouse);
    let report = aqs_warehouse::migrate(&config).await.expect("migrate");
    assert!(report.created_database, "{report}");
    let applied: Vec<_> = report.applied.iter().map(|m| m.file.as_str()).collect();
    assert_eq!(
        applied,
        [
            "0001_events.sql",
            "0002_ledgers.sql",
            "0003_kpi.sql",
            "0004_ledger_dead_letters.sql",
            "0005_wide_money.sql",
            "0006_agent_profiles.sql",
            "0007_quota_columns.sql",
            "0008_quota_views.sql",
            "0009_calendar_days.sql",
            "0010_dated_teams.sql",
            "0011_outlet_kpi.sql",
            "0012_supervisor_facts.sql"
        ]
    );
    assert!(table_exists(&config, EVENTS_TABLE).await);

    let client = config.client().expect("client");
    let rows = vec![
        event("e-1", "a-1", 5),
        event("e-2", "", 5),
        event("e-3", "a-2", 31),
    ];
    let mut insert = client
        .insert::<EventRow>(EVENTS_TABLE)
        .await
        .expect("insert");
    for row in &rows {
        insert.write(row).await.expect("write row");
    }
    // A re-delivery of e-1: the archive keeps one row per event_id (seen with FINAL).
    insert.write(&rows[0]).await.expect("write duplicate");
    insert.end().await.expect("end insert");

    let back: Vec<EventRow> = client
        .query(&format!(
            "SELECT {} FROM {EVENTS_TABLE} FINAL ORDER BY event_id",
            EventRow::COLUMNS
        ))
        .fetch_all()
        .await
        .expect("select");
    assert_eq!(back, rows);
    let partitions: Vec<String> = client
        .query(
            "SELECT DISTINCT partition FROM system.parts \
             WHERE database = ? AND table = ? AND active ORDER BY partition",
        )
        .bind(config.database.as_str())
        .bind(EVENTS_TABLE)
        .fetch_all()
        .await
        .expect("partitions");
    assert_eq!(
        partitions,
        ["202601"],
        "partitioned by month of business_date"
    );
}

#[tokio::test]
async fn a_second_run_applies_nothing_and_changes_no_record() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let config = fresh_config(&clickhouse);
    let first = aqs_warehouse::migrate(&config).await.expect("first run");
    assert_eq!(first.applied.len(), embedded().len());
    let before = recorded(&config).await;
    assert_eq!(before.len(), embedded().len());
    for (record, migration) in before.iter().zip(embedded()) {
        assert_eq!(record.version, migration.version());
        assert_eq!(record.name, migration.file());
        assert_eq!(record.checksum, migration.checksum());
    }

    let second = aqs_warehouse::migrate(&config).await.expect("second run");
    assert!(second.is_noop(), "{second}");
    assert!(second.applied.is_empty());
    assert_eq!(second.already_applied.len(), embedded().len());
    assert!(second.to_string().contains("nothing to apply"), "{second}");
    assert_eq!(recorded(&config).await, before);
}

#[tokio::test]
async fn a_broken_migration_fails_loudly_records_nothing_and_applies_once_fixed() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let config = fresh_config(&clickhouse);
    let good = embedded().remove(0);
    let broken = migration(
        "0002_broken.sql",
        "-- the first statement is fine, the second is not\n\
         CREATE TABLE IF NOT EXISTS first_part (x UInt8) ENGINE = MergeTree() ORDER BY x;\n\
         CREATE TABLE IF NOT EXISTS second_part (x NoSuchType) ENGINE = MergeTree() ORDER BY x;\n",
    );
    let error = aqs_warehouse::migrate_with(&config, &[good.clone(), broken])
        .await
        .expect_err("the broken migration fails");
    let text = chain(&error);
    eprintln!("the expected error: {text}");
    match &error {
        MigrationError::Statement {
            file, index, count, ..
        } => {
            assert_eq!(file, "0002_broken.sql");
            assert_eq!((*index, *count), (2, 2));
        }
        other => panic!("expected a statement error, got {other:?}"),
    }
    assert!(text.contains("0002_broken.sql"), "{text}");
    assert!(
        text.contains("second_part (x NoSuchType)"),
        "names the statement: {text}"
    );
    assert!(
        text.contains("NoSuchType") && text.contains("Code:"),
        "server message: {text}"
    );

    let after_failure = recorded(&config).await;
    let versions: Vec<_> = after_failure.iter().map(|r| r.version).collect();
    assert_eq!(versions, [1], "only 0001 is recorded");
    assert!(table_exists(&config, "first_part").await, "statement 1 ran");
    assert!(!table_exists(&config, "second_part").await);

    // Fixed (never recorded, so changing it is fine): the whole file runs again and converges.
    let fixed = migration(
        "0002_broken.sql",
        "CREATE TABLE IF NOT EXISTS first_part (x UInt8) ENGINE = MergeTree() ORDER BY x;\n\
         CREATE TABLE IF NOT EXISTS second_part (x UInt8) ENGINE = MergeTree() ORDER BY x;\n",
    );
    let report = aqs_warehouse::migrate_with(&config, &[good, fixed.clone()])
        .await
        .expect("fixed migration applies");
    let applied: Vec<_> = report.applied.iter().map(|m| m.version).collect();
    assert_eq!(applied, [2]);
    assert_eq!(report.already_applied, [1]);
    let records = recorded(&config).await;
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].checksum, fixed.checksum());
    assert!(table_exists(&config, "second_part").await);
}

#[tokio::test]
async fn a_changed_or_renamed_applied_migration_is_an_error() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let config = fresh_config(&clickhouse);
    let good = embedded().remove(0);
    let extra = "CREATE TABLE IF NOT EXISTS extra (x UInt8) ENGINE = MergeTree() ORDER BY x;\n";
    aqs_warehouse::migrate_with(&config, &[good.clone(), migration("0002_extra.sql", extra)])
        .await
        .expect("first run");
    let before = recorded(&config).await;

    let edited = migration(
        "0002_extra.sql",
        "CREATE TABLE IF NOT EXISTS extra (x UInt16) ENGINE = MergeTree() ORDER BY x;\n",
    );
    let error = aqs_warehouse::migrate_with(&config, &[good.clone(), edited])
        .await
        .expect_err("an edited migration is refused");
    assert!(
        matches!(&error, MigrationError::Changed { file, .. } if file == "0002_extra.sql"),
        "{error:?}"
    );
    assert!(chain(&error).contains("0002_extra.sql"), "{error}");

    let renamed = migration("0002_extra_renamed.sql", extra);
    let error = aqs_warehouse::migrate_with(&config, &[good, renamed])
        .await
        .expect_err("a renamed migration is refused");
    assert!(
        matches!(&error, MigrationError::Renamed { .. }),
        "{error:?}"
    );
    assert!(chain(&error).contains("0002_extra_renamed.sql"), "{error}");

    assert_eq!(
        recorded(&config).await,
        before,
        "nothing recorded by refused runs"
    );
}

#[tokio::test]
async fn migrations_recorded_by_a_newer_release_are_left_alone() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let config = fresh_config(&clickhouse);
    let good = embedded().remove(0);
    let newer = migration(
        "0002_newer.sql",
        "CREATE TABLE IF NOT EXISTS newer (x UInt8) ENGINE = MergeTree() ORDER BY x;\n",
    );
    aqs_warehouse::migrate_with(&config, &[good.clone(), newer])
        .await
        .expect("newer release");
    let report = aqs_warehouse::migrate_with(&config, &[good])
        .await
        .expect("older release");
    assert!(report.is_noop(), "{report}");
    let unknown: Vec<_> = report.unknown.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(unknown, ["0002_newer.sql"]);
}

/// The columns of a table (or view) in declaration order.
async fn columns_of(config: &ClickHouseConfig, table: &str) -> Vec<String> {
    config
        .server_client()
        .expect("client")
        .query("SELECT name FROM system.columns WHERE database = ? AND table = ?")
        .bind(config.database.as_str())
        .bind(table)
        .fetch_all()
        .await
        .expect("system.columns")
}

#[tokio::test]
async fn the_event_row_has_its_tables_columns_in_order() {
    use aqs_warehouse::clickhouse::Row;

    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let config = fresh_config(&clickhouse);
    aqs_warehouse::migrate(&config).await.expect("migrate");
    let declared = columns_of(&config, EVENTS_TABLE).await;
    let listed: Vec<String> = EventRow::COLUMNS
        .split(',')
        .map(|c| c.trim().to_owned())
        .collect();
    assert_eq!(listed, declared, "COLUMNS");
    let fields: Vec<String> = EventRow::COLUMN_NAMES
        .iter()
        .map(|f| (*f).to_owned())
        .collect();
    assert_eq!(fields, declared, "the row type's fields");
}
