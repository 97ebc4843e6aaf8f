//! Given some events, when they are folded, then the ledger says exactly this.

use aqs_schemas::{BusinessClock, Decoder, Event, Money};
use chrono::NaiveDate;
use serde_json::{Value, json};

use super::*;

fn event(value: Value) -> Event {
    let bytes = serde_json::to_vec(&value).expect("json");
    Decoder::standard()
        .decode(&bytes)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn apply_all(ledger: &mut Ledger, events: &[Event]) -> Vec<Applied> {
    events
        .iter()
        .map(|e| ledger.apply(e, digest(&serde_json::to_vec(e).expect("json"))))
        .collect()
}

fn given(events: &[Event]) -> Ledger {
    let mut ledger = Ledger::new(BusinessClock::default());
    apply_all(&mut ledger, events);
    ledger
}

fn date(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

fn money(text: &str) -> Money {
    text.parse().expect("money")
}

fn envelope(id: &str, kind: &str, at: &str, agent: Option<&str>, payload: Value) -> Event {
    let mut value = json!({"event_id": id, "type": kind, "schema_version": 1, "occurred_at": at, "source": "test", "payload": payload});
    if let Some(agent) = agent {
        value["agent_id"] = json!(agent);
    }
    event(value)
}

fn visit(id: &str, at: &str, agent: &str, outlet: &str) -> Event {
    envelope(
        id,
        "outlet_visit",
        at,
        Some(agent),
        json!({"outlet_id": outlet, "purpose": "promotion"}),
    )
}

fn consultation(
    id: &str,
    at: &str,
    agent: &str,
    outlet: &str,
    consulted: u32,
    interested: u32,
) -> Event {
    envelope(
        id,
        "consultation",
        at,
        Some(agent),
        json!({"outlet_id": outlet, "customers_consulted": consulted, "customers_interested": interested}),
    )
}

fn sale(id: &str, at: &str, agent: &str, outlet: &str, policy: &str, premium: &str) -> Event {
    envelope(
        id,
        "sale_closed",
        at,
        Some(agent),
        json!({"outlet_id": outlet, "policy_id": policy, "product_code": "WL", "premium": premium, "payment_mode": "single"}),
    )
}

fn cancellation(id: &str, at: &str, agent: &str, policy: &str, refund: &str) -> Event {
    envelope(
        id,
        "policy_cancelled",
        at,
        Some(agent),
        json!({"policy_id": policy, "refund": refund, "reason": "cooling_off"}),
    )
}

fn retraction(id: &str, at: &str, agent: Option<&str>, target: &str) -> Event {
    envelope(
        id,
        "retraction",
        at,
        agent,
        json!({"retracted_event_id": target, "reason": "entered in error"}),
    )
}

fn join(id: &str, at: &str, agent: &str, team: &str, effective: &str) -> Event {
    envelope(
        id,
        "agent_joined_team",
        at,
        Some(agent),
        json!({"team_id": team, "effective_date": effective}),
    )
}

fn team(id: &str, team: &str, branch: &str) -> Event {
    envelope(
        id,
        "team_defined",
        "2026-11-01T08:00:00+08:00",
        None,
        json!({"team_id": team, "team_name": team, "branch_id": branch, "region_id": "R1"}),
    )
}

fn assign(id: &str, at: &str, agent: &str, outlet: &str, effective: &str, assigned: bool) -> Event {
    let kind = if assigned {
        "outlet_assigned"
    } else {
        "outlet_unassigned"
    };
    envelope(
        id,
        kind,
        at,
        Some(agent),
        json!({"outlet_id": outlet, "effective_date": effective}),
    )
}

fn plan(id: &str, at: &str, agent: &str, visits: u32) -> Event {
    envelope(
        id,
        "activity_plan",
        at,
        Some(agent),
        json!({"period_start": "2026-11-02", "period_end": "2026-11-08", "visits": visits}),
    )
}

fn cell<'a>(
    tables: &'a LedgerTables,
    agent: &str,
    outlet: &str,
    day: &str,
) -> Option<&'a Counters> {
    tables
        .agent_outlet_day
        .iter()
        .find(|r| r.agent_id == agent && r.outlet_id == outlet && r.business_date == date(day))
        .map(|r| &r.counters)
}

fn agent_day<'a>(tables: &'a LedgerTables, agent: &str, day: &str) -> &'a AgentDay {
    tables
        .agent_day
        .iter()
        .find(|r| r.agent_id == agent && r.business_date == date(day))
        .unwrap_or_else(|| panic!("no day {day} for {agent}"))
}

#[test]
fn an_event_at_2330_utc_lands_on_the_next_shanghai_date() {
    let ledger = given(&[visit("v1", "2026-11-02T23:30:00Z", "A1", "O1")]);
    let tables = ledger.tables();
    assert_eq!(tables.agent_day.len(), 1);
    assert_eq!(tables.agent_day[0].business_date, date("2026-11-03"));
}

#[test]
fn a_redelivered_event_counts_once_and_a_different_body_is_a_conflict() {
    let mut ledger = Ledger::new(BusinessClock::default());
    let first = consultation("c1", "2026-11-02T10:00:00+08:00", "A1", "O1", 4, 2);
    let other = consultation("c1", "2026-11-02T10:00:00+08:00", "A1", "O1", 9, 9);
    let outcomes = apply_all(&mut ledger, &[first.clone(), first, other]);
    assert_eq!(
        outcomes,
        vec![Applied::Applied, Applied::Duplicate, Applied::Conflict]
    );
    let tables = ledger.tables();
    let counters = cell(&tables, "A1", "O1", "2026-11-02").expect("cell");
    assert_eq!(
        (
            counters.consultations,
            counters.customers_consulted,
            counters.customers_interested
        ),
        (1, 4, 2)
    );
}

#[test]
fn a_retraction_removes_the_original_in_either_order() {
    let v = visit("v1", "2026-11-02T09:00:00+08:00", "A1", "O1");
    let keep = visit("v2", "2026-11-02T11:00:00+08:00", "A1", "O1");
    let r = retraction("r1", "2026-11-03T09:00:00+08:00", Some("A1"), "v1");
    let after = given(&[v.clone(), keep.clone(), r.clone()]).tables();
    let before = given(&[r, v, keep]).tables();
    assert_eq!(after, before);
    assert_eq!(
        cell(&after, "A1", "O1", "2026-11-02").expect("cell").visits,
        1
    );
}

