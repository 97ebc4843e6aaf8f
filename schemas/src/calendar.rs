//! Working days: Monday to Friday, changed by an operator's calendar of public holidays and
//! swapped working days (调休, a weekend day worked in exchange for a holiday).

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// The operator's calendar file: `{"holidays": ["2026-10-01", …], "working_days": ["2026-10-10"]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingCalendar {
    /// Weekdays that are not worked.
    #[serde(default)]
    pub holidays: BTreeSet<NaiveDate>,
    /// Weekend days that are worked.
    #[serde(default)]
    pub working_days: BTreeSet<NaiveDate>,
}

/// Why a calendar file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar is not valid: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("calendar lists {0} both as a holiday and as a working day")]
    Contradiction(NaiveDate),
}

impl WorkingCalendar {
    pub fn from_json(text: &str) -> Result<Self, CalendarError> {
        let calendar: Self = serde_json::from_str(text)?;
        if let Some(day) = calendar
            .holidays
            .intersection(&calendar.working_days)
            .next()
        {
            return Err(CalendarError::Contradiction(*day));
        }
        Ok(calendar)
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        if self.holidays.contains(&day) {
            return false;
        }
        if self.working_days.contains(&day) {
            return true;
        }
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// Working days from `first` to `last`, both included; zero when `last < first`.
    pub fn working_days_between(&self, first: NaiveDate, last: NaiveDate) -> u32 {
        first
            .iter_days()
            .take_while(|day| *day <= last)
            .filter(|day| self.is_working_day(*day))
            .count() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    #[test]
    fn holidays_and_swapped_days_change_the_count() {
        let plain = WorkingCalendar::default();
        assert_eq!(
            plain.working_days_between(day("2026-10-01"), day("2026-10-31")),
            22
        );
        let calendar = WorkingCalendar::from_json(
            r#"{"holidays": ["2026-10-01", "2026-10-02", "2026-10-05"], "working_days": ["2026-10-10"]}"#,
        )
        .expect("calendar");
        assert_eq!(
            calendar.working_days_between(day("2026-10-01"), day("2026-10-31")),
            20
        );
        assert!(calendar.is_working_day(day("2026-10-10")));
        assert!(!calendar.is_working_day(day("2026-10-01")));
        assert_eq!(
            calendar.working_days_between(day("2026-10-31"), day("2026-10-01")),
            0
        );
    }

    #[test]
    fn contradictions_are_refused() {
        let error = WorkingCalendar::from_json(
            r#"{"holidays": ["2026-10-10"], "working_days": ["2026-10-10"]}"#,
        )
        .expect_err("contradiction");
        assert!(error.to_string().contains("2026-10-10"));
    }
}
