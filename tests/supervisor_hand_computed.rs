//! The supervisor table worked out by hand from analytics/README.md ("Supervisors"),
//! checked against the job, and its round trip through the real ClickHouse.
//!
//! As of Wednesday 2026-11-18, since 2026-11-01. Monday the 16th is a holiday and Saturday
//! the 14th a swapped working day (调休): November has 13 working days through the 18th
//! (2–6, 9–14, 17, 18) in 3 ISO weeks; the week of the 16th has 2 (17, 18).
//!
//! Teams (region R1): T1 (B1, led by S1), T2 (B1, S2), T3 (B2, S3, and S2 from the 16th:
//! S3 leads nothing on the reference day). A1 and A2 in T1, A3 in T2 from July; A4 joins T3
//! on November 2nd.
//!
//! - S1 coaches A1 on the 2nd and 17th (30 min each), A2 on the 3rd (45), A3 of another team
//!   on the 13th (20); a session with A2 on the 10th is retracted. S1 accompanies A1 on the
//!   4th (A1 logged the visit as v1: it is A1's only visit) and the 17th, A2 on the 5th.
//! - S2 coaches A3 on the 12th (60 min).
//! - Meetings: T1 weekly on the 6th and 13th and a morning meeting on the 17th; T2 weekly
//!   on the 6th; T3 weekly on the 13th (S3's) and an evening meeting on the 17th (S2's).
//! - Evaluations of November: A1 by S1 twice (the later, high/high, is in force), A2 by S1
//!   (retracted), A3 by S2 (high/low).
//! - Measures: S1's of October, due on the 31st, never reviewed (open, overdue); S1's of
//!   November reviewed not done on the 11th, done on the 12th (done); S1's of December (not
//!   yet counted); S2's of November due on the 15th, reviewed partly on the 14th (open,
//!   overdue).

use aqs_analytics::supervisors::{SupervisorParams, compute, read_supervisor_ledgers};
use aqs_eventlog::Positions;
use aqs_projector::sink::clickhouse::ClickHouseSink;
use aqs_projector::sink::{LedgerSink, RowVersions};
use aqs_tables::kpi::KpiSink;
use aqs_tables::supervisors::source::{ClickHouseSupervisorSource, SqliteSupervisorSource};
use aqs_tables::supervisors::{ClickHouseSupervisorSink, read_supervisor_table};
use aqs_warehouse::{BlockingClient, ClickHouseConfig};
use polars::prelude::*;

