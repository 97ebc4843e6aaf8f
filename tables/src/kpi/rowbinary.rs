//! Rows of the KPI-like tables (`kpi`, `outlet_kpi`) in ClickHouse's RowBinary format,
//! column by column as a table's list of columns and types says.

use polars::prelude::*;

use super::KpiTableError;
use super::columns::{KpiColumnType, MONEY_PRECISION};

pub(crate) fn column_error(column: &'static str, problem: impl Into<String>) -> KpiTableError {
    KpiTableError::Column {
        column,
        problem: problem.into(),
    }
}

/// The frame's rows in ClickHouse's RowBinary format, in the order of `columns`, each
/// followed by `computed_at`.
pub(crate) fn encode_rows(
    frame: &DataFrame,
    columns: &[(&'static str, KpiColumnType)],
    computed_at: u32,
) -> Result<Vec<u8>, KpiTableError> {
    let height = frame.height();
    let mut cells: Vec<Vec<Vec<u8>>> = vec![Vec::with_capacity(columns.len() + 1); height];
    for &(name, kind) in columns {
        let polars_error = |error: PolarsError| column_error(name, error.to_string());
        let column = frame.column(name).map_err(polars_error)?;
        let mut put = |row: usize, value: Option<Vec<u8>>| -> Result<(), KpiTableError> {
            let cell = &mut cells[row];
            match (value, kind.nullable()) {
                (Some(bytes), true) => {
                    let mut out = Vec::with_capacity(bytes.len() + 1);
                    out.push(0);
                    out.extend(bytes);
                    cell.push(out);
                }
                (Some(bytes), false) => cell.push(bytes),
                (None, true) => cell.push(vec![1]),
                (None, false) => {
                    return Err(column_error(
                        name,
                        format!("null in row {row}, not allowed"),
                    ));
                }
            }
            Ok(())
        };
        match kind {
            KpiColumnType::Text | KpiColumnType::OptionalText => {
                for (row, value) in column.str().map_err(polars_error)?.iter().enumerate() {
                    put(row, value.map(string_bytes))?;
                }
            }
            KpiColumnType::Date | KpiColumnType::OptionalDate => {
                for (row, value) in column
                    .date()
                    .map_err(polars_error)?
                    .physical()
                    .iter()
                    .enumerate()
                {
                    let day = value
                        .map(|days| {
                            u16::try_from(days)
                                .map(|d| d.to_le_bytes().to_vec())
                                .map_err(|_| {
                                    column_error(name, format!("date out of range in row {row}"))
                                })
                        })
                        .transpose()?;
                    put(row, day)?;
                }
            }
            KpiColumnType::Int | KpiColumnType::OptionalInt => {
                for (row, value) in column.i64().map_err(polars_error)?.iter().enumerate() {
                    put(row, value.map(|v| v.to_le_bytes().to_vec()))?;
                }
            }
            KpiColumnType::Money | KpiColumnType::OptionalMoney => {
                let decimal = column.decimal().map_err(polars_error)?;
                if decimal.scale() != 2 {
                    return Err(column_error(
                        name,
                        format!("scale {} instead of 2", decimal.scale()),
                    ));
                }
                // Decimal(38, 2) travels as its 128-bit integer of fen.
                for (row, value) in decimal.physical().iter().enumerate() {
                    put(row, value.map(|fen| fen.to_le_bytes().to_vec()))?;
                }
            }
            KpiColumnType::OptionalFloat => {
                for (row, value) in column.f64().map_err(polars_error)?.iter().enumerate() {
                    put(row, value.map(|v| v.to_le_bytes().to_vec()))?;
                }
            }
            KpiColumnType::OptionalFlag => {
                for (row, value) in column.bool().map_err(polars_error)?.iter().enumerate() {
                    put(row, value.map(|v| vec![u8::from(v)]))?;
                }
            }
        }
    }
    let mut out = Vec::new();
    for row in cells {
        for cell in row {
            out.extend(cell);
        }
        out.extend(computed_at.to_le_bytes());
    }
    Ok(out)
}

fn string_bytes(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    let mut length = text.len() as u64;
    loop {
        let byte = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(text.as_bytes());
    out
}

/// Reads RowBinary of a table's columns (no `computed_at`).
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, count: usize) -> Result<&[u8], KpiTableError> {
        let end = self.at + count;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| column_error("(row)", "the server's rows end early"))?;
        self.at = end;
        Ok(slice)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], KpiTableError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn is_null(&mut self) -> Result<bool, KpiTableError> {
        Ok(self.fixed::<1>()?[0] == 1)
    }

    fn string(&mut self) -> Result<String, KpiTableError> {
        let mut length = 0_u64;
        let mut shift = 0;
        loop {
            let byte = self.fixed::<1>()?[0];
            length |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let bytes = self.take(length as usize)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| column_error("(row)", "text is not UTF-8"))
    }
}

