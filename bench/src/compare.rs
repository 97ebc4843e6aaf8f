//! The team × month KPIs three ways: the aqs KPI job, ClickHouse SQL over the same ledger
//! tables, and DuckDB over them exported to Parquet. Checks that the three agree row by row
//! and prints their times.
//!
//! The regions and projected ledgers are those of the `kpi` scenario (same folders under
//! `--work-dir`). The job computes every scope × day, week and month; the queries only the
//! team × month subset, so the ratios flatter the SQL engines and say so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::Context;
use aqs_analytics::periods::{PeriodKind, from_day_number};
use aqs_tables::ledgers::export::export_ledger_parquet;
use aqs_tables::ledgers::{
    AgentDayRow, AgentOutletDayRow, AssignmentRow, LedgerRow, RosterRow, TargetRow,
};
use aqs_warehouse::{BlockingClient, ClickHouseConfig};
use chrono::NaiveDate;
use polars::prelude::{DataFrame, IntoLazy, col, lit};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::{
    Measured, kpi_params, kpi_table, machine, projected_region, region_last_day, run_child,
};

const CLICKHOUSE_SQL: &str = include_str!("compare/team_month.clickhouse.sql");
const DUCKDB_SQL: &str = include_str!("compare/team_month.duckdb.sql");
const DUCKDB_SCRIPT: &str = include_str!("compare/duckdb_team_month.py");

/// The child stage that runs the KPI job and keeps its team × month rows.
const AQS_STAGE: &str = "compare-aqs";

/// The ledger tables the queries read, loaded into ClickHouse and exported to Parquet.
const TABLES: [&str; 5] = [
    AgentDayRow::TABLE,
    AgentOutletDayRow::TABLE,
    RosterRow::TABLE,
    AssignmentRow::TABLE,
    TargetRow::TABLE,
];

/// Ratios agree when they differ by at most this much (the three engines divide the same
/// integers as doubles, so they normally agree exactly).
const TOLERANCE: f64 = 1e-9;

/// One team × month: the KPIs compared. Money in fen; ratios null where the domain says so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TeamMonth {
    team_id: String,
    month: NaiveDate,
    visits: i64,
    consultations: i64,
    customers_consulted: i64,
    sales: i64,
    net_premium_fen: i64,
    premium_target_fen: Option<i64>,
    assigned_outlets: i64,
    close_rate: Option<f64>,
    premium_attainment: Option<f64>,
    outlet_activity_rate: Option<f64>,
}

impl TeamMonth {
    /// The fields that differ from `other`'s, as `name: mine ≠ theirs`.
    fn differences(&self, other: &Self) -> Vec<String> {
        let mut out = Vec::new();
        let ints = [
            ("visits", self.visits, other.visits),
            ("consultations", self.consultations, other.consultations),
            (
                "customers_consulted",
                self.customers_consulted,
                other.customers_consulted,
            ),
            ("sales", self.sales, other.sales),
            (
                "net_premium_fen",
                self.net_premium_fen,
                other.net_premium_fen,
            ),
            (
                "assigned_outlets",
                self.assigned_outlets,
                other.assigned_outlets,
            ),
        ];
        for (name, mine, theirs) in ints {
            if mine != theirs {
                out.push(format!("{name}: {mine} ≠ {theirs}"));
            }
        }
        if self.premium_target_fen != other.premium_target_fen {
            out.push(format!(
                "premium_target_fen: {:?} ≠ {:?}",
                self.premium_target_fen, other.premium_target_fen
            ));
        }
        let ratios = [
            ("close_rate", self.close_rate, other.close_rate),
            (
                "premium_attainment",
                self.premium_attainment,
                other.premium_attainment,
            ),
            (
                "outlet_activity_rate",
                self.outlet_activity_rate,
                other.outlet_activity_rate,
            ),
        ];
        for (name, mine, theirs) in ratios {
            let equal = match (mine, theirs) {
                (None, None) => true,
                (Some(a), Some(b)) => (a - b).abs() <= TOLERANCE,
                _ => false,
            };
            if !equal {
                out.push(format!("{name}: {mine:?} ≠ {theirs:?}"));
            }
        }
        out
    }
}

