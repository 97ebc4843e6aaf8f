//! The Kafka log's settings: where it lives and how it is laid out.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::ClientConfig;

use crate::{DeadLetterLimits, LogError, Stream};

/// Default name of the events topic.
pub const DEFAULT_EVENTS_TOPIC: &str = "aqs.events";
/// Default name of the reference topic.
pub const DEFAULT_REFERENCE_TOPIC: &str = "aqs.reference";
/// Default name of the dead-letter topic.
pub const DEFAULT_DEAD_LETTER_TOPIC: &str = "aqs.dead-letter";
/// Default consumer group of the projectors.
pub const DEFAULT_PROJECTOR_GROUP: &str = "aqs-projector";
/// Default bound on waiting for the broker, in milliseconds.
pub const DEFAULT_MESSAGE_TIMEOUT_MS: u64 = 10_000;
/// Default of [`KafkaConfig::read_stall_seconds`]: well past librdkafka's own recoveries
/// (reconnects back off up to 10 s, a session lapses after 10 s).
pub const DEFAULT_READ_STALL_SECONDS: u64 = 30;

/// How the client resolves broker host names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AddressFamily {
    /// IPv4 and IPv6.
    Any,
    /// IPv4 only (the test broker listens on 127.0.0.1 only).
    #[default]
    V4,
    /// IPv6 only.
    V6,
}

impl AddressFamily {
    fn as_str(self) -> &'static str {
        match self {
            AddressFamily::Any => "any",
            AddressFamily::V4 => "v4",
            AddressFamily::V6 => "v6",
        }
    }
}

/// Where the Kafka log lives and how it is laid out.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct KafkaConfig {
    /// Kafka bootstrap servers (`host:port,...`). Unset: the embedded log is used.
    #[arg(long = "kafka-brokers", env = "AQS_KAFKA_BROKERS")]
    pub brokers: Option<String>,
    /// Topic of the agent events, partitioned by agent (created when missing).
    #[arg(long, env = "AQS_EVENTS_TOPIC", default_value = DEFAULT_EVENTS_TOPIC)]
    pub events_topic: String,
    /// Topic of the reference data, one partition (created when missing).
    #[arg(long, env = "AQS_REFERENCE_TOPIC", default_value = DEFAULT_REFERENCE_TOPIC)]
    pub reference_topic: String,
    /// Topic of refused input with its reasons (created when missing).
    #[arg(long, env = "AQS_DEAD_LETTER_TOPIC", default_value = DEFAULT_DEAD_LETTER_TOPIC)]
    pub dead_letter_topic: String,
    /// Partitions of the events topic; an existing topic must have exactly this many.
    #[arg(
        long,
        env = "AQS_EVENTS_PARTITIONS",
        default_value_t = crate::DEFAULT_PARTITIONS,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(i32::MAX))
    )]
    pub events_partitions: u32,
    /// Consumer group of the projector instances sharing the events partitions.
    #[arg(long, env = "AQS_PROJECTOR_GROUP", default_value = DEFAULT_PROJECTOR_GROUP)]
    pub projector_group: String,
    /// Replication factor of the topics created here (3 in production).
    #[arg(
        long = "kafka-replication-factor",
        env = "AQS_KAFKA_REPLICATION_FACTOR",
        default_value_t = 1,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub replication_factor: u16,
    /// Longest wait for the broker, in milliseconds: for an append to be acknowledged, and
    /// for each step of connecting.
    #[arg(
        long = "kafka-message-timeout-ms",
        env = "AQS_KAFKA_MESSAGE_TIMEOUT_MS",
        default_value_t = DEFAULT_MESSAGE_TIMEOUT_MS,
        value_parser = clap::value_parser!(u64).range(100..=i32::MAX as u64)
    )]
    pub message_timeout_ms: u64,
    /// Address family used to reach the brokers.
    #[arg(
        long = "kafka-address-family",
        env = "AQS_KAFKA_ADDRESS_FAMILY",
        value_enum,
        default_value_t
    )]
    pub address_family: AddressFamily,
    /// How long the group waits for a silent projector before moving its partitions to the
    /// others (librdkafka `session.timeout.ms`; the broker bounds it, 6000 at least by default).
    #[arg(
        long = "kafka-session-timeout-ms",
        env = "AQS_KAFKA_SESSION_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub session_timeout_ms: u64,
    /// Seconds a projector's Kafka reader may go without reading while its log goes on (a
    /// partition readable past its position, or its consumer outside its group while the
    /// brokers answer) before it counts as stuck: `/readyz` then fails and the client is
    /// made again (again after this long, then twice, four times that, up to 10 minutes).
    #[arg(
        long = "kafka-read-stall-seconds",
        env = "AQS_KAFKA_READ_STALL_SECONDS",
        default_value_t = DEFAULT_READ_STALL_SECONDS,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub read_stall_seconds: u64,
    /// How long and how much the dead letters are kept: the retention of the dead-letter
    /// topic created here (and the bounds of the embedded log's dead letters).
    #[command(flatten)]
    pub dead_letters: DeadLetterLimits,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: None,
            events_topic: DEFAULT_EVENTS_TOPIC.to_owned(),
            reference_topic: DEFAULT_REFERENCE_TOPIC.to_owned(),
            dead_letter_topic: DEFAULT_DEAD_LETTER_TOPIC.to_owned(),
            events_partitions: crate::DEFAULT_PARTITIONS,
            projector_group: DEFAULT_PROJECTOR_GROUP.to_owned(),
            replication_factor: 1,
            message_timeout_ms: DEFAULT_MESSAGE_TIMEOUT_MS,
            address_family: AddressFamily::default(),
            session_timeout_ms: 10_000,
            read_stall_seconds: DEFAULT_READ_STALL_SECONDS,
            dead_letters: DeadLetterLimits::default(),
        }
    }
}

