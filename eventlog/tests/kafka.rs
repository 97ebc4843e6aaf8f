//! The Kafka log against a real broker (skipped loudly without `AQS_KAFKA_BROKERS`, a failure
//! in CI): each test has its own topics and consumer group.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aqs_eventlog::kafka::{KafkaConfig, KafkaConsumer, KafkaLog};
use aqs_eventlog::{
    AppendOutcome, DeadLetter, DeadLetterLimits, EventLog, LogConsumer, LogError, LogRecord,
    PartitionId, Positions, Stream,
};
use aqs_schemas::partition::partition_for_key;
use aqs_schemas::{Decoder, Event};
use aqs_testkit::{KafkaEnv, block_on};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

#[path = "support/setup.rs"]
mod setup;
use setup::trace;

/// Fresh topics and group on the test broker.
fn config(kafka: &KafkaEnv, partitions: u32) -> KafkaConfig {
    setup::fresh_topics(kafka.brokers(), "log", partitions, kafka.fresh_group())
}

const READ_WITHIN: Duration = Duration::from_secs(20);
const REFERENCE: PartitionId = PartitionId {
    stream: Stream::Reference,
    partition: 0,
};

/// An agent event; its id tells the agent and the agent's sequence number.
fn visit(agent: &str, sequence: usize) -> Event {
    let body = format!(
        r#"{{"event_id":"{agent}-{sequence:03}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","agent_id":"{agent}","payload":{{"outlet_id":"O1","purpose":"training"}}}}"#
    );
    Decoder::standard()
        .decode(body.as_bytes())
        .expect("valid visit")
}

/// A reference event (no agent).
fn outlet(id: &str) -> Event {
    let body = format!(
        r#"{{"event_id":"{id}","type":"outlet_registered","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","payload":{{"outlet_id":"{id}","bank":"ICBC","name":"Outlet {id}","region_id":"R1"}}}}"#
    );
    Decoder::standard()
        .decode(body.as_bytes())
        .expect("valid outlet")
}

/// Agent ids, at least `per_partition` on every one of `partitions` partitions.
fn agents_covering(partitions: u32, per_partition: usize) -> Vec<String> {
    let mut count = vec![0; partitions as usize];
    let mut agents = Vec::new();
    for i in 0.. {
        if count.iter().all(|&c| c >= per_partition) {
            break;
        }
        let agent = format!("A{i:06}");
        let partition = partition_for_key(&agent, partitions) as usize;
        if count[partition] < per_partition {
            count[partition] += 1;
            agents.push(agent);
        }
    }
    agents
}

/// `per_agent` events of each agent, interleaved as a real source would send them, with
/// reference events in between.
fn batch(agents: &[String], sequences: std::ops::Range<usize>, references: &[&str]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut references = references.iter();
    for sequence in sequences {
        for agent in agents {
            events.push(visit(agent, sequence));
        }
        if let Some(id) = references.next() {
            events.push(outlet(id));
        }
    }
    events.extend(references.map(|id| outlet(id)));
    events
}

fn event_id(record: &LogRecord) -> String {
    let value: serde_json::Value = serde_json::from_slice(&record.bytes).expect("record is JSON");
    value["event_id"].as_str().expect("event_id").to_owned()
}

/// Polls until `count` records arrived (or the time is up); then checks that nothing follows.
fn read(consumer: &mut KafkaConsumer, count: usize) -> Vec<LogRecord> {
    let deadline = Instant::now() + READ_WITHIN;
    let mut records = Vec::new();
    while records.len() < count && Instant::now() < deadline {
        records.extend(consumer.poll(7, Duration::from_millis(200)).expect("poll"));
    }
    assert_eq!(records.len(), count, "records read: {:?}", ids(&records));
    let more = consumer
        .poll(100, Duration::from_millis(300))
        .expect("poll");
    assert!(more.is_empty(), "unexpected records: {:?}", ids(&more));
    records
}

fn ids(records: &[LogRecord]) -> Vec<String> {
    records.iter().map(event_id).collect()
}

/// Next offset per partition after these records.
fn positions_after(records: &[LogRecord]) -> Positions {
    let mut positions = Positions::new();
    for record in records {
        let next = positions.entry(record.partition).or_insert(0);
        *next = (*next).max(record.offset + 1);
    }
    positions
}

fn events_partitions(consumer: &mut KafkaConsumer) -> BTreeSet<u32> {
    consumer
        .assignment()
        .into_iter()
        .filter(|p| p.stream == Stream::Events)
        .map(|p| p.partition)
        .collect()
}