#[test]
fn a_retraction_naming_no_agent_reaches_the_agent_event() {
    let v = visit("v1", "2026-11-02T09:00:00+08:00", "A1", "O1");
    let r = retraction("r1", "2026-11-03T09:00:00+08:00", None, "v1");
    assert!(given(&[v.clone(), r.clone()]).tables().agent_day.is_empty());
    assert!(given(&[r, v]).tables().agent_day.is_empty());
}

#[test]
fn retracting_a_retraction_has_no_effect() {
    let v = visit("v1", "2026-11-02T09:00:00+08:00", "A1", "O1");
    let r1 = retraction("r1", "2026-11-03T09:00:00+08:00", Some("A1"), "v1");
    let r2 = retraction("r2", "2026-11-04T09:00:00+08:00", Some("A1"), "r1");
    let mut ledger = Ledger::new(BusinessClock::default());
    let outcomes = apply_all(&mut ledger, &[v.clone(), r1.clone(), r2.clone()]);
    assert_eq!(
        outcomes[2],
        Applied::NoEffect("retractions cannot be retracted")
    );
    assert!(ledger.tables().agent_day.is_empty());
    assert_eq!(given(&[r2, r1, v]).tables(), ledger.tables());
}

#[test]
fn a_cancellation_refunds_on_its_own_date_at_the_sales_outlet() {
    let ledger = given(&[
        sale(
            "s1",
            "2026-11-02T14:00:00+08:00",
            "A1",
            "O1",
            "P1",
            "10000.10",
        ),
        cancellation("x1", "2026-11-09T11:00:00+08:00", "A1", "P1", "10000.10"),
    ]);
    let tables = ledger.tables();
    let sold = cell(&tables, "A1", "O1", "2026-11-02").expect("sale day");
    assert_eq!(
        (sold.sales, sold.premium, sold.cancellations),
        (1, money("10000.10"), 0)
    );
    let refunded = cell(&tables, "A1", "O1", "2026-11-09").expect("cancellation day");
    assert_eq!(
        (refunded.sales, refunded.cancellations, refunded.refunds),
        (0, 1, money("10000.10"))
    );
    assert_eq!(refunded.net_premium(), money("-10000.10"));
    assert!(tables.pending_cancellations.is_empty());
}

#[test]
fn a_cancellation_of_an_unknown_policy_waits_for_its_sale() {
    let x = cancellation("x1", "2026-11-09T11:00:00+08:00", "A1", "P1", "500.00");
    let pending = given(std::slice::from_ref(&x)).tables();
    assert!(
        pending.agent_outlet_day.is_empty(),
        "a pending refund counts nowhere"
    );
    assert_eq!(pending.pending_cancellations.len(), 1);
    assert_eq!(pending.pending_cancellations[0].policy_id, "P1");

    let s = sale(
        "s1",
        "2026-11-02T14:00:00+08:00",
        "A1",
        "O7",
        "P1",
        "500.00",
    );
    let resolved = given(&[x, s]).tables();
    assert!(resolved.pending_cancellations.is_empty());
    assert_eq!(
        cell(&resolved, "A1", "O7", "2026-11-09")
            .expect("refund")
            .refunds,
        money("500.00")
    );
}

#[test]
fn retracting_a_sale_after_its_cancellation_leaves_the_cancellation_pending() {
    let s = sale(
        "s1",
        "2026-11-02T14:00:00+08:00",
        "A1",
        "O1",
        "P1",
        "800.00",
    );
    let x = cancellation("x1", "2026-11-09T11:00:00+08:00", "A1", "P1", "800.00");
    let r = retraction("r1", "2026-11-10T09:00:00+08:00", Some("A1"), "s1");
    let tables = given(&[s.clone(), x.clone(), r.clone()]).tables();
    assert!(
        tables.agent_outlet_day.is_empty(),
        "neither the sale nor its refund counts"
    );
    assert_eq!(tables.pending_cancellations.len(), 1);
    assert_eq!(given(&[r, x, s]).tables(), tables);
}

#[test]
fn an_agent_moving_team_on_the_15th_counts_for_each_team_on_its_days() {
    let ledger = given(&[
        team("t1", "T1", "B1"),
        team("t2", "T2", "B2"),
        join("j1", "2026-11-01T08:00:00+08:00", "A1", "T1", "2026-11-01"),
        // The transfer is recorded late, after activity in the new team.
        visit("v1", "2026-11-14T10:00:00+08:00", "A1", "O1"),
        visit("v2", "2026-11-15T10:00:00+08:00", "A1", "O1"),
        visit("v3", "2026-11-16T10:00:00+08:00", "A1", "O1"),
        join("j2", "2026-11-16T18:00:00+08:00", "A1", "T2", "2026-11-15"),
        join("j3", "2026-11-01T08:00:00+08:00", "A2", "T2", "2026-11-01"),
        visit("v4", "2026-11-15T10:00:00+08:00", "A2", "O2"),
    ]);
    let tables = ledger.tables();
    assert_eq!(agent_day(&tables, "A1", "2026-11-14").team_id, "T1");
    assert_eq!(agent_day(&tables, "A1", "2026-11-14").branch_id, "B1");
    assert_eq!(agent_day(&tables, "A1", "2026-11-15").team_id, "T2");
    assert_eq!(agent_day(&tables, "A1", "2026-11-15").branch_id, "B2");
    let t2_on_15th = tables
        .team_day
        .iter()
        .find(|r| r.team_id == "T2" && r.business_date == date("2026-11-15"))
        .expect("team day");
    assert_eq!(
        (t2_on_15th.counters.visits, t2_on_15th.agents_active),
        (2, 2)
    );
    assert_eq!(
        tables
            .roster
            .iter()
            .filter(|r| r.agent_id == "A1")
            .map(|r| (r.team_id.as_str(), r.valid_from, r.valid_to))
            .collect::<Vec<_>>(),
        vec![
            ("T1", date("2026-11-01"), Some(date("2026-11-15"))),
            ("T2", date("2026-11-15"), None)
        ]
    );
}

