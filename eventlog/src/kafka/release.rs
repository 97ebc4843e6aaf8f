//! Releasing records a broker left held back: *release transactions* and the watch that
//! says when they are due.
//!
//! A broker that loses the leadership of a partition while its transaction coordinator
//! writes the commit markers of a transaction (in a one-node cluster: the broker fenced by
//! its own controller on waking from a hang) may skip that partition's marker and still
//! record the transaction complete. The partition then keeps the transaction's records
//! open: its last stable offset stops there and every `read_committed` reader with it. The
//! transaction timeout does not end it (the coordinator holds nothing open), starting the
//! writer's name again does not either. What ends it is a later transaction of the same
//! `transactional.id` that writes to that partition and **commits**: the partition takes its
//! marker as the end of everything that producer left open, the held records included. (If
//! that later transaction aborted instead, the held records would be aborted with it.)
//!
//! So after the log was disturbed, every writer of the pool commits one release
//! transaction: a record on every partition of the events and reference topics, without
//! key or value, marked by the header [`RELEASE_HEADER`]. Readers skip it
//! ([`is_release_record`]); it is not an event and the dedup index never sees it.
//!
//! The log counts as disturbed when (a) the watch's metadata probe fails or finds a
//! partition without a leader, (b) an append or commit of the pool fails or takes longer
//! than [`SLOW_OPERATION`], or (c) a partition's last stable offset has stood still behind
//! its high watermark for longer than the transaction timeout (an open transaction cannot
//! legitimately last longer; this catches what (a) and (b) did not see, such as records held
//! since before this process started). Releases wait until the probe passes again: a release
//! that failed half-way would have to be aborted, and would abort the held records with it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use tracing::{debug, warn};

use super::client::LoggingContext;
use super::producer::Outgoing;
use super::{KafkaConfig, KafkaReadiness};
use crate::{LogError, Stream};

/// The header that marks a release record: a record of the events or reference topic that
/// is not an event. Its value is the `transactional.id` of the writer that wrote it.
pub const RELEASE_HEADER: &str = "aqs-release";

/// An append or a commit that took longer than this counts as a disturbance of the log.
pub const SLOW_OPERATION: Duration = Duration::from_secs(1);

/// How often the watch probes the brokers' metadata, and how long one probe may take.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long the probe must have passed without a failure before releases run: a broker
/// that wakes from a hang is fenced by its controller only a moment later, and a release
/// whose markers fell into that moment would be skipped like the rest.
const SETTLE: Duration = Duration::from_secs(2);
/// How long a release's records may take to become readable before the watch counts their
/// partition as held again.
pub(super) const CONFIRM_WAIT: Duration = Duration::from_secs(5);
/// Rounds in a row whose releases were not readable in time that call for another round;
/// beyond, the held-partition check (with its growing wait) takes over, so a partition held
/// by another program's transaction does not make the writers release every few seconds.
const RELEASE_AGAIN_AT_MOST: u32 = 2;
/// Pause between two looks at a partition's last stable offset while confirming.
const CONFIRM_PAUSE: Duration = Duration::from_millis(50);
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the watch compares last stable offsets with high watermarks.
const TAILS_INTERVAL: Duration = Duration::from_secs(5);
/// Bound on one watermark query.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait between two releases for the same held partition (the wait doubles each
/// time one did not help, e.g. when the records are another writer's).
const HELD_WAIT_CAP: Duration = Duration::from_secs(3600);

/// Whether a record read from the events or reference topic is a release record (to be
/// skipped: it is not an event).
pub fn is_release_record<M: Message>(message: &M) -> bool {
    message
        .headers()
        .is_some_and(|headers| headers.iter().any(|header| header.key == RELEASE_HEADER))
}

/// One release record per partition of the events and reference topics, marked as written
/// by `writer`.
pub(super) fn release_records<'a>(config: &'a KafkaConfig, writer: &str) -> Vec<Outgoing<'a>> {
    let mark = || {
        OwnedHeaders::new().insert(Header {
            key: RELEASE_HEADER,
            value: Some(writer),
        })
    };
    (0..config.events_partitions as i32)
        .map(|partition| Outgoing::headers_only(&config.events_topic, partition, mark()))
        .chain(std::iter::once(Outgoing::headers_only(
            &config.reference_topic,
            0,
            mark(),
        )))
        .collect()
}

/// What the watch saw.
#[derive(Debug, Default)]
pub(super) struct Sight {
    /// Why the log counts as disturbed, if it does.
    pub disturbance: Option<String>,
    /// Whether the probe has passed for [`SETTLE`], since the latest disturbance the caller
    /// knew of: releases may run.
    pub settled: bool,
}

/// A partition whose last stable offset stands behind its high watermark.
struct Held {
    last_stable: i64,
    since: Instant,
    /// How long it must stand still before (another) release is asked for.
    wait: Duration,
}

/// Watches the log for what calls for releases; see the module documentation.
pub(super) struct ReleaseWatch {
    config: KafkaConfig,
    probe: KafkaReadiness,
    /// `read_committed`: its "high watermark" is the last stable offset.
    committed: BaseConsumer<LoggingContext>,
    uncommitted: BaseConsumer<LoggingContext>,
    next_probe: Instant,
    next_tails: Instant,
    healthy: bool,
    /// Since when every probe passed.
    healthy_since: Option<Instant>,
    /// The caller's count of disturbances when the last probe began.
    probed_at: u64,
    /// Release rounds in a row not confirmed.
    unconfirmed: u32,
    held: HashMap<(Stream, i32), Held>,
    /// How long an open transaction may legitimately hold a partition.
    held_after: Duration,
}

