//! What the outlet job reads from the ledgers, from the embedded store
//! ([`SqliteOutletSource`]) or ClickHouse ([`ClickHouseOutletSource`]), with the same live
//! rows, window and order.

use std::path::{Path, PathBuf};

use aqs_schemas::WorkingCalendar;
use aqs_warehouse::{BlockingClient, ClickHouseConfig};
use chrono::NaiveDate;
use clickhouse::Row;
use serde::Deserialize;

use crate::ledgers::sqlite::live_rows;
use crate::ledgers::window::{Interval, SourceError, Team, calendar_from_rows};
use crate::ledgers::{
    AgentOutletDayRow, AssignmentRow, CalendarDayRow, LIVE_ACTIVITY, LedgerRow, OutletRow,
    RosterRow, TeamRow,
};

/// One agent's month at one outlet (the live rows of `ledger_agent_outlet_day` of the month,
/// added up), with what the outlet table counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutletMonth {
    pub outlet_id: String,
    /// The month's first day.
    pub month: NaiveDate,
    pub agent_id: String,
    pub visits: i64,
    pub consultations: i64,
    pub customers_consulted: i64,
    pub sales: i64,
    /// Gross premium of the sales, in fen.
    pub premium_fen: i128,
    /// Refunds of the cancellations (of sales at this outlet) dated in the month, in fen.
    pub refunds_fen: i128,
    /// The agent's first day with a sale at the outlet in the month.
    pub first_sale: Option<NaiveDate>,
    /// The agent's last day with a visit to the outlet in the month.
    pub last_visit: Option<NaiveDate>,
}

/// An outlet's premium and refunds over a range of dates (the months a grade rests on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutletPremium {
    pub outlet_id: String,
    pub premium_fen: i128,
    pub refunds_fen: i128,
}

/// The outlets' premium over `first..=last`, ordered by outlet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePremiums {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub outlets: Vec<OutletPremium>,
}

/// What an outlet's history before the window holds: its first day with a sale and its
/// latest day with a visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutletHistory {
    pub outlet_id: String,
    pub first_sale: Option<NaiveDate>,
    pub last_visit: Option<NaiveDate>,
}

/// A registered outlet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutletInfo {
    pub outlet_id: String,
    pub bank: String,
    pub name: String,
}

/// Everything the outlet job reads for a window of business dates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutletLedgerData {
    /// Activity at outlets dated in the window, per outlet, month and agent, in that order.
    pub activity: Vec<OutletMonth>,
    /// Per outlet with any visit or sale before the window: its first sale and last visit
    /// there, ordered by outlet.
    pub history: Vec<OutletHistory>,
    /// Per range of dates asked for (the months grades rest on), each outlet's premium.
    pub premiums: Vec<RangePremiums>,
    /// Every live assignment starting on or before the window's last day (an outlet never
    /// visited waits from its first one), ordered by outlet, agent and start.
    pub assignments: Vec<Interval>,
    /// Every live roster interval starting on or before the window's last day.
    pub roster: Vec<Interval>,
    /// Every live team definition, ordered by team then effective date.
    pub teams: Vec<Team>,
    /// Every registered outlet, ordered by id.
    pub outlets: Vec<OutletInfo>,
    /// The working-day calendar of the ledger.
    pub calendar: WorkingCalendar,
}

/// Where the outlet job reads the ledgers from.
pub trait OutletSource {
    /// The activity dated `first..=last` per outlet, month and agent, the history before
    /// `first`, each outlet's premium over each of `ranges`, and the assignments, roster,
    /// teams, outlets and calendar.
    fn load_outlets(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        ranges: &[(NaiveDate, NaiveDate)],
    ) -> Result<OutletLedgerData, SourceError>;
}

/// The outlet days the history needs: those with a visit or a sale.
const VISIT_OR_SALE: &str = "(visits != 0 OR sales != 0)";

fn interval(agent_id: String, key: String, from: NaiveDate, to: Option<NaiveDate>) -> Interval {
    Interval {
        agent_id,
        key,
        from,
        to,
    }
}

