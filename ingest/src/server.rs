//! The HTTP API: routes, answers, back-pressure and graceful shutdown.
//!
//! [`app`] builds the router over an [`IngestState`]; [`serve`] runs it on a listener the
//! caller bound (tests bind `127.0.0.1:0`) until the `shutdown` future completes, then stops
//! accepting, lets the requests and appends in flight finish, and returns. Connections are
//! served within the limits of [`aqs_http::serve`] (a cap, header and idle timeouts), and
//! every request must name a host the service answers to ([`aqs_http::HostCheckLayer`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aqs_eventlog::{EventLog, LogError};
use aqs_http::{AllowedHosts, ConnectionStats, Exposition, HostCheckLayer};
use aqs_schemas::Decoder;
use aqs_schemas::schema::{EVENT_COMPONENT, openapi_components};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, error, info, warn};
use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, Ref, RefOr};
use utoipa::{IntoParams, Modify, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::admission::{BodyBudget, PER_EVENT_RESERVE_BYTES, SourceSlots};
use crate::answer::{BatchAnswer, ErrorBody, EventError, EventResult, EventStatus, Health};
use crate::auth::{Auth, bearer_token};
use crate::batch::{Framing, FramingError, spans};
use crate::body::{BodyError, declared_length, read_body};
use crate::config::{ALLOWED_HOSTS_SETTING, IngestConfig};
use crate::event_limits::{is_too_large, judge_bounded};
use crate::intake::{Principal, store};
use crate::log_health::{LogHealth, READY_TTL};
use crate::metrics::{Metrics, MetricsSource, Refusal, ServerFigures};
use crate::readiness::Readiness;

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct IngestState {
    shared: Arc<Shared>,
}

struct Shared {
    log: Arc<dyn EventLog>,
    log_health: Arc<LogHealth>,
    /// Checked by `/readyz` only, never to refuse batches.
    downstream: Option<Arc<dyn Readiness>>,
    auth: Auth,
    config: IngestConfig,
    decoder: &'static Decoder,
    /// Slots of batches handed to the log.
    appends: Arc<Semaphore>,
    /// Slots of event requests being served.
    requests: Arc<Semaphore>,
    /// Slots of event requests being served, per source.
    sources: SourceSlots,
    /// Body bytes being read and judged.
    budget: BodyBudget,
    metrics: Metrics,
    /// Metrics of components behind the log (the dedup index), rendered after the server's.
    metrics_sources: std::sync::RwLock<Vec<Arc<dyn MetricsSource>>>,
    connections: Arc<ConnectionStats>,
    host_check: HostCheckLayer,
    schemas: Bytes,
    schema_documents: BTreeMap<String, Bytes>,
    shutting_down: AtomicBool,
}

impl std::fmt::Debug for IngestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestState")
            .field("auth", &self.shared.auth)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl IngestState {
    /// The state of a server appending to `log`, ready when `readiness` says so.
    pub fn new(
        log: Arc<dyn EventLog>,
        readiness: Arc<dyn Readiness>,
        auth: Auth,
        config: IngestConfig,
    ) -> Self {
        let documents = aqs_schemas::schema::all_schema_documents();
        let schemas = Bytes::from(serde_json::to_vec(&documents).unwrap_or_default());
        let schema_documents = documents
            .iter()
            .map(|(name, document)| {
                let rendered = aqs_schemas::schema::render_document(document);
                (name.clone(), Bytes::from(rendered))
            })
            .collect();
        let allowed = config.allowed_hosts().unwrap_or_else(|error| {
            // The flags refuse such names; a config built in code falls back to the defaults.
            error!(%error, "allowed hosts unusable; answering to localhost and IP addresses only");
            AllowedHosts::default()
        });
        Self {
            shared: Arc::new(Shared {
                log,
                log_health: Arc::new(LogHealth::new(readiness)),
                downstream: None,
                auth,
                decoder: Decoder::standard(),
                appends: Arc::new(Semaphore::new(config.max_concurrent_appends)),
                requests: Arc::new(Semaphore::new(config.max_in_flight_requests)),
                sources: SourceSlots::new(config.max_in_flight_per_source),
                budget: BodyBudget::new(config.body_budget_bytes.max(config.max_body_bytes)),
                metrics: Metrics::default(),
                metrics_sources: std::sync::RwLock::new(Vec::new()),
                connections: Arc::new(ConnectionStats::default()),
                host_check: HostCheckLayer::new(allowed, ALLOWED_HOSTS_SETTING),
                config,
                schemas,
                schema_documents,
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    /// The counts of the connections served.
    pub fn connections(&self) -> &ConnectionStats {
        &self.shared.connections
    }

    /// The server's part of the text of `/metrics` (without the metrics sources').
    pub fn render_metrics(&self) -> String {
        let mut metrics = Exposition::new();
        self.write_metrics(&mut metrics);
        metrics.into_text()
    }

    fn write_metrics(&self, metrics: &mut Exposition) {
        let shared = &self.shared;
        shared.metrics.write_with(
            &ServerFigures {
                connections: &shared.connections,
                misdirected: shared.host_check.refused(),
                budget_in_use: shared.budget.in_use(),
                budget_total: shared.budget.total(),
                dead_letters: shared.log.dead_letter_drops(),
            },
            metrics,
        );
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    pub fn config(&self) -> &IngestConfig {
        &self.shared.config
    }

    /// Adds metrics of a component behind the log to `/metrics`.
    pub fn add_metrics_source(&self, source: Arc<dyn MetricsSource>) {
        self.shared
            .metrics_sources
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(source);
    }

    /// From now on `/readyz` answers 503 and new batches are refused.
    pub fn begin_shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
    }

    fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::SeqCst)
    }

    /// Waits until no append runs any more (also those whose request already gave up on
    /// them), at most `timeout`; no new append starts afterwards. True when all finished.
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.begin_shutdown();
        let slots = u32::try_from(self.shared.config.max_concurrent_appends).unwrap_or(u32::MAX);
        let finished = tokio::time::timeout(timeout, self.shared.appends.acquire_many(slots)).await;
        self.shared.appends.close();
        matches!(finished, Ok(Ok(_)))
    }

    /// `/readyz` also says what `downstream` says (in `aqs up`: whether the events taken
    /// reach the ledgers), while batches keep being taken as long as the log is up: a
    /// store behind the log that fails holds no event back.
    pub fn with_downstream_readiness(mut self, downstream: Arc<dyn Readiness>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.downstream = Some(downstream);
        }
        self
    }

    async fn readiness(&self) -> Result<(), String> {
        if self.is_shutting_down() {
            return Err("shutting down".to_owned());
        }
        self.shared.log_health.current(READY_TTL).await?;
        match &self.shared.downstream {
            Some(downstream) => {
                let downstream = Arc::clone(downstream);
                tokio::task::spawn_blocking(move || downstream.check())
                    .await
                    .unwrap_or_else(|e| Err(format!("readiness check failed: {e}")))
            }
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors

/// A request refused as a whole, answered with an [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    fn unavailable(state: &IngestState, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            .retry_after(state.shared.config.retry_after_secs)
    }

    /// 429: a bound of the service is reached; counted by `refusal`.
    fn busy(state: &IngestState, refusal: Refusal, message: impl Into<String>) -> Self {
        state.shared.metrics.count_refusal(refusal);
        Self::new(StatusCode::TOO_MANY_REQUESTS, "busy", message)
            .retry_after(state.shared.config.retry_after_secs)
    }

    fn body_too_large(state: &IngestState) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the body is over the limit of {} bytes; send smaller batches",
                state.shared.config.max_body_bytes
            ),
        )
    }

    fn shutting_down(state: &IngestState) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the service is shutting down; retry against another instance or later",
        )
        .retry_after(state.shared.config.retry_after_secs)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // A request refused as a whole may leave its body unread, after which the connection
        // cannot carry another request; saying so keeps clients from reusing it and failing.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"aqs-ingest\""),
            );
        }
        response
    }
}

