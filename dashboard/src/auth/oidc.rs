//! Single sign-on with the organisation's OpenID Connect provider: authorization code flow
//! with PKCE (S256), state and nonce checked, ID token verified against the provider's keys
//! (the `openidconnect` crate). Role, scope and the names grant come from the ID token's
//! claims, named by configuration ([`crate::config::OidcConfig`]).

use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Redirect, Response};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::audit::{Action, Record};
use super::pages::safe_next;
use super::session::{Method, same_token};
use super::{ClientAddress, now};
use crate::DashboardState;
use crate::access::{Access, AccessError, Role};
use crate::config::OidcConfig;

/// Every claim of the ID token beyond the standard ones, kept as JSON: the role, scope and
/// names claims are named by configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProviderClaims {
    #[serde(flatten)]
    claims: Map<String, Value>,
}

impl AdditionalClaims for ProviderClaims {}

type ProviderIdTokenFields = IdTokenFields<
    ProviderClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type ProviderTokenResponse = StandardTokenResponse<ProviderIdTokenFields, CoreTokenType>;
type ProviderClient = Client<
    ProviderClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    ProviderTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why SSO is misconfigured.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("AQS_DASHBOARD_OIDC_ISSUER is set but AQS_DASHBOARD_OIDC_CLIENT_ID is not")]
    MissingClientId,
    #[error("AQS_DASHBOARD_OIDC_ISSUER {0:?} is not a URL")]
    Issuer(String),
    #[error("the redirect URL {0:?} is not valid: check AQS_DASHBOARD_PUBLIC_URL")]
    RedirectUrl(String),
    #[error("AQS_DASHBOARD_OIDC_ROLE_VALUES: {0:?} is not VALUE=ROLE with a known role")]
    RoleValues(String),
}

/// Resolved SSO settings.
#[derive(Debug, Clone)]
pub struct SsoSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_url: String,
    pub claims: ClaimNames,
}

/// Which claims say what, and how role values map to roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub user: String,
    pub role: String,
    pub scope: String,
    pub names: String,
    /// Provider value to role; empty: the values are the role names.
    pub role_values: Vec<(String, Role)>,
}

impl SsoSettings {
    /// SSO settings when an issuer is configured.
    pub fn from_config(config: &OidcConfig, public_url: &str) -> Result<Option<Self>, SsoError> {
        let Some(issuer) = config.issuer.clone().filter(|i| !i.trim().is_empty()) else {
            return Ok(None);
        };
        IssuerUrl::new(issuer.clone()).map_err(|_| SsoError::Issuer(issuer.clone()))?;
        let client_id = config.client_id.clone().ok_or(SsoError::MissingClientId)?;
        let redirect_url = format!("{public_url}/auth/callback");
        RedirectUrl::new(redirect_url.clone())
            .map_err(|_| SsoError::RedirectUrl(redirect_url.clone()))?;
        let role_values = match &config.role_values {
            None => Vec::new(),
            Some(map) => map
                .split(',')
                .map(str::trim)
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (value, role) = pair
                        .split_once('=')
                        .ok_or_else(|| SsoError::RoleValues(pair.to_owned()))?;
                    let role = Role::parse(role.trim())
                        .ok_or_else(|| SsoError::RoleValues(pair.to_owned()))?;
                    Ok((value.trim().to_owned(), role))
                })
                .collect::<Result<_, SsoError>>()?,
        };
        Ok(Some(Self {
            issuer,
            client_id,
            client_secret: config.client_secret.clone().filter(|s| !s.is_empty()),
            redirect_url,
            claims: ClaimNames {
                user: config.user_claim.clone(),
                role: config.role_claim.clone(),
                scope: config.scope_claim.clone(),
                names: config.names_claim.clone(),
                role_values,
            },
        }))
    }
}

/// Why an ID token's claims give no access.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the ID token has no claim {0:?} naming a role of aqs")]
    NoRole(String),
    #[error("the ID token's claim {claim:?} names several roles: {roles}")]
    SeveralRoles { claim: String, roles: String },
    #[error("the claim {claim:?} must be one string, not {found}")]
    NotOneString { claim: String, found: String },
    #[error(transparent)]
    Access(#[from] AccessError),
}

fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The access an ID token's claims give: exactly one known role, the scope id the role
/// needs, and the names grant.
pub fn access_from_claims(
    names: &ClaimNames,
    claims: &Map<String, Value>,
) -> Result<Access, ClaimsError> {
    let mut roles: Vec<Role> = claims
        .get(&names.role)
        .map(strings)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|value| {
            if names.role_values.is_empty() {
                Role::parse(value)
            } else {
                names
                    .role_values
                    .iter()
                    .find(|(v, _)| v == value)
                    .map(|(_, role)| *role)
            }
        })
        .collect();
    roles.sort_by_key(|r| r.as_str());
    roles.dedup();
    let role = match roles.as_slice() {
        [] => return Err(ClaimsError::NoRole(names.role.clone())),
        [role] => *role,
        several => {
            return Err(ClaimsError::SeveralRoles {
                claim: names.role.clone(),
                roles: several
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };
    let scope = match claims.get(&names.scope) {
        None | Some(Value::Null) => None,
        Some(value) => match strings(value).as_slice() {
            [] => None,
            [one] => Some(*one),
            _ => {
                return Err(ClaimsError::NotOneString {
                    claim: names.scope.clone(),
                    found: value.to_string(),
                });
            }
        },
    };
    let agent_names = match claims.get(&names.names) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        Some(Value::Array(items)) => items.iter().any(|v| v == "true" || v == &Value::Bool(true)),
        _ => false,
    };
    Ok(Access::new(role, scope, agent_names)?)
}

/// How long discovered provider metadata (endpoints and signing keys) is trusted before it
/// is fetched again, so rotated keys are picked up.
const METADATA_LIFETIME: Duration = Duration::from_secs(3600);

/// The provider, discovered on first use.
#[derive(Debug)]
pub struct Sso {
    settings: SsoSettings,
    http: openidconnect::reqwest::Client,
    client: tokio::sync::Mutex<Option<(Instant, ProviderClient)>>,
}

/// A sign-in in flight, kept in the short-lived encrypted cookie.
#[derive(Debug, Serialize, Deserialize)]
struct Flight {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
}

impl Sso {
    pub fn new(settings: SsoSettings) -> Self {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // The token endpoint must answer itself: no redirects (SSRF guard).
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            settings,
            http,
            client: tokio::sync::Mutex::new(None),
        }
    }

    async fn client(&self, fresh: bool) -> Result<ProviderClient, String> {
        let mut cached = self.client.lock().await;
        if !fresh
            && let Some((at, client)) = cached.as_ref()
            && at.elapsed() < METADATA_LIFETIME
        {
            return Ok(client.clone());
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(|e| e.to_string())?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| format!("discovery at {}: {e}", self.settings.issuer))?;
        let redirect =
            RedirectUrl::new(self.settings.redirect_url.clone()).map_err(|e| e.to_string())?;
        let client = ProviderClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect);
        *cached = Some((Instant::now(), client.clone()));
        Ok(client)
    }
}

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

fn to_login(message: &str) -> Response {
    Redirect::to(&format!("/login?message={message}")).into_response()
}

