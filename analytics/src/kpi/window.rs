//! The business dates the job reads, as day numbers from 0 (the window's first day), and
//! the periods of each kind (day, ISO week, month) those days fall in.

use chrono::{Duration, NaiveDate};

use crate::data::Interval;
use crate::periods::PeriodKind;
use crate::spans::PeriodIndex;

/// The days read: from the start of every period touching `since` through the as-of date.
pub(crate) struct DayWindow {
    pub(crate) first: NaiveDate,
    pub(crate) last: NaiveDate,
    pub(crate) days: usize,
}

impl DayWindow {
    pub(crate) fn new(first: NaiveDate, last: NaiveDate) -> Self {
        Self {
            first,
            last,
            days: (last - first).num_days() as usize + 1,
        }
    }

    /// The day number of a date, if the window holds it.
    pub(crate) fn day(&self, date: NaiveDate) -> Option<u32> {
        (self.first <= date && date <= self.last).then(|| (date - self.first).num_days() as u32)
    }

    pub(crate) fn date(&self, day: u32) -> NaiveDate {
        self.first + Duration::days(i64::from(day))
    }

    /// The window's days from `first` through `last`, if any.
    pub(crate) fn days_between(&self, first: NaiveDate, last: NaiveDate) -> Option<(u32, u32)> {
        let (first, last) = (first.max(self.first), last.min(self.last));
        (first <= last).then(|| {
            (
                (first - self.first).num_days() as u32,
                (last - self.first).num_days() as u32,
            )
        })
    }

    /// The window's days of an interval (from `from` through the day before `to`).
    pub(crate) fn interval(&self, interval: &Interval) -> Option<(u32, u32)> {
        let last = interval.to.map_or(self.last, |to| to - Duration::days(1));
        self.days_between(interval.from, last)
    }
}

/// Index of each kind's periods in `[Periods; 3]`, in `PeriodKind::ALL` order.
pub(crate) const DAY: usize = 0;
pub(crate) const WEEK: usize = 1;
pub(crate) const MONTH: usize = 2;

/// The kinds in the output's order: by name (day, month, week), as the table is sorted.
pub(crate) const KINDS_IN_OUTPUT_ORDER: [usize; 3] = [DAY, MONTH, WEEK];

/// The periods of one kind that the window touches, numbered from 0.
pub(crate) struct Periods {
    pub(crate) kind: PeriodKind,
    /// The period of each day.
    pub(crate) index: PeriodIndex,
    pub(crate) starts: Vec<NaiveDate>,
    /// The last day of each period inside the window.
    pub(crate) last_days: Vec<u32>,
    /// Periods before this one start before `since`: read for nothing but their days.
    pub(crate) first_reported: u32,
}

impl Periods {
    pub(crate) fn new(kind: PeriodKind, window: &DayWindow, since: NaiveDate) -> Self {
        let mut starts: Vec<NaiveDate> = Vec::new();
        let mut of_day = Vec::with_capacity(window.days);
        for day in 0..window.days as u32 {
            let start = kind.start_of(window.date(day));
            if starts.last() != Some(&start) {
                starts.push(start);
            }
            of_day.push(starts.len() as u32 - 1);
        }
        let mut last_days = vec![0; starts.len()];
        for (day, period) in of_day.iter().enumerate() {
            last_days[*period as usize] = day as u32;
        }
        let since = kind.start_of(since);
        let first_reported = starts.iter().take_while(|s| **s < since).count() as u32;
        Self {
            kind,
            index: PeriodIndex::new(of_day),
            starts,
            last_days,
            first_reported,
        }
    }

    /// Every kind's periods, in `PeriodKind::ALL` order.
    pub(crate) fn all(window: &DayWindow, since: NaiveDate) -> [Self; 3] {
        PeriodKind::ALL.map(|kind| Self::new(kind, window, since))
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    #[test]
    fn days_are_numbered_from_the_windows_first_day() {
        let window = DayWindow::new(date("2026-10-26"), date("2026-11-18"));
        assert_eq!(window.days, 24);
        assert_eq!(window.day(date("2026-11-01")), Some(6));
        assert_eq!(window.day(date("2026-11-19")), None);
        assert_eq!(window.date(6), date("2026-11-01"));
        assert_eq!(
            window.days_between(date("2026-10-01"), date("2026-10-27")),
            Some((0, 1))
        );
        assert_eq!(
            window.days_between(date("2026-11-19"), date("2026-11-30")),
            None
        );
        let running = Interval {
            agent_id: "A1".into(),
            key: "T1".into(),
            from: date("2026-11-10"),
            to: None,
        };
        assert_eq!(window.interval(&running), Some((15, 23)));
        let ended = Interval {
            to: Some(date("2026-11-12")),
            ..running
        };
        assert_eq!(window.interval(&ended), Some((15, 16)));
    }

    #[test]
    fn periods_before_since_are_read_but_not_reported() {
        // Since 1 November (a Sunday): the window starts on Monday 26 October.
        let window = DayWindow::new(date("2026-10-26"), date("2026-11-18"));
        let [days, weeks, months] = Periods::all(&window, date("2026-11-01"));
        assert_eq!(days.len(), 24);
        assert_eq!(days.first_reported, 6);
        assert_eq!(weeks.len(), 4);
        // The week of 26 October holds 1 November: it is reported.
        assert_eq!(weeks.first_reported, 0);
        assert_eq!(weeks.last_days, [6, 13, 20, 23]);
        assert_eq!(months.starts, [date("2026-10-01"), date("2026-11-01")]);
        assert_eq!(months.first_reported, 1);
        assert_eq!(months.index.of(5), 0);
        assert_eq!(months.index.of(6), 1);
    }
}
