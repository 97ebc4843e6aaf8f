//! The ledger rows the KPI job reads and the stores they come from: the window types and
//! readers of `aqs_tables::ledgers::window`, named here as the job names them.

pub use aqs_tables::ledgers::window::*;
