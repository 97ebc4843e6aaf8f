//! Agents' names and exports over real HTTP, per role: names only for those allowed (the
//! tree, the scope answer, the exports), exports limited to the user's scope, typed XLSX
//! read back with a real reader, CSV with a byte-order mark, CSRF required, each export
//! audited.

mod common;

use std::collections::BTreeSet;

use calamine::{Data, Reader, Xlsx};
use common::*;
use serde_json::Value;

/// Names of the agents in the tree of `/api/meta`, by id (absent: no name given).
fn tree_names(meta: &Value) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    for region in meta["tree"].as_array().expect("tree") {
        for branch in region["branches"].as_array().expect("branches") {
            for team in branch["teams"].as_array().expect("teams") {
                for agent in team["agents"].as_array().expect("agents") {
                    found.push((
                        agent["id"].as_str().expect("id").to_owned(),
                        agent["name"].as_str().map(str::to_owned),
                    ));
                }
            }
        }
    }
    found
}

async fn csrf(browser: &mut Browser, base: &str) -> String {
    let me = browser.get(&format!("{base}/api/me")).await.json();
    me["csrf"].as_str().expect("csrf").to_owned()
}

async fn export(browser: &mut Browser, base: &str, csrf: &str, fields: &[(&str, &str)]) -> Answer {
    let mut form = vec![("csrf", csrf)];
    form.extend_from_slice(fields);
    browser
        .post_form(&format!("{base}/api/export"), base, &form)
        .await
}

/// The first sheet of a workbook as rows of cells.
fn sheet(bytes: &[u8]) -> Vec<Vec<Data>> {
    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).expect("xlsx");
    let name = workbook.sheet_names()[0].clone();
    let range = workbook.worksheet_range(&name).expect("sheet");
    range.rows().map(<[Data]>::to_vec).collect()
}