/// The mismatches between two engines' rows, at most `limit` of them spelled out.
fn mismatches(
    left: (&str, &[TeamMonth]),
    right: (&str, &[TeamMonth]),
    limit: usize,
) -> Vec<String> {
    let index = |rows: &[TeamMonth]| -> BTreeMap<(String, NaiveDate), TeamMonth> {
        rows.iter()
            .map(|r| ((r.team_id.clone(), r.month), r.clone()))
            .collect()
    };
    let (a, b) = (index(left.1), index(right.1));
    let mut out = Vec::new();
    if a.len() != left.1.len() || b.len() != right.1.len() {
        out.push(format!(
            "duplicate team × month keys: {} has {} rows for {} keys, {} has {} rows for {} keys",
            left.0,
            left.1.len(),
            a.len(),
            right.0,
            right.1.len(),
            b.len()
        ));
    }
    for (key, row) in &a {
        match b.get(key) {
            None => out.push(format!("{} {}: only in {} ({row:?})", key.0, key.1, left.0)),
            Some(other) => {
                let differences = row.differences(other);
                if !differences.is_empty() {
                    out.push(format!(
                        "{} {}: {} vs {}: {}",
                        key.0,
                        key.1,
                        left.0,
                        right.0,
                        differences.join("; ")
                    ));
                }
            }
        }
    }
    for (key, row) in &b {
        if !a.contains_key(key) {
            out.push(format!(
                "{} {}: only in {} ({row:?})",
                key.0, key.1, right.0
            ));
        }
    }
    let total = out.len();
    if total > limit {
        out.truncate(limit);
        out.push(format!("… and {} more", total - limit));
    }
    out
}

/// The dates a run covers, as the `kpi` stage sets them.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// First business date read (the job's window start).
    first: NaiveDate,
    /// The as-of date: last business date counted.
    last: NaiveDate,
    /// First month reported.
    month_from: NaiveDate,
}

impl Window {
    fn new(days: u32) -> anyhow::Result<Self> {
        let as_of = region_last_day(days)?;
        let params = kpi_params(as_of)?;
        Ok(Self {
            first: params.window_start(),
            last: as_of,
            month_from: PeriodKind::Month.start_of(params.since),
        })
    }

    fn fill(&self, sql: &str) -> String {
        sql.replace("{first}", &self.first.to_string())
            .replace("{last}", &self.last.to_string())
            .replace("{month_from}", &self.month_from.to_string())
    }
}

/// What one engine gave: its rows and its best time of the runs.
struct Engine {
    rows: Vec<TeamMonth>,
    seconds: f64,
}

