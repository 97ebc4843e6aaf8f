//! Intake of events from upstream systems: NDJSON files, and the HTTP API that CRMs,
//! work-log apps and core insurance systems publish to.
//!
//! Every path in decodes with [`aqs_schemas::Decoder`], so a file, an HTTP batch and a
//! Kafka record are judged by the same rules.
//!
//! - [`ndjson`]: reading NDJSON files line by line (`aqs validate`, `aqs import`).
//! - [`server`]: the HTTP API (`aqs ingest`): [`server::app`], [`server::serve`].
//! - [`config::IngestConfig`]: its settings; [`auth`]: per-source API tokens.
//! - [`body`], [`admission`]: reading a body within its bounds, and when it may be read.
//! - [`batch`], [`event_limits`] and [`intake`]: cutting a body into events, judging them
//!   within the bounds of one event, appending them.
//! - [`dedup`]: exactly-once appends to Kafka under retries: transactions tied to an index
//!   of the events appended, pruned after a retention ([`dedup::DedupConfig`]).
//! - [`answer`]: what the API answers; [`metrics`], [`readiness`], [`log_health`]: how it
//!   is watched.

pub mod admission;
pub mod answer;
pub mod auth;
pub mod batch;
pub mod body;
pub mod config;
pub mod dedup;
pub mod event_limits;
pub mod intake;
pub mod log_health;
pub mod metrics;
pub mod ndjson;
pub mod readiness;
pub mod server;

pub use config::IngestConfig;
pub use server::{IngestState, app, serve};
