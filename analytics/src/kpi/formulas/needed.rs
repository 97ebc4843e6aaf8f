//! 实收保费 = 活动量 × 签单率, worked backwards: while the month is open, the premium still
//! missing to the scope's own target as sales and customers to consult, at the rates of a
//! trailing window of the scope (or of its parent when it has too few sales of its own),
//! and both per remaining working day. Agent and team month rows only (the KPIs are for
//! month rows; the agent and team rows among them are chosen here).

use polars::prelude::*;

use super::{ratio, rounded_half_away_from_zero};

/// The activity-needed KPIs, in reading order (each may use those above it).
pub(super) fn kpis(rates_min_sales: i64) -> PolarsResult<Vec<Expr>> {
    let use_parent = || {
        col("rates_window_sales")
            .lt(lit(rates_min_sales))
            .and(col("parent_sales").is_not_null())
    };
    let of_basis = |own: &str, parent: &str| {
        when(rates_row().not())
            .then(lit(NULL))
            .when(use_parent())
            .then(col(parent))
            .otherwise(col(own))
    };
    Ok(vec![
        // Working days still ahead, the as-of date counted when it is one.
        col("working_days_from_as_of").alias("working_days_remaining"),
        // 还差保费: what the open month still lacks to the scope's own premium target.
        premium_needed().alias("premium_needed_fen"),
        // The trailing sums of the parent (an agent's team, a team's branch), when it has a row.
        of_parent("rates_window_sales")?.alias("parent_sales"),
        of_parent("rates_window_customers_consulted")?.alias("parent_customers_consulted"),
        of_parent("rates_window_premium_fen")?.alias("parent_premium_fen"),
        // The scope's own sales in the window, on the rows the rates are for.
        when(rates_row())
            .then(col("rates_window_sales"))
            .otherwise(lit(NULL))
            .alias("trailing_sales"),
        // Whose rates: the scope's own with enough sales (or without a parent), else the parent's.
        rates_basis(use_parent()).alias("needed_rates_basis"),
        of_basis("rates_window_sales", "parent_sales").alias("rates_sales"),
        of_basis(
            "rates_window_customers_consulted",
            "parent_customers_consulted",
        )
        .alias("rates_customers_consulted"),
        of_basis("rates_window_premium_fen", "parent_premium_fen").alias("rates_premium_fen"),
        // The rates used, as a supervisor reads them.
        rounded_half_away_from_zero(col("rates_premium_fen"), col("rates_sales"))
            .alias("trailing_premium_per_sale_fen"),
        ratio(col("rates_sales"), col("rates_customers_consulted")).alias("trailing_close_rate"),
        // 需再签单: whole sales at the basis's premium per sale (needed × sales / premium).
        rounded_up_quotient(
            col("premium_needed_fen"),
            col("rates_sales"),
            col("rates_premium_fen"),
        )
        .alias("sales_needed"),
        // 需再洽谈: whole customers at the basis's close rate (sales needed × consulted / sales).
        rounded_up_quotient(
            col("sales_needed"),
            col("rates_customers_consulted"),
            col("rates_sales"),
        )
        .alias("customers_needed"),
        ratio(col("sales_needed"), col("working_days_remaining"))
            .alias("sales_needed_per_working_day"),
        ratio(col("customers_needed"), col("working_days_remaining"))
            .alias("customers_needed_per_working_day"),
    ])
}

/// Agent and team rows of the month still open on the as-of date (the KPIs are for month
/// rows).
fn open_agent_or_team_month() -> Expr {
    col("agent_row")
        .or(col("team_row"))
        .and(col("period_end").gt_eq(col("as_of")))
}

/// Target minus premium, in fen, where the open month has a target not yet met.
fn premium_needed() -> Expr {
    let target = col("premium_target_fen").cast(DataType::Int128);
    let gap = target.clone() - col("premium_fen");
    when(
        open_agent_or_team_month()
            .and(target.is_not_null())
            .and(gap.clone().gt(lit(0))),
    )
    .then(gap)
    .otherwise(lit(NULL).cast(DataType::Int128))
}

/// On agent rows the value of the team row of the same team and period, on team rows the
/// value of the branch row of the same branch and period; null elsewhere or without one.
fn of_parent(column: &str) -> PolarsResult<Expr> {
    Ok(col(column).gather(col("parent_row"), false))
}

/// The rows activity needed is for: agent and team rows of the open month (the tallies of
/// the trailing window are on them).
fn rates_row() -> Expr {
    open_agent_or_team_month().and(col("rates_window_sales").is_not_null())
}

/// `own`, `team` or `branch` on the open month's agent and team rows.
fn rates_basis(use_parent: Expr) -> Expr {
    let parent = when(col("agent_row"))
        .then(lit("team"))
        .otherwise(lit("branch"));
    when(rates_row())
        .then(when(use_parent).then(parent).otherwise(lit("own")))
        .otherwise(lit(NULL))
}

/// ⌈`amount` × `per` / `of`⌉ in integers, for a positive `amount` and `of` and a `per` of at
/// least 0; null otherwise (no need, or an undefined or non-positive rate).
fn rounded_up_quotient(amount: Expr, per: Expr, of: Expr) -> Expr {
    let [amount, per, of] = [amount, per, of].map(|e| e.cast(DataType::Int128));
    let product = amount.clone() * per.clone();
    // `/` of integers truncates, which is rounding down for positive operands.
    let quotient = (product + of.clone() - lit(1)) / of.clone();
    when(amount.gt(lit(0)).and(of.gt(lit(0))).and(per.gt(lit(0))))
        .then(quotient.cast(DataType::Int64))
        .otherwise(lit(NULL).cast(DataType::Int64))
}
