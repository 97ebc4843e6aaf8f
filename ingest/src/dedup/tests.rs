//! The dedup log over a transactional log in memory that, like Kafka, cannot tell repeats.

use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aqs_eventlog::{
    AppendOutcome, CommitError, DeadLetter, EventLog, Fate, LogError, LogTransaction, PartitionId,
    Probe, RecordPosition, Stream, TransactionWriter, TransactionalLog,
};
use aqs_schemas::{Decoder, Event};
use rusqlite::{Connection, params};

use super::*;

/// What the next commit does.
#[derive(Debug, Clone, Copy)]
enum Commit {
    /// Commits and says so.
    Confirmed,
    /// Commits, but the answer is lost.
    LostAfterCommitting,
    /// Does not commit (the transaction stays open), and the answer is lost.
    LostBeforeCommitting,
    /// Rolls back and says so.
    Refused,
}

#[derive(Debug, Default)]
struct Ledger {
    /// Every record written, with the transaction that wrote it.
    records: Vec<(String, u64)>,
    committed: HashSet<u64>,
    aborted: HashSet<u64>,
    next: u64,
}

/// A transactional log in memory.
#[derive(Debug, Default)]
struct Memory {
    ledger: Mutex<Ledger>,
    failing: AtomicBool,
    /// Fates are not known yet while set.
    undecided: AtomicBool,
    commits: Mutex<VecDeque<Commit>>,
    begins: AtomicUsize,
}

impl Memory {
    /// Event ids readers see, in log order.
    fn visible(&self) -> Vec<String> {
        let ledger = self.ledger.lock().expect("lock");
        ledger
            .records
            .iter()
            .filter(|(_, txn)| ledger.committed.contains(txn))
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn plan(&self, commit: Commit) {
        self.commits.lock().expect("lock").push_back(commit);
    }
}

struct MemoryTransaction<'a> {
    log: &'a Memory,
    txn: u64,
    writer: TransactionWriter,
}

impl LogTransaction for MemoryTransaction<'_> {
    fn writer(&self) -> &TransactionWriter {
        &self.writer
    }

    fn append(&mut self, events: &[Event]) -> Result<Vec<RecordPosition>, LogError> {
        std::thread::sleep(Duration::from_millis(5));
        if self.log.failing.load(Ordering::SeqCst) {
            return Err(LogError::Unavailable("down".into()));
        }
        let mut ledger = self.log.ledger.lock().expect("lock");
        Ok(events
            .iter()
            .map(|event| {
                ledger.records.push((event.event_id.clone(), self.txn));
                RecordPosition {
                    partition: PartitionId {
                        stream: Stream::Events,
                        partition: 0,
                    },
                    offset: ledger.records.len() as u64 - 1,
                }
            })
            .collect())
    }

    fn commit(self: Box<Self>) -> Result<(), CommitError> {
        let plan = self
            .log
            .commits
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or(Commit::Confirmed);
        let mut ledger = self.log.ledger.lock().expect("lock");
        match plan {
            Commit::Confirmed => {
                ledger.committed.insert(self.txn);
                Ok(())
            }
            Commit::LostAfterCommitting => {
                ledger.committed.insert(self.txn);
                Err(CommitError::InDoubt("answer lost".into()))
            }
            Commit::LostBeforeCommitting => Err(CommitError::InDoubt("answer lost".into())),
            Commit::Refused => {
                ledger.aborted.insert(self.txn);
                Err(CommitError::Aborted("refused".into()))
            }
        }
    }

    fn abort(self: Box<Self>) {
        self.log
            .ledger
            .lock()
            .expect("lock")
            .aborted
            .insert(self.txn);
    }
}

