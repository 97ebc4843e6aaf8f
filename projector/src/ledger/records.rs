//! The event records kept outside the fold's memory: a record (what the fold remembers of an
//! agent event, [`Sighting`]) is made in memory and, once a checkpoint has written it to the
//! projector's store, forgotten there. A copy or retraction of such an event can come at any
//! later time, so before a batch is folded its caller asks which records the batch may touch
//! ([`Ledger::records_to_fetch`]), reads them from the store and hands them back
//! ([`Ledger::restore_records`]); the fold itself stays pure and never waits on a disk.
//!
//! Which records exist at all is answered by Bloom filters over every record ever made, kept
//! with the state: "no" is certain (a new event, nearly every one, costs no read), "maybe" is
//! a point read that is rare (a real repeat or retraction, or a false positive, about 0.5 %
//! per filter). The filters' keys are hashed with XXH3 (unseeded) over the record's stored
//! key bytes, so a filter written by one build answers for another, and could be made again
//! from the stored keys alone.

use aqs_schemas::{Event, Payload};
use fastbloom::BloomFilter;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::facts::Sighting;
use super::{AgentState, Ledger};

/// Records the first filter is sized for (1.4 MB); each next one is twice as large.
const FIRST_CAPACITY: u64 = 1 << 20;

/// Bits per record at capacity: with 8 hashes, about 0.5 % false positives per filter.
const BITS_PER_RECORD: u64 = 11;
const HASHES: u32 = 8;

/// Why a stored record could not be taken back.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("stored event record key is malformed ({0} bytes)")]
    Key(usize),
    #[error(
        "stored event record of agent {agent}, source {event_source}, event {event_id} could not be decoded: {error}"
    )]
    Value {
        agent: String,
        event_source: String,
        event_id: String,
        error: postcard::Error,
    },
}

/// A record's identity as stored: the agent, the source and the event id, each prefixed by
/// its length (two bytes), so that keys of one agent sort together and no key is the
/// beginning of another (the store appends a version to it).
pub fn record_key(agent: &str, source: &str, event_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(6 + agent.len() + source.len() + event_id.len());
    push_key(&mut key, agent, source, event_id);
    key
}

/// Appends a record's stored key ([`record_key`]) to `key`.
fn push_key(key: &mut Vec<u8>, agent: &str, source: &str, event_id: &str) {
    for part in [agent, source, event_id] {
        key.extend_from_slice(&part_len(part).to_be_bytes());
        key.extend_from_slice(part.as_bytes());
    }
}

fn part_len(part: &str) -> u16 {
    // The contract limits ids far below this.
    u16::try_from(part.len()).expect("an id of fewer than 65,536 bytes")
}

/// The agent, source and event id of a stored key.
fn split_key(key: &[u8]) -> Result<(&str, &str, &str), RecordError> {
    let malformed = || RecordError::Key(key.len());
    let mut rest = key;
    let mut parts = [""; 3];
    for part in &mut parts {
        let (len, tail) = rest.split_first_chunk::<2>().ok_or_else(malformed)?;
        let len = usize::from(u16::from_be_bytes(*len));
        let (bytes, tail) = tail.split_at_checked(len).ok_or_else(malformed)?;
        *part = std::str::from_utf8(bytes).map_err(|_| malformed())?;
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(malformed());
    }
    Ok((parts[0], parts[1], parts[2]))
}

/// A key part's place in key order: its length first (the prefix), then its bytes.
fn by_length(part: &str) -> (usize, &[u8]) {
    (part.len(), part.as_bytes())
}