// ---------------------------------------------------------------------------------------
// Extractors

/// The sender of a request, from its bearer token (checked before the body is read).
#[derive(Debug)]
pub struct Authenticated(Principal);

impl FromRequestParts<IngestState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &IngestState,
    ) -> Result<Self, Self::Rejection> {
        let tokens = match &state.shared.auth {
            Auth::Disabled => return Ok(Authenticated(Principal::Anyone)),
            Auth::Tokens(tokens) => tokens,
        };
        let Some(header) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing `Authorization: Bearer <token>`",
            ));
        };
        let source = header
            .to_str()
            .ok()
            .and_then(bearer_token)
            .and_then(|token| tokens.source_of(token));
        match source {
            Some(source) => Ok(Authenticated(Principal::Source(Arc::clone(source)))),
            None => {
                warn!("event batch with an unknown token refused");
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the bearer token is not valid",
                ))
            }
        }
    }
}

/// How the body lays out its events, from `Content-Type` (checked before the body is read).
#[derive(Debug, Clone, Copy)]
pub struct BodyFraming(Framing);

impl<S: Send + Sync> FromRequestParts<S> for BodyFraming {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let encoded = parts
            .headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|value| !value.as_bytes().eq_ignore_ascii_case(b"identity"));
        if encoded {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "compressed bodies (Content-Encoding) are not supported; send the events as is",
            ));
        }
        parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(Framing::from_content_type)
            .map(BodyFraming)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send `Content-Type: application/json` (a JSON array of events) or \
                     `Content-Type: application/x-ndjson` (one event per line)",
                )
            })
    }
}