#[test]
fn an_outlet_reassigned_mid_week_has_both_intervals() {
    let tables = given(&[
        assign(
            "a1",
            "2026-11-01T08:00:00+08:00",
            "A1",
            "O1",
            "2026-11-01",
            true,
        ),
        assign(
            "u1",
            "2026-11-04T08:00:00+08:00",
            "A1",
            "O1",
            "2026-11-04",
            false,
        ),
        assign(
            "a2",
            "2026-11-04T08:00:00+08:00",
            "A2",
            "O1",
            "2026-11-04",
            true,
        ),
    ])
    .tables();
    let intervals: Vec<_> = tables
        .assignments
        .iter()
        .map(|r| (r.agent_id.as_str(), r.valid_from, r.valid_to))
        .collect();
    assert_eq!(
        intervals,
        vec![
            ("A1", date("2026-11-01"), Some(date("2026-11-04"))),
            ("A2", date("2026-11-04"), None)
        ]
    );
}

#[test]
fn the_latest_plan_wins_by_occurred_at_not_arrival_and_retraction_restores_the_previous() {
    let early = plan("p1", "2026-11-01T20:00:00+08:00", "A1", 10);
    let late = plan("p2", "2026-11-04T08:00:00+08:00", "A1", 14);
    let plans = |events: &[Event]| given(events).tables().plans;
    assert_eq!(plans(&[early.clone(), late.clone()])[0].visits, Some(14));
    assert_eq!(plans(&[late.clone(), early.clone()])[0].visits, Some(14));
    let retract = retraction("r1", "2026-11-05T08:00:00+08:00", Some("A1"), "p2");
    assert_eq!(plans(&[late, retract, early])[0].visits, Some(10));
}

#[test]
fn money_sums_exactly() {
    let tables = given(&[
        sale("s1", "2026-11-02T10:00:00+08:00", "A1", "O1", "P1", "0.10"),
        sale("s2", "2026-11-02T11:00:00+08:00", "A1", "O1", "P2", "0.20"),
    ])
    .tables();
    assert_eq!(
        agent_day(&tables, "A1", "2026-11-02")
            .counters
            .premium
            .to_string(),
        "0.30"
    );
}

#[test]
fn changes_name_the_rows_to_write_and_the_rows_to_drop() {
    let mut ledger = Ledger::new(BusinessClock::default());
    apply_all(
        &mut ledger,
        &[visit("v1", "2026-11-02T09:00:00+08:00", "A1", "O1")],
    );
    let first = ledger.take_changes();
    assert_eq!(first.agent_outlet_day.len(), 1);
    assert_eq!(first.agent_day[0].counters.visits, 1);
    assert!(
        ledger.take_changes().is_empty(),
        "changes are handed out once"
    );
    apply_all(
        &mut ledger,
        &[retraction(
            "r1",
            "2026-11-02T19:00:00+08:00",
            Some("A1"),
            "v1",
        )],
    );
    let second = ledger.take_changes();
    assert!(
        second.agent_outlet_day[0].counters.is_zero(),
        "a zero row is a tombstone"
    );
    assert!(second.agent_day[0].counters.is_zero());
    let tables = ledger.tables();
    assert!(
        tables.agent_outlet_day.is_empty() && tables.agent_day.is_empty(),
        "a day whose every cell was taken back is gone: {tables:?}"
    );
}

/// A cell names its outlet by the order the agent first worked there; rows still come in
/// outlet id order, in the tables and in the changes handed to the stores.
#[test]
fn cells_come_out_in_outlet_order_whatever_order_the_outlets_came_in() {
    let mut ledger = given(&[
        visit("v1", "2026-11-02T09:00:00+08:00", "A1", "O3"),
        visit("v2", "2026-11-02T10:00:00+08:00", "A1", "O1"),
        visit("v3", "2026-11-03T09:00:00+08:00", "A1", "O1"),
        visit("v4", "2026-11-02T11:00:00+08:00", "A1", "O2"),
        visit("v5", "2026-11-03T10:00:00+08:00", "A1", "O3"),
    ]);
    fn keys(rows: &[AgentOutletDay]) -> Vec<(NaiveDate, &str)> {
        rows.iter()
            .map(|row| (row.business_date, row.outlet_id.as_str()))
            .collect()
    }
    let expected = [
        (date("2026-11-02"), "O1"),
        (date("2026-11-02"), "O2"),
        (date("2026-11-02"), "O3"),
        (date("2026-11-03"), "O1"),
        (date("2026-11-03"), "O3"),
    ];
    assert_eq!(keys(&ledger.tables().agent_outlet_day), expected);
    assert_eq!(keys(&ledger.take_changes().agent_outlet_day), expected);
    // A cell taken back to zero is handed over as a tombstone under its outlet's id.
    apply_all(
        &mut ledger,
        &[retraction(
            "r1",
            "2026-11-03T19:00:00+08:00",
            Some("A1"),
            "v4",
        )],
    );
    let changes = ledger.take_changes();
    assert_eq!(
        keys(&changes.agent_outlet_day),
        [(date("2026-11-02"), "O2")]
    );
    assert!(changes.agent_outlet_day[0].counters.is_zero());
}

#[test]
fn a_day_keeps_the_outlets_still_counted_when_one_is_taken_back() {
    let ledger = given(&[
        visit("v1", "2026-11-02T09:00:00+08:00", "A1", "O2"),
        visit("v2", "2026-11-02T10:00:00+08:00", "A1", "O1"),
        visit("v3", "2026-11-02T11:00:00+08:00", "A1", "O1"),
        retraction("r1", "2026-11-02T19:00:00+08:00", Some("A1"), "v1"),
    ]);
    let tables = ledger.tables();
    let cells: Vec<(&str, i64)> = tables
        .agent_outlet_day
        .iter()
        .map(|row| (row.outlet_id.as_str(), row.counters.visits))
        .collect();
    assert_eq!(cells, vec![("O1", 2)]);
    assert_eq!(tables.agent_day.len(), 1);
    assert_eq!(tables.agent_day[0].counters.visits, 2);
}

