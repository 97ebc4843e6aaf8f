//! The store chosen for the projector's state on disk (fjall) keeps a batch committed with
//! its positions all or nothing across a SIGKILL: a child commits batches of records, each
//! with the batch's number as the positions in the same write batch, and is killed at
//! varying moments, mid-commit among them; after each kill the store holds every record of
//! the batches up to the positions it holds, none of the next one, and at least every
//! batch the child had reported committed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BATCH: u64 = 2_000;
const POSITIONS_KEY: &[u8] = b"\x00positions";

#[test]
fn a_batch_committed_with_its_positions_survives_a_kill_whole_or_not_at_all() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let store = dir.path().join("state");
    let mut reported = 0u64;
    for round in 0..8u64 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aqs-bench"))
            .args(["child", "store-crash"])
            .arg(&store)
            .args(["--batch", &BATCH.to_string()])
            .env("AQS_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the writer");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        // Let it commit a few batches, then kill it at a varying point of the next one.
        for _ in 0..(round % 3 + 1) {
            let line = lines.next().expect("a commit reported").expect("a line");
            reported = reported.max(line.trim().parse().expect("a batch number"));
        }
        std::thread::sleep(Duration::from_millis(round * 3 % 11));
        child.kill().expect("SIGKILL");
        child.wait().expect("the writer ends");
        // Lines written before the kill but not yet read were committed too.
        for line in lines.map_while(Result::ok) {
            reported = reported.max(line.trim().parse().expect("a batch number"));
        }

        let db = fjall::Database::builder(&store).open().expect("reopen");
        let records = db
            .keyspace("records", fjall::KeyspaceCreateOptions::default)
            .expect("keyspace");
        let positions = records
            .get(POSITIONS_KEY)
            .expect("read")
            .map(|bytes| u64::from_be_bytes(bytes.as_ref().try_into().expect("8 bytes")))
            .expect("positions committed");
        assert!(
            positions >= reported,
            "round {round}: positions {positions}, but batch {reported} was reported committed"
        );
        for batch in 1..=positions + 1 {
            let held = records.prefix(format!("b{batch:08}-")).count() as u64;
            let expected = if batch <= positions { BATCH } else { 0 };
            assert_eq!(
                held, expected,
                "round {round}: batch {batch} holds {held} records with positions {positions}"
            );
        }
        assert_eq!(
            records.len().expect("count"),
            positions as usize * BATCH as usize + 1
        );
    }
    assert!(reported >= 8, "the writer committed {reported} batches");
}