/// Options of `POST /v1/events`.
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// All or nothing: when any event of the batch is rejected, none is appended (the
    /// valid ones are answered `skipped`) and the answer is 422. Default false: the valid
    /// events are appended and the others rejected.
    #[serde(default)]
    pub atomic: bool,
}

// ---------------------------------------------------------------------------------------
// OpenAPI

/// A batch in `application/json`: an array of events, or one event object.
#[derive(Debug)]
pub struct EventBatch;

impl PartialSchema for EventBatch {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "An array of events, or a single event; each event follows the published event \
                 schema (GET /v1/schema)",
            ))
            .item(
                ArrayBuilder::new()
                    .items(Ref::from_schema_name(EVENT_COMPONENT))
                    .min_items(Some(1)),
            )
            .item(Ref::from_schema_name(EVENT_COMPONENT))
            .into()
    }
}

impl ToSchema for EventBatch {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EventBatch")
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The API token of the publishing source; the tokens file maps each \
                         source to the SHA-256 of its token",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "aqs ingest API",
        description = "The API upstream sales systems (CRMs, work-log apps, core insurance \
                       systems) publish bancassurance activity events to. Events are validated \
                       against the published event schema and appended to the event log; an \
                       event sent again with the same `event_id` is a duplicate (a success), so \
                       retrying a batch is always safe.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerAuth),
    components(schemas(EventStatus, EventError, EventResult)),
    tags(
        (name = "events", description = "Publishing events"),
        (name = "schema", description = "The event contract"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

fn routes(state: Option<&IngestState>) -> OpenApiRouter<IngestState> {
    let mut events = OpenApiRouter::new().routes(routes!(post_events));
    if let Some(state) = state {
        events = events.layer(from_fn_with_state(state.clone(), track_events));
    }
    OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .merge(events)
        .routes(routes!(get_schemas))
        .routes(routes!(get_schema))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// The OpenAPI document of the API, generated from the handlers, with the published event
/// schemas embedded as components (`#/components/schemas/Event` and what it refers to), so
/// that the document resolves without fetching anything.
///
/// The schemas are added to the JSON rather than to utoipa's model, which cannot hold every
/// keyword of a JSON Schema (`const`, for one).
pub fn openapi() -> serde_json::Value {
    let mut document =
        serde_json::to_value(routes(None).into_openapi()).expect("the OpenAPI document serialises");
    let schemas = document["components"]["schemas"]
        .as_object_mut()
        .expect("the document has component schemas");
    for (name, schema) in openapi_components() {
        let clash = schemas.insert(name.clone(), schema);
        assert!(clash.is_none(), "two component schemas are named {name}");
    }
    document
}

/// The OpenAPI document as checked in (`ingest/openapi.json`): pretty JSON, final newline.
pub fn openapi_json() -> String {
    let mut text = serde_json::to_string_pretty(&openapi()).expect("JSON serialises");
    text.push('\n');
    text
}

// ---------------------------------------------------------------------------------------
// Router and server

/// The router of the API over `state`.
pub fn app(state: IngestState) -> Router {
    let (router, _) = routes(Some(&state)).split_for_parts();
    let openapi = Bytes::from(openapi_json());
    let host_check = state.shared.host_check.clone();
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let openapi = openapi.clone();
                async move { json_bytes(openapi) }
            }),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.shared.config.max_body_bytes))
        .with_state(state)
        .layer(host_check)
}

