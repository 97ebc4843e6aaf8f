//! Periods (day, ISO week, month) and their working days.

use aqs_schemas::{WorkingCalendar, YearMonth};
use chrono::{Datelike, Duration, NaiveDate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeriodKind {
    Day,
    Week,
    Month,
}

impl PeriodKind {
    pub const ALL: [PeriodKind; 3] = [PeriodKind::Day, PeriodKind::Week, PeriodKind::Month];

    pub const fn name(self) -> &'static str {
        match self {
            PeriodKind::Day => "day",
            PeriodKind::Week => "week",
            PeriodKind::Month => "month",
        }
    }

    /// First day of the period containing `date`.
    pub fn start_of(self, date: NaiveDate) -> NaiveDate {
        match self {
            PeriodKind::Day => date,
            PeriodKind::Week => {
                date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
            }
            PeriodKind::Month => YearMonth::of(date).first_day(),
        }
    }

    /// Last day of the period starting on `start`.
    pub fn end_of(self, start: NaiveDate) -> NaiveDate {
        match self {
            PeriodKind::Day => start,
            PeriodKind::Week => start + Duration::days(6),
            PeriodKind::Month => YearMonth::of(start).last_day(),
        }
    }
}

/// Days since 1970-01-01, the physical form of a polars `Date`.
pub fn day_number(date: NaiveDate) -> i32 {
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

pub fn from_day_number(days: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + Duration::days(i64::from(days))
}

/// The working days of a period: all of them, and those through an as-of date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingDays {
    pub total: u32,
    pub elapsed: u32,
}

/// The working days of the period of `kind` starting on `start`, and of them those
/// through `as_of` (all of them for a period already over, none for one not begun).
pub fn working_days(
    calendar: &WorkingCalendar,
    kind: PeriodKind,
    start: NaiveDate,
    as_of: NaiveDate,
) -> WorkingDays {
    let end = kind.end_of(start);
    WorkingDays {
        total: calendar.working_days_between(start, end),
        elapsed: calendar.working_days_between(start, end.min(as_of)),
    }
}

/// The working days of the period of `kind` starting on `start` that are still ahead on
/// `as_of`, the as-of date included when it is one (none for a period already over; all of
/// them for one not begun).
pub fn working_days_from(
    calendar: &WorkingCalendar,
    kind: PeriodKind,
    start: NaiveDate,
    as_of: NaiveDate,
) -> u32 {
    let end = kind.end_of(start);
    if as_of > end {
        return 0;
    }
    calendar.working_days_between(start.max(as_of), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    #[test]
    fn periods_start_and_end_where_expected() {
        assert_eq!(
            PeriodKind::Week.start_of(day("2026-11-01")),
            day("2026-10-26")
        );
        assert_eq!(
            PeriodKind::Week.end_of(day("2026-10-26")),
            day("2026-11-01")
        );
        assert_eq!(
            PeriodKind::Month.start_of(day("2026-11-18")),
            day("2026-11-01")
        );
        assert_eq!(
            PeriodKind::Month.end_of(day("2026-02-01")),
            day("2026-02-28")
        );
        assert_eq!(
            from_day_number(day_number(day("2026-11-18"))),
            day("2026-11-18")
        );
    }

    #[test]
    fn working_days_ahead_count_the_as_of_date_when_it_is_one() {
        let calendar = WorkingCalendar::default();
        let november = day("2026-11-01");
        let ahead =
            |as_of: &str| working_days_from(&calendar, PeriodKind::Month, november, day(as_of));
        // Wednesday the 18th through Monday the 30th: 9 working days, the 18th included.
        assert_eq!(ahead("2026-11-18"), 9);
        // The last working day of the month: itself.
        assert_eq!(ahead("2026-11-30"), 1);
        // Saturday the 28th: Monday the 30th is still ahead.
        assert_eq!(ahead("2026-11-28"), 1);
        assert_eq!(ahead("2026-12-01"), 0);
        assert_eq!(ahead("2026-10-15"), 21);
    }

    #[test]
    fn working_days_count_through_the_as_of_date() {
        let calendar = WorkingCalendar::default();
        // November 2026 has 21 working days; through Wednesday the 18th, 13 have passed.
        assert_eq!(
            working_days(
                &calendar,
                PeriodKind::Month,
                day("2026-11-01"),
                day("2026-11-18")
            ),
            WorkingDays {
                total: 21,
                elapsed: 13
            }
        );
        assert_eq!(
            working_days(
                &calendar,
                PeriodKind::Month,
                day("2026-10-01"),
                day("2026-11-18")
            ),
            WorkingDays {
                total: 22,
                elapsed: 22
            }
        );
        // A Saturday, and a week not begun.
        assert_eq!(
            working_days(
                &calendar,
                PeriodKind::Day,
                day("2026-11-14"),
                day("2026-11-18")
            ),
            WorkingDays {
                total: 0,
                elapsed: 0
            }
        );
        assert_eq!(
            working_days(
                &calendar,
                PeriodKind::Week,
                day("2026-11-23"),
                day("2026-11-18")
            ),
            WorkingDays {
                total: 5,
                elapsed: 0
            }
        );
    }
}
