//! The checked-in OpenAPI document (`ingest/openapi.json`) is the one the code generates.
//! Regenerate it with `AQS_UPDATE_OPENAPI=1 cargo test -p aqs-ingest --test openapi`.

use std::path::Path;

#[test]
fn checked_in_openapi_document_matches_the_code() {
    let path = Path::new(&manifest_dir()).join("openapi.json");
    let generated = aqs_ingest::server::openapi_json();
    if std::env::var_os("AQS_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("writing openapi.json");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is out of date with the handlers; regenerate it with \
         `AQS_UPDATE_OPENAPI=1 cargo test -p aqs-ingest --test openapi` and review the diff",
        path.display()
    );
}

#[test]
fn the_document_describes_every_route_and_answer() {
    let document: serde_json::Value =
        serde_json::from_str(&aqs_ingest::server::openapi_json()).expect("JSON");
    let paths = document["paths"].as_object().expect("paths");
    for path in [
        "/v1/events",
        "/v1/schema",
        "/v1/schema/{name}",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    let responses = document["paths"]["/v1/events"]["post"]["responses"]
        .as_object()
        .expect("responses");
    for status in [
        "200", "400", "401", "408", "413", "415", "421", "422", "429", "503",
    ] {
        assert!(responses.contains_key(status), "{status} missing");
    }
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

/// Every `$ref` of the document points inside it, at something there: an OpenAPI validator
/// or a client generator resolves the document without fetching anything (the event schemas
/// are embedded as components).
#[test]
fn every_reference_resolves_inside_the_document() {
    let document: serde_json::Value =
        serde_json::from_str(&aqs_ingest::server::openapi_json()).expect("JSON");
    let mut references = Vec::new();
    collect_refs(&document, &mut references);
    assert!(
        references.iter().any(|r| r == "#/components/schemas/Event"),
        "the batch refers to the embedded event schema: {references:?}"
    );
    let unresolved: Vec<&String> = references
        .iter()
        .filter(|reference| {
            reference
                .strip_prefix('#')
                .is_none_or(|pointer| document.pointer(pointer).is_none())
        })
        .collect();
    assert!(
        unresolved.is_empty(),
        "references that do not resolve: {unresolved:?}"
    );
    let event_types = document["components"]["schemas"]["Event"]["oneOf"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(event_types, aqs_schemas::EventType::ALL.len());
}

fn collect_refs(node: &serde_json::Value, found: &mut Vec<String>) {
    match node {
        serde_json::Value::Object(object) => {
            if let Some(serde_json::Value::String(reference)) = object.get("$ref") {
                found.push(reference.clone());
            }
            object.values().for_each(|value| collect_refs(value, found));
        }
        serde_json::Value::Array(items) => {
            items.iter().for_each(|value| collect_refs(value, found))
        }
        _ => {}
    }
}

/// The package's folder, read when the test runs (cargo sets it) rather than when it was
/// built: a build cache shared with a clone in another folder may hold this test built there.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
