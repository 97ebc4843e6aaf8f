//! The KPI job at a few region sizes.

use std::path::Path;
use std::process::ExitCode;

use super::{machine, projected_region, region_last_day, run_child};

pub fn kpi(work: &Path, sizes: &[String]) -> anyhow::Result<ExitCode> {
    println!(
        "\n### KPI job (all scopes × day, ISO week and month) — {}\n",
        machine()
    );
    println!(
        "| agents × days | events | ledger agent-days | KPI rows | KPI job (s) | peak RSS (MiB) \
         | outlet rows | outlet job (s) | its peak RSS (MiB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for size in sizes {
        let (agents, days, dir, events) = projected_region(work, size)?;
        let as_of = region_last_day(days)?;
        let measured = run_child("kpi", &dir, &["--as-of".to_owned(), as_of.to_string()])?;
        // The outlet table, computed after the KPIs by the same runs, on its own.
        let outlets = run_child("outlets", &dir, &["--as-of".to_owned(), as_of.to_string()])?;
        let ledgers =
            aqs_tables::ledgers::sqlite::open_read_only(&aqs_tables::DataDir::new(&dir).ledgers())?;
        let agent_days = aqs_tables::ledgers::sqlite::agent_day_rows(&ledgers)?;
        println!(
            "| {agents} × {days} | {events} | {agent_days} | {} | {:.2} | {:.0} | {} | {:.2} | {:.0} |",
            measured.items,
            measured.seconds,
            measured.peak_rss_mib,
            outlets.items,
            outlets.seconds,
            outlets.peak_rss_mib
        );
    }
    Ok(ExitCode::SUCCESS)
}
