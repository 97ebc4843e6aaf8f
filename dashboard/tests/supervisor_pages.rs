//! `/api/supervisors`, `/api/supervisor` and `/api/coaching` over real HTTP: the ranking of
//! supervisors within each role's scope, a supervisor's own loop (a team's supervisor sees
//! their own and never another team's), and the coaching quadrant closed by the
//! supervisor's evaluation.

mod common;

use common::{data_dir, get_json as get, scope_ids as ids, signed_in, start};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisors_are_ranked_by_the_norms_within_the_scope() {
    let dir = data_dir();
    let server = start(dir.path(), &[]).await;
    let base = &server.base;
    let mut hq = signed_in(base, "hq").await;
    let (status, all) = get(&mut hq, base, "/api/supervisors").await;
    assert_eq!(status, 200, "{all}");
    // Mean of the four attainments capped at 100 %: S2 1.0, S1 0.7, S4 0.6, S3 0 (who
    // coaches nobody) last.
    assert_eq!(ids(&all["supervisors"]), ["S2", "S1", "S4", "S3"]);
    let s1 = &all["supervisors"][1];
    assert!((s1["norm_attainment"].as_f64().expect("a number") - 0.7).abs() < 1e-9);
    let (_, branch) = get(&mut hq, base, "/api/supervisors?scope=branch&id=B001").await;
    assert_eq!(ids(&branch["supervisors"]), ["S2", "S1"]);
    assert_eq!(ids(&branch["summary"]), ["B001"]);
    let (_, region) = get(&mut hq, base, "/api/supervisors?scope=region&id=R02").await;
    assert_eq!(ids(&region["supervisors"]), ["S4"]);

    let mut bm = signed_in(base, "bm-b001").await;
    let (_, own) = get(&mut bm, base, "/api/supervisors").await;
    assert_eq!(ids(&own["supervisors"]), ["S2", "S1"]);
    let (status, _) = get(&mut bm, base, "/api/supervisors?scope=branch&id=B002").await;
    assert_eq!(status, 403);

    let mut sup = signed_in(base, "sup-t0001").await;
    let (_, own) = get(&mut sup, base, "/api/supervisors").await;
    assert_eq!(ids(&own["supervisors"]), ["S1"]);
    assert_eq!(ids(&own["summary"]), Vec::<String>::new());
    let (status, bad) = get(&mut hq, base, "/api/supervisors?scope=team&id=T0001").await;
    assert_eq!(status, 400, "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_supervisor_sees_their_own_loop_and_not_another_teams_supervisor() {
    let dir = data_dir();
    let server = start(dir.path(), &[]).await;
    let base = &server.base;
    let mut sup = signed_in(base, "sup-t0001").await;
    let (status, own) = get(&mut sup, base, "/api/supervisor?id=S1").await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["this_week"]["period_start"], "2026-11-16");
    assert_eq!(own["this_month"]["agents_not_coached"], 1);
    // Their agents, longest without coaching first; A02 not coached.
    assert_eq!(ids(&own["agents"]), ["A02", "A01"]);
    assert_eq!(own["not_coached"], serde_json::json!(["A02"]));
    assert_eq!(own["agent_names"]["A02"], "名A02");
    // The team's supervisor found from the team, as the weekly review sheet asks.
    let (status, by_team) = get(&mut sup, base, "/api/supervisor?team=T0001").await;
    assert_eq!(status, 200, "{by_team}");
    assert_eq!(by_team["supervisor"], "S1");
    // Another team's supervisor, by id or by team, is refused; so is an unknown one.
    for path in [
        "/api/supervisor?id=S2",
        "/api/supervisor?team=T0002",
        "/api/supervisor?id=NO-SUCH",
    ] {
        let (status, body) = get(&mut sup, base, path).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    let mut bm = signed_in(base, "bm-b001").await;
    assert_eq!(get(&mut bm, base, "/api/supervisor?id=S2").await.0, 200);
    assert_eq!(get(&mut bm, base, "/api/supervisor?id=S3").await.0, 403);
    let (status, _) = get(&mut bm, base, "/api/supervisor?id=S1&team=T0001").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coaching_quadrant_is_closed_by_the_supervisors_evaluation() {
    let dir = data_dir();
    let server = start(dir.path(), &[]).await;
    let base = &server.base;
    let mut hq = signed_in(base, "hq").await;
    // A01: evaluated low skill, high will — does not know how, as computed: they agree.
    let (status, a01) = get(&mut hq, base, "/api/coaching?agent=A01").await;
    assert_eq!(status, 200, "{a01}");
    assert_eq!(a01["computed_quadrant"], "does_not_know_how");
    assert_eq!(a01["evaluation"]["quadrant"], "does_not_know_how");
    assert_eq!(a01["evaluation"]["by"], "S1");
    assert_eq!(a01["agreement"], "agree");
    assert_eq!(a01["action"], "does_not_know_how");
    // Coaching received month by month beside the KPI table's figures.
    let trend = a01["trend"].as_array().expect("trend");
    assert_eq!(trend.len(), 2);
    assert_eq!(trend[0]["month"], "2026-10-01");
    assert_eq!(trend[1]["coaching_sessions"], 3);
    assert_eq!(trend[1]["visits"], 10);
    // A03: evaluated on track, computed unwilling: a disagreement is a finding.
    let (_, a03) = get(&mut hq, base, "/api/coaching?agent=A03").await;
    assert_eq!(a03["agreement"], "disagree");
    assert_eq!(a03["action"], "on_track");
    // A02: no evaluation, no computed quadrant.
    let (_, a02) = get(&mut hq, base, "/api/coaching?agent=A02").await;
    assert_eq!(a02["evaluation"], Value::Null);
    assert_eq!(a02["agreement"], Value::Null);

    let mut sup = signed_in(base, "sup-t0001").await;
    assert_eq!(get(&mut sup, base, "/api/coaching?agent=A01").await.0, 200);
    assert_eq!(get(&mut sup, base, "/api/coaching?agent=A03").await.0, 403);
}
