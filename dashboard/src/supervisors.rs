//! The supervisor's side of the method (销售主管活动管理), from the supervisor table of the
//! run (analytics/README.md, "Supervisors"):
//!
//! - `GET /api/supervisors?scope=…&id=…`: the month's supervisors of a region or branch
//!   (or everything the user may see), ranked by how well they meet the norms, with the
//!   branch and region rows beside them;
//! - `GET /api/supervisor?id=…` (or `?team=…`, the team's supervisor): one supervisor's
//!   loop — this week's and this month's row against the norms, their agents with what
//!   each received, the agents not coached for N working days;
//! - `GET /api/coaching?agent=…`: the coaching quadrant of an agent's month closed: the
//!   supervisor's latest evaluation beside the computed quadrant, whether they agree, the
//!   quadrant's coaching action, and the coaching received beside the agent's activity and
//!   close rate month by month.
//!
//! A supervisor's row is visible to whoever may see one of the teams they lead (a team's
//! supervisor sees their own row, never another team's supervisor); branch and region rows
//! by their own place; an agent's row like the agent.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DashboardState;
use crate::api::{Refusal, ViewParams, error, node_view, view_error, with_view};
use crate::auth::SignedIn;
use crate::scoped::ScopedSnapshot;
use crate::store::KpiRow;

fn text<'a>(row: &'a KpiRow, key: &str) -> Option<&'a str> {
    row.get(key).and_then(Value::as_str)
}

fn number(row: &KpiRow, key: &str) -> Option<f64> {
    row.get(key).and_then(Value::as_f64)
}

/// The teams a supervisor row names (`team_ids`, joined by `,`).
fn teams_of(row: &KpiRow) -> impl Iterator<Item = &str> {
    text(row, "team_ids")
        .unwrap_or_default()
        .split(',')
        .filter(|team| !team.is_empty())
}

/// Whether the user may see a row of the supervisor table.
fn permitted(s: &ScopedSnapshot<'_>, row: &KpiRow) -> bool {
    let id = text(row, "scope_id").unwrap_or_default();
    match text(row, "scope") {
        Some("supervisor") => teams_of(row).any(|team| s.permits_node("team", team)),
        Some(scope @ ("branch" | "region" | "agent")) => s.permits_node(scope, id),
        _ => false,
    }
}

/// The permitted rows of the supervisor table that satisfy `predicate`.
fn rows_where<'a>(s: &ScopedSnapshot<'a>, predicate: impl Fn(&KpiRow) -> bool) -> Vec<&'a KpiRow> {
    s.supervisor_rows()
        .iter()
        .filter(|row| predicate(row) && permitted(s, row))
        .collect()
}

fn of_period(row: &KpiRow, period: &str, start: Option<chrono::NaiveDate>) -> bool {
    text(row, "period") == Some(period)
        && start.is_some_and(|start| text(row, "period_start") == Some(start.to_string().as_str()))
}

/// How well a supervisor meets the norms: the mean of the coaching, accompanied-visit,
/// weekly-meeting and evaluation attainments that the row has, each capped at 100 % (one
/// norm exceeded does not hide another missed). The ranking's order.
pub(crate) fn norm_attainment(row: &KpiRow) -> Option<f64> {
    let parts: Vec<f64> = [
        "coaching_attainment",
        "accompanied_visits_attainment",
        "weekly_meetings_attainment",
        "evaluation_attainment",
    ]
    .iter()
    .filter_map(|key| number(row, key))
    .map(|value| value.min(1.0))
    .collect();
    (!parts.is_empty()).then(|| parts.iter().sum::<f64>() / parts.len() as f64)
}

fn with_norm_attainment(row: &KpiRow) -> Value {
    let mut row = row.clone();
    row.insert("norm_attainment".to_owned(), json!(norm_attainment(&row)));
    Value::Object(row)
}

#[derive(Debug, Deserialize)]
pub struct RankingQuery {
    /// `region` or `branch`; absent: everything the user may see.
    scope: Option<String>,
    id: Option<String>,
    #[serde(flatten)]
    view: ViewParams,
}

