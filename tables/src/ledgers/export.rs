//! The ledger tables of the embedded store as Parquet files, for analysts (`aqs run`) and
//! for loading elsewhere (the benchmarks).

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;
use rusqlite::{Connection, OpenFlags, types::ValueRef};

use crate::kpi::write_parquet;
use crate::ledgers::{
    AgentDayRow, AgentOutletDayRow, AssignmentRow, LedgerRow, PendingCancellationRow, PlanRow,
    RosterRow, TargetRow, TeamDayRow,
};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("encoding {path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
    #[error("reading the ledger table {table}: {source}")]
    Sqlite {
        table: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(transparent)]
    File(#[from] crate::kpi::KpiTableError),
    #[error("KPI column {column}: {problem}")]
    Column {
        column: &'static str,
        problem: String,
    },
}

/// Reads the rows of a table (or view) of the embedded ledger store that pass `filter` (a
/// table's `LIVE`, or `"1"` for every row), every column.
pub fn ledger_table(ledgers: &Path, table: &str, filter: &str) -> Result<DataFrame, ExportError> {
    let wrap = |source| ExportError::Sqlite {
        table: table.to_owned(),
        source,
    };
    let connection =
        Connection::open_with_flags(ledgers, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(wrap)?;
    let mut statement = connection
        .prepare(&format!("SELECT * FROM {table} WHERE {filter}"))
        .map_err(wrap)?;
    let names: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut texts: Vec<Vec<Option<String>>> = vec![Vec::new(); names.len()];
    let mut ints: Vec<Vec<Option<i64>>> = vec![Vec::new(); names.len()];
    let mut is_text = vec![false; names.len()];
    let mut rows = statement.query([]).map_err(wrap)?;
    while let Some(row) = rows.next().map_err(wrap)? {
        for i in 0..names.len() {
            match row.get_ref(i).map_err(wrap)? {
                ValueRef::Integer(v) => {
                    ints[i].push(Some(v));
                    texts[i].push(Some(v.to_string()));
                }
                ValueRef::Text(t) => {
                    is_text[i] = true;
                    ints[i].push(None);
                    texts[i].push(Some(String::from_utf8_lossy(t).into_owned()));
                }
                _ => {
                    ints[i].push(None);
                    texts[i].push(None);
                }
            }
        }
    }
    let height = texts.first().map_or(0, Vec::len);
    let columns = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if is_text[i] {
                Column::new(name.as_str().into(), std::mem::take(&mut texts[i]))
            } else {
                Column::new(name.as_str().into(), std::mem::take(&mut ints[i]))
            }
        })
        .collect();
    DataFrame::new(height, columns).map_err(|source| ExportError::Parquet {
        path: ledgers.to_path_buf(),
        source,
    })
}

/// The ledger tables written next to the KPIs for analysts, with their live-row filters.
pub const LEDGER_EXPORTS: [(&str, &str); 8] = [
    (AgentOutletDayRow::TABLE, AgentOutletDayRow::LIVE),
    (AgentDayRow::TABLE, AgentDayRow::LIVE),
    (TeamDayRow::TABLE, TeamDayRow::LIVE),
    (PlanRow::TABLE, PlanRow::LIVE),
    (TargetRow::TABLE, TargetRow::LIVE),
    (RosterRow::TABLE, RosterRow::LIVE),
    (AssignmentRow::TABLE, AssignmentRow::LIVE),
    (PendingCancellationRow::TABLE, PendingCancellationRow::LIVE),
];

/// Columns of the embedded store that hold a date as text ('YYYY-MM-DD'; `month` is 'YYYY-MM').
const DATE_COLUMNS: [&str; 6] = [
    "business_date",
    "period_start",
    "period_end",
    "valid_from",
    "valid_to",
    "month",
];

