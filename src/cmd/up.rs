//! `aqs up`: ingest, projector, the KPI job on a schedule and the dashboard, in one process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use aqs_dashboard::auth::users::{NewUser, UsersFile, random_password};
use aqs_dashboard::{DashboardConfig, DashboardState, Thresholds};
use aqs_eventlog::EventLog;
use aqs_eventlog::kafka::KafkaConfig;
use aqs_http::{AllowedHosts, ConnectionStats, HostCheckLayer};
use aqs_ingest::IngestConfig;
use aqs_ingest::auth::{Auth, Tokens};
use aqs_ingest::dedup::DedupConfig;
use aqs_ingest::readiness::Readiness;
use aqs_ingest::server::{serve, shutdown_signal};
use aqs_projector::checkpoint::CheckpointStore;
use aqs_projector::metrics::ProjectorMetrics;
use aqs_projector::runner::RunnerSettings;
use aqs_schemas::generator::{Rng, demo_config, generate};
use aqs_schemas::{BusinessClock, Decoder, Event};
use chrono::{Datelike, Duration as Days};

use aqs_dashboard::{PipelineHealth, PipelineProblem};
use aqs_projector::health::rfc3339;
use aqs_warehouse::ClickHouseConfig;

use super::analytics::{KpiArgs, compute_kpis_into};
use super::common::{LogWatchArgs, SinkArgs, StoreArgs};
use super::outlets::compute_outlets_into;
use crate::backends::{
    Layout, Start, kpi_source, ledgers_path, log_to_read, open_kpi_sinks, open_ledger_source,
    open_ledger_stores, open_outlet_sinks, open_outlet_source,
};

