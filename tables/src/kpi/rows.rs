//! KPI rows as JSON objects keyed by the columns' names: the form the dashboard serves them
//! in, read from either engine.

use std::path::Path;

use polars::prelude::*;
use serde_json::{Map, Value, json};

use super::KpiTableError;

/// One KPI row as JSON, keyed by the column names of [`KPI_COLUMNS`](super::KPI_COLUMNS):
/// money as decimal text, dates as `YYYY-MM-DD`, ratios as numbers, nulls as null.
pub type KpiRow = Map<String, Value>;

fn json_value(value: AnyValue<'_>) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(b),
        AnyValue::Int64(v) => json!(v),
        AnyValue::Int32(v) => json!(v),
        AnyValue::UInt32(v) => json!(v),
        AnyValue::UInt64(v) => json!(v),
        AnyValue::Float64(v) if v.is_finite() => json!(v),
        AnyValue::Float64(_) => Value::Null,
        AnyValue::String(s) => Value::String(s.to_owned()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        other => Value::String(other.to_string()),
    }
}

/// The rows of a KPI table as JSON objects keyed by column name.
pub fn frame_rows(frame: &DataFrame) -> PolarsResult<Vec<KpiRow>> {
    let names: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let columns = frame.columns();
    let mut rows = Vec::with_capacity(frame.height());
    for i in 0..frame.height() {
        let mut row = Map::new();
        for (name, column) in names.iter().zip(columns) {
            row.insert(name.clone(), json_value(column.get(i)?));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The *will* a coaching quadrant was judged on (`coaching_quadrant`, agent month rows): the
/// visit plan adherence, or the consultation plan adherence when visits were not planned;
/// null when neither was planned.
pub fn coaching_will(row: &KpiRow) -> Value {
    row.get("plan_adherence_visits")
        .filter(|value| !value.is_null())
        .or_else(|| row.get("plan_adherence_consultations"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The rows of the KPI file at `path`; with `columns`, only those columns.
pub fn read_file(path: &Path, columns: Option<&[&str]>) -> Result<Vec<KpiRow>, KpiTableError> {
    let read_error = |message: String| KpiTableError::Read {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| read_error(e.to_string()))?;
    let frame = ParquetReader::new(file)
        .with_columns(columns.map(|names| names.iter().map(|c| (*c).to_owned()).collect()))
        .finish()
        .map_err(|e| read_error(e.to_string()))?;
    frame_rows(&frame).map_err(|e| read_error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpi::write_parquet;

    #[test]
    fn a_file_reads_back_as_json_rows_with_nulls_and_decimals() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kpi.parquet");
        let premium: Int128Chunked = [Some(123_456_i128), Some(-5)].into_iter().collect();
        let mut frame = DataFrame::new(
            2,
            vec![
                Column::new("scope".into(), ["agent", "team"]),
                Column::new("close_rate".into(), [Some(0.25), None]),
                Column::new("at_risk".into(), [Some(true), None]),
                premium
                    .into_decimal(crate::kpi::MONEY_PRECISION, 2)
                    .expect("decimal")
                    .into_series()
                    .with_name("premium".into())
                    .into_column(),
            ],
        )
        .expect("frame");
        write_parquet(&mut frame, &path).expect("write");
        let rows = read_file(&path, None).expect("read");
        assert_eq!(
            Value::Array(rows.into_iter().map(Value::Object).collect()),
            json!([
                {"scope": "agent", "close_rate": 0.25, "at_risk": true, "premium": "1234.56"},
                {"scope": "team", "close_rate": null, "at_risk": null, "premium": "-0.05"},
            ])
        );
        let rows = read_file(&path, Some(&["scope"])).expect("read");
        assert_eq!(
            rows[1],
            json!({"scope": "team"})
                .as_object()
                .cloned()
                .expect("object")
        );
    }

    #[test]
    fn the_will_is_visit_adherence_else_consultation_adherence() {
        let row = |value: Value| value.as_object().cloned().expect("object");
        let both = row(json!({"plan_adherence_visits": 0.5, "plan_adherence_consultations": 0.9}));
        assert_eq!(coaching_will(&both), json!(0.5));
        let no_visits =
            row(json!({"plan_adherence_visits": null, "plan_adherence_consultations": 0.9}));
        assert_eq!(coaching_will(&no_visits), json!(0.9));
        assert_eq!(coaching_will(&row(json!({"scope": "agent"}))), Value::Null);
    }
}
