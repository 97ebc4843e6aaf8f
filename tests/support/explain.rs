//! What the tests of the events behind a figure share: the month they explain (a generated
//! month with every trap, a visit retracted later and a late visit), `aqs dashboard` started
//! on a data folder with the environment a test gives it, a signed-in session over real
//! HTTP, and the checks every store combination must pass. Included with
//! `#[path = "support/explain.rs"] mod explain;` (next to `mod common;`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aqs_schemas::generator::{GeneratorConfig, generate};
use serde_json::Value;

const PASSWORD: &str = "a long test password";

/// The first day of the month explained.
pub const FIRST_DAY: &str = "2026-11-01";
/// The as-of date of yesterday's run, and of today's.
pub const YESTERDAY: &str = "2026-11-11";
pub const TODAY: &str = "2026-11-12";

const VISIT_TO_RETRACT: &str = r#"{"event_id":"t-visit-06","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-06T10:00:00+08:00","source":"t-app","agent_id":"A000001","payload":{"outlet_id":"O-T1","purpose":"promotion"}}"#;
const LATE_VISIT: &str = r#"{"event_id":"t-visit-05","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-05T15:00:00+08:00","source":"t-app","agent_id":"A000001","payload":{"outlet_id":"O-T2","purpose":"service"}}"#;
const RETRACTION: &str = r#"{"event_id":"t-retract-06","type":"retraction","schema_version":1,"occurred_at":"2026-11-12T09:00:00+08:00","source":"t-app","agent_id":"A000001","payload":{"retracted_event_id":"t-visit-06","reason":"entered in error"}}"#;

/// The events recorded before yesterday's run (a generated month with every trap, and a
/// visit of A000001 on the 6th), and those recorded after it (a late visit of the 5th and
/// the retraction of that visit), as NDJSON.
pub fn month() -> (Vec<u8>, Vec<u8>) {
    let mut first = Vec::new();
    generate(
        &GeneratorConfig::new(5, 20, FIRST_DAY.parse().expect("date"), 11),
        &mut first,
    )
    .expect("generate");
    first.extend_from_slice(VISIT_TO_RETRACT.as_bytes());
    first.push(b'\n');
    let second = format!("{LATE_VISIT}\n{RETRACTION}\n").into_bytes();
    (first, second)
}

/// Adds a supervisor of `scope` to the data folder's users (`command` is `aqs` for it).
pub fn add_supervisor(mut command: Command, name: &str, scope: &str) {
    let mut child = command
        .args([
            "user",
            "add",
            name,
            "--role",
            "supervisor",
            "--scope",
            scope,
        ])
        .arg("--password-stdin")
        .stdin(Stdio::piped())
        .spawn()
        .expect("aqs user add");
    std::io::Write::write_all(
        &mut child.stdin.take().expect("stdin"),
        format!("{PASSWORD}\n").as_bytes(),
    )
    .expect("password");
    assert!(child.wait().expect("wait").success());
}

