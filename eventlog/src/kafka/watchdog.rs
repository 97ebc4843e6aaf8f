//! The reader's watchdog: notices a Kafka client that has stopped reading although the log
//! goes on, and says which client to make again.
//!
//! librdkafka recovers from most faults by itself, but not from every one: a client whose
//! brokers were all removed from its list (librdkafka 2.10+ drops every broker a metadata
//! answer leaves out, and a broker fenced by its controller answers with none) neither
//! fetches nor finds its group coordinator again, and says nothing (design note 43). So the
//! consumer looks, about once a second, at what it can check from outside the client:
//!
//! - a **partition** it owns whose end readable to it (the last stable offset, asked by a
//!   client of its own) lies past its read position (what it handed out, or librdkafka's
//!   position when that is further: release records and transaction markers are read
//!   without being handed out) while that position has not moved for `stall_after`;
//! - its **group membership**: the events client's statistics say it is not a steady member
//!   (no coordinator, or a join that does not end) for `stall_after`, while the brokers
//!   answer the offsets client;
//! - the **offsets clients**: no answer for `stall_after` (they could be broken the same way,
//!   and then nothing above could be seen).
//!
//! A look only counts while the consumer is being read: when the projector stops polling
//! (it holds back for a full store, or takes long over a checkpoint) the clocks start again.
//! A stall asks for the client concerned to be made again; it is asked again after
//! `stall_after`, then twice, four times that … up to [`REBUILD_WAIT_CAP`], for as long as
//! the stall lasts. Nothing here does I/O: the consumer feeds it what it measured.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::statistics::Statistics;

use crate::{PartitionId, ReadStall, ReadWatch, Stream};

/// Longest wait between two rebuilds of a client for the same stall.
pub(super) const REBUILD_WAIT_CAP: Duration = Duration::from_secs(600);
/// A gap this long between two polls means the consumer was not being read: the clocks
/// start again.
pub(super) const POLL_GAP: Duration = Duration::from_secs(2);
/// Statistics older than this say nothing about the group (librdkafka sends them every
/// second).
const VIEW_MAX_AGE: Duration = Duration::from_secs(5);

/// The Kafka clients of a consumer, as the watchdog names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Client {
    /// The events topic's client, member of the projector group.
    Events,
    /// The reference topic's client, assigned its partition by hand.
    Reference,
    /// The two clients that ask watermarks.
    Offsets,
}

impl Client {
    pub(super) fn name(self) -> &'static str {
        match self {
            Client::Events => "events",
            Client::Reference => "reference",
            Client::Offsets => "offsets",
        }
    }

    fn of(partition: PartitionId) -> Self {
        match partition.stream {
            Stream::Events => Client::Events,
            Stream::Reference => Client::Reference,
        }
    }
}

/// What a client's latest statistics say about it.
#[derive(Debug, Clone, Default)]
pub(super) struct ClientView {
    /// Brokers the client knows (from its configuration or learned), whatever their state.
    pub(super) brokers: usize,
    /// The group handler's state and join state (`up`, `steady` for a member in good
    /// standing).
    pub(super) group_state: Option<(String, String)>,
    /// When these statistics came.
    pub(super) at: Option<Instant>,
}

impl ClientView {
    pub(super) fn from_statistics(statistics: &Statistics) -> Self {
        Self {
            brokers: statistics
                .brokers
                .values()
                .filter(|broker| broker.source == "configured" || broker.source == "learned")
                .count(),
            group_state: statistics
                .cgrp
                .as_ref()
                .map(|group| (group.state.clone(), group.join_state.clone())),
            at: Some(Instant::now()),
        }
    }

    /// Whether the client is a member of its group in good standing, if recent statistics
    /// tell.
    fn knows_no_broker(&self, now: Instant) -> bool {
        self.at
            .is_some_and(|at| now.duration_since(at) < VIEW_MAX_AGE)
            && self.brokers == 0
    }

    fn steady_member(&self, now: Instant) -> Option<bool> {
        let fresh = self
            .at
            .is_some_and(|at| now.duration_since(at) < VIEW_MAX_AGE);
        let (state, join_state) = self.group_state.as_ref().filter(|_| fresh)?;
        Some(state == "up" && join_state == "steady")
    }

    /// A few words for a log line or a stall's description.
    pub(super) fn describe(&self) -> String {
        match &self.group_state {
            Some((state, join)) => format!(
                "{} broker(s) known, group state {state}, join state {join}",
                self.brokers
            ),
            None => format!("{} broker(s) known", self.brokers),
        }
    }
}

