//! The cells of a table built row by row (the outlet and supervisor tables) and the typed
//! column they become, as the contract types it ([`KpiColumnType`]): money as
//! Decimal(38, 2), dates as polars dates.

use aqs_tables::kpi::{KpiColumnType, MONEY_PRECISION};
use chrono::NaiveDate;
use polars::prelude::*;

use crate::periods::day_number;

/// One cell of a row, before it becomes a column.
pub(crate) enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Float(Option<f64>),
    Date(Option<NaiveDate>),
    /// Fen.
    Money(Option<i128>),
    Flag(Option<bool>),
}

/// The column `name` of type `kind` made of `cells`; a cell of another kind than the
/// column's is a mistake in the table's code.
pub(crate) fn column(
    name: &str,
    kind: KpiColumnType,
    cells: impl Iterator<Item = Cell>,
) -> PolarsResult<Column> {
    fn of<T>(
        name: &str,
        what: &str,
        cells: impl Iterator<Item = Cell>,
        pick: fn(Cell) -> Option<T>,
    ) -> Vec<T> {
        cells
            .map(|cell| pick(cell).unwrap_or_else(|| unreachable!("{name} is {what}")))
            .collect()
    }
    Ok(match kind {
        KpiColumnType::Text | KpiColumnType::OptionalText => Column::new(
            name.into(),
            of(name, "text", cells, |c| match c {
                Cell::Text(v) => Some(v),
                _ => None,
            }),
        ),
        KpiColumnType::Int | KpiColumnType::OptionalInt => Column::new(
            name.into(),
            of(name, "a count", cells, |c| match c {
                Cell::Int(v) => Some(v),
                _ => None,
            }),
        ),
        KpiColumnType::OptionalFloat => Column::new(
            name.into(),
            of(name, "a ratio", cells, |c| match c {
                Cell::Float(v) => Some(v),
                _ => None,
            }),
        ),
        KpiColumnType::Date | KpiColumnType::OptionalDate => Column::new(
            name.into(),
            of(name, "a date", cells, |c| match c {
                Cell::Date(v) => Some(v.map(day_number)),
                _ => None,
            }),
        )
        .cast(&DataType::Date)?,
        KpiColumnType::Money | KpiColumnType::OptionalMoney => {
            let fen: Int128Chunked = of(name, "money", cells, |c| match c {
                Cell::Money(v) => Some(v),
                _ => None,
            })
            .into_iter()
            .collect();
            fen.into_decimal(MONEY_PRECISION, 2)?
                .into_series()
                .with_name(name.into())
                .into_column()
        }
        KpiColumnType::OptionalFlag => Column::new(
            name.into(),
            of(name, "a flag", cells, |c| match c {
                Cell::Flag(v) => Some(v),
                _ => None,
            }),
        ),
    })
}
