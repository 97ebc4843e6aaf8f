//! Probes: alive while the process answers; ready once a KPI table can be served.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::DashboardState;

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 once the KPI source gave a table (and still does, or kept the last
/// one), 503 with the reason before.
pub async fn readyz(State(state): State<DashboardState>) -> Response {
    let result = tokio::task::spawn_blocking(move || {
        let mut snapshot = match state.snapshot.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        match state.source.refresh(&mut snapshot) {
            Ok(_) => Ok(()),
            Err(_) if snapshot.as_of.is_some() => Ok(()),
            Err(error) => Err(error.to_string()),
        }
    })
    .await;
    match result {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(reason)) => (StatusCode::SERVICE_UNAVAILABLE, reason).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}