/// One owned partition as measured at a look.
#[derive(Debug, Clone)]
pub(super) struct PartitionLook {
    pub(super) partition: PartitionId,
    pub(super) topic: String,
    /// How far the consumer has read it.
    pub(super) read: u64,
    /// Its last stable offset, when the offsets client answered.
    pub(super) readable_end: Option<u64>,
}

/// Everything measured at one look.
#[derive(Debug, Clone)]
pub(super) struct Look {
    pub(super) now: Instant,
    pub(super) wall: SystemTime,
    pub(super) partitions: Vec<PartitionLook>,
    /// The events client's statistics.
    pub(super) events_view: ClientView,
    /// The reference client's statistics.
    pub(super) reference_view: ClientView,
    /// The name of the group, for descriptions.
    pub(super) group: String,
}

#[derive(Debug, Clone)]
struct Track {
    read: u64,
    readable_end: u64,
    topic: String,
    /// Since when it has been behind without moving: monotonic, and wall clock for people.
    behind_since: Option<(Instant, SystemTime)>,
    /// Whether this stall was counted already.
    counted: bool,
}

#[derive(Debug, Clone, Copy)]
struct Rebuilds {
    count: u32,
    last: Instant,
}

/// The watchdog's state between looks.
#[derive(Debug)]
pub(super) struct Watchdog {
    stall_after: Duration,
    partitions: BTreeMap<PartitionId, Track>,
    /// Since when the events client has not been a steady member, while the brokers answer.
    unsteady_since: Option<(Instant, SystemTime, String)>,
    group_counted: bool,
    /// Since when the offsets clients have not answered.
    offsets_silent_since: Option<Instant>,
    /// Per client, since when its statistics list no broker at all while the brokers answer
    /// the offsets clients (and whether that was counted).
    brokerless_since: BTreeMap<Client, (Instant, SystemTime, bool)>,
    rebuilds: BTreeMap<Client, Rebuilds>,
    partition_stalls_total: u64,
    group_stalls_total: u64,
    brokerless_stalls_total: u64,
    client_rebuilds_total: u64,
}

impl Watchdog {
    pub(super) fn new(stall_after: Duration) -> Self {
        Self {
            stall_after,
            partitions: BTreeMap::new(),
            unsteady_since: None,
            group_counted: false,
            offsets_silent_since: None,
            brokerless_since: BTreeMap::new(),
            rebuilds: BTreeMap::new(),
            partition_stalls_total: 0,
            group_stalls_total: 0,
            brokerless_stalls_total: 0,
            client_rebuilds_total: 0,
        }
    }

    /// The consumer was not being read for a while: what was measured before proves
    /// nothing, the clocks start again.
    pub(super) fn restart_clocks(&mut self) {
        for track in self.partitions.values_mut() {
            track.behind_since = None;
            track.counted = false;
        }
        self.unsteady_since = None;
        self.group_counted = false;
        self.offsets_silent_since = None;
        self.brokerless_since.clear();
    }

