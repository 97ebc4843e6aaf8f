//! The embedded event log: a SQLite database in WAL mode with full synchronous commits, so an
//! append that returned survives `kill -9` and power loss.
//!
//! An event's identity is its `source` and its `event_id`: the log refuses a second event
//! with both the same (a duplicate, or a conflict when the body differs), and takes the same
//! id from another source as a different event. Files written when the identity was the id
//! alone are migrated in place when opened (see [`migrate_identity`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aqs_schemas::Event;
use rusqlite::{Connection, OptionalExtension, params};

use crate::dead_letters::{self, DeadLetterDrops, DeadLetterLimits, DropCounters};
use crate::{
    AppendOutcome, DeadLetter, EventLog, LogConsumer, LogError, LogRecord, PartitionId, Positions,
    Stream,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    stream      INTEGER NOT NULL,
    partition   INTEGER NOT NULL,
    offset      INTEGER NOT NULL,
    event_id    TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    appended_at INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    PRIMARY KEY (stream, partition, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    origin      TEXT    NOT NULL,
    event_id    TEXT,
    body        BLOB    NOT NULL,
    reason      TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS log_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// The index that makes (source, event_id) unique; created after a migration, if any.
const IDENTITY_INDEX: &str =
    "CREATE UNIQUE INDEX IF NOT EXISTS log_identity ON log (source, event_id);";

/// Brings a log written when an event's identity was its id alone to (source, id): adds the
/// `source` column, fills it from each stored body (canonical JSON, which always holds it)
/// and swaps the unique index, in one transaction. Ids were unique before, so they are
/// unique per source after. Returns the records migrated, or `None` when there was nothing
/// to do.
fn migrate_identity(connection: &mut Connection) -> Result<Option<u64>, LogError> {
    let has_source: bool = connection.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('log') WHERE name = 'source'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if has_source {
        return Ok(None);
    }
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    transaction.execute_batch(
        "ALTER TABLE log ADD COLUMN source TEXT NOT NULL DEFAULT '';
         UPDATE log SET source = COALESCE(json_extract(CAST(body AS TEXT), '$.source'), '');
         DROP INDEX IF EXISTS log_event_id;",
    )?;
    let records: i64 = transaction.query_row("SELECT COUNT(*) FROM log", [], |r| r.get(0))?;
    transaction.execute_batch(IDENTITY_INDEX)?;
    transaction.commit()?;
    Ok(Some(records as u64))
}

fn open(path: &Path) -> Result<Connection, LogError> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(30))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    Ok(connection)
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The embedded log. Safe to share between threads; several processes may append to the
/// same file (SQLite serialises writers).
#[derive(Debug)]
pub struct SqliteLog {
    path: PathBuf,
    writer: Mutex<Connection>,
    partitions: u32,
    dead_letter_limits: DeadLetterLimits,
    dead_letter_drops: DropCounters,
}

impl SqliteLog {
    /// Opens or creates the log. The partition count is fixed when the log is created; a
    /// different count later is an error (agents would move partition).
    pub fn open(path: impl AsRef<Path>, partitions: u32) -> Result<Self, LogError> {
        let path = path.as_ref().to_path_buf();
        if partitions == 0 {
            return Err(LogError::Config(
                "the events stream needs at least one partition".into(),
            ));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| LogError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut connection = open(&path)?;
        connection.execute_batch(SCHEMA)?;
        if let Some(records) = migrate_identity(&mut connection)? {
            tracing::info!(
                log = %path.display(),
                records,
                "event log migrated: an event's identity is now its source and its event_id"
            );
        }
        connection.execute_batch(IDENTITY_INDEX)?;
        dead_letters::prepare(&connection)?;
        let stored: Option<String> = connection
            .query_row(
                "SELECT value FROM log_settings WHERE key = 'partitions'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match stored {
            None => {
                connection.execute(
                    "INSERT INTO log_settings (key, value) VALUES ('partitions', ?1)",
                    params![partitions.to_string()],
                )?;
            }
            Some(stored) if stored == partitions.to_string() => {}
            Some(stored) => {
                return Err(LogError::Config(format!(
                    "{} was created with {stored} partitions, not {partitions}",
                    path.display()
                )));
            }
        }
        Ok(Self {
            path,
            writer: Mutex::new(connection),
            partitions,
            dead_letter_limits: DeadLetterLimits::default(),
            dead_letter_drops: DropCounters::default(),
        })
    }

    /// Keeps the dead letters within `limits` (instead of the defaults) from now on, and
    /// drops at once what they exclude.
    pub fn with_dead_letter_limits(mut self, limits: DeadLetterLimits) -> Result<Self, LogError> {
        self.dead_letter_limits = limits;
        {
            let mut writer = self
                .writer
                .lock()
                .map_err(|_| LogError::Unavailable("log lock poisoned".into()))?;
            let transaction = writer.transaction()?;
            dead_letters::prune_now(&transaction, now_millis(), &limits, &self.dead_letter_drops)?;
            transaction.commit()?;
        }
        Ok(self)
    }

    /// Bytes of the dead letters kept now.
    pub fn dead_letter_bytes(&self) -> Result<u64, LogError> {
        let writer = self
            .writer
            .lock()
            .map_err(|_| LogError::Unavailable("log lock poisoned".into()))?;
        dead_letters::stored_bytes(&writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader that owns every partition, for a single projector.
    pub fn consumer(&self) -> Result<SqliteConsumer, LogError> {
        let mut owned: Vec<PartitionId> = (0..self.partitions)
            .map(|partition| PartitionId {
                stream: Stream::Events,
                partition,
            })
            .collect();
        owned.insert(
            0,
            PartitionId {
                stream: Stream::Reference,
                partition: 0,
            },
        );
        Ok(SqliteConsumer {
            connection: open(&self.path)?,
            owned,
            positions: Positions::new(),
        })
    }

    /// Records in the log, all partitions.
    pub fn len(&self) -> Result<u64, LogError> {
        let writer = self
            .writer
            .lock()
            .map_err(|_| LogError::Unavailable("log lock poisoned".into()))?;
        Ok(writer.query_row("SELECT COUNT(*) FROM log", [], |r| r.get::<_, i64>(0))? as u64)
    }

    pub fn is_empty(&self) -> Result<bool, LogError> {
        Ok(self.len()? == 0)
    }

    /// Dead letters kept so far, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, LogError> {
        let writer = self
            .writer
            .lock()
            .map_err(|_| LogError::Unavailable("log lock poisoned".into()))?;
        let mut statement = writer
            .prepare("SELECT origin, event_id, body, reason FROM dead_letters ORDER BY id")?;
        let letters = statement
            .query_map([], |r| {
                Ok(DeadLetter {
                    origin: r.get(0)?,
                    event_id: r.get(1)?,
                    body: r.get(2)?,
                    reason: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(letters)
    }
}

impl EventLog for SqliteLog {
    fn append(&self, events: &[Event]) -> Result<Vec<AppendOutcome>, LogError> {
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| LogError::Unavailable("log lock poisoned".into()))?;
        let transaction =
            writer.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut outcomes = Vec::with_capacity(events.len());
        {
            let mut next_offsets: std::collections::HashMap<PartitionId, u64> =
                std::collections::HashMap::new();
            let mut last_offset = transaction.prepare_cached(
                "SELECT offset FROM log WHERE stream = ?1 AND partition = ?2 ORDER BY offset DESC LIMIT 1",
            )?;
            let mut existing = transaction
                .prepare_cached("SELECT body FROM log WHERE source = ?1 AND event_id = ?2")?;
            let mut insert = transaction.prepare_cached(
                "INSERT INTO log (stream, partition, offset, event_id, body, appended_at, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let appended_at = now_millis();
            for event in events {
                let body = serde_json::to_vec(event)?;
                if let Some(first) = existing
                    .query_row(params![event.source, event.event_id], |r| {
                        r.get::<_, Vec<u8>>(0)
                    })
                    .optional()?
                {
                    outcomes.push(if first == body {
                        AppendOutcome::Duplicate
                    } else {
                        AppendOutcome::Conflict
                    });
                    continue;
                }
                let partition = PartitionId::of(event, self.partitions);
                let offset = match next_offsets.get(&partition) {
                    Some(next) => *next,
                    None => last_offset
                        .query_row(params![partition.stream.code(), partition.partition], |r| {
                            r.get::<_, i64>(0)
                        })
                        .optional()?
                        .map_or(0, |last| last as u64 + 1),
                };
                insert.execute(params![
                    partition.stream.code(),
                    partition.partition,
                    offset as i64,
                    event.event_id,
                    body,
                    appended_at,
                    event.source
                ])?;
                next_offsets.insert(partition, offset + 1);
                outcomes.push(AppendOutcome::Appended { partition, offset });
            }
        }
        transaction.commit()?;
        Ok(outcomes)
    }

    fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), LogError> {
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| LogError::Unavailable("log lock poisoned".into()))?;
        let transaction = writer.transaction()?;
        dead_letters::keep(
            &transaction,
            letters,
            now_millis(),
            &self.dead_letter_limits,
            &self.dead_letter_drops,
        )?;
        transaction.commit()?;
        Ok(())
    }

    fn partitions(&self) -> u32 {
        self.partitions
    }

    fn dead_letter_drops(&self) -> DeadLetterDrops {
        self.dead_letter_drops.snapshot()
    }
}

/// Reads every partition of an embedded log.
#[derive(Debug)]
pub struct SqliteConsumer {
    connection: Connection,
    owned: Vec<PartitionId>,
    positions: Positions,
}

impl LogConsumer for SqliteConsumer {
    fn assignment(&mut self) -> Vec<PartitionId> {
        self.owned.clone()
    }

    fn seek(&mut self, positions: &Positions) -> Result<(), LogError> {
        self.positions = self
            .owned
            .iter()
            .map(|p| (*p, positions.get(p).copied().unwrap_or(0)))
            .collect();
        Ok(())
    }

    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<LogRecord>, LogError> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut records = Vec::new();
            let per_partition = (max / self.owned.len().max(1)).max(1);
            let mut statement = self.connection.prepare_cached(
                "SELECT offset, body FROM log WHERE stream = ?1 AND partition = ?2 AND offset >= ?3 ORDER BY offset LIMIT ?4",
            )?;
            for partition in &self.owned {
                let from = self.positions.get(partition).copied().unwrap_or(0);
                let rows = statement.query_map(
                    params![
                        partition.stream.code(),
                        partition.partition,
                        from as i64,
                        per_partition as i64
                    ],
                    |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?)),
                )?;
                for row in rows {
                    let (offset, bytes) = row?;
                    records.push(LogRecord {
                        partition: *partition,
                        offset,
                        bytes,
                    });
                    self.positions.insert(*partition, offset + 1);
                }
            }
            if !records.is_empty() || Instant::now() >= deadline {
                return Ok(records);
            }
            std::thread::sleep(
                Duration::from_millis(20).min(deadline.saturating_duration_since(Instant::now())),
            );
        }
    }

    fn report_progress(&mut self, _positions: &Positions) -> Result<(), LogError> {
        // The projector's own checkpoint is the truth; the embedded log keeps no progress.
        Ok(())
    }

    fn lag(&mut self, positions: &Positions) -> Option<u64> {
        // Offsets are dense (each append takes the next), so a partition's lag is its next
        // offset less the position: one index probe, where counting the rows behind the
        // position would read every record's page (gigabytes for a long log, once a second).
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT offset FROM log WHERE stream = ?1 AND partition = ?2 ORDER BY offset DESC LIMIT 1",
            )
            .ok()?;
        let mut lag = 0;
        for partition in &self.owned {
            let from = positions.get(partition).copied().unwrap_or(0);
            let last: Option<i64> = statement
                .query_row(params![partition.stream.code(), partition.partition], |r| {
                    r.get(0)
                })
                .optional()
                .ok()?;
            let next = last.map_or(0, |last| last as u64 + 1);
            lag += next.saturating_sub(from);
        }
        Some(lag)
    }
}

