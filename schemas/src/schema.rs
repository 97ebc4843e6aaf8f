//! JSON Schema of the events, generated from the Rust types.
//!
//! One document per event type (the envelope with `type` fixed and `payload` typed) and
//! one for any event (`oneOf` the types). The checked-in copies under `schemas/json/` are
//! what upstream teams read; a test keeps them in sync with these types.

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Value, json};

use crate::event::{CURRENT_SCHEMA_VERSION, EventType, Id};
use crate::time::OccurredAt;

/// Base URI of the published schemas.
pub const SCHEMA_BASE_URI: &str = "https://schemas.aqs.dev/events/v1/";

/// What every document says about the one rule JSON Schema cannot state: a validator sees
/// the event after a JSON parser has already dropped all but one of a repeated key.
pub const UNIQUE_KEYS_RULE: &str = "Every object of an event has unique keys: an event that \
     gives a key twice is refused (code duplicate_key), whichever value a JSON parser would keep. \
     JSON Schema cannot state this rule; check it before validating.";

/// Adds the bound a `uint32` count has: schemars states the format, which validators may
/// ignore, but not the maximum.
fn bound_unsigned_counts(node: &mut Value) {
    match node {
        Value::Object(object) => {
            if object.get("format").and_then(Value::as_str) == Some("uint32") {
                object.entry("maximum").or_insert_with(|| json!(u32::MAX));
            }
            object.values_mut().for_each(bound_unsigned_counts);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_unsigned_counts),
        _ => {}
    }
}

/// The envelope fields common to every event; `payload` is replaced per type.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)] // read only by the schema generator
struct Envelope {
    /// Unique per fact; sending the same id again is a safe retry and counts once.
    #[schemars(with = "Id")]
    event_id: String,
    /// The event type; decides the shape of `payload`.
    #[serde(rename = "type")]
    event_type: EventType,
    /// Version of this schema the event was written against.
    #[schemars(range(min = 1))]
    schema_version: u32,
    occurred_at: OccurredAt,
    /// The emitting system, e.g. a CRM or a mobile work-log app.
    #[schemars(with = "Id")]
    source: String,
    /// The customer manager the event concerns; required for agent events, absent for
    /// team and outlet reference data.
    #[serde(default)]
    #[schemars(with = "Option<Id>")]
    agent_id: Option<String>,
    /// The type-specific body.
    payload: Value,
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .for_deserialize()
        .with(|s| s.meta_schema = None)
        .into_generator()
}

/// The schema of one event type, self-contained (its definitions inlined under `$defs`).
pub fn event_type_schema(event_type: EventType) -> Value {
    let mut generator = generator();
    let mut envelope = generator.root_schema_for::<Envelope>().to_value();
    let payload = event_type.payload_schema(&mut generator).to_value();
    let definitions = generator.take_definitions(true);
    let name = event_type.as_str();
    envelope["$id"] = json!(format!("{SCHEMA_BASE_URI}{name}.json"));
    envelope["title"] = json!(name);
    envelope["description"] = json!(format!(
        "An aqs event of type {name}: the envelope and its payload. {UNIQUE_KEYS_RULE}"
    ));
    envelope["properties"]["type"] = json!({ "const": name });
    envelope["properties"]["schema_version"]["maximum"] = json!(CURRENT_SCHEMA_VERSION);
    envelope["properties"]["payload"] = payload;
    if !definitions.is_empty() {
        envelope["$defs"] = Value::Object(definitions);
    }
    if let Some(defs) = envelope.get_mut("$defs").and_then(Value::as_object_mut) {
        // The type enum is fixed by `const` above; its definition would only mislead.
        defs.remove("EventType");
    }
    bound_unsigned_counts(&mut envelope);
    envelope
}

/// The schema of any event: exactly one of the per-type schemas.
pub fn any_event_schema() -> Value {
    let one_of: Vec<Value> = EventType::ALL
        .iter()
        .map(|t| json!({ "$ref": format!("{}.json", t.as_str()) }))
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("{SCHEMA_BASE_URI}event.json"),
        "title": "event",
        "description": format!("An aqs event: the envelope plus the payload of its type. {UNIQUE_KEYS_RULE}"),
        "oneOf": one_of,
    })
}

/// Every published document by file name: `event.json` and `<type>.json`.
pub fn all_schema_documents() -> BTreeMap<String, Value> {
    let mut documents = BTreeMap::new();
    documents.insert("event.json".to_owned(), any_event_schema());
    for &event_type in EventType::ALL {
        let mut schema = event_type_schema(event_type);
        schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        documents.insert(format!("{}.json", event_type.as_str()), schema);
    }
    documents
}

/// A schema document as written to disk: pretty JSON with a trailing newline.
pub fn render_document(document: &Value) -> String {
    let mut text = serde_json::to_string_pretty(document).expect("a JSON value always serialises");
    text.push('\n');
    text
}