#[derive(Debug, clap::Args)]
#[command(mut_arg("since", |arg| arg.help(
    "Earliest date whose periods each KPI run recomputes, on or before the as-of date \
     (today unless --as-of is set); refused at start otherwise. Default: the Monday seven \
     weeks before the as-of week (the dashboard's eight-week trend), or the first day of \
     the as-of month if that is earlier"
)))]
pub struct UpArgs {
    #[command(flatten)]
    ingest: IngestConfig,
    #[command(flatten)]
    dedup: DedupConfig,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    kafka: KafkaConfig,
    #[command(flatten)]
    kpi: KpiArgs,
    #[command(flatten)]
    outlets: super::outlets::OutletArgs,
    #[command(flatten)]
    supervisors: super::supervisors::SupervisorArgs,
    /// ClickHouse, when configured, receives the ledgers and the KPIs too.
    #[command(flatten)]
    clickhouse: ClickHouseConfig,
    /// The web dashboard: address, sign-in, sessions, audit.
    #[command(flatten)]
    dashboard: DashboardConfig,
    #[command(flatten)]
    sink: SinkArgs,
    #[command(flatten)]
    watch: LogWatchArgs,
    /// Seconds between two runs of the KPI job.
    #[arg(long, env = "AQS_ANALYTICS_EVERY", default_value_t = 60)]
    analytics_every: u64,
    /// Load a generated region (last month and this month to date) into an empty log and keep
    /// live events coming.
    #[arg(long)]
    demo: bool,
    /// Agents of the demo region (teams of 10, 7 teams a branch).
    #[arg(long, default_value_t = 200)]
    demo_agents: u32,
    /// Live events per second in demo mode.
    #[arg(long, default_value_t = 3)]
    demo_events_per_second: u32,
    /// A working-day calendar file ({"holidays": [...], "working_days": [...]}) imported into
    /// the event log at start as `calendar_day` events (as `aqs calendar import` does); the
    /// KPI job and the dashboard read the calendar the ledger folds from them.
    #[arg(long, env = "AQS_CALENDAR", value_name = "FILE")]
    calendar: Option<PathBuf>,
    #[command(flatten)]
    declaration: super::calendar::Declaration,
    /// Morning and weekly digests and alerts to webhooks.
    #[command(flatten)]
    notify: aqs_notify::NotifyConfig,
}

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let clock = args.store.clock()?;
    // A setting every KPI run would refuse is refused now, not at every run.
    args.kpi
        .params(clock.today())
        .context("the KPI job's settings")?;
    args.outlets
        .check(&args.kpi, clock.today())
        .context("the outlet table's settings")?;
    args.supervisors
        .check(&args.kpi, clock.today())
        .context("the supervisor norms")?;
    args.ingest.validate()?;
    let demo_token =
        if args.demo && args.ingest.tokens_file.is_none() && !args.ingest.insecure_no_auth {
            Some(demo_tokens(&args.store)?)
        } else {
            None
        };
    let auth = match &demo_token {
        Some(token) => Auth::Tokens(Tokens::from_plain([("demo", token.as_str())])?),
        None => Auth::from_config(&args.ingest)?,
    };
    let opened = super::ingest::open_log(&args.ingest, &args.dedup, &args.store, &args.kafka)?;
    let log = Arc::clone(&opened.log);
    if args.demo {
        load_demo_region(&*log, &args.store, args.demo_agents, clock)?;
        demo_users(&args.dashboard, &args.store)?;
    }
    if let Some(path) = &args.calendar {
        let tally = super::calendar::import_calendar(&*log, path, &args.declaration)?;
        anyhow::ensure!(
            tally.conflict == 0,
            "{}: {} dates conflict with calendar events already in the log (listed above)",
            path.display(),
            tally.conflict
        );
    }
    let dashboard_auth = super::dashboard::auth(&args.dashboard, &args.store)?;

    let shutdown = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    let projector_metrics = Arc::new(ProjectorMetrics::default());
    workers.push(spawn_projector(
        &args,
        clock,
        Arc::clone(&shutdown),
        Arc::clone(&projector_metrics),
    )?);
    workers.push(spawn_analytics(&args, clock, Arc::clone(&shutdown)));
    let notify_metrics = Arc::new(aqs_notify::NotifyMetrics::default());
    let runs = super::digest::KpiRuns {
        store: args.store.clone(),
        clickhouse: args.clickhouse.clone(),
        kpi: args.kpi.clone(),
    };
    workers.extend(super::digest::spawn_notifier(
        &args.notify,
        runs,
        Arc::clone(&notify_metrics),
        Arc::clone(&shutdown),
    )?);
    if args.demo {
        workers.push(spawn_trickle(
            Arc::clone(&log),
            ledgers_path(&args.store)?,
            args.demo_events_per_second,
            Arc::clone(&shutdown),
        ));
    }

    let pipeline = Arc::new(ProjectorPipeline(Arc::clone(&projector_metrics)));
    let dashboard_connections = Arc::new(ConnectionStats::default());
    let metrics_route = {
        let dashboard_connections = Arc::clone(&dashboard_connections);
        aqs_http::operations::metrics_router(move || {
            let mut metrics = projector_metrics.render();
            metrics.push_str(&notify_metrics.render());
            let mut connections = aqs_http::Exposition::new();
            dashboard_connections.render("dashboard", &mut connections);
            metrics.push_str(connections.text());
            metrics
        })
    };
    let mut dashboard_state = DashboardState::new(
        kpi_source(Layout::AllInOne, &args.store, &args.clickhouse),
        Thresholds {
            at_risk: args.kpi.at_risk_threshold,
            will: args.kpi.will_threshold,
            skill_ratio: args.kpi.skill_ratio,
        },
        dashboard_auth,
    )
    .with_pipeline(Arc::clone(&pipeline) as Arc<dyn PipelineHealth>);
    // Lineage reads the log back (docs/design.md, note 46): the embedded log or Kafka.
    if let Some(explainer) =
        crate::backends::explainer(Layout::AllInOne, &args.store, &args.kafka, &args.clickhouse)?
    {
        dashboard_state = dashboard_state.with_explainer(Arc::new(explainer));
    }
    let dashboard = aqs_dashboard::router(dashboard_state)
        .merge(metrics_route)
        .layer(HostCheckLayer::new(
            AllowedHosts::new(&args.dashboard.allowed_hosts)?,
            "AQS_DASHBOARD_ALLOWED_HOSTS",
        ));
    // Ready only while the events accepted also reach the ledgers (the projector with every
    // one of its stores); batches are refused only while the log itself is down.
    let state = opened
        .serve_with(auth, args.ingest.clone())
        .with_downstream_readiness(pipeline as Arc<dyn Readiness>);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("aqs-up")
        .build()
        .context("starting the async runtime")?;
    let ingest_listen = args.ingest.listen;
    let dashboard_listen = args.dashboard.listen;
    let result = runtime.block_on(async {
        let ingest_listener = tokio::net::TcpListener::bind(ingest_listen)
            .await
            .with_context(|| format!("listening on {ingest_listen}"))?;
        let dashboard_listener = tokio::net::TcpListener::bind(dashboard_listen)
            .await
            .with_context(|| format!("listening on {dashboard_listen}"))?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        eprintln!(
            "aqs up: dashboard http://{}/  ingest http://{}/v1/events{}",
            dashboard_listener.local_addr()?,
            ingest_listener.local_addr()?,
            demo_token
                .as_ref()
                .map(|t| format!(" (source \"demo\", token {t})"))
                .unwrap_or_default()
        );
        let mut ingest_stop = stopped.clone();
        let ingest = tokio::spawn(serve(ingest_listener, state, async move {
            let _ = ingest_stop.wait_for(|s| *s).await;
        }));
        let mut dashboard_stop = stopped.clone();
        let dashboard_config = args.dashboard.clone();
        let dashboard = tokio::spawn(async move {
            super::dashboard::serve(
                dashboard_listener,
                dashboard,
                &dashboard_config,
                dashboard_connections,
                async move {
                    let _ = dashboard_stop.wait_for(|s| *s).await;
                },
            )
            .await
        });
        shutdown_signal().await;
        eprintln!("aqs up: stopping");
        let _ = stop.send(true);
        ingest
            .await
            .context("ingest task")?
            .context("ingest server")?;
        dashboard
            .await
            .context("dashboard task")?
            .context("dashboard server")?;
        anyhow::Ok(())
    });
    shutdown.store(true, Ordering::SeqCst);
    for worker in workers {
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("aqs up: {error:#}"),
            Err(_) => eprintln!("aqs up: a worker panicked"),
        }
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

