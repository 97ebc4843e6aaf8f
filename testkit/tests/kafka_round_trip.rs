//! Round trip through the real Kafka: keyed idempotent produce, consumer-group consume with
//! manual commits, and resume from the committed offsets.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use aqs_testkit::{KafkaEnv, block_on};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::topic_partition_list::Offset;

const PARTITIONS: i32 = 3;
const KEYS: usize = 12;
const PER_KEY: usize = 25;

/// One consumed record.
#[derive(Debug, Clone)]
struct Received {
    key: String,
    sequence: usize,
    partition: i32,
}

#[test]
fn keyed_messages_arrive_once_in_key_order_and_a_group_resumes_from_its_commits() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let started = Instant::now();
    let topic = kafka.fresh_topic(PARTITIONS);
    let group = kafka.fresh_group();
    let producer: FutureProducer = kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer");

    // Keys interleaved, each key's sequence increasing: the order a real source would send.
    let mut sent_partition = BTreeMap::new();
    for sequence in 0..PER_KEY {
        let deliveries: Vec<_> = (0..KEYS)
            .map(|k| {
                let key = format!("agent-{k:02}");
                let payload = format!("{key}:{sequence}");
                let delivery = producer
                    .send_result(FutureRecord::to(&topic).key(&key).payload(&payload))
                    .map_err(|(error, _)| error)
                    .expect("enqueued");
                (key, delivery)
            })
            .collect();
        for (key, delivery) in deliveries {
            let delivery = block_on(delivery)
                .expect("delivery report")
                .unwrap_or_else(|(error, _)| panic!("delivery of {key}: {error}"));
            let first = *sent_partition
                .entry(key.clone())
                .or_insert(delivery.partition);
            assert_eq!(first, delivery.partition, "{key} went to two partitions");
        }
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    let used: HashSet<_> = sent_partition.values().collect();
    assert!(
        used.len() > 1,
        "12 keys all hashed to one partition: {sent_partition:?}"
    );
    let produced_at = started.elapsed();

    let total = KEYS * PER_KEY;
    let consumer = group_consumer(&kafka, &group, &topic);
    let received = consume(&consumer, total, Duration::from_secs(15));
    commit(&consumer);

    assert_eq!(received.len(), total, "every message once");
    let unique: HashSet<_> = received.iter().map(|r| (&r.key, r.sequence)).collect();
    assert_eq!(unique.len(), total, "no duplicates");
    let mut last_by_key: BTreeMap<&str, usize> = BTreeMap::new();
    for record in &received {
        assert_eq!(
            record.partition, sent_partition[&record.key],
            "{} read from another partition than it was written to",
            record.key
        );
        if let Some(last) = last_by_key.insert(&record.key, record.sequence) {
            assert_eq!(record.sequence, last + 1, "order of {} broken", record.key);
        }
    }
    assert_eq!(last_by_key.len(), KEYS);

    // The commits are the high watermarks of every partition. (The partition list holds
    // references into the client: it must be gone before the consumer is dropped.)
    let committed_total: i64 = {
        let committed = consumer
            .committed(Duration::from_secs(10))
            .expect("committed offsets");
        committed
            .elements()
            .iter()
            .map(|element| {
                let (_, high) = consumer
                    .fetch_watermarks(&topic, element.partition(), Duration::from_secs(10))
                    .expect("watermarks");
                assert_eq!(
                    element.offset(),
                    Offset::Offset(high),
                    "partition {}",
                    element.partition()
                );
                high
            })
            .sum()
    };
    assert_eq!(committed_total, total as i64);
    drop(consumer); // leaves the group

    // A second member of the group, after more messages: it sees only the new ones.
    let extra: Vec<String> = (0..5).map(|i| format!("late-{i}")).collect();
    for key in &extra {
        let payload = format!("{key}:0");
        let record = FutureRecord::to(&topic).key(key).payload(&payload);
        block_on(
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("enqueued"),
        )
        .expect("delivery report")
        .unwrap_or_else(|(error, _)| panic!("delivery of {key}: {error}"));
    }
    let second = group_consumer(&kafka, &group, &topic);
    let resumed = consume(&second, extra.len(), Duration::from_secs(15));
    let mut resumed_keys: Vec<_> = resumed.iter().map(|r| r.key.clone()).collect();
    resumed_keys.sort();
    assert_eq!(resumed_keys, extra, "only the messages after the commit");
    let nothing_more = consume(&second, 1, Duration::from_millis(500));
    assert!(nothing_more.is_empty(), "unexpected: {nothing_more:?}");

    eprintln!(
        "kafka round trip: {total} messages produced in {produced_at:?}, whole test {:?}",
        started.elapsed()
    );
}

/// A consumer of `group` on `topic` that stores an offset only after the message was
/// processed and commits only when asked.
fn group_consumer(kafka: &KafkaEnv, group: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// Polls until `want` messages arrived or `timeout` passed; stores each offset after
/// "processing" and commits every 50 messages.
fn consume(consumer: &BaseConsumer, want: usize, timeout: Duration) -> Vec<Received> {
    let deadline = Instant::now() + timeout;
    let mut received = Vec::new();
    while received.len() < want && Instant::now() < deadline {
        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = result.expect("consume");
        let key = String::from_utf8(message.key().expect("key").to_vec()).expect("utf-8 key");
        let payload = std::str::from_utf8(message.payload().expect("payload")).expect("utf-8");
        let (payload_key, sequence) = payload.rsplit_once(':').expect("key:sequence");
        assert_eq!(payload_key, key, "key intact");
        received.push(Received {
            key,
            sequence: sequence.parse().expect("sequence"),
            partition: message.partition(),
        });
        consumer
            .store_offset_from_message(&message)
            .expect("store offset");
        if received.len() % 50 == 0 {
            commit(consumer);
        }
    }
    received
}

/// Commits the stored offsets; nothing new to commit is fine.
fn commit(consumer: &BaseConsumer) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => panic!("commit: {error}"),
    }
}
