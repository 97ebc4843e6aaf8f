//! From untrusted bytes to a valid [`Event`], or every reason why not.
//!
//! One decoder serves the HTTP API, file import and the Kafka consumer. Valid events of the
//! current version take a fast typed path; anything else is parsed into a JSON tree,
//! upgraded if old, walked against the published JSON Schema of its type (which reports
//! every structural problem at once) and then checked for the rules across fields.

use std::collections::HashMap;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::{Map, Value};

use crate::decimal::Money;
use crate::error::{FieldError, InvalidEvent, Problem};
use crate::event::{CURRENT_SCHEMA_VERSION, Event, EventType, ID_PATTERN, Payload};
use crate::schema::event_type_schema;
use crate::time::{OccurredAt, TimestampError};
use crate::upcast::{UpcastError, Upcasters};
use crate::validate::{check_agent, check_envelope, check_payload, shapes_hold};
use crate::wire::decode_canonical;

/// Validates and decodes events. Building one compiles the schemas: build it once and share
/// it (it is `Send + Sync`); [`Decoder::standard`] returns a process-wide instance.
pub struct Decoder {
    validators: HashMap<EventType, Validator>,
    upcasters: Upcasters,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("upcasters", &self.upcasters)
            .finish_non_exhaustive()
    }
}

static STANDARD: std::sync::LazyLock<Decoder> =
    std::sync::LazyLock::new(|| Decoder::new(Upcasters::standard()));

impl Decoder {
    /// The decoder with this build's schemas and upgrades.
    pub fn standard() -> &'static Decoder {
        &STANDARD
    }

    pub fn new(upcasters: Upcasters) -> Self {
        let validators = EventType::ALL
            .iter()
            .map(|&event_type| {
                let schema = event_type_schema(event_type);
                let validator = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&schema)
                    .expect("generated schemas are valid JSON Schema");
                (event_type, validator)
            })
            .collect();
        Self {
            validators,
            upcasters,
        }
    }

    /// Decodes one event, returning all of its problems if it is not valid.
    pub fn decode(&self, bytes: &[u8]) -> Result<Event, InvalidEvent> {
        if let Some(event) = self.decode_fast(bytes) {
            return Ok(event);
        }
        self.decode_thorough(bytes)
    }

    /// The typed path: `Some` only for a valid current-version event.
    pub(crate) fn decode_fast(&self, bytes: &[u8]) -> Option<Event> {
        let event = decode_canonical(bytes).ok()?;
        if !shapes_hold(&event) {
            return None;
        }
        let mut errors = Vec::new();
        check_envelope(&event, &mut errors);
        errors.is_empty().then_some(event)
    }

    fn decode_thorough(&self, bytes: &[u8]) -> Result<Event, InvalidEvent> {
        let mut value: Value = serde_json::from_slice(bytes).map_err(|e| InvalidEvent {
            event_id: None,
            event_type: None,
            errors: vec![FieldError::new(
                "",
                Problem::MalformedJson {
                    detail: e.to_string(),
                },
            )],
        })?;
        let Some(object) = value.as_object_mut() else {
            return Err(InvalidEvent {
                event_id: None,
                event_type: None,
                errors: vec![FieldError::new("", Problem::NotAnObject)],
            });
        };
        let mut rejection = InvalidEvent {
            event_id: object
                .get("event_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            event_type: object
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_owned),
            errors: Vec::new(),
        };
        let event_type = read_event_type(object, &mut rejection.errors);
        self.read_and_upgrade_version(object, &mut rejection.errors);
        let Some(event_type) = event_type else {
            return Err(rejection);
        };
        if !rejection.errors.is_empty() {
            return Err(rejection);
        }

        let validator = &self.validators[&event_type];
        rejection
            .errors
            .extend(validator.iter_errors(&value).flat_map(|e| field_errors(&e)));
        let payload_clean = !rejection
            .errors
            .iter()
            .any(|e| e.field == "payload" || e.field.starts_with("payload."));
        let payload = if payload_clean {
            decode_payload(event_type, &value["payload"], &mut rejection.errors)
        } else {
            None
        };
        if rejection.errors.is_empty() {
            let event = decode_envelope(&value, payload.clone(), &mut rejection.errors);
            if let Some(event) = event {
                check_envelope(&event, &mut rejection.errors);
                if rejection.errors.is_empty() {
                    return Ok(event);
                }
            }
        } else if let Some(payload) = &payload {
            // Still report the cross-field rules of a payload that is sound on its own.
            let agent_clean = !rejection.errors.iter().any(|e| e.field == "agent_id");
            if agent_clean {
                let agent_id = value.get("agent_id").and_then(Value::as_str);
                check_agent(event_type, agent_id, Some(payload), &mut rejection.errors);
            }
            check_payload(payload, &mut rejection.errors);
        }
        Err(rejection)
    }

    fn read_and_upgrade_version(
        &self,
        object: &mut Map<String, Value>,
        errors: &mut Vec<FieldError>,
    ) {
        let current = u64::from(CURRENT_SCHEMA_VERSION);
        let version = match object.get("schema_version") {
            None => return errors.push(FieldError::new("schema_version", Problem::Missing)),
            Some(v) => v.as_u64(),
        };
        match version {
            None => errors.push(FieldError::new(
                "schema_version",
                Problem::WrongType {
                    expected: "a positive integer".to_owned(),
                },
            )),
            Some(found) if found > current => errors.push(FieldError::new(
                "schema_version",
                Problem::UnsupportedVersion {
                    found,
                    newest: CURRENT_SCHEMA_VERSION,
                },
            )),
            Some(found) if found < current => {
                match self.upcasters.upcast(object, found, current) {
                    Ok(()) => {}
                    // Version 1 is the first published version: 0 only exists in tests.
                    Err(UpcastError::NoStep(0)) => errors.push(FieldError::new(
                        "schema_version",
                        Problem::OutOfRange {
                            allowed: "at least 1".to_owned(),
                        },
                    )),
                    Err(e) => errors.push(FieldError::new(
                        "schema_version",
                        Problem::Inconsistent {
                            detail: e.to_string(),
                        },
                    )),
                }
            }
            Some(_) => {}
        }
    }
}

