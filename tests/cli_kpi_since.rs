//! `--since` of the KPI job: each command's help states its own default, and a `--since`
//! after the as-of date is refused at once with a message naming both dates, by `aqs up`
//! at start (before, every KPI run failed with only a warning) and by `aqs run`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

fn help(subcommand: &str) -> String {
    let output = aqs(Path::new("unused"))
        .args([subcommand, "--help"])
        .output()
        .expect("run");
    assert!(output.status.success());
    String::from_utf8(output.stdout).expect("utf-8")
}

/// The help paragraph of `--since`.
fn since_help(subcommand: &str) -> String {
    let text = help(subcommand);
    let start = text.find("--since").expect("--since is documented");
    let rest = &text[start..];
    let end = rest[1..].find("\n      --").map_or(rest.len(), |at| at + 1);
    rest[..end].split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn each_command_states_its_own_default() {
    assert!(
        since_help("analytics").contains("the first day of the as-of month"),
        "{}",
        since_help("analytics")
    );
    let run = since_help("run");
    assert!(
        run.contains("the first business date of the events") && !run.contains("as-of month"),
        "{run}"
    );
    let up = since_help("up");
    assert!(
        up.contains("eight-week trend") && up.contains("refused at start"),
        "{up}"
    );
}

#[test]
fn aqs_up_refuses_a_since_after_the_as_of_date_at_start() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut child = aqs(work.path())
        .args([
            "up",
            "--insecure-no-auth",
            "--listen",
            "127.0.0.1:0",
            "--dashboard-listen",
            "127.0.0.1:0",
            "--since",
            "2999-01-01",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start aqs up");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("aqs up started with --since after today instead of refusing it");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("--since 2999-01-01 is after the as-of date")
            && stderr.contains("today in the organisation's time zone"),
        "{stderr}"
    );
}

#[test]
fn aqs_run_refuses_a_since_after_the_as_of_date() {
    let work = tempfile::tempdir().expect("tempdir");
    let events = work.path().join("events.ndjson");
    std::fs::write(
        &events,
        r#"{"event_id":"v1","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:30:00+08:00","source":"t","agent_id":"A1","payload":{"outlet_id":"O1","purpose":"promotion"}}
"#,
    )
    .expect("write");
    let output = aqs(work.path())
        .arg("run")
        .arg("--events")
        .arg(&events)
        .arg("--out")
        .arg(work.path().join("out"))
        .args(["--as-of", "2026-11-18", "--since", "2026-11-20"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("--since 2026-11-20 is after the as-of date 2026-11-18"),
        "{stderr}"
    );
}
