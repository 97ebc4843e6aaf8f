//! The outlet table worked out by hand from analytics/README.md ("Outlets"), checked
//! against the job, and its round trip through the real ClickHouse.
//!
//! As of Wednesday 2026-11-18, since 2026-10-01: the months October (reference day the
//! 31st) and November (reference day the 18th). Monday the 16th is a holiday and Saturday
//! the 14th a swapped working day (调休), both declared by `calendar_day` events. Teams T1
//! (branch B1) and T2 (branch B2), region R1; A1 in T1 and A2 in T2 from 2026-07-01.
//!
//! Both months are in the fourth quarter, so both are graded on July to September (the
//! ledger is read from 2026-07-01):
//! - O1 (A1): 60,000 + 60,000 + 30,000 = 150,000 / 3 = 50,000.00 → A (the threshold itself);
//! - O2 (A1): 60,000 in August / 3 = 20,000.00 → B (the threshold itself); its 200,000 sale
//!   of October 15th does not change the quarter's grade; cancelled on November 5th with a
//!   refund of 180,000;
//! - O3 (A2): 59,999.98 / 3 = 19,999.9933 → 19,999.99 → C (a fen below B);
//! - O4 (A1): 14,999.98 / 3 = 4,999.9933 → 4,999.99 → D (a fen below C);
//! - O5 (A2): first sale ever on November 3rd (破零), cancelled on the 10th in full;
//! - O6 (A2, assigned from November 2nd): never visited; its only sale was retracted;
//! - O7: A1's until November 9th, A2's from the 10th (visited by each);
//! - O8: visited by A1, never assigned.

use aqs_analytics::outlets::{OutletParams, compute, read_outlet_ledgers};
use aqs_eventlog::Positions;
use aqs_projector::ledger::{Ledger, digest};
use aqs_projector::sink::clickhouse::ClickHouseSink;
use aqs_projector::sink::{LedgerSink, RowVersions};
use aqs_schemas::{BusinessClock, Decoder};
use aqs_tables::kpi::KpiSink;
use aqs_tables::outlets::source::{ClickHouseOutletSource, SqliteOutletSource};
use aqs_tables::outlets::{ClickHouseOutletSink, read_outlets};
use aqs_warehouse::{BlockingClient, ClickHouseConfig};
use polars::prelude::*;

