//! Every KPI formula of the job, in one place: polars expressions over the tallied columns
//! (listed in the `tallies` module), read top to bottom. Each KPI is one expression named
//! after its column; it may use the tallies and any KPI above it. Adding a KPI is adding
//! its expression to [`kpis`] (and its column to the output contract, `KPI_COLUMNS` of
//! `aqs_tables::kpi`).
//!
//! Rules that hold throughout:
//! - A ratio whose denominator is 0 or null is null, never 0, NaN or infinity ([`ratio`]).
//! - Money stays in exact fen here (`*_fen` columns, integers); the output turns it into
//!   Decimal(38, 2) CNY.
//! - Targets are the scope's own for the month (month rows only): a scope without one has
//!   no attainment; targets are not summed up or split down.
//! - Pacing (time progress, pace gap, projected attainment, at risk) is for month rows only.

use polars::prelude::*;

use super::KpiParams;

mod balance;
mod groups;
mod needed;

/// Target rates are given in basis points: 10,000 is a rate of 1.
const BASIS_POINTS: f64 = 10_000.0;

/// The rows a group of KPIs is for. A group's rows are among those of the group before it,
/// and its KPIs are null on every other row: they are worked out on those rows alone (a
/// month's table has about one month row in 36 and one week row in 7), not computed
/// everywhere and then blanked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowsFor {
    Every,
    WeeksAndMonths,
    Months,
}

impl RowsFor {
    /// True on the rows of the group (the kind of row is a KPI of the first group).
    fn mask(self) -> Expr {
        match self {
            Self::Every => lit(true),
            Self::WeeksAndMonths => col("week_row").or(col("month_row")),
            Self::Months => col("month_row"),
        }
    }
}

/// KPIs for the same rows, each named after its column, in reading order.
pub(crate) struct KpiGroup {
    pub(crate) rows: RowsFor,
    pub(crate) kpis: Vec<Expr>,
}

/// The KPIs in reading order, grouped by the rows they are for.
pub(crate) fn kpis(params: &KpiParams) -> PolarsResult<Vec<KpiGroup>> {
    let every_row = vec![
        // The kind of row, told from its scope and period once for every formula below.
        col("scope").eq(lit("agent")).alias("agent_row"),
        col("scope").eq(lit("team")).alias("team_row"),
        col("period").eq(lit("week")).alias("week_row"),
        col("period").eq(lit("month")).alias("month_row"),
        // 保费 premium: premium of the sales minus refunds of the cancellations dated in
        // the period (may be negative).
        (col("gross_premium_fen") - col("refunds_fen")).alias("premium_fen"),
        // 件均保费 premium per sale: money, rounded half away from zero to the fen.
        rounded_half_away_from_zero(col("premium_fen"), col("sales")).alias("premium_per_sale_fen"),
        // 网点拜访覆盖率 visit coverage: assigned outlets visited on a day they were assigned
        // to the scope, per assigned outlet.
        ratio(col("assigned_outlets_visited"), col("assigned_outlets")).alias("visit_coverage"),
        // 网点活动率 outlet activity rate: assigned outlets with a sale on a day they were
        // assigned to the scope, per assigned outlet.
        ratio(col("assigned_outlets_with_sale"), col("assigned_outlets"))
            .alias("outlet_activity_rate"),
        // 签单率 close rate: sales per customer consulted.
        ratio(col("sales"), col("customers_consulted")).alias("close_rate"),
        // Agents who belonged to a team, branch or region on at least one day of the period.
        team_or_larger(col("roster_agents")).alias("agents_on_roster"),
        // Agents with a sale on days they belonged to the team, branch or region.
        team_or_larger(col("selling_agents")).alias("active_agents"),
        // 人员活动率 agent activity rate: active agents per agent on the roster.
        ratio(col("active_agents"), col("agents_on_roster")).alias("agent_activity_rate"),
        // 计划达成率 plan adherence of each kind: the actual events on the plans' dates per
        // planned event (null when the kind was not planned).
        ratio(col("visits_on_plan_days"), col("planned_visits")).alias("plan_adherence_visits"),
        ratio(
            col("consultations_on_plan_days"),
            col("planned_consultations"),
        )
        .alias("plan_adherence_consultations"),
        ratio(col("sales_on_plan_days"), col("planned_sales")).alias("plan_adherence_sales"),
    ];
    // 平衡的责任额: the mix of agent and team weeks and months, in a module of its own.
    let weeks_and_months = balance::kpis(params.drift_visits_adherence, params.drift_share)?;
    // Targets are for months, and so is pacing (time progress, pace gap, projection).
    let mut months = vec![
        // 达成率 attainment of each target of the scope's month: actual / target.
        ratio(col("premium_fen"), col("premium_target_fen")).alias("premium_attainment"),
        ratio(col("visits"), col("visits_target")).alias("visits_attainment"),
        ratio(col("consultations"), col("consultations_target")).alias("consultations_attainment"),
        ratio(col("sales"), col("sales_target")).alias("sales_attainment"),
        // The outlet activity rate's target, given in basis points, as a rate.
        divided_row_by_row(col("outlet_activity_rate_target_bp"), BASIS_POINTS)
            .alias("outlet_activity_rate_target"),
        // The rate over its target, both in basis points: the target is used as given.
        ratio(
            col("outlet_activity_rate") * lit(BASIS_POINTS),
            col("outlet_activity_rate_target_bp"),
        )
        .alias("outlet_activity_rate_attainment"),
        // 时间进度 time progress: working days of the month elapsed through the as-of date,
        // per working day of the month (1 for a month already over).
        ratio(col("working_days_elapsed"), col("working_days")).alias("time_progress"),
        // 进度差 pace gap: premium attainment ahead of (or behind) time progress.
        (col("premium_attainment") - col("time_progress")).alias("pace_gap"),
        // 预计达成 projected attainment: premium attainment at the month's end if the pace holds.
        ratio(col("premium_attainment"), col("time_progress")).alias("projected_attainment"),
        at_risk(params.at_risk_threshold).alias("at_risk"),
        team_median_close_rate()?.alias("team_median_close_rate"),
        coaching_quadrant(params.will_threshold, params.skill_ratio).alias("coaching_quadrant"),
    ];
    // 实收保费 = 活动量 × 签单率 backwards: in a module of its own.
    months.extend(needed::kpis(params.rates_min_sales)?);
    Ok(vec![
        KpiGroup {
            rows: RowsFor::Every,
            kpis: every_row,
        },
        KpiGroup {
            rows: RowsFor::WeeksAndMonths,
            kpis: weeks_and_months,
        },
        KpiGroup {
            rows: RowsFor::Months,
            kpis: months,
        },
    ])
}

