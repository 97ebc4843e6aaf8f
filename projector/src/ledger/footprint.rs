//! Where the ledger's memory goes: entries and heap bytes of each structure of the state,
//! estimated from the collections' layouts (no allocator hooks, so it runs in production).
//!
//! The estimate follows the std collections: a `HashMap` (hashbrown) is one allocation of
//! its buckets and control bytes, sized from its capacity; a `BTreeMap` is nodes of eleven
//! entries, counted as about seven entries per leaf (a node splits in two when full; a key
//! moves up at each split), since the tree's real shape cannot be read; a `String` or
//! `Vec` is its capacity; a `Box` its value. `tests/state_footprint.rs` checks the estimate
//! against an allocator that counts. What the allocator adds to each block (glibc: 8 bytes
//! of header, blocks in steps of 16, 32 at least) is estimated beside it, since that, not
//! the bytes asked for, is what the process holds.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::mem::{align_of, size_of};

use aqs_schemas::event::{DayKind, Scope};
use aqs_schemas::{EventType, Money, Rate, YearMonth};
use chrono::NaiveDate;

use super::cells::{Cells, Month};
use super::facts::{Activity, AgentFact, CancellationFact, Contribution, OutletNames, Sighting};
use super::identity::EventKey;
use super::{
    AgentState, CancellationState, Counters, DayDeclaration, Dirty, Ledger, OutletRow, PlanCounts,
    ReferenceFact, ReferenceState, SupervisorFact, TargetRow, TeamRow,
};

/// Heap memory of some part of the state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Heap {
    /// Bytes asked of the allocator.
    pub bytes: u64,
    /// Blocks allocated.
    pub allocations: u64,
    /// Bytes the allocator holds for them (glibc's block sizes): what counts in RSS.
    pub held_bytes: u64,
}

impl Heap {
    fn allocate(&mut self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let bytes = bytes as u64;
        self.bytes += bytes;
        self.allocations += 1;
        // glibc malloc: a header of 8 bytes, blocks rounded up to 16, at least 32.
        self.held_bytes += ((bytes + 8).div_ceil(16) * 16).max(32);
    }

    fn add(&mut self, other: Heap) {
        self.bytes += other.bytes;
        self.allocations += other.allocations;
        self.held_bytes += other.held_bytes;
    }
}

/// One structure of the state: how many entries it holds and their heap memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatePart {
    pub entries: u64,
    pub heap: Heap,
}

/// The ledger's state by structure. Agent days and team days are not kept: they are summed
/// from the cells when rows are published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    /// The records of agent events held in memory (identity → digest and contribution: those
    /// made or read back since the last checkpoint) and the filter over every record ever
    /// made (1.4 to 2.8 bytes per event).
    pub event_records: StatePart,
    /// Identities retracted (agents' and reference): grows with retractions.
    pub retractions: StatePart,
    /// Agent × outlet × business date counters: grows with active agent-days.
    pub cells: StatePart,
    /// Sales and cancellations by policy (to attribute refunds): grows with sales.
    pub policies: StatePart,
    /// Each agent's outlet names, memberships, assignments, plans, targets, names and the
    /// intervals last published.
    pub agent_timelines: StatePart,
    /// Supervisors' facts, of agents and of reference data: grows with them.
    pub supervisor_facts: StatePart,
    /// The map of agents itself: ids and each agent's fixed part.
    pub agents: StatePart,
    /// Teams, outlets, targets, the calendar and the reference events seen.
    pub reference: StatePart,
    /// Keys changed since the rows were last taken (empty right after a publish).
    pub pending_changes: StatePart,
}