const EVENTS: &[&str] = &[
    r#"{"event_id":"t1","type":"team_defined","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","payload":{"team_id":"T1","team_name":"一组","branch_id":"B1","region_id":"R1"}}"#,
    r#"{"event_id":"t2","type":"team_defined","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","payload":{"team_id":"T2","team_name":"二组","branch_id":"B2","region_id":"R1"}}"#,
    r#"{"event_id":"j1","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"team_id":"T1","effective_date":"2026-07-01"}}"#,
    r#"{"event_id":"j2","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","agent_id":"A2","payload":{"team_id":"T2","effective_date":"2026-07-01"}}"#,
    r#"{"event_id":"o1","type":"outlet_registered","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","payload":{"outlet_id":"O1","bank":"ICBC","name":"工商银行苏州第1支行","region_id":"R1"}}"#,
    r#"{"event_id":"a-A1-O1","type":"outlet_assigned","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"outlet_id":"O1","effective_date":"2026-07-01"}}"#,
    r#"{"event_id":"a-A1-O2","type":"outlet_assigned","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"outlet_id":"O2","effective_date":"2026-07-01"}}"#,
    r#"{"event_id":"a-A1-O4","type":"outlet_assigned","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"outlet_id":"O4","effective_date":"2026-07-01"}}"#,
    r#"{"event_id":"a-A1-O7","type":"outlet_assigned","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"outlet_id":"O7","effective_date":"2026-07-01"}}"#,
    r#"{"event_id":"a-A2-O3","type":"outlet_assigned","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","agent_id":"A2","payload":{"outlet_id":"O3","effective_date":"2026-07-01"}}"#,
    r#"{"event_id":"a-A2-O5","type":"outlet_assigned","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","agent_id":"A2","payload":{"outlet_id":"O5","effective_date":"2026-07-01"}}"#,
    r#"{"event_id":"a-A2-O6","type":"outlet_assigned","schema_version":1,"occurred_at":"2026-11-01T09:00:00+08:00","source":"hr","agent_id":"A2","payload":{"outlet_id":"O6","effective_date":"2026-11-02"}}"#,
    r#"{"event_id":"a-A2-O7","type":"outlet_assigned","schema_version":1,"occurred_at":"2026-11-01T09:00:00+08:00","source":"hr","agent_id":"A2","payload":{"outlet_id":"O7","effective_date":"2026-11-10"}}"#,
    r#"{"event_id":"u-A1-O7","type":"outlet_unassigned","schema_version":1,"occurred_at":"2026-11-09T18:00:00+08:00","source":"hr","agent_id":"A1","payload":{"outlet_id":"O7","effective_date":"2026-11-10"}}"#,
    r#"{"event_id":"h16","type":"calendar_day","schema_version":1,"occurred_at":"2026-10-20T09:00:00+08:00","source":"hr","payload":{"date":"2026-11-16","kind":"holiday","name":"假日"}}"#,
    r#"{"event_id":"w14","type":"calendar_day","schema_version":1,"occurred_at":"2026-10-20T09:00:00+08:00","source":"hr","payload":{"date":"2026-11-14","kind":"working_day","name":"调休"}}"#,
    r#"{"event_id":"s1","type":"sale_closed","schema_version":1,"occurred_at":"2026-07-15T11:00:00+08:00","source":"core","agent_id":"A1","payload":{"outlet_id":"O1","policy_id":"P1","product_code":"WL","premium":"60000.00","payment_mode":"single"}}"#,
    r#"{"event_id":"s2","type":"sale_closed","schema_version":1,"occurred_at":"2026-08-14T11:00:00+08:00","source":"core","agent_id":"A1","payload":{"outlet_id":"O1","policy_id":"P2","product_code":"WL","premium":"60000.00","payment_mode":"single"}}"#,
    r#"{"event_id":"s3","type":"sale_closed","schema_version":1,"occurred_at":"2026-09-15T11:00:00+08:00","source":"core","agent_id":"A1","payload":{"outlet_id":"O1","policy_id":"P3","product_code":"WL","premium":"30000.00","payment_mode":"single"}}"#,
    r#"{"event_id":"s4","type":"sale_closed","schema_version":1,"occurred_at":"2026-08-20T11:00:00+08:00","source":"core","agent_id":"A1","payload":{"outlet_id":"O2","policy_id":"P4","product_code":"WL","premium":"60000.00","payment_mode":"single"}}"#,
    r#"{"event_id":"s5","type":"sale_closed","schema_version":1,"occurred_at":"2026-09-10T11:00:00+08:00","source":"core","agent_id":"A2","payload":{"outlet_id":"O3","policy_id":"P5","product_code":"WL","premium":"59999.98","payment_mode":"single"}}"#,
    r#"{"event_id":"s6","type":"sale_closed","schema_version":1,"occurred_at":"2026-09-11T11:00:00+08:00","source":"core","agent_id":"A1","payload":{"outlet_id":"O4","policy_id":"P6","product_code":"WL","premium":"14999.98","payment_mode":"single"}}"#,
    r#"{"event_id":"s7","type":"sale_closed","schema_version":1,"occurred_at":"2026-10-15T11:00:00+08:00","source":"core","agent_id":"A1","payload":{"outlet_id":"O2","policy_id":"P7","product_code":"WL","premium":"200000.00","payment_mode":"single"}}"#,
    r#"{"event_id":"c7","type":"policy_cancelled","schema_version":1,"occurred_at":"2026-11-05T09:00:00+08:00","source":"core","agent_id":"A1","payload":{"policy_id":"P7","refund":"180000.00","reason":"cooling_off"}}"#,
    r#"{"event_id":"s8","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-03T11:00:00+08:00","source":"core","agent_id":"A2","payload":{"outlet_id":"O5","policy_id":"P8","product_code":"WL","premium":"10000.00","payment_mode":"single"}}"#,
    r#"{"event_id":"c8","type":"policy_cancelled","schema_version":1,"occurred_at":"2026-11-10T09:00:00+08:00","source":"core","agent_id":"A2","payload":{"policy_id":"P8","refund":"10000.00","reason":"cooling_off"}}"#,
    r#"{"event_id":"s9","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-09T11:00:00+08:00","source":"core","agent_id":"A1","payload":{"outlet_id":"O1","policy_id":"P9","product_code":"WL","premium":"5000.00","payment_mode":"single"}}"#,
    r#"{"event_id":"s10","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-12T11:00:00+08:00","source":"core","agent_id":"A2","payload":{"outlet_id":"O6","policy_id":"P10","product_code":"WL","premium":"8000.00","payment_mode":"single"}}"#,
    r#"{"event_id":"r10","type":"retraction","schema_version":1,"occurred_at":"2026-11-13T09:00:00+08:00","source":"core","agent_id":"A2","payload":{"retracted_event_id":"s10","reason":"entered in error"}}"#,
    r#"{"event_id":"v1","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-16T23:30:00Z","source":"app","agent_id":"A1","payload":{"outlet_id":"O1","purpose":"promotion"}}"#,
    r#"{"event_id":"v2","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-05T10:00:00+08:00","source":"app","agent_id":"A2","payload":{"outlet_id":"O3","purpose":"promotion"}}"#,
    r#"{"event_id":"v3","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-04T10:00:00+08:00","source":"app","agent_id":"A1","payload":{"outlet_id":"O4","purpose":"promotion"}}"#,
    r#"{"event_id":"v4","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T10:00:00+08:00","source":"app","agent_id":"A1","payload":{"outlet_id":"O7","purpose":"promotion"}}"#,
    r#"{"event_id":"v5","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-12T10:00:00+08:00","source":"app","agent_id":"A2","payload":{"outlet_id":"O7","purpose":"promotion"}}"#,
    r#"{"event_id":"v6","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-06T10:00:00+08:00","source":"app","agent_id":"A1","payload":{"outlet_id":"O8","purpose":"promotion"}}"#,
    r#"{"event_id":"v7","type":"outlet_visit","schema_version":1,"occurred_at":"2026-10-20T10:00:00+08:00","source":"app","agent_id":"A1","payload":{"outlet_id":"O2","purpose":"promotion"}}"#,
    r#"{"event_id":"v8","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-03T10:00:00+08:00","source":"app","agent_id":"A2","payload":{"outlet_id":"O5","purpose":"promotion"}}"#,
    r#"{"event_id":"k1","type":"consultation","schema_version":1,"occurred_at":"2026-11-03T10:30:00+08:00","source":"app","agent_id":"A2","payload":{"outlet_id":"O5","customers_consulted":3,"customers_interested":1}}"#,
];

