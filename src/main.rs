//! `aqs`: the single entry point of the pipeline.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod backends;
mod cmd;

/// Bancassurance outlet activity pipeline: events in, ledgers and KPIs out.
#[derive(Debug, Parser)]
#[command(name = "aqs", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a seeded, realistic stream of events for a region as NDJSON on stdout.
    Generate(cmd::generate::GenerateArgs),
    /// Check an NDJSON file of events against the contract; report every bad line.
    Validate(cmd::validate::ValidateArgs),
    /// Print the JSON Schema of the events, or write the published files.
    Schema(cmd::schema::SchemaArgs),
    /// Validate an NDJSON file and append its events to the event log; bad lines are
    /// reported with their field errors and kept as dead letters.
    Import(cmd::import::ImportArgs),
    /// The working-day calendar: `import` turns a calendar file into `calendar_day` events.
    Calendar(cmd::calendar::CalendarArgs),
    /// Serve the HTTP API upstream systems publish events to (POST /v1/events).
    Ingest(cmd::ingest::IngestArgs),
    /// Fold the event log into the ledgers, resuming from the last checkpoint.
    Projector(cmd::projector::ProjectorArgs),
    /// Run everything in one process: ingest, projector, the KPI job on a schedule and the
    /// web dashboard (`--demo` loads a generated region and keeps live events coming).
    Up(Box<cmd::up::UpArgs>),
    /// Serve the web dashboard on its own, reading the KPIs from ClickHouse when configured
    /// or from the embedded stores (sign-in required).
    Dashboard(Box<cmd::dashboard::DashboardArgs>),
    /// Manage the dashboard's local users (add, list, remove, passwd) and revoke sessions.
    User(cmd::user::UserArgs),
    /// Compute the KPIs as of a business date from the ledgers.
    Analytics(cmd::analytics::AnalyticsArgs),
    /// A team's morning (or weekly) digest: printed with --dry-run, else sent to the
    /// configured webhooks.
    Digest(Box<cmd::digest::DigestArgs>),
    /// Batch mode: import a file, fold it and compute its KPIs on a fresh embedded store.
    Run(cmd::run::RunArgs),
    /// Apply the ClickHouse schema migrations (deploy/clickhouse/) that are not applied yet.
    Migrate(cmd::migrate::MigrateArgs),
    /// List the environment variables each subcommand reads, with their defaults.
    EnvVars(cmd::env_vars::EnvVarsArgs),
}

fn main() -> ExitCode {
    aqs_allocator::prefer_large_pages();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AQS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => cmd::generate::run(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Schema(args) => cmd::schema::run(args),
        Command::Import(args) => cmd::import::run(args),
        Command::Calendar(args) => cmd::calendar::run(args),
        Command::Ingest(args) => cmd::ingest::run(args),
        Command::Projector(args) => cmd::projector::run(args),
        Command::Up(args) => cmd::up::run(*args),
        Command::Dashboard(args) => cmd::dashboard::run(*args),
        Command::User(args) => cmd::user::run(args),
        Command::Analytics(args) => cmd::analytics::run(args),
        Command::Digest(args) => cmd::digest::run(*args),
        Command::Run(args) => cmd::run::run(args),
        Command::Migrate(args) => cmd::migrate::run(args),
        Command::EnvVars(args) => cmd::env_vars::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("aqs: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Flags of subcommands that flatten several settings structs must not collide (clap
    /// would otherwise only panic when that subcommand is run).
    #[test]
    fn every_subcommand_parses_its_own_flags() {
        super::Cli::command().debug_assert();
    }
}
