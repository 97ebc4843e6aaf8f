//! The outlet rows as the contract's columns (`aqs_tables::outlets::OUTLET_COLUMNS`), in
//! order, money as Decimal(38, 2).

use aqs_tables::kpi::{KpiColumnType, MONEY_PRECISION};
use aqs_tables::outlets::OUTLET_COLUMNS;
use chrono::NaiveDate;
use polars::prelude::*;

use super::rows::{Detail, OutletState, Row, Summary};
use crate::periods::day_number;

/// One cell of a row, before it becomes a column.
enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Date(Option<NaiveDate>),
    Money(Option<i128>),
    Flag(Option<bool>),
}

fn outlet(row: &Row) -> Option<&OutletState> {
    match &row.detail {
        Detail::Outlet(state) => Some(state),
        Detail::Summary(_) => None,
    }
}

fn summary(row: &Row) -> Option<&Summary> {
    match &row.detail {
        Detail::Summary(summary) => Some(summary),
        Detail::Outlet(_) => None,
    }
}

/// The cell of `column` in `row`.
fn cell(row: &Row, column: &str, as_of: NaiveDate) -> Cell {
    use Cell::*;
    let state = outlet(row);
    let totals = summary(row);
    let text = |value: Option<&str>| Text(value.map(str::to_owned));
    match column {
        "scope" => text(Some(row.scope.name())),
        "scope_id" => text(Some(&row.scope_id)),
        "outlet_name" => Text(state.and_then(|s| s.outlet_name.clone())),
        "bank" => Text(state.and_then(|s| s.bank.clone())),
        "agent_id" => Text(row.owner.agent_id.clone()),
        "team_id" => Text(row.owner.team_id.clone()),
        "branch_id" => Text(row.owner.branch_id.clone()),
        "region_id" => Text(row.owner.region_id.clone()),
        "month" => Date(Some(row.month)),
        "reference_date" => Date(Some(row.reference_date)),
        "as_of" => Date(Some(as_of)),
        "visits" => Int(Some(row.activity.visits)),
        "consultations" => Int(Some(row.activity.consultations)),
        "customers_consulted" => Int(Some(row.activity.customers_consulted)),
        "sales" => Int(Some(row.activity.sales)),
        "gross_premium" => Money(Some(row.activity.gross_premium_fen)),
        "refunds" => Money(Some(row.activity.refunds_fen)),
        "premium" => Money(Some(row.activity.premium_fen())),
        "covering_agents" => Int(state.map(|s| s.covering_agent_ids.len() as i64)),
        "covering_agent_ids" => Text(state.map(|s| s.covering_agent_ids.join(","))),
        "assigned" => Flag(state.map(|s| s.assigned)),
        "first_sale_of_month" => Date(state.and_then(|s| s.first_sale_of_month)),
        "first_sale_date" => Date(state.and_then(|s| s.first_sale_date)),
        "breaks_zero" => Flag(state.map(|s| s.breaks_zero)),
        "last_visit_date" => Date(state.and_then(|s| s.last_visit_date)),
        "days_since_last_visit" => Int(state.and_then(|s| s.days_since_last_visit)),
        "working_days_without_visit" => Int(state.and_then(|s| s.working_days_without_visit)),
        "dormant" => Flag(state.map(|s| s.dormant)),
        "grade" => text(state.map(|s| s.grade.name())),
        "grade_basis_premium" => Money(state.map(|s| s.grade_basis_premium_fen)),
        "outlets" => Int(totals.map(|t| t.outlets)),
        "grade_a_outlets" => Int(totals.map(|t| t.by_grade[0])),
        "grade_b_outlets" => Int(totals.map(|t| t.by_grade[1])),
        "grade_c_outlets" => Int(totals.map(|t| t.by_grade[2])),
        "grade_d_outlets" => Int(totals.map(|t| t.by_grade[3])),
        "outlets_with_sale" => Int(totals.map(|t| t.outlets_with_sale)),
        "first_sale_outlets" => Int(totals.map(|t| t.first_sale_outlets)),
        "dormant_outlets" => Int(totals.map(|t| t.dormant_outlets)),
        other => unreachable!("no outlet column {other}"),
    }
}

/// The table of `rows`, the contract's columns in order.
pub(crate) fn frame(rows: &[Row], as_of: NaiveDate) -> PolarsResult<DataFrame> {
    let mut columns = Vec::with_capacity(OUTLET_COLUMNS.len());
    for (name, kind) in OUTLET_COLUMNS {
        let cells = rows.iter().map(|row| cell(row, name, as_of));
        let column = match kind {
            KpiColumnType::Text | KpiColumnType::OptionalText => Column::new(
                name.into(),
                cells
                    .map(|c| match c {
                        Cell::Text(v) => v,
                        _ => unreachable!("{name} is text"),
                    })
                    .collect::<Vec<_>>(),
            ),
            KpiColumnType::Int | KpiColumnType::OptionalInt => Column::new(
                name.into(),
                cells
                    .map(|c| match c {
                        Cell::Int(v) => v,
                        _ => unreachable!("{name} is a count"),
                    })
                    .collect::<Vec<_>>(),
            ),
            KpiColumnType::Date | KpiColumnType::OptionalDate => Column::new(
                name.into(),
                cells
                    .map(|c| match c {
                        Cell::Date(v) => v.map(day_number),
                        _ => unreachable!("{name} is a date"),
                    })
                    .collect::<Vec<_>>(),
            )
            .cast(&DataType::Date)?,
            KpiColumnType::Money | KpiColumnType::OptionalMoney => {
                let fen: Int128Chunked = cells
                    .map(|c| match c {
                        Cell::Money(v) => v,
                        _ => unreachable!("{name} is money"),
                    })
                    .collect();
                fen.into_decimal(MONEY_PRECISION, 2)?
                    .into_series()
                    .with_name(name.into())
                    .into_column()
            }
            KpiColumnType::OptionalFlag => Column::new(
                name.into(),
                cells
                    .map(|c| match c {
                        Cell::Flag(v) => v,
                        _ => unreachable!("{name} is a flag"),
                    })
                    .collect::<Vec<_>>(),
            ),
            KpiColumnType::OptionalFloat => {
                unreachable!("the outlet table has no ratio")
            }
        };
        columns.push(column);
    }
    DataFrame::new(rows.len(), columns)
}