const EVENTS: &[&str] = &[
    r#"{"event_id":"t1","type":"team_defined","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","payload":{"team_id":"T1","team_name":"一组","branch_id":"B1","region_id":"R1","supervisor_id":"S1"}}"#,
    r#"{"event_id":"t2","type":"team_defined","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","payload":{"team_id":"T2","team_name":"二组","branch_id":"B1","region_id":"R1","supervisor_id":"S2"}}"#,
    r#"{"event_id":"t3","type":"team_defined","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","payload":{"team_id":"T3","team_name":"三组","branch_id":"B2","region_id":"R1","supervisor_id":"S3"}}"#,
    r#"{"event_id":"t3-16","type":"team_defined","schema_version":1,"occurred_at":"2026-11-13T09:00:00+08:00","source":"hr","payload":{"team_id":"T3","team_name":"三组","branch_id":"B2","region_id":"R1","supervisor_id":"S2","effective_from":"2026-11-16"}}"#,
    r#"{"event_id":"j1","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"team_id":"T1","effective_date":"2026-07-01"}}"#,
    r#"{"event_id":"j2","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","agent_id":"A2","payload":{"team_id":"T1","effective_date":"2026-07-01"}}"#,
    r#"{"event_id":"j3","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","agent_id":"A3","payload":{"team_id":"T2","effective_date":"2026-07-01"}}"#,
    r#"{"event_id":"j4","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-11-01T09:00:00+08:00","source":"hr","agent_id":"A4","payload":{"team_id":"T3","effective_date":"2026-11-02"}}"#,
    r#"{"event_id":"h16","type":"calendar_day","schema_version":1,"occurred_at":"2026-10-20T09:00:00+08:00","source":"hr","payload":{"date":"2026-11-16","kind":"holiday"}}"#,
    r#"{"event_id":"w14","type":"calendar_day","schema_version":1,"occurred_at":"2026-10-20T09:00:00+08:00","source":"hr","payload":{"date":"2026-11-14","kind":"working_day"}}"#,
    r#"{"event_id":"v1","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-04T10:00:00+08:00","source":"app","agent_id":"A1","payload":{"outlet_id":"O1","purpose":"promotion"}}"#,
    r#"{"event_id":"c1","type":"coaching_session","schema_version":1,"occurred_at":"2026-11-02T17:30:00+08:00","source":"app","agent_id":"A1","payload":{"supervisor_id":"S1","duration_minutes":30,"topic":"skill"}}"#,
    r#"{"event_id":"c2","type":"coaching_session","schema_version":1,"occurred_at":"2026-11-03T17:30:00+08:00","source":"app","agent_id":"A2","payload":{"supervisor_id":"S1","duration_minutes":45,"topic":"activity"}}"#,
    r#"{"event_id":"c3","type":"coaching_session","schema_version":1,"occurred_at":"2026-11-17T17:30:00+08:00","source":"app","agent_id":"A1","payload":{"supervisor_id":"S1","duration_minutes":30,"topic":"skill"}}"#,
    r#"{"event_id":"c4","type":"coaching_session","schema_version":1,"occurred_at":"2026-11-10T17:30:00+08:00","source":"app","agent_id":"A2","payload":{"supervisor_id":"S1","duration_minutes":30,"topic":"will"}}"#,
    r#"{"event_id":"r4","type":"retraction","schema_version":1,"occurred_at":"2026-11-10T18:00:00+08:00","source":"app","agent_id":"A2","payload":{"retracted_event_id":"c4","reason":"not held"}}"#,
    r#"{"event_id":"c5","type":"coaching_session","schema_version":1,"occurred_at":"2026-11-12T17:30:00+08:00","source":"app","agent_id":"A3","payload":{"supervisor_id":"S2","duration_minutes":60,"topic":"skill"}}"#,
    r#"{"event_id":"c6","type":"coaching_session","schema_version":1,"occurred_at":"2026-11-13T17:30:00+08:00","source":"app","agent_id":"A3","payload":{"supervisor_id":"S1","duration_minutes":20,"topic":"other","note":"跨组辅导"}}"#,
    r#"{"event_id":"av1","type":"accompanied_visit","schema_version":1,"occurred_at":"2026-11-04T10:00:00+08:00","source":"app","agent_id":"A1","payload":{"supervisor_id":"S1","outlet_id":"O1","visit_event_id":"v1"}}"#,
    r#"{"event_id":"av2","type":"accompanied_visit","schema_version":1,"occurred_at":"2026-11-05T10:00:00+08:00","source":"app","agent_id":"A2","payload":{"supervisor_id":"S1","outlet_id":"O2"}}"#,
    r#"{"event_id":"av3","type":"accompanied_visit","schema_version":1,"occurred_at":"2026-11-17T10:00:00+08:00","source":"app","agent_id":"A1","payload":{"supervisor_id":"S1","outlet_id":"O1"}}"#,
    r#"{"event_id":"m1","type":"team_meeting","schema_version":1,"occurred_at":"2026-11-06T16:00:00+08:00","source":"app","payload":{"team_id":"T1","kind":"weekly","duration_minutes":120,"attendees":2}}"#,
    r#"{"event_id":"m2","type":"team_meeting","schema_version":1,"occurred_at":"2026-11-13T16:00:00+08:00","source":"app","payload":{"team_id":"T1","kind":"weekly","duration_minutes":120,"attendees":2}}"#,
    r#"{"event_id":"m3","type":"team_meeting","schema_version":1,"occurred_at":"2026-11-17T08:30:00+08:00","source":"app","payload":{"team_id":"T1","kind":"morning","duration_minutes":20,"attendees":2}}"#,
    r#"{"event_id":"m4","type":"team_meeting","schema_version":1,"occurred_at":"2026-11-06T16:00:00+08:00","source":"app","payload":{"team_id":"T2","kind":"weekly","duration_minutes":90,"attendees":1}}"#,
    r#"{"event_id":"m5","type":"team_meeting","schema_version":1,"occurred_at":"2026-11-13T16:00:00+08:00","source":"app","payload":{"team_id":"T3","kind":"weekly","duration_minutes":100,"attendees":1}}"#,
    r#"{"event_id":"m6","type":"team_meeting","schema_version":1,"occurred_at":"2026-11-17T18:00:00+08:00","source":"app","payload":{"team_id":"T3","kind":"evening","duration_minutes":30,"attendees":1}}"#,
    r#"{"event_id":"e1","type":"skill_will_evaluation","schema_version":1,"occurred_at":"2026-11-10T18:00:00+08:00","source":"app","agent_id":"A1","payload":{"supervisor_id":"S1","month":"2026-11","skill":"low","will":"high"}}"#,
    r#"{"event_id":"e2","type":"skill_will_evaluation","schema_version":1,"occurred_at":"2026-11-17T18:00:00+08:00","source":"app","agent_id":"A1","payload":{"supervisor_id":"S1","month":"2026-11","skill":"high","will":"high"}}"#,
    r#"{"event_id":"e3","type":"skill_will_evaluation","schema_version":1,"occurred_at":"2026-11-17T18:10:00+08:00","source":"app","agent_id":"A2","payload":{"supervisor_id":"S1","month":"2026-11","skill":"low","will":"low"}}"#,
    r#"{"event_id":"r3","type":"retraction","schema_version":1,"occurred_at":"2026-11-17T18:20:00+08:00","source":"app","agent_id":"A2","payload":{"retracted_event_id":"e3","reason":"wrong agent"}}"#,
    r#"{"event_id":"e4","type":"skill_will_evaluation","schema_version":1,"occurred_at":"2026-11-16T18:00:00+08:00","source":"app","agent_id":"A3","payload":{"supervisor_id":"S2","month":"2026-11","skill":"high","will":"low"}}"#,
    r#"{"event_id":"im1","type":"improvement_measure","schema_version":1,"occurred_at":"2026-10-02T18:00:00+08:00","source":"app","payload":{"scope":"team","scope_id":"T1","month":"2026-10","measure":"新人每周陪访两次","owner_id":"S1","due_date":"2026-10-31"}}"#,
    r#"{"event_id":"im2","type":"improvement_measure","schema_version":1,"occurred_at":"2026-11-02T18:00:00+08:00","source":"app","payload":{"scope":"team","scope_id":"T1","month":"2026-11","measure":"每日夕会检查工作日志","owner_id":"S1","due_date":"2026-11-30"}}"#,
    r#"{"event_id":"im2-a","type":"improvement_measure_status","schema_version":1,"occurred_at":"2026-11-11T18:00:00+08:00","source":"app","payload":{"measure_event_id":"im2","status":"not_done"}}"#,
    r#"{"event_id":"im2-b","type":"improvement_measure_status","schema_version":1,"occurred_at":"2026-11-12T18:00:00+08:00","source":"app","payload":{"measure_event_id":"im2","status":"done"}}"#,
    r#"{"event_id":"im3","type":"improvement_measure","schema_version":1,"occurred_at":"2026-11-02T18:00:00+08:00","source":"app","payload":{"scope":"team","scope_id":"T2","month":"2026-11","measure":"网点培训两场","owner_id":"S2","due_date":"2026-11-15"}}"#,
    r#"{"event_id":"im3-a","type":"improvement_measure_status","schema_version":1,"occurred_at":"2026-11-14T18:00:00+08:00","source":"app","payload":{"measure_event_id":"im3","status":"partly"}}"#,
    r#"{"event_id":"im4","type":"improvement_measure","schema_version":1,"occurred_at":"2026-11-17T18:00:00+08:00","source":"app","payload":{"scope":"team","scope_id":"T1","month":"2026-12","measure":"年末冲刺","owner_id":"S1","due_date":"2026-12-31"}}"#,
];

