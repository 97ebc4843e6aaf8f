//! The output: the KPI table's columns (`aqs_tables::kpi::KPI_COLUMNS`) in order, money as
//! decimals.

use std::borrow::Cow;

use aqs_tables::kpi::{KPI_COLUMNS, KpiColumnType, MONEY_PRECISION};
use polars::prelude::*;

/// The money columns: Decimal(38, 2) CNY in the output, from the fen of `<name>_fen`.
fn is_money(kind: KpiColumnType) -> bool {
    matches!(kind, KpiColumnType::Money | KpiColumnType::OptionalMoney)
}

/// The column of the tallies and KPIs a contract column is made from: money from its
/// `<name>_fen`, the others from the column of the same name.
fn source_column(name: &'static str, kind: KpiColumnType) -> Cow<'static, str> {
    if is_money(kind) {
        Cow::Owned(format!("{name}_fen"))
    } else {
        Cow::Borrowed(name)
    }
}

/// Whether a column of the tallies and KPIs becomes a column of the contract; the others
/// are let go once the KPIs that use them are computed.
pub(crate) fn is_contract_source(column: &str) -> bool {
    KPI_COLUMNS
        .iter()
        .any(|(name, kind)| source_column(name, *kind) == column)
}

/// The contract's columns of the tallies and KPIs, in order, money as decimals.
pub(crate) fn contract_columns(kpis: &DataFrame) -> PolarsResult<DataFrame> {
    let columns = KPI_COLUMNS
        .iter()
        .map(|(name, kind)| {
            let source = kpis.column(&source_column(name, *kind))?;
            if is_money(*kind) {
                money(source, name)
            } else {
                Ok(source.clone())
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
