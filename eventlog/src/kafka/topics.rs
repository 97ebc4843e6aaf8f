//! The topics: creating the missing ones, checking their layout and warning about their
//! retention.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use tracing::{debug, info, warn};

use super::KafkaConfig;
use super::client::LoggingContext;
use crate::LogError;

/// The timestamp of the event topics' records: when the broker appended them, on the
/// broker's clock ("what changed since the previous run" compares it with when that run was
/// written), not a time each producer's clock gives.
const APPEND_TIME: &str = "LogAppendTime";

/// Pause between two looks at the metadata while new topics become ready.
const METADATA_PAUSE: Duration = Duration::from_millis(50);

/// Creates the missing topics, waits until they are usable and checks partition counts.
pub(super) fn provision(config: &KafkaConfig) -> Result<(), LogError> {
    let timeout = config.message_timeout();
    let admin: AdminClient<LoggingContext> = AdminClient::from_config_and_context(
        &config.client_config("admin")?,
        LoggingContext { role: "admin" },
    )
    .map_err(|error| LogError::Config(format!("kafka admin client: {error}")))?;
    let metadata = admin
        .inner()
        .fetch_metadata(None, timeout)
        .map_err(|error| unreachable_broker(config, &error))?;
    let existing: BTreeSet<&str> = metadata
        .topics()
        .iter()
        .filter(|topic| topic.error().is_none())
        .map(|topic| topic.name())
        .collect();

    let partitions = config.events_partitions as i32;
    let replication = || TopicReplication::Fixed(i32::from(config.replication_factor));
    let min_insync = config
        .replication_factor
        .saturating_sub(1)
        .max(1)
        .to_string();
    let dead_letter_retention_ms = config.dead_letters.retention_ms();
    let dead_letter_retention_bytes = config.dead_letters.max_bytes.to_string();
    let dead_letter_segment_bytes = config.dead_letters.segment_bytes();
    let wanted = [
        NewTopic::new(&config.events_topic, partitions, replication())
            .set("cleanup.policy", "delete")
            .set("retention.ms", "-1")
            .set("retention.bytes", "-1")
            .set("message.timestamp.type", APPEND_TIME)
            .set("min.insync.replicas", &min_insync),
        NewTopic::new(&config.reference_topic, 1, replication())
            .set("cleanup.policy", "delete")
            .set("retention.ms", "-1")
            .set("retention.bytes", "-1")
            .set("message.timestamp.type", APPEND_TIME)
            .set("min.insync.replicas", &min_insync),
        NewTopic::new(&config.dead_letter_topic, 1, replication())
            .set("cleanup.policy", "delete")
            .set("retention.ms", &dead_letter_retention_ms)
            .set("retention.bytes", &dead_letter_retention_bytes)
            .set("segment.bytes", &dead_letter_segment_bytes)
            .set("min.insync.replicas", &min_insync),
    ];
    let missing: Vec<&NewTopic<'_>> = wanted
        .iter()
        .filter(|t| !existing.contains(t.name))
        .collect();
    let preexisting: Vec<&str> = [&config.events_topic, &config.reference_topic]
        .into_iter()
        .filter(|name| existing.contains(name.as_str()))
        .map(String::as_str)
        .collect();

    if !missing.is_empty() {
        let options = AdminOptions::new()
            .request_timeout(Some(timeout))
            .operation_timeout(Some(timeout));
        let results = block_on_until(
            admin.create_topics(missing.iter().copied(), &options),
            Instant::now() + timeout,
        )
        .ok_or_else(|| {
            LogError::Unavailable(format!(
                "creating Kafka topics: no answer within {timeout:?}"
            ))
        })?
        .map_err(|error| unreachable_broker(config, &error))?;
        for result in results {
            match result {
                Ok(topic) => info!(topic, "kafka topic created"),
                // Another instance was quicker: the checks below apply to its topic.
                Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    debug!(topic, "kafka topic already exists")
                }
                Err((
                    topic,
                    code @ (RDKafkaErrorCode::InvalidReplicationFactor
                    | RDKafkaErrorCode::InvalidPartitions
                    | RDKafkaErrorCode::InvalidConfig
                    | RDKafkaErrorCode::PolicyViolation
                    | RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed
                    | RDKafkaErrorCode::InvalidTopic),
                )) => {
                    return Err(LogError::Config(format!(
                        "creating Kafka topic {topic}: {code}"
                    )));
                }
                Err((topic, code)) => {
                    return Err(LogError::Unavailable(format!(
                        "creating Kafka topic {topic}: {code}"
                    )));
                }
            }
        }
    }

    let deadline = Instant::now() + timeout;
    loop {
        let metadata = admin
            .inner()
            .fetch_metadata(None, timeout)
            .map_err(|error| unreachable_broker(config, &error))?;
        match check_layout(config, &metadata, true)? {
            Layout::Ready => break,
            Layout::NotReady(why) if Instant::now() >= deadline => {
                return Err(LogError::Unavailable(format!(
                    "Kafka topics not ready after {timeout:?}: {why}"
                )));
            }
            Layout::NotReady(_) => thread::sleep(METADATA_PAUSE),
        }
    }
    warn_on_finite_retention(&admin, &preexisting, timeout);
    if existing.contains(config.dead_letter_topic.as_str()) {
        warn_on_unbounded_dead_letters(&admin, &config.dead_letter_topic, timeout);
    }
    Ok(())
}