#[test]
fn a_checkpointed_ledger_comes_back_identical() {
    let ledger = given(&[
        team("t1", "T1", "B1"),
        join("j1", "2026-11-01T08:00:00+08:00", "A1", "T1", "2026-11-01"),
        sale(
            "s1",
            "2026-11-02T14:00:00+08:00",
            "A1",
            "O1",
            "P1",
            "10000.10",
        ),
        cancellation("x1", "2026-11-09T11:00:00+08:00", "A1", "P9", "1.00"),
        plan("p1", "2026-11-01T20:00:00+08:00", "A1", 10),
    ]);
    let bytes = postcard::to_allocvec(&ledger).expect("encode");
    let restored: Ledger = postcard::from_bytes(&bytes).expect("decode");
    assert_eq!(restored.tables(), ledger.tables());
}

/// The same event as sent by another source.
fn from(source: &str, mut event: Event) -> Event {
    event.source = source.to_owned();
    event
}

/// Folds `events` in the given order and reversed, checks both give the same tables.
fn tables_in_any_order(events: &[Event]) -> LedgerTables {
    let forward = given(events).tables();
    let mut reversed = events.to_vec();
    reversed.reverse();
    assert_eq!(
        given(&reversed).tables(),
        forward,
        "order changed the ledgers"
    );
    forward
}

#[test]
fn two_sources_may_use_the_same_id_for_two_facts() {
    let crm = from("crm", visit("e1", "2026-11-02T09:00:00+08:00", "A1", "O1"));
    let app = from("app", visit("e1", "2026-11-02T10:00:00+08:00", "A1", "O2"));
    let mut ledger = Ledger::new(BusinessClock::default());
    assert_eq!(
        apply_all(&mut ledger, &[crm.clone(), app.clone(), crm.clone()]),
        vec![Applied::Applied, Applied::Applied, Applied::Duplicate]
    );
    let tables = tables_in_any_order(&[crm, app]);
    assert_eq!(agent_day(&tables, "A1", "2026-11-02").counters.visits, 2);
}

#[test]
fn a_retraction_reaches_only_its_own_source_s_event() {
    let sold = from(
        "core-policy",
        sale(
            "s1",
            "2026-11-02T14:00:00+08:00",
            "A1",
            "O1",
            "P1",
            "5000.00",
        ),
    );
    for agent in [Some("A1"), None] {
        let foreign = from(
            "crm",
            retraction("r1", "2026-11-03T09:00:00+08:00", agent, "s1"),
        );
        let tables = tables_in_any_order(&[sold.clone(), foreign.clone()]);
        assert_eq!(
            agent_day(&tables, "A1", "2026-11-02").counters.sales,
            1,
            "another source's retraction (agent {agent:?}) leaves the sale"
        );
        let own = from(
            "core-policy",
            retraction("r1", "2026-11-03T09:00:00+08:00", agent, "s1"),
        );
        let tables = tables_in_any_order(&[sold.clone(), foreign, own]);
        assert!(
            tables.agent_day.is_empty(),
            "the seller's own retraction (agent {agent:?}) removes it"
        );
    }
}

#[test]
fn retracting_an_id_ahead_of_another_source_does_not_stop_its_event() {
    let pre = from(
        "crm",
        retraction("r9", "2026-11-01T09:00:00+08:00", None, "v-next"),
    );
    let later = from(
        "mobile-worklog",
        visit("v-next", "2026-11-02T09:00:00+08:00", "A1", "O1"),
    );
    let mut ledger = Ledger::new(BusinessClock::default());
    assert_eq!(
        apply_all(&mut ledger, &[pre, later]),
        vec![Applied::Applied, Applied::Applied],
        "the visit counts: only crm's v-next was retracted"
    );
    assert_eq!(
        agent_day(&ledger.tables(), "A1", "2026-11-02")
            .counters
            .visits,
        1
    );
}

#[test]
fn a_tie_of_time_and_id_between_sources_is_broken_by_source() {
    let at = "2026-11-01T20:00:00+08:00";
    let a = from("planning-a", plan("p1", at, "A1", 10));
    let b = from("planning-b", plan("p1", at, "A1", 20));
    let tables = tables_in_any_order(&[a.clone(), b.clone()]);
    assert_eq!(tables.plans.len(), 1);
    assert_eq!(tables.plans[0].visits, Some(20), "planning-b sorts last");
    let joined_a = from("hr-a", join("j1", at, "A1", "T1", "2026-11-01"));
    let joined_b = from("hr-b", join("j1", at, "A1", "T2", "2026-11-01"));
    let tables = tables_in_any_order(&[joined_a, joined_b]);
    assert_eq!(tables.roster.len(), 1);
    assert_eq!(tables.roster[0].team_id, "T2");
}

/// The largest premium (and refund) the contract accepts, in fen.
const LARGEST: i64 = 999_999_999_999_999;

/// Premiums of the largest size that fit in one sum: 9,223.
const LARGEST_THAT_FIT: i64 = i64::MAX / LARGEST;

/// `count` sales of the largest premium by A1 on 2 November, numbered from `first`, at the
/// outlet `outlet(n)`.
fn largest_sales(first: usize, count: usize, outlet: impl Fn(usize) -> &'static str) -> Vec<Event> {
    let template = sale(
        "big",
        "2026-11-02T10:00:00+08:00",
        "A1",
        "O1",
        "P",
        "9999999999999.99",
    );
    (first..first + count)
        .map(|n| {
            let mut event = template.clone();
            event.event_id = format!("big-{n}");
            if let Payload::SaleClosed(sale) = &mut event.payload {
                sale.policy_id = format!("P{n}");
                sale.outlet_id = outlet(n).to_owned();
            }
            event
        })
        .collect()
}