fn read_event_type(object: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<EventType> {
    match object.get("type") {
        None => {
            errors.push(FieldError::new("type", Problem::Missing));
            None
        }
        Some(Value::String(name)) => {
            let found = EventType::from_name(name);
            if found.is_none() {
                errors.push(FieldError::new(
                    "type",
                    Problem::UnknownType {
                        found: name.clone(),
                    },
                ));
            }
            found
        }
        Some(_) => {
            errors.push(FieldError::new(
                "type",
                Problem::WrongType {
                    expected: "string".to_owned(),
                },
            ));
            None
        }
    }
}

fn decode_payload(
    event_type: EventType,
    payload: &Value,
    errors: &mut Vec<FieldError>,
) -> Option<Payload> {
    let mut track = serde_path_to_error::Track::new();
    let result = event_type
        .decode_payload(serde_path_to_error::Deserializer::new(payload, &mut track))
        .map_err(|inner| (track.path(), inner));
    match result {
        Ok(payload) => Some(payload),
        Err((path, inner)) => {
            let field = join("payload", &path.to_string());
            errors.push(FieldError::new(
                field,
                problem_from_message(&inner.to_string()),
            ));
            None
        }
    }
}

fn decode_envelope(
    value: &Value,
    payload: Option<Payload>,
    errors: &mut Vec<FieldError>,
) -> Option<Event> {
    let text = |field: &str| value.get(field).and_then(Value::as_str);
    let occurred_at = match text("occurred_at").map(str::parse::<OccurredAt>) {
        Some(Ok(at)) => at,
        Some(Err(e)) => {
            errors.push(FieldError::new(
                "occurred_at",
                problem_from_message(&e.to_string()),
            ));
            return None;
        }
        None => {
            errors.push(FieldError::new("occurred_at", Problem::Missing));
            return None;
        }
    };
    Some(Event {
        event_id: text("event_id")?.to_owned(),
        occurred_at,
        source: text("source")?.to_owned(),
        agent_id: text("agent_id").map(str::to_owned),
        payload: payload?,
    })
}

/// Turns a message from one of our own parsers into a problem with a stable code.
fn problem_from_message(message: &str) -> Problem {
    if message.starts_with("time zone missing") {
        return Problem::TimeZoneMissing;
    }
    if let Some(rest) = message.strip_prefix("more than ")
        && let Some(scale) = rest.strip_suffix(" decimal places")
        && let Ok(max_scale) = scale.parse()
    {
        return Problem::TooManyDecimals { max_scale };
    }
    Problem::BadFormat {
        expected: message.to_owned(),
    }
}

/// A JSON pointer such as `/payload/premium` as a dotted field path.
fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

fn describe_types(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => t.to_string(),
        TypeKind::Multiple(set) => set
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

/// Maps one JSON Schema violation to the field errors we report.
fn field_errors(error: &ValidationError<'_>) -> Vec<FieldError> {
    let field = dotted(error.instance_path().as_str());
    let instance = error.instance();
    let one = |problem| vec![FieldError::new(field.clone(), problem)];
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            vec![FieldError::new(join(&field, name), Problem::Missing)]
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|name| FieldError::new(join(&field, name), Problem::UnknownField))
            .collect(),
        ValidationErrorKind::Type { kind } => one(Problem::WrongType {
            expected: describe_types(kind),
        }),
        ValidationErrorKind::Enum { options } => one(Problem::NotAllowed {
            allowed: options
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|| options.to_string()),
        }),
        ValidationErrorKind::Constant { expected_value } => one(Problem::NotAllowed {
            allowed: expected_value.to_string(),
        }),
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            // Documented enums are a `oneOf` of constants: report the allowed values.
            let constants: Option<Vec<String>> = context
                .iter()
                .flatten()
                .map(|e| match e.kind() {
                    ValidationErrorKind::Constant { expected_value } => {
                        Some(vec![expected_value.to_string()])
                    }
                    ValidationErrorKind::Enum { options } => options
                        .as_array()
                        .map(|values| values.iter().map(Value::to_string).collect()),
                    _ => None,
                })
                .collect::<Option<Vec<Vec<String>>>>()
                .map(|lists| lists.concat());
            one(match constants {
                Some(allowed) if !allowed.is_empty() => Problem::NotAllowed {
                    allowed: allowed.join(", "),
                },
                _ => Problem::BadFormat {
                    expected: error.to_string(),
                },
            })
        }
        ValidationErrorKind::MinLength { limit: 1 } => one(Problem::Empty),
        ValidationErrorKind::MaxLength { limit } => one(Problem::TooLong {
            length: instance.as_str().map_or(0, |s| s.chars().count()),
            max: usize::try_from(*limit).unwrap_or(usize::MAX),
        }),
        ValidationErrorKind::Pattern { pattern } => one(pattern_problem(pattern, instance)),
        ValidationErrorKind::Format { format } => one(format_problem(format, instance)),
        ValidationErrorKind::Minimum { limit } => one(
            if limit.as_f64() == Some(0.0) && instance.as_f64().is_some_and(|v| v < 0.0) {
                Problem::Negative
            } else {
                Problem::OutOfRange {
                    allowed: format!("at least {limit}"),
                }
            },
        ),
        ValidationErrorKind::Maximum { limit } => one(Problem::OutOfRange {
            allowed: format!("at most {limit}"),
        }),
        _ => one(Problem::BadFormat {
            expected: error.to_string(),
        }),
    }
}

