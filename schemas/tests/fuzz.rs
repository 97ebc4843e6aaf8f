//! Fuzzing the decoder with mutated valid events: bit flips, deleted, repeated and unknown
//! fields, values of other types, boundary values (dates, money, counts, ids, timestamps)
//! and arrays in place of objects.
//!
//! Invariants: nothing panics; whatever the decoder accepts, the published contract (the
//! checked-in documents plus their unique-keys rule) accepts too; the fast path never
//! accepts what the thorough path refuses, and both read an event alike; a rejection lists
//! a bounded number of problems.
//!
//! `AQS_FUZZ_CASES` sets the number of mutated events (default 10,000: about five seconds
//! in a debug build); CI may raise it for a longer run.

mod published;

use std::collections::BTreeMap;

use aqs_schemas::{Decoder, MAX_PROBLEMS_PER_EVENT, decode_canonical};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use published::Published;
use serde_json::{Value, json};

const DEFAULT_CASES: u32 = 10_000;

fn seeds() -> Vec<Value> {
    include_str!("data/valid.ndjson")
        .lines()
        .map(|line| serde_json::from_str(line).expect("example"))
        .collect()
}

/// Values that sit on an edge of the contract, or just past it.
fn boundary_values() -> Vec<Value> {
    let mut values: Vec<Value> = [
        "1969-12-31",
        "1970-01-01",
        "1999-12-31",
        "2000-01-01",
        "2099-12-31",
        "2100-01-01",
        "2149-06-06",
        "2150-01-01",
        "-0001-01-01",
        "+10000-01-01",
        "2026-1-5",
        "2026-02-29",
        "2028-02-29",
        "2026-02-30",
        "2026-11",
        "2026-1",
        "2150-01",
        "1999-12",
        "2099-12",
        "2026-12-31T23:59:60Z",
        "2027-01-01T07:59:60+08:00",
        "2026-11-02T09:30:00",
        "2026-11-02 09:30:00Z",
        "1999-12-31T23:59:59+08:00",
        "2100-01-01T00:00:00Z",
        "2099-12-31T23:59:59-12:00",
        "2026-11-02T09:30:00.1234567891Z",
        "2026-11-02t09:30:00z",
        "2026-11-02T09:30:00+24:00",
        "12000.500",
        "-0.00",
        "0.00",
        "0",
        "0.01",
        "5.1",
        "9999999999999.99",
        "10000000000000.00",
        "00000000000001",
        "0000000000001.00",
        "1.",
        ".5",
        "1e3",
        "+5",
        "1.0000",
        "1.00001",
        "0.5",
        "1.5",
        "",
        "A001",
        "O-ICBC-0001",
        "P2026110200018",
        "ev-0001",
        "a\u{80}b",
        "\u{85}",
        "x\u{9f}",
        " a",
        "a ",
        "\u{feff}a",
        "a\u{a0}",
        "\u{a0}a",
        "a\u{2028}",
        "a\u{00a1}b",
        "a\u{0}b",
        "工行 朝阳",
        "training",
        "single",
        "regular",
        "agent",
        "team",
        "branch",
        "cooling_off",
        "outlet_visit",
        "sale_closed",
        "retraction",
        "target",
        "activity_plan",
        "team_defined",
        "calendar_day",
        "holiday",
        "working_day",
        "coaching_session",
        "accompanied_visit",
        "team_meeting",
        "skill_will_evaluation",
        "improvement_measure",
        "improvement_measure_status",
        "skill",
        "weekly",
        "high",
        "low",
        "done",
        "not_done",
    ]
    .into_iter()
    .map(Value::from)
    .collect();
    values.push(Value::from("x".repeat(64)));
    values.push(Value::from("x".repeat(65)));
    values.push(Value::from("y".repeat(2_001)));
    values.extend([
        json!(0),
        json!(-0.0),
        json!(1),
        json!(-1),
        json!(2),
        json!(99),
        json!(100),
        json!(4_294_967_295_u64),
        json!(4_294_967_296_u64),
        json!(12.345),
        json!(12000.5),
        json!(10_000_000_000_000_u64),
        json!(9_999_999_999_999.99),
        json!(1.5),
        json!(0.35),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1.0),
        json!(0.0001),
        json!(1e-7),
        Value::Null,
        json!(true),
        json!(false),
        json!([]),
        json!({}),
        json!([1, 2]),
        json!({"a": 1}),
        json!(["O1", "training"]),
    ]);
    values
}

