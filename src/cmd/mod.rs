//! One module per subcommand: argument parsing and wiring only; the work lives in the crates.

pub mod analytics;
pub mod calendar;
pub mod common;
pub mod dashboard;
pub mod digest;
pub mod env_vars;
pub mod generate;
pub mod import;
pub mod ingest;
pub mod migrate;
pub mod outlets;
pub mod projector;
pub mod run;
pub mod schema;
pub mod supervisors;
pub mod up;
pub mod user;
pub mod validate;
