//! The KPI job on ClickHouse against the real ClickHouse, a fresh database per test:
//! - the same events folded into the embedded store and into ClickHouse give the same
//!   ledger rows and the same KPIs, and the `kpi` table holds exactly what the Parquet file
//!   holds;
//! - `aqs projector` and `aqs analytics` use ClickHouse when it is configured, and a second
//!   run for the same as-of date leaves exactly the second run's rows;
//! - the example queries of `analytics/README.md` run and return rows.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use aqs_analytics::kpi::{KpiParams, compute, read_ledgers};
use aqs_eventlog::{PartitionId, Positions};
use aqs_projector::ledger::{Ledger, LedgerChanges, digest};
use aqs_projector::sink::clickhouse::ClickHouseSink;
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{LedgerSink, RowVersions};
use aqs_schemas::generator::{GeneratorConfig, generate};
use aqs_schemas::{BusinessClock, Decoder, Event, WorkingCalendar};
use aqs_tables::kpi::{ClickHouseKpiSink, KPI_COLUMNS, KpiSink, ParquetKpiSink, read_kpis};
use aqs_tables::ledgers::window::{ClickHouseSource, SqliteSource};
use aqs_testkit::ClickHouseEnv;
use aqs_warehouse::{BlockingClient, ClickHouseConfig};
use chrono::NaiveDate;
use polars::prelude::*;

const PARTITIONS: u32 = 4;

