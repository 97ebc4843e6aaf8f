//! The formulas on hand-made tallies.

use aqs_schemas::WorkingCalendar;
use chrono::NaiveDate;
use polars::prelude::*;

use super::apply;
use crate::kpi::KpiParams;
use crate::periods::{PeriodKind, day_number, working_days};

fn date(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

/// One row of tallies, as the `tallies` module lays them out.
#[derive(Debug, Clone)]
struct Tally {
    scope: &'static str,
    scope_id: &'static str,
    team_id: Option<&'static str>,
    period: &'static str,
    period_start: &'static str,
    period_end: &'static str,
    working_days: i64,
    working_days_elapsed: i64,
    visits: i64,
    consultations: i64,
    customers_consulted: i64,
    sales: i64,
    gross_premium_fen: i128,
    refunds_fen: i128,
    assigned_outlets: i64,
    assigned_outlets_visited: i64,
    assigned_outlets_with_sale: i64,
    roster_agents: i64,
    selling_agents: i64,
    planned: [Option<f64>; 3],
    on_plan_days: [Option<i64>; 3],
    premium_target_fen: Option<i64>,
    outlet_activity_rate_target_bp: Option<i64>,
    count_targets: [Option<i64>; 3],
}

/// November 2026 as of Wednesday the 18th: 13 of its 21 working days have passed.
const AS_OF: &str = "2026-11-18";

/// An agent of team T1 in November 2026 with nothing tallied.
fn agent_month(agent: &'static str) -> Tally {
    Tally {
        scope: "agent",
        scope_id: agent,
        team_id: Some("T1"),
        period: "month",
        period_start: "2026-11-01",
        period_end: "2026-11-30",
        working_days: 21,
        working_days_elapsed: 13,
        visits: 0,
        consultations: 0,
        customers_consulted: 0,
        sales: 0,
        gross_premium_fen: 0,
        refunds_fen: 0,
        assigned_outlets: 0,
        assigned_outlets_visited: 0,
        assigned_outlets_with_sale: 0,
        roster_agents: 0,
        selling_agents: 0,
        planned: [None; 3],
        on_plan_days: [None; 3],
        premium_target_fen: None,
        outlet_activity_rate_target_bp: None,
        count_targets: [None; 3],
    }
}

fn team_month(team: &'static str) -> Tally {
    Tally {
        scope: "team",
        scope_id: team,
        team_id: Some(team),
        ..agent_month(team)
    }
}

/// The same scope's week of 16 November.
fn week(of: Tally) -> Tally {
    Tally {
        period: "week",
        period_start: "2026-11-16",
        period_end: "2026-11-22",
        working_days: 5,
        working_days_elapsed: 3,
        ..of
    }
}

fn frame(tallies: &[Tally], as_of: NaiveDate) -> DataFrame {
    let n = tallies.len();
    let strings = |name: &str, value: fn(&Tally) -> &'static str| {
        StringChunked::from_iter_values(name.into(), tallies.iter().map(value)).into_column()
    };
    let ints = |name: &str, value: &dyn Fn(&Tally) -> Option<i64>| {
        tallies
            .iter()
            .map(value)
            .collect::<Int64Chunked>()
            .with_name(name.into())
            .into_column()
    };
    let fen = |name: &str, value: fn(&Tally) -> i128| {
        Int128Chunked::from_vec(name.into(), tallies.iter().map(value).collect()).into_column()
    };
    let dates = |name: &str, value: fn(&Tally) -> &'static str| {
        Int32Chunked::from_iter_values(
            name.into(),
            tallies.iter().map(|t| day_number(date(value(t)))),
        )
        .into_date()
        .into_column()
    };
    let mut columns = vec![
        strings("scope", |t| t.scope),
        strings("scope_id", |t| t.scope_id),
        tallies
            .iter()
            .map(|t| t.team_id)
            .collect::<StringChunked>()
            .with_name("team_id".into())
            .into_column(),
        strings("period", |t| t.period),
        dates("period_start", |t| t.period_start),
        dates("period_end", |t| t.period_end),
        Int32Chunked::from_iter_values("as_of".into(), tallies.iter().map(|_| day_number(as_of)))
            .into_date()
            .into_column(),
        ints("working_days", &|t| Some(t.working_days)),
        ints("working_days_elapsed", &|t| Some(t.working_days_elapsed)),
        ints("visits", &|t| Some(t.visits)),
        ints("consultations", &|t| Some(t.consultations)),
        ints("customers_consulted", &|t| Some(t.customers_consulted)),
        ints("sales", &|t| Some(t.sales)),
        fen("gross_premium_fen", |t| t.gross_premium_fen),
        fen("refunds_fen", |t| t.refunds_fen),
        ints("assigned_outlets", &|t| Some(t.assigned_outlets)),
        ints("assigned_outlets_visited", &|t| {
            Some(t.assigned_outlets_visited)
        }),
        ints("assigned_outlets_with_sale", &|t| {
            Some(t.assigned_outlets_with_sale)
        }),
        ints("roster_agents", &|t| Some(t.roster_agents)),
        ints("selling_agents", &|t| Some(t.selling_agents)),
        ints("premium_target_fen", &|t| t.premium_target_fen),
        ints("outlet_activity_rate_target_bp", &|t| {
            t.outlet_activity_rate_target_bp
        }),
    ];
    for (kind, name) in ["visits", "consultations", "sales"].into_iter().enumerate() {
        columns.push(
            tallies
                .iter()
                .map(|t| t.planned[kind])
                .collect::<Float64Chunked>()
                .with_name(format!("planned_{name}").into())
                .into_column(),
        );
        columns.push(ints(&format!("{name}_on_plan_days"), &|t| {
            t.on_plan_days[kind]
        }));
        columns.push(ints(&format!("{name}_target"), &|t| t.count_targets[kind]));
    }
    DataFrame::new(n, columns).expect("tallies")
}