#[test]
fn a_premium_that_would_overflow_its_cell_counts_nowhere_and_is_reported() {
    let fitting = largest_sales(0, LARGEST_THAT_FIT as usize, |_| "O1");
    let mut ledger = Ledger::new(BusinessClock::default());
    assert!(
        apply_all(&mut ledger, &fitting)
            .iter()
            .all(|a| *a == Applied::Applied)
    );
    let one_more = largest_sales(LARGEST_THAT_FIT as usize, 1, |_| "O1");
    let outcome = apply_all(&mut ledger, &one_more);
    assert_eq!(
        outcome,
        [Applied::Overflow(MoneyOverflow {
            field: "premium",
            sum: "agent × outlet × day"
        })]
    );
    assert_eq!(
        outcome[0].to_string_if_overflow(),
        Some("its premium would overflow the agent × outlet × day sum".to_owned())
    );
    let tables = ledger.tables();
    let counters = cell(&tables, "A1", "O1", "2026-11-02").expect("cell");
    assert_eq!(
        counters.premium.units(),
        LARGEST_THAT_FIT * LARGEST,
        "no wrap"
    );
    assert_eq!(
        counters.sales, LARGEST_THAT_FIT,
        "the refused sale counts nowhere"
    );
    // It is known: a repeat is a duplicate; its retraction finds nothing to take back.
    assert_eq!(apply_all(&mut ledger, &one_more), [Applied::Duplicate]);
    apply_all(
        &mut ledger,
        &[retraction(
            "r-big",
            "2026-11-03T10:00:00+08:00",
            Some("A1"),
            &one_more[0].event_id,
        )],
    );
    assert_eq!(ledger.tables(), tables);
}

#[test]
fn a_premium_that_would_overflow_the_agent_s_day_counts_nowhere() {
    // Half the sales at each of two outlets: every cell fits, their day does not.
    let outlet = |n: usize| if n.is_multiple_of(2) { "O1" } else { "O2" };
    let fitting = largest_sales(0, LARGEST_THAT_FIT as usize, outlet);
    let mut ledger = given(&fitting);
    let outcome = apply_all(
        &mut ledger,
        &largest_sales(LARGEST_THAT_FIT as usize, 1, outlet),
    );
    assert_eq!(
        outcome,
        [Applied::Overflow(MoneyOverflow {
            field: "premium",
            sum: "agent × day"
        })]
    );
    let tables = ledger.tables();
    let day = agent_day(&tables, "A1", "2026-11-02");
    assert_eq!(day.counters.premium.units(), LARGEST_THAT_FIT * LARGEST);
    assert!(
        tables
            .agent_outlet_day
            .iter()
            .all(|r| r.counters.premium.units() > 0)
    );
}

#[test]
fn a_refund_that_would_overflow_counts_nowhere_or_stays_pending() {
    let sold = sale("s-p", "2026-11-02T10:00:00+08:00", "A1", "O1", "P", "1.00");
    let template = cancellation(
        "x",
        "2026-11-05T10:00:00+08:00",
        "A1",
        "P",
        "9999999999999.99",
    );
    let refunds: Vec<Event> = (0..=LARGEST_THAT_FIT)
        .map(|n| {
            let mut event = template.clone();
            event.event_id = format!("x-{n}");
            event
        })
        .collect();
    // The sale first: the last refund would overflow the refunds of its cell.
    let mut ledger = given(std::slice::from_ref(&sold));
    let outcomes = apply_all(&mut ledger, &refunds);
    assert_eq!(
        outcomes.last(),
        Some(&Applied::Overflow(MoneyOverflow {
            field: "refund",
            sum: "agent × outlet × day"
        }))
    );
    let tables = ledger.tables();
    let counters = cell(&tables, "A1", "O1", "2026-11-05").expect("cell");
    assert_eq!(counters.refunds.units(), LARGEST_THAT_FIT * LARGEST);
    assert!(tables.pending_cancellations.is_empty(), "it counts nowhere");

    // The refunds first, pending, then the sale: the one that does not fit stays pending.
    let mut ledger = given(&refunds);
    assert_eq!(
        ledger.tables().pending_cancellations.len(),
        refunds.len(),
        "all wait for the sale"
    );
    apply_all(&mut ledger, &[sold]);
    let tables = ledger.tables();
    let counters = cell(&tables, "A1", "O1", "2026-11-05").expect("cell");
    assert_eq!(counters.refunds.units(), LARGEST_THAT_FIT * LARGEST);
    assert_eq!(counters.cancellations, LARGEST_THAT_FIT);
    assert_eq!(tables.pending_cancellations.len(), 1);
}

impl Applied {
    fn to_string_if_overflow(&self) -> Option<String> {
        match self {
            Applied::Overflow(overflow) => Some(overflow.to_string()),
            _ => None,
        }
    }
}

fn profile(id: &str, at: &str, agent: &str, name: &str) -> Event {
    envelope(
        id,
        "agent_profile",
        at,
        Some(agent),
        json!({"display_name": name}),
    )
}

fn named_join(id: &str, at: &str, agent: &str, team: &str, name: &str) -> Event {
    envelope(
        id,
        "agent_joined_team",
        at,
        Some(agent),
        json!({"team_id": team, "effective_date": "2026-11-01", "agent_name": name}),
    )
}

fn profile_of(tables: &LedgerTables, agent: &str) -> Option<(String, EventType, String)> {
    tables
        .agent_profiles
        .iter()
        .find(|p| p.agent_id == agent)
        .map(|p| (p.display_name.clone(), p.origin, p.event_id.clone()))
}

