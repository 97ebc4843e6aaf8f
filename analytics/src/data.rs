//! The ledger rows the KPI job reads, and the embedded store they come from.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aqs_schemas::YearMonth;
use aqs_schemas::event::Scope;
use chrono::NaiveDate;
use rusqlite::types::Type;
use rusqlite::{Connection, OpenFlags, Row, params};

/// An id of the high-volume ledger rows, shared by the rows that repeat it (an agent's
/// days, its team's tags) rather than allocated once per row.
pub type Id = Arc<str>;

/// Agent × business date, tagged with the agent's team, branch and region on that date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentDay {
    pub agent_id: Id,
    pub date: NaiveDate,
    pub team_id: Option<Id>,
    pub branch_id: Option<Id>,
    pub region_id: Option<Id>,
    pub visits: i64,
    pub consultations: i64,
    pub customers_consulted: i64,
    pub customers_interested: i64,
    pub sales: i64,
    /// Gross premium of the day's sales, in fen.
    pub premium_fen: i64,
    pub cancellations: i64,
    /// Refunds of the day's cancellations, in fen.
    pub refunds_fen: i64,
}

/// Agent × outlet × business date, reduced to what outlet KPIs need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutletDay {
    pub agent_id: Id,
    pub outlet_id: Id,
    pub date: NaiveDate,
    pub visits: i64,
    pub sales: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub agent_id: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub visits: Option<i64>,
    pub consultations: Option<i64>,
    pub sales: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scope: Scope,
    pub scope_id: String,
    pub month: YearMonth,
    pub premium_fen: Option<i64>,
    /// Target outlet activity rate in basis points (1/10000).
    pub outlet_activity_rate_bp: Option<i64>,
    pub visits: Option<i64>,
    pub consultations: Option<i64>,
    pub sales: Option<i64>,
}

/// An agent's membership of a team, or an outlet's assignment to an agent, from `from` to
/// the day before `to` (`None`: still running).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    pub agent_id: String,
    /// The team (roster) or the outlet (assignments).
    pub key: String,
    pub from: NaiveDate,
    pub to: Option<NaiveDate>,
}

impl Interval {
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.from <= date && self.to.is_none_or(|to| date < to)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub team_id: String,
    pub branch_id: String,
    pub region_id: String,
}

/// Everything the KPI job reads for a window of business dates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerData {
    pub agent_days: Vec<AgentDay>,
    pub outlet_days: Vec<OutletDay>,
    pub plans: Vec<Plan>,
    pub targets: Vec<Target>,
    pub roster: Vec<Interval>,
    pub assignments: Vec<Interval>,
    pub teams: Vec<Team>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("reading the ledger store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the ledger store holds a malformed value: {0}")]
    Malformed(String),
    #[error("ledger store unavailable: {0}")]
    Unavailable(String),
    #[error("ledger store in ClickHouse")]
    Connect(#[from] aqs_warehouse::ConnectError),
    #[error("reading the ledger table {table} from ClickHouse")]
    ClickHouse {
        table: &'static str,
        #[source]
        source: aqs_warehouse::clickhouse::error::Error,
    },
}

/// Where ledgers are read from.
pub trait LedgerSource {
    /// The rows whose dates fall in `first..=last` (intervals and plans overlapping it).
    fn load(&self, first: NaiveDate, last: NaiveDate) -> Result<LedgerData, SourceError>;
}

/// The embedded ledger store written by the projector (`ledgers.db`).
#[derive(Debug, Clone)]
pub struct SqliteSource {
    path: PathBuf,
}

impl SqliteSource {
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
        }
    }
}

fn date(text: &str) -> Result<NaiveDate, SourceError> {
    // The store writes ISO dates: reading the digits is much cheaper than the general
    // parser, which stays for anything else (and for the error).
    let bytes = text.as_bytes();
    if bytes.len() == 10 && bytes[4] == b'-' && bytes[7] == b'-' {
        let number = |digits: &[u8]| {
            digits.iter().try_fold(0_u32, |n, d| {
                d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
            })
        };
        if let (Some(year), Some(month), Some(day)) = (
            number(&bytes[..4]),
            number(&bytes[5..7]),
            number(&bytes[8..]),
        ) && let Some(date) = NaiveDate::from_ymd_opt(year as i32, month, day)
        {
            return Ok(date);
        }
    }
    text.parse()
        .map_err(|_| SourceError::Malformed(format!("date {text:?}")))
}

