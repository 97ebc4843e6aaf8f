//! Reading the log back with the time each record was appended: for lineage (which events
//! are behind a figure) and for what changed since an earlier run (which records came after
//! it). [`History`] is what either log offers; [`SqliteHistory`] reads the embedded log on a
//! read-only connection of its own (the writers never wait on it), and
//! [`crate::kafka::KafkaHistory`] the Kafka topics.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::{LogError, PartitionId};

/// One record with when the log took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedRecord {
    pub partition: PartitionId,
    pub offset: u64,
    /// Milliseconds since the Unix epoch at which it was appended, when the log knows.
    pub appended_at_ms: Option<i64>,
    /// The event's canonical JSON.
    pub bytes: Vec<u8>,
}

/// A log read back partition by partition, each from its first record to its end as it
/// stands when the read of that partition starts.
pub trait History {
    /// Partitions of the `events` stream.
    fn partitions(&self) -> u32;

    /// Hands every record of each of `partitions` to `each`: every partition's records in
    /// offset order, the streams in the order of their first partition given (the records
    /// of several partitions of one stream may come interleaved).
    fn each_record_in(
        &self,
        partitions: &[PartitionId],
        each: &mut dyn FnMut(TimedRecord),
    ) -> Result<(), LogError>;
}

/// A reader of the embedded log's records, partition by partition.
#[derive(Debug)]
pub struct SqliteHistory {
    connection: Connection,
    partitions: u32,
}

impl SqliteHistory {
    /// Opens the log at `path` for reading; it must exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LogError> {
        let connection = Connection::open_with_flags(
            path.as_ref(),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let partitions: Option<String> = connection
            .query_row(
                "SELECT value FROM log_settings WHERE key = 'partitions'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let partitions = partitions
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| LogError::Config("the log does not record its partitions".into()))?;
        Ok(Self {
            connection,
            partitions,
        })
    }

    /// Partitions of the `events` stream.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Hands every record of `partition` to `each`, in offset order.
    pub fn each_record(
        &self,
        partition: PartitionId,
        mut each: impl FnMut(TimedRecord),
    ) -> Result<(), LogError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT offset, appended_at, body FROM log WHERE stream = ?1 AND partition = ?2 ORDER BY offset",
        )?;
        let mut rows = statement.query(params![partition.stream.code(), partition.partition])?;
        while let Some(row) = rows.next()? {
            each(TimedRecord {
                partition,
                offset: row.get::<_, i64>(0)? as u64,
                appended_at_ms: Some(row.get(1)?),
                bytes: row.get(2)?,
            });
        }
        Ok(())
    }
}

impl History for SqliteHistory {
    fn partitions(&self) -> u32 {
        self.partitions
    }

    fn each_record_in(
        &self,
        partitions: &[PartitionId],
        each: &mut dyn FnMut(TimedRecord),
    ) -> Result<(), LogError> {
        for partition in partitions {
            self.each_record(*partition, &mut *each)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aqs_schemas::Decoder;

    use super::*;
    use crate::sqlite::SqliteLog;
    use crate::{EventLog, Stream};

    #[test]
    fn records_come_back_by_partition_with_their_append_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.db");
        let log = SqliteLog::open(&path, 4).expect("open");
        let visit = |id: &str| {
            let body = format!(
                r#"{{"event_id":"{id}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"app","agent_id":"A1","payload":{{"outlet_id":"O1","purpose":"promotion"}}}}"#
            );
            Decoder::standard().decode(body.as_bytes()).expect("valid")
        };
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        log.append(&[visit("e1"), visit("e2")]).expect("append");
        let history = SqliteHistory::open(&path).expect("history");
        assert_eq!(history.partitions(), 4);
        let partition = PartitionId {
            stream: Stream::Events,
            partition: aqs_schemas::partition::partition_for_key("A1", 4),
        };
        let mut read = Vec::new();
        history
            .each_record(partition, |r| read.push(r))
            .expect("read");
        assert_eq!(read.len(), 2);
        assert_eq!((read[0].offset, read[1].offset), (0, 1));
        assert!(read.iter().all(|r| r.appended_at_ms >= Some(before)));
        assert!(String::from_utf8_lossy(&read[1].bytes).contains("\"e2\""));
    }
}
