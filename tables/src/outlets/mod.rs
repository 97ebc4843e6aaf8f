//! The outlet table (`outlet_kpi`): one row per outlet × month as of a date, with summary
//! rows per team and branch (the output contract of `aqs-analytics`'s outlet job, defined
//! in analytics/README.md). Its columns and types ([`OUTLET_COLUMNS`]), what the job reads
//! for it from either ledger engine ([`source`]), and its two writers: a Parquet file of the
//! data folder (the KPI table's [`ParquetKpiSink`](crate::kpi::ParquetKpiSink) at the
//! outlet file's path) and the ClickHouse table ([`ClickHouseOutletSink`]).

pub mod source;

use aqs_warehouse::{BlockingClient, ClickHouseConfig};
use chrono::NaiveDate;
use polars::prelude::DataFrame;

use crate::kpi::clickhouse::{read_run, replace_run};
use crate::kpi::{KpiColumnType, KpiSink, KpiTableError};

/// The outlet table in ClickHouse (migration `0011_outlet_kpi.sql`).
pub const OUTLET_TABLE: &str = "outlet_kpi";

/// The outlet table's columns, in order, with their types: the outlet job's output, the
/// columns of every outlet file and those of `outlet_kpi` before `computed_at`.
pub const OUTLET_COLUMNS: [(&str, KpiColumnType); 38] = {
    use KpiColumnType::*;
    [
        ("scope", Text),
        ("scope_id", Text),
        ("outlet_name", OptionalText),
        ("bank", OptionalText),
        ("agent_id", OptionalText),
        ("team_id", OptionalText),
        ("branch_id", OptionalText),
        ("region_id", OptionalText),
        ("month", Date),
        ("reference_date", Date),
        ("as_of", Date),
        ("visits", Int),
        ("consultations", Int),
        ("customers_consulted", Int),
        ("sales", Int),
        ("gross_premium", Money),
        ("refunds", Money),
        ("premium", Money),
        ("covering_agents", OptionalInt),
        ("covering_agent_ids", OptionalText),
        ("assigned", OptionalFlag),
        ("first_sale_of_month", OptionalDate),
        ("first_sale_date", OptionalDate),
        ("breaks_zero", OptionalFlag),
        ("last_visit_date", OptionalDate),
        ("days_since_last_visit", OptionalInt),
        ("working_days_without_visit", OptionalInt),
        ("dormant", OptionalFlag),
        ("grade", OptionalText),
        ("grade_basis_premium", OptionalMoney),
        ("outlets", OptionalInt),
        ("grade_a_outlets", OptionalInt),
        ("grade_b_outlets", OptionalInt),
        ("grade_c_outlets", OptionalInt),
        ("grade_d_outlets", OptionalInt),
        ("outlets_with_sale", OptionalInt),
        ("first_sale_outlets", OptionalInt),
        ("dormant_outlets", OptionalInt),
    ]
};

/// The order of the rows a reader returns.
const ROW_ORDER: &str = "scope, scope_id, month";

/// Writes the outlet table to ClickHouse: a run for an as-of date replaces that date's rows
/// exactly, as [`ClickHouseKpiSink`](crate::kpi::ClickHouseKpiSink) does for `kpi`.
#[derive(Debug)]
pub struct ClickHouseOutletSink {
    client: BlockingClient,
}

impl ClickHouseOutletSink {
    /// Connects to the configured database and checks that `outlet_kpi` is there.
    pub fn connect(config: &ClickHouseConfig) -> Result<Self, KpiTableError> {
        Ok(Self {
            client: BlockingClient::connect(config, &[OUTLET_TABLE])?,
        })
    }
}

impl KpiSink for ClickHouseOutletSink {
    fn write(&mut self, table: &mut DataFrame, as_of: NaiveDate) -> Result<(), KpiTableError> {
        replace_run(&self.client, OUTLET_TABLE, &OUTLET_COLUMNS, table, as_of)
    }

    fn target(&self) -> String {
        format!("ClickHouse table {}.{OUTLET_TABLE}", self.client.database())
    }
}

/// When the outlet table's run as of `as_of` was written; `None` when the table holds no
/// such run.
pub fn run_written_at(
    client: &BlockingClient,
    as_of: NaiveDate,
) -> Result<Option<u32>, aqs_warehouse::clickhouse::error::Error> {
    crate::kpi::clickhouse::written_at(client, OUTLET_TABLE, as_of)
}

/// The outlet rows stored for `as_of` (newest with `FINAL`), as the job's output frame:
/// the same columns, types and order, sorted by scope, scope id and month.
pub fn read_outlets(
    config: &ClickHouseConfig,
    as_of: NaiveDate,
) -> Result<DataFrame, KpiTableError> {
    read_run(config, OUTLET_TABLE, &OUTLET_COLUMNS, ROW_ORDER, as_of)
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    use super::*;
    use crate::kpi::rowbinary::{decode_rows, encode_rows};

    #[test]
    fn the_migration_declares_every_column_with_its_type() {
        let sql = include_str!("../../../deploy/clickhouse/0011_outlet_kpi.sql");
        let declared = crate::kpi::clickhouse::created_columns(sql, "outlet_kpi");
        let mut expected: Vec<(String, String)> = OUTLET_COLUMNS
            .iter()
            .map(|(name, kind)| ((*name).to_owned(), kind.clickhouse().to_owned()))
            .collect();
        expected.push(("computed_at".to_owned(), "DateTime".to_owned()));
        assert_eq!(declared, expected);
    }

    #[test]
    fn optional_dates_survive_encoding_and_decoding() {
        let columns = [
            ("scope", KpiColumnType::Text),
            ("first_sale_date", KpiColumnType::OptionalDate),
        ];
        let frame = DataFrame::new(
            2,
            vec![
                Column::new("scope".into(), ["outlet", "team"]),
                Column::new("first_sale_date".into(), [Some(20_409_i32), None])
                    .cast(&DataType::Date)
                    .expect("date"),
            ],
        )
        .expect("frame");
        let bytes = encode_rows(&frame, &columns, 1_700_000_000).expect("encode");
        let back = decode_rows(&bytes, &columns, true).expect("decode");
        assert!(back.equals_missing(&frame), "{back}\n{frame}");
    }
}
