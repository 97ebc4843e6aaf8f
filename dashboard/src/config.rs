//! Settings of the dashboard service: where it listens, how users sign in, how sessions
//! live, where the audit log goes. Every one is a flag and an `AQS_DASHBOARD_*` variable.

use aqs_tables::DataDir;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The dashboard's settings (`aqs dashboard`, and the dashboard inside `aqs up`).
#[derive(Debug, Clone, clap::Args)]
pub struct DashboardConfig {
    /// Address of the web dashboard. Loopback by default: put it behind a TLS proxy to
    /// serve users (see deploy/README.md).
    #[arg(
        id = "dashboard_listen",
        long = "dashboard-listen",
        env = "AQS_DASHBOARD_LISTEN",
        default_value = "127.0.0.1:8088"
    )]
    pub listen: SocketAddr,
    /// Host names the dashboard (and, in `aqs up`, its `/metrics`) answers to,
    /// comma-separated (`*.example.com`: the names under it; `*`: any), besides `localhost`
    /// and IP addresses; another `Host` is answered 421 (a defence against DNS rebinding).
    #[arg(
        id = "dashboard_allowed_hosts",
        value_name = "HOSTS",
        long = "dashboard-allowed-hosts",
        env = "AQS_DASHBOARD_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// The address users open, e.g. `https://aqs.example-bank.cn`. With `https` the session
    /// cookies are Secure (and `__Host-` prefixed); the SSO redirect goes to
    /// `<URL>/auth/callback`. Unset: `http://<listen address>`.
    #[arg(
        long = "dashboard-public-url",
        env = "AQS_DASHBOARD_PUBLIC_URL",
        value_name = "URL"
    )]
    pub public_url: Option<String>,
    /// The local users file (Argon2id hashes; `aqs user add` writes it). Unset:
    /// `dashboard-users.json` in the data folder.
    #[arg(
        long = "dashboard-users-file",
        env = "AQS_DASHBOARD_USERS_FILE",
        value_name = "FILE"
    )]
    pub users_file: Option<PathBuf>,
    /// Secret of at least 32 characters that seals the session cookies; every replica needs
    /// the same one. Changing it ends every session. Unset: a random key kept in
    /// `dashboard-session.key` in the data folder (one machine only).
    #[arg(
        long = "dashboard-session-key",
        env = "AQS_DASHBOARD_SESSION_KEY",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub session_key: Option<String>,
    /// Minutes without a request after which a session ends.
    #[arg(
        long = "dashboard-session-idle-minutes",
        env = "AQS_DASHBOARD_SESSION_IDLE_MINUTES",
        default_value_t = 30
    )]
    pub session_idle_minutes: u32,
    /// Hours after sign-in after which a session ends, in use or not.
    #[arg(
        long = "dashboard-session-max-hours",
        env = "AQS_DASHBOARD_SESSION_MAX_HOURS",
        default_value_t = 12
    )]
    pub session_max_hours: u32,
    /// Revoked sessions (sign-outs, `aqs user revoke`), JSON Lines. Replicas share it on a
    /// common volume. Unset: `dashboard-revocations.jsonl` in the data folder.
    #[arg(
        long = "dashboard-revocations-file",
        env = "AQS_DASHBOARD_REVOCATIONS_FILE",
        value_name = "FILE"
    )]
    pub revocations_file: Option<PathBuf>,
    /// The audit log (JSON Lines, append only). Unset: `dashboard-audit.jsonl` in the data
    /// folder.
    #[arg(
        long = "dashboard-audit-file",
        env = "AQS_DASHBOARD_AUDIT_FILE",
        value_name = "FILE"
    )]
    pub audit_file: Option<PathBuf>,
    /// Header that a trusted reverse proxy sets to the client's address (e.g.
    /// `X-Forwarded-For`; its last entry is taken). Unset: the peer address of the connection.
    #[arg(
        long = "dashboard-client-address-header",
        env = "AQS_DASHBOARD_CLIENT_ADDRESS_HEADER",
        value_name = "HEADER"
    )]
    pub client_address_header: Option<String>,
    /// Failed sign-ins of one user name within the window before further tries are refused.
    #[arg(
        long = "dashboard-login-failures-per-user",
        env = "AQS_DASHBOARD_LOGIN_FAILURES_PER_USER",
        default_value_t = 5
    )]
    pub login_failures_per_user: u32,
    /// Failed sign-ins from one client address within the window before further tries are
    /// refused.
    #[arg(
        long = "dashboard-login-failures-per-address",
        env = "AQS_DASHBOARD_LOGIN_FAILURES_PER_ADDRESS",
        default_value_t = 20
    )]
    pub login_failures_per_address: u32,
    /// The window of the two limits above, in minutes.
    #[arg(
        long = "dashboard-login-failure-window-minutes",
        env = "AQS_DASHBOARD_LOGIN_FAILURE_WINDOW_MINUTES",
        default_value_t = 15
    )]
    pub login_failure_window_minutes: u32,
    /// Most connections open at once. One more closes the connection that has waited longest
    /// without a request; when all are busy, it is closed after up to a second.
    #[arg(
        id = "dashboard_max_connections",
        long = "dashboard-max-connections",
        env = "AQS_DASHBOARD_MAX_CONNECTIONS",
        default_value_t = 1_024,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub max_connections: u32,
    /// Longest wait for a complete request header, in milliseconds, from the opening of a
    /// connection or from the first byte of a request; then the connection is closed.
    #[arg(
        id = "dashboard_header_timeout_ms",
        long = "dashboard-header-timeout-ms",
        env = "AQS_DASHBOARD_HEADER_TIMEOUT_MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub header_timeout_ms: u64,
    /// Longest wait for the next request on a kept-alive connection, in milliseconds; then
    /// the connection is closed.
    #[arg(
        id = "dashboard_idle_timeout_ms",
        long = "dashboard-idle-timeout-ms",
        env = "AQS_DASHBOARD_IDLE_TIMEOUT_MS",
        default_value_t = 75_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub idle_timeout_ms: u64,
    #[command(flatten)]
    pub oidc: OidcConfig,
}

