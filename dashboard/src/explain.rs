//! The events behind a figure (`GET /api/explain`) and what moved a scope's figures since
//! the previous as-of run (`GET /api/changes`), within the user's scope. The events come
//! from an [`aqs_explain::Explain`] the server is given (the binary's, reading the log); the
//! dashboard itself never reads the log.

use std::sync::Arc;

use aqs_explain::{EXPLAINED_COLUMNS, Explain, Request, Subject};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::DashboardState;
use crate::api::{Refusal, ViewParams, error, field, under, view_error, with_view};
use crate::auth::SignedIn;
use crate::scoped::ScopedSnapshot;
use crate::store::KpiRow;

/// `GET /api/explain?scope=agent|team&id=…&period=day|week|month&start=YYYY-MM-DD`, with the
/// view's `as_of`.
#[derive(Debug, Deserialize)]
pub struct ExplainQuery {
    scope: String,
    id: String,
    period: String,
    start: String,
    #[serde(flatten)]
    view: ViewParams,
}

/// The explained columns of a KPI row, as the row carries them.
fn kpi_figures(row: &KpiRow) -> Map<String, Value> {
    EXPLAINED_COLUMNS
        .iter()
        .map(|c| ((*c).to_owned(), row.get(*c).cloned().unwrap_or(Value::Null)))
        .collect()
}

/// Whether a KPI cell and an explained figure are the same number (money compared in fen,
/// whatever the decimals written).
fn same(kpi: &Value, explained: &str) -> bool {
    let text = match kpi {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return false,
    };
    fen(&text).is_some() && fen(&text) == fen(explained)
}

fn fen(text: &str) -> Option<i128> {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if fraction.len() > 2 {
        return None;
    }
    let fraction = format!("{fraction:0<2}");
    Some(sign * (whole.parse::<i128>().ok()? * 100 + fraction.parse::<i128>().ok()?))
}

fn explainer(state: &DashboardState) -> Result<Arc<dyn Explain>, Refusal> {
    state.explainer.clone().ok_or_else(|| Refusal {
        status: StatusCode::NOT_IMPLEMENTED,
        message: "explaining figures needs the event log: Kafka (AQS_KAFKA_BROKERS) or the \
                  embedded log (events.db in the data folder)"
            .to_owned(),
    })
}

/// The row asked for, when the user may see it; 403 outside the scope, 404 without a row.
fn permitted_row<'a>(
    s: &ScopedSnapshot<'a>,
    scope: &str,
    id: &str,
    period: &str,
    start: NaiveDate,
) -> Result<&'a KpiRow, Refusal> {
    if !s.permits_node(scope, id) {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            message: format!("{scope} {id} is outside your scope"),
        });
    }
    s.row(scope, id, period, start).ok_or_else(|| Refusal {
        status: StatusCode::NOT_FOUND,
        message: format!("no {period} row of {scope} {id} from {start}"),
    })
}