fn pattern_problem(pattern: &str, instance: &Value) -> Problem {
    if pattern == ID_PATTERN {
        return Problem::BadCharacters;
    }
    let text = instance.as_str().unwrap_or_default();
    if pattern.contains("(0[1-9]|1[0-2])") {
        return Problem::BadFormat {
            expected: "a month such as 2026-11".to_owned(),
        };
    }
    // The remaining patterns are those of money and rates.
    match text.parse::<Money>() {
        Ok(money) if money.is_negative() => Problem::Negative,
        _ => match text.strip_prefix('-').unwrap_or(text).split_once('.') {
            Some((_, decimals))
                if decimals.len() > 2 && decimals.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Problem::TooManyDecimals {
                    max_scale: if pattern.contains("{1,4}") { 4 } else { 2 },
                }
            }
            _ => Problem::BadFormat {
                expected: "a decimal such as 1234.50".to_owned(),
            },
        },
    }
}

fn format_problem(format: &str, instance: &Value) -> Problem {
    let text = instance.as_str().unwrap_or_default();
    match format {
        "date-time" => match text.parse::<OccurredAt>() {
            Err(TimestampError::TimeZoneMissing) => Problem::TimeZoneMissing,
            _ => Problem::BadFormat {
                expected: "an RFC 3339 timestamp such as 2026-11-02T09:30:00+08:00".to_owned(),
            },
        },
        "date" => Problem::BadFormat {
            expected: "a date such as 2026-11-02".to_owned(),
        },
        other => Problem::BadFormat {
            expected: format!("a valid {other}"),
        },
    }
}
