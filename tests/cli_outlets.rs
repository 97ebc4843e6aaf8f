//! The outlet table from the command line: `aqs run` writes it beside `kpi.parquet`,
//! `aqs analytics` into the data folder beside the KPI files, and thresholds that do not
//! descend are refused with the three values named.

use std::path::Path;
use std::process::Command;

use aqs_tables::DataDir;
use aqs_tables::kpi::rows::read_file;
use aqs_tables::layout::OUTLET_RUN_FILE;
use serde_json::json;

/// `aqs` with its data folder set and no Kafka or ClickHouse.
fn aqs(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aqs"));
    command
        .env("AQS_DATA_DIR", data_dir)
        .env("AQS_LOG", "warn")
        .env_remove("AQS_KAFKA_BROKERS")
        .env_remove("AQS_CLICKHOUSE_URL");
    command
}

const EVENTS: &str = concat!(
    r#"{"event_id":"t1","type":"team_defined","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","payload":{"team_id":"T1","team_name":"一组","branch_id":"B1","region_id":"R1"}}"#,
    "\n",
    r#"{"event_id":"j1","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"team_id":"T1","effective_date":"2026-07-01"}}"#,
    "\n",
    r#"{"event_id":"a1","type":"outlet_assigned","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"outlet_id":"O1","effective_date":"2026-07-01"}}"#,
    "\n",
    r#"{"event_id":"s1","type":"sale_closed","schema_version":1,"occurred_at":"2026-08-14T11:00:00+08:00","source":"core","agent_id":"A1","payload":{"outlet_id":"O1","policy_id":"P1","product_code":"WL","premium":"90000.00","payment_mode":"single"}}"#,
    "\n",
    r#"{"event_id":"v1","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T10:00:00+08:00","source":"app","agent_id":"A1","payload":{"outlet_id":"O1","purpose":"promotion"}}"#,
    "\n",
);

fn row_of(path: &Path, scope: &str, month: &str) -> serde_json::Map<String, serde_json::Value> {
    read_file(path, None)
        .expect("read outlets")
        .into_iter()
        .find(|row| row["scope"] == json!(scope) && row["month"] == json!(month))
        .unwrap_or_else(|| panic!("no {scope} row of {month} in {}", path.display()))
}

#[test]
fn run_and_analytics_write_the_outlet_table_beside_the_kpis() {
    let work = tempfile::tempdir().expect("tempdir");
    let events = work.path().join("events.ndjson");
    std::fs::write(&events, EVENTS).expect("events");
    let out = work.path().join("out");
    let status = aqs(&work.path().join("unused"))
        .args(["run", "--as-of", "2026-11-18", "--since", "2026-11-01"])
        .arg("--events")
        .arg(&events)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("run");
    assert!(status.success());
    // 90,000 in August / 3 = 30,000.00 → B with the defaults; with A from 30,000, an A.
    let outlet = row_of(&out.join(OUTLET_RUN_FILE), "outlet", "2026-11-01");
    assert_eq!(outlet["scope_id"], json!("O1"));
    assert_eq!(outlet["grade"], json!("B"));
    assert_eq!(outlet["grade_basis_premium"], json!("30000.00"));
    assert_eq!(outlet["last_visit_date"], json!("2026-11-02"));
    let team = row_of(&out.join(OUTLET_RUN_FILE), "team", "2026-11-01");
    assert_eq!(team["grade_b_outlets"], json!(1));

    let store = out.join("store");
    let status = aqs(&store)
        .args(["analytics", "--as-of", "2026-11-18"])
        .env("AQS_OUTLET_GRADE_A_PREMIUM", "30000")
        .status()
        .expect("analytics");
    assert!(status.success());
    let (file, as_of) = DataDir::new(&store)
        .outlet_files()
        .newest()
        .expect("an outlet file in the data folder");
    assert_eq!(as_of.to_string(), "2026-11-18");
    assert_eq!(row_of(&file, "outlet", "2026-11-01")["grade"], json!("A"));
}

#[test]
fn thresholds_that_do_not_descend_are_refused_naming_them() {
    let work = tempfile::tempdir().expect("tempdir");
    let output = aqs(work.path())
        .args([
            "analytics",
            "--as-of",
            "2026-11-18",
            "--outlet-grade-b-premium",
            "60000",
        ])
        .output()
        .expect("analytics");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("A ≥ B ≥ C") && stderr.contains("B 60000.00"),
        "{stderr}"
    );
}