fn optional_date(text: Option<String>) -> Result<Option<NaiveDate>, SourceError> {
    text.map(|t| date(&t)).transpose()
}

pub(crate) fn scope_from_name(name: &str) -> Result<Scope, SourceError> {
    Scope::from_name(name).ok_or_else(|| SourceError::Malformed(format!("scope {name:?}")))
}

/// Shares an id between consecutive rows that carry it (the store returns rows in key
/// order, so an agent's rows, and mostly its tags and outlets, come one after another).
#[derive(Default)]
struct Repeated {
    last: Option<Id>,
}

impl Repeated {
    fn id(&mut self, text: &str) -> Id {
        match &self.last {
            Some(last) if **last == *text => last.clone(),
            _ => self.last.insert(text.into()).clone(),
        }
    }

    /// The id, or `None` for the empty text the store writes for "none".
    fn non_empty(&mut self, text: &str) -> Option<Id> {
        (!text.is_empty()).then(|| self.id(text))
    }
}

/// A text column read in place, for values parsed or shared right away.
fn text<'r>(row: &'r Row<'_>, index: usize) -> rusqlite::Result<&'r str> {
    row.get_ref(index)?
        .as_str()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(e)))
}

impl SqliteSource {
    fn wrap(&self, source: rusqlite::Error) -> SourceError {
        SourceError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn connect(&self) -> Result<Connection, SourceError> {
        // A connection is never shared between threads (rusqlite's `Connection` is not
        // `Sync`), so SQLite's per-call mutex is pure overhead on millions of column reads.
        Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| self.wrap(e))
    }

    fn agent_days(&self, window: [&str; 2]) -> Result<Vec<AgentDay>, SourceError> {
        let connection = self.connect()?;
        let wrap = |e| self.wrap(e);
        let mut statement = connection
            .prepare(
                "SELECT agent_id, business_date, team_id, branch_id, region_id, visits, consultations,
                        customers_consulted, customers_interested, sales, premium_fen, cancellations, refunds_fen
                 FROM ledger_agent_day WHERE business_date BETWEEN ?1 AND ?2
                   AND NOT (visits = 0 AND consultations = 0 AND sales = 0 AND cancellations = 0
                            AND customers_consulted = 0 AND premium_fen = 0 AND refunds_fen = 0)",
            )
            .map_err(wrap)?;
        let mut rows = statement.query(window).map_err(wrap)?;
        let mut agent_days = Vec::new();
        let [mut agents, mut teams, mut branches, mut regions] =
            [0, 1, 2, 3].map(|_| Repeated::default());
        while let Some(r) = rows.next().map_err(wrap)? {
            let c = |i| r.get::<_, i64>(i).map_err(wrap);
            let text = |i| text(r, i).map_err(wrap);
            agent_days.push(AgentDay {
                agent_id: agents.id(text(0)?),
                date: date(text(1)?)?,
                team_id: teams.non_empty(text(2)?),
                branch_id: branches.non_empty(text(3)?),
                region_id: regions.non_empty(text(4)?),
                visits: c(5)?,
                consultations: c(6)?,
                customers_consulted: c(7)?,
                customers_interested: c(8)?,
                sales: c(9)?,
                premium_fen: c(10)?,
                cancellations: c(11)?,
                refunds_fen: c(12)?,
            });
        }
        Ok(agent_days)
    }

    fn outlet_days(&self, window: [&str; 2]) -> Result<Vec<OutletDay>, SourceError> {
        let connection = self.connect()?;
        let wrap = |e| self.wrap(e);
        let mut statement = connection
            .prepare(
                "SELECT agent_id, outlet_id, business_date, visits, sales FROM ledger_agent_outlet_day
                 WHERE business_date BETWEEN ?1 AND ?2 AND (visits != 0 OR sales != 0)",
            )
            .map_err(wrap)?;
        let mut rows = statement.query(window).map_err(wrap)?;
        let mut outlet_days = Vec::new();
        let (mut agents, mut outlets) = (Repeated::default(), Repeated::default());
        while let Some(r) = rows.next().map_err(wrap)? {
            let text = |i| text(r, i).map_err(wrap);
            outlet_days.push(OutletDay {
                agent_id: agents.id(text(0)?),
                outlet_id: outlets.id(text(1)?),
                date: date(text(2)?)?,
                visits: r.get(3).map_err(wrap)?,
                sales: r.get(4).map_err(wrap)?,
            });
        }
        Ok(outlet_days)
    }
}

