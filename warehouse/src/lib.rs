//! The ClickHouse adapter of aqs.
//!
//! - [`ClickHouseConfig`]: where ClickHouse is and who we are there (flags and `AQS_CLICKHOUSE_*`).
//! - [`migrate`]: the schema, as the numbered SQL files of `deploy/clickhouse/` embedded at
//!   compile time, applied in order and recorded in `schema_migrations`.
//! - [`events`]: the row type of the raw event archive those migrations create (the ledger
//!   and KPI tables are `aqs-tables`').
//! - [`blocking`]: a client with a runtime of its own, for synchronous callers.
//!
//! Everything else that talks to ClickHouse is `async` and needs a Tokio runtime.

pub mod blocking;
pub mod config;
pub mod events;
pub mod migrate;

pub use blocking::{BlockingClient, ConnectError};
pub use clickhouse;
pub use config::{ClickHouseConfig, ConfigError};
pub use migrate::{
    AppliedMigration, Migration, MigrationError, MigrationReport, RecordedMigration, migrate,
    migrate_with,
};
