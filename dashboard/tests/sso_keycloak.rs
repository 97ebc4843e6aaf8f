//! Single sign-on against a real Keycloak (the test realm of
//! deploy/test-services/keycloak-realm.json: realm roles give `aqs_role`, groups named by
//! scope ids give `aqs_scope`): the authorization code flow with PKCE as a browser runs it,
//! the role and scope taken from the ID token, and refusals.

mod common;

use aqs_testkit::KeycloakEnv;
use common::{Answer, Browser, Server, data_dir, start};
use serde_json::Value;

async fn dashboard(keycloak: &KeycloakEnv, dir: &std::path::Path) -> Server {
    let issuer = keycloak.issuer();
    let (client_id, secret) = keycloak.client();
    start(
        dir,
        &[
            "--dashboard-oidc-issuer",
            &issuer,
            "--dashboard-oidc-client-id",
            client_id,
            "--dashboard-oidc-client-secret",
            secret,
        ],
    )
    .await
}

fn unescape(text: &str) -> String {
    text.replace("&amp;", "&")
}

/// The `action` of Keycloak's login form.
fn login_action(html: &str) -> String {
    let form = html
        .find("id=\"kc-form-login\"")
        .unwrap_or_else(|| panic!("no login form in {html}"));
    let rest = &html[form..];
    let start = rest.find("action=\"").expect("action") + "action=\"".len();
    let end = rest[start..].find('"').expect("end of action") + start;
    unescape(&rest[start..end])
}