impl ReleaseWatch {
    /// Builds the watch's clients; contacts no broker yet.
    pub(super) fn new(
        config: &KafkaConfig,
        probe: KafkaReadiness,
        held_after: Duration,
    ) -> Result<Self, LogError> {
        let client = |isolation: &str| -> Result<BaseConsumer<LoggingContext>, LogError> {
            let mut client = config.client_config("ingest-release-watch")?;
            client.set("isolation.level", isolation);
            BaseConsumer::from_config_and_context(&client, LoggingContext { role: "ingest" })
                .map_err(|error| LogError::Config(format!("kafka client: {error}")))
        };
        let now = Instant::now();
        Ok(Self {
            config: config.clone(),
            probe,
            committed: client("read_committed")?,
            uncommitted: client("read_uncommitted")?,
            next_probe: now,
            next_tails: now,
            healthy: false,
            healthy_since: None,
            probed_at: 0,
            unconfirmed: 0,
            held: HashMap::new(),
            held_after,
        })
    }

    /// Probes the brokers and the partitions' ends when their time has come, and at once
    /// when the caller has counted a disturbance (`disturbances`) since the last probe.
    pub(super) fn look(&mut self, disturbances: u64) -> Sight {
        let mut sight = Sight::default();
        let now = Instant::now();
        if now >= self.next_probe || disturbances > self.probed_at {
            self.probed_at = disturbances;
            match self.probe.check() {
                Ok(()) => {
                    self.healthy = true;
                    self.healthy_since.get_or_insert_with(Instant::now);
                }
                Err(error) => {
                    self.healthy = false;
                    self.healthy_since = None;
                    sight.disturbance = Some(format!("the metadata probe failed: {error}"));
                }
            }
            self.next_probe = Instant::now() + PROBE_INTERVAL;
        }
        sight.settled = self
            .healthy_since
            .is_some_and(|since| since.elapsed() >= SETTLE);
        if self.healthy && now >= self.next_tails {
            if let Some(why) = self.held_partitions() {
                sight.disturbance.get_or_insert(why);
            }
            self.next_tails = Instant::now() + TAILS_INTERVAL;
        }
        sight
    }

    /// Why a release is due for a partition held longer than a transaction may last, if one
    /// is.
    fn held_partitions(&mut self) -> Option<String> {
        let _ = self.committed.poll(Duration::ZERO);
        let _ = self.uncommitted.poll(Duration::ZERO);
        let partitions = (0..self.config.events_partitions as i32)
            .map(|partition| (Stream::Events, partition))
            .chain(std::iter::once((Stream::Reference, 0)));
        let mut due = None;
        for (stream, partition) in partitions {
            let topic = self.config.topic_of(stream).to_owned();
            let ends = self
                .committed
                .fetch_watermarks(&topic, partition, WATERMARK_TIMEOUT)
                .and_then(|(_, stable)| {
                    self.uncommitted
                        .fetch_watermarks(&topic, partition, WATERMARK_TIMEOUT)
                        .map(|(_, high)| (stable, high))
                });
            let (last_stable, high) = match ends {
                Ok(ends) => ends,
                Err(error) => {
                    debug!(topic, partition, %error, "release watch: no watermarks");
                    return due;
                }
            };
            if high <= last_stable {
                self.held.remove(&(stream, partition));
                continue;
            }
            let held_after = self.held_after;
            let held = self.held.entry((stream, partition)).or_insert(Held {
                last_stable,
                since: Instant::now(),
                wait: held_after,
            });
            if held.last_stable != last_stable {
                *held = Held {
                    last_stable,
                    since: Instant::now(),
                    wait: held_after,
                };
                continue;
            }
            if held.since.elapsed() >= held.wait {
                warn!(
                    topic,
                    partition,
                    last_stable,
                    high_watermark = high,
                    held_secs = held.since.elapsed().as_secs(),
                    "kafka partition held behind an open transaction longer than a transaction \
                     may last; every writer commits a release"
                );
                due.get_or_insert_with(|| {
                    format!("{topic} [{partition}] held at offset {last_stable}")
                });
                held.since = Instant::now();
                held.wait = (held.wait * 2).min(HELD_WAIT_CAP);
            }
        }
        due
    }

    /// Waits (up to `deadline`) until every partition's last stable offset has passed the
    /// release record written there; the first that did not, as a reason to release again
    /// (at most [`RELEASE_AGAIN_AT_MOST`] rounds in a row).
    pub(super) fn confirm(
        &mut self,
        written: &[(Stream, i32, u64)],
        deadline: Instant,
    ) -> Option<String> {
        let Some(why) = self.unreadable(written, deadline) else {
            self.unconfirmed = 0;
            return None;
        };
        self.unconfirmed += 1;
        if self.unconfirmed > RELEASE_AGAIN_AT_MOST {
            debug!(
                why,
                "release not readable in time; left to the held-partition check"
            );
            return None;
        }
        Some(why)
    }

    /// The first release record whose partition's last stable offset has not passed it by
    /// `deadline`.
    fn unreadable(&mut self, written: &[(Stream, i32, u64)], deadline: Instant) -> Option<String> {
        let _ = self.committed.poll(Duration::ZERO);
        for &(stream, partition, offset) in written {
            let topic = self.config.topic_of(stream).to_owned();
            loop {
                let stable = self
                    .committed
                    .fetch_watermarks(&topic, partition, WATERMARK_TIMEOUT)
                    .map(|(_, stable)| stable);
                if let Ok(stable) = stable
                    && u64::try_from(stable).is_ok_and(|stable| stable > offset)
                {
                    break;
                }
                if Instant::now() >= deadline {
                    return Some(format!(
                        "{topic} [{partition}]: the release at offset {offset} is not readable                          ({stable:?})"
                    ));
                }
                std::thread::sleep(CONFIRM_PAUSE);
            }
        }
        None
    }
}
