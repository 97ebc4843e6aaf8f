//! 平衡的责任额: the mix of visits, consultations and sales of agent and team weeks and
//! months, against the mix planned and the group's norm, and the finding of a drift
//! towards the easy kind (visits on plan while consultations or sales fall behind theirs).

use polars::prelude::*;

use super::ratio;

/// The kinds of activity, as the columns name them.
const KINDS: [&str; 3] = ["visits", "consultations", "sales"];

/// The balance KPIs of week and month rows, in reading order (each may use those above it).
pub(super) fn kpis(visits_adherence: f64, share_of_plan: f64) -> PolarsResult<Vec<Expr>> {
    let activity = col("visits") + col("consultations") + col("sales");
    let planned = || KINDS.map(|kind| col(format!("planned_{kind}")).fill_null(lit(0.0)));
    let [v, c, s] = planned();
    let planned_total = v + c + s;
    let mut kpis = Vec::new();
    // 活动结构: each kind's share of the events of the period.
    for kind in KINDS {
        kpis.push(agent_or_team(ratio(col(kind), activity.clone())).alias(format!("{kind}_share")));
    }
    // The mix planned: each kind's share of the planned counts (a kind not planned, 0).
    for (kind, planned) in KINDS.iter().zip(planned()) {
        kpis.push(
            agent_or_team(ratio(planned, planned_total.clone()))
                .alias(format!("planned_{kind}_share")),
        );
    }
    // The norm: the median share of the agents of the team, or of the teams of the branch.
    for kind in KINDS {
        kpis.push(norm(&format!("{kind}_share"))?.alias(format!("norm_{kind}_share")));
    }
    kpis.push(balance_drift(visits_adherence, share_of_plan).alias("balance_drift"));
    kpis.push(balance_drift_reason(share_of_plan).alias("balance_drift_reason"));
    Ok(kpis)
}

/// The value on agent and team rows; null on the others (the KPIs are for week and month
/// rows).
fn agent_or_team(value: Expr) -> Expr {
    let scope = col("agent_row").or(col("team_row"));
    when(scope).then(value).otherwise(lit(NULL))
}

/// Agent rows: the median of `share` among the agents of the same team and period; team
/// rows: among the teams of the same branch and period (their peer group).
fn norm(share: &str) -> PolarsResult<Expr> {
    Ok(agent_or_team(
        col(share).median().over([col("peer_group")])?,
    ))
}

/// Consultations (sales) behind plan: adherence below `share_of_plan`; false when not
/// planned.
fn behind(kind: &str, share_of_plan: f64) -> Expr {
    col(format!("plan_adherence_{kind}"))
        .lt(lit(share_of_plan))
        .fill_null(lit(false))
}

/// Visits on plan (adherence at or above `visits_adherence`) while consultations or sales
/// are behind theirs; null without a visit plan or without a consultation or sales plan.
fn balance_drift(visits_adherence: f64, share_of_plan: f64) -> Expr {
    let visits = col("plan_adherence_visits");
    let judged = visits.clone().is_not_null().and(
        col("plan_adherence_consultations")
            .is_not_null()
            .or(col("plan_adherence_sales").is_not_null()),
    );
    let drift = visits
        .gt_eq(lit(visits_adherence))
        .and(behind("consultations", share_of_plan).or(behind("sales", share_of_plan)));
    agent_or_team(when(judged).then(drift).otherwise(lit(NULL)))
}

/// Which kinds fell behind, on rows with a drift.
fn balance_drift_reason(share_of_plan: f64) -> Expr {
    let (consultations, sales) = (
        behind("consultations", share_of_plan),
        behind("sales", share_of_plan),
    );
    let reason = when(consultations.clone().and(sales))
        .then(lit("consultations_and_sales_below_plan"))
        .when(consultations)
        .then(lit("consultations_below_plan"))
        .otherwise(lit("sales_below_plan"));
    when(col("balance_drift").eq(lit(true)))
        .then(reason)
        .otherwise(lit(NULL))
}
