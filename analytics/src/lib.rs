//! KPIs of the pipeline: activity, close rate, attainment and pacing, from the ledgers.
//!
//! - [`data`]: the ledger rows read (`aqs_tables::ledgers::window`).
//! - [`kpi`]: the KPI job: tallies in loops, formulas as polars expressions.
//! - [`outlets`]: the outlet table (outlet × month, team and branch summaries).
//! - [`supervisors`]: the supervisor table (supervisor, branch, region × period; agents'
//!   months).
//! - [`periods`]: days, ISO weeks, months, working days.
//! - [`spans`]: distinct counts per period straight from runs of days.

mod cells;
pub mod data;
pub mod kpi;
pub mod outlets;
pub mod periods;
pub mod spans;
pub mod supervisors;