impl TransactionalLog for Memory {
    fn begin(&self, _deadline: Instant) -> Result<Box<dyn LogTransaction + '_>, LogError> {
        self.begins.fetch_add(1, Ordering::SeqCst);
        let mut ledger = self.ledger.lock().expect("lock");
        ledger.next += 1;
        Ok(Box::new(MemoryTransaction {
            log: self,
            txn: ledger.next,
            writer: TransactionWriter {
                name: "memory-0".into(),
                incarnation: ledger.next.to_string(),
            },
        }))
    }

    fn fate(
        &self,
        _writer: &TransactionWriter,
        probe: &Probe,
        _deadline: Instant,
    ) -> Result<Fate, LogError> {
        if self.undecided.load(Ordering::SeqCst) {
            return Ok(Fate::Undecided);
        }
        let mut ledger = self.ledger.lock().expect("lock");
        let (id, txn) = ledger.records[probe.position.offset as usize].clone();
        assert_eq!(
            id, probe.event_id,
            "the probe names the record at its position"
        );
        if ledger.committed.contains(&txn) {
            return Ok(Fate::Committed);
        }
        // Restarting the writer aborts what it left open.
        ledger.aborted.insert(txn);
        Ok(Fate::Aborted)
    }

    fn prepare(&self, _deadline: Instant) -> Result<(), LogError> {
        Ok(())
    }

    fn dead_letter(&self, _: &[DeadLetter]) -> Result<(), LogError> {
        Ok(())
    }

    fn partitions(&self) -> u32 {
        1
    }
}

fn visit(id: &str, outlet: &str) -> Event {
    visit_from("crm", id, outlet)
}

fn visit_from(source: &str, id: &str, outlet: &str) -> Event {
    let text = format!(
        r#"{{"event_id":"{id}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"{source}","agent_id":"A1","payload":{{"outlet_id":"{outlet}","purpose":"training"}}}}"#
    );
    Decoder::standard().decode(text.as_bytes()).expect("valid")
}

fn dedup(dir: &Path) -> DedupLog<Memory> {
    let index = DedupIndex::open(dir.join("dedup.db")).expect("index");
    DedupLog::new(Memory::default(), index, Duration::from_secs(5))
}

fn appended(outcome: &AppendOutcome) -> bool {
    matches!(outcome, AppendOutcome::Appended { .. })
}

#[test]
fn another_source_s_event_with_the_same_id_is_another_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dedup(dir.path());
    let first = log
        .append(&[visit_from("crm", "e1", "O1"), visit_from("app", "e1", "O2")])
        .expect("append");
    assert!(first.iter().all(appended));
    let again = log
        .append(&[visit_from("app", "e1", "O2"), visit_from("crm", "e1", "O3")])
        .expect("append");
    assert_eq!(again, [AppendOutcome::Duplicate, AppendOutcome::Conflict]);
    assert_eq!(log.index().len(), 2);
}

#[test]
fn an_index_recorded_by_id_alone_keeps_answering_repeats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dedup.db");
    let known = visit_from("crm", "e1", "O1");
    {
        let connection = Connection::open(&path).expect("create");
        connection
            .execute_batch(
                "CREATE TABLE appended (event_id TEXT PRIMARY KEY, digest BLOB NOT NULL,
                 recorded_at INTEGER NOT NULL) WITHOUT ROWID;",
            )
            .expect("old schema");
        let bytes = serde_json::to_vec(&known).expect("bytes");
        connection
            .execute(
                "INSERT INTO appended VALUES ('e1', ?1, 0)",
                params![&digest(&bytes)[..]],
            )
            .expect("old entry");
    }
    let index = DedupIndex::open(&path).expect("an old index opens");
    assert_eq!(index.len(), 1);
    let log = DedupLog::new(Memory::default(), index, Duration::from_secs(5));
    let outcomes = log
        .append(&[known.clone(), visit_from("app", "e1", "O1")])
        .expect("append");
    assert_eq!(
        outcomes[0],
        AppendOutcome::Duplicate,
        "the same bytes again"
    );
    assert!(
        appended(&outcomes[1]),
        "the same id from another source is appended"
    );
    assert_eq!(log.inner().visible(), ["e1"]);
}

