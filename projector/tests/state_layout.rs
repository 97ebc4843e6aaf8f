//! The ledgers do not depend on how the fold keeps its state: a generated month with every
//! trap (late events, duplicates, conflicts, retractions before and after their targets,
//! with and without an agent, cancellations, transfers, unassignments, a team moving to
//! another branch) folds into a store whose canonical dump is byte for byte the one of the
//! implementation before the state's layout last changed (its digest is recorded below),
//! also when the state goes through a checkpoint on the way.

use aqs_eventlog::{PartitionId, Positions};
use aqs_projector::checkpoint::CheckpointStore;
use aqs_projector::ledger::{Ledger, digest};
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{LedgerSink, RowVersions};
use aqs_schemas::event::Retraction;
use aqs_schemas::generator::{GeneratorConfig, TeamMove};
use aqs_schemas::{BusinessClock, Event, Money, Payload};

#[path = "support/generated.rs"]
mod support;
use support::generated;

const PARTITIONS: u32 = 4;

/// Digest ([`digest`]) of `SqliteSink::dump()` for [`month`], as the state layout of
/// STATE_FORMAT 5 (events' digests and contributions in two maps per agent) folded it. The
/// dump has since gained one line, the heading of the `supervisor_facts` table (empty for
/// this month: the generator sends no supervisor events by default); every other line is
/// as that layout gave it.
const DUMP_DIGEST: u64 = 13_790_898_560_773_345_039;

/// The month: the generator's traps turned up, plus conflicting copies (same identity,
/// another body) and retractions that name no agent.
fn month() -> Vec<(Event, u64)> {
    let start = "2026-11-01".parse().expect("date");
    let config = GeneratorConfig {
        late_share: 0.08,
        duplicate_share: 0.04,
        retraction_share: 0.04,
        cancellation_share: 0.15,
        team_moves: vec![TeamMove {
            team: 1,
            to_branch: 2,
            effective_from: "2026-11-16".parse().expect("date"),
        }],
        ..GeneratorConfig::new(20_261_206, 60, start, 30)
    };
    let mut events = generated(&config);
    let mut extra = Vec::new();
    for (i, (event, _)) in events.iter().enumerate() {
        if let Payload::SaleClosed(sale) = &event.payload
            && i % 7 == 0
        {
            // A conflict: the same identity with another premium; the first body stays.
            let mut copy = event.clone();
            let mut changed = sale.clone();
            changed.premium = Money::from_units(sale.premium.units() + 100);
            copy.payload = Payload::SaleClosed(changed);
            extra.push(copy);
        }
        if i % 53 == 0 && !matches!(event.payload, Payload::Retraction(_)) {
            extra.push(Event {
                event_id: format!("r-any-{}", event.event_id),
                agent_id: None,
                payload: Payload::Retraction(Retraction {
                    retracted_event_id: event.event_id.clone(),
                    reason: "entered twice".to_owned(),
                }),
                ..event.clone()
            });
        }
    }
    events.extend(extra.into_iter().map(|event| {
        let bytes = serde_json::to_vec(&event).expect("serialise");
        (event, digest(&bytes))
    }));
    events
}

/// Folds `events` in order, publishing every `publish_every` events into a fresh store, and
/// returns the store's dump; with `checkpoint_at`, the state is saved and loaded again there.
fn folded(events: &[(Event, u64)], publish_every: usize, checkpoint_at: Option<usize>) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sink = SqliteSink::open(&dir.path().join("ledgers.db")).expect("ledger store");
    let mut checkpoints = CheckpointStore::open(&dir.path().join("projector.db")).expect("store");
    let mut ledger = Ledger::new(BusinessClock::default());
    let mut positions = Positions::new();
    for (n, (event, digest)) in events.iter().enumerate() {
        let partition = PartitionId::of(event, PARTITIONS);
        *positions.entry(partition).or_insert(0) += 1;
        ledger.apply(event, *digest);
        let last = n + 1 == events.len();
        if (n + 1) % publish_every == 0 || last {
            sink.publish(
                &ledger.take_changes(),
                &RowVersions::new(&positions, PARTITIONS),
            )
            .expect("publish");
        }
        if checkpoint_at == Some(n) {
            checkpoints
                .save(&ledger, &positions, n as u64 + 1)
                .expect("save");
            let loaded = checkpoints.load().expect("load").expect("a checkpoint");
            assert_eq!(loaded.positions, positions);
            ledger = loaded.ledger;
            ledger.set_clock(BusinessClock::default());
        }
    }
    sink.dump().expect("dump")
}

#[test]
fn the_month_folds_into_the_ledgers_of_the_previous_state_layout() {
    let events = month();
    let kinds: std::collections::BTreeSet<&str> = events
        .iter()
        .map(|(event, _)| match &event.payload {
            Payload::AgentLeft(_) => "left",
            Payload::AgentJoinedTeam(_) => "joined",
            Payload::OutletUnassigned(_) => "unassigned",
            Payload::PolicyCancelled(_) => "cancelled",
            Payload::Retraction(_) => "retraction",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds.len(), 6, "the month lacks a kind of event: {kinds:?}");
    let dump = folded(&events, events.len(), None);
    let found = digest(dump.as_bytes());
    assert_eq!(
        found,
        DUMP_DIGEST,
        "the ledgers of the month changed ({} dump lines)",
        dump.lines().count()
    );
}

#[test]
fn a_checkpoint_on_the_way_changes_nothing() {
    let events = month();
    let straight = folded(&events, 997, None);
    let through_checkpoint = folded(&events, 997, Some(events.len() / 2));
    assert!(
        straight == through_checkpoint,
        "the checkpoint changed the ledgers"
    );
}
