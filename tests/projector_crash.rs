//! Killing the projector (`SIGKILL`) at arbitrary points and restarting it gives the same
//! ledgers as one clean run: nothing lost, nothing counted twice. Rebuilding from offset 0
//! gives them again.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{aqs, dump, run_ok};

use aqs_schemas::generator::{GeneratorConfig, Rng, generate};

#[test]
fn killed_and_restarted_projector_matches_a_clean_run() {
    let work = tempfile::tempdir().expect("tempdir");
    let events = work.path().join("events.ndjson");
    let config = GeneratorConfig::new(42, 480, "2026-09-01".parse().expect("date"), 50);
    let stats = generate(
        &config,
        std::fs::File::create(&events)
            .map(std::io::BufWriter::new)
            .expect("create"),
    )
    .expect("generate");
    assert!(
        stats.lines >= 100_000,
        "a run of at least 100k events, got {}",
        stats.lines
    );

    let clean = work.path().join("clean");
    let crashed = work.path().join("crashed");
    for dir in [&clean, &crashed] {
        let mut import = aqs(dir);
        import.arg("import").arg(&events);
        run_ok(import);
    }
    let mut once = aqs(&clean);
    once.args(["projector", "--until-idle"]);
    run_ok(once);
    let expected = dump(&clean);
    assert!(
        expected.lines().count() > 10_000,
        "the ledgers hold real data"
    );

    // Small batches and frequent checkpoints put the kills between every kind of write.
    let mut rng = Rng::new(7);
    let mut kills = Vec::new();
    for _ in 0..6 {
        let mut child = aqs(&crashed)
            .args([
                "projector",
                "--until-idle",
                "--batch-size",
                "700",
                "--checkpoint-every",
                "4000",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start projector");
        let after = Duration::from_millis(rng.between(150, 900));
        std::thread::sleep(after);
        let finished_early = child.try_wait().expect("poll child").is_some();
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        kills.push((after, finished_early));
    }
    assert!(
        kills.iter().any(|(_, early)| !early),
        "at least one kill landed mid-run: {kills:?}"
    );
    let mut finish = aqs(&crashed);
    finish.args(["projector", "--until-idle"]);
    run_ok(finish);
    let after_crashes = dump(&crashed);
    assert!(
        after_crashes == expected,
        "ledgers after kills {kills:?} differ from a clean run"
    );

    let mut rebuild = aqs(&clean);
    rebuild.args(["projector", "rebuild"]);
    run_ok(rebuild);
    assert!(
        dump(&clean) == expected,
        "a rebuild from offset 0 reproduces the live ledgers"
    );
}

/// Events folded as the last checkpoint of a data folder says (0 without one). Read with no
/// projector running (the store is one process's at a time).
fn checkpointed(data_dir: &std::path::Path) -> u64 {
    let path = aqs_tables::DataDir::new(data_dir).checkpoints(None);
    if !path.exists() {
        return 0;
    }
    aqs_projector::checkpoint::CheckpointStore::open(&path)
        .expect("checkpoint store")
        .committed_positions()
        .expect("checkpoint row")
        .map_or(0, |positions| positions.values().sum())
}

#[test]
fn a_projector_killed_again_and_again_still_moves_forward() {
    let work = tempfile::tempdir().expect("tempdir");
    let events = work.path().join("events.ndjson");
    let config = GeneratorConfig::new(43, 480, "2026-09-01".parse().expect("date"), 50);
    let stats = generate(
        &config,
        std::fs::File::create(&events)
            .map(std::io::BufWriter::new)
            .expect("create"),
    )
    .expect("generate");
    let clean = work.path().join("clean");
    let looped = work.path().join("looped");
    for dir in [&clean, &looped] {
        let mut import = aqs(dir);
        import.arg("import").arg(&events);
        run_ok(import);
    }
    let mut once = aqs(&clean);
    once.args(["projector", "--until-idle"]);
    run_ok(once);
    let expected = dump(&clean);

    // The default settings (checkpoints every 200,000 events or 10 s), restarted 0.15 to
    // 1.6 s apart, as an orchestrator in a crash loop would.
    let mut rng = Rng::new(5);
    let mut progress = vec![checkpointed(&looped)];
    while progress.len() <= 16 {
        let mut child = aqs(&looped)
            .args(["projector"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start projector");
        std::thread::sleep(Duration::from_millis(rng.between(150, 1_600)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        progress.push(checkpointed(&looped));
    }
    let advances = progress.windows(2).filter(|w| w[1] > w[0]).count();
    eprintln!(
        "restart loop: checkpointed events after each kill {progress:?} of {}",
        stats.lines
    );
    // Without early checkpoints no life gets there (0 advances); how many do depends on
    // the machine's load, so the bound is low.
    assert!(
        advances >= 3 && progress.windows(2).all(|w| w[1] >= w[0]),
        "the checkpointed position moves forward, life after life: {progress:?} of {} events",
        stats.lines
    );
    let mut finish = aqs(&looped);
    finish.args(["projector", "--until-idle"]);
    run_ok(finish);
    assert!(
        dump(&looped) == expected,
        "ledgers after the restart loop {progress:?} differ from a clean run"
    );
}