/// Single sign-on with the organisation's OpenID Connect provider (authorization code flow
/// with PKCE). Off unless an issuer is set.
#[derive(Debug, Clone, clap::Args)]
pub struct OidcConfig {
    /// Issuer URL of the provider, e.g. `https://sso.example-bank.cn/realms/staff`.
    #[arg(
        long = "dashboard-oidc-issuer",
        env = "AQS_DASHBOARD_OIDC_ISSUER",
        value_name = "URL"
    )]
    pub issuer: Option<String>,
    /// Client id of the dashboard at the provider.
    #[arg(
        long = "dashboard-oidc-client-id",
        env = "AQS_DASHBOARD_OIDC_CLIENT_ID",
        value_name = "ID"
    )]
    pub client_id: Option<String>,
    /// Client secret (a confidential client; prefer the variable to the flag).
    #[arg(
        long = "dashboard-oidc-client-secret",
        env = "AQS_DASHBOARD_OIDC_CLIENT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub client_secret: Option<String>,
    /// ID-token claim that names the user in the audit log and on the page.
    #[arg(
        long = "dashboard-oidc-user-claim",
        env = "AQS_DASHBOARD_OIDC_USER_CLAIM",
        default_value = "preferred_username"
    )]
    pub user_claim: String,
    /// ID-token claim holding the role (a string or a list of strings).
    #[arg(
        long = "dashboard-oidc-role-claim",
        env = "AQS_DASHBOARD_OIDC_ROLE_CLAIM",
        default_value = "aqs_role"
    )]
    pub role_claim: String,
    /// ID-token claim holding the region, branch or team id of the role's scope.
    #[arg(
        long = "dashboard-oidc-scope-claim",
        env = "AQS_DASHBOARD_OIDC_SCOPE_CLAIM",
        default_value = "aqs_scope"
    )]
    pub scope_claim: String,
    /// ID-token claim that grants an analyst the agents' names (`true`).
    #[arg(
        long = "dashboard-oidc-names-claim",
        env = "AQS_DASHBOARD_OIDC_NAMES_CLAIM",
        default_value = "aqs_agent_names"
    )]
    pub names_claim: String,
    /// How the provider's role values map to aqs roles, e.g.
    /// `AQS-HQ=headquarters,AQS-SUP=supervisor`. Unset: the values are the role names
    /// (headquarters, branch_manager, supervisor, analyst).
    #[arg(
        long = "dashboard-oidc-role-values",
        env = "AQS_DASHBOARD_OIDC_ROLE_VALUES",
        value_name = "MAP"
    )]
    pub role_values: Option<String>,
}

impl DashboardConfig {
    /// The public URL without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url
            .as_deref()
            .map(|url| url.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    pub fn users_file(&self, data_dir: &Path) -> PathBuf {
        self.users_file
            .clone()
            .unwrap_or_else(|| DataDir::new(data_dir).dashboard_users())
    }

    pub fn revocations_file(&self, data_dir: &Path) -> PathBuf {
        self.revocations_file
            .clone()
            .unwrap_or_else(|| DataDir::new(data_dir).dashboard_revocations())
    }

    pub fn audit_file(&self, data_dir: &Path) -> PathBuf {
        self.audit_file
            .clone()
            .unwrap_or_else(|| DataDir::new(data_dir).dashboard_audit())
    }

    /// Where the generated session key is kept when none is configured.
    pub fn session_key_file(data_dir: &Path) -> PathBuf {
        DataDir::new(data_dir).dashboard_session_key()
    }
}
