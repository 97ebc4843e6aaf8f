//! Working days: Monday to Friday, changed by the calendar's declared days: public holidays
//! and swapped working days (调休, a weekend day worked in exchange for a holiday). The
//! declarations travel as `calendar_day` events; the operator's calendar file turns into
//! them ([`WorkingCalendar::declarations`]).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use crate::event::{CalendarDay, DayKind, Event, Payload};
use crate::time::OccurredAt;

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

    /// The calendar that declared days make, each date with the kind in force.
    pub fn from_declared(days: impl IntoIterator<Item = (NaiveDate, DayKind)>) -> Self {
        let mut calendar = Self::default();
        for (date, kind) in days {
            match kind {
                DayKind::Holiday => calendar.holidays.insert(date),
                DayKind::WorkingDay => calendar.working_days.insert(date),
            };
        }
        calendar
    }

    /// The calendar's dates as `calendar_day` events of `source`, declared at `declared_at`
    /// (which decides against other declarations of the same dates). The ids name the date,
    /// the kind and the instant, so importing one file again gives the same events
    /// (duplicates), while a file declared again later gives new events that win.
    pub fn declarations(&self, source: &str, declared_at: DateTime<FixedOffset>) -> Vec<Event> {
        let kinds = self
            .holidays
            .iter()
            .map(|date| (*date, DayKind::Holiday))
            .chain(
                self.working_days
                    .iter()
                    .map(|date| (*date, DayKind::WorkingDay)),
            );
        let mut events: Vec<Event> = kinds
            .map(|(date, kind)| Event {
                event_id: format!(
                    "calendar-{date}-{}-{}",
                    kind.as_str(),
                    declared_at.timestamp()
                ),
                occurred_at: OccurredAt::new(declared_at),
                source: source.to_owned(),
                agent_id: None,
                payload: Payload::CalendarDay(CalendarDay {
                    date,
                    kind,
                    name: None,
                }),
            })
            .collect();
        events.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        events
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
    fn a_file_turns_into_one_declaration_a_date_and_back() {
        let calendar = WorkingCalendar::from_json(
            r#"{"holidays": ["2026-10-01", "2026-10-02"], "working_days": ["2026-10-10"]}"#,
        )
        .expect("calendar");
        let at = DateTime::parse_from_rfc3339("2026-09-20T10:00:00+08:00").expect("instant");
        let events = calendar.declarations("calendar-file", at);
        let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "calendar-2026-10-01-holiday-1789869600",
                "calendar-2026-10-02-holiday-1789869600",
                "calendar-2026-10-10-working_day-1789869600",
            ]
        );
        let days = events.iter().map(|e| match &e.payload {
            Payload::CalendarDay(day) => (day.date, day.kind),
            other => panic!("not a calendar day: {other:?}"),
        });
        assert_eq!(WorkingCalendar::from_declared(days), calendar);
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
