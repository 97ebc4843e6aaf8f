//! The parts of the outlet job on data built by hand; the whole job on events worked out by
//! hand is `tests/outlet_hand_computed.rs` (root).

use aqs_tables::ledgers::window::{Interval, Team};
use aqs_tables::outlets::source::OutletLedgerData;
use chrono::NaiveDate;

use super::ownership::Ownership;
use super::*;

fn day(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

#[test]
fn a_months_grade_rests_on_the_three_months_before_its_quarter() {
    for month in ["2026-10-01", "2026-11-01", "2026-12-01"] {
        assert_eq!(
            grade_basis(day(month)),
            (day("2026-07-01"), day("2026-09-30"))
        );
    }
    assert_eq!(
        grade_basis(day("2027-01-01")),
        (day("2026-10-01"), day("2026-12-31"))
    );
    assert_eq!(
        grade_basis(day("2026-03-01")),
        (day("2025-10-01"), day("2025-12-31"))
    );
}

#[test]
fn grades_take_their_threshold_itself() {
    let params = OutletParams::new(day("2026-11-18"));
    // ¥50,000.00 is an A, a fen less a B; likewise down to C.
    assert_eq!(params.grade(5_000_000), Grade::A);
    assert_eq!(params.grade(4_999_999), Grade::B);
    assert_eq!(params.grade(2_000_000), Grade::B);
    assert_eq!(params.grade(1_999_999), Grade::C);
    assert_eq!(params.grade(500_000), Grade::C);
    assert_eq!(params.grade(499_999), Grade::D);
    assert_eq!(params.grade(-100), Grade::D);
}

#[test]
fn thresholds_that_do_not_descend_are_refused() {
    let params = OutletParams {
        grade_b_fen: 6_000_000,
        ..OutletParams::new(day("2026-11-18"))
    };
    let error = params.check().expect_err("B above A");
    assert!(error.to_string().contains("A ≥ B ≥ C"), "{error}");
}

#[test]
fn the_average_of_three_months_rounds_half_away_from_zero() {
    assert_eq!(rows::average_of_three_for_tests(100), 33);
    assert_eq!(rows::average_of_three_for_tests(101), 34);
    assert_eq!(rows::average_of_three_for_tests(-101), -34);
    assert_eq!(rows::average_of_three_for_tests(-100), -33);
}

fn interval(agent: &str, key: &str, from: &str, to: Option<&str>) -> Interval {
    Interval {
        agent_id: agent.to_owned(),
        key: key.to_owned(),
        from: day(from),
        to: to.map(day),
    }
}

#[test]
fn an_outlet_counts_for_its_agent_that_agents_team_and_the_teams_branch_on_the_day() {
    let data = OutletLedgerData {
        assignments: vec![
            interval("A1", "O1", "2026-11-01", Some("2026-11-16")),
            interval("A2", "O1", "2026-11-16", None),
        ],
        roster: vec![
            interval("A1", "T1", "2026-11-01", None),
            interval("A2", "T2", "2026-11-01", None),
        ],
        teams: vec![
            Team {
                team_id: "T2".to_owned(),
                effective_from: day("1970-01-01"),
                branch_id: "B1".to_owned(),
                region_id: "R1".to_owned(),
            },
            Team {
                team_id: "T2".to_owned(),
                effective_from: day("2026-11-20"),
                branch_id: "B2".to_owned(),
                region_id: "R1".to_owned(),
            },
        ],
        ..OutletLedgerData::default()
    };
    let ownership = Ownership::new(&data);
    let on = |date: &str| {
        let owner = ownership.owner_on("O1", day(date));
        (owner.agent_id, owner.team_id, owner.branch_id)
    };
    let some = |text: &str| Some(text.to_owned());
    // The unassignment of the 16th ends A1's assignment on the 15th.
    assert_eq!(on("2026-11-15"), (some("A1"), some("T1"), None));
    assert_eq!(on("2026-11-16"), (some("A2"), some("T2"), some("B1")));
    assert_eq!(on("2026-11-20"), (some("A2"), some("T2"), some("B2")));
    assert_eq!(
        ownership.last_assigned_day("O1", day("2026-11-01"), day("2026-11-10")),
        Some(day("2026-11-10"))
    );
    assert_eq!(
        ownership.first_assigned("O1", day("2026-11-30")),
        Some(day("2026-11-01"))
    );
}
