//! The dashboard over real HTTP on loopback: sign-in, sessions, CSRF, limits, headers,
//! audit, and what each role can read of the API (lists filtered, other scopes refused).

mod common;

use std::collections::BTreeSet;

use common::{Browser, PASSWORD, data_dir, start};
use serde_json::Value;

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|row| {
            row["scope_id"]
                .as_str()
                .or(row["agent_id"].as_str())
                .expect("id")
                .to_owned()
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Every id in the organisation tree of `/api/meta`.
fn tree_ids(meta: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for region in meta["tree"].as_array().expect("tree") {
        found.insert(region["id"].as_str().expect("id").to_owned());
        for branch in region["branches"].as_array().expect("branches") {
            found.insert(branch["id"].as_str().expect("id").to_owned());
            for team in branch["teams"].as_array().expect("teams") {
                found.insert(team["id"].as_str().expect("id").to_owned());
                for agent in team["agents"].as_array().expect("agents") {
                    found.insert(agent["id"].as_str().expect("agent id").to_owned());
                }
            }
        }
    }
    found
}

async fn signed_in(base: &str, user: &str) -> Browser {
    let mut browser = Browser::new();
    let answer = browser.sign_in(base, user, PASSWORD).await;
    assert_eq!(answer.status, 303, "{user}: {}", answer.body);
    assert_eq!(answer.location(), "/");
    browser
}

async fn scope(browser: &mut Browser, base: &str, scope: &str, id: &str) -> (u16, Value) {
    let answer = browser
        .get(&format!("{base}/api/scope?scope={scope}&id={id}"))
        .await;
    let body = answer.json();
    (answer.status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_only_the_sign_in_page_and_probes_answer() {
    let dir = data_dir();
    let server = start(dir.path(), &[]).await;
    let base = &server.base;
    let mut browser = Browser::new();
    for path in ["/api/meta", "/api/scope?scope=team&id=T0001", "/api/me"] {
        let answer = browser.get(&format!("{base}{path}")).await;
        assert_eq!(answer.status, 401, "{path}");
        assert_eq!(answer.json()["error"], "sign in first");
    }
    for path in ["/", "/app.js", "/index.html", "/style.css"] {
        let answer = browser.get(&format!("{base}{path}")).await;
        assert_eq!(answer.status, 303, "{path}");
        assert!(
            answer.location().starts_with("/login"),
            "{path}: {}",
            answer.location()
        );
    }
    assert_eq!(
        browser.get(&format!("{base}/app.js")).await.location(),
        "/login?next=%2Fapp.js"
    );
    for path in ["/login", "/login.css", "/login.js", "/healthz", "/readyz"] {
        assert_eq!(
            browser.get(&format!("{base}{path}")).await.status,
            200,
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers() {
    let dir = data_dir();
    let server = start(dir.path(), &[]).await;
    let base = &server.base;
    let mut browser = signed_in(base, "hq").await;
    for path in [
        "/login",
        "/api/meta",
        "/",
        "/app.js",
        "/healthz",
        "/nothing-here",
    ] {
        let answer = browser.get(&format!("{base}{path}")).await;
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let csp = header("content-security-policy");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("script-src 'self' 'unsafe"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
    }
    // The page itself loads no inline script: every <script> has a src of this site.
    let page = browser.get(&format!("{base}/")).await.body;
    for tag in page.split("<script").skip(1) {
        let head = &tag[..tag.find('>').expect("tag end")];
        assert!(
            head.contains("src=\""),
            "inline script in index.html: <script{head}>"
        );
    }
    // Nor inline event handlers (on...="...").
    let inline_handler = page.split(|c: char| c.is_whitespace()).any(|word| {
        word.strip_prefix("on")
            .and_then(|rest| rest.split_once('='))
            .is_some_and(|(name, _)| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase())
            })
    });
    assert!(!inline_handler, "inline event handler in index.html");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_reads_only_its_scope() {
    let dir = data_dir();
    let server = start(dir.path(), &[]).await;
    let base = &server.base;

    // Headquarters: everything.
    let mut hq = signed_in(base, "hq").await;
    let meta = hq.get(&format!("{base}/api/meta")).await.json();
    assert_eq!(tree_ids(&meta).len(), 2 + 3 + 4 + 5);
    let (status, region) = scope(&mut hq, base, "region", "R01").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&region["children"]), set(&["B001", "B002"]));
    assert_eq!(ids(&region["ranking"]), set(&["T0001", "T0002", "T0003"]));
    assert_eq!(ids(&region["at_risk"]), set(&["A02", "T0003"]));
    let me = hq.get(&format!("{base}/api/me")).await.json();
    assert_eq!(me["role"], "headquarters");
    assert_eq!(me["home"], Value::Null);

    // Headquarters of one region.
    let mut hq2 = signed_in(base, "hq-r02").await;
    let meta = hq2.get(&format!("{base}/api/meta")).await.json();
    assert_eq!(tree_ids(&meta), set(&["R02", "B003", "T0004", "A05"]));
    assert_eq!(scope(&mut hq2, base, "region", "R02").await.0, 200);
    assert_eq!(scope(&mut hq2, base, "region", "R01").await.0, 403);
    assert_eq!(scope(&mut hq2, base, "agent", "A01").await.0, 403);

    // Branch manager of B001.
    let mut bm = signed_in(base, "bm-b001").await;
    let meta = bm.get(&format!("{base}/api/meta")).await.json();
    assert_eq!(
        tree_ids(&meta),
        set(&["R01", "B001", "T0001", "T0002", "A01", "A02", "A03"])
    );
    let (status, branch) = scope(&mut bm, base, "branch", "B001").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&branch["children"]), set(&["T0001", "T0002"]));
    assert_eq!(ids(&branch["at_risk"]), set(&["A02"]));
    for (level, id) in [
        ("region", "R01"),
        ("branch", "B002"),
        ("team", "T0003"),
        ("agent", "A04"),
        ("region", "R02"),
    ] {
        let (status, body) = scope(&mut bm, base, level, id).await;
        assert_eq!(status, 403, "{level} {id}: {body}");
        assert_eq!(body["error"], format!("{level} {id} is outside your scope"));
    }

    // Supervisor of T0001: the team, its agents, nothing else.
    let mut sup = signed_in(base, "sup-t0001").await;
    let me = sup.get(&format!("{base}/api/me")).await.json();
    assert_eq!(me["home"]["scope"], "team");
    assert_eq!(me["home"]["id"], "T0001");
    let meta = sup.get(&format!("{base}/api/meta")).await.json();
    assert_eq!(
        tree_ids(&meta),
        set(&["R01", "B001", "T0001", "A01", "A02"])
    );
    let (status, team) = scope(&mut sup, base, "team", "T0001").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&team["children"]), set(&["A01", "A02"]));
    assert_eq!(ids(&team["ranking"]), set(&["T0001"]));
    assert_eq!(ids(&team["quadrant"]), set(&["A01", "A02"]));
    assert_eq!(ids(&team["review"]["agents"]), set(&["A01", "A02"]));
    let (status, agent) = scope(&mut sup, base, "agent", "A02").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&agent["ranking"]), set(&["T0001"]));
    assert!(agent["review"]["agents"][0]["next_week_plan"].is_object());
    for (level, id) in [
        ("team", "T0002"),
        ("team", "T0004"),
        ("agent", "A03"),
        ("agent", "A05"),
        ("branch", "B001"),
        ("region", "R01"),
        ("team", "NO-SUCH-TEAM"),
        ("agent", "A99"),
    ] {
        let (status, body) = scope(&mut sup, base, level, id).await;
        assert_eq!(status, 403, "{level} {id}: {body}");
    }

    // Analyst: every row, no names.
    let mut analyst = signed_in(base, "analyst").await;
    let me = analyst.get(&format!("{base}/api/me")).await.json();
    assert_eq!(me["agent_names"], false);
    assert_eq!(scope(&mut analyst, base, "team", "T0004").await.0, 200);
    assert_eq!(scope(&mut analyst, base, "agent", "A01").await.0, 200);
    // An unknown id is simply not found for whole-organisation scopes.
    assert_eq!(
        scope(&mut analyst, base, "team", "NO-SUCH-TEAM").await.0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_a_restart_and_is_served_by_another_replica_sharing_the_key() {
    let dir = data_dir();
    let key = [
        "--dashboard-session-key",
        "0123456789abcdef0123456789abcdef-shared",
    ];
    let first = start(dir.path(), &key).await;
    let other_dir = data_dir();
    // Another replica: its own data folder, the same key, users and revocations files.
    let users = dir.path().join("dashboard-users.json");
    let revocations = dir.path().join("dashboard-revocations.jsonl");
    let users = users.to_str().expect("utf-8");
    let revocations = revocations.to_str().expect("utf-8");
    let shared = [
        key[0],
        key[1],
        "--dashboard-users-file",
        users,
        "--dashboard-revocations-file",
        revocations,
    ];
    let second = start(other_dir.path(), &shared).await;
    let mut browser = signed_in(&first.base, "sup-t0001").await;
    assert_eq!(
        browser.get(&format!("{}/api/me", second.base)).await.status,
        200
    );
    drop(first);
    let restarted = start(dir.path(), &key).await;
    assert_eq!(
        browser
            .get(&format!("{}/api/me", restarted.base))
            .await
            .status,
        200
    );

    // Sign-out on one replica ends the session on the other, even with a copied cookie.
    let copied = browser.clone();
    let csrf = browser
        .get(&format!("{}/api/me", restarted.base))
        .await
        .json()["csrf"]
        .as_str()
        .expect("csrf")
        .to_owned();
    let out = browser
        .post_form(
            &format!("{}/auth/logout", restarted.base),
            &restarted.base,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/login?message=signed_out");
    assert!(
        browser.cookies.is_empty(),
        "cookie cleared: {:?}",
        browser.cookies
    );
    let mut copied = copied;
    assert_eq!(
        copied.get(&format!("{}/api/me", second.base)).await.status,
        401
    );
    assert_eq!(
        copied
            .get(&format!("{}/api/me", restarted.base))
            .await
            .status,
        401
    );

    // Another key (another deployment, or after rotating it) reads no session.
    let mut again = signed_in(&second.base, "hq").await;
    let foreign = start(
        other_dir.path(),
        &[
            "--dashboard-session-key",
            "another-key-another-key-another-key-x",
        ],
    )
    .await;
    assert_eq!(
        again.get(&format!("{}/api/me", foreign.base)).await.status,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changing_requests_need_the_csrf_token_and_the_own_origin() {
    let dir = data_dir();
    let server = start(dir.path(), &[]).await;
    let base = &server.base;
    // Sign-in without the form's token (a forged cross-site form) is refused.
    let mut browser = Browser::new();
    browser.get(&format!("{base}/login")).await;
    let forged = browser
        .post_form(
            &format!("{base}/auth/login"),
            base,
            &[("user", "hq"), ("password", PASSWORD), ("csrf", "guess")],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(!browser.cookies.contains_key("aqs_session"));
    // The right token from another origin is refused too.
    let page = browser.get(&format!("{base}/login")).await;
    let csrf = common::hidden_field(&page.body, "csrf");
    let cross = browser
        .post_form(
            &format!("{base}/auth/login"),
            "http://evil.example",
            &[("user", "hq"), ("password", PASSWORD), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(cross.status, 403);
    // Sign-out without the session's token does not end the session.
    let mut signed = signed_in(base, "hq").await;
    let refused = signed
        .post_form(&format!("{base}/auth/logout"), base, &[("csrf", "wrong")])
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(signed.get(&format!("{base}/api/me")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_limited_per_user_and_per_address_and_audited() {
    let dir = data_dir();
    let server = start(
        dir.path(),
        &[
            "--dashboard-login-failures-per-user",
            "3",
            "--dashboard-login-failures-per-address",
            "5",
        ],
    )
    .await;
    let base = &server.base;
    let mut browser = Browser::new();
    for _ in 0..3 {
        let answer = browser.sign_in(base, "sup-t0001", "not the password").await;
        assert_eq!(answer.status, 401);
        assert!(answer.body.contains("data-message=\"failed\""));
    }
    // Locked: even the right password is not looked at.
    let locked = browser.sign_in(base, "sup-t0001", PASSWORD).await;
    assert_eq!(locked.status, 429);
    assert!(locked.headers.get("retry-after").is_some());
    // Other users are not locked out by one user's lock...
    assert_eq!(browser.sign_in(base, "hq", "still wrong").await.status, 401);
    assert_eq!(
        browser.sign_in(base, "analyst", "still wrong").await.status,
        401
    );
    // ...until the address has used up its own allowance (5 failures).
    assert_eq!(browser.sign_in(base, "bm-b001", PASSWORD).await.status, 429);

    let audit =
        std::fs::read_to_string(dir.path().join("dashboard-audit.jsonl")).expect("audit log");
    let records: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let actions: Vec<(&str, &str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or(""),
                r["user"].as_str().unwrap_or(""),
                r["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("sign_in_failed", "sup-t0001", "wrong_user_or_password"),
            ("sign_in_failed", "sup-t0001", "wrong_user_or_password"),
            ("sign_in_failed", "sup-t0001", "wrong_user_or_password"),
            ("sign_in_refused", "sup-t0001", "rate_limited"),
            ("sign_in_failed", "hq", "wrong_user_or_password"),
            ("sign_in_failed", "analyst", "wrong_user_or_password"),
            ("sign_in_refused", "bm-b001", "rate_limited"),
        ]
    );
    assert!(
        records
            .iter()
            .all(|r| r["client"] == "127.0.0.1" && r["at"].is_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_and_sign_outs_are_audited_with_scope_and_the_removed_user_is_out() {
    let dir = data_dir();
    let server = start(dir.path(), &[]).await;
    let base = &server.base;
    let mut browser = signed_in(base, "bm-b001").await;
    let csrf = browser.get(&format!("{base}/api/me")).await.json()["csrf"]
        .as_str()
        .expect("csrf")
        .to_owned();
    browser
        .post_form(&format!("{base}/auth/logout"), base, &[("csrf", &csrf)])
        .await;
    let audit =
        std::fs::read_to_string(dir.path().join("dashboard-audit.jsonl")).expect("audit log");
    let records: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["action"], "sign_in");
    assert_eq!(records[0]["scope"], "branch B001");
    assert_eq!(records[0]["role"], "branch_manager");
    assert_eq!(records[1]["action"], "sign_out");
    assert_eq!(records[0]["session"], records[1]["session"]);

    // A user removed from the users file loses the session at the next request.
    let mut sup = signed_in(base, "sup-t0001").await;
    assert_eq!(sup.get(&format!("{base}/api/me")).await.status, 200);
    let users = aqs_dashboard::auth::users::UsersFile::new(dir.path().join("dashboard-users.json"));
    users.remove("sup-t0001").expect("removed");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(users.path())
        .and_then(|f| f.set_modified(later))
        .expect("touch");
    assert_eq!(sup.get(&format!("{base}/api/me")).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_tls_proxy_cookies_are_secure_and_the_client_address_comes_from_the_proxy() {
    let dir = data_dir();
    let server = start(
        dir.path(),
        &[
            "--dashboard-public-url",
            "https://aqs.example-bank.cn",
            "--dashboard-client-address-header",
            "X-Forwarded-For",
        ],
    )
    .await;
    let base = &server.base;
    let mut browser = Browser::new();
    let page = browser.get(&format!("{base}/login")).await;
    let set_cookie = page
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie");
    assert!(
        set_cookie.starts_with("__Host-aqs_login=") && set_cookie.contains("Secure"),
        "{set_cookie}"
    );
    assert_eq!(
        page.headers
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000")
    );
    let csrf = common::hidden_field(&page.body, "csrf");
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("user", "hq"),
            ("password", PASSWORD),
            ("csrf", csrf.as_str()),
        ])
        .finish();
    let cookie = browser
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let answer = browser
        .client
        .post(format!("{base}/auth/login"))
        .header("cookie", cookie)
        .header("origin", "https://aqs.example-bank.cn")
        .header("x-forwarded-for", "10.1.2.3, 192.0.2.44")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(answer.status().as_u16(), 303);
    let session = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("aqs_session"))
        .expect("session cookie")
        .to_owned();
    assert!(
        session.starts_with("__Host-aqs_session=")
            && session.contains("Secure")
            && session.contains("HttpOnly"),
        "{session}"
    );
    let audit = std::fs::read_to_string(dir.path().join("dashboard-audit.jsonl")).expect("audit");
    let record: Value = serde_json::from_str(audit.lines().next().expect("line")).expect("json");
    assert_eq!(record["client"], "192.0.2.44");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sign_in_page_keeps_the_form_on_screen_valid() {
    let dir = data_dir();
    let server = start(dir.path(), &[]).await;
    let base = &server.base;
    let mut browser = Browser::new();
    let page = browser.get(&format!("{base}/login")).await;
    let csrf = common::hidden_field(&page.body, "csrf");
    // What Chromium does next: asks for /favicon.ico, is sent to the sign-in page, loads it.
    let favicon = browser.get(&format!("{base}/favicon.ico")).await;
    assert_eq!(favicon.status, 303);
    browser.get(&format!("{base}{}", favicon.location())).await;
    let answer = browser
        .post_form(
            &format!("{base}/auth/login"),
            base,
            &[("user", "hq"), ("password", PASSWORD), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
}
