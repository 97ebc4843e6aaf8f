//! What every Kafka client here shares: librdkafka's logs routed to `tracing`.

use std::sync::{Arc, Mutex, PoisonError};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use tracing::{debug, error, info, warn};

use super::watchdog::ClientView;

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

/// A context that routes librdkafka's logs and keeps what its statistics say, for the
/// watchdog (set `statistics.interval.ms` on the client).
pub(super) struct WatchedContext {
    pub(super) role: &'static str,
    pub(super) view: Arc<Mutex<ClientView>>,
}

impl ClientContext for WatchedContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka(self.role, level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn!(role = self.role, %error, reason, "kafka client error");
    }

    fn stats(&self, statistics: Statistics) {
        record_view(&self.view, &statistics);
    }
}

impl ConsumerContext for WatchedContext {}

pub(super) fn record_view(view: &Mutex<ClientView>, statistics: &Statistics) {
    *view.lock().unwrap_or_else(PoisonError::into_inner) = ClientView::from_statistics(statistics);
}

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
