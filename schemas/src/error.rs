//! What is wrong with a rejected event: every problem, each naming its field.

use std::fmt;

use serde::Serialize;

/// One problem with one field. `field` is a dotted path from the event's root, e.g.
/// `payload.premium`; the empty string means the event as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    #[serde(flatten)]
    pub problem: Problem,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: Problem) -> Self {
        Self {
            field: field.into(),
            problem,
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "{}: {}", self.field, self.problem)
        }
    }
}

/// The reason a field was refused. `code` is stable for machines; the message is for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Problem {
    #[error("not valid JSON ({detail})")]
    MalformedJson { detail: String },
    #[error("must be a JSON object")]
    NotAnObject,
    #[error("missing")]
    Missing,
    #[error("wrong type: expected {expected}")]
    WrongType { expected: String },
    #[error("unknown field")]
    UnknownField,
    #[error("given more than once: every key of an object must be unique")]
    DuplicateKey,
    #[error("unknown event type {found:?}")]
    UnknownType { found: String },
    #[error("schema version {found} is newer than the newest supported ({newest})")]
    UnsupportedVersion { found: u64, newest: u32 },
    #[error("must not be empty")]
    Empty,
    #[error("{length} characters, longer than the maximum {max}")]
    TooLong { length: usize, max: usize },
    #[error("must not contain control characters or surrounding spaces")]
    BadCharacters,
    #[error("must be one of {allowed}")]
    NotAllowed { allowed: String },
    #[error("{expected}")]
    BadFormat { expected: String },
    #[error("time zone missing: give an offset such as +08:00 or Z")]
    TimeZoneMissing,
    #[error("more than {max_scale} decimal places")]
    TooManyDecimals { max_scale: u32 },
    #[error("must not be negative")]
    Negative,
    #[error("must be greater than zero")]
    NotPositive,
    #[error("out of range: must be {allowed}")]
    OutOfRange { allowed: String },
    #[error("more interested ({interested}) than consulted ({consulted})")]
    InterestedExceedsConsulted { interested: u32, consulted: u32 },
    #[error("date range inverted: period_end {end} is before period_start {start}")]
    DateRangeInverted { start: String, end: String },
    #[error("{detail}")]
    Inconsistent { detail: String },
    #[error("{more} more problems not listed")]
    TooManyProblems { more: usize },
}

impl Problem {
    /// The stable machine-readable code, as serialised in `code`.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::MalformedJson { .. } => "malformed_json",
            Problem::NotAnObject => "not_an_object",
            Problem::Missing => "missing",
            Problem::WrongType { .. } => "wrong_type",
            Problem::UnknownField => "unknown_field",
            Problem::DuplicateKey => "duplicate_key",
            Problem::UnknownType { .. } => "unknown_type",
            Problem::UnsupportedVersion { .. } => "unsupported_version",
            Problem::Empty => "empty",
            Problem::TooLong { .. } => "too_long",
            Problem::BadCharacters => "bad_characters",
            Problem::NotAllowed { .. } => "not_allowed",
            Problem::BadFormat { .. } => "bad_format",
            Problem::TimeZoneMissing => "time_zone_missing",
            Problem::TooManyDecimals { .. } => "too_many_decimals",
            Problem::Negative => "negative",
            Problem::NotPositive => "not_positive",
            Problem::OutOfRange { .. } => "out_of_range",
            Problem::InterestedExceedsConsulted { .. } => "interested_exceeds_consulted",
            Problem::DateRangeInverted { .. } => "date_range_inverted",
            Problem::Inconsistent { .. } => "inconsistent",
            Problem::TooManyProblems { .. } => "too_many_problems",
        }
    }
}

/// An event refused at the door, with all of its problems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct InvalidEvent {
    /// The event's id, when it could be read.
    pub event_id: Option<String>,
    /// The event's type, when it could be read.
    pub event_type: Option<String>,
    pub errors: Vec<FieldError>,
}

impl fmt::Display for InvalidEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.event_id {
            Some(id) => write!(f, "event {id:?}")?,
            None => write!(f, "event")?,
        }
        if let Some(kind) = &self.event_type {
            write!(f, " ({kind})")?;
        }
        f.write_str(" rejected: ")?;
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}
