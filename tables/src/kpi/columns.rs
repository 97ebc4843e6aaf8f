//! The KPI table's columns: names, order and types, in every engine.

use polars::prelude::DataType;

/// The table of the KPIs in ClickHouse (migration `0003_kpi.sql`).
pub const KPI_TABLE: &str = "kpi";

/// How a KPI column is stored: its ClickHouse type, and the polars type of the job's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KpiColumnType {
    /// `String` / polars String without nulls.
    Text,
    /// `Nullable(String)`.
    OptionalText,
    /// `Date` / polars Date without nulls.
    Date,
    /// `Nullable(Date)`.
    OptionalDate,
    /// `Int64` / polars Int64 without nulls.
    Int,
    /// `Nullable(Int64)`.
    OptionalInt,
    /// `Decimal(38, 2)` / polars Decimal(38, 2) without nulls: any sum of the ledger's fen
    /// ([`MONEY_PRECISION`]).
    Money,
    /// `Nullable(Decimal(38, 2))`.
    OptionalMoney,
    /// `Nullable(Float64)` / polars Float64.
    OptionalFloat,
    /// `Nullable(UInt8)` (0 or 1) / polars Boolean.
    OptionalFlag,
}

impl KpiColumnType {
    /// The column's type in ClickHouse, as `system.columns` spells it.
    pub fn clickhouse(self) -> &'static str {
        match self {
            Self::Text => "String",
            Self::OptionalText => "Nullable(String)",
            Self::Date => "Date",
            Self::OptionalDate => "Nullable(Date)",
            Self::Int => "Int64",
            Self::OptionalInt => "Nullable(Int64)",
            Self::Money => "Decimal(38, 2)",
            Self::OptionalMoney => "Nullable(Decimal(38, 2))",
            Self::OptionalFloat => "Nullable(Float64)",
            Self::OptionalFlag => "Nullable(UInt8)",
        }
    }

    /// The column's type in the job's output.
    pub fn polars(self) -> DataType {
        match self {
            Self::Text | Self::OptionalText => DataType::String,
            Self::Date | Self::OptionalDate => DataType::Date,
            Self::Int | Self::OptionalInt => DataType::Int64,
            Self::Money | Self::OptionalMoney => DataType::Decimal(MONEY_PRECISION, 2),
            Self::OptionalFloat => DataType::Float64,
            Self::OptionalFlag => DataType::Boolean,
        }
    }

    /// Whether the column may hold nulls.
    pub fn nullable(self) -> bool {
        matches!(
            self,
            Self::OptionalText
                | Self::OptionalDate
                | Self::OptionalInt
                | Self::OptionalMoney
                | Self::OptionalFloat
                | Self::OptionalFlag
        )
    }
}

/// The KPI table's columns, in order, with their types: the output contract of the KPI job,
/// the columns of every KPI file, and those of the ClickHouse table `kpi` before
/// `computed_at`. A test holds this list and the migrations together.
pub const KPI_COLUMNS: [(&str, KpiColumnType); 70] = {
    use KpiColumnType::*;
    [
        ("scope", Text),
        ("scope_id", Text),
        ("team_id", OptionalText),
        ("branch_id", OptionalText),
        ("region_id", OptionalText),
        ("period", Text),
        ("period_start", Date),
        ("period_end", Date),
        ("as_of", Date),
        ("visits", Int),
        ("outlets_visited", Int),
        ("consultations", Int),
        ("customers_consulted", Int),
        ("customers_interested", Int),
        ("sales", Int),
        ("premium", Money),
        ("assigned_outlets", Int),
        ("visit_coverage", OptionalFloat),
        ("outlet_activity_rate", OptionalFloat),
        ("close_rate", OptionalFloat),
        ("premium_per_sale", OptionalMoney),
        ("agents_on_roster", OptionalInt),
        ("active_agents", OptionalInt),
        ("agent_activity_rate", OptionalFloat),
        ("premium_target", OptionalMoney),
        ("premium_attainment", OptionalFloat),
        ("outlet_activity_rate_target", OptionalFloat),
        ("outlet_activity_rate_attainment", OptionalFloat),
        ("planned_visits", OptionalFloat),
        ("planned_consultations", OptionalFloat),
        ("planned_sales", OptionalFloat),
        ("plan_adherence_visits", OptionalFloat),
        ("plan_adherence_consultations", OptionalFloat),
        ("plan_adherence_sales", OptionalFloat),
        ("time_progress", OptionalFloat),
        ("pace_gap", OptionalFloat),
        ("projected_attainment", OptionalFloat),
        ("at_risk", OptionalFlag),
        ("coaching_quadrant", OptionalText),
        ("gross_premium", Money),
        ("refunds", Money),
        ("cancellations", Int),
        ("visits_target", OptionalInt),
        ("visits_attainment", OptionalFloat),
        ("consultations_target", OptionalInt),
        ("consultations_attainment", OptionalFloat),
        ("sales_target", OptionalInt),
        ("sales_attainment", OptionalFloat),
        ("team_median_close_rate", OptionalFloat),
        // Activity needed (实收保费 = 活动量 × 签单率 worked backwards).
        ("working_days_remaining", OptionalInt),
        ("premium_needed", OptionalMoney),
        ("trailing_sales", OptionalInt),
        ("needed_rates_basis", OptionalText),
        ("trailing_premium_per_sale", OptionalMoney),
        ("trailing_close_rate", OptionalFloat),
        ("sales_needed", OptionalInt),
        ("customers_needed", OptionalInt),
        ("sales_needed_per_working_day", OptionalFloat),
        ("customers_needed_per_working_day", OptionalFloat),
        // Quota balance (平衡的责任额).
        ("visits_share", OptionalFloat),
        ("consultations_share", OptionalFloat),
        ("sales_share", OptionalFloat),
        ("planned_visits_share", OptionalFloat),
        ("planned_consultations_share", OptionalFloat),
        ("planned_sales_share", OptionalFloat),
        ("norm_visits_share", OptionalFloat),
        ("norm_consultations_share", OptionalFloat),
        ("norm_sales_share", OptionalFloat),
        ("balance_drift", OptionalFlag),
        ("balance_drift_reason", OptionalText),
    ]
};

/// Digits of the KPI table's money: Decimal(38, 2) holds any sum of the ledger's 64-bit fen
/// (up to about 9.2e18 fen a cell, times any count of cells below 10^17).
pub const MONEY_PRECISION: usize = 38;

/// The names of [`KPI_COLUMNS`], in order.
pub fn column_names() -> impl Iterator<Item = &'static str> {
    KPI_COLUMNS.iter().map(|(name, _)| *name)
}

/// Whether `name` is a column of the KPI table.
pub fn is_column(name: &str) -> bool {
    column_names().any(|column| column == name)
}
