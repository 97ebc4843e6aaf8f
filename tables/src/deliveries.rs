//! The digests and alerts already delivered, one row per idempotency key (destination,
//! scope, period): written once a webhook has taken the message, so a restart sends every
//! due message that is not here and none that is. `deliveries.db` in the data folder.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
    key         TEXT    PRIMARY KEY,
    destination TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    scope_id    TEXT    NOT NULL,
    period      TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    sent_at     TEXT    NOT NULL
) WITHOUT ROWID;
";

/// One delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub key: String,
    pub destination: String,
    /// `morning`, `weekly` or an alert rule.
    pub kind: String,
    pub scope_id: String,
    pub period: String,
    pub attempts: u32,
    /// RFC 3339.
    pub sent_at: String,
}

/// The record of deliveries (full synchronous commits: a delivery recorded survives a crash).
#[derive(Debug)]
pub struct DeliveryLog {
    connection: Connection,
}

impl DeliveryLog {
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.execute_batch(SCHEMA)?;
        Ok(Self { connection })
    }

    /// Whether the message of `key` was delivered.
    pub fn delivered(&self, key: &str) -> rusqlite::Result<bool> {
        Ok(self
            .connection
            .query_row(
                "SELECT 1 FROM deliveries WHERE key = ?1",
                params![key],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Records a delivery; recording the same key again keeps the first.
    pub fn record(&self, delivery: &Delivery) -> rusqlite::Result<()> {
        self.connection.execute(
            "INSERT OR IGNORE INTO deliveries (key, destination, kind, scope_id, period, attempts, sent_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                delivery.key,
                delivery.destination,
                delivery.kind,
                delivery.scope_id,
                delivery.period,
                delivery.attempts,
                delivery.sent_at
            ],
        )?;
        Ok(())
    }

    /// Every delivery, by key.
    pub fn all(&self) -> rusqlite::Result<Vec<Delivery>> {
        let mut statement = self.connection.prepare(
            "SELECT key, destination, kind, scope_id, period, attempts, sent_at FROM deliveries ORDER BY key",
        )?;
        statement
            .query_map([], |r| {
                Ok(Delivery {
                    key: r.get(0)?,
                    destination: r.get(1)?,
                    kind: r.get(2)?,
                    scope_id: r.get(3)?,
                    period: r.get(4)?,
                    attempts: r.get(5)?,
                    sent_at: r.get(6)?,
                })
            })?
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_is_recorded_once_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("deliveries.db");
        let delivery = Delivery {
            key: "wecom|morning|T0001|2026-11-02".into(),
            destination: "wecom".into(),
            kind: "morning".into(),
            scope_id: "T0001".into(),
            period: "2026-11-02".into(),
            attempts: 1,
            sent_at: "2026-11-02T08:30:00+08:00".into(),
        };
        {
            let log = DeliveryLog::open(&path).expect("open");
            assert!(!log.delivered(&delivery.key).expect("read"));
            log.record(&delivery).expect("record");
            log.record(&Delivery {
                attempts: 3,
                ..delivery.clone()
            })
            .expect("again");
        }
        let log = DeliveryLog::open(&path).expect("reopen");
        assert!(log.delivered(&delivery.key).expect("read"));
        assert_eq!(log.all().expect("all"), vec![delivery]);
    }
}