/// Serves the API on `listener` until `shutdown` completes; then stops accepting
/// connections, finishes the requests and appends in flight (bounded by the configured
/// shutdown timeout) and returns. The log's writer has nothing left to flush then: an append
/// returns only once the log acknowledged it. While serving, the log's health is checked
/// every second, so that batches are refused at once while the log is known to be down.
pub async fn serve(
    listener: TcpListener,
    state: IngestState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    let config = &state.shared.config;
    let timeout = config.shutdown_timeout();
    let limits = config.connection_limits();
    info!(
        %address,
        max_connections = limits.max_connections,
        header_timeout_ms = config.header_timeout_ms,
        idle_timeout_ms = config.idle_timeout_ms,
        body_timeout_ms = config.body_timeout_ms,
        body_budget_bytes = config.body_budget_bytes,
        max_event_bytes = config.max_event_bytes,
        "ingest API listening"
    );
    let (fired, mut fired_seen) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(Arc::clone(&state.shared.log_health).watch(fired_seen.clone()));
    let signalled = state.clone();
    let serving = aqs_http::serve(
        listener,
        app(state.clone()),
        limits,
        Arc::clone(&state.shared.connections),
        async move {
            shutdown.await;
            signalled.begin_shutdown();
            info!("shutting down: no new connections; finishing the requests in flight");
            let _ = fired.send(true);
        },
    );
    let deadline = async move {
        if fired_seen.wait_for(|fired| *fired).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(timeout).await;
    };
    tokio::select! {
        result = serving => result?,
        () = deadline => warn!(?timeout, "requests still in flight after the shutdown timeout; closing"),
    }
    watcher.abort();
    let started = Instant::now();
    if state.drain(timeout).await {
        info!(
            waited_ms = started.elapsed().as_millis() as u64,
            "ingest stopped; every append finished"
        );
    } else {
        warn!(?timeout, "appends still running after the shutdown timeout");
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => info!("Ctrl-C received"),
        () = terminate => info!("SIGTERM received"),
    }
}

