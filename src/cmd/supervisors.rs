//! The supervisor job's settings (the method's norms) and its run beside the KPI and outlet
//! jobs (`aqs analytics`, `aqs run`, `aqs up`): same as-of date and `--since`, same stores.

use std::path::Path;

use anyhow::Context;
use aqs_analytics::supervisors::{
    DEFAULT_ACCOMPANIED_VISITS_PER_WEEK, DEFAULT_COACHINGS_PER_WORKING_DAY,
    DEFAULT_EVALUATED_SHARE, DEFAULT_NOT_COACHED_WORKING_DAYS, DEFAULT_WEEKLY_MEETINGS_PER_WEEK,
    SupervisorParams, compute, read_supervisor_ledgers,
};
use aqs_tables::kpi::KpiSink;
use aqs_tables::supervisors::ClickHouseSupervisorSink;
use aqs_tables::supervisors::source::{
    ClickHouseSupervisorSource, SqliteSupervisorSource, SupervisorSource,
};
use aqs_tables::{DataDir, SupervisorFiles};
use aqs_warehouse::ClickHouseConfig;
use chrono::NaiveDate;

use super::analytics::KpiArgs;
use crate::backends::{Layout, open_beside_kpis_sinks, open_beside_kpis_source};
use crate::cmd::common::StoreArgs;

/// The supervisor table's norms (销售主管活动管理); targets are these over each period's
/// working days (see analytics/README.md, "Supervisors").
#[derive(Debug, Clone, clap::Args)]
pub struct SupervisorArgs {
    /// Individual coaching sessions a supervisor should hold per working day (the method:
    /// one or two).
    #[arg(long, env = "AQS_SUPERVISOR_COACHINGS_PER_WORKING_DAY",
          default_value_t = DEFAULT_COACHINGS_PER_WORKING_DAY)]
    pub supervisor_coachings_per_working_day: f64,
    /// Accompanied field visits per week of five working days (the method: three or four).
    #[arg(long, env = "AQS_SUPERVISOR_ACCOMPANIED_VISITS_PER_WEEK",
          default_value_t = DEFAULT_ACCOMPANIED_VISITS_PER_WEEK)]
    pub supervisor_accompanied_visits_per_week: f64,
    /// Weekly team meetings per week (the method: one, about two hours).
    #[arg(long, env = "AQS_SUPERVISOR_WEEKLY_MEETINGS_PER_WEEK",
          default_value_t = DEFAULT_WEEKLY_MEETINGS_PER_WEEK)]
    pub supervisor_weekly_meetings_per_week: f64,
    /// Share of a supervisor's agents to evaluate (skill and will) each month, above 0 and
    /// at most 1 (the method: every agent).
    #[arg(long, env = "AQS_SUPERVISOR_EVALUATED_SHARE",
          default_value_t = DEFAULT_EVALUATED_SHARE)]
    pub supervisor_evaluated_share: f64,
    /// An agent counts as not coached once this many working days have passed since their
    /// last coaching session (never coached: since joining the team).
    #[arg(long, env = "AQS_SUPERVISOR_NOT_COACHED_WORKING_DAYS",
          default_value_t = DEFAULT_NOT_COACHED_WORKING_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub supervisor_not_coached_working_days: u32,
}

impl SupervisorArgs {
    /// The supervisor job's parameters for the KPI run's as-of date and `--since`.
    pub fn params(&self, kpi: &aqs_analytics::kpi::KpiParams) -> anyhow::Result<SupervisorParams> {
        let params = SupervisorParams {
            since: kpi.since,
            coachings_per_working_day: self.supervisor_coachings_per_working_day,
            accompanied_visits_per_week: self.supervisor_accompanied_visits_per_week,
            weekly_meetings_per_week: self.supervisor_weekly_meetings_per_week,
            evaluated_share: self.supervisor_evaluated_share,
            not_coached_working_days: self.supervisor_not_coached_working_days,
            ..SupervisorParams::new(kpi.as_of)
        };
        params.check()?;
        Ok(params)
    }