pub async fn explain(
    State(state): State<DashboardState>,
    signed_in: SignedIn,
    Query(query): Query<ExplainQuery>,
) -> Response {
    let view = match query.view.query() {
        Ok(view) => view,
        Err(e) => return view_error(&e),
    };
    let Some(subject) = Subject::parse(&query.scope, &query.id) else {
        return error(StatusCode::BAD_REQUEST, "scope must be agent or team");
    };
    if !matches!(query.period.as_str(), "day" | "week" | "month") {
        return error(StatusCode::BAD_REQUEST, "period must be day, week or month");
    }
    let Ok(start) = query.start.parse::<NaiveDate>() else {
        return error(StatusCode::BAD_REQUEST, "start must be a date YYYY-MM-DD");
    };
    let explainer = match explainer(&state) {
        Ok(explainer) => explainer,
        Err(refusal) => return refusal.into_response(),
    };
    with_view(&state, signed_in.access(), view, move |s, _, _| {
        let row = match permitted_row(s, &query.scope, &query.id, &query.period, start) {
            Ok(row) => row,
            Err(refusal) => return refusal.into_response(),
        };
        let Some(as_of) = s.as_of() else {
            return error(StatusCode::SERVICE_UNAVAILABLE, "no KPI table yet");
        };
        let end: NaiveDate = field(row, "period_end").parse().unwrap_or(as_of);
        let request = Request {
            subject,
            from: start,
            through: end.min(as_of),
        };
        let explanation = match explainer.explain(&request) {
            Ok(explanation) => explanation,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
        let kpi = kpi_figures(row);
        let adds_up: Map<String, Value> = EXPLAINED_COLUMNS
            .iter()
            .map(|c| {
                let explained = explanation.figures.value(c).unwrap_or_default();
                ((*c).to_owned(), Value::Bool(same(&kpi[*c], &explained)))
            })
            .collect();
        tracing::info!(
            scope = %query.scope,
            id = %query.id,
            period = %query.period,
            start = %start,
            events = explanation.events.len(),
            millis = explanation.cost.millis,
            "figures explained"
        );
        Json(json!({
            "scope": query.scope,
            "id": query.id,
            "period": query.period,
            "period_start": start,
            "period_end": end,
            "through": request.through,
            "as_of": as_of,
            "kpi": kpi,
            "explained": explanation.figures,
            "adds_up": adds_up,
            "events": explanation.events,
            "cost": explanation.cost,
        }))
        .into_response()
    })
    .await
}

/// `GET /api/changes?scope=…&id=…`, with the view's `as_of`.
#[derive(Debug, Deserialize)]
pub struct ChangesQuery {
    scope: String,
    id: String,
    #[serde(flatten)]
    view: ViewParams,
}

/// The agent and team rows under `(scope, id)` whose explained figures differ between the
/// previous run and this one, for periods the previous run already held.
fn moved_rows(
    now: &ScopedSnapshot<'_>,
    before: &ScopedSnapshot<'_>,
    scope: &str,
    id: &str,
    previous_as_of: NaiveDate,
) -> Vec<Value> {
    let previous = previous_as_of.to_string();
    let mut moved = Vec::new();
    let mut rows: Vec<&KpiRow> = now
        .rows_where(|r| matches!(field(r, "scope"), "agent" | "team"))
        .filter(|r| {
            (under(r, scope, id) || (field(r, "scope") == scope && field(r, "scope_id") == id))
                && field(r, "period_start") <= previous.as_str()
        })
        .collect();
    rows.sort_by_key(|r| {
        (
            field(r, "scope") != "team",
            field(r, "scope_id").to_owned(),
            field(r, "period").to_owned(),
            field(r, "period_start").to_owned(),
        )
    });
    for row in rows {
        let Ok(start) = field(row, "period_start").parse::<NaiveDate>() else {
            continue;
        };
        let earlier = before.row(
            field(row, "scope"),
            field(row, "scope_id"),
            field(row, "period"),
            start,
        );
        let mut columns = Vec::new();
        for column in EXPLAINED_COLUMNS {
            let now_value = row.get(column).cloned().unwrap_or(Value::Null);
            let then = earlier
                .and_then(|r| r.get(column).cloned())
                .unwrap_or(Value::Null);
            let then_text = match &then {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => "0".to_owned(),
            };
            if !same(&now_value, &then_text) {
                columns.push(json!({ "column": column, "before": then, "now": now_value }));
            }
        }
        if !columns.is_empty() {
            moved.push(json!({
                "scope": field(row, "scope"),
                "scope_id": field(row, "scope_id"),
                "period": field(row, "period"),
                "period_start": start,
                "columns": columns,
            }));
        }
    }
    moved
}

pub async fn changes(
    State(state): State<DashboardState>,
    signed_in: SignedIn,
    Query(query): Query<ChangesQuery>,
) -> Response {
    let view = match query.view.query() {
        Ok(view) => view,
        Err(e) => return view_error(&e),
    };
    if !crate::api::is_scope(&query.scope) {
        return error(
            StatusCode::BAD_REQUEST,
            "scope must be region, branch, team or agent",
        );
    }
    let access = signed_in.access().clone();
    let for_earlier = state.clone();
    with_view(&state, signed_in.access(), view, move |s, _, runs| {
        if !s.permits_node(&query.scope, &query.id) {
            return error(
                StatusCode::FORBIDDEN,
                format!("{} {} is outside your scope", query.scope, query.id),
            );
        }
        let Some(as_of) = s.as_of() else {
            return error(StatusCode::SERVICE_UNAVAILABLE, "no KPI table yet");
        };
        let Some(previous) = runs
            .iter()
            .filter(|run| run.as_of < as_of)
            .max_by_key(|run| run.as_of)
        else {
            return Json(json!({
                "as_of": as_of, "previous_as_of": null, "moved": [], "events": [],
            }))
            .into_response();
        };
        let earlier = match for_earlier.earlier_run(previous.as_of, &previous.stamp) {
            Ok(earlier) => earlier,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
        let before = ScopedSnapshot::new(&earlier, &access);
        let moved = moved_rows(s, &before, &query.scope, &query.id, previous.as_of);
        // The events recorded after the previous run that touch its dates: the previous
        // run's time is when its file was last written.
        let since_ms = earlier
            .generated_at
            .as_deref()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.timestamp_millis());
        let earliest = moved
            .iter()
            .filter_map(|m| m["period_start"].as_str()?.parse::<NaiveDate>().ok())
            .min();
        let events = match (
            Subject::parse(&query.scope, &query.id),
            since_ms,
            earliest,
            for_earlier.explainer.as_ref(),
        ) {
            (Some(subject), Some(since_ms), Some(from), Some(explainer)) => {
                let request = Request {
                    subject,
                    from,
                    through: previous.as_of,
                };
                match explainer.changes(&request, since_ms) {
                    Ok(changes) => json!(changes.events),
                    Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
                }
            }
            _ => Value::Array(Vec::new()),
        };
        Json(json!({
            "scope": query.scope,
            "id": query.id,
            "as_of": as_of,
            "previous_as_of": previous.as_of,
            "previous_generated_at": earlier.generated_at,
            "moved": moved,
            "events": events,
        }))
        .into_response()
    })
    .await
}