/// The hash the filter knows a record by: XXH3 of its stored key's bytes (unseeded, so
/// that a stored filter means the same to every build), the key made in a buffer this
/// thread keeps rather than a new one per event.
fn key_hash(agent: &str, source: &str, event_id: &str) -> u64 {
    thread_local! {
        static KEY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    KEY.with_borrow_mut(|key| {
        key.clear();
        push_key(key, agent, source, event_id);
        xxhash_rust::xxh3::xxh3_64(key)
    })
}

#[cfg(test)]
fn stored_key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// Every agent event record ever made, as Bloom filters: "not there" is certain. A filter
/// that reaches the records it was sized for is kept as it is and a new one, twice as
/// large, takes the next records (a scalable Bloom filter): nothing is ever hashed again,
/// and a probe asks each filter, a handful at most (nine at 500 M records).
#[derive(Debug, Clone, Default)]
pub(super) struct RecordFilter {
    stages: Vec<Stage>,
}

#[derive(Debug, Clone)]
struct Stage {
    bits: BloomFilter,
    /// Records it was sized for (about 0.5 % false positives up to here).
    capacity: u64,
    /// Records put in.
    records: u64,
}

impl Stage {
    fn with_capacity(capacity: u64) -> Self {
        let bits = usize::try_from(capacity * BITS_PER_RECORD).unwrap_or(usize::MAX);
        Self {
            bits: BloomFilter::with_num_bits(bits).hashes(HASHES),
            capacity,
            records: 0,
        }
    }
}

impl RecordFilter {
    pub(super) fn insert(&mut self, agent: &str, source: &str, event_id: &str) {
        let hash = key_hash(agent, source, event_id);
        if self.stages.last().is_none_or(|s| s.records >= s.capacity) {
            let capacity = self
                .stages
                .last()
                .map_or(FIRST_CAPACITY, |last| last.capacity * 2);
            self.stages.push(Stage::with_capacity(capacity));
        }
        let stage = self.stages.last_mut().expect("made above");
        stage.bits.insert_hash(hash);
        stage.records += 1;
    }

    fn may_hold(&self, agent: &str, source: &str, event_id: &str) -> bool {
        let hash = key_hash(agent, source, event_id);
        self.stages
            .iter()
            .any(|stage| stage.bits.contains_hash(hash))
    }

    /// Bytes the filters' bits take.
    pub fn bytes(&self) -> usize {
        self.stages
            .iter()
            .map(|stage| stage.bits.as_slice().len() * 8)
            .sum()
    }

    #[cfg(test)]
    fn records(&self) -> u64 {
        self.stages.iter().map(|stage| stage.records).sum()
    }
}

/// A filter as stored in a checkpoint: its bits, sizes and hash count.
#[derive(Serialize, Deserialize)]
struct StoredStage {
    words: Vec<u64>,
    hashes: u32,
    capacity: u64,
    records: u64,
}

impl Serialize for RecordFilter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut stages = serializer.serialize_seq(Some(self.stages.len()))?;
        for stage in &self.stages {
            stages.serialize_element(&StoredStage {
                words: stage.bits.as_slice().to_vec(),
                hashes: stage.bits.num_hashes(),
                capacity: stage.capacity,
                records: stage.records,
            })?;
        }
        stages.end()
    }
}

