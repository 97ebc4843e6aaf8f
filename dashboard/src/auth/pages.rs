//! The sign-in page, the password form's target and sign-out.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_TYPE, HOST, ORIGIN, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::audit::{Action, Record};
use super::session::{Method, random_token, same_token};
use super::{Auth, ClientAddress, now};
use crate::DashboardState;

const TEMPLATE: &str = include_str!("login.html");

/// Where to go after sign-in: a path of this site only (no scheme, no `//host`, no
/// backslash tricks, printable ASCII), else the start page.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                // Printable ASCII only: anything else cannot go into a Location header.
                && path.chars().all(|c| c.is_ascii_graphic())
                && !path.starts_with("/login")
                && !path.starts_with("/auth/") =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The sign-in page's address for a request of `path` that needs a session.
pub(super) fn login_location(path: &str, expired: bool) -> String {
    let mut target = url::form_urlencoded::Serializer::new(String::new());
    if path != "/" {
        target.append_pair("next", path);
    }
    if expired {
        target.append_pair("message", "expired");
    }
    let query = target.finish();
    if query.is_empty() {
        "/login".to_owned()
    } else {
        format!("/login?{query}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A message on the page, in both languages (the page has no script to switch).
fn message_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "failed" => "用户名或密码不正确。 Wrong user name or password.",
        "limited" => "尝试次数过多，请稍后再试。 Too many failed attempts: try again later.",
        "expired" => "会话已过期，请重新登录。 Your session expired: sign in again.",
        "signed_out" => "已安全退出。 You are signed out.",
        "csrf" => "表单已失效，请重新提交。 The form expired: please submit it again.",
        "sso_failed" => "单点登录未成功。 Single sign-on did not succeed.",
        "sso_no_role" => {
            "您的账号未分配本系统的角色或范围。 Your account has no role or scope in aqs."
        }
        "sso_unavailable" => "单点登录服务暂不可用。 Single sign-on is unavailable right now.",
        _ => return None,
    })
}

/// The form token of a sign-in page: the one this browser already holds when it has one (a
/// second page, another tab or a stray request for `/favicon.ico` sent to sign-in, must not
/// invalidate the form on screen), else a new one.
fn form_token(auth: &Auth, headers: &HeaderMap) -> String {
    auth.codec
        .read_login(headers)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(random_token)
}

fn page(
    auth: &Auth,
    headers: &HeaderMap,
    next: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let token = form_token(auth, headers);
    let sso = if auth.sso_enabled() {
        let href = format!(
            "/auth/sso?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish()
        );
        format!(
            r#"<a class="btn sso" id="sso" href="{}">使用单点登录 · Sign in with SSO</a><div class="or"><span>或 · or</span></div>"#,
            escape(&href)
        )
    } else {
        String::new()
    };
    let message = message
        .and_then(|code| message_text(code).map(|text| (code, text)))
        .map(|(code, text)| {
            let class = if code == "signed_out" {
                "note"
            } else {
                "note error"
            };
            format!(
                r#"<p class="{class}" role="alert" data-message="{code}">{}</p>"#,
                escape(text)
            )
        })
        .unwrap_or_default();
    let html = TEMPLATE
        .replace("{{message}}", &message)
        .replace("{{sso}}", &sso)
        .replace("{{csrf}}", &escape(&token))
        .replace("{{next}}", &escape(next));
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.append(SET_COOKIE, auth.codec.issue_login(&token, true));
    response
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    message: Option<String>,
}

/// `GET /login`.
pub async fn login_page(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    page(
        &state.auth,
        &headers,
        &next,
        query.message.as_deref(),
        StatusCode::OK,
    )
}

