//! KPIs of the pipeline: activity, close rate, attainment and pacing, from the ledgers.
//!
//! - [`data`]: the ledger rows read, and the embedded store they come from.
//! - [`kpi`]: the KPI job: tallies in loops, formulas as polars expressions.
//! - [`output`]: Parquet files of KPIs and ledgers.
//! - [`periods`]: days, ISO weeks, months, working days.
//! - [`spans`]: distinct counts per period straight from runs of days.
//! - [`warehouse`]: the ledgers read from ClickHouse and the KPIs written there.

pub mod data;
pub mod kpi;
pub mod output;
pub mod periods;
pub mod spans;
pub mod warehouse;