pub(super) enum Layout {
    Ready,
    NotReady(String),
}

/// Whether the metadata shows the topics with the configured partition counts and a leader
/// for every partition. A wrong partition count is an error.
pub(super) fn check_layout(
    config: &KafkaConfig,
    metadata: &Metadata,
    with_dead_letters: bool,
) -> Result<Layout, LogError> {
    let mut expected = vec![
        (
            config.events_topic.as_str(),
            Some(config.events_partitions as usize),
        ),
        (config.reference_topic.as_str(), Some(1)),
    ];
    if with_dead_letters {
        expected.push((config.dead_letter_topic.as_str(), None));
    }
    for (name, partitions) in expected {
        let Some(topic) = metadata
            .topics()
            .iter()
            .find(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty())
        else {
            return Ok(Layout::NotReady(format!("topic {name} does not exist")));
        };
        if let Some(partitions) = partitions
            && topic.partitions().len() != partitions
        {
            return Err(LogError::Config(format!(
                "Kafka topic {name} has {} partitions, not {partitions}: agents would move partition",
                topic.partitions().len()
            )));
        }
        if let Some(partition) = topic
            .partitions()
            .iter()
            .find(|p| p.error().is_some() || p.leader() < 0)
        {
            return Ok(Layout::NotReady(format!(
                "{name} [{}] has no leader",
                partition.id()
            )));
        }
    }
    Ok(Layout::Ready)
}

/// A warning for a source-of-truth topic made elsewhere that deletes old records, and a
/// note for one that keeps the producer's timestamps.
fn warn_on_finite_retention<C: ClientContext>(
    admin: &AdminClient<C>,
    topics: &[&str],
    timeout: Duration,
) {
    if topics.is_empty() {
        return;
    }
    let resources: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let Some(Ok(results)) = block_on_until(
        admin.describe_configs(&resources, &options),
        Instant::now() + timeout,
    ) else {
        debug!("could not read the retention of the kafka topics");
        return;
    };
    for resource in results.into_iter().flatten() {
        let value = |name: &str| resource.get(name).and_then(|entry| entry.value.clone());
        let retention_ms = value("retention.ms").unwrap_or_default();
        let retention_bytes = value("retention.bytes").unwrap_or_default();
        let cleanup_policy = value("cleanup.policy").unwrap_or_default();
        let timestamp_type = value("message.timestamp.type").unwrap_or_default();
        if timestamp_type != APPEND_TIME {
            info!(
                resource = ?resource.specifier,
                timestamp_type,
                "kafka topic stamps records with the producer's clock: what changed since \
                 the previous run relies on the clocks of ingest and the KPI job agreeing; \
                 set message.timestamp.type=LogAppendTime to use the broker's"
            );
        }
        if retention_ms != "-1" || retention_bytes != "-1" || cleanup_policy.contains("compact") {
            warn!(
                resource = ?resource.specifier,
                retention_ms,
                retention_bytes,
                cleanup_policy,
                "kafka topic is a source of truth but may lose records; \
                 set retention.ms=-1, retention.bytes=-1, cleanup.policy=delete"
            );
        }
    }
}

/// A warning for a dead-letter topic made elsewhere (or before its bounds existed) that
/// keeps records without a bound on their age or their bytes.
fn warn_on_unbounded_dead_letters<C: ClientContext>(
    admin: &AdminClient<C>,
    topic: &str,
    timeout: Duration,
) {
    let resources = [ResourceSpecifier::Topic(topic)];
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let Some(Ok(results)) = block_on_until(
        admin.describe_configs(&resources, &options),
        Instant::now() + timeout,
    ) else {
        debug!("could not read the retention of the dead-letter topic");
        return;
    };
    for resource in results.into_iter().flatten() {
        let value = |name: &str| resource.get(name).and_then(|entry| entry.value.clone());
        let retention_ms = value("retention.ms").unwrap_or_default();
        let retention_bytes = value("retention.bytes").unwrap_or_default();
        if retention_ms == "-1" || retention_bytes == "-1" {
            warn!(
                topic,
                retention_ms,
                retention_bytes,
                "the dead-letter topic may grow without bound; give it a retention.ms and a \
                 retention.bytes (kafka-configs.sh --alter --entity-type topics --add-config)"
            );
        }
    }
}

pub(super) fn unreachable_broker(config: &KafkaConfig, error: &KafkaError) -> LogError {
    LogError::Unavailable(format!(
        "Kafka at {} is not reachable: {error}",
        config.brokers.as_deref().unwrap_or_default()
    ))
}

/// Runs a future of the admin client (completed by librdkafka's threads) on this thread, up
/// to `deadline`; `None` when it has not finished by then.
fn block_on_until<F: Future>(future: F, deadline: Instant) -> Option<F::Output> {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return Some(output);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        thread::park_timeout(left);
    }
}