/// Every record is on consecutive offsets from `from` (0 when absent), per partition.
fn assert_contiguous(records: &[LogRecord], from: &Positions) {
    let mut next = from.clone();
    for record in records {
        let expected = next.entry(record.partition).or_insert(0);
        assert_eq!(
            record.offset, *expected,
            "gap or repeat on {:?}",
            record.partition
        );
        *expected += 1;
    }
}

#[test]
fn appended_events_are_read_once_in_agent_order_on_their_partition() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let started = Instant::now();
    let config = config(&kafka, 4);
    let log = KafkaLog::connect(&config).expect("connect");
    let agents = agents_covering(4, 2);
    let events = batch(&agents, 0..5, &["O1", "O2", "O3"]);

    let outcomes = log.append(&events).expect("append");
    assert_eq!(outcomes.len(), events.len());
    let mut appended_at = BTreeMap::new();
    for (event, outcome) in events.iter().zip(&outcomes) {
        let AppendOutcome::Appended { partition, offset } = outcome else {
            panic!("{}: {outcome:?}", event.event_id);
        };
        assert_eq!(*partition, PartitionId::of(event, 4), "{}", event.event_id);
        appended_at.insert(event.event_id.clone(), (*partition, *offset));
    }

    let mut consumer = log.consumer().expect("consumer");
    assert_eq!(
        consumer.assignment().len(),
        5,
        "reference + the 4 events partitions"
    );
    consumer.seek(&Positions::new()).expect("seek");
    let records = read(&mut consumer, events.len());

    assert_contiguous(&records, &Positions::new());
    let sent: BTreeMap<&str, &Event> = events.iter().map(|e| (e.event_id.as_str(), e)).collect();
    let mut order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for record in &records {
        let id = event_id(record);
        let event = sent[id.as_str()];
        assert_eq!(
            record.bytes,
            serde_json::to_vec(event).expect("json"),
            "canonical JSON"
        );
        assert_eq!(
            (record.partition, record.offset),
            appended_at[&id],
            "{id} read where it was appended"
        );
        let owner = event.agent_id.clone().unwrap_or_else(|| "reference".into());
        order.entry(owner).or_default().push(id);
    }
    let unique: BTreeSet<String> = ids(&records).into_iter().collect();
    assert_eq!(unique.len(), events.len(), "each event exactly once");
    for (owner, read_order) in &order {
        let sent_order: Vec<String> = events
            .iter()
            .filter(|e| e.agent_id.clone().unwrap_or_else(|| "reference".into()) == *owner)
            .map(|e| e.event_id.clone())
            .collect();
        assert_eq!(read_order, &sent_order, "order of {owner}");
    }

    let end = positions_after(&records);
    assert_eq!(consumer.lag(&end), Some(0));
    assert_eq!(consumer.lag(&Positions::new()), Some(events.len() as u64));
    consumer.report_progress(&end).expect("report progress");
    eprintln!("appended_events_are_read_once...: {:?}", started.elapsed());
}

#[test]
fn a_consumer_resumes_exactly_at_the_positions_it_is_given_not_at_the_group_commits() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let started = Instant::now();
    let config = config(&kafka, 3);
    let log = KafkaLog::connect(&config).expect("connect");
    let events = batch(&agents_covering(3, 2), 0..6, &["O1", "O2", "O3", "O4"]);
    log.append(&events).expect("append");

    // A first instance reads everything and reports it as the group's progress.
    let mut first = log.consumer().expect("consumer");
    first.seek(&Positions::new()).expect("seek");
    let all = read(&mut first, events.len());
    let end = positions_after(&all);
    first.report_progress(&end).expect("report progress");
    let _ = first.poll(10, Duration::from_millis(300)).expect("poll");
    drop(first);
    assert_committed(&kafka, &config, &end);

    // A new instance restores older positions: it reads from there, not from the commits.
    let middle: Positions = end
        .iter()
        .map(|(partition, next)| (*partition, next / 2))
        .collect();
    let mut second = log.consumer().expect("consumer");
    second.seek(&middle).expect("seek");
    let expected: Vec<&LogRecord> = all
        .iter()
        .filter(|r| r.offset >= middle[&r.partition])
        .collect();
    let resumed = read(&mut second, expected.len());
    assert_contiguous(&resumed, &middle);
    let expected_ids: BTreeSet<String> = expected.iter().map(|r| event_id(r)).collect();
    let resumed_ids: BTreeSet<String> = ids(&resumed).into_iter().collect();
    assert_eq!(resumed_ids, expected_ids);

    // Seeking while reading replays one partition from the start, the others stay at the end.
    let replayed = PartitionId {
        stream: Stream::Events,
        partition: 1,
    };
    let mut replay = end.clone();
    replay.insert(replayed, 0);
    second.seek(&replay).expect("seek");
    let again = read(&mut second, end[&replayed] as usize);
    assert!(again.iter().all(|r| r.partition == replayed));
    assert_contiguous(&again, &replay);

    // A position past the end of the log (a recreated topic) is an error, not a silent
    // restart from the beginning.
    let mut beyond = end.clone();
    beyond.insert(replayed, end[&replayed] + 100);
    second.seek(&beyond).expect("seek");
    let deadline = Instant::now() + READ_WITHIN;
    let error = loop {
        match second.poll(100, Duration::from_millis(200)) {
            Err(error) => break error,
            Ok(records) => assert!(records.is_empty(), "{:?}", ids(&records)),
        }
        assert!(
            Instant::now() < deadline,
            "no error past the end of the log"
        );
    };
    assert!(matches!(error, LogError::Config(_)), "{error}");
    eprintln!("a_consumer_resumes_exactly...: {:?}", started.elapsed());
}

