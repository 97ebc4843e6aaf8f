//! The calendar file as a convenience: `aqs calendar import` turns it into `calendar_day`
//! events (again: nothing new; a date outside the contract: refused, naming the field),
//! `aqs run --calendar` imports it into its own log so its KPIs count the swapped Saturday,
//! and `aqs analytics` no longer reads a file but says how to import it.

use std::path::Path;
use std::process::{Command, Output};

use polars::prelude::*;

fn aqs(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aqs"));
    command
        .env("AQS_DATA_DIR", data_dir)
        .env("AQS_LOG", "warn")
        .env_remove("AQS_KAFKA_BROKERS")
        .env_remove("AQS_CLICKHOUSE_URL")
        .env_remove("AQS_CALENDAR");
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_calendar_file_imports_once_and_a_date_outside_the_contract_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let file = dir.path().join("calendar.json");
    std::fs::write(
        &file,
        r#"{"holidays": ["2026-10-01", "2026-10-02"], "working_days": ["2026-10-10"]}"#,
    )
    .expect("write");
    let import = |file: &Path| {
        aqs(&data)
            .args(["calendar", "import"])
            .arg(file)
            .output()
            .expect("run aqs calendar import")
    };
    let first = import(&file);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("2 holidays and 1 working days declared at")
            && text(&first).contains("3 appended, 0 already in the log, 0 conflicting"),
        "{}",
        text(&first)
    );
    // The same file again: the same events, nothing appended.
    let again = import(&file);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("0 appended, 3 already in the log"),
        "{}",
        text(&again)
    );

    let old = dir.path().join("old.json");
    std::fs::write(&old, r#"{"holidays": ["1999-10-01"]}"#).expect("write");
    let refused = import(&old);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("payload.date"),
        "the field at fault is named: {}",
        text(&refused)
    );

    let contradiction = dir.path().join("both.json");
    std::fs::write(
        &contradiction,
        r#"{"holidays": ["2026-10-10"], "working_days": ["2026-10-10"]}"#,
    )
    .expect("write");
    let refused = import(&contradiction);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("2026-10-10 both as a holiday and as a working day"),
        "{}",
        text(&refused)
    );
}

#[test]
fn aqs_analytics_points_a_calendar_file_at_the_import() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = aqs(&dir.path().join("data"))
        .args(["analytics", "--calendar", "calendar.json"])
        .output()
        .expect("run aqs analytics");
    assert!(!output.status.success());
    assert!(
        text(&output).contains("aqs calendar import calendar.json"),
        "{}",
        text(&output)
    );
}

#[test]
fn aqs_run_counts_the_swapped_saturday_of_its_calendar_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("events.ndjson");
    std::fs::write(
        &events,
        [
            r#"{"event_id":"t1","type":"team_defined","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","payload":{"team_id":"T1","team_name":"一组","branch_id":"B1","region_id":"R1"}}"#,
            r#"{"event_id":"j1","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"team_id":"T1","effective_date":"2026-11-01"}}"#,
            r#"{"event_id":"v1","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T10:00:00+08:00","source":"app","agent_id":"A1","payload":{"outlet_id":"O1","purpose":"training"}}"#,
        ]
        .join("\n"),
    )
    .expect("write");
    let calendar = dir.path().join("calendar.json");
    std::fs::write(
        &calendar,
        r#"{"holidays": ["2026-11-16"], "working_days": ["2026-11-07"]}"#,
    )
    .expect("write");
    let out = dir.path().join("out");
    let output = aqs(&dir.path().join("data"))
        .args(["run", "--as-of", "2026-11-12", "--events"])
        .arg(&events)
        .arg("--calendar")
        .arg(&calendar)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run aqs run");
    assert!(output.status.success(), "{}", text(&output));

    let kpis = ParquetReader::new(std::fs::File::open(out.join("kpi.parquet")).expect("open"))
        .finish()
        .expect("read kpi.parquet");
    let month = kpis
        .lazy()
        .filter(
            col("scope")
                .eq(lit("agent"))
                .and(col("period").eq(lit("month"))),
        )
        .select([col("time_progress"), col("working_days_remaining")])
        .collect()
        .expect("month row");
    assert_eq!(month.height(), 1, "{month}");
    // 2–6, the swapped 7th and 9–12 elapsed: 10 of the month's 21 working days; the 12th,
    // 13th, 17th–20th, 23rd–27th and 30th ahead: 12 (without the calendar 9 of 21, and 13).
    let progress = month
        .column("time_progress")
        .expect("column")
        .f64()
        .expect("f64");
    assert!(
        (progress.get(0).expect("value") - 10.0 / 21.0).abs() < 1e-9,
        "{month}"
    );
    let remaining = month
        .column("working_days_remaining")
        .expect("column")
        .cast(&DataType::Int64)
        .expect("cast");
    assert_eq!(remaining.i64().expect("i64").get(0), Some(12), "{month}");
}
