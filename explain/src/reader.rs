//! Where lineage reads its events: the records of the log that can touch some agents.

use std::collections::BTreeSet;

use aqs_eventlog::history::SqliteHistory;
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

impl LineageLog for SqliteHistory {
    fn each_record_of(
        &self,
        agents: &BTreeSet<String>,
        each: &mut dyn FnMut(Record),
    ) -> Result<(), LogError> {
        let timed = |record: aqs_eventlog::history::TimedRecord| Record {
            bytes: record.bytes,
            appended_at_ms: Some(record.appended_at_ms),
        };
        self.each_record(
            PartitionId {
                stream: Stream::Reference,
                partition: 0,
            },
            |record| each(timed(record)),
        )?;
        let partitions: BTreeSet<u32> = agents
            .iter()
            .map(|agent| partition_for_key(agent, self.partitions()))
            .collect();
        for partition in partitions {
            self.each_record(
                PartitionId {
                    stream: Stream::Events,
                    partition,
                },
                |record| {
                    let wanted = match agent_of(&record.bytes) {
                        Some(agent) => std::str::from_utf8(agent)
                            .map(|agent| agents.contains(agent))
                            .unwrap_or(true),
                        None => true,
                    };
                    if wanted {
                        each(timed(record));
                    }
                },
            )?;
        }
        Ok(())
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