/// Waits until the group's committed offsets of the events topic are these positions.
fn assert_committed(kafka: &KafkaEnv, config: &KafkaConfig, positions: &Positions) {
    let expected: BTreeMap<u32, u64> = positions
        .iter()
        .filter(|(p, _)| p.stream == Stream::Events)
        .map(|(p, offset)| (p.partition, *offset))
        .collect();
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", &config.projector_group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    list.add_partition_range(&config.events_topic, 0, config.events_partitions as i32 - 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let committed = consumer
            .committed_offsets(list.clone(), Duration::from_secs(5))
            .expect("committed offsets");
        let offsets: BTreeMap<u32, u64> = committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some((e.partition() as u32, offset as u64)),
                _ => None,
            })
            .collect();
        if offsets == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "committed {offsets:?}, expected {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_consumers_split_the_partitions_and_the_survivor_takes_over_from_positions() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let started = Instant::now();
    let config = config(&kafka, 4);
    let log = KafkaLog::connect(&config).expect("connect");
    let agents = agents_covering(4, 1);
    let first_batch = batch(&agents, 0..4, &["O1"]);
    log.append(&first_batch).expect("append");

    let mut a = log.consumer().expect("consumer a");
    let mut b = log.consumer().expect("consumer b");
    let all: BTreeSet<u32> = (0..4).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        a.poll(1000, Duration::from_millis(100)).expect("poll a");
        b.poll(1000, Duration::from_millis(100)).expect("poll b");
        let (share_a, share_b) = (events_partitions(&mut a), events_partitions(&mut b));
        if !share_a.is_empty()
            && !share_b.is_empty()
            && share_a.is_disjoint(&share_b)
            && share_a.union(&share_b).copied().collect::<BTreeSet<_>>() == all
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no split of the partitions: a {share_a:?}, b {share_b:?}"
        );
    }
    let (share_a, share_b) = (events_partitions(&mut a), events_partitions(&mut b));

    // Each reads its own share (and the whole reference topic) from the start.
    a.seek(&Positions::new()).expect("seek a");
    b.seek(&Positions::new()).expect("seek b");
    let (mut read_a, mut read_b) = (Vec::new(), Vec::new());
    let agent_events = first_batch.iter().filter(|e| e.agent_id.is_some()).count();
    let reference_events = first_batch.len() - agent_events;
    let deadline = Instant::now() + READ_WITHIN;
    while read_a.len() + read_b.len() < agent_events + 2 * reference_events
        && Instant::now() < deadline
    {
        read_a.extend(a.poll(1000, Duration::from_millis(100)).expect("poll a"));
        read_b.extend(b.poll(1000, Duration::from_millis(100)).expect("poll b"));
    }
    assert_eq!(events_partitions(&mut a), share_a, "a's share moved");
    assert_eq!(events_partitions(&mut b), share_b, "b's share moved");
    for (records, share) in [(&read_a, &share_a), (&read_b, &share_b)] {
        assert_contiguous(records, &Positions::new());
        assert!(
            records
                .iter()
                .all(|r| r.partition == REFERENCE || share.contains(&r.partition.partition)),
            "read outside its share"
        );
        assert_eq!(
            records.iter().filter(|r| r.partition == REFERENCE).count(),
            reference_events,
            "every instance reads all reference data"
        );
    }
    let mut agent_ids: Vec<String> = read_a
        .iter()
        .chain(&read_b)
        .filter(|r| r.partition != REFERENCE)
        .map(event_id)
        .collect();
    agent_ids.sort();
    let mut sent: Vec<String> = first_batch
        .iter()
        .filter(|e| e.agent_id.is_some())
        .map(|e| e.event_id.clone())
        .collect();
    sent.sort();
    assert_eq!(
        agent_ids, sent,
        "the two shares together: every agent event once"
    );

    // b reports its progress to the group and goes away.
    let positions_a = positions_after(&read_a);
    let positions_b = positions_after(&read_b);
    b.report_progress(&positions_b).expect("report progress");
    let _ = b.poll(10, Duration::from_millis(300)).expect("poll b");
    drop(b);
    assert_committed(&kafka, &config, &positions_b);
    let second_batch = batch(&agents, 4..7, &["O2"]);
    log.append(&second_batch).expect("append");

    // a gets b's partitions and reads them from its own positions (none: offset 0), not
    // from b's commits; its own partitions continue where it was.
    let on = |share: &BTreeSet<u32>, events: &[Event]| {
        events
            .iter()
            .filter(|e| {
                e.agent_id
                    .as_deref()
                    .is_some_and(|agent| share.contains(&partition_for_key(agent, 4)))
            })
            .count()
    };
    let expected = on(&share_a, &second_batch)
        + on(&share_b, &first_batch)
        + on(&share_b, &second_batch)
        + (second_batch.len() - on(&all, &second_batch));
    let mut taken_over = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while events_partitions(&mut a) != all || taken_over.len() < expected {
        taken_over.extend(a.poll(1000, Duration::from_millis(200)).expect("poll a"));
        assert!(
            Instant::now() < deadline,
            "a never took over: {:?}, {} of {expected} records",
            events_partitions(&mut a),
            taken_over.len()
        );
    }
    assert_eq!(taken_over.len(), expected, "{:?}", ids(&taken_over));
    assert_contiguous(&taken_over, &positions_a);

    // Restoring both instances' positions (as from a shared checkpoint), a reads exactly
    // what was appended after them, without gaps.
    let mut positions = positions_a.clone();
    positions.extend(
        positions_b
            .into_iter()
            .filter(|(p, _)| p.stream == Stream::Events),
    );
    a.seek(&positions).expect("seek a");
    let rest = read(&mut a, second_batch.len());
    assert_contiguous(&rest, &positions);
    let rest_ids: BTreeSet<String> = ids(&rest).into_iter().collect();
    let second_ids: BTreeSet<String> = second_batch.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(
        rest_ids, second_ids,
        "exactly the events appended after the positions"
    );
    eprintln!("two_consumers_split...: {:?}", started.elapsed());
}

