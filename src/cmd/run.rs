use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use aqs_projector::checkpoint::CheckpointStore;
use aqs_projector::runner::RunnerSettings;
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{Store, WriterSettings};
use aqs_tables::kpi::{ParquetKpiSink, write_parquet};
use aqs_tables::layout::{OUTLET_RUN_FILE, SUPERVISOR_RUN_FILE};
use aqs_tables::ledgers::export::{LEDGER_EXPORTS, ledger_table};
use aqs_tables::ledgers::window::SqliteSource;
use aqs_tables::outlets::source::SqliteOutletSource;
use aqs_tables::supervisors::source::SqliteSupervisorSource;

use super::analytics::{KpiArgs, compute_kpis};
use super::common::StoreArgs;
use super::outlets::{OutletArgs, compute_outlets_into};
use super::supervisors::{SupervisorArgs, compute_supervisors_into};
use crate::backends::{ledgers_path, open_embedded_log};

#[derive(Debug, clap::Args)]
#[command(mut_arg("since", |arg| arg.help(
    "Earliest date whose periods are computed, on or before the as-of date; default: the \
     first business date of the events (their whole history)"
)))]
pub struct RunArgs {
    /// NDJSON file of events.
    #[arg(long, value_name = "FILE")]
    events: PathBuf,
    /// Folder for kpi.parquet, outlets.parquet and the ledgers as Parquet.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    kpi: KpiArgs,
    #[command(flatten)]
    outlets: OutletArgs,
    #[command(flatten)]
    supervisors: SupervisorArgs,
    /// The organisation's time zone (IANA name).
    #[arg(long, env = "AQS_TIME_ZONE", default_value = "Asia/Shanghai")]
    time_zone: String,
    /// A working-day calendar file ({"holidays": [...], "working_days": [...]}) imported into
    /// the run's log as `calendar_day` events beside the events file's own.
    #[arg(long, env = "AQS_CALENDAR", value_name = "FILE")]
    calendar: Option<PathBuf>,
    #[command(flatten)]
    declaration: super::calendar::Declaration,
}

/// Import → project → KPIs on a fresh embedded store, all in this process.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let store_dir = args.out.join("store");
    if store_dir.exists() {
        std::fs::remove_dir_all(&store_dir)
            .with_context(|| format!("clearing {}", store_dir.display()))?;
    }
    let store = StoreArgs {
        data_dir: store_dir,
        time_zone: args.time_zone.clone(),
    };
    let clock = store.clock()?;
    let log = open_embedded_log(&store, 1, aqs_eventlog::DeadLetterLimits::default())?;
    let tally = super::import::import_file(&log, &args.events, 5_000)?;
    let calendar_conflicts = match &args.calendar {
        Some(path) => super::calendar::import_calendar(&log, path, &args.declaration)?.conflict,
        None => 0,
    };
    let settings = RunnerSettings {
        until_idle: true,
        clock,
        partitions: 1,
        checkpoint_every_events: u64::MAX,
        checkpoint_interval: std::time::Duration::from_secs(3600),
        ..RunnerSettings::default()
    };
    let ledgers = ledgers_path(&store)?;
    super::projector::project(
        log.consumer()?,
        CheckpointStore::open(&store.data()?.checkpoints(None))?,
        vec![Store::new(
            SqliteSink::open(&ledgers)?,
            WriterSettings::default(),
        )],
        settings,
        &AtomicBool::new(false),
        Default::default(),
    )
    .map(drop)?;

    let mut params = args.kpi.params(clock.today())?;
    if args.kpi.since.is_none() {
        // Batch mode covers the whole history in the file.
        params.since = first_business_date(&ledgers)?
            .unwrap_or(params.as_of)
            .min(params.as_of);
    }
    let outlet_params = args.outlets.params(&params)?;
    let supervisor_params = args.supervisors.params(&params)?;
    let rows = compute_kpis(
        &SqliteSource::new(&ledgers),
        &params,
        &args.out.join("kpi.parquet"),
    )?;
    let outlet_rows = compute_outlets_into(
        &SqliteOutletSource::new(&ledgers),
        &outlet_params,
        &mut [Box::new(ParquetKpiSink::new(
            args.out.join(OUTLET_RUN_FILE),
        ))],
    )?;
    let supervisor_rows = compute_supervisors_into(
        &SqliteSupervisorSource::new(&ledgers),
        &supervisor_params,
        &mut [Box::new(ParquetKpiSink::new(
            args.out.join(SUPERVISOR_RUN_FILE),
        ))],
    )?;
    for (table, filter) in LEDGER_EXPORTS {
        let mut frame = ledger_table(&ledgers, table, filter)?;
        write_parquet(&mut frame, &args.out.join(format!("{table}.parquet")))?;
    }
    eprintln!(
        "run: {rows} KPI rows as of {} in {}, {outlet_rows} outlet rows in {}, \
         {supervisor_rows} supervisor rows in {}; ledgers beside them",
        params.as_of,
        args.out.join("kpi.parquet").display(),
        args.out.join(OUTLET_RUN_FILE).display(),
        args.out.join(SUPERVISOR_RUN_FILE).display()
    );
    if calendar_conflicts > 0 {
        eprintln!(
            "run: {calendar_conflicts} calendar dates conflict with calendar events of the file (listed above)"
        );
        return Ok(ExitCode::FAILURE);
    }
    if tally.rejected + tally.conflict > 0 {
        eprintln!(
            "run: {} events rejected and {} conflicting (listed above); the results cover the accepted events only",
            tally.rejected, tally.conflict
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn first_business_date(ledgers: &std::path::Path) -> anyhow::Result<Option<chrono::NaiveDate>> {
    let connection = aqs_tables::ledgers::sqlite::open_read_only(ledgers)?;
    Ok(aqs_tables::ledgers::sqlite::first_business_date(
        &connection,
    )?)
}
