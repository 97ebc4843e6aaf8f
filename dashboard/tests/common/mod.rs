//! A dashboard server on a free loopback port over a small made-up organisation, and a
//! tiny cookie-keeping HTTP client for signing in as a person would.
//!
//! Organisation (as of 2026-11-18): region R01 with branch B001 (teams T0001: A01, A02;
//! T0002: A03) and branch B002 (team T0003: A04); region R02 with branch B003 (team T0004:
//! A05). Every node has a month and a week KPI row; A02 and T0003 are at risk.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aqs_dashboard::auth::users::{NewUser, UsersFile};
use aqs_dashboard::store::{KpiRow, Organisation, Snapshot, StoreError, Team};
use aqs_dashboard::{Auth, AuthSettings, DashboardConfig, DashboardState, KpiSource, Thresholds};
use chrono::NaiveDate;
use clap::Parser;
use serde_json::{Value, json};

pub const PASSWORD: &str = "a long test password";

/// The made-up organisation's KPI table, given to the dashboard as its source.
#[derive(Debug)]
pub struct FixtureSource;

pub fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 18).expect("date")
}

fn team(id: &str, branch: &str, region: &str) -> Team {
    Team {
        team_id: id.into(),
        team_name: format!("team {id}"),
        branch_id: branch.into(),
        branch_name: Some(format!("branch {branch}")),
        region_id: region.into(),
        region_name: Some(format!("region {region}")),
    }
}

/// (agent, team, branch, region)
pub const AGENTS: [(&str, &str, &str, &str); 5] = [
    ("A01", "T0001", "B001", "R01"),
    ("A02", "T0001", "B001", "R01"),
    ("A03", "T0002", "B001", "R01"),
    ("A04", "T0003", "B002", "R01"),
    ("A05", "T0004", "B003", "R02"),
];

fn rows() -> Vec<KpiRow> {
    let mut nodes: Vec<(&str, String, Value, Value, Value)> = Vec::new();
    for (agent, team, branch, region) in AGENTS {
        nodes.push((
            "agent",
            agent.into(),
            json!(team),
            json!(branch),
            json!(region),
        ));
    }
    for (team, branch, region) in [
        ("T0001", "B001", "R01"),
        ("T0002", "B001", "R01"),
        ("T0003", "B002", "R01"),
        ("T0004", "B003", "R02"),
    ] {
        nodes.push((
            "team",
            team.into(),
            json!(team),
            json!(branch),
            json!(region),
        ));
    }
    for (branch, region) in [("B001", "R01"), ("B002", "R01"), ("B003", "R02")] {
        nodes.push((
            "branch",
            branch.into(),
            Value::Null,
            json!(branch),
            json!(region),
        ));
    }
    for region in ["R01", "R02"] {
        nodes.push((
            "region",
            region.into(),
            Value::Null,
            Value::Null,
            json!(region),
        ));
    }
    let mut rows = Vec::new();
    for (i, (scope, id, team, branch, region)) in nodes.into_iter().enumerate() {
        let at_risk = id == "A02" || id == "T0003";
        for (period, start) in [("month", "2026-11-01"), ("week", "2026-11-16")] {
            let row = json!({
                "scope": scope, "scope_id": id, "team_id": team, "branch_id": branch,
                "region_id": region, "period": period, "period_start": start,
                "as_of": "2026-11-18", "visits": 10 + i, "premium": format!("{}.00", 1000 * (i + 1)),
                "premium_attainment": 0.5 + 0.01 * i as f64,
                "projected_attainment": if at_risk { 0.7 } else { 1.1 },
                "at_risk": period == "month" && at_risk,
                "plan_adherence_visits": 0.9,
                "coaching_quadrant": match id.as_str() {
                    "A01" => json!("does_not_know_how"),
                    "A03" => json!("unwilling"),
                    _ => Value::Null,
                },
            });
            rows.push(row.as_object().cloned().expect("object"));
        }
    }
    rows
}

