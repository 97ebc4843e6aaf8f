use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use aqs_analytics::kpi::{KpiParams, compute, read_ledgers};
use aqs_tables::kpi::{KpiSink, ParquetKpiSink};
use aqs_tables::ledgers::window::LedgerSource;
use aqs_warehouse::ClickHouseConfig;
use chrono::NaiveDate;

use super::common::StoreArgs;
use super::outlets::{OutletArgs, compute_outlets_into};
use super::supervisors::{
    SupervisorArgs, compute_supervisors_into, open_supervisor_sinks, open_supervisor_source,
};
use crate::backends::{
    Layout, open_kpi_sinks, open_ledger_source, open_outlet_sinks, open_outlet_source,
};

/// The KPI job's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct KpiArgs {
    /// Business date the KPIs are computed as of; default: today in the organisation's zone.
    #[arg(long, env = "AQS_AS_OF")]
    pub as_of: Option<NaiveDate>,
    /// Earliest date whose periods are (re)computed, on or before the as-of date; default:
    /// the first day of the as-of month.
    #[arg(long)]
    pub since: Option<NaiveDate>,
    /// A month still open is at risk below this projected attainment.
    #[arg(long, env = "AQS_AT_RISK_THRESHOLD", default_value_t = 0.9)]
    pub at_risk_threshold: f64,
    /// Plan adherence from which an agent counts as willing (coaching quadrant).
    #[arg(long, env = "AQS_WILL_THRESHOLD", default_value_t = 0.8)]
    pub will_threshold: f64,
    /// Share of the team's median close rate from which an agent counts as skilled.
    #[arg(long, env = "AQS_SKILL_RATIO", default_value_t = 1.0)]
    pub skill_ratio: f64,
    /// Balance drift: visit plan adherence from which visits count as on plan...
    #[arg(long, env = "AQS_DRIFT_VISITS_ADHERENCE", default_value_t = 1.0)]
    pub drift_visits_adherence: f64,
    /// ...while consultation or sales plan adherence is below this share of plan.
    #[arg(long, env = "AQS_DRIFT_SHARE", default_value_t = 0.5)]
    pub drift_share: f64,
    /// Days of the trailing window (through the as-of date) whose premium per sale and close
    /// rate turn the premium still needed into sales and customers needed.
    #[arg(long, env = "AQS_RATES_WINDOW_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub rates_window_days: u32,
    /// Fewer sales than this in the trailing window, and an agent uses its team's rates (a
    /// team its branch's).
    #[arg(long, env = "AQS_RATES_MIN_SALES", default_value_t = 10,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub rates_min_sales: i64,
}

impl KpiArgs {
    pub fn params(&self, today: NaiveDate) -> anyhow::Result<KpiParams> {
        let as_of = self.as_of.unwrap_or(today);
        let mut params = KpiParams::new(as_of);
        if let Some(since) = self.since {
            anyhow::ensure!(
                since <= as_of,
                "--since {since} is after the as-of date {as_of}{}: the KPIs cover the periods \
                 from --since through the as-of date; give an earlier --since (or a later \
                 --as-of)",
                if self.as_of.is_some() {
                    ""
                } else {
                    " (today in the organisation's time zone)"
                }
            );
            params.since = since;
        }
        params.at_risk_threshold = self.at_risk_threshold;
        params.will_threshold = self.will_threshold;
        params.skill_ratio = self.skill_ratio;
        params.drift_visits_adherence = self.drift_visits_adherence;
        params.drift_share = self.drift_share;
        params.rates_window_days = self.rates_window_days;
        params.rates_min_sales = self.rates_min_sales;
        Ok(params)
    }
}

#[derive(Debug, clap::Args)]
pub struct AnalyticsArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    kpi: KpiArgs,
    #[command(flatten)]
    outlets: OutletArgs,
    #[command(flatten)]
    supervisors: SupervisorArgs,
    /// Folder of the KPI, outlet and supervisor files; default: `kpi/`, `outlets/` and
    /// `supervisors/` in the data folder. With ClickHouse, they are written as files only when this is set.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Ledgers and KPIs in ClickHouse when its URL is set: the ledgers are read from the
    /// tables `aqs projector` writes there and the KPIs go to the table `kpi`. Otherwise
    /// `ledgers.db` in the data folder is read and the KPIs go to Parquet files.
    #[command(flatten)]
    clickhouse: ClickHouseConfig,
    /// Not read any more: the working-day calendar is the ledger's (`calendar_day` events).
    /// Given, the command stops and says how to import the file into the log.
    #[arg(long, env = "AQS_CALENDAR", value_name = "FILE")]
    calendar: Option<PathBuf>,
}

