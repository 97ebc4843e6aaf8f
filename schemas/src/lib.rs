//! The event contract of aqs, shared by every stage of the pipeline.
//!
//! - [`event`]: event schema v1 — the envelope and one payload type per event.
//! - [`Decoder`]: untrusted bytes to a valid [`Event`], or every problem at once.
//! - [`schema`]: the published JSON Schema, generated from the types.
//! - [`partition`]: the partitioning rule.
//! - [`time`], [`dates`], [`decimal`], [`calendar`]: instants and business dates, the date
//!   forms of the wire, exact money, working days.

pub mod calendar;
pub mod dates;
pub mod decimal;
mod decode;
pub mod error;
pub mod event;
mod json_tree;
mod known_fields;
mod objects;
pub mod partition;
pub mod schema;
mod schema_problems;
pub mod supervision;
pub mod time;
pub mod upcast;
mod validate;
mod wire;

#[cfg(feature = "generator")]
pub mod generator;

pub use calendar::WorkingCalendar;
pub use decimal::{Money, Rate};
pub use decode::{Decoder, MAX_PROBLEMS_PER_EVENT};
pub use error::{FieldError, InvalidEvent, Problem};
pub use event::{CURRENT_SCHEMA_VERSION, Event, EventClass, EventType, Payload};
pub use partition::Route;
pub use time::{BusinessClock, OccurredAt, YearMonth};
pub use wire::{CanonicalError, decode_canonical};

#[cfg(test)]
mod decode_tests;
