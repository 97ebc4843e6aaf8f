//! The KPI job's window read from the ledger tables in ClickHouse.
//!
//! Synchronous, like the rest of the job: each value owns a small runtime to drive its
//! client, so none may be used from inside an async context.

use crate::ledgers::{
    AgentDayRow, AgentOutletDayRow, AssignmentRow, CalendarDayRow, LIVE, LIVE_ACTIVITY, LedgerRow,
    PlanRow, RosterRow, TargetRow, TeamRow,
};
use aqs_schemas::{WorkingCalendar, YearMonth};
use aqs_warehouse::{BlockingClient, ClickHouseConfig};
use chrono::NaiveDate;
use clickhouse::Row;
use serde::Deserialize;

use super::{
    AgentDay, Interval, LedgerData, LedgerSource, OUTLET_DAYS_WITH_VISIT_OR_SALE, OutletDay, Plan,
    SourceError, Target, Team, scope_from_name,
};

/// The ledger tables the job reads.
const LEDGER_TABLES: [&str; 8] = [
    AgentDayRow::TABLE,
    AgentOutletDayRow::TABLE,
    PlanRow::TABLE,
    TargetRow::TABLE,
    RosterRow::TABLE,
    AssignmentRow::TABLE,
    TeamRow::TABLE,
    CalendarDayRow::TABLE,
];

/// The ledgers in ClickHouse, read with `FINAL` (newest version of every row) and the same
/// live-row filters, window and order as [`SqliteSource`](super::SqliteSource).
#[derive(Debug)]
pub struct ClickHouseSource {
    client: BlockingClient,
}

#[derive(Debug, Row, Deserialize)]
struct OutletDayRow {
    agent_id: String,
    outlet_id: String,
    #[serde(with = "clickhouse::serde::chrono::date")]
    business_date: NaiveDate,
    visits: i64,
    sales: i64,
}

#[derive(Debug, Row, Deserialize)]
struct DeclaredDayRow {
    #[serde(with = "clickhouse::serde::chrono::date")]
    business_date: NaiveDate,
    kind: String,
}

#[derive(Debug, Row, Deserialize)]
struct TeamParentsRow {
    team_id: String,
    #[serde(with = "clickhouse::serde::chrono::date")]
    effective_from: NaiveDate,
    branch_id: String,
    region_id: String,
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

impl ClickHouseSource {
    /// Connects to the configured database and checks that the ledger tables are there.
    pub fn connect(config: &ClickHouseConfig) -> Result<Self, SourceError> {
        Ok(Self {
            client: BlockingClient::connect(config, &LEDGER_TABLES)?,
        })
    }

