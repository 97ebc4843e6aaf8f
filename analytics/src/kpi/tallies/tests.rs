//! The tallies of small ledgers built by hand.
//!
//! November 2026 as of Wednesday the 18th (21 working days, 13 elapsed), since the 1st (a
//! Sunday), so the window starts on Monday 26 October. Teams T1 and T2 in branch B1, region
//! R1. A1 is on T1; A2 moves from T1 to T2 on the 15th. A1 has outlets O1 and O2 (O2 until
//! the 9th), A2 has O3. A1 plans 10 visits for the week of the 16th.

use std::sync::Arc;

use aqs_schemas::YearMonth;
use aqs_schemas::event::Scope;
use chrono::NaiveDate;
use polars::prelude::*;

use super::tally;
use crate::data::{AgentDay, Interval, LedgerData, OutletDay, Plan, Target, Team};
use crate::kpi::{KpiError, KpiParams};

pub(in crate::kpi) fn date(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

fn id(text: &str) -> Arc<str> {
    text.into()
}

/// An agent's day tagged with its team in B1 and R1, with nothing in it.
pub(in crate::kpi) fn agent_day(agent: &str, day: &str, team: &str) -> AgentDay {
    AgentDay {
        agent_id: id(agent),
        date: date(day),
        team_id: Some(id(team)),
        branch_id: Some(id("B1")),
        region_id: Some(id("R1")),
        visits: 0,
        consultations: 0,
        customers_consulted: 0,
        customers_interested: 0,
        sales: 0,
        premium_fen: 0,
        cancellations: 0,
        refunds_fen: 0,
    }
}

pub(in crate::kpi) fn outlet_day(
    agent: &str,
    outlet: &str,
    day: &str,
    visits: i64,
    sales: i64,
) -> OutletDay {
    OutletDay {
        agent_id: id(agent),
        outlet_id: id(outlet),
        date: date(day),
        visits,
        sales,
    }
}

fn interval(agent: &str, key: &str, from: &str, to: Option<&str>) -> Interval {
    Interval {
        agent_id: agent.to_owned(),
        key: key.to_owned(),
        from: date(from),
        to: to.map(date),
    }
}

fn team(team: &str) -> Team {
    Team {
        team_id: team.to_owned(),
        effective_from: aqs_tables::ledgers::TEAM_DEFINED_FROM_THE_BEGINNING,
        branch_id: "B1".to_owned(),
        region_id: "R1".to_owned(),
    }
}

fn november_target(scope: Scope, scope_id: &str) -> Target {
    Target {
        scope,
        scope_id: scope_id.to_owned(),
        month: YearMonth::new(2026, 11).expect("month"),
        premium_fen: None,
        outlet_activity_rate_bp: None,
        visits: None,
        consultations: None,
        sales: None,
    }
}

fn ledgers() -> LedgerData {
    LedgerData {
        agent_days: vec![
            // Before `since`: counts in its week only.
            AgentDay {
                visits: 1,
                ..agent_day("A1", "2026-10-30", "T1")
            },
            AgentDay {
                visits: 2,
                consultations: 1,
                customers_consulted: 4,
                customers_interested: 2,
                sales: 1,
                premium_fen: 1_000_000,
                ..agent_day("A1", "2026-11-02", "T1")
            },
            AgentDay {
                visits: 1,
                sales: 1,
                premium_fen: 500_000,
                cancellations: 1,
                refunds_fen: 200_000,
                ..agent_day("A1", "2026-11-12", "T1")
            },
            AgentDay {
                visits: 1,
                ..agent_day("A2", "2026-11-03", "T1")
            },
            AgentDay {
                visits: 1,
                consultations: 1,
                customers_consulted: 2,
                sales: 1,
                premium_fen: 300_000,
                ..agent_day("A2", "2026-11-17", "T2")
            },
        ],
        outlet_days: vec![
            outlet_day("A1", "O1", "2026-10-30", 1, 0),
            outlet_day("A1", "O1", "2026-11-02", 2, 1),
            // O2 is no longer A1's on the 12th.
            outlet_day("A1", "O2", "2026-11-12", 1, 1),
            outlet_day("A2", "O3", "2026-11-03", 1, 0),
            outlet_day("A2", "O3", "2026-11-17", 1, 1),
        ],
        plans: vec![Plan {
            agent_id: "A1".to_owned(),
            start: date("2026-11-16"),
            end: date("2026-11-22"),
            visits: Some(10),
            consultations: None,
            sales: None,
        }],
        targets: vec![
            Target {
                premium_fen: Some(2_000_000),
                visits: Some(10),
                ..november_target(Scope::Agent, "A1")
            },
            Target {
                outlet_activity_rate_bp: Some(5_000),
                ..november_target(Scope::Team, "T1")
            },
        ],
        roster: vec![
            interval("A1", "T1", "2026-11-01", None),
            interval("A2", "T1", "2026-11-01", Some("2026-11-15")),
            interval("A2", "T2", "2026-11-15", None),
        ],
        assignments: vec![
            interval("A1", "O1", "2026-11-01", None),
            interval("A1", "O2", "2026-11-01", Some("2026-11-10")),
            interval("A2", "O3", "2026-11-01", None),
        ],
        teams: vec![team("T1"), team("T2")],
        trailing_agent_days: vec![
            // The trailing window of rates starts on 21 August (90 days through the 18th).
            AgentDay {
                sales: 5,
                ..agent_day("A1", "2026-08-20", "T1")
            },
            AgentDay {
                sales: 2,
                customers_consulted: 5,
                premium_fen: 400_000,
                refunds_fen: 100_000,
                ..agent_day("A1", "2026-08-21", "T1")
            },
            // An agent gone before the window still counts for the team it was on.
            AgentDay {
                sales: 3,
                customers_consulted: 6,
                premium_fen: 900_000,
                ..agent_day("A9", "2026-09-10", "T2")
            },
        ],
        calendar: aqs_schemas::WorkingCalendar::default(),
    }
}

fn tallies() -> DataFrame {
    tally(ledgers(), &KpiParams::new(date("2026-11-18"))).expect("tallies")
}

/// The rows of the tallies as "scope id period start".
fn row_names(frame: &DataFrame) -> Vec<String> {
    (0..frame.height())
        .map(|row| {
            ["scope", "scope_id", "period", "period_start"]
                .map(|column| text(frame, column, row).unwrap_or_default())
                .join(" ")
        })
        .collect()
}

fn row(frame: &DataFrame, name: &str) -> usize {
    row_names(frame)
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("no row {name}"))
}

