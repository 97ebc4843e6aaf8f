use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use aqs_schemas::WorkingCalendar;
use aqs_schemas::generator::{GeneratorConfig, generate};
use chrono::NaiveDate;

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Number of customer managers (agents); teams of 10, 7 teams a branch, 8 branches a region.
    #[arg(long, default_value_t = 200)]
    agents: u32,
    /// Number of days of activity.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// First business date. Fixed by default so that a seed always gives the same bytes.
    #[arg(long, default_value = "2026-01-01")]
    start: NaiveDate,
    /// Seed of the pseudo-random choices; the same seed and arguments give the same output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Working-day calendar (JSON: {"holidays": [...], "working_days": [...]}); holidays are quiet.
    #[arg(long, value_name = "FILE")]
    calendar: Option<PathBuf>,
    /// Share of activity events delivered one to five days late.
    #[arg(long, default_value_t = 0.03)]
    late_share: f64,
    /// Share of events delivered twice.
    #[arg(long, default_value_t = 0.01)]
    duplicate_share: f64,
    /// Share of activity events retracted as entered in error.
    #[arg(long, default_value_t = 0.005)]
    retraction_share: f64,
    /// Share of sales cancelled in the cooling-off period.
    #[arg(long, default_value_t = 0.03)]
    cancellation_share: f64,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let calendar = match &args.calendar {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            WorkingCalendar::from_json(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => WorkingCalendar::default(),
    };
    for (name, share) in [
        ("--late-share", args.late_share),
        ("--duplicate-share", args.duplicate_share),
        ("--retraction-share", args.retraction_share),
        ("--cancellation-share", args.cancellation_share),
    ] {
        anyhow::ensure!(
            (0.0..=1.0).contains(&share),
            "{name} must be between 0 and 1, got {share}"
        );
    }
    let config = GeneratorConfig {
        calendar,
        late_share: args.late_share,
        duplicate_share: args.duplicate_share,
        retraction_share: args.retraction_share,
        cancellation_share: args.cancellation_share,
        ..GeneratorConfig::new(args.seed, args.agents, args.start, args.days)
    };
    let started = std::time::Instant::now();
    let stdout = std::io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 20, stdout);
    let stats = match generate(&config, &mut out).and_then(|stats| out.flush().map(|()| stats)) {
        Ok(stats) => stats,
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e).context("writing events"),
    };
    let by_type: Vec<String> = stats
        .by_type
        .iter()
        .map(|(t, n)| format!("{t}={n}"))
        .collect();
    tracing::info!(
        lines = stats.lines,
        duplicates = stats.duplicates,
        late = stats.late,
        seconds = started.elapsed().as_secs_f64(),
        "generated {}",
        by_type.join(" ")
    );
    Ok(ExitCode::SUCCESS)
}
