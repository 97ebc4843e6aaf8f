//! The ClickHouse adapter of aqs.
//!
//! - [`ClickHouseConfig`]: where ClickHouse is and who we are there (flags and `AQS_CLICKHOUSE_*`).
//! - [`migrate`]: the schema, as the numbered SQL files of `deploy/clickhouse/` embedded at
//!   compile time, applied in order and recorded in `schema_migrations`.
//! - [`events`]: row types of the tables those migrations create.
//!
//! Everything that talks to ClickHouse is `async` and needs a Tokio runtime.

pub mod config;
pub mod events;
pub mod migrate;

pub use config::{ClickHouseConfig, ConfigError};
pub use migrate::{
    AppliedMigration, Migration, MigrationError, MigrationReport, RecordedMigration, migrate,
    migrate_with,
};