fn text(frame: &DataFrame, column: &str, row: usize) -> Option<String> {
    match frame.column(column).expect(column).get(row).expect("row") {
        AnyValue::Null => None,
        AnyValue::String(s) => Some(s.to_owned()),
        other => Some(other.to_string()),
    }
}

fn int(frame: &DataFrame, column: &str, row: usize) -> Option<i64> {
    frame
        .column(column)
        .expect(column)
        .i64()
        .expect("ints")
        .get(row)
}

fn fen(frame: &DataFrame, column: &str, row: usize) -> Option<i128> {
    frame
        .column(column)
        .expect(column)
        .i128()
        .expect("fen")
        .get(row)
}

fn float(frame: &DataFrame, column: &str, row: usize) -> Option<f64> {
    frame
        .column(column)
        .expect(column)
        .f64()
        .expect("floats")
        .get(row)
}

/// The integer columns of a row, by name.
fn ints(frame: &DataFrame, name: &str, columns: &[&str]) -> Vec<(String, Option<i64>)> {
    let row = row(frame, name);
    columns
        .iter()
        .map(|column| ((*column).to_owned(), int(frame, column, row)))
        .collect()
}

fn expected(pairs: &[(&str, Option<i64>)]) -> Vec<(String, Option<i64>)> {
    pairs.iter().map(|(c, v)| ((*c).to_owned(), *v)).collect()
}