#[test]
fn an_index_of_before_transactions_keeps_its_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dedup.db");
    let known = visit("e1", "O1");
    {
        let connection = Connection::open(&path).expect("create");
        connection
            .execute_batch(
                "CREATE TABLE appended (source TEXT NOT NULL, event_id TEXT NOT NULL,
                 digest BLOB NOT NULL, recorded_at INTEGER NOT NULL,
                 PRIMARY KEY (source, event_id)) WITHOUT ROWID;",
            )
            .expect("schema of before");
        let bytes = serde_json::to_vec(&known).expect("bytes");
        connection
            .execute(
                "INSERT INTO appended VALUES ('crm', 'e1', ?1, 0)",
                params![&digest(&bytes)[..]],
            )
            .expect("entry");
    }
    let log = DedupLog::new(
        Memory::default(),
        DedupIndex::open(&path).expect("opens"),
        Duration::from_secs(5),
    );
    assert_eq!(
        log.append(&[known]).expect("append"),
        [AppendOutcome::Duplicate]
    );
    assert!(log.inner().visible().is_empty());
}

#[test]
fn repeats_are_answered_without_appending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dedup(dir.path());
    let first = log
        .append(&[
            visit("e1", "O1"),
            visit("e2", "O1"),
            visit("e1", "O1"),
            visit("e2", "O9"),
        ])
        .expect("append");
    assert!(appended(&first[0]));
    assert!(appended(&first[1]));
    assert_eq!(first[2], AppendOutcome::Duplicate);
    assert_eq!(first[3], AppendOutcome::Conflict);
    let again = log
        .append(&[visit("e1", "O1"), visit("e2", "O2"), visit("e3", "O1")])
        .expect("append");
    assert_eq!(again[0], AppendOutcome::Duplicate);
    assert_eq!(again[1], AppendOutcome::Conflict);
    assert!(appended(&again[2]));
    assert_eq!(log.inner().visible(), ["e1", "e2", "e3"]);
    assert_eq!(log.index().pending_count().expect("pending"), 0);
    assert_eq!(log.metrics().transactions(), (2, 0, 0));
}

#[test]
fn a_failed_append_records_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dedup(dir.path());
    log.inner().failing.store(true, Ordering::SeqCst);
    assert!(log.append(&[visit("e1", "O1")]).is_err());
    assert!(log.index().is_empty());
    log.inner().failing.store(false, Ordering::SeqCst);
    let outcomes = log.append(&[visit("e1", "O1")]).expect("append");
    assert!(appended(&outcomes[0]));
    assert_eq!(log.index().len(), 1);
    assert_eq!(log.inner().visible(), ["e1"]);
    assert_eq!(log.metrics().transactions(), (1, 1, 0));
}

#[test]
fn a_refused_commit_forgets_the_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dedup(dir.path());
    log.inner().plan(Commit::Refused);
    assert!(log.append(&[visit("e1", "O1"), visit("e2", "O1")]).is_err());
    assert!(log.index().is_empty());
    let outcomes = log
        .append(&[visit("e1", "O1"), visit("e2", "O1")])
        .expect("append");
    assert!(outcomes.iter().all(appended));
    assert_eq!(log.inner().visible(), ["e1", "e2"]);
}

#[test]
fn a_commit_of_unknown_outcome_that_took_effect_makes_the_retry_a_duplicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dedup(dir.path());
    let batch = [visit("e1", "O1"), visit("e2", "O1")];
    log.inner().plan(Commit::LostAfterCommitting);
    let error = log.append(&batch).expect_err("answer lost");
    assert!(error.is_transient(), "{error}");
    assert_eq!(log.index().pending_count().expect("pending"), 1);

    let retry = log.append(&batch).expect("retry");
    assert_eq!(retry, [AppendOutcome::Duplicate, AppendOutcome::Duplicate]);
    assert_eq!(log.inner().visible(), ["e1", "e2"]);
    assert_eq!(log.index().pending_count().expect("pending"), 0);
    assert_eq!(log.metrics().resolved_committed.load(Ordering::Relaxed), 1);
}

