//! The demo region of `aqs up --demo` shows every finding: agents drifting towards visits,
//! dormant outlets, outlets of all four grades, a team moving to another branch on a date
//! (its earlier months stay with the old branch) and the working-day calendar. The
//! generator's demo configuration is folded into a ledger and both tables are computed, as
//! `aqs up --demo` does, for a fixed day.

use std::collections::BTreeSet;

use aqs_analytics::kpi::{KpiParams, compute as compute_kpis, read_ledgers};
use aqs_analytics::outlets::{OutletParams, compute as compute_outlets, read_outlet_ledgers};
use aqs_eventlog::Positions;
use aqs_projector::ledger::{Ledger, digest};
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{LedgerSink, RowVersions};
use aqs_schemas::generator::{demo_config, generate};
use aqs_schemas::{BusinessClock, Decoder};
use aqs_tables::ledgers::window::SqliteSource;
use aqs_tables::outlets::source::SqliteOutletSource;
use chrono::NaiveDate;
use polars::prelude::*;

fn date(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

fn texts(frame: &DataFrame, column: &str) -> Vec<Option<String>> {
    frame
        .column(column)
        .expect(column)
        .as_materialized_series()
        .iter()
        .map(|value| match value {
            AnyValue::Null => None,
            AnyValue::String(s) => Some(s.to_owned()),
            AnyValue::StringOwned(s) => Some(s.to_string()),
            other => Some(other.to_string()),
        })
        .collect()
}

fn flags(frame: &DataFrame, column: &str) -> Vec<Option<bool>> {
    frame
        .column(column)
        .expect(column)
        .bool()
        .expect("bool")
        .iter()
        .collect()
}

#[test]
fn the_demo_region_shows_every_finding() {
    // A Tuesday: the demo runs from July 1st (the quarter before the fourth) through Monday
    // the 7th.
    let today = date("2026-12-08");
    let as_of = date("2026-12-07");
    let config = demo_config(7, 100, today);
    assert_eq!(config.start, date("2026-07-01"));
    let mut bytes = Vec::new();
    generate(&config, &mut bytes).expect("generate");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = aqs_tables::DataDir::new(dir.path()).ledgers();
    let mut ledger = Ledger::new(BusinessClock::default());
    for line in bytes.split(|b| *b == b'\n').filter(|line| !line.is_empty()) {
        let event = Decoder::standard().decode(line).expect("valid event");
        ledger.apply(&event, digest(line));
    }
    SqliteSink::open(&path)
        .expect("ledger store")
        .publish(
            &ledger.take_changes(),
            &RowVersions::new(&Positions::new(), 1),
        )
        .expect("publish");

    let mut params = KpiParams::new(as_of);
    params.since = date("2026-10-01");
    let data = read_ledgers(&SqliteSource::new(&path), &params).expect("ledgers");
    // The calendar: a holiday and a swapped working Saturday every month.
    assert!(
        !data.calendar.holidays.is_empty() && !data.calendar.working_days.is_empty(),
        "{:?}",
        data.calendar
    );
    let kpis = compute_kpis(data, &params).expect("kpis");
    let scopes = texts(&kpis, "scope");
    let ids = texts(&kpis, "scope_id");
    let periods = texts(&kpis, "period");
    let starts = texts(&kpis, "period_start");
    let branches = texts(&kpis, "branch_id");
    let drift = flags(&kpis, "balance_drift");
    let drifting: BTreeSet<&str> = (0..kpis.height())
        .filter(|&i| drift[i] == Some(true) && scopes[i].as_deref() == Some("agent"))
        .filter_map(|i| ids[i].as_deref())
        .collect();
    assert!(!drifting.is_empty(), "some agent drifts towards visits");
    // T0007 moved from B001 to B002 on November 16th: October stays with B001, December is
    // B002's.
    let team_month = |start: &str| {
        (0..kpis.height())
            .find(|&i| {
                scopes[i].as_deref() == Some("team")
                    && ids[i].as_deref() == Some("T0007")
                    && periods[i].as_deref() == Some("month")
                    && starts[i].as_deref() == Some(start)
            })
            .and_then(|i| branches[i].clone())
    };
    assert_eq!(team_month("2026-10-01").as_deref(), Some("B001"));
    assert_eq!(team_month("2026-12-01").as_deref(), Some("B002"));

    let mut outlet_params = OutletParams::new(as_of);
    outlet_params.since = date("2026-12-01");
    let outlet_data =
        read_outlet_ledgers(&SqliteOutletSource::new(&path), &outlet_params).expect("ledgers");
    let outlets = compute_outlets(&outlet_data, &outlet_params).expect("outlets");
    let scopes = texts(&outlets, "scope");
    let grades = texts(&outlets, "grade");
    let dormant = flags(&outlets, "dormant");
    let rows = || (0..outlets.height()).filter(|&i| scopes[i].as_deref() == Some("outlet"));
    let seen: BTreeSet<&str> = rows().filter_map(|i| grades[i].as_deref()).collect();
    assert_eq!(seen, BTreeSet::from(["A", "B", "C", "D"]), "every grade");
    let dormant_outlets = rows().filter(|&i| dormant[i] == Some(true)).count();
    let outlet_rows = rows().count();
    assert!(
        dormant_outlets > 0 && dormant_outlets < outlet_rows / 2,
        "{dormant_outlets} of {outlet_rows} outlets dormant"
    );
}