/// A random token for the demo's `demo` source, kept in the data folder across restarts,
/// readable by its owner only (a file left readable by others is made so).
fn demo_tokens(store: &StoreArgs) -> anyhow::Result<String> {
    let path = store.path("demo-token.txt")?;
    if let Ok(token) = std::fs::read_to_string(&path) {
        owner_only(&path)?;
        return Ok(token.trim().to_owned());
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let mut rng = Rng::new(seed);
    let token = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, token.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

/// One demo user per role, made once with random passwords that are printed then (only
/// their Argon2 hashes are kept): headquarters (all), the first branch's manager, the first
/// team's supervisor, an analyst.
fn demo_users(config: &DashboardConfig, store: &StoreArgs) -> anyhow::Result<()> {
    let file = UsersFile::new(config.users_file(&store.data_dir));
    let existing = file.load()?;
    let wanted = [
        ("demo-hq", "headquarters", None),
        ("demo-branch", "branch_manager", Some("B001")),
        ("demo-supervisor", "supervisor", Some("T0001")),
        ("demo-analyst", "analyst", None),
    ];
    let mut lines = Vec::new();
    for (name, role, scope) in wanted {
        if existing.iter().any(|u| u.name == name) {
            continue;
        }
        let password = random_password();
        file.add(NewUser {
            name,
            password: &password,
            role,
            scope,
            agent_names: false,
        })?;
        lines.push(format!(
            "  {name:<16} {password}  ({role}{})",
            scope.map(|s| format!(" {s}")).unwrap_or_default()
        ));
    }
    if lines.is_empty() {
        eprintln!(
            "aqs up: demo users demo-hq, demo-branch, demo-supervisor, demo-analyst (passwords \
             were printed when they were made; `aqs user passwd NAME` sets a new one)"
        );
    } else {
        eprintln!("aqs up: demo users for the dashboard (name, password):");
        for line in lines {
            eprintln!("{line}");
        }
    }
    Ok(())
}

/// Makes `path` readable and writable by its owner only.
fn owner_only(path: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", path.display()))?;
            tracing::warn!(path = %path.display(), "demo token file was readable by others; now owner only");
        }
    }
    Ok(())
}

/// Loads a generated region, from the first day of last month to yesterday, once (a marker in
/// the data folder remembers it): last month's final figures are there to look back at.
fn load_demo_region(
    log: &dyn EventLog,
    store: &StoreArgs,
    agents: u32,
    clock: BusinessClock,
) -> anyhow::Result<()> {
    let marker = store.path("demo-loaded")?;
    if marker.exists() {
        return Ok(());
    }
    let today = clock.today();
    // From the first day of the quarter before this one (the months this quarter's outlet
    // grades rest on) through yesterday; today belongs to the live trickle.
    let config = demo_config(7, agents, today);
    let (start, days) = (config.start, config.days);
    let mut bytes = Vec::new();
    generate(&config, &mut bytes).context("generating the demo region")?;
    let mut batch: Vec<Event> = Vec::with_capacity(2_000);
    let mut appended = 0;
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        batch.push(
            Decoder::standard()
                .decode(line)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        if batch.len() == 2_000 {
            appended += append_all(log, &mut batch)?;
        }
    }
    appended += append_all(log, &mut batch)?;
    std::fs::write(&marker, today.to_string())?;
    eprintln!(
        "aqs up: demo region loaded: {agents} agents, {start} to {}, {appended} events",
        start + Days::days(i64::from(days) - 1)
    );
    Ok(())
}