/// Runs the whole flow from the dashboard's SSO link: the dashboard's answer to the
/// provider's redirect back.
async fn sign_in_with_sso(
    browser: &mut Browser,
    server: &Server,
    user: &str,
    password: &str,
) -> Answer {
    let base = &server.base;
    let page = browser.get(&format!("{base}/login")).await;
    assert!(
        page.body.contains("href=\"/auth/sso?next=%2F\""),
        "no SSO link: {}",
        page.body
    );
    let to_provider = browser.get(&format!("{base}/auth/sso?next=%2F")).await;
    assert_eq!(to_provider.status, 303, "{}", to_provider.body);
    let authorize = to_provider.location().to_owned();
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    assert!(
        authorize.contains("code_challenge=")
            && authorize.contains("nonce=")
            && authorize.contains("state=")
    );
    let form = browser.get(&authorize).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let action = login_action(&form.body);
    let origin = action.split("/realms/").next().expect("origin").to_owned();
    let back = browser
        .post_form(
            &action,
            &origin,
            &[
                ("username", user),
                ("password", password),
                ("credentialId", ""),
            ],
        )
        .await;
    assert_eq!(
        back.status, 302,
        "Keycloak did not send the browser back: {}",
        back.body
    );
    let callback = back.location().to_owned();
    assert!(
        callback.starts_with(&format!("{base}/auth/callback?")),
        "{callback}"
    );
    browser.get(&callback).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_signs_in_through_keycloak_and_sees_only_the_team() {
    let Some(keycloak) = aqs_testkit::keycloak() else {
        return;
    };
    let dir = data_dir();
    let server = dashboard(&keycloak, dir.path()).await;
    let base = &server.base;
    let mut browser = Browser::new();
    let answer =
        sign_in_with_sso(&mut browser, &server, "sso-supervisor", keycloak.password()).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.location(), "/");
    let me = browser.get(&format!("{base}/api/me")).await.json();
    assert_eq!(me["user"], "sso-supervisor");
    assert_eq!(me["method"], "sso");
    assert_eq!(me["role"], "supervisor");
    assert_eq!(me["scope"]["id"], "T0001");
    let team = browser
        .get(&format!("{base}/api/scope?scope=team&id=T0001"))
        .await;
    assert_eq!(team.status, 200);
    for (level, id) in [("team", "T0002"), ("agent", "A03"), ("branch", "B001")] {
        let answer = browser
            .get(&format!("{base}/api/scope?scope={level}&id={id}"))
            .await;
        assert_eq!(answer.status, 403, "{level} {id}: {}", answer.body);
    }
    let audit = std::fs::read_to_string(dir.path().join("dashboard-audit.jsonl")).expect("audit");
    let record: Value =
        serde_json::from_str(audit.lines().last().expect("a record")).expect("json");
    assert_eq!(record["action"], "sign_in");
    assert_eq!(record["method"], "sso");
    assert_eq!(record["scope"], "team T0001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headquarters_through_keycloak_sees_everything() {
    let Some(keycloak) = aqs_testkit::keycloak() else {
        return;
    };
    let dir = data_dir();
    let server = dashboard(&keycloak, dir.path()).await;
    let mut browser = Browser::new();
    let answer = sign_in_with_sso(&mut browser, &server, "sso-hq", keycloak.password()).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let me = browser.get(&format!("{}/api/me", server.base)).await.json();
    assert_eq!(me["role"], "headquarters");
    assert_eq!(me["scope"]["level"], "all");
    for (level, id) in [("region", "R01"), ("region", "R02"), ("team", "T0004")] {
        let answer = browser
            .get(&format!("{}/api/scope?scope={level}&id={id}", server.base))
            .await;
        assert_eq!(answer.status, 200, "{level} {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_a_role_and_a_forged_callback_get_no_session() {
    let Some(keycloak) = aqs_testkit::keycloak() else {
        return;
    };
    let dir = data_dir();
    let server = dashboard(&keycloak, dir.path()).await;
    let base = &server.base;
    let mut browser = Browser::new();
    let answer = sign_in_with_sso(&mut browser, &server, "sso-norole", keycloak.password()).await;
    assert_eq!(answer.location(), "/login?message=sso_no_role");
    assert_eq!(browser.get(&format!("{base}/api/me")).await.status, 401);

    // A callback whose state is not the one this browser was sent off with.
    let mut other = Browser::new();
    let to_provider = other.get(&format!("{base}/auth/sso")).await;
    assert_eq!(to_provider.status, 303);
    let forged = other
        .get(&format!(
            "{base}/auth/callback?code=made-up&state=not-the-state"
        ))
        .await;
    assert_eq!(forged.location(), "/login?message=sso_failed");
    assert_eq!(other.get(&format!("{base}/api/me")).await.status, 401);
    // A callback with no sign-in started in this browser at all.
    let mut stranger = Browser::new();
    let answer = stranger
        .get(&format!("{base}/auth/callback?code=x&state=y"))
        .await;
    assert_eq!(answer.location(), "/login?message=sso_failed");

    let audit = std::fs::read_to_string(dir.path().join("dashboard-audit.jsonl")).expect("audit");
    let reasons: Vec<String> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .map(|r| {
            format!(
                "{} {}",
                r["action"].as_str().unwrap_or(""),
                r["reason"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].starts_with("sign_in_refused no_access: the ID token has no claim \"aqs_role\""),
        "{reasons:?}"
    );
    assert_eq!(reasons[1], "sign_in_failed state_mismatch");
    assert_eq!(reasons[2], "sign_in_failed no_sign_in_in_progress");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_at_the_provider_gives_no_session() {
    let Some(keycloak) = aqs_testkit::keycloak() else {
        return;
    };
    let dir = data_dir();
    let server = dashboard(&keycloak, dir.path()).await;
    let mut browser = Browser::new();
    browser.get(&format!("{}/login", server.base)).await;
    let to_provider = browser.get(&format!("{}/auth/sso", server.base)).await;
    let form = browser.get(to_provider.location()).await;
    let action = login_action(&form.body);
    let origin = action.split("/realms/").next().expect("origin").to_owned();
    let again = browser
        .post_form(
            &action,
            &origin,
            &[
                ("username", "sso-hq"),
                ("password", "wrong"),
                ("credentialId", ""),
            ],
        )
        .await;
    // Keycloak shows its form again; the dashboard never got a code.
    assert_eq!(again.status, 200);
    assert!(again.body.contains("kc-form-login"));
    assert_eq!(
        browser.get(&format!("{}/api/me", server.base)).await.status,
        401
    );
}
