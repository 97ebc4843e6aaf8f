//! `aqs digest`: a team's morning or weekly digest (and its branch's weekly one) for a person
//! to read, or sent to the configured webhooks; and the KPI runs the notifier of `aqs up`
//! reads ([`KpiRuns`]).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use aqs_notify::{Language, Message, NotifyConfig, Run, RunSource};
use aqs_tables::deliveries::DeliveryLog;
use aqs_warehouse::ClickHouseConfig;
use chrono::{Datelike, Duration, NaiveDate};

use super::analytics::{KpiArgs, compute_kpis_into};
use super::common::StoreArgs;
use crate::backends::{Layout, open_kpi_sinks, open_ledger_source};

#[derive(Debug, clap::Args)]
pub struct DigestArgs {
    /// The team whose digest is made.
    #[arg(long)]
    team: String,
    /// The weekly digests (the team's and its branch's) instead of the morning one; the
    /// figures' date should then be a Sunday (the week just ended).
    #[arg(long)]
    weekly: bool,
    /// Language of the digest printed.
    #[arg(long, default_value = "zh", value_parser = ["zh", "en"])]
    lang: String,
    /// Print the digest instead of sending it to the destinations.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    store: StoreArgs,
    /// The KPI job's settings; `--as-of` is the business date of the figures (yesterday's
    /// for a digest read this morning; default: yesterday in the organisation's time zone).
    #[command(flatten)]
    kpi: KpiArgs,
    #[command(flatten)]
    clickhouse: ClickHouseConfig,
    #[command(flatten)]
    notify: NotifyConfig,
}

/// The KPI run as of a date, computed afresh (to the KPI files, and ClickHouse when
/// configured) and read back with the organisation of that date.
pub struct KpiRuns {
    pub store: StoreArgs,
    pub clickhouse: ClickHouseConfig,
    pub kpi: KpiArgs,
}

impl RunSource for KpiRuns {
    fn run_as_of(&mut self, as_of: NaiveDate) -> Result<Run, String> {
        self.load(as_of).map_err(|e| format!("{e:#}"))
    }
}

impl KpiRuns {
    fn load(&self, as_of: NaiveDate) -> anyhow::Result<Run> {
        let mut params = self.kpi.params(as_of)?;
        params.as_of = as_of;
        // The month, and the whole week ended (which may start in the month before).
        let week_start = as_of - Duration::days(i64::from(as_of.weekday().num_days_from_monday()));
        params.since = as_of.with_day(1).expect("day 1").min(week_start);
        let source = open_ledger_source(Layout::AllInOne, &self.store, &self.clickhouse)?;
        let mut sinks =
            open_kpi_sinks(Layout::AllInOne, &self.store, &self.clickhouse, None, as_of)?;
        compute_kpis_into(&*source, &params, &mut sinks)?;
        let data = self.store.data()?;
        let rows = aqs_tables::kpi::rows::read_file(&data.kpi_files().file(as_of), None)
            .context("reading the KPI run")?;
        let organisation =
            aqs_tables::organisation::read_embedded(&data.ledgers(), as_of, week_start)
                .context("reading the organisation")?;
        Ok(Run {
            as_of,
            rows,
            organisation,
        })
    }
}