    /// Takes one look; returns the clients to make again now, each with why.
    pub(super) fn look(&mut self, look: &Look) -> Vec<(Client, String)> {
        let now = look.now;
        let owned: Vec<PartitionId> = look.partitions.iter().map(|p| p.partition).collect();
        self.partitions
            .retain(|partition, _| owned.contains(partition));
        let answered = look.partitions.iter().any(|p| p.readable_end.is_some());
        let mut due: BTreeMap<Client, String> = BTreeMap::new();

        for measured in &look.partitions {
            let track = self
                .partitions
                .entry(measured.partition)
                .or_insert_with(|| Track {
                    read: measured.read,
                    readable_end: 0,
                    topic: measured.topic.clone(),
                    behind_since: None,
                    counted: false,
                });
            let moved = track.read != measured.read;
            track.read = measured.read;
            match measured.readable_end {
                // No answer: no evidence either way.
                None => {
                    track.behind_since = None;
                    track.counted = false;
                }
                Some(end) if moved || end <= measured.read => {
                    track.readable_end = end;
                    track.behind_since = None;
                    track.counted = false;
                }
                Some(end) => {
                    track.readable_end = end;
                    track.behind_since.get_or_insert((now, look.wall));
                }
            }
            let Some((since, _)) = track.behind_since else {
                continue;
            };
            if now.duration_since(since) < self.stall_after {
                continue;
            }
            if !track.counted {
                track.counted = true;
                self.partition_stalls_total += 1;
            }
            due.entry(Client::of(measured.partition))
                .or_insert_with(|| {
                    format!(
                        "{} partition {}: nothing read for {} s at offset {} while it is \
                     readable up to {}",
                        track.topic,
                        measured.partition.partition,
                        now.duration_since(since).as_secs(),
                        track.read,
                        track.readable_end
                    )
                });
        }

        // The group: only while the brokers answer, so that an outage is not taken for it.
        match look.events_view.steady_member(now) {
            Some(false) if answered => {
                let state = look.events_view.describe();
                let since = self
                    .unsteady_since
                    .get_or_insert_with(|| (now, look.wall, state.clone()));
                since.2 = state;
            }
            Some(true) => {
                self.unsteady_since = None;
                self.group_counted = false;
            }
            // Unknown (no recent statistics) or the brokers silent: keep what was seen.
            _ => {}
        }
        if let Some((since, _, state)) = &self.unsteady_since
            && now.duration_since(*since) >= self.stall_after
        {
            if !self.group_counted {
                self.group_counted = true;
                self.group_stalls_total += 1;
            }
            due.entry(Client::Events).or_insert_with(|| {
                format!(
                    "consumer group {}: not a steady member for {} s while the brokers answer \
                     ({state})",
                    look.group,
                    now.duration_since(*since).as_secs()
                )
            });
        }

        // A client that knows no broker any more (librdkafka dropped every broker a metadata
        // answer left out) never fetches or finds its coordinator again by itself.
        for (client, view) in [
            (Client::Events, &look.events_view),
            (Client::Reference, &look.reference_view),
        ] {
            if !(answered && view.knows_no_broker(now)) {
                if !view.knows_no_broker(now) {
                    self.brokerless_since.remove(&client);
                }
                continue;
            }
            let entry = self
                .brokerless_since
                .entry(client)
                .or_insert((now, look.wall, false));
            let lasted = now.duration_since(entry.0);
            if lasted < self.stall_after {
                continue;
            }
            if !entry.2 {
                entry.2 = true;
                self.brokerless_stalls_total += 1;
            }
            due.entry(client).or_insert_with(|| {
                format!(
                    "the {} client has known no broker for {} s while the brokers answer",
                    client.name(),
                    lasted.as_secs()
                )
            });
        }

        // The offsets clients: silent for as long as a stall takes, with partitions to ask.
        if answered || look.partitions.is_empty() {
            self.offsets_silent_since = None;
        } else {
            let since = *self.offsets_silent_since.get_or_insert(now);
            if now.duration_since(since) >= self.stall_after {
                due.insert(
                    Client::Offsets,
                    format!(
                        "no watermark answered for {} s",
                        now.duration_since(since).as_secs()
                    ),
                );
            }
        }

        // Clients whose stall ended start their backoff afresh.
        self.rebuilds.retain(|client, _| due.contains_key(client));
        let mut rebuild = Vec::new();
        for (client, why) in due {
            if !self.rebuild_allowed(client, now) {
                continue;
            }
            let entry = self.rebuilds.entry(client).or_insert(Rebuilds {
                count: 0,
                last: now,
            });
            entry.count += 1;
            entry.last = now;
            self.client_rebuilds_total += 1;
            rebuild.push((client, why));
        }
        rebuild
    }

    /// The first rebuild comes at once; the next after `stall_after`, then twice, four times
    /// that, up to the cap.
    fn rebuild_allowed(&self, client: Client, now: Instant) -> bool {
        let Some(done) = self.rebuilds.get(&client) else {
            return true;
        };
        let factor = 1u32 << done.count.saturating_sub(1).min(10);
        let wait = self
            .stall_after
            .saturating_mul(factor)
            .min(REBUILD_WAIT_CAP);
        now.duration_since(done.last) >= wait
    }

