//! The tables and files the services of aqs share, and nothing else: what they are called,
//! their columns and keys, which rows are live, and how each engine writes and reads them.
//!
//! - [`layout`]: the data folder of the embedded stores ([`DataDir`]) and its KPI files
//!   ([`KpiFiles`]: one per as-of date, and which is newest).
//! - [`ledgers`]: the ledger tables the projector writes and the KPI job and the dashboard
//!   read, as row types (column for column), with their keys and the live-row predicate.
//! - [`kpi`]: the KPI table: its columns with their types, one run per as-of date, as a
//!   Parquet file or in ClickHouse.
//! - [`outlets`]: the outlet table (outlet × month, team and branch summaries) and what the
//!   outlet job reads for it.
//! - [`supervisors`]: the supervisor table (supervisor, branch and region × period, and
//!   what each agent received) and what the supervisor job reads for it.
//! - [`deliveries`]: the digests and alerts already delivered, by idempotency key.
//! - [`organisation`]: what the dashboard shows beside the KPIs (teams, roster, plans, names).
//!
//! Every other crate goes through these types: no other crate names a ledger table or
//! spells its columns.

pub mod deliveries;
pub mod kpi;
pub mod layout;
pub mod ledgers;
pub mod organisation;
pub mod outlets;
pub mod supervisors;

pub use layout::{DataDir, KpiFiles, OutletFiles, SupervisorFiles};
