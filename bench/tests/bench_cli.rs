//! `aqs-bench` runs every scenario end to end, on small sizes, against the real services,
//! and prints its tables with figures in them. The figures themselves are never judged:
//! benchmarks do not pass or fail on time.
//!
//! The freshness and parts scenarios run the `aqs` binary beside `aqs-bench` (or `AQS_BIN`):
//! `cargo test --workspace` builds both; `cargo test -p aqs-bench` alone needs
//! `cargo build -p aqs` first.

use std::path::Path;
use std::process::Command;

fn bench(work: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aqs-bench"));
    command
        .arg("--work-dir")
        .arg(work)
        .args(args)
        .env("AQS_LOG", "warn")
        .env_remove("AQS_KAFKA_BROKERS")
        .env_remove("AQS_CLICKHOUSE_URL");
    command
}

/// Runs the command and returns its standard output, failing with its stderr otherwise.
fn printed(mut command: Command) -> String {
    let output = command.output().expect("run aqs-bench");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// The cells of the table row that starts with `label`, or a failure naming the output.
fn row<'a>(output: &'a str, label: &str) -> Vec<&'a str> {
    let line = output
        .lines()
        .find(|l| l.starts_with(&format!("| {label} |")))
        .unwrap_or_else(|| panic!("no row {label:?} in:\n{output}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

/// A cell that must hold a positive, finite figure.
fn figure(cells: &[&str], index: usize) -> f64 {
    let value: f64 = cells[index]
        .parse()
        .unwrap_or_else(|_| panic!("cell {index} of {cells:?} is not a number"));
    assert!(
        value.is_finite() && value > 0.0,
        "cell {index} of {cells:?} is not a positive figure"
    );
    value
}

#[test]
fn every_bench_scenario_prints_its_table_with_figures() {
    let work = tempfile::tempdir().expect("tempdir");
    let kafka = aqs_testkit::kafka();
    let clickhouse = aqs_testkit::clickhouse();

    let mut replay = bench(work.path(), &["replay", "--events", "20000"]);
    if let Some(kafka) = &kafka {
        replay.env("AQS_KAFKA_BROKERS", kafka.brokers());
    }
    let output = printed(replay);
    let embedded = row(&output, "embedded (SQLite)");
    let events = figure(&embedded, 1);
    for column in 2..=7 {
        figure(&embedded, column);
    }
    if kafka.is_some() {
        let on_kafka = row(&output, "Kafka");
        assert_eq!(figure(&on_kafka, 1), events, "the same log on Kafka");
        for column in 2..=9 {
            figure(&on_kafka, column);
        }
    }

    // Where the replay's memory goes: the cells are counted; the event records are on disk
    // after the last checkpoint, their filter stays in memory.
    let part = |name: &str| -> Vec<&str> {
        output
            .lines()
            .find(|l| l.contains(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no memory table in:\n{output}"))
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect()
    };
    let cells = part("cells");
    assert_eq!(figure(&cells, 0), events);
    figure(&cells, 2);
    figure(&cells, 3);
    let records = part("event_records");
    assert_eq!(
        records[2], "0",
        "no record left in memory after the last checkpoint"
    );
    figure(&records, 3);

    let output = printed(bench(
        work.path(),
        &[
            "stores", "--events", "20000", "--batch", "5000", "--reads", "1000",
        ],
    ));
    for store in ["sqlite", "fjall", "redb"] {
        let cells = row(&output, store);
        for column in 2..=8 {
            figure(&cells, column);
        }
    }

    let mut ingest = bench(
        work.path(),
        &["ingest", "--seconds", "1", "--batch-sizes", "100"],
    );
    if let Some(kafka) = &kafka {
        ingest.env("AQS_KAFKA_BROKERS", kafka.brokers());
    }
    let output = printed(ingest);
    let mut logs = vec!["embedded (SQLite)"];
    if kafka.is_some() {
        logs.push("Kafka + dedup index");
    }
    for log in logs {
        let cells = row(&output, log);
        for column in 1..=8 {
            figure(&cells, column);
        }
        assert_eq!(cells[9], "0", "no request failed: {cells:?}");
    }

    let output = printed(bench(work.path(), &["kpi", "--sizes", "60x10"]));
    let cells = row(&output, "60 × 10");
    for column in 1..=5 {
        figure(&cells, column);
    }

    if let Some(clickhouse) = &clickhouse {
        let mut compare = bench(work.path(), &["compare", "--sizes", "60x10", "--runs", "1"]);
        compare
            .env("AQS_CLICKHOUSE_URL", clickhouse.url())
            .env("AQS_CLICKHOUSE_USER", clickhouse.user())
            .env("AQS_CLICKHOUSE_PASSWORD", clickhouse.password());
        let output = printed(compare);
        let cells = row(&output, "60 × 10");
        assert_eq!(cells.last(), Some(&"yes"), "the three engines agree");
    }

    let output = printed(bench(
        work.path(),
        &[
            "freshness",
            "--agents",
            "30",
            "--seconds",
            "5",
            "--events-per-second",
            "100",
        ],
    ));
    let cells = row(&output, "embedded (SQLite)");
    let (probes, seen) = (figure(&cells, 3), figure(&cells, 4));
    assert_eq!(probes, seen, "every probe reached the KPI store: {cells:?}");
    figure(&cells, 5);

    let output = printed(bench(
        work.path(),
        &[
            "soak",
            "--seconds",
            "3",
            "--events-per-second",
            "400",
            "--clients",
            "2",
        ],
    ));
    let cells = row(&output, "1");
    for column in [1, 2, 3, 6] {
        figure(&cells, column);
    }
    assert_eq!(cells[5], "0", "no batch failed: {cells:?}");

    if let (Some(kafka), Some(clickhouse)) = (&kafka, &clickhouse) {
        let mut parts = bench(
            work.path(),
            &[
                "parts",
                "--seconds",
                "5",
                "--events-per-second",
                "200",
                "--write-ms",
                "1000",
            ],
        );
        parts
            .env("AQS_KAFKA_BROKERS", kafka.brokers())
            .env("AQS_CLICKHOUSE_URL", clickhouse.url())
            .env("AQS_CLICKHOUSE_USER", clickhouse.user())
            .env("AQS_CLICKHOUSE_PASSWORD", clickhouse.password());
        let output = printed(parts);
        let cells = row(&output, "1000 ms");
        for column in 1..=3 {
            figure(&cells, column);
        }
    }
}