impl LedgerSource for SqliteSource {
    fn load(&self, first: NaiveDate, last: NaiveDate) -> Result<LedgerData, SourceError> {
        let wrap = |e| self.wrap(e);
        let (first_text, last_text) = (first.to_string(), last.to_string());
        let window = [first_text.as_str(), last_text.as_str()];
        // The two big tables are read side by side, each on a connection of its own.
        let (agent_days, outlet_days) = std::thread::scope(|scope| {
            let outlet_days = scope.spawn(|| self.outlet_days(window));
            let agent_days = self.agent_days(window);
            let outlet_days = outlet_days
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (agent_days, outlet_days)
        });
        let mut data = LedgerData {
            agent_days: agent_days?,
            outlet_days: outlet_days?,
            ..LedgerData::default()
        };
        let connection = self.connect()?;

        let mut statement = connection
            .prepare(
                "SELECT agent_id, period_start, period_end, visits, consultations, sales FROM plans
                 WHERE deleted = 0 AND period_start <= ?2 AND period_end >= ?1",
            )
            .map_err(wrap)?;
        let rows = statement
            .query_map(params![first_text, last_text], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .map_err(wrap)?;
        for row in rows {
            let (agent_id, start, end, visits, consultations, sales) = row.map_err(wrap)?;
            data.plans.push(Plan {
                agent_id,
                start: date(&start)?,
                end: date(&end)?,
                visits,
                consultations,
                sales,
            });
        }

        let mut statement = connection
            .prepare(
                "SELECT scope, scope_id, month, premium_fen, outlet_activity_rate_bp, visits, consultations, sales
                 FROM targets WHERE deleted = 0 AND month BETWEEN ?1 AND ?2",
            )
            .map_err(wrap)?;
        let (first_month, last_month) = (
            YearMonth::of(first).to_string(),
            YearMonth::of(last).to_string(),
        );
        let rows = statement
            .query_map(params![first_month, last_month], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .map_err(wrap)?;
        for row in rows {
            let (scope, scope_id, month, premium_fen, rate, visits, consultations, sales) =
                row.map_err(wrap)?;
            data.targets.push(Target {
                scope: scope_from_name(&scope)?,
                scope_id,
                month: month
                    .parse()
                    .map_err(|_| SourceError::Malformed(format!("month {month:?}")))?,
                premium_fen,
                outlet_activity_rate_bp: rate,
                visits,
                consultations,
                sales,
            });
        }

        for (table, key, target) in [("roster", "team_id", 0), ("assignments", "outlet_id", 1)] {
            let mut statement = connection
                .prepare(&format!(
                    "SELECT agent_id, {key}, valid_from, valid_to FROM {table}
                     WHERE deleted = 0 AND valid_from <= ?2 AND (valid_to IS NULL OR valid_to > ?1)"
                ))
                .map_err(wrap)?;
            let rows = statement
                .query_map(params![first_text, last_text], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })
                .map_err(wrap)?;
            for row in rows {
                let (agent_id, key, from, to) = row.map_err(wrap)?;
                let interval = Interval {
                    agent_id,
                    key,
                    from: date(&from)?,
                    to: optional_date(to)?,
                };
                if target == 0 {
                    data.roster.push(interval);
                } else {
                    data.assignments.push(interval);
                }
            }
        }

        let mut statement = connection
            .prepare("SELECT team_id, branch_id, region_id FROM teams")
            .map_err(wrap)?;
        let rows = statement
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(wrap)?;
        for row in rows {
            let (team_id, branch_id, region_id) = row.map_err(wrap)?;
            data.teams.push(Team {
                team_id,
                branch_id,
                region_id,
            });
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_digit_by_digit_agree_with_the_general_parser() {
        let mut day: NaiveDate = "2023-12-25".parse().expect("date");
        for _ in 0..1_000 {
            let text = day.to_string();
            assert_eq!(date(&text).expect("valid"), day, "{text}");
            day = day.succ_opt().expect("next day");
        }
        // Not the store's form, but still a date.
        assert_eq!(
            date("2026-1-5").expect("valid"),
            NaiveDate::from_ymd_opt(2026, 1, 5).expect("date")
        );
        for bad in ["2026-02-30", "2026-13-01", "2026-1a-01", "20261101", ""] {
            assert!(matches!(date(bad), Err(SourceError::Malformed(_))), "{bad}");
        }
    }
}
