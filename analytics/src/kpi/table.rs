//! The output: the contract's columns in order, with their types.

use polars::prelude::*;

/// The output contract, in order. Dashboards and analysts depend on these names.
pub const OUTPUT_COLUMNS: [&str; 70] = [
    "scope",
    "scope_id",
    "team_id",
    "branch_id",
    "region_id",
    "period",
    "period_start",
    "period_end",
    "as_of",
    "visits",
    "outlets_visited",
    "consultations",
    "customers_consulted",
    "customers_interested",
    "sales",
    "premium",
    "assigned_outlets",
    "visit_coverage",
    "outlet_activity_rate",
    "close_rate",
    "premium_per_sale",
    "agents_on_roster",
    "active_agents",
    "agent_activity_rate",
    "premium_target",
    "premium_attainment",
    "outlet_activity_rate_target",
    "outlet_activity_rate_attainment",
    "planned_visits",
    "planned_consultations",
    "planned_sales",
    "plan_adherence_visits",
    "plan_adherence_consultations",
    "plan_adherence_sales",
    "time_progress",
    "pace_gap",
    "projected_attainment",
    "at_risk",
    "coaching_quadrant",
    // Beyond the contract: useful to analysts.
    "gross_premium",
    "refunds",
    "cancellations",
    "visits_target",
    "visits_attainment",
    "consultations_target",
    "consultations_attainment",
    "sales_target",
    "sales_attainment",
    "team_median_close_rate",
    // Activity needed (实收保费 = 活动量 × 签单率 worked backwards).
    "working_days_remaining",
    "premium_needed",
    "trailing_sales",
    "needed_rates_basis",
    "trailing_premium_per_sale",
    "trailing_close_rate",
    "sales_needed",
    "customers_needed",
    "sales_needed_per_working_day",
    "customers_needed_per_working_day",
    // Quota balance (平衡的责任额).
    "visits_share",
    "consultations_share",
    "sales_share",
    "planned_visits_share",
    "planned_consultations_share",
    "planned_sales_share",
    "norm_visits_share",
    "norm_consultations_share",
    "norm_sales_share",
    "balance_drift",
    "balance_drift_reason",
];

/// Digits of the KPI table's money: Decimal(38, 2) holds any sum of the ledger's 64-bit fen
/// (up to about 9.2e18 fen a cell, times any count of cells below 10^17).
pub const MONEY_PRECISION: usize = 38;

/// The money columns: Decimal(38, 2) CNY in the output, from the fen of `<name>_fen`.
const MONEY: [&str; 7] = [
    "premium",
    "premium_per_sale",
    "premium_target",
    "gross_premium",
    "refunds",
    "premium_needed",
    "trailing_premium_per_sale",
];

/// The contract's columns of the tallies and KPIs, in order, money as decimals.
pub(crate) fn contract_columns(kpis: &DataFrame) -> PolarsResult<DataFrame> {
    let columns = OUTPUT_COLUMNS
        .iter()
        .map(|name| {
            if MONEY.contains(name) {
                money(kpis.column(&format!("{name}_fen"))?, name)
            } else {
                Ok(kpis.column(name)?.clone())
            }
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(kpis.height(), columns)
}

/// Money as Decimal(38, 2) from fen.
fn money(fen: &Column, name: &str) -> PolarsResult<Column> {
    let fen = fen.cast(&DataType::Int128)?;
    Ok(fen
        .i128()?
        .clone()
        .into_decimal(MONEY_PRECISION, 2)?
        .into_series()
        .with_name(name.into())
        .into_column())
}