#[path = "support/hand_computed.rs"]
mod hand_computed;
use hand_computed::V::{self, *};
use hand_computed::{check_row, find_row, ledgers};

fn lines() -> Vec<String> {
    EVENTS.iter().map(|line| (*line).to_owned()).collect()
}

fn params(as_of: &str, since: &str) -> OutletParams {
    let mut params = OutletParams::new(as_of.parse().expect("date"));
    params.since = since.parse().expect("date");
    params
}

fn outlets_of(lines: &[String], params: &OutletParams) -> DataFrame {
    let (_dir, path) = ledgers(lines.iter().map(String::as_str));
    let data = read_outlet_ledgers(&SqliteOutletSource::new(&path), params).expect("load");
    compute(&data, params).expect("compute")
}

fn november() -> DataFrame {
    outlets_of(&lines(), &params("2026-11-18", "2026-10-01"))
}

fn find(frame: &DataFrame, scope: &str, scope_id: &str, month: &str) -> Option<usize> {
    find_row(frame, &KEY, &[scope, scope_id, month])
}

fn check(frame: &DataFrame, scope: &str, scope_id: &str, month: &str, expected: &[(&str, V)]) {
    check_row(frame, &KEY, &[scope, scope_id, month], expected);
}

const KEY: [&str; 3] = ["scope", "scope_id", "month"];
const NOV: &str = "2026-11-01";
const OCT: &str = "2026-10-01";

#[test]
fn grades_at_and_below_their_thresholds() {
    let table = november();
    for (outlet, grade, basis) in [
        ("O1", "A", "50000.00"),
        ("O2", "B", "20000.00"),
        ("O3", "C", "19999.99"),
        ("O4", "D", "4999.99"),
        ("O5", "D", "0.00"),
    ] {
        check(
            &table,
            "outlet",
            outlet,
            NOV,
            &[("grade", S(grade)), ("grade_basis_premium", S(basis))],
        );
    }
}