fn append_all(log: &dyn EventLog, batch: &mut Vec<Event>) -> anyhow::Result<usize> {
    let count = batch.len();
    if count > 0 {
        log.append(batch).context("appending the demo events")?;
        batch.clear();
    }
    Ok(count)
}

type Worker = std::thread::JoinHandle<anyhow::Result<()>>;

fn spawn_projector(
    args: &UpArgs,
    clock: BusinessClock,
    shutdown: Arc<AtomicBool>,
    metrics: Arc<ProjectorMetrics>,
) -> anyhow::Result<Worker> {
    let mut store = CheckpointStore::open(&args.store.data()?.checkpoints(None))
        .context("opening the checkpoint store")?;
    // The embedded ledger store always: the dashboard and the KPI job read it. ClickHouse,
    // when configured, beside it with a writer of its own: its outage holds nothing back.
    let stores = open_ledger_stores(
        Layout::AllInOne,
        Start::Resume,
        &args.store,
        &args.clickhouse,
        &args.sink,
        &mut store,
    )?;
    let settings = RunnerSettings {
        clock,
        partitions: args.kafka.events_partitions,
        stuck_transaction_after: args.watch.stuck_transaction_after(),
        ..RunnerSettings::default()
    };
    let log = log_to_read(&args.store, &args.kafka)?;
    Ok(std::thread::Builder::new()
        .name("projector".into())
        .spawn(move || {
            let projected = log.open().and_then(|reader| {
                super::projector::project(
                    reader,
                    store,
                    stores,
                    settings,
                    &shutdown,
                    Arc::clone(&metrics),
                )
            });
            if let Err(error) = &projected {
                // Readiness and the dashboard say so from now on.
                metrics.health.set_stopped(format!("{error:#}"));
                tracing::error!(error = %format!("{error:#}"), "the projector stopped");
            }
            projected.map(drop)
        })?)
}

/// The projector of `aqs up`, as readiness and the dashboard see it.
struct ProjectorPipeline(Arc<ProjectorMetrics>);

impl Readiness for ProjectorPipeline {
    fn check(&self) -> Result<(), String> {
        self.0.health.check()
    }
}

impl PipelineHealth for ProjectorPipeline {
    fn problems(&self) -> Vec<PipelineProblem> {
        let health = &self.0.health;
        let mut problems = Vec::new();
        if let Some(reason) = health.stopped() {
            problems.push(PipelineProblem {
                component: "projector".into(),
                since: None,
                reason: format!("stopped: {reason}"),
                stale: true,
            });
        }
        if let Some(reason) = health.held_back() {
            problems.push(PipelineProblem {
                component: "projector".into(),
                since: None,
                reason: format!("reading paused: {reason}"),
                stale: true,
            });
        }
        for reason in health
            .stuck_transactions()
            .into_iter()
            .chain(health.read_stalls())
        {
            problems.push(PipelineProblem {
                component: "event log".into(),
                since: None,
                reason,
                stale: true,
            });
        }
        for store in health.stores() {
            let status = store.status();
            if status.up {
                continue;
            }
            problems.push(PipelineProblem {
                component: status.store.to_owned(),
                since: status.down_since.map(rfc3339),
                reason: format!(
                    "{}; {} rows wait",
                    status.last_error.as_deref().unwrap_or("no answer"),
                    status.pending_rows
                ),
                // The dashboard reads the embedded store.
                stale: status.store == "sqlite",
            });
        }
        problems
    }
}

