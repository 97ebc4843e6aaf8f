//! The KPI table in ClickHouse (`kpi`, migrations `0003_kpi.sql`, `0005_wide_money.sql` and
//! `0007_quota_columns.sql`): a run written so that it replaces its as-of date's rows exactly
//! ([`ClickHouseKpiSink`]), and read back ([`read_kpis`]).
//!
//! Synchronous: each value owns a small runtime to drive its client, so none may be used
//! from inside an async context.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aqs_warehouse::{BlockingClient, ClickHouseConfig};
use chrono::NaiveDate;
use polars::prelude::*;
use tracing::info;

use super::columns::{KPI_COLUMNS, KPI_TABLE, KpiColumnType};
use super::rowbinary::{decode_rows, encode_rows};
use super::{KpiSink, KpiTableError};

/// How long a writer waits for the deletion of the rows it replaced.
const MUTATION_TIMEOUT: Duration = Duration::from_secs(300);

/// Writes the KPIs to the table `kpi`. A run for an as-of date replaces that date's rows
/// exactly: its rows go in with a `computed_at` later than any stored for the date, then the
/// older rows of the date are deleted (`ALTER TABLE kpi DELETE`) and the writer waits until
/// the deletion finished. Rows of the date that the new run no longer has are gone with them;
/// readers see the old or the new figures (the newest with `FINAL`), never none.
#[derive(Debug)]
pub struct ClickHouseKpiSink {
    client: BlockingClient,
}

/// Limit of one request of the KPI sink: a server that hangs fails the run (retried at the
/// next one) instead of holding the KPI job, and with it the dashboard's figures, for good.
const KPI_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

impl ClickHouseKpiSink {
    /// Connects to the configured database and checks that the table `kpi` is there.
    pub fn connect(config: &ClickHouseConfig) -> Result<Self, KpiTableError> {
        Ok(Self {
            client: BlockingClient::connect(config, &[KPI_TABLE])?,
        })
    }
}

pub(crate) fn clickhouse_error(
    action: &'static str,
) -> impl FnOnce(aqs_warehouse::clickhouse::error::Error) -> KpiTableError {
    move |source| KpiTableError::ClickHouse { action, source }
}

impl KpiSink for ClickHouseKpiSink {
    fn write(&mut self, kpis: &mut DataFrame, as_of: NaiveDate) -> Result<(), KpiTableError> {
        replace_run(&self.client, KPI_TABLE, &KPI_COLUMNS, kpis, as_of)
    }

    fn target(&self) -> String {
        format!("ClickHouse table {}.{KPI_TABLE}", self.client.database())
    }
}

