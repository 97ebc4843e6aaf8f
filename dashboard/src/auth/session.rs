//! Sessions as encrypted cookies: the session travels with the browser, sealed with
//! AES-256-GCM under a key every replica shares (`AQS_DASHBOARD_SESSION_KEY`), so any
//! replica serves it, and a restart loses nothing. Expiry is checked on the server from the
//! times inside the seal; revocation is in [`super::revocations`].

use axum::http::HeaderMap;
use axum::http::header::{HeaderValue, SET_COOKIE};
use axum_extra::extract::cookie::{Cookie, Key, PrivateCookieJar, SameSite};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::access::Access;

/// How the user signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The local users file.
    Password,
    /// The organisation's OpenID Connect provider.
    Sso,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::Sso => "sso",
        }
    }
}

/// What the session cookie holds (encrypted and authenticated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Random id: names the session in the audit log and in revocations.
    pub id: String,
    pub user: String,
    pub method: Method,
    /// The access at sign-in; for local users the users file's current entry wins.
    pub access: Access,
    /// Token that every state-changing request must echo (synchronizer token).
    pub csrf: String,
    /// Unix seconds.
    pub issued_at: i64,
    pub last_seen: i64,
}

/// A random token of 32 bytes, URL-safe hex.
pub fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal without telling how much is equal by the time taken.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0_u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

/// Why a session cookie is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Missing,
    Unreadable,
    Idle,
    TooOld,
}

/// Cookie names, lifetimes and the key: how sessions are sealed and judged.
#[derive(Clone)]
pub struct SessionCodec {
    key: Key,
    secure: bool,
    idle_seconds: i64,
    max_seconds: i64,
}

impl std::fmt::Debug for SessionCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCodec")
            .field("secure", &self.secure)
            .field("idle_seconds", &self.idle_seconds)
            .field("max_seconds", &self.max_seconds)
            .finish_non_exhaustive()
    }
}

/// Seconds between two re-issues of a cookie that is in use (sliding idle expiry).
const TOUCH_AFTER_SECONDS: i64 = 60;

impl SessionCodec {
    /// `master` must have at least 32 bytes; the cookie key is derived from it (HKDF).
    pub fn new(master: &[u8], secure: bool, idle_seconds: i64, max_seconds: i64) -> Self {
        Self {
            key: Key::derive_from(master),
            secure,
            idle_seconds,
            max_seconds,
        }
    }

    pub fn secure(&self) -> bool {
        self.secure
    }

    /// With Secure cookies the `__Host-` prefix also pins them to this host and path `/`.
    fn name(&self, base: &str) -> String {
        if self.secure {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    pub fn session_cookie_name(&self) -> String {
        self.name("aqs_session")
    }

    pub fn login_cookie_name(&self) -> String {
        self.name("aqs_login")
    }

    fn cookie(&self, name: String, value: String, same_site: SameSite) -> Cookie<'static> {
        let mut cookie = Cookie::new(name, value);
        cookie.set_http_only(true);
        cookie.set_secure(self.secure);
        cookie.set_same_site(same_site);
        cookie.set_path("/");
        cookie
    }

    /// Reads an encrypted cookie's value.
    pub fn open(&self, headers: &HeaderMap, name: &str) -> Option<String> {
        PrivateCookieJar::from_headers(headers, self.key.clone())
            .get(name)
            .map(|c| c.value().to_owned())
    }

    /// The `Set-Cookie` value of `cookie` with its value encrypted.
    fn seal(&self, cookie: Cookie<'static>) -> HeaderValue {
        let jar = PrivateCookieJar::new(self.key.clone()).add(cookie);
        axum::response::IntoResponse::into_response(jar)
            .headers()
            .get(SET_COOKIE)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static(""))
    }

    /// The cookie that carries `session`. Lax: the page is reached by links from mail and
    /// intranet portals, and the SSO callback is a cross-site redirect; no GET changes state.
    pub fn issue(&self, session: &Session) -> HeaderValue {
        let value = serde_json::to_string(session).unwrap_or_default();
        self.seal(self.cookie(self.session_cookie_name(), value, SameSite::Lax))
    }