impl KpiSource for FixtureSource {
    fn refresh(&self, current: &mut Snapshot) -> Result<bool, StoreError> {
        if current.as_of.is_some() {
            return Ok(false);
        }
        let teams = vec![
            team("T0001", "B001", "R01"),
            team("T0002", "B001", "R01"),
            team("T0003", "B002", "R01"),
            team("T0004", "B003", "R02"),
        ];
        let mut agents_by_team: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut plans = HashMap::new();
        for (agent, team, _, _) in AGENTS {
            agents_by_team
                .entry(team.into())
                .or_default()
                .push(agent.into());
            let next_week = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
            plans.insert((agent.to_owned(), next_week), [Some(5), Some(3), Some(1)]);
        }
        let agent_names = AGENTS
            .iter()
            .map(|(agent, ..)| ((*agent).to_owned(), format!("名{agent}")))
            .collect();
        *current = Snapshot::from_rows(
            as_of(),
            "2026-11-18T08:00:00+08:00".into(),
            rows(),
            Organisation {
                teams,
                agents_by_team,
                plans,
                agent_names,
            },
        );
        current.outlet_rows = outlet_rows();
        current.supervisor_rows = supervisor_rows();
        Ok(true)
    }
}

/// An outlet row of the fixture: outlet, agent, team, branch, region, grade, dormant.
type OutletFixture<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
    bool,
);

/// The outlets of the fixture, with rows in October and November; O5 is assigned to nobody.
pub const OUTLETS: [OutletFixture<'static>; 6] = [
    (
        "O1",
        Some("A01"),
        Some("T0001"),
        Some("B001"),
        Some("R01"),
        "B",
        false,
    ),
    (
        "O2",
        Some("A02"),
        Some("T0001"),
        Some("B001"),
        Some("R01"),
        "A",
        true,
    ),
    (
        "O3",
        Some("A03"),
        Some("T0002"),
        Some("B001"),
        Some("R01"),
        "D",
        true,
    ),
    (
        "O4",
        Some("A04"),
        Some("T0003"),
        Some("B002"),
        Some("R01"),
        "C",
        false,
    ),
    (
        "O6",
        Some("A05"),
        Some("T0004"),
        Some("B003"),
        Some("R02"),
        "A",
        false,
    ),
    ("O5", None, None, None, None, "D", false),
];

/// The outlet table of the run: outlet rows of October and November, and the team and
/// branch summaries of November.
fn outlet_rows() -> Vec<KpiRow> {
    let mut rows = Vec::new();
    for (i, (outlet, agent, team, branch, region, grade, dormant)) in
        OUTLETS.into_iter().enumerate()
    {
        for month in ["2026-10-01", "2026-11-01"] {
            let row = json!({
                "scope": "outlet", "scope_id": outlet, "outlet_name": format!("网点{outlet}"),
                "agent_id": agent, "team_id": team, "branch_id": branch, "region_id": region,
                "month": month, "as_of": "2026-11-18", "visits": i, "premium": "100.00",
                "grade": grade, "dormant": dormant, "working_days_without_visit": 3 + i,
                "days_since_last_visit": 5 + i, "breaks_zero": i == 0,
            });
            rows.push(row.as_object().cloned().expect("object"));
        }
    }
    for (scope, id, team, branch, region, outlets) in [
        ("team", "T0001", Some("T0001"), "B001", "R01", 2),
        ("team", "T0002", Some("T0002"), "B001", "R01", 1),
        ("team", "T0003", Some("T0003"), "B002", "R01", 1),
        ("team", "T0004", Some("T0004"), "B003", "R02", 1),
        ("branch", "B001", None, "B001", "R01", 3),
        ("branch", "B002", None, "B002", "R01", 1),
        ("branch", "B003", None, "B003", "R02", 1),
    ] {
        let row = json!({
            "scope": scope, "scope_id": id, "team_id": team, "branch_id": branch,
            "region_id": region, "month": "2026-11-01", "as_of": "2026-11-18",
            "outlets": outlets, "dormant_outlets": 1, "first_sale_outlets": 0,
        });
        rows.push(row.as_object().cloned().expect("object"));
    }
    rows
}