fn json_bytes(bytes: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from(bytes),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// Around `POST /v1/events`: counts answers by status, tracks requests in flight and
/// refuses requests beyond the in-flight bound before their body is read.
async fn track_events(State(state): State<IngestState>, request: Request, next: Next) -> Response {
    let _in_flight = state.shared.metrics.in_flight();
    let response = if state.is_shutting_down() {
        ApiError::shutting_down(&state).into_response()
    } else {
        match Arc::clone(&state.shared.requests).try_acquire_owned() {
            Ok(permit) => {
                let response = next.run(request).await;
                drop(permit);
                response
            }
            Err(_) => ApiError::busy(
                &state,
                Refusal::InFlight,
                format!(
                    "more than {} batches in flight; retry later",
                    state.shared.config.max_in_flight_requests
                ),
            )
            .into_response(),
        }
    };
    state
        .shared
        .metrics
        .count_request(response.status().as_u16());
    response
}

// ---------------------------------------------------------------------------------------
// Handlers

/// Publish a batch of events.
///
/// The body is a JSON array of events (`application/json`; a single event object is a
/// batch of one) or NDJSON (`application/x-ndjson`, one event per line, blank lines
/// skipped). Each event is validated against the published event schema and its `source`
/// must be the token's source. Valid events are appended to the event log; an event whose
/// `event_id` is already in the log with the same content is a `duplicate` (a success:
/// retrying a batch is always safe), with different content a `conflict` (the first one
/// stays). Rejected and conflicting events are kept as dead letters.
///
/// A 200 or 422 answer is final: what it reports as accepted or duplicate is durably in the
/// log. Any other answer appended nothing reported: retry the whole batch after
/// `Retry-After` (429, 503), send it faster or in smaller parts (408), or fix the request
/// (400, 401, 413, 415, 421). An event over the size limit of one event is rejected in the
/// answer (`event_too_large`) without being read.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "events",
    operation_id = "publish_events",
    params(EventsQuery),
    request_body(
        description = "The events: a JSON array, or NDJSON",
        content(
            (EventBatch = "application/json"),
            (String = "application/x-ndjson"),
        ),
    ),
    responses(
        (status = 200, description = "At least one event of the batch is in the log (accepted or duplicate); the others are answered one by one", body = BatchAnswer),
        (status = 400, description = "The body is not a JSON array, the batch is empty, or the query is malformed; nothing appended", body = ErrorBody),
        (status = 401, description = "No token or an unknown token; nothing appended", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"aqs-ingest\"`"))),
        (status = 408, description = "The body did not arrive within the body timeout (`body_timeout`); nothing appended: send it faster or in smaller batches", body = ErrorBody),
        (status = 413, description = "The body or the number of events is over the limit; nothing appended", body = ErrorBody),
        (status = 415, description = "The Content-Type is neither JSON nor NDJSON, or the body is compressed; nothing appended", body = ErrorBody),
        (status = 421, description = "The request names a host (`Host`) the service does not answer to (`misdirected_request`); nothing appended", body = ErrorBody),
        (status = 422, description = "No event of the batch is in the log: all were rejected or conflict, or the batch was atomic and had a rejected event", body = BatchAnswer),
        (status = 429, description = "Too many batches at once, of all sources or of this source, or no room for the body in the memory budget; nothing appended: retry after the delay", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 500, description = "An unexpected failure of the log; nothing reported as appended", body = ErrorBody),
        (status = 503, description = "The log is unavailable (known to be down: answered at once), did not answer in time, or the service is shutting down; nothing reported as appended: retry the same batch after the delay", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
    security(("bearer" = [])),
)]
async fn post_events(
    State(state): State<IngestState>,
    Authenticated(principal): Authenticated,
    BodyFraming(framing): BodyFraming,
    query: Result<Query<EventsQuery>, QueryRejection>,
    request: Request,
) -> Result<(StatusCode, axum::Json<BatchAnswer>), ApiError> {
    let started = Instant::now();
    let shared = &state.shared;
    let config = &shared.config;
    let Query(query) = query.map_err(|rejection| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_query",
            rejection.body_text(),
        )
    })?;
    // Known down: no use reading the body and waiting for the log's own timeout.
    if let Some(reason) = shared.log_health.known_down() {
        shared.metrics.count_refusal(Refusal::LogDown);
        debug!(
            source = principal.label(),
            reason, "batch refused: the event log is down"
        );
        return Err(ApiError::unavailable(
            &state,
            format!("the event log is unavailable ({reason}); retry the same batch later"),
        ));
    }
    let Some(_source_slot) = shared.sources.try_take(principal.label()) else {
        return Err(ApiError::busy(
            &state,
            Refusal::SourceInFlight,
            format!(
                "source {:?} has {} batches in flight already; wait for their answers",
                principal.label(),
                shared.sources.per_source()
            ),
        ));
    };

    // Room for the body before it is read: a body without a length may be the largest.
    let declared = declared_length(request.headers())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", e.to_string()))?;
    if declared.is_some_and(|length| length > config.max_body_bytes) {
        return Err(ApiError::body_too_large(&state));
    }
    let reserved = declared.unwrap_or(config.max_body_bytes);
    let Some(budget) = shared.budget.reserve(reserved, config.budget_wait()).await else {
        return Err(ApiError::busy(
            &state,
            Refusal::BodyBudget,
            "the service is reading as many bodies as its memory allows; retry later",
        ));
    };
    let body = read_body(
        request.into_body(),
        declared,
        config.max_body_bytes,
        config.body_timeout(),
    )
    .await
    .map_err(|error| match error {
        BodyError::TooLarge { .. } => ApiError::body_too_large(&state),
        BodyError::TooSlow { .. } => {
            shared.metrics.count_refusal(Refusal::BodyTimeout);
            warn!(source = principal.label(), "batch body too slow; cut");
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                error.to_string(),
            )
        }
        BodyError::Interrupted(_) | BodyError::BadLength => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", error.to_string())
        }
    })?;
    let body_bytes = body.len();

    // Cutting, then judging: CPU work, on the blocking pool. Once the events are counted,
    // their answers and dead letters get room in the budget too.
    let max_events = config.max_batch_events;
    let cut = tokio::task::spawn_blocking(move || {
        spans(&body, framing, max_events).map(|spans| (body, spans))
    })
    .await
    .map_err(|e| internal("cutting the batch", &e))?;
    let (body, spans) = cut.map_err(|e| match e {
        FramingError::Malformed(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", e.to_string())
        }
        FramingError::Empty => ApiError::new(StatusCode::BAD_REQUEST, "empty_batch", e.to_string()),
        FramingError::TooManyEvents { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            e.to_string(),
        ),
    })?;
    let per_event = spans.len().saturating_mul(PER_EVENT_RESERVE_BYTES);
    let Some(event_budget) = shared
        .budget
        .reserve_more(&budget, per_event, config.budget_wait())
        .await
    else {
        return Err(ApiError::busy(
            &state,
            Refusal::BodyBudget,
            "the service is judging as many events as its memory allows; retry later",
        ));
    };
    let max_event_bytes = config.max_event_bytes;
    let decoder = shared.decoder;
    let judging = principal.clone();
    let judged = tokio::task::spawn_blocking(move || {
        let items: Vec<_> = spans.iter().map(|span| span.item(&body)).collect();
        judge_bounded(&items, &judging, decoder, max_event_bytes)
    })
    .await
    .map_err(|e| internal("judging the batch", &e))?;
    let events = judged.len();
    let oversized = judged.iter().filter(|j| is_too_large(j)).count();
    if oversized > 0 {
        shared.metrics.count_oversized(oversized as u64);
        warn!(
            source = principal.label(),
            oversized, max_event_bytes, "events over the size limit rejected unread"
        );
    }

    // Appending: wait for a slot, then hand the batch to the log on the blocking pool.
    let slot = tokio::time::timeout(
        config.queue_timeout(),
        Arc::clone(&shared.appends).acquire_owned(),
    )
    .await;
    let permit = match slot {
        Ok(Ok(permit)) => permit,
        Ok(Err(_closed)) => return Err(ApiError::shutting_down(&state)),
        Err(_) => {
            debug!(source = principal.label(), events, "no append slot in time");
            return Err(ApiError::busy(
                &state,
                Refusal::AppendSlots,
                "the event log is busy with other batches; retry later",
            ));
        }
    };
    let appending = state.clone();
    let sender = principal.clone();
    let task = tokio::task::spawn_blocking(move || {
        // The events stay in memory until the append ends, also after a timeout.
        let _budget = (budget, event_budget);
        let _permit = permit;
        let shared = &appending.shared;
        store(&*shared.log, judged, query.atomic, &sender, &shared.metrics)
    });
    let append_timeout = config.append_timeout();
    let answer = match tokio::time::timeout(append_timeout, task).await {
        Ok(Ok(Ok(answer))) => answer,
        Ok(Ok(Err(error))) => return Err(log_failure(&state, &principal, events, &error)),
        Ok(Err(join)) => {
            error!(error = %join, "appending a batch failed");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "appending the batch failed",
            ));
        }
        Err(_) => {
            warn!(
                source = principal.label(),
                events,
                timeout_ms = append_timeout.as_millis() as u64,
                "the event log did not take the batch in time"
            );
            return Err(ApiError::unavailable(
                &state,
                format!(
                    "the event log did not answer within {} ms; retry the same batch later",
                    append_timeout.as_millis()
                ),
            ));
        }
    };
    shared.metrics.count_events(&answer);
    let status = if answer.any_stored() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    info!(
        source = principal.label(),
        bytes = body_bytes,
        events,
        atomic = query.atomic,
        accepted = answer.accepted,
        duplicate = answer.duplicate,
        conflict = answer.conflict,
        rejected = answer.rejected,
        skipped = answer.skipped,
        status = status.as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "event batch answered"
    );
    Ok((status, axum::Json(answer)))
}

