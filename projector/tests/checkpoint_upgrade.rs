//! A projector that finds a checkpoint written by an earlier release (whose state it cannot
//! read) rebuilds the ledgers from the log on its own, and ends where a clean run ends.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use aqs_eventlog::EventLog;
use aqs_eventlog::sqlite::SqliteLog;
use aqs_projector::checkpoint::CheckpointStore;
use aqs_projector::runner::{Runner, RunnerSettings};
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{Store, WriterSettings};
use aqs_schemas::Decoder;
use aqs_schemas::generator::{GeneratorConfig, generate};
use rusqlite::Connection;

const PARTITIONS: u32 = 4;

fn settings() -> RunnerSettings {
    RunnerSettings {
        until_idle: true,
        partitions: PARTITIONS,
        ..RunnerSettings::default()
    }
}

/// Runs a projector over `log` into `ledgers.db` beside the checkpoint, until idle.
fn project(log: &SqliteLog, dir: &std::path::Path) -> String {
    let sink = SqliteSink::open(&dir.join("ledgers.db")).expect("ledger store");
    let store = CheckpointStore::open(&dir.join("projector.db")).expect("checkpoint store");
    let mut runner = Runner::new(
        log.consumer().expect("consumer"),
        vec![Store::new(sink, WriterSettings::default())],
        store,
        settings(),
        Arc::default(),
    )
    .expect("the projector starts");
    runner.run(&AtomicBool::new(false)).expect("run");
    drop(runner);
    SqliteSink::open(&dir.join("ledgers.db"))
        .expect("ledger store")
        .dump()
        .expect("dump")
}

#[test]
fn a_checkpoint_of_the_previous_release_makes_the_projector_rebuild_from_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = SqliteLog::open(dir.path().join("events.db"), PARTITIONS).expect("log");
    let mut bytes = Vec::new();
    generate(
        &GeneratorConfig::new(3, 6, "2026-11-02".parse().expect("date"), 5),
        &mut bytes,
    )
    .expect("generate");
    let events: Vec<_> = bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| Decoder::standard().decode(line).expect("valid"))
        .collect();
    log.append(&events).expect("append");

    // What the previous release left: positions at the end of the log, and a state file
    // in a form this build cannot read.
    let upgraded = dir.path().join("upgraded");
    std::fs::create_dir_all(&upgraded).expect("dir");
    {
        let connection = Connection::open(upgraded.join("projector.db")).expect("open");
        connection
            .execute_batch(
                "CREATE TABLE checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), positions TEXT NOT NULL,
                 state BLOB NOT NULL, applied INTEGER NOT NULL, written_at INTEGER NOT NULL);
                 CREATE TABLE checkpoint_file (id INTEGER PRIMARY KEY CHECK (id = 1),
                 generation INTEGER NOT NULL, bytes INTEGER NOT NULL);
                 INSERT INTO checkpoint_file VALUES (1, 1, 4);",
            )
            .expect("old schema");
        let ends: Vec<(serde_json::Value, u64)> = (0..PARTITIONS)
            .map(|p| {
                (
                    serde_json::json!({"stream": "events", "partition": p}),
                    1_000_000,
                )
            })
            .chain([(
                serde_json::json!({"stream": "reference", "partition": 0}),
                1_000_000,
            )])
            .collect();
        connection
            .execute(
                "INSERT INTO checkpoint VALUES (1, ?1, x'', 99, 0)",
                [serde_json::to_string(&ends).expect("positions")],
            )
            .expect("old row");
        std::fs::write(
            upgraded.join("projector.db.state-1"),
            [0xff, 0xff, 0xff, 0x7f],
        )
        .expect("old state");
    }
    let rebuilt = project(&log, &upgraded);

    let clean = dir.path().join("clean");
    std::fs::create_dir_all(&clean).expect("dir");
    let expected = project(&log, &clean);
    assert!(
        expected.lines().count() > 100,
        "the clean run wrote ledgers"
    );
    assert_eq!(rebuilt, expected, "the rebuilt ledgers are a clean run's");

    // The new checkpoint is of today's form: the next start resumes from it.
    let store = CheckpointStore::open(&upgraded.join("projector.db")).expect("store");
    assert_eq!(store.outdated_format().expect("format"), None);
    assert!(store.load().expect("load").is_some());
}
