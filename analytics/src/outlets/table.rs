//! The outlet rows as the contract's columns (`aqs_tables::outlets::OUTLET_COLUMNS`), in
//! order, money as Decimal(38, 2).

use aqs_tables::outlets::OUTLET_COLUMNS;
use chrono::NaiveDate;
use polars::prelude::*;

use super::rows::{Detail, OutletState, Row, Summary};
use crate::cells::{Cell, column};

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

/// How to read the column `column` of a row: chosen once per column, not per cell.
fn getter(column: &str) -> fn(&Row, NaiveDate) -> Cell {
    use Cell::*;
    match column {
        "scope" => |row, _| text_cell(Some(row.scope.name())),
        "scope_id" => |row, _| text_cell(Some(&row.scope_id)),
        "outlet_name" => |row, _| Text(outlet(row).and_then(|s| s.outlet_name.clone())),
        "bank" => |row, _| Text(outlet(row).and_then(|s| s.bank.clone())),
        "agent_id" => |row, _| Text(row.owner.agent_id.clone()),
        "team_id" => |row, _| Text(row.owner.team_id.clone()),
        "branch_id" => |row, _| Text(row.owner.branch_id.clone()),
        "region_id" => |row, _| Text(row.owner.region_id.clone()),
        "month" => |row, _| Date(Some(row.month)),
        "reference_date" => |row, _| Date(Some(row.reference_date)),
        "as_of" => |_, as_of| Date(Some(as_of)),
        "visits" => |row, _| Int(Some(row.activity.visits)),
        "consultations" => |row, _| Int(Some(row.activity.consultations)),
        "customers_consulted" => |row, _| Int(Some(row.activity.customers_consulted)),
        "sales" => |row, _| Int(Some(row.activity.sales)),
        "gross_premium" => |row, _| Money(Some(row.activity.gross_premium_fen)),
        "refunds" => |row, _| Money(Some(row.activity.refunds_fen)),
        "premium" => |row, _| Money(Some(row.activity.premium_fen())),
        "covering_agents" => |row, _| Int(outlet(row).map(|s| s.covering_agent_ids.len() as i64)),
        "covering_agent_ids" => |row, _| Text(outlet(row).map(|s| s.covering_agent_ids.join(","))),
        "assigned" => |row, _| Flag(outlet(row).map(|s| s.assigned)),
        "first_sale_of_month" => |row, _| Date(outlet(row).and_then(|s| s.first_sale_of_month)),
        "first_sale_date" => |row, _| Date(outlet(row).and_then(|s| s.first_sale_date)),
        "breaks_zero" => |row, _| Flag(outlet(row).map(|s| s.breaks_zero)),
        "last_visit_date" => |row, _| Date(outlet(row).and_then(|s| s.last_visit_date)),
        "days_since_last_visit" => |row, _| Int(outlet(row).and_then(|s| s.days_since_last_visit)),
        "working_days_without_visit" => {
            |row, _| Int(outlet(row).and_then(|s| s.working_days_without_visit))
        }
        "dormant" => |row, _| Flag(outlet(row).map(|s| s.dormant)),
        "grade" => |row, _| text_cell(outlet(row).map(|s| s.grade.name())),
        "grade_basis_premium" => |row, _| Money(outlet(row).map(|s| s.grade_basis_premium_fen)),
        "outlets" => |row, _| Int(summary(row).map(|t| t.outlets)),
        "grade_a_outlets" => |row, _| Int(summary(row).map(|t| t.by_grade[0])),
        "grade_b_outlets" => |row, _| Int(summary(row).map(|t| t.by_grade[1])),
        "grade_c_outlets" => |row, _| Int(summary(row).map(|t| t.by_grade[2])),
        "grade_d_outlets" => |row, _| Int(summary(row).map(|t| t.by_grade[3])),
        "outlets_with_sale" => |row, _| Int(summary(row).map(|t| t.outlets_with_sale)),
        "first_sale_outlets" => |row, _| Int(summary(row).map(|t| t.first_sale_outlets)),
        "dormant_outlets" => |row, _| Int(summary(row).map(|t| t.dormant_outlets)),
        other => unreachable!("no outlet column {other}"),
    }
}

fn text_cell(value: Option<&str>) -> Cell {
    Cell::Text(value.map(str::to_owned))
}

/// The table of `rows`, the contract's columns in order.
pub(crate) fn frame(rows: &[Row], as_of: NaiveDate) -> PolarsResult<DataFrame> {
    let mut columns = Vec::with_capacity(OUTLET_COLUMNS.len());
    for (name, kind) in OUTLET_COLUMNS {
        let get = getter(name);
        let cells = rows.iter().map(|row| get(row, as_of));
        columns.push(column(name, kind, cells)?);
    }
    DataFrame::new(rows.len(), columns)
}
