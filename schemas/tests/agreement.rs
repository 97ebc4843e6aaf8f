//! The fast path, the thorough path and the published contract (the checked-in JSON Schema
//! documents, loaded from disk) agree on every class of input that once slipped through one
//! of them: dates the stores cannot hold, repeated keys, C1 control characters in ids,
//! arrays in place of objects, leap seconds, money beyond its pattern, and events with more
//! problems than an answer should list.
//!
//! Repeated keys are the one class JSON Schema cannot state (a validator sees the tree a
//! JSON parser built, with one of the values dropped): the documents state the rule in
//! their descriptions, and here the published contract is the documents plus that rule,
//! checked on the text.

mod published;

use aqs_schemas::{Decoder, MAX_PROBLEMS_PER_EVENT};
use published::{Published, repeats_a_key};
use serde_json::{Value, json};

fn visit() -> Value {
    json!({
        "event_id": "ev-1", "type": "outlet_visit", "schema_version": 1,
        "occurred_at": "2026-11-02T09:30:00+08:00", "source": "mobile-worklog", "agent_id": "A001",
        "payload": {"outlet_id": "O1", "purpose": "training"}
    })
}

fn sale() -> Value {
    json!({
        "event_id": "ev-3", "type": "sale_closed", "schema_version": 1,
        "occurred_at": "2026-11-02T14:00:00+08:00", "source": "core-policy", "agent_id": "A001",
        "payload": {"outlet_id": "O1", "policy_id": "P1", "product_code": "WL", "premium": "5000.00",
                    "payment_mode": "regular", "payment_years": 10}
    })
}

fn plan() -> Value {
    json!({
        "event_id": "ev-5", "type": "activity_plan", "schema_version": 1,
        "occurred_at": "2026-11-01T20:00:00+08:00", "source": "mobile-worklog", "agent_id": "A001",
        "payload": {"period_start": "2026-11-02", "period_end": "2026-11-08", "visits": 15,
                    "visits_by_purpose": {"training": 5}}
    })
}

fn join() -> Value {
    json!({
        "event_id": "ev-8", "type": "agent_joined_team", "schema_version": 1,
        "occurred_at": "2026-11-01T08:00:00+08:00", "source": "hr-roster", "agent_id": "A001",
        "payload": {"team_id": "T1", "effective_date": "2026-11-01"}
    })
}

fn profile() -> Value {
    json!({
        "event_id": "ev-10", "type": "agent_profile", "schema_version": 1,
        "occurred_at": "2026-11-01T08:05:00+08:00", "source": "hr-roster", "agent_id": "A001",
        "payload": {"display_name": "王芳"}
    })
}

fn assignment() -> Value {
    json!({
        "event_id": "ev-9", "type": "outlet_assigned", "schema_version": 1,
        "occurred_at": "2026-11-01T08:00:00+08:00", "source": "hr-roster", "agent_id": "A001",
        "payload": {"outlet_id": "O1", "effective_date": "2026-11-01"}
    })
}

fn target() -> Value {
    json!({
        "event_id": "ev-7", "type": "target", "schema_version": 1,
        "occurred_at": "2026-11-01T09:00:00+08:00", "source": "planning", "agent_id": "A001",
        "payload": {"month": "2026-11", "scope": "agent", "scope_id": "A001", "premium": "300000"}
    })
}

fn calendar_day() -> Value {
    json!({
        "event_id": "ev-11", "type": "calendar_day", "schema_version": 1,
        "occurred_at": "2026-09-20T10:00:00+08:00", "source": "hr-roster",
        "payload": {"date": "2026-10-10", "kind": "working_day", "name": "国庆节调休"}
    })
}

fn team_defined() -> Value {
    json!({
        "event_id": "ev-12", "type": "team_defined", "schema_version": 1,
        "occurred_at": "2026-11-10T09:00:00+08:00", "source": "hr-roster",
        "payload": {"team_id": "T1", "team_name": "北京一组", "branch_id": "B2",
                    "region_id": "R1", "effective_from": "2026-11-15"}
    })
}

fn with(mut event: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    event
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("parent object")
        .insert(key.to_owned(), value);
    event
}

fn bytes(event: &Value) -> Vec<u8> {
    serde_json::to_vec(event).expect("json")
}