/// Column builders for [`decode_rows`].
enum Builder {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Date(Vec<Option<i32>>),
    Money(Vec<Option<i128>>),
    Float(Vec<Option<f64>>),
    Flag(Vec<Option<bool>>),
}

/// The frame of RowBinary rows of `columns`, each followed by `computed_at` when
/// `with_computed_at` (which is skipped).
pub(crate) fn decode_rows(
    bytes: &[u8],
    columns: &[(&'static str, KpiColumnType)],
    with_computed_at: bool,
) -> Result<DataFrame, KpiTableError> {
    let mut builders: Vec<Builder> = columns
        .iter()
        .map(|(_, kind)| match kind {
            KpiColumnType::Text | KpiColumnType::OptionalText => Builder::Text(Vec::new()),
            KpiColumnType::Int | KpiColumnType::OptionalInt => Builder::Int(Vec::new()),
            KpiColumnType::Date | KpiColumnType::OptionalDate => Builder::Date(Vec::new()),
            KpiColumnType::Money | KpiColumnType::OptionalMoney => Builder::Money(Vec::new()),
            KpiColumnType::OptionalFloat => Builder::Float(Vec::new()),
            KpiColumnType::OptionalFlag => Builder::Flag(Vec::new()),
        })
        .collect();
    let mut reader = Reader { bytes, at: 0 };
    let mut height = 0;
    while reader.at < bytes.len() {
        for ((_, kind), builder) in columns.iter().zip(&mut builders) {
            let null = kind.nullable() && reader.is_null()?;
            match builder {
                Builder::Text(values) => {
                    values.push(if null { None } else { Some(reader.string()?) });
                }
                Builder::Int(values) => values.push(if null {
                    None
                } else {
                    Some(i64::from_le_bytes(reader.fixed()?))
                }),
                Builder::Date(values) => values.push(if null {
                    None
                } else {
                    Some(i32::from(u16::from_le_bytes(reader.fixed()?)))
                }),
                Builder::Money(values) => values.push(if null {
                    None
                } else {
                    Some(i128::from_le_bytes(reader.fixed()?))
                }),
                Builder::Float(values) => values.push(if null {
                    None
                } else {
                    Some(f64::from_le_bytes(reader.fixed()?))
                }),
                Builder::Flag(values) => values.push(if null {
                    None
                } else {
                    Some(reader.fixed::<1>()?[0] != 0)
                }),
            }
        }
        if with_computed_at {
            reader.fixed::<4>()?;
        }
        height += 1;
    }
    let mut frame_columns = Vec::with_capacity(columns.len());
    for ((name, kind), builder) in columns.iter().zip(builders) {
        let polars_error = |error: PolarsError| column_error(name, error.to_string());
        let column = match builder {
            Builder::Text(values) => Column::new((*name).into(), values),
            Builder::Int(values) => Column::new((*name).into(), values),
            Builder::Float(values) => Column::new((*name).into(), values),
            Builder::Flag(values) => Column::new((*name).into(), values),
            Builder::Date(values) => Column::new((*name).into(), values)
                .cast(&DataType::Date)
                .map_err(polars_error)?,
            Builder::Money(values) => {
                let chunked: Int128Chunked = values.into_iter().collect();
                chunked
                    .into_decimal(MONEY_PRECISION, 2)
                    .map_err(polars_error)?
                    .into_series()
                    .with_name((*name).into())
                    .into_column()
            }
        };
        debug_assert_eq!(column.dtype(), &kind.polars());
        frame_columns.push(column);
    }
    DataFrame::new(height, frame_columns)
        .map_err(|error| column_error("(frame)", error.to_string()))
}