#[cfg(test)]
mod tests {
    use aqs_schemas::Decoder;

    use super::*;

    fn event(id: &str, agent: Option<&str>, purpose: &str) -> Event {
        event_of("t", id, agent, purpose)
    }

    fn event_of(source: &str, id: &str, agent: Option<&str>, purpose: &str) -> Event {
        let agent = agent.map_or(String::new(), |a| format!(r#","agent_id":"{a}""#));
        let body = if agent.is_empty() {
            format!(
                r#"{{"event_id":"{id}","type":"outlet_registered","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"{source}","payload":{{"outlet_id":"O1","bank":"ICBC","name":"{purpose}","region_id":"R1"}}}}"#
            )
        } else {
            format!(
                r#"{{"event_id":"{id}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"{source}"{agent},"payload":{{"outlet_id":"O1","purpose":"{purpose}"}}}}"#
            )
        };
        Decoder::standard().decode(body.as_bytes()).expect("valid")
    }

    #[test]
    fn an_event_is_its_source_and_its_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = SqliteLog::open(dir.path().join("events.db"), 4).expect("open");
        let outcomes = log
            .append(&[
                event_of("crm", "e1", Some("A1"), "training"),
                event_of("app", "e1", Some("A1"), "service"),
                event_of("crm", "e1", Some("A1"), "training"),
                event_of("app", "e1", Some("A1"), "other"),
            ])
            .expect("append");
        assert!(matches!(outcomes[0], AppendOutcome::Appended { .. }));
        assert!(
            matches!(outcomes[1], AppendOutcome::Appended { .. }),
            "another source's id is another event"
        );
        assert_eq!(outcomes[2], AppendOutcome::Duplicate);
        assert_eq!(outcomes[3], AppendOutcome::Conflict);
        assert_eq!(log.len().expect("len"), 2);
    }

    /// The log as it was written when the id alone was an event's identity.
    const LOG_BEFORE_SOURCES: &str = "
        CREATE TABLE log (
            stream INTEGER NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
            event_id TEXT NOT NULL, body BLOB NOT NULL, appended_at INTEGER NOT NULL,
            PRIMARY KEY (stream, partition, offset)
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX log_event_id ON log (event_id);
        CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, origin TEXT NOT NULL,
            event_id TEXT, body BLOB NOT NULL, reason TEXT NOT NULL
        );
        CREATE TABLE log_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO log_settings VALUES ('partitions', '4');";

    #[test]
    fn a_log_written_before_sources_were_identity_is_migrated_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.db");
        let old = [
            event_of("crm", "e1", Some("A1"), "training"),
            event_of("crm", "e2", Some("A1"), "service"),
            event_of("hr", "r1", None, "x"),
        ];
        {
            let connection = Connection::open(&path).expect("create");
            connection
                .execute_batch(LOG_BEFORE_SOURCES)
                .expect("old schema");
            for (offset, event) in old.iter().enumerate() {
                let partition = PartitionId::of(event, 4);
                let offset = if partition.stream == Stream::Reference {
                    0
                } else {
                    offset
                };
                connection
                    .execute(
                        "INSERT INTO log VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                        params![
                            partition.stream.code(),
                            partition.partition,
                            offset as i64,
                            event.event_id,
                            serde_json::to_vec(event).expect("body")
                        ],
                    )
                    .expect("old row");
            }
        }
        let log = SqliteLog::open(&path, 4).expect("an old log opens");
        let outcomes = log
            .append(&[
                event_of("crm", "e1", Some("A1"), "training"),
                event_of("crm", "e2", Some("A1"), "other"),
                event_of("app", "e1", Some("A1"), "training"),
                event_of("crm", "e3", Some("A1"), "promotion"),
            ])
            .expect("append");
        assert_eq!(outcomes[0], AppendOutcome::Duplicate);
        assert_eq!(outcomes[1], AppendOutcome::Conflict);
        let partition = PartitionId::of(&old[0], 4);
        assert_eq!(
            outcomes[2],
            AppendOutcome::Appended {
                partition,
                offset: 2
            },
            "offsets continue after the old records"
        );
        assert_eq!(
            outcomes[3],
            AppendOutcome::Appended {
                partition,
                offset: 3
            }
        );
        let mut consumer = log.consumer().expect("consumer");
        consumer.seek(&Positions::new()).expect("seek");
        let records = consumer.poll(100, Duration::from_millis(10)).expect("poll");
        assert_eq!(records.len(), 5, "old and new records are read alike");
        assert_eq!(records[0].bytes, serde_json::to_vec(&old[2]).expect("body"));