fn spawn_analytics(args: &UpArgs, clock: BusinessClock, shutdown: Arc<AtomicBool>) -> Worker {
    let kpi = args.kpi.clone();
    let outlets = args.outlets.clone();
    let supervisors = args.supervisors.clone();
    let every = Duration::from_secs(args.analytics_every.max(1));
    let store = args.store.clone();
    let clickhouse = args.clickhouse.clone();
    std::thread::spawn(move || {
        let mut next = Instant::now() + Duration::from_secs(2);
        while !shutdown.load(Ordering::SeqCst) {
            if Instant::now() < next {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            next = Instant::now() + every;
            let today = clock.today();
            let mut params = kpi.params(today)?;
            if kpi.since.is_none() {
                // Enough history for the dashboard's eight-week trend.
                let week_start = params.as_of
                    - Days::days(i64::from(params.as_of.weekday().num_days_from_monday()));
                params.since = (week_start - Days::weeks(7))
                    .min(params.as_of.with_day(1).expect("day 1 exists"));
            }
            // The KPI files of the data folder, and with ClickHouse configured its table
            // too, for Grafana and analysts (left out of a run while it does not answer).
            let result =
                open_ledger_source(Layout::AllInOne, &store, &clickhouse).and_then(|source| {
                    let mut sinks =
                        open_kpi_sinks(Layout::AllInOne, &store, &clickhouse, None, params.as_of)?;
                    compute_kpis_into(&*source, &params, &mut sinks)
                });
            if let Err(error) = result {
                tracing::warn!(error = %format!("{error:#}"), "KPI run failed; retrying at the next tick");
            }
            // The outlet table after the KPIs, whatever became of them: a failure of one
            // holds the other back no longer than this tick.
            let result = outlets.params(&params).and_then(|outlet_params| {
                let source = open_outlet_source(Layout::AllInOne, &store, &clickhouse)?;
                let mut sinks =
                    open_outlet_sinks(Layout::AllInOne, &store, &clickhouse, None, params.as_of)?;
                compute_outlets_into(&*source, &outlet_params, &mut sinks)
            });
            if let Err(error) = result {
                tracing::warn!(error = %format!("{error:#}"), "outlet table run failed; retrying at the next tick");
            }
            super::supervisors::run_tick(&supervisors, &params, &store, &clickhouse);
        }
        Ok(())
    })
}

/// Live activity for the demo: visits, consultations and a few sales at the current time,
/// by agents on their assigned outlets.
fn spawn_trickle(
    log: Arc<dyn EventLog>,
    ledgers: PathBuf,
    per_second: u32,
    shutdown: Arc<AtomicBool>,
) -> Worker {
    std::thread::spawn(move || {
        let mut rng = Rng::new(std::process::id().into());
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut sequence = 0_u64;
        while !shutdown.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_secs(1));
            if pairs.is_empty() {
                pairs = assigned_pairs(&ledgers).unwrap_or_default();
                continue;
            }
            let now = chrono::Utc::now()
                .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("offset"));
            let mut events = Vec::new();
            for _ in 0..per_second {
                sequence += 1;
                let (agent, outlet) = rng.pick(&pairs).clone();
                let roll = rng.unit();
                let payload = if roll < 0.6 {
                    serde_json::json!({"type": "outlet_visit", "payload": {"outlet_id": outlet, "purpose": "promotion"}})
                } else if roll < 0.9 {
                    let consulted = rng.between(1, 4);
                    serde_json::json!({"type": "consultation", "payload": {"outlet_id": outlet, "customers_consulted": consulted, "customers_interested": rng.between(0, consulted)}})
                } else {
                    let premium = rng.between(50, 800) * 100;
                    serde_json::json!({"type": "sale_closed", "payload": {"outlet_id": outlet, "policy_id": format!("PL{}{sequence}", now.timestamp()), "product_code": "ZX-WL-SP", "premium": premium.to_string(), "payment_mode": "single"}})
                };
                let mut event = serde_json::json!({
                    "event_id": format!("live-{}-{sequence}", now.timestamp_millis()),
                    "schema_version": 1,
                    "occurred_at": now.to_rfc3339(),
                    "source": "demo",
                    "agent_id": agent,
                });
                if let (Some(target), Some(extra)) = (event.as_object_mut(), payload.as_object()) {
                    target.extend(extra.clone());
                }
                let bytes = serde_json::to_vec(&event)?;
                events.push(
                    Decoder::standard()
                        .decode(&bytes)
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                );
            }
            if let Err(error) = log.append(&events) {
                tracing::warn!(%error, "live demo events not appended");
            }
        }
        Ok(())
    })
}

/// The (agent, outlet) assignments still open, from the embedded ledger store.
fn assigned_pairs(ledgers: &std::path::Path) -> rusqlite::Result<Vec<(String, String)>> {
    use aqs_tables::ledgers::{AssignmentRow, sqlite};
    let connection = sqlite::open_read_only(ledgers)?;
    Ok(sqlite::live_rows::<AssignmentRow>(&connection)?
        .into_iter()
        .filter(|row| row.valid_to.is_none())
        .map(|row| (row.agent_id, row.outlet_id))
        .collect())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn the_demo_token_and_the_data_folder_are_for_their_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StoreArgs {
            data_dir: dir.path().join("aqs-data"),
            time_zone: "Asia/Shanghai".to_owned(),
        };
        let token = demo_tokens(&store).expect("token");
        assert_eq!(token.len(), 32);
        let file = store.data_dir.join("demo-token.txt");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&store.data_dir), 0o700);

        // A token file left readable by others (by an earlier version) is restricted.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(demo_tokens(&store).expect("same token"), token);
        assert_eq!(mode(&file), 0o600);
    }
}
