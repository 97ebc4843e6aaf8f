//! Sign-in for the dashboard and its API: local users (Argon2id), single sign-on with
//! OpenID Connect, sessions in encrypted cookies, CSRF tokens, rate-limited passwords,
//! security headers and the audit log.
//!
//! Every route except the sign-in pages, `login.css`, `login.js`, `/healthz` and `/readyz` goes through
//! [`require_sign_in`], which puts the user's [`SignedIn`] into the request; handlers take
//! their [`Access`] from there and read KPIs only through
//! [`crate::scoped::ScopedSnapshot`].

pub mod audit;
pub mod headers;
pub mod limiter;
pub mod oidc;
mod pages;
pub mod revocations;
pub mod session;
pub mod users;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header::{CACHE_CONTROL, HeaderName, HeaderValue, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::DashboardState;
use crate::access::Access;
use crate::config::DashboardConfig;

use self::audit::AuditLog;
use self::limiter::{FailureLimiter, Limit};
use self::oidc::{Sso, SsoSettings};
use self::revocations::Revocations;
use self::session::{Method, Rejection, Session, SessionCodec};
use self::users::{UserDirectory, UsersFile};

pub use self::pages::safe_next;

/// Why sign-in could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("AQS_DASHBOARD_SESSION_KEY must have at least 32 characters (it has {0})")]
    ShortSessionKey(usize),
    #[error("the session key file {path}: {source}")]
    SessionKeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("AQS_DASHBOARD_PUBLIC_URL {0:?} is not an http or https URL")]
    PublicUrl(String),
    #[error("AQS_DASHBOARD_CLIENT_ADDRESS_HEADER {0:?} is not a header name")]
    ClientHeader(String),
    #[error("single sign-on: {0}")]
    Sso(#[from] oidc::SsoError),
}

/// Everything sign-in needs, resolved from [`DashboardConfig`] and the data folder.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub public_url: String,
    pub users_file: PathBuf,
    pub revocations_file: PathBuf,
    pub audit_file: PathBuf,
    pub session_key: Vec<u8>,
    pub idle_seconds: i64,
    pub max_seconds: i64,
    pub client_address_header: Option<String>,
    pub per_user: Limit,
    pub per_address: Limit,
    pub sso: Option<SsoSettings>,
}

impl AuthSettings {
    /// Resolves `config` against the data folder: default file locations there, and a
    /// generated session key kept there when none is configured.
    pub fn from_config(config: &DashboardConfig, data_dir: &Path) -> Result<Self, AuthError> {
        let session_key = match &config.session_key {
            Some(key) if key.len() < 32 => return Err(AuthError::ShortSessionKey(key.len())),
            Some(key) => key.as_bytes().to_vec(),
            None => stored_session_key(&DashboardConfig::session_key_file(data_dir))?,
        };
        let window_seconds = i64::from(config.login_failure_window_minutes.max(1)) * 60;
        let public_url = config.public_url();
        Ok(Self {
            users_file: config.users_file(data_dir),
            revocations_file: config.revocations_file(data_dir),
            audit_file: config.audit_file(data_dir),
            session_key,
            idle_seconds: i64::from(config.session_idle_minutes.max(1)) * 60,
            max_seconds: i64::from(config.session_max_hours.max(1)) * 3600,
            client_address_header: config.client_address_header.clone(),
            per_user: Limit {
                failures: config.login_failures_per_user.max(1),
                window_seconds,
            },
            per_address: Limit {
                failures: config.login_failures_per_address.max(1),
                window_seconds,
            },
            sso: SsoSettings::from_config(&config.oidc, &public_url)?,
            public_url,
        })
    }
}