fn params() -> KpiParams {
    KpiParams::new(date(AS_OF))
}

fn kpis_with(tallies: &[Tally], params: &KpiParams) -> DataFrame {
    apply(frame(tallies, params.as_of).lazy(), params)
        .expect("formulas")
        .collect()
        .expect("KPIs")
}

fn kpis(tallies: &[Tally]) -> DataFrame {
    kpis_with(tallies, &params())
}

fn floats(frame: &DataFrame, column: &str) -> Vec<Option<f64>> {
    frame
        .column(column)
        .expect(column)
        .f64()
        .expect("floats")
        .iter()
        .collect()
}

fn fen(frame: &DataFrame, column: &str) -> Vec<Option<i128>> {
    frame
        .column(column)
        .expect(column)
        .i128()
        .expect("fen")
        .iter()
        .collect()
}

fn ints(frame: &DataFrame, column: &str) -> Vec<Option<i64>> {
    frame
        .column(column)
        .expect(column)
        .i64()
        .expect("ints")
        .iter()
        .collect()
}

fn texts(frame: &DataFrame, column: &str) -> Vec<Option<String>> {
    frame
        .column(column)
        .expect(column)
        .str()
        .expect("texts")
        .iter()
        .map(|t| t.map(str::to_owned))
        .collect()
}

fn flags(frame: &DataFrame, column: &str) -> Vec<Option<bool>> {
    frame
        .column(column)
        .expect(column)
        .bool()
        .expect("booleans")
        .iter()
        .collect()
}

#[test]
fn ratios_are_null_on_a_zero_or_null_denominator() {
    let consulted = Tally {
        customers_consulted: 4,
        sales: 2,
        assigned_outlets: 3,
        assigned_outlets_visited: 2,
        assigned_outlets_with_sale: 1,
        ..agent_month("A1")
    };
    let nobody = Tally {
        // Sales without a customer consulted: no close rate rather than infinity.
        sales: 1,
        ..agent_month("A2")
    };
    let out = kpis(&[consulted, nobody]);
    assert_eq!(floats(&out, "close_rate"), [Some(0.5), None]);
    assert_eq!(floats(&out, "visit_coverage"), [Some(2.0 / 3.0), None]);
    assert_eq!(
        floats(&out, "outlet_activity_rate"),
        [Some(1.0 / 3.0), None]
    );
}