#[test]
fn the_latest_profile_names_the_agent_in_any_order_and_the_join_is_the_fallback() {
    let joined = named_join("j1", "2026-10-30T09:00:00+08:00", "A1", "T1", "王小芳");
    let first = profile("p1", "2026-11-01T09:00:00+08:00", "A1", "王芳");
    let renamed = profile("p2", "2026-11-05T09:00:00+08:00", "A1", "王芳芳");
    let events = [joined.clone(), renamed.clone(), first.clone()];
    let tables = tables_in_any_order(&events);
    assert_eq!(
        profile_of(&tables, "A1"),
        Some(("王芳芳".into(), EventType::AgentProfile, "p2".into()))
    );

    // Retracting the newest brings the previous profile back; with no profile left, the
    // join's name; with the join gone too, no name at all (a tombstone for the stores).
    let undo_p2 = retraction("r2", "2026-11-06T09:00:00+08:00", Some("A1"), "p2");
    let undo_p1 = retraction("r1", "2026-11-06T09:01:00+08:00", Some("A1"), "p1");
    let undo_join = retraction("r3", "2026-11-06T09:02:00+08:00", Some("A1"), "j1");
    let with = |extra: &[Event]| {
        let mut all = events.to_vec();
        all.extend_from_slice(extra);
        tables_in_any_order(&all)
    };
    assert_eq!(
        profile_of(&with(std::slice::from_ref(&undo_p2)), "A1"),
        Some(("王芳".into(), EventType::AgentProfile, "p1".into()))
    );
    assert_eq!(
        profile_of(&with(&[undo_p2.clone(), undo_p1.clone()]), "A1"),
        Some(("王小芳".into(), EventType::AgentJoinedTeam, "j1".into()))
    );
    assert_eq!(
        profile_of(
            &with(&[undo_p2.clone(), undo_p1.clone(), undo_join.clone()]),
            "A1"
        ),
        None
    );

    let mut ledger = given(&events);
    assert_eq!(ledger.take_changes().agent_profiles.len(), 1);
    apply_all(&mut ledger, &[undo_p2, undo_p1, undo_join]);
    let changes = ledger.take_changes();
    assert!(changes.agent_profiles.is_empty());
    assert_eq!(changes.deleted_agent_profiles, vec!["A1".to_owned()]);
}

#[test]
fn profiles_of_the_same_instant_are_ordered_by_event_id_then_source() {
    let at = "2026-11-02T09:00:00+08:00";
    let a = profile("p-a", at, "A1", "李娜");
    let b = profile("p-b", at, "A1", "李娜娜");
    assert_eq!(
        profile_of(&tables_in_any_order(&[a.clone(), b.clone()]), "A1").map(|p| p.0),
        Some("李娜娜".to_owned())
    );
    let crm = from("crm", profile("p-c", at, "A1", "张伟"));
    let hr = from("hr", profile("p-c", at, "A1", "张伟伟"));
    assert_eq!(
        profile_of(&tables_in_any_order(&[hr, crm]), "A1").map(|p| p.0),
        Some("张伟伟".to_owned())
    );
}

#[test]
fn a_join_without_a_name_names_nobody_and_a_later_named_join_wins_over_an_earlier_one() {
    let first = named_join("j1", "2026-10-30T09:00:00+08:00", "A1", "T1", "赵敏");
    let transfer = join("j2", "2026-11-10T09:00:00+08:00", "A1", "T2", "2026-11-10");
    let renamed = named_join("j3", "2026-11-12T09:00:00+08:00", "A1", "T2", "赵敏敏");
    assert_eq!(
        profile_of(
            &tables_in_any_order(&[first.clone(), transfer.clone()]),
            "A1"
        ),
        Some(("赵敏".into(), EventType::AgentJoinedTeam, "j1".into()))
    );
    assert_eq!(
        profile_of(&tables_in_any_order(&[renamed, first, transfer]), "A1").map(|p| p.0),
        Some("赵敏敏".to_owned())
    );
    assert_eq!(
        profile_of(
            &tables_in_any_order(&[join(
                "j4",
                "2026-11-01T09:00:00+08:00",
                "A2",
                "T1",
                "2026-11-01"
            )]),
            "A2"
        ),
        None
    );
}

fn calendar_day(id: &str, at: &str, day: &str, kind: &str) -> Event {
    envelope(
        id,
        "calendar_day",
        at,
        None,
        json!({"date": day, "kind": kind, "name": "国庆节"}),
    )
}

fn calendar_of(ledger: &Ledger) -> Vec<(NaiveDate, DayKind, String)> {
    ledger
        .tables()
        .calendar_days
        .into_iter()
        .map(|d| (d.business_date, d.kind, d.event_id))
        .collect()
}

#[test]
fn the_latest_declaration_of_a_date_decides_in_any_order_and_a_retraction_brings_back_the_one_before()
 {
    let worked = calendar_day(
        "c1",
        "2026-09-20T10:00:00+08:00",
        "2026-10-10",
        "working_day",
    );
    let holiday = calendar_day("c2", "2026-09-25T10:00:00+08:00", "2026-10-10", "holiday");
    let undo = retraction("c3", "2026-09-26T10:00:00+08:00", None, "c2");
    let expected_latest = vec![(date("2026-10-10"), DayKind::Holiday, "c2".to_owned())];
    assert_eq!(
        calendar_of(&given(&[worked.clone(), holiday.clone()])),
        expected_latest
    );
    assert_eq!(
        calendar_of(&given(&[holiday.clone(), worked.clone()])),
        expected_latest
    );
    let expected_back = vec![(date("2026-10-10"), DayKind::WorkingDay, "c1".to_owned())];
    for order in [
        [worked.clone(), holiday.clone(), undo.clone()],
        [undo.clone(), holiday.clone(), worked.clone()],
        [holiday.clone(), undo.clone(), worked.clone()],
    ] {
        assert_eq!(calendar_of(&given(&order)), expected_back, "{order:?}");
    }
    // The repeat of a declaration is a duplicate; the same id with another kind a conflict.
    let mut ledger = given(std::slice::from_ref(&worked));
    let other_kind = calendar_day("c1", "2026-09-20T10:00:00+08:00", "2026-10-10", "holiday");
    assert_eq!(
        apply_all(&mut ledger, &[worked.clone(), other_kind]),
        [Applied::Duplicate, Applied::Conflict]
    );
}

#[test]
fn a_date_left_without_declarations_is_handed_over_as_a_tombstone() {
    let holiday = calendar_day("c1", "2026-09-20T10:00:00+08:00", "2026-10-01", "holiday");
    let mut ledger = given(&[holiday]);
    let changes = ledger.take_changes();
    assert_eq!(changes.calendar_days.len(), 1);
    assert_eq!(changes.calendar_days[0].name.as_deref(), Some("国庆节"));
    apply_all(
        &mut ledger,
        &[retraction("c2", "2026-09-21T10:00:00+08:00", None, "c1")],
    );
    let changes = ledger.take_changes();
    assert!(changes.calendar_days.is_empty());
    assert_eq!(changes.deleted_calendar_days, vec![date("2026-10-01")]);
    assert!(calendar_of(&ledger).is_empty());
}