/// The supervisor table of the run: S1 leads T0001, S2 T0002, S3 T0003 (and coaches
/// nobody), S4 T0004; month and week rows, branch and region sums, and the agents' months
/// (A01 evaluated low skill, high will by S1; A03 high, high by S2; A02 not coached).
fn supervisor_rows() -> Vec<KpiRow> {
    let mut rows = Vec::new();
    // (supervisor, teams, branch, region, coaching, accompanied, weekly meetings, evaluation)
    for (id, teams, branch, region, attainments) in [
        ("S1", "T0001", "B001", "R01", [0.8, 0.5, 1.0, 0.5]),
        ("S2", "T0002", "B001", "R01", [1.5, 1.0, 1.0, 1.0]),
        ("S3", "T0003", "B002", "R01", [0.0, 0.0, 0.0, 0.0]),
        ("S4", "T0004", "B003", "R02", [0.6, 0.6, 0.6, 0.6]),
    ] {
        for (period, start) in [("month", "2026-11-01"), ("week", "2026-11-16")] {
            let row = json!({
                "scope": "supervisor", "scope_id": id, "supervisor_id": id, "team_ids": teams,
                "branch_id": branch, "region_id": region, "period": period,
                "period_start": start, "as_of": "2026-11-18",
                "coaching_sessions": (attainments[0] * 10.0) as i64,
                "coaching_attainment": attainments[0],
                "accompanied_visits_attainment": attainments[1],
                "weekly_meetings_attainment": attainments[2],
                "evaluation_attainment": if period == "month" { json!(attainments[3]) } else { Value::Null },
                "agents_not_coached": if id == "S1" { 1 } else { 0 },
                "measures_open": 1,
            });
            rows.push(row.as_object().cloned().expect("object"));
        }
    }
    for (scope, id, branch, region) in [
        ("branch", "B001", Some("B001"), "R01"),
        ("branch", "B002", Some("B002"), "R01"),
        ("branch", "B003", Some("B003"), "R02"),
        ("region", "R01", None, "R01"),
        ("region", "R02", None, "R02"),
    ] {
        let row = json!({
            "scope": scope, "scope_id": id, "branch_id": branch, "region_id": region,
            "period": "month", "period_start": "2026-11-01", "as_of": "2026-11-18",
            "coaching_attainment": 0.5,
        });
        rows.push(row.as_object().cloned().expect("object"));
    }
    // (agent, supervisor, skill, will, working days since coached, not coached)
    for (agent, supervisor, skill, will, waited, not_coached) in [
        ("A01", "S1", Some("low"), Some("high"), Some(2), false),
        ("A02", "S1", None, None, Some(12), true),
        ("A03", "S2", Some("high"), Some("high"), Some(1), false),
        ("A04", "S3", None, None, None, true),
        ("A05", "S4", None, None, Some(3), false),
    ] {
        let (_, team, branch, region) = AGENTS
            .iter()
            .find(|(id, ..)| *id == agent)
            .copied()
            .expect("an agent");
        for month in ["2026-10-01", "2026-11-01"] {
            let october = month == "2026-10-01";
            let row = json!({
                "scope": "agent", "scope_id": agent, "supervisor_id": supervisor,
                "team_ids": team, "branch_id": branch, "region_id": region,
                "period": "month", "period_start": month, "as_of": "2026-11-18",
                "coaching_sessions": if october { 1 } else { 3 },
                "accompanied_visits": 1,
                "working_days_since_coached": waited, "not_coached": not_coached,
                "evaluation_skill": skill, "evaluation_will": will,
                "evaluated_by": skill.map(|_| supervisor),
            });
            rows.push(row.as_object().cloned().expect("object"));
        }
    }
    rows
}

/// Users of every role (name, role, scope).
pub const USERS: [(&str, &str, Option<&str>); 6] = [
    ("hq", "headquarters", None),
    ("hq-r02", "headquarters", Some("R02")),
    ("bm-b001", "branch_manager", Some("B001")),
    ("sup-t0001", "supervisor", Some("T0001")),
    ("sup-t0004", "supervisor", Some("T0004")),
    ("analyst", "analyst", None),
];