#[test]
fn premium_is_net_of_refunds_and_premium_per_sale_rounds_half_away_from_zero() {
    // (gross, refunds, sales) in fen, and the premium per sale expected.
    let cases: [(i128, i128, i64, Option<i128>); 9] = [
        (1_000_000, 0, 2, Some(500_000)),
        // 100.01 CNY over 2 sales is 50.005: half a fen goes away from zero.
        (10_001, 0, 2, Some(5_001)),
        (0, 10_001, 2, Some(-5_001)),
        // 10.00 CNY over 3 sales is 3.3333…: down; 20.00 over 3 is 6.6666…: up.
        (1_000, 0, 3, Some(333)),
        (2_000, 0, 3, Some(667)),
        (0, 2_000, 3, Some(-667)),
        // Net of refunds: 150.00 − 50.00 over 2.
        (15_000, 5_000, 2, Some(5_000)),
        // No sale: null, not zero or infinity.
        (5_000, 0, 0, None),
        // Sums beyond 64 bits stay exact.
        (
            i128::from(i64::MAX) * 3 + 1,
            0,
            2,
            Some(i128::from(i64::MAX) * 3 / 2 + 1),
        ),
    ];
    let tallies: Vec<Tally> = cases
        .iter()
        .map(|&(gross, refunds, sales, _)| Tally {
            gross_premium_fen: gross,
            refunds_fen: refunds,
            sales,
            ..agent_month("A1")
        })
        .collect();
    let out = kpis(&tallies);
    let premium: Vec<Option<i128>> = cases.iter().map(|c| Some(c.0 - c.1)).collect();
    assert_eq!(fen(&out, "premium_fen"), premium);
    let per_sale: Vec<Option<i128>> = cases.iter().map(|c| c.3).collect();
    assert_eq!(fen(&out, "premium_per_sale_fen"), per_sale);
}

#[test]
fn agent_counts_are_for_teams_and_larger_scopes_only() {
    let team = Tally {
        roster_agents: 4,
        selling_agents: 3,
        ..team_month("T1")
    };
    let empty_roster = Tally {
        roster_agents: 0,
        ..team_month("T2")
    };
    let agent = Tally {
        // An agent row's own tallies are not a roster.
        roster_agents: 0,
        selling_agents: 1,
        ..agent_month("A1")
    };
    let out = kpis(&[team, empty_roster, agent]);
    assert_eq!(ints(&out, "agents_on_roster"), [Some(4), Some(0), None]);
    assert_eq!(ints(&out, "active_agents"), [Some(3), Some(0), None]);
    assert_eq!(
        floats(&out, "agent_activity_rate"),
        [Some(0.75), None, None]
    );
}

#[test]
fn attainment_is_actual_over_the_scopes_own_target() {
    let with_targets = Tally {
        gross_premium_fen: 1_200_000,
        refunds_fen: 200_000,
        visits: 12,
        consultations: 3,
        sales: 2,
        assigned_outlets: 3,
        assigned_outlets_with_sale: 2,
        premium_target_fen: Some(4_000_000),
        outlet_activity_rate_target_bp: Some(5_000),
        count_targets: [Some(10), Some(0), None],
        ..agent_month("A1")
    };
    let without = Tally {
        gross_premium_fen: 1_200_000,
        ..agent_month("A2")
    };
    let zero_target = Tally {
        premium_target_fen: Some(0),
        outlet_activity_rate_target_bp: Some(0),
        ..agent_month("A3")
    };
    // 4,800 bp is a rate of 0.48, the nearest float to 4,800 / 10,000.
    let odd_target = Tally {
        outlet_activity_rate_target_bp: Some(4_800),
        ..agent_month("A4")
    };
    let out = kpis(&[with_targets, without, zero_target, odd_target]);
    assert_eq!(
        floats(&out, "premium_attainment"),
        [Some(0.25), None, None, None]
    );
    assert_eq!(
        floats(&out, "visits_attainment"),
        [Some(1.2), None, None, None]
    );
    // A count target of 0 gives no attainment.
    assert_eq!(floats(&out, "consultations_attainment"), [None; 4]);
    assert_eq!(floats(&out, "sales_attainment"), [None; 4]);
    assert_eq!(
        floats(&out, "outlet_activity_rate_target"),
        [Some(0.5), None, Some(0.0), Some(0.48)]
    );
    assert_eq!(
        floats(&out, "outlet_activity_rate_attainment"),
        [Some((2.0 / 3.0 * 10_000.0) / 5_000.0), None, None, None]
    );
}

