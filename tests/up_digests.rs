//! `aqs up` sends the digests and alerts of a generated month to a webhook receiver the test
//! runs on loopback, and a restart in the middle (a kill while a message is in flight)
//! neither repeats a message the receiver took nor loses one. The scheduler's clock is set
//! to the morning of 10 November 2026 with a catch-up window of ten days, so every morning
//! and weekly occasion of the month so far is due at once (a replay, without waiting for
//! real mornings). The expected messages and their figures come from the KPI runs the
//! digests were made from.

#[path = "support/up.rs"]
mod up;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aqs_schemas::generator::{GeneratorConfig, generate};
use chrono::{Datelike, NaiveDate};
use serde_json::Value;
use up::Up;

/// A webhook receiver: answers `{"errcode":0}` and keeps what it took; the request with
/// number `hold_at` (counted from 1) is left unanswered until the test lets it go unanswered.
struct Receiver {
    address: String,
    /// (path, body) of every request answered 200.
    taken: Arc<Mutex<Vec<(String, Value)>>>,
}

fn start_receiver(hold_at: usize, held: mpsc::Sender<()>) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let taken = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&taken);
    std::thread::spawn(move || {
        let mut seen = 0;
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            seen += 1;
            if seen == hold_at {
                // In flight when the sender is killed: never answered.
                let _ = held.send(());
                std::thread::sleep(Duration::from_secs(3));
                continue;
            }
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let answer = "{\"errcode\":0}";
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
            kept.lock().expect("lock").push((path, body));
        }
    });
    Receiver { address, taken }
}

fn run_ok(data: &Path, args: &[&str]) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_aqs"))
        .env("AQS_DATA_DIR", data)
        .env("AQS_LOG", "warn")
        .env_remove("AQS_KAFKA_BROKERS")
        .env_remove("AQS_CLICKHOUSE_URL")
        .args(args)
        .output()
        .expect("run aqs");
    assert!(
        output.status.success(),
        "aqs {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn text<'a>(row: &'a serde_json::Map<String, Value>, column: &str) -> &'a str {
    row.get(column).and_then(Value::as_str).unwrap_or_default()
}

fn number(row: &serde_json::Map<String, Value>, column: &str) -> Option<f64> {
    row.get(column).and_then(Value::as_f64)
}

/// A flag column (`at_risk`, `balance_drift`) set, as a boolean or 1.
fn flag(row: &serde_json::Map<String, Value>, column: &str) -> bool {
    matches!(row.get(column), Some(Value::Bool(true))) || number(row, column) == Some(1.0)
}

fn week_label(start: NaiveDate) -> String {
    let week = start.iso_week();
    format!("{}-W{:02}", week.year(), week.week())
}