impl Footprint {
    /// Every part with its name, in a fixed order (for tables and logs).
    pub fn parts(&self) -> [(&'static str, StatePart); 9] {
        [
            ("event_records", self.event_records),
            ("retractions", self.retractions),
            ("cells", self.cells),
            ("policies", self.policies),
            ("agent_timelines", self.agent_timelines),
            ("supervisor_facts", self.supervisor_facts),
            ("agents", self.agents),
            ("reference", self.reference),
            ("pending_changes", self.pending_changes),
        ]
    }

    /// The heap memory of the whole state.
    pub fn total(&self) -> Heap {
        let mut total = Heap::default();
        for (_, part) in self.parts() {
            total.add(part.heap);
        }
        total
    }
}

impl Ledger {
    /// Entries and estimated heap memory of each structure of the state. Walks every
    /// entry once: a fraction of what a checkpoint's save costs.
    pub fn footprint(&self) -> Footprint {
        let mut footprint = Footprint::default();
        footprint.agents.entries = self.agents.len() as u64;
        hash_table(&self.agents, &mut footprint.agents.heap);
        for (agent_id, state) in &self.agents {
            agent_id.add_heap(&mut footprint.agents.heap);
            add_agent(state, &mut footprint);
        }
        add_reference(&self.reference, &mut footprint);
        // The filter over every record ever made stays in memory; the records themselves
        // only until a checkpoint writes them.
        footprint
            .event_records
            .heap
            .allocate(self.record_filter.bytes());
        add_dirty(&self.dirty, &mut footprint.pending_changes);
        footprint
    }
}

fn add_agent(state: &AgentState, footprint: &mut Footprint) {
    let AgentState {
        seen,
        retracted,
        outlets,
        cells,
        sales_by_policy,
        cancellations_by_policy,
        memberships,
        assignments,
        plans,
        targets,
        profiles,
        joined_names,
        published_roster,
        published_assignments,
        supervision,
    } = state;
    footprint.event_records.entries += seen.len() as u64;
    seen.add_heap(&mut footprint.event_records.heap);
    footprint.retractions.entries += retracted.len() as u64;
    retracted.add_heap(&mut footprint.retractions.heap);
    footprint.cells.entries += cells.cell_count() as u64;
    cells.add_heap(&mut footprint.cells.heap);
    footprint.policies.entries += (entries_in(sales_by_policy.values())
        + entries_in(cancellations_by_policy.values())) as u64;
    sales_by_policy.add_heap(&mut footprint.policies.heap);
    cancellations_by_policy.add_heap(&mut footprint.policies.heap);
    let timelines = &mut footprint.agent_timelines;
    timelines.entries += (outlets.len()
        + memberships.len()
        + entries_in(assignments.values())
        + entries_in(plans.values())
        + entries_in(targets.values())
        + profiles.len()
        + joined_names.len()
        + published_roster.len()
        + published_assignments.len()) as u64;
    outlets.add_heap(&mut timelines.heap);
    memberships.add_heap(&mut timelines.heap);
    assignments.add_heap(&mut timelines.heap);
    plans.add_heap(&mut timelines.heap);
    targets.add_heap(&mut timelines.heap);
    profiles.add_heap(&mut timelines.heap);
    joined_names.add_heap(&mut timelines.heap);
    published_roster.add_heap(&mut timelines.heap);
    published_assignments.add_heap(&mut timelines.heap);
    footprint.supervisor_facts.entries += supervision.len() as u64;
    supervision.add_heap(&mut footprint.supervisor_facts.heap);
}

/// The entries of the small maps inside a bigger one (a day's cells, a fact's versions).
fn entries_in<'a, K: 'a, V: 'a>(maps: impl Iterator<Item = &'a litemap::LiteMap<K, V>>) -> usize {
    maps.map(litemap::LiteMap::len).sum()
}

fn add_reference(reference: &ReferenceState, footprint: &mut Footprint) {
    let ReferenceState {
        seen,
        retracted,
        facts,
        teams,
        published_teams,
        outlets,
        targets,
        calendar,
        supervision,
    } = reference;
    footprint.retractions.entries += retracted.len() as u64;
    retracted.add_heap(&mut footprint.retractions.heap);
    footprint.supervisor_facts.entries += supervision.len() as u64;
    supervision.add_heap(&mut footprint.supervisor_facts.heap);
    let part = &mut footprint.reference;
    part.entries += (seen.len()
        + entries_in(teams.values().flat_map(BTreeMap::values))
        + entries_in(outlets.values())
        + entries_in(targets.values())
        + entries_in(calendar.values())) as u64;
    seen.add_heap(&mut part.heap);
    facts.add_heap(&mut part.heap);
    teams.add_heap(&mut part.heap);
    published_teams.add_heap(&mut part.heap);
    outlets.add_heap(&mut part.heap);
    targets.add_heap(&mut part.heap);
    calendar.add_heap(&mut part.heap);
}

