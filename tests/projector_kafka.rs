//! The projector on real Kafka, over more than 100k events: killed (`SIGKILL`) and restarted
//! several times, then run as two instances in one consumer group of which one is killed
//! mid-run and the survivor takes its partitions over. The shared ledger store then holds
//! exactly what a clean single run over the same events produces.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{aqs, dump, run_ok};

use aqs_schemas::generator::{GeneratorConfig, generate};

const PARTITIONS: &str = "6";

/// `aqs` with the events stream split into six partitions, for the clean run and Kafka alike.
fn aqs_partitioned(data_dir: &std::path::Path) -> Command {
    let mut command = aqs(data_dir);
    command.env("AQS_EVENTS_PARTITIONS", PARTITIONS);
    command
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_killed_instance_is_taken_over_and_the_ledgers_match_a_clean_run() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let events = work.path().join("events.ndjson");
    let config = GeneratorConfig::new(9, 480, "2026-09-01".parse().expect("date"), 50);
    let stats = generate(
        &config,
        std::io::BufWriter::new(std::fs::File::create(&events).expect("create")),
    )
    .expect("generate");
    assert!(
        stats.lines >= 100_000,
        "at least 100k events, got {}",
        stats.lines
    );

    // The reference: one clean run on the embedded log.
    let clean = work.path().join("clean");
    let mut import = aqs_partitioned(&clean);
    import.arg("import").arg(&events);
    run_ok(import);
    let mut once = aqs_partitioned(&clean);
    once.args(["projector", "--until-idle"]);
    run_ok(once);
    let expected = dump(&clean);

    // The same events into fresh Kafka topics.
    let name = aqs_testkit::unique_name("aqs-projector-test", '-');
    let with_kafka = |command: &mut Command| {
        command
            .env("AQS_KAFKA_BROKERS", kafka.brokers())
            .env("AQS_EVENTS_TOPIC", format!("{name}.events"))
            .env("AQS_REFERENCE_TOPIC", format!("{name}.reference"))
            .env("AQS_DEAD_LETTER_TOPIC", format!("{name}.dead-letter"))
            .env("AQS_PROJECTOR_GROUP", format!("{name}.group"))
            .env("AQS_KAFKA_SESSION_TIMEOUT_MS", "6000");
    };
    let shared = work.path().join("shared");
    let mut import = aqs_partitioned(&shared);
    with_kafka(&mut import);
    import.arg("import").arg(&events);
    run_ok(import);

    // Two instances, one ledger store; small batches so the kill lands mid-run.
    let start = |instance: &str| {
        let mut command = aqs_partitioned(&shared);
        with_kafka(&mut command);
        command
            .args([
                "projector",
                "--instance",
                instance,
                "--batch-size",
                "200",
                "--checkpoint-every",
                "2000",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start projector")
    };
    // Restarted after kills at arbitrary points, alone.
    let mut rng = aqs_schemas::generator::Rng::new(11);
    for _ in 0..3 {
        let mut alone = Killed(start("a"));
        std::thread::sleep(Duration::from_millis(rng.between(800, 2_000)));
        alone.0.kill().expect("SIGKILL");
        alone.0.wait().expect("reap");
    }
    let survivor = Killed(start("a"));
    let victim = start("b");
    std::thread::sleep(Duration::from_millis(1_500));
    let mut victim = Killed(victim);
    victim.0.kill().expect("SIGKILL");
    victim.0.wait().expect("reap");
    let killed_mid_run = dump(&shared) != expected;

    let deadline = Instant::now() + Duration::from_secs(240);
    let mut last = String::new();
    while Instant::now() < deadline {
        last = dump(&shared);
        if last == expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(survivor);
    assert!(
        killed_mid_run,
        "the kill came after the work was done; the test proved nothing"
    );
    assert!(
        last == expected,
        "the survivor did not converge to the clean run's ledgers"
    );
}
