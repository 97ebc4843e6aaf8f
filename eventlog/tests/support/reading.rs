//! Reading a Kafka log to its end, for the tests of what its readers see. Included with
//! `#[path = "support/reading.rs"] mod reading;`.

use std::time::{Duration, Instant};

use aqs_eventlog::kafka::KafkaConsumer;
use aqs_eventlog::{LogConsumer, LogRecord, Positions};

/// Reads from `positions` until the consumer reports a lag of zero with nothing more to
/// read, within `within`; the records, and `positions` moved past them.
pub fn read_to_the_end(
    consumer: &mut KafkaConsumer,
    positions: &mut Positions,
    within: Duration,
) -> Vec<LogRecord> {
    let deadline = Instant::now() + within;
    let mut records = Vec::new();
    loop {
        let polled = consumer
            .poll(100, Duration::from_millis(200))
            .expect("poll");
        for record in &polled {
            positions.insert(record.partition, record.offset + 1);
        }
        let idle = polled.is_empty();
        records.extend(polled);
        if idle && consumer.lag(positions) == Some(0) {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "lag never reached 0 (lag {:?}, positions {positions:?}, read {} records)",
            consumer.lag(positions),
            records.len()
        );
    }
}