/// `event` as text where the object at `pointer` gives `key` twice: first its own value,
/// last `value` (the one a "last wins" reader would keep).
fn repeating(event: &Value, pointer: &str, key: &str, value: &Value) -> Vec<u8> {
    let text = serde_json::to_string(event).expect("json");
    let object = event.pointer(pointer).expect("object");
    let original = &object[key];
    let mut rest = object.clone();
    rest.as_object_mut().expect("object").remove(key);
    let rest = rest.to_string();
    let rest = rest.trim_start_matches('{').trim_end_matches('}');
    let separator = if rest.is_empty() { "" } else { "," };
    let repeated = format!(
        "{{{}:{original},{rest}{separator}{}:{value}}}",
        json!(key),
        json!(key)
    );
    text.replacen(&object.to_string(), &repeated, 1)
        .into_bytes()
}

/// A class of input: examples that all three must refuse, each with the (field, code)
/// pairs the decoder reports.
struct Refused {
    name: &'static str,
    bytes: Vec<u8>,
    problems: Vec<(&'static str, &'static str)>,
}

fn refused(
    name: &'static str,
    bytes: Vec<u8>,
    problems: &[(&'static str, &'static str)],
) -> Refused {
    Refused {
        name,
        bytes,
        problems: problems.to_vec(),
    }
}

fn assert_all_refuse(cases: Vec<Refused>) {
    let decoder = Decoder::standard();
    let published = Published::load();
    for case in cases {
        let name = case.name;
        assert!(
            decoder.decode_fast(&case.bytes).is_none(),
            "{name}: the fast path accepted it"
        );
        let rejection = decoder
            .decode_thorough(&case.bytes)
            .expect_err(&format!("{name}: the thorough path accepted it"));
        let mut found: Vec<(String, &str)> = rejection
            .errors
            .iter()
            .map(|e| (e.field.clone(), e.problem.code()))
            .collect();
        found.sort();
        let mut expected: Vec<(String, &str)> = case
            .problems
            .iter()
            .map(|(field, code)| ((*field).to_owned(), *code))
            .collect();
        expected.sort();
        assert_eq!(found, expected, "{name}: {rejection}");
        assert!(
            decoder.decode(&case.bytes).is_err(),
            "{name}: the decoder accepted it"
        );
        assert!(
            !published.accepts(&case.bytes),
            "{name}: the published contract accepts it"
        );
    }
}

fn assert_all_accept(cases: Vec<(&'static str, Vec<u8>)>) {
    let decoder = Decoder::standard();
    let published = Published::load();
    for (name, bytes) in cases {
        let fast = decoder
            .decode_fast(&bytes)
            .unwrap_or_else(|| panic!("{name}: the fast path refused it"));
        let thorough = decoder
            .decode_thorough(&bytes)
            .unwrap_or_else(|e| panic!("{name}: the thorough path refused it: {e}"));
        assert_eq!(fast, thorough, "{name}: the paths read it differently");
        assert!(
            published.accepts(&bytes),
            "{name}: the published contract refuses it"
        );
    }
}

#[test]
fn dates_the_stores_cannot_hold_or_that_are_not_exact_are_refused_by_all_three() {
    assert_all_refuse(vec![
        refused(
            "plan from 1969-12-31",
            bytes(&with(plan(), "/payload/period_start", json!("1969-12-31"))),
            &[("payload.period_start", "out_of_range")],
        ),
        refused(
            "join effective 2150-01-01",
            bytes(&with(
                join(),
                "/payload/effective_date",
                json!("2150-01-01"),
            )),
            &[("payload.effective_date", "out_of_range")],
        ),
        refused(
            "target for 2150-01",
            bytes(&with(target(), "/payload/month", json!("2150-01"))),
            &[("payload.month", "out_of_range")],
        ),
        refused(
            "assignment from 1999-12-31",
            bytes(&with(
                assignment(),
                "/payload/effective_date",
                json!("1999-12-31"),
            )),
            &[("payload.effective_date", "out_of_range")],
        ),
        refused(
            "negative year",
            bytes(&with(plan(), "/payload/period_end", json!("-0001-01-01"))),
            &[("payload.period_end", "bad_format")],
        ),
        refused(
            "five-digit year",
            bytes(&with(
                join(),
                "/payload/effective_date",
                json!("+10000-01-01"),
            )),
            &[("payload.effective_date", "bad_format")],
        ),
        refused(
            "one-digit month and day",
            bytes(&with(
                assignment(),
                "/payload/effective_date",
                json!("2026-1-5"),
            )),
            &[("payload.effective_date", "bad_format")],
        ),
        refused(
            "one-digit month of a target",
            bytes(&with(target(), "/payload/month", json!("2026-1"))),
            &[("payload.month", "bad_format")],
        ),
        refused(
            "occurred in 1999",
            bytes(&with(
                visit(),
                "/occurred_at",
                json!("1999-12-31T23:00:00+08:00"),
            )),
            &[("occurred_at", "out_of_range")],
        ),
    ]);
    assert_all_accept(vec![
        (
            "first day of the years",
            bytes(&with(
                join(),
                "/payload/effective_date",
                json!("2000-01-01"),
            )),
        ),
        (
            "last day of the years",
            bytes(&with(
                with(plan(), "/payload/period_start", json!("2099-12-28")),
                "/payload/period_end",
                json!("2099-12-31"),
            )),
        ),
        (
            "last month of the years",
            bytes(&with(target(), "/payload/month", json!("2099-12"))),
        ),
    ]);
}

#[test]
fn repeated_keys_are_refused_by_all_three() {
    let cases = vec![
        refused(
            "source given twice",
            repeating(&visit(), "", "source", &json!("someone-else")),
            &[("source", "duplicate_key")],
        ),
        refused(
            "event_id given twice",
            repeating(&visit(), "", "event_id", &json!("ev-2")),
            &[("event_id", "duplicate_key")],
        ),
        refused(
            "premium given twice",
            repeating(&sale(), "/payload", "premium", &json!("1.00")),
            &[("payload.premium", "duplicate_key")],
        ),
        refused(
            "the same value twice",
            repeating(&visit(), "/payload", "purpose", &json!("training")),
            &[("payload.purpose", "duplicate_key")],
        ),
        refused(
            "a nested object's key twice",
            repeating(&plan(), "/payload/visits_by_purpose", "training", &json!(1)),
            &[("payload.visits_by_purpose.training", "duplicate_key")],
        ),
    ];
    // The documents state the rule in words; without it they would take the tree a parser
    // built, which no longer shows the repeat.
    let published = Published::load();
    for case in &cases {
        assert!(
            repeats_a_key(&case.bytes),
            "{}: the case repeats a key",
            case.name
        );
        let tree: Value = serde_json::from_slice(&case.bytes).expect("json");
        assert!(
            published.documents_accept(&tree),
            "{}: only the stated rule refuses it",
            case.name
        );
    }
    let event_document: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("json/v1/event.json"),
        )
        .expect("event.json"),
    )
    .expect("json");
    assert!(
        event_document["description"]
            .as_str()
            .is_some_and(|d| d.contains("unique keys") && d.contains("duplicate_key")),
        "event.json states the rule"
    );
    assert_all_refuse(cases);
}