pub fn compare(
    work: &Path,
    sizes: &[String],
    clickhouse: &ClickHouseConfig,
    runs: usize,
) -> anyhow::Result<ExitCode> {
    if !clickhouse.is_configured() {
        eprintln!(
            "bench compare needs ClickHouse: set AQS_CLICKHOUSE_URL (and AQS_CLICKHOUSE_USER, \
             AQS_CLICKHOUSE_PASSWORD), or pass --clickhouse-url. For the project's test server:\n\
             \n    deploy/test-services/services.sh start clickhouse\n    \
             eval \"$(deploy/test-services/services.sh env)\"\n"
        );
        return Ok(ExitCode::from(2));
    }
    anyhow::ensure!(runs > 0, "--runs must be at least 1");
    let mut table = Vec::new();
    let mut loads = Vec::new();
    let mut reports = Vec::new();
    let mut engines = (String::new(), String::new());
    for size in sizes {
        let (agents, days, dir, _) = projected_region(work, size)?;
        let window = Window::new(days)?;
        let out = dir.join("compare");
        std::fs::create_dir_all(&out)?;

        eprintln!("bench compare {size}: the aqs KPI job");
        let job = run_child(
            AQS_STAGE,
            &dir,
            &["--as-of".to_owned(), window.last.to_string()],
        )?;
        let aqs: Vec<TeamMonth> = serde_json::from_slice(
            &std::fs::read(out.join("aqs.json")).context("reading the job's team × month rows")?,
        )?;

        eprintln!("bench compare {size}: ClickHouse");
        let config = clickhouse.clone().with_database(format!(
            "{}_bench_compare_{agents}x{days}",
            clickhouse.database
        ));
        let (ledger_rows, load_seconds) =
            load_clickhouse(&config, &aqs_tables::DataDir::new(&dir).ledgers())?;
        let (ch, ch_wall, ch_version) = query_clickhouse(&config, &window, runs)?;

        eprintln!("bench compare {size}: Parquet and DuckDB");
        let parquet = out.join("parquet");
        let (export_seconds, parquet_bytes) =
            export_parquet(&aqs_tables::DataDir::new(&dir).ledgers(), &parquet)?;
        let (duck, duck_version) = query_duckdb(&out, &parquet, &window, runs)?;
        engines = (ch_version, duck_version);

        let mut problems = mismatches(("aqs", &aqs), ("ClickHouse", &ch.rows), 20);
        problems.extend(mismatches(("aqs", &aqs), ("DuckDB", &duck.rows), 20));
        let equal = problems.is_empty();
        if !equal {
            reports.push(format!(
                "### {agents} × {days}: mismatches\n\n{}",
                problems
                    .iter()
                    .map(|p| format!("- {p}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
        table.push(format!(
            "| {agents} × {days} | {} | {} | {:.2} | {:.3} / {:.3} | {:.3} | {:.1} | {:.1} | {} |",
            aqs.len(),
            job.items,
            job.seconds,
            ch.seconds,
            ch_wall,
            duck.seconds,
            job.seconds / ch_wall,
            job.seconds / duck.seconds,
            if equal { "yes" } else { "**no**" }
        ));
        loads.push(format!(
            "| {agents} × {days} | {ledger_rows} | {load_seconds:.2} | {export_seconds:.2} | {:.1} | {:.0} |",
            parquet_bytes as f64 / (1024.0 * 1024.0),
            job.peak_rss_mib
        ));
    }

    println!(
        "\n### Team × month KPIs three ways: the KPI job, ClickHouse SQL, DuckDB — {}; {}, {}\n",
        machine(),
        engines.0,
        engines.1
    );
    println!(
        "| agents × days | team × month rows | aqs KPI rows (all scopes × periods) | aqs KPI job (s) | ClickHouse (s, server / wall) | DuckDB (s) | aqs ÷ ClickHouse | aqs ÷ DuckDB | equal |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for row in &table {
        println!("{row}");
    }
    println!(
        "\nKPIs compared: visits, consultations, customers consulted, sales, net premium \
         (gross − refunds), team premium target, assigned outlets, close rate, premium \
         attainment, outlet activity rate; integers equal, ratios within {TOLERANCE:e}, \
         same team × month keys. The aqs job runs once, in a child process, and computes \
         every scope × day, week and month (loading its ledgers included); ClickHouse and \
         DuckDB compute the team × month subset only, best of {runs} runs (ClickHouse: \
         query duration in system.query_log / client wall time, ratios use the wall \
         time; DuckDB: query and fetch inside Python, interpreter start left out).\n"
    );
    println!(
        "| agents × days | ledger rows loaded | ClickHouse load (s) | Parquet export (s) | Parquet (MiB) | aqs job peak RSS (MiB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for row in &loads {
        println!("{row}");
    }
    if reports.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for report in &reports {
        println!("\n{report}");
    }
    Ok(ExitCode::FAILURE)
}

/// The child stage of this scenario, if `stage` is one: the KPI job as the `kpi` stage runs
/// it (timed), then its team × month rows written to `compare/aqs.json` (not timed).
pub fn child(
    stage: &str,
    dir: &Path,
    as_of: Option<NaiveDate>,
) -> anyhow::Result<Option<Measured>> {
    if stage != AQS_STAGE {
        return Ok(None);
    }
    let started = Instant::now();
    let table = kpi_table(dir, as_of.context("the compare stage needs --as-of")?)?;
    let seconds = started.elapsed().as_secs_f64();
    let rows = team_months(&table)?;
    std::fs::write(
        dir.join("compare").join("aqs.json"),
        serde_json::to_vec(&rows)?,
    )?;
    Ok(Some(Measured::by_this_process(
        table.height() as u64,
        seconds,
    )))
}

/// The team × month rows of the job's table.
fn team_months(table: &DataFrame) -> anyhow::Result<Vec<TeamMonth>> {
    let frame = table
        .clone()
        .lazy()
        .filter(
            col("scope")
                .eq(lit("team"))
                .and(col("period").eq(lit("month"))),
        )
        .collect()?;
    let text = |name: &str| -> anyhow::Result<Vec<String>> {
        Ok(frame
            .column(name)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or_default().to_owned())
            .collect())
    };
    let int = |name: &str| -> anyhow::Result<Vec<i64>> {
        let values = frame.column(name)?.i64()?;
        values
            .iter()
            .map(|v| v.with_context(|| format!("{name} is null")))
            .collect()
    };
    let float = |name: &str| -> anyhow::Result<Vec<Option<f64>>> {
        Ok(frame.column(name)?.f64()?.iter().collect())
    };
    // Money is Decimal(38, 2): its integers are fen.
    let fen = |name: &str| -> anyhow::Result<Vec<Option<i64>>> {
        frame
            .column(name)?
            .decimal()?
            .physical()
            .iter()
            .map(|v| v.map(i64::try_from).transpose().map_err(Into::into))
            .collect()
    };
    let team = text("scope_id")?;
    let month: Vec<NaiveDate> = frame
        .column("period_start")?
        .date()?
        .physical()
        .iter()
        .map(|d| d.map(from_day_number).context("period_start is null"))
        .collect::<anyhow::Result<_>>()?;
    let (visits, consultations, consulted, sales, assigned) = (
        int("visits")?,
        int("consultations")?,
        int("customers_consulted")?,
        int("sales")?,
        int("assigned_outlets")?,
    );
    let (premium, target) = (fen("premium")?, fen("premium_target")?);
    let (close, attainment, activity) = (
        float("close_rate")?,
        float("premium_attainment")?,
        float("outlet_activity_rate")?,
    );
    let mut rows = Vec::with_capacity(frame.height());
    for i in 0..frame.height() {
        rows.push(TeamMonth {
            team_id: team[i].clone(),
            month: month[i],
            visits: visits[i],
            consultations: consultations[i],
            customers_consulted: consulted[i],
            sales: sales[i],
            net_premium_fen: premium[i].context("premium is null")?,
            premium_target_fen: target[i],
            assigned_outlets: assigned[i],
            close_rate: close[i],
            premium_attainment: attainment[i],
            outlet_activity_rate: activity[i],
        });
    }
    Ok(rows)
}

/// A fresh database (dropped if there, then migrated with the project's migrations) holding
/// the ledger tables the queries read, copied whole from the embedded store, tombstones and
/// versions included, and merged. Returns the rows copied and the seconds it took.
fn load_clickhouse(config: &ClickHouseConfig, ledgers: &Path) -> anyhow::Result<(u64, f64)> {
    let client = BlockingClient::new(config)?;
    let server = config.server_client()?;
    client
        .run(
            server
                .query(&format!("DROP DATABASE IF EXISTS {}", config.database))
                .execute(),
        )
        .with_context(|| format!("dropping the database {}", config.database))?;
    client
        .run(aqs_warehouse::migrate(config))
        .with_context(|| format!("migrating the database {}", config.database))?;
    let sqlite = aqs_tables::ledgers::sqlite::open_read_only(ledgers)?;
    let started = Instant::now();
    let mut rows = copy::<AgentDayRow>(&client, &sqlite)?;
    rows += copy::<AgentOutletDayRow>(&client, &sqlite)?;
    rows += copy::<RosterRow>(&client, &sqlite)?;
    rows += copy::<AssignmentRow>(&client, &sqlite)?;
    rows += copy::<TargetRow>(&client, &sqlite)?;
    // Settled parts, as a warehouse that has been running a while has them.
    for table in TABLES {
        client
            .run(
                client
                    .client()
                    .query(&format!("OPTIMIZE TABLE {table} FINAL"))
                    .execute(),
            )
            .with_context(|| format!("merging {table}"))?;
    }
    Ok((rows, started.elapsed().as_secs_f64()))
}

/// Copies a table of the embedded store whole, tombstones and versions included, into the
/// ClickHouse table of the same name, in one insert.
fn copy<T: LedgerRow>(client: &BlockingClient, sqlite: &Connection) -> anyhow::Result<u64> {
    let mut statement = sqlite.prepare(&aqs_tables::ledgers::sqlite::every_row_query::<T>())?;
    let mut rows = statement.query([])?;
    let count = client
        .run(async {
            let mut insert = client.client().insert::<T>(T::TABLE).await?;
            let mut count = 0_u64;
            while let Some(r) = rows.next()? {
                insert.write(&T::from_sqlite(r)?).await?;
                count += 1;
            }
            insert.end().await?;
            anyhow::Ok(count)
        })
        .with_context(|| format!("copying {} to ClickHouse", T::TABLE))?;
    Ok(count)
}

/// What ClickHouse answers in `FORMAT JSON`.
#[derive(Deserialize)]
struct JsonAnswer {
    data: Vec<TeamMonth>,
}

/// Runs the query `runs` times: the rows, the best server-side duration (`system.query_log`),
/// the best wall time seen by the client (sending to last byte parsed) and the server's
/// version.
///
/// Not the `statistics.elapsed` of the JSON answer: on ClickHouse 18.16 it leaves out building
/// the sets of the query's JOINs and INs, about 40 % of this query's time.
fn query_clickhouse(
    config: &ClickHouseConfig,
    window: &Window,
    runs: usize,
) -> anyhow::Result<(Engine, f64, String)> {
    let client = BlockingClient::new(config)?;
    let sql = window.fill(CLICKHOUSE_SQL);
    // The client reads `?` as a bound value.
    anyhow::ensure!(
        !sql.contains('?'),
        "the ClickHouse query must not contain '?'"
    );
    let version: String = client.run(client.client().query("SELECT version()").fetch_one())?;
    let mut best_wall = f64::INFINITY;
    let mut rows = Vec::new();
    let mut query_ids = Vec::new();
    for run in 0..runs {
        let query_id = format!(
            "aqs-bench-compare-{}-{}-{run}",
            config.database,
            std::process::id()
        );
        let started = Instant::now();
        let bytes = client
            .run(async {
                client
                    .client()
                    .query(&sql)
                    .with_setting("query_id", query_id.as_str())
                    .with_setting("log_queries", "1")
                    .with_setting("output_format_json_quote_64bit_integers", "0")
                    .fetch_bytes("JSON")?
                    .collect()
                    .await
            })
            .context("running the team × month query on ClickHouse")?;
        let answer: JsonAnswer =
            serde_json::from_slice(&bytes).context("reading ClickHouse's JSON answer")?;
        best_wall = best_wall.min(started.elapsed().as_secs_f64());
        rows = answer.data;
        query_ids.push(query_id);
    }
    // The server logs a query's end just after its answer is sent, so the entry may not be
    // queued yet when the flush runs: flush and look again for a few seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    let durations = loop {
        client
            .run(client.client().query("SYSTEM FLUSH LOGS").execute())
            .context("flushing ClickHouse's query log")?;
        // `type` 2 is QueryFinish (an integer on 18.16, an Enum8 later).
        let durations: Vec<u64> = client
            .run(
                client
                    .client()
                    .query(
                        "SELECT query_duration_ms FROM system.query_log \
                         WHERE toUInt8(type) = 2 AND has(?, query_id)",
                    )
                    .bind(&query_ids)
                    .fetch_all(),
            )
            .context("reading the query durations from system.query_log")?;
        if durations.len() == runs || Instant::now() >= deadline {
            break durations;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    anyhow::ensure!(
        durations.len() == runs,
        "system.query_log holds {} of the {runs} runs",
        durations.len()
    );
    let best_server = durations.iter().copied().min().unwrap_or_default() as f64 / 1000.0;
    Ok((
        Engine {
            rows,
            seconds: best_server,
        },
        best_wall,
        format!("ClickHouse {version}"),
    ))
}

/// Writes the tables the queries read to `dir` as Parquet: the seconds it took (reading the
/// embedded store included) and the bytes written.
fn export_parquet(ledgers: &Path, dir: &Path) -> anyhow::Result<(f64, u64)> {
    let started = Instant::now();
    let mut paths: Vec<PathBuf> = Vec::new();
    for table in TABLES {
        let path = dir.join(format!("{table}.parquet"));
        export_ledger_parquet(ledgers, table, &path)?;
        paths.push(path);
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut bytes = 0;
    for path in paths {
        bytes += std::fs::metadata(path)?.len();
    }
    Ok((seconds, bytes))
}

/// What the DuckDB script prints.
#[derive(Deserialize)]
struct DuckAnswer {
    engine: String,
    seconds: Vec<f64>,
    rows: Vec<TeamMonth>,
}

/// Runs the DuckDB script (written next to the Parquet files) with `python3`.
fn query_duckdb(
    out: &Path,
    parquet: &Path,
    window: &Window,
    runs: usize,
) -> anyhow::Result<(Engine, String)> {
    let script = out.join("duckdb_team_month.py");
    let sql = out.join("team_month.duckdb.sql");
    std::fs::write(&script, DUCKDB_SCRIPT)?;
    std::fs::write(&sql, DUCKDB_SQL)?;
    let output = Command::new("python3")
        .arg(&script)
        .arg("--sql")
        .arg(&sql)
        .arg("--parquet-dir")
        .arg(parquet)
        .args(["--first", &window.first.to_string()])
        .args(["--last", &window.last.to_string()])
        .args(["--month-from", &window.month_from.to_string()])
        .args(["--runs", &runs.to_string()])
        .output()
        .context("running python3 (needed for DuckDB)")?;
    anyhow::ensure!(
        output.status.success(),
        "the DuckDB script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: DuckAnswer =
        serde_json::from_slice(&output.stdout).context("reading the DuckDB script's answer")?;
    let seconds = answer.seconds.iter().copied().fold(f64::INFINITY, f64::min);
    Ok((
        Engine {
            rows: answer.rows,
            seconds,
        },
        answer.engine,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(team: &str, month: &str) -> TeamMonth {
        TeamMonth {
            team_id: team.to_owned(),
            month: month.parse().expect("date"),
            visits: 10,
            consultations: 4,
            customers_consulted: 9,
            sales: 2,
            net_premium_fen: 150_000,
            premium_target_fen: Some(300_000),
            assigned_outlets: 5,
            close_rate: Some(2.0 / 9.0),
            premium_attainment: Some(0.5),
            outlet_activity_rate: None,
        }
    }

    #[test]
    fn equal_rows_in_any_order_agree() {
        let a = [row("T1", "2025-12-01"), row("T2", "2025-12-01")];
        let b = [row("T2", "2025-12-01"), row("T1", "2025-12-01")];
        assert!(mismatches(("a", &a), ("b", &b), 10).is_empty());
    }

    #[test]
    fn ratios_agree_within_the_tolerance_and_nulls_only_with_nulls() {
        let a = [row("T1", "2025-12-01")];
        let mut close = row("T1", "2025-12-01");
        close.premium_attainment = Some(0.5 + 1e-12);
        assert!(mismatches(("a", &a), ("b", &[close]), 10).is_empty());
        let mut null = row("T1", "2025-12-01");
        null.close_rate = None;
        let found = mismatches(("a", &a), ("b", &[null]), 10);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("close_rate"), "{found:?}");
    }

    #[test]
    fn differences_and_missing_keys_are_reported() {
        let a = [row("T1", "2025-12-01"), row("T2", "2025-12-01")];
        let mut changed = row("T1", "2025-12-01");
        changed.sales = 3;
        changed.premium_target_fen = None;
        let b = [changed, row("T3", "2025-12-01")];
        let found = mismatches(("aqs", &a), ("DuckDB", &b), 10);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].contains("sales: 2 ≠ 3"), "{found:?}");
        assert!(found[0].contains("premium_target_fen"), "{found:?}");
        assert!(found[1].contains("T2 2025-12-01: only in aqs"), "{found:?}");
        assert!(
            found[2].contains("T3 2025-12-01: only in DuckDB"),
            "{found:?}"
        );
        let limited = mismatches(("aqs", &a), ("DuckDB", &b), 1);
        assert_eq!(limited.len(), 2);
        assert_eq!(limited[1], "… and 2 more");
    }
}