fn sort_data(data: &mut OutletLedgerData, last: NaiveDate) {
    data.assignments.retain(|a| a.from <= last);
    data.roster.retain(|r| r.from <= last);
    data.assignments
        .sort_by(|a, b| (&a.key, &a.agent_id, a.from).cmp(&(&b.key, &b.agent_id, b.from)));
    data.roster
        .sort_by(|a, b| (&a.agent_id, a.from).cmp(&(&b.agent_id, b.from)));
    data.teams
        .sort_by(|a, b| (&a.team_id, a.effective_from).cmp(&(&b.team_id, b.effective_from)));
    data.outlets.sort_by(|a, b| a.outlet_id.cmp(&b.outlet_id));
}

/// The embedded ledger store written by the projector (`ledgers.db`).
#[derive(Debug, Clone)]
pub struct SqliteOutletSource {
    path: PathBuf,
}

impl SqliteOutletSource {
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
        }
    }

    fn wrap(&self, source: rusqlite::Error) -> SourceError {
        SourceError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}

/// One agent's days at one outlet in one month, added up as the rows come.
struct MonthRun {
    agent: String,
    outlet: String,
    /// `YYYY-MM`.
    month: String,
    /// Visits, consultations, customers consulted, sales.
    counts: [i64; 4],
    /// Premium and refunds, in fen.
    money: [i128; 2],
    first_sale: Option<String>,
    last_visit: Option<String>,
}

impl MonthRun {
    fn new(agent: &str, outlet: &str, date: &str) -> Self {
        Self {
            agent: agent.to_owned(),
            outlet: outlet.to_owned(),
            month: date[..7].to_owned(),
            counts: [0; 4],
            money: [0; 2],
            first_sale: None,
            last_visit: None,
        }
    }

    fn holds(&self, agent: &str, outlet: &str, date: &str) -> bool {
        self.month == date[..7] && self.outlet == outlet && self.agent == agent
    }

    fn add(&mut self, date: &str, counts: [i64; 4], money: [i128; 2]) {
        for (total, count) in self.counts.iter_mut().zip(counts) {
            *total += count;
        }
        for (total, fen) in self.money.iter_mut().zip(money) {
            *total += fen;
        }
        let [visits, _, _, sales] = counts;
        // The rows come in date order: the first sale is the first seen, the last visit the
        // last seen.
        if sales > 0 && self.first_sale.is_none() {
            self.first_sale = Some(date.to_owned());
        }
        if visits > 0 {
            self.last_visit = Some(date.to_owned());
        }
    }

    fn finish(self) -> Result<OutletMonth, SourceError> {
        let [visits, consultations, customers_consulted, sales] = self.counts;
        let [premium_fen, refunds_fen] = self.money;
        Ok(OutletMonth {
            month: parse_date(&format!("{}-01", self.month))?,
            outlet_id: self.outlet,
            agent_id: self.agent,
            visits,
            consultations,
            customers_consulted,
            sales,
            premium_fen,
            refunds_fen,
            first_sale: self.first_sale.as_deref().map(parse_date).transpose()?,
            last_visit: self.last_visit.as_deref().map(parse_date).transpose()?,
        })
    }
}

fn parse_date(text: &str) -> Result<NaiveDate, SourceError> {
    text.parse()
        .map_err(|_| SourceError::Malformed(format!("date {text:?}")))
}