#[test]
fn plan_adherence_is_null_without_a_planned_count() {
    let planned = Tally {
        planned: [Some(8.0), Some(0.0), None],
        on_plan_days: [Some(6), Some(1), Some(2)],
        ..agent_month("A1")
    };
    let no_plan_day = Tally {
        planned: [Some(4.0), None, None],
        on_plan_days: [None; 3],
        ..agent_month("A2")
    };
    let out = kpis(&[planned, no_plan_day]);
    assert_eq!(floats(&out, "plan_adherence_visits"), [Some(0.75), None]);
    assert_eq!(floats(&out, "plan_adherence_consultations"), [None, None]);
    assert_eq!(floats(&out, "plan_adherence_sales"), [None, None]);
}

#[test]
fn time_progress_pace_gap_and_projection_are_for_month_rows() {
    let month = Tally {
        gross_premium_fen: 3_000_000,
        premium_target_fen: Some(10_000_000),
        ..agent_month("A1")
    };
    let no_working_day = Tally {
        working_days: 0,
        working_days_elapsed: 0,
        ..agent_month("A2")
    };
    // A week row with a target (the tallies never give one) still has no pacing.
    let out = kpis(&[month.clone(), week(month), no_working_day]);
    let progress = 13.0 / 21.0;
    assert_eq!(floats(&out, "time_progress"), [Some(progress), None, None]);
    assert_eq!(
        floats(&out, "premium_attainment"),
        [Some(0.3), Some(0.3), None]
    );
    assert_eq!(floats(&out, "pace_gap"), [Some(0.3 - progress), None, None]);
    assert_eq!(
        floats(&out, "projected_attainment"),
        [Some(0.3 / progress), None, None]
    );
    assert_eq!(flags(&out, "at_risk"), [Some(true), None, None]);
}

#[test]
fn on_the_last_working_day_time_progress_is_one_and_the_month_is_still_open() {
    // Friday 30 October 2026 is October's last working day; the 31st is a Saturday.
    let calendar = WorkingCalendar::default();
    let days = working_days(
        &calendar,
        PeriodKind::Month,
        date("2026-10-01"),
        date("2026-10-30"),
    );
    assert_eq!((days.total, days.elapsed), (22, 22));
    let october = |agent, gross_premium_fen| Tally {
        period_start: "2026-10-01",
        period_end: "2026-10-31",
        working_days: i64::from(days.total),
        working_days_elapsed: i64::from(days.elapsed),
        gross_premium_fen,
        premium_target_fen: Some(1_000_000),
        ..agent_month(agent)
    };
    let mut params = KpiParams::new(date("2026-10-30"));
    params.at_risk_threshold = 0.9;
    let out = kpis_with(
        &[
            october("A1", 850_000),
            october("A2", 900_000),
            october("A3", 1_200_000),
        ],
        &params,
    );
    assert_eq!(floats(&out, "time_progress"), [Some(1.0); 3]);
    assert_eq!(
        floats(&out, "pace_gap"),
        [Some(0.85 - 1.0), Some(0.9 - 1.0), Some(1.2 - 1.0)]
    );
    assert_eq!(
        floats(&out, "projected_attainment"),
        [Some(0.85), Some(0.9), Some(1.2)]
    );
    // Still open on its last working day: below the threshold is at risk, at it is not.
    assert_eq!(
        flags(&out, "at_risk"),
        [Some(true), Some(false), Some(false)]
    );
}

#[test]
fn a_month_already_over_is_not_at_risk() {
    // October as of 18 November: every working day has passed.
    let october = Tally {
        period_start: "2026-10-01",
        period_end: "2026-10-31",
        working_days: 22,
        working_days_elapsed: 22,
        gross_premium_fen: 100_000,
        premium_target_fen: Some(1_000_000),
        ..agent_month("A1")
    };
    let out = kpis(&[october]);
    assert_eq!(floats(&out, "projected_attainment"), [Some(0.1)]);
    assert_eq!(flags(&out, "at_risk"), [Some(false)]);
}

/// An agent month of team `team` with a close rate of `sales / consulted`, and a will of
/// `visits` done of `planned` visits.
fn coached(
    agent: &'static str,
    team: Option<&'static str>,
    sales: i64,
    consulted: i64,
    will: Option<(i64, f64)>,
) -> Tally {
    Tally {
        team_id: team,
        sales,
        customers_consulted: consulted,
        planned: [will.map(|(_, planned)| planned), None, None],
        on_plan_days: [will.map(|(done, _)| done), None, None],
        ..agent_month(agent)
    }
}

