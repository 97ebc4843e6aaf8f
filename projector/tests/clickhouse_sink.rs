//! The ClickHouse ledger store against the real ClickHouse, a fresh database per test: its
//! `FINAL` content equals the embedded store's for the same events, however often and in
//! whatever order the batches are published.

use std::time::Instant;

use aqs_eventlog::{PartitionId, Positions};
use aqs_projector::ledger::{Ledger, LedgerChanges, digest};
use aqs_projector::sink::clickhouse::ClickHouseSink;
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{LedgerSink, RowVersions, SinkError};
use aqs_schemas::generator::{GeneratorConfig, generate};
use aqs_schemas::{BusinessClock, Decoder, Event};
use aqs_testkit::ClickHouseEnv;
use aqs_warehouse::{BlockingClient, ClickHouseConfig};

const PARTITIONS: u32 = 3;

/// A migrated database of its own.
fn migrated(clickhouse: &ClickHouseEnv) -> ClickHouseConfig {
    let config = ClickHouseConfig::new(clickhouse.url())
        .with_credentials(clickhouse.user(), clickhouse.password())
        .with_database(clickhouse.fresh_database_name());
    BlockingClient::new(&config)
        .expect("client")
        .run(aqs_warehouse::migrate(&config))
        .expect("migrate");
    config
}