/// `aqs dashboard` on a free port, killed when dropped.
pub struct Dashboard {
    child: Child,
    pub base: String,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `aqs dashboard` with `command` (`aqs` with the test's environment).
pub fn start_dashboard(mut command: Command) -> Dashboard {
    let mut child = command
        .args(["dashboard", "--dashboard-listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("aqs dashboard");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let base = loop {
        let line = lines.next().expect("address printed").expect("line");
        if let Some(rest) = line.strip_prefix("aqs dashboard: ") {
            break rest.trim().trim_end_matches('/').to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Dashboard { child, base }
}

/// A signed-in session (the sign-in form over HTTP).
pub struct Session {
    http: reqwest::Client,
    cookie: String,
    base: String,
}

fn cookie_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| !v.contains("Max-Age=0"))
        .and_then(|v| v.split(';').next())
        .expect("a cookie")
        .to_owned()
}

impl Session {
    pub async fn sign_in(base: &str, user: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !matches!(
            http.get(format!("{base}/readyz"))
                .send()
                .await
                .map(|r| r.status().as_u16()),
            Ok(200)
        ) {
            assert!(Instant::now() < deadline, "dashboard not ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let page = http
            .get(format!("{base}/login"))
            .send()
            .await
            .expect("login page");
        let login_cookie = cookie_of(&page);
        let html = page.text().await.expect("html");
        let marker = "name=\"csrf\" value=\"";
        let start = html.find(marker).expect("csrf field") + marker.len();
        let form = format!(
            "user={user}&password={}&csrf={}",
            PASSWORD.replace(' ', "+"),
            &html[start..start + 64]
        );
        let answer = http
            .post(format!("{base}/auth/login"))
            .header("cookie", login_cookie)
            .header("origin", base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .expect("sign in");
        assert_eq!(answer.status().as_u16(), 303, "sign-in of {user} refused");
        Self {
            cookie: cookie_of(&answer),
            http,
            base: base.to_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let answer = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("GET");
        let status = answer.status().as_u16();
        let text = answer.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn events_of(answer: &Value) -> &Vec<Value> {
    answer["events"].as_array().expect("events")
}

fn assert_adds_up(answer: &Value) {
    let adds_up = answer["adds_up"].as_object().expect("adds_up");
    assert_eq!(adds_up.len(), 10, "{answer}");
    for (column, ok) in adds_up {
        assert_eq!(
            ok,
            &Value::Bool(true),
            "{column}: KPI {} explained {}",
            answer["kpi"][column],
            answer["explained"][column]
        );
    }
}

/// The checks every store combination passes, on a dashboard with users `sup1` (T0001) and
/// `sup2` (T0002) over runs of [`YESTERDAY`] and [`TODAY`] of [`month`]: every explained
/// figure of T0001's month, a week and a day, and of an agent's day, adds up to the KPI
/// row; other teams' rows are refused; what changed since yesterday's run is the agent's
/// days of the 5th and 6th, moved by the late visit and the retraction.
pub async fn check_explain_and_changes(base: &str) {
    let sup1 = Session::sign_in(base, "sup1").await;

    for (period, start) in [
        ("month", FIRST_DAY),
        ("week", "2026-11-02"),
        ("day", "2026-11-06"),
    ] {
        let (status, answer) = sup1
            .get(&format!(
                "/api/explain?scope=team&id=T0001&period={period}&start={start}"
            ))
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_adds_up(&answer);
        assert!(!events_of(&answer).is_empty());
    }
    let (status, agent_day) = sup1
        .get("/api/explain?scope=agent&id=A000001&period=day&start=2026-11-06")
        .await;
    assert_eq!(status, 200, "{agent_day}");
    assert_adds_up(&agent_day);
    let retracted = events_of(&agent_day)
        .iter()
        .find(|e| e["event_id"] == "t-visit-06")
        .expect("the retracted visit is listed");
    assert_eq!(retracted["outcome"]["kind"], "retracted");
    assert_eq!(retracted["outcome"]["by"], "t-retract-06");
    assert_eq!(retracted["counted_here"], false);
    for column in [
        "event_id",
        "event_type",
        "business_date",
        "occurred_at",
        "source",
        "outlet_id",
        "amount",
        "outcome",
    ] {
        assert!(
            retracted.get(column).is_some(),
            "no {column} in {retracted}"
        );
    }
    // When the log took it: the embedded log's time, or the Kafka record's timestamp.
    assert!(
        retracted["recorded_at"].as_str().is_some(),
        "no recorded_at in {retracted}"
    );

    // Another team's rows are refused, the team and its agents alike.
    let (status, _) = sup1
        .get("/api/explain?scope=team&id=T0002&period=month&start=2026-11-01")
        .await;
    assert_eq!(status, 403);
    let (status, _) = sup1
        .get("/api/explain?scope=agent&id=A000011&period=month&start=2026-11-01")
        .await;
    assert_eq!(status, 403);
    let sup2 = Session::sign_in(base, "sup2").await;
    let (status, _) = sup2.get("/api/changes?scope=team&id=T0001").await;
    assert_eq!(status, 403);
    let (status, _) = sup2
        .get("/api/explain?scope=agent&id=A000001&period=month&start=2026-11-01")
        .await;
    assert_eq!(status, 403);

    // What changed since yesterday's run: the agent's days of the 5th and 6th moved, by the
    // late visit and the retraction, and nothing else moved those days.
    let (status, changes) = sup1.get("/api/changes?scope=team&id=T0001").await;
    assert_eq!(status, 200, "{changes}");
    assert_eq!(changes["previous_as_of"], YESTERDAY);
    let moved: Vec<(String, String, String)> = changes["moved"]
        .as_array()
        .expect("moved")
        .iter()
        .filter(|m| m["period"] == "day")
        .map(|m| {
            (
                m["scope"].as_str().expect("scope").to_owned(),
                m["scope_id"].as_str().expect("id").to_owned(),
                m["period_start"].as_str().expect("start").to_owned(),
            )
        })
        .collect();
    for (scope, id) in [("agent", "A000001"), ("team", "T0001")] {
        for day in ["2026-11-05", "2026-11-06"] {
            assert!(
                moved.contains(&(scope.to_owned(), id.to_owned(), day.to_owned())),
                "{scope} {id} {day} not among the moved days {moved:?}"
            );
        }
    }
    assert_eq!(moved.len(), 4, "{moved:?}");
    let causes: Vec<(String, String)> = events_of(&changes)
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().expect("id").to_owned(),
                e["cause"].as_str().expect("cause").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        causes,
        vec![
            ("t-visit-05".to_owned(), "late_event".to_owned()),
            ("t-visit-06".to_owned(), "retraction".to_owned()),
        ]
    );
}
