//! The KPI job's window read from the embedded ledger store.

use std::path::{Path, PathBuf};

use aqs_schemas::{WorkingCalendar, YearMonth};
use chrono::NaiveDate;
use rusqlite::types::Type;
use rusqlite::{Connection, Row, params};

use super::{
    AgentDay, Id, Interval, LedgerData, LedgerSource, OUTLET_DAYS_WITH_VISIT_OR_SALE, OutletDay,
    Plan, SourceError, Target, Team, scope_from_name,
};
use crate::ledgers::{
    AgentDayRow, AgentOutletDayRow, AssignmentRow, CalendarDayRow, LIVE, LIVE_ACTIVITY, LedgerRow,
    PlanRow, RosterRow, TargetRow, TeamRow,
};

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
    date_of_bytes(text.as_bytes())
}

/// A date as the store writes it, read from the column's bytes without checking them as
/// text first.
fn date_of_bytes(bytes: &[u8]) -> Result<NaiveDate, SourceError> {
    // The store writes ISO dates: reading the digits is much cheaper than the general
    // parser, which stays for anything else (and for the error).
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
    let text = String::from_utf8_lossy(bytes);
    text.parse()
        .map_err(|_| SourceError::Malformed(format!("date {text:?}")))
}

fn optional_date(text: Option<String>) -> Result<Option<NaiveDate>, SourceError> {
    text.map(|t| date(&t)).transpose()
}

/// Shares an id between consecutive rows that carry it (the store returns rows in key
/// order, so an agent's rows, and mostly its tags and outlets, come one after another).
#[derive(Default)]
struct Repeated {
    last: Option<Id>,
}

impl Repeated {
    /// The id of a text column's bytes: the previous row's when they are the same (checked
    /// as text only when they are new).
    fn id(&mut self, bytes: &[u8]) -> Result<Id, SourceError> {
        match &self.last {
            Some(last) if last.as_bytes() == bytes => Ok(last.clone()),
            _ => {
                let text = std::str::from_utf8(bytes).map_err(|error| {
                    SourceError::Malformed(format!(
                        "id {:?}: {error}",
                        String::from_utf8_lossy(bytes)
                    ))
                })?;
                Ok(self.last.insert(text.into()).clone())
            }
        }
    }

    /// The id, or `None` for the empty text the store writes for "none".
    fn non_empty(&mut self, bytes: &[u8]) -> Result<Option<Id>, SourceError> {
        (!bytes.is_empty()).then(|| self.id(bytes)).transpose()
    }
}

/// The agents whose days are read: all, or those before or from an agent id.
#[derive(Clone, Copy)]
enum Agents<'a> {
    All,
    Before(&'a str),
    From(&'a str),
}

impl<'a> Agents<'a> {
    /// The condition on `agent_id` that keeps these agents (the bound is parameter 3).
    fn condition(self) -> &'static str {
        match self {
            Agents::All => "",
            Agents::Before(_) => "AND agent_id < ?3",
            Agents::From(_) => "AND agent_id >= ?3",
        }
    }

    fn bound(self) -> Option<&'a str> {
        match self {
            Agents::All => None,
            Agents::Before(agent) | Agents::From(agent) => Some(agent),
        }
    }
}