#[path = "support/hand_computed.rs"]
mod hand_computed;
use hand_computed::V::{self, *};
use hand_computed::{check_row, find_row, folded, ledgers, value};

fn params() -> SupervisorParams {
    let mut params = SupervisorParams::new("2026-11-18".parse().expect("date"));
    params.since = "2026-11-01".parse().expect("date");
    params
}

fn table_with(params: &SupervisorParams) -> DataFrame {
    let (_dir, path) = ledgers(EVENTS.iter().copied());
    let data = read_supervisor_ledgers(&SqliteSupervisorSource::new(&path)).expect("load");
    compute(&data, params).expect("compute")
}

fn find(frame: &DataFrame, scope: &str, id: &str, period: &str, start: &str) -> Option<usize> {
    find_row(frame, &KEY, &[scope, id, period, start])
}

fn check(frame: &DataFrame, row: (&str, &str, &str, &str), expected: &[(&str, V)]) {
    let (scope, id, period, start) = row;
    check_row(frame, &KEY, &[scope, id, period, start], expected);
}

const KEY: [&str; 4] = ["scope", "scope_id", "period", "period_start"];
const NOV: &str = "2026-11-01";

#[test]
fn a_supervisors_month_against_the_norms() {
    let table = table_with(&params());
    check(
        &table,
        ("supervisor", "S1", "month", NOV),
        &[
            ("team_ids", S("T1")),
            ("branch_id", S("B1")),
            ("region_id", S("R1")),
            ("reference_date", S("2026-11-18")),
            ("working_days", I(13)),
            ("weeks", I(3)),
            ("supervisors", I(1)),
            // c1, c2, c3 and c6 (of another team's agent); c4 retracted.
            ("coaching_sessions", I(4)),
            ("agents_coached", I(3)),
            ("coaching_minutes", I(125)),
            ("coaching_target", F(13.0)),
            ("coaching_attainment", F(4.0 / 13.0)),
            ("accompanied_visits", I(3)),
            ("accompanied_visits_logged", I(1)),
            ("agents_accompanied", I(2)),
            ("accompanied_visits_target", F(3.0 * 13.0 / 5.0)),
            ("accompanied_visits_attainment", F(3.0 / 7.8)),
            ("morning_meetings", I(1)),
            ("evening_meetings", I(0)),
            ("weekly_meetings", I(2)),
            ("monthly_meetings", I(0)),
            ("weekly_meetings_target", F(3.0)),
            ("weekly_meetings_attainment", F(2.0 / 3.0)),
            // A1 evaluated (the later evaluation); A2's was retracted.
            ("team_agents", I(2)),
            ("agents_evaluated", I(1)),
            ("evaluated_share", F(0.5)),
            ("evaluated_share_target", F(1.0)),
            ("evaluation_attainment", F(0.5)),
            // October's open and overdue, November's done, December's not yet counted.
            ("measures_open", I(1)),
            ("measures_done", I(1)),
            ("measures_overdue", I(1)),
            // A2: last coached on the 3rd, 11 working days before the 18th (4–6, 9–14, 17,
            // 18); A1 coached on the 17th.
            ("agents_not_coached", I(1)),
            ("last_coached_date", Null),
            ("evaluation_skill", Null),
        ],
    );
    // The open measure listed: October's (no review; due on the 31st, so overdue on the
    // 18th); November's is done, December's not yet counted.
    let row = find(&table, "supervisor", "S1", "month", NOV).expect("S1's month");
    let S(listed) = value(&table, "open_measures", row) else {
        panic!("S1's open measures are listed");
    };
    let listed: serde_json::Value = serde_json::from_str(listed).expect("a JSON list");
    assert_eq!(
        listed,
        serde_json::json!([{
            "event_id": "im1",
            "measure": "新人每周陪访两次",
            "scope": "team",
            "scope_id": "T1",
            "month": "2026-10-01",
            "due_date": "2026-10-31",
            "status": "open",
            "overdue": true,
        }])
    );
    let row = find(&table, "branch", "B1", "month", NOV).expect("B1's month");
    assert_eq!(
        value(&table, "open_measures", row),
        Null,
        "only supervisor rows list them"
    );
}