fn internal(what: &str, error: &tokio::task::JoinError) -> ApiError {
    error!(%error, "{what} failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("{what} failed"),
    )
}

fn log_failure(
    state: &IngestState,
    principal: &Principal,
    events: usize,
    error: &LogError,
) -> ApiError {
    if error.is_transient() {
        warn!(source = principal.label(), events, %error, "event log unavailable; batch refused");
        ApiError::unavailable(
            state,
            format!("the event log is unavailable ({error}); retry the same batch later"),
        )
    } else {
        error!(source = principal.label(), events, %error, "event log failure; batch refused");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the event log failed: {error}"),
        )
    }
}

/// The published JSON Schemas of the events.
///
/// An object from file name (`event.json`, and one `<type>.json` per event type) to the
/// JSON Schema document (draft 2020-12). `event.json` refers to the type documents by
/// their file names.
#[utoipa::path(
    get,
    path = "/v1/schema",
    tag = "schema",
    operation_id = "get_schemas",
    responses(
        (status = 200, description = "Every schema document by file name", content_type = "application/json",
            body = BTreeMap<String, serde_json::Value>),
    ),
)]
async fn get_schemas(State(state): State<IngestState>) -> Response {
    json_bytes(state.shared.schemas.clone())
}

/// One published JSON Schema document, e.g. `event.json` or `sale_closed.json`.
#[utoipa::path(
    get,
    path = "/v1/schema/{name}",
    tag = "schema",
    operation_id = "get_schema",
    params(("name" = String, Path, description = "File name of the document, e.g. `event.json`")),
    responses(
        (status = 200, description = "The schema document", content_type = "application/json", body = serde_json::Value),
        (status = 404, description = "No such document", body = ErrorBody),
    ),
)]
async fn get_schema(State(state): State<IngestState>, Path(name): Path<String>) -> Response {
    let file = if name.ends_with(".json") {
        name
    } else {
        format!("{name}.json")
    };
    match state.shared.schema_documents.get(&file) {
        Some(document) => json_bytes(document.clone()),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no schema document {file:?}; GET /v1/schema lists them"),
        )
        .into_response(),
    }
}