#[test]
fn a_commit_of_unknown_outcome_that_did_not_take_effect_is_appended_by_the_retry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dedup(dir.path());
    let batch = [visit("e1", "O1"), visit("e2", "O1")];
    log.inner().plan(Commit::LostBeforeCommitting);
    assert!(log.append(&batch).is_err());

    // While the log cannot tell, the events are neither duplicates nor new.
    log.inner().undecided.store(true, Ordering::SeqCst);
    let error = log.append(&batch[..1]).expect_err("undecided");
    assert!(
        error.is_transient() && error.to_string().contains("not decided yet"),
        "{error}"
    );
    // An unrelated event goes through meanwhile.
    assert!(appended(
        &log.append(&[visit("e3", "O1")]).expect("append")[0]
    ));

    log.inner().undecided.store(false, Ordering::SeqCst);
    let retry = log.append(&batch).expect("retry");
    assert!(retry.iter().all(appended), "{retry:?}");
    assert_eq!(log.inner().visible(), ["e3", "e1", "e2"]);
    assert_eq!(log.metrics().resolved_aborted.load(Ordering::Relaxed), 1);
    assert_eq!(log.index().len(), 3);
}

#[test]
fn the_upkeep_settles_what_a_crash_left_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dedup(dir.path());
    log.inner().plan(Commit::LostAfterCommitting);
    log.inner().plan(Commit::LostBeforeCommitting);
    assert!(log.append(&[visit("e1", "O1")]).is_err());
    assert!(log.append(&[visit("e2", "O1")]).is_err());
    assert_eq!(log.index().pending_count().expect("pending"), 2);
    assert_eq!(
        log.resolve_pending(None, Instant::now() + Duration::from_secs(1))
            .expect("resolve"),
        0
    );
    assert_eq!(log.index().pending_count().expect("pending"), 0);
    let found = log
        .index()
        .lookup([("crm", "e1"), ("crm", "e2")])
        .expect("lookup");
    assert!(matches!(found[&("crm", "e1")], Recorded::Exact(_)));
    assert!(!found.contains_key(&("crm", "e2")));
}

#[test]
fn pruning_forgets_events_older_than_the_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dedup(dir.path()).with_retention(Duration::from_millis(200));
    log.append(&[visit("e1", "O1"), visit("e2", "O1")])
        .expect("append");
    assert_eq!(log.prune().expect("prune"), 0, "still within the retention");
    std::thread::sleep(Duration::from_millis(300));
    log.append(&[visit("e3", "O1")]).expect("append");
    assert_eq!(log.prune().expect("prune"), 2);
    assert_eq!(log.index().len(), 1);
    assert_eq!(log.metrics().pruned(), 2);
    // A resend older than the retention is appended again.
    let late = log
        .append(&[visit("e1", "O1"), visit("e3", "O1")])
        .expect("append");
    assert!(appended(&late[0]));
    assert_eq!(late[1], AppendOutcome::Duplicate);
    assert_eq!(log.inner().visible(), ["e1", "e2", "e3", "e1"]);
}

#[test]
fn concurrent_retries_append_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(dedup(dir.path()));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                log.append(&[visit("e1", "O1"), visit("e2", "O1")])
                    .expect("append")
            })
        })
        .collect();
    let count = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .filter(appended)
        .count();
    assert_eq!(count, 2);
    assert_eq!(log.inner().visible().len(), 2);
    assert_eq!(log.inner().begins.load(Ordering::SeqCst), 1);
}

#[test]
fn metrics_show_the_index_and_the_transactions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dedup(dir.path());
    log.append(&[visit("e1", "O1")]).expect("append");
    let mut metrics = aqs_http::Exposition::new();
    log.render(&mut metrics);
    let text = metrics.into_text();
    assert!(text.contains("aqs_ingest_dedup_entries 1\n"), "{text}");
    assert!(
        text.contains("aqs_ingest_dedup_pending_transactions 0\n"),
        "{text}"
    );
    assert!(
        text.contains("aqs_ingest_dedup_pruned_entries_total 0\n"),
        "{text}"
    );
    assert!(
        text.contains("aqs_ingest_kafka_transactions_total{outcome=\"committed\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("aqs_ingest_dedup_bytes "), "{text}");
    assert!(
        text.contains("aqs_ingest_dedup_oldest_entry_age_seconds "),
        "{text}"
    );
}
