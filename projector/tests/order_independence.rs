//! Property: any permutation of an event set, with any duplicates, folds into ledgers that
//! serialise to the same bytes as the in-order fold — also when several sources use the
//! same event ids, retract ids of each other's, and tie on time and id; and when the
//! event records leave memory at checkpoints and are read back from the store.

use aqs_projector::checkpoint::CheckpointStore;
use aqs_projector::ledger::{Ledger, digest};
use aqs_schemas::event::Retraction;
use aqs_schemas::generator::{GeneratorConfig, Rng};
use aqs_schemas::{BusinessClock, Decoder, Event, Payload};
use proptest::prelude::*;

#[path = "support/generated.rs"]
mod support;
use support::generated;

/// A second source that reuses the ids of the generated sources.
const SHADOW: &str = "shadow";

/// A month of a small region with every kind of trouble turned up: late, repeated,
/// retracted and cancelled events, transfers and reassignments.
fn generated_events() -> Vec<(Event, u64)> {
    let config = GeneratorConfig {
        late_share: 0.1,
        duplicate_share: 0.05,
        retraction_share: 0.05,
        cancellation_share: 0.2,
        supervision: true,
        ..GeneratorConfig::new(5, 30, "2026-10-26".parse().expect("date"), 21)
    };
    let mut events = generated(&config);
    events.extend(shared_ids(&events));
    events.extend(edge_cases());
    events
}

/// Events of another source under the ids of the generated ones: copies of every tenth
/// event (same id, time and content: a tie only the source breaks), and retractions of
/// every fifteenth id, with and without an agent (they reach the copies, never the
/// originals).
fn shared_ids(generated: &[(Event, u64)]) -> Vec<(Event, u64)> {
    let mut shadow = Vec::new();
    for (i, (event, _)) in generated.iter().enumerate() {
        if i % 10 == 0 {
            let mut copy = event.clone();
            copy.source = SHADOW.to_owned();
            shadow.push(copy);
        }
        if i % 15 == 0 && !matches!(event.payload, Payload::Retraction(_)) {
            shadow.push(Event {
                event_id: format!("shadow-r-{}", event.event_id),
                occurred_at: event.occurred_at,
                source: SHADOW.to_owned(),
                agent_id: if i % 30 == 0 {
                    None
                } else {
                    event.agent_id.clone()
                },
                payload: Payload::Retraction(Retraction {
                    retracted_event_id: event.event_id.clone(),
                    reason: "entered in error".to_owned(),
                }),
            });
        }
    }
    shadow
        .into_iter()
        .map(|event| {
            let bytes = serde_json::to_vec(&event).expect("serialise");
            (event, digest(&bytes))
        })
        .collect()
}