/// Three weeks of a small region with every kind of trouble turned up, and hand-made cases
/// the generator rarely makes: a cancellation pending for good, one whose sale is retracted
/// (pending again), a back-dated transfer, a revised then retracted plan, a revised target.
fn events() -> Vec<(Event, u64)> {
    let config = GeneratorConfig {
        late_share: 0.1,
        duplicate_share: 0.05,
        retraction_share: 0.05,
        cancellation_share: 0.2,
        ..GeneratorConfig::new(7, 12, "2026-11-02".parse().expect("date"), 21)
    };
    let mut bytes = Vec::new();
    generate(&config, &mut bytes).expect("generate");
    let hand = [
        r#"{"event_id":"ch-x1","type":"policy_cancelled","schema_version":1,"occurred_at":"2026-11-05T10:00:00+08:00","source":"t","agent_id":"A000001","payload":{"policy_id":"NEVER-SOLD","refund":"10.00","reason":"other"}}"#,
        r#"{"event_id":"ch-s2","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-03T10:00:00+08:00","source":"t","agent_id":"A000002","payload":{"outlet_id":"O0000001","policy_id":"CH2","product_code":"X","premium":"1234.56","payment_mode":"single"}}"#,
        r#"{"event_id":"ch-x2","type":"policy_cancelled","schema_version":1,"occurred_at":"2026-11-06T10:00:00+08:00","source":"t","agent_id":"A000002","payload":{"policy_id":"CH2","refund":"1234.56","reason":"cooling_off"}}"#,
        r#"{"event_id":"ch-r2","type":"retraction","schema_version":1,"occurred_at":"2026-11-09T10:00:00+08:00","source":"t","agent_id":"A000002","payload":{"retracted_event_id":"ch-s2","reason":"wrong agent"}}"#,
        r#"{"event_id":"ch-j3","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-11-12T10:00:00+08:00","source":"t","agent_id":"A000003","payload":{"team_id":"T0002","effective_date":"2026-11-04"}}"#,
        r#"{"event_id":"ch-p4","type":"activity_plan","schema_version":1,"occurred_at":"2026-11-08T10:00:00+08:00","source":"t","agent_id":"A000004","payload":{"period_start":"2026-11-09","period_end":"2026-11-15","visits":20,"sales":2}}"#,
        r#"{"event_id":"ch-r4","type":"retraction","schema_version":1,"occurred_at":"2026-11-08T11:00:00+08:00","source":"t","agent_id":"A000004","payload":{"retracted_event_id":"ch-p4","reason":"typo"}}"#,
        r#"{"event_id":"ch-g5","type":"target","schema_version":1,"occurred_at":"2026-11-20T09:00:00+08:00","source":"t","payload":{"month":"2026-11","scope":"team","scope_id":"T0001","premium":"88888.88","outlet_activity_rate":"0.45","visits":300}}"#,
        // The supervisor's facts: one of each type, with nulls and empty columns, and a
        // retracted coaching session and meeting (tombstones in both engines).
        r#"{"event_id":"ch-c7","type":"coaching_session","schema_version":1,"occurred_at":"2026-11-03T17:30:00+08:00","source":"t","agent_id":"A000007","payload":{"supervisor_id":"S0001","duration_minutes":30,"topic":"skill","note":"促成话术"}}"#,
        r#"{"event_id":"ch-c8","type":"coaching_session","schema_version":1,"occurred_at":"2026-11-04T17:30:00+08:00","source":"t","agent_id":"A000008","payload":{"supervisor_id":"S0001","duration_minutes":45,"topic":"will"}}"#,
        r#"{"event_id":"ch-r8","type":"retraction","schema_version":1,"occurred_at":"2026-11-05T08:00:00+08:00","source":"t","agent_id":"A000008","payload":{"retracted_event_id":"ch-c8","reason":"wrong agent"}}"#,
        r#"{"event_id":"ch-a7","type":"accompanied_visit","schema_version":1,"occurred_at":"2026-11-05T09:30:00+08:00","source":"t","agent_id":"A000007","payload":{"supervisor_id":"S0001","outlet_id":"O0000001"}}"#,
        r#"{"event_id":"ch-m1","type":"team_meeting","schema_version":1,"occurred_at":"2026-11-06T16:00:00+08:00","source":"t","payload":{"team_id":"T0001","kind":"weekly","duration_minutes":120,"attendees":6}}"#,
        r#"{"event_id":"ch-m2","type":"team_meeting","schema_version":1,"occurred_at":"2026-11-07T08:30:00+08:00","source":"t","payload":{"team_id":"T0001","kind":"morning","duration_minutes":20,"attendees":5}}"#,
        r#"{"event_id":"ch-rm","type":"retraction","schema_version":1,"occurred_at":"2026-11-07T09:00:00+08:00","source":"t","payload":{"retracted_event_id":"ch-m2","reason":"not held"}}"#,
        r#"{"event_id":"ch-e7","type":"skill_will_evaluation","schema_version":1,"occurred_at":"2026-11-20T18:00:00+08:00","source":"t","agent_id":"A000007","payload":{"supervisor_id":"S0001","month":"2026-11","skill":"low","will":"high"}}"#,
        r#"{"event_id":"ch-i1","type":"improvement_measure","schema_version":1,"occurred_at":"2026-11-02T18:00:00+08:00","source":"t","payload":{"scope":"team","scope_id":"T0001","month":"2026-11","measure":"每周两次陪同新人","owner_id":"S0001","due_date":"2026-11-30"}}"#,
        r#"{"event_id":"ch-i2","type":"improvement_measure_status","schema_version":1,"occurred_at":"2026-11-21T18:00:00+08:00","source":"t","payload":{"measure_event_id":"ch-i1","status":"partly"}}"#,
    ];
    // Delivered first, its sale last: pending for most batches, then resolved (it leaves
    // the agent's pending list: a tombstone).
    let early = [
        r#"{"event_id":"ch-x6","type":"policy_cancelled","schema_version":1,"occurred_at":"2026-11-10T10:00:00+08:00","source":"t","agent_id":"A000006","payload":{"policy_id":"CH6","refund":"500.00","reason":"cooling_off"}}"#,
    ];
    let late = [
        r#"{"event_id":"ch-s6","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-04T10:00:00+08:00","source":"t","agent_id":"A000006","payload":{"outlet_id":"O0000002","policy_id":"CH6","product_code":"X","premium":"500.00","payment_mode":"single"}}"#,
    ];
    early
        .iter()
        .map(|line| line.as_bytes())
        .chain(bytes.split(|b| *b == b'\n').filter(|line| !line.is_empty()))
        .chain(hand.iter().chain(&late).map(|line| line.as_bytes()))
        .map(|line| {
            let event = Decoder::standard().decode(line).expect("valid event");
            (event, digest(line))
        })
        .collect()
}

/// The runner's work without a log: events folded in batches, each batch's changes with the
/// positions after it (one event, one offset, in the event's partition).
fn fold_in_batches(events: &[(Event, u64)], size: usize) -> Vec<(LedgerChanges, Positions)> {
    let mut ledger = Ledger::new(BusinessClock::default());
    let mut positions = Positions::new();
    let mut out = Vec::new();
    for chunk in events.chunks(size) {
        for (event, digest) in chunk {
            *positions
                .entry(PartitionId::of(event, PARTITIONS))
                .or_insert(0) += 1;
            ledger.apply(event, *digest);
        }
        out.push((ledger.take_changes(), positions.clone()));
    }
    out
}

fn publish(sink: &mut impl LedgerSink, batch: &(LedgerChanges, Positions)) {
    sink.publish(&batch.0, &RowVersions::new(&batch.1, PARTITIONS))
        .expect("publish");
}

/// The embedded store's dump after publishing every batch once, in order.
fn reference_dump(batches: &[(LedgerChanges, Positions)]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sink = SqliteSink::open(&dir.path().join("ledgers.db")).expect("ledger store");
    for batch in batches {
        publish(&mut sink, batch);
    }
    sink.dump().expect("dump")
}

