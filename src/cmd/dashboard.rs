//! `aqs dashboard`: the web dashboard as a service of its own, on ClickHouse when
//! configured, on the embedded stores of the data folder otherwise.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aqs_dashboard::{Auth, AuthSettings, DashboardConfig, DashboardState, Thresholds};
use aqs_eventlog::kafka::KafkaConfig;
use aqs_http::{ConnectionLimits, ConnectionStats};
use aqs_ingest::server::shutdown_signal;
use aqs_warehouse::ClickHouseConfig;

use super::common::StoreArgs;
use crate::backends::{Layout, kpi_source};

#[derive(Debug, clap::Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    dashboard: DashboardConfig,
    #[command(flatten)]
    store: StoreArgs,
    /// With a URL, the KPI table and the organisation are read from ClickHouse.
    #[command(flatten)]
    clickhouse: ClickHouseConfig,
    /// With brokers, the events behind a figure are read from Kafka's topics (else from the
    /// data folder's embedded log, when it has one).
    #[command(flatten)]
    kafka: KafkaConfig,
    /// The KPI job's at-risk threshold, shown on the page.
    #[arg(long, env = "AQS_AT_RISK_THRESHOLD", default_value_t = 0.9)]
    at_risk_threshold: f64,
    /// The KPI job's will threshold, shown on the page (coaching quadrant).
    #[arg(long, env = "AQS_WILL_THRESHOLD", default_value_t = 0.8)]
    will_threshold: f64,
    /// The KPI job's skill ratio, shown on the page (coaching quadrant).
    #[arg(long, env = "AQS_SKILL_RATIO", default_value_t = 1.0)]
    skill_ratio: f64,
}

/// Builds the dashboard's sign-in from its settings, logging where things are.
pub fn auth(config: &DashboardConfig, store: &StoreArgs) -> anyhow::Result<Arc<Auth>> {
    let settings = AuthSettings::from_config(config, &store.data_dir)
        .context("setting up sign-in for the dashboard")?;
    let sso = settings.sso.as_ref().map(|s| s.issuer.clone());
    let auth = Auth::new(settings).context("setting up sign-in for the dashboard")?;
    let users = auth.users().users().len();
    tracing::info!(
        users_file = %auth.users().path().display(),
        users,
        sso = sso.as_deref().unwrap_or("off"),
        audit = %auth.audit_path().display(),
        secure_cookies = auth.secure_cookies(),
        "dashboard sign-in ready"
    );
    if users == 0 && sso.is_none() {
        tracing::warn!("no dashboard user and no single sign-on: add a user with `aqs user add`");
    }
    Ok(Arc::new(auth))
}

/// Serves `router` on `listener` until `shutdown`, within the dashboard's connection limits
/// (a cap, header and idle timeouts: a client that opens connections and sends nothing
/// cannot keep users out), with each request's peer address known (sign-in limits per
/// client address).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    config: &DashboardConfig,
    connections: Arc<ConnectionStats>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ConnectionLimits {
        max_connections: config.max_connections as usize,
        header_timeout: Duration::from_millis(config.header_timeout_ms),
        idle_timeout: Duration::from_millis(config.idle_timeout_ms),
    };
    aqs_http::serve(listener, router, limits, connections, shutdown).await
}

pub fn run(args: DashboardArgs) -> anyhow::Result<ExitCode> {
    let auth = auth(&args.dashboard, &args.store)?;
    let source = kpi_source(Layout::Service, &args.store, &args.clickhouse);
    let mut state = DashboardState::new(
        source,
        Thresholds {
            at_risk: args.at_risk_threshold,
            will: args.will_threshold,
            skill_ratio: args.skill_ratio,
        },
        auth,
    );
    // Lineage reads the log back (docs/design.md, note 46): Kafka when brokers are set, else
    // the data folder's embedded log when it has one.
    if let Some(explainer) =
        crate::backends::explainer(Layout::Service, &args.store, &args.kafka, &args.clickhouse)?
    {
        state = state.with_explainer(Arc::new(explainer));
    }
    let router = aqs_dashboard::router(state).layer(aqs_http::HostCheckLayer::new(
        aqs_http::AllowedHosts::new(&args.dashboard.allowed_hosts)?,
        "AQS_DASHBOARD_ALLOWED_HOSTS",
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("aqs-dashboard")
        .build()
        .context("starting the async runtime")?;
    let listen = args.dashboard.listen;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        eprintln!("aqs dashboard: http://{}/", listener.local_addr()?);
        serve(
            listener,
            router,
            &args.dashboard,
            Arc::new(ConnectionStats::default()),
            shutdown_signal(),
        )
        .await
        .context("serving the dashboard")
    })?;
    Ok(ExitCode::SUCCESS)
}