impl OutletSource for SqliteOutletSource {
    fn load_outlets(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        ranges: &[(NaiveDate, NaiveDate)],
    ) -> Result<OutletLedgerData, SourceError> {
        let wrap = |e| self.wrap(e);
        let connection = crate::ledgers::sqlite::open_read_only(&self.path).map_err(wrap)?;
        let mut data = OutletLedgerData::default();
        let window = [first.to_string(), last.to_string()];
        // The rows in the store's key order (agent, outlet, date), added up in runs of one
        // agent, outlet and month: much cheaper than SQLite's GROUP BY. Dates are ISO text,
        // compared as text; the month is their first seven characters.
        let mut statement = connection
            .prepare(&format!(
                "SELECT agent_id, outlet_id, business_date, visits, consultations,
                        customers_consulted, sales, premium_fen, refunds_fen
                 FROM {} WHERE business_date BETWEEN ?1 AND ?2 AND {LIVE_ACTIVITY}
                 ORDER BY agent_id, outlet_id, business_date",
                AgentOutletDayRow::TABLE
            ))
            .map_err(wrap)?;
        let mut rows = statement.query(window).map_err(wrap)?;
        let mut run: Option<MonthRun> = None;
        while let Some(r) = rows.next().map_err(wrap)? {
            let text = |i| -> Result<&str, SourceError> {
                r.get_ref(i)
                    .and_then(|value| value.as_str().map_err(Into::into))
                    .map_err(wrap)
            };
            let c = |i| r.get::<_, i64>(i).map_err(wrap);
            let (agent, outlet, date) = (text(0)?, text(1)?, text(2)?);
            if date.len() != 10 || !date.is_ascii() {
                return Err(SourceError::Malformed(format!("date {date:?}")));
            }
            if !run
                .as_ref()
                .is_some_and(|run| run.holds(agent, outlet, date))
            {
                if let Some(done) = run.take() {
                    data.activity.push(done.finish()?);
                }
                run = Some(MonthRun::new(agent, outlet, date));
            }
            let current = run.as_mut().expect("a run");
            current.add(
                date,
                [c(3)?, c(4)?, c(5)?, c(6)?],
                [c(7)?.into(), c(8)?.into()],
            );
        }
        if let Some(done) = run.take() {
            data.activity.push(done.finish()?);
        }
        data.activity.sort_by(|a, b| {
            (&a.outlet_id, a.month, &a.agent_id).cmp(&(&b.outlet_id, b.month, &b.agent_id))
        });
        for &(range_first, range_last) in ranges {
            let mut statement = connection
                .prepare(&format!(
                    "SELECT outlet_id, SUM(premium_fen), SUM(refunds_fen)
                     FROM {} WHERE business_date BETWEEN ?1 AND ?2 AND {LIVE_ACTIVITY}
                     GROUP BY outlet_id ORDER BY outlet_id",
                    AgentOutletDayRow::TABLE
                ))
                .map_err(wrap)?;
            let mut rows = statement
                .query([range_first.to_string(), range_last.to_string()])
                .map_err(wrap)?;
            let mut outlets = Vec::new();
            while let Some(r) = rows.next().map_err(wrap)? {
                outlets.push(OutletPremium {
                    outlet_id: r.get(0).map_err(wrap)?,
                    premium_fen: r.get::<_, i64>(1).map_err(wrap)?.into(),
                    refunds_fen: r.get::<_, i64>(2).map_err(wrap)?.into(),
                });
            }
            data.premiums.push(RangePremiums {
                first: range_first,
                last: range_last,
                outlets,
            });
        }
        let mut statement = connection
            .prepare(&format!(
                "SELECT outlet_id,
                        MIN(CASE WHEN sales > 0 THEN business_date END),
                        MAX(CASE WHEN visits > 0 THEN business_date END)
                 FROM {} WHERE business_date < ?1 AND {VISIT_OR_SALE}
                 GROUP BY outlet_id ORDER BY outlet_id",
                AgentOutletDayRow::TABLE
            ))
            .map_err(wrap)?;
        let mut rows = statement.query([first.to_string()]).map_err(wrap)?;
        while let Some(r) = rows.next().map_err(wrap)? {
            let optional = |i| -> Result<Option<NaiveDate>, SourceError> {
                r.get::<_, Option<String>>(i)
                    .map_err(wrap)?
                    .map(|text| parse_date(&text))
                    .transpose()
            };
            data.history.push(OutletHistory {
                outlet_id: r.get(0).map_err(wrap)?,
                first_sale: optional(1)?,
                last_visit: optional(2)?,
            });
        }
        data.assignments = live_rows::<AssignmentRow>(&connection)
            .map_err(wrap)?
            .into_iter()
            .map(|r| interval(r.agent_id, r.outlet_id, r.valid_from, r.valid_to))
            .collect();
        data.roster = live_rows::<RosterRow>(&connection)
            .map_err(wrap)?
            .into_iter()
            .map(|r| interval(r.agent_id, r.team_id, r.valid_from, r.valid_to))
            .collect();
        data.teams = live_rows::<TeamRow>(&connection)
            .map_err(wrap)?
            .into_iter()
            .map(|r| Team {
                team_id: r.team_id,
                effective_from: r.effective_from,
                branch_id: r.branch_id,
                region_id: r.region_id,
            })
            .collect();
        data.outlets = live_rows::<OutletRow>(&connection)
            .map_err(wrap)?
            .into_iter()
            .map(|r| OutletInfo {
                outlet_id: r.outlet_id,
                bank: r.bank,
                name: r.name,
            })
            .collect();
        data.calendar = calendar_from_rows(
            live_rows::<CalendarDayRow>(&connection)
                .map_err(wrap)?
                .into_iter()
                .map(|r| (r.business_date, r.kind)),
        )?;
        sort_data(&mut data, last);
        Ok(data)
    }
}

