//! Intake of events from upstream systems: line-oriented files now, the HTTP API next.
//!
//! Every path in decodes with [`aqs_schemas::Decoder`], so a file, an HTTP batch and a
//! Kafka record are judged by the same rules.

pub mod ndjson;