    fn fetch<T>(
        &self,
        table: &'static str,
        sql: &str,
        binds: &[String],
    ) -> Result<Vec<T>, SourceError>
    where
        T: aqs_warehouse::clickhouse::RowOwned + aqs_warehouse::clickhouse::RowRead,
    {
        fetch_rows(&self.client, table, sql, binds)
    }
}

/// The rows of `sql` (reading `table`) with `binds` for its `?`s, in order.
pub(crate) fn fetch_rows<T>(
    client: &BlockingClient,
    table: &'static str,
    sql: &str,
    binds: &[String],
) -> Result<Vec<T>, SourceError>
where
    T: aqs_warehouse::clickhouse::RowOwned + aqs_warehouse::clickhouse::RowRead,
{
    let mut query = client.client().query(sql);
    for value in binds {
        query = query.bind(value.as_str());
    }
    client
        .run(query.fetch_all::<T>())
        .map_err(|source| SourceError::ClickHouse { table, source })
}

impl LedgerSource for ClickHouseSource {
    fn load_agent_days(
        &self,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<AgentDay>, SourceError> {
        let window = [first.to_string(), last.to_string()];
        let rows: Vec<AgentDayRow> = self.fetch(
            AgentDayRow::TABLE,
            &format!(
                "SELECT {} FROM {} FINAL
                 WHERE business_date BETWEEN toDate(?) AND toDate(?) AND {LIVE_ACTIVITY}
                 ORDER BY agent_id, business_date",
                AgentDayRow::COLUMNS,
                AgentDayRow::TABLE
            ),
            &window,
        )?;
        Ok(rows
            .into_iter()
            .map(|r| AgentDay {
                agent_id: r.agent_id.into(),
                date: r.business_date,
                team_id: non_empty(r.team_id).map(Into::into),
                branch_id: non_empty(r.branch_id).map(Into::into),
                region_id: non_empty(r.region_id).map(Into::into),
                visits: r.visits,
                consultations: r.consultations,
                customers_consulted: r.customers_consulted,
                customers_interested: r.customers_interested,
                sales: r.sales,
                premium_fen: r.premium_fen,
                cancellations: r.cancellations,
                refunds_fen: r.refunds_fen,
            })
            .collect())
    }

    fn load(&self, first: NaiveDate, last: NaiveDate) -> Result<LedgerData, SourceError> {
        let window = [first.to_string(), last.to_string()];
        let mut data = LedgerData {
            agent_days: self.load_agent_days(first, last)?,
            ..LedgerData::default()
        };

        let rows: Vec<OutletDayRow> = self.fetch(
            AgentOutletDayRow::TABLE,
            &format!(
                "SELECT agent_id, outlet_id, business_date, visits, sales FROM {} FINAL
                 WHERE business_date BETWEEN toDate(?) AND toDate(?) AND {OUTLET_DAYS_WITH_VISIT_OR_SALE}
                 ORDER BY agent_id, outlet_id, business_date",
                AgentOutletDayRow::TABLE
            ),
            &window,
        )?;
        data.outlet_days = rows
            .into_iter()
            .map(|r| OutletDay {
                agent_id: r.agent_id.into(),
                outlet_id: r.outlet_id.into(),
                date: r.business_date,
                visits: r.visits,
                sales: r.sales,
            })
            .collect();

        let rows: Vec<PlanRow> = self.fetch(
            PlanRow::TABLE,
            &format!(
                "SELECT {} FROM {} FINAL
                 WHERE {LIVE} AND period_start <= toDate(?) AND period_end >= toDate(?)
                 ORDER BY agent_id, period_start, period_end",
                PlanRow::COLUMNS,
                PlanRow::TABLE
            ),
            &[last.to_string(), first.to_string()],
        )?;
        data.plans = rows
            .into_iter()
            .map(|r| Plan {
                agent_id: r.agent_id,
                start: r.period_start,
                end: r.period_end,
                visits: r.visits.map(i64::from),
                consultations: r.consultations.map(i64::from),
                sales: r.sales.map(i64::from),
            })
            .collect();

        let rows: Vec<TargetRow> = self.fetch(
            TargetRow::TABLE,
            &format!(
                "SELECT {} FROM {} FINAL
                 WHERE {LIVE} AND month BETWEEN toDate(?) AND toDate(?)
                 ORDER BY scope, scope_id, month",
                TargetRow::COLUMNS,
                TargetRow::TABLE
            ),
            &[
                YearMonth::of(first).first_day().to_string(),
                YearMonth::of(last).first_day().to_string(),
            ],
        )?;
        for r in rows {
            data.targets.push(Target {
                scope: scope_from_name(&r.scope)?,
                scope_id: r.scope_id,
                month: YearMonth::of(r.month),
                premium_fen: r.premium_fen,
                outlet_activity_rate_bp: r.outlet_activity_rate_bp,
                visits: r.visits.map(i64::from),
                consultations: r.consultations.map(i64::from),
                sales: r.sales.map(i64::from),
            });
        }

        let overlapping = format!(
            "{LIVE} AND valid_from <= toDate(?) AND (isNull(valid_to) OR valid_to > toDate(?))"
        );
        let bounds = [last.to_string(), first.to_string()];
        let rows: Vec<RosterRow> = self.fetch(
            RosterRow::TABLE,
            &format!(
                "SELECT {} FROM {} FINAL WHERE {overlapping} ORDER BY agent_id, valid_from",
                RosterRow::COLUMNS,
                RosterRow::TABLE
            ),
            &bounds,
        )?;
        data.roster = rows
            .into_iter()
            .map(|r| Interval {
                agent_id: r.agent_id,
                key: r.team_id,
                from: r.valid_from,
                to: r.valid_to,
            })
            .collect();
        let rows: Vec<AssignmentRow> = self.fetch(
            AssignmentRow::TABLE,
            &format!(
                "SELECT {} FROM {} FINAL WHERE {overlapping} ORDER BY agent_id, outlet_id, valid_from",
                AssignmentRow::COLUMNS,
                AssignmentRow::TABLE
            ),
            &bounds,
        )?;
        data.assignments = rows
            .into_iter()
            .map(|r| Interval {
                agent_id: r.agent_id,
                key: r.outlet_id,
                from: r.valid_from,
                to: r.valid_to,
            })
            .collect();

        let rows: Vec<TeamParentsRow> = self.fetch(
            TeamRow::TABLE,
            &format!(
                "SELECT team_id, effective_from, branch_id, region_id FROM {} FINAL WHERE {} \
                 ORDER BY team_id, effective_from",
                TeamRow::TABLE,
                TeamRow::LIVE
            ),
            &[],
        )?;
        data.teams = rows
            .into_iter()
            .map(|r| Team {
                team_id: r.team_id,
                effective_from: r.effective_from,
                branch_id: r.branch_id,
                region_id: r.region_id,
            })
            .collect();
        data.calendar = self.load_calendar()?;
        Ok(data)
    }

    fn load_calendar(&self) -> Result<WorkingCalendar, SourceError> {
        let rows: Vec<DeclaredDayRow> = self.fetch(
            CalendarDayRow::TABLE,
            &format!(
                "SELECT business_date, kind FROM {} FINAL WHERE {LIVE} ORDER BY business_date",
                CalendarDayRow::TABLE
            ),
            &[],
        )?;
        super::calendar_from_rows(rows.into_iter().map(|r| (r.business_date, r.kind)))
    }
}