/// A random session key in `path`, made on first use (owner read/write only).
fn stored_session_key(path: &Path) -> Result<Vec<u8>, AuthError> {
    let error = |source| AuthError::SessionKeyFile {
        path: path.to_path_buf(),
        source,
    };
    match fs::read_to_string(path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(text.trim().as_bytes().to_vec()),
        Ok(_) => {
            return Err(error(std::io::Error::other(
                "shorter than 32 characters; delete it to have a new one made",
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e)),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(error)?;
    }
    let key = format!("{}{}", session::random_token(), session::random_token());
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(error)?;
    file.write_all(key.as_bytes()).map_err(error)?;
    file.sync_all().map_err(error)?;
    tracing::info!(path = %path.display(), "session key made; set AQS_DASHBOARD_SESSION_KEY to share one between replicas");
    Ok(key.into_bytes())
}

/// Sign-in state shared by the handlers.
#[derive(Debug)]
pub struct Auth {
    codec: SessionCodec,
    users: UserDirectory,
    revocations: Revocations,
    audit: AuditLog,
    per_user: FailureLimiter,
    per_address: FailureLimiter,
    client_header: Option<HeaderName>,
    public_url: String,
    max_seconds: i64,
    idle_seconds: i64,
    sso: Option<Sso>,
}

impl Auth {
    pub fn new(settings: AuthSettings) -> Result<Self, AuthError> {
        let secure = match url::Url::parse(&settings.public_url) {
            Ok(url) if url.scheme() == "https" => true,
            Ok(url) if url.scheme() == "http" => false,
            _ => return Err(AuthError::PublicUrl(settings.public_url)),
        };
        let client_header = settings
            .client_address_header
            .as_deref()
            .map(|name| {
                HeaderName::try_from(name).map_err(|_| AuthError::ClientHeader(name.to_owned()))
            })
            .transpose()?;
        Ok(Self {
            codec: SessionCodec::new(
                &settings.session_key,
                secure,
                settings.idle_seconds,
                settings.max_seconds,
            ),
            users: UserDirectory::new(UsersFile::new(settings.users_file)),
            revocations: Revocations::new(settings.revocations_file),
            audit: AuditLog::new(settings.audit_file),
            per_user: FailureLimiter::new(settings.per_user),
            per_address: FailureLimiter::new(settings.per_address),
            client_header,
            max_seconds: settings.max_seconds,
            idle_seconds: settings.idle_seconds,
            sso: settings.sso.map(Sso::new),
            public_url: settings.public_url,
        })
    }

    pub fn users(&self) -> &UserDirectory {
        &self.users
    }

    pub fn audit_path(&self) -> &Path {
        self.audit.path()
    }

    pub(crate) fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Whether a state-changing request comes from this site (see [`pages::same_origin`]).
    pub(crate) fn same_origin(&self, headers: &HeaderMap) -> bool {
        pages::same_origin(self, headers)
    }

    pub fn sso_enabled(&self) -> bool {
        self.sso.is_some()
    }

    /// The session of the request with the access it grants now, or why there is none.
    fn authenticate(&self, headers: &HeaderMap, now: i64) -> Result<(Session, Access), Rejection> {
        let session = self.codec.read(headers, now)?;
        if self
            .revocations
            .is_revoked(&session.id, &session.user, session.issued_at, now)
        {
            return Err(Rejection::Unreadable);
        }
        let access = match session.method {
            // The users file decides: a removed user is out, a changed scope applies now.
            Method::Password => self
                .users
                .get(&session.user)
                .and_then(|user| user.access().ok())
                .ok_or(Rejection::Unreadable)?,
            Method::Sso => session.access.clone(),
        };
        Ok((session, access))
    }

    /// A new session for `user`, with its cookie.
    fn start_session(
        &self,
        user: &str,
        method: Method,
        access: Access,
        now: i64,
    ) -> (Session, HeaderValue) {
        let session = Session {
            id: session::random_token(),
            user: user.to_owned(),
            method,
            access,
            csrf: session::random_token(),
            issued_at: now,
            last_seen: now,
        };
        let cookie = self.codec.issue(&session);
        (session, cookie)
    }
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The signed-in user of a request (put there by [`require_sign_in`]).
#[derive(Debug, Clone)]
pub struct SignedIn {
    session: Session,
    access: Access,
}

impl SignedIn {
    pub fn access(&self) -> &Access {
        &self.access
    }

    pub fn user(&self) -> &str {
        &self.session.user
    }

    pub fn session_id(&self) -> &str {
        &self.session.id
    }

    /// `password` or `sso`.
    pub fn method(&self) -> &'static str {
        self.session.method.as_str()
    }

    /// Whether `token` is this session's CSRF token: every state-changing request (sign-out,
    /// exports) must carry it, in a form field or the `X-CSRF-Token` header.
    pub fn csrf_matches(&self, token: &str) -> bool {
        session::same_token(token, &self.session.csrf)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SignedIn>()
            .cloned()
            .ok_or_else(|| unauthorized("sign in first"))
    }
}

/// The client's address: the peer of the connection, or the last entry of the configured
/// proxy header.
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

impl FromRequestParts<DashboardState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(client_address(&state.auth, parts)))
    }
}