impl KafkaConfig {
    /// The defaults, with these bootstrap servers.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: Some(brokers.into()),
            ..Self::default()
        }
    }

    /// The bound on waiting for the broker.
    pub fn message_timeout(&self) -> Duration {
        Duration::from_millis(self.message_timeout_ms)
    }

    /// How long a reader may go without reading while its log goes on.
    pub fn read_stall_after(&self) -> Duration {
        Duration::from_secs(self.read_stall_seconds)
    }

    /// The bootstrap servers, or a configuration error when none are set.
    pub fn bootstrap_servers(&self) -> Result<&str, LogError> {
        self.brokers
            .as_deref()
            .map(str::trim)
            .filter(|brokers| !brokers.is_empty())
            .ok_or_else(|| {
                LogError::Config("no Kafka brokers configured (AQS_KAFKA_BROKERS)".into())
            })
    }

    /// Checks what clap cannot: set brokers, distinct non-empty names, sane numbers.
    pub fn validate(&self) -> Result<(), LogError> {
        self.bootstrap_servers()?;
        let topics = [
            &self.events_topic,
            &self.reference_topic,
            &self.dead_letter_topic,
        ];
        if topics.iter().any(|t| t.trim().is_empty()) || self.projector_group.trim().is_empty() {
            return Err(LogError::Config(
                "Kafka topic and group names must not be empty".into(),
            ));
        }
        if topics.iter().collect::<BTreeSet<_>>().len() != topics.len() {
            return Err(LogError::Config(format!(
                "the events, reference and dead-letter topics must differ: {topics:?}"
            )));
        }
        if self.events_partitions == 0 || i32::try_from(self.events_partitions).is_err() {
            return Err(LogError::Config(format!(
                "the events topic needs between 1 and {} partitions, not {}",
                i32::MAX,
                self.events_partitions
            )));
        }
        if self.replication_factor == 0 {
            return Err(LogError::Config(
                "the replication factor must be at least 1".into(),
            ));
        }
        if !(100..=i32::MAX as u64).contains(&self.message_timeout_ms) {
            return Err(LogError::Config(format!(
                "the Kafka message timeout must be between 100 ms and {} ms, not {}",
                i32::MAX,
                self.message_timeout_ms
            )));
        }
        Ok(())
    }

    /// Settings every client here shares. Topics are never created implicitly: a metadata
    /// request or a produce to a missing topic must not make a one-partition topic.
    pub(super) fn client_config(&self, role: &str) -> Result<ClientConfig, LogError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.bootstrap_servers()?)
            .set("broker.address.family", self.address_family.as_str())
            .set("client.id", format!("aqs-{role}"))
            .set("allow.auto.create.topics", "false");
        Ok(config)
    }

    pub(super) fn topic_of(&self, stream: Stream) -> &str {
        match stream {
            Stream::Events => &self.events_topic,
            Stream::Reference => &self.reference_topic,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::kafka::KafkaLog;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        kafka: KafkaConfig,
    }

    #[test]
    fn command_line_defaults_and_variables_match_the_default_config() {
        use clap::CommandFactory;

        let command = Cli::command();
        command.clone().debug_assert();
        let argument = |id: &str| {
            let argument = command
                .get_arguments()
                .find(|a| a.get_id() == id)
                .unwrap_or_else(|| panic!("no argument {id}"));
            let default = argument
                .get_default_values()
                .first()
                .map(|v| v.to_string_lossy().into_owned());
            let env = argument.get_env().map(|v| v.to_string_lossy().into_owned());
            (default, env)
        };
        let defaults = KafkaConfig::default();
        let expected = [
            ("brokers", None, "AQS_KAFKA_BROKERS"),
            (
                "events_topic",
                Some(defaults.events_topic.clone()),
                "AQS_EVENTS_TOPIC",
            ),
            (
                "reference_topic",
                Some(defaults.reference_topic.clone()),
                "AQS_REFERENCE_TOPIC",
            ),
            (
                "dead_letter_topic",
                Some(defaults.dead_letter_topic.clone()),
                "AQS_DEAD_LETTER_TOPIC",
            ),
            (
                "events_partitions",
                Some("12".into()),
                "AQS_EVENTS_PARTITIONS",
            ),
            (
                "projector_group",
                Some(defaults.projector_group.clone()),
                "AQS_PROJECTOR_GROUP",
            ),
            (
                "replication_factor",
                Some("1".into()),
                "AQS_KAFKA_REPLICATION_FACTOR",
            ),
            (
                "message_timeout_ms",
                Some("10000".into()),
                "AQS_KAFKA_MESSAGE_TIMEOUT_MS",
            ),
            (
                "address_family",
                Some("v4".into()),
                "AQS_KAFKA_ADDRESS_FAMILY",
            ),
            (
                "max_age_days",
                Some("90".into()),
                "AQS_DEAD_LETTER_MAX_AGE_DAYS",
            ),
            (
                "max_bytes",
                Some("1073741824".into()),
                "AQS_DEAD_LETTER_MAX_BYTES",
            ),
        ];
        for (id, default, env) in expected {
            assert_eq!(argument(id), (default, Some(env.to_owned())), "{id}");
        }
        assert_eq!(defaults.events_topic, "aqs.events");
        assert_eq!(defaults.reference_topic, "aqs.reference");
        assert_eq!(defaults.dead_letter_topic, "aqs.dead-letter");
        assert_eq!(defaults.projector_group, "aqs-projector");
        assert_eq!(defaults.message_timeout(), Duration::from_secs(10));

        // Explicit arguments win over the environment: these parse the same everywhere.
        assert!(Cli::try_parse_from(["aqs", "--events-partitions", "0"]).is_err());
        assert!(Cli::try_parse_from(["aqs", "--kafka-address-family", "v5"]).is_err());
        let parsed = Cli::try_parse_from([
            "aqs",
            "--kafka-brokers",
            "k1:9092,k2:9092",
            "--events-partitions",
            "24",
        ])
        .expect("parse");
        assert_eq!(parsed.kafka.brokers.as_deref(), Some("k1:9092,k2:9092"));
        assert_eq!(parsed.kafka.events_partitions, 24);
    }

    #[test]
    fn validation_refuses_unusable_settings() {
        assert!(matches!(
            KafkaConfig::default().validate(),
            Err(LogError::Config(_))
        ));
        assert!(KafkaConfig::new("127.0.0.1:9092").validate().is_ok());
        let same_topics = KafkaConfig {
            reference_topic: DEFAULT_EVENTS_TOPIC.into(),
            ..KafkaConfig::new("b:9092")
        };
        assert!(matches!(same_topics.validate(), Err(LogError::Config(_))));
        let no_partitions = KafkaConfig {
            events_partitions: 0,
            ..KafkaConfig::new("b:9092")
        };
        assert!(matches!(no_partitions.validate(), Err(LogError::Config(_))));
        assert!(matches!(
            KafkaLog::connect(&KafkaConfig::default()),
            Err(LogError::Config(_))
        ));
    }
}
