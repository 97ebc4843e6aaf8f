//! Serving HTTP to clients that may be slow, silent or hostile, for the servers of aqs.
//!
//! - [`connections`]: [`serve`] a router with a cap on open connections, a header timeout,
//!   a keep-alive idle timeout and a graceful shutdown; [`ConnectionStats`] for metrics.
//! - [`host`]: [`AllowedHosts`], the names a server answers to (against DNS rebinding), and
//!   [`HostCheckLayer`], which refuses requests naming another host with 421.
//! - [`exposition`]: the one way metrics are written (Prometheus text, one naming scheme).
//! - [`operations`]: `/metrics`, `/healthz` and `/readyz` of a component that serves
//!   nothing else.
//!
//! What a request may cost once it is in (its body, its work) is for each server to bound.
//! Without the default feature `serve`, only [`host`] and [`exposition`] are built (no web
//! server), for crates that render their metrics but leave serving them to the binary.

#[cfg(feature = "serve")]
pub mod connections;
pub mod exposition;
pub mod host;
#[cfg(feature = "serve")]
pub mod host_check;
#[cfg(feature = "serve")]
pub mod operations;

#[cfg(feature = "serve")]
pub use connections::{Closed, ConnectionLimits, ConnectionStats, serve};
pub use exposition::Exposition;
pub use host::{AllowedHosts, HostsError, misdirected};
#[cfg(feature = "serve")]
pub use host_check::HostCheckLayer;