/// The month's supervisors under `node`, ranked, with the branch and region rows.
pub(crate) fn ranking_view(
    s: &ScopedSnapshot<'_>,
    node: Option<(&str, &str)>,
) -> Result<Value, Refusal> {
    if let Some((scope, id)) = node
        && !s.permits_node(scope, id)
    {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            message: format!("{scope} {id} is outside your scope"),
        });
    }
    let month = s.month_start();
    let under = |row: &KpiRow| match node {
        None => true,
        Some((scope, id)) => {
            let parent = match scope {
                "region" => text(row, "region_id"),
                _ => text(row, "branch_id"),
            };
            parent == Some(id)
                || (text(row, "scope") == Some(scope) && text(row, "scope_id") == Some(id))
        }
    };
    let mut supervisors = rows_where(s, |row| {
        text(row, "scope") == Some("supervisor") && of_period(row, "month", month) && under(row)
    });
    supervisors.sort_by(|a, b| {
        let key = |row: &KpiRow| norm_attainment(row).unwrap_or(-1.0);
        key(b)
            .total_cmp(&key(a))
            .then_with(|| text(a, "scope_id").cmp(&text(b, "scope_id")))
    });
    let summary = rows_where(s, |row| {
        matches!(text(row, "scope"), Some("branch" | "region"))
            && of_period(row, "month", month)
            && under(row)
    });
    Ok(json!({
        "scope": node.map(|(scope, _)| scope),
        "id": node.map(|(_, id)| id),
        "as_of": s.as_of(),
        "month": month,
        "supervisors": supervisors.into_iter().map(with_norm_attainment).collect::<Vec<_>>(),
        "summary": summary.into_iter().map(with_norm_attainment).collect::<Vec<_>>(),
    }))
}

pub async fn ranking(
    State(state): State<DashboardState>,
    signed_in: SignedIn,
    Query(query): Query<RankingQuery>,
) -> Response {
    node_view(
        &state,
        &signed_in,
        (query.scope, query.id),
        &["region", "branch"],
        &query.view,
        ranking_view,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct SupervisorQuery {
    /// The supervisor; or `team`, for the supervisor leading it.
    id: Option<String>,
    team: Option<String>,
    #[serde(flatten)]
    view: ViewParams,
}

/// One supervisor's loop: this week's and this month's rows, their agents' months, the
/// agents not coached.
pub(crate) fn supervisor_view(
    s: &ScopedSnapshot<'_>,
    id: Option<&str>,
    team: Option<&str>,
) -> Result<Value, Refusal> {
    let refused = |what: String| Refusal {
        status: StatusCode::FORBIDDEN,
        message: format!("{what} is outside your scope"),
    };
    let (month, week) = (s.month_start(), s.week_start());
    if let Some(team) = team
        && !s.permits_node("team", team)
    {
        return Err(refused(format!("team {team}")));
    }
    // Every supervisor row of the run that the user may see, of this supervisor (or of the
    // supervisor leading the team: the newest row naming it).
    let mine: Vec<&KpiRow> = rows_where(s, |row| {
        text(row, "scope") == Some("supervisor")
            && match (id, team) {
                (Some(id), _) => text(row, "scope_id") == Some(id),
                (None, Some(team)) => teams_of(row).any(|t| t == team),
                (None, None) => false,
            }
    });
    let supervisor = match (id, team) {
        (Some(id), _) => id.to_owned(),
        (None, _) => match mine
            .iter()
            .filter(|row| text(row, "period") == Some("day"))
            .max_by_key(|row| text(row, "period_start"))
            .or_else(|| mine.first())
            .and_then(|row| text(row, "scope_id"))
        {
            Some(found) => found.to_owned(),
            None => {
                return Ok(json!({"supervisor": null, "team": team, "as_of": s.as_of()}));
            }
        },
    };
    let own = |period: &str, start| {
        mine.iter()
            .find(|row| text(row, "scope_id") == Some(&supervisor) && of_period(row, period, start))
            .map(|row| with_norm_attainment(row))
    };
    let (this_week, this_month) = (own("week", week), own("month", month));
    if this_week.is_none()
        && this_month.is_none()
        && !mine
            .iter()
            .any(|r| text(r, "scope_id") == Some(&supervisor))
    {
        return Err(refused(format!("supervisor {supervisor}")));
    }
    let mut agents = rows_where(s, |row| {
        text(row, "scope") == Some("agent")
            && text(row, "supervisor_id") == Some(supervisor.as_str())
            && of_period(row, "month", month)
    });
    // Longest without coaching first, never coached before anyone.
    agents.sort_by_key(|row| {
        (
            std::cmp::Reverse(
                row.get("working_days_since_coached")
                    .and_then(Value::as_i64)
                    .unwrap_or(i64::MAX),
            ),
            text(row, "scope_id").unwrap_or_default().to_owned(),
        )
    });
    let not_coached: Vec<&str> = agents
        .iter()
        .filter(|row| row.get("not_coached").and_then(Value::as_bool) == Some(true))
        .filter_map(|row| text(row, "scope_id"))
        .collect();
    let agent_names = s.agent_names(agents.iter().filter_map(|row| text(row, "scope_id")));
    Ok(json!({
        "supervisor": supervisor,
        "team": team,
        "as_of": s.as_of(),
        "month": month,
        "week": week,
        "this_week": this_week,
        "this_month": this_month,
        "agents": agents,
        "not_coached": not_coached,
        "agent_names": agent_names,
    }))
}

pub async fn supervisor(
    State(state): State<DashboardState>,
    signed_in: SignedIn,
    Query(query): Query<SupervisorQuery>,
) -> Response {
    if query.id.is_none() == query.team.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "give the supervisor's id or a team, one of them",
        );
    }
    let view_query = match query.view.query() {
        Ok(view_query) => view_query,
        Err(e) => return view_error(&e),
    };
    let (id, team) = (query.id, query.team);
    with_view(
        &state,
        signed_in.access(),
        view_query,
        move |s, _, _| match supervisor_view(s, id.as_deref(), team.as_deref()) {
            Ok(view) => Json(view).into_response(),
            Err(refusal) => refusal.into_response(),
        },
    )
    .await
}

