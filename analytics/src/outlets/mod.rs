//! The outlet job: one row per outlet × month as of a date (activity, the agents who
//! covered it, first sales and 破零, last visit and dormancy, the grade fixed per quarter)
//! and summary rows per team and branch, as defined in analytics/README.md ("Outlets").
//!
//! Pure: it reads what `aqs_tables::outlets::source` loaded and returns the table
//! (`aqs_tables::outlets::OUTLET_COLUMNS`). Outlets are few beside agent days (a few per
//! agent), so the rows are built in plain loops over maps keyed by outlet.
//!
//! - `ownership`: which agent, team and branch an outlet counts for on a date.
//! - `rows`: the outlet rows of a month and the summaries over them.
//! - `table`: the rows as the contract's columns.

mod ownership;
mod rows;
mod table;

#[cfg(test)]
mod tests;

use aqs_schemas::{Money, YearMonth};
use aqs_tables::ledgers::window::SourceError;
use aqs_tables::outlets::source::{OutletLedgerData, OutletSource};
use chrono::{Datelike, Months, NaiveDate};
use polars::prelude::{DataFrame, PolarsError};

/// The outlet job's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutletParams {
    /// Months are counted through this business date.
    pub as_of: NaiveDate,
    /// Every month touching `since..=as_of` has its rows.
    pub since: NaiveDate,
    /// An assigned outlet is dormant from this many working days without a visit.
    pub dormant_working_days: u32,
    /// Least average monthly premium (fen) of grades A, B and C; below C is D.
    pub grade_a_fen: i64,
    pub grade_b_fen: i64,
    pub grade_c_fen: i64,
}

/// Default least average monthly premiums of grades A, B and C, in yuan.
pub const DEFAULT_GRADE_A_YUAN: i64 = 50_000;
pub const DEFAULT_GRADE_B_YUAN: i64 = 20_000;
pub const DEFAULT_GRADE_C_YUAN: i64 = 5_000;
/// Default working days without a visit from which an assigned outlet is dormant.
pub const DEFAULT_DORMANT_WORKING_DAYS: u32 = 10;

impl OutletParams {
    pub fn new(as_of: NaiveDate) -> Self {
        Self {
            as_of,
            since: YearMonth::of(as_of).first_day(),
            dormant_working_days: DEFAULT_DORMANT_WORKING_DAYS,
            grade_a_fen: DEFAULT_GRADE_A_YUAN * 100,
            grade_b_fen: DEFAULT_GRADE_B_YUAN * 100,
            grade_c_fen: DEFAULT_GRADE_C_YUAN * 100,
        }
    }

    /// The first month with rows.
    pub fn first_month(&self) -> NaiveDate {
        YearMonth::of(self.since).first_day()
    }

    /// The months with rows, by their first days.
    pub fn months(&self) -> Vec<NaiveDate> {
        let mut months = Vec::new();
        let mut month = self.first_month();
        while month <= self.as_of {
            months.push(month);
            month = YearMonth::of(month).next().first_day();
        }
        months
    }

    /// The ranges of dates the grades of those months rest on (one per quarter).
    pub fn grade_bases(&self) -> Vec<(NaiveDate, NaiveDate)> {
        let mut bases: Vec<(NaiveDate, NaiveDate)> =
            self.months().into_iter().map(grade_basis).collect();
        bases.dedup();
        bases
    }

    /// Refuses settings no run could use.
    pub fn check(&self) -> Result<(), OutletError> {
        if self.since > self.as_of {
            return Err(OutletError::Window {
                as_of: self.as_of,
                since: self.since,
            });
        }
        if !(self.grade_a_fen >= self.grade_b_fen && self.grade_b_fen >= self.grade_c_fen) {
            return Err(OutletError::Thresholds {
                a: Money::from_units(self.grade_a_fen),
                b: Money::from_units(self.grade_b_fen),
                c: Money::from_units(self.grade_c_fen),
            });
        }
        Ok(())
    }

    /// The grade of an average monthly premium in fen.
    pub fn grade(&self, average_fen: i128) -> Grade {
        if average_fen >= i128::from(self.grade_a_fen) {
            Grade::A
        } else if average_fen >= i128::from(self.grade_b_fen) {
            Grade::B
        } else if average_fen >= i128::from(self.grade_c_fen) {
            Grade::C
        } else {
            Grade::D
        }
    }
}

/// An outlet's grade (网点分级).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grade {
    A,
    B,
    C,
    D,
}

impl Grade {
    pub const ALL: [Grade; 4] = [Grade::A, Grade::B, Grade::C, Grade::D];

    pub const fn name(self) -> &'static str {
        match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
        }
    }
}

/// The first and last day of the three months a month's grade is based on: the three full
/// months before its quarter starts, so the grade is the same all quarter.
pub fn grade_basis(month: NaiveDate) -> (NaiveDate, NaiveDate) {
    let month = YearMonth::of(month).first_day();
    let quarter_start = month - Months::new(month.month0() % 3);
    (
        quarter_start - Months::new(3),
        quarter_start.pred_opt().expect("a day before"),
    )
}

#[derive(Debug, thiserror::Error)]
pub enum OutletError {
    #[error("outlet table: the as-of date {as_of} is before the first date {since}")]
    Window { as_of: NaiveDate, since: NaiveDate },
    #[error(
        "outlet grades: the least average monthly premiums must descend from A to C \
         (A ≥ B ≥ C), got A {a}, B {b}, C {c} CNY"
    )]
    Thresholds { a: Money, b: Money, c: Money },
    #[error("outlet table: {0}")]
    Polars(#[from] PolarsError),
}

/// Reads what the outlet job needs: the activity of its months per outlet, month and agent,
/// the history before them, the outlets' premium over the months their grades rest on, and
/// the reference data.
pub fn read_outlet_ledgers(
    source: &dyn OutletSource,
    params: &OutletParams,
) -> Result<OutletLedgerData, SourceError> {
    source.load_outlets(params.first_month(), params.as_of, &params.grade_bases())
}

/// Computes the outlet table as of `params.as_of`.
pub fn compute(data: &OutletLedgerData, params: &OutletParams) -> Result<DataFrame, OutletError> {
    params.check()?;
    let rows = rows::outlet_table(data, params);
    Ok(table::frame(&rows, params.as_of)?)
}
