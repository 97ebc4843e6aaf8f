//! What an explanation costs on a large embedded log (run by hand: `cargo test -p
//! aqs-explain --test cost -- --ignored --nocapture`, `AQS_COST_AGENTS` agents, 2,000 by
//! default, one month). Prints the log's size, the time and the records read for one agent's
//! month and one team's month, and the process's peak memory. Measures, asserts nothing.

use std::time::Instant;

use aqs_eventlog::sqlite::SqliteLog;
use aqs_eventlog::{EventLog, Positions};
use aqs_explain::{Explain, LogExplainer, Request, Subject};
use aqs_projector::ledger::{Ledger, digest};
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{LedgerSink, RowVersions};
use aqs_schemas::generator::{GeneratorConfig, agent_id, generate};
use aqs_schemas::{BusinessClock, Decoder};

fn peak_rss_mb() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "a measurement, run by hand"]
fn cost_of_explaining_an_agent_month_and_a_team_month() {
    let agents: u32 = std::env::var("AQS_COST_AGENTS")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = aqs_tables::DataDir::new(dir.path());
    let start: chrono::NaiveDate = "2026-11-01".parse().expect("date");
    let mut bytes = Vec::new();
    generate(&GeneratorConfig::new(3, agents, start, 30), &mut bytes).expect("generate");
    let log = SqliteLog::open(data.events(), 12).expect("log");
    let mut ledger = Ledger::new(BusinessClock::default());
    let mut batch = Vec::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let event = Decoder::standard().decode(line).expect("valid");
        ledger.apply(&event, digest(line));
        batch.push(event);
        if batch.len() == 5_000 {
            log.append(&batch).expect("append");
            batch.clear();
        }
    }
    log.append(&batch).expect("append");
    drop(bytes);
    let mut sink = SqliteSink::open(&data.ledgers()).expect("ledgers");
    sink.publish(
        &ledger.take_changes(),
        &RowVersions::new(&Positions::new(), 1),
    )
    .expect("publish");
    drop(ledger);
    let records = log.len().expect("len");
    let size = std::fs::metadata(data.events())
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "log: {agents} agents, {records} records, {:.1} MB; peak memory so far {}",
        size as f64 / 1e6,
        peak_rss_mb()
    );
    let explainer = LogExplainer::new(data.events(), data.ledgers(), BusinessClock::default());
    let through = start + chrono::Duration::days(29);
    for subject in [
        Subject::Agent(agent_id(0)),
        Subject::Team("T0001".to_owned()),
    ] {
        let request = Request {
            subject: subject.clone(),
            from: start,
            through,
        };
        let mut best = u128::MAX;
        let mut last = None;
        for _ in 0..3 {
            let started = Instant::now();
            last = Some(explainer.explain(&request).expect("explain"));
            best = best.min(started.elapsed().as_millis());
        }
        let explanation = last.expect("explained");
        println!(
            "{subject:?} month: {} events listed, {} records read, {} folded, best of 3 {best} ms",
            explanation.events.len(),
            explanation.cost.records_read,
            explanation.cost.events_folded,
        );
    }
    println!("peak memory {}", peak_rss_mb());
}
