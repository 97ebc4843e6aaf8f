//! `aqs up` takes the calendar from the ledger: `--demo` sends the demo calendar as events,
//! `--calendar FILE` imports a file at start and an upstream system posts `calendar_day`
//! to ingest; the projector folds them all into `calendar_days`, where the KPI job reads it.

#[path = "support/up.rs"]
mod up;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use aqs_schemas::generator::{demo_calendar, demo_start};
use aqs_schemas::{BusinessClock, WorkingCalendar, YearMonth};
use aqs_tables::ledgers::window::{LedgerSource, SqliteSource};
use up::Up;

/// The status line of a JSON `POST` of `body` to ingest's `/v1/events`.
fn post_events(address: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        stream,
        "POST /v1/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

#[test]
fn the_demo_a_calendar_file_and_a_posted_day_reach_the_ledger_calendar() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("up");
    let file = work.path().join("calendar.json");
    // A date the demo calendar never declares (it declares Mondays and Saturdays).
    std::fs::write(&file, r#"{"holidays": ["2030-10-01"]}"#).expect("calendar file");
    let up = Up::start(
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
    let mut expected = demo_calendar(demo_start(today), YearMonth::of(today).last_day());
    expected
        .holidays
        .insert("2030-10-01".parse().expect("date"));
    let answer = post_events(
        &up.ingest,
        r#"[{"event_id":"cal-2030-10-12","type":"calendar_day","schema_version":1,"occurred_at":"2030-09-20T10:00:00+08:00","source":"hr","payload":{"date":"2030-10-12","kind":"working_day","name":"国庆节调休"}}]"#,
    );
    assert!(answer.contains("\"accepted\":1"), "{answer}");
    expected
        .working_days
        .insert("2030-10-12".parse().expect("date"));

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
    panic!(
        "the ledger's calendar {found:?} is not the demo's, the file's and the posted one \
         {expected:?} (aqs up with its dashboard at {})",
        up.dashboard
    );
}