/// Hand-made cases the generator rarely produces.
fn edge_cases() -> Vec<(Event, u64)> {
    let lines = [
        // A cancellation of a policy never sold, then one whose sale is retracted.
        r#"{"event_id":"edge-x1","type":"policy_cancelled","schema_version":1,"occurred_at":"2026-11-03T10:00:00+08:00","source":"t","agent_id":"A000001","payload":{"policy_id":"NOPE","refund":"10.00","reason":"other"}}"#,
        r#"{"event_id":"edge-s2","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-02T10:00:00+08:00","source":"t","agent_id":"A000002","payload":{"outlet_id":"O0000001","policy_id":"EDGE2","product_code":"X","premium":"99.99","payment_mode":"single"}}"#,
        r#"{"event_id":"edge-x2","type":"policy_cancelled","schema_version":1,"occurred_at":"2026-11-04T10:00:00+08:00","source":"t","agent_id":"A000002","payload":{"policy_id":"EDGE2","refund":"99.99","reason":"cooling_off"}}"#,
        r#"{"event_id":"edge-r2","type":"retraction","schema_version":1,"occurred_at":"2026-11-05T10:00:00+08:00","source":"t","agent_id":"A000002","payload":{"retracted_event_id":"edge-s2","reason":"wrong agent"}}"#,
        // A retraction of a retraction, and a retraction naming no agent.
        r#"{"event_id":"edge-r3","type":"retraction","schema_version":1,"occurred_at":"2026-11-06T10:00:00+08:00","source":"t","agent_id":"A000002","payload":{"retracted_event_id":"edge-r2","reason":"oops"}}"#,
        r#"{"event_id":"edge-v4","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T23:30:00Z","source":"t","agent_id":"A000003","payload":{"outlet_id":"O0000009","purpose":"other"}}"#,
        r#"{"event_id":"edge-r4","type":"retraction","schema_version":1,"occurred_at":"2026-11-07T10:00:00+08:00","source":"t","payload":{"retracted_event_id":"edge-v4","reason":"test"}}"#,
        // A transfer back-dated into the period, and a plan revised then retracted.
        r#"{"event_id":"edge-j5","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-11-10T10:00:00+08:00","source":"t","agent_id":"A000004","payload":{"team_id":"T0002","effective_date":"2026-11-02"}}"#,
        r#"{"event_id":"edge-p6","type":"activity_plan","schema_version":1,"occurred_at":"2026-11-09T10:00:00+08:00","source":"t","agent_id":"A000004","payload":{"period_start":"2026-11-02","period_end":"2026-11-08","visits":99}}"#,
        r#"{"event_id":"edge-r6","type":"retraction","schema_version":1,"occurred_at":"2026-11-09T11:00:00+08:00","source":"t","agent_id":"A000004","payload":{"retracted_event_id":"edge-p6","reason":"typo"}}"#,
        // Three sources with one id: a sale each, a retraction by one, a pre-retraction by
        // another of an id it never sends.
        r#"{"event_id":"edge-s7","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-02T10:00:00+08:00","source":"a","agent_id":"A000001","payload":{"outlet_id":"O0000001","policy_id":"EDGE7A","product_code":"X","premium":"10.00","payment_mode":"single"}}"#,
        r#"{"event_id":"edge-s7","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-02T10:00:00+08:00","source":"b","agent_id":"A000001","payload":{"outlet_id":"O0000002","policy_id":"EDGE7B","product_code":"X","premium":"20.00","payment_mode":"single"}}"#,
        r#"{"event_id":"edge-s7","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-02T10:00:00+08:00","source":"c","agent_id":"A000001","payload":{"outlet_id":"O0000001","policy_id":"EDGE7A","product_code":"X","premium":"40.00","payment_mode":"single"}}"#,
        r#"{"event_id":"edge-r7","type":"retraction","schema_version":1,"occurred_at":"2026-11-03T10:00:00+08:00","source":"b","payload":{"retracted_event_id":"edge-s7","reason":"wrong"}}"#,
        r#"{"event_id":"edge-x7","type":"policy_cancelled","schema_version":1,"occurred_at":"2026-11-04T10:00:00+08:00","source":"a","agent_id":"A000001","payload":{"policy_id":"EDGE7A","refund":"10.00","reason":"cooling_off"}}"#,
        r#"{"event_id":"edge-r8","type":"retraction","schema_version":1,"occurred_at":"2026-11-01T10:00:00+08:00","source":"c","agent_id":"A000002","payload":{"retracted_event_id":"edge-s2","reason":"not ours"}}"#,
        // The same team defined by two sources at the same instant under one id.
        r#"{"event_id":"edge-t9","type":"team_defined","schema_version":1,"occurred_at":"2026-11-01T08:00:00+08:00","source":"hr-a","payload":{"team_id":"T0001","team_name":"A","branch_id":"B0001","region_id":"R0001"}}"#,
        r#"{"event_id":"edge-t9","type":"team_defined","schema_version":1,"occurred_at":"2026-11-01T08:00:00+08:00","source":"hr-b","payload":{"team_id":"T0001","team_name":"B","branch_id":"B0001","region_id":"R0001"}}"#,
        // The calendar: a Saturday declared worked, then a holiday, the holiday retracted
        // (the working day is back); two sources declaring one date at one instant under one
        // id (the source decides); a holiday retracted with nothing before it.
        r#"{"event_id":"edge-c1","type":"calendar_day","schema_version":1,"occurred_at":"2026-10-20T08:00:00+08:00","source":"hr","payload":{"date":"2026-11-14","kind":"working_day","name":"调休"}}"#,
        r#"{"event_id":"edge-c2","type":"calendar_day","schema_version":1,"occurred_at":"2026-10-21T08:00:00+08:00","source":"hr","payload":{"date":"2026-11-14","kind":"holiday"}}"#,
        r#"{"event_id":"edge-c3","type":"retraction","schema_version":1,"occurred_at":"2026-10-22T08:00:00+08:00","source":"hr","payload":{"retracted_event_id":"edge-c2","reason":"wrong year"}}"#,
        r#"{"event_id":"edge-c4","type":"calendar_day","schema_version":1,"occurred_at":"2026-10-20T08:00:00+08:00","source":"hr-a","payload":{"date":"2026-11-16","kind":"holiday"}}"#,
        r#"{"event_id":"edge-c4","type":"calendar_day","schema_version":1,"occurred_at":"2026-10-20T08:00:00+08:00","source":"hr-b","payload":{"date":"2026-11-16","kind":"working_day"}}"#,
        r#"{"event_id":"edge-c5","type":"calendar_day","schema_version":1,"occurred_at":"2026-10-20T08:00:00+08:00","source":"hr","payload":{"date":"2026-11-18","kind":"holiday"}}"#,
        // T0002 moves to another branch from the 9th, recorded late; a later definition of
        // the same date (to B0098) wins until it is retracted; T0003's move from the 16th is
        // retracted, so T0003 stays where it was.
        r#"{"event_id":"edge-t10","type":"team_defined","schema_version":1,"occurred_at":"2026-11-12T08:00:00+08:00","source":"hr","payload":{"team_id":"T0002","team_name":"Moved","branch_id":"B0099","region_id":"R0099","effective_from":"2026-11-09"}}"#,
        r#"{"event_id":"edge-t11","type":"team_defined","schema_version":1,"occurred_at":"2026-11-12T09:00:00+08:00","source":"hr","payload":{"team_id":"T0002","team_name":"Moved","branch_id":"B0098","region_id":"R0099","effective_from":"2026-11-09"}}"#,
        r#"{"event_id":"edge-t12","type":"retraction","schema_version":1,"occurred_at":"2026-11-12T10:00:00+08:00","source":"hr","payload":{"retracted_event_id":"edge-t11","reason":"wrong branch"}}"#,
        r#"{"event_id":"edge-t13","type":"team_defined","schema_version":1,"occurred_at":"2026-11-13T08:00:00+08:00","source":"hr","payload":{"team_id":"T0003","team_name":"Gone","branch_id":"B0097","region_id":"R0099","effective_from":"2026-11-16"}}"#,
        r#"{"event_id":"edge-t14","type":"retraction","schema_version":1,"occurred_at":"2026-11-13T09:00:00+08:00","source":"hr","payload":{"retracted_event_id":"edge-t13","reason":"move cancelled"}}"#,
        r#"{"event_id":"edge-c6","type":"retraction","schema_version":1,"occurred_at":"2026-10-23T08:00:00+08:00","source":"hr","payload":{"retracted_event_id":"edge-c5","reason":"no holiday"}}"#,
        // Supervisors' facts: a coaching session retracted by a retraction naming no agent,
        // a meeting retracted, two evaluations of one month (rows both, the job decides),
        // and a review of a measure that arrives in any order with it.
        r#"{"event_id":"edge-s10","type":"coaching_session","schema_version":1,"occurred_at":"2026-11-03T17:30:00+08:00","source":"app","agent_id":"A000001","payload":{"supervisor_id":"S00001","duration_minutes":30,"topic":"skill"}}"#,
        r#"{"event_id":"edge-s11","type":"retraction","schema_version":1,"occurred_at":"2026-11-04T08:00:00+08:00","source":"app","payload":{"retracted_event_id":"edge-s10","reason":"not held"}}"#,
        r#"{"event_id":"edge-s12","type":"team_meeting","schema_version":1,"occurred_at":"2026-11-06T16:00:00+08:00","source":"app","payload":{"team_id":"T0001","kind":"weekly","duration_minutes":120,"attendees":8}}"#,
        r#"{"event_id":"edge-s13","type":"retraction","schema_version":1,"occurred_at":"2026-11-06T18:00:00+08:00","source":"app","payload":{"retracted_event_id":"edge-s12","reason":"not held"}}"#,
        r#"{"event_id":"edge-s14","type":"skill_will_evaluation","schema_version":1,"occurred_at":"2026-11-10T18:00:00+08:00","source":"app","agent_id":"A000002","payload":{"supervisor_id":"S00001","month":"2026-11","skill":"low","will":"high"}}"#,
        r#"{"event_id":"edge-s15","type":"skill_will_evaluation","schema_version":1,"occurred_at":"2026-11-11T18:00:00+08:00","source":"app","agent_id":"A000002","payload":{"supervisor_id":"S00001","month":"2026-11","skill":"high","will":"high"}}"#,
        r#"{"event_id":"edge-s16","type":"improvement_measure","schema_version":1,"occurred_at":"2026-11-02T18:00:00+08:00","source":"app","payload":{"scope":"team","scope_id":"T0001","month":"2026-11","measure":"陪访","owner_id":"S00001","due_date":"2026-11-30"}}"#,
        r#"{"event_id":"edge-s17","type":"improvement_measure_status","schema_version":1,"occurred_at":"2026-11-12T18:00:00+08:00","source":"app","payload":{"measure_event_id":"edge-s16","status":"done"}}"#,
    ];
    lines
        .iter()
        .map(|line| {
            (
                Decoder::standard()
                    .decode(line.as_bytes())
                    .expect("edge case is valid"),
                digest(line.as_bytes()),
            )
        })
        .collect()
}

