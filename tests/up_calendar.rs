//! `aqs up` takes the calendar from the ledger: `--demo` sends the demo calendar as events
//! and `--calendar FILE` imports a file at start; the projector folds both into
//! `calendar_days`, where the KPI job reads it.

#[path = "support/up.rs"]
mod up;

use std::time::{Duration, Instant};

use aqs_schemas::generator::demo_calendar;
use aqs_schemas::{BusinessClock, WorkingCalendar, YearMonth};
use aqs_tables::ledgers::window::{LedgerSource, SqliteSource};
use chrono::{Datelike, Days};
use up::Up;

#[test]
fn the_demo_and_a_calendar_file_reach_the_ledger_calendar() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("up");
    let file = work.path().join("calendar.json");
    // A date the demo calendar never declares (it declares Mondays and Saturdays).
    std::fs::write(&file, r#"{"holidays": ["2030-10-01"]}"#).expect("calendar file");
    let _up = Up::start(
        &data,
        &[
            "--demo",
            "--demo-agents",
            "10",
            "--demo-events-per-second",
            "1",
            "--calendar",
            file.to_str().expect("utf-8 path"),
        ],
    );

    let today = BusinessClock::default().today();
    let start = (today.with_day(1).expect("day 1") - Days::new(1))
        .with_day(1)
        .expect("day 1");
    let mut expected = demo_calendar(start, YearMonth::of(today).last_day());
    expected
        .holidays
        .insert("2030-10-01".parse().expect("date"));

    let source = SqliteSource::new(aqs_tables::DataDir::new(&data).ledgers());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut found = WorkingCalendar::default();
    while Instant::now() < deadline {
        if let Ok(calendar) = source.load_calendar() {
            found = calendar;
            if found == expected {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("the ledger's calendar {found:?} is not the demo's and the file's {expected:?}");
}
