//! What the supervisor job reads from the ledgers, from the embedded store
//! ([`SqliteSupervisorSource`]) or ClickHouse ([`ClickHouseSupervisorSource`]), with the same
//! live rows and order. Everything is read whole: the facts are a few a supervisor a day,
//! and "not coached for N working days" and a measure's status reach back before any window.

use std::path::{Path, PathBuf};

use aqs_schemas::WorkingCalendar;
use aqs_warehouse::{BlockingClient, ClickHouseConfig};

use crate::ledgers::sqlite::live_rows;
use crate::ledgers::window::{SourceError, calendar_from_rows};
use crate::ledgers::{CalendarDayRow, LedgerRow, RosterRow, SupervisorFactRow, TeamRow};

/// Everything the supervisor job reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SupervisorLedgerData {
    /// Every live supervisor's fact, ordered by event id then source.
    pub facts: Vec<SupervisorFactRow>,
    /// Every live roster interval, ordered by agent then start.
    pub roster: Vec<RosterRow>,
    /// Every live team definition (with its supervisor), ordered by team then effective date.
    pub teams: Vec<TeamRow>,
    /// The working-day calendar of the ledger.
    pub calendar: WorkingCalendar,
}

/// Where the supervisor job reads the ledgers from.
pub trait SupervisorSource {
    fn load_supervision(&self) -> Result<SupervisorLedgerData, SourceError>;
}

/// The embedded ledger store written by the projector (`ledgers.db`).
#[derive(Debug, Clone)]
pub struct SqliteSupervisorSource {
    path: PathBuf,
}

impl SqliteSupervisorSource {
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
        }
    }
}

impl SupervisorSource for SqliteSupervisorSource {
    fn load_supervision(&self) -> Result<SupervisorLedgerData, SourceError> {
        let wrap = |source| SourceError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let connection = crate::ledgers::sqlite::open_read_only(&self.path).map_err(wrap)?;
        let calendar = live_rows::<CalendarDayRow>(&connection).map_err(wrap)?;
        Ok(SupervisorLedgerData {
            facts: live_rows(&connection).map_err(wrap)?,
            roster: live_rows(&connection).map_err(wrap)?,
            teams: live_rows(&connection).map_err(wrap)?,
            calendar: calendar_from_rows(calendar.into_iter().map(|r| (r.business_date, r.kind)))?,
        })
    }
}

/// The ledgers in ClickHouse, read with `FINAL` and the same live-row filters and order as
/// [`SqliteSupervisorSource`].
#[derive(Debug)]
pub struct ClickHouseSupervisorSource {
    client: BlockingClient,
}

/// The ledger tables the supervisor job reads.
const SUPERVISOR_LEDGER_TABLES: [&str; 4] = [
    SupervisorFactRow::TABLE,
    RosterRow::TABLE,
    TeamRow::TABLE,
    CalendarDayRow::TABLE,
];

impl ClickHouseSupervisorSource {
    /// Connects to the configured database and checks that the ledger tables are there.
    pub fn connect(config: &ClickHouseConfig) -> Result<Self, SourceError> {
        Ok(Self {
            client: BlockingClient::connect(config, &SUPERVISOR_LEDGER_TABLES)?,
        })
    }

    fn live<T: LedgerRow>(&self) -> Result<Vec<T>, SourceError> {
        crate::ledgers::window::clickhouse::fetch_rows(
            &self.client,
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

impl SupervisorSource for ClickHouseSupervisorSource {
    fn load_supervision(&self) -> Result<SupervisorLedgerData, SourceError> {
        let calendar = self.live::<CalendarDayRow>()?;
        Ok(SupervisorLedgerData {
            facts: self.live()?,
            roster: self.live()?,
            teams: self.live()?,
            calendar: calendar_from_rows(calendar.into_iter().map(|r| (r.business_date, r.kind)))?,
        })
    }
}
