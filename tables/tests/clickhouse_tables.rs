//! The row types against the tables the real ClickHouse makes from the migrations, a fresh
//! database per test.

use aqs_tables::ledgers::*;
use aqs_testkit::ClickHouseEnv;
use aqs_warehouse::ClickHouseConfig;

/// A config for a database of its own, not created yet: `migrate` creates it.
fn fresh_config(clickhouse: &ClickHouseEnv) -> ClickHouseConfig {
    ClickHouseConfig::new(clickhouse.url())
        .with_credentials(clickhouse.user(), clickhouse.password())
        .with_database(clickhouse.fresh_database_name())
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
async fn every_ledger_row_type_has_its_tables_columns_in_order() {
    use aqs_warehouse::clickhouse::Row;

    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let config = fresh_config(&clickhouse);
    aqs_warehouse::migrate(&config).await.expect("migrate");
    fn names(list: &str) -> Vec<String> {
        list.split(',').map(|c| c.trim().to_owned()).collect()
    }
    struct Types(Vec<(&'static str, &'static str, &'static [&'static str])>);
    impl TableVisitor for Types {
        type Error = ();
        fn visit<T: LedgerRow>(&mut self) -> Result<(), ()> {
            self.0.push((T::TABLE, T::COLUMNS, T::COLUMN_NAMES));
            Ok(())
        }
    }
    let mut types = Types(Vec::new());
    visit_tables(&mut types).expect("visited");
    types.0.push((
        LedgerDeadLetterRow::TABLE,
        LedgerDeadLetterRow::COLUMNS,
        LedgerDeadLetterRow::COLUMN_NAMES,
    ));
    for (table, columns, fields) in types.0 {
        let declared = columns_of(&config, table).await;
        assert_eq!(names(columns), declared, "{table}: COLUMNS");
        let fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        assert_eq!(fields, declared, "{table}: the row type's fields");
    }
    let listed: Vec<&str> = ledger_tables().iter().map(|t| t.table).collect();
    assert_eq!(
        listed,
        [
            "ledger_agent_outlet_day",
            "ledger_agent_day",
            "ledger_team_day",
            "plans",
            "targets",
            "roster",
            "assignments",
            "teams",
            "outlets",
            "pending_cancellations",
            "agent_profiles",
            "calendar_days",
            "supervisor_facts"
        ]
    );
}

fn team(from: &str, branch: &str, deleted: u8, ver: u64) -> TeamRow {
    TeamRow {
        team_id: "T1".to_owned(),
        effective_from: from.parse().expect("date"),
        team_name: "一组".to_owned(),
        branch_id: branch.to_owned(),
        branch_name: None,
        region_id: "R1".to_owned(),
        region_name: None,
        supervisor_id: None,
        deleted,
        ver,
    }
}

/// The teams table holds one row per team and effective date, "from the beginning" as
/// 1970-01-01 (ClickHouse's first `Date`) read back as the same date, and a tombstone of a
/// newer version hides its date's row.
#[tokio::test]
async fn team_definitions_are_kept_per_effective_date_with_tombstones() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let config = fresh_config(&clickhouse);
    aqs_warehouse::migrate(&config).await.expect("migrate");
    let client = config.client().expect("client");
    let insert = |rows: Vec<TeamRow>| {
        let client = client.clone();
        async move {
            let mut insert = client
                .insert::<TeamRow>(TeamRow::TABLE)
                .await
                .expect("insert");
            for row in &rows {
                insert.write(row).await.expect("write");
            }
            insert.end().await.expect("end");
        }
    };
    let beginning = TEAM_DEFINED_FROM_THE_BEGINNING.to_string();
    insert(vec![
        team(&beginning, "B1", 0, 1),
        team("2026-11-15", "B2", 0, 1),
        team("2026-12-01", "B3", 0, 1),
    ])
    .await;
    insert(vec![team("2026-12-01", "", 1, 2)]).await;
    let live = aqs_tables::ledgers::clickhouse::live_rows::<TeamRow>(&client)
        .await
        .expect("live rows");
    assert_eq!(
        live,
        [team(&beginning, "B1", 0, 1), team("2026-11-15", "B2", 0, 1)]
    );
}
