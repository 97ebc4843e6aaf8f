//! What the API answers: per batch, per event, and for a request refused as a whole.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use aqs_schemas::FieldError;

/// What became of one event of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Valid and now durably in the log.
    Accepted,
    /// Already in the log with the same content (a retry): nothing appended, a success.
    Duplicate,
    /// Its `event_id` is already in the log with different content: the first one stays.
    Conflict,
    /// Not valid, or not from the token's source: see `errors`.
    Rejected,
    /// Valid but not appended, because the batch was atomic and another event was rejected.
    Skipped,
}

impl EventStatus {
    pub const ALL: [EventStatus; 5] = [
        EventStatus::Accepted,
        EventStatus::Duplicate,
        EventStatus::Conflict,
        EventStatus::Rejected,
        EventStatus::Skipped,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventStatus::Accepted => "accepted",
            EventStatus::Duplicate => "duplicate",
            EventStatus::Conflict => "conflict",
            EventStatus::Rejected => "rejected",
            EventStatus::Skipped => "skipped",
        }
    }

    /// Whether the event is in the log after this answer.
    pub const fn is_stored(self) -> bool {
        matches!(self, EventStatus::Accepted | EventStatus::Duplicate)
    }
}

/// One problem with one field of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventError {
    /// Dotted path of the field from the event's root, e.g. `payload.premium`; empty for
    /// the event as a whole.
    pub field: String,
    /// Stable, machine-readable reason, e.g. `missing`, `too_many_decimals`,
    /// `duplicate_key`, `too_many_problems` (the codes of the event schema), or one of
    /// `source_mismatch` (the event's `source` is not the token's), `not_granted` (the
    /// token's source may not publish this class of events), `conflict`, `event_too_large`
    /// and `too_many_errors` (the codes of ingest).
    pub code: String,
    /// The reason in words, for people.
    pub message: String,
    /// Details of some codes, e.g. `max_scale` for `too_many_decimals`, `expected` for
    /// `wrong_type`.
    #[serde(flatten)]
    #[schema(additional_properties)]
    pub details: Map<String, Value>,
}

impl EventError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.to_owned(),
            message: message.into(),
            details: Map::new(),
        }
    }
}

impl From<&FieldError> for EventError {
    fn from(error: &FieldError) -> Self {
        // A fresh map of the details only: one emptied by removals would keep its node
        // (hundreds of bytes per error, for every problem of every rejected event).
        let details = match serde_json::to_value(error) {
            Ok(Value::Object(map)) => map
                .into_iter()
                .filter(|(key, _)| key != "field" && key != "code")
                .collect(),
            _ => Map::new(),
        };
        Self {
            field: error.field.clone(),
            code: error.problem.code().to_owned(),
            message: error.problem.to_string(),
            details,
        }
    }
}

/// The answer about one event, in the order of the batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventResult {
    /// 0-based position of the event in the batch (NDJSON: among the non-blank lines).
    pub index: usize,
    /// NDJSON only: the 1-based line of the event in the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub line: Option<u64>,
    /// The event's id, or null when it could not be read.
    #[schema(required = true)]
    pub event_id: Option<String>,
    pub status: EventStatus,
    /// Why it was rejected or conflicts; absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<EventError>,
}

/// The answer to a batch: counts by status, then one result per event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchAnswer {
    /// Events appended by this request.
    pub accepted: u64,
    /// Events already in the log with the same content.
    pub duplicate: u64,
    /// Events whose id is in the log with different content.
    pub conflict: u64,
    /// Events refused: invalid, or not from the token's source.
    pub rejected: u64,
    /// Valid events not appended because an atomic batch had a rejected event.
    pub skipped: u64,
    pub results: Vec<EventResult>,
}

impl BatchAnswer {
    /// Adds one event's result and counts it.
    pub fn push(&mut self, result: EventResult) {
        *self.count_mut(result.status) += 1;
        self.results.push(result);
    }

    fn count_mut(&mut self, status: EventStatus) -> &mut u64 {
        match status {
            EventStatus::Accepted => &mut self.accepted,
            EventStatus::Duplicate => &mut self.duplicate,
            EventStatus::Conflict => &mut self.conflict,
            EventStatus::Rejected => &mut self.rejected,
            EventStatus::Skipped => &mut self.skipped,
        }
    }

    /// The count of one status.
    pub fn count(&self, status: EventStatus) -> u64 {
        match status {
            EventStatus::Accepted => self.accepted,
            EventStatus::Duplicate => self.duplicate,
            EventStatus::Conflict => self.conflict,
            EventStatus::Rejected => self.rejected,
            EventStatus::Skipped => self.skipped,
        }
    }

    /// Whether any event of the batch is in the log after this answer: 200 if so, 422 if not.
    pub fn any_stored(&self) -> bool {
        self.accepted + self.duplicate > 0
    }
}

/// A request refused as a whole: nothing of it was appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable reason: `unauthorized`, `unsupported_media_type`,
    /// `malformed_body`, `malformed_query`, `empty_batch`, `body_too_large`,
    /// `too_many_events`, `body_timeout`, `misdirected_request`, `busy`, `unavailable`,
    /// `shutting_down`, `not_found`, `internal`.
    pub error: String,
    /// The reason in words, for people.
    pub message: String,
}

/// The answer of `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `not_ready`.
    pub status: String,
    /// Why not ready; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use aqs_schemas::Problem;

    use super::*;

    #[test]
    fn field_errors_keep_their_details() {
        let error = EventError::from(&FieldError::new(
            "payload.premium",
            Problem::TooManyDecimals { max_scale: 2 },
        ));
        let json = serde_json::to_value(&error).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({
                "field": "payload.premium",
                "code": "too_many_decimals",
                "message": "more than 2 decimal places",
                "max_scale": 2
            })
        );
    }
}