#[test]
fn the_grade_is_fixed_within_the_quarter_and_moves_with_the_next() {
    let table = november();
    // October's 200,000 sale at O2 is inside the fourth quarter: October and November are
    // both graded on July to September (20,000.00, B).
    for month in [OCT, NOV] {
        check(
            &table,
            "outlet",
            "O2",
            month,
            &[("grade", S("B")), ("grade_basis_premium", S("20000.00"))],
        );
    }
    // January 2027 is graded on October to December: 200,000 − 180,000 (the refund of
    // November 5th) + 0 = 20,000 / 3 = 6,666.666… → 6,666.67, C. O1's 5,000 of November:
    // 5,000 / 3 = 1,666.67 → D.
    let january = outlets_of(&lines(), &params("2027-01-05", "2027-01-01"));
    check(
        &january,
        "outlet",
        "O2",
        "2027-01-01",
        &[("grade", S("C")), ("grade_basis_premium", S("6666.67"))],
    );
    check(
        &january,
        "outlet",
        "O1",
        "2027-01-01",
        &[("grade", S("D")), ("grade_basis_premium", S("1666.67"))],
    );
}

#[test]
fn first_sale_of_the_month_and_first_sale_ever() {
    let table = november();
    // O1 sold on November 9th, but first in July: a sale this month, not 破零.
    check(
        &table,
        "outlet",
        "O1",
        NOV,
        &[
            ("sales", I(1)),
            ("first_sale_of_month", S("2026-11-09")),
            ("first_sale_date", S("2026-07-15")),
            ("breaks_zero", B(false)),
        ],
    );
    // O5's first sale ever is November 3rd: 破零 this month, even though it was cancelled.
    check(
        &table,
        "outlet",
        "O5",
        NOV,
        &[
            ("first_sale_of_month", S("2026-11-03")),
            ("first_sale_date", S("2026-11-03")),
            ("breaks_zero", B(true)),
        ],
    );
    // O6's only sale was retracted: it counts nowhere, no 破零.
    check(
        &table,
        "outlet",
        "O6",
        NOV,
        &[
            ("sales", I(0)),
            ("premium", S("0.00")),
            ("first_sale_of_month", Null),
            ("first_sale_date", Null),
            ("breaks_zero", B(false)),
            ("covering_agents", I(0)),
            ("covering_agent_ids", S("")),
        ],
    );
}

#[test]
fn a_refund_counts_on_the_cancellations_date_at_the_outlet_of_the_sale() {
    let table = november();
    // O2: October keeps its sale whole (200,000.00); November has no sale and the refund of
    // 180,000.00: premium 0 − 180,000 = −180,000.00.
    check(
        &table,
        "outlet",
        "O2",
        OCT,
        &[
            ("sales", I(1)),
            ("gross_premium", S("200000.00")),
            ("refunds", S("0.00")),
            ("premium", S("200000.00")),
        ],
    );
    check(
        &table,
        "outlet",
        "O2",
        NOV,
        &[
            ("sales", I(0)),
            ("gross_premium", S("0.00")),
            ("refunds", S("180000.00")),
            ("premium", S("-180000.00")),
        ],
    );
    // O5: sold and refunded in November: 10,000 − 10,000 = 0, one sale, one consultation
    // of three customers, one visit.
    check(
        &table,
        "outlet",
        "O5",
        NOV,
        &[
            ("visits", I(1)),
            ("consultations", I(1)),
            ("customers_consulted", I(3)),
            ("sales", I(1)),
            ("gross_premium", S("10000.00")),
            ("refunds", S("10000.00")),
            ("premium", S("0.00")),
            ("covering_agent_ids", S("A2")),
        ],
    );
}

