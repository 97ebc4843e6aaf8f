//! The JSON API handlers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDate};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DashboardState;
use crate::access::Access;
use crate::auth::SignedIn;
use crate::history::{self, RunSummary, View, ViewError, ViewQuery};
use crate::scoped::{Plan, ScopedSnapshot};
use crate::source::month_nodes;
use crate::store::{KpiRow, Snapshot};

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

pub(crate) fn view_error(e: &ViewError) -> Response {
    let status = match e {
        ViewError::BadDate(_) | ViewError::BadMonth(_) => StatusCode::BAD_REQUEST,
        ViewError::NoRuns => StatusCode::SERVICE_UNAVAILABLE,
        ViewError::NoRun(_) | ViewError::NoMonth { .. } => StatusCode::NOT_FOUND,
    };
    error(status, e.to_string())
}

/// Earlier runs kept loaded (each a whole KPI table): a few, for going back and forth.
const EARLIER_RUNS_KEPT: usize = 4;

impl DashboardState {
    /// Refreshes the newest snapshot, lists the runs the store holds, resolves `query` among
    /// them and runs `f` on the snapshot of the view as `access` may see it. Blocking.
    fn viewed(
        &self,
        access: &Access,
        query: ViewQuery,
        f: impl FnOnce(&ScopedSnapshot<'_>, &View, &[RunSummary]) -> Response,
    ) -> Response {
        let mut current = lock(&self.snapshot);
        match self.source.refresh(&mut current) {
            Ok(_) => {}
            Err(e) if current.as_of.is_none() => {
                return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            }
            Err(e) => tracing::warn!(error = %e, "kept the previous KPI table"),
        }
        let runs = match self.source.runs() {
            Ok(runs) if !runs.is_empty() => runs,
            Ok(_) => own_run(&current),
            Err(e) => {
                tracing::warn!(error = %e, "earlier KPI runs not listed");
                own_run(&current)
            }
        };
        let view = match history::resolve(&runs, access, query) {
            Ok(view) => view,
            Err(e) => return view_error(&e),
        };
        if current.as_of == Some(view.as_of) {
            let scoped =
                ScopedSnapshot::new(&current, access).showing(view.month_start, view.week_start);
            return f(&scoped, &view, &runs);
        }
        drop(current);
        let stamp = runs
            .iter()
            .find(|run| run.as_of == view.as_of)
            .map(|run| run.stamp.clone())
            .unwrap_or_default();
        let snapshot = match self.earlier_run(view.as_of, &stamp) {
            Ok(snapshot) => snapshot,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
        let scoped =
            ScopedSnapshot::new(&snapshot, access).showing(view.month_start, view.week_start);
        f(&scoped, &view, &runs)
    }

    /// An earlier run, loaded once per content (`stamp`) and kept for a while.
    pub(crate) fn earlier_run(
        &self,
        as_of: NaiveDate,
        stamp: &str,
    ) -> Result<Arc<Snapshot>, crate::store::StoreError> {
        if let Some((kept, snapshot)) = lock(&self.earlier).get(&as_of)
            && kept == stamp
        {
            return Ok(Arc::clone(snapshot));
        }
        let snapshot = Arc::new(self.source.load(as_of)?);
        let mut earlier = lock(&self.earlier);
        if earlier.len() >= EARLIER_RUNS_KEPT
            && let Some(oldest) = earlier.keys().min().copied()
        {
            earlier.remove(&oldest);
        }
        earlier.insert(as_of, (stamp.to_owned(), Arc::clone(&snapshot)));
        Ok(snapshot)
    }
}

/// The loaded snapshot as the only run, for a store that keeps no history.
fn own_run(snapshot: &Snapshot) -> Vec<RunSummary> {
    snapshot
        .as_of
        .map(|as_of| RunSummary {
            as_of,
            stamp: snapshot.generated_at.clone().unwrap_or_default(),
            month_nodes: month_nodes(&snapshot.rows),
        })
        .into_iter()
        .collect()
}

/// Runs `f` on the view `query` asks for, as the signed-in user may see it, off the async
/// workers (reloading reads files or ClickHouse).
pub(crate) async fn with_view(
    state: &DashboardState,
    access: &Access,
    query: ViewQuery,
    f: impl FnOnce(&ScopedSnapshot<'_>, &View, &[RunSummary]) -> Response + Send + 'static,
) -> Response {
    let state = state.clone();
    let access = access.clone();
    match tokio::task::spawn_blocking(move || state.viewed(&access, query, f)).await {
        Ok(response) => response,
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Makes the view of a page about a node (or, with none, about everything the user sees).
pub(crate) type NodeViewBuilder =
    fn(&ScopedSnapshot<'_>, Option<(&str, &str)>) -> Result<serde_json::Value, Refusal>;

/// The view of a page about an optional node (`scope` and `id` both, of one of `scopes`, or
/// neither: everything the user sees), made by `build` within the user's access and the
/// asked view (the outlet page, the supervisors' ranking).
pub(crate) async fn node_view(
    state: &DashboardState,
    signed_in: &crate::auth::SignedIn,
    (scope, id): (Option<String>, Option<String>),
    scopes: &'static [&'static str],
    view: &ViewParams,
    build: NodeViewBuilder,
) -> Response {
    let node = match (scope, id) {
        (None, None) => None,
        (Some(scope), Some(id)) if scopes.contains(&scope.as_str()) => Some((scope, id)),
        _ => {
            let names = match scopes.split_last() {
                Some((last, [])) => (*last).to_owned(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => String::new(),
            };
            return error(
                StatusCode::BAD_REQUEST,
                format!("scope must be {names}, with its id (or neither)"),
            );
        }
    };
    let view_query = match view.query() {
        Ok(view_query) => view_query,
        Err(e) => return view_error(&e),
    };
    with_view(state, signed_in.access(), view_query, move |s, _, _| {
        let node = node
            .as_ref()
            .map(|(scope, id)| (scope.as_str(), id.as_str()));
        match build(s, node) {
            Ok(view) => axum::Json(view).into_response(),
            Err(refusal) => refusal.into_response(),
        }
    })
    .await
}

pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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

/// The view's parameters of a request: `as_of=YYYY-MM-DD`, `month=YYYY-MM`.
#[derive(Debug, Default, Deserialize)]
pub struct ViewParams {
    as_of: Option<String>,
    month: Option<String>,
}

impl ViewParams {
    pub(crate) fn new(as_of: Option<String>, month: Option<String>) -> Self {
        Self { as_of, month }
    }

    pub(crate) fn query(&self) -> Result<ViewQuery, ViewError> {
        ViewQuery::parse(self.as_of.as_deref(), self.month.as_deref())
    }
}

/// An agent of the tree: its id, and its name when the user may see it.
fn agent_entry(s: &ScopedSnapshot<'_>, agent_id: &str) -> Value {
    match s.agent_name(agent_id) {
        Some(name) => json!({ "id": agent_id, "name": name }),
        None => json!({ "id": agent_id }),
    }
}

pub async fn meta(
    State(state): State<DashboardState>,
    signed_in: SignedIn,
    Query(params): Query<ViewParams>,
) -> Response {
    let query = match params.query() {
        Ok(query) => query,
        Err(e) => return view_error(&e),
    };
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
    with_view(&state, signed_in.access(), query, move |s, view, _| {
        let mut regions: BTreeMap<&str, Region<'_>> = BTreeMap::new();
        for team in s.teams() {
            let region = regions
                .entry(team.region_id.as_str())
                .or_insert_with(|| (team.region_name.as_deref(), BTreeMap::new()));
            let branch = region
                .1
                .entry(team.branch_id.as_str())
                .or_insert_with(|| (team.branch_name.as_deref(), Vec::new()));
            let agents: Vec<Value> = s
                .agents_of(&team.team_id)
                .iter()
                .map(|agent| agent_entry(s, agent))
                .collect();
            branch.1.push(json!({
                "id": team.team_id,
                "name": team.team_name,
                "agents": agents,
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
            "view": view,
            "freshness": freshness,
            "tree": tree,
        }))
        .into_response()
    })
    .await
}

/// `GET /api/history`: the months and the as-of runs the KPI store holds within the user's
/// scope, newest first; each month with the run of its newest figures and whether it was
/// over then (final).
pub async fn history(State(state): State<DashboardState>, signed_in: SignedIn) -> Response {
    let access = signed_in.access().clone();
    with_view(
        &state,
        signed_in.access(),
        ViewQuery::default(),
        move |_, view, runs| {
            let (months, listed) = history::listing(runs, &access);
            Json(json!({ "latest": view.as_of, "months": months, "runs": listed })).into_response()
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct ScopeQuery {
    scope: String,
    id: String,
    #[serde(flatten)]
    view: ViewParams,
}

pub(crate) fn field<'a>(row: &'a KpiRow, key: &str) -> &'a str {
    row.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn number(row: &KpiRow, key: &str) -> Option<f64> {
    row.get(key).and_then(Value::as_f64)
}

/// Whether `row` lies under the scope `(scope, id)` (or is it).
pub(crate) fn under(row: &KpiRow, scope: &str, id: &str) -> bool {
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

/// One agent's line of the weekly review sheet.
#[derive(Debug, Clone)]
pub(crate) struct ReviewLine {
    pub agent_id: String,
    pub this_week: Option<KpiRow>,
    pub next_week_plan: Option<Plan>,
}

/// Everything the page shows of one node, filtered to the user's scope: the source of the
/// scope answer and of the exports.
#[derive(Debug, Clone)]
pub(crate) struct ScopeView {
    pub scope: String,
    pub id: String,
    pub name: String,
    pub parents: Value,
    pub month: Option<KpiRow>,
    pub week: Option<KpiRow>,
    pub children: Vec<KpiRow>,
    pub trend: Vec<KpiRow>,
    pub ranking: Vec<KpiRow>,
    pub at_risk: Vec<KpiRow>,
    pub quadrant: Vec<KpiRow>,
    pub week_start: NaiveDate,
    pub next_week_start: NaiveDate,
    pub review: Vec<ReviewLine>,
    /// Names of the agents in this view that the user may see.
    pub agent_names: BTreeMap<String, String>,
}

pub(crate) fn is_scope(scope: &str) -> bool {
    matches!(scope, "region" | "branch" | "team" | "agent")
}

/// Why a node's view is not given: the status and the message of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    pub(crate) fn into_response(self) -> Response {
        error(self.status, self.message)
    }
}

fn refusal(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// The view of node `(scope, id)`, or why it is refused.
pub(crate) fn scope_view(
    s: &ScopedSnapshot<'_>,
    scope: &str,
    id: &str,
) -> Result<ScopeView, Refusal> {
    if !is_scope(scope) {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            "scope must be region, branch, team or agent",
        ));
    }
    let (Some(month_start), Some(week_start)) = (s.month_start(), s.week_start()) else {
        return Err(refusal(StatusCode::SERVICE_UNAVAILABLE, "no KPI table yet"));
    };
    let month_start_text = month_start.to_string();
    let month = s.row(scope, id, "month", month_start).cloned();
    let week = s.row(scope, id, "week", week_start).cloned();
    if month.is_none() && week.is_none() {
        // Asked for directly, a node outside the scope is refused; in lists it is absent.
        if !s.permits_node(scope, id) {
            return Err(refusal(
                StatusCode::FORBIDDEN,
                format!("{scope} {id} is outside your scope"),
            ));
        }
        return Err(refusal(
            StatusCode::NOT_FOUND,
            format!("no KPIs for {scope} {id}"),
        ));
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

    // Up to eight weeks, ending with the week shown.
    let week_text = week_start.to_string();
    let mut trend: Vec<KpiRow> = s
        .rows_where(|r| {
            field(r, "scope") == scope && field(r, "scope_id") == id && field(r, "period") == "week"
        })
        .filter(|r| field(r, "period_start") <= week_text.as_str())
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
            let will = aqs_tables::kpi::rows::coaching_will(&r);
            r.insert("will".to_owned(), will);
            r
        })
        .collect();
    quadrant.sort_by(|a, b| field(a, "scope_id").cmp(field(b, "scope_id")));

    let next_week = week_start + Duration::days(7);
    let review_agents: Vec<String> = match scope {
        "agent" => vec![id.to_owned()],
        "team" => {
            let mut agents = if s.as_of().is_some_and(|as_of| as_of < next_week) {
                // The roster is the run's as-of date's: it belongs to the week shown only
                // when that week is the as-of week.
                s.agents_of(id)
            } else {
                Vec::new()
            };
            for row in s.rows_where(|r| {
                field(r, "scope") == "agent"
                    && field(r, "team_id") == id
                    && field(r, "period") == "week"
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
    let review: Vec<ReviewLine> = review_agents
        .iter()
        .map(|agent| ReviewLine {
            agent_id: agent.clone(),
            this_week: s.row("agent", agent, "week", week_start).cloned(),
            next_week_plan: s.plan(agent, next_week),
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
        _ => s.agent_name(id).map(str::to_owned),
    };
    let any = month.as_ref().or(week.as_ref());
    let parents = json!({
        "team_id": any.and_then(|r| r.get("team_id")).cloned().unwrap_or(Value::Null),
        "branch_id": any.and_then(|r| r.get("branch_id")).cloned().unwrap_or(Value::Null),
        "region_id": any.and_then(|r| r.get("region_id")).cloned().unwrap_or(Value::Null),
    });
    let mut agents: BTreeSet<&str> = BTreeSet::new();
    for row in children
        .iter()
        .chain(&at_risk)
        .chain(&quadrant)
        .chain(month.iter())
    {
        if field(row, "scope") == "agent" {
            agents.insert(field(row, "scope_id"));
        }
    }
    agents.extend(review.iter().map(|line| line.agent_id.as_str()));
    let agent_names = s.agent_names(agents);
    Ok(ScopeView {
        scope: scope.to_owned(),
        id: id.to_owned(),
        name: name.unwrap_or_else(|| id.to_owned()),
        parents,
        month,
        week,
        children,
        trend,
        ranking,
        at_risk,
        quadrant,
        week_start,
        next_week_start: next_week,
        review,
        agent_names,
    })
}

fn plan_json(plan: &Option<Plan>) -> Value {
    match plan {
        Some([visits, consultations, sales]) => {
            json!({ "visits": visits, "consultations": consultations, "sales": sales })
        }
        None => Value::Null,
    }
}

impl ScopeView {
    fn to_json(&self, view: &View) -> Value {
        let review: Vec<Value> = self
            .review
            .iter()
            .map(|line| {
                json!({
                    "agent_id": line.agent_id,
                    "this_week": line.this_week,
                    "next_week_plan": plan_json(&line.next_week_plan),
                })
            })
            .collect();
        json!({
            "scope": self.scope,
            "id": self.id,
            "name": self.name,
            "parents": self.parents,
            "view": view,
            "month": self.month,
            "week": self.week,
            "children": self.children,
            "trend": self.trend,
            "ranking": self.ranking,
            "at_risk": self.at_risk,
            "quadrant": self.quadrant,
            "review": {
                "week_start": self.week_start,
                "next_week_start": self.next_week_start,
                "agents": review,
            },
            "agent_names": self.agent_names,
        })
    }
}

pub async fn scope(
    State(state): State<DashboardState>,
    signed_in: SignedIn,
    Query(query): Query<ScopeQuery>,
) -> Response {
    if !is_scope(&query.scope) {
        return error(
            StatusCode::BAD_REQUEST,
            "scope must be region, branch, team or agent",
        );
    }
    let view_query = match query.view.query() {
        Ok(view_query) => view_query,
        Err(e) => return view_error(&e),
    };
    with_view(
        &state,
        signed_in.access(),
        view_query,
        move |s, view, _| match scope_view(s, &query.scope, &query.id) {
            Ok(scope_view) => Json(scope_view.to_json(view)).into_response(),
            Err(refusal) => refusal.into_response(),
        },
    )
    .await
}