/// A data folder with the users above.
pub fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let users = UsersFile::new(dir.path().join("dashboard-users.json"));
    for (name, role, scope) in USERS {
        users
            .add(NewUser {
                name,
                password: PASSWORD,
                role,
                scope,
                agent_names: false,
            })
            .expect("user added");
    }
    dir
}

/// Settings as `aqs dashboard` would resolve them from `args` (flags of
/// [`DashboardConfig`]) and the data folder.
pub fn settings(data_dir: &Path, args: &[&str]) -> AuthSettings {
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        dashboard: DashboardConfig,
    }
    let mut argv = vec!["dashboard"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).expect("settings parse");
    AuthSettings::from_config(&cli.dashboard, data_dir).expect("settings resolve")
}

/// A running dashboard.
pub struct Server {
    pub base: String,
    pub data_dir: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a dashboard on a free port; its public URL is that address unless `args` say
/// otherwise (the SSO redirect goes there).
pub async fn start(data_dir: &Path, args: &[&str]) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let public_url = format!("http://{address}");
    let mut args = args.to_vec();
    if !args.contains(&"--dashboard-public-url") {
        args.extend(["--dashboard-public-url", public_url.as_str()]);
    }
    serve(listener, data_dir, settings(data_dir, &args)).await
}

async fn serve(
    listener: tokio::net::TcpListener,
    data_dir: &Path,
    settings: AuthSettings,
) -> Server {
    let address = listener.local_addr().expect("address");
    let auth = Arc::new(Auth::new(settings).expect("auth"));
    let state = DashboardState::new(Arc::new(FixtureSource), Thresholds::default(), auth);
    let router = aqs_dashboard::router(state);
    let task = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Server {
        base: format!("http://{address}"),
        data_dir: data_dir.to_path_buf(),
        task,
    }
}

/// An HTTP client that keeps cookies like a browser (one origin) and follows no redirects.
#[derive(Debug, Clone)]
pub struct Browser {
    pub client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// The body as text (lossy for binary answers, which `bytes` holds as sent).
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl Browser {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            client,
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for value in headers.get_all("set-cookie") {
            let text = value.to_str().expect("ascii");
            let pair = text.split(';').next().expect("pair");
            let (name, value) = pair.split_once('=').expect("name=value");
            if text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let bytes = response.bytes().await.expect("body").to_vec();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        }
    }

    pub async fn get(&mut self, url: &str) -> Answer {
        let response = self
            .client
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.finish(response).await
    }

    pub async fn post_form(&mut self, url: &str, origin: &str, form: &[(&str, &str)]) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .client
            .post(url)
            .header("cookie", self.cookie_header())
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST");
        self.finish(response).await
    }

    /// Opens the sign-in page and submits the form: the answer of the submission.
    pub async fn sign_in(&mut self, base: &str, user: &str, password: &str) -> Answer {
        let page = self.get(&format!("{base}/login")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = hidden_field(&page.body, "csrf");
        self.post_form(
            &format!("{base}/auth/login"),
            base,
            &[
                ("user", user),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/"),
            ],
        )
        .await
    }
}

/// A browser signed in as `user` (with [`PASSWORD`]).
pub async fn signed_in(base: &str, user: &str) -> Browser {
    let mut browser = Browser::new();
    let answer = browser.sign_in(base, user, PASSWORD).await;
    assert_eq!(answer.status, 303, "{user}: {}", answer.body);
    browser
}

/// The status and JSON body of a GET of `path`.
pub async fn get_json(browser: &mut Browser, base: &str, path: &str) -> (u16, Value) {
    let answer = browser.get(&format!("{base}{path}")).await;
    let body = answer.json();
    (answer.status, body)
}

/// The `scope_id` of every row of a JSON list.
pub fn scope_ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|row| row["scope_id"].as_str().expect("id").to_owned())
        .collect()
}

/// The value of a hidden form field of a page.
pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_owned()
}
