//! The KPI job: every KPI of the domain for scopes agent, team, branch and region and
//! periods day, ISO week and month, as of a business date, in five steps:
//!
//! 1. Indexing (`ids`, `window`, `rows`): ids become dense numbers and dates day numbers
//!    in the window read; the rows of the table (a scope and a period with any fact) are
//!    found and numbered in output order before anything is added up.
//! 2. Facts (`facts`): the ledger rows with those numbers, and who belonged where each day.
//! 3. Tallies (`tallies`): the sums and distinct counts of every row, each fact added
//!    straight into its rows in loops over vectors (the fast part); distinct outlets
//!    assigned and agents on a roster come from runs of days ([`crate::spans`]).
//! 4. Formulas (`formulas`): every KPI as a polars expression over the tallied columns,
//!    in one module to read top to bottom.
//! 5. Output (`table`): the contract's columns in order, money as Decimal(38, 2).

use chrono::NaiveDate;
use polars::prelude::*;

use crate::data::{LedgerData, LedgerSource, SourceError};
use crate::periods::PeriodKind;

mod facts;
mod formulas;
mod ids;
mod rows;
mod table;
mod tallies;
mod window;

/// What the job computes and the thresholds of its derived views.
#[derive(Debug, Clone)]
pub struct KpiParams {
    /// KPIs count days through this business date.
    pub as_of: NaiveDate,
    /// Earliest date whose periods are computed (periods touching `since..=as_of`).
    pub since: NaiveDate,
    /// A month still open is at risk when projected attainment is below this.
    pub at_risk_threshold: f64,
    /// Plan adherence at or above this counts as willing.
    pub will_threshold: f64,
    /// Close rate at or above this share of the team median counts as skilled.
    pub skill_ratio: f64,
    /// Balance drift: visit plan adherence at or above this (visits on plan)...
    pub drift_visits_adherence: f64,
    /// ...while consultation or sales plan adherence is below this share of plan.
    pub drift_share: f64,
    /// Days of the trailing window whose rates turn the premium needed into activity
    /// needed, ending on the as-of date.
    pub rates_window_days: u32,
    /// Fewer sales than this in its trailing window, and a scope uses its parent's rates.
    pub rates_min_sales: i64,
}

impl KpiParams {
    pub fn new(as_of: NaiveDate) -> Self {
        Self {
            as_of,
            since: PeriodKind::Month.start_of(as_of),
            at_risk_threshold: 0.9,
            will_threshold: 0.8,
            skill_ratio: 1.0,
            drift_visits_adherence: 1.0,
            drift_share: 0.5,
            rates_window_days: 90,
            rates_min_sales: 10,
        }
    }

    /// First day read from the ledgers: the start of every period touching `since`.
    pub fn window_start(&self) -> NaiveDate {
        PeriodKind::Week
            .start_of(self.since)
            .min(PeriodKind::Month.start_of(self.since))
    }

    /// First day of the trailing window of rates (the as-of date for a window of one day or
    /// none).
    pub fn trailing_start(&self) -> NaiveDate {
        let days = i64::from(self.rates_window_days.max(1)) - 1;
        self.as_of - chrono::Duration::days(days)
    }
}

/// Reads what the job needs from a ledger source: the rows of the window of its periods
/// (`window_start()` through the as-of date), and the agent days of the trailing window of
/// rates where it reaches further back, on their own (nothing else is read that far back).
pub fn read_ledgers(
    source: &dyn LedgerSource,
    params: &KpiParams,
) -> Result<LedgerData, SourceError> {
    let (window_start, trailing_start) = (params.window_start(), params.trailing_start());
    // The trailing agent days are read beside the window, on a thread of their own.
    std::thread::scope(|scope| {
        let trailing = (trailing_start < window_start).then(|| {
            let before = window_start - chrono::Duration::days(1);
            scope.spawn(move || source.load_agent_days(trailing_start, before))
        });
        let mut data = source.load(window_start, params.as_of)?;
        if let Some(trailing) = trailing {
            data.trailing_agent_days = trailing
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        }
        Ok(data)
    })
}

/// Runs two pieces of work at once: `a` on a thread of its own, `b` on this one (the job's
/// machine has two cores); a panic in either goes on.
pub(crate) fn both<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B,
) -> (A, B) {
    std::thread::scope(|scope| {
        let a = scope.spawn(a);
        let b = b();
        let a = a
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (a, b)
    })
}

#[derive(Debug, thiserror::Error)]
pub enum KpiError {
    #[error("KPI computation: {0}")]
    Polars(#[from] PolarsError),
    #[error("as-of date {as_of} is before the first date {since}")]
    Window { as_of: NaiveDate, since: NaiveDate },
    #[error("the sum of {column} of one row exceeds the KPI table's Int64")]
    Overflow { column: &'static str },
}

/// Computes the KPI table; every working day it counts is one of `data.calendar`, the
/// calendar the ledger holds.
///
/// Takes the ledger rows and lets them go once they are added up: the tallies' and the
/// formulas' columns then reuse their memory instead of fresh pages, which the kernel must
/// zero first (on a month of 30,000 agents about a second of system time otherwise; design
/// note 54).
pub fn compute(data: LedgerData, params: &KpiParams) -> Result<DataFrame, KpiError> {
    let started = std::time::Instant::now();
    let tallies = tallies::tally(data, params)?;
    let kpis = formulas::apply(tallies, params)?;
    let table = table::contract_columns(&kpis)?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        rows = table.height(),
        "kpi table built"
    );
    Ok(table)
}
