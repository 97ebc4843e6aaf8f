//! KPIs worked out by hand from the domain's definitions, checked against the job.
//!
//! November 2026, as of Wednesday the 18th, with Monday the 16th a holiday declared by a
//! `calendar_day` event (20 working days in the month, 12 elapsed: time progress 0.6). Teams T1 and T2 in branch B1, region
//! R1. A2 moves from T1 to T2 on the 15th (recorded late). A3's outlet O4 is unassigned
//! from the 10th. One visit is retracted, one sale cancelled, one visit sent in UTC late at
//! night, and two plans are prorated over working days.

use aqs_analytics::kpi::{KpiParams, compute, read_ledgers};
use aqs_eventlog::Positions;
use aqs_projector::ledger::{Ledger, digest};
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{LedgerSink, RowVersions};
use aqs_schemas::{BusinessClock, Decoder};
use aqs_tables::ledgers::window::SqliteSource;
use polars::prelude::*;

const EVENTS: &[&str] = &[
    r#"{"event_id":"t1","type":"team_defined","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","payload":{"team_id":"T1","team_name":"一组","branch_id":"B1","region_id":"R1"}}"#,
    r#"{"event_id":"t2","type":"team_defined","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","payload":{"team_id":"T2","team_name":"二组","branch_id":"B1","region_id":"R1"}}"#,
    r#"{"event_id":"j1","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"team_id":"T1","effective_date":"2026-11-01"}}"#,
    r#"{"event_id":"j2","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","agent_id":"A2","payload":{"team_id":"T1","effective_date":"2026-11-01"}}"#,
    r#"{"event_id":"j3","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","agent_id":"A3","payload":{"team_id":"T2","effective_date":"2026-11-01"}}"#,
    r#"{"event_id":"j4","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-11-16T17:00:00+08:00","source":"hr","agent_id":"A2","payload":{"team_id":"T2","effective_date":"2026-11-15"}}"#,
    r#"{"event_id":"a1","type":"outlet_assigned","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"outlet_id":"O1","effective_date":"2026-11-01"}}"#,
    r#"{"event_id":"a2","type":"outlet_assigned","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"outlet_id":"O2","effective_date":"2026-11-01"}}"#,
    r#"{"event_id":"a3","type":"outlet_assigned","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","agent_id":"A2","payload":{"outlet_id":"O3","effective_date":"2026-11-01"}}"#,
    r#"{"event_id":"a4","type":"outlet_assigned","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","agent_id":"A3","payload":{"outlet_id":"O4","effective_date":"2026-11-01"}}"#,
    r#"{"event_id":"u4","type":"outlet_unassigned","schema_version":1,"occurred_at":"2026-11-09T18:00:00+08:00","source":"hr","agent_id":"A3","payload":{"outlet_id":"O4","effective_date":"2026-11-10"}}"#,
    r#"{"event_id":"e1","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T10:00:00+08:00","source":"app","agent_id":"A1","payload":{"outlet_id":"O1","purpose":"promotion"}}"#,
    r#"{"event_id":"e2","type":"consultation","schema_version":1,"occurred_at":"2026-11-02T10:30:00+08:00","source":"app","agent_id":"A1","payload":{"outlet_id":"O1","customers_consulted":4,"customers_interested":2}}"#,
    r#"{"event_id":"e3","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-02T11:00:00+08:00","source":"core","agent_id":"A1","payload":{"outlet_id":"O1","policy_id":"P1","product_code":"WL","premium":"10000.00","payment_mode":"single"}}"#,
    r#"{"event_id":"e4","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-04T10:00:00+08:00","source":"app","agent_id":"A1","payload":{"outlet_id":"O5","purpose":"relationship"}}"#,
    r#"{"event_id":"e5","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-05T15:00:00+08:00","source":"core","agent_id":"A1","payload":{"outlet_id":"O2","policy_id":"P2","product_code":"WL","premium":"5000.00","payment_mode":"single"}}"#,
    r#"{"event_id":"e6","type":"policy_cancelled","schema_version":1,"occurred_at":"2026-11-12T09:00:00+08:00","source":"core","agent_id":"A1","payload":{"policy_id":"P2","refund":"5000.00","reason":"cooling_off"}}"#,
    r#"{"event_id":"e7","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-17T23:30:00Z","source":"app","agent_id":"A1","payload":{"outlet_id":"O1","purpose":"service"}}"#,
    r#"{"event_id":"e8","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-03T10:00:00+08:00","source":"app","agent_id":"A2","payload":{"outlet_id":"O3","purpose":"training"}}"#,
    r#"{"event_id":"e9","type":"consultation","schema_version":1,"occurred_at":"2026-11-17T10:00:00+08:00","source":"app","agent_id":"A2","payload":{"outlet_id":"O3","customers_consulted":2,"customers_interested":1}}"#,
    r#"{"event_id":"e10","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-17T11:00:00+08:00","source":"core","agent_id":"A2","payload":{"outlet_id":"O3","policy_id":"P3","product_code":"ANN","premium":"2000.00","payment_mode":"regular","payment_years":10}}"#,
    r#"{"event_id":"e11","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-05T10:00:00+08:00","source":"app","agent_id":"A3","payload":{"outlet_id":"O4","purpose":"promotion"}}"#,
    r#"{"event_id":"r1","type":"retraction","schema_version":1,"occurred_at":"2026-11-06T09:00:00+08:00","source":"app","agent_id":"A3","payload":{"retracted_event_id":"e11","reason":"entered twice"}}"#,
    r#"{"event_id":"e12","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-11T10:00:00+08:00","source":"app","agent_id":"A3","payload":{"outlet_id":"O4","purpose":"promotion"}}"#,
    r#"{"event_id":"e13","type":"consultation","schema_version":1,"occurred_at":"2026-11-11T11:00:00+08:00","source":"app","agent_id":"A3","payload":{"outlet_id":"O4","customers_consulted":3,"customers_interested":0}}"#,
    r#"{"event_id":"p1","type":"activity_plan","schema_version":1,"occurred_at":"2026-11-15T20:00:00+08:00","source":"app","agent_id":"A1","payload":{"period_start":"2026-11-16","period_end":"2026-11-22","visits":8,"consultations":4}}"#,
    r#"{"event_id":"p2","type":"activity_plan","schema_version":1,"occurred_at":"2026-11-01T20:00:00+08:00","source":"app","agent_id":"A2","payload":{"period_start":"2026-11-02","period_end":"2026-11-08","visits":5}}"#,
    r#"{"event_id":"g1","type":"target","schema_version":1,"occurred_at":"2026-11-01T09:00:00+08:00","source":"plan","agent_id":"A1","payload":{"month":"2026-11","scope":"agent","scope_id":"A1","premium":"30000.00","visits":10}}"#,
    r#"{"event_id":"g2","type":"target","schema_version":1,"occurred_at":"2026-11-01T09:00:00+08:00","source":"plan","payload":{"month":"2026-11","scope":"team","scope_id":"T1","premium":"50000.00","outlet_activity_rate":"0.5"}}"#,
    r#"{"event_id":"h16","type":"calendar_day","schema_version":1,"occurred_at":"2026-10-20T09:00:00+08:00","source":"hr","payload":{"date":"2026-11-16","kind":"holiday","name":"假日"}}"#,
    r#"{"event_id":"g3","type":"target","schema_version":1,"occurred_at":"2026-11-01T09:00:00+08:00","source":"plan","payload":{"month":"2026-11","scope":"region","scope_id":"R1","premium":"100000.00"}}"#,
];