/// One change to an event.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the node picked by `at` with a boundary value.
    Boundary {
        at: usize,
        value: usize,
    },
    /// Replace the node with a value of another JSON type.
    TypeSwap {
        at: usize,
        value: usize,
    },
    Delete {
        at: usize,
    },
    /// Give a key of an object a second time, with another value.
    Repeat {
        at: usize,
        value: usize,
    },
    /// Add a key no schema knows.
    Unknown {
        at: usize,
    },
    /// Turn an object into the array of its values (as serde would read it by position).
    ArrayForObject {
        at: usize,
    },
    /// Put another example's payload in place of this one's.
    SplicePayload {
        from: usize,
    },
    /// Flip one bit of the text.
    BitFlip {
        at: usize,
        bit: u8,
    },
    /// Cut the text short.
    Truncate {
        at: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<usize>()).prop_map(|(at, value)| Mutation::Boundary { at, value }),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(at, value)| Mutation::TypeSwap { at, value }),
        2 => any::<usize>().prop_map(|at| Mutation::Delete { at }),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(at, value)| Mutation::Repeat { at, value }),
        1 => any::<usize>().prop_map(|at| Mutation::Unknown { at }),
        1 => any::<usize>().prop_map(|at| Mutation::ArrayForObject { at }),
        1 => any::<usize>().prop_map(|from| Mutation::SplicePayload { from }),
        2 => (any::<usize>(), 0_u8..8).prop_map(|(at, bit)| Mutation::BitFlip { at, bit }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

/// JSON pointers of every node below the root, in document order.
fn pointers(value: &Value, prefix: &str, out: &mut Vec<String>) {
    let escape = |key: &str| key.replace('~', "~0").replace('/', "~1");
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                let pointer = format!("{prefix}/{}", escape(key));
                out.push(pointer.clone());
                pointers(child, &pointer, out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                let pointer = format!("{prefix}/{index}");
                out.push(pointer.clone());
                pointers(child, &pointer, out);
            }
        }
        _ => {}
    }
}

fn pick(value: &Value, at: usize, include_root: bool) -> String {
    let mut all = Vec::new();
    if include_root {
        all.push(String::new());
    }
    pointers(value, "", &mut all);
    if all.is_empty() {
        return String::new();
    }
    all.swap_remove(at % all.len())
}

fn other_type(original: &Value, value: usize) -> Value {
    let choices = [
        json!(null),
        json!(true),
        json!(7),
        json!(-3.25),
        json!("text"),
        json!([]),
        json!({}),
    ];
    let differing: Vec<&Value> = choices
        .iter()
        .filter(|c| std::mem::discriminant(*c) != std::mem::discriminant(original))
        .collect();
    differing[value % differing.len()].clone()
}

/// Repeats to write: object pointer → keys given again, with their second value.
type Repeats = BTreeMap<String, Vec<(String, Value)>>;

