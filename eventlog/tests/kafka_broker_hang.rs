//! Transactional appends while the broker hangs, on a Kafka of this test's own (the shared
//! one is never hung): eight writers append in transactions while the broker is stopped
//! (SIGSTOP) longer than an append may wait, again and again. Once the broker is back and
//! the writers are idle, no transaction may be left open: every partition's last stable
//! offset (the end of what `read_committed` readers see) reaches its high watermark.
//!
//! Every hang of 8 s or more outlasts the broker's session with its own controller (9 s):
//! on waking, the broker is fenced and unfenced, every partition gets a new leader epoch and
//! the transaction coordinator reloads its state, the ground on which a transaction was once
//! seen left open (docs/reliability.md).
//!
//! `AQS_KEEP_HUNG_BROKER_SECS=<n>` keeps the broker serving that long after a failure, to
//! look at it with `kafka-transactions.sh`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aqs_eventlog::TransactionalLog;
use aqs_eventlog::kafka::{KafkaConfig, TransactionalKafkaLog};
use aqs_schemas::Event;
use aqs_testkit::private::{PrivateServices, Service};
use aqs_testkit::unique_name;
use rdkafka::consumer::{BaseConsumer, Consumer};

#[path = "support/events.rs"]
mod events;
use events::visits_and_an_outlet;
#[path = "support/setup.rs"]
mod setup;
use setup::trace;

/// A batch over every partition and the reference topic.
fn batch(prefix: &str) -> Vec<Event> {
    visits_and_an_outlet(prefix, 40)
}

const WRITERS: usize = 8;
const PARTITIONS: u32 = 4;
/// How long each hang lasts: around the message timeout (10 s), below and above it.
const HANGS_SECS: [u64; 10] = [8, 8, 11, 8, 6, 13, 8, 9, 8, 10];

/// Per partition of the events and reference topics: (last stable offset, high watermark).
fn stable_and_high(brokers: &str, config: &KafkaConfig) -> Vec<(String, i32, i64, i64)> {
    let client = |isolation: &str| -> BaseConsumer {
        aqs_testkit::client_config(brokers)
            .set("isolation.level", isolation)
            .create()
            .expect("offsets client")
    };
    let committed = client("read_committed");
    let uncommitted = client("read_uncommitted");
    let mut found = Vec::new();
    let topics = [
        (config.events_topic.clone(), PARTITIONS as i32),
        (config.reference_topic.clone(), 1),
    ];
    for (topic, partitions) in topics {
        for partition in 0..partitions {
            let timeout = Duration::from_secs(10);
            let (_, stable) = committed
                .fetch_watermarks(&topic, partition, timeout)
                .expect("last stable offset");
            let (_, high) = uncommitted
                .fetch_watermarks(&topic, partition, timeout)
                .expect("high watermark");
            found.push((topic.clone(), partition, stable, high));
        }
    }
    found
}

#[test]
#[ignore = "about three minutes of broker hangs: run with --ignored"]
fn no_transaction_stays_open_after_the_broker_hangs_again_and_again() {
    trace();
    let Some(services) = PrivateServices::start() else {
        return;
    };
    let brokers = services.kafka_brokers().to_owned();
    let config = setup::fresh_topics(
        &brokers,
        "hang",
        PARTITIONS,
        unique_name("aqs-test-hang", '-'),
    );
    let prefix = unique_name("aqs-test-hang-writer", '-');
    let log = Arc::new(TransactionalKafkaLog::connect(&config, &prefix, WRITERS).expect("connect"));

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..WRITERS)
        .map(|thread| {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            let (committed, failed) = (Arc::clone(&committed), Arc::clone(&failed));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let events = batch(&format!("w{thread}-{n}"));
                    let outcome = log.begin(Instant::now() + Duration::from_secs(5)).and_then(
                        |mut transaction| {
                            transaction.append(&events)?;
                            transaction.commit().map_err(|error| {
                                aqs_eventlog::LogError::Unavailable(error.to_string())
                            })
                        },
                    );
                    match outcome {
                        Ok(()) => committed.fetch_add(1, Ordering::Relaxed),
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(200));
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();

    for (hang, secs) in HANGS_SECS.into_iter().enumerate() {
        std::thread::sleep(Duration::from_millis(2_500 + 700 * hang as u64));
        eprintln!("hang {hang}: {secs} s");
        services.pause(Service::Kafka);
        std::thread::sleep(Duration::from_secs(secs));
        services.resume(Service::Kafka);
        eprintln!("hang {hang} ended");
    }
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("writer thread");
    }
    eprintln!(
        "transactions committed {}, failed {}",
        committed.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );

    // An open transaction ends at the latest with its timeout; give it that and a margin.
    let deadline = Instant::now() + log.transaction_timeout() + Duration::from_secs(15);
    let stuck = loop {
        let stuck: Vec<_> = stable_and_high(&brokers, &config)
            .into_iter()
            .filter(|(_, _, stable, high)| stable < high)
            .collect();
        if stuck.is_empty() || Instant::now() > deadline {
            break stuck;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    if !stuck.is_empty()
        && let Some(keep) = std::env::var("AQS_KEEP_HUNG_BROKER_SECS")
            .ok()
            .and_then(|secs| secs.parse().ok())
    {
        eprintln!(
            "transactions left open: {stuck:?}; broker {brokers} kept for {keep} s; writers {:?}",
            log.writer_names()
        );
        std::thread::sleep(Duration::from_secs(keep));
    }
    assert!(
        stuck.is_empty(),
        "partitions held back by a transaction left open (topic, partition, last stable \
         offset, high watermark): {stuck:?}"
    );
}