fn fold(events: &[(Event, u64)]) -> Vec<u8> {
    let mut ledger = Ledger::new(BusinessClock::default());
    for (event, digest) in events {
        ledger.apply(event, *digest);
    }
    serde_json::to_vec(&ledger.tables()).expect("serialise")
}

/// `events` with `duplicates` copies of randomly picked ones added, in an order drawn from
/// `seed`.
fn shuffled(events: &[(Event, u64)], seed: u64, duplicates: usize) -> Vec<(Event, u64)> {
    let mut rng = Rng::new(seed);
    let mut shuffled = events.to_vec();
    for _ in 0..duplicates {
        let pick = rng.between(0, events.len() as u64 - 1) as usize;
        shuffled.push(events[pick].clone());
    }
    for i in (1..shuffled.len()).rev() {
        let j = rng.between(0, i as u64) as usize;
        shuffled.swap(i, j);
    }
    shuffled
}

/// Folds in batches as the runner does (the records a batch may touch read back from the
/// store first), saving every `save_every` events between batches and forgetting the
/// records in memory.
fn fold_through_store(events: &[(Event, u64)], save_every: usize) -> Vec<u8> {
    const BATCH: usize = 32;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = CheckpointStore::open(&dir.path().join("projector.db")).expect("store");
    let mut ledger = Ledger::new(BusinessClock::default());
    let mut since_save = 0;
    for (n, batch) in events.chunks(BATCH).enumerate() {
        let wanted = ledger.records_to_fetch(batch.iter().map(|(event, _)| event));
        let found = store.fetch_records(&wanted).expect("fetch");
        ledger.restore_records(found).expect("restore");
        for (event, digest) in batch {
            ledger.apply(event, *digest);
        }
        since_save += batch.len();
        if since_save >= save_every {
            since_save = 0;
            store
                .save(&ledger, &Default::default(), n as u64)
                .expect("save");
            ledger.forget_saved_records();
        }
    }
    serde_json::to_vec(&ledger.tables()).expect("serialise")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn any_order_and_any_duplicates_give_byte_identical_ledgers(seed in any::<u64>(), duplicate_percent in 0_u64..30) {
        let events = generated_events();
        let expected = fold(&events);
        let shuffled = shuffled(&events, seed, events.len() * duplicate_percent as usize / 100);
        prop_assert!(fold(&shuffled) == expected, "ledgers differ for seed {seed}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn records_read_back_from_the_store_keep_any_order_identical(seed in any::<u64>(), save_every in 100_usize..800) {
        let events = generated_events();
        let expected = fold(&events);
        let shuffled = shuffled(&events, seed, events.len() / 10);
        prop_assert!(
            fold_through_store(&shuffled, save_every) == expected,
            "ledgers differ for seed {seed}, a save every {save_every} events"
        );
    }
}

#[test]
fn the_generated_month_exercises_the_hard_rules() {
    let events = generated_events();
    let mut ledger = Ledger::new(BusinessClock::default());
    let mut outcomes = std::collections::BTreeMap::new();
    for (event, digest) in &events {
        *outcomes
            .entry(format!("{:?}", ledger.apply(event, *digest)))
            .or_insert(0) += 1;
    }
    for expected in ["Applied", "Duplicate", "Retracted"] {
        assert!(
            outcomes.contains_key(expected),
            "{expected} never happened: {outcomes:?}"
        );
    }
    let tables = ledger.tables();
    assert!(
        tables
            .agent_outlet_day
            .iter()
            .any(|r| r.counters.cancellations > 0)
    );
    // The supervisors' facts are in, the retracted ones gone.
    let facts: Vec<&str> = tables
        .supervisor_facts
        .iter()
        .map(|f| f.event_id.as_str())
        .collect();
    assert!(facts.len() > 100, "{} supervisor facts", facts.len());
    for (id, kept) in [
        ("edge-s10", false),
        ("edge-s12", false),
        ("edge-s14", true),
        ("edge-s15", true),
        ("edge-s17", true),
    ] {
        assert_eq!(facts.contains(&id), kept, "{id}");
    }
    let calendar: Vec<(String, &str, &str)> = tables
        .calendar_days
        .iter()
        .map(|d| {
            (
                d.business_date.to_string(),
                d.kind.as_str(),
                d.event_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        calendar,
        [
            ("2026-11-14".to_owned(), "working_day", "edge-c1"),
            ("2026-11-16".to_owned(), "working_day", "edge-c4"),
        ],
        "the latest declaration of each date, none for a date whose only one is retracted"
    );

    // The shadow source's events count beside the originals, never instead of them.
    let mut by_source = std::collections::BTreeMap::new();
    let mut check = Ledger::new(BusinessClock::default());
    for (event, digest) in &events {
        let outcome = format!("{:?}", check.apply(event, *digest));
        *by_source
            .entry((event.source == SHADOW, outcome))
            .or_insert(0) += 1;
    }
    assert!(
        by_source
            .get(&(true, "Applied".to_owned()))
            .copied()
            .unwrap_or(0)
            > 20,
        "{by_source:?}"
    );
    assert!(
        !by_source.contains_key(&(true, "Conflict".to_owned())),
        "{by_source:?}"
    );
    // Its retractions alone, of ids the other sources use, change nothing of theirs.
    let theirs: Vec<(Event, u64)> = events
        .iter()
        .filter(|(event, _)| event.source != SHADOW)
        .cloned()
        .collect();
    let mut with_foreign_retractions = theirs.clone();
    with_foreign_retractions.extend(
        events
            .iter()
            .filter(|(event, _)| {
                event.source == SHADOW && matches!(event.payload, Payload::Retraction(_))
            })
            .cloned(),
    );
    assert!(with_foreign_retractions.len() > theirs.len() + 20);
    assert!(fold(&with_foreign_retractions) == fold(&theirs));
    assert!(!tables.pending_cancellations.is_empty());
    assert!(tables.team_day.len() > 10);

    // T0002's days count for its first branch before the 9th and for B0099 from it (the
    // definition to B0098 is retracted); T0003's retracted move leaves it where it was.
    let moved = "2026-11-09".parse().expect("date");
    let t2_days: Vec<_> = tables
        .agent_day
        .iter()
        .filter(|d| d.team_id == "T0002")
        .collect();
    assert!(t2_days.iter().any(|d| d.business_date < moved));
    assert!(t2_days.iter().any(|d| d.business_date >= moved));
    for day in &t2_days {
        assert_eq!(
            day.branch_id == "B0099",
            day.business_date >= moved,
            "{day:?}"
        );
    }
    assert!(
        tables
            .agent_day
            .iter()
            .all(|d| d.branch_id != "B0098" && d.branch_id != "B0097"),
        "no day counts for a retracted definition"
    );
    assert_eq!(
        tables
            .teams
            .iter()
            .filter(|t| t.team_id == "T0002" || t.team_id == "T0003")
            .map(|t| (t.team_id.as_str(), t.effective_from.map(|d| d.to_string())))
            .collect::<Vec<_>>(),
        [
            ("T0002", None),
            ("T0002", Some("2026-11-09".to_owned())),
            ("T0003", None)
        ]
    );
}
