//! `aqs dashboard` as a service of its own, on the embedded stores and on ClickHouse: the
//! same events folded both ways give the same answers, signed in as a supervisor and as
//! headquarters through the sign-in form over real HTTP; two instances sharing the session
//! key, users and revocations serve one session.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aqs_schemas::generator::{GeneratorConfig, generate};
use aqs_warehouse::ClickHouseConfig;
use serde_json::Value;

const AS_OF: &str = "2026-11-12";
const KEY: &str = "a-session-key-shared-by-both-instances-0123456789";
const PASSWORD: &str = "a long test password";

fn aqs(data_dir: &Path, clickhouse: Option<&ClickHouseConfig>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aqs"));
    command
        .env("AQS_DATA_DIR", data_dir)
        .env("AQS_LOG", "warn")
        .env_remove("AQS_KAFKA_BROKERS")
        .env_remove("AQS_CLICKHOUSE_URL");
    if let Some(config) = clickhouse {
        command
            .env(
                "AQS_CLICKHOUSE_URL",
                config.url.as_deref().unwrap_or_default(),
            )
            .env("AQS_CLICKHOUSE_USER", &config.user)
            .env("AQS_CLICKHOUSE_PASSWORD", &config.password)
            .env("AQS_CLICKHOUSE_DATABASE", &config.database);
    }
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

/// A running `aqs dashboard`, stopped on drop.
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

fn dashboard(mut command: Command, shared: &Path) -> Dashboard {
    command
        .arg("dashboard")
        .args(["--dashboard-listen", "127.0.0.1:0"])
        .env("AQS_DASHBOARD_SESSION_KEY", KEY)
        .env("AQS_DASHBOARD_USERS_FILE", shared.join("users.json"))
        .env(
            "AQS_DASHBOARD_REVOCATIONS_FILE",
            shared.join("revocations.jsonl"),
        )
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start aqs dashboard");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("aqs dashboard printed its address before exiting")
            .expect("stderr line");
        if let Some(rest) = line.strip_prefix("aqs dashboard: ") {
            break rest.trim().trim_end_matches('/').to_owned();
        }
    };
    // Keep reading so that the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Dashboard { child, base }
}

struct Client {
    http: reqwest::Client,
    cookie: String,
}

