//! Writing the ledger tables as Parquet files for analysts.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;
use rusqlite::{Connection, OpenFlags, types::ValueRef};

use aqs_tables::kpi::write_parquet;

use crate::periods::day_number;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
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
    File(#[from] aqs_tables::kpi::KpiTableError),
    #[error("KPI column {column}: {problem}")]
    Column {
        column: &'static str,
        problem: String,
    },
}

/// Reads a table (or view) of the embedded ledger store whole, live rows only.
pub fn ledger_table(ledgers: &Path, table: &str, filter: &str) -> Result<DataFrame, OutputError> {
    let wrap = |source| OutputError::Sqlite {
        table: table.to_owned(),
        source,
    };
    let connection =
        Connection::open_with_flags(ledgers, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(wrap)?;
    let mut statement = connection
        .prepare(&format!("SELECT * FROM {table} {filter}"))
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
    DataFrame::new(height, columns).map_err(|source| OutputError::Parquet {
        path: ledgers.to_path_buf(),
        source,
    })
}

/// The ledger tables written next to the KPIs for analysts, with their live-row filters.
pub const LEDGER_EXPORTS: [(&str, &str); 8] = [
    (
        "ledger_agent_outlet_day",
        "WHERE NOT (visits = 0 AND consultations = 0 AND sales = 0 AND cancellations = 0 AND customers_consulted = 0 AND premium_fen = 0 AND refunds_fen = 0)",
    ),
    (
        "ledger_agent_day",
        "WHERE NOT (visits = 0 AND consultations = 0 AND sales = 0 AND cancellations = 0 AND customers_consulted = 0 AND premium_fen = 0 AND refunds_fen = 0)",
    ),
    ("ledger_team_day", ""),
    ("plans", "WHERE deleted = 0"),
    ("targets", "WHERE deleted = 0"),
    ("roster", "WHERE deleted = 0"),
    ("assignments", "WHERE deleted = 0"),
    ("pending_cancellations", "WHERE deleted = 0"),
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
) -> Result<usize, OutputError> {
    let mut frame = ledger_table(ledgers, table, "")?;
    let malformed = |column: &'static str, problem: String| OutputError::Column { column, problem };
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
            .map_err(|source| OutputError::Parquet {
                path: path.to_path_buf(),
                source,
            })?;
        frame
            .with_column(dates)
            .map_err(|source| OutputError::Parquet {
                path: path.to_path_buf(),
                source,
            })?;
    }
    write_parquet(&mut frame, path)?;
    Ok(frame.height())
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
