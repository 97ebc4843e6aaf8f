//! Where lineage reads its events: the records of the log that can touch some agents.

use std::collections::BTreeSet;
use std::path::PathBuf;

use aqs_eventlog::history::{History, SqliteHistory, TimedRecord};
use aqs_eventlog::{LogError, PartitionId, Stream};
use aqs_schemas::partition::partition_for_key;

/// A record of the log, with when it was appended when the log knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub bytes: Vec<u8>,
    pub appended_at_ms: Option<i64>,
}

/// A log that hands back the records that can touch `agents`: every reference record, and
/// the records of those agents (a superset is fine: the fold filters again).
pub trait LineageLog {
    fn each_record_of(
        &self,
        agents: &BTreeSet<String>,
        each: &mut dyn FnMut(Record),
    ) -> Result<(), LogError>;
}

/// The envelope's agent id of a canonical record, read without decoding it. Only the
/// envelope carries `agent_id`, and ids never need escaping, so the first match is it.
fn agent_of(bytes: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"agent_id\":\"";
    let at = bytes.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = &bytes[at..];
    let end = rest.iter().position(|b| *b == b'"')?;
    Some(&rest[..end])
}

/// The records of `history` that can touch `agents`: the reference partition whole, then
/// the partitions those agents hash to, each record of another agent left out.
pub fn records_of(
    history: &dyn History,
    agents: &BTreeSet<String>,
    each: &mut dyn FnMut(Record),
) -> Result<(), LogError> {
    let mut partitions = vec![PartitionId {
        stream: Stream::Reference,
        partition: 0,
    }];
    let events: BTreeSet<u32> = agents
        .iter()
        .map(|agent| partition_for_key(agent, history.partitions()))
        .collect();
    partitions.extend(events.into_iter().map(|partition| PartitionId {
        stream: Stream::Events,
        partition,
    }));
    history.each_record_in(&partitions, &mut |record: TimedRecord| {
        let wanted = record.partition.stream == Stream::Reference
            || match agent_of(&record.bytes) {
                Some(agent) => std::str::from_utf8(agent)
                    .map(|agent| agents.contains(agent))
                    .unwrap_or(true),
                None => true,
            };
        if wanted {
            each(Record {
                bytes: record.bytes,
                appended_at_ms: record.appended_at_ms,
            });
        }
    })
}

/// Every log read back partition by partition (the embedded log's `SqliteHistory`, Kafka's
/// `KafkaHistory`) hands back its records the same way.
impl<H: History> LineageLog for H {
    fn each_record_of(
        &self,
        agents: &BTreeSet<String>,
        each: &mut dyn FnMut(Record),
    ) -> Result<(), LogError> {
        records_of(self, agents, each)
    }
}

/// The embedded log at a path (`events.db`), opened for each read: a read-only connection
/// of the read's own.
#[derive(Debug, Clone)]
pub struct EmbeddedLog {
    path: PathBuf,
}

impl EmbeddedLog {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

impl LineageLog for EmbeddedLog {
    fn each_record_of(
        &self,
        agents: &BTreeSet<String>,
        each: &mut dyn FnMut(Record),
    ) -> Result<(), LogError> {
        records_of(&SqliteHistory::open(&self.path)?, agents, each)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_is_read_from_the_envelope() {
        let body = br#"{"event_id":"e1","type":"outlet_visit","agent_id":"A0001","payload":{}}"#;
        assert_eq!(agent_of(body), Some(&b"A0001"[..]));
        assert_eq!(agent_of(br#"{"event_id":"e1"}"#), None);
    }
}