/// The ledgers in ClickHouse, read with `FINAL` and the same live-row filters, window and
/// order as [`SqliteOutletSource`].
#[derive(Debug)]
pub struct ClickHouseOutletSource {
    client: BlockingClient,
}

/// The ledger tables the outlet job reads.
const OUTLET_LEDGER_TABLES: [&str; 6] = [
    AgentOutletDayRow::TABLE,
    AssignmentRow::TABLE,
    RosterRow::TABLE,
    TeamRow::TABLE,
    OutletRow::TABLE,
    CalendarDayRow::TABLE,
];

#[derive(Debug, Row, Deserialize)]
struct MonthRow {
    outlet_id: String,
    #[serde(with = "clickhouse::serde::chrono::date")]
    month: NaiveDate,
    agent_id: String,
    visits_sum: i64,
    consultations_sum: i64,
    customers_sum: i64,
    sales_sum: i64,
    premium_sum: i128,
    refunds_sum: i128,
    #[serde(with = "clickhouse::serde::chrono::date")]
    first_sale: NaiveDate,
    sale_days: u64,
    #[serde(with = "clickhouse::serde::chrono::date")]
    last_visit: NaiveDate,
    visit_days: u64,
}

#[derive(Debug, Row, Deserialize)]
struct PremiumRow {
    outlet_id: String,
    premium_sum: i128,
    refunds_sum: i128,
}

#[derive(Debug, Row, Deserialize)]
struct HistoryRow {
    outlet_id: String,
    #[serde(with = "clickhouse::serde::chrono::date")]
    first_sale: NaiveDate,
    sale_days: u64,
    #[serde(with = "clickhouse::serde::chrono::date")]
    last_visit: NaiveDate,
    visit_days: u64,
}

