//! The published contract: every event type round-trips, the JSON Schema files match the
//! types, and old versions pass through the upgrade hook.

use std::collections::BTreeSet;
use std::path::PathBuf;

use aqs_schemas::schema::{all_schema_documents, render_document};
use aqs_schemas::upcast::Upcasters;
use aqs_schemas::{BusinessClock, Decoder, EventType, decode_canonical};
use serde_json::{Value, json};

fn examples() -> Vec<(usize, String)> {
    include_str!("data/valid.ndjson")
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.to_owned()))
        .collect()
}

#[test]
fn every_event_type_round_trips_through_the_canonical_form() {
    let decoder = Decoder::standard();
    let mut seen = BTreeSet::new();
    for (line, text) in examples() {
        let event = decoder
            .decode(text.as_bytes())
            .unwrap_or_else(|e| panic!("line {line}: {e}"));
        seen.insert(event.event_type());
        let canonical = serde_json::to_vec(&event).expect("serialise");
        assert_eq!(
            decode_canonical(&canonical).expect("canonical"),
            event,
            "line {line}"
        );
        assert_eq!(
            decoder.decode(&canonical).expect("re-decode"),
            event,
            "line {line}"
        );
        // The canonical form is stable: writing it again gives the same bytes.
        let again = serde_json::to_vec(&decode_canonical(&canonical).expect("canonical"))
            .expect("serialise");
        assert_eq!(again, canonical, "line {line}");
    }
    let all: BTreeSet<EventType> = EventType::ALL.iter().copied().collect();
    assert_eq!(seen, all, "the examples cover every event type");
}

#[test]
fn money_from_numbers_and_strings_is_the_same_money() {
    let decoder = Decoder::standard();
    let lines = examples();
    let number = decoder
        .decode(lines[10].1.as_bytes())
        .expect("sale with a number premium");
    let canonical: Value = serde_json::to_value(&number).expect("serialise");
    assert_eq!(canonical["payload"]["premium"], json!("50000.10"));
}

#[test]
fn utc_sales_land_on_their_shanghai_date() {
    let event = Decoder::standard()
        .decode(examples()[9].1.as_bytes())
        .expect("sale");
    assert_eq!(
        event.business_date(&BusinessClock::default()).to_string(),
        "2026-11-02"
    );
    let late_utc = br#"{"event_id":"e","type":"agent_left","schema_version":1,"occurred_at":"2026-11-02T23:30:00Z","source":"hr","agent_id":"A1","payload":{"effective_date":"2026-11-03"}}"#;
    let event = Decoder::standard().decode(late_utc).expect("agent left");
    assert_eq!(
        event.business_date(&BusinessClock::default()).to_string(),
        "2026-11-03"
    );
}

fn schema_dir() -> PathBuf {
    PathBuf::from(manifest_dir()).join("json/v1")
}

/// Set `AQS_UPDATE_SCHEMAS=1` to rewrite the checked-in files after changing the types.
#[test]
fn published_json_schema_matches_the_types() {
    let dir = schema_dir();
    let documents = all_schema_documents();
    if std::env::var_os("AQS_UPDATE_SCHEMAS").is_some() {
        std::fs::create_dir_all(&dir).expect("create schema dir");
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            std::fs::remove_file(entry.expect("entry").path()).expect("remove stale schema");
        }
        for (name, document) in &documents {
            std::fs::write(dir.join(name), render_document(document)).expect("write schema");
        }
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("schemas/json/v1 exists; run with AQS_UPDATE_SCHEMAS=1 to create it")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = documents.keys().cloned().collect();
    assert_eq!(
        on_disk, expected,
        "schema files; run with AQS_UPDATE_SCHEMAS=1 to regenerate"
    );
    for (name, document) in &documents {
        let written = std::fs::read_to_string(dir.join(name)).expect("read schema");
        assert_eq!(
            written,
            render_document(document),
            "{name} is out of date; run the tests with AQS_UPDATE_SCHEMAS=1 to regenerate"
        );
    }
}

#[test]
fn published_schemas_accept_the_examples_and_refuse_a_bad_one() {
    let documents = all_schema_documents();
    for (line, text) in examples() {
        let event: Value = serde_json::from_str(&text).expect("json");
        let name = format!("{}.json", event["type"].as_str().expect("type"));
        let validator = jsonschema::validator_for(&documents[&name]).expect("schema compiles");
        assert!(validator.is_valid(&event), "line {line} against {name}");
        let mut broken = event.clone();
        broken["payload"]["surprise"] = json!(true);
        assert!(
            !validator.is_valid(&broken),
            "line {line}: unknown fields are refused"
        );
    }
}

#[test]
fn older_versions_are_upgraded_on_the_raw_json_before_decoding() {
    // A hypothetical version 0 called the outlet `branch_office`; the step renames it.
    let upcasters = Upcasters::standard().with_step(0, |event| {
        let payload = event
            .get_mut("payload")
            .and_then(Value::as_object_mut)
            .ok_or("payload missing")?;
        let outlet = payload
            .remove("branch_office")
            .ok_or("branch_office missing")?;
        payload.insert("outlet_id".to_owned(), outlet);
        Ok(())
    });
    let decoder = Decoder::new(upcasters);
    let old = br#"{"event_id":"e1","type":"outlet_visit","schema_version":0,"occurred_at":"2026-11-02T09:30:00+08:00","source":"legacy","agent_id":"A1","payload":{"branch_office":"O1","purpose":"service"}}"#;
    let event = decoder.decode(old).expect("upgraded");
    let canonical: Value = serde_json::to_value(&event).expect("serialise");
    assert_eq!(canonical["schema_version"], json!(1));
    assert_eq!(canonical["payload"]["outlet_id"], json!("O1"));

    // The standard decoder has no step from version 0 and says so.
    let rejection = Decoder::standard()
        .decode(old)
        .expect_err("no upgrade path");
    assert_eq!(rejection.errors[0].field, "schema_version");
    assert_eq!(rejection.errors[0].problem.code(), "out_of_range");
}

/// The package's folder, read when the test runs (cargo sets it) rather than when it was
/// built: a build cache shared with a clone in another folder may hold this test built there.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