fn text(cell: &Data) -> String {
    match cell {
        Data::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_shown_only_to_the_roles_allowed_to_see_them() {
    let dir = data_dir();
    let server = start(dir.path(), &[]).await;
    let base = &server.base;

    let mut sup = signed_in(base, "sup-t0001").await;
    let meta = sup.get(&format!("{base}/api/meta")).await.json();
    assert_eq!(
        tree_names(&meta),
        [
            ("A01".to_owned(), Some("名A01".to_owned())),
            ("A02".to_owned(), Some("名A02".to_owned()))
        ]
    );
    let team = sup
        .get(&format!("{base}/api/scope?scope=team&id=T0001"))
        .await
        .json();
    let names: BTreeSet<&str> = team["agent_names"]
        .as_object()
        .expect("names")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, BTreeSet::from(["A01", "A02"]));
    let agent = sup
        .get(&format!("{base}/api/scope?scope=agent&id=A02"))
        .await
        .json();
    assert_eq!(agent["name"], "名A02");

    // The analyst sees every row but no name, anywhere in the answers.
    let mut analyst = signed_in(base, "analyst").await;
    let meta = analyst.get(&format!("{base}/api/meta")).await.json();
    assert!(tree_names(&meta).iter().all(|(_, name)| name.is_none()));
    for path in [
        "/api/meta",
        "/api/scope?scope=team&id=T0001",
        "/api/scope?scope=region&id=R01",
        "/api/scope?scope=agent&id=A02",
    ] {
        let body = analyst.get(&format!("{base}{path}")).await.body;
        assert!(!body.contains("名A0"), "{path} names an agent: {body}");
    }
    let agent = analyst
        .get(&format!("{base}/api/scope?scope=agent&id=A02"))
        .await
        .json();
    assert_eq!(agent["name"], "A02");
    let token = csrf(&mut analyst, base).await;
    let answer = export(
        &mut analyst,
        base,
        &token,
        &[
            ("table", "children"),
            ("format", "csv"),
            ("scope", "team"),
            ("id", "T0001"),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(!answer.body.contains("名A0"), "{}", answer.body);
    assert!(answer.body.contains("A01") && answer.body.contains("A02"));

    // Headquarters sees every agent's name.
    let mut hq = signed_in(base, "hq").await;
    let meta = hq.get(&format!("{base}/api/meta")).await.json();
    let names = tree_names(&meta);
    assert_eq!(names.len(), 5);
    assert!(
        names
            .iter()
            .all(|(id, name)| name.as_deref() == Some(&format!("名{id}")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_s_exports_hold_only_the_team_typed_and_audited() {
    let dir = data_dir();
    let server = start(dir.path(), &[]).await;
    let base = &server.base;
    let mut sup = signed_in(base, "sup-t0001").await;
    let token = csrf(&mut sup, base).await;

    let answer = export(
        &mut sup,
        base,
        &token,
        &[
            ("table", "children"),
            ("format", "xlsx"),
            ("scope", "team"),
            ("id", "T0001"),
            ("lang", "zh"),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let disposition = answer
        .headers
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        disposition.starts_with("attachment") && disposition.contains(".xlsx"),
        "{disposition}"
    );
    let rows = sheet(&answer.bytes);
    assert_eq!(text(&rows[0][0]), "客户经理");
    assert_eq!(text(&rows[0][2]), "保费");
    let ids: Vec<String> = rows[1..].iter().map(|r| text(&r[1])).collect();
    assert_eq!(ids, ["A01", "A02"], "the team's agents, nobody else");
    assert_eq!(text(&rows[1][0]), "名A01");
    // The figures are the KPI rows' (the fixture: agent i has premium 1000·(i+1) and
    // attainment 0.5 + 0.01·i; A01 is row 0).
    assert_eq!(rows[1][2], Data::Float(1000.0));
    assert_eq!(rows[1][4], Data::Float(0.5));
    assert_eq!(rows[2][4], Data::Float(0.51));

    // English headers on request; the review sheet and the ranking of the team only.
    let answer = export(
        &mut sup,
        base,
        &token,
        &[
            ("table", "review"),
            ("format", "xlsx"),
            ("scope", "team"),
            ("id", "T0001"),
            ("lang", "en"),
        ],
    )
    .await;
    let rows = sheet(&answer.bytes);
    assert_eq!(text(&rows[0][0]), "Agent");
    let ids: Vec<String> = rows[1..].iter().map(|r| text(&r[1])).collect();
    assert_eq!(
        ids,
        ["A01", "A02", "T0001"],
        "two agents and the team's total"
    );
    let answer = export(
        &mut sup,
        base,
        &token,
        &[
            ("table", "ranking"),
            ("format", "csv"),
            ("scope", "team"),
            ("id", "T0001"),
        ],
    )
    .await;
    assert!(answer.bytes.starts_with("\u{feff}".as_bytes()));
    assert_eq!(
        answer.body.trim_start_matches('\u{feff}').lines().count(),
        2
    );

    // Another team is refused like its page; so is an export without the session's token.
    let refused = export(
        &mut sup,
        base,
        &token,
        &[
            ("table", "children"),
            ("format", "xlsx"),
            ("scope", "team"),
            ("id", "T0002"),
        ],
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let forged = export(
        &mut sup,
        base,
        "not-the-token",
        &[
            ("table", "children"),
            ("format", "xlsx"),
            ("scope", "team"),
            ("id", "T0001"),
        ],
    )
    .await;
    assert_eq!(forged.status, 403);

    // Every export is audited: who, what, which scope.
    let audit = std::fs::read_to_string(dir.path().join("dashboard-audit.jsonl")).expect("audit");
    let exports: Vec<Value> = audit
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("json"))
        .filter(|record| record["action"] == "export")
        .collect();
    assert_eq!(exports.len(), 3, "{audit}");
    assert_eq!(exports[0]["user"], "sup-t0001");
    assert_eq!(exports[0]["scope"], "team T0001");
    assert_eq!(exports[0]["export"]["table"], "children");
    assert_eq!(exports[0]["export"]["format"], "xlsx");
    assert_eq!(exports[0]["export"]["node"], "team T0001");
    assert_eq!(exports[0]["export"]["rows"], 2);
    assert!(audit.contains("export_without_csrf_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_in_the_url_survives_signing_in() {
    let dir = data_dir();
    let server = start(dir.path(), &[]).await;
    let base = &server.base;
    let mut browser = Browser::new();
    let answer = browser.get(&format!("{base}/?lang=en")).await;
    assert_eq!(answer.status, 303);
    assert_eq!(answer.location(), "/login?next=%2F%3Flang%3Den");
    let page = browser.get(&format!("{base}{}", answer.location())).await;
    let csrf = hidden_field(&page.body, "csrf");
    let signed_in = browser
        .post_form(
            &format!("{base}/auth/login"),
            base,
            &[
                ("user", "hq"),
                ("password", PASSWORD),
                ("csrf", &csrf),
                ("next", &hidden_field(&page.body, "next")),
            ],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location(), "/?lang=en");
}