impl ClickHouseOutletSource {
    /// Connects to the configured database and checks that the ledger tables are there.
    pub fn connect(config: &ClickHouseConfig) -> Result<Self, SourceError> {
        Ok(Self {
            client: BlockingClient::connect(config, &OUTLET_LEDGER_TABLES)?,
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
        crate::ledgers::window::clickhouse::fetch_rows(&self.client, table, sql, binds)
    }

    fn live<T: LedgerRow>(&self) -> Result<Vec<T>, SourceError> {
        self.fetch(
            T::TABLE,
            &format!(
                "SELECT {} FROM {} FINAL WHERE {} ORDER BY {}",
                T::COLUMNS,
                T::TABLE,
                T::LIVE,
                T::KEY
            ),
            &[],
        )
    }
}

impl OutletSource for ClickHouseOutletSource {
    fn load_outlets(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        ranges: &[(NaiveDate, NaiveDate)],
    ) -> Result<OutletLedgerData, SourceError> {
        let mut data = OutletLedgerData::default();
        // Money summed as Decimal(38, 0): ClickHouse's sum of Int64 wraps without a word. The
        // -If aggregates give the type's zero (1970-01-01) where no row matches: the counts
        // say whether there was one. Aliases unlike the columns: in ClickHouse an alias
        // would replace its column in the other aggregates.
        let rows: Vec<MonthRow> = self.fetch(
            AgentOutletDayRow::TABLE,
            &format!(
                "SELECT outlet_id, toStartOfMonth(business_date) AS month, agent_id,
                        sum(visits) AS visits_sum, sum(consultations) AS consultations_sum,
                        sum(customers_consulted) AS customers_sum, sum(sales) AS sales_sum,
                        sum(toDecimal128(premium_fen, 0)) AS premium_sum,
                        sum(toDecimal128(refunds_fen, 0)) AS refunds_sum,
                        minIf(business_date, sales > 0) AS first_sale,
                        countIf(sales > 0) AS sale_days,
                        maxIf(business_date, visits > 0) AS last_visit,
                        countIf(visits > 0) AS visit_days
                 FROM {} FINAL
                 WHERE business_date BETWEEN toDate(?) AND toDate(?) AND {LIVE_ACTIVITY}
                 GROUP BY outlet_id, month, agent_id
                 ORDER BY outlet_id, month, agent_id",
                AgentOutletDayRow::TABLE
            ),
            &[first.to_string(), last.to_string()],
        )?;
        data.activity = rows
            .into_iter()
            .map(|r| OutletMonth {
                outlet_id: r.outlet_id,
                month: r.month,
                agent_id: r.agent_id,
                visits: r.visits_sum,
                consultations: r.consultations_sum,
                customers_consulted: r.customers_sum,
                sales: r.sales_sum,
                premium_fen: r.premium_sum,
                refunds_fen: r.refunds_sum,
                first_sale: (r.sale_days > 0).then_some(r.first_sale),
                last_visit: (r.visit_days > 0).then_some(r.last_visit),
            })
            .collect();
        for &(range_first, range_last) in ranges {
            let outlets: Vec<PremiumRow> = self.fetch(
                AgentOutletDayRow::TABLE,
                &format!(
                    "SELECT outlet_id, sum(toDecimal128(premium_fen, 0)) AS premium_sum,
                            sum(toDecimal128(refunds_fen, 0)) AS refunds_sum
                     FROM {} FINAL
                     WHERE business_date BETWEEN toDate(?) AND toDate(?) AND {LIVE_ACTIVITY}
                     GROUP BY outlet_id ORDER BY outlet_id",
                    AgentOutletDayRow::TABLE
                ),
                &[range_first.to_string(), range_last.to_string()],
            )?;
            data.premiums.push(RangePremiums {
                first: range_first,
                last: range_last,
                outlets: outlets
                    .into_iter()
                    .map(|r| OutletPremium {
                        outlet_id: r.outlet_id,
                        premium_fen: r.premium_sum,
                        refunds_fen: r.refunds_sum,
                    })
                    .collect(),
            });
        }
        let rows: Vec<HistoryRow> = self.fetch(
            AgentOutletDayRow::TABLE,
            &format!(
                "SELECT outlet_id,
                        minIf(business_date, sales > 0) AS first_sale,
                        countIf(sales > 0) AS sale_days,
                        maxIf(business_date, visits > 0) AS last_visit,
                        countIf(visits > 0) AS visit_days
                 FROM {} FINAL WHERE business_date < toDate(?) AND {VISIT_OR_SALE}
                 GROUP BY outlet_id ORDER BY outlet_id",
                AgentOutletDayRow::TABLE
            ),
            &[first.to_string()],
        )?;
        data.history = rows
            .into_iter()
            .map(|r| OutletHistory {
                outlet_id: r.outlet_id,
                first_sale: (r.sale_days > 0).then_some(r.first_sale),
                last_visit: (r.visit_days > 0).then_some(r.last_visit),
            })
            .collect();
        data.assignments = self
            .live::<AssignmentRow>()?
            .into_iter()
            .map(|r| interval(r.agent_id, r.outlet_id, r.valid_from, r.valid_to))
            .collect();
        data.roster = self
            .live::<RosterRow>()?
            .into_iter()
            .map(|r| interval(r.agent_id, r.team_id, r.valid_from, r.valid_to))
            .collect();
        data.teams = self
            .live::<TeamRow>()?
            .into_iter()
            .map(|r| Team {
                team_id: r.team_id,
                effective_from: r.effective_from,
                branch_id: r.branch_id,
                region_id: r.region_id,
            })
            .collect();
        data.outlets = self
            .live::<OutletRow>()?
            .into_iter()
            .map(|r| OutletInfo {
                outlet_id: r.outlet_id,
                bank: r.bank,
                name: r.name,
            })
            .collect();
        data.calendar = calendar_from_rows(
            self.live::<CalendarDayRow>()?
                .into_iter()
                .map(|r| (r.business_date, r.kind)),
        )?;
        sort_data(&mut data, last);
        Ok(data)
    }
}