fn team_from(id: &str, at: &str, team: &str, branch: &str, effective: &str) -> Event {
    envelope(
        id,
        "team_defined",
        at,
        None,
        json!({"team_id": team, "team_name": team, "branch_id": branch, "region_id": "R1",
               "effective_from": effective}),
    )
}

fn branches_of(tables: &LedgerTables, agent: &str, days: &[&str]) -> Vec<String> {
    days.iter()
        .map(|day| agent_day(tables, agent, day).branch_id.clone())
        .collect()
}

#[test]
fn a_team_moving_to_another_branch_on_the_15th_tags_each_day_with_the_branch_of_that_day() {
    let events = [
        team("t1", "T1", "B1"),
        join("j1", "2026-11-01T08:00:00+08:00", "A1", "T1", "2026-11-01"),
        visit("v1", "2026-11-14T10:00:00+08:00", "A1", "O1"),
        visit("v2", "2026-11-15T10:00:00+08:00", "A1", "O1"),
        // The move is recorded after the activity of its first day.
        team_from("t2", "2026-11-15T18:00:00+08:00", "T1", "B2", "2026-11-15"),
    ];
    let tables = tables_in_any_order(&events);
    assert_eq!(
        branches_of(&tables, "A1", &["2026-11-14", "2026-11-15"]),
        ["B1", "B2"]
    );
    assert_eq!(
        tables
            .teams
            .iter()
            .map(|t| (t.effective_from, t.branch_id.as_str()))
            .collect::<Vec<_>>(),
        [(None, "B1"), (Some(date("2026-11-15")), "B2")]
    );
}

#[test]
fn two_definitions_of_one_date_are_decided_by_occurred_at_and_a_retraction_brings_back_the_one_before()
 {
    let earlier = team_from("t2", "2026-11-10T08:00:00+08:00", "T1", "B2", "2026-11-15");
    let later = team_from("t3", "2026-11-11T08:00:00+08:00", "T1", "B3", "2026-11-15");
    let base = [
        team("t1", "T1", "B1"),
        join("j1", "2026-11-01T08:00:00+08:00", "A1", "T1", "2026-11-01"),
        visit("v1", "2026-11-20T10:00:00+08:00", "A1", "O1"),
    ];
    let mut events = base.to_vec();
    events.extend([later.clone(), earlier.clone()]);
    let tables = tables_in_any_order(&events);
    assert_eq!(branches_of(&tables, "A1", &["2026-11-20"]), ["B3"]);

    events.push(retraction("r1", "2026-11-12T08:00:00+08:00", None, "t3"));
    let tables = tables_in_any_order(&events);
    assert_eq!(branches_of(&tables, "A1", &["2026-11-20"]), ["B2"]);

    events.push(retraction("r2", "2026-11-12T09:00:00+08:00", None, "t2"));
    let tables = tables_in_any_order(&events);
    assert_eq!(branches_of(&tables, "A1", &["2026-11-20"]), ["B1"]);
    assert_eq!(tables.teams.len(), 1, "{:?}", tables.teams);
}

#[test]
fn a_move_re_tags_only_the_days_of_the_team_s_members_from_its_date_and_drops_a_retracted_date() {
    let mut ledger = given(&[
        team("t1", "T1", "B1"),
        team("t9", "T9", "B9"),
        join("j1", "2026-11-01T08:00:00+08:00", "A1", "T1", "2026-11-01"),
        join("j2", "2026-11-01T08:00:00+08:00", "A2", "T9", "2026-11-01"),
        visit("v1", "2026-11-14T10:00:00+08:00", "A1", "O1"),
        visit("v2", "2026-11-15T10:00:00+08:00", "A1", "O1"),
        visit("v3", "2026-11-16T10:00:00+08:00", "A1", "O1"),
        visit("v4", "2026-11-16T10:00:00+08:00", "A2", "O2"),
    ]);
    ledger.take_changes();

    apply_all(
        &mut ledger,
        &[team_from(
            "t2",
            "2026-11-15T18:00:00+08:00",
            "T1",
            "B2",
            "2026-11-15",
        )],
    );
    let changes = ledger.take_changes();
    let retagged: Vec<_> = changes
        .agent_day
        .iter()
        .map(|d| (d.agent_id.as_str(), d.business_date, d.branch_id.as_str()))
        .collect();
    assert_eq!(
        retagged,
        [
            ("A1", date("2026-11-15"), "B2"),
            ("A1", date("2026-11-16"), "B2")
        ]
    );
    assert_eq!(
        changes.teams.len(),
        2,
        "both rows of T1: {:?}",
        changes.teams
    );
    assert!(changes.deleted_teams.is_empty());

    apply_all(
        &mut ledger,
        &[retraction("r1", "2026-11-16T08:00:00+08:00", None, "t2")],
    );
    let changes = ledger.take_changes();
    assert_eq!(
        changes.deleted_teams,
        [("T1".to_owned(), Some(date("2026-11-15")))]
    );
    assert_eq!(
        changes
            .agent_day
            .iter()
            .map(|d| (d.business_date, d.branch_id.as_str()))
            .collect::<Vec<_>>(),
        [(date("2026-11-15"), "B1"), (date("2026-11-16"), "B1")]
    );
}

fn coaching(id: &str, at: &str, agent: &str, supervisor: &str) -> Event {
    envelope(
        id,
        "coaching_session",
        at,
        Some(agent),
        json!({"supervisor_id": supervisor, "duration_minutes": 30, "topic": "skill"}),
    )
}

fn accompanied(id: &str, at: &str, agent: &str, supervisor: &str, visit: Option<&str>) -> Event {
    let mut payload = json!({"supervisor_id": supervisor, "outlet_id": "O1"});
    if let Some(visit) = visit {
        payload["visit_event_id"] = json!(visit);
    }
    envelope(id, "accompanied_visit", at, Some(agent), payload)
}

fn meeting(id: &str, at: &str, team: &str) -> Event {
    envelope(
        id,
        "team_meeting",
        at,
        None,
        json!({"team_id": team, "kind": "weekly", "duration_minutes": 120, "attendees": 8}),
    )
}