#[test]
fn dormant_outlets_count_working_days_across_the_holiday_and_the_swapped_saturday() {
    let table = november();
    // Working days after the last visit through the 18th (the 16th a holiday, the 14th a
    // working Saturday); dormant from 10.
    // O3, last visit Thursday 5th: 6 | 9 10 11 12 13 | 14 | 17 18 = 1 + 5 + 1 + 2 = 9.
    // Without the holiday it would be 10, dormant.
    check(
        &table,
        "outlet",
        "O3",
        NOV,
        &[
            ("last_visit_date", S("2026-11-05")),
            ("days_since_last_visit", I(13)),
            ("working_days_without_visit", I(9)),
            ("assigned", B(true)),
            ("dormant", B(false)),
        ],
    );
    // O4, last visit Wednesday 4th: 5 6 | 9–13 | 14 | 17 18 = 2 + 5 + 1 + 2 = 10: dormant.
    check(
        &table,
        "outlet",
        "O4",
        NOV,
        &[
            ("last_visit_date", S("2026-11-04")),
            ("days_since_last_visit", I(14)),
            ("working_days_without_visit", I(10)),
            ("dormant", B(true)),
        ],
    );
    // O1, visited on the 17th (a UTC time of the 16th): 18 = 1.
    check(
        &table,
        "outlet",
        "O1",
        NOV,
        &[
            ("last_visit_date", S("2026-11-17")),
            ("days_since_last_visit", I(1)),
            ("working_days_without_visit", I(1)),
            ("dormant", B(false)),
        ],
    );
    // O2, last visit October 20th: 21 22 23 | 26–30 | 2–6 | 9–13 | 14 | 17 18
    // = 3 + 5 + 5 + 5 + 1 + 2 = 21. In October (reference the 31st, a Saturday):
    // 21 22 23 | 26–30 = 8, not dormant.
    check(
        &table,
        "outlet",
        "O2",
        NOV,
        &[
            ("days_since_last_visit", I(29)),
            ("working_days_without_visit", I(21)),
            ("dormant", B(true)),
        ],
    );
    check(
        &table,
        "outlet",
        "O2",
        OCT,
        &[
            ("days_since_last_visit", I(11)),
            ("working_days_without_visit", I(8)),
            ("dormant", B(false)),
        ],
    );
    // O6 was never visited: it waits from its assignment on the 2nd:
    // 2–6 | 9–13 | 14 | 17 18 = 5 + 5 + 1 + 2 = 13: dormant, with no last visit.
    check(
        &table,
        "outlet",
        "O6",
        NOV,
        &[
            ("last_visit_date", Null),
            ("days_since_last_visit", Null),
            ("working_days_without_visit", I(13)),
            ("dormant", B(true)),
        ],
    );
    // O8 is assigned to nobody: never dormant. 9–13 | 14 | 17 18 = 8.
    check(
        &table,
        "outlet",
        "O8",
        NOV,
        &[
            ("assigned", B(false)),
            ("working_days_without_visit", I(8)),
            ("dormant", B(false)),
            ("agent_id", Null),
            ("team_id", Null),
        ],
    );
}

#[test]
fn a_dormant_setting_of_fewer_days_makes_more_outlets_dormant() {
    let mut params = params("2026-11-18", "2026-11-01");
    params.dormant_working_days = 9;
    let table = outlets_of(&lines(), &params);
    // O3's nine working days reach the setting now.
    check(&table, "outlet", "O3", NOV, &[("dormant", B(true))]);
    check(&table, "outlet", "O1", NOV, &[("dormant", B(false))]);
}

#[test]
fn an_outlet_reassigned_mid_month_reports_under_its_new_agent_team_and_branch() {
    let table = november();
    // O7 went from A1 (T1, B1) to A2 (T2, B2) on the 10th; each visited it once.
    check(
        &table,
        "outlet",
        "O7",
        NOV,
        &[
            ("agent_id", S("A2")),
            ("team_id", S("T2")),
            ("branch_id", S("B2")),
            ("region_id", S("R1")),
            ("visits", I(2)),
            ("covering_agents", I(2)),
            ("covering_agent_ids", S("A1,A2")),
            ("last_visit_date", S("2026-11-12")),
            // 13 | 14 | 17 18 = 4.
            ("working_days_without_visit", I(4)),
            ("dormant", B(false)),
        ],
    );
    // In October it was A1's; never visited since its assignment on July 1st: 88 working
    // days through October 31st (23 in July, 21 in August, 22 in September and October).
    check(
        &table,
        "outlet",
        "O7",
        OCT,
        &[
            ("agent_id", S("A1")),
            ("team_id", S("T1")),
            ("branch_id", S("B1")),
            ("working_days_without_visit", I(88)),
            ("dormant", B(true)),
        ],
    );
    check(
        &table,
        "outlet",
        "O1",
        NOV,
        &[
            ("outlet_name", S("工商银行苏州第1支行")),
            ("bank", S("ICBC")),
            ("reference_date", S("2026-11-18")),
            ("as_of", S("2026-11-18")),
        ],
    );
}