/// Liveness: the process serves requests.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    responses((status = 200, description = "Alive", body = Health)),
)]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".to_owned(),
        reason: None,
    })
}

/// Readiness: the event log is reachable and the service is not shutting down.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready to take events", body = Health),
        (status = 503, description = "Not ready: the log is unreachable, or shutting down", body = Health),
    ),
)]
async fn readyz(State(state): State<IngestState>) -> (StatusCode, axum::Json<Health>) {
    match state.readiness().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(Health {
                status: "ready".to_owned(),
                reason: None,
            }),
        ),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(Health {
                status: "not_ready".to_owned(),
                reason: Some(reason),
            }),
        ),
    }
}

/// Metrics in the Prometheus text format.
///
/// `aqs_ingest_requests_total{status}`, `aqs_ingest_events_total{outcome}`,
/// `aqs_ingest_append_seconds` (histogram), `aqs_ingest_in_flight_requests`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4", body = String),
    ),
)]
async fn metrics(State(state): State<IngestState>) -> Response {
    let mut metrics = Exposition::new();
    state.write_metrics(&mut metrics);
    let sources = state
        .shared
        .metrics_sources
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let text = if sources.is_empty() {
        metrics.into_text()
    } else {
        // They read their own stores: off the async workers.
        let rendered = tokio::task::spawn_blocking(move || {
            for source in sources {
                source.render(&mut metrics);
            }
            metrics.into_text()
        })
        .await;
        match rendered {
            Ok(text) => text,
            // The sources' part failed; the server's own part is still worth answering.
            Err(_) => state.render_metrics(),
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(aqs_http::exposition::CONTENT_TYPE),
        )],
        text,
    )
        .into_response()
}