fn date(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

/// A database of its own, migrated.
fn migrated(clickhouse: &ClickHouseEnv) -> ClickHouseConfig {
    let config = ClickHouseConfig::new(clickhouse.url())
        .with_credentials(clickhouse.user(), clickhouse.password())
        .with_database(clickhouse.fresh_database_name());
    BlockingClient::new(&config)
        .expect("client")
        .run(aqs_warehouse::migrate(&config))
        .expect("migrate");
    config
}

/// Hand-made events the generator rarely makes, on its ids: targets of every scope, a
/// transfer recorded late, a cancellation of a sale in another month, a cancellation pending
/// for good, a retracted visit, a sale in September (only the trailing window of rates reads
/// that far back), and a plan spanning two months.
const HAND_MADE: &[&str] = &[
    r#"{"event_id":"kh-g1","type":"target","schema_version":1,"occurred_at":"2026-11-01T09:00:00+08:00","source":"plan","agent_id":"A000001","payload":{"month":"2026-11","scope":"agent","scope_id":"A000001","premium":"90000.00","visits":40,"consultations":20,"sales":6}}"#,
    r#"{"event_id":"kh-g2","type":"target","schema_version":1,"occurred_at":"2026-11-01T09:00:00+08:00","source":"plan","payload":{"month":"2026-11","scope":"team","scope_id":"T0001","premium":"400000.00","outlet_activity_rate":"0.35"}}"#,
    r#"{"event_id":"kh-g3","type":"target","schema_version":1,"occurred_at":"2026-11-01T09:00:00+08:00","source":"plan","payload":{"month":"2026-11","scope":"branch","scope_id":"B001","premium":"2000000.00"}}"#,
    r#"{"event_id":"kh-g4","type":"target","schema_version":1,"occurred_at":"2026-10-01T09:00:00+08:00","source":"plan","payload":{"month":"2026-10","scope":"region","scope_id":"R01","premium":"9000000.00","sales":500}}"#,
    r#"{"event_id":"kh-j5","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-11-16T17:00:00+08:00","source":"hr","agent_id":"A000002","payload":{"team_id":"T0003","effective_date":"2026-11-09"}}"#,
    r#"{"event_id":"kh-s6","type":"sale_closed","schema_version":1,"occurred_at":"2026-10-30T11:00:00+08:00","source":"core","agent_id":"A000003","payload":{"outlet_id":"O0000003","policy_id":"KH6","product_code":"WL","premium":"12345.67","payment_mode":"regular","payment_years":5}}"#,
    r#"{"event_id":"kh-x6","type":"policy_cancelled","schema_version":1,"occurred_at":"2026-11-03T09:00:00+08:00","source":"core","agent_id":"A000003","payload":{"policy_id":"KH6","refund":"12345.67","reason":"cooling_off"}}"#,
    r#"{"event_id":"kh-x7","type":"policy_cancelled","schema_version":1,"occurred_at":"2026-11-04T09:00:00+08:00","source":"core","agent_id":"A000004","payload":{"policy_id":"NEVER-SOLD","refund":"1.00","reason":"other"}}"#,
    r#"{"event_id":"kh-v8","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-17T23:30:00Z","source":"app","agent_id":"A000005","payload":{"outlet_id":"O0000005","purpose":"service"}}"#,
    r#"{"event_id":"kh-r8","type":"retraction","schema_version":1,"occurred_at":"2026-11-19T09:00:00+08:00","source":"app","agent_id":"A000005","payload":{"retracted_event_id":"kh-v8","reason":"entered twice"}}"#,
    r#"{"event_id":"kh-j0","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-08-30T09:00:00+08:00","source":"hr","agent_id":"A000001","payload":{"team_id":"T0001","effective_date":"2026-09-01"}}"#,
    r#"{"event_id":"kh-c0","type":"consultation","schema_version":1,"occurred_at":"2026-09-21T10:00:00+08:00","source":"app","agent_id":"A000001","payload":{"outlet_id":"O0000001","customers_consulted":5,"customers_interested":2}}"#,
    r#"{"event_id":"kh-s0","type":"sale_closed","schema_version":1,"occurred_at":"2026-09-21T11:00:00+08:00","source":"core","agent_id":"A000001","payload":{"outlet_id":"O0000001","policy_id":"KH0","product_code":"WL","premium":"8000.00","payment_mode":"single"}}"#,
    // T0002 moves to branch B9999 from the 9th (recorded late); T0003's move from the 2nd is
    // retracted (a tombstone in both engines).
    r#"{"event_id":"kh-t2","type":"team_defined","schema_version":1,"occurred_at":"2026-11-12T09:00:00+08:00","source":"hr","payload":{"team_id":"T0002","team_name":"迁移组","branch_id":"B9999","region_id":"R0001","effective_from":"2026-11-09"}}"#,
    r#"{"event_id":"kh-t3","type":"team_defined","schema_version":1,"occurred_at":"2026-10-20T09:00:00+08:00","source":"hr","payload":{"team_id":"T0003","team_name":"未迁组","branch_id":"B9998","region_id":"R0001","effective_from":"2026-11-02"}}"#,
    r#"{"event_id":"kh-rt3","type":"retraction","schema_version":1,"occurred_at":"2026-11-19T10:00:00+08:00","source":"hr","payload":{"retracted_event_id":"kh-t3","reason":"move cancelled"}}"#,
    r#"{"event_id":"kh-p9","type":"activity_plan","schema_version":1,"occurred_at":"2026-10-25T20:00:00+08:00","source":"app","agent_id":"A000006","payload":{"period_start":"2026-10-26","period_end":"2026-11-08","visits":30,"consultations":12,"sales":3}}"#,
];

/// 60 agents over 45 days (mid-October to late November 2026) with late, repeated,
/// retracted and cancelled events, then the hand-made ones.
fn events() -> Vec<(Event, u64)> {
    let config = GeneratorConfig {
        // The calendar travels with the events: a holiday and a swapped working Saturday.
        calendar: calendar(),
        late_share: 0.05,
        duplicate_share: 0.02,
        retraction_share: 0.02,
        cancellation_share: 0.1,
        ..GeneratorConfig::new(2026, 60, date("2026-10-12"), 45)
    };
    let mut bytes = Vec::new();
    generate(&config, &mut bytes).expect("generate");
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .chain(HAND_MADE.iter().map(|line| line.as_bytes()))
        .map(|line| {
            let event = Decoder::standard().decode(line).expect("valid event");
            (event, digest(line))
        })
        .collect()
}

/// The runner's work without a log: batches of events folded, each batch's changes with the
/// positions after it.
fn fold_in_batches(events: &[(Event, u64)], size: usize) -> Vec<(LedgerChanges, Positions)> {
    let mut ledger = Ledger::new(BusinessClock::default());
    let mut positions = Positions::new();
    let mut out = Vec::new();
    for chunk in events.chunks(size) {
        for (event, digest) in chunk {
            *positions
                .entry(PartitionId::of(event, PARTITIONS))
                .or_insert(0) += 1;
            ledger.apply(event, *digest);
        }
        out.push((ledger.take_changes(), positions.clone()));
    }
    out
}

fn publish_all(sink: &mut impl LedgerSink, batches: &[(LedgerChanges, Positions)]) {
    for (changes, positions) in batches {
        sink.publish(changes, &RowVersions::new(positions, PARTITIONS))
            .expect("publish");
    }
}

/// Where two frames first differ, for failure messages.
fn first_difference(left: &DataFrame, right: &DataFrame) -> String {
    if left.get_column_names() != right.get_column_names() {
        return format!(
            "columns {:?} vs {:?}",
            left.get_column_names(),
            right.get_column_names()
        );
    }
    if left.height() != right.height() {
        return format!("{} vs {} rows", left.height(), right.height());
    }
    for (a, b) in left.columns().iter().zip(right.columns()) {
        if a.dtype() != b.dtype() {
            return format!("column {}: {} vs {}", a.name(), a.dtype(), b.dtype());
        }
        for row in 0..left.height() {
            let (x, y) = (a.get(row).expect("row"), b.get(row).expect("row"));
            if x != y {
                return format!(
                    "column {} row {row} ({} {} {} {}): {x} vs {y}",
                    a.name(),
                    left.column("scope").expect("scope").get(row).expect("row"),
                    left.column("scope_id").expect("id").get(row).expect("row"),
                    left.column("period")
                        .expect("period")
                        .get(row)
                        .expect("row"),
                    left.column("period_start")
                        .expect("start")
                        .get(row)
                        .expect("row"),
                );
            }
        }
    }
    "no difference found".to_owned()
}

fn assert_same_frame(left: &DataFrame, right: &DataFrame, what: &str) {
    assert!(
        left.equals_missing(right),
        "{what}: {}",
        first_difference(left, right)
    );
}

fn calendar() -> WorkingCalendar {
    WorkingCalendar::from_json(r#"{"holidays": ["2026-11-16"], "working_days": ["2026-11-14"]}"#)
        .expect("calendar")
}

fn params() -> KpiParams {
    let mut params = KpiParams::new(date("2026-11-20"));
    params.since = date("2026-10-12");
    params
}

#[test]
fn kpis_from_clickhouse_equal_kpis_from_the_embedded_store() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let started = Instant::now();
    let config = migrated(&clickhouse);
    let events = events();
    let batches = fold_in_batches(&events, 2_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let ledgers = aqs_tables::DataDir::new(dir.path()).ledgers();
    publish_all(
        &mut SqliteSink::open(&ledgers).expect("ledger store"),
        &batches,
    );
    let mut sink = ClickHouseSink::connect(&config).expect("clickhouse sink");
    publish_all(&mut sink, &batches);
    let folded = started.elapsed();

    let params = params();
    let embedded =
        read_ledgers(&SqliteSource::new(&ledgers), &params).expect("load from the embedded store");
    let warehouse = read_ledgers(
        &ClickHouseSource::connect(&config).expect("clickhouse source"),
        &params,
    )
    .expect("load from clickhouse");
    assert!(
        embedded.agent_days.len() > 1_000
            && !embedded.plans.is_empty()
            && !embedded.targets.is_empty()
            && !embedded.assignments.is_empty(),
        "the event set covers every ledger"
    );
    assert_eq!(embedded.agent_days, warehouse.agent_days);
    assert!(
        !embedded.trailing_agent_days.is_empty(),
        "the trailing window of rates reaches before the window"
    );
    assert_eq!(embedded.trailing_agent_days, warehouse.trailing_agent_days);
    assert_eq!(embedded.outlet_days, warehouse.outlet_days);
    assert_eq!(embedded.plans, warehouse.plans);
    assert_eq!(embedded.targets, warehouse.targets);
    assert_eq!(embedded.roster, warehouse.roster);
    assert_eq!(embedded.assignments, warehouse.assignments);
    assert_eq!(embedded.teams, warehouse.teams);
    let dated: Vec<(&str, NaiveDate, &str)> = embedded
        .teams
        .iter()
        .filter(|t| t.effective_from > aqs_tables::ledgers::TEAM_DEFINED_FROM_THE_BEGINNING)
        .map(|t| (t.team_id.as_str(), t.effective_from, t.branch_id.as_str()))
        .collect();
    assert_eq!(
        dated,
        [("T0002", date("2026-11-09"), "B9999")],
        "the move, and no row for the retracted one"
    );
    assert_eq!(
        embedded.calendar,
        calendar(),
        "the calendar the events declare"
    );
    assert_eq!(warehouse.calendar, embedded.calendar);

    let from_embedded = compute(embedded, &params).expect("compute");
    let mut from_clickhouse = compute(warehouse, &params).expect("compute");
    assert_same_frame(&from_clickhouse, &from_embedded, "KPIs");
    let at_risk = from_clickhouse
        .column("at_risk")
        .expect("at_risk")
        .bool()
        .expect("bool")
        .sum()
        .unwrap_or(0);
    assert!(at_risk > 0, "some scope is at risk: the flag is covered");
    // The columns of quota balance and activity needed carry values, not only nulls.
    let drifting = from_clickhouse
        .column("balance_drift")
        .expect("balance_drift")
        .bool()
        .expect("bool")
        .sum()
        .unwrap_or(0);
    assert!(drifting > 0, "some agent drifts towards visits");
    // The moved team's branch has its November from the 9th on, and no October.
    let b9999 = from_clickhouse
        .clone()
        .lazy()
        .filter(
            col("scope")
                .eq(lit("branch"))
                .and(col("scope_id").eq(lit("B9999"))),
        )
        .select([col("period"), col("period_start"), col("visits")])
        .collect()
        .expect("B9999 rows");
    let months: Vec<String> = b9999
        .column("period")
        .expect("period")
        .str()
        .expect("text")
        .iter()
        .zip(
            b9999
                .column("period_start")
                .expect("start")
                .date()
                .expect("date")
                .as_date_iter(),
        )
        .filter(|(period, _)| *period == Some("month"))
        .map(|(_, start)| start.expect("start").to_string())
        .collect();
    assert_eq!(months, ["2026-11-01"], "{b9999}");
    for column in [
        "premium_needed",
        "trailing_premium_per_sale",
        "sales_needed",
        "customers_needed_per_working_day",
        "norm_visits_share",
        "balance_drift_reason",
    ] {
        let values = from_clickhouse.column(column).expect(column);
        assert!(
            values.null_count() < values.len(),
            "{column} has values in the test data"
        );
    }
    let bases: Vec<String> = from_clickhouse
        .column("needed_rates_basis")
        .expect("basis")
        .str()
        .expect("text")
        .unique()
        .expect("unique")
        .iter()
        .flatten()
        .map(str::to_owned)
        .collect();
    // (Every team of the test data sells more than enough: the branch's rates are left to
    // the hand-computed tests.)
    for basis in ["own", "team"] {
        assert!(
            bases.iter().any(|b| b == basis),
            "{basis} rates are used: {bases:?}"
        );
    }
    let computed = started.elapsed();

    // Written to the table kpi and read back: exactly the Parquet file's content.
    let parquet = dir.path().join("kpi.parquet");
    ParquetKpiSink::new(&parquet)
        .write(&mut from_clickhouse, params.as_of)
        .expect("parquet");
    ClickHouseKpiSink::connect(&config)
        .expect("kpi sink")
        .write(&mut from_clickhouse, params.as_of)
        .expect("kpi table");
    let stored = read_kpis(&config, params.as_of).expect("read kpi table");
    let file = ParquetReader::new(std::fs::File::open(&parquet).expect("open parquet"))
        .finish()
        .expect("read parquet");
    assert_eq!(
        file.get_column_names(),
        aqs_tables::kpi::columns::column_names().collect::<Vec<_>>()
    );
    assert_same_frame(&stored, &file, "the kpi table vs the Parquet file");
    assert_same_frame(&stored, &from_embedded, "the kpi table vs the job");

    run_readme_queries(&config);
    eprintln!(
        "clickhouse kpi: {} events, {} KPI rows; folded into both stores in {:.1} s, \
         loaded and computed twice in {:.1} s, written and checked in {:.1} s",
        events.len(),
        from_embedded.height(),
        folded.as_secs_f64(),
        (computed - folded).as_secs_f64(),
        (started.elapsed() - computed).as_secs_f64()
    );
}

/// Every ```sql block of analytics/README.md runs on ClickHouse and returns rows.
fn run_readme_queries(config: &ClickHouseConfig) {
    let readme = std::fs::read_to_string(Path::new(&manifest_dir()).join("analytics/README.md"))
        .expect("analytics/README.md");
    let queries: Vec<&str> = readme
        .split("```sql\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .collect();
    assert!(queries.len() >= 3, "the README has example queries");
    let client = BlockingClient::new(config).expect("client");
    for query in queries {
        let query = query.trim().trim_end_matches(';');
        let bytes = client
            .run(async {
                client
                    .client()
                    .query_raw(query)
                    .fetch_bytes("TabSeparated")?
                    .collect()
                    .await
            })
            .unwrap_or_else(|error| panic!("README query fails: {error}\n{query}"));
        let rows = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        assert!(rows > 0, "README query returns no rows:\n{query}");
    }
}

fn aqs(data_dir: &Path, clickhouse: Option<&ClickHouseConfig>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aqs"));
    command
        .env("AQS_DATA_DIR", data_dir)
        .env("AQS_LOG", "warn")
        .env_remove("AQS_KAFKA_BROKERS")
        .env_remove("AQS_CLICKHOUSE_URL");
    if let Some(config) = clickhouse {
        command
            .env(
                "AQS_CLICKHOUSE_URL",
                config.url.as_deref().unwrap_or_default(),
            )
            .env("AQS_CLICKHOUSE_USER", &config.user)
            .env("AQS_CLICKHOUSE_PASSWORD", &config.password)
            .env("AQS_CLICKHOUSE_DATABASE", &config.database);
    }
    command
}

fn run_ok(mut command: Command) -> String {
    let output = command.output().expect("run aqs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{command:?} failed: {stderr}");
    stderr
}

fn count(client: &BlockingClient, sql: &str) -> u64 {
    client
        .run(client.client().query(sql).fetch_one::<u64>())
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

#[test]
fn the_cli_projects_into_clickhouse_and_a_second_kpi_run_replaces_the_first() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let started = Instant::now();
    let work = tempfile::tempdir().expect("tempdir");
    let events = work.path().join("events.ndjson");
    let config = GeneratorConfig::new(11, 15, date("2026-10-19"), 28);
    generate(
        &config,
        std::fs::File::create(&events)
            .map(std::io::BufWriter::new)
            .expect("create"),
    )
    .expect("generate");
    let database = ClickHouseConfig::new(clickhouse.url())
        .with_credentials(clickhouse.user(), clickhouse.password())
        .with_database(clickhouse.fresh_database_name());

    let mut migrate = aqs(work.path(), Some(&database));
    migrate.arg("migrate");
    run_ok(migrate);
    // The same log projected into ClickHouse and into the embedded store.
    let embedded = work.path().join("embedded");
    let warehouse = work.path().join("warehouse");
    for (dir, target) in [(&embedded, None), (&warehouse, Some(&database))] {
        let mut import = aqs(dir, None);
        import.arg("import").arg(&events);
        run_ok(import);
        let mut project = aqs(dir, target);
        project.args(["projector", "--until-idle", "--batch-size", "700"]);
        run_ok(project);
    }
    assert!(
        !aqs_tables::DataDir::new(&warehouse).ledgers().exists(),
        "with ClickHouse the projector writes no embedded ledgers"
    );
    let expected = SqliteSink::open(&aqs_tables::DataDir::new(&embedded).ledgers())
        .expect("ledgers")
        .dump()
        .expect("dump");
    let actual = ClickHouseSink::connect(&database)
        .expect("sink")
        .dump()
        .expect("dump");
    assert!(
        actual == expected,
        "aqs projector into ClickHouse gives other ledgers than into the embedded store"
    );

    // Two runs for the same as-of date: the first over a longer window (more rows), the
    // second over the default one. The table ends with exactly the second run's rows.
    let client = BlockingClient::new(&database).expect("client");
    let as_of = "2026-11-12";
    let mut first = aqs(work.path(), Some(&database));
    first.args(["analytics", "--as-of", as_of, "--since", "2026-10-19"]);
    let said = run_ok(first);
    assert!(said.contains("ClickHouse table"), "{said}");
    let first_rows = count(&client, "SELECT count() FROM kpi");
    let out = work.path().join("kpi-files");
    let mut second = aqs(work.path(), Some(&database));
    second
        .args(["analytics", "--as-of", as_of])
        .arg("--out")
        .arg(&out);
    run_ok(second);
    let rows = count(&client, "SELECT count() FROM kpi");
    let keys = count(
        &client,
        "SELECT count() FROM (SELECT DISTINCT scope, scope_id, period, period_start, as_of FROM kpi)",
    );
    let parquet = ParquetReader::new(
        std::fs::File::open(
            aqs_tables::KpiFiles::new(&out).file(as_of.parse().expect("as-of date")),
        )
        .expect("parquet"),
    )
    .finish()
    .expect("read parquet");
    assert_eq!(rows, keys, "one row per key, no leftovers of the first run");
    assert_eq!(
        rows,
        parquet.height() as u64,
        "exactly the second run's rows"
    );
    assert!(
        rows < first_rows,
        "the first run's extra periods are gone ({first_rows} then {rows})"
    );
    assert_same_frame(
        &read_kpis(&database, date(as_of)).expect("read"),
        &parquet,
        "the kpi table vs the Parquet file of the same run",
    );
    eprintln!(
        "clickhouse cli: import, project twice, analytics twice in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_kpi_columns_match_the_migrated_table() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let config = migrated(&clickhouse);
    let client = BlockingClient::new(&config).expect("client");
    let columns: Vec<(String, String)> = client
        .run(
            client
                .client()
                .query("SELECT name, type FROM system.columns WHERE database = ? AND table = 'kpi'")
                .bind(config.database.as_str())
                .fetch_all(),
        )
        .expect("system.columns");
    let mut expected: Vec<(String, String)> = KPI_COLUMNS
        .iter()
        .map(|(name, kind)| ((*name).to_owned(), kind.clickhouse().to_owned()))
        .collect();
    expected.push(("computed_at".to_owned(), "DateTime".to_owned()));
    assert_eq!(columns, expected);
}

#[test]
fn a_run_that_computes_nothing_clears_its_date() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let config = migrated(&clickhouse);
    let events: Vec<(Event, u64)> = HAND_MADE
        .iter()
        .map(|line| {
            let event = Decoder::standard()
                .decode(line.as_bytes())
                .expect("valid event");
            (event, digest(line.as_bytes()))
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let ledgers = aqs_tables::DataDir::new(dir.path()).ledgers();
    publish_all(
        &mut SqliteSink::open(&ledgers).expect("ledger store"),
        &fold_in_batches(&events, events.len()),
    );
    let params = params();
    let data = read_ledgers(&SqliteSource::new(&ledgers), &params).expect("load");
    let mut some = compute(data, &params).expect("compute");
    let mut none = compute(Default::default(), &params).expect("compute");
    assert!(some.height() > 0 && none.height() == 0);
    let mut sink = ClickHouseKpiSink::connect(&config).expect("kpi sink");
    sink.write(&mut some, params.as_of).expect("write");
    let stored = read_kpis(&config, params.as_of).expect("read");
    assert_eq!(stored.height(), some.height());
    sink.write(&mut none, params.as_of).expect("write nothing");
    assert_eq!(read_kpis(&config, params.as_of).expect("read").height(), 0);
}

/// The package's folder, read when the test runs (cargo sets it) rather than when it was
/// built: a build cache shared with a clone in another folder may hold this test built there.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
