//! The consumer group: the state the consumer shares with its rebalance hook, and the hook,
//! which starts every assigned partition at the projector's position.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use tracing::{debug, error, info, warn};

use super::client::{log_librdkafka, record_view};
use super::watchdog::ClientView;
use crate::{PartitionId, Positions, Stream};

/// State the consumer and its rebalance hook share.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// Next offset to hand out, per partition: set by `seek`, advanced by `poll`. A partition
    /// the group assigns is fetched from here (0 when absent).
    pub(super) positions: Positions,
    /// Events partitions the group currently gives this instance.
    pub(super) assigned: BTreeSet<u32>,
    /// Assignments received so far.
    pub(super) assignments: u64,
    /// Partitions whose fetching was (re)started at this offset, for as long as that fetch
    /// goes on (until the next seek or assignment).
    pub(super) restarted_at: BTreeMap<PartitionId, u64>,
    /// Partitions whose fetch position must be moved to their position.
    pub(super) to_seek: BTreeSet<PartitionId>,
    /// Which events client is the current one: a client made again by the watchdog raises
    /// it, and the hook of the one it replaced (closing on a thread of its own) then leaves
    /// this state alone.
    pub(super) generation: u64,
}

/// The events consumer's context: starts every assigned partition at the projector's
/// position instead of the group's committed offset.
pub(super) struct GroupContext {
    pub(super) topic: String,
    pub(super) shared: Arc<Mutex<Shared>>,
    /// The `generation` of `Shared` this client was made for.
    pub(super) generation: u64,
    /// What its statistics last said, for the watchdog.
    pub(super) view: Arc<Mutex<ClientView>>,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka("projector", level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn!(role = "projector", %error, reason, "kafka client error");
    }

    fn stats(&self, statistics: Statistics) {
        record_view(&self.view, &statistics);
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        event: RDKafkaRespErr,
        list: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let partitions: Vec<u32> = list
            .elements_for_topic(&self.topic)
            .iter()
            .filter_map(|element| u32::try_from(element.partition()).ok())
            .collect();
        let mut shared = lock(&self.shared);
        if shared.generation != self.generation {
            // A client the watchdog replaced, closing: it gives up what it had and leaves the
            // state to the new one.
            drop(shared);
            let assign = event == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
            let result = match (assign, cooperative) {
                (true, true) => consumer.incremental_assign(list),
                (true, false) => consumer.assign(list),
                (false, true) => consumer.incremental_unassign(list),
                (false, false) => consumer.unassign(),
            };
            debug!(
                topic = self.topic,
                ?result,
                "rebalance of a replaced kafka client"
            );
            return;
        }
        match event {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                for &partition in &partitions {
                    let id = PartitionId {
                        stream: Stream::Events,
                        partition,
                    };
                    let position = shared.positions.get(&id).copied().unwrap_or(0);
                    if let Err(error) = list.set_partition_offset(
                        &self.topic,
                        partition as i32,
                        Offset::Offset(position as i64),
                    ) {
                        error!(topic = self.topic, partition, %error, "cannot set the start offset");
                    }
                    shared.restarted_at.insert(id, position);
                    shared.to_seek.remove(&id);
                }
                let result = if cooperative {
                    consumer.incremental_assign(list)
                } else {
                    shared.assigned.clear();
                    consumer.assign(list)
                };
                match result {
                    Ok(()) => {
                        shared.assigned.extend(partitions.iter().copied());
                        info!(
                            topic = self.topic,
                            added = ?partitions,
                            owned = ?shared.assigned,
                            "kafka partitions assigned"
                        );
                    }
                    Err(error) => {
                        error!(topic = self.topic, %error, "kafka partition assignment failed")
                    }
                }
                shared.assignments += 1;
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let lost = consumer.assignment_lost();
                let result = if cooperative {
                    consumer.incremental_unassign(list)
                } else {
                    consumer.unassign()
                };
                if let Err(error) = result {
                    error!(topic = self.topic, %error, "kafka partition revocation failed");
                }
                if cooperative {
                    for partition in &partitions {
                        shared.assigned.remove(partition);
                    }
                } else {
                    shared.assigned.clear();
                }
                let assigned = shared.assigned.clone();
                shared.restarted_at.retain(|p, _| {
                    p.stream == Stream::Reference || assigned.contains(&p.partition)
                });
                info!(topic = self.topic, removed = ?partitions, lost, owned = ?shared.assigned, "kafka partitions revoked");
            }
            other => {
                error!(topic = self.topic, code = %RDKafkaErrorCode::from(other), "kafka rebalance failed");
                let result = if cooperative {
                    consumer.incremental_unassign(list)
                } else {
                    consumer.unassign()
                };
                if let Err(error) = result {
                    error!(topic = self.topic, %error, "kafka partition revocation failed");
                }
                shared.assigned.clear();
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => debug!(
                topic = self.topic,
                partitions = offsets.count(),
                "progress reported"
            ),
            Err(error) => warn!(topic = self.topic, %error, "reporting progress to kafka failed"),
        }
    }
}

pub(super) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}