/// A text column's bytes, read in place, for values parsed or shared right away.
fn text_bytes<'r>(row: &'r Row<'_>, index: usize) -> rusqlite::Result<&'r [u8]> {
    row.get_ref(index)?
        .as_bytes()
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
        crate::ledgers::sqlite::open_read_only(&self.path).map_err(|e| self.wrap(e))
    }

    /// The agent days of the window, read in two halves by agent id side by side.
    fn agent_days(
        &self,
        window: [&str; 2],
        middle: Option<&str>,
    ) -> Result<Vec<AgentDay>, SourceError> {
        in_halves(middle, |agents| self.agent_days_of(window, agents))
    }

    /// Whether any agent day may fall on the dates `window` (inclusive): false only when the
    /// store's table of agent-day dates says none does (a store without that table may).
    fn may_have_agent_days(&self, window: [&str; 2]) -> Result<bool, SourceError> {
        let connection = self.connect()?;
        let wrap = |e| self.wrap(e);
        if !crate::ledgers::sqlite::has_agent_day_dates(&connection).map_err(wrap)? {
            return Ok(true);
        }
        connection
            .query_row(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM {} WHERE business_date BETWEEN ?1 AND ?2)",
                    crate::ledgers::sqlite::AGENT_DAY_DATES
                ),
                window,
                |r| r.get(0),
            )
            .map_err(wrap)
    }

    /// The agent in the middle of the roster by id: as many agents before it as from it,
    /// which splits the agent days about evenly. `None` without a roster.
    fn middle_agent(&self) -> Result<Option<String>, SourceError> {
        let connection = self.connect()?;
        let wrap = |e| self.wrap(e);
        let agents: Vec<String> = connection
            .prepare(&format!(
                "SELECT DISTINCT agent_id FROM {} ORDER BY agent_id",
                RosterRow::TABLE
            ))
            .map_err(wrap)?
            .query_map([], |r| r.get(0))
            .map_err(wrap)?
            .collect::<rusqlite::Result<_>>()
            .map_err(wrap)?;
        Ok(agents.get(agents.len() / 2).cloned())
    }

    fn agent_days_of(
        &self,
        window: [&str; 2],
        agents: Agents<'_>,
    ) -> Result<Vec<AgentDay>, SourceError> {
        let connection = self.connect()?;
        let wrap = |e| self.wrap(e);
        let mut statement = connection
            .prepare(&format!(
                "SELECT agent_id, business_date, team_id, branch_id, region_id, visits, consultations,
                        customers_consulted, customers_interested, sales, premium_fen, cancellations, refunds_fen
                 FROM {} WHERE business_date BETWEEN ?1 AND ?2 AND {LIVE_ACTIVITY} {}",
                AgentDayRow::TABLE,
                agents.condition(),
            ))
            .map_err(wrap)?;
        let mut rows = match agents.bound() {
            Some(agent) => statement.query(params![window[0], window[1], agent]),
            None => statement.query(window),
        }
        .map_err(wrap)?;
        let mut agent_days = Vec::new();
        let [mut agents, mut teams, mut branches, mut regions] =
            [0, 1, 2, 3].map(|_| Repeated::default());
        while let Some(r) = rows.next().map_err(wrap)? {
            let c = |i| r.get::<_, i64>(i).map_err(wrap);
            let text = |i| text_bytes(r, i).map_err(wrap);
            agent_days.push(AgentDay {
                agent_id: agents.id(text(0)?)?,
                date: date_of_bytes(text(1)?)?,
                team_id: teams.non_empty(text(2)?)?,
                branch_id: branches.non_empty(text(3)?)?,
                region_id: regions.non_empty(text(4)?)?,
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

    /// The outlet days of the window (the table with the most rows the job reads), read in
    /// two halves by agent id side by side.
    fn outlet_days(
        &self,
        window: [&str; 2],
        middle: Option<&str>,
    ) -> Result<Vec<OutletDay>, SourceError> {
        in_halves(middle, |agents| self.outlet_days_of(window, agents))
    }

    fn outlet_days_of(
        &self,
        window: [&str; 2],
        agents: Agents<'_>,
    ) -> Result<Vec<OutletDay>, SourceError> {
        let connection = self.connect()?;
        let wrap = |e| self.wrap(e);
        let mut statement = connection
            .prepare(&format!(
                "SELECT agent_id, outlet_id, business_date, visits, sales FROM {}
                 WHERE business_date BETWEEN ?1 AND ?2 AND {OUTLET_DAYS_WITH_VISIT_OR_SALE} {}",
                AgentOutletDayRow::TABLE,
                agents.condition(),
            ))
            .map_err(wrap)?;
        let mut rows = match agents.bound() {
            Some(agent) => statement.query(params![window[0], window[1], agent]),
            None => statement.query(window),
        }
        .map_err(wrap)?;
        let mut outlet_days = Vec::new();
        let (mut agents, mut outlets) = (Repeated::default(), Repeated::default());
        while let Some(r) = rows.next().map_err(wrap)? {
            let text = |i| text_bytes(r, i).map_err(wrap);
            outlet_days.push(OutletDay {
                agent_id: agents.id(text(0)?)?,
                outlet_id: outlets.id(text(1)?)?,
                date: date_of_bytes(text(2)?)?,
                visits: r.get(3).map_err(wrap)?,
                sales: r.get(4).map_err(wrap)?,
            });
        }
        Ok(outlet_days)
    }
}

/// What a scoped thread returned (its panic goes on).
fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The rows `read` gives for the agents before `middle` and for those from it, read side by
/// side (each read on a connection of its own), in key order; all in one read without a
/// middle.
fn in_halves<T: Send>(
    middle: Option<&str>,
    read: impl Fn(Agents<'_>) -> Result<Vec<T>, SourceError> + Sync,
) -> Result<Vec<T>, SourceError> {
    let Some(middle) = middle else {
        return read(Agents::All);
    };
    let (lower, upper) = std::thread::scope(|scope| {
        let upper = scope.spawn(|| read(Agents::From(middle)));
        let lower = read(Agents::Before(middle));
        (lower, joined(upper))
    });
    let mut rows = lower?;
    rows.extend(upper?);
    Ok(rows)
}

impl LedgerSource for SqliteSource {
    fn load_agent_days(
        &self,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<AgentDay>, SourceError> {
        let (first, last) = (first.to_string(), last.to_string());
        if !self.may_have_agent_days([&first, &last])? {
            return Ok(Vec::new());
        }
        let middle = self.middle_agent()?;
        self.agent_days([first.as_str(), last.as_str()], middle.as_deref())
    }

    fn load(&self, first: NaiveDate, last: NaiveDate) -> Result<LedgerData, SourceError> {
        let (first_text, last_text) = (first.to_string(), last.to_string());
        let window = [first_text.as_str(), last_text.as_str()];
        // The two big tables are read side by side, each in two halves by agent, and the
        // small ones beside them, each read on a connection of its own.
        let middle = self.middle_agent()?;
        let middle = middle.as_deref();
        let (agent_days, outlet_days, small) = std::thread::scope(|scope| {
            let outlet_days = scope.spawn(|| self.outlet_days(window, middle));
            let small = scope.spawn(|| self.small_tables(first, last));
            let agent_days = self.agent_days(window, middle);
            (agent_days, joined(outlet_days), joined(small))
        });
        Ok(LedgerData {
            agent_days: agent_days?,
            outlet_days: outlet_days?,
            ..small?
        })
    }

    fn load_calendar(&self) -> Result<WorkingCalendar, SourceError> {
        self.calendar(&self.connect()?)
    }
}

impl SqliteSource {
    /// Everything of the window but the agent and outlet days: plans, targets, roster,
    /// assignments, team definitions and the calendar.
    fn small_tables(&self, first: NaiveDate, last: NaiveDate) -> Result<LedgerData, SourceError> {
        let wrap = |e| self.wrap(e);
        let (first_text, last_text) = (first.to_string(), last.to_string());
        let mut data = LedgerData::default();
        let connection = self.connect()?;

        let mut statement = connection
            .prepare(&format!(
                "SELECT agent_id, period_start, period_end, visits, consultations, sales FROM {}
                 WHERE {LIVE} AND period_start <= ?2 AND period_end >= ?1",
                PlanRow::TABLE
            ))
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
            .prepare(&format!(
                "SELECT scope, scope_id, month, premium_fen, outlet_activity_rate_bp, visits, consultations, sales
                 FROM {} WHERE {LIVE} AND month BETWEEN ?1 AND ?2",
                TargetRow::TABLE
            ))
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

        for (table, key, target) in [
            (RosterRow::TABLE, "team_id", 0),
            (AssignmentRow::TABLE, "outlet_id", 1),
        ] {
            let mut statement = connection
                .prepare(&format!(
                    "SELECT agent_id, {key}, valid_from, valid_to FROM {table}
                     WHERE {LIVE} AND valid_from <= ?2 AND (valid_to IS NULL OR valid_to > ?1)"
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
            .prepare(&format!(
                "SELECT team_id, effective_from, branch_id, region_id FROM {} WHERE {} \
                 ORDER BY team_id, effective_from",
                TeamRow::TABLE,
                TeamRow::LIVE
            ))
            .map_err(wrap)?;
        let rows = statement
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(wrap)?;
        for row in rows {
            let (team_id, effective_from, branch_id, region_id) = row.map_err(wrap)?;
            let effective_from = date(&effective_from)?;
            data.teams.push(Team {
                team_id,
                effective_from,
                branch_id,
                region_id,
            });
        }
        data.calendar = self.calendar(&connection)?;
        Ok(data)
    }

    fn calendar(&self, connection: &Connection) -> Result<WorkingCalendar, SourceError> {
        let wrap = |e| self.wrap(e);
        let mut statement = connection
            .prepare(&format!(
                "SELECT business_date, kind FROM {} WHERE {LIVE} ORDER BY business_date",
                CalendarDayRow::TABLE
            ))
            .map_err(wrap)?;
        let rows = statement
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(wrap)?
            .map(|row| {
                let (day, kind) = row.map_err(wrap)?;
                Ok((date(&day)?, kind))
            })
            .collect::<Result<Vec<_>, SourceError>>()?;
        super::calendar_from_rows(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledgers::LedgerBatch;

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

    fn agent_day(agent: &str, day: &str, visits: i64) -> AgentDayRow {
        AgentDayRow {
            agent_id: agent.into(),
            business_date: day.parse().expect("date"),
            team_id: "T1".into(),
            branch_id: "B1".into(),
            region_id: "R1".into(),
            visits,
            consultations: 0,
            customers_consulted: 0,
            customers_interested: 0,
            sales: 0,
            premium_fen: 0,
            cancellations: 0,
            refunds_fen: 0,
            ver: 1,
        }
    }

    #[test]
    fn agent_days_read_in_halves_are_every_day_of_the_window_once_in_key_order() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ledgers.db");
        let mut ledgers = crate::ledgers::sqlite::LedgerDb::open(&path).expect("open");
        // A3 has days but no roster; the roster's middle agent (A4) starts the second half.
        let agents = ["A1", "A2", "A3", "A4", "A5"];
        let mut batch = LedgerBatch::default();
        for (n, agent) in agents.iter().enumerate() {
            for day in ["2026-11-30", "2026-12-01", "2026-12-02"] {
                batch.agent_day.push(agent_day(agent, day, n as i64 + 1));
            }
        }
        for agent in ["A1", "A2", "A4", "A5"] {
            batch.roster.push(RosterRow {
                agent_id: agent.into(),
                valid_from: "2026-01-01".parse().expect("date"),
                team_id: "T1".into(),
                valid_to: None,
                deleted: 0,
                ver: 1,
            });
        }
        ledgers.write(&batch).expect("write");
        let source = SqliteSource::new(&path);
        assert_eq!(
            source.middle_agent().expect("roster").as_deref(),
            Some("A4")
        );
        let (first, last) = (
            "2026-12-01".parse().expect("date"),
            "2026-12-02".parse().expect("date"),
        );
        let read = source.load_agent_days(first, last).expect("agent days");
        let keys: Vec<_> = read
            .iter()
            .map(|day| (day.agent_id.to_string(), day.date.to_string(), day.visits))
            .collect();
        let expected: Vec<_> = agents
            .iter()
            .enumerate()
            .flat_map(|(n, agent)| {
                ["2026-12-01", "2026-12-02"]
                    .map(|day| (agent.to_string(), day.to_string(), n as i64 + 1))
            })
            .collect();
        assert_eq!(keys, expected);
    }

    #[test]
    fn a_window_without_agent_days_is_told_by_their_dates_and_an_older_store_is_still_read() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ledgers.db");
        let mut ledgers = crate::ledgers::sqlite::LedgerDb::open(&path).expect("open");
        let mut batch = LedgerBatch::default();
        batch.agent_day.push(agent_day("A1", "2026-12-01", 1));
        batch.agent_day.push(agent_day("A2", "2026-12-03", 0));
        ledgers.write(&batch).expect("write");
        let date = |text: &str| text.parse::<NaiveDate>().expect("date");
        let source = SqliteSource::new(&path);
        let window = |first: &str, last: &str| source.may_have_agent_days([first, last]);
        assert!(!window("2026-11-01", "2026-11-30").expect("dates"));
        assert!(window("2026-11-01", "2026-12-01").expect("dates"));
        // A date whose only row is not live still counts as one to read.
        assert!(window("2026-12-03", "2026-12-31").expect("dates"));
        assert!(!window("2026-12-02", "2026-12-02").expect("dates"));
        let read = |first, last| {
            source
                .load_agent_days(date(first), date(last))
                .expect("agent days")
                .len()
        };
        assert_eq!(read("2026-11-01", "2026-11-30"), 0);
        assert_eq!(read("2026-11-01", "2026-12-31"), 1);

        // A store written before the table of dates: read by scanning, as before, and given
        // the table, filled, when the writer opens it next.
        drop(ledgers);
        let connection = rusqlite::Connection::open(&path).expect("open");
        connection
            .execute_batch(&format!(
                "DROP TABLE {}",
                crate::ledgers::sqlite::AGENT_DAY_DATES
            ))
            .expect("drop");
        assert!(window("2026-11-01", "2026-11-30").expect("no table"));
        assert_eq!(read("2026-11-01", "2026-12-31"), 1);
        let mut ledgers = crate::ledgers::sqlite::LedgerDb::open(&path).expect("reopen");
        assert!(!window("2026-11-01", "2026-11-30").expect("dates"));
        assert!(window("2026-12-01", "2026-12-01").expect("dates"));
        // Emptied for a rebuild: no dates either.
        ledgers.clear().expect("clear");
        assert!(!window("2026-12-01", "2026-12-31").expect("dates"));
    }

    #[test]
    fn outlet_days_read_in_halves_are_every_day_of_the_window_once_in_key_order() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ledgers.db");
        let mut ledgers = crate::ledgers::sqlite::LedgerDb::open(&path).expect("open");
        let agents = ["A1", "A2", "A3", "A4", "A5"];
        let mut batch = LedgerBatch::default();
        for (n, agent) in agents.iter().enumerate() {
            for outlet in ["O1", "O2"] {
                for day in ["2026-11-30", "2026-12-01", "2026-12-02"] {
                    batch.agent_outlet_day.push(AgentOutletDayRow {
                        agent_id: agent.to_string(),
                        outlet_id: outlet.into(),
                        business_date: day.parse().expect("date"),
                        visits: n as i64 + 1,
                        consultations: 0,
                        customers_consulted: 0,
                        customers_interested: 0,
                        sales: 0,
                        premium_fen: 0,
                        cancellations: 0,
                        refunds_fen: 0,
                        ver: 1,
                    });
                }
            }
            // A3 has no roster: the roster's middle agent (A4) starts the second half.
            if *agent != "A3" {
                batch.roster.push(RosterRow {
                    agent_id: agent.to_string(),
                    valid_from: "2026-01-01".parse().expect("date"),
                    team_id: "T1".into(),
                    valid_to: None,
                    deleted: 0,
                    ver: 1,
                });
            }
        }
        ledgers.write(&batch).expect("write");
        let source = SqliteSource::new(&path);
        let (first, last) = (
            "2026-12-01".parse().expect("date"),
            "2026-12-02".parse().expect("date"),
        );
        let read = source.load(first, last).expect("ledgers");
        let keys: Vec<_> = read
            .outlet_days
            .iter()
            .map(|day| {
                let (agent, outlet) = (day.agent_id.to_string(), day.outlet_id.to_string());
                (agent, outlet, day.date.to_string(), day.visits)
            })
            .collect();
        let expected: Vec<_> = agents
            .iter()
            .enumerate()
            .flat_map(|(n, agent)| {
                ["O1", "O2"].into_iter().flat_map(move |outlet| {
                    ["2026-12-01", "2026-12-02"].map(|day| {
                        (
                            agent.to_string(),
                            outlet.to_owned(),
                            day.to_owned(),
                            n as i64 + 1,
                        )
                    })
                })
            })
            .collect();
        assert_eq!(keys, expected);
    }
}
