//! Intake of events from upstream systems: NDJSON files, and the HTTP API that CRMs,
//! work-log apps and core insurance systems publish to.
//!
//! Every path in decodes with [`aqs_schemas::Decoder`], so a file, an HTTP batch and a
//! Kafka record are judged by the same rules.
//!
//! - [`ndjson`]: reading NDJSON files line by line (`aqs validate`, `aqs import`).
//! - [`server`]: the HTTP API (`aqs ingest`): [`server::app`], [`server::serve`].
//! - [`config::IngestConfig`]: its settings; [`auth`]: per-source API tokens.
//! - [`batch`] and [`intake`]: cutting a body into events, judging them, appending them.
//! - [`dedup`]: exactly-once appends to Kafka under retries: transactions tied to an index
//!   of the events appended, pruned after a retention ([`dedup::DedupConfig`]).
//! - [`answer`]: what the API answers; [`metrics`], [`readiness`]: how it is watched.

pub mod answer;
pub mod auth;
pub mod batch;
pub mod config;
pub mod dedup;
pub mod intake;
pub mod metrics;
pub mod ndjson;
pub mod readiness;
pub mod server;

pub use config::IngestConfig;
pub use server::{IngestState, app, serve};
