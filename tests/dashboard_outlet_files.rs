//! The dashboard's embedded store serves the outlet file of its run beside the KPI file,
//! and picks it up when the outlet job writes it after the KPIs of the same run.

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
fn the_outlet_file_of_the_run_is_loaded_beside_it_and_again_when_it_comes_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(dir.path());
    let as_of: NaiveDate = "2026-11-18".parse().expect("date");
    write(&data.kpi_files().file(as_of), "team", &["T1"]);
    let mut snapshot = Snapshot::default();
    assert!(refresh(&data, &mut snapshot).expect("refresh"));
    assert!(snapshot.outlet_rows.is_empty(), "no outlet file yet");
    assert!(!refresh(&data, &mut snapshot).expect("refresh"));
    // The outlet job writes its file after the KPI file of the same run.
    write(&data.outlet_files().file(as_of), "outlet", &["O1", "O2"]);
    assert!(refresh(&data, &mut snapshot).expect("refresh"));
    let ids: Vec<&str> = snapshot
        .outlet_rows
        .iter()
        .filter_map(|row| row.get("scope_id").and_then(Value::as_str))
        .collect();
    assert_eq!(ids, ["O1", "O2"]);
    assert_eq!(snapshot.rows.len(), 1);
    assert!(!refresh(&data, &mut snapshot).expect("refresh"));
}