/// `GET /auth/sso`: off to the provider, with PKCE, state and nonce.
pub async fn start(
    State(state): State<DashboardState>,
    Query(query): Query<StartQuery>,
) -> Response {
    let auth = &state.auth;
    let Some(sso) = &auth.sso else {
        return to_login("sso_unavailable");
    };
    let client = match sso.client(false).await {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "single sign-on provider unreachable");
            return to_login("sso_unavailable");
        }
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    let flight = Flight {
        state: csrf.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        next: safe_next(query.next.as_deref()),
    };
    let mut response = Redirect::to(url.as_str()).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        auth.codec
            .issue_login(&serde_json::to_string(&flight).unwrap_or_default(), false),
    );
    response
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/callback`: the provider sends the browser back with a code.
pub async fn callback(
    State(state): State<DashboardState>,
    ClientAddress(client_address): ClientAddress,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let auth = &state.auth;
    let fail = |reason: &str, message: &str| {
        auth.audit.record(
            &Record::new(
                Action::SignInFailed,
                "",
                Method::Sso.as_str(),
                &client_address,
            )
            .reason(reason),
        );
        let mut response = to_login(message);
        response
            .headers_mut()
            .append(SET_COOKIE, auth.codec.clear_login());
        response
    };
    let Some(sso) = &auth.sso else {
        return to_login("sso_unavailable");
    };
    let Some(flight) = auth
        .codec
        .read_login(&headers)
        .and_then(|value| serde_json::from_str::<Flight>(&value).ok())
    else {
        return fail("no_sign_in_in_progress", "sso_failed");
    };
    if let Some(error) = &query.error {
        return fail(&format!("provider_error:{error}"), "sso_failed");
    }
    let (Some(code), Some(returned_state)) = (&query.code, &query.state) else {
        return fail("callback_without_code", "sso_failed");
    };
    if !same_token(returned_state, &flight.state) {
        return fail("state_mismatch", "sso_failed");
    }
    let client = match sso.client(false).await {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "single sign-on provider unreachable");
            return fail("provider_unreachable", "sso_unavailable");
        }
    };
    let request = match client.exchange_code(AuthorizationCode::new(code.clone())) {
        Ok(request) => request,
        Err(error) => {
            tracing::error!(%error, "the provider has no token endpoint");
            return fail("no_token_endpoint", "sso_unavailable");
        }
    };
    let tokens = match request
        .set_pkce_verifier(PkceCodeVerifier::new(flight.verifier.clone()))
        .request_async(&sso.http)
        .await
    {
        Ok(tokens) => tokens,
        Err(error) => {
            tracing::warn!(%error, "code exchange refused");
            return fail("code_exchange_failed", "sso_failed");
        }
    };
    let Some(id_token) = tokens.id_token() else {
        return fail("no_id_token", "sso_failed");
    };
    let verified = match id_token.claims(
        &client.id_token_verifier(),
        &Nonce::new(flight.nonce.clone()),
    ) {
        Ok(claims) => Ok(claims.clone()),
        Err(first) => {
            // The provider may have rotated its keys since discovery: fetch them once more.
            match sso.client(true).await {
                Ok(fresh) => id_token
                    .claims(
                        &fresh.id_token_verifier(),
                        &Nonce::new(flight.nonce.clone()),
                    )
                    .cloned()
                    .map_err(|_| first),
                Err(_) => Err(first),
            }
        }
    };
    let claims = match verified {
        Ok(claims) => claims,
        Err(error) => {
            tracing::warn!(%error, "ID token refused");
            return fail("id_token_invalid", "sso_failed");
        }
    };
    let names = &sso.settings.claims;
    let additional = &claims.additional_claims().claims;
    let user = additional
        .get(&names.user)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| match names.user.as_str() {
            "preferred_username" => claims.preferred_username().map(|u| u.to_string()),
            "email" => claims.email().map(|e| e.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| claims.subject().to_string());
    let access = match access_from_claims(names, additional) {
        Ok(access) => access,
        Err(error) => {
            let reason = format!("no_access: {error}");
            auth.audit.record(
                &Record::new(
                    Action::SignInRefused,
                    &user,
                    Method::Sso.as_str(),
                    &client_address,
                )
                .reason(&reason),
            );
            let mut response = to_login("sso_no_role");
            response
                .headers_mut()
                .append(SET_COOKIE, auth.codec.clear_login());
            return response;
        }
    };
    let (session, cookie) = auth.start_session(&user, Method::Sso, access, now());
    auth.audit.record(
        &Record::new(Action::SignIn, &user, Method::Sso.as_str(), &client_address)
            .access(&session.access)
            .session(&session.id),
    );
    let mut response = Redirect::to(&flight.next).into_response();
    response.headers_mut().append(SET_COOKIE, cookie);
    response
        .headers_mut()
        .append(SET_COOKIE, auth.codec.clear_login());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Scope;
    use serde_json::json;

    fn names(role_values: Vec<(String, Role)>) -> ClaimNames {
        ClaimNames {
            user: "preferred_username".into(),
            role: "aqs_role".into(),
            scope: "aqs_scope".into(),
            names: "aqs_agent_names".into(),
            role_values,
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("object")
    }

    #[test]
    fn claims_give_a_role_and_its_scope() {
        let access = access_from_claims(
            &names(vec![]),
            &claims(json!({"aqs_role": "supervisor", "aqs_scope": "T0003"})),
        )
        .expect("access");
        assert_eq!(access.scope(), &Scope::Team("T0003".into()));
        let hq = access_from_claims(
            &names(vec![]),
            &claims(json!({"aqs_role": ["headquarters"]})),
        )
        .expect("access");
        assert_eq!(hq.scope(), &Scope::All);
        let analyst = access_from_claims(
            &names(vec![]),
            &claims(json!({"aqs_role": "analyst", "aqs_agent_names": "true"})),
        )
        .expect("access");
        assert!(analyst.agent_names());
    }

    #[test]
    fn mapped_role_values_and_refusals() {
        let mapped = names(vec![("AQS-SUP".into(), Role::Supervisor)]);
        let access = access_from_claims(
            &mapped,
            &claims(json!({"aqs_role": ["other", "AQS-SUP"], "aqs_scope": "T1"})),
        )
        .expect("access");
        assert_eq!(access.role(), Role::Supervisor);
        // Unmapped values count for nothing once a map is configured.
        assert_eq!(
            access_from_claims(
                &mapped,
                &claims(json!({"aqs_role": "supervisor", "aqs_scope": "T1"}))
            ),
            Err(ClaimsError::NoRole("aqs_role".into()))
        );
        assert!(matches!(
            access_from_claims(
                &names(vec![]),
                &claims(json!({"aqs_role": ["supervisor", "headquarters"], "aqs_scope": "T1"}))
            ),
            Err(ClaimsError::SeveralRoles { .. })
        ));
        assert!(matches!(
            access_from_claims(&names(vec![]), &claims(json!({"aqs_role": "supervisor"}))),
            Err(ClaimsError::Access(AccessError::MissingScope { .. }))
        ));
        assert!(matches!(
            access_from_claims(
                &names(vec![]),
                &claims(json!({"aqs_role": "supervisor", "aqs_scope": ["T1", "T2"]}))
            ),
            Err(ClaimsError::NotOneString { .. })
        ));
    }
}
