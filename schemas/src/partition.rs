//! Where an event goes: the one partitioning rule every log and projector follows.
//!
//! All events of one agent go, in order, to one partition of the event log, chosen from
//! the agent id. Events that concern no single agent (team and outlet reference data,
//! targets above agent level, retractions that name no agent) are reference data: every
//! projector instance reads all of them.

use crate::event::Event;

/// The destination of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route<'a> {
    /// Keyed by this agent id onto one partition of the agent event stream.
    Agent(&'a str),
    /// Read in full by every projector instance.
    Reference,
}

impl Route<'_> {
    /// The partition of an agent route among `partitions`; reference data has its own
    /// single-partition stream, so it is partition 0 there.
    pub fn partition(&self, partitions: u32) -> u32 {
        match self {
            Route::Agent(agent_id) => partition_for_key(agent_id, partitions),
            Route::Reference => 0,
        }
    }
}

impl Event {
    pub fn route(&self) -> Route<'_> {
        match &self.agent_id {
            Some(agent_id) => Route::Agent(agent_id),
            None => Route::Reference,
        }
    }
}

/// Kafka's default partitioner for keyed records: murmur2 of the key bytes, made positive,
/// modulo the partition count. Using the same function everywhere keeps an agent on the same
/// partition whichever client wrote it.
pub fn partition_for_key(key: &str, partitions: u32) -> u32 {
    assert!(partitions > 0, "a log has at least one partition");
    (murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions
}

/// MurmurHash2 (32-bit) with Kafka's seed.
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_reference_values() {
        // Values from Kafka's own partitioner tests (as signed 32-bit integers).
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input) as i32,
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn an_agent_always_lands_on_the_same_partition() {
        let first = partition_for_key("A000042", 12);
        assert!(first < 12);
        for _ in 0..3 {
            assert_eq!(partition_for_key("A000042", 12), first);
        }
        let spread: std::collections::HashSet<u32> = (0..1000)
            .map(|i| partition_for_key(&format!("A{i:06}"), 12))
            .collect();
        assert_eq!(spread.len(), 12, "agents spread over every partition");
    }
}
