//! The outlet job's settings and its run beside the KPI job (`aqs analytics`, `aqs run`,
//! `aqs up`): same as-of date and `--since`, same stores.

use anyhow::Context;
use aqs_analytics::outlets::{
    DEFAULT_DORMANT_WORKING_DAYS, OutletParams, compute, read_outlet_ledgers,
};
use aqs_schemas::Money;
use aqs_tables::kpi::KpiSink;
use aqs_tables::outlets::source::OutletSource;

use super::analytics::KpiArgs;

/// The outlet table's settings (网点分析: dormant outlets and grades).
#[derive(Debug, Clone, clap::Args)]
pub struct OutletArgs {
    /// An outlet assigned to an agent is dormant once it has gone this many working days
    /// without a visit (never visited: working days since it was first assigned).
    #[arg(long, env = "AQS_OUTLET_DORMANT_WORKING_DAYS",
          default_value_t = DEFAULT_DORMANT_WORKING_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub outlet_dormant_working_days: u32,
    /// Grade A: average monthly premium (CNY) of the three months before the quarter, at
    /// least this.
    #[arg(long, env = "AQS_OUTLET_GRADE_A_PREMIUM", default_value = "50000.00")]
    pub outlet_grade_a_premium: Money,
    /// Grade B: at least this (below it, C or D).
    #[arg(long, env = "AQS_OUTLET_GRADE_B_PREMIUM", default_value = "20000.00")]
    pub outlet_grade_b_premium: Money,
    /// Grade C: at least this (below it, D).
    #[arg(long, env = "AQS_OUTLET_GRADE_C_PREMIUM", default_value = "5000.00")]
    pub outlet_grade_c_premium: Money,
}

impl OutletArgs {
    /// The outlet job's parameters for the KPI run's as-of date and `--since`.
    pub fn params(&self, kpi: &aqs_analytics::kpi::KpiParams) -> anyhow::Result<OutletParams> {
        let params = OutletParams {
            since: kpi.since,
            dormant_working_days: self.outlet_dormant_working_days,
            grade_a_fen: self.outlet_grade_a_premium.units(),
            grade_b_fen: self.outlet_grade_b_premium.units(),
            grade_c_fen: self.outlet_grade_c_premium.units(),
            ..OutletParams::new(kpi.as_of)
        };
        params.check()?;
        Ok(params)
    }

    /// Refuses at start a setting every run would refuse.
    pub fn check(&self, kpi: &KpiArgs, today: chrono::NaiveDate) -> anyhow::Result<()> {
        self.params(&kpi.params(today)?).map(drop)
    }
}

/// Reads the ledgers, computes the outlet table and hands it to every sink in turn (a rerun
/// for the same as-of date replaces that date's rows in each); returns the number of rows.
pub fn compute_outlets_into(
    source: &dyn OutletSource,
    params: &OutletParams,
    sinks: &mut [Box<dyn KpiSink>],
) -> anyhow::Result<usize> {
    let started = std::time::Instant::now();
    let data = read_outlet_ledgers(source, params).context("reading the ledgers for outlets")?;
    let loaded = started.elapsed();
    let mut table = compute(&data, params)?;
    let computed = started.elapsed();
    for sink in sinks.iter_mut() {
        sink.write(&mut table, params.as_of)
            .with_context(|| format!("writing the outlet table to {}", sink.target()))?;
    }
    tracing::info!(
        rows = table.height(),
        load_ms = loaded.as_millis() as u64,
        compute_ms = (computed - loaded).as_millis() as u64,
        write_ms = (started.elapsed() - computed).as_millis() as u64,
        "outlet table computed"
    );
    Ok(table.height())
}
