//! The supervisor job: how each supervisor coaches, accompanies, meets, evaluates and
//! reviews, against the method's norms, per day, ISO week and month, rolled up to branch and
//! region, and what each agent received in the month, as defined in analytics/README.md
//! ("Supervisors").
//!
//! Pure: it reads what `aqs_tables::supervisors::source` loaded and returns the table
//! (`aqs_tables::supervisors::SUPERVISOR_COLUMNS`). Supervisors are a few per branch and
//! their facts a few a day, so the rows are built in plain loops.
//!
//! - `facts`: the facts indexed (who leads a team on a date, agents on a date, coachings,
//!   evaluations and reviews in force).
//! - `rows`: the rows of each period: supervisors, their branch and region, agents.
//! - `table`: the rows as the contract's columns.

mod facts;
mod rows;
mod table;

use aqs_schemas::YearMonth;
use aqs_tables::ledgers::window::SourceError;
use aqs_tables::supervisors::source::{SupervisorLedgerData, SupervisorSource};
use chrono::NaiveDate;
use polars::prelude::{DataFrame, PolarsError};

/// The supervisor job's settings: the window and the method's norms.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorParams {
    /// Periods are counted through this business date.
    pub as_of: NaiveDate,
    /// Every period touching `since..=as_of` has its rows.
    pub since: NaiveDate,
    /// Individual coaching sessions a supervisor should hold per working day.
    pub coachings_per_working_day: f64,
    /// Accompanied field visits per week (of five working days).
    pub accompanied_visits_per_week: f64,
    /// Weekly team meetings per week.
    pub weekly_meetings_per_week: f64,
    /// Share of the supervisor's agents to evaluate each month.
    pub evaluated_share: f64,
    /// An agent counts as not coached after this many working days without a session.
    pub not_coached_working_days: u32,
}

/// The method's norms (销售主管活动管理): one or two coachings a working day (the lower
/// bound is the target), three or four accompanied visits a week, one weekly meeting, every
/// agent evaluated every month.
pub const DEFAULT_COACHINGS_PER_WORKING_DAY: f64 = 1.0;
pub const DEFAULT_ACCOMPANIED_VISITS_PER_WEEK: f64 = 3.0;
pub const DEFAULT_WEEKLY_MEETINGS_PER_WEEK: f64 = 1.0;
pub const DEFAULT_EVALUATED_SHARE: f64 = 1.0;
/// Two working weeks, the outlets' dormancy rule of thumb.
pub const DEFAULT_NOT_COACHED_WORKING_DAYS: u32 = 10;

impl SupervisorParams {
    pub fn new(as_of: NaiveDate) -> Self {
        Self {
            as_of,
            since: YearMonth::of(as_of).first_day(),
            coachings_per_working_day: DEFAULT_COACHINGS_PER_WORKING_DAY,
            accompanied_visits_per_week: DEFAULT_ACCOMPANIED_VISITS_PER_WEEK,
            weekly_meetings_per_week: DEFAULT_WEEKLY_MEETINGS_PER_WEEK,
            evaluated_share: DEFAULT_EVALUATED_SHARE,
            not_coached_working_days: DEFAULT_NOT_COACHED_WORKING_DAYS,
        }
    }

    /// Refuses settings no run could use.
    pub fn check(&self) -> Result<(), SupervisorError> {
        if self.since > self.as_of {
            return Err(SupervisorError::Window {
                as_of: self.as_of,
                since: self.since,
            });
        }
        for (name, value, max) in [
            (
                "coachings per working day",
                self.coachings_per_working_day,
                50.0,
            ),
            (
                "accompanied visits per week",
                self.accompanied_visits_per_week,
                100.0,
            ),
            (
                "weekly meetings per week",
                self.weekly_meetings_per_week,
                10.0,
            ),
            ("evaluated share", self.evaluated_share, 1.0),
        ] {
            if !(value > 0.0 && value <= max) {
                return Err(SupervisorError::Norm { name, value, max });
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("supervisor table: the as-of date {as_of} is before the first date {since}")]
    Window { as_of: NaiveDate, since: NaiveDate },
    #[error("supervisor norms: {name} must be above 0 and at most {max}, got {value}")]
    Norm {
        name: &'static str,
        value: f64,
        max: f64,
    },
    #[error("supervisor table: {0}")]
    Polars(#[from] PolarsError),
}

/// Reads what the supervisor job needs: the supervisors' facts, the roster, the teams
/// with their supervisors, and the calendar.
pub fn read_supervisor_ledgers(
    source: &dyn SupervisorSource,
) -> Result<SupervisorLedgerData, SourceError> {
    source.load_supervision()
}

/// Computes the supervisor table as of `params.as_of`.
pub fn compute(
    data: &SupervisorLedgerData,
    params: &SupervisorParams,
) -> Result<DataFrame, SupervisorError> {
    params.check()?;
    let rows = rows::supervisor_table(data, params);
    Ok(table::frame(&rows, params)?)
}