/// Writes JSON text, giving the keys in `repeats` a second time at the end of their object.
fn write(value: &Value, pointer: &str, repeats: &Repeats, out: &mut String) {
    match value {
        Value::Object(object) => {
            out.push('{');
            let mut first = true;
            let extra = repeats.get(pointer).map(Vec::as_slice).unwrap_or_default();
            for (key, child) in object.iter().chain(extra.iter().map(|(k, v)| (k, v))) {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                let child_pointer =
                    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                write(child, &child_pointer, repeats, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, child) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write(child, &format!("{pointer}/{index}"), repeats, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn mutate(seed: &Value, mutations: &[Mutation], seeds: &[Value], pool: &[Value]) -> Vec<u8> {
    let mut event = seed.clone();
    let mut repeats = Repeats::new();
    let mut byte_changes = Vec::new();
    for mutation in mutations {
        match mutation {
            Mutation::Boundary { at, value } => {
                let pointer = pick(&event, *at, false);
                if let Some(node) = event.pointer_mut(&pointer) {
                    *node = pool[value % pool.len()].clone();
                }
            }
            Mutation::TypeSwap { at, value } => {
                let pointer = pick(&event, *at, false);
                if let Some(node) = event.pointer_mut(&pointer) {
                    *node = other_type(node, *value);
                }
            }
            Mutation::Delete { at } => {
                let pointer = pick(&event, *at, false);
                if let Some((parent, key)) = pointer.rsplit_once('/')
                    && let Some(Value::Object(object)) = event.pointer_mut(parent)
                {
                    object.remove(&key.replace("~1", "/").replace("~0", "~"));
                }
            }
            Mutation::Repeat { at, value } => {
                let pointer = pick(&event, *at, true);
                if let Some(Value::Object(object)) = event.pointer(&pointer)
                    && let Some(key) = object.keys().nth(value % object.len().max(1))
                {
                    repeats
                        .entry(pointer)
                        .or_default()
                        .push((key.clone(), pool[value % pool.len()].clone()));
                }
            }
            Mutation::Unknown { at } => {
                let pointer = pick(&event, *at, true);
                if let Some(Value::Object(object)) = event.pointer_mut(&pointer) {
                    object.insert("surprise".to_owned(), json!(1));
                }
            }
            Mutation::ArrayForObject { at } => {
                let pointer = pick(&event, *at, true);
                if let Some(node) = event.pointer_mut(&pointer)
                    && let Value::Object(object) = node
                {
                    *node = Value::Array(object.values().cloned().collect());
                }
            }
            Mutation::SplicePayload { from } => {
                let donor = &seeds[from % seeds.len()];
                if let (Some(object), Some(payload)) = (event.as_object_mut(), donor.get("payload"))
                {
                    object.insert("payload".to_owned(), payload.clone());
                }
            }
            Mutation::BitFlip { .. } | Mutation::Truncate { .. } => byte_changes.push(mutation),
        }
    }
    // Repeats of keys a later mutation removed are dropped with them.
    repeats.retain(|pointer, _| event.pointer(pointer).is_some_and(Value::is_object));
    let mut text = String::new();
    write(&event, "", &repeats, &mut text);
    let mut bytes = text.into_bytes();
    for change in byte_changes {
        match change {
            Mutation::BitFlip { at, bit } if !bytes.is_empty() => {
                let index = at % bytes.len();
                bytes[index] ^= 1 << bit;
            }
            Mutation::Truncate { at } if !bytes.is_empty() => bytes.truncate(at % bytes.len()),
            _ => {}
        }
    }
    bytes
}

fn cases() -> u32 {
    std::env::var("AQS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

#[test]
fn accepted_events_are_valid_by_the_published_schema_and_nothing_panics() {
    let seeds = seeds();
    let pool = boundary_values();
    let published = Published::load();
    let decoder = Decoder::standard();
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..seeds.len(), prop::collection::vec(mutation(), 1..4));
    let accepted = std::cell::Cell::new(0_u32);
    let refused = std::cell::Cell::new(0_u32);
    let outcome = runner.run(&strategy, |(seed, mutations)| {
        let bytes = mutate(&seeds[seed], &mutations, &seeds, &pool);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let fast = decoder.decode_fast(&bytes);
        let thorough = decoder.decode_thorough(&bytes);
        if let Some(event) = &fast {
            prop_assert_eq!(
                thorough.as_ref().ok(),
                Some(event),
                "the fast path accepted what the thorough path reads otherwise: {}",
                text
            );
        }
        match decoder.decode(&bytes) {
            Ok(event) => {
                accepted.set(accepted.get() + 1);
                prop_assert!(
                    published.accepts(&bytes),
                    "accepted, but the published contract refuses it: {}",
                    text
                );
                let canonical = serde_json::to_vec(&event).expect("serialise");
                prop_assert!(
                    published.accepts(&canonical),
                    "its canonical form is refused by the published contract: {}",
                    String::from_utf8_lossy(&canonical)
                );
                prop_assert_eq!(decode_canonical(&canonical).ok(), Some(event));
            }
            Err(rejection) => {
                refused.set(refused.get() + 1);
                prop_assert!(
                    !rejection.errors.is_empty(),
                    "a rejection without a reason: {}",
                    text
                );
                prop_assert!(
                    rejection.errors.len() <= MAX_PROBLEMS_PER_EVENT + 1,
                    "{} problems listed: {}",
                    rejection.errors.len(),
                    text
                );
            }
        }
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    let (accepted, refused) = (accepted.get(), refused.get());
    eprintln!(
        "fuzz: {} cases, {accepted} accepted, {refused} refused",
        cases()
    );
    // The mutations must reach both sides, or the invariant says little.
    assert!(
        accepted > 0 && refused > 0,
        "accepted {accepted}, refused {refused}"
    );
}