fn add_dirty(dirty: &Dirty, part: &mut StatePart) {
    let Dirty {
        cells,
        agent_days,
        retag_agents,
        retag_teams,
        plans,
        targets,
        rosters,
        assignments,
        pending,
        profiles,
        teams,
        outlets,
        calendar_days,
        supervisor_facts,
    } = dirty;
    part.entries += (cells.values().map(BTreeSet::len).sum::<usize>()
        + agent_days.values().map(BTreeSet::len).sum::<usize>()
        + retag_agents.len()
        + retag_teams.len()
        + plans.len()
        + targets.len()
        + rosters.len()
        + assignments.len()
        + pending.len()
        + profiles.len()
        + teams.len()
        + outlets.len()
        + calendar_days.len()
        + supervisor_facts.len()) as u64;
    let heap = &mut part.heap;
    cells.add_heap(heap);
    agent_days.add_heap(heap);
    retag_agents.add_heap(heap);
    retag_teams.add_heap(heap);
    plans.add_heap(heap);
    targets.add_heap(heap);
    rosters.add_heap(heap);
    assignments.add_heap(heap);
    pending.add_heap(heap);
    profiles.add_heap(heap);
    teams.add_heap(heap);
    outlets.add_heap(heap);
    calendar_days.add_heap(heap);
    supervisor_facts.add_heap(heap);
}

/// What a value holds on the heap, beyond its own inline size.
pub(super) trait HeapSize {
    fn add_heap(&self, heap: &mut Heap);
}

macro_rules! inline_only {
    ($($t:ty),* $(,)?) => {
        $(impl HeapSize for $t {
            fn add_heap(&self, _: &mut Heap) {}
        })*
    };
}

inline_only!(
    (),
    i32,
    u32,
    u64,
    i64,
    bool,
    NaiveDate,
    Money,
    Rate,
    YearMonth,
    Scope,
    DayKind,
    EventType,
    Counters,
    Contribution,
    PlanCounts,
);

impl HeapSize for String {
    fn add_heap(&self, heap: &mut Heap) {
        heap.allocate(self.capacity());
    }
}

impl HeapSize for Box<str> {
    fn add_heap(&self, heap: &mut Heap) {
        heap.allocate(self.len());
    }
}

impl<T: HeapSize> HeapSize for Box<T> {
    fn add_heap(&self, heap: &mut Heap) {
        heap.allocate(size_of::<T>());
        (**self).add_heap(heap);
    }
}

impl<T: HeapSize> HeapSize for Option<T> {
    fn add_heap(&self, heap: &mut Heap) {
        if let Some(value) = self {
            value.add_heap(heap);
        }
    }
}

impl<T: HeapSize> HeapSize for Vec<T> {
    fn add_heap(&self, heap: &mut Heap) {
        heap.allocate(self.capacity() * size_of::<T>());
        for value in self {
            value.add_heap(heap);
        }
    }
}

macro_rules! tuple {
    ($($name:ident),+) => {
        impl<$($name: HeapSize),+> HeapSize for ($($name,)+) {
            #[allow(non_snake_case)]
            fn add_heap(&self, heap: &mut Heap) {
                let ($($name,)+) = self;
                $($name.add_heap(heap);)+
            }
        }
    };
}

tuple!(A, B);
tuple!(A, B, C);
tuple!(A, B, C, D);
tuple!(A, B, C, D, E);

/// Entries in a node of std's B-tree, and the estimated entries per leaf (with the key
/// each split moves up).
const BTREE_CAPACITY: usize = 11;
const BTREE_ENTRIES_PER_LEAF: usize = 7;

