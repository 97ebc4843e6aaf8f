//! What every Kafka client here shares: librdkafka's logs routed to `tracing`.

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use tracing::{debug, error, info, warn};

/// A context that only routes librdkafka's logs to `tracing`.
pub(super) struct LoggingContext {
    pub(super) role: &'static str,
}

impl ClientContext for LoggingContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka(self.role, level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn!(role = self.role, %error, reason, "kafka client error");
    }
}

impl ConsumerContext for LoggingContext {}

pub(super) fn log_librdkafka(role: &str, level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            error!(target: "librdkafka", role, facility, "{message}");
        }
        RDKafkaLogLevel::Warning => warn!(target: "librdkafka", role, facility, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            info!(target: "librdkafka", role, facility, "{message}")
        }
        RDKafkaLogLevel::Debug => debug!(target: "librdkafka", role, facility, "{message}"),
    }
}
