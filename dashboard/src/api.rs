//! The JSON API handlers.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DashboardState;
use crate::access::Access;
use crate::auth::SignedIn;
use crate::scoped::ScopedSnapshot;
use crate::store::KpiRow;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Runs `f` on a fresh snapshot as the signed-in user may see it, or answers why there is
/// none. Reloading reads files or ClickHouse, so it runs off the async workers.
async fn with_snapshot(
    state: &DashboardState,
    access: &Access,
    f: impl FnOnce(&ScopedSnapshot<'_>) -> Response,
) -> Response {
    let refreshed = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            let mut snapshot = lock(&state.snapshot);
            match state.source.refresh(&mut snapshot) {
                Ok(_) => None,
                Err(e) if snapshot.as_of.is_none() => Some(e.to_string()),
                Err(e) => {
                    tracing::warn!(error = %e, "kept the previous KPI table");
                    None
                }
            }
        })
        .await
    };
    match refreshed {
        Ok(None) => {}
        Ok(Some(message)) => return error(StatusCode::SERVICE_UNAVAILABLE, message),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
    let snapshot = lock(&state.snapshot);
    f(&ScopedSnapshot::new(&snapshot, access))
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A region of the tree: its name and its branches (name and teams).
type Region<'a> = (
    Option<&'a str>,
    BTreeMap<&'a str, (Option<&'a str>, Vec<Value>)>,
);

