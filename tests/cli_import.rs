//! `aqs import`: valid lines are appended even when others are bad; every bad line is reported
//! with its number and field errors and kept as a dead letter; repeats and conflicts are told
//! apart.

use std::process::Command;

use aqs_eventlog::sqlite::SqliteLog;

#[test]
fn import_keeps_the_good_lines_and_reports_the_bad_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("events.ndjson");
    let good = |id: &str, outlet: &str| {
        format!(
            r#"{{"event_id":"{id}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"app","agent_id":"A1","payload":{{"outlet_id":"{outlet}","purpose":"training"}}}}"#
        )
    };
    let lines = [
        good("v1", "O1"),
        r#"{"event_id":"v2","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"app","agent_id":"A1","payload":{"purpose":"lunch"}}"#.to_owned(),
        good("v3", "O3"),
        good("v1", "O1"),
        good("v3", "O9"),
        "not json".to_owned(),
    ];
    std::fs::write(&file, lines.join("\n")).expect("write");
    let data = dir.path().join("data");
    let output = Command::new(env!("CARGO_BIN_EXE_aqs"))
        .arg("import")
        .arg(&file)
        .env("AQS_DATA_DIR", &data)
        .env_remove("AQS_KAFKA_BROKERS")
        .output()
        .expect("run aqs import");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "bad input makes the exit code non-zero"
    );
    assert!(stdout.contains("line 2: event \"v2\" (outlet_visit) rejected: payload.outlet_id: missing; payload.purpose: must be one of"), "{stdout}");
    assert!(
        stdout.contains("line 5: event \"v3\" conflicts"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 6: event rejected: not valid JSON"),
        "{stdout}"
    );
    assert!(
        stderr.contains("2 accepted, 1 duplicate, 1 conflicting, 2 rejected"),
        "{stderr}"
    );

    let log = SqliteLog::open(
        aqs_tables::DataDir::new(&data).events(),
        aqs_eventlog::DEFAULT_PARTITIONS,
    )
    .expect("open log");
    assert_eq!(
        log.len().expect("len"),
        2,
        "the good lines are in the log once"
    );
    let letters = log.dead_letters().expect("dead letters");
    let origins: Vec<&str> = letters.iter().map(|l| l.origin.as_str()).collect();
    assert_eq!(origins.len(), 3, "{origins:?}");
    assert!(origins.iter().all(|o| o.starts_with("import ")));
    assert!(
        letters
            .iter()
            .any(|l| l.reason.contains("\"field\":\"payload.outlet_id\""))
    );
}
