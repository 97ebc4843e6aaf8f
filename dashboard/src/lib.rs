//! The web dashboard of aqs: static pages embedded in the binary and a small JSON API over
//! the KPI store (documented in README.md).
//!
//! - `GET /` and the page's assets;
//! - `GET /api/meta`: as-of date, freshness (and why the figures are stale, when they are)
//!   and the organisation tree (agents' names for those who may see them);
//! - `GET /api/scope?scope=…&id=…`: one scope's month and week KPIs, its children, trend,
//!   ranking, at-risk list, coaching quadrant and weekly review sheet;
//! - `GET /api/outlets?scope=…&id=…`: the outlet page: the month's outlets with grade,
//!   dormancy and last visit, and the summaries by grade, 破零 and dormancy of the
//!   branches or teams;
//! - `GET /api/explain?scope=agent|team&id=…&period=…&start=…`: the events behind a row's
//!   counts and money, each with its fate, and whether they add up to the row;
//! - `GET /api/changes?scope=…&id=…`: the figures that moved since the previous as-of run and
//!   the events recorded since that moved them;
//! - `GET /api/history`: the months and as-of runs the KPI store holds; `as_of` and `month`
//!   on `meta`, `scope` and `export` pick one;
//! - `POST /api/export`: a table of the page as XLSX or CSV, audited;
//! - `GET /api/me`: the signed-in user, role, scope and CSRF token;
//! - `GET /login`, `POST /auth/login`, `POST /auth/logout`, `GET /auth/sso`,
//!   `GET /auth/callback`: sign-in ([`auth`]);
//! - `GET /healthz`, `GET /readyz`: probes.
//!
//! Every answer but the sign-in pages and the probes needs a session; every KPI answer is
//! filtered to the user's scope ([`access`], [`scoped`]).

pub mod access;
mod api;
pub mod auth;
pub mod config;
mod explain;
mod export;
mod health;
pub mod history;
pub(crate) mod outlets;
pub mod scoped;
pub mod source;
pub mod store;
pub(crate) mod supervisors;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use auth::{Auth, AuthSettings};
pub use config::DashboardConfig;
pub use source::{ClickHouseSource, EmbeddedSource, KpiSource};

include!(concat!(env!("OUT_DIR"), "/web_files.rs"));

/// The thresholds the KPI job used, shown by the page (quadrant lines, at-risk label).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub at_risk: f64,
    pub will: f64,
    pub skill_ratio: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            at_risk: 0.9,
            will: 0.8,
            skill_ratio: 1.0,
        }
    }
}

/// A problem of the pipeline behind the figures, as `/api/meta` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PipelineProblem {
    /// What fails: a ledger store (`sqlite`, `clickhouse`), or `projector`.
    pub component: String,
    /// Since when, RFC 3339.
    pub since: Option<String>,
    pub reason: String,
    /// Whether the figures the dashboard shows stop advancing because of it.
    pub stale: bool,
}

/// Where the dashboard learns whether the figures it shows are still advancing (in `aqs up`,
/// the projector running beside it).
pub trait PipelineHealth: Send + Sync {
    fn problems(&self) -> Vec<PipelineProblem>;
}

/// Earlier runs loaded for history views: as-of date → (content stamp, snapshot).
type EarlierRuns = HashMap<chrono::NaiveDate, (String, Arc<store::Snapshot>)>;

/// Shared state of the dashboard handlers.
#[derive(Clone)]
pub struct DashboardState {
    source: Arc<dyn KpiSource>,
    thresholds: Thresholds,
    snapshot: Arc<Mutex<store::Snapshot>>,
    /// Earlier runs loaded for history views: as-of date → (content stamp, snapshot).
    earlier: Arc<Mutex<EarlierRuns>>,
    auth: Arc<Auth>,
    pipeline: Option<Arc<dyn PipelineHealth>>,
    /// Lists the events behind figures (`/api/explain`, `/api/changes`), when given.
    explainer: Option<Arc<dyn aqs_explain::Explain>>,
}

impl std::fmt::Debug for DashboardState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardState")
            .field("source", &self.source)
            .field("thresholds", &self.thresholds)
            .field("auth", &self.auth)
            .field("pipeline", &self.pipeline.is_some())
            .finish_non_exhaustive()
    }
}

impl DashboardState {
    pub fn new(source: Arc<dyn KpiSource>, thresholds: Thresholds, auth: Arc<Auth>) -> Self {
        Self {
            source,
            thresholds,
            snapshot: Arc::new(Mutex::new(store::Snapshot::default())),
            earlier: Arc::new(Mutex::new(HashMap::new())),
            auth,
            pipeline: None,
            explainer: None,
        }
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Reports `pipeline`'s problems in `/api/meta` (`freshness`).
    pub fn with_pipeline(mut self, pipeline: Arc<dyn PipelineHealth>) -> Self {
        self.pipeline = Some(pipeline);
        self
    }

    /// Serves `/api/explain` and the events of `/api/changes` with `explainer`.
    pub fn with_explainer(mut self, explainer: Arc<dyn aqs_explain::Explain>) -> Self {
        self.explainer = Some(explainer);
        self
    }
}

/// Files of `web/` served without a session: what the sign-in page needs.
const PUBLIC_ASSETS: &[&str] = &["login.css", "login.js"];

/// The dashboard's routes; merge them into a server of your own or serve them alone. Serve
/// with `into_make_service_with_connect_info::<SocketAddr>()` so that failed sign-ins are
/// limited per client address.
pub fn router(state: DashboardState) -> Router {
    let signed_in = Router::new()
        .route("/api/meta", get(api::meta))
        .route("/api/scope", get(api::scope))
        .route("/api/history", get(api::history))
        .route("/api/outlets", get(outlets::outlets))
        .route("/api/supervisors", get(supervisors::ranking))
        .route("/api/supervisor", get(supervisors::supervisor))
        .route("/api/coaching", get(supervisors::coaching))
        .route("/api/explain", get(explain::explain))
        .route("/api/changes", get(explain::changes))
        .route("/api/export", axum::routing::post(export::export))
        .route("/api/me", get(auth::me))
        .route("/", get(|| async { asset("index.html") }))
        .route(
            "/{*path}",
            get(|Path(path): Path<String>| async move { asset(&path) }),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_sign_in,
        ));
    let mut public = auth::routes()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    for name in PUBLIC_ASSETS {
        public = public.route(&format!("/{name}"), get(move || async move { asset(name) }));
    }
    let https = state.auth.secure_cookies();
    auth::headers::add(public.merge(signed_in), https).with_state(state)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn asset(path: &str) -> Response {
    match WEB_FILES.iter().find(|(name, _)| *name == path) {
        Some((name, bytes)) => {
            ([(header::CONTENT_TYPE, content_type(name))], *bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
