use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use aqs_eventlog::{AppendOutcome, DeadLetter, EventLog};
use aqs_ingest::ndjson;
use aqs_schemas::{Decoder, Event};

use aqs_eventlog::kafka::KafkaConfig;

use super::common::StoreArgs;
use crate::backends::open_appender;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// NDJSON file of events; `-` reads standard input.
    file: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// The Kafka log, used when brokers are set; otherwise the embedded log in the data folder.
    #[command(flatten)]
    kafka: KafkaConfig,
    /// Events appended per transaction.
    #[arg(long, default_value_t = 2_000)]
    batch_size: usize,
}

/// Counts of an import.
#[derive(Debug, Default)]
pub struct Tally {
    pub accepted: u64,
    pub duplicate: u64,
    pub conflict: u64,
    pub rejected: u64,
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let log = open_appender(&args.store, &args.kafka)?;
    let tally = import_file(&*log, &args.file, args.batch_size)?;
    Ok(if tally.rejected + tally.conflict == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Validates a file line by line and appends the valid events; prints every bad line
/// with its number and problems, keeps it as a dead letter, and reports the counts.
pub fn import_file(
    log: &dyn EventLog,
    file: &std::path::Path,
    batch_size: usize,
) -> anyhow::Result<Tally> {
    let name = file.display().to_string();
    let reader: Box<dyn std::io::BufRead> = if name == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(file).with_context(|| format!("opening {name}"))?;
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let started = std::time::Instant::now();
    let mut tally = Tally::default();
    let mut batch: Vec<(u64, Event)> = Vec::with_capacity(batch_size);
    for line in ndjson::lines(reader, Decoder::standard()) {
        let line = line?;
        match line.outcome {
            Ok(event) => {
                batch.push((line.number, event));
                if batch.len() >= batch_size {
                    append(log, &name, &mut batch, &mut tally)?;
                }
            }
            Err(rejection) => {
                tally.rejected += 1;
                println!("line {}: {rejection}", line.number);
                log.dead_letter(&[DeadLetter {
                    origin: format!("import {name} line {}", line.number),
                    event_id: rejection.event_id.clone(),
                    body: line.rejected_bytes,
                    reason: serde_json::to_string(&rejection.errors)?,
                }])?;
            }
        }
    }
    append(log, &name, &mut batch, &mut tally)?;
    eprintln!(
        "imported {name}: {} accepted, {} duplicate, {} conflicting, {} rejected ({:.1} s)",
        tally.accepted,
        tally.duplicate,
        tally.conflict,
        tally.rejected,
        started.elapsed().as_secs_f64()
    );
    Ok(tally)
}

fn append(
    log: &dyn EventLog,
    name: &str,
    batch: &mut Vec<(u64, Event)>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let events: Vec<Event> = batch.iter().map(|(_, e)| e.clone()).collect();
    let outcomes = log.append(&events).context("appending to the event log")?;
    let mut conflicts = Vec::new();
    for ((number, event), outcome) in batch.iter().zip(outcomes) {
        match outcome {
            AppendOutcome::Appended { .. } => tally.accepted += 1,
            AppendOutcome::Duplicate => tally.duplicate += 1,
            AppendOutcome::Conflict => {
                tally.conflict += 1;
                println!(
                    "line {number}: event {:?} conflicts with an accepted event of the same id and a different body; the first is kept",
                    event.event_id
                );
                conflicts.push(DeadLetter {
                    origin: format!("import {name} line {number}"),
                    event_id: Some(event.event_id.clone()),
                    body: serde_json::to_vec(event)?,
                    reason: "conflict: same event_id as an accepted event, different body"
                        .to_owned(),
                });
            }
        }
    }
    if !conflicts.is_empty() {
        log.dead_letter(&conflicts)?;
    }
    batch.clear();
    Ok(())
}