pub fn run(args: DigestArgs) -> anyhow::Result<ExitCode> {
    let clock = args.store.clock()?;
    let as_of = args
        .kpi
        .as_of
        .unwrap_or_else(|| clock.today() - Duration::days(1));
    let day = as_of + Duration::days(1);
    let language = if args.lang == "en" {
        Language::En
    } else {
        Language::Zh
    };
    let runs = KpiRuns {
        store: args.store.clone(),
        clickhouse: args.clickhouse.clone(),
        kpi: args.kpi.clone(),
    };
    let run = runs.load(as_of)?;
    let mut messages: Vec<Message> = Vec::new();
    if args.weekly {
        messages.extend(aqs_notify::digest::weekly_team(
            &run, &args.team, day, language,
        ));
        if let Some(branch) = run.branch_of().get(&args.team) {
            messages.extend(aqs_notify::digest::weekly_branch(
                &run, branch, day, language,
            ));
        }
    } else {
        messages.extend(aqs_notify::digest::morning(&run, &args.team, day, language));
    }
    let messages: Vec<Message> = messages
        .into_iter()
        .map(|m| m.punctuated(language))
        .collect();
    anyhow::ensure!(
        !messages.is_empty(),
        "no KPI rows of team {} as of {as_of}: is the team known then?",
        args.team
    );
    if args.dry_run {
        for message in &messages {
            println!("{}\n", message.markdown);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let path = args
        .notify
        .digest_destinations
        .clone()
        .context("sending needs AQS_DIGEST_DESTINATIONS (or --dry-run to print)")?;
    let destinations = aqs_notify::read_destinations(&path)?;
    let log = DeliveryLog::open(&args.store.data()?.deliveries())?;
    let transport = aqs_notify::HttpTransport::new().map_err(anyhow::Error::msg)?;
    let mut failed = 0;
    for destination in &destinations {
        for message in messages.iter().filter(|m| destination.wants(m)) {
            let key = message.key(&destination.name);
            if log.delivered(&key)? {
                eprintln!("digest: {key} was delivered already");
                continue;
            }
            match aqs_notify::send::post_with_retries(
                &transport,
                &destination.url,
                &destination.body(message, &key),
                args.notify.digest_retry_attempts,
                std::time::Duration::from_millis(args.notify.digest_retry_first_ms),
                |_| {},
            ) {
                Ok(attempts) => {
                    log.record(&aqs_tables::deliveries::Delivery {
                        key: key.clone(),
                        destination: destination.name.clone(),
                        kind: message.kind.as_str().to_owned(),
                        scope_id: message.scope_id.clone(),
                        period: message.period.clone(),
                        attempts,
                        sent_at: chrono::Utc::now().to_rfc3339(),
                    })?;
                    eprintln!("digest: {key} delivered");
                }
                Err((_, error)) => {
                    failed += 1;
                    eprintln!("digest: {key} not delivered: {error}");
                }
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The notifier of `aqs up`: ticks every half second on its own thread until `shutdown`.
pub fn spawn_notifier(
    config: &NotifyConfig,
    runs: KpiRuns,
    metrics: Arc<aqs_notify::NotifyMetrics>,
    shutdown: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<Option<std::thread::JoinHandle<anyhow::Result<()>>>> {
    let Some(path) = config.digest_destinations.clone() else {
        return Ok(None);
    };
    let destinations = aqs_notify::read_destinations(&path)?;
    let clock: Box<dyn aqs_notify::Clock> = match config.digest_clock_start {
        Some(start) => Box::new(aqs_notify::ScaledClock::new(
            start.with_timezone(&chrono::Utc),
            config.digest_clock_speed,
        )),
        None => Box::new(aqs_notify::SystemClock),
    };
    let time_zone = runs.store.clock()?.time_zone();
    let log =
        DeliveryLog::open(&runs.store.data()?.deliveries()).context("opening deliveries.db")?;
    let mut notifier = aqs_notify::Notifier::new(
        config.clone(),
        destinations,
        time_zone,
        log,
        Box::new(aqs_notify::HttpTransport::new().map_err(anyhow::Error::msg)?),
        Box::new(runs),
        metrics,
    );
    eprintln!(
        "aqs up: digests and alerts to the destinations of {}",
        path.display()
    );
    Ok(Some(
        std::thread::Builder::new()
            .name("notifier".into())
            .spawn(move || {
                while !shutdown.load(std::sync::atomic::Ordering::SeqCst) {
                    notifier.tick(clock.now());
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
                Ok(())
            })?,
    ))
}
