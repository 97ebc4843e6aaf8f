//! `aqs projector` started over the data of an earlier release: its checkpoint's state is of
//! an earlier form, so it empties its embedded ledger store and rebuilds from the log on its
//! own, ending with the ledgers of a clean run.

mod common;

use common::{aqs, dump, run_ok};

#[test]
fn a_projector_upgraded_over_an_old_checkpoint_rebuilds_its_ledgers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("events.ndjson");
    let mut generate = aqs(dir.path());
    generate.args(["generate", "--agents", "4", "--days", "4", "--seed", "5"]);
    let output = generate.output().expect("generate");
    assert!(output.status.success());
    std::fs::write(&events, &output.stdout).expect("write events");

    let data = dir.path().join("data");
    let mut import = aqs(&data);
    import.arg("import").arg(&events);
    run_ok(import);
    let mut project = aqs(&data);
    project.args(["projector", "--until-idle"]);
    run_ok(project);
    let clean = dump(&data);
    assert!(clean.lines().count() > 50);

    // Make it look like the earlier release: its checkpoint form, and a row in the ledger
    // store that the log does not produce (which only an emptied store loses).
    // The earlier release kept the checkpoint's row in SQLite and had no record store.
    let checkpoints = aqs_tables::DataDir::new(&data).checkpoints(None);
    let mut records = checkpoints.clone().into_os_string();
    records.push(".records");
    std::fs::remove_dir_all(&records).expect("no record store in the earlier release");
    let checkpoint = rusqlite::Connection::open(&checkpoints).expect("checkpoint");
    checkpoint
        .execute(
            "INSERT INTO checkpoint (id, positions, state, applied, written_at, format)
             VALUES (1, '[]', x'', 0, 0, 7)",
            [],
        )
        .expect("earlier form");
    drop(checkpoint);
    let ledgers =
        rusqlite::Connection::open(aqs_tables::DataDir::new(&data).ledgers()).expect("ledgers");
    ledgers
        .execute(
            "INSERT INTO outlets (outlet_id, bank, name, region_id, ver) VALUES ('STALE', 'X', 'X', 'R', 1)",
            [],
        )
        .expect("stale row");
    drop(ledgers);
    assert_ne!(dump(&data), clean);

    let mut again = aqs(&data);
    again.args(["projector", "--until-idle"]);
    run_ok(again);
    assert_eq!(
        dump(&data),
        clean,
        "rebuilt from the log, nothing stale left"
    );
}
