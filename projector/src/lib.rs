//! Projection of the event log into ledgers.
//!
//! - [`ledger`]: the pure fold, events to ledger tables, order-independent and idempotent.

pub mod ledger;