#[test]
fn rows_are_the_scopes_and_reported_periods_with_a_fact_in_output_order() {
    let frame = tallies();
    let names = row_names(&frame);
    let a1: Vec<&str> = names
        .iter()
        .filter(|n| n.starts_with("agent A1 "))
        .map(String::as_str)
        .collect();
    // Every day from the 1st has a fact (an assigned outlet; 30 October is before `since`);
    // weeks from the one holding the 1st, the month; by period name, then start.
    let mut expected: Vec<String> = (1..=18)
        .map(|day| format!("agent A1 day 2026-11-{day:02}"))
        .collect();
    expected.extend(
        [
            "month 2026-11-01",
            "week 2026-10-26",
            "week 2026-11-02",
            "week 2026-11-09",
            "week 2026-11-16",
        ]
        .map(|period| format!("agent A1 {period}")),
    );
    assert_eq!(a1, expected);
    let scopes: Vec<&str> = names
        .iter()
        .filter(|n| n.ends_with(" month 2026-11-01"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        scopes,
        [
            "agent A1 month 2026-11-01",
            "agent A2 month 2026-11-01",
            "branch B1 month 2026-11-01",
            "region R1 month 2026-11-01",
            "team T1 month 2026-11-01",
            "team T2 month 2026-11-01",
        ]
    );
}

#[test]
fn an_agents_day_counts_for_the_scopes_it_was_tagged_with() {
    let frame = tallies();
    let counters = [
        "visits",
        "consultations",
        "customers_consulted",
        "customers_interested",
        "sales",
        "cancellations",
    ];
    assert_eq!(
        ints(&frame, "agent A1 month 2026-11-01", &counters),
        expected(&[
            ("visits", Some(3)),
            ("consultations", Some(1)),
            ("customers_consulted", Some(4)),
            ("customers_interested", Some(2)),
            ("sales", Some(2)),
            ("cancellations", Some(1)),
        ])
    );
    // A2's day of the 17th counts for T2, its day of the 3rd for T1.
    assert_eq!(
        ints(&frame, "team T1 month 2026-11-01", &counters[..5]),
        expected(&[
            ("visits", Some(4)),
            ("consultations", Some(1)),
            ("customers_consulted", Some(4)),
            ("customers_interested", Some(2)),
            ("sales", Some(2)),
        ])
    );
    assert_eq!(
        ints(&frame, "team T2 month 2026-11-01", &["visits", "sales"]),
        expected(&[("visits", Some(1)), ("sales", Some(1))])
    );
    assert_eq!(
        ints(&frame, "region R1 month 2026-11-01", &["visits", "sales"]),
        expected(&[("visits", Some(5)), ("sales", Some(3))])
    );
    // 30 October counts in the week that holds the 1st, and nowhere else.
    assert_eq!(
        ints(&frame, "team T1 week 2026-10-26", &["visits"]),
        expected(&[("visits", Some(1))])
    );
    let month = row(&frame, "branch B1 month 2026-11-01");
    assert_eq!(fen(&frame, "gross_premium_fen", month), Some(1_800_000));
    assert_eq!(fen(&frame, "refunds_fen", month), Some(200_000));
    let a1 = row(&frame, "agent A1 day 2026-11-12");
    assert_eq!(fen(&frame, "gross_premium_fen", a1), Some(500_000));
    assert_eq!(fen(&frame, "refunds_fen", a1), Some(200_000));
}

#[test]
fn outlets_count_once_per_row_and_for_coverage_only_on_their_assigned_days() {
    let frame = tallies();
    let outlets = [
        "outlets_visited",
        "assigned_outlets",
        "assigned_outlets_visited",
        "assigned_outlets_with_sale",
    ];
    // O1 twice (counted once), O2 after it was unassigned: visited, not covered.
    assert_eq!(
        ints(&frame, "agent A1 month 2026-11-01", &outlets),
        expected(&[
            ("outlets_visited", Some(2)),
            ("assigned_outlets", Some(2)),
            ("assigned_outlets_visited", Some(1)),
            ("assigned_outlets_with_sale", Some(1)),
        ])
    );
    // T1 has O3 through A2 until the 14th: visited on the 3rd; sold at on the 17th for T2.
    assert_eq!(
        ints(&frame, "team T1 month 2026-11-01", &outlets),
        expected(&[
            ("outlets_visited", Some(3)),
            ("assigned_outlets", Some(3)),
            ("assigned_outlets_visited", Some(2)),
            ("assigned_outlets_with_sale", Some(1)),
        ])
    );
    assert_eq!(
        ints(&frame, "team T2 month 2026-11-01", &outlets),
        expected(&[
            ("outlets_visited", Some(1)),
            ("assigned_outlets", Some(1)),
            ("assigned_outlets_visited", Some(1)),
            ("assigned_outlets_with_sale", Some(1)),
        ])
    );
    // In the branch O3 counts once, whichever team it came through.
    assert_eq!(
        ints(&frame, "branch B1 month 2026-11-01", &outlets),
        expected(&[
            ("outlets_visited", Some(3)),
            ("assigned_outlets", Some(3)),
            ("assigned_outlets_visited", Some(2)),
            ("assigned_outlets_with_sale", Some(2)),
        ])
    );
    // Weeks: O2 was assigned in the week of the 9th only until the 9th.
    assert_eq!(
        ints(&frame, "agent A1 week 2026-11-09", &outlets),
        expected(&[
            ("outlets_visited", Some(1)),
            ("assigned_outlets", Some(2)),
            ("assigned_outlets_visited", Some(0)),
            ("assigned_outlets_with_sale", Some(0)),
        ])
    );
}

#[test]
fn agents_count_once_per_roster_and_once_as_sellers() {
    let frame = tallies();
    let agents = ["roster_agents", "selling_agents"];
    assert_eq!(
        ints(&frame, "team T1 month 2026-11-01", &agents),
        expected(&[("roster_agents", Some(2)), ("selling_agents", Some(1))])
    );
    assert_eq!(
        ints(&frame, "team T2 month 2026-11-01", &agents),
        expected(&[("roster_agents", Some(1)), ("selling_agents", Some(1))])
    );
    assert_eq!(
        ints(&frame, "branch B1 month 2026-11-01", &agents),
        expected(&[("roster_agents", Some(2)), ("selling_agents", Some(2))])
    );
    // A1 sold on two days: one selling agent.
    assert_eq!(
        ints(&frame, "agent A1 month 2026-11-01", &agents),
        expected(&[("roster_agents", Some(0)), ("selling_agents", Some(1))])
    );
}

#[test]
fn plans_are_prorated_over_working_days_through_the_as_of_date() {
    let frame = tallies();
    // 10 visits over the 5 working days of the week: 2 a day, 3 days through Wednesday.
    let week = row(&frame, "agent A1 week 2026-11-16");
    assert_eq!(float(&frame, "planned_visits", week), Some(6.0));
    assert_eq!(float(&frame, "planned_consultations", week), None);
    // A1 did nothing on the planned days: 0, not null.
    assert_eq!(int(&frame, "visits_on_plan_days", week), Some(0));
    let tuesday = row(&frame, "team T1 day 2026-11-17");
    assert_eq!(float(&frame, "planned_visits", tuesday), Some(2.0));
    // A2's visit of the 17th was not planned, and counts for T2 anyway.
    assert_eq!(int(&frame, "visits_on_plan_days", tuesday), Some(0));
    let t2 = row(&frame, "team T2 month 2026-11-01");
    assert_eq!(float(&frame, "planned_visits", t2), None);
    assert_eq!(int(&frame, "visits_on_plan_days", t2), None);
}

#[test]
fn targets_and_working_days_belong_to_month_rows() {
    let frame = tallies();
    let month = row(&frame, "agent A1 month 2026-11-01");
    assert_eq!(int(&frame, "premium_target_fen", month), Some(2_000_000));
    assert_eq!(int(&frame, "visits_target", month), Some(10));
    assert_eq!(int(&frame, "sales_target", month), None);
    let week = row(&frame, "agent A1 week 2026-11-16");
    assert_eq!(int(&frame, "premium_target_fen", week), None);
    let team = row(&frame, "team T1 month 2026-11-01");
    assert_eq!(
        int(&frame, "outlet_activity_rate_target_bp", team),
        Some(5_000)
    );
    assert_eq!(int(&frame, "premium_target_fen", team), None);
    assert_eq!(int(&frame, "working_days", month), Some(21));
    assert_eq!(int(&frame, "working_days_elapsed", month), Some(13));
    assert_eq!(int(&frame, "working_days", week), Some(5));
    assert_eq!(int(&frame, "working_days_elapsed", week), Some(3));
}

#[test]
fn rows_report_under_the_team_of_the_latest_roster_day() {
    let frame = tallies();
    let labels = |name: &str| {
        let row = row(&frame, name);
        ["team_id", "branch_id", "region_id", "period_end", "as_of"]
            .map(|column| text(&frame, column, row))
    };
    let some = |text: &str| Some(text.to_owned());
    // A2 moved to T2 on Sunday the 15th: its month and its week of the 9th report under
    // T2, its week of the 2nd under T1.
    assert_eq!(
        labels("agent A2 month 2026-11-01"),
        [
            some("T2"),
            some("B1"),
            some("R1"),
            some("2026-11-30"),
            some("2026-11-18")
        ]
    );
    assert_eq!(labels("agent A2 week 2026-11-09")[0], some("T2"));
    assert_eq!(labels("agent A2 week 2026-11-02")[0], some("T1"));
    assert_eq!(
        labels("branch B1 week 2026-11-09")[..3],
        [None, some("B1"), some("R1")]
    );
    assert_eq!(
        labels("region R1 day 2026-11-02")[..3],
        [None, None, some("R1")]
    );
}

#[test]
fn agents_are_peers_under_their_team_and_teams_under_their_branch_each_period() {
    let frame = tallies();
    let group = |name: &str| {
        let column = frame.column("peer_group").expect("peer_group");
        column.u64().expect("groups").get(row(&frame, name))
    };
    let parent = |name: &str| {
        let column = frame.column("parent_row").expect("parent_row");
        let parent = column.idx().expect("rows").get(row(&frame, name));
        parent.map(|r| row_names(&frame)[r as usize].clone())
    };
    // A2 reports under T2 in November (its latest roster day), A1 under T1: not peers.
    assert!(group("agent A1 month 2026-11-01").is_some());
    assert_ne!(
        group("agent A1 month 2026-11-01"),
        group("agent A2 month 2026-11-01")
    );
    // In the week of the 2nd both were on T1.
    assert_eq!(
        group("agent A1 week 2026-11-02"),
        group("agent A2 week 2026-11-02")
    );
    assert_ne!(
        group("agent A1 week 2026-11-02"),
        group("agent A1 week 2026-11-09")
    );
    assert_ne!(
        group("agent A1 day 2026-11-02"),
        group("agent A1 week 2026-11-02")
    );
    // T1 and T2 are both of B1: peers, and never in an agents' group.
    assert_eq!(
        group("team T1 month 2026-11-01"),
        group("team T2 month 2026-11-01")
    );
    assert_ne!(
        group("team T1 week 2026-11-02"),
        group("agent A1 week 2026-11-02")
    );
    assert_eq!(group("branch B1 month 2026-11-01"), None);
    assert_eq!(group("region R1 month 2026-11-01"), None);
    // Parents: the team's row of the same period, the branch's for a team.
    assert_eq!(
        parent("agent A2 month 2026-11-01").as_deref(),
        Some("team T2 month 2026-11-01")
    );
    assert_eq!(
        parent("agent A2 week 2026-11-02").as_deref(),
        Some("team T1 week 2026-11-02")
    );
    assert_eq!(
        parent("team T1 day 2026-11-02").as_deref(),
        Some("branch B1 day 2026-11-02")
    );
    assert_eq!(parent("branch B1 month 2026-11-01"), None);
}

#[test]
fn money_adds_up_beyond_64_bits_and_a_count_that_would_not_fit_is_an_error() {
    let rich = |agent: &str| AgentDay {
        sales: 1,
        premium_fen: i64::MAX,
        ..agent_day(agent, "2026-11-02", "T1")
    };
    let data = LedgerData {
        agent_days: vec![rich("A1"), rich("A2")],
        teams: vec![team("T1")],
        ..LedgerData::default()
    };
    let params = KpiParams::new(date("2026-11-18"));
    let frame = tally(data.clone(), &params).expect("tallies");
    let team = row(&frame, "team T1 month 2026-11-01");
    assert_eq!(
        fen(&frame, "gross_premium_fen", team),
        Some(2 * i128::from(i64::MAX))
    );

    let busy = |agent: &str| AgentDay {
        visits: i64::MAX / 2 + 1,
        ..agent_day(agent, "2026-11-02", "T1")
    };
    let data = LedgerData {
        agent_days: vec![busy("A1"), busy("A2")],
        ..data
    };
    assert!(matches!(
        tally(data, &params),
        Err(KpiError::Overflow { column: "visits" })
    ));
}

#[test]
fn an_as_of_date_before_since_is_refused() {
    let mut params = KpiParams::new(date("2026-11-18"));
    params.since = date("2026-11-19");
    assert!(matches!(
        tally(ledgers(), &params),
        Err(KpiError::Window { .. })
    ));
}

#[test]
fn the_trailing_window_of_rates_adds_up_on_the_open_months_rows_only() {
    let frame = tallies();
    let sums = |name: &str| {
        let row = row(&frame, name);
        (
            int(&frame, "rates_window_sales", row),
            int(&frame, "rates_window_customers_consulted", row),
            fen(&frame, "rates_window_premium_fen", row),
        )
    };
    // A1: 21 August, 2 and 12 November (net of the refund); not 20 August.
    assert_eq!(
        sums("agent A1 month 2026-11-01"),
        (Some(4), Some(9), Some(1_600_000))
    );
    assert_eq!(
        sums("agent A2 month 2026-11-01"),
        (Some(1), Some(2), Some(300_000))
    );
    // T1: A1's days and A2's before the move; T2: A2's after it and A9's in September.
    assert_eq!(
        sums("team T1 month 2026-11-01"),
        (Some(4), Some(9), Some(1_600_000))
    );
    assert_eq!(
        sums("team T2 month 2026-11-01"),
        (Some(4), Some(8), Some(1_200_000))
    );
    assert_eq!(
        sums("branch B1 month 2026-11-01"),
        (Some(8), Some(17), Some(2_800_000))
    );
    // Not on weeks or days.
    assert_eq!(sums("agent A1 week 2026-11-16"), (None, None, None));
    assert_eq!(sums("team T1 day 2026-11-02"), (None, None, None));
    // A shorter window: from 20 October, A1's November days only.
    let mut params = KpiParams::new(date("2026-11-18"));
    params.rates_window_days = 30;
    let frame = tally(ledgers(), &params).expect("tallies");
    let a1 = row(&frame, "agent A1 month 2026-11-01");
    assert_eq!(int(&frame, "rates_window_sales", a1), Some(2));
    assert_eq!(
        int(&frame, "working_days_from_as_of", a1),
        Some(9),
        "the 18th through the 30th"
    );
}