pub async fn meta(State(state): State<DashboardState>, signed_in: SignedIn) -> Response {
    let thresholds = state.thresholds;
    let problems = state
        .pipeline
        .as_ref()
        .map(|pipeline| pipeline.problems())
        .unwrap_or_default();
    let freshness = json!({
        "stale": problems.iter().any(|p| p.stale),
        "problems": problems,
    });
    with_snapshot(&state, signed_in.access(), move |s| {
        let mut regions: BTreeMap<&str, Region<'_>> = BTreeMap::new();
        for team in s.teams() {
            let region = regions
                .entry(team.region_id.as_str())
                .or_insert_with(|| (team.region_name.as_deref(), BTreeMap::new()));
            let branch = region
                .1
                .entry(team.branch_id.as_str())
                .or_insert_with(|| (team.branch_name.as_deref(), Vec::new()));
            branch.1.push(json!({
                "id": team.team_id,
                "name": team.team_name,
                "agents": s.agents_of(&team.team_id),
            }));
        }
        let tree: Vec<Value> = regions
            .into_iter()
            .map(|(id, (name, branches))| {
                json!({
                    "id": id,
                    "name": name.unwrap_or(id),
                    "branches": branches.into_iter().map(|(bid, (bname, teams))| json!({
                        "id": bid, "name": bname.unwrap_or(bid), "teams": teams,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        Json(json!({
            "as_of": s.as_of(),
            "generated_at": s.generated_at(),
            "at_risk_threshold": thresholds.at_risk,
            "will_threshold": thresholds.will,
            "skill_ratio": thresholds.skill_ratio,
            "month_start": s.month_start(),
            "week_start": s.week_start(),
            "freshness": freshness,
            "tree": tree,
        }))
        .into_response()
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct ScopeQuery {
    scope: String,
    id: String,
}

fn field<'a>(row: &'a KpiRow, key: &str) -> &'a str {
    row.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn number(row: &KpiRow, key: &str) -> Option<f64> {
    row.get(key).and_then(Value::as_f64)
}

/// Whether `row` lies under the scope `(scope, id)` (or is it).
fn under(row: &KpiRow, scope: &str, id: &str) -> bool {
    match scope {
        "region" => {
            field(row, "region_id") == id
                || (field(row, "scope") == "region" && field(row, "scope_id") == id)
        }
        "branch" => {
            field(row, "branch_id") == id
                || (field(row, "scope") == "branch" && field(row, "scope_id") == id)
        }
        "team" => field(row, "team_id") == id,
        _ => field(row, "scope") == "agent" && field(row, "scope_id") == id,
    }
}

pub async fn scope(
    State(state): State<DashboardState>,
    signed_in: SignedIn,
    Query(query): Query<ScopeQuery>,
) -> Response {
    if !matches!(query.scope.as_str(), "region" | "branch" | "team" | "agent") {
        return error(
            StatusCode::BAD_REQUEST,
            "scope must be region, branch, team or agent",
        );
    }
    with_snapshot(&state, signed_in.access(), |s| {
        let (Some(month_start), Some(week_start)) = (s.month_start(), s.week_start()) else {
            return error(StatusCode::SERVICE_UNAVAILABLE, "no KPI table yet");
        };
        let month_start_text = month_start.to_string();
        let (scope, id) = (query.scope.as_str(), query.id.as_str());
        let month = s.row(scope, id, "month", month_start).cloned();
        let week = s.row(scope, id, "week", week_start).cloned();
        if month.is_none() && week.is_none() {
            // Asked for directly, a node outside the scope is refused; in lists it is absent.
            if !s.permits_node(scope, id) {
                return error(
                    StatusCode::FORBIDDEN,
                    format!("{scope} {id} is outside your scope"),
                );
            }
            return error(StatusCode::NOT_FOUND, format!("no KPIs for {scope} {id}"));
        }
        let this_month = |row: &KpiRow| {
            field(row, "period") == "month" && field(row, "period_start") == month_start_text
        };
        let child_scope = match scope {
            "region" => Some("branch"),
            "branch" => Some("team"),
            "team" => Some("agent"),
            _ => None,
        };
        let mut children: Vec<KpiRow> = match child_scope {
            Some(child) => s
                .rows_where(|r| this_month(r) && field(r, "scope") == child && under(r, scope, id))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        children.sort_by(|a, b| field(a, "scope_id").cmp(field(b, "scope_id")));

        let mut trend: Vec<KpiRow> = s
            .rows_where(|r| {
                field(r, "scope") == scope
                    && field(r, "scope_id") == id
                    && field(r, "period") == "week"
            })
            .cloned()
            .collect();
        trend.sort_by(|a, b| field(a, "period_start").cmp(field(b, "period_start")));
        let trend: Vec<KpiRow> = trend.split_off(trend.len().saturating_sub(8));

        let team_scope_id = month
            .as_ref()
            .or(week.as_ref())
            .map(|r| field(r, "team_id").to_owned());
        let mut ranking: Vec<KpiRow> = s
            .rows_where(|r| {
                this_month(r)
                    && field(r, "scope") == "team"
                    && match scope {
                        "agent" => Some(field(r, "scope_id").to_owned()) == team_scope_id,
                        _ => under(r, scope, id),
                    }
            })
            .cloned()
            .collect();
        ranking.sort_by(|a, b| {
            let key = |r: &KpiRow| number(r, "premium_attainment");
            match (key(a), key(b)) {
                (Some(x), Some(y)) => y.total_cmp(&x),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => field(a, "scope_id").cmp(field(b, "scope_id")),
            }
        });

        let mut at_risk: Vec<KpiRow> = s
            .rows_where(|r| {
                this_month(r) && r.get("at_risk") == Some(&Value::Bool(true)) && under(r, scope, id)
            })
            .cloned()
            .collect();
        at_risk.sort_by(|a, b| {
            number(a, "projected_attainment")
                .unwrap_or(f64::MAX)
                .total_cmp(&number(b, "projected_attainment").unwrap_or(f64::MAX))
        });

        let mut quadrant: Vec<KpiRow> = s
            .rows_where(|r| this_month(r) && field(r, "scope") == "agent" && under(r, scope, id))
            .cloned()
            .map(|mut r| {
                let will = r
                    .get("plan_adherence_visits")
                    .filter(|v| !v.is_null())
                    .or_else(|| r.get("plan_adherence_consultations"))
                    .cloned()
                    .unwrap_or(Value::Null);
                r.insert("will".to_owned(), will);
                r
            })
            .collect();
        quadrant.sort_by(|a, b| field(a, "scope_id").cmp(field(b, "scope_id")));

        let next_week = week_start + Duration::days(7);
        let week_text = week_start.to_string();
        let review_agents: Vec<String> = match scope {
            "agent" => vec![id.to_owned()],
            "team" => {
                let mut agents = s.agents_of(id);
                for row in s.rows_where(|r| {
                    field(r, "scope") == "agent"
                        && field(r, "team_id") == id
                        && field(r, "period_start") == week_text
                }) {
                    agents.push(field(row, "scope_id").to_owned());
                }
                agents.sort();
                agents.dedup();
                agents
            }
            _ => Vec::new(),
        };
        let review: Vec<Value> = review_agents
            .iter()
            .map(|agent| {
                let plan = s.plan(agent, next_week).map(
                    |[v, c, sales]| json!({ "visits": v, "consultations": c, "sales": sales }),
                );
                json!({
                    "agent_id": agent,
                    "this_week": s.row("agent", agent, "week", week_start),
                    "next_week_plan": plan,
                })
            })
            .collect();

        let name = match scope {
            "team" => s
                .teams()
                .find(|t| t.team_id == id)
                .map(|t| t.team_name.clone()),
            "branch" => s
                .teams()
                .find(|t| t.branch_id == id)
                .and_then(|t| t.branch_name.clone()),
            "region" => s
                .teams()
                .find(|t| t.region_id == id)
                .and_then(|t| t.region_name.clone()),
            _ => None,
        };
        let any = month.as_ref().or(week.as_ref());
        let parents = json!({
            "team_id": any.and_then(|r| r.get("team_id")).cloned().unwrap_or(Value::Null),
            "branch_id": any.and_then(|r| r.get("branch_id")).cloned().unwrap_or(Value::Null),
            "region_id": any.and_then(|r| r.get("region_id")).cloned().unwrap_or(Value::Null),
        });
        Json(json!({
            "scope": scope,
            "id": id,
            "name": name.unwrap_or_else(|| id.to_owned()),
            "parents": parents,
            "month": month,
            "week": week,
            "children": children,
            "trend": trend,
            "ranking": ranking,
            "at_risk": at_risk,
            "quadrant": quadrant,
            "review": {
                "week_start": week_start,
                "next_week_start": next_week,
                "agents": review,
            },
        }))
        .into_response()
    })
    .await
}
