//! What an explanation costs on a large log (run by hand; optimised, as the figures of
//! docs/benchmarks.md: `cargo test --release -p aqs-explain --test cost -- --ignored
//! --nocapture`; `AQS_COST_AGENTS` agents, 2,000 by default, one month). Prints the log's
//! size, the time and the records read for one agent's month and one team's month, and the
//! process's peak memory: on the embedded log, and with `AQS_KAFKA_BROKERS` set also on the
//! same records appended to fresh Kafka topics. Measures, asserts nothing.

use std::time::Instant;

use aqs_eventlog::kafka::{KafkaConfig, KafkaHistory, KafkaLog};
use aqs_eventlog::sqlite::SqliteLog;
use aqs_eventlog::{EventLog, Positions};
use aqs_explain::{EmbeddedRoster, Explain, LogExplainer, Request, Subject};
use aqs_projector::ledger::{Ledger, digest};
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{LedgerSink, RowVersions};
use aqs_schemas::Event;
use aqs_schemas::generator::{GeneratorConfig, agent_id, generate};
use aqs_schemas::{BusinessClock, Decoder};

/// A line of `/proc/self/status` (`VmHWM`: peak memory; `VmRSS`: memory now).
fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len() + 1..].trim().to_owned())
        })
        .unwrap_or_default()
}

fn peak_rss_mb() -> String {
    status("VmHWM")
}

/// Starts the peak memory again from the memory now (Linux: `clear_refs` 5), so that the
/// peak of an explanation is not the generation's.
fn reset_peak() -> String {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status("VmRSS")
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
    let kafka = aqs_testkit::kafka().map(|kafka| {
        let name = |what: &str| aqs_testkit::unique_name(&format!("aqs-cost-{what}"), '-');
        let config = KafkaConfig {
            events_topic: name("events"),
            reference_topic: name("reference"),
            dead_letter_topic: name("dead-letter"),
            ..KafkaConfig::new(kafka.brokers())
        };
        let log = KafkaLog::connect(&config).expect("kafka log");
        (config, log)
    });
    let mut batch: Vec<Event> = Vec::new();
    let append = |batch: &[Event]| {
        log.append(batch).expect("append");
        if let Some((_, kafka)) = &kafka {
            kafka.append(batch).expect("append to kafka");
        }
    };
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let event = Decoder::standard().decode(line).expect("valid");
        ledger.apply(&event, digest(line));
        batch.push(event);
        if batch.len() == 5_000 {
            append(&batch);
            batch.clear();
        }
    }
    append(&batch);
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
    let clock = BusinessClock::default();
    let mut explainers = vec![(
        "embedded",
        LogExplainer::embedded(data.events(), data.ledgers(), clock),
    )];
    if let Some((config, _)) = &kafka {
        explainers.push((
            "kafka",
            LogExplainer::new(
                Box::new(KafkaHistory::new(config).expect("kafka history")),
                Box::new(EmbeddedRoster::new(data.ledgers())),
                clock,
            ),
        ));
    }
    let through = start + chrono::Duration::days(29);
    for (log, explainer) in &explainers {
        for subject in [
            Subject::Agent(agent_id(0)),
            Subject::Team("T0001".to_owned()),
        ] {
            let request = Request {
                subject: subject.clone(),
                from: start,
                through,
            };
            let before = reset_peak();
            let mut best = u128::MAX;
            let mut last = None;
            for _ in 0..3 {
                let started = Instant::now();
                last = Some(explainer.explain(&request).expect("explain"));
                best = best.min(started.elapsed().as_millis());
            }
            let explanation = last.expect("explained");
            println!(
                "{log}: {subject:?} month: {} events listed, {} records read, {} folded, best of 3 {best} ms; memory {before} before, peak {} while explaining",
                explanation.events.len(),
                explanation.cost.records_read,
                explanation.cost.events_folded,
                peak_rss_mb(),
            );
        }
    }
    println!("peak memory {}", peak_rss_mb());
}