    /// The stalls under way and the counts, as of `now`.
    pub(super) fn report(&self, now: Instant) -> ReadWatch {
        let mut stalls = Vec::new();
        // Only what the last look counted: a report between two looks says what they said.
        for (partition, track) in &self.partitions {
            let Some((since, wall)) = track.behind_since.filter(|_| track.counted) else {
                continue;
            };
            let stalled_for = now.duration_since(since);
            stalls.push(ReadStall {
                partition: Some(*partition),
                description: format!(
                    "log {} partition {}: nothing read since {} s at offset {} while it is \
                     readable up to {}",
                    track.topic,
                    partition.partition,
                    stalled_for.as_secs(),
                    track.read,
                    track.readable_end
                ),
                since: wall,
                stalled_for,
                rebuilds: self
                    .rebuilds
                    .get(&Client::of(*partition))
                    .map_or(0, |r| r.count),
            });
        }
        if let Some((since, wall, state)) =
            self.unsteady_since.as_ref().filter(|_| self.group_counted)
        {
            let stalled_for = now.duration_since(*since);
            {
                stalls.push(ReadStall {
                    partition: None,
                    description: format!(
                        "the events consumer has not been a steady member of its group for {} \
                         s while the brokers answer ({state})",
                        stalled_for.as_secs()
                    ),
                    since: *wall,
                    stalled_for,
                    rebuilds: self.rebuilds.get(&Client::Events).map_or(0, |r| r.count),
                });
            }
        }
        for (client, (since, wall, counted)) in &self.brokerless_since {
            if !counted {
                continue;
            }
            let stalled_for = now.duration_since(*since);
            stalls.push(ReadStall {
                partition: None,
                description: format!(
                    "the {} client has known no broker for {} s while the brokers answer",
                    client.name(),
                    stalled_for.as_secs()
                ),
                since: *wall,
                stalled_for,
                rebuilds: self.rebuilds.get(client).map_or(0, |r| r.count),
            });
        }
        ReadWatch {
            stalls,
            partition_stalls_total: self.partition_stalls_total,
            group_stalls_total: self.group_stalls_total,
            brokerless_stalls_total: self.brokerless_stalls_total,
            client_rebuilds_total: self.client_rebuilds_total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_secs(30);

    fn reference() -> PartitionId {
        PartitionId {
            stream: Stream::Reference,
            partition: 0,
        }
    }

    fn events(partition: u32) -> PartitionId {
        PartitionId {
            stream: Stream::Events,
            partition,
        }
    }

    fn steady(yes: bool, now: Instant) -> ClientView {
        let (state, join) = if yes {
            ("up", "steady")
        } else {
            ("query-coord", "init")
        };
        ClientView {
            brokers: usize::from(yes),
            group_state: Some((state.into(), join.into())),
            at: Some(now),
        }
    }

    fn look(now: Instant, partitions: &[(PartitionId, u64, Option<u64>)], member: bool) -> Look {
        Look {
            now,
            wall: SystemTime::UNIX_EPOCH,
            partitions: partitions
                .iter()
                .map(|&(partition, read, readable_end)| PartitionLook {
                    partition,
                    topic: format!("t.{:?}", partition.stream).to_lowercase(),
                    read,
                    readable_end,
                })
                .collect(),
            events_view: steady(member, now),
            reference_view: ClientView {
                brokers: 1,
                group_state: None,
                at: Some(now),
            },
            group: "g".into(),
        }
    }

    #[test]
    fn a_partition_behind_that_does_not_move_is_a_stall_after_the_limit() {
        let mut dog = Watchdog::new(AFTER);
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let behind = [(reference(), 415, Some(465)), (events(1), 900, Some(900))];
        assert!(dog.look(&look(at(0), &behind, true)).is_empty());
        assert!(dog.look(&look(at(29), &behind, true)).is_empty());
        assert!(dog.report(at(29)).stalls.is_empty());
        // Between two looks the report says what the last one found, however late it is.
        assert!(dog.report(at(31)).stalls.is_empty());

        let due = dog.look(&look(at(30), &behind, true));
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!(due[0].0, Client::Reference);
        assert!(
            due[0].1.contains("offset 415") && due[0].1.contains("up to 465"),
            "{due:?}"
        );
        let report = dog.report(at(30));
        assert_eq!(report.stalls.len(), 1);
        assert_eq!(report.stalls[0].partition, Some(reference()));
        assert_eq!(report.stalls[0].rebuilds, 1);
        assert_eq!(report.partition_stalls_total, 1);
        assert_eq!(report.client_rebuilds_total, 1);

        // Backoff: not again before another 30 s, then 60 s.
        assert!(dog.look(&look(at(59), &behind, true)).is_empty());
        assert_eq!(dog.look(&look(at(60), &behind, true)).len(), 1);
        assert!(dog.look(&look(at(119), &behind, true)).is_empty());
        assert_eq!(dog.look(&look(at(120), &behind, true)).len(), 1);
        // Still one stall, counted once.
        assert_eq!(dog.report(at(120)).partition_stalls_total, 1);

        // It moves: the stall is over, and a later one starts its backoff afresh.
        let moved = [(reference(), 465, Some(465)), (events(1), 900, Some(900))];
        assert!(dog.look(&look(at(121), &moved, true)).is_empty());
        assert!(dog.report(at(121)).stalls.is_empty());
        let again = [(reference(), 465, Some(470)), (events(1), 900, Some(900))];
        assert!(dog.look(&look(at(122), &again, true)).is_empty());
        assert_eq!(dog.look(&look(at(152), &again, true)).len(), 1);
        assert_eq!(dog.report(at(152)).partition_stalls_total, 2);
    }

    #[test]
    fn reading_that_moves_or_an_end_reached_is_no_stall() {
        let mut dog = Watchdog::new(AFTER);
        let start = Instant::now();
        for second in 0..100u64 {
            // Always behind, but moving.
            let partitions = [(events(0), second * 10, Some(second * 10 + 500))];
            assert!(
                dog.look(&look(
                    start + Duration::from_secs(second),
                    &partitions,
                    true
                ))
                .is_empty()
            );
        }
        // At the end, not moving: nothing to read.
        for second in 100..200u64 {
            let partitions = [(events(0), 1000, Some(1000))];
            assert!(
                dog.look(&look(
                    start + Duration::from_secs(second),
                    &partitions,
                    true
                ))
                .is_empty()
            );
        }
        assert_eq!(
            dog.report(start + Duration::from_secs(200)),
            ReadWatch::default()
        );
    }

    #[test]
    fn without_an_answer_from_the_brokers_nothing_counts_but_the_offsets_clients() {
        let mut dog = Watchdog::new(AFTER);
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let silent = [(reference(), 415, None), (events(0), 10, None)];
        // An outage: no watermark, the group unsteady. Not a stall of reading...
        for second in 0..30 {
            assert!(dog.look(&look(at(second), &silent, false)).is_empty());
        }
        // ...but the offsets clients are made again after the limit.
        let due = dog.look(&look(at(30), &silent, false));
        assert_eq!(
            due.iter().map(|d| d.0).collect::<Vec<_>>(),
            vec![Client::Offsets]
        );
        assert!(dog.report(at(30)).stalls.is_empty());
        // The brokers answer again and the reader catches up at once: nothing.
        let back = [(reference(), 415, Some(415)), (events(0), 10, Some(10))];
        assert!(dog.look(&look(at(31), &back, true)).is_empty());
        assert_eq!(dog.report(at(31)).client_rebuilds_total, 1);
    }

    #[test]
    fn a_consumer_out_of_its_group_while_the_brokers_answer_is_a_stall() {
        let mut dog = Watchdog::new(AFTER);
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let only_reference = [(reference(), 415, Some(415))];
        assert!(dog.look(&look(at(0), &only_reference, false)).is_empty());
        let due = dog.look(&look(at(30), &only_reference, false));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, Client::Events);
        assert!(due[0].1.contains("query-coord"), "{due:?}");
        let report = dog.report(at(30));
        assert_eq!(report.group_stalls_total, 1);
        assert_eq!(report.stalls[0].partition, None);
        // A member again: over.
        assert!(dog.look(&look(at(31), &only_reference, true)).is_empty());
        assert!(dog.report(at(31)).stalls.is_empty());
    }

    #[test]
    fn a_client_that_knows_no_broker_while_the_brokers_answer_is_made_again() {
        let mut dog = Watchdog::new(AFTER);
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let at_end = [(reference(), 415, Some(415)), (events(0), 10, Some(10))];
        let brokerless = |now| {
            let mut look = look(now, &at_end, true);
            look.reference_view.brokers = 0;
            look
        };
        assert!(dog.look(&brokerless(at(0))).is_empty());
        let due = dog.look(&brokerless(at(30)));
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!(due[0].0, Client::Reference);
        let report = dog.report(at(30));
        assert_eq!(report.brokerless_stalls_total, 1);
        assert!(
            report.stalls[0]
                .description
                .contains("reference client has known no broker")
        );
        // The new client knows its bootstrap broker: over.
        assert!(dog.look(&look(at(31), &at_end, true)).is_empty());
        assert!(dog.report(at(31)).stalls.is_empty());
    }

    #[test]
    fn time_without_polls_does_not_count() {
        let mut dog = Watchdog::new(AFTER);
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let behind = [(events(2), 100, Some(200))];
        assert!(dog.look(&look(at(0), &behind, true)).is_empty());
        // The projector held back reading for 40 s, then polls again.
        dog.restart_clocks();
        assert!(dog.look(&look(at(40), &behind, true)).is_empty());
        assert!(dog.report(at(40)).stalls.is_empty());
        assert_eq!(dog.look(&look(at(70), &behind, true)).len(), 1);
    }
}
