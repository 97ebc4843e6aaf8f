//! `aqs calendar import`: the operator's calendar file as `calendar_day` events in the log,
//! and the same import behind the `--calendar` flag of `aqs up` and `aqs run`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use aqs_eventlog::kafka::KafkaConfig;
use aqs_eventlog::{AppendOutcome, EventLog};
use aqs_schemas::{Decoder, WorkingCalendar};
use chrono::{DateTime, FixedOffset, Timelike};

use super::common::StoreArgs;
use crate::backends::open_appender;

#[derive(Debug, clap::Args)]
pub struct CalendarArgs {
    #[command(subcommand)]
    command: CalendarCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CalendarCommand {
    /// Turn a calendar file ({"holidays": [...], "working_days": [...]}) into `calendar_day`
    /// events and append them to the event log (importing the same file again changes
    /// nothing; a file declared later wins for the dates it lists).
    Import(CalendarImportArgs),
}

#[derive(Debug, clap::Args)]
struct CalendarImportArgs {
    /// The calendar file: {"holidays": ["2026-10-01", …], "working_days": ["2026-10-10"]}.
    file: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// The Kafka log, used when brokers are set; otherwise the embedded log in the data folder.
    #[command(flatten)]
    kafka: KafkaConfig,
    #[command(flatten)]
    declaration: Declaration,
}

/// Who declares a calendar file's dates, and when.
#[derive(Debug, Clone, clap::Args)]
pub struct Declaration {
    /// `source` of the events a calendar file becomes.
    #[arg(long, default_value = "calendar-file", value_name = "SOURCE")]
    pub calendar_source: String,
    /// When a calendar file's dates are declared (RFC 3339, e.g. 2026-09-20T10:00:00+08:00):
    /// the latest declaration of a date wins. Default: the file's modification time, so an
    /// unchanged file imports as the same events and an edited one as newer ones.
    #[arg(long, value_name = "INSTANT")]
    pub declared_at: Option<DateTime<FixedOffset>>,
}

/// What a calendar import appended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CalendarTally {
    pub appended: usize,
    pub duplicate: usize,
    pub conflict: usize,
}

pub fn run(args: CalendarArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CalendarCommand::Import(args) => {
            let log = open_appender(&args.store, &args.kafka)?;
            let tally = import_calendar(&*log, &args.file, &args.declaration)?;
            Ok(if tally.conflict == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Reads the calendar file, turns each date into a `calendar_day` event (validated like any
/// other event) and appends them; a date whose id is taken by another body is reported.
pub fn import_calendar(
    log: &dyn EventLog,
    file: &Path,
    declaration: &Declaration,
) -> anyhow::Result<CalendarTally> {
    let name = file.display();
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {name}"))?;
    let calendar = WorkingCalendar::from_json(&text).with_context(|| format!("in {name}"))?;
    let declared_at = match declaration.declared_at {
        Some(at) => at,
        None => {
            let modified = std::fs::metadata(file)
                .and_then(|meta| meta.modified())
                .with_context(|| format!("reading the modification time of {name}"))?;
            // Whole seconds: the instant is part of each event's id and body.
            let modified = DateTime::<chrono::Utc>::from(modified);
            modified
                .with_nanosecond(0)
                .unwrap_or(modified)
                .fixed_offset()
        }
    };
    let events = calendar.declarations(&declaration.calendar_source, declared_at);
    // The events go through the contract like any other: a bad source or a date outside
    // the contract's years is refused here, naming the field.
    for event in &events {
        let bytes = serde_json::to_vec(event)?;
        Decoder::standard()
            .decode(&bytes)
            .map_err(|rejection| anyhow::anyhow!("{name}: {rejection}"))?;
    }
    let mut tally = CalendarTally::default();
    if !events.is_empty() {
        let outcomes = log
            .append(&events)
            .context("appending the calendar to the event log")?;
        for (event, outcome) in events.iter().zip(outcomes) {
            match outcome {
                AppendOutcome::Appended { .. } => tally.appended += 1,
                AppendOutcome::Duplicate => tally.duplicate += 1,
                AppendOutcome::Conflict => {
                    tally.conflict += 1;
                    eprintln!(
                        "calendar {name}: event {:?} conflicts with an accepted event of the same id and another body; the first is kept",
                        event.event_id
                    );
                }
            }
        }
    }
    eprintln!(
        "calendar {name}: {} holidays and {} working days declared at {declared_at}: {} appended, {} already in the log, {} conflicting",
        calendar.holidays.len(),
        calendar.working_days.len(),
        tally.appended,
        tally.duplicate,
        tally.conflict
    );
    Ok(tally)
}