fn supervisor_fact_ids(tables: &LedgerTables) -> Vec<(&str, &str)> {
    tables
        .supervisor_facts
        .iter()
        .map(|f| (f.event_id.as_str(), f.event_type.as_str()))
        .collect()
}

/// An accompanied visit is the supervisor's fact: the agent's own visit of the same outlet
/// counts once, and an accompanied visit the agent did not log adds no visit at all.
#[test]
fn an_accompanied_visit_never_adds_a_visit_to_the_agent() {
    let own = visit("v1", "2026-11-02T09:30:00+08:00", "A1", "O1");
    let linked = accompanied("a1", "2026-11-02T09:30:00+08:00", "A1", "S1", Some("v1"));
    let unlogged = accompanied("a2", "2026-11-03T10:00:00+08:00", "A1", "S1", None);
    let tables = tables_in_any_order(&[own, linked, unlogged]);
    let visits: i64 = tables.agent_day.iter().map(|d| d.counters.visits).sum();
    assert_eq!(visits, 1, "only the agent's own visit counts");
    assert_eq!(
        tables.agent_day.len(),
        1,
        "no agent day for the unlogged one"
    );
    assert_eq!(
        supervisor_fact_ids(&tables),
        [("a1", "accompanied_visit"), ("a2", "accompanied_visit")]
    );
    let linked = &tables.supervisor_facts[0];
    assert_eq!(
        (
            linked.supervisor_id.as_str(),
            linked.agent_id.as_str(),
            linked.outlet_id.as_str(),
            linked.linked_event_id.as_str(),
            linked.business_date
        ),
        ("S1", "A1", "O1", "v1", date("2026-11-02"))
    );
}

/// Every supervisor's fact is one row, counted once however often it arrives; a
/// retraction (with or without the agent, before or after the fact) leaves a tombstone and
/// nothing in the tables, and the ledger is the same in any order.
#[test]
fn supervisor_facts_are_idempotent_and_retractable_in_any_order() {
    let c1 = coaching("c1", "2026-11-02T17:30:00+08:00", "A1", "S1");
    let c2 = coaching("c2", "2026-11-03T17:30:00+08:00", "A1", "S1");
    let m1 = meeting("m1", "2026-11-06T16:00:00+08:00", "T1");
    let m2 = meeting("m2", "2026-11-13T16:00:00+08:00", "T1");
    let r_c2 = retraction("r1", "2026-11-04T08:00:00+08:00", Some("A1"), "c2");
    let r_m2 = retraction("r2", "2026-11-14T08:00:00+08:00", None, "m2");
    let events = [c1.clone(), c2.clone(), m1, m2, r_c2, r_m2];
    let tables = tables_in_any_order(&events);
    assert_eq!(
        supervisor_fact_ids(&tables),
        [("c1", "coaching_session"), ("m1", "team_meeting")]
    );

    let mut ledger = Ledger::new(BusinessClock::default());
    assert_eq!(
        apply_all(&mut ledger, &[c1.clone(), c1, c2.clone()]),
        [Applied::Applied, Applied::Duplicate, Applied::Applied]
    );
    assert_eq!(ledger.take_changes().supervisor_facts.len(), 2);
    let retract = retraction("r3", "2026-11-04T08:00:00+08:00", None, "c2");
    assert_eq!(apply_all(&mut ledger, &[retract]), [Applied::Applied]);
    let changes = ledger.take_changes();
    assert!(changes.supervisor_facts.is_empty());
    assert_eq!(
        changes.deleted_supervisor_facts,
        [("A1".to_owned(), "test".to_owned(), "c2".to_owned())]
    );
    assert_eq!(apply_all(&mut ledger, &[c2]), [Applied::Duplicate]);
    assert_eq!(
        supervisor_fact_ids(&ledger.tables()),
        [("c1", "coaching_session")]
    );
}

#[test]
fn a_checkpointed_ledger_keeps_its_supervisor_facts() {
    let ledger = given(&[
        coaching("c1", "2026-11-02T17:30:00+08:00", "A1", "S1"),
        meeting("m1", "2026-11-06T16:00:00+08:00", "T1"),
    ]);
    let bytes = postcard::to_allocvec(&ledger).expect("encode");
    let restored: Ledger = postcard::from_bytes(&bytes).expect("decode");
    assert_eq!(restored.tables(), ledger.tables());
    assert_eq!(restored.tables().supervisor_facts.len(), 2);
}

#[test]
fn a_timeline_gives_the_latest_fact_effective_on_or_before_a_date() {
    let key = |effective: &str, seconds: i64, id: &str| -> TimelineKey {
        (date(effective), seconds, 0, id.to_owned(), "hr".to_owned())
    };
    let mut timeline: Timeline<&str> = Timeline::new();
    timeline.insert(key("2026-11-10", 5, "b"), "second team");
    timeline.insert(key("2026-11-01", 9, "a"), "first team");
    // Two facts effective the same day: the later version decides it.
    timeline.insert(key("2026-11-20", 7, "d"), "later version");
    timeline.insert(key("2026-11-20", 3, "c"), "earlier version");

    assert_eq!(value_on(&timeline, date("2026-10-31")), None);
    assert_eq!(value_on(&timeline, date("2026-11-01")), Some(&"first team"));
    assert_eq!(value_on(&timeline, date("2026-11-09")), Some(&"first team"));
    assert_eq!(
        value_on(&timeline, date("2026-11-10")),
        Some(&"second team")
    );
    assert_eq!(
        value_on(&timeline, date("2026-11-19")),
        Some(&"second team")
    );
    assert_eq!(
        value_on(&timeline, date("2026-11-20")),
        Some(&"later version")
    );
    assert_eq!(value_on(&timeline, NaiveDate::MAX), Some(&"later version"));
    assert_eq!(
        timeline_runs(&timeline),
        vec![
            (date("2026-11-01"), Some(date("2026-11-10")), "first team"),
            (date("2026-11-10"), Some(date("2026-11-20")), "second team"),
            (date("2026-11-20"), None, "later version"),
        ]
    );
}
