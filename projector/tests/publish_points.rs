//! Property: where the runner happens to publish, how often a store was down meanwhile (its
//! changes merged by row), and where the projector crashed and replayed from its last
//! checkpoint change nothing in what a ledger store ends with. Each case folds the fault
//! tests' month (retractions before and after their events, cancellations, transfers,
//! duplicates) as the runner does, with row versions from positions that skip offsets now
//! and then (transaction markers) and with records delivered again after a redelivery, and
//! compares the store's dump with the one of a single publish at the end: the embedded
//! store always, ClickHouse when the test services are configured.

use aqs_eventlog::{PartitionId, Positions};
use aqs_projector::ledger::{Applied, Ledger};
use aqs_projector::sink::clickhouse::ClickHouseSink;
use aqs_projector::sink::pending::PendingChanges;
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{LedgerSink, RowVersions};
use aqs_schemas::generator::{GeneratorConfig, Rng};
use aqs_schemas::{BusinessClock, Event, Payload};
use aqs_warehouse::{BlockingClient, ClickHouseConfig};

#[path = "support/generated.rs"]
mod support;
use support::generated;

const PARTITIONS: u32 = 4;

/// The month of `tests/faults` (same generator settings), every other retraction moved
/// before everything else, as the fault tests post them.
fn month() -> Vec<(Event, u64)> {
    let config = GeneratorConfig {
        late_share: 0.05,
        duplicate_share: 0.02,
        retraction_share: 0.02,
        cancellation_share: 0.05,
        ..GeneratorConfig::new(20_261_101, 100, "2026-11-01".parse().expect("date"), 30)
    };
    let events = generated(&config);
    let (mut first, mut rest) = (Vec::new(), Vec::new());
    let mut retractions = 0;
    for event in events {
        if matches!(event.0.payload, Payload::Retraction(_)) {
            retractions += 1;
            if retractions % 2 == 1 {
                first.push(event);
                continue;
            }
        }
        rest.push(event);
    }
    first.extend(rest);
    first
}

/// How one case runs the fold.
#[derive(Debug, Clone, Copy)]
struct Case {
    seed: u64,
    /// Events between two publishes, at most.
    publish_every: u64,
    /// Percent of publishes the store misses (down): merged into the next write.
    down_percent: u64,
    /// One chance in this many, after each event, of a crash (0: none).
    crash_one_in: u64,
}

impl Case {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        Self {
            seed,
            publish_every: 1 + rng.between(0, 1_500),
            down_percent: [0, 50, 90][rng.between(0, 2) as usize],
            crash_one_in: [0, 400, 3_000][rng.between(0, 2) as usize],
        }
    }
}

/// What a checkpoint holds: the state and the positions it reflects, and where in the
/// month reading resumes.
#[derive(Clone)]
struct Checkpoint {
    ledger: Ledger,
    positions: Positions,
    next: usize,
}

