//! `GET /api/outlets`: the outlet page's data (网点分析) — for the whole organisation
//! visible to the user, or one region, branch or team, the month's summaries by grade, 破零
//! and dormancy, and the list of outlets with grade, dormant flag and days since the last
//! visit. Only rows the user may see are given (an outlet row is placed by the team, branch
//! and region it reports under); a node outside the scope is refused like `/api/scope`.

use std::cmp::Reverse;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DashboardState;
use crate::api::{Refusal, ViewParams, node_view};
use crate::auth::SignedIn;
use crate::scoped::ScopedSnapshot;
use crate::store::KpiRow;

#[derive(Debug, Deserialize)]
pub struct OutletsQuery {
    /// `region`, `branch` or `team`; absent: everything the user may see.
    scope: Option<String>,
    id: Option<String>,
    #[serde(flatten)]
    view: ViewParams,
}

fn text<'a>(row: &'a KpiRow, key: &str) -> Option<&'a str> {
    row.get(key).and_then(Value::as_str)
}

/// Whether `row` lies under the node `(scope, id)` (every row for no node).
fn under(row: &KpiRow, node: Option<(&str, &str)>) -> bool {
    let Some((scope, id)) = node else {
        return true;
    };
    let own = text(row, "scope") == Some(scope) && text(row, "scope_id") == Some(id);
    let parent = match scope {
        "region" => text(row, "region_id"),
        "branch" => text(row, "branch_id"),
        "team" => text(row, "team_id"),
        _ => None,
    };
    own || parent == Some(id)
}

/// The summaries shown for a node: a team its own row; a branch its row and its teams'; the
/// whole organisation or a region its branches'.
fn summary_scopes(node: Option<(&str, &str)>) -> &'static [&'static str] {
    match node.map(|(scope, _)| scope) {
        Some("team") => &["team"],
        Some("branch") => &["branch", "team"],
        _ => &["branch"],
    }
}

/// Dormant outlets first, then by grade (A first), the longest without a visit, the id.
fn outlet_order(row: &KpiRow) -> (bool, String, Reverse<i64>, String) {
    (
        row.get("dormant").and_then(Value::as_bool) != Some(true),
        text(row, "grade").unwrap_or("Z").to_owned(),
        Reverse(
            row.get("working_days_without_visit")
                .and_then(Value::as_i64)
                .unwrap_or(i64::MAX),
        ),
        text(row, "scope_id").unwrap_or_default().to_owned(),
    )
}

/// The outlet view of `node` for the month the view shows, or why it is refused.
pub(crate) fn outlets_view(
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
    let Some(month) = s.month_start() else {
        return Err(Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "no KPI table yet".to_owned(),
        });
    };
    let month_text = month.to_string();
    let of_month = move |row: &KpiRow| text(row, "month") == Some(month_text.as_str());
    let scopes = summary_scopes(node);
    let mut summary: Vec<&KpiRow> = {
        let of_month = of_month.clone();
        s.outlet_rows_where(move |row| {
            of_month(row)
                && scopes.contains(&text(row, "scope").unwrap_or_default())
                && under(row, node)
        })
        .collect()
    };
    summary.sort_by_key(|row| {
        (
            scopes
                .iter()
                .position(|scope| Some(*scope) == text(row, "scope")),
            text(row, "scope_id").unwrap_or_default().to_owned(),
        )
    });
    let mut outlets: Vec<&KpiRow> = s
        .outlet_rows_where(move |row| {
            of_month(row) && text(row, "scope") == Some("outlet") && under(row, node)
        })
        .collect();
    outlets.sort_by_key(|row| outlet_order(row));
    let agent_names = s.agent_names(outlets.iter().filter_map(|row| text(row, "agent_id")));
    Ok(json!({
        "scope": node.map(|(scope, _)| scope),
        "id": node.map(|(_, id)| id),
        "as_of": s.as_of(),
        "month": month,
        "summary": summary,
        "outlets": outlets,
        "agent_names": agent_names,
    }))
}

pub async fn outlets(
    State(state): State<DashboardState>,
    signed_in: SignedIn,
    Query(query): Query<OutletsQuery>,
) -> Response {
    node_view(
        &state,
        &signed_in,
        (query.scope, query.id),
        &["region", "branch", "team"],
        &query.view,
        outlets_view,
    )
    .await
}
