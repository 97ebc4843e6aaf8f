//! `aqs`: the single entry point of the pipeline.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
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
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("aqs: {error:#}");
            ExitCode::FAILURE
        }
    }
}