/// Whether a form post comes from this site: the browser's `Origin` (sent with every POST
/// by current browsers) must be the public URL's or the request's own host, and
/// `Sec-Fetch-Site` must not say cross-site. The token check follows either way.
pub(crate) fn same_origin(auth: &Auth, headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "cross-site")
    {
        return false;
    }
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if origin == auth.public_url {
        return true;
    }
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let scheme = if auth.codec.secure() { "https" } else { "http" };
    origin == format!("{scheme}://{host}")
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// `POST /auth/login`: the password form.
pub async fn login(
    State(state): State<DashboardState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let auth = &state.auth;
    let next = safe_next(form.next.as_deref());
    let user = form.user.trim().to_owned();
    let record = |action, reason| {
        let mut r = Record::new(action, &user, Method::Password.as_str(), &client);
        if let Some(reason) = reason {
            r = r.reason(reason);
        }
        r
    };
    let token_ok = auth
        .codec
        .read_login(&headers)
        .is_some_and(|expected| same_token(&form.csrf, &expected));
    if !token_ok || !same_origin(auth, &headers) {
        auth.audit
            .record(&record(Action::SignInRefused, Some("csrf")));
        return page(auth, &headers, &next, Some("csrf"), StatusCode::FORBIDDEN);
    }
    let now = now();
    let user_key = format!("user:{}", user.to_lowercase());
    let address_key = format!("address:{client}");
    let blocked = auth
        .per_user
        .blocked_for(&user_key, now)
        .max(auth.per_address.blocked_for(&address_key, now));
    if let Some(seconds) = blocked {
        auth.audit
            .record(&record(Action::SignInRefused, Some("rate_limited")));
        let mut response = page(
            auth,
            &headers,
            &next,
            Some("limited"),
            StatusCode::TOO_MANY_REQUESTS,
        );
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1) as u64));
        return response;
    }
    let verified = {
        let state = state.clone();
        let (name, password) = (user.clone(), form.password.clone());
        tokio::task::spawn_blocking(move || state.auth.users.verify(&name, &password))
            .await
            .ok()
            .flatten()
    };
    let Some(access) = verified.and_then(|u| u.access().ok()) else {
        auth.per_user.record_failure(&user_key, now);
        auth.per_address.record_failure(&address_key, now);
        auth.audit.record(&record(
            Action::SignInFailed,
            Some("wrong_user_or_password"),
        ));
        return page(
            auth,
            &headers,
            &next,
            Some("failed"),
            StatusCode::UNAUTHORIZED,
        );
    };
    auth.per_user.forget(&user_key);
    let (session, cookie) = auth.start_session(&user, Method::Password, access, now);
    auth.audit.record(
        &Record::new(Action::SignIn, &user, Method::Password.as_str(), &client)
            .access(&session.access)
            .session(&session.id),
    );
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().append(SET_COOKIE, cookie);
    response
        .headers_mut()
        .append(SET_COOKIE, auth.codec.clear_login());
    response
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /auth/logout`: ends the session here and on every replica (revocation list).
pub async fn logout(
    State(state): State<DashboardState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let auth = &state.auth;
    let now = now();
    let Ok((session, access)) = auth.authenticate(&headers, now) else {
        let mut response = Redirect::to("/login").into_response();
        response
            .headers_mut()
            .append(SET_COOKIE, auth.codec.clear());
        return response;
    };
    if !same_token(&form.csrf, &session.csrf) || !same_origin(auth, &headers) {
        auth.audit.record(
            &Record::new(
                Action::SignInRefused,
                &session.user,
                session.method.as_str(),
                &client,
            )
            .session(&session.id)
            .reason("sign_out_without_csrf_token"),
        );
        return (
            StatusCode::FORBIDDEN,
            "sign-out refused: the form's token is missing or wrong",
        )
            .into_response();
    }
    if let Err(error) = auth
        .revocations
        .revoke_session(&session.id, session.issued_at + auth.max_seconds)
    {
        tracing::error!(%error, session = %session.id, "sign-out not recorded for other replicas");
    }
    auth.audit.record(
        &Record::new(
            Action::SignOut,
            &session.user,
            session.method.as_str(),
            &client,
        )
        .access(&access)
        .session(&session.id),
    );
    let mut response = Redirect::to("/login?message=signed_out").into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, auth.codec.clear());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/#scope=team&id=T1")), "/#scope=team&id=T1");
        assert_eq!(safe_next(Some("/api/meta")), "/api/meta");
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "/login?next=x",
            "/auth/logout",
            "/a\nb",
            // Not printable ASCII: would not fit a Location header.
            "/团队",
            "/a b",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn the_login_location_keeps_the_path_asked_for() {
        assert_eq!(login_location("/", false), "/login");
        assert_eq!(
            login_location("/app.js", true),
            "/login?next=%2Fapp.js&message=expired"
        );
    }
}