#[test]
fn the_dead_letter_topic_is_created_bounded_by_age_and_bytes() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let config = KafkaConfig {
        dead_letters: DeadLetterLimits {
            max_age_days: 7,
            max_bytes: 64 * 1024 * 1024,
        },
        ..config(&kafka, 1)
    };
    KafkaLog::connect(&config).expect("connect creates the topics");
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create().expect("admin");
    let topics = [ResourceSpecifier::Topic(&config.dead_letter_topic)];
    let described =
        block_on(admin.describe_configs(&topics, &AdminOptions::new())).expect("describe configs");
    let resource = described
        .into_iter()
        .next()
        .expect("one topic")
        .expect("topic config");
    let value = |name: &str| resource.get(name).and_then(|e| e.value.clone());
    assert_eq!(value("retention.ms").as_deref(), Some("604800000"));
    assert_eq!(value("retention.bytes").as_deref(), Some("67108864"));
    // Whole segments are deleted: a tenth of the bound keeps the topic near it.
    assert_eq!(value("segment.bytes").as_deref(), Some("6710886"));
    assert_eq!(value("cleanup.policy").as_deref(), Some("delete"));
}

#[test]
fn connecting_creates_the_topics_once_and_refuses_another_partition_count() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let config = config(&kafka, 3);
    let log = KafkaLog::connect(&config).expect("connect creates the topics");
    assert_eq!(log.partitions(), 3);
    KafkaLog::connect(&config).expect("connect again: the topics are reused");

    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create().expect("admin");
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(5))
        .expect("metadata");
    let partitions = |name: &str| {
        metadata
            .topics()
            .iter()
            .find(|t| t.name() == name)
            .map(|t| t.partitions().len())
    };
    assert_eq!(partitions(&config.events_topic), Some(3));
    assert_eq!(partitions(&config.reference_topic), Some(1));
    assert_eq!(partitions(&config.dead_letter_topic), Some(1));
    let topics = [
        ResourceSpecifier::Topic(&config.events_topic),
        ResourceSpecifier::Topic(&config.reference_topic),
    ];
    let described =
        block_on(admin.describe_configs(&topics, &AdminOptions::new())).expect("describe configs");
    for resource in described {
        let resource = resource.expect("topic config");
        let retention = resource.get("retention.ms").and_then(|e| e.value.clone());
        assert_eq!(retention.as_deref(), Some("-1"), "{:?}", resource.specifier);
    }

    let moved = KafkaConfig {
        events_partitions: 4,
        ..config.clone()
    };
    assert!(matches!(
        KafkaLog::connect(&moved),
        Err(LogError::Config(_))
    ));
    assert!(matches!(
        KafkaConsumer::connect(&moved),
        Err(LogError::Config(_))
    ));
}

