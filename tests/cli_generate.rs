//! `aqs generate` writes nothing but NDJSON on stdout, the same bytes for the same seed, and
//! `aqs validate` accepts all of it.

use std::process::Command;

fn generate(seed: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aqs"))
        .args([
            "generate", "--agents", "200", "--days", "30", "--seed", seed,
        ])
        .output()
        .expect("run aqs generate")
}

#[test]
fn generate_prints_only_ndjson_and_is_deterministic() {
    let first = generate("7");
    assert!(first.status.success());
    let text = String::from_utf8(first.stdout.clone()).expect("utf-8");
    let mut lines = 0;
    for line in text.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
        assert!(value.get("event_id").is_some());
        lines += 1;
    }
    assert!(lines > 20_000, "a month of 200 agents, got {lines} lines");
    assert!(!first.stderr.is_empty(), "the summary goes to stderr");
    assert_eq!(generate("7").stdout, first.stdout, "same seed, same bytes");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, &first.stdout).expect("write");
    let validated = Command::new(env!("CARGO_BIN_EXE_aqs"))
        .arg("validate")
        .arg(&file)
        .output()
        .expect("run aqs validate");
    assert!(
        validated.status.success(),
        "{}",
        String::from_utf8_lossy(&validated.stdout)
    );
    assert!(String::from_utf8_lossy(&validated.stderr).contains("0 rejected"));
}

#[test]
fn validate_reports_every_bad_line_with_its_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.ndjson");
    std::fs::write(
        &file,
        concat!(
            r#"{"event_id":"ok","type":"agent_left","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"effective_date":"2026-11-03"}}"#,
            "\n",
            r#"{"event_id":"bad","type":"consultation","schema_version":1,"occurred_at":"2026-11-02T09:00:00","source":"app","agent_id":"A1","payload":{"outlet_id":"O1","customers_consulted":2,"customers_interested":3}}"#,
            "\n",
        ),
    )
    .expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_aqs"))
        .arg("validate")
        .arg(&file)
        .output()
        .expect("run aqs validate");
    assert!(!output.status.success());
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("line 2: event \"bad\" (consultation) rejected"),
        "{report}"
    );
    assert!(
        report.contains("occurred_at: time zone missing"),
        "{report}"
    );
    assert!(
        report.contains("payload.customers_interested: more interested (3) than consulted (2)"),
        "{report}"
    );
}
