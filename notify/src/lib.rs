//! Morning and weekly digests and alerts, from the KPI table, sent to the group robots of
//! WeCom (企业微信) and DingTalk (钉钉) or to any JSON webhook, on a schedule in the
//! organisation's time zone, each message at most once per destination, scope and period.
//!
//! - [`digest`] and [`alerts`]: the messages of a KPI run (pure);
//! - [`destination`]: the webhooks, their formats and whom they follow;
//! - [`schedule`]: when messages are due, and sending them with retries, recorded in the
//!   delivery log (`aqs_tables::deliveries`) so a restart neither repeats nor loses one.

pub mod alerts;
pub mod config;
pub mod destination;
pub mod digest;
pub mod message;
pub mod metrics;
pub mod run;
pub mod schedule;
pub mod send;

pub use alerts::AlertRules;
pub use config::NotifyConfig;
pub use destination::{Destination, Format, read_destinations};
pub use message::{Kind, Language, Message};
pub use metrics::NotifyMetrics;
pub use run::Run;
pub use schedule::{Clock, Notifier, Occasion, RunSource, ScaledClock, SystemClock, messages};
pub use send::{HttpTransport, Transport};
