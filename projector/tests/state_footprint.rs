//! The ledger's footprint (`Ledger::footprint`) says how much heap each structure of the
//! state holds: checked here against an allocator that counts what a fold leaves behind,
//! and its entry counts against the events folded and the tables they give.

use std::alloc::System;
use std::collections::BTreeSet;

use aqs_projector::ledger::Ledger;
use aqs_schemas::generator::GeneratorConfig;
use aqs_schemas::{BusinessClock, Payload};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[path = "support/generated.rs"]
mod support;
use support::generated;

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The one test of this file: the allocator counts every thread, so nothing may run beside
/// it.
#[test]
fn the_footprint_matches_the_heap_a_fold_keeps_and_counts_its_entries() {
    let start = "2026-11-01".parse().expect("date");
    let config = GeneratorConfig {
        late_share: 0.05,
        duplicate_share: 0.03,
        retraction_share: 0.03,
        cancellation_share: 0.1,
        ..GeneratorConfig::new(20_261_206, 120, start, 30)
    };
    let events = generated(&config);
    let clock = BusinessClock::default();

    let mut ledger = Ledger::new(clock);
    for (event, digest) in &events {
        ledger.apply(event, *digest);
    }
    // Publishing empties the changed keys, as after every publish of the runner.
    drop(ledger.take_changes());
    let footprint = ledger.footprint();
    let total = footprint.total();
    let tables = ledger.tables();
    let agent_count = ledger.agent_count();

    // What the ledger holds is what dropping it gives back.
    let dropping = Region::new(ALLOCATOR);
    drop(ledger);
    let freed = dropping.change();
    let (held_bytes, held_blocks) = (freed.bytes_deallocated, freed.deallocations);
    println!("{footprint:#?}\nthe ledger held {held_bytes} bytes in {held_blocks} blocks");
    let within = |estimate: u64, measured: usize, share: f64| {
        (estimate as f64 - measured as f64).abs() <= measured as f64 * share
    };
    assert!(
        within(total.bytes, held_bytes, 0.10),
        "estimated {} bytes, the ledger held {held_bytes}",
        total.bytes
    );
    assert!(
        within(total.allocations, held_blocks, 0.10),
        "estimated {} blocks, the ledger held {held_blocks}",
        total.allocations
    );
    assert_eq!(footprint.pending_changes.entries, 0);

    // One record per agent event identity; retractions by identity retracted.
    let agent_identities: BTreeSet<(&str, &str)> = events
        .iter()
        .filter(|(event, _)| event.agent_id.is_some())
        .map(|(event, _)| (event.source.as_str(), event.event_id.as_str()))
        .collect();
    assert_eq!(
        footprint.event_records.entries,
        agent_identities.len() as u64
    );
    let retracted: BTreeSet<(&str, &str)> = events
        .iter()
        .filter_map(|(event, _)| match &event.payload {
            Payload::Retraction(retraction) => Some((
                event.source.as_str(),
                retraction.retracted_event_id.as_str(),
            )),
            _ => None,
        })
        .collect();
    assert!(!retracted.is_empty());
    assert_eq!(footprint.retractions.entries, retracted.len() as u64);
    // A cell is kept while it counts something: one per row of the table.
    assert_eq!(
        footprint.cells.entries,
        tables.agent_outlet_day.len() as u64
    );
    assert_eq!(footprint.agents.entries, agent_count as u64);
    // Even after a month, the records of the events are the largest part.
    let largest = footprint
        .parts()
        .into_iter()
        .max_by_key(|(_, part)| part.heap.bytes)
        .map(|(name, _)| name);
    assert_eq!(largest, Some("event_records"));

    // Every month of cells frozen: the estimate still matches, and counts the same cells.
    let mut frozen = Ledger::new(clock);
    for (event, digest) in &events {
        frozen.apply(event, *digest);
    }
    drop(frozen.take_changes());
    frozen.freeze_untouched_months();
    assert!(frozen.freeze_untouched_months() > 0, "months froze");
    let frozen_footprint = frozen.footprint();
    let dropping = Region::new(ALLOCATOR);
    drop(frozen);
    let freed = dropping.change();
    println!(
        "frozen: {frozen_footprint:#?}\nthe ledger held {} bytes in {} blocks",
        freed.bytes_deallocated, freed.deallocations
    );
    let frozen_total = frozen_footprint.total();
    assert!(
        within(frozen_total.bytes, freed.bytes_deallocated, 0.10),
        "estimated {} bytes with the cells frozen, the ledger held {}",
        frozen_total.bytes,
        freed.bytes_deallocated
    );
    assert!(
        within(frozen_total.allocations, freed.deallocations, 0.10),
        "estimated {} blocks with the cells frozen, the ledger held {}",
        frozen_total.allocations,
        freed.deallocations
    );
    assert_eq!(frozen_footprint.cells.entries, footprint.cells.entries);
    assert!(
        frozen_footprint.cells.heap.bytes * 4 < footprint.cells.heap.bytes,
        "frozen cells take a fraction of the memory: {} against {} bytes",
        frozen_footprint.cells.heap.bytes,
        footprint.cells.heap.bytes
    );
}