/// Folds `events` into `sink` the way the runner does under `case`. Offsets are assigned per
/// partition as a log would (with gaps); a crash goes back to the last checkpoint, which is
/// only taken once the store has every change it covers.
fn fold(events: &[(Event, u64)], sink: &mut dyn LedgerSink, case: Case) {
    let mut rng = Rng::new(case.seed ^ 0x5eed);
    // Each event's offset in its partition: fixed, as in a log, whatever the replays.
    let mut offsets = Positions::new();
    let placed: Vec<(PartitionId, u64)> = events
        .iter()
        .map(|(event, _)| {
            let partition = PartitionId::of(event, PARTITIONS);
            let next = offsets.entry(partition).or_insert(0);
            // A transaction marker now and then: offsets no record has.
            *next += rng.between(0, 9) / 9;
            let offset = *next;
            *next += 1;
            (partition, offset)
        })
        .collect();

    let start = Checkpoint {
        ledger: Ledger::new(BusinessClock::default()),
        positions: Positions::new(),
        next: 0,
    };
    let mut checkpoint = start.clone();
    let mut ledger = start.ledger.clone();
    let mut positions = Positions::new();
    let mut waiting = PendingChanges::default();
    let mut next = 0;
    let mut since_publish = 0;
    let mut crashes = 0;
    while next < events.len() {
        let (event, digest) = &events[next];
        let (partition, offset) = placed[next];
        positions.insert(partition, offset + 1);
        ledger.apply(event, *digest);
        // The same record delivered again (a rebalance, a retried fetch): a duplicate.
        if rng.between(0, 99) == 0 {
            assert_eq!(ledger.apply(event, *digest), Applied::Duplicate);
        }
        next += 1;
        since_publish += 1;
        let last = next == events.len();
        if since_publish >= case.publish_every || last {
            since_publish = 0;
            waiting.merge(&ledger.take_changes());
            if last || rng.between(0, 99) >= case.down_percent {
                sink.publish(
                    &waiting.to_changes(),
                    &RowVersions::new(&positions, PARTITIONS),
                )
                .expect("publish");
                waiting = PendingChanges::default();
                if rng.between(0, 2) == 0 {
                    checkpoint = Checkpoint {
                        ledger: ledger.clone(),
                        positions: positions.clone(),
                        next,
                    };
                }
            }
        }
        if !last && case.crash_one_in > 0 && crashes < 8 && rng.between(1, case.crash_one_in) == 1 {
            // Killed: what was folded or waiting since the checkpoint is gone; the log is
            // read again from the checkpoint's positions.
            crashes += 1;
            ledger = checkpoint.ledger.clone();
            positions = checkpoint.positions.clone();
            next = checkpoint.next;
            waiting = PendingChanges::default();
            since_publish = 0;
        }
    }
}

fn embedded() -> (tempfile::TempDir, SqliteSink) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = SqliteSink::open(&dir.path().join("ledgers.db")).expect("ledger store");
    (dir, sink)
}

/// The store's dump after one publish of the whole month.
fn published_once(events: &[(Event, u64)]) -> String {
    let (_dir, mut sink) = embedded();
    fold(
        events,
        &mut sink,
        Case {
            seed: 0,
            publish_every: u64::MAX,
            down_percent: 0,
            crash_one_in: 0,
        },
    );
    sink.dump().expect("dump")
}

fn first_difference(actual: &str, expected: &str) -> String {
    actual
        .lines()
        .zip(expected.lines())
        .find(|(a, e)| a != e)
        .map_or_else(
            || {
                format!(
                    "{} lines where publishing once gives {}",
                    actual.lines().count(),
                    expected.lines().count()
                )
            },
            |(a, e)| format!("{a:?} where publishing once gives {e:?}"),
        )
}

#[test]
fn the_embedded_store_ends_the_same_wherever_the_projector_published_or_crashed() {
    let events = month();
    let expected = published_once(&events);
    for seed in 1..=8 {
        let case = Case::new(seed);
        let (_dir, mut sink) = embedded();
        fold(&events, &mut sink, case);
        let dump = sink.dump().expect("dump");
        assert!(
            dump == expected,
            "{case:?}: {}",
            first_difference(&dump, &expected)
        );
    }
}

#[test]
fn clickhouse_ends_the_same_wherever_the_projector_published_or_crashed() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let events = month();
    let expected = published_once(&events);
    for seed in 11..=14 {
        let config = ClickHouseConfig::new(clickhouse.url())
            .with_credentials(clickhouse.user(), clickhouse.password())
            .with_database(clickhouse.fresh_database_name());
        BlockingClient::new(&config)
            .expect("client")
            .run(aqs_warehouse::migrate(&config))
            .expect("migrate");
        let mut sink = ClickHouseSink::connect(&config).expect("connect");
        let case = Case {
            // Fewer, larger writes: ClickHouse makes a part of each.
            publish_every: Case::new(seed).publish_every.max(300),
            ..Case::new(seed)
        };
        fold(&events, &mut sink, case);
        let dump = sink.dump().expect("dump");
        assert!(
            dump == expected,
            "{case:?}: {}",
            first_difference(&dump, &expected)
        );
    }
}