fn first_difference(left: &str, right: &str) -> String {
    left.lines()
        .zip(right.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map_or_else(
            || {
                format!(
                    "same first lines; {} vs {} lines",
                    left.lines().count(),
                    right.lines().count()
                )
            },
            |(line, (a, b))| format!("line {}: {a}\n  vs {b}", line + 1),
        )
}

fn assert_same_dump(clickhouse: &str, embedded: &str, when: &str) {
    assert!(
        clickhouse == embedded,
        "{when}: the ClickHouse ledgers differ from the embedded store's: {}",
        first_difference(clickhouse, embedded)
    );
}

#[test]
fn republished_and_replayed_batches_leave_the_embedded_stores_ledgers() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let started = Instant::now();
    let config = migrated(&clickhouse);
    let events = events();
    let batches = fold_in_batches(&events, 400);
    assert!(batches.len() >= 4, "{} batches", batches.len());
    let expected = reference_dump(&batches);
    for table in [
        "ledger_agent_outlet_day",
        "ledger_team_day",
        "plans",
        "targets",
        "roster",
        "assignments",
        "teams",
        "outlets",
        "pending_cancellations",
    ] {
        let section = expected
            .split(&format!("## {table}\n"))
            .nth(1)
            .expect("section");
        assert!(
            !section.is_empty() && !section.starts_with("## "),
            "the events leave rows in {table}: the comparison covers it"
        );
    }

    let mut sink = ClickHouseSink::connect(&config).expect("connect");
    for batch in &batches {
        publish(&mut sink, batch);
    }
    assert_same_dump(&sink.dump().expect("dump"), &expected, "published once");

    // Every batch published twice over: a retry after a crash before the checkpoint.
    for batch in &batches {
        publish(&mut sink, batch);
        publish(&mut sink, batch);
    }
    assert_same_dump(&sink.dump().expect("dump"), &expected, "published again");

    // Older batches replayed after newer ones, oldest last: a takeover replaying a partition.
    for batch in batches.iter().rev() {
        publish(&mut sink, batch);
    }
    assert_same_dump(&sink.dump().expect("dump"), &expected, "replayed backwards");

    // The same events in another batching (other row versions, other tombstones) converge.
    let mut other = ClickHouseSink::connect(&migrated(&clickhouse)).expect("connect");
    for batch in fold_in_batches(&events, 97) {
        publish(&mut other, &batch);
    }
    assert_same_dump(&other.dump().expect("dump"), &expected, "batches of 97");

    // Rebuild: emptied, then everything again from offset 0.
    sink.clear().expect("clear");
    let empty = sink.dump().expect("dump");
    assert!(
        empty.lines().all(|line| line.starts_with("## ")),
        "cleared: {empty}"
    );
    for batch in &batches {
        publish(&mut sink, batch);
    }
    assert_same_dump(&sink.dump().expect("dump"), &expected, "rebuilt");
    eprintln!(
        "clickhouse sink: {} events in {} batches, checks done in {:.1} s",
        events.len(),
        batches.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_store_without_the_tables_or_a_failed_insert_is_an_error() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let unmigrated = ClickHouseConfig::new(clickhouse.url())
        .with_credentials(clickhouse.user(), clickhouse.password())
        .with_database(clickhouse.fresh_database_name());
    let error = ClickHouseSink::connect(&unmigrated).expect_err("no tables");
    let text = format!(
        "{}: {}",
        error,
        std::error::Error::source(&error).map_or(String::new(), |s| s.to_string())
    );
    assert!(text.contains("aqs migrate"), "{text}");

    let config = migrated(&clickhouse);
    let mut sink = ClickHouseSink::connect(&config).expect("connect");
    let client = BlockingClient::new(&config).expect("client");
    client
        .run(
            client
                .client()
                .query("DROP TABLE ledger_agent_day")
                .execute(),
        )
        .expect("drop");
    let events = events();
    let batch = fold_in_batches(&events, events.len()).remove(0);
    let error = sink
        .publish(&batch.0, &RowVersions::new(&batch.1, PARTITIONS))
        .expect_err("the insert fails");
    assert!(
        matches!(
            &error,
            SinkError::ClickHouse {
                table: "ledger_agent_day",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn rows_clickhouse_cannot_hold_are_set_aside_and_the_rest_is_written() {
    use aqs_projector::ledger::{AgentDay, AgentOutletDay, Counters};
    use aqs_tables::ledgers::LedgerDeadLetterRow;

    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let config = migrated(&clickhouse);
    let events = events();
    let batch = fold_in_batches(&events, events.len()).remove(0);
    let expected = reference_dump(std::slice::from_ref(&batch));

    // Cells dated where ClickHouse's Date cannot go, amid the good ones (as a log written
    // before dates were checked at the door could give them).
    let visit = Counters {
        visits: 1,
        ..Counters::default()
    };
    let mut changes = batch.0.clone();
    let middle = changes.agent_outlet_day.len() / 2;
    changes.agent_outlet_day.insert(
        middle,
        AgentOutletDay {
            agent_id: "A000001".into(),
            outlet_id: "O0000001".into(),
            business_date: "1969-12-31".parse().expect("date"),
            counters: visit,
        },
    );
    changes.agent_day.push(AgentDay {
        agent_id: "A000001".into(),
        business_date: "2150-01-01".parse().expect("date"),
        team_id: String::new(),
        branch_id: String::new(),
        region_id: String::new(),
        counters: visit,
    });

    let mut sink = ClickHouseSink::connect(&config).expect("connect");
    let written = sink
        .publish(&changes, &RowVersions::new(&batch.1, PARTITIONS))
        .expect("the other rows are written");
    assert_eq!(written.dead_lettered, 2, "{written:?}");
    assert_same_dump(&sink.dump().expect("dump"), &expected, "bad rows set aside");

    let client = BlockingClient::new(&config).expect("client");
    let dead_letters = |client: &BlockingClient| -> Vec<(String, String)> {
        client
            .run(
                client
                    .client()
                    .query(&format!(
                        "SELECT table_name, row FROM {} FINAL ORDER BY table_name",
                        LedgerDeadLetterRow::TABLE
                    ))
                    .fetch_all::<(String, String)>(),
            )
            .expect("dead letters")
    };
    let dead = dead_letters(&client);
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(dead[0].0, "ledger_agent_day");
    assert!(dead[0].1.contains("2150-01-01"), "{dead:?}");
    assert_eq!(dead[1].0, "ledger_agent_outlet_day");
    assert!(dead[1].1.contains("1969-12-31"), "{dead:?}");

    // Published again (a replay after a restart): nothing doubles.
    sink.publish(&changes, &RowVersions::new(&batch.1, PARTITIONS))
        .expect("publish again");
    assert_same_dump(&sink.dump().expect("dump"), &expected, "published again");
    assert_eq!(dead_letters(&client).len(), 2);
}

#[test]
fn an_unreachable_server_is_a_transient_error() {
    let config = ClickHouseConfig::new("http://127.0.0.1:9").with_database("aqs_unreachable");
    let mut sink = ClickHouseSink::connect_or_wait(&config).expect("starts anyway");
    let events = events();
    let batch = fold_in_batches(&events, events.len()).remove(0);
    let error = sink
        .publish(&batch.0, &RowVersions::new(&batch.1, PARTITIONS))
        .expect_err("nobody listens");
    assert!(error.is_transient(), "{}", error.chain());
}

#[test]
fn a_team_days_sum_of_premiums_never_wraps() {
    use aqs_projector::ledger::{AgentDay, Counters};
    use aqs_schemas::Money;
    use aqs_tables::ledgers::{LedgerRow, TeamDayRow};

    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let config = migrated(&clickhouse);
    // Two agents of one team whose day each holds nine quintillion fen: the team's day holds
    // eighteen, beyond Int64, where ClickHouse's sum of Int64 would wrap to a negative sum.
    let day = |agent: &str| AgentDay {
        agent_id: agent.into(),
        business_date: "2026-11-02".parse().expect("date"),
        team_id: "T1".into(),
        branch_id: "B1".into(),
        region_id: "R1".into(),
        counters: Counters {
            sales: 1,
            premium: Money::from_units(9_000_000_000_000_000_000),
            refunds: Money::from_units(8_000_000_000_000_000_000),
            ..Counters::default()
        },
    };
    let changes = LedgerChanges {
        agent_day: vec![day("A1"), day("A2")],
        ..LedgerChanges::default()
    };
    let mut sink = ClickHouseSink::connect(&config).expect("connect");
    sink.publish(&changes, &RowVersions::new(&Positions::new(), PARTITIONS))
        .expect("publish");
    let client = BlockingClient::new(&config).expect("client");
    let rows: Vec<TeamDayRow> = client
        .run(
            client
                .client()
                .query(&format!(
                    "SELECT {} FROM {}",
                    TeamDayRow::COLUMNS,
                    TeamDayRow::TABLE
                ))
                .fetch_all(),
        )
        .expect("team days");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].premium_fen, 18_000_000_000_000_000_000_i128);
    assert_eq!(rows[0].refunds_fen, 16_000_000_000_000_000_000_i128);
    let net: String = client
        .run(
            client
                .client()
                .query("SELECT toString(premium) FROM ledger_team_day_cny")
                .fetch_one(),
        )
        .expect("team day in CNY");
    assert_eq!(net, "20000000000000000.00");
}