impl<'de> Deserialize<'de> for RecordFilter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = Vec::<StoredStage>::deserialize(deserializer)?;
        let stages = stored
            .into_iter()
            .map(|stage| {
                if stage.words.is_empty() || stage.hashes == 0 {
                    return Err(serde::de::Error::custom(
                        "an event record filter without bits",
                    ));
                }
                Ok(Stage {
                    bits: BloomFilter::from_vec(stage.words).hashes(stage.hashes),
                    capacity: stage.capacity,
                    records: stage.records,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { stages })
    }
}

/// A record to write: its stored key and value.
pub type StoredRecord = (Vec<u8>, Vec<u8>);

impl Ledger {
    /// The stored keys of the records that folding `events` may read and that are not in
    /// memory: each agent event's own record, and the records a retraction may undo (of its
    /// agent, or of every agent for a retraction that names none).
    pub fn records_to_fetch<'a>(
        &self,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        let mut wanted = |agent: &str, state: Option<&AgentState>, source: &str, id: &str| {
            let in_memory = state.is_some_and(|s| s.seen.contains(source, id));
            if !in_memory && self.record_filter.may_hold(agent, source, id) {
                keys.push(record_key(agent, source, id));
            }
        };
        for event in events {
            let source = event.source.as_str();
            let target = match &event.payload {
                Payload::Retraction(retraction) => Some(retraction.retracted_event_id.as_str()),
                _ => None,
            };
            match &event.agent_id {
                Some(agent) => {
                    let state = self.agents.get(agent.as_str());
                    wanted(agent, state, source, &event.event_id);
                    if let Some(target) = target {
                        wanted(agent, state, source, target);
                    }
                }
                None => {
                    if let Some(target) = target {
                        for (agent, state) in &self.agents {
                            wanted(agent, Some(state), source, target);
                        }
                    }
                }
            }
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Takes back records read from the store (by [`Self::records_to_fetch`]'s keys). A
    /// record already in memory is newer than the stored one and stays.
    pub fn restore_records(
        &mut self,
        records: impl IntoIterator<Item = StoredRecord>,
    ) -> Result<(), RecordError> {
        for (key, value) in records {
            let (agent, source, id) = split_key(&key)?;
            let sighting: Sighting =
                postcard::from_bytes(&value).map_err(|error| RecordError::Value {
                    agent: agent.to_owned(),
                    event_source: source.to_owned(),
                    event_id: id.to_owned(),
                    error,
                })?;
            let state = match self.agents.get_mut(agent) {
                Some(state) => state,
                None => self.agents.entry(agent.to_owned()).or_default(),
            };
            if !state.seen.contains(source, id) {
                state.seen.insert(source, id, sighting);
                self.records_in_memory += 1;
            }
        }
        Ok(())
    }

    /// Hands `write` the records in memory in key order, each as its stored key and value,
    /// to write with the next checkpoint: those made since the last one and those read back
    /// since (a retraction may have changed them). Returns how many.
    pub fn write_unsaved_records<E>(
        &self,
        mut write: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
    ) -> Result<u64, E> {
        // Key order without making every key first: a key is each part prefixed by its
        // length, so it sorts by (length, bytes) part by part (`by_length`).
        let mut agents: Vec<(&String, &AgentState)> = self
            .agents
            .iter()
            .filter(|(_, state)| !state.seen.is_empty())
            .collect();
        agents.sort_unstable_by(|a, b| by_length(a.0).cmp(&by_length(b.0)));
        let mut records: Vec<(&str, &str, &Sighting)> = Vec::new();
        let (mut key, mut value) = (Vec::new(), Vec::new());
        let mut written = 0;
        for (agent, state) in agents {
            records.clear();
            records.extend(state.seen.iter());
            records.sort_unstable_by(|a, b| {
                (by_length(a.0), by_length(a.1)).cmp(&(by_length(b.0), by_length(b.1)))
            });
            for (source, id, sighting) in &records {
                key.clear();
                push_key(&mut key, agent, source, id);
                value.clear();
                value = postcard::to_extend(*sighting, value)
                    .expect("a record encodes: postcard writes every serde value into a Vec");
                write(&key, &value)?;
                written += 1;
            }
        }
        Ok(written)
    }

    /// Records in memory.
    pub fn records_in_memory(&self) -> usize {
        self.records_in_memory
    }

    /// Forgets the records in memory once a checkpoint holds them.
    pub fn forget_saved_records(&mut self) {
        for state in self.agents.values_mut() {
            state.seen = Default::default();
        }
        self.records_in_memory = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_splits_back_into_its_parts_and_hashes_as_its_bytes() {
        let key = record_key("A001", "crm", "e-1");
        assert_eq!(split_key(&key).expect("split"), ("A001", "crm", "e-1"));
        assert_eq!(key_hash("A001", "crm", "e-1"), stored_key_hash(&key));
        // A long id too.
        let long = "e".repeat(300);
        let key = record_key("A001", "crm", &long);
        assert_eq!(key_hash("A001", "crm", &long), stored_key_hash(&key));
        assert_ne!(
            key_hash("A001", "crm", "e-1"),
            key_hash("A001", "crmе", "-1")
        );
        assert!(split_key(&key[..3]).is_err());
    }

    #[test]
    fn the_filter_never_forgets_and_survives_a_round_trip() {
        let mut filter = RecordFilter::default();
        assert!(
            !filter.may_hold("A1", "crm", "e0"),
            "an empty filter holds nothing"
        );
        for n in 0..10_000 {
            filter.insert("A1", "crm", &format!("e{n}"));
        }
        let bytes = postcard::to_allocvec(&filter).expect("encode");
        let back: RecordFilter = postcard::from_bytes(&bytes).expect("decode");
        assert!((0..10_000).all(|n| back.may_hold("A1", "crm", &format!("e{n}"))));
        let false_positives = (0..10_000)
            .filter(|n| back.may_hold("A1", "crm", &format!("x{n}")))
            .count();
        // Sized for a million records, so far below 0.5 %.
        assert!(false_positives < 50, "{false_positives}");
        assert_eq!(back.records(), 10_000);
    }
}

#[cfg(test)]
mod order {
    use aqs_schemas::{BusinessClock, Decoder};

    use super::*;
    use crate::ledger::digest;

    #[test]
    fn records_come_out_in_the_order_of_their_stored_keys() {
        let mut ledger = Ledger::new(BusinessClock::default());
        for (agent, source, id) in [
            ("A10", "crm", "e2"),
            ("A9", "crm", "e10"),
            ("A9", "app", "e1"),
            ("B", "crm", "e9"),
            ("A10", "crm", "e1"),
            ("A9", "crm", "e9"),
        ] {
            let line = format!(
                r#"{{"event_id":"{id}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-03T09:30:00+08:00","source":"{source}","agent_id":"{agent}","payload":{{"outlet_id":"O1","purpose":"promotion"}}}}"#
            );
            let event = Decoder::standard().decode(line.as_bytes()).expect("valid");
            ledger.apply(&event, digest(line.as_bytes()));
        }
        let mut keys = Vec::new();
        let written = ledger
            .write_unsaved_records::<()>(|key, _| {
                keys.push(key.to_vec());
                Ok(())
            })
            .expect("written");
        assert_eq!(written, 6);
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(
            keys[0],
            record_key("B", "crm", "e9"),
            "a shorter id sorts first"
        );
    }
}

#[cfg(test)]
mod growth {
    use super::*;

    #[test]
    fn a_full_filter_is_kept_and_a_larger_one_takes_the_next_records() {
        let mut filter = RecordFilter::default();
        let records = FIRST_CAPACITY + 10;
        for n in 0..records {
            filter.insert("A1", "crm", &format!("e{n}"));
        }
        assert_eq!(filter.stages.len(), 2);
        assert_eq!(filter.stages[1].capacity, 2 * FIRST_CAPACITY);
        assert_eq!(filter.records(), records);
        let back: RecordFilter =
            postcard::from_bytes(&postcard::to_allocvec(&filter).expect("encode")).expect("decode");
        assert!((0..records).all(|n| back.may_hold("A1", "crm", &format!("e{n}"))));
    }
}