pub fn run(args: AnalyticsArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.calendar {
        anyhow::bail!(
            "--calendar {} (or AQS_CALENDAR): the KPI job takes the working-day calendar from \
             the ledger now, the same for every command and instance; import the file into \
             the event log once with `aqs calendar import {}` (the projector folds it) and \
             run without --calendar",
            path.display(),
            path.display()
        );
    }
    let clock = args.store.clock()?;
    let params = args.kpi.params(clock.today())?;
    let outlet_params = args.outlets.params(&params)?;
    let supervisor_params = args.supervisors.params(&params)?;
    let source = open_ledger_source(Layout::Service, &args.store, &args.clickhouse)?;
    let mut sinks = open_kpi_sinks(
        Layout::Service,
        &args.store,
        &args.clickhouse,
        args.out.as_deref(),
        params.as_of,
    )?;
    let rows = compute_kpis_into(&*source, &params, &mut sinks)?;
    report_written(
        "KPI",
        rows,
        params.as_of,
        sinks.iter().map(|sink| sink.target()),
    );
    // The outlet table after the KPIs, from the same ledgers, to the same engines.
    let source = open_outlet_source(Layout::Service, &args.store, &args.clickhouse)?;
    let mut sinks = open_outlet_sinks(
        Layout::Service,
        &args.store,
        &args.clickhouse,
        args.out.as_deref(),
        params.as_of,
    )?;
    let rows = compute_outlets_into(&*source, &outlet_params, &mut sinks)?;
    report_written(
        "outlet",
        rows,
        params.as_of,
        sinks.iter().map(|sink| sink.target()),
    );
    let source = open_supervisor_source(Layout::Service, &args.store, &args.clickhouse)?;
    let mut sinks = open_supervisor_sinks(
        Layout::Service,
        &args.store,
        &args.clickhouse,
        args.out.as_deref(),
        params.as_of,
    )?;
    let rows = compute_supervisors_into(&*source, &supervisor_params, &mut sinks)?;
    report_written(
        "supervisor",
        rows,
        params.as_of,
        sinks.iter().map(|sink| sink.target()),
    );
    Ok(ExitCode::SUCCESS)
}

pub fn compute_kpis(
    source: &dyn LedgerSource,
    params: &KpiParams,
    path: &std::path::Path,
) -> anyhow::Result<usize> {
    compute_kpis_into(source, params, &mut [Box::new(ParquetKpiSink::new(path))])
}

/// Reads the ledgers, computes the KPIs and hands them to every sink in turn (a re-run for
/// the same as-of date replaces that date's KPIs in each); returns the number of rows.
pub fn compute_kpis_into(
    source: &dyn LedgerSource,
    params: &KpiParams,
    sinks: &mut [Box<dyn KpiSink>],
) -> anyhow::Result<usize> {
    let started = std::time::Instant::now();
    let data = read_ledgers(source, params).context("reading the ledgers")?;
    let loaded = started.elapsed();
    let (holidays, swapped_working_days) = (
        data.calendar.holidays.len(),
        data.calendar.working_days.len(),
    );
    let mut table = compute(data, params)?;
    let computed = started.elapsed();
    for sink in sinks.iter_mut() {
        sink.write(&mut table, params.as_of)
            .with_context(|| format!("writing the KPIs to {}", sink.target()))?;
    }
    tracing::info!(
        rows = table.height(),
        holidays,
        swapped_working_days,
        load_ms = loaded.as_millis() as u64,
        compute_ms = (computed - loaded).as_millis() as u64,
        write_ms = (started.elapsed() - computed).as_millis() as u64,
        "kpis computed"
    );
    Ok(table.height())
}

/// Tells the operator how many rows of a table went where.
fn report_written(
    table: &str,
    rows: usize,
    as_of: chrono::NaiveDate,
    targets: impl Iterator<Item = String>,
) {
    let targets: Vec<String> = targets.collect();
    eprintln!(
        "analytics: {rows} {table} rows as of {as_of} written to {}",
        targets.join(" and ")
    );
}
