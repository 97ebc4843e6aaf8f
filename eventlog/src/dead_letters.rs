//! How much of the dead letters is kept: a bound on their age and on their bytes, oldest
//! dropped first.
//!
//! Dead letters are kept for inspection and replay, not for ever: a flood of bad input
//! must not fill the disk the log lives on. The embedded log applies [`DeadLetterLimits`]
//! itself each time it keeps letters (and when it opens); the Kafka log gives the
//! dead-letter topic `retention.ms` and `retention.bytes` from them when it creates it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, Transaction, params};

use crate::{DeadLetter, LogError};

/// Default bound on the age of dead letters, in days.
pub const DEFAULT_MAX_AGE_DAYS: u32 = 90;
/// Default bound on the bytes of dead letters: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024 * 1024;

/// Bounds on the dead letters a log keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct DeadLetterLimits {
    /// Dead letters older than this many days are dropped (Kafka: `retention.ms` of the
    /// dead-letter topic created here).
    #[arg(
        long = "dead-letter-max-age-days",
        env = "AQS_DEAD_LETTER_MAX_AGE_DAYS",
        default_value_t = DEFAULT_MAX_AGE_DAYS,
        value_parser = clap::value_parser!(u32).range(1..=36_500)
    )]
    pub max_age_days: u32,
    /// Dead letters beyond this many bytes are dropped, oldest first (Kafka:
    /// `retention.bytes`, per partition, of the dead-letter topic created here).
    #[arg(
        long = "dead-letter-max-bytes",
        env = "AQS_DEAD_LETTER_MAX_BYTES",
        default_value_t = DEFAULT_MAX_BYTES,
        value_parser = clap::value_parser!(u64).range(1_048_576..)
    )]
    pub max_bytes: u64,
}