/// The keys of the messages the destinations must receive, from the KPI runs as of the day
/// before each morning (as the digests read them), rule by rule.
fn expected_keys(data: &Path, days: &[NaiveDate]) -> BTreeSet<String> {
    let files = aqs_tables::DataDir::new(data).kpi_files();
    let mut keys = BTreeSet::new();
    for day in days {
        let as_of = *day - chrono::Duration::days(1);
        let rows = aqs_tables::kpi::rows::read_file(&files.file(as_of), None)
            .unwrap_or_else(|e| panic!("the KPI run as of {as_of}: {e}"));
        let month_start = as_of.with_day(1).expect("day 1").to_string();
        let month = &month_start[..7];
        let is = |r: &serde_json::Map<String, Value>, scope: &str, period: &str, start: &str| {
            text(r, "scope") == scope
                && text(r, "period") == period
                && text(r, "period_start") == start
        };
        for team in ["T0001", "T0002"] {
            if rows
                .iter()
                .any(|r| is(r, "team", "month", &month_start) && text(r, "scope_id") == team)
            {
                keys.insert(format!("hq|morning|{team}|{day}"));
                if team == "T0001" {
                    keys.insert(format!("t1|morning|{team}|{day}"));
                }
            }
        }
        for r in rows
            .iter()
            .filter(|r| text(r, "period") == "month" && text(r, "period_start") == month_start)
        {
            let (scope, id) = (text(r, "scope"), text(r, "scope_id"));
            if scope == "agent" && flag(r, "at_risk") {
                keys.insert(format!("hq|at_risk_first|{id}|{month}"));
            }
            if scope == "agent" && flag(r, "balance_drift") {
                keys.insert(format!("hq|balance_drift|{id}|{month}"));
            }
            if scope == "agent" || scope == "team" {
                for (share, level) in [(0.5, "50%"), (1.0, "100%")] {
                    if number(r, "premium_attainment").is_some_and(|a| a >= share) {
                        keys.insert(format!("hq|target_crossed|{id}|{month}@{level}"));
                    }
                }
            }
        }
        if day.weekday() == chrono::Weekday::Mon {
            let week_start = (*day - chrono::Duration::days(7)).to_string();
            let label = week_label(*day - chrono::Duration::days(7));
            for r in rows
                .iter()
                .filter(|r| text(r, "period") == "week" && text(r, "period_start") == week_start)
            {
                let id = text(r, "scope_id");
                match text(r, "scope") {
                    "team" => {
                        keys.insert(format!("hq|weekly_team|{id}|{label}"));
                        if id == "T0001" {
                            keys.insert(format!("t1|weekly_team|{id}|{label}"));
                        }
                        if number(r, "visit_coverage").is_some_and(|c| c < 0.5) {
                            keys.insert(format!("hq|coverage_low|{id}|{label}"));
                        }
                    }
                    "branch" => {
                        keys.insert(format!("hq|weekly_branch|{id}|{label}"));
                    }
                    _ => {}
                }
            }
        }
    }
    keys
}

