//! Writing KPI and ledger tables as Parquet files.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;
use rusqlite::{Connection, OpenFlags, types::ValueRef};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
    #[error("KPI store in ClickHouse")]
    Connect(#[from] aqs_warehouse::ConnectError),
    #[error("writing the KPIs to ClickHouse: could not {action}")]
    ClickHouse {
        action: &'static str,
        #[source]
        source: aqs_warehouse::clickhouse::error::Error,
    },
    #[error(
        "KPIs as of {as_of}: the rows they replace were not deleted within {seconds} s \
         (a mutation of table kpi is still running; see system.mutations)"
    )]
    MutationTimeout { as_of: NaiveDate, seconds: u64 },
    #[error("KPI column {column}: {problem}")]
    Column {
        column: &'static str,
        problem: String,
    },
}

/// Where the KPI job's table goes.
pub trait KpiSink {
    /// Stores the KPIs computed as of `as_of`, replacing whatever an earlier run for the
    /// same as-of date stored (rows that the new run lacks included).
    fn write(&mut self, kpis: &mut DataFrame, as_of: NaiveDate) -> Result<(), OutputError>;

    /// Where the KPIs go, for messages.
    fn target(&self) -> String;
}

/// The KPIs as one Parquet file, replaced atomically.
#[derive(Debug, Clone)]
pub struct ParquetKpiSink {
    path: PathBuf,
}

impl ParquetKpiSink {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl KpiSink for ParquetKpiSink {
    fn write(&mut self, kpis: &mut DataFrame, _as_of: NaiveDate) -> Result<(), OutputError> {
        write_parquet(kpis, &self.path)
    }

    fn target(&self) -> String {
        self.path.display().to_string()
    }
}

/// Writes `frame` to `path` atomically: readers see the old file or the new one, never half.
pub fn write_parquet(frame: &mut DataFrame, path: &Path) -> Result<(), OutputError> {
    let io = |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let partial = path.with_extension("parquet.partial");
    let file = std::fs::File::create(&partial).map_err(io)?;
    ParquetWriter::new(file)
        .finish(frame)
        .map_err(|source| OutputError::Parquet {
            path: path.to_path_buf(),
            source,
        })?;
    std::fs::rename(&partial, path).map_err(io)?;
    Ok(())
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