/// Writes `frame` (the columns of `columns`, in order) as the run of `as_of` of `table`
/// (a table keyed with `as_of` whose last column is `computed_at`, a
/// `ReplacingMergeTree(computed_at)`): its rows go in with a `computed_at` later than any
/// stored for the date, then the older rows of the date are deleted and the deletion waited
/// for, so that the run replaces the date's rows exactly.
pub(crate) fn replace_run(
    client: &BlockingClient,
    table: &'static str,
    columns: &[(&'static str, KpiColumnType)],
    frame: &DataFrame,
    as_of: NaiveDate,
) -> Result<(), KpiTableError> {
    let inner = client.client();
    let previous: u32 = client
        .run_within(
            KPI_REQUEST_TIMEOUT,
            inner
                .query(&format!(
                    "SELECT toUInt32(max(computed_at)) FROM {table} WHERE as_of = toDate(?)"
                ))
                .bind(as_of.to_string())
                .fetch_one(),
        )
        .map_err(clickhouse_error("read the stored computed_at"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    // Strictly later than every stored row of the date, even within the same second.
    let computed_at = u32::try_from(now)
        .unwrap_or(u32::MAX)
        .max(previous.saturating_add(1));
    let bytes = encode_rows(frame, columns, computed_at)?;
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    client
        .run_within(KPI_REQUEST_TIMEOUT, async {
            if bytes.is_empty() {
                // Nothing computed: the deletion below still clears an earlier run.
                return Ok(());
            }
            let mut insert = inner
                .insert_formatted_with(format!(
                    "INSERT INTO {table} ({}, computed_at) FORMAT RowBinary",
                    names.join(", ")
                ))
                .buffered();
            let mut rest = bytes.as_slice();
            while !rest.is_empty() {
                let written = insert.write(rest).await?;
                rest = &rest[written..];
            }
            insert.end().await
        })
        .map_err(clickhouse_error("insert the rows"))?;
    client
        .run_within(
            KPI_REQUEST_TIMEOUT,
            inner
                .query(&format!(
                    "ALTER TABLE {table} DELETE WHERE as_of = toDate('{as_of}') \
                     AND computed_at < toDateTime({computed_at})"
                ))
                .execute(),
        )
        .map_err(clickhouse_error("delete the replaced rows"))?;
    let finished = client
        .wait_for_mutations(table, MUTATION_TIMEOUT)
        .map_err(clickhouse_error(
            "wait for the deletion of the replaced rows",
        ))?;
    if !finished {
        return Err(KpiTableError::MutationTimeout {
            table,
            as_of,
            seconds: MUTATION_TIMEOUT.as_secs(),
        });
    }
    info!(
        rows = frame.height(),
        table,
        %as_of,
        computed_at,
        database = client.database(),
        "run written to clickhouse"
    );
    Ok(())
}

/// The rows of `table` stored for `as_of` (newest with `FINAL`) as a frame of `columns`,
/// sorted by `order`.
pub(crate) fn read_run(
    config: &ClickHouseConfig,
    table: &'static str,
    columns: &[(&'static str, KpiColumnType)],
    order: &str,
    as_of: NaiveDate,
) -> Result<DataFrame, KpiTableError> {
    let client = BlockingClient::connect(config, &[table])?;
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let sql = format!(
        "SELECT {} FROM {table} FINAL WHERE as_of = toDate(?) ORDER BY {order}",
        names.join(", ")
    );
    let bytes = client
        .run(async {
            client
                .client()
                .query(&sql)
                .bind(as_of.to_string())
                .fetch_bytes("RowBinary")?
                .collect()
                .await
        })
        .map_err(clickhouse_error("read the rows"))?;
    decode_rows(&bytes, columns, false)
}

/// The KPI rows stored for `as_of` (newest with `FINAL`), as the job's output frame: the
/// same columns, types and order (sorted by scope, scope id, period and period start).
pub fn read_kpis(config: &ClickHouseConfig, as_of: NaiveDate) -> Result<DataFrame, KpiTableError> {
    read_run(
        config,
        KPI_TABLE,
        &KPI_COLUMNS,
        "scope, scope_id, period, period_start",
        as_of,
    )
}

/// The tables the dashboard reads in ClickHouse: the KPIs and the organisation beside them.
pub fn dashboard_tables() -> [&'static str; 4] {
    use crate::ledgers::{LedgerRow, PlanRow, RosterRow, TeamRow};
    [KPI_TABLE, TeamRow::TABLE, RosterRow::TABLE, PlanRow::TABLE]
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct RunEntry {
    as_of: u32,
    computed_at: u32,
}

/// Days since 1970-01-01 (ClickHouse's `Date`) as a date.
fn epoch_day(days: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_days(chrono::Days::new(u64::from(days))))
}

/// A run of the KPI job: its as-of date and when it was written (the newest `computed_at` of
/// its rows, Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KpiRun {
    pub as_of: NaiveDate,
    pub computed_at: u32,
}

/// The newest run the table holds.
pub fn newest_run(
    client: &BlockingClient,
) -> Result<Option<KpiRun>, aqs_warehouse::clickhouse::error::Error> {
    let newest: Vec<RunEntry> = client.run(
        client
            .client()
            .query(&format!(
                "SELECT toUInt32(as_of) AS as_of, toUInt32(max(computed_at)) AS computed_at \
                 FROM {KPI_TABLE} GROUP BY as_of ORDER BY as_of DESC LIMIT 1"
            ))
            .fetch_all(),
    )?;
    Ok(newest.first().and_then(|run| {
        Some(KpiRun {
            as_of: epoch_day(run.as_of)?,
            computed_at: run.computed_at,
        })
    }))
}

/// When the run as of `as_of` was written; `None` when the table holds no such run.
pub fn run_written_at(
    client: &BlockingClient,
    as_of: NaiveDate,
) -> Result<Option<u32>, aqs_warehouse::clickhouse::error::Error> {
    written_at(client, KPI_TABLE, as_of)
}

/// When the run of `table` as of `as_of` was written (its newest `computed_at`).
pub(crate) fn written_at(
    client: &BlockingClient,
    table: &str,
    as_of: NaiveDate,
) -> Result<Option<u32>, aqs_warehouse::clickhouse::error::Error> {
    // An alias unlike the column: in ClickHouse an alias would replace its column in WHERE.
    let computed: Vec<u32> = client.run(
        client
            .client()
            .query(&format!(
                "SELECT toUInt32(max(computed_at)) AS newest_computed FROM {table} \
                 WHERE as_of = toDate(?)"
            ))
            .bind(as_of.to_string())
            .fetch_all(),
    )?;
    Ok(computed.first().copied().filter(|at| *at > 0))
}

/// A month row of a team, branch or region in one run: what a run holds, for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMonthRow {
    pub run: KpiRun,
    pub month_start: NaiveDate,
    pub scope: String,
    pub scope_id: String,
    pub team_id: Option<String>,
    pub branch_id: Option<String>,
    pub region_id: Option<String>,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct MonthEntry {
    as_of: u32,
    computed_at: u32,
    start_text: String,
    scope: String,
    scope_id: String,
    team_id: Option<String>,
    branch_id: Option<String>,
    region_id: Option<String>,
}

/// The month rows of teams, branches and regions of every run the table holds, each with
/// its run (the run's `computed_at` is that of its newest row among these).
pub fn month_rows_of_runs(
    client: &BlockingClient,
) -> Result<Vec<RunMonthRow>, aqs_warehouse::clickhouse::error::Error> {
    let entries: Vec<MonthEntry> = client.run(
        client
            .client()
            .query(&format!(
                "SELECT toUInt32(as_of) AS as_of, toUInt32(max(computed_at)) AS computed_at, \
                 toString(period_start) AS start_text, scope, scope_id, team_id, branch_id, \
                 region_id FROM {KPI_TABLE} WHERE period = 'month' AND scope != 'agent' \
                 GROUP BY as_of, period_start, scope, scope_id, team_id, branch_id, region_id"
            ))
            .fetch_all(),
    )?;
    let mut newest: std::collections::BTreeMap<u32, u32> = std::collections::BTreeMap::new();
    for entry in &entries {
        let at = newest.entry(entry.as_of).or_default();
        *at = (*at).max(entry.computed_at);
    }
    Ok(entries
        .into_iter()
        .filter_map(|entry| {
            Some(RunMonthRow {
                run: KpiRun {
                    as_of: epoch_day(entry.as_of)?,
                    computed_at: newest.get(&entry.as_of).copied().unwrap_or_default(),
                },
                month_start: entry.start_text.parse().ok()?,
                scope: entry.scope,
                scope_id: entry.scope_id,
                team_id: entry.team_id,
                branch_id: entry.branch_id,
                region_id: entry.region_id,
            })
        })
        .collect())
}

/// The columns (name, type) a migration's `CREATE TABLE IF NOT EXISTS <table>` declares, in
/// order: what the migration tests compare with a column list.
#[cfg(test)]
pub(crate) fn created_columns(sql: &str, table: &str) -> Vec<(String, String)> {
    let body = sql
        .split(&format!("CREATE TABLE IF NOT EXISTS {table}"))
        .nth(1)
        .and_then(|rest| rest.split("ENGINE").next())
        .unwrap_or_else(|| panic!("the {table} table"));
    body.lines()
        .map(|line| line.trim().trim_end_matches(','))
        .filter(|line| !line.is_empty() && *line != "(" && *line != ")")
        .map(|line| {
            let (name, kind) = line.split_once(' ').expect("name type");
            (name.to_owned(), kind.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpi::MONEY_PRECISION;

    #[test]
    fn the_migrations_declare_every_column_with_its_type() {
        let sql = include_str!("../../../deploy/clickhouse/0003_kpi.sql");
        let mut declared = created_columns(sql, "kpi");
        // Later migrations change column types with `ALTER TABLE kpi MODIFY COLUMN` and add
        // columns with `ALTER TABLE kpi ADD COLUMN name type AFTER column`.
        for later in [
            include_str!("../../../deploy/clickhouse/0005_wide_money.sql"),
            include_str!("../../../deploy/clickhouse/0007_quota_columns.sql"),
        ] {
            for statement in later
                .lines()
                .filter(|line| line.starts_with("ALTER TABLE kpi "))
            {
                // Changes are separated by ", " before the next keyword (types hold ", " too).
                let statement = statement
                    .trim_start_matches("ALTER TABLE kpi ")
                    .trim_end_matches(';')
                    .replace(", MODIFY COLUMN ", "\nMODIFY COLUMN ")
                    .replace(", ADD COLUMN ", "\nADD COLUMN ");
                for change in statement.lines() {
                    if let Some(change) = change.strip_prefix("MODIFY COLUMN ") {
                        let (name, kind) = change.split_once(' ').expect("name type");
                        let column = declared
                            .iter_mut()
                            .find(|(declared, _)| declared == name)
                            .expect("a declared column");
                        column.1 = kind.to_owned();
                    } else if let Some(change) = change.strip_prefix("ADD COLUMN ") {
                        let (column, after) = change.split_once(" AFTER ").expect("AFTER");
                        let (name, kind) = column.split_once(' ').expect("name type");
                        let at = declared
                            .iter()
                            .position(|(declared, _)| declared == after)
                            .expect("the column it follows");
                        declared.insert(at + 1, (name.to_owned(), kind.to_owned()));
                    } else {
                        panic!("an unexpected change of kpi: {change}");
                    }
                }
            }
        }
        let mut expected: Vec<(String, String)> = KPI_COLUMNS
            .iter()
            .map(|(name, kind)| ((*name).to_owned(), kind.clickhouse().to_owned()))
            .collect();
        expected.push(("computed_at".to_owned(), "DateTime".to_owned()));
        assert_eq!(declared, expected);
    }

    #[test]
    fn rows_survive_encoding_and_decoding() {
        let mut columns = Vec::new();
        for (name, kind) in KPI_COLUMNS {
            let column = match kind {
                KpiColumnType::Text => Column::new(name.into(), ["agent", "团队-二组"]),
                KpiColumnType::OptionalText => Column::new(name.into(), [Some("T1"), None]),
                KpiColumnType::Date | KpiColumnType::OptionalDate => {
                    Column::new(name.into(), [20_409_i32, 0])
                        .cast(&DataType::Date)
                        .expect("date")
                }
                KpiColumnType::Int => Column::new(name.into(), [i64::MIN, 42]),
                KpiColumnType::OptionalInt => Column::new(name.into(), [None, Some(-7_i64)]),
                KpiColumnType::Money | KpiColumnType::OptionalMoney => {
                    let values: Int128Chunked = [
                        Some(123_456_i128),
                        (kind == KpiColumnType::Money).then_some(-1),
                    ]
                    .into_iter()
                    .collect();
                    values
                        .into_decimal(MONEY_PRECISION, 2)
                        .expect("decimal")
                        .into_series()
                        .with_name(name.into())
                        .into_column()
                }
                KpiColumnType::OptionalFloat => Column::new(name.into(), [Some(1.0 / 3.0), None]),
                KpiColumnType::OptionalFlag => Column::new(name.into(), [Some(true), None]),
            };
            columns.push(column);
        }
        let frame = DataFrame::new(2, columns).expect("frame");
        let bytes = encode_rows(&frame, &KPI_COLUMNS, 1_700_000_000).expect("encode");
        let back = decode_rows(&bytes, &KPI_COLUMNS, true).expect("decode");
        assert!(back.equals_missing(&frame), "{back}\n{frame}");
    }

    #[test]
    fn a_null_in_a_required_column_is_an_error() {
        let mut columns = Vec::new();
        for (name, kind) in KPI_COLUMNS {
            let column = Column::full_null(name.into(), 1, &kind.polars());
            columns.push(column);
        }
        let frame = DataFrame::new(1, columns).expect("frame");
        let error = encode_rows(&frame, &KPI_COLUMNS, 0).expect_err("scope is required");
        assert!(error.to_string().contains("scope"), "{error}");
    }
}