        // Opening again finds nothing left to migrate.
        drop(log);
        let mut connection = open(&path).expect("reopen");
        assert_eq!(migrate_identity(&mut connection).expect("migrate"), None);
        let sources: Vec<String> = connection
            .prepare("SELECT source FROM log ORDER BY stream, partition, offset")
            .expect("query")
            .query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("sources");
        assert_eq!(sources, ["crm", "crm", "app", "crm", "hr"]);
    }

    #[test]
    fn appends_in_order_per_partition_and_refuses_repeats() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = SqliteLog::open(dir.path().join("events.db"), 4).expect("open");
        let outcomes = log
            .append(&[
                event("e1", Some("A1"), "training"),
                event("e2", Some("A1"), "service"),
                event("r1", None, "x"),
                event("e1", Some("A1"), "training"),
                event("e2", Some("A1"), "other"),
            ])
            .expect("append");
        let partition = PartitionId::of(&event("e1", Some("A1"), "training"), 4);
        assert_eq!(
            outcomes[0],
            AppendOutcome::Appended {
                partition,
                offset: 0
            }
        );
        assert_eq!(
            outcomes[1],
            AppendOutcome::Appended {
                partition,
                offset: 1
            }
        );
        assert!(matches!(
            outcomes[2],
            AppendOutcome::Appended {
                partition: PartitionId {
                    stream: Stream::Reference,
                    ..
                },
                offset: 0
            }
        ));
        assert_eq!(outcomes[3], AppendOutcome::Duplicate);
        assert_eq!(outcomes[4], AppendOutcome::Conflict);
        assert_eq!(log.len().expect("len"), 3);

        // Offsets continue across reopening; the partition count is fixed.
        drop(log);
        assert!(SqliteLog::open(dir.path().join("events.db"), 8).is_err());
        let log = SqliteLog::open(dir.path().join("events.db"), 4).expect("reopen");
        let outcomes = log
            .append(&[event("e3", Some("A1"), "promotion")])
            .expect("append");
        assert_eq!(
            outcomes[0],
            AppendOutcome::Appended {
                partition,
                offset: 2
            }
        );

        let mut consumer = log.consumer().expect("consumer");
        consumer.seek(&Positions::new()).expect("seek");
        let records = consumer.poll(100, Duration::from_millis(10)).expect("poll");
        assert_eq!(records.len(), 4);
        let offsets: Vec<u64> = records
            .iter()
            .filter(|r| r.partition == partition)
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, vec![0, 1, 2]);
        assert!(
            consumer
                .poll(100, Duration::from_millis(10))
                .expect("poll")
                .is_empty()
        );

        // Replay from any position.
        consumer
            .seek(&Positions::from([(partition, 2)]))
            .expect("seek");
        let again = consumer.poll(100, Duration::from_millis(10)).expect("poll");
        assert_eq!(again.iter().filter(|r| r.partition == partition).count(), 1);
        assert_eq!(consumer.lag(&Positions::new()), Some(4));
        assert_eq!(consumer.lag(&Positions::from([(partition, 2)])), Some(2));
        assert_eq!(consumer.lag(&Positions::from([(partition, 3)])), Some(1));
    }

    #[test]
    fn dead_letters_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = SqliteLog::open(dir.path().join("events.db"), 1).expect("open");
        log.dead_letter(&[DeadLetter {
            origin: "import f.ndjson line 3".into(),
            event_id: Some("x".into()),
            body: b"{}".to_vec(),
            reason: "payload: missing".into(),
        }])
        .expect("dead letter");
        assert_eq!(
            log.dead_letters().expect("read")[0].origin,
            "import f.ndjson line 3"
        );
    }
}
