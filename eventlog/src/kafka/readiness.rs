//! Whether the Kafka log can take events now: the brokers answer a metadata request for the
//! events and reference topics with a leader for every partition. Cheap and bounded, for a
//! service's `/readyz`.

use std::fmt;
use std::time::Duration;

use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, Producer};

use super::KafkaConfig;
use crate::LogError;

/// The readiness probe of a Kafka log, with a client of its own: on a writer's connections a
/// metadata request would wait behind the batches being produced.
pub struct KafkaReadiness {
    client: BaseProducer,
    topics: Vec<String>,
    timeout: Duration,
}

impl fmt::Debug for KafkaReadiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaReadiness")
            .field("topics", &self.topics)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl KafkaReadiness {
    /// A probe of the log `config` describes, each check waiting at most `timeout`. Does not
    /// contact the brokers yet.
    pub(super) fn new(config: &KafkaConfig, timeout: Duration) -> Result<Self, LogError> {
        let client = config
            .client_config("readiness")?
            .create()
            .map_err(|error| LogError::Config(format!("kafka client: {error}")))?;
        Ok(Self {
            client,
            topics: vec![config.events_topic.clone(), config.reference_topic.clone()],
            timeout,
        })
    }

    /// One metadata request for every topic, bounded by the timeout; why not ready as
    /// [`LogError::Unavailable`].
    pub fn check(&self) -> Result<(), LogError> {
        let metadata = self
            .client
            .client()
            .fetch_metadata(None, self.timeout)
            .map_err(|error| LogError::Unavailable(format!("kafka: {error}")))?;
        for topic in &self.topics {
            let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
                return Err(LogError::Unavailable(format!(
                    "kafka: topic {topic} not found"
                )));
            };
            if let Some(error) = found.error() {
                return Err(LogError::Unavailable(format!(
                    "kafka: topic {topic}: {}",
                    RDKafkaErrorCode::from(error)
                )));
            }
            if found.partitions().is_empty()
                || found
                    .partitions()
                    .iter()
                    .any(|p| p.error().is_some() || p.leader() < 0)
            {
                return Err(LogError::Unavailable(format!(
                    "kafka: topic {topic} has partitions without a leader"
                )));
            }
        }
        Ok(())
    }
}