#[test]
fn dead_letters_are_kept_as_json() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let config = config(&kafka, 1);
    let log = KafkaLog::connect(&config).expect("connect");
    let letter = DeadLetter {
        origin: "import f.ndjson line 3".into(),
        event_id: Some("x1".into()),
        body: b"{\"event_id\":\"x1\"}".to_vec(),
        reason: "payload: missing".into(),
    };
    log.dead_letter(std::slice::from_ref(&letter))
        .expect("dead letter");

    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", kafka.fresh_group())
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&config.dead_letter_topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&list).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(10);
    let kept = loop {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("message");
            assert_eq!(message.key(), Some(&b"x1"[..]));
            break serde_json::from_slice::<DeadLetter>(message.payload().expect("payload"))
                .expect("a dead letter");
        }
        assert!(Instant::now() < deadline, "no dead letter");
    };
    assert_eq!(kept, letter);
}

/// Needs no broker: nothing listens on 127.0.0.1:1.
#[test]
fn an_unreachable_broker_is_reported_unavailable_within_the_timeout() {
    trace();
    let config = KafkaConfig {
        message_timeout_ms: 1_500,
        ..KafkaConfig::new("127.0.0.1:1")
    };
    // Not a speed check: the calls must give up on their own (bounded by the timeout, with
    // room for a machine under load) rather than wait for the broker for ever.
    let bound = config.message_timeout() + Duration::from_secs(30);

    let started = Instant::now();
    let connected = KafkaLog::connect(&config);
    assert!(
        matches!(connected, Err(LogError::Unavailable(_))),
        "{connected:?}"
    );
    assert!(
        started.elapsed() < bound,
        "connect took {:?}",
        started.elapsed()
    );

    let log = KafkaLog::open_unchecked(&config).expect("a writer without checks");
    let started = Instant::now();
    let appended = log.append(&[visit("A1", 0), outlet("O1")]);
    let took = started.elapsed();
    match appended {
        Err(error @ LogError::Unavailable(_)) => assert!(error.is_transient()),
        other => panic!("append to an unreachable broker: {other:?}"),
    }
    assert!(
        took >= config.message_timeout() / 2 && took < bound,
        "append took {took:?}"
    );
    let dead = log.dead_letter(&[DeadLetter {
        origin: "http".into(),
        event_id: None,
        body: b"{}".to_vec(),
        reason: "r".into(),
    }]);
    assert!(matches!(dead, Err(LogError::Unavailable(_))), "{dead:?}");

    let started = Instant::now();
    let consumer = KafkaConsumer::connect(&config);
    assert!(
        matches!(consumer, Err(LogError::Unavailable(_))),
        "{consumer:?}"
    );
    assert!(
        started.elapsed() < bound,
        "consumer connect took {:?}",
        started.elapsed()
    );
}

#[test]
fn the_readiness_probe_wants_both_topics_with_a_leader_for_every_partition() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let config = config(&kafka, 2);
    // A writer that did not create its topics: not ready, and the reason names the topic.
    let unchecked = KafkaLog::open_unchecked(&config).expect("writer");
    let probe = unchecked.readiness(Duration::from_secs(10)).expect("probe");
    match probe.check() {
        Err(error @ LogError::Unavailable(_)) => {
            assert!(error.to_string().contains(&config.events_topic), "{error}");
        }
        other => panic!("ready without topics: {other:?}"),
    }

    let log = KafkaLog::connect(&config).expect("connect creates the topics");
    probe.check().expect("ready once the topics exist");
    log.readiness(Duration::from_secs(10))
        .expect("probe")
        .check()
        .expect("ready");

    let away = KafkaLog::open_unchecked(&KafkaConfig::new("127.0.0.1:1"))
        .expect("writer")
        .readiness(Duration::from_millis(500))
        .expect("probe")
        .check();
    assert!(matches!(away, Err(LogError::Unavailable(_))), "{away:?}");
}
