//! The events behind a figure and what changed since the previous run, through
//! `aqs dashboard` on the embedded stores over real HTTP: every count and money figure of
//! the rows asked adds up to the KPI table's, a supervisor is refused another team's rows,
//! and after a late event and a retraction recorded between two runs `/api/changes` names
//! the rows that moved and the two events that moved them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aqs_schemas::generator::{GeneratorConfig, generate};
use serde_json::Value;

const PASSWORD: &str = "a long test password";

fn aqs(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aqs"));
    command
        .env("AQS_DATA_DIR", data_dir)
        .env("AQS_LOG", "warn")
        .env_remove("AQS_KAFKA_BROKERS")
        .env_remove("AQS_CLICKHOUSE_URL");
    command
}

fn run_ok(mut command: Command) {
    let output = command.output().expect("run aqs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn add_user(data: &Path, name: &str, scope: &str) {
    let mut child = aqs(data)
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

struct Dashboard {
    child: Child,
    base: String,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_dashboard(data: &Path) -> Dashboard {
    let mut child = aqs(data)
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
struct Session {
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
    async fn sign_in(base: &str, user: &str) -> Self {
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

    async fn get(&self, path: &str) -> (u16, Value) {
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

const VISIT_TO_RETRACT: &str = r#"{"event_id":"t-visit-06","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-06T10:00:00+08:00","source":"t-app","agent_id":"A000001","payload":{"outlet_id":"O-T1","purpose":"promotion"}}"#;
const LATE_VISIT: &str = r#"{"event_id":"t-visit-05","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-05T15:00:00+08:00","source":"t-app","agent_id":"A000001","payload":{"outlet_id":"O-T2","purpose":"service"}}"#;
const RETRACTION: &str = r#"{"event_id":"t-retract-06","type":"retraction","schema_version":1,"occurred_at":"2026-11-12T09:00:00+08:00","source":"t-app","agent_id":"A000001","payload":{"retracted_event_id":"t-visit-06","reason":"entered in error"}}"#;

#[tokio::test(flavor = "current_thread")]
async fn figures_are_explained_within_scope_and_changes_name_their_events() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    let first = work.path().join("first.ndjson");
    let mut bytes = Vec::new();
    generate(
        &GeneratorConfig::new(5, 20, "2026-11-01".parse().expect("date"), 11),
        &mut bytes,
    )
    .expect("generate");
    bytes.extend_from_slice(VISIT_TO_RETRACT.as_bytes());
    bytes.push(b'\n');
    std::fs::write(&first, &bytes).expect("first file");
    let second = work.path().join("second.ndjson");
    std::fs::write(&second, format!("{LATE_VISIT}\n{RETRACTION}\n")).expect("second file");

    let mut import = aqs(&data);
    import.arg("import").arg(&first);
    run_ok(import);
    let project = |data: &Path| {
        let mut project = aqs(data);
        project.args(["projector", "--until-idle"]);
        run_ok(project);
    };
    let analytics = |data: &Path, as_of: &str| {
        let mut analytics = aqs(data);
        analytics.args(["analytics", "--as-of", as_of, "--since", "2026-11-01"]);
        run_ok(analytics);
    };
    project(&data);
    analytics(&data, "2026-11-11");
    // Yesterday's run is written; the late visit and the retraction are recorded after it.
    let mut import = aqs(&data);
    import.arg("import").arg(&second);
    run_ok(import);
    project(&data);
    analytics(&data, "2026-11-12");
    add_user(&data, "sup1", "T0001");
    add_user(&data, "sup2", "T0002");

    let dashboard = start_dashboard(&data);
    let sup1 = Session::sign_in(&dashboard.base, "sup1").await;

    // Every explained figure of the team's month, week and a day adds up.
    for (period, start) in [
        ("month", "2026-11-01"),
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

    // Another team's rows are refused, the team and its agents alike.
    let (status, _) = sup1
        .get("/api/explain?scope=team&id=T0002&period=month&start=2026-11-01")
        .await;
    assert_eq!(status, 403);
    let (status, _) = sup1
        .get("/api/explain?scope=agent&id=A000011&period=month&start=2026-11-01")
        .await;
    assert_eq!(status, 403);
    let sup2 = Session::sign_in(&dashboard.base, "sup2").await;
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
    assert_eq!(changes["previous_as_of"], "2026-11-11");
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
