//! The table of bad events and the exact problems each must be reported with.

use serde_json::{Value, json};

use crate::decode::Decoder;
use crate::error::InvalidEvent;

fn visit() -> Value {
    json!({
        "event_id": "ev-1", "type": "outlet_visit", "schema_version": 1,
        "occurred_at": "2026-11-02T09:30:00+08:00", "source": "mobile-worklog", "agent_id": "A001",
        "payload": {"outlet_id": "O1", "purpose": "training"}
    })
}

fn consultation() -> Value {
    json!({
        "event_id": "ev-2", "type": "consultation", "schema_version": 1,
        "occurred_at": "2026-11-02T10:00:00+08:00", "source": "mobile-worklog", "agent_id": "A001",
        "payload": {"outlet_id": "O1", "customers_consulted": 4, "customers_interested": 2}
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

fn cancellation() -> Value {
    json!({
        "event_id": "ev-4", "type": "policy_cancelled", "schema_version": 1,
        "occurred_at": "2026-11-09T11:00:00+08:00", "source": "core-policy", "agent_id": "A001",
        "payload": {"policy_id": "P1", "refund": "5000.00", "reason": "cooling_off"}
    })
}

fn plan() -> Value {
    json!({
        "event_id": "ev-5", "type": "activity_plan", "schema_version": 1,
        "occurred_at": "2026-11-01T20:00:00+08:00", "source": "mobile-worklog", "agent_id": "A001",
        "payload": {"period_start": "2026-11-02", "period_end": "2026-11-08", "visits": 15}
    })
}

fn team() -> Value {
    json!({
        "event_id": "ev-6", "type": "team_defined", "schema_version": 1,
        "occurred_at": "2026-11-01T08:00:00+08:00", "source": "hr-roster",
        "payload": {"team_id": "T1", "team_name": "一组", "branch_id": "B1", "region_id": "R1"}
    })
}

fn agent_target() -> Value {
    json!({
        "event_id": "ev-7", "type": "target", "schema_version": 1,
        "occurred_at": "2026-11-01T09:00:00+08:00", "source": "planning", "agent_id": "A001",
        "payload": {"month": "2026-11", "scope": "agent", "scope_id": "A001", "premium": "300000"}
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

fn without(mut event: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    event
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("parent object")
        .remove(key);
    event
}

fn problems(rejection: &InvalidEvent) -> Vec<(String, &'static str)> {
    let mut found: Vec<_> = rejection
        .errors
        .iter()
        .map(|e| (e.field.clone(), e.problem.code()))
        .collect();
    found.sort();
    found
}

#[test]
fn every_example_of_the_contract_is_accepted() {
    for event in [
        visit(),
        consultation(),
        sale(),
        cancellation(),
        plan(),
        team(),
        agent_target(),
    ] {
        let bytes = serde_json::to_vec(&event).expect("json");
        let decoded = Decoder::standard().decode(&bytes);
        assert!(decoded.is_ok(), "{event}: {decoded:?}");
    }
}

/// A bad event: its name, its bytes and the (field, code) pairs it must be refused with.
type Case = (&'static str, Vec<u8>, Vec<(&'static str, &'static str)>);

#[test]
fn bad_events_report_exactly_their_problems() {
    let long_id = "x".repeat(65);
    let cases: Vec<Case> = vec![
        (
            "missing outlet",
            json_bytes(without(visit(), "/payload/outlet_id")),
            vec![("payload.outlet_id", "missing")],
        ),
        (
            "negative premium text",
            json_bytes(with(sale(), "/payload/premium", json!("-5.00"))),
            vec![("payload.premium", "negative")],
        ),
        (
            "negative premium number",
            json_bytes(with(sale(), "/payload/premium", json!(-5))),
            vec![("payload.premium", "negative")],
        ),
        (
            "zero premium",
            json_bytes(with(sale(), "/payload/premium", json!("0.00"))),
            vec![("payload.premium", "not_positive")],
        ),
        (
            "three decimals text",
            json_bytes(with(sale(), "/payload/premium", json!("12.345"))),
            vec![("payload.premium", "too_many_decimals")],
        ),
        (
            "three decimals number",
            json_bytes(with(sale(), "/payload/premium", json!(12.345))),
            vec![("payload.premium", "too_many_decimals")],
        ),
        (
            "premium not a number",
            json_bytes(with(sale(), "/payload/premium", json!("lots"))),
            vec![("payload.premium", "bad_format")],
        ),
        (
            "more interested than consulted",
            json_bytes(with(
                consultation(),
                "/payload/customers_interested",
                json!(5),
            )),
            vec![(
                "payload.customers_interested",
                "interested_exceeds_consulted",
            )],
        ),
        (
            "nobody consulted",
            json_bytes(with(
                with(consultation(), "/payload/customers_consulted", json!(0)),
                "/payload/customers_interested",
                json!(0),
            )),
            vec![("payload.customers_consulted", "out_of_range")],
        ),
        (
            "count as text",
            json_bytes(with(
                consultation(),
                "/payload/customers_consulted",
                json!("4"),
            )),
            vec![("payload.customers_consulted", "wrong_type")],
        ),
        (
            "empty event id",
            json_bytes(with(visit(), "/event_id", json!(""))),
            vec![("event_id", "empty")],
        ),
        (
            "event id over 64",
            json_bytes(with(visit(), "/event_id", json!(long_id))),
            vec![("event_id", "too_long")],
        ),
        (
            "id with trailing space",
            json_bytes(with(visit(), "/payload/outlet_id", json!("O1 "))),
            vec![("payload.outlet_id", "bad_characters")],
        ),
        (
            "time zone missing",
            json_bytes(with(visit(), "/occurred_at", json!("2026-11-02T09:30:00"))),
            vec![("occurred_at", "time_zone_missing")],
        ),
        (
            "not a timestamp",
            json_bytes(with(visit(), "/occurred_at", json!("tomorrow morning"))),
            vec![("occurred_at", "bad_format")],
        ),
        (
            "date range inverted",
            json_bytes(with(plan(), "/payload/period_end", json!("2026-11-01"))),
            vec![("payload.period_end", "date_range_inverted")],
        ),
        (
            "plan without counts",
            json_bytes(without(plan(), "/payload/visits")),
            vec![("payload", "inconsistent")],
        ),
        (
            "bad date",
            json_bytes(with(plan(), "/payload/period_start", json!("2026-02-30"))),
            vec![("payload.period_start", "bad_format")],
        ),
        (
            "unknown type",
            json_bytes(with(visit(), "/type", json!("coffee_break"))),
            vec![("type", "unknown_type")],
        ),
        (
            "newer schema version",
            json_bytes(with(visit(), "/schema_version", json!(2))),
            vec![("schema_version", "unsupported_version")],
        ),
        (
            "schema version zero",
            json_bytes(with(visit(), "/schema_version", json!(0))),
            vec![("schema_version", "out_of_range")],
        ),
        (
            "misspelt field",
            json_bytes(with(
                without(sale(), "/payload/premium"),
                "/payload/premuim",
                json!("5000"),
            )),
            vec![
                ("payload.premium", "missing"),
                ("payload.premuim", "unknown_field"),
            ],
        ),
        (
            "unknown purpose",
            json_bytes(with(visit(), "/payload/purpose", json!("lunch"))),
            vec![("payload.purpose", "not_allowed")],
        ),
        (
            "agent missing",
            json_bytes(without(visit(), "/agent_id")),
            vec![("agent_id", "missing")],
        ),
        (
            "agent on team data",
            json_bytes(with(team(), "/agent_id", json!("A001"))),
            vec![("agent_id", "inconsistent")],
        ),
        (
            "regular without years",
            json_bytes(without(sale(), "/payload/payment_years")),
            vec![("payload.payment_years", "missing")],
        ),
        (
            "single with years",
            json_bytes(with(sale(), "/payload/payment_mode", json!("single"))),
            vec![("payload.payment_years", "inconsistent")],
        ),
        (
            "agent target for someone else",
            json_bytes(with(agent_target(), "/payload/scope_id", json!("A002"))),
            vec![("payload.scope_id", "inconsistent")],
        ),
        (
            "rate above one",
            json_bytes(with(
                agent_target(),
                "/payload/outlet_activity_rate",
                json!("1.5"),
            )),
            vec![("payload.outlet_activity_rate", "out_of_range")],
        ),
        (
            "several problems at once",
            json_bytes(with(
                with(
                    without(cancellation(), "/source"),
                    "/payload/refund",
                    json!("-1"),
                ),
                "/payload/reason",
                json!("changed mind"),
            )),
            vec![
                ("payload.reason", "not_allowed"),
                ("payload.refund", "negative"),
                ("source", "missing"),
            ],
        ),
        (
            "envelope and cross-field problems together",
            json_bytes(with(
                with(consultation(), "/source", json!("")),
                "/payload/customers_interested",
                json!(9),
            )),
            vec![
                (
                    "payload.customers_interested",
                    "interested_exceeds_consulted",
                ),
                ("source", "empty"),
            ],
        ),
        (
            "not json",
            b"{\"event_id\": ".to_vec(),
            vec![("", "malformed_json")],
        ),
        (
            "not an object",
            b"[1, 2]".to_vec(),
            vec![("", "not_an_object")],
        ),
    ];
    let decoder = Decoder::standard();
    for (name, bytes, expected) in cases {
        assert!(
            decoder.decode_fast(&bytes).is_none(),
            "{name}: the fast path accepted a bad event"
        );
        let rejection = decoder.decode(&bytes).expect_err(name);
        let expected: Vec<(String, &str)> = expected
            .into_iter()
            .map(|(f, c)| (f.to_owned(), c))
            .collect();
        assert_eq!(problems(&rejection), expected, "{name}: {rejection}");
    }
}

#[test]
fn a_rejection_reads_well() {
    let bytes = json_bytes(with(
        with(sale(), "/payload/premium", json!("-5.00")),
        "/event_id",
        json!("ev-77"),
    ));
    let rejection = Decoder::standard()
        .decode(&bytes)
        .expect_err("negative premium");
    assert_eq!(
        rejection.to_string(),
        "event \"ev-77\" (sale_closed) rejected: payload.premium: must not be negative"
    );
    let as_json = serde_json::to_value(&rejection).expect("serialise");
    assert_eq!(
        as_json["errors"][0],
        json!({"field": "payload.premium", "code": "negative"})
    );
}

fn json_bytes(value: Value) -> Vec<u8> {
    serde_json::to_vec(&value).expect("json")
}