#[derive(Debug, Clone, PartialEq)]
enum V {
    Null,
    I(i64),
    F(f64),
    S(&'static str),
    B(bool),
}
use V::*;

fn kpis() -> DataFrame {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = aqs_tables::DataDir::new(dir.path()).ledgers();
    // Delivered in reverse: the job must not care.
    let mut ledger = Ledger::new(BusinessClock::default());
    for line in EVENTS.iter().rev() {
        let event = Decoder::standard()
            .decode(line.as_bytes())
            .expect("valid event");
        ledger.apply(&event, digest(line.as_bytes()));
    }
    let mut sink = SqliteSink::open(&path).expect("ledger store");
    sink.publish(
        &ledger.take_changes(),
        &RowVersions::new(&Positions::new(), 1),
    )
    .expect("publish");
    let params = KpiParams::new("2026-11-18".parse().expect("date"));
    let data = read_ledgers(&SqliteSource::new(&path), &params).expect("load");
    compute(data, &params).expect("compute")
}

fn value(frame: &DataFrame, column: &str, row: usize) -> V {
    match frame.column(column).expect(column).get(row).expect("row") {
        AnyValue::Null => Null,
        AnyValue::Int64(v) => I(v),
        AnyValue::UInt32(v) => I(i64::from(v)),
        AnyValue::Float64(v) => F(v),
        AnyValue::Boolean(v) => B(v),
        AnyValue::String(s) => S(Box::leak(s.to_owned().into_boxed_str())),
        AnyValue::StringOwned(s) => S(Box::leak(s.to_string().into_boxed_str())),
        other => S(Box::leak(other.to_string().into_boxed_str())),
    }
}

fn check(
    frame: &DataFrame,
    scope: &str,
    scope_id: &str,
    period: &str,
    start: &str,
    expected: &[(&str, V)],
) {
    let mut found = None;
    for row in 0..frame.height() {
        if value(frame, "scope", row) == S(Box::leak(scope.to_owned().into_boxed_str()))
            && value(frame, "scope_id", row) == S(Box::leak(scope_id.to_owned().into_boxed_str()))
            && value(frame, "period", row) == S(Box::leak(period.to_owned().into_boxed_str()))
            && value(frame, "period_start", row) == S(Box::leak(start.to_owned().into_boxed_str()))
        {
            found = Some(row);
        }
    }
    let row = found.unwrap_or_else(|| panic!("no row for {scope} {scope_id} {period} {start}"));
    let mut wrong = Vec::new();
    for (column, want) in expected {
        let got = value(frame, column, row);
        let same = match (&got, want) {
            (F(a), F(b)) => (a - b).abs() < 1e-9,
            (a, b) => a == b,
        };
        if !same {
            wrong.push(format!("{column}: got {got:?}, want {want:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{scope} {scope_id} {period} {start}:\n  {}",
        wrong.join("\n  ")
    );
}

const THIRD: f64 = 1.0 / 3.0;
const TWO_THIRDS: f64 = 2.0 / 3.0;

#[test]
fn agent_month_with_a_cancellation_a_late_utc_visit_and_a_prorated_plan() {
    check(
        &kpis(),
        "agent",
        "A1",
        "month",
        "2026-11-01",
        &[
            ("team_id", S("T1")),
            ("branch_id", S("B1")),
            ("region_id", S("R1")),
            ("period_end", S("2026-11-30")),
            ("as_of", S("2026-11-18")),
            ("visits", I(3)),
            ("outlets_visited", I(2)),
            ("consultations", I(1)),
            ("customers_consulted", I(4)),
            ("customers_interested", I(2)),
            ("sales", I(2)),
            ("premium", S("10000.00")),
            ("gross_premium", S("15000.00")),
            ("refunds", S("5000.00")),
            ("cancellations", I(1)),
            ("assigned_outlets", I(2)),
            ("visit_coverage", F(0.5)),
            ("outlet_activity_rate", F(1.0)),
            ("close_rate", F(0.5)),
            ("premium_per_sale", S("5000.00")),
            ("agents_on_roster", Null),
            ("active_agents", Null),
            ("agent_activity_rate", Null),
            ("premium_target", S("30000.00")),
            ("premium_attainment", F(THIRD)),
            ("outlet_activity_rate_target", Null),
            ("outlet_activity_rate_attainment", Null),
            ("visits_target", I(10)),
            ("visits_attainment", F(0.3)),
            ("planned_visits", F(4.0)),
            ("planned_consultations", F(2.0)),
            ("planned_sales", Null),
            ("plan_adherence_visits", F(0.25)),
            ("plan_adherence_consultations", F(0.0)),
            ("plan_adherence_sales", Null),
            ("time_progress", F(0.6)),
            ("pace_gap", F(THIRD - 0.6)),
            ("projected_attainment", F(THIRD / 0.6)),
            ("at_risk", B(true)),
            ("coaching_quadrant", S("does_not_do_enough")),
        ],
    );
}

#[test]
fn an_agent_transferred_mid_month_reports_under_its_new_team() {
    check(
        &kpis(),
        "agent",
        "A2",
        "month",
        "2026-11-01",
        &[
            ("team_id", S("T2")),
            ("visits", I(1)),
            ("outlets_visited", I(1)),
            ("consultations", I(1)),
            ("customers_consulted", I(2)),
            ("sales", I(1)),
            ("premium", S("2000.00")),
            ("assigned_outlets", I(1)),
            ("visit_coverage", F(1.0)),
            ("outlet_activity_rate", F(1.0)),
            ("close_rate", F(0.5)),
            ("premium_per_sale", S("2000.00")),
            ("premium_target", Null),
            ("premium_attainment", Null),
            ("planned_visits", F(5.0)),
            ("plan_adherence_visits", F(0.2)),
            ("plan_adherence_consultations", Null),
            ("time_progress", F(0.6)),
            ("pace_gap", Null),
            ("projected_attainment", Null),
            ("at_risk", Null),
            ("team_median_close_rate", F(0.25)),
            ("coaching_quadrant", S("does_not_do_enough")),
        ],
    );
    check(
        &kpis(),
        "agent",
        "A3",
        "month",
        "2026-11-01",
        &[
            ("visits", I(1)),
            ("close_rate", F(0.0)),
            ("premium_per_sale", Null),
            ("planned_visits", Null),
            ("plan_adherence_visits", Null),
            ("coaching_quadrant", Null),
        ],
    );
}

#[test]
fn team_months_split_the_transferred_agent_by_date() {
    let frame = kpis();
    check(
        &frame,
        "team",
        "T1",
        "month",
        "2026-11-01",
        &[
            ("team_id", S("T1")),
            ("branch_id", S("B1")),
            ("region_id", S("R1")),
            ("visits", I(4)),
            ("outlets_visited", I(3)),
            ("consultations", I(1)),
            ("customers_consulted", I(4)),
            ("sales", I(2)),
            ("premium", S("10000.00")),
            ("cancellations", I(1)),
            ("assigned_outlets", I(3)),
            ("visit_coverage", F(TWO_THIRDS)),
            ("outlet_activity_rate", F(TWO_THIRDS)),
            ("close_rate", F(0.5)),
            ("premium_per_sale", S("5000.00")),
            ("agents_on_roster", I(2)),
            ("active_agents", I(1)),
            ("agent_activity_rate", F(0.5)),
            ("premium_target", S("50000.00")),
            ("premium_attainment", F(0.2)),
            ("outlet_activity_rate_target", F(0.5)),
            ("outlet_activity_rate_attainment", F(TWO_THIRDS / 0.5)),
            ("planned_visits", F(9.0)),
            ("planned_consultations", F(2.0)),
            ("planned_sales", Null),
            ("plan_adherence_visits", F(2.0 / 9.0)),
            ("plan_adherence_consultations", F(0.0)),
            ("time_progress", F(0.6)),
            ("pace_gap", F(-0.4)),
            ("projected_attainment", F(0.2 / 0.6)),
            ("at_risk", B(true)),
            ("coaching_quadrant", Null),
        ],
    );
    check(
        &frame,
        "team",
        "T2",
        "month",
        "2026-11-01",
        &[
            ("visits", I(1)),
            ("outlets_visited", I(1)),
            ("consultations", I(2)),
            ("customers_consulted", I(5)),
            ("customers_interested", I(1)),
            ("sales", I(1)),
            ("premium", S("2000.00")),
            ("assigned_outlets", I(2)),
            ("visit_coverage", F(0.0)),
            ("outlet_activity_rate", F(0.5)),
            ("close_rate", F(0.2)),
            ("agents_on_roster", I(2)),
            ("active_agents", I(1)),
            ("agent_activity_rate", F(0.5)),
            ("premium_target", Null),
            ("premium_attainment", Null),
            ("outlet_activity_rate_target", Null),
            ("planned_visits", Null),
            ("plan_adherence_visits", Null),
            ("time_progress", F(0.6)),
            ("pace_gap", Null),
            ("projected_attainment", Null),
            ("at_risk", Null),
        ],
    );
}

#[test]
fn branch_and_region_add_up_their_teams_day_by_day() {
    let frame = kpis();
    let common = [
        ("visits", I(5)),
        ("outlets_visited", I(4)),
        ("consultations", I(3)),
        ("customers_consulted", I(9)),
        ("customers_interested", I(3)),
        ("sales", I(3)),
        ("premium", S("12000.00")),
        ("gross_premium", S("17000.00")),
        ("assigned_outlets", I(4)),
        ("visit_coverage", F(0.5)),
        ("outlet_activity_rate", F(0.75)),
        ("close_rate", F(THIRD)),
        ("premium_per_sale", S("4000.00")),
        ("agents_on_roster", I(3)),
        ("active_agents", I(2)),
        ("agent_activity_rate", F(TWO_THIRDS)),
        ("planned_visits", F(9.0)),
        ("planned_consultations", F(2.0)),
        ("plan_adherence_visits", F(2.0 / 9.0)),
        ("time_progress", F(0.6)),
    ];
    let mut branch = common.to_vec();
    branch.extend([
        ("team_id", Null),
        ("branch_id", S("B1")),
        ("region_id", S("R1")),
        ("premium_target", Null),
        ("at_risk", Null),
    ]);
    check(&frame, "branch", "B1", "month", "2026-11-01", &branch);
    let mut region = common.to_vec();
    region.extend([
        ("team_id", Null),
        ("branch_id", Null),
        ("region_id", S("R1")),
        ("premium_target", S("100000.00")),
        ("premium_attainment", F(0.12)),
        ("pace_gap", F(0.12 - 0.6)),
        ("projected_attainment", F(0.2)),
        ("at_risk", B(true)),
    ]);
    check(&frame, "region", "R1", "month", "2026-11-01", &region);
}

#[test]
fn weeks_and_days_count_only_their_own_dates() {
    let frame = kpis();
    check(
        &frame,
        "agent",
        "A1",
        "week",
        "2026-11-16",
        &[
            ("period_end", S("2026-11-22")),
            ("visits", I(1)),
            ("outlets_visited", I(1)),
            ("sales", I(0)),
            ("premium", S("0.00")),
            ("assigned_outlets", I(2)),
            ("visit_coverage", F(0.5)),
            ("outlet_activity_rate", F(0.0)),
            ("close_rate", Null),
            ("premium_per_sale", Null),
            ("premium_target", Null),
            ("premium_attainment", Null),
            ("time_progress", Null),
            ("pace_gap", Null),
            ("projected_attainment", Null),
            ("at_risk", Null),
            ("planned_visits", F(4.0)),
            ("planned_consultations", F(2.0)),
            ("plan_adherence_visits", F(0.25)),
            ("plan_adherence_consultations", F(0.0)),
        ],
    );
    // The cancellation's own date carries the refund.
    check(
        &frame,
        "agent",
        "A1",
        "day",
        "2026-11-12",
        &[
            ("visits", I(0)),
            ("sales", I(0)),
            ("cancellations", I(1)),
            ("premium", S("-5000.00")),
            ("refunds", S("5000.00")),
            ("assigned_outlets", I(2)),
            ("visit_coverage", F(0.0)),
            ("close_rate", Null),
            ("premium_per_sale", Null),
        ],
    );
    // The holiday carries no planned work; the next day carries a quarter of the week's plan.
    check(
        &frame,
        "agent",
        "A1",
        "day",
        "2026-11-16",
        &[
            ("visits", I(0)),
            ("planned_visits", F(0.0)),
            ("plan_adherence_visits", Null),
        ],
    );
    check(
        &frame,
        "agent",
        "A1",
        "day",
        "2026-11-17",
        &[
            ("planned_visits", F(2.0)),
            ("plan_adherence_visits", F(0.0)),
        ],
    );
    // The visit sent as 23:30 UTC on the 17th is a visit of the 18th in Shanghai.
    check(
        &frame,
        "agent",
        "A1",
        "day",
        "2026-11-18",
        &[("visits", I(1)), ("plan_adherence_visits", F(0.5))],
    );
    // A retracted visit counts nowhere.
    check(
        &frame,
        "agent",
        "A3",
        "day",
        "2026-11-05",
        &[("visits", I(0)), ("assigned_outlets", I(1))],
    );
}

/// The largest premium the contract takes, 9,999,999,999,999.99 CNY, sold again and again:
/// team T8's one agent 1,001 times (the sum needs 19 digits, beyond Decimal(18, 2)), and
/// each of team T9's three agents 9,223 times (each agent's cell just fits the ledger's
/// Int64 fen; the team's sum does not). Both teams in branch B9, region R9.
fn edge_kpis() -> DataFrame {
    let mut lines = vec![
        r#"{"event_id":"t8","type":"team_defined","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","payload":{"team_id":"T8","team_name":"八组","branch_id":"B9","region_id":"R9"}}"#.to_owned(),
        r#"{"event_id":"t9","type":"team_defined","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","payload":{"team_id":"T9","team_name":"九组","branch_id":"B9","region_id":"R9"}}"#.to_owned(),
    ];
    let agents: [(&str, &str, u32); 4] = [
        ("F1", "T8", 1_001),
        ("E1", "T9", 9_223),
        ("E2", "T9", 9_223),
        ("E3", "T9", 9_223),
    ];
    for (agent, team, sales) in agents {
        lines.push(format!(
            r#"{{"event_id":"j-{agent}","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","agent_id":"{agent}","payload":{{"team_id":"{team}","effective_date":"2026-11-01"}}}}"#
        ));
        for n in 0..sales {
            lines.push(format!(
                r#"{{"event_id":"s-{agent}-{n}","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-02T11:00:00+08:00","source":"core","agent_id":"{agent}","payload":{{"outlet_id":"O9","policy_id":"P-{agent}-{n}","product_code":"WL","premium":"9999999999999.99","payment_mode":"single"}}}}"#
            ));
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = aqs_tables::DataDir::new(dir.path()).ledgers();
    let mut ledger = Ledger::new(BusinessClock::default());
    for line in &lines {
        let event = Decoder::standard()
            .decode(line.as_bytes())
            .expect("valid event");
        ledger.apply(&event, digest(line.as_bytes()));
    }
    let mut sink = SqliteSink::open(&path).expect("ledger store");
    sink.publish(
        &ledger.take_changes(),
        &RowVersions::new(&Positions::new(), 1),
    )
    .expect("publish");
    let params = KpiParams::new("2026-11-18".parse().expect("date"));
    let data = read_ledgers(&SqliteSource::new(&path), &params).expect("load");
    compute(data, &params).expect("sums beyond Int64 are computed, not refused")
}

/// 9,999,999,999,999.99 CNY, a sale's largest premium.
const LARGEST: &str = "9999999999999.99";

#[test]
fn money_sums_beyond_int64_and_decimal_18_are_exact() {
    let frame = edge_kpis();
    let month = |scope: &str, id: &str, sales: i64, premium: &'static str| {
        check(
            &frame,
            scope,
            id,
            "month",
            "2026-11-01",
            &[
                ("sales", I(sales)),
                ("premium", S(premium)),
                ("gross_premium", S(premium)),
                ("refunds", S("0.00")),
                ("premium_per_sale", S(LARGEST)),
            ],
        );
    };
    // 1,001 × 9,999,999,999,999.99
    month("agent", "F1", 1_001, "10009999999999989.99");
    month("team", "T8", 1_001, "10009999999999989.99");
    // 9,223 × 9,999,999,999,999.99: 9,222,999,999,999,990,777 fen, just below 2^63.
    month("agent", "E1", 9_223, "92229999999999907.77");
    // 27,669 × 9,999,999,999,999.99: 27,668,999,999,999,972,331 fen, beyond 2^63 − 1.
    month("team", "T9", 27_669, "276689999999999723.31");
    // 28,670 sales in the branch and the region.
    month("branch", "B9", 28_670, "286699999999999713.30");
    month("region", "R9", 28_670, "286699999999999713.30");
    check(
        &frame,
        "team",
        "T9",
        "day",
        "2026-11-02",
        &[
            ("sales", I(27_669)),
            ("premium", S("276689999999999723.31")),
            ("agents_on_roster", I(3)),
            ("active_agents", I(3)),
        ],
    );
}

#[test]
fn the_largest_sums_survive_the_kpi_table_in_clickhouse() {
    use aqs_tables::kpi::{ClickHouseKpiSink, KpiSink, read_kpis};

    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let config = aqs_warehouse::ClickHouseConfig::new(clickhouse.url())
        .with_credentials(clickhouse.user(), clickhouse.password())
        .with_database(clickhouse.fresh_database_name());
    aqs_warehouse::BlockingClient::new(&config)
        .expect("client")
        .run(aqs_warehouse::migrate(&config))
        .expect("migrate");
    let mut frame = edge_kpis();
    let as_of = "2026-11-18".parse().expect("date");
    ClickHouseKpiSink::connect(&config)
        .expect("kpi sink")
        .write(&mut frame, as_of)
        .expect("written to ClickHouse");
    let stored = read_kpis(&config, as_of).expect("read back");
    check(
        &stored,
        "region",
        "R9",
        "month",
        "2026-11-01",
        &[
            ("sales", I(28_670)),
            ("premium", S("286699999999999713.30")),
            ("premium_per_sale", S(LARGEST)),
        ],
    );
    assert!(
        stored.equals_missing(&frame),
        "the kpi table holds exactly the job's output"
    );
}

/// November 2026 as of Wednesday the 18th: team T5 with Z1, who does nothing at all (no
/// activity, outlet, plan or target), Z2, who visits once on the 3rd, and Z3, who leaves the
/// roster from the 5th (last day the 4th).
fn roster_kpis() -> DataFrame {
    let lines = [
        r#"{"event_id":"t5","type":"team_defined","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","payload":{"team_id":"T5","team_name":"五组","branch_id":"B5","region_id":"R5"}}"#,
        r#"{"event_id":"jz1","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","agent_id":"Z1","payload":{"team_id":"T5","effective_date":"2026-11-01"}}"#,
        r#"{"event_id":"jz2","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","agent_id":"Z2","payload":{"team_id":"T5","effective_date":"2026-11-01"}}"#,
        r#"{"event_id":"jz3","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","agent_id":"Z3","payload":{"team_id":"T5","effective_date":"2026-11-01"}}"#,
        r#"{"event_id":"lz3","type":"agent_left","schema_version":1,"occurred_at":"2026-11-04T18:00:00+08:00","source":"hr","agent_id":"Z3","payload":{"effective_date":"2026-11-05"}}"#,
        r#"{"event_id":"vz2","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-03T10:00:00+08:00","source":"app","agent_id":"Z2","payload":{"outlet_id":"O5","purpose":"promotion"}}"#,
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let path = aqs_tables::DataDir::new(dir.path()).ledgers();
    let mut ledger = Ledger::new(BusinessClock::default());
    for line in lines {
        let event = Decoder::standard()
            .decode(line.as_bytes())
            .expect("valid event");
        ledger.apply(&event, digest(line.as_bytes()));
    }
    let mut sink = SqliteSink::open(&path).expect("ledger store");
    sink.publish(
        &ledger.take_changes(),
        &RowVersions::new(&Positions::new(), 1),
    )
    .expect("publish");
    let params = KpiParams::new("2026-11-18".parse().expect("date"));
    let data = read_ledgers(&SqliteSource::new(&path), &params).expect("load");
    compute(data, &params).expect("compute")
}

/// The periods an agent has rows for, as "period start".
fn periods_of(frame: &DataFrame, agent: &str) -> Vec<String> {
    let mut found = Vec::new();
    for row in 0..frame.height() {
        if value(frame, "scope", row) == S("agent")
            && value(frame, "scope_id", row) == S(Box::leak(agent.to_owned().into_boxed_str()))
        {
            let (S(period), S(start)) = (
                value(frame, "period", row),
                value(frame, "period_start", row),
            ) else {
                panic!("period and start are text");
            };
            found.push(format!("{period} {start}"));
        }
    }
    found.sort();
    found
}

#[test]
fn every_agent_on_a_roster_has_its_week_and_month_rows() {
    let frame = roster_kpis();
    // Weeks from Monday 26 October (1 November is a Sunday) to 16 November, and the month;
    // no day rows: nothing happened on any day.
    assert_eq!(
        periods_of(&frame, "Z1"),
        [
            "month 2026-11-01",
            "week 2026-10-26",
            "week 2026-11-02",
            "week 2026-11-09",
            "week 2026-11-16"
        ]
    );
    let nothing = [
        ("team_id", S("T5")),
        ("branch_id", S("B5")),
        ("region_id", S("R5")),
        ("visits", I(0)),
        ("outlets_visited", I(0)),
        ("consultations", I(0)),
        ("customers_consulted", I(0)),
        ("sales", I(0)),
        ("premium", S("0.00")),
        ("gross_premium", S("0.00")),
        ("refunds", S("0.00")),
        ("cancellations", I(0)),
        ("assigned_outlets", I(0)),
        ("visit_coverage", Null),
        ("close_rate", Null),
        ("premium_per_sale", Null),
        ("agents_on_roster", Null),
        ("premium_target", Null),
        ("premium_attainment", Null),
        ("planned_visits", Null),
        ("plan_adherence_visits", Null),
    ];
    check(&frame, "agent", "Z1", "month", "2026-11-01", &nothing);
    check(&frame, "agent", "Z1", "week", "2026-11-16", &nothing);
    check(
        &frame,
        "agent",
        "Z1",
        "month",
        "2026-11-01",
        &[
            // 13 of November's 21 working days have passed (2–6, 9–13, 16–18).
            ("time_progress", F(13.0 / 21.0)),
            ("at_risk", Null),
            ("coaching_quadrant", Null),
        ],
    );
    // Z2's visit gives it a day row besides its weeks and month.
    assert_eq!(
        periods_of(&frame, "Z2"),
        [
            "day 2026-11-03",
            "month 2026-11-01",
            "week 2026-10-26",
            "week 2026-11-02",
            "week 2026-11-09",
            "week 2026-11-16"
        ]
    );
    // Z3, on the roster from the 1st to the 4th: the weeks holding those days, the month.
    assert_eq!(
        periods_of(&frame, "Z3"),
        ["month 2026-11-01", "week 2026-10-26", "week 2026-11-02"]
    );
    check(
        &frame,
        "team",
        "T5",
        "month",
        "2026-11-01",
        &[
            ("visits", I(1)),
            ("agents_on_roster", I(3)),
            ("active_agents", I(0)),
            ("agent_activity_rate", F(0.0)),
        ],
    );
}

// Activity needed and quota balance ------------------------------------------------------------

#[test]
fn activity_needed_borrows_the_teams_and_the_branchs_rates_when_a_scope_has_few_sales() {
    // As of the 18th, with the 16th a holiday: the 18th, 19th, 20th, 23rd–27th and 30th
    // remain, 9 working days. Every fact of the scenario is inside the trailing 90 days.
    let kpis = kpis();
    // A1 still needs 30,000.00 − 10,000.00. It sold twice (under 10): T1's rates, over the
    // days A1 and A2 counted for T1: 2 sales, 4 customers, 15,000.00 − 5,000.00 refunded,
    // so 5,000.00 a sale and a close rate of 0.5: ⌈20,000 / 5,000⌉ = 4 sales, 8 customers.
    check(
        &kpis,
        "agent",
        "A1",
        "month",
        "2026-11-01",
        &[
            ("working_days_remaining", I(9)),
            ("premium_needed", S("20000.00")),
            ("trailing_sales", I(2)),
            ("needed_rates_basis", S("team")),
            ("trailing_premium_per_sale", S("5000.00")),
            ("trailing_close_rate", F(0.5)),
            ("sales_needed", I(4)),
            ("customers_needed", I(8)),
            ("sales_needed_per_working_day", F(4.0 / 9.0)),
            ("customers_needed_per_working_day", F(8.0 / 9.0)),
        ],
    );
    // T1 needs 50,000.00 − 10,000.00, and has 2 sales of its own: B1's rates, 3 sales
    // (A2's on the 17th for T2 too) for 12,000.00 and 9 customers: 4,000.00 a sale, a close
    // rate of 1/3: 10 sales, 30 customers.
    check(
        &kpis,
        "team",
        "T1",
        "month",
        "2026-11-01",
        &[
            ("premium_needed", S("40000.00")),
            ("trailing_sales", I(2)),
            ("needed_rates_basis", S("branch")),
            ("trailing_premium_per_sale", S("4000.00")),
            ("trailing_close_rate", F(THIRD)),
            ("sales_needed", I(10)),
            ("customers_needed", I(30)),
            ("customers_needed_per_working_day", F(30.0 / 9.0)),
        ],
    );
    // A2 has no target: rates (of its team at the month's end, T2), no need.
    check(
        &kpis,
        "agent",
        "A2",
        "month",
        "2026-11-01",
        &[
            ("premium_needed", Null),
            ("needed_rates_basis", S("team")),
            ("trailing_premium_per_sale", S("2000.00")),
            ("sales_needed", Null),
            ("customers_needed", Null),
            ("customers_needed_per_working_day", Null),
        ],
    );
    // R1's target is its own, but activity needed is for agents and teams.
    check(
        &kpis,
        "region",
        "R1",
        "month",
        "2026-11-01",
        &[
            ("working_days_remaining", I(9)),
            ("premium_needed", Null),
            ("trailing_sales", Null),
            ("needed_rates_basis", Null),
        ],
    );
    check(
        &kpis,
        "agent",
        "A1",
        "week",
        "2026-11-16",
        &[
            ("working_days_remaining", Null),
            ("premium_needed", Null),
            ("needed_rates_basis", Null),
        ],
    );
}

/// Team T7 of branch B7 from 1 August 2026: A7 sells twelve times in the trailing 90 days,
/// most of it in September, before the window of the month's periods; A8 never sells; A9
/// meets its target. A7 plans a balanced week of 23 November and spends it visiting.
fn quota_lines() -> Vec<String> {
    let mut lines = vec![
        r#"{"event_id":"t7","type":"team_defined","schema_version":1,"occurred_at":"2026-07-30T09:00:00+08:00","source":"hr","payload":{"team_id":"T7","team_name":"七组","branch_id":"B7","region_id":"R7"}}"#.to_owned(),
        r#"{"event_id":"t6","type":"team_defined","schema_version":1,"occurred_at":"2026-07-30T09:00:00+08:00","source":"hr","payload":{"team_id":"T6","team_name":"六组","branch_id":"B6","region_id":"R7"}}"#.to_owned(),
        r#"{"event_id":"q-p7","type":"activity_plan","schema_version":1,"occurred_at":"2026-11-22T20:00:00+08:00","source":"app","agent_id":"A7","payload":{"period_start":"2026-11-23","period_end":"2026-11-29","visits":10,"consultations":5,"sales":1}}"#.to_owned(),
    ];
    for (agent, team) in [("A6", "T6"), ("A7", "T7"), ("A8", "T7"), ("A9", "T7")] {
        lines.push(format!(
            r#"{{"event_id":"q-j-{agent}","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-07-30T09:00:00+08:00","source":"hr","agent_id":"{agent}","payload":{{"team_id":"{team}","effective_date":"2026-08-01"}}}}"#
        ));
    }
    for (scope, id, premium) in [
        ("agent", "A6", "10000.00"),
        ("agent", "A7", "60000.00"),
        ("agent", "A8", "20000.00"),
        ("agent", "A9", "5000.00"),
        ("team", "T7", "100000.00"),
    ] {
        // An agent's target is an agent event.
        let agent = if scope == "agent" {
            format!(r#""agent_id":"{id}","#)
        } else {
            String::new()
        };
        lines.push(format!(
            r#"{{"event_id":"q-g-{id}","type":"target","schema_version":1,"occurred_at":"2026-11-01T09:00:00+08:00","source":"plan",{agent}"payload":{{"month":"2026-11","scope":"{scope}","scope_id":"{id}","premium":"{premium}"}}}}"#
        ));
    }
    let sale = |id: &str, agent: &str, at: &str, premium: &str| {
        format!(
            r#"{{"event_id":"{id}","type":"sale_closed","schema_version":1,"occurred_at":"{at}T11:00:00+08:00","source":"core","agent_id":"{agent}","payload":{{"outlet_id":"O7","policy_id":"{id}","product_code":"WL","premium":"{premium}","payment_mode":"single"}}}}"#
        )
    };
    let consultation = |id: &str, at: &str, customers: u32| {
        format!(
            r#"{{"event_id":"{id}","type":"consultation","schema_version":1,"occurred_at":"{at}T10:00:00+08:00","source":"app","agent_id":"A7","payload":{{"outlet_id":"O7","customers_consulted":{customers},"customers_interested":1}}}}"#
        )
    };
    // 1 September is the day before the trailing window (90 days through 30 November).
    lines.push(sale("q-s0", "A7", "2026-09-01", "100000.00"));
    lines.push(sale("q-s1", "A7", "2026-09-02", "3000.00"));
    for n in 2..12 {
        lines.push(sale(&format!("q-s{n}"), "A7", "2026-09-15", "3000.00"));
    }
    lines.push(consultation("q-c1", "2026-09-15", 40));
    lines.push(consultation("q-c2", "2026-11-10", 5));
    lines.push(sale("q-s12", "A7", "2026-11-10", "6000.00"));
    lines.push(sale("q-s13", "A9", "2026-11-20", "5000.00"));
    // The week of the 23rd: 11 visits and one consultation on Tuesday the 24th.
    for n in 0..11 {
        lines.push(format!(
            r#"{{"event_id":"q-v{n}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-24T09:{n:02}:00+08:00","source":"app","agent_id":"A7","payload":{{"outlet_id":"O7","purpose":"relationship"}}}}"#
        ));
    }
    lines.push(consultation("q-c3", "2026-11-24", 2));
    lines
}

fn quota_kpis(params: &KpiParams) -> DataFrame {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledgers.db");
    let mut ledger = Ledger::new(BusinessClock::default());
    for line in quota_lines().iter().rev() {
        let event = Decoder::standard()
            .decode(line.as_bytes())
            .unwrap_or_else(|e| panic!("valid event {line}: {e:?}"));
        ledger.apply(&event, digest(line.as_bytes()));
    }
    let mut sink = SqliteSink::open(&path).expect("ledger store");
    sink.publish(
        &ledger.take_changes(),
        &RowVersions::new(&Positions::new(), 1),
    )
    .expect("publish");
    let data = read_ledgers(&SqliteSource::new(&path), params).expect("load");
    compute(data, params).expect("compute")
}

#[test]
fn on_the_last_working_day_the_whole_need_is_that_days_at_the_trailing_windows_own_rates() {
    // Monday 30 November 2026 is the month's last working day: it is the one remaining.
    let kpis = quota_kpis(&KpiParams::new("2026-11-30".parse().expect("date")));
    // A7: 12 sales from 2 September (not the one of 1 September) for 39,000.00, 47
    // customers: its own rates, 3,250.00 a sale and 12/47. 54,000.00 still needed:
    // ⌈54,000 × 12 / 39,000⌉ = ⌈16.6⌉ = 17 sales, ⌈17 × 47 / 12⌉ = ⌈66.6⌉ = 67 customers.
    check(
        &kpis,
        "agent",
        "A7",
        "month",
        "2026-11-01",
        &[
            ("time_progress", F(1.0)),
            ("working_days_remaining", I(1)),
            ("premium_needed", S("54000.00")),
            ("trailing_sales", I(12)),
            ("needed_rates_basis", S("own")),
            ("trailing_premium_per_sale", S("3250.00")),
            ("trailing_close_rate", F(12.0 / 47.0)),
            ("sales_needed", I(17)),
            ("customers_needed", I(67)),
            ("sales_needed_per_working_day", F(17.0)),
            ("customers_needed_per_working_day", F(67.0)),
        ],
    );
    // A8 never sold: T7's rates (13 sales, 44,000.00, 47 customers): 20,000.00 is
    // ⌈20,000 × 13 / 44,000⌉ = 6 sales and ⌈6 × 47 / 13⌉ = 22 customers.
    check(
        &kpis,
        "agent",
        "A8",
        "month",
        "2026-11-01",
        &[
            ("premium_needed", S("20000.00")),
            ("trailing_sales", I(0)),
            ("needed_rates_basis", S("team")),
            ("trailing_premium_per_sale", S("3384.62")),
            ("trailing_close_rate", F(13.0 / 47.0)),
            ("sales_needed", I(6)),
            ("customers_needed", I(22)),
        ],
    );
    // A9 met its target: nothing needed.
    check(
        &kpis,
        "agent",
        "A9",
        "month",
        "2026-11-01",
        &[
            ("premium_needed", Null),
            ("sales_needed", Null),
            ("customers_needed_per_working_day", Null),
        ],
    );
    // T7: 100,000.00 − 11,000.00 at its own rates: ⌈89,000 × 13 / 44,000⌉ = 27 sales,
    // ⌈27 × 47 / 13⌉ = 98 customers.
    check(
        &kpis,
        "team",
        "T7",
        "month",
        "2026-11-01",
        &[
            ("premium_needed", S("89000.00")),
            ("trailing_sales", I(13)),
            ("needed_rates_basis", S("own")),
            ("sales_needed", I(27)),
            ("customers_needed", I(98)),
            ("customers_needed_per_working_day", F(98.0)),
        ],
    );
    // A6's team never sold either: no premium per sale, no close rate, nothing to work out.
    check(
        &kpis,
        "agent",
        "A6",
        "month",
        "2026-11-01",
        &[
            ("premium_needed", S("10000.00")),
            ("needed_rates_basis", S("team")),
            ("trailing_premium_per_sale", Null),
            ("trailing_close_rate", Null),
            ("sales_needed", Null),
            ("customers_needed", Null),
        ],
    );

    // On Tuesday 1 December November is over: its need is gone.
    let mut params = KpiParams::new("2026-12-01".parse().expect("date"));
    params.since = "2026-11-01".parse().expect("date");
    let december = quota_kpis(&params);
    check(
        &december,
        "agent",
        "A7",
        "month",
        "2026-11-01",
        &[
            ("working_days_remaining", I(0)),
            ("premium_needed", Null),
            ("needed_rates_basis", Null),
            ("sales_needed", Null),
        ],
    );
}

#[test]
fn a_week_spent_visiting_against_a_balanced_plan_is_a_balance_drift() {
    let kpis = quota_kpis(&KpiParams::new("2026-11-30".parse().expect("date")));
    // Planned 10 visits, 5 consultations, 1 sale; done 11, 1 and 0.
    let week = [
        ("visits_share", F(11.0 / 12.0)),
        ("consultations_share", F(1.0 / 12.0)),
        ("sales_share", F(0.0)),
        ("planned_visits_share", F(10.0 / 16.0)),
        ("planned_consultations_share", F(5.0 / 16.0)),
        ("planned_sales_share", F(1.0 / 16.0)),
        ("plan_adherence_visits", F(1.1)),
        ("plan_adherence_consultations", F(0.2)),
        ("plan_adherence_sales", F(0.0)),
        ("balance_drift", B(true)),
        (
            "balance_drift_reason",
            S("consultations_and_sales_below_plan"),
        ),
    ];
    // The only agent of T7 with activity that week: the norm is its own mix.
    let mut agent_week = week.to_vec();
    agent_week.push(("norm_visits_share", F(11.0 / 12.0)));
    check(&kpis, "agent", "A7", "week", "2026-11-23", &agent_week);
    // T7 sums its agents' plans and activity; it is alone in B7.
    let mut team_week = week.to_vec();
    team_week.push(("norm_consultations_share", F(1.0 / 12.0)));
    check(&kpis, "team", "T7", "week", "2026-11-23", &team_week);
    // A7's month: 11 visits, 2 consultations, 1 sale; the same plan, the same verdict.
    check(
        &kpis,
        "agent",
        "A7",
        "month",
        "2026-11-01",
        &[
            ("visits_share", F(11.0 / 14.0)),
            ("consultations_share", F(2.0 / 14.0)),
            ("balance_drift", B(true)),
        ],
    );
    // A8 planned nothing and did nothing: no mix, nothing to judge; its team's norm.
    check(
        &kpis,
        "agent",
        "A8",
        "week",
        "2026-11-23",
        &[
            ("visits_share", Null),
            ("planned_visits_share", Null),
            ("norm_visits_share", F(11.0 / 12.0)),
            ("balance_drift", Null),
            ("balance_drift_reason", Null),
        ],
    );
    // Not on days, nor on branches and regions.
    check(
        &kpis,
        "agent",
        "A7",
        "day",
        "2026-11-24",
        &[("visits_share", Null), ("balance_drift", Null)],
    );
    check(
        &kpis,
        "branch",
        "B7",
        "week",
        "2026-11-23",
        &[("visits_share", Null), ("balance_drift", Null)],
    );
}

/// Folds `lines` in reverse into a fresh embedded ledger store and computes the KPIs.
fn kpis_of(lines: &[String], params: &KpiParams) -> DataFrame {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledgers.db");
    let mut ledger = Ledger::new(BusinessClock::default());
    for line in lines.iter().rev() {
        let event = Decoder::standard()
            .decode(line.as_bytes())
            .unwrap_or_else(|e| panic!("valid event {line}: {e:?}"));
        ledger.apply(&event, digest(line.as_bytes()));
    }
    let mut sink = SqliteSink::open(&path).expect("ledger store");
    sink.publish(
        &ledger.take_changes(),
        &RowVersions::new(&Positions::new(), 1),
    )
    .expect("publish");
    let data = read_ledgers(&SqliteSource::new(&path), params).expect("load");
    compute(data, params).expect("compute")
}

/// November 2026 with the calendar as events: Saturday the 14th worked (调休), Monday the
/// 23rd and Tuesday the 24th holidays, the 24th first declared worked and then corrected (the
/// later declaration wins). 21 weekdays − 2 holidays + 1 Saturday = 20 working days.
///
/// A1 plans 14 visits for 9–22 November (working days 9–13, 14, 16–20: 11) and 6 for 23–27
/// (working days 25–27: 3), targets 100,000.00 and sells twice, 10,000.00 each, to 20
/// customers consulted: 10,000.00 a sale and 2 sales in 20 customers. 80,000.00 still
/// needed: ⌈80,000 × 2 / 20,000⌉ = 8 sales, ⌈8 × 20 / 2⌉ = 80 customers.
fn calendar_lines() -> Vec<String> {
    let event = |id: &str, kind: &str, at: &str, agent: Option<&str>, payload: &str| {
        let agent = agent.map_or(String::new(), |a| format!(r#""agent_id":"{a}","#));
        format!(
            r#"{{"event_id":"{id}","type":"{kind}","schema_version":1,"occurred_at":"{at}","source":"cal",{agent}"payload":{payload}}}"#
        )
    };
    let day = |id: &str, at: &str, date: &str, kind: &str| {
        event(
            id,
            "calendar_day",
            at,
            None,
            &format!(r#"{{"date":"{date}","kind":"{kind}"}}"#),
        )
    };
    vec![
        day(
            "d14",
            "2026-10-20T09:00:00+08:00",
            "2026-11-14",
            "working_day",
        ),
        day("d23", "2026-10-20T09:00:00+08:00", "2026-11-23", "holiday"),
        day(
            "d24a",
            "2026-10-20T09:00:00+08:00",
            "2026-11-24",
            "working_day",
        ),
        day("d24b", "2026-10-21T09:00:00+08:00", "2026-11-24", "holiday"),
        event(
            "j1",
            "agent_joined_team",
            "2026-11-01T08:00:00+08:00",
            Some("A1"),
            r#"{"team_id":"T1","effective_date":"2026-11-01"}"#,
        ),
        event(
            "g1",
            "target",
            "2026-11-01T09:00:00+08:00",
            Some("A1"),
            r#"{"month":"2026-11","scope":"agent","scope_id":"A1","premium":"100000.00"}"#,
        ),
        event(
            "p1",
            "activity_plan",
            "2026-11-08T20:00:00+08:00",
            Some("A1"),
            r#"{"period_start":"2026-11-09","period_end":"2026-11-22","visits":14}"#,
        ),
        event(
            "p2",
            "activity_plan",
            "2026-11-22T20:00:00+08:00",
            Some("A1"),
            r#"{"period_start":"2026-11-23","period_end":"2026-11-27","visits":6}"#,
        ),
        event(
            "c1",
            "consultation",
            "2026-11-10T10:00:00+08:00",
            Some("A1"),
            r#"{"outlet_id":"O1","customers_consulted":12,"customers_interested":3}"#,
        ),
        event(
            "c2",
            "consultation",
            "2026-11-12T10:00:00+08:00",
            Some("A1"),
            r#"{"outlet_id":"O1","customers_consulted":8,"customers_interested":2}"#,
        ),
        event(
            "s1",
            "sale_closed",
            "2026-11-10T11:00:00+08:00",
            Some("A1"),
            r#"{"outlet_id":"O1","policy_id":"P1","product_code":"X","premium":"10000.00","payment_mode":"single"}"#,
        ),
        event(
            "s2",
            "sale_closed",
            "2026-11-12T11:00:00+08:00",
            Some("A1"),
            r#"{"outlet_id":"O1","policy_id":"P2","product_code":"X","premium":"10000.00","payment_mode":"single"}"#,
        ),
        event(
            "v1",
            "outlet_visit",
            "2026-11-14T10:00:00+08:00",
            Some("A1"),
            r#"{"outlet_id":"O1","purpose":"promotion"}"#,
        ),
    ]
}

fn calendar_params(as_of: &str) -> KpiParams {
    let mut params = KpiParams::new(as_of.parse().expect("date"));
    params.rates_min_sales = 2;
    params
}

#[test]
fn a_swapped_saturday_is_a_working_day_and_a_holiday_is_none_in_pacing_plans_and_needs() {
    // As of the swapped Saturday itself: 2–6, 9–13 and the 14th elapsed (11 of 20), the
    // 14th, 16–20, 25–27 and 30 ahead (10). Without the calendar it would be 10/21 and 11;
    // with the holidays alone 10/19 and 9.
    let saturday = kpis_of(&calendar_lines(), &calendar_params("2026-11-14"));
    check(
        &saturday,
        "agent",
        "A1",
        "month",
        "2026-11-01",
        &[
            ("time_progress", F(11.0 / 20.0)),
            ("working_days_remaining", I(10)),
            // 14 visits × 6 of the plan's 11 working days (9–14) elapsed.
            ("planned_visits", F(14.0 * 6.0 / 11.0)),
            ("premium_needed", S("80000.00")),
            ("needed_rates_basis", S("own")),
            ("sales_needed", I(8)),
            ("customers_needed", I(80)),
            ("sales_needed_per_working_day", F(8.0 / 10.0)),
            ("customers_needed_per_working_day", F(80.0 / 10.0)),
        ],
    );
    // The Saturday's own day row: a working day of the week as well.
    check(
        &saturday,
        "agent",
        "A1",
        "week",
        "2026-11-09",
        &[("planned_visits", F(14.0 * 6.0 / 11.0)), ("visits", I(1))],
    );

    // As of Wednesday the 25th, after the two holidays: 17 of 20 elapsed, 25–27 and 30
    // ahead (4). The plan of 23–27 has 3 working days, one of them (the 25th) elapsed.
    let after_holidays = kpis_of(&calendar_lines(), &calendar_params("2026-11-25"));
    check(
        &after_holidays,
        "agent",
        "A1",
        "month",
        "2026-11-01",
        &[
            ("time_progress", F(17.0 / 20.0)),
            ("working_days_remaining", I(4)),
            ("planned_visits", F(14.0 + 6.0 / 3.0)),
            ("sales_needed_per_working_day", F(8.0 / 4.0)),
            ("customers_needed_per_working_day", F(80.0 / 4.0)),
        ],
    );
    check(
        &after_holidays,
        "agent",
        "A1",
        "week",
        "2026-11-23",
        &[("planned_visits", F(6.0 / 3.0))],
    );
}

/// Team TM sits under branch B1 until it moves to B2 on Sunday 15 November 2026 (the move
/// recorded on the 16th, after the fact); team TS stays in B1. Both branches are in R1.
///
/// A1 (TM, outlet O1 assigned since 1 October) visits and sells 1,000.00 on 20 October,
/// visits and sells 2,000.00 on Tuesday the 10th, consults 3 customers on Monday the 16th,
/// visits and sells 4,000.00 on Tuesday the 17th, and plans 10 visits for 9–22 November:
/// 10 working days (9–13 and 16–20), one visit a working day, five before the move and five
/// after. A2 (TS) visits on the 18th.
///
/// So B1's November counts A1's first half and A2: 2 visits, 1 sale, 2,000.00, 5 planned
/// visits, 2 agents on its roster (1 active: with a sale), O1 assigned; B2's counts A1's second half: 1 visit, 1
/// consultation, 1 sale, 4,000.00, 5 planned visits, 1 agent, O1 assigned. October stays B1's.
/// TM's November row (and A1's) reports under B2, its October row under B1; its week of 9–15
/// November under B2 too (the week's last day is the day of the move), the week before
/// under B1.
fn moved_team_lines() -> Vec<String> {
    let event = |id: &str, kind: &str, at: &str, agent: Option<&str>, payload: &str| {
        let agent = agent.map_or(String::new(), |a| format!(r#","agent_id":"{a}""#));
        format!(
            r#"{{"event_id":"{id}","type":"{kind}","schema_version":1,"occurred_at":"{at}T10:00:00+08:00","source":"hr"{agent},"payload":{payload}}}"#
        )
    };
    vec![
        event(
            "tm1",
            "team_defined",
            "2026-09-20",
            None,
            r#"{"team_id":"TM","team_name":"移动组","branch_id":"B1","region_id":"R1"}"#,
        ),
        event(
            "tm2",
            "team_defined",
            "2026-11-16",
            None,
            r#"{"team_id":"TM","team_name":"移动组","branch_id":"B2","region_id":"R1","effective_from":"2026-11-15"}"#,
        ),
        event(
            "ts1",
            "team_defined",
            "2026-09-20",
            None,
            r#"{"team_id":"TS","team_name":"留守组","branch_id":"B1","region_id":"R1"}"#,
        ),
        event(
            "j1",
            "agent_joined_team",
            "2026-09-20",
            Some("A1"),
            r#"{"team_id":"TM","effective_date":"2026-10-01"}"#,
        ),
        event(
            "j2",
            "agent_joined_team",
            "2026-09-20",
            Some("A2"),
            r#"{"team_id":"TS","effective_date":"2026-10-01"}"#,
        ),
        event(
            "o1",
            "outlet_assigned",
            "2026-09-20",
            Some("A1"),
            r#"{"outlet_id":"O1","effective_date":"2026-10-01"}"#,
        ),
        event(
            "v1",
            "outlet_visit",
            "2026-10-20",
            Some("A1"),
            r#"{"outlet_id":"O1","purpose":"promotion"}"#,
        ),
        event(
            "s1",
            "sale_closed",
            "2026-10-20",
            Some("A1"),
            r#"{"outlet_id":"O1","policy_id":"P1","product_code":"WL","premium":"1000.00","payment_mode":"single"}"#,
        ),
        event(
            "v2",
            "outlet_visit",
            "2026-11-10",
            Some("A1"),
            r#"{"outlet_id":"O1","purpose":"promotion"}"#,
        ),
        event(
            "s2",
            "sale_closed",
            "2026-11-10",
            Some("A1"),
            r#"{"outlet_id":"O1","policy_id":"P2","product_code":"WL","premium":"2000.00","payment_mode":"single"}"#,
        ),
        event(
            "c3",
            "consultation",
            "2026-11-16",
            Some("A1"),
            r#"{"outlet_id":"O1","customers_consulted":3,"customers_interested":1}"#,
        ),
        event(
            "v3",
            "outlet_visit",
            "2026-11-17",
            Some("A1"),
            r#"{"outlet_id":"O1","purpose":"service"}"#,
        ),
        event(
            "s3",
            "sale_closed",
            "2026-11-17",
            Some("A1"),
            r#"{"outlet_id":"O1","policy_id":"P3","product_code":"WL","premium":"4000.00","payment_mode":"single"}"#,
        ),
        event(
            "p1",
            "activity_plan",
            "2026-11-08",
            Some("A1"),
            r#"{"period_start":"2026-11-09","period_end":"2026-11-22","visits":10}"#,
        ),
        event(
            "v4",
            "outlet_visit",
            "2026-11-18",
            Some("A2"),
            r#"{"outlet_id":"O9","purpose":"training"}"#,
        ),
    ]
}

fn moved_team_params() -> KpiParams {
    let mut params = KpiParams::new("2026-11-30".parse().expect("date"));
    params.since = "2026-10-01".parse().expect("date");
    params
}

fn has_row(frame: &DataFrame, scope: &str, scope_id: &str, period: &str, start: &str) -> bool {
    (0..frame.height()).any(|row| {
        value(frame, "scope", row) == S(Box::leak(scope.to_owned().into_boxed_str()))
            && value(frame, "scope_id", row) == S(Box::leak(scope_id.to_owned().into_boxed_str()))
            && value(frame, "period", row) == S(Box::leak(period.to_owned().into_boxed_str()))
            && value(frame, "period_start", row) == S(Box::leak(start.to_owned().into_boxed_str()))
    })
}

#[test]
fn a_team_moving_to_another_branch_on_the_15th_splits_the_branches_months_by_date() {
    let frame = kpis_of(&moved_team_lines(), &moved_team_params());
    check(
        &frame,
        "branch",
        "B1",
        "month",
        "2026-11-01",
        &[
            ("visits", I(2)),
            ("consultations", I(0)),
            ("sales", I(1)),
            ("premium", S("2000.00")),
            ("planned_visits", F(5.0)),
            ("agents_on_roster", I(2)),
            ("active_agents", I(1)),
            ("assigned_outlets", I(1)),
        ],
    );
    check(
        &frame,
        "branch",
        "B2",
        "month",
        "2026-11-01",
        &[
            ("region_id", S("R1")),
            ("visits", I(1)),
            ("consultations", I(1)),
            ("customers_consulted", I(3)),
            ("sales", I(1)),
            ("premium", S("4000.00")),
            ("planned_visits", F(5.0)),
            ("agents_on_roster", I(1)),
            ("active_agents", I(1)),
            ("assigned_outlets", I(1)),
        ],
    );
    check(
        &frame,
        "region",
        "R1",
        "month",
        "2026-11-01",
        &[
            ("visits", I(3)),
            ("sales", I(2)),
            ("premium", S("6000.00")),
            ("planned_visits", F(10.0)),
            ("agents_on_roster", I(2)),
        ],
    );
}

#[test]
fn earlier_months_of_a_moved_team_stay_with_its_old_branch() {
    let frame = kpis_of(&moved_team_lines(), &moved_team_params());
    check(
        &frame,
        "branch",
        "B1",
        "month",
        "2026-10-01",
        &[
            ("visits", I(1)),
            ("sales", I(1)),
            ("premium", S("1000.00")),
            ("agents_on_roster", I(2)),
            ("assigned_outlets", I(1)),
        ],
    );
    assert!(
        !has_row(&frame, "branch", "B2", "month", "2026-10-01"),
        "B2 had nothing in October"
    );
    check(
        &frame,
        "team",
        "TM",
        "month",
        "2026-10-01",
        &[
            ("team_id", S("TM")),
            ("branch_id", S("B1")),
            ("region_id", S("R1")),
            ("premium", S("1000.00")),
        ],
    );
    check(
        &frame,
        "agent",
        "A1",
        "month",
        "2026-10-01",
        &[("team_id", S("TM")), ("branch_id", S("B1"))],
    );
}

#[test]
fn a_moved_team_s_weeks_split_and_its_month_reports_under_its_new_branch() {
    let frame = kpis_of(&moved_team_lines(), &moved_team_params());
    // The week of the move: Monday the 9th to Sunday the 15th, the move on its last day.
    check(
        &frame,
        "branch",
        "B1",
        "week",
        "2026-11-09",
        &[
            ("visits", I(1)),
            ("sales", I(1)),
            ("premium", S("2000.00")),
            ("planned_visits", F(5.0)),
            ("agents_on_roster", I(2)),
        ],
    );
    check(
        &frame,
        "branch",
        "B2",
        "week",
        "2026-11-09",
        &[
            ("visits", I(0)),
            ("sales", I(0)),
            // The plan's Sunday, not a working day, carries none of it.
            ("planned_visits", F(0.0)),
            ("agents_on_roster", I(1)),
        ],
    );
    check(
        &frame,
        "branch",
        "B2",
        "week",
        "2026-11-16",
        &[
            ("visits", I(1)),
            ("consultations", I(1)),
            ("sales", I(1)),
            ("premium", S("4000.00")),
            ("planned_visits", F(5.0)),
        ],
    );
    check(
        &frame,
        "branch",
        "B1",
        "week",
        "2026-11-16",
        &[
            ("visits", I(1)),
            ("sales", I(0)),
            ("planned_visits", Null),
            ("agents_on_roster", I(1)),
        ],
    );
    check(
        &frame,
        "team",
        "TM",
        "month",
        "2026-11-01",
        &[
            ("team_id", S("TM")),
            ("branch_id", S("B2")),
            ("region_id", S("R1")),
            ("visits", I(2)),
            ("sales", I(2)),
            ("premium", S("6000.00")),
            ("planned_visits", F(10.0)),
        ],
    );
    check(
        &frame,
        "team",
        "TM",
        "week",
        "2026-11-09",
        &[("branch_id", S("B2"))],
    );
    check(
        &frame,
        "team",
        "TM",
        "week",
        "2026-11-02",
        &[("branch_id", S("B1"))],
    );
    check(
        &frame,
        "agent",
        "A1",
        "month",
        "2026-11-01",
        &[("team_id", S("TM")), ("branch_id", S("B2"))],
    );
}
