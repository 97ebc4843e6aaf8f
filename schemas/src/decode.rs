//! From untrusted bytes to a valid [`Event`], or every reason why not.
//!
//! One decoder serves the HTTP API, file import and the Kafka consumer. Valid events of the
//! current version take a fast typed path; anything else is parsed into a JSON tree
//! (repeated keys reported), upgraded if old, stripped of unknown keys (reported), walked
//! against the published JSON Schema of its type (which reports every structural problem
//! at once) and then checked for the rules across fields. The two paths accept the same
//! events, and only events the published schema accepts; the tests `agreement` and `fuzz`
//! hold them to it.
//!
//! The problems of one event are capped at [`MAX_PROBLEMS_PER_EVENT`], then one entry says
//! how many more there were: an answer or a dead letter never grows with the number of
//! mistakes in an event.

use std::collections::{HashMap, HashSet};

use jsonschema::Validator;
use serde_json::{Map, Value};

use crate::error::{FieldError, InvalidEvent, Problem};
use crate::event::{CURRENT_SCHEMA_VERSION, Event, EventType, MAX_ID_LEN, Payload};
use crate::json_tree;
use crate::known_fields::KnownFields;
use crate::schema::event_type_schema;
use crate::schema_problems::{
    field_errors, field_of, is_text_form, join, problem_from_message, shortened,
};
use crate::time::OccurredAt;
use crate::upcast::{UpcastError, Upcasters};
use crate::validate::{check_agent, check_envelope, check_payload, shapes_hold};
use crate::wire::decode_canonical;

/// Problems listed for one event, at most; the rest are counted in one last entry
/// (`too_many_problems`).
pub const MAX_PROBLEMS_PER_EVENT: usize = 20;

/// What the thorough path knows of one event's schema.
struct TypeSchema {
    validator: Validator,
    known: KnownFields,
}

/// Validates and decodes events. Building one compiles the schemas: build it once and share
/// it (it is `Send + Sync`); [`Decoder::standard`] returns a process-wide instance.
pub struct Decoder {
    schemas: HashMap<EventType, TypeSchema>,
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

/// A rejection being assembled: problems beyond the cap are only counted.
struct Rejection {
    event_id: Option<String>,
    event_type: Option<String>,
    errors: Vec<FieldError>,
    omitted: usize,
}

impl Rejection {
    fn new(object: &Map<String, Value>) -> Self {
        // Only short texts are repeated back: an id of ten megabytes is not an id.
        let short = |field: &str| {
            object
                .get(field)
                .and_then(Value::as_str)
                .filter(|text| text.chars().count() <= MAX_ID_LEN)
                .map(str::to_owned)
        };
        Self {
            event_id: short("event_id"),
            event_type: short("type"),
            errors: Vec::new(),
            omitted: 0,
        }
    }

    fn push(&mut self, error: FieldError) {
        if self.errors.len() < MAX_PROBLEMS_PER_EVENT {
            self.errors.push(error);
        } else {
            self.omitted += 1;
        }
    }

    /// Problems found so far, listed or not.
    fn count(&self) -> usize {
        self.errors.len() + self.omitted
    }

    fn any_at(&self, field: &str) -> bool {
        let prefix = format!("{field}.");
        self.errors
            .iter()
            .any(|e| e.field == field || e.field.starts_with(&prefix))
    }

    fn finish(mut self) -> InvalidEvent {
        if self.errors.len() > MAX_PROBLEMS_PER_EVENT {
            self.omitted += self.errors.len() - MAX_PROBLEMS_PER_EVENT;
            self.errors.truncate(MAX_PROBLEMS_PER_EVENT);
        }
        if self.omitted > 0 {
            self.errors.push(FieldError::new(
                "",
                Problem::TooManyProblems { more: self.omitted },
            ));
        }
        InvalidEvent {
            event_id: self.event_id,
            event_type: self.event_type,
            errors: self.errors,
        }
    }
}

impl Decoder {
    /// The decoder with this build's schemas and upgrades.
    pub fn standard() -> &'static Decoder {
        &STANDARD
    }

