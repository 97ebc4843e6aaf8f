//! Projection of the event log into ledgers, with exactly-once effects.
//!
//! - [`ledger`]: the pure fold, events to ledger tables, order-independent and idempotent.
//! - [`runner`]: the loop that reads the log, folds, publishes and checkpoints.
//! - [`checkpoint`]: ledger state and positions, committed together.
//! - [`record_store`]: the checkpoint's key-value store, where the fold's event records go
//!   once a checkpoint holds them.
//! - [`sink`]: idempotent, versioned stores of ledger rows, each written by a thread of its
//!   own that retries and merges while its store is away.
//! - [`quarantine`]: events a store cannot hold, set aside at fold time.
//! - [`health`]: whether the stores take writes and the runner reads (readiness, metrics).

pub mod checkpoint;
pub mod health;
pub mod ledger;
pub mod metrics;
pub mod quarantine;
pub mod record_store;
pub mod runner;
pub mod sink;
