//! `aqs dashboard` as a service of its own, on the embedded stores and on ClickHouse: the
//! same events folded both ways give the same answers, signed in as a supervisor and as
//! headquarters through the sign-in form over real HTTP; two instances sharing the session
//! key, users and revocations serve one session. Agents' names, the history of as-of runs
//! and the exports agree between both stores, and the exported figures are the KPI
//! table's in ClickHouse. The working-day calendar, imported as events, gives both the same
//! time progress: a swapped Saturday counts, a holiday does not.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aqs_schemas::generator::{GeneratorConfig, generate};
use aqs_warehouse::ClickHouseConfig;
use serde_json::Value;

const AS_OF: &str = "2026-11-12";
/// An earlier run the stores also hold.
const EARLIER: &str = "2026-11-06";
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

fn dashboard(command: Command, shared: &Path) -> Dashboard {
    dashboard_with(command, shared, &[])
}

fn dashboard_with(mut command: Command, shared: &Path, flags: &[&str]) -> Dashboard {
    command
        .arg("dashboard")
        .args(flags)
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

    /// Posts an export form with the session's CSRF token: the status and the file.
    async fn export(&self, base: &str, fields: &[(&str, &str)]) -> (u16, Vec<u8>) {
        let (_, me) = self.get(&format!("{base}/api/me")).await;
        let csrf = me["csrf"].as_str().expect("csrf").to_owned();
        // Tokens, ids and names of tables and formats need no escaping.
        let mut form = format!("csrf={csrf}");
        for (name, value) in fields {
            form.push_str(&format!("&{name}={value}"));
        }
        let answer = self
            .http
            .post(format!("{base}/api/export"))
            .header("cookie", &self.cookie)
            .header("origin", base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .expect("POST export");
        let status = answer.status().as_u16();
        (status, answer.bytes().await.expect("body").to_vec())
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

/// Adds a user of `role` to the users file in `shared`, with the test password.
fn add_user(shared: &Path, name: &str, role: &str, scope: Option<&str>) {
    let mut add = aqs(shared, None);
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

/// Whether the server closed `stream` (end of stream or reset) within `within`.
async fn closed_by_server(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut byte = [0_u8; 1];
    match tokio::time::timeout(within, stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn silent_clients_at_the_connection_cap_neither_keep_users_out_nor_stay_open() {
    let work = tempfile::tempdir().expect("tempdir");
    let shared = work.path().join("shared");
    add_user(&shared, "hq", "headquarters", None);
    let service = dashboard_with(
        aqs(work.path(), None),
        &shared,
        &[
            "--dashboard-max-connections",
            "4",
            "--dashboard-header-timeout-ms",
            "1500",
        ],
    );
    let address = service.base.trim_start_matches("http://").to_owned();
    // Live (not ready: this data folder has no KPIs yet).
    let live = reqwest::get(format!("{}/healthz", service.base)).await;
    assert_eq!(live.map(|r| r.status().as_u16()).ok(), Some(200));
    // Four clients connect and send nothing: every connection the cap allows.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(
            tokio::net::TcpStream::connect(&address)
                .await
                .expect("connect"),
        );
    }
    // A user still signs in (which also needs the client's address: sign-in limits).
    let user = Client::sign_in(&service.base, "hq").await;
    let (status, me) = user.get(&format!("{}/api/me", service.base)).await;
    assert_eq!(status, 200, "{me}");
    // The silent ones are closed: to make room, or at the header timeout.
    for stream in &mut silent {
        assert!(
            closed_by_server(stream, Duration::from_secs(10)).await,
            "a connection without a request stayed open"
        );
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
    // Saturday 7 November worked (调休), Monday 16 November a holiday.
    let calendar = work.path().join("calendar.json");
    std::fs::write(
        &calendar,
        r#"{"holidays": ["2026-11-16"], "working_days": ["2026-11-07"]}"#,
    )
    .expect("calendar file");
    for (dir, target) in [(&embedded, None), (&warehouse, Some(&database))] {
        let mut import = aqs(dir, None);
        import.arg("import").arg(&events);
        run_ok(import);
        let mut import_calendar = aqs(dir, None);
        import_calendar
            .args(["calendar", "import"])
            .arg(&calendar)
            .args(["--declared-at", "2026-10-20T09:00:00+08:00"]);
        run_ok(import_calendar);
        let mut project = aqs(dir, target);
        project.args(["projector", "--until-idle"]);
        run_ok(project);
        for as_of in [EARLIER, AS_OF] {
            let mut analytics = aqs(dir, target);
            analytics.args(["analytics", "--as-of", as_of, "--since", "2026-09-21"]);
            run_ok(analytics);
        }
    }
    let shared = work.path().join("shared");
    for (name, role, scope) in [
        ("sup", "supervisor", Some("T0001")),
        ("hq", "headquarters", None),
    ] {
        add_user(&shared, name, role, scope);
    }

    let from_files = dashboard(aqs(&embedded, None), &shared);
    let from_clickhouse = dashboard(aqs(&warehouse, Some(&database)), &shared);
    assert!(
        !aqs_tables::DataDir::new(&warehouse)
            .kpi_files()
            .dir()
            .exists(),
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
    // As of Thursday 12 November: 2–6, the swapped 7th and 9–12 elapsed (10) of the month's
    // 21 weekdays − 1 holiday + 1 Saturday (21). Without the calendar: 9 of 21.
    for base in [&from_clickhouse.base, &from_files.base] {
        let (status, region) = hq
            .get(&format!("{base}/api/scope?scope=region&id=R01"))
            .await;
        assert_eq!(status, 200, "{region}");
        let progress = region["month"]["time_progress"]
            .as_f64()
            .unwrap_or_else(|| panic!("{base}: no time progress in {}", region["month"]));
        assert!(
            (progress - 10.0 / 21.0).abs() < 1e-9,
            "{base}: time progress {progress}"
        );
    }
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

    names_history_and_exports(
        &hq,
        &sup,
        &from_files.base,
        &from_clickhouse.base,
        &database,
    )
    .await;
}

/// Rows of a ClickHouse query, read over its HTTP interface.
async fn clickhouse_rows(database: &ClickHouseConfig, sql: &str) -> Vec<Value> {
    let url = database.url.as_deref().expect("url");
    // The test server's names and passwords need no escaping.
    let answer = reqwest::Client::new()
        .post(format!(
            "{url}/?database={}&user={}&password={}",
            database.database, database.user, database.password
        ))
        .body(format!("{sql} FORMAT JSONEachRow"))
        .send()
        .await
        .expect("ClickHouse query");
    let text = answer.text().await.expect("rows");
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The first sheet of a workbook as rows of cells.
fn sheet(bytes: &[u8]) -> Vec<Vec<calamine::Data>> {
    use calamine::Reader;
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).expect("xlsx");
    let name = workbook.sheet_names()[0].clone();
    let range = workbook.worksheet_range(&name).expect("sheet");
    range.rows().map(<[calamine::Data]>::to_vec).collect()
}

fn cell_text(cell: &calamine::Data) -> String {
    match cell {
        calamine::Data::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn cell_number(cell: &calamine::Data) -> Option<f64> {
    match cell {
        calamine::Data::Float(v) => Some(*v),
        calamine::Data::Int(v) => Some(*v as f64),
        _ => None,
    }
}

async fn names_history_and_exports(
    hq: &Client,
    sup: &Client,
    files: &str,
    clickhouse: &str,
    database: &ClickHouseConfig,
) {
    // Names: the generator's Chinese names, the same from both stores.
    let (_, meta) = hq.get(&format!("{clickhouse}/api/meta")).await;
    let first = &meta["tree"][0]["branches"][0]["teams"][0]["agents"][0];
    let name = first["name"]
        .as_str()
        .expect("an agent's name for headquarters");
    assert!(
        name.chars().all(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)) && name.chars().count() >= 2,
        "{first}"
    );

    // History: the same months and runs from both; last month's final figures and the
    // earlier run answer alike.
    let (status, history) = hq.get(&format!("{clickhouse}/api/history")).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history, hq.get(&format!("{files}/api/history")).await.1);
    let runs: Vec<&str> = history["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["as_of"].as_str())
        .collect();
    assert_eq!(runs, [AS_OF, EARLIER]);
    let october = history["months"]
        .as_array()
        .expect("months")
        .iter()
        .find(|m| m["month"] == "2026-10")
        .expect("October is listed");
    assert_eq!(october["final"], true);
    assert_eq!(october["as_of"], AS_OF);
    for query in ["month=2026-10", &format!("as_of={EARLIER}")] {
        let url = |base: &str| format!("{base}/api/scope?scope=team&id=T0001&{query}");
        let (s1, ch) = hq.get(&url(clickhouse)).await;
        let (s2, fs) = hq.get(&url(files)).await;
        assert_eq!((s1, s2), (200, 200), "{query}: {ch} / {fs}");
        for part in ["view", "month", "week", "children", "review", "agent_names"] {
            assert_eq!(ch[part], fs[part], "{query}: {part} differs");
        }
    }
    let (_, october) = hq
        .get(&format!(
            "{clickhouse}/api/scope?scope=team&id=T0001&month=2026-10"
        ))
        .await;
    assert_eq!(october["month"]["period_start"], "2026-10-01");
    assert_eq!(october["month"]["time_progress"], 1.0);
    let (_, earlier) = hq
        .get(&format!(
            "{clickhouse}/api/scope?scope=team&id=T0001&as_of={EARLIER}"
        ))
        .await;
    assert_eq!(earlier["month"]["as_of"], EARLIER);

    // Exports: the supervisor's members table holds the team's agents only, with the KPI
    // table's figures; both stores export the same workbook content.
    let fields = [
        ("table", "children"),
        ("format", "xlsx"),
        ("scope", "team"),
        ("id", "T0001"),
    ];
    let (status, from_ch) = sup.export(clickhouse, &fields).await;
    assert_eq!(status, 200);
    let (status, from_files) = sup.export(files, &fields).await;
    assert_eq!(status, 200);
    let rows = sheet(&from_ch);
    assert_eq!(
        rows,
        sheet(&from_files),
        "the same workbook from both stores"
    );
    let expected = clickhouse_rows(
        database,
        &format!(
            "SELECT scope_id, toString(premium) AS premium, premium_attainment, visits FROM kpi FINAL \
             WHERE as_of = '{AS_OF}' AND scope = 'agent' AND period = 'month' \
             AND period_start = '2026-11-01' AND team_id = 'T0001' ORDER BY scope_id"
        ),
    )
    .await;
    assert!(!expected.is_empty());
    let exported: Vec<String> = rows[1..].iter().map(|r| cell_text(&r[1])).collect();
    let stored: Vec<String> = expected
        .iter()
        .map(|r| r["scope_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(exported, stored, "the team's agents, nobody else");
    let header: Vec<String> = rows[0].iter().map(cell_text).collect();
    let column = |title: &str| header.iter().position(|h| h == title).expect(title);
    for (row, kpi) in rows[1..].iter().zip(&expected) {
        let premium: f64 = kpi["premium"]
            .as_str()
            .expect("premium")
            .parse()
            .expect("decimal");
        assert_eq!(cell_number(&row[column("保费")]), Some(premium), "{kpi}");
        match kpi["premium_attainment"].as_f64() {
            Some(attainment) => {
                let cell = cell_number(&row[column("达成率")]).expect("attainment");
                assert!((cell - attainment).abs() < 1e-9, "{kpi}");
            }
            None => assert_eq!(cell_number(&row[column("达成率")]), None, "{kpi}"),
        }
        assert_eq!(
            cell_number(&row[column("拜访")]),
            kpi["visits"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .or(kpi["visits"].as_f64()),
            "{kpi}"
        );
        assert!(
            cell_text(&row[0]) != cell_text(&row[1]),
            "a supervisor sees the agent's name"
        );
    }
}