#[test]
fn teams_and_branches_sum_the_outlets_reporting_under_them() {
    let table = november();
    // T1 in November: O1 (A), O2 (B, dormant), O4 (D, dormant); O7 went to T2.
    // Visits 1 + 0 + 1 = 2; sales 1 (O1); premium 5,000 − 180,000 = −175,000.00.
    let t1 = [
        ("outlets", I(3)),
        ("grade_a_outlets", I(1)),
        ("grade_b_outlets", I(1)),
        ("grade_c_outlets", I(0)),
        ("grade_d_outlets", I(1)),
        ("outlets_with_sale", I(1)),
        ("first_sale_outlets", I(0)),
        ("dormant_outlets", I(2)),
        ("visits", I(2)),
        ("sales", I(1)),
        ("gross_premium", S("5000.00")),
        ("refunds", S("180000.00")),
        ("premium", S("-175000.00")),
        ("grade", Null),
        ("dormant", Null),
    ];
    check(&table, "team", "T1", NOV, &t1);
    check(&table, "branch", "B1", NOV, &t1);
    // T2: O3 (C), O5 (D, 破零, dormant: 4 5 6 | 9–13 | 14 | 17 18 = 11), O6 (D, dormant),
    // O7 (D). Visits 1 + 1 + 0 + 2 = 4; one consultation of 3; sales 1 (O5);
    // premium 10,000 − 10,000 = 0.
    let t2 = [
        ("outlets", I(4)),
        ("grade_a_outlets", I(0)),
        ("grade_b_outlets", I(0)),
        ("grade_c_outlets", I(1)),
        ("grade_d_outlets", I(3)),
        ("outlets_with_sale", I(1)),
        ("first_sale_outlets", I(1)),
        ("dormant_outlets", I(2)),
        ("visits", I(4)),
        ("consultations", I(1)),
        ("customers_consulted", I(3)),
        ("sales", I(1)),
        ("premium", S("0.00")),
    ];
    check(&table, "team", "T2", NOV, &t2);
    check(&table, "branch", "B2", NOV, &t2);
    check(
        &table,
        "team",
        "T2",
        NOV,
        &[("branch_id", S("B2")), ("region_id", S("R1"))],
    );
    // October: T1 had O1, O2, O4 and O7; T2 had O3 and O5 (O6 came in November).
    check(&table, "team", "T1", OCT, &[("outlets", I(4))]);
    check(&table, "team", "T2", OCT, &[("outlets", I(2))]);
    // O8, assigned to nobody, is in no summary; O6 has no October row.
    assert!(find(&table, "outlet", "O8", NOV).is_some());
    assert!(find(&table, "outlet", "O6", OCT).is_none());
    assert!(find(&table, "outlet", "O8", OCT).is_none());
}

#[test]
fn clickhouse_gives_the_same_table_and_holds_exactly_the_last_run_of_a_date() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let config = ClickHouseConfig::new(clickhouse.url())
        .with_credentials(clickhouse.user(), clickhouse.password())
        .with_database(clickhouse.fresh_database_name());
    BlockingClient::new(&config)
        .expect("client")
        .run(aqs_warehouse::migrate(&config))
        .expect("migrate");
    // The same events folded into ClickHouse's ledger tables.
    let mut ledger = Ledger::new(BusinessClock::default());
    for line in EVENTS {
        let event = Decoder::standard()
            .decode(line.as_bytes())
            .expect("valid event");
        ledger.apply(&event, digest(line.as_bytes()));
    }
    let mut sink = ClickHouseSink::connect(&config).expect("clickhouse sink");
    sink.publish(
        &ledger.take_changes(),
        &RowVersions::new(&Positions::new(), 1),
    )
    .expect("publish");

    let params = params("2026-11-18", "2026-10-01");
    let source = ClickHouseOutletSource::connect(&config).expect("clickhouse source");
    let warehouse = read_outlet_ledgers(&source, &params).expect("load from clickhouse");
    let (_dir, path) = ledgers(lines().iter().map(String::as_str));
    let embedded =
        read_outlet_ledgers(&SqliteOutletSource::new(&path), &params).expect("load embedded");
    assert_eq!(warehouse, embedded, "both engines read the same ledgers");
    let mut table = compute(&warehouse, &params).expect("compute");
    assert!(table.equals_missing(&november()));

    // A first run of the date with one row fewer, then the full run: only the second is left.
    let mut outlet_sink = ClickHouseOutletSink::connect(&config).expect("outlet sink");
    let mut partial = table.slice(1, table.height() - 1);
    outlet_sink
        .write(&mut partial, params.as_of)
        .expect("first run");
    outlet_sink.write(&mut table, params.as_of).expect("rerun");
    let stored = read_outlets(&config, params.as_of).expect("read back");
    assert!(
        stored.equals_missing(&table),
        "stored:\n{stored}\ncomputed:\n{table}"
    );
}