/// The quadrant a supervisor's evaluation places an agent in, named as the KPI table names
/// the computed one (willing and skilled: on track; willing only: does not know how;
/// skilled only: does not do enough; neither: unwilling).
pub(crate) fn evaluated_quadrant(skill: &str, will: &str) -> Option<&'static str> {
    match (skill, will) {
        ("high", "high") => Some("on_track"),
        ("low", "high") => Some("does_not_know_how"),
        ("high", "low") => Some("does_not_do_enough"),
        ("low", "low") => Some("unwilling"),
        _ => None,
    }
}

#[derive(Debug, Deserialize)]
pub struct CoachingQuery {
    agent: String,
    #[serde(flatten)]
    view: ViewParams,
}

/// The coaching quadrant of an agent's month closed by the supervisor's evaluation.
pub(crate) fn coaching_view(s: &ScopedSnapshot<'_>, agent: &str) -> Result<Value, Refusal> {
    if !s.permits_node("agent", agent) {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            message: format!("agent {agent} is outside your scope"),
        });
    }
    let month = s.month_start();
    let kpi_month = month.and_then(|month| s.row("agent", agent, "month", month));
    let computed = kpi_month.and_then(|row| text(row, "coaching_quadrant"));
    let mut received = rows_where(s, |row| {
        text(row, "scope") == Some("agent")
            && text(row, "scope_id") == Some(agent)
            && text(row, "period") == Some("month")
    });
    received.sort_by_key(|row| text(row, "period_start").map(str::to_owned));
    // The supervisor's latest evaluation: of the month shown, else of the newest month
    // before it that has one.
    let shown = month.map(|m| m.to_string());
    let evaluation = received
        .iter()
        .rev()
        .filter(|row| shown.is_none() || text(row, "period_start") <= shown.as_deref())
        .find(|row| text(row, "evaluation_skill").is_some());
    let evaluated = evaluation.and_then(|row| {
        evaluated_quadrant(
            text(row, "evaluation_skill")?,
            text(row, "evaluation_will")?,
        )
    });
    let agreement = match (evaluated, computed) {
        (Some(evaluated), Some(computed)) if evaluated == computed => Some("agree"),
        (Some(_), Some(_)) => Some("disagree"),
        _ => None,
    };
    let trend: Vec<Value> = received
        .iter()
        .map(|row| {
            let start = text(row, "period_start").unwrap_or_default();
            let kpi = start
                .parse()
                .ok()
                .and_then(|start| s.row("agent", agent, "month", start));
            json!({
                "month": start,
                "coaching_sessions": row.get("coaching_sessions"),
                "accompanied_visits": row.get("accompanied_visits"),
                "visits": kpi.and_then(|k| k.get("visits")),
                "close_rate": kpi.and_then(|k| k.get("close_rate")),
                "coaching_quadrant": kpi.and_then(|k| k.get("coaching_quadrant")),
            })
        })
        .collect();
    let this_month = received
        .iter()
        .find(|row| text(row, "period_start") == shown.as_deref());
    Ok(json!({
        "agent": agent,
        "name": s.agent_name(agent),
        "month": month,
        "computed_quadrant": computed,
        "evaluation": evaluation.map(|row| json!({
            "month": text(row, "period_start"),
            "skill": text(row, "evaluation_skill"),
            "will": text(row, "evaluation_will"),
            "by": text(row, "evaluated_by"),
            "quadrant": evaluated,
        })),
        "agreement": agreement,
        // The action the method gives the quadrant: the evaluated one when there is one
        // (the supervisor knows the agent), else the computed one.
        "action": evaluated.or(computed),
        "this_month": this_month,
        "trend": trend,
    }))
}

pub async fn coaching(
    State(state): State<DashboardState>,
    signed_in: SignedIn,
    Query(query): Query<CoachingQuery>,
) -> Response {
    let view_query = match query.view.query() {
        Ok(view_query) => view_query,
        Err(e) => return view_error(&e),
    };
    let agent = query.agent;
    with_view(
        &state,
        signed_in.access(),
        view_query,
        move |s, _, _| match coaching_view(s, &agent) {
            Ok(view) => Json(view).into_response(),
            Err(refusal) => refusal.into_response(),
        },
    )
    .await
}