/// A team's supervisor on a date is its definition's in force then: T3's meeting of the
/// 13th is S3's, that of the 17th S2's, and S2 leads T2 and T3 on the reference day.
#[test]
fn a_teams_supervisor_on_a_date_comes_from_the_dated_team_definitions() {
    let table = table_with(&params());
    check(
        &table,
        ("supervisor", "S2", "month", NOV),
        &[
            ("team_ids", S("T2,T3")),
            ("branch_id", S("B1")),
            ("coaching_sessions", I(1)),
            ("agents_coached", I(1)),
            ("coaching_minutes", I(60)),
            ("accompanied_visits", I(0)),
            ("accompanied_visits_attainment", F(0.0)),
            ("weekly_meetings", I(1)),
            ("evening_meetings", I(1)),
            ("team_agents", I(2)),
            ("agents_evaluated", I(1)),
            ("evaluated_share", F(0.5)),
            ("measures_open", I(1)),
            ("measures_done", I(0)),
            ("measures_overdue", I(1)),
            // A4, never coached, waits from joining on the 2nd: 13 working days. A3 was
            // coached by S1 on the 13th: 3 working days (14, 17, 18).
            ("agents_not_coached", I(1)),
        ],
    );
    // S3 leads nothing on the 18th: labelled by the 15th (T3, B2), no agents of their own.
    check(
        &table,
        ("supervisor", "S3", "month", NOV),
        &[
            ("team_ids", S("T3")),
            ("branch_id", S("B2")),
            ("coaching_sessions", I(0)),
            ("coaching_attainment", F(0.0)),
            ("weekly_meetings", I(1)),
            ("team_agents", I(0)),
            ("evaluated_share", Null),
            ("evaluation_attainment", Null),
            ("agents_not_coached", I(0)),
        ],
    );
    assert_eq!(
        find(&table, "supervisor", "S3", "week", "2026-11-16"),
        None,
        "no team and no fact in the week of the 16th"
    );
}