/// The nodes of a B-tree of `entries` entries of `entry` bytes (keys and values).
fn btree_nodes(entries: usize, key: (usize, usize), value: (usize, usize), heap: &mut Heap) {
    if entries == 0 {
        return;
    }
    let align = key.1.max(value.1).max(8);
    // Parent pointer, keys, values, parent index and length (two u16).
    let leaf = (8 + BTREE_CAPACITY * (key.0 + value.0) + 4).next_multiple_of(align);
    let internal = leaf + (BTREE_CAPACITY + 1) * 8;
    if entries <= BTREE_CAPACITY {
        heap.allocate(leaf);
        return;
    }
    let leaves = entries.div_ceil(BTREE_ENTRIES_PER_LEAF);
    let mut internals = 0;
    let mut level = leaves;
    while level > 1 {
        level = level.div_ceil(BTREE_ENTRIES_PER_LEAF);
        internals += level;
    }
    for _ in 0..leaves {
        heap.allocate(leaf);
    }
    for _ in 0..internals {
        heap.allocate(internal);
    }
}

impl<K: HeapSize, V: HeapSize> HeapSize for BTreeMap<K, V> {
    fn add_heap(&self, heap: &mut Heap) {
        btree_nodes(
            self.len(),
            (size_of::<K>(), align_of::<K>()),
            (size_of::<V>(), align_of::<V>()),
            heap,
        );
        for (key, value) in self {
            key.add_heap(heap);
            value.add_heap(heap);
        }
    }
}

impl<K: HeapSize, V: HeapSize> HeapSize for litemap::LiteMap<K, V> {
    fn add_heap(&self, heap: &mut Heap) {
        // The vector's capacity is not exposed: estimated as made for one entry and grown
        // one insert at a time (four slots, then doubling); a reload makes it exact.
        let slots = match self.len() {
            0 => 0,
            1 => 1,
            len => len.max(4).next_power_of_two(),
        };
        heap.allocate(slots * size_of::<(K, V)>());
        for (key, value) in self.iter() {
            key.add_heap(heap);
            value.add_heap(heap);
        }
    }
}

impl<K: HeapSize> HeapSize for BTreeSet<K> {
    fn add_heap(&self, heap: &mut Heap) {
        btree_nodes(self.len(), (size_of::<K>(), align_of::<K>()), (0, 1), heap);
        for key in self {
            key.add_heap(heap);
        }
    }
}

