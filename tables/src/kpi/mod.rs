//! The KPI table: its columns and types ([`columns`]), one run per as-of date, written and
//! read as a Parquet file of the data folder ([`parquet`]) or in the ClickHouse table `kpi`
//! ([`clickhouse`]).

pub mod clickhouse;
pub mod columns;
pub mod parquet;
pub(crate) mod rowbinary;
pub mod rows;

use std::path::PathBuf;

use chrono::NaiveDate;
use polars::prelude::{DataFrame, PolarsError};

pub use self::clickhouse::{ClickHouseKpiSink, read_kpis};
pub use columns::{KPI_COLUMNS, KPI_TABLE, KpiColumnType, MONEY_PRECISION};
pub use parquet::{ParquetKpiSink, write_parquet};
pub use rows::KpiRow;

#[derive(Debug, thiserror::Error)]
pub enum KpiTableError {
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("encoding {path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: PolarsError,
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
        "{table} as of {as_of}: the rows it replaces were not deleted within {seconds} s \
         (a mutation of table {table} is still running; see system.mutations)"
    )]
    MutationTimeout {
        table: &'static str,
        as_of: NaiveDate,
        seconds: u64,
    },
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
    fn write(&mut self, kpis: &mut DataFrame, as_of: NaiveDate) -> Result<(), KpiTableError>;

    /// Where the KPIs go, for messages.
    fn target(&self) -> String;
}