    /// Refuses at start a setting every run would refuse.
    pub fn check(&self, kpi: &KpiArgs, today: chrono::NaiveDate) -> anyhow::Result<()> {
        self.params(&kpi.params(today)?).map(drop)
    }
}

/// Reads the ledgers, computes the supervisor table and hands it to every sink in turn (a
/// rerun for the same as-of date replaces that date's rows in each); returns the number of
/// rows.
pub fn compute_supervisors_into(
    source: &dyn SupervisorSource,
    params: &SupervisorParams,
    sinks: &mut [Box<dyn KpiSink>],
) -> anyhow::Result<usize> {
    let started = std::time::Instant::now();
    let data = read_supervisor_ledgers(source).context("reading the ledgers for supervisors")?;
    let loaded = started.elapsed();
    let mut table = compute(&data, params)?;
    let computed = started.elapsed();
    for sink in sinks.iter_mut() {
        sink.write(&mut table, params.as_of)
            .with_context(|| format!("writing the supervisor table to {}", sink.target()))?;
    }
    tracing::info!(
        rows = table.height(),
        load_ms = loaded.as_millis() as u64,
        compute_ms = (computed - loaded).as_millis() as u64,
        write_ms = (started.elapsed() - computed).as_millis() as u64,
        "supervisor table computed"
    );
    Ok(table.height())
}

/// The ledgers the supervisor job reads: those of the first engine of
/// [`engines`](crate::backends::engines), as for the KPI and outlet jobs.
pub fn open_supervisor_source(
    layout: Layout,
    store: &StoreArgs,
    clickhouse: &ClickHouseConfig,
) -> anyhow::Result<Box<dyn SupervisorSource>> {
    open_beside_kpis_source(
        layout,
        store,
        clickhouse,
        "supervisors",
        |config| {
            Ok(Box::new(ClickHouseSupervisorSource::connect(config)?) as Box<dyn SupervisorSource>)
        },
        |ledgers| Box::new(SqliteSupervisorSource::new(ledgers)) as Box<dyn SupervisorSource>,
    )
}

/// Where the supervisor table of a run as of `as_of` is written: beside the KPIs, in the
/// same engines — the data folder's supervisor files (or `out_dir`), and the ClickHouse
/// table `supervisor_kpi`.
pub fn open_supervisor_sinks(
    layout: Layout,
    store: &StoreArgs,
    clickhouse: &ClickHouseConfig,
    out_dir: Option<&Path>,
    as_of: NaiveDate,
) -> anyhow::Result<Vec<Box<dyn KpiSink>>> {
    let file = match out_dir {
        Some(dir) => SupervisorFiles::new(dir).file(as_of),
        None => DataDir::new(&store.data_dir).supervisor_files().file(as_of),
    };
    open_beside_kpis_sinks(
        layout,
        clickhouse,
        out_dir.is_some(),
        file,
        "supervisor table",
        |config| Ok(Box::new(ClickHouseSupervisorSink::connect(config)?)),
    )
}

/// One tick of `aqs up`'s analytics: the supervisor table after the KPI and outlet tables,
/// whatever became of them; a failure is logged and retried at the next tick.
pub fn run_tick(
    args: &SupervisorArgs,
    kpi: &aqs_analytics::kpi::KpiParams,
    store: &StoreArgs,
    clickhouse: &ClickHouseConfig,
) {
    let result = args.params(kpi).and_then(|params| {
        let source = open_supervisor_source(Layout::AllInOne, store, clickhouse)?;
        let mut sinks =
            open_supervisor_sinks(Layout::AllInOne, store, clickhouse, None, kpi.as_of)?;
        compute_supervisors_into(&*source, &params, &mut sinks)
    });
    if let Err(error) = result {
        tracing::warn!(error = %format!("{error:#}"), "supervisor table run failed; retrying at the next tick");
    }
}