fn client_address(auth: &Auth, parts: &Parts) -> String {
    if let Some(header) = &auth.client_header
        && let Some(value) = parts
            .headers
            .get_all(header)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty())
    {
        return value.to_owned();
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn unauthorized(message: &str) -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({ "error": message }))).into_response()
}

/// Lets a request through with a valid session, or answers 401 (API) / redirects to the
/// sign-in page (pages). Re-issues the cookie now and then, so the idle expiry slides.
pub async fn require_sign_in(
    State(state): State<DashboardState>,
    mut request: Request,
    next: Next,
) -> Response {
    let auth = &state.auth;
    let now = now();
    let (mut session, access) = match auth.authenticate(request.headers(), now) {
        Ok(found) => found,
        Err(rejection) => {
            let path = request.uri().path();
            if path.starts_with("/api/") {
                let message = match rejection {
                    Rejection::Idle | Rejection::TooOld => "session expired: sign in again",
                    _ => "sign in first",
                };
                return unauthorized(message);
            }
            let expired = matches!(rejection, Rejection::Idle | Rejection::TooOld);
            // The query comes back too: `?lang=en` survives signing in.
            let asked = request.uri().path_and_query().map_or(path, |p| p.as_str());
            let target = pages::login_location(asked, expired);
            return Redirect::to(&target).into_response();
        }
    };
    let touch = auth.codec.needs_touch(&session, now);
    if touch {
        session.last_seen = now;
    }
    request.extensions_mut().insert(SignedIn {
        session: session.clone(),
        access,
    });
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if touch {
        headers.append(SET_COOKIE, auth.codec.issue(&session));
    }
    // Per-user answers: no shared cache may keep them.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /api/me`: who is signed in, what they may see, and the CSRF token for the page's
/// forms.
pub async fn me(State(state): State<DashboardState>, signed_in: SignedIn) -> Response {
    let access = signed_in.access();
    Json(json!({
        "user": signed_in.session.user,
        "method": signed_in.session.method.as_str(),
        "role": access.role().as_str(),
        "scope": { "level": access.scope().level(), "id": access.scope().id() },
        "home": access.home().map(|(scope, id)| json!({ "scope": scope, "id": id })),
        "agent_names": access.agent_names(),
        "csrf": signed_in.session.csrf,
        "idle_minutes": state.auth.idle_seconds / 60,
    }))
    .into_response()
}

/// The public routes of sign-in: the page, the form's target, sign-out, and SSO.
pub fn routes() -> Router<DashboardState> {
    Router::new()
        .route("/login", get(pages::login_page))
        .route("/auth/login", post(pages::login))
        .route("/auth/logout", post(pages::logout))
        .route("/auth/sso", get(oidc::start))
        .route("/auth/callback", get(oidc::callback))
}

impl Auth {
    /// Whether cookies are Secure (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.codec.secure()
    }
}