#[test]
fn c1_control_characters_in_ids_are_refused_by_all_three() {
    assert_all_refuse(vec![
        refused(
            "NEL in the event id",
            bytes(&with(visit(), "/event_id", json!("ev\u{85}1"))),
            &[("event_id", "bad_characters")],
        ),
        refused(
            "U+0080 in an outlet id",
            bytes(&with(visit(), "/payload/outlet_id", json!("O\u{80}1"))),
            &[("payload.outlet_id", "bad_characters")],
        ),
        refused(
            "U+009F ending an agent id",
            bytes(&with(visit(), "/agent_id", json!("A001\u{9f}"))),
            &[("agent_id", "bad_characters")],
        ),
        refused(
            "a byte-order mark starting a source",
            bytes(&with(visit(), "/source", json!("\u{feff}worklog"))),
            &[("source", "bad_characters")],
        ),
    ]);
    assert_all_accept(vec![
        (
            "U+00A1 inside an id",
            bytes(&with(visit(), "/payload/outlet_id", json!("O\u{a1}1"))),
        ),
        (
            "a space inside an id",
            bytes(&with(visit(), "/payload/outlet_id", json!("工行 朝阳支行"))),
        ),
    ]);
}

#[test]
fn arrays_in_place_of_objects_are_refused_by_all_three() {
    let positional_envelope = json!([
        "ev-1", "outlet_visit", 1, "2026-11-02T09:30:00+08:00", "mobile-worklog", "A001",
        {"outlet_id": "O1", "purpose": "training"}
    ]);
    assert_all_refuse(vec![
        refused(
            "the envelope as an array",
            bytes(&positional_envelope),
            &[("", "not_an_object")],
        ),
        refused(
            "the payload as an array",
            bytes(&with(visit(), "/payload", json!(["O1", "training"]))),
            &[("payload", "wrong_type")],
        ),
        refused(
            "visits by purpose as an array",
            bytes(&with(
                plan(),
                "/payload/visits_by_purpose",
                json!([1, 2, 3, 4, 5]),
            )),
            &[("payload.visits_by_purpose", "wrong_type")],
        ),
    ]);
}