/// The one allocation of a hash table: its buckets, then a control byte per bucket and a
/// group's worth more.
pub(super) fn hash_table<K, V, S>(map: &std::collections::HashMap<K, V, S>, heap: &mut Heap) {
    let capacity = map.capacity();
    if capacity == 0 {
        return;
    }
    let buckets = if capacity < 8 {
        capacity + 1
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    const GROUP: usize = 16;
    let slots = (buckets * size_of::<(K, V)>()).next_multiple_of(align_of::<(K, V)>().max(GROUP));
    heap.allocate(slots + buckets + GROUP);
}

impl<K: HeapSize, V: HeapSize, S: BuildHasher> HeapSize for std::collections::HashMap<K, V, S> {
    fn add_heap(&self, heap: &mut Heap) {
        hash_table(self, heap);
        for (key, value) in self {
            key.add_heap(heap);
            value.add_heap(heap);
        }
    }
}

impl HeapSize for Sighting {
    fn add_heap(&self, heap: &mut Heap) {
        self.fact.add_heap(heap);
    }
}

impl HeapSize for AgentFact {
    fn add_heap(&self, heap: &mut Heap) {
        match self {
            Self::Activity(activity) => activity.add_heap(heap),
            Self::Cancellation(fact) => fact.add_heap(heap),
            Self::Membership(key) => key.add_heap(heap),
            Self::Assignment(key) => key.add_heap(heap),
            Self::Plan(key) => key.add_heap(heap),
            Self::Target(key) => key.add_heap(heap),
            Self::Profile(key) => key.add_heap(heap),
            Self::Supervision => {}
        }
    }
}

impl HeapSize for Activity {
    fn add_heap(&self, heap: &mut Heap) {
        self.policy.add_heap(heap);
    }
}

impl HeapSize for CancellationFact {
    fn add_heap(&self, heap: &mut Heap) {
        self.policy.add_heap(heap);
    }
}

impl HeapSize for Cells {
    fn add_heap(&self, heap: &mut Heap) {
        self.months().add_heap(heap);
    }
}

impl HeapSize for Month {
    fn add_heap(&self, heap: &mut Heap) {
        match self {
            Month::Hot { days, .. } => days.add_heap(heap),
            Month::Frozen(bytes) => heap.allocate(bytes.len()),
        }
    }
}

impl HeapSize for OutletNames {
    fn add_heap(&self, heap: &mut Heap) {
        self.names().add_heap(heap);
    }
}

impl HeapSize for EventKey {
    fn add_heap(&self, heap: &mut Heap) {
        self.id.add_heap(heap);
        self.source.add_heap(heap);
    }
}

impl HeapSize for CancellationState {
    fn add_heap(&self, heap: &mut Heap) {
        self.attributed.add_heap(heap);
    }
}

impl HeapSize for DayDeclaration {
    fn add_heap(&self, heap: &mut Heap) {
        self.name.add_heap(heap);
    }
}

impl HeapSize for ReferenceFact {
    fn add_heap(&self, heap: &mut Heap) {
        match self {
            Self::Team {
                team,
                effective_from: _,
                key,
            } => (team, key).add_heap(heap),
            Self::Outlet { outlet, key } => (outlet, key).add_heap(heap),
            Self::Target { key, version } => (key, version).add_heap(heap),
            Self::CalendarDay { date: _, key } => key.add_heap(heap),
            Self::Supervision => {}
        }
    }
}

impl<T: HeapSize> HeapSize for &T {
    fn add_heap(&self, heap: &mut Heap) {
        (**self).add_heap(heap);
    }
}

impl HeapSize for TargetRow {
    fn add_heap(&self, heap: &mut Heap) {
        (&self.scope_id, &self.event_id).add_heap(heap);
    }
}

impl HeapSize for TeamRow {
    fn add_heap(&self, heap: &mut Heap) {
        (
            &self.team_id,
            &self.team_name,
            &self.branch_id,
            &self.region_id,
        )
            .add_heap(heap);
        (&self.branch_name, &self.region_name, &self.supervisor_id).add_heap(heap);
    }
}

impl HeapSize for OutletRow {
    fn add_heap(&self, heap: &mut Heap) {
        (&self.outlet_id, &self.bank, &self.name, &self.region_id).add_heap(heap);
    }
}

impl HeapSize for SupervisorFact {
    fn add_heap(&self, heap: &mut Heap) {
        (
            &self.source,
            &self.event_id,
            &self.supervisor_id,
            &self.agent_id,
            &self.team_id,
        )
            .add_heap(heap);
        (
            &self.outlet_id,
            &self.linked_event_id,
            &self.kind,
            &self.scope,
            &self.scope_id,
        )
            .add_heap(heap);
        (&self.skill, &self.will, &self.text).add_heap(heap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_held_in_steps_of_sixteen() {
        let mut heap = Heap::default();
        heap.allocate(0);
        assert_eq!(heap, Heap::default());
        heap.allocate(5);
        heap.allocate(24);
        heap.allocate(25);
        assert_eq!(heap.bytes, 54);
        assert_eq!(heap.allocations, 3);
        assert_eq!(heap.held_bytes, 32 + 32 + 48);
    }

    #[test]
    fn a_hash_table_is_one_block_of_buckets_and_control_bytes() {
        let mut map: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
        let mut heap = Heap::default();
        map.add_heap(&mut heap);
        assert_eq!(heap.allocations, 0);
        map.extend((0..3).map(|i| (i, i)));
        assert_eq!(map.capacity(), 3);
        map.add_heap(&mut heap);
        // Four buckets of 16 bytes, then four control bytes and a group of 16.
        assert_eq!((heap.bytes, heap.allocations), (64 + 4 + 16, 1));
    }

    #[test]
    fn strings_count_their_capacity_and_boxes_their_value() {
        let mut heap = Heap::default();
        let mut text = String::with_capacity(40);
        text.push_str("abc");
        Some(Box::new(text)).add_heap(&mut heap);
        assert_eq!(
            (heap.bytes, heap.allocations),
            (size_of::<String>() as u64 + 40, 2)
        );
    }
}
