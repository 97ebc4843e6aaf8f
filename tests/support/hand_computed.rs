//! What the hand-computed tests of a table built beside the KPIs (outlets, supervisors)
//! share: their events folded into a fresh embedded ledger store, and the table's rows read
//! and checked against the figures worked out by hand. Included with
//! `#[path = "support/hand_computed.rs"] mod hand_computed;`.

use aqs_eventlog::Positions;
use aqs_projector::ledger::{Ledger, digest};
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{LedgerSink, RowVersions};
use aqs_schemas::{BusinessClock, Decoder};
use polars::prelude::*;

/// A cell as the tests write their expectations.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Null,
    I(i64),
    F(f64),
    S(&'static str),
    B(bool),
}
use V::*;

/// The events folded in reverse order (the job must not care) into a fresh embedded store.
pub fn ledgers<'a>(
    lines: impl DoubleEndedIterator<Item = &'a str>,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = aqs_tables::DataDir::new(dir.path()).ledgers();
    let mut ledger = folded(lines.rev());
    let mut sink = SqliteSink::open(&path).expect("ledger store");
    sink.publish(
        &ledger.take_changes(),
        &RowVersions::new(&Positions::new(), 1),
    )
    .expect("publish");
    (dir, path)
}

/// The events folded in the order given.
pub fn folded<'a>(lines: impl Iterator<Item = &'a str>) -> Ledger {
    let mut ledger = Ledger::new(BusinessClock::default());
    for line in lines {
        let event = Decoder::standard()
            .decode(line.as_bytes())
            .expect("valid event");
        ledger.apply(&event, digest(line.as_bytes()));
    }
    ledger
}

pub fn value(frame: &DataFrame, column: &str, row: usize) -> V {
    match frame.column(column).expect(column).get(row).expect("row") {
        AnyValue::Null => Null,
        AnyValue::Int64(v) => I(v),
        AnyValue::Float64(v) => F(v),
        AnyValue::Boolean(v) => B(v),
        AnyValue::String(s) => S(Box::leak(s.to_owned().into_boxed_str())),
        other => S(Box::leak(other.to_string().into_boxed_str())),
    }
}

fn same(got: &V, want: &V) -> bool {
    match (got, want) {
        (F(got), F(want)) => (got - want).abs() < 1e-9,
        _ => got == want,
    }
}

/// The row whose `key` columns hold `values`.
pub fn find_row(frame: &DataFrame, key: &[&str], values: &[&str]) -> Option<usize> {
    (0..frame.height()).find(|&row| {
        key.iter()
            .zip(values)
            .all(|(column, want)| matches!(value(frame, column, row), S(got) if got == *want))
    })
}

/// The row whose `key` columns hold `values` has the `expected` figures.
pub fn check_row(frame: &DataFrame, key: &[&str], values: &[&str], expected: &[(&str, V)]) {
    let row =
        find_row(frame, key, values).unwrap_or_else(|| panic!("no row for {}", values.join(" ")));
    let wrong: Vec<String> = expected
        .iter()
        .filter_map(|(column, want)| {
            let got = value(frame, column, row);
            (!same(&got, want)).then(|| format!("{column}: got {got:?}, want {want:?}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{}:\n  {}",
        values.join(" "),
        wrong.join("\n  ")
    );
}