impl Client {
    async fn sign_in(base: &str, user: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let page = http
            .get(format!("{base}/login"))
            .send()
            .await
            .expect("login page");
        let login_cookie = cookie_of(&page);
        let html = page.text().await.expect("html");
        let marker = "name=\"csrf\" value=\"";
        let start = html.find(marker).expect("csrf field") + marker.len();
        let csrf = &html[start..start + 64];
        let form = format!(
            "user={user}&password={}&csrf={csrf}",
            PASSWORD.replace(' ', "+")
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
        let cookie = cookie_of(&answer);
        assert!(cookie.starts_with("aqs_session="), "{cookie}");
        Self { http, cookie }
    }

    async fn get(&self, url: &str) -> (u16, Value) {
        let answer = self
            .http
            .get(url)
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

async fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = reqwest::get(format!("{base}/readyz"))
            .await
            .map(|r| r.status().as_u16());
        if matches!(ready, Ok(200)) {
            return;
        }
        assert!(Instant::now() < deadline, "{base} not ready: {ready:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_dashboard_service_answers_the_same_from_clickhouse_as_from_the_embedded_stores() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let events = work.path().join("events.ndjson");
    let config = GeneratorConfig::new(11, 30, "2026-10-19".parse().expect("date"), 28);
    generate(
        &config,
        std::fs::File::create(&events)
            .map(std::io::BufWriter::new)
            .expect("create"),
    )
    .expect("generate");
    let database = ClickHouseConfig::new(clickhouse.url())
        .with_credentials(clickhouse.user(), clickhouse.password())
        .with_database(clickhouse.fresh_database_name());
    let mut migrate = aqs(work.path(), Some(&database));
    migrate.arg("migrate");
    run_ok(migrate);
    let embedded = work.path().join("embedded");
    let warehouse = work.path().join("warehouse");
    for (dir, target) in [(&embedded, None), (&warehouse, Some(&database))] {
        let mut import = aqs(dir, None);
        import.arg("import").arg(&events);
        run_ok(import);
        let mut project = aqs(dir, target);
        project.args(["projector", "--until-idle"]);
        run_ok(project);
        let mut analytics = aqs(dir, target);
        analytics.args(["analytics", "--as-of", AS_OF, "--since", "2026-09-21"]);
        run_ok(analytics);
    }
    let shared = work.path().join("shared");
    for (name, role, scope) in [
        ("sup", "supervisor", Some("T0001")),
        ("hq", "headquarters", None),
    ] {
        let mut add = aqs(&shared, None);
        add.args(["user", "add", name, "--role", role, "--password-stdin"])
            .args(scope.map(|s| vec!["--scope", s]).unwrap_or_default())
            .arg("--dashboard-users-file")
            .arg(shared.join("users.json"))
            .stdin(Stdio::piped());
        let mut child = add.spawn().expect("aqs user add");
        std::io::Write::write_all(
            &mut child.stdin.take().expect("stdin"),
            format!("{PASSWORD}\n").as_bytes(),
        )
        .expect("password");
        assert!(child.wait().expect("wait").success());
    }

    let from_files = dashboard(aqs(&embedded, None), &shared);
    let from_clickhouse = dashboard(aqs(&warehouse, Some(&database)), &shared);
    assert!(
        !warehouse.join("kpi").exists(),
        "the ClickHouse run wrote no Parquet"
    );
    wait_ready(&from_files.base).await;
    wait_ready(&from_clickhouse.base).await;

    // Headquarters: the same tree and the same figures from both.
    let hq = Client::sign_in(&from_clickhouse.base, "hq").await;
    let (status, meta_ch) = hq.get(&format!("{}/api/meta", from_clickhouse.base)).await;
    assert_eq!(status, 200, "{meta_ch}");
    // The session made by one instance is served by the other (shared key and users).
    let (status, meta_files) = hq.get(&format!("{}/api/meta", from_files.base)).await;
    assert_eq!(status, 200, "{meta_files}");
    assert_eq!(meta_ch["as_of"], AS_OF);
    assert_eq!(meta_ch["tree"], meta_files["tree"]);
    assert_eq!(
        meta_ch["tree"][0]["branches"][0]["teams"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    for (scope, id) in [
        ("region", "R01"),
        ("branch", "B001"),
        ("team", "T0001"),
        ("agent", "A000001"),
    ] {
        let url = |base: &str| format!("{base}/api/scope?scope={scope}&id={id}");
        let (s1, ch) = hq.get(&url(&from_clickhouse.base)).await;
        let (s2, files) = hq.get(&url(&from_files.base)).await;
        assert_eq!((s1, s2), (200, 200), "{scope} {id}: {ch} / {files}");
        for part in [
            "month", "week", "children", "ranking", "at_risk", "quadrant", "review",
        ] {
            assert_eq!(
                ch[part], files[part],
                "{scope} {id}: {part} differs between ClickHouse and the files"
            );
        }
    }

    // The supervisor of T0001 on the ClickHouse instance: the team, nothing else.
    let sup = Client::sign_in(&from_clickhouse.base, "sup").await;
    let (status, team) = sup
        .get(&format!(
            "{}/api/scope?scope=team&id=T0001",
            from_clickhouse.base
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(team["month"]["scope_id"], "T0001");
    for (scope, id) in [("team", "T0002"), ("branch", "B001"), ("region", "R01")] {
        let (status, body) = sup
            .get(&format!(
                "{}/api/scope?scope={scope}&id={id}",
                from_clickhouse.base
            ))
            .await;
        assert_eq!(status, 403, "{scope} {id}: {body}");
    }
    let (_, meta) = sup.get(&format!("{}/api/meta", from_clickhouse.base)).await;
    let teams = &meta["tree"][0]["branches"][0]["teams"];
    assert_eq!(teams.as_array().map(Vec::len), Some(1), "{meta}");
    assert_eq!(teams[0]["id"], "T0001");
}