#[test]
fn leap_seconds_are_refused_by_all_three() {
    assert_all_refuse(vec![
        refused(
            "a leap second in UTC",
            bytes(&with(
                visit(),
                "/occurred_at",
                json!("2026-12-31T23:59:60Z"),
            )),
            &[("occurred_at", "bad_format")],
        ),
        refused(
            "a leap second in Shanghai",
            bytes(&with(
                visit(),
                "/occurred_at",
                json!("2027-01-01T07:59:60+08:00"),
            )),
            &[("occurred_at", "bad_format")],
        ),
    ]);
    assert_all_accept(vec![(
        "the last second before",
        bytes(&with(
            visit(),
            "/occurred_at",
            json!("2026-12-31T23:59:59.999Z"),
        )),
    )]);
}

#[test]
fn money_beyond_its_pattern_is_refused_by_all_three() {
    assert_all_refuse(vec![
        refused(
            "three decimals, the last zero",
            bytes(&with(sale(), "/payload/premium", json!("12000.500"))),
            &[("payload.premium", "too_many_decimals")],
        ),
        refused(
            "negative zero",
            bytes(&with(sale(), "/payload/premium", json!("-0.00"))),
            &[("payload.premium", "negative")],
        ),
        refused(
            "fourteen integer digits",
            bytes(&with(sale(), "/payload/premium", json!("00000000000001"))),
            &[("payload.premium", "bad_format")],
        ),
        refused(
            "a number with three decimals",
            bytes(&with(sale(), "/payload/premium", json!(12000.505))),
            &[("payload.premium", "too_many_decimals")],
        ),
        refused(
            "a number beyond thirteen digits",
            bytes(&with(
                sale(),
                "/payload/premium",
                json!(10_000_000_000_000_u64),
            )),
            &[("payload.premium", "out_of_range")],
        ),
    ]);
    assert_all_accept(vec![
        (
            "two decimals",
            bytes(&with(sale(), "/payload/premium", json!("12000.50"))),
        ),
        (
            "a number with one decimal",
            bytes(&with(sale(), "/payload/premium", json!(12000.5))),
        ),
        (
            "the largest premium",
            bytes(&with(sale(), "/payload/premium", json!("9999999999999.99"))),
        ),
    ]);
}