#[test]
fn weeks_and_days_count_their_own_working_days() {
    let table = table_with(&params());
    check(
        &table,
        ("supervisor", "S1", "week", "2026-11-16"),
        &[
            ("working_days", I(2)),
            ("weeks", I(1)),
            ("coaching_sessions", I(1)),
            ("coaching_target", F(2.0)),
            ("coaching_attainment", F(0.5)),
            ("accompanied_visits", I(1)),
            ("accompanied_visits_target", F(1.2)),
            ("morning_meetings", I(1)),
            ("weekly_meetings", I(0)),
            ("weekly_meetings_target", F(1.0)),
            ("weekly_meetings_attainment", F(0.0)),
        ],
    );
    check(
        &table,
        ("supervisor", "S1", "day", "2026-11-17"),
        &[
            ("working_days", I(1)),
            ("coaching_sessions", I(1)),
            ("coaching_attainment", F(1.0)),
            ("weekly_meetings_target", Null),
            ("evaluated_share_target", Null),
        ],
    );
    // The holiday: no norm, no fact, no row; the swapped Saturday is a working day.
    assert_eq!(find(&table, "supervisor", "S1", "day", "2026-11-16"), None);
    check(
        &table,
        ("supervisor", "S1", "day", "2026-11-14"),
        &[("working_days", I(1)), ("coaching_attainment", F(0.0))],
    );
}

#[test]
fn branches_and_regions_sum_their_supervisors() {
    let table = table_with(&params());
    check(
        &table,
        ("branch", "B1", "month", NOV),
        &[
            ("region_id", S("R1")),
            ("supervisors", I(2)),
            ("coaching_sessions", I(5)),
            ("agents_coached", I(4)),
            ("coaching_target", F(26.0)),
            ("coaching_attainment", F(5.0 / 26.0)),
            ("accompanied_visits_target", F(15.6)),
            ("weekly_meetings", I(3)),
            ("weekly_meetings_target", F(6.0)),
            ("team_agents", I(4)),
            ("agents_evaluated", I(2)),
            ("evaluated_share", F(0.5)),
            ("measures_open", I(2)),
            ("measures_done", I(1)),
            ("measures_overdue", I(2)),
            ("agents_not_coached", I(2)),
        ],
    );
    check(
        &table,
        ("branch", "B2", "month", NOV),
        &[("supervisors", I(1)), ("weekly_meetings", I(1))],
    );
    check(
        &table,
        ("region", "R1", "month", NOV),
        &[
            ("supervisors", I(3)),
            ("coaching_sessions", I(5)),
            ("coaching_target", F(39.0)),
            ("weekly_meetings", I(4)),
            ("weekly_meetings_target", F(9.0)),
        ],
    );
}