#[test]
fn a_month_of_digests_and_alerts_reaches_the_webhooks_once_across_a_restart() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    let events = work.path().join("events.ndjson");
    let mut bytes = Vec::new();
    generate(
        &GeneratorConfig::new(11, 20, "2026-11-01".parse().expect("date"), 10),
        &mut bytes,
    )
    .expect("generate");
    std::fs::write(&events, bytes).expect("events");
    run_ok(&data, &["import", events.to_str().expect("path")]);

    let (held_tx, held_rx) = mpsc::channel();
    let receiver = start_receiver(12, held_tx);
    let destinations = work.path().join("destinations.json");
    std::fs::write(
        &destinations,
        format!(
            r#"[{{"name": "hq", "format": "json", "url": "http://{0}/hq", "language": "en", "all": true}},
                {{"name": "t1", "format": "wecom", "url": "http://{0}/t1", "language": "zh", "teams": ["T0001"], "alerts": false}}]"#,
            receiver.address
        ),
    )
    .expect("destinations");
    let flags = [
        "--digest-destinations",
        destinations.to_str().expect("path"),
        "--digest-clock-start",
        "2026-11-10T09:00:00+08:00",
        "--digest-clock-speed",
        "1",
        "--digest-catch-up-hours",
        "240",
        "--digest-retry-first-ms",
        "50",
    ];

    // The first life is killed while the receiver holds its 12th request unanswered.
    let mut first = Up::start(&data, &flags);
    held_rx
        .recv_timeout(Duration::from_secs(180))
        .expect("the 12th message reached the receiver");
    first.child.kill().expect("kill aqs up");
    let _ = first.child.wait();
    drop(first);
    let before_restart = receiver.taken.lock().expect("lock").len();
    assert_eq!(before_restart, 11, "taken before the kill");

    let second = Up::start(&data, &flags);
    let days: Vec<NaiveDate> = (1..=10)
        .map(|d| NaiveDate::from_ymd_opt(2026, 11, d).expect("date"))
        .collect();
    // Wait until what is taken stops growing.
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut last = (0, Instant::now());
    loop {
        let count = receiver.taken.lock().expect("lock").len();
        if count != last.0 {
            last = (count, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(8) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "messages still coming after 240 s (aqs up: dashboard {}, ingest {})",
            second.dashboard,
            second.ingest
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(second);

    let taken = receiver.taken.lock().expect("lock").clone();
    let mut keys: BTreeMap<String, usize> = BTreeMap::new();
    for (path, body) in &taken {
        let key = match path.as_str() {
            "/hq" => body["idempotency_key"].as_str().expect("key").to_owned(),
            "/t1" => {
                assert_eq!(body["msgtype"], "markdown", "{body}");
                let content = body["markdown"]["content"].as_str().expect("content");
                // The WeCom body carries no key: the title line names it.
                let (kind, period) = if content.starts_with("## 早会简报") {
                    (
                        "morning",
                        content
                            .lines()
                            .next()
                            .expect("title")
                            .rsplit(" · ")
                            .next()
                            .expect("date")
                            .to_owned(),
                    )
                } else {
                    (
                        "weekly_team",
                        content
                            .lines()
                            .next()
                            .expect("title")
                            .rsplit(" · ")
                            .next()
                            .expect("week")
                            .to_owned(),
                    )
                };
                format!("t1|{kind}|T0001|{period}")
            }
            other => panic!("a request to {other}"),
        };
        *keys.entry(key).or_default() += 1;
    }
    let twice: Vec<&String> = keys
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(twice.is_empty(), "taken more than once: {twice:?}");
    let expected = expected_keys(&data, &days);
    let got: BTreeSet<String> = keys.into_keys().collect();
    assert_eq!(
        got.difference(&expected).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "unexpected messages"
    );
    assert_eq!(
        expected.difference(&got).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "messages lost"
    );
    assert!(got.len() > 30, "only {} messages", got.len());

    // The figures of a digest are the KPI run's: the morning digest of T0001 on the 5th
    // shows each agent's day of the 4th.
    let rows = aqs_tables::kpi::rows::read_file(
        &aqs_tables::DataDir::new(&data)
            .kpi_files()
            .file("2026-11-04".parse().expect("date")),
        None,
    )
    .expect("run");
    let names = aqs_tables::organisation::read_embedded(
        &aqs_tables::DataDir::new(&data).ledgers(),
        "2026-11-04".parse().expect("date"),
        "2026-11-01".parse().expect("date"),
    )
    .expect("organisation")
    .agent_names;
    let digest = taken
        .iter()
        .find(|(path, body)| {
            path == "/hq" && body["idempotency_key"] == "hq|morning|T0001|2026-11-05"
        })
        .map(|(_, body)| body["markdown"].as_str().expect("markdown").to_owned())
        .expect("the digest of the 5th");
    let mut checked = 0;
    for row in rows.iter().filter(|r| {
        text(r, "scope") == "agent"
            && text(r, "team_id") == "T0001"
            && text(r, "period") == "day"
            && text(r, "period_start") == "2026-11-04"
    }) {
        let id = text(row, "scope_id");
        let name = names.get(id).cloned().unwrap_or_else(|| id.to_owned());
        let visits = row.get("visits").and_then(Value::as_i64).expect("visits");
        let consultations = row
            .get("consultations")
            .and_then(Value::as_i64)
            .expect("consultations");
        let line = digest
            .lines()
            .find(|l| l.starts_with(&format!("- {name}: visits ")))
            .unwrap_or_else(|| panic!("no line of {name} in\n{digest}"));
        assert!(
            line.contains(&format!("visits {visits}/")),
            "{line}: {visits} visits"
        );
        assert!(
            line.contains(&format!("consultations {consultations}/")),
            "{line}: {consultations}"
        );
        checked += 1;
    }
    assert!(checked > 0, "no agent day of T0001 on the 4th:\n{digest}");
}
