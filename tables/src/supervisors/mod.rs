//! The supervisor table (`supervisor_kpi`): one row per supervisor × period (day, ISO week,
//! month) as of a date, rolled up to branch and region, and one month row per agent with
//! what the agent received (the output contract of `aqs-analytics`'s supervisor job, defined
//! in analytics/README.md, "Supervisors"). Its columns and types ([`SUPERVISOR_COLUMNS`]),
//! what the job reads for it from either ledger engine ([`source`]), and its two writers:
//! a Parquet file of the data folder (the KPI table's
//! [`ParquetKpiSink`](crate::kpi::ParquetKpiSink) at the supervisor file's path) and the
//! ClickHouse table ([`ClickHouseSupervisorSink`]).

pub mod source;

use aqs_warehouse::{BlockingClient, ClickHouseConfig};
use chrono::NaiveDate;
use polars::prelude::DataFrame;

use crate::kpi::clickhouse::{read_run, replace_run};
use crate::kpi::{KpiColumnType, KpiSink, KpiTableError};

/// The supervisor table in ClickHouse (migration `0012_supervisor_facts.sql`).
pub const SUPERVISOR_TABLE: &str = "supervisor_kpi";

/// The supervisor table's columns, in order, with their types: the supervisor job's
/// output, the columns of every supervisor file and those of `supervisor_kpi` before
/// `computed_at`.
pub const SUPERVISOR_COLUMNS: [(&str, KpiColumnType); 46] = {
    use KpiColumnType::*;
    [
        ("scope", Text),
        ("scope_id", Text),
        ("supervisor_id", OptionalText),
        ("team_ids", OptionalText),
        ("branch_id", OptionalText),
        ("region_id", OptionalText),
        ("period", Text),
        ("period_start", Date),
        ("period_end", Date),
        ("reference_date", Date),
        ("as_of", Date),
        ("working_days", Int),
        ("weeks", Int),
        ("supervisors", OptionalInt),
        ("coaching_sessions", Int),
        ("agents_coached", OptionalInt),
        ("coaching_minutes", Int),
        ("coaching_target", OptionalFloat),
        ("coaching_attainment", OptionalFloat),
        ("accompanied_visits", Int),
        ("accompanied_visits_logged", Int),
        ("agents_accompanied", OptionalInt),
        ("accompanied_visits_target", OptionalFloat),
        ("accompanied_visits_attainment", OptionalFloat),
        ("morning_meetings", OptionalInt),
        ("evening_meetings", OptionalInt),
        ("weekly_meetings", OptionalInt),
        ("monthly_meetings", OptionalInt),
        ("weekly_meetings_target", OptionalFloat),
        ("weekly_meetings_attainment", OptionalFloat),
        ("team_agents", OptionalInt),
        ("agents_evaluated", OptionalInt),
        ("evaluated_share", OptionalFloat),
        ("evaluated_share_target", OptionalFloat),
        ("evaluation_attainment", OptionalFloat),
        ("measures_open", OptionalInt),
        ("measures_done", OptionalInt),
        ("measures_overdue", OptionalInt),
        ("agents_not_coached", OptionalInt),
        ("last_coached_date", OptionalDate),
        ("working_days_since_coached", OptionalInt),
        ("not_coached", OptionalFlag),
        ("evaluation_skill", OptionalText),
        ("evaluation_will", OptionalText),
        ("evaluated_by", OptionalText),
        ("open_measures", OptionalText),
    ]
};

/// The order of the rows a reader returns.
const ROW_ORDER: &str = "scope, scope_id, period, period_start";

/// Writes the supervisor table to ClickHouse: a run for an as-of date replaces that date's
/// rows exactly, as [`ClickHouseKpiSink`](crate::kpi::ClickHouseKpiSink) does for `kpi`.
#[derive(Debug)]
pub struct ClickHouseSupervisorSink {
    client: BlockingClient,
}

impl ClickHouseSupervisorSink {
    /// Connects to the configured database and checks that `supervisor_kpi` is there.
    pub fn connect(config: &ClickHouseConfig) -> Result<Self, KpiTableError> {
        Ok(Self {
            client: BlockingClient::connect(config, &[SUPERVISOR_TABLE])?,
        })
    }
}

impl KpiSink for ClickHouseSupervisorSink {
    fn write(&mut self, table: &mut DataFrame, as_of: NaiveDate) -> Result<(), KpiTableError> {
        replace_run(
            &self.client,
            SUPERVISOR_TABLE,
            &SUPERVISOR_COLUMNS,
            table,
            as_of,
        )
    }

    fn target(&self) -> String {
        format!(
            "ClickHouse table {}.{SUPERVISOR_TABLE}",
            self.client.database()
        )
    }
}

/// When the supervisor table's run as of `as_of` was written; `None` when the table holds
/// no such run.
pub fn run_written_at(
    client: &BlockingClient,
    as_of: NaiveDate,
) -> Result<Option<u32>, aqs_warehouse::clickhouse::error::Error> {
    crate::kpi::clickhouse::written_at(client, SUPERVISOR_TABLE, as_of)
}

/// The supervisor rows stored for `as_of` (newest with `FINAL`), as the job's output frame:
/// the same columns, types and order, sorted by scope, scope id, period and its start.
pub fn read_supervisor_table(
    config: &ClickHouseConfig,
    as_of: NaiveDate,
) -> Result<DataFrame, KpiTableError> {
    read_run(
        config,
        SUPERVISOR_TABLE,
        &SUPERVISOR_COLUMNS,
        ROW_ORDER,
        as_of,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migration_declares_every_column_with_its_type() {
        let sql = include_str!("../../../deploy/clickhouse/0012_supervisor_facts.sql");
        let declared = crate::kpi::clickhouse::created_columns(sql, SUPERVISOR_TABLE);
        let mut expected: Vec<(String, String)> = SUPERVISOR_COLUMNS
            .iter()
            .map(|(name, kind)| ((*name).to_owned(), kind.clickhouse().to_owned()))
            .collect();
        expected.push(("computed_at".to_owned(), "DateTime".to_owned()));
        assert_eq!(declared, expected);
    }
}