#[test]
fn the_team_median_is_of_the_agents_of_the_same_team_and_month() {
    let out = kpis(&[
        // T1: close rates 1/8, 2/8, 4/8 and 8/8: halfway between the middle two, 3/8.
        coached("A1", Some("T1"), 1, 8, None),
        coached("A2", Some("T1"), 2, 8, None),
        coached("A3", Some("T1"), 4, 8, None),
        coached("A4", Some("T1"), 8, 8, None),
        // No close rate (nobody consulted): not counted, but has the team's median.
        coached("A5", Some("T1"), 0, 0, None),
        // T1's own row and an agent's week of T1 take no part.
        Tally {
            sales: 8,
            customers_consulted: 8,
            ..team_month("T1")
        },
        week(coached("A6", Some("T1"), 8, 8, None)),
        // Agents on no team form a group of their own: 2/4 and 3/4.
        coached("A7", None, 2, 4, None),
        coached("A8", None, 3, 4, None),
        // Another month.
        Tally {
            period_start: "2026-10-01",
            period_end: "2026-10-31",
            ..coached("A9", Some("T1"), 1, 1, None)
        },
    ]);
    let median = floats(&out, "team_median_close_rate");
    assert_eq!(median[..5], [Some(0.375); 5]);
    assert_eq!(median[5..7], [None, None]);
    assert_eq!(median[7..], [Some(0.625), Some(0.625), Some(1.0)]);
}

#[test]
fn the_coaching_quadrant_crosses_will_and_skill_at_their_boundaries() {
    // Team median close rate 0.5 (rates 0.4, 0.5, 0.5, 0.6, 0.4); will threshold 0.8.
    let out = kpis(&[
        // Will exactly 0.8 and close rate exactly the median: both.
        coached("A1", Some("T1"), 5, 10, Some((8, 10.0))),
        // Willing, close rate below the median.
        coached("A2", Some("T1"), 4, 10, Some((9, 10.0))),
        // Skilled, will just below the threshold.
        coached("A3", Some("T1"), 6, 10, Some((79, 100.0))),
        // Neither.
        coached("A4", Some("T1"), 4, 10, Some((1, 10.0))),
        // No plan: no will, no quadrant.
        coached("A5", Some("T1"), 5, 10, None),
        // Visits not planned: consultation adherence is the will.
        Tally {
            planned: [None, Some(2.0), None],
            on_plan_days: [None, Some(2), None],
            ..coached("A6", Some("T1"), 0, 0, None)
        },
        Tally {
            planned: [None, Some(2.0), None],
            on_plan_days: [None, Some(2), None],
            ..coached("A7", Some("T2"), 1, 2, None)
        },
        // A team row has no quadrant.
        Tally {
            planned: [Some(1.0), None, None],
            on_plan_days: [Some(1), None, None],
            sales: 1,
            customers_consulted: 1,
            ..team_month("T1")
        },
    ]);
    assert_eq!(floats(&out, "team_median_close_rate")[..5], [Some(0.5); 5]);
    let quadrant = texts(&out, "coaching_quadrant");
    let expected = [
        Some("on_track"),
        Some("does_not_know_how"),
        Some("does_not_do_enough"),
        Some("unwilling"),
        None,
        // A6 has a will but no close rate.
        None,
        // A7 alone on T2 is its own median: skilled, and willing by consultations.
        Some("on_track"),
        None,
    ];
    assert_eq!(quadrant, expected.map(|q| q.map(str::to_owned)));
}

#[test]
fn the_skill_ratio_scales_the_team_median() {
    let mut params = params();
    params.skill_ratio = 1.2;
    params.will_threshold = 0.5;
    let out = kpis_with(
        &[
            // Median 0.5 × 1.2 = 0.6: 0.6 is skilled, 0.5 is not.
            coached("A1", Some("T1"), 6, 10, Some((1, 2.0))),
            coached("A2", Some("T1"), 5, 10, Some((1, 2.0))),
            coached("A3", Some("T1"), 4, 10, Some((1, 2.0))),
        ],
        &params,
    );
    assert_eq!(
        texts(&out, "coaching_quadrant"),
        [
            Some("on_track".to_owned()),
            Some("does_not_know_how".to_owned()),
            Some("does_not_know_how".to_owned())
        ]
    );
}