    /// Removes the session cookie from the browser.
    pub fn clear(&self) -> HeaderValue {
        let mut cookie = self.cookie(self.session_cookie_name(), String::new(), SameSite::Lax);
        cookie.make_removal();
        HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The session of the request, if valid at `now`.
    pub fn read(&self, headers: &HeaderMap, now: i64) -> Result<Session, Rejection> {
        let name = self.session_cookie_name();
        let present = headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(';')
                    .any(|pair| pair.trim_start().starts_with(&format!("{name}=")))
            });
        let value = self.open(headers, &name).ok_or(if present {
            Rejection::Unreadable
        } else {
            Rejection::Missing
        })?;
        let session: Session = serde_json::from_str(&value).map_err(|_| Rejection::Unreadable)?;
        if now - session.issued_at > self.max_seconds {
            return Err(Rejection::TooOld);
        }
        if now - session.last_seen > self.idle_seconds {
            return Err(Rejection::Idle);
        }
        Ok(session)
    }

    /// Whether a session seen at `now` should go out again with a new `last_seen`.
    pub fn needs_touch(&self, session: &Session, now: i64) -> bool {
        now - session.last_seen >= TOUCH_AFTER_SECONDS
    }

    /// A short-lived encrypted cookie for a sign-in in progress (login form token, or the
    /// OIDC state, nonce and PKCE verifier). Strict for the form; the SSO callback comes back
    /// from the provider by a top-level redirect, which Lax lets through.
    pub fn issue_login(&self, value: &str, same_site_strict: bool) -> HeaderValue {
        let same_site = if same_site_strict {
            SameSite::Strict
        } else {
            SameSite::Lax
        };
        let mut cookie = self.cookie(self.login_cookie_name(), value.to_owned(), same_site);
        cookie.set_max_age(time_duration(LOGIN_COOKIE_SECONDS));
        self.seal(cookie)
    }

    pub fn clear_login(&self) -> HeaderValue {
        let mut cookie = self.cookie(self.login_cookie_name(), String::new(), SameSite::Lax);
        cookie.make_removal();
        HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    pub fn read_login(&self, headers: &HeaderMap) -> Option<String> {
        self.open(headers, &self.login_cookie_name())
    }
}

/// Lifetime of a sign-in in progress.
pub const LOGIN_COOKIE_SECONDS: i64 = 600;

fn time_duration(seconds: i64) -> time::Duration {
    time::Duration::seconds(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;
    use axum::http::header::COOKIE;

    fn codec(secure: bool) -> SessionCodec {
        SessionCodec::new(&[7_u8; 48], secure, 1800, 43_200)
    }

    fn session(now: i64) -> Session {
        Session {
            id: random_token(),
            user: "li.wei.supervisor".into(),
            method: Method::Password,
            access: Access::new(Role::Supervisor, Some("T0001-NORTH"), false).expect("valid"),
            csrf: random_token(),
            issued_at: now,
            last_seen: now,
        }
    }

    /// The request header a browser would send back for a `Set-Cookie` value.
    fn request_with(set_cookie: &HeaderValue) -> HeaderMap {
        let pair = set_cookie
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .expect("pair");
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(pair).expect("header"));
        headers
    }

    #[test]
    fn a_session_round_trips_sealed_and_flagged() {
        let codec = codec(true);
        let now = 1_800_000_000;
        let original = session(now);
        let set_cookie = codec.issue(&original);
        let text = set_cookie.to_str().expect("ascii");
        assert!(text.starts_with("__Host-aqs_session="), "{text}");
        for flag in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
            assert!(text.contains(flag), "{flag} missing in {text}");
        }
        assert!(
            // Long values: two letters can occur in any ciphertext by chance.
            !text.contains("T0001-NORTH") && !text.contains("li.wei.supervisor"),
            "not encrypted: {text}"
        );
        let back = codec
            .read(&request_with(&set_cookie), now + 10)
            .expect("valid");
        assert_eq!(back, original);
    }

    #[test]
    fn idle_old_tampered_and_foreign_cookies_are_refused() {
        let codec = codec(false);
        let now = 1_800_000_000;
        let headers = request_with(&codec.issue(&session(now)));
        assert_eq!(codec.read(&headers, now + 1801), Err(Rejection::Idle));
        let mut old = session(now - 43_201);
        old.last_seen = now;
        assert_eq!(
            codec.read(&request_with(&codec.issue(&old)), now),
            Err(Rejection::TooOld)
        );
        assert_eq!(codec.read(&HeaderMap::new(), now), Err(Rejection::Missing));
        // Sealed under another key (another deployment, or before a key rotation).
        let other = SessionCodec::new(&[8_u8; 48], false, 1800, 43_200);
        assert_eq!(
            codec.read(&request_with(&other.issue(&session(now))), now),
            Err(Rejection::Unreadable)
        );
        let mut tampered = HeaderMap::new();
        tampered.insert(COOKIE, HeaderValue::from_static("aqs_session=AAAA"));
        assert_eq!(codec.read(&tampered, now), Err(Rejection::Unreadable));
    }

    #[test]
    fn tokens_compare_in_full() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 64);
    }
}
