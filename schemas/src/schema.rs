//! JSON Schema of the events, generated from the Rust types.
//!
//! One document per event type (the envelope with `type` fixed and `payload` typed) and
//! one for any event (`oneOf` the types). The checked-in copies under `schemas/json/` are
//! what upstream teams read; a test keeps them in sync with these types.
//!
//! The documents carry no `$id`: `event.json` refers to the type documents by their file
//! names, which resolve against wherever the documents were read from (the folder
//! `schemas/json/v1/`, or ingest's `GET /v1/schema/`), never against a host of their own.

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Value, json};

use crate::event::{CURRENT_SCHEMA_VERSION, EventType, Id};
use crate::time::OccurredAt;

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

/// Where an OpenAPI document keeps its schemas.
const OPENAPI_SCHEMAS: &str = "#/components/schemas/";

/// The name of the OpenAPI component of any event (see [`openapi_components`]).
pub const EVENT_COMPONENT: &str = "Event";

/// The OpenAPI component of one event type: `sale_closed` → `SaleClosedEvent`.
pub fn event_type_component(event_type: EventType) -> String {
    let mut name = String::new();
    for word in event_type.as_str().split('_') {
        let mut letters = word.chars();
        if let Some(first) = letters.next() {
            name.extend(first.to_uppercase());
            name.push_str(letters.as_str());
        }
    }
    name.push_str(EVENT_COMPONENT);
    name
}

/// The published documents as the schemas of an OpenAPI document's components, so that an
/// OpenAPI document embedding them resolves on its own: [`EVENT_COMPONENT`] (one of the
/// types), one component per type ([`event_type_component`]) and the definitions the types
/// share (`Money`, `OccurredAt`, …), every `$ref` pointing among them.
///
/// The definitions are generated from the same Rust types for every event type, so a name
/// means one schema; a name defined twice differently is a defect of the types and panics.
pub fn openapi_components() -> BTreeMap<String, Value> {
    let mut components = BTreeMap::new();
    let mut event = any_event_schema();
    if let Some(object) = event.as_object_mut() {
        object.remove("$schema");
    }
    point_refs_at_components(&mut event);
    components.insert(EVENT_COMPONENT.to_owned(), event);
    for &event_type in EventType::ALL {
        let mut schema = event_type_schema(event_type);
        let definitions = schema
            .as_object_mut()
            .and_then(|object| object.remove("$defs"))
            .and_then(|defs| match defs {
                Value::Object(defs) => Some(defs),
                _ => None,
            })
            .unwrap_or_default();
        for (name, mut definition) in definitions {
            point_refs_at_components(&mut definition);
            if let Some(known) = components.get(&name) {
                assert!(
                    *known == definition,
                    "the definition {name} differs between event types"
                );
            }
            components.insert(name, definition);
        }
        point_refs_at_components(&mut schema);
        components.insert(event_type_component(event_type), schema);
    }
    components
}

/// Rewrites the `$ref`s of a published document to the components of [`openapi_components`]:
/// `#/$defs/Money` → `#/components/schemas/Money`, `sale_closed.json` →
/// `#/components/schemas/SaleClosedEvent`.
fn point_refs_at_components(node: &mut Value) {
    match node {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get_mut("$ref") {
                let target = if let Some(definition) = reference.strip_prefix("#/$defs/") {
                    definition.to_owned()
                } else {
                    let event_type = reference
                        .strip_suffix(".json")
                        .and_then(|name| EventType::ALL.iter().find(|t| t.as_str() == name))
                        .unwrap_or_else(|| {
                            panic!("a $ref the components cannot hold: {reference}")
                        });
                    event_type_component(*event_type)
                };
                *reference = format!("{OPENAPI_SCHEMAS}{target}");
            }
            object.values_mut().for_each(point_refs_at_components);
        }
        Value::Array(items) => items.iter_mut().for_each(point_refs_at_components),
        _ => {}
    }
}

/// A schema document as written to disk: pretty JSON with a trailing newline.
pub fn render_document(document: &Value) -> String {
    let mut text = serde_json::to_string_pretty(document).expect("a JSON value always serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(node: &Value, found: &mut Vec<String>) {
        match node {
            Value::Object(object) => {
                if let Some(Value::String(reference)) = object.get("$ref") {
                    found.push(reference.clone());
                }
                object.values().for_each(|value| refs(value, found));
            }
            Value::Array(items) => items.iter().for_each(|value| refs(value, found)),
            _ => {}
        }
    }

    #[test]
    fn every_component_reference_names_a_component() {
        let components = openapi_components();
        let mut found = Vec::new();
        components
            .values()
            .for_each(|schema| refs(schema, &mut found));
        assert!(found.len() > EventType::ALL.len(), "{found:?}");
        for reference in found {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{reference} leaves the components"));
            assert!(
                components.contains_key(name),
                "{reference} names no component"
            );
        }
        for (name, schema) in &components {
            for keyword in ["$id", "$schema", "$defs"] {
                assert!(schema.get(keyword).is_none(), "{name} keeps {keyword}");
            }
        }
    }

    #[test]
    fn the_event_component_is_one_of_the_type_components() {
        let components = openapi_components();
        assert_eq!(
            event_type_component(EventType::SaleClosed),
            "SaleClosedEvent"
        );
        let one_of = components[EVENT_COMPONENT]["oneOf"]
            .as_array()
            .expect("oneOf");
        assert_eq!(one_of.len(), EventType::ALL.len());
        assert!(one_of.contains(&json!({ "$ref": "#/components/schemas/SaleClosedEvent" })));
    }

    #[test]
    fn published_documents_refer_to_each_other_by_file_name_only() {
        for (name, document) in all_schema_documents() {
            assert!(
                document.get("$id").is_none(),
                "{name} names a host of its own"
            );
            let mut found = Vec::new();
            refs(&document, &mut found);
            for reference in found {
                assert!(
                    reference.starts_with("#/$defs/")
                        || (!reference.contains(':') && reference.ends_with(".json")),
                    "{name}: {reference}"
                );
            }
        }
    }
}
