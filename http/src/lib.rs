//! Serving HTTP to clients that may be slow, silent or hostile, for the servers of aqs.
//!
//! - [`connections`]: [`serve`] a router with a cap on open connections, a header timeout,
//!   a keep-alive idle timeout and a graceful shutdown; [`ConnectionStats`] for metrics.
//! - [`host`]: [`HostCheckLayer`], which refuses requests naming a host the server does not
//!   answer to (DNS rebinding), from an [`AllowedHosts`] list.
//!
//! What a request may cost once it is in (its body, its work) is for each server to bound.

pub mod connections;
pub mod host;

pub use connections::{Closed, ConnectionLimits, ConnectionStats, serve};
pub use host::{AllowedHosts, HostCheckLayer, HostsError};