/// `numerator / denominator` as a float, null when the denominator is 0 or null.
pub(crate) fn ratio(numerator: Expr, denominator: Expr) -> Expr {
    let denominator = denominator.cast(DataType::Float64);
    when(denominator.clone().neq(lit(0.0)))
        .then(numerator.cast(DataType::Float64) / denominator)
        .otherwise(lit(NULL))
}

/// `value / divisor` as a float, divided on each row. Polars divides by one number as a
/// multiplication by its inverse, which is not always the nearest quotient (4,800 bp would
/// be a rate of 0.48000000000000004), so the divisor is spread over the rows first.
fn divided_row_by_row(value: Expr, divisor: f64) -> Expr {
    let value = value.cast(DataType::Float64);
    let divisors = when(value.clone().is_not_null())
        .then(lit(divisor))
        .otherwise(lit(NULL));
    value / divisors
}

/// `numerator / denominator` of integers (fen per sale), rounded half away from zero:
/// (2|n| + |d|) / 2|d| rounded down, with the quotient's sign; null when `denominator` is 0.
fn rounded_half_away_from_zero(numerator: Expr, denominator: Expr) -> Expr {
    let (n, d) = (numerator, denominator.cast(DataType::Int128));
    // `/` of integers truncates, which is rounding down for the magnitudes.
    let quotient =
        (magnitude(n.clone()) * lit(2) + magnitude(d.clone())) / (magnitude(d.clone()) * lit(2));
    let negative = n.lt(lit(0)).neq(d.clone().lt(lit(0)));
    when(d.neq(lit(0)))
        .then(
            when(negative)
                .then(negated(quotient.clone()))
                .otherwise(quotient),
        )
        .otherwise(lit(NULL))
}

/// The absolute value of an integer.
fn magnitude(value: Expr) -> Expr {
    when(value.clone().lt(lit(0)))
        .then(negated(value.clone()))
        .otherwise(value)
}

/// `-value`, as `0 - value`: polars negates no 128-bit integer.
fn negated(value: Expr) -> Expr {
    lit(0) - value
}

/// At risk (the antidote to 月中没关系): the month is still open on the as-of date and its
/// projected attainment is below the threshold. A month already over is not at risk; no
/// projection, no verdict (null).
fn at_risk(threshold: f64) -> Expr {
    let projected = col("projected_attainment");
    let open = col("period_end").gt_eq(col("as_of"));
    when(projected.clone().is_not_null())
        .then(projected.lt(lit(threshold)).and(open))
        .otherwise(lit(NULL))
}

/// Agent month rows: the median close rate of the agents of the same team (or of none)
/// that month; halfway between the middle two for an even count.
fn team_median_close_rate() -> PolarsResult<Expr> {
    // Agent month rows of one team share a peer group with no other agent month row.
    let median = agent_rows_only(col("close_rate"))
        .median()
        .over([col("peer_group")])?;
    Ok(agent_rows_only(median))
}

/// 技能/意愿评估 the coaching quadrant of an agent's month. *Will*: visit plan adherence
/// (consultation adherence when visits were not planned) at or above `will_threshold`.
/// *Skill*: close rate at or above the team median × `skill_ratio`. Null without a will,
/// a close rate or a team median.
fn coaching_quadrant(will_threshold: f64, skill_ratio: f64) -> Expr {
    let will = coalesce(&[
        col("plan_adherence_visits"),
        col("plan_adherence_consultations"),
    ]);
    let (close_rate, median) = (col("close_rate"), col("team_median_close_rate"));
    let known = will
        .clone()
        .is_not_null()
        .and(close_rate.clone().is_not_null())
        .and(median.clone().is_not_null());
    let willing = will.gt_eq(lit(will_threshold));
    let skilled = close_rate.gt_eq(median * lit(skill_ratio));
    let quadrant = when(willing.clone().and(skilled.clone()))
        .then(lit("on_track"))
        .when(willing)
        .then(lit("does_not_know_how"))
        .when(skilled)
        .then(lit("does_not_do_enough"))
        .otherwise(lit("unwilling"));
    agent_rows_only(when(known).then(quadrant).otherwise(lit(NULL)))
}

/// The value on team, branch and region rows; null on agent rows.
fn team_or_larger(value: Expr) -> Expr {
    when(col("agent_row").not())
        .then(value)
        .otherwise(lit(NULL))
}

/// The value on agent rows; null on the others.
fn agent_rows_only(value: Expr) -> Expr {
    when(col("agent_row")).then(value).otherwise(lit(NULL))
}

/// Adds the KPIs to the tallies, each group on its own rows.
pub(crate) fn apply(tallies: DataFrame, params: &KpiParams) -> PolarsResult<DataFrame> {
    groups::with_groups(tallies, &kpis(params)?, &super::table::is_contract_source)
}

#[cfg(test)]
mod tests;
