//! The dashboard's embedded store serves the supervisor file of its run beside the KPI and
//! outlet files, and picks it up when the supervisor job writes it after them.

use aqs_dashboard::store::{Snapshot, refresh};
use aqs_tables::DataDir;
use chrono::NaiveDate;
use polars::prelude::*;
use serde_json::Value;

fn write(path: &std::path::Path, scope: &str, ids: &[&str]) {
    let mut frame = DataFrame::new(
        ids.len(),
        vec![
            Column::new("scope".into(), vec![scope; ids.len()]),
            Column::new("scope_id".into(), ids.to_vec()),
        ],
    )
    .expect("frame");
    aqs_tables::kpi::write_parquet(&mut frame, path).expect("write");
}

#[test]
fn the_supervisor_file_of_the_run_is_loaded_beside_it_and_again_when_it_comes_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(dir.path());
    let as_of: NaiveDate = "2026-11-18".parse().expect("date");
    write(&data.kpi_files().file(as_of), "team", &["T1"]);
    write(&data.outlet_files().file(as_of), "outlet", &["O1"]);
    let mut snapshot = Snapshot::default();
    assert!(refresh(&data, &mut snapshot).expect("refresh"));
    assert!(
        snapshot.supervisor_rows.is_empty(),
        "no supervisor file yet"
    );
    assert!(!refresh(&data, &mut snapshot).expect("refresh"));
    write(
        &data.supervisor_files().file(as_of),
        "supervisor",
        &["S1", "S2"],
    );
    assert!(refresh(&data, &mut snapshot).expect("refresh"));
    let ids: Vec<&str> = snapshot
        .supervisor_rows
        .iter()
        .filter_map(|row| row.get("scope_id").and_then(Value::as_str))
        .collect();
    assert_eq!(ids, ["S1", "S2"]);
    assert_eq!(snapshot.outlet_rows.len(), 1, "the outlet rows stay");
    assert!(!refresh(&data, &mut snapshot).expect("refresh"));
}
