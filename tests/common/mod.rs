//! Helpers shared by the end-to-end tests of the `aqs` binary.

use std::path::Path;
use std::process::Command;

use aqs_projector::sink::sqlite::SqliteSink;

/// `aqs` with its data folder set, quiet logs, and no Kafka unless the test asks for it.
pub fn aqs(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aqs"));
    command
        .env("AQS_DATA_DIR", data_dir)
        .env("AQS_LOG", "warn")
        .env_remove("AQS_KAFKA_BROKERS")
        .env_remove("AQS_CLICKHOUSE_URL");
    command
}

/// Runs the command and fails the test, with its stderr, if it does not succeed.
pub fn run_ok(mut command: Command) {
    let output = command.output().expect("run aqs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The embedded ledger store of a data folder as canonical text.
pub fn dump(data_dir: &Path) -> String {
    SqliteSink::open(&aqs_tables::DataDir::new(data_dir).ledgers())
        .expect("open ledgers")
        .dump()
        .expect("dump")
}
