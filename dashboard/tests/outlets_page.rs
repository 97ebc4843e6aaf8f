//! `/api/outlets` over real HTTP: each role sees the outlets and summaries of its own
//! scope only, a node outside it is refused, and the list puts dormant outlets first.

mod common;

use std::collections::BTreeSet;

use common::{Browser, data_dir, get_json, scope_ids as ids, signed_in, start};
use serde_json::Value;

async fn outlets(browser: &mut Browser, base: &str, query: &str) -> (u16, Value) {
    get_json(browser, base, &format!("/api/outlets{query}")).await
}

fn set(list: &Value) -> BTreeSet<String> {
    ids(list).into_iter().collect()
}

fn of(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_supervisor_sees_only_the_outlets_of_the_team() {
    let dir = data_dir();
    let server = start(dir.path(), &[]).await;
    let base = &server.base;
    let mut sup = signed_in(base, "sup-t0001").await;
    let (status, team) = outlets(&mut sup, base, "?scope=team&id=T0001").await;
    assert_eq!(status, 200, "{team}");
    // The month shown is the as-of month; the dormant O2 comes before O1.
    assert_eq!(team["month"], "2026-11-01");
    assert_eq!(ids(&team["outlets"]), ["O2", "O1"]);
    assert_eq!(ids(&team["summary"]), ["T0001"]);
    // Without a node: still only what the scope permits (no other team's outlet, none
    // assigned to nobody, no branch summary above the team).
    let (status, all) = outlets(&mut sup, base, "").await;
    assert_eq!(status, 200);
    assert_eq!(set(&all["outlets"]), of(&["O1", "O2"]));
    assert_eq!(set(&all["summary"]), of(&[]));
    for query in [
        "?scope=team&id=T0002",
        "?scope=branch&id=B001",
        "?scope=region&id=R01",
        "?scope=team&id=NO-SUCH-TEAM",
    ] {
        let (status, body) = outlets(&mut sup, base, query).await;
        assert_eq!(status, 403, "{query}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_manager_sees_the_branch_and_its_teams_and_headquarters_everything() {
    let dir = data_dir();
    let server = start(dir.path(), &[]).await;
    let base = &server.base;
    let mut bm = signed_in(base, "bm-b001").await;
    let (status, branch) = outlets(&mut bm, base, "?scope=branch&id=B001").await;
    assert_eq!(status, 200, "{branch}");
    assert_eq!(set(&branch["outlets"]), of(&["O1", "O2", "O3"]));
    // The branch's own row first, then its teams.
    assert_eq!(ids(&branch["summary"]), ["B001", "T0001", "T0002"]);
    assert_eq!(outlets(&mut bm, base, "?scope=team&id=T0002").await.0, 200);
    assert_eq!(outlets(&mut bm, base, "?scope=branch&id=B002").await.0, 403);

    let mut hq = signed_in(base, "hq").await;
    let (status, all) = outlets(&mut hq, base, "").await;
    assert_eq!(status, 200);
    // Every outlet, the unassigned one included; dormant first (O2 A, O3 D), then by grade.
    assert_eq!(ids(&all["outlets"]), ["O2", "O3", "O6", "O1", "O4", "O5"]);
    assert_eq!(ids(&all["summary"]), ["B001", "B002", "B003"]);
    let (_, region) = outlets(&mut hq, base, "?scope=region&id=R02").await;
    assert_eq!(ids(&region["outlets"]), ["O6"]);
    assert_eq!(ids(&region["summary"]), ["B003"]);
    // The agents' names come with the rows for those allowed to see them.
    assert_eq!(region["agent_names"]["A05"], "名A05");

    let mut hq2 = signed_in(base, "hq-r02").await;
    assert_eq!(outlets(&mut hq2, base, "?scope=region&id=R01").await.0, 403);
    let (_, own) = outlets(&mut hq2, base, "").await;
    assert_eq!(set(&own["outlets"]), of(&["O6"]));
    let (status, bad) = outlets(&mut hq, base, "?scope=agent&id=A01").await;
    assert_eq!(status, 400, "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outlet_list_exports_within_the_scope() {
    let dir = data_dir();
    let server = start(dir.path(), &[]).await;
    let base = &server.base;
    let mut sup = signed_in(base, "sup-t0001").await;
    let me = sup.get(&format!("{base}/api/me")).await.json();
    let csrf = me["csrf"].as_str().expect("csrf").to_owned();
    let export = |id: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("table", "outlets".to_owned()),
            ("format", "csv".to_owned()),
            ("scope", "team".to_owned()),
            ("id", id.to_owned()),
            ("lang", "en".to_owned()),
        ]
    };
    let url = format!("{base}/api/export");
    let form = export("T0001");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = sup.post_form(&url, base, &form).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let lines: Vec<&str> = answer.body.lines().collect();
    assert!(
        lines[0].contains("Outlet") && lines[0].contains("Grade"),
        "{}",
        lines[0]
    );
    // The header, then the team's outlets as the page lists them: the dormant O2 first.
    assert_eq!(lines.len(), 3, "{}", answer.body);
    assert!(lines[1].starts_with("网点O2,O2,"), "{}", lines[1]);
    assert!(lines[2].starts_with("网点O1,O1,"), "{}", lines[2]);
    let form = export("T0002");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = sup.post_form(&url, base, &form).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
}
