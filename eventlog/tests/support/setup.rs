//! Set-up shared by the Kafka tests: the code under test's logs in the test's output, and
//! a configuration on fresh topics. Included with `#[path = "support/setup.rs"] mod setup;`.

use aqs_eventlog::kafka::KafkaConfig;
use aqs_testkit::unique_name;

/// Logs of the code under test, shown with a failing test's output (`RUST_LOG` filters).
pub fn trace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "aqs_eventlog=info,librdkafka=warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Fresh topics named `aqs-test-<name>-…` on `brokers`, `partitions` event partitions and
/// the projector group `group`; logs on.
pub fn fresh_topics(brokers: &str, name: &str, partitions: u32, group: String) -> KafkaConfig {
    trace();
    KafkaConfig {
        events_topic: unique_name(&format!("aqs-test-{name}-events"), '-'),
        reference_topic: unique_name(&format!("aqs-test-{name}-reference"), '-'),
        dead_letter_topic: unique_name(&format!("aqs-test-{name}-dead-letter"), '-'),
        events_partitions: partitions,
        projector_group: group,
        ..KafkaConfig::new(brokers)
    }
}