#[test]
fn an_event_with_thousands_of_problems_lists_a_bounded_few() {
    let mut event = visit();
    let payload = event["payload"].as_object_mut().expect("payload");
    for n in 0..5_000 {
        payload.insert(format!("extra-{n:05}"), json!(n));
    }
    let bytes = bytes(&event);
    let rejection = Decoder::standard()
        .decode_thorough(&bytes)
        .expect_err("unknown fields");
    assert_eq!(rejection.errors.len(), MAX_PROBLEMS_PER_EVENT + 1);
    assert!(
        rejection.errors[..MAX_PROBLEMS_PER_EVENT]
            .iter()
            .all(|e| e.problem.code() == "unknown_field" && e.field.starts_with("payload.extra-"))
    );
    let last = rejection.errors.last().expect("summary");
    assert_eq!(
        (last.field.as_str(), last.problem.code()),
        ("", "too_many_problems")
    );
    assert_eq!(
        last.problem.to_string(),
        format!(
            "{} more problems not listed",
            5_000 - MAX_PROBLEMS_PER_EVENT
        )
    );
    assert!(Decoder::standard().decode_fast(&bytes).is_none());
    assert!(!Published::load().accepts(&bytes));

    // Repeated keys count towards the same bound, and a long id is not echoed back.
    let mut text = serde_json::to_string(&with(visit(), "/event_id", json!("x".repeat(10_000))))
        .expect("json");
    text.insert_str(1, &r#""source":"a","#.repeat(3_000));
    let rejection = Decoder::standard()
        .decode_thorough(text.as_bytes())
        .expect_err("repeats");
    assert_eq!(rejection.errors.len(), MAX_PROBLEMS_PER_EVENT + 1);
    assert_eq!(rejection.event_id, None);
    assert!(
        rejection.to_string().len() < 4_000,
        "{}",
        rejection.to_string().len()
    );
}

/// An agent profile carries a name and nothing else: all three refuse an empty or over-long
/// name and personal data beside it.
#[test]
fn agent_profiles_are_read_alike_by_all_three() {
    assert_all_refuse(vec![
        refused(
            "empty display name",
            bytes(&with(profile(), "/payload/display_name", json!(""))),
            &[("payload.display_name", "empty")],
        ),
        refused(
            "display name of 201 characters",
            bytes(&with(
                profile(),
                "/payload/display_name",
                json!("王".repeat(201)),
            )),
            &[("payload.display_name", "too_long")],
        ),
        refused(
            "a phone number beside the name",
            bytes(&with(profile(), "/payload/phone", json!("13800000000"))),
            &[("payload.phone", "unknown_field")],
        ),
        refused(
            "no display name",
            bytes(&with(profile(), "/payload", json!({}))),
            &[("payload.display_name", "missing")],
        ),
    ]);
    assert_all_accept(vec![
        ("a Chinese name", bytes(&profile())),
        (
            "a name of 200 characters",
            bytes(&with(
                profile(),
                "/payload/display_name",
                json!("李".repeat(200)),
            )),
        ),
        (
            "a Latin name with a space inside",
            bytes(&with(profile(), "/payload/display_name", json!("Li Wei"))),
        ),
    ]);
}

/// A calendar day names a date the stores can hold, one of two kinds and an optional name
/// of 1 to 200 characters: all three read it alike. (That it names no agent is a rule of the
/// envelope across fields, which the published documents state for no type; both paths of
/// the decoder refuse it.)
#[test]
fn calendar_days_are_read_alike_by_all_three() {
    assert_all_refuse(vec![
        refused(
            "a date before 2000",
            bytes(&with(calendar_day(), "/payload/date", json!("1999-12-31"))),
            &[("payload.date", "out_of_range")],
        ),
        refused(
            "a date that is no calendar day",
            bytes(&with(calendar_day(), "/payload/date", json!("2026-02-29"))),
            &[("payload.date", "bad_format")],
        ),
        refused(
            "a date with a time",
            bytes(&with(
                calendar_day(),
                "/payload/date",
                json!("2026-10-10T00:00:00"),
            )),
            &[("payload.date", "bad_format")],
        ),
        refused(
            "a kind that is neither",
            bytes(&with(calendar_day(), "/payload/kind", json!("half_day"))),
            &[("payload.kind", "not_allowed")],
        ),
        refused(
            "no kind",
            bytes(&with(
                calendar_day(),
                "/payload",
                json!({"date": "2026-10-10"}),
            )),
            &[("payload.kind", "missing")],
        ),
        refused(
            "an empty name",
            bytes(&with(calendar_day(), "/payload/name", json!(""))),
            &[("payload.name", "empty")],
        ),
        refused(
            "a name of 201 characters",
            bytes(&with(
                calendar_day(),
                "/payload/name",
                json!("节".repeat(201)),
            )),
            &[("payload.name", "too_long")],
        ),
        refused(
            "a field of another event",
            bytes(&with(
                calendar_day(),
                "/payload/effective_date",
                json!("2026-10-10"),
            )),
            &[("payload.effective_date", "unknown_field")],
        ),
        refused(
            "the date given twice",
            repeating(&calendar_day(), "/payload", "date", &json!("2026-10-11")),
            &[("payload.date", "duplicate_key")],
        ),
    ]);
    assert_all_accept(vec![
        (
            "a swapped working day with its name",
            bytes(&calendar_day()),
        ),
        (
            "a holiday without a name",
            bytes(&with(
                calendar_day(),
                "/payload",
                json!({"date": "2026-10-01", "kind": "holiday"}),
            )),
        ),
        (
            "the last date the contract holds",
            bytes(&with(calendar_day(), "/payload/date", json!("2099-12-31"))),
        ),
    ]);
}

#[test]
fn a_calendar_day_naming_an_agent_is_refused_by_both_paths() {
    let decoder = Decoder::standard();
    let named = bytes(&with(calendar_day(), "/agent_id", json!("A001")));
    assert!(decoder.decode_fast(&named).is_none());
    let rejection = decoder.decode_thorough(&named).expect_err("refused");
    let found: Vec<(&str, &str)> = rejection
        .errors
        .iter()
        .map(|e| (e.field.as_str(), e.problem.code()))
        .collect();
    assert_eq!(found, [("agent_id", "inconsistent")], "{rejection}");
}

/// A team definition's `effective_from` is optional and, when given, a business date the
/// stores can hold: all three read it alike, and a definition without it stays valid.
#[test]
fn team_definitions_effective_from_is_read_alike_by_all_three() {
    assert_all_refuse(vec![
        refused(
            "an effective date before 2000",
            bytes(&with(
                team_defined(),
                "/payload/effective_from",
                json!("1999-12-31"),
            )),
            &[("payload.effective_from", "out_of_range")],
        ),
        refused(
            "an effective date that is no calendar day",
            bytes(&with(
                team_defined(),
                "/payload/effective_from",
                json!("2026-02-30"),
            )),
            &[("payload.effective_from", "bad_format")],
        ),
        refused(
            "an effective date with a time",
            bytes(&with(
                team_defined(),
                "/payload/effective_from",
                json!("2026-11-15T00:00:00+08:00"),
            )),
            &[("payload.effective_from", "bad_format")],
        ),
        refused(
            "an effective date as a number",
            bytes(&with(
                team_defined(),
                "/payload/effective_from",
                json!(20261115),
            )),
            &[("payload.effective_from", "wrong_type")],
        ),
        refused(
            "the roster's name for it",
            bytes(&with(
                team_defined(),
                "/payload/effective_date",
                json!("2026-11-15"),
            )),
            &[("payload.effective_date", "unknown_field")],
        ),
        refused(
            "the effective date given twice",
            repeating(
                &team_defined(),
                "/payload",
                "effective_from",
                &json!("2026-12-01"),
            ),
            &[("payload.effective_from", "duplicate_key")],
        ),
    ]);
    assert_all_accept(vec![
        ("a definition from a date", bytes(&team_defined())),
        (
            "a definition without an effective date (from the beginning)",
            bytes(&with(
                team_defined(),
                "/payload",
                json!({"team_id": "T1", "team_name": "北京一组", "branch_id": "B1",
                       "region_id": "R1"}),
            )),
        ),
        (
            "an effective date of null (from the beginning)",
            bytes(&with(
                team_defined(),
                "/payload/effective_from",
                json!(null),
            )),
        ),
        (
            "the last date the contract holds",
            bytes(&with(
                team_defined(),
                "/payload/effective_from",
                json!("2099-12-31"),
            )),
        ),
    ]);
}

fn coaching() -> Value {
    json!({
        "event_id": "ev-20", "type": "coaching_session", "schema_version": 1,
        "occurred_at": "2026-11-03T17:30:00+08:00", "source": "mobile-worklog",
        "agent_id": "A001",
        "payload": {"supervisor_id": "S001", "duration_minutes": 30, "topic": "skill"}
    })
}

fn accompanied() -> Value {
    json!({
        "event_id": "ev-21", "type": "accompanied_visit", "schema_version": 1,
        "occurred_at": "2026-11-02T09:30:00+08:00", "source": "mobile-worklog",
        "agent_id": "A001",
        "payload": {"supervisor_id": "S001", "outlet_id": "O001", "visit_event_id": "ev-1"}
    })
}

fn meeting() -> Value {
    json!({
        "event_id": "ev-22", "type": "team_meeting", "schema_version": 1,
        "occurred_at": "2026-11-06T16:00:00+08:00", "source": "mobile-worklog",
        "payload": {"team_id": "T01", "kind": "weekly", "duration_minutes": 120, "attendees": 9}
    })
}

fn evaluation() -> Value {
    json!({
        "event_id": "ev-23", "type": "skill_will_evaluation", "schema_version": 1,
        "occurred_at": "2026-11-28T18:00:00+08:00", "source": "mobile-worklog",
        "agent_id": "A001",
        "payload": {"supervisor_id": "S001", "month": "2026-11", "skill": "low", "will": "high"}
    })
}

fn measure() -> Value {
    json!({
        "event_id": "ev-24", "type": "improvement_measure", "schema_version": 1,
        "occurred_at": "2026-11-02T18:00:00+08:00", "source": "mobile-worklog",
        "payload": {"scope": "team", "scope_id": "T01", "month": "2026-11",
                    "measure": "每周两次陪同新人展业", "owner_id": "S001", "due_date": "2026-11-30"}
    })
}

fn measure_status() -> Value {
    json!({
        "event_id": "ev-25", "type": "improvement_measure_status", "schema_version": 1,
        "occurred_at": "2026-12-03T18:00:00+08:00", "source": "mobile-worklog",
        "payload": {"measure_event_id": "ev-24", "status": "partly", "note": "第三周未执行"}
    })
}

/// Refused by both paths of the decoder with exactly these problems: rules across fields
/// (or across the envelope and the payload) that the published documents state for no type.
fn assert_both_paths_refuse(name: &str, event: &Value, problems: &[(&str, &str)]) {
    let decoder = Decoder::standard();
    let bytes = bytes(event);
    assert!(
        decoder.decode_fast(&bytes).is_none(),
        "{name}: the fast path accepted it"
    );
    let rejection = decoder
        .decode_thorough(&bytes)
        .expect_err("refused by the thorough path");
    let found: Vec<(&str, &str)> = rejection
        .errors
        .iter()
        .map(|e| (e.field.as_str(), e.problem.code()))
        .collect();
    assert_eq!(found, problems, "{name}: {rejection}");
}

/// The coaching session's fields, each refused with its field named, by all three.
#[test]
fn coaching_sessions_are_read_alike_by_all_three() {
    assert_all_refuse(vec![
        refused(
            "no supervisor",
            bytes(&with(
                coaching(),
                "/payload",
                json!({"duration_minutes": 30, "topic": "skill"}),
            )),
            &[("payload.supervisor_id", "missing")],
        ),
        refused(
            "an empty supervisor",
            bytes(&with(coaching(), "/payload/supervisor_id", json!(""))),
            &[("payload.supervisor_id", "empty")],
        ),
        refused(
            "no minutes",
            bytes(&with(coaching(), "/payload/duration_minutes", json!(0))),
            &[("payload.duration_minutes", "out_of_range")],
        ),
        refused(
            "more than a working day",
            bytes(&with(coaching(), "/payload/duration_minutes", json!(721))),
            &[("payload.duration_minutes", "out_of_range")],
        ),
        refused(
            "minutes as text",
            bytes(&with(coaching(), "/payload/duration_minutes", json!("30"))),
            &[("payload.duration_minutes", "wrong_type")],
        ),
        refused(
            "a topic outside the quadrant's causes",
            bytes(&with(coaching(), "/payload/topic", json!("sales"))),
            &[("payload.topic", "not_allowed")],
        ),
        refused(
            "a note of 2001 characters",
            bytes(&with(coaching(), "/payload/note", json!("辅".repeat(2001)))),
            &[("payload.note", "too_long")],
        ),
        refused(
            "an outlet, which a coaching session has not",
            bytes(&with(coaching(), "/payload/outlet_id", json!("O001"))),
            &[("payload.outlet_id", "unknown_field")],
        ),
    ]);
    assert_all_accept(vec![
        ("a session on skill", bytes(&coaching())),
        (
            "a full working day on will, with a note",
            bytes(&with(
                with(coaching(), "/payload/duration_minutes", json!(720)),
                "/payload/note",
                json!("意愿激励"),
            )),
        ),
    ]);
    assert_both_paths_refuse(
        "no agent",
        &{
            let mut event = coaching();
            event.as_object_mut().expect("object").remove("agent_id");
            event
        },
        &[("agent_id", "missing")],
    );
    assert_both_paths_refuse(
        "a supervisor coaching themselves",
        &with(coaching(), "/payload/supervisor_id", json!("A001")),
        &[("payload.supervisor_id", "inconsistent")],
    );
}

#[test]
fn accompanied_visits_are_read_alike_by_all_three() {
    assert_all_refuse(vec![
        refused(
            "no outlet",
            bytes(&with(
                accompanied(),
                "/payload",
                json!({"supervisor_id": "S001"}),
            )),
            &[("payload.outlet_id", "missing")],
        ),
        refused(
            "a visit event id with a leading space",
            bytes(&with(
                accompanied(),
                "/payload/visit_event_id",
                json!(" ev-1"),
            )),
            &[("payload.visit_event_id", "bad_characters")],
        ),
        refused(
            "a visit event id of 65 characters",
            bytes(&with(
                accompanied(),
                "/payload/visit_event_id",
                json!("v".repeat(65)),
            )),
            &[("payload.visit_event_id", "too_long")],
        ),
        refused(
            "a purpose, which is the agent's visit's",
            bytes(&with(accompanied(), "/payload/purpose", json!("promotion"))),
            &[("payload.purpose", "unknown_field")],
        ),
    ]);
    assert_all_accept(vec![
        ("linked to the agent's visit", bytes(&accompanied())),
        (
            "a visit the agent did not log",
            bytes(&with(
                accompanied(),
                "/payload",
                json!({"supervisor_id": "S001", "outlet_id": "O001"}),
            )),
        ),
    ]);
    assert_both_paths_refuse(
        "a supervisor accompanying themselves",
        &with(accompanied(), "/agent_id", json!("S001")),
        &[("payload.supervisor_id", "inconsistent")],
    );
}

#[test]
fn team_meetings_are_read_alike_by_all_three() {
    assert_all_refuse(vec![
        refused(
            "no team",
            bytes(&with(
                meeting(),
                "/payload",
                json!({"kind": "weekly", "duration_minutes": 120, "attendees": 9}),
            )),
            &[("payload.team_id", "missing")],
        ),
        refused(
            "a kind the method does not have",
            bytes(&with(meeting(), "/payload/kind", json!("daily"))),
            &[("payload.kind", "not_allowed")],
        ),
        refused(
            "no minutes",
            bytes(&with(meeting(), "/payload/duration_minutes", json!(0))),
            &[("payload.duration_minutes", "out_of_range")],
        ),
        refused(
            "negative attendees",
            bytes(&with(meeting(), "/payload/attendees", json!(-1))),
            &[("payload.attendees", "negative")],
        ),
        refused(
            "the kind given twice",
            repeating(&meeting(), "/payload", "kind", &json!("morning")),
            &[("payload.kind", "duplicate_key")],
        ),
    ]);
    assert_all_accept(vec![
        ("a weekly meeting", bytes(&meeting())),
        (
            "an evening meeting nobody attended",
            bytes(&with(
                with(meeting(), "/payload/kind", json!("evening")),
                "/payload/attendees",
                json!(0),
            )),
        ),
    ]);
    assert_both_paths_refuse(
        "a meeting naming an agent",
        &with(meeting(), "/agent_id", json!("A001")),
        &[("agent_id", "inconsistent")],
    );
}

#[test]
fn skill_will_evaluations_are_read_alike_by_all_three() {
    assert_all_refuse(vec![
        refused(
            "a date for the month",
            bytes(&with(evaluation(), "/payload/month", json!("2026-11-01"))),
            &[("payload.month", "bad_format")],
        ),
        refused(
            "a rating out of two",
            bytes(&with(evaluation(), "/payload/skill", json!("medium"))),
            &[("payload.skill", "not_allowed")],
        ),
        refused(
            "no will",
            bytes(&with(
                evaluation(),
                "/payload",
                json!({"supervisor_id": "S001", "month": "2026-11", "skill": "low"}),
            )),
            &[("payload.will", "missing")],
        ),
    ]);
    assert_all_accept(vec![("low skill, high will", bytes(&evaluation()))]);
    assert_both_paths_refuse(
        "a self-evaluation",
        &with(evaluation(), "/payload/supervisor_id", json!("A001")),
        &[("payload.supervisor_id", "inconsistent")],
    );
}

#[test]
fn improvement_measures_and_their_reviews_are_read_alike_by_all_three() {
    assert_all_refuse(vec![
        refused(
            "an empty measure",
            bytes(&with(measure(), "/payload/measure", json!(""))),
            &[("payload.measure", "empty")],
        ),
        refused(
            "a scope that is no level of the organisation",
            bytes(&with(measure(), "/payload/scope", json!("outlet"))),
            &[("payload.scope", "not_allowed")],
        ),
        refused(
            "no owner",
            bytes(&with(
                measure(),
                "/payload",
                json!({"scope": "team", "scope_id": "T01", "month": "2026-11",
                       "measure": "陪同", "due_date": "2026-11-30"}),
            )),
            &[("payload.owner_id", "missing")],
        ),
        refused(
            "a due date that is no calendar day",
            bytes(&with(measure(), "/payload/due_date", json!("2026-11-31"))),
            &[("payload.due_date", "bad_format")],
        ),
        refused(
            "a review without a status",
            bytes(&with(
                measure_status(),
                "/payload",
                json!({"measure_event_id": "ev-24"}),
            )),
            &[("payload.status", "missing")],
        ),
        refused(
            "a status the review does not have",
            bytes(&with(
                measure_status(),
                "/payload/status",
                json!("cancelled"),
            )),
            &[("payload.status", "not_allowed")],
        ),
        refused(
            "a review naming no measure",
            bytes(&with(
                measure_status(),
                "/payload/measure_event_id",
                json!(""),
            )),
            &[("payload.measure_event_id", "empty")],
        ),
    ]);
    assert_all_accept(vec![
        ("a team's measure", bytes(&measure())),
        (
            "due on the first day of its month",
            bytes(&with(measure(), "/payload/due_date", json!("2026-11-01"))),
        ),
        ("a review: partly done", bytes(&measure_status())),
        (
            "a review: not done, without a note",
            bytes(&with(
                measure_status(),
                "/payload",
                json!({"measure_event_id": "ev-24", "status": "not_done"}),
            )),
        ),
    ]);
    assert_both_paths_refuse(
        "due before its month",
        &with(measure(), "/payload/due_date", json!("2026-10-31")),
        &[("payload.due_date", "inconsistent")],
    );
    assert_both_paths_refuse(
        "a review naming an agent",
        &with(measure_status(), "/agent_id", json!("A001")),
        &[("agent_id", "inconsistent")],
    );
}