/// What each agent received in the month, beside the evaluation in force; an accompanied
/// visit never adds to the agent's own visits (A1's only visit is v1, which it logged).
#[test]
fn each_agents_month_shows_what_it_received() {
    let table = table_with(&params());
    check(
        &table,
        ("agent", "A1", "month", NOV),
        &[
            ("supervisor_id", S("S1")),
            ("team_ids", S("T1")),
            ("branch_id", S("B1")),
            ("coaching_sessions", I(2)),
            ("coaching_minutes", I(60)),
            ("accompanied_visits", I(2)),
            ("accompanied_visits_logged", I(1)),
            ("last_coached_date", S("2026-11-17")),
            ("working_days_since_coached", I(1)),
            ("not_coached", B(false)),
            ("evaluation_skill", S("high")),
            ("evaluation_will", S("high")),
            ("evaluated_by", S("S1")),
            ("coaching_target", Null),
            ("agents_coached", Null),
        ],
    );
    check(
        &table,
        ("agent", "A2", "month", NOV),
        &[
            ("coaching_sessions", I(1)),
            ("last_coached_date", S("2026-11-03")),
            ("working_days_since_coached", I(11)),
            ("not_coached", B(true)),
            ("evaluation_skill", Null),
        ],
    );
    check(
        &table,
        ("agent", "A3", "month", NOV),
        &[
            ("supervisor_id", S("S2")),
            ("coaching_sessions", I(2)),
            ("coaching_minutes", I(80)),
            ("working_days_since_coached", I(3)),
            ("evaluation_skill", S("high")),
            ("evaluation_will", S("low")),
            ("evaluated_by", S("S2")),
        ],
    );
    check(
        &table,
        ("agent", "A4", "month", NOV),
        &[
            ("supervisor_id", S("S2")),
            ("team_ids", S("T3")),
            ("branch_id", S("B2")),
            ("coaching_sessions", I(0)),
            ("last_coached_date", Null),
            ("working_days_since_coached", Null),
            // Never coached since joining on the 2nd: 13 working days.
            ("not_coached", B(true)),
        ],
    );
    assert_eq!(find(&table, "agent", "A1", "week", "2026-11-16"), None);
    let visits: i64 = folded(EVENTS.iter().copied())
        .tables()
        .agent_day
        .iter()
        .map(|day| day.counters.visits)
        .sum();
    assert_eq!(visits, 1, "only the agent's own visit counts as one");
}

#[test]
fn the_norms_are_settings() {
    let mut params = params();
    params.not_coached_working_days = 3;
    params.coachings_per_working_day = 2.0;
    params.weekly_meetings_per_week = 2.0;
    let table = table_with(&params);
    check(
        &table,
        ("supervisor", "S2", "month", NOV),
        &[
            ("agents_not_coached", I(2)),
            ("coaching_target", F(26.0)),
            ("weekly_meetings_target", F(6.0)),
        ],
    );
    params.evaluated_share = 0.0;
    assert!(
        compute(&Default::default(), &params).is_err(),
        "a norm of 0 is refused"
    );
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
    let mut sink = ClickHouseSink::connect(&config).expect("clickhouse sink");
    sink.publish(
        &folded(EVENTS.iter().copied()).take_changes(),
        &RowVersions::new(&Positions::new(), 1),
    )
    .expect("publish");

    let params = params();
    let source = ClickHouseSupervisorSource::connect(&config).expect("clickhouse source");
    let warehouse = read_supervisor_ledgers(&source).expect("load from clickhouse");
    let (_dir, path) = ledgers(EVENTS.iter().copied());
    let embedded =
        read_supervisor_ledgers(&SqliteSupervisorSource::new(&path)).expect("load embedded");
    assert_eq!(
        warehouse.facts.len(),
        embedded.facts.len(),
        "both engines hold the same facts"
    );
    let mut table = compute(&warehouse, &params).expect("compute");
    assert!(table.equals_missing(&table_with(&params)));

    // A first run of the date with one row fewer, then the full run: only the second is left.
    let mut supervisor_sink = ClickHouseSupervisorSink::connect(&config).expect("sink");
    let mut partial = table.slice(1, table.height() - 1);
    supervisor_sink
        .write(&mut partial, params.as_of)
        .expect("first run");
    supervisor_sink
        .write(&mut table, params.as_of)
        .expect("rerun");
    let stored = read_supervisor_table(&config, params.as_of).expect("read back");
    assert!(
        stored.equals_missing(&table),
        "stored:\n{stored}\ncomputed:\n{table}"
    );
}