impl Default for DeadLetterLimits {
    fn default() -> Self {
        Self {
            max_age_days: DEFAULT_MAX_AGE_DAYS,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl DeadLetterLimits {
    pub fn max_age(&self) -> Duration {
        Duration::from_secs(u64::from(self.max_age_days) * 86_400)
    }

    /// `retention.ms` of the dead-letter topic.
    pub fn retention_ms(&self) -> String {
        (u64::from(self.max_age_days) * 86_400_000).to_string()
    }

    /// `segment.bytes` of the dead-letter topic: Kafka deletes whole segments, so a tenth of
    /// the bound keeps the topic within about 10 % of it (1 MiB to 1 GiB).
    pub fn segment_bytes(&self) -> String {
        (self.max_bytes / 10)
            .clamp(1024 * 1024, 1024 * 1024 * 1024)
            .to_string()
    }
}

/// Dead letters dropped to stay within the limits, since the log was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeadLetterDrops {
    pub by_age: u64,
    pub by_age_bytes: u64,
    pub by_size: u64,
    pub by_size_bytes: u64,
}

/// The counters behind [`DeadLetterDrops`].
#[derive(Debug, Default)]
pub(crate) struct DropCounters {
    by_age: AtomicU64,
    by_age_bytes: AtomicU64,
    by_size: AtomicU64,
    by_size_bytes: AtomicU64,
}

impl DropCounters {
    pub(crate) fn snapshot(&self) -> DeadLetterDrops {
        DeadLetterDrops {
            by_age: self.by_age.load(Ordering::Relaxed),
            by_age_bytes: self.by_age_bytes.load(Ordering::Relaxed),
            by_size: self.by_size.load(Ordering::Relaxed),
            by_size_bytes: self.by_size_bytes.load(Ordering::Relaxed),
        }
    }

    fn add(&self, pruned: Pruned) {
        self.by_age.fetch_add(pruned.by_age.0, Ordering::Relaxed);
        self.by_age_bytes
            .fetch_add(pruned.by_age.1, Ordering::Relaxed);
        self.by_size.fetch_add(pruned.by_size.0, Ordering::Relaxed);
        self.by_size_bytes
            .fetch_add(pruned.by_size.1, Ordering::Relaxed);
    }
}

/// The bytes a stored letter takes, as SQL over a `dead_letters` row.
const LETTER_BYTES: &str = "octet_length(origin) + COALESCE(octet_length(event_id), 0) \
                            + octet_length(body) + octet_length(reason)";

/// The tables beside `dead_letters`: an index by age, and the running total of their bytes
/// (kept in the same transactions as the letters, so every process writing the file agrees).
pub(crate) fn prepare(connection: &Connection) -> Result<(), LogError> {
    connection.execute_batch(
        "CREATE INDEX IF NOT EXISTS dead_letters_received_at ON dead_letters (received_at);
         CREATE TABLE IF NOT EXISTS dead_letter_totals (
             id            INTEGER PRIMARY KEY CHECK (id = 0),
             bytes         INTEGER NOT NULL,
             dropped       INTEGER NOT NULL,
             dropped_bytes INTEGER NOT NULL
         );",
    )?;
    connection.execute(
        &format!(
            "INSERT OR IGNORE INTO dead_letter_totals (id, bytes, dropped, dropped_bytes)
             SELECT 0, COALESCE(SUM({LETTER_BYTES}), 0), 0, 0 FROM dead_letters"
        ),
        [],
    )?;
    Ok(())
}

/// Letters and bytes dropped, by age and by size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Pruned {
    by_age: (u64, u64),
    by_size: (u64, u64),
}

/// Keeps `letters` received at `now_ms`, then drops what the limits exclude, in one
/// transaction.
pub(crate) fn keep(
    transaction: &Transaction<'_>,
    letters: &[DeadLetter],
    now_ms: i64,
    limits: &DeadLetterLimits,
    counters: &DropCounters,
) -> Result<(), LogError> {
    let mut added: i64 = 0;
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO dead_letters (received_at, origin, event_id, body, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for letter in letters {
            insert.execute(params![
                now_ms,
                letter.origin,
                letter.event_id,
                letter.body,
                letter.reason
            ])?;
            let bytes = letter.origin.len()
                + letter.event_id.as_ref().map_or(0, String::len)
                + letter.body.len()
                + letter.reason.len();
            added += i64::try_from(bytes).unwrap_or(i64::MAX);
        }
    }
    transaction.execute(
        "UPDATE dead_letter_totals SET bytes = bytes + ?1 WHERE id = 0",
        params![added],
    )?;
    let pruned = prune(transaction, now_ms, limits)?;
    if pruned != Pruned::default() {
        counters.add(pruned);
        tracing::info!(
            by_age = pruned.by_age.0,
            by_age_bytes = pruned.by_age.1,
            by_size = pruned.by_size.0,
            by_size_bytes = pruned.by_size.1,
            max_age_days = limits.max_age_days,
            max_bytes = limits.max_bytes,
            "dead letters dropped to stay within their limits"
        );
    }
    Ok(())
}

/// Drops the letters older than the age bound, then the oldest until the rest fit.
pub(crate) fn prune_now(
    transaction: &Transaction<'_>,
    now_ms: i64,
    limits: &DeadLetterLimits,
    counters: &DropCounters,
) -> Result<(), LogError> {
    let pruned = prune(transaction, now_ms, limits)?;
    counters.add(pruned);
    Ok(())
}

fn prune(
    transaction: &Transaction<'_>,
    now_ms: i64,
    limits: &DeadLetterLimits,
) -> Result<Pruned, LogError> {
    let max_age_ms = i64::try_from(limits.max_age().as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms.saturating_sub(max_age_ms);
    let by_age: (i64, i64) = transaction.query_row(
        &format!(
            "SELECT COUNT(*), COALESCE(SUM({LETTER_BYTES}), 0) FROM dead_letters \
             WHERE received_at < ?1"
        ),
        params![cutoff],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if by_age.0 > 0 {
        transaction.execute(
            "DELETE FROM dead_letters WHERE received_at < ?1",
            params![cutoff],
        )?;
    }

    let total: i64 = transaction.query_row(
        "SELECT bytes FROM dead_letter_totals WHERE id = 0",
        [],
        |row| row.get(0),
    )?;
    let total = total - by_age.1;
    let max_bytes = i64::try_from(limits.max_bytes).unwrap_or(i64::MAX);
    let mut by_size = (0_i64, 0_i64);
    if total > max_bytes {
        // The oldest first, until what is left fits.
        let excess = total - max_bytes;
        let mut last_id = None;
        {
            let mut oldest = transaction.prepare(&format!(
                "SELECT id, {LETTER_BYTES} FROM dead_letters ORDER BY id"
            ))?;
            let mut rows = oldest.query([])?;
            while let Some(row) = rows.next()? {
                let (id, bytes): (i64, i64) = (row.get(0)?, row.get(1)?);
                by_size = (by_size.0 + 1, by_size.1 + bytes);
                last_id = Some(id);
                if by_size.1 >= excess {
                    break;
                }
            }
        }
        if let Some(last_id) = last_id {
            transaction.execute("DELETE FROM dead_letters WHERE id <= ?1", params![last_id])?;
        }
    }
    let dropped = by_age.0 + by_size.0;
    let dropped_bytes = by_age.1 + by_size.1;
    if dropped > 0 {
        transaction.execute(
            "UPDATE dead_letter_totals SET bytes = bytes - ?1, dropped = dropped + ?2, \
             dropped_bytes = dropped_bytes + ?1 WHERE id = 0",
            params![dropped_bytes, dropped],
        )?;
    }
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(Pruned {
        by_age: (count(by_age.0), count(by_age.1)),
        by_size: (count(by_size.0), count(by_size.1)),
    })
}

/// The bytes of the dead letters kept now, as the running total says.
pub(crate) fn stored_bytes(connection: &Connection) -> Result<u64, LogError> {
    let bytes: i64 = connection.query_row(
        "SELECT bytes FROM dead_letter_totals WHERE id = 0",
        [],
        |row| row.get(0),
    )?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use crate::sqlite::SqliteLog;
    use crate::{DeadLetter, EventLog};

    use super::*;

    fn letter(n: usize, body_bytes: usize) -> DeadLetter {
        DeadLetter {
            origin: format!("http crm item {n}"),
            event_id: Some(format!("e{n}")),
            body: vec![b'x'; body_bytes],
            reason: "[]".to_owned(),
        }
    }

    fn ids(log: &SqliteLog) -> Vec<String> {
        log.dead_letters()
            .expect("letters")
            .into_iter()
            .filter_map(|l| l.event_id)
            .collect()
    }

    #[test]
    fn the_oldest_letters_go_first_once_the_bytes_are_over_the_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = DeadLetterLimits {
            max_age_days: 90,
            max_bytes: 10_000,
        };
        let log = SqliteLog::open(dir.path().join("events.db"), 1)
            .expect("open")
            .with_dead_letter_limits(limits)
            .expect("limits");
        for n in 0..8 {
            log.dead_letter(&[letter(n, 2_000)]).expect("kept");
        }
        // About 2 KB each: the four newest fit in 10 kB.
        assert_eq!(ids(&log), ["e4", "e5", "e6", "e7"]);
        let stored = log.dead_letter_bytes().expect("bytes");
        assert!(stored <= 10_000, "{stored}");
        let drops = log.dead_letter_drops();
        assert_eq!((drops.by_size, drops.by_age), (4, 0));
        assert!(drops.by_size_bytes >= 8_000);

        // A batch larger than the bound keeps its newest letters only.
        log.dead_letter(&(8..16).map(|n| letter(n, 2_000)).collect::<Vec<_>>())
            .expect("kept");
        assert_eq!(ids(&log), ["e12", "e13", "e14", "e15"]);

        // The running total survives reopening, and agrees with the letters.
        drop(log);
        let log = SqliteLog::open(dir.path().join("events.db"), 1).expect("reopen");
        let stored = log.dead_letter_bytes().expect("bytes");
        let counted: usize = log
            .dead_letters()
            .expect("letters")
            .iter()
            .map(|l| {
                l.origin.len()
                    + l.event_id.as_ref().map_or(0, String::len)
                    + l.body.len()
                    + l.reason.len()
            })
            .sum();
        assert_eq!(stored, counted as u64);
    }

    #[test]
    fn letters_older_than_the_bound_go_when_letters_are_kept_and_when_the_log_opens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.db");
        let log = SqliteLog::open(&path, 1).expect("open");
        log.dead_letter(&[letter(0, 10), letter(1, 10)])
            .expect("kept");
        // Received 100 days ago, as far as the store knows.
        {
            let connection = Connection::open(&path).expect("open");
            connection
                .execute(
                    "UPDATE dead_letters SET received_at = received_at - 100 * 86400000 WHERE event_id = 'e0'",
                    [],
                )
                .expect("age");
        }
        log.dead_letter(&[letter(2, 10)]).expect("kept");
        assert_eq!(ids(&log), ["e1", "e2"]);
        assert_eq!(log.dead_letter_drops().by_age, 1);

        {
            let connection = Connection::open(&path).expect("open");
            connection
                .execute(
                    "UPDATE dead_letters SET received_at = received_at - 10 * 86400000 WHERE event_id = 'e1'",
                    [],
                )
                .expect("age");
        }
        drop(log);
        let week = DeadLetterLimits {
            max_age_days: 7,
            ..DeadLetterLimits::default()
        };
        let log = SqliteLog::open(&path, 1)
            .expect("reopen")
            .with_dead_letter_limits(week)
            .expect("limits");
        assert_eq!(ids(&log), ["e2"]);
        assert_eq!(log.dead_letter_drops().by_age, 1);
    }

    #[test]
    fn kafka_retention_follows_the_limits() {
        let limits = DeadLetterLimits {
            max_age_days: 90,
            max_bytes: 1024 * 1024 * 1024,
        };
        assert_eq!(limits.retention_ms(), "7776000000");
        assert_eq!(limits.segment_bytes(), "107374182");
        let small = DeadLetterLimits {
            max_bytes: 2 * 1024 * 1024,
            ..limits
        };
        assert_eq!(small.segment_bytes(), "1048576");
    }
}