    pub fn new(upcasters: Upcasters) -> Self {
        let schemas = EventType::ALL
            .iter()
            .map(|&event_type| {
                let schema = event_type_schema(event_type);
                let validator = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&schema)
                    .expect("generated schemas are valid JSON Schema");
                let known = KnownFields::of_schema(&schema)
                    .expect("every event type's schema is a closed object");
                (event_type, TypeSchema { validator, known })
            })
            .collect();
        Self { schemas, upcasters }
    }

    /// Decodes one event, returning all of its problems if it is not valid.
    pub fn decode(&self, bytes: &[u8]) -> Result<Event, InvalidEvent> {
        if let Some(event) = self.decode_fast(bytes) {
            return Ok(event);
        }
        self.decode_thorough(bytes)
    }

    /// The typed path alone: `Some` only for a valid current-version event in the canonical
    /// shape. [`Decoder::decode`] tries it first; it is public so that the contract's tests
    /// can hold it to the same answers as the thorough path.
    pub fn decode_fast(&self, bytes: &[u8]) -> Option<Event> {
        let event = decode_canonical(bytes).ok()?;
        if !shapes_hold(&event) {
            return None;
        }
        let mut errors = Vec::new();
        check_envelope(&event, &mut errors);
        errors.is_empty().then_some(event)
    }

    /// The thorough path alone: the JSON tree, upgrades, the schema walk and the rules
    /// across fields, with every problem reported.
    pub fn decode_thorough(&self, bytes: &[u8]) -> Result<Event, InvalidEvent> {
        let (mut value, repeated) =
            json_tree::parse(bytes, MAX_PROBLEMS_PER_EVENT).map_err(|e| InvalidEvent {
                event_id: None,
                event_type: None,
                errors: vec![FieldError::new(
                    "",
                    Problem::MalformedJson {
                        detail: shortened(&e.to_string()),
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
        let mut rejection = Rejection::new(object);
        for path in repeated.paths {
            rejection.push(FieldError::new(path, Problem::DuplicateKey));
        }
        rejection.omitted += repeated.more;
        let before = rejection.count();
        let event_type = read_event_type(object, &mut rejection);
        self.read_and_upgrade_version(object, &mut rejection);
        let type_and_version_ok = rejection.count() == before;
        let Some(event_type) = event_type else {
            return Err(rejection.finish());
        };
        let schema = &self.schemas[&event_type];
        schema.known.strip(&mut value, "", &mut |path| {
            rejection.push(FieldError::new(path, Problem::UnknownField));
        });
        if !type_and_version_ok {
            return Err(rejection.finish());
        }

        // A field breaking both its pattern and its format is reported once.
        let mut text_form_fields = HashSet::new();
        for error in schema.validator.iter_errors(&value) {
            if is_text_form(&error) && !text_form_fields.insert(field_of(&error)) {
                continue;
            }
            for field_error in field_errors(&error) {
                rejection.push(field_error);
            }
        }
        let payload = if rejection.any_at("payload") {
            None
        } else {
            decode_payload(event_type, &value["payload"], &mut rejection)
        };
        if rejection.count() == 0 {
            let mut errors = Vec::new();
            if let Some(event) = decode_envelope(&value, payload.clone(), &mut errors) {
                check_envelope(&event, &mut errors);
                if errors.is_empty() {
                    return Ok(event);
                }
            }
            errors.into_iter().for_each(|e| rejection.push(e));
        } else if let Some(payload) = &payload {
            // Still report the cross-field rules of a payload that is sound on its own.
            let mut errors = Vec::new();
            if !rejection.any_at("agent_id") {
                let agent_id = value.get("agent_id").and_then(Value::as_str);
                check_agent(event_type, agent_id, Some(payload), &mut errors);
            }
            check_payload(payload, &mut errors);
            errors.into_iter().for_each(|e| rejection.push(e));
        }
        Err(rejection.finish())
    }

    fn read_and_upgrade_version(&self, object: &mut Map<String, Value>, rejection: &mut Rejection) {
        let current = u64::from(CURRENT_SCHEMA_VERSION);
        let version = match object.get("schema_version") {
            None => return rejection.push(FieldError::new("schema_version", Problem::Missing)),
            Some(v) => v.as_u64(),
        };
        match version {
            None => rejection.push(FieldError::new(
                "schema_version",
                Problem::WrongType {
                    expected: "a positive integer".to_owned(),
                },
            )),
            Some(found) if found > current => rejection.push(FieldError::new(
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
                    Err(UpcastError::NoStep(0)) => rejection.push(FieldError::new(
                        "schema_version",
                        Problem::OutOfRange {
                            allowed: "at least 1".to_owned(),
                        },
                    )),
                    Err(e) => rejection.push(FieldError::new(
                        "schema_version",
                        Problem::Inconsistent {
                            detail: shortened(&e.to_string()),
                        },
                    )),
                }
            }
            Some(_) => {}
        }
    }
}

fn read_event_type(object: &Map<String, Value>, rejection: &mut Rejection) -> Option<EventType> {
    match object.get("type") {
        None => {
            rejection.push(FieldError::new("type", Problem::Missing));
            None
        }
        Some(Value::String(name)) => {
            let found = EventType::from_name(name);
            if found.is_none() {
                rejection.push(FieldError::new(
                    "type",
                    Problem::UnknownType {
                        found: shortened(name),
                    },
                ));
            }
            found
        }
        Some(_) => {
            rejection.push(FieldError::new(
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
    rejection: &mut Rejection,
) -> Option<Payload> {
    let mut track = serde_path_to_error::Track::new();
    let result = event_type
        .decode_payload(serde_path_to_error::Deserializer::new(payload, &mut track))
        .map_err(|inner| (track.path(), inner));
    match result {
        Ok(payload) => Some(payload),
        Err((path, inner)) => {
            let field = join("payload", &path.to_string());
            rejection.push(FieldError::new(
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
