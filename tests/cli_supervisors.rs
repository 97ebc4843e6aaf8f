//! The supervisor table from the command line: `aqs run` writes it beside `kpi.parquet`,
//! `aqs analytics` into the data folder beside the KPI files with the norms of its settings,
//! and a norm no run could use is refused, named.

use std::path::Path;
use std::process::Command;

use aqs_tables::DataDir;
use aqs_tables::kpi::rows::read_file;
use aqs_tables::layout::SUPERVISOR_RUN_FILE;
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

/// S1 leads T1 (A1); one coaching session on Monday 2026-11-16 and none after.
const EVENTS: &str = concat!(
    r#"{"event_id":"t1","type":"team_defined","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","payload":{"team_id":"T1","team_name":"一组","branch_id":"B1","region_id":"R1","supervisor_id":"S1"}}"#,
    "\n",
    r#"{"event_id":"j1","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-06-30T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"team_id":"T1","effective_date":"2026-07-01"}}"#,
    "\n",
    r#"{"event_id":"c1","type":"coaching_session","schema_version":1,"occurred_at":"2026-11-16T17:30:00+08:00","source":"app","agent_id":"A1","payload":{"supervisor_id":"S1","duration_minutes":30,"topic":"skill"}}"#,
    "\n",
);

fn row_of(
    path: &Path,
    scope: &str,
    period: &str,
    start: &str,
) -> serde_json::Map<String, serde_json::Value> {
    read_file(path, None)
        .expect("read supervisors")
        .into_iter()
        .find(|row| {
            row["scope"] == json!(scope)
                && row["period"] == json!(period)
                && row["period_start"] == json!(start)
        })
        .unwrap_or_else(|| panic!("no {scope} {period} row of {start} in {}", path.display()))
}

#[test]
fn run_and_analytics_write_the_supervisor_table_beside_the_kpis() {
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
    // November through Wednesday the 18th: 13 working days (2–6, 9–13, 16–18), one session.
    let month = row_of(
        &out.join(SUPERVISOR_RUN_FILE),
        "supervisor",
        "month",
        "2026-11-01",
    );
    assert_eq!(month["scope_id"], json!("S1"));
    assert_eq!(month["working_days"], json!(13));
    assert_eq!(month["coaching_sessions"], json!(1));
    assert_eq!(month["coaching_target"], json!(13.0));
    assert_eq!(month["agents_not_coached"], json!(0));

    let store = out.join("store");
    let status = aqs(&store)
        .args(["analytics", "--as-of", "2026-11-18"])
        .env("AQS_SUPERVISOR_COACHINGS_PER_WORKING_DAY", "2")
        .env("AQS_SUPERVISOR_NOT_COACHED_WORKING_DAYS", "2")
        .status()
        .expect("analytics");
    assert!(status.success());
    let (file, as_of) = DataDir::new(&store)
        .supervisor_files()
        .newest()
        .expect("a supervisor file in the data folder");
    assert_eq!(as_of.to_string(), "2026-11-18");
    let month = row_of(&file, "supervisor", "month", "2026-11-01");
    assert_eq!(month["coaching_target"], json!(26.0));
    // Two working days (17, 18) since the session of the 16th.
    assert_eq!(month["agents_not_coached"], json!(1));
}

#[test]
fn a_norm_no_run_could_use_is_refused_naming_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let output = aqs(work.path())
        .args([
            "analytics",
            "--as-of",
            "2026-11-18",
            "--supervisor-evaluated-share",
            "1.5",
        ])
        .output()
        .expect("analytics");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("evaluated share") && stderr.contains("1.5"),
        "{stderr}"
    );
}
