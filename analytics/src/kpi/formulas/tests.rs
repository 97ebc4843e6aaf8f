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
    branch_id: Option<&'static str>,
    period: &'static str,
    period_start: &'static str,
    period_end: &'static str,
    working_days: i64,
    working_days_elapsed: i64,
    working_days_from_as_of: i64,
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
    /// Sales, customers consulted and premium in fen over the trailing window of rates
    /// (rows of the open month).
    rates_window: Option<(i64, i64, i128)>,
}

/// November 2026 as of Wednesday the 18th: 13 of its 21 working days have passed.
const AS_OF: &str = "2026-11-18";

/// An agent of team T1 in November 2026 with nothing tallied.
fn agent_month(agent: &'static str) -> Tally {
    Tally {
        scope: "agent",
        scope_id: agent,
        team_id: Some("T1"),
        branch_id: Some("B1"),
        period: "month",
        period_start: "2026-11-01",
        period_end: "2026-11-30",
        working_days: 21,
        working_days_elapsed: 13,
        // The 18th through the 30th.
        working_days_from_as_of: 9,
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
        rates_window: None,
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
        working_days_from_as_of: 3,
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
        tallies
            .iter()
            .map(|t| t.branch_id)
            .collect::<StringChunked>()
            .with_name("branch_id".into())
            .into_column(),
        strings("period", |t| t.period),
        dates("period_start", |t| t.period_start),
        dates("period_end", |t| t.period_end),
        Int32Chunked::from_iter_values("as_of".into(), tallies.iter().map(|_| day_number(as_of)))
            .into_date()
            .into_column(),
        ints("working_days", &|t| Some(t.working_days)),
        ints("working_days_elapsed", &|t| Some(t.working_days_elapsed)),
        ints("working_days_from_as_of", &|t| {
            Some(t.working_days_from_as_of)
        }),
        ints("rates_window_sales", &|t| t.rates_window.map(|w| w.0)),
        ints("rates_window_customers_consulted", &|t| {
            t.rates_window.map(|w| w.1)
        }),
        tallies
            .iter()
            .map(|t| t.rates_window.map(|w| w.2))
            .collect::<Int128Chunked>()
            .with_name("rates_window_premium_fen".into())
            .into_column(),
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
    let (groups, parents) = peers_and_parents(tallies);
    columns.push(
        UInt64Chunked::from_iter(groups)
            .with_name("peer_group".into())
            .into_column(),
    );
    columns.push(
        IdxCa::from_iter(parents)
            .with_name("parent_row".into())
            .into_column(),
    );
    DataFrame::new(n, columns).expect("tallies")
}

/// `peer_group` and `parent_row` as the tallies define them: agent rows are peers under the
/// same team and period, team rows under the same branch and period; an agent's parent is
/// its team's row of the period, a team's its branch's.
fn peers_and_parents(tallies: &[Tally]) -> (Vec<Option<u64>>, Vec<Option<IdxSize>>) {
    let mut groups = PlHashMap::new();
    let mut numbered = |key: (
        &'static str,
        Option<&'static str>,
        &'static str,
        &'static str,
    )| {
        let next = groups.len() as u64;
        *groups.entry(key).or_insert(next)
    };
    let row_of = |scope: &str, id: Option<&str>, t: &Tally| {
        tallies.iter().position(|r| {
            r.scope == scope
                && Some(r.scope_id) == id
                && r.period == t.period
                && r.period_start == t.period_start
        })
    };
    tallies
        .iter()
        .map(|t| {
            let (parent_scope, parent) = match t.scope {
                "agent" => ("team", t.team_id),
                "team" => ("branch", t.branch_id),
                _ => return (None, None),
            };
            let group = numbered((t.scope, parent, t.period, t.period_start));
            let parent_row = row_of(parent_scope, parent, t).map(|r| r as IdxSize);
            (Some(group), parent_row)
        })
        .unzip()
}

fn params() -> KpiParams {
    KpiParams::new(date(AS_OF))
}

fn kpis_with(tallies: &[Tally], params: &KpiParams) -> DataFrame {
    apply(frame(tallies, params.as_of), params).expect("KPIs")
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
    // A week row with a target (the tallies never give one) has neither attainment nor
    // pacing: both are KPIs of month rows.
    let out = kpis(&[month.clone(), week(month), no_working_day]);
    let progress = 13.0 / 21.0;
    assert_eq!(floats(&out, "time_progress"), [Some(progress), None, None]);
    assert_eq!(floats(&out, "premium_attainment"), [Some(0.3), None, None]);
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

// Activity needed -----------------------------------------------------------------------------

/// An open month of `scope` with a premium target, premium so far and its trailing window.
fn needing(
    of: Tally,
    target_fen: Option<i64>,
    premium_fen: i128,
    window: (i64, i64, i128),
) -> Tally {
    Tally {
        premium_target_fen: target_fen,
        gross_premium_fen: premium_fen,
        rates_window: Some(window),
        ..of
    }
}

fn branch_month(branch: &'static str) -> Tally {
    Tally {
        scope: "branch",
        scope_id: branch,
        team_id: None,
        branch_id: Some(branch),
        ..agent_month(branch)
    }
}

#[test]
fn activity_needed_is_worked_back_from_the_scopes_own_rates_and_rounded_up() {
    // 20,000.00 still needed; 12 sales of 60,000.00 and 60 customers in the window: 5,000.00
    // a sale and a close rate of 0.2, so 4 sales and 20 customers over 9 working days.
    let agent = needing(
        agent_month("A1"),
        Some(3_000_000),
        1_000_000,
        (12, 60, 6_000_000),
    );
    // 7 sales of 20,000.00 for 25 customers: 2,857.142… a sale. 10,000.00 needed is 3.5
    // sales, 4; at 7 sales per 25 customers, 4 sales are 14.29 customers, 15.
    let odd = needing(agent_month("A2"), Some(1_000_000), 0, (7, 25, 2_000_000));
    let odd = Tally {
        team_id: None,
        ..odd
    };
    let out = kpis(&[agent, odd]);
    assert_eq!(ints(&out, "working_days_remaining"), [Some(9), Some(9)]);
    assert_eq!(
        fen(&out, "premium_needed_fen"),
        [Some(2_000_000), Some(1_000_000)]
    );
    assert_eq!(ints(&out, "trailing_sales"), [Some(12), Some(7)]);
    // A2 has too few sales but no team to borrow from: its own rates.
    assert_eq!(
        texts(&out, "needed_rates_basis"),
        [Some("own".into()), Some("own".into())]
    );
    assert_eq!(
        fen(&out, "trailing_premium_per_sale_fen"),
        [Some(500_000), Some(285_714)]
    );
    assert_eq!(
        floats(&out, "trailing_close_rate"),
        [Some(0.2), Some(7.0 / 25.0)]
    );
    assert_eq!(ints(&out, "sales_needed"), [Some(4), Some(4)]);
    assert_eq!(ints(&out, "customers_needed"), [Some(20), Some(15)]);
    assert_eq!(
        floats(&out, "sales_needed_per_working_day"),
        [Some(4.0 / 9.0), Some(4.0 / 9.0)]
    );
    assert_eq!(
        floats(&out, "customers_needed_per_working_day"),
        [Some(20.0 / 9.0), Some(15.0 / 9.0)]
    );
}

#[test]
fn with_too_few_sales_an_agent_borrows_its_teams_rates_and_a_team_its_branchs() {
    // A2 sold 4 (under 10): T1's 30 sales of 90,000.00 to 100 customers are used.
    let agent = needing(agent_month("A2"), Some(1_000_000), 0, (4, 10, 3_000_000));
    // A3 sold exactly 10: its own.
    let enough = needing(agent_month("A3"), Some(1_000_000), 0, (10, 20, 1_000_000));
    // T1 sold 30 with no target of its own; T2 sold 5 and borrows B1's.
    let team = needing(team_month("T1"), None, 0, (30, 100, 9_000_000));
    let small = needing(
        team_month("T2"),
        Some(2_000_000),
        500_000,
        (5, 40, 1_000_000),
    );
    let branch = needing(branch_month("B1"), None, 0, (200, 800, 50_000_000));
    let out = kpis(&[agent, enough, team, small, branch]);
    assert_eq!(
        texts(&out, "needed_rates_basis"),
        [
            Some("team".into()),
            Some("own".into()),
            Some("own".into()),
            Some("branch".into()),
            None
        ]
    );
    assert_eq!(
        ints(&out, "trailing_sales"),
        [Some(4), Some(10), Some(30), Some(5), None]
    );
    // T1: 300,000 fen a sale; B1: 250,000 fen a sale and a close rate of 0.25.
    assert_eq!(
        fen(&out, "trailing_premium_per_sale_fen"),
        [
            Some(300_000),
            Some(100_000),
            Some(300_000),
            Some(250_000),
            None
        ]
    );
    assert_eq!(
        floats(&out, "trailing_close_rate"),
        [Some(0.3), Some(0.5), Some(0.3), Some(0.25), None]
    );
    // A2: ⌈1,000,000 × 30 / 9,000,000⌉ = ⌈3.33⌉ = 4 sales, ⌈4 × 100 / 30⌉ = ⌈13.33⌉ = 14.
    // A3: 10 sales, 20 customers. T1: no target. T2: 15,000.00 at 2,500.00 = 6 sales, 24.
    assert_eq!(
        ints(&out, "sales_needed"),
        [Some(4), Some(10), None, Some(6), None]
    );
    assert_eq!(
        ints(&out, "customers_needed"),
        [Some(14), Some(20), None, Some(24), None]
    );
    assert_eq!(
        fen(&out, "premium_needed_fen"),
        [
            Some(1_000_000),
            Some(1_000_000),
            None,
            Some(1_500_000),
            None
        ]
    );
}

#[test]
fn activity_needed_is_null_without_a_target_once_met_or_when_a_rate_is_undefined() {
    let window = (12, 60, 6_000_000);
    let no_target = needing(agent_month("A1"), None, 0, window);
    let met = needing(agent_month("A2"), Some(1_000_000), 1_000_000, window);
    // Sold nothing in the window and on no team: no premium per sale, no close rate.
    let no_sale = Tally {
        team_id: None,
        ..needing(agent_month("A3"), Some(1_000_000), 0, (0, 0, 0))
    };
    // Sales recorded without consultations: a premium per sale but no close rate.
    let no_consultation = needing(agent_month("A4"), Some(1_000_000), 0, (12, 0, 6_000_000));
    // Refunds above premium: a premium per sale below zero gives no sales needed.
    let refunded = needing(agent_month("A5"), Some(1_000_000), 0, (12, 60, -100));
    // October is over on 18 November: nothing is needed any more.
    let october = Tally {
        period_start: "2026-10-01",
        period_end: "2026-10-31",
        working_days_from_as_of: 0,
        rates_window: None,
        ..needing(agent_month("A6"), Some(1_000_000), 0, window)
    };
    let a_week = week(needing(agent_month("A7"), Some(1_000_000), 0, window));
    let out = kpis(&[
        no_target,
        met,
        no_sale,
        no_consultation,
        refunded,
        october,
        a_week,
    ]);
    assert_eq!(
        fen(&out, "premium_needed_fen"),
        [
            None,
            None,
            Some(1_000_000),
            Some(1_000_000),
            Some(1_000_000),
            None,
            None
        ]
    );
    assert_eq!(
        texts(&out, "needed_rates_basis"),
        [
            Some("own".into()),
            Some("own".into()),
            Some("own".into()),
            Some("own".into()),
            Some("own".into()),
            None,
            None
        ]
    );
    assert_eq!(
        floats(&out, "trailing_close_rate"),
        [Some(0.2), Some(0.2), None, None, Some(0.2), None, None]
    );
    assert_eq!(
        ints(&out, "sales_needed"),
        [None, None, None, Some(2), None, None, None]
    );
    assert_eq!(ints(&out, "customers_needed"), [None; 7]);
    assert_eq!(floats(&out, "customers_needed_per_working_day"), [None; 7]);
    assert_eq!(
        ints(&out, "working_days_remaining"),
        [Some(9), Some(9), Some(9), Some(9), Some(9), Some(0), None]
    );
}

#[test]
fn on_the_last_working_day_the_whole_need_is_for_that_day_and_after_it_none_is_left() {
    // Monday 30 November 2026 is the month's last working day; it counts as remaining.
    let calendar = WorkingCalendar::default();
    let november = date("2026-11-01");
    let ahead = |as_of| {
        i64::from(crate::periods::working_days_from(
            &calendar,
            PeriodKind::Month,
            november,
            date(as_of),
        ))
    };
    assert_eq!((ahead("2026-11-27"), ahead("2026-11-30")), (2, 1));
    let on = |as_of_ahead, agent| Tally {
        working_days_elapsed: 21,
        working_days_from_as_of: as_of_ahead,
        ..needing(
            agent_month(agent),
            Some(3_000_000),
            1_000_000,
            (12, 60, 6_000_000),
        )
    };
    let params = KpiParams::new(date("2026-11-30"));
    let out = kpis_with(&[on(ahead("2026-11-30"), "A1"), on(0, "A2")], &params);
    assert_eq!(ints(&out, "working_days_remaining"), [Some(1), Some(0)]);
    assert_eq!(ints(&out, "sales_needed"), [Some(4), Some(4)]);
    assert_eq!(
        floats(&out, "sales_needed_per_working_day"),
        [Some(4.0), None]
    );
    assert_eq!(
        floats(&out, "customers_needed_per_working_day"),
        [Some(20.0), None]
    );
}

// Quota balance ------------------------------------------------------------------------------

/// An agent's month with counts, planned counts and the actual counts on the planned days.
fn mixed(
    agent: &'static str,
    [visits, consultations, sales]: [i64; 3],
    planned: [Option<f64>; 3],
    on_plan_days: [i64; 3],
) -> Tally {
    let on_plan_days = on_plan_days.map(Some);
    Tally {
        visits,
        consultations,
        sales,
        planned,
        on_plan_days: [0, 1, 2].map(|k| planned[k].and(on_plan_days[k])),
        ..agent_month(agent)
    }
}

const PLAN: [Option<f64>; 3] = [Some(10.0), Some(5.0), Some(1.0)];

#[test]
fn the_mix_is_each_kinds_share_against_the_plan_and_the_teams_median() {
    let a1 = mixed("A1", [12, 2, 1], PLAN, [12, 2, 1]);
    let a2 = mixed("A2", [6, 3, 1], [Some(8.0), None, None], [6, 0, 0]);
    let idle = mixed("A3", [0, 0, 0], [None; 3], [0; 3]);
    let team = Tally {
        visits: 18,
        consultations: 5,
        sales: 2,
        ..team_month("T1")
    };
    let region = Tally {
        scope: "region",
        scope_id: "R1",
        team_id: None,
        branch_id: None,
        visits: 18,
        ..agent_month("R1")
    };
    let day = Tally {
        period: "day",
        period_start: AS_OF,
        period_end: AS_OF,
        ..a1.clone()
    };
    let out = kpis(&[a1, a2, idle, team, region, day]);
    assert_eq!(
        floats(&out, "visits_share"),
        [
            Some(12.0 / 15.0),
            Some(0.6),
            None,
            Some(18.0 / 25.0),
            None,
            None
        ]
    );
    assert_eq!(
        floats(&out, "sales_share"),
        [
            Some(1.0 / 15.0),
            Some(0.1),
            None,
            Some(2.0 / 25.0),
            None,
            None
        ]
    );
    // A2 planned visits only: its plan is all visits.
    assert_eq!(
        floats(&out, "planned_visits_share"),
        [Some(10.0 / 16.0), Some(1.0), None, None, None, None]
    );
    assert_eq!(
        floats(&out, "planned_consultations_share"),
        [Some(5.0 / 16.0), Some(0.0), None, None, None, None]
    );
    // The team's agents: 0.8 and 0.6 (A3 has no share); T1 alone in B1.
    let median = (12.0 / 15.0 + 0.6) / 2.0;
    assert_eq!(
        floats(&out, "norm_visits_share"),
        [
            Some(median),
            Some(median),
            Some(median),
            Some(18.0 / 25.0),
            None,
            None
        ]
    );
}

#[test]
fn balance_drift_is_visits_on_plan_while_consultations_or_sales_fall_behind() {
    let out = kpis(&[
        // Visits 120% of plan, consultations 40%: drift.
        mixed("A1", [12, 2, 1], PLAN, [12, 2, 1]),
        // Visits exactly on plan, no sale of one planned.
        mixed("A2", [10, 3, 0], PLAN, [10, 3, 0]),
        // Both behind.
        mixed("A3", [10, 2, 0], PLAN, [10, 2, 0]),
        // Consultations exactly at half of plan: not behind.
        mixed("A4", [11, 3, 1], [Some(10.0), Some(6.0), None], [11, 3, 0]),
        // Visits under plan: whatever else, no drift.
        mixed("A5", [9, 0, 0], PLAN, [9, 0, 0]),
        // Visits alone planned: nothing to judge.
        mixed("A6", [12, 0, 0], [Some(10.0), None, None], [12, 0, 0]),
        // No visit plan: nothing to judge.
        mixed("A7", [3, 0, 0], [None, Some(5.0), None], [0, 0, 0]),
    ]);
    assert_eq!(
        flags(&out, "balance_drift"),
        [
            Some(true),
            Some(true),
            Some(true),
            Some(false),
            Some(false),
            None,
            None
        ]
    );
    assert_eq!(
        texts(&out, "balance_drift_reason"),
        [
            Some("consultations_below_plan".into()),
            Some("sales_below_plan".into()),
            Some("consultations_and_sales_below_plan".into()),
            None,
            None,
            None,
            None
        ]
    );
}

#[test]
fn the_drift_thresholds_are_settings() {
    let row = mixed("A1", [9, 3, 1], PLAN, [9, 3, 1]);
    let mut params = params();
    assert_eq!(
        flags(
            &kpis_with(std::slice::from_ref(&row), &params),
            "balance_drift"
        ),
        [Some(false)]
    );
    // Visits from 90% of plan count as on plan, consultations behind below 70%.
    params.drift_visits_adherence = 0.9;
    params.drift_share = 0.7;
    assert_eq!(
        flags(&kpis_with(&[row], &params), "balance_drift"),
        [Some(true)]
    );
}