/// Writes a ledger table of the embedded store whole to a Parquet file, tombstones and
/// versions included (the reader picks the live rows of the newest versions, as with
/// ClickHouse), with its text dates as Parquet dates and `month` as the month's first day:
/// the same columns and types as the table in ClickHouse. Returns the number of rows.
pub fn export_ledger_parquet(
    ledgers: &Path,
    table: &str,
    path: &Path,
) -> Result<usize, ExportError> {
    let mut frame = ledger_table(ledgers, table, "1")?;
    let malformed = |column: &'static str, problem: String| ExportError::Column { column, problem };
    for name in DATE_COLUMNS {
        let Ok(column) = frame.column(name) else {
            continue;
        };
        let days: Vec<Option<i32>> = match column.dtype() {
            DataType::String => column
                .str()
                .map_err(|e| malformed(name, e.to_string()))?
                .iter()
                .map(|text| text.map(|t| text_date(t).map(day_number)).transpose())
                .collect::<Result<_, _>>()
                .map_err(|text| malformed(name, format!("not a date: {text:?}")))?,
            // A column without a single value (e.g. no interval ever closed) came out as
            // integers: all null.
            _ => vec![None; column.len()],
        };
        let dates = Column::new(name.into(), days)
            .cast(&DataType::Date)
            .map_err(|source| ExportError::Parquet {
                path: path.to_path_buf(),
                source,
            })?;
        frame
            .with_column(dates)
            .map_err(|source| ExportError::Parquet {
                path: path.to_path_buf(),
                source,
            })?;
    }
    write_parquet(&mut frame, path)?;
    Ok(frame.height())
}

/// Days since 1970-01-01: a polars date.
fn day_number(date: NaiveDate) -> i32 {
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

/// 'YYYY-MM-DD', or 'YYYY-MM' as the month's first day.
fn text_date(text: &str) -> Result<NaiveDate, String> {
    text.parse()
        .or_else(|_| format!("{text}-01").parse())
        .map_err(|_| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_tables_export_with_their_dates_as_dates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledgers = dir.path().join("ledgers.db");
        let connection = Connection::open(&ledgers).expect("open");
        connection
            .execute_batch(
                "CREATE TABLE roster (agent_id TEXT, valid_from TEXT, team_id TEXT, valid_to TEXT,
                     deleted INTEGER, ver INTEGER);
                 INSERT INTO roster VALUES ('A1', '2025-12-01', 'T1', NULL, 0, 7),
                                           ('A2', '2025-12-03', 'T1', NULL, 1, 9);
                 CREATE TABLE targets (scope TEXT, scope_id TEXT, month TEXT, premium_fen INTEGER,
                     deleted INTEGER, ver INTEGER);
                 INSERT INTO targets VALUES ('team', 'T1', '2026-02', NULL, 0, 3);",
            )
            .expect("schema");
        drop(connection);

        let path = dir.path().join("roster.parquet");
        assert_eq!(
            export_ledger_parquet(&ledgers, "roster", &path).expect("export"),
            2
        );
        let frame = ParquetReader::new(std::fs::File::open(&path).expect("file"))
            .finish()
            .expect("read");
        let from = frame.column("valid_from").expect("valid_from");
        assert_eq!(from.dtype(), &DataType::Date);
        assert_eq!(
            from.date().expect("dates").physical().get(1),
            Some(day_number("2025-12-03".parse().expect("date")))
        );
        // Never closed: a column of null dates, not of integers.
        let to = frame.column("valid_to").expect("valid_to");
        assert_eq!(to.dtype(), &DataType::Date);
        assert_eq!(to.null_count(), 2);
        // Tombstones and versions stay.
        assert_eq!(
            frame
                .column("deleted")
                .expect("deleted")
                .i64()
                .expect("ints")
                .get(1),
            Some(1)
        );

        let path = dir.path().join("targets.parquet");
        export_ledger_parquet(&ledgers, "targets", &path).expect("export");
        let frame = ParquetReader::new(std::fs::File::open(&path).expect("file"))
            .finish()
            .expect("read");
        assert_eq!(
            frame
                .column("month")
                .expect("month")
                .date()
                .expect("dates")
                .physical()
                .get(0),
            Some(day_number("2026-02-01".parse().expect("date")))
        );
    }
}
