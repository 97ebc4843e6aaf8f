//! The ledger fold: events in, ledger tables out. Pure: no I/O, no clock.
//!
//! Every rule of the domain holds whatever the delivery order and however often an event
//! arrives:
//! - an event is its identity, `source` and `event_id`: it counts once; the same identity
//!   with a different body is a conflict and the first body is kept; the same id from
//!   another source is another event;
//! - a retraction removes the original's effect wherever it landed, and an original that
//!   arrives after its retraction never takes effect (retractions themselves cannot be
//!   retracted); a retraction reaches only its own source's event of that id, with or
//!   without an `agent_id`;
//! - activity lands on its business date in the organisation's time zone;
//! - a cancellation is a refund on its own date, on the outlet of the cancelled sale; until
//!   a (non-retracted) sale of its policy is known it is pending and counts nowhere;
//! - plans, targets, agent profiles and the calendar's declarations of a date: the latest by
//!   `occurred_at`, then `event_id`, then `source` (an agent's name falls back on the latest
//!   join with a name; a date without declarations follows the weekdays);
//! - roster, outlet assignments and team definitions are effective-dated; an agent's day is
//!   tagged with the team the agent belonged to on that date, and with that team's branch and
//!   region in force on that date (of the definitions effective on or before it, the latest
//!   effective date, then the latest by `occurred_at`, `event_id`, `source`).
//!
//! Order independence comes from keeping every effect a sum of per-event contributions or
//! a choice among a set of versions, never a "last one applied" value.

mod cells;
mod counters;
mod facts;
pub mod footprint;
mod identity;
pub mod lineage;
pub mod records;
mod rows;
mod supervision;

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use aqs_schemas::event::{DayKind, Scope, TeamDefined};
use aqs_schemas::{BusinessClock, Event, EventType, Money, Payload, YearMonth};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use cells::{Cells, DayCells};
pub use counters::Counters;
use facts::{Activity, AgentFact, CancellationFact, Contribution, OutletNames, Sighted, Sighting};
pub use footprint::{Footprint, Heap, StatePart};
use identity::{ByIdentity, EventKey};

/// Hash maps keyed by event ids: hashed fast (foldhash, seeded per process) since every
/// event looks its id up at least twice.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub use rows::*;
pub use supervision::SupervisorFact;

/// What applying one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The event took effect.
    Applied,
    /// Seen before with the same body: nothing to do.
    Duplicate,
    /// Seen before with a different body: the first one stays.
    Conflict,
    /// Already retracted when it arrived: recorded, counts nowhere.
    Retracted,
    /// Accepted but without effect, with the reason (e.g. retracting a retraction).
    NoEffect(&'static str),
    /// Its money would overflow a ledger sum: it counts nowhere (recorded, so that a repeat
    /// is a duplicate), and the caller reports it.
    Overflow(MoneyOverflow),
}

/// A money sum an event would push past what the ledger holds (`i64` fen, about 9.2e16
/// CNY: 9,223 premiums of the largest size the contract accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoneyOverflow {
    /// The event's money: `premium` or `refund`.
    pub field: &'static str,
    /// The sum it would overflow: `agent × outlet × day` or `agent × day`.
    pub sum: &'static str,
}

impl std::fmt::Display for MoneyOverflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "its {} would overflow the {} sum", self.field, self.sum)
    }
}

/// Sorts versions: latest by `occurred_at`, ties broken by `event_id`, then by `source`,
/// so that the order is total even between sources that share ids.
type VersionKey = (i64, u32, String, String);

fn version_key(event: &Event) -> VersionKey {
    let instant = event.occurred_at.as_datetime();
    (
        instant.timestamp(),
        instant.timestamp_subsec_nanos(),
        event.event_id.clone(),
        event.source.clone(),
    )
}

/// Where a fact sits on a timeline: its effective date, then its version.
type TimelineKey = (NaiveDate, i64, u32, String, String);

/// Effective-dated facts: the value on a date is the latest fact effective on or before it.
type Timeline<T> = Versions<TimelineKey, T>;

/// The versions of one fact, sorted by key: a handful each (a plan and its revisions, an
/// outlet's registrations, a team's definitions). A sorted vector rather than a `BTreeMap`,
/// which allocates a node of eleven slots even for one entry: with millions of these maps
/// that node was most of the state's memory. Encoded as a map, like the `BTreeMap` was.
type Versions<K, V> = litemap::LiteMap<K, V>;

/// A fact's versions, made for its first: most facts never get a second (a vector grown by
/// its first insert takes four slots).
fn first_version<K, V>() -> Versions<K, V> {
    Versions::with_capacity(1)
}

fn timeline_key(effective: NaiveDate, event: &Event) -> TimelineKey {
    let (s, n, id, source) = version_key(event);
    (effective, s, n, id, source)
}

/// Runs of equal values along a timeline, as (from, to-exclusive, value).
fn timeline_runs<T: Clone + PartialEq>(
    timeline: &Timeline<T>,
) -> Vec<(NaiveDate, Option<NaiveDate>, T)> {
    // The last fact of each effective date decides that date.
    let mut by_date: BTreeMap<NaiveDate, &T> = BTreeMap::new();
    for ((date, ..), value) in timeline {
        by_date.insert(*date, value);
    }
    let mut runs: Vec<(NaiveDate, Option<NaiveDate>, T)> = Vec::new();
    for (date, value) in by_date {
        match runs.last_mut() {
            Some(last) if last.2 == *value => {}
            Some(last) => {
                last.1 = Some(date);
                runs.push((date, None, value.clone()));
            }
            None => runs.push((date, None, value.clone())),
        }
    }
    runs
}

fn value_on<T>(timeline: &Timeline<T>, date: NaiveDate) -> Option<&T> {
    // The facts effective on or before `date` are the keys up to the first of a later day.
    let effective = timeline
        .as_slice()
        .partition_point(|((effective, ..), _)| *effective <= date);
    effective
        .checked_sub(1)
        .and_then(|last| timeline.get_indexed(last))
        .map(|(_, v)| v)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PlanCounts {
    visits: Option<u32>,
    consultations: Option<u32>,
    sales: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CancellationState {
    #[serde(with = "facts::day_number")]
    date: NaiveDate,
    refund: Money,
    /// The outlet the refund currently counts on, by its place among the agent's outlets;
    /// `None` while pending.
    attributed: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AgentState {
    /// The records of this agent's events in memory, retractions included, by identity:
    /// the body's digest and what the event contributed while it counts. Those made or read
    /// back since the last checkpoint; a checkpoint writes them to the projector's store
    /// and they are forgotten here (`records`), so they are not part of the saved state.
    #[serde(skip)]
    seen: ByIdentity<Sighting>,
    /// Events retracted by this agent's retractions (each of its own source).
    retracted: ByIdentity<()>,
    /// The outlets the activity facts of `seen` name by place.
    outlets: OutletNames,
    cells: Cells,
    /// Non-retracted sales by policy: event → outlet.
    sales_by_policy: BTreeMap<String, Versions<EventKey, u32>>,
    /// Non-retracted cancellations by policy: event → state.
    cancellations_by_policy: BTreeMap<String, Versions<EventKey, CancellationState>>,
    /// Team from the effective date on; `None` after leaving.
    memberships: Timeline<Option<String>>,
    assignments: BTreeMap<String, Timeline<bool>>,
    plans: BTreeMap<(NaiveDate, NaiveDate), Versions<VersionKey, PlanCounts>>,
    targets: BTreeMap<YearMonth, Versions<VersionKey, TargetRow>>,
    /// Display names of the agent's profiles, by version.
    profiles: Versions<VersionKey, String>,
    /// Names carried by the agent's joins, by the join's version: the fallback.
    joined_names: Versions<VersionKey, String>,
    /// Interval keys last handed to a sink, to tombstone those that disappear.
    published_roster: BTreeSet<NaiveDate>,
    published_assignments: BTreeSet<(String, NaiveDate)>,
    supervision: supervision::SupervisorFacts,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum ReferenceFact {
    Team {
        team: String,
        effective_from: Option<NaiveDate>,
        key: VersionKey,
    },
    Outlet {
        outlet: String,
        key: VersionKey,
    },
    Target {
        key: (Scope, String, YearMonth),
        version: VersionKey,
    },
    CalendarDay {
        date: NaiveDate,
        key: VersionKey,
    },
    /// A supervisor's fact naming no agent, held in `ReferenceState::supervision`.
    Supervision,
}

/// One declaration of a calendar date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DayDeclaration {
    kind: DayKind,
    name: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ReferenceState {
    seen: ByIdentity<u64>,
    /// Events retracted by retractions that name no agent; they reach that source's agent
    /// events of the id too.
    retracted: ByIdentity<()>,
    facts: ByIdentity<ReferenceFact>,
    /// Definitions of each team by effective date (`None`: from the beginning), by version.
    teams: BTreeMap<String, TeamVersions>,
    /// Effective dates of each team's rows last handed to a sink, to tombstone those that
    /// disappear.
    published_teams: BTreeMap<String, BTreeSet<Option<NaiveDate>>>,
    outlets: BTreeMap<String, Versions<VersionKey, OutletRow>>,
    targets: BTreeMap<(Scope, String, YearMonth), Versions<VersionKey, TargetRow>>,
    /// Declarations of each calendar date, by version.
    calendar: BTreeMap<NaiveDate, Versions<VersionKey, DayDeclaration>>,
    supervision: supervision::SupervisorFacts,
}

/// Keys changed since the last [`Ledger::take_changes`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Dirty {
    /// Changed cells by agent, and days: keyed by agent first so that marking a cell of an
    /// agent already marked copies no agent id. Hashed, as every cell an event changes is
    /// marked (a tree of agent ids compared a dozen ids per mark); the changes are taken in
    /// agent order all the same.
    /// The outlet is its place among the agent's outlets (see [`DayCells`]).
    cells: HashMap<String, BTreeSet<(NaiveDate, u32)>>,
    agent_days: HashMap<String, BTreeSet<NaiveDate>>,
    /// Agents whose every day must be re-tagged (their team history changed).
    retag_agents: BTreeSet<String>,
    /// Teams whose definitions changed, with the earliest effective date changed: the days
    /// of their members on or after it must be re-tagged (earlier days keep their parents).
    retag_teams: BTreeMap<String, Option<NaiveDate>>,
    plans: BTreeSet<(String, NaiveDate, NaiveDate)>,
    targets: BTreeSet<(Scope, String, YearMonth)>,
    rosters: BTreeSet<String>,
    assignments: BTreeSet<String>,
    pending: BTreeSet<String>,
    profiles: BTreeSet<String>,
    teams: BTreeSet<String>,
    outlets: BTreeSet<String>,
    calendar_days: BTreeSet<NaiveDate>,
    /// Supervisor facts by agent (empty: reference data) and identity.
    supervisor_facts: BTreeSet<(String, EventKey)>,
}

/// Rows changed since the last call, ready for a sink. Rows absent from the current state
/// come as tombstones (`deleted` keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerChanges {
    /// Cells with zero counters are tombstones.
    pub agent_outlet_day: Vec<AgentOutletDay>,
    /// Days with zero counters are tombstones.
    pub agent_day: Vec<AgentDay>,
    pub plans: Vec<PlanRow>,
    pub deleted_plans: Vec<(String, NaiveDate, NaiveDate)>,
    pub targets: Vec<TargetRow>,
    pub deleted_targets: Vec<(Scope, String, YearMonth)>,
    /// Agents whose roster rows are replaced by `roster` (all of that agent's rows).
    pub roster_agents: Vec<String>,
    pub roster: Vec<RosterRow>,
    pub deleted_roster: Vec<(String, NaiveDate)>,
    pub assignment_agents: Vec<String>,
    pub assignments: Vec<AssignmentRow>,
    pub deleted_assignments: Vec<(String, String, NaiveDate)>,
    pub pending_agents: Vec<String>,
    pub pending_cancellations: Vec<PendingCancellation>,
    pub agent_profiles: Vec<AgentProfileRow>,
    /// Agents left without a name (a tombstone each).
    pub deleted_agent_profiles: Vec<String>,
    /// Teams whose rows are replaced by `teams`.
    pub teams: Vec<TeamRow>,
    /// Team definitions left without a version at their effective date (a tombstone each).
    pub deleted_teams: Vec<(String, Option<NaiveDate>)>,
    pub outlets: Vec<OutletRow>,
    pub calendar_days: Vec<CalendarDayRow>,
    /// Dates left without a declaration (a tombstone each).
    pub deleted_calendar_days: Vec<NaiveDate>,
    pub supervisor_facts: Vec<SupervisorFact>,
    /// Retracted supervisor facts as (agent id, empty for reference data; source; event id).
    pub deleted_supervisor_facts: Vec<(String, String, String)>,
}

impl LedgerChanges {
    pub fn is_empty(&self) -> bool {
        self.agent_outlet_day.is_empty()
            && self.agent_day.is_empty()
            && self.plans.is_empty()
            && self.deleted_plans.is_empty()
            && self.targets.is_empty()
            && self.deleted_targets.is_empty()
            && self.roster_agents.is_empty()
            && self.assignment_agents.is_empty()
            && self.pending_agents.is_empty()
            && self.agent_profiles.is_empty()
            && self.deleted_agent_profiles.is_empty()
            && self.teams.is_empty()
            && self.deleted_teams.is_empty()
            && self.outlets.is_empty()
            && self.calendar_days.is_empty()
            && self.deleted_calendar_days.is_empty()
            && self.supervisor_facts.is_empty()
            && self.deleted_supervisor_facts.is_empty()
    }
}

/// The whole projection state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ledger {
    #[serde(skip)]
    clock: BusinessClock,
    /// Hashed, not ordered: every event looks its agent up; the tables sort agents.
    agents: HashMap<String, AgentState>,
    reference: ReferenceState,
    dirty: Dirty,
    /// Every agent event record ever made, in memory or not: see [`records`].
    record_filter: records::RecordFilter,
    /// Records in the agents' `seen` maps (made or read back since the last checkpoint).
    #[serde(skip)]
    records_in_memory: usize,
}

/// Records the first sighting of an event; a later one is a duplicate when its body's
/// digest is the same and a conflict when it differs (the first body stays).
fn record_sighting<T: Sighted>(
    seen: &mut ByIdentity<T>,
    event: &Event,
    digest: u64,
) -> Option<Applied> {
    let ids = seen.ids_mut(&event.source);
    match ids.get(event.event_id.as_str()) {
        Some(first) if first.digest() == digest => Some(Applied::Duplicate),
        Some(_) => Some(Applied::Conflict),
        None => {
            ids.insert(event.event_id.as_str().into(), T::first(digest));
            None
        }
    }
}

/// A stable 64-bit digest (XXH3) of an event's canonical bytes, for conflict detection.
/// Stored with the state: changing it is a change of the state's form. (FNV-1a, before
/// form 12, went a byte at a time: about 5 % of the replay's CPU.)
pub fn digest(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

impl Ledger {
    pub fn new(clock: BusinessClock) -> Self {
        Self {
            clock,
            ..Self::default()
        }
    }

    pub fn set_clock(&mut self, clock: BusinessClock) {
        self.clock = clock;
    }

    /// Freezes the months of cells no event changed since the previous call, and those two
    /// or more before their agent's newest: they stay in memory in a compact encoding,
    /// decoded when read and thawed when changed, with the same cells (`ledger::cells`).
    /// The runner calls it at each checkpoint. Returns how many froze.
    pub fn freeze_untouched_months(&mut self) -> usize {
        self.agents
            .values_mut()
            .map(|state| state.cells.freeze_untouched())
            .sum()
    }

    /// Applies one event; `digest` is [`digest`] of its canonical bytes.
    pub fn apply(&mut self, event: &Event, digest: u64) -> Applied {
        match &event.agent_id {
            Some(agent_id) => self.apply_agent_event(agent_id, event, digest),
            None => self.apply_reference_event(event, digest),
        }
    }

    /// Forgets the agents for which `owned` says no: their partition moved elsewhere.
    /// Their changes not yet taken go with them (another instance publishes those agents).
    pub fn retain_agents(&mut self, mut owned: impl FnMut(&str) -> bool) {
        self.agents.retain(|agent, _| owned(agent));
        self.dirty.cells.retain(|agent, _| owned(agent));
        self.records_in_memory = self.agents.values().map(|s| s.seen.len()).sum();
    }

    fn apply_agent_event(&mut self, agent_id: &str, event: &Event, digest: u64) -> Applied {
        let date = event.business_date(&self.clock);
        let state = marked(&mut self.agents, agent_id);
        if let Some(repeat) = record_sighting(&mut state.seen, event, digest) {
            return repeat;
        }
        let source = event.source.as_str();
        self.record_filter.insert(agent_id, source, &event.event_id);
        self.records_in_memory += 1;

        if let Payload::Retraction(retraction) = &event.payload {
            // A source retracts its own events only: the target is (source, id).
            let target = &retraction.retracted_event_id;
            if state.retracted.insert(source, target, ()).is_some() {
                return Applied::NoEffect("already retracted");
            }
            return if undo_agent_fact(state, agent_id, source, target, &mut self.dirty) {
                Applied::Applied
            } else if state.seen.contains(source, target) {
                Applied::NoEffect("retractions cannot be retracted")
            } else {
                // The original has not arrived yet; it will count nowhere when it does.
                Applied::Applied
            };
        }
        if state.retracted.contains(source, &event.event_id)
            || self.reference.retracted.contains(source, &event.event_id)
        {
            return Applied::Retracted;
        }
        if let Some(row) = supervision::supervisor_fact(event, date) {
            let key = EventKey::new(source, &event.event_id);
            state.supervision.insert(key.clone(), row);
            self.dirty
                .supervisor_facts
                .insert((agent_id.to_owned(), key));
            if let Some(sighting) = state.seen.get_mut(source, &event.event_id) {
                sighting.fact = Some(AgentFact::Supervision);
            }
            return Applied::Applied;
        }
        let fact = match &event.payload {
            Payload::OutletVisit(visit) => AgentFact::Activity(Activity {
                date,
                outlet: state.outlets.place(&visit.outlet_id),
                contribution: Contribution::Visit,
                policy: None,
            }),
            Payload::Consultation(c) => AgentFact::Activity(Activity {
                date,
                outlet: state.outlets.place(&c.outlet_id),
                contribution: Contribution::Consultation {
                    consulted: c.customers_consulted,
                    interested: c.customers_interested,
                },
                policy: None,
            }),
            Payload::SaleClosed(sale) => AgentFact::Activity(Activity {
                date,
                outlet: state.outlets.place(&sale.outlet_id),
                contribution: Contribution::Sale {
                    premium: sale.premium,
                },
                policy: Some(sale.policy_id.as_str().into()),
            }),
            Payload::PolicyCancelled(c) => AgentFact::Cancellation(Box::new(CancellationFact {
                date,
                policy: c.policy_id.clone(),
                refund: c.refund,
            })),
            Payload::AgentJoinedTeam(join) => {
                AgentFact::Membership(Box::new(timeline_key(join.effective_date, event)))
            }
            Payload::AgentLeft(left) => {
                AgentFact::Membership(Box::new(timeline_key(left.effective_date, event)))
            }
            Payload::OutletAssigned(a) => AgentFact::Assignment(Box::new((
                a.outlet_id.clone(),
                timeline_key(a.effective_date, event),
            ))),
            Payload::OutletUnassigned(u) => AgentFact::Assignment(Box::new((
                u.outlet_id.clone(),
                timeline_key(u.effective_date, event),
            ))),
            Payload::ActivityPlan(plan) => AgentFact::Plan(Box::new((
                (plan.period_start, plan.period_end),
                version_key(event),
            ))),
            Payload::Target(target) => {
                AgentFact::Target(Box::new((target.month, version_key(event))))
            }
            Payload::AgentProfile(_) => AgentFact::Profile(Box::new(version_key(event))),
            Payload::TeamDefined(_)
            | Payload::OutletRegistered(_)
            | Payload::CalendarDay(_)
            | Payload::Retraction(_) => {
                return Applied::NoEffect("reference data names no agent");
            }
            _ => return Applied::NoEffect("a supervisor's fact is folded above"),
        };
        if let Err(overflow) = do_agent_fact(
            state,
            agent_id,
            (source, &event.event_id),
            &fact,
            &event.payload,
            &mut self.dirty,
        ) {
            return Applied::Overflow(overflow);
        }
        if let Some(sighting) = state.seen.get_mut(source, &event.event_id) {
            sighting.fact = Some(fact);
        }
        Applied::Applied
    }

    fn apply_reference_event(&mut self, event: &Event, digest: u64) -> Applied {
        let reference = &mut self.reference;
        if let Some(repeat) = record_sighting(&mut reference.seen, event, digest) {
            return repeat;
        }
        let source = event.source.as_str();
        if let Payload::Retraction(retraction) = &event.payload {
            // Without an agent the target may be reference data or any agent's event, but
            // always this source's own.
            let target = &retraction.retracted_event_id;
            if reference.retracted.insert(source, target, ()).is_some() {
                return Applied::NoEffect("already retracted");
            }
            undo_reference_fact(reference, source, target, &mut self.dirty);
            for (agent_id, state) in &mut self.agents {
                if undo_agent_fact(state, agent_id, source, target, &mut self.dirty) {
                    state.retracted.insert(source, target, ());
                }
            }
            return Applied::Applied;
        }
        if reference.retracted.contains(source, &event.event_id) {
            return Applied::Retracted;
        }
        if let Some(row) = supervision::supervisor_fact(event, event.business_date(&self.clock)) {
            let key = EventKey::new(source, &event.event_id);
            reference.supervision.insert(key.clone(), row);
            self.dirty.supervisor_facts.insert((String::new(), key));
            reference
                .facts
                .insert(source, &event.event_id, ReferenceFact::Supervision);
            return Applied::Applied;
        }
        let version = version_key(event);
        let fact = match &event.payload {
            Payload::TeamDefined(team) => {
                reference
                    .teams
                    .entry(team.team_id.clone())
                    .or_default()
                    .entry(team.effective_from)
                    .or_insert_with(first_version)
                    .insert(version.clone(), team_row(team));
                self.dirty.team_changed(&team.team_id, team.effective_from);
                ReferenceFact::Team {
                    team: team.team_id.clone(),
                    effective_from: team.effective_from,
                    key: version,
                }
            }
            Payload::OutletRegistered(outlet) => {
                reference
                    .outlets
                    .entry(outlet.outlet_id.clone())
                    .or_insert_with(first_version)
                    .insert(
                        version.clone(),
                        OutletRow {
                            outlet_id: outlet.outlet_id.clone(),
                            bank: outlet.bank.clone(),
                            name: outlet.name.clone(),
                            region_id: outlet.region_id.clone(),
                        },
                    );
                self.dirty.outlets.insert(outlet.outlet_id.clone());
                ReferenceFact::Outlet {
                    outlet: outlet.outlet_id.clone(),
                    key: version,
                }
            }
            Payload::Target(target) => {
                let key = (target.scope, target.scope_id.clone(), target.month);
                reference
                    .targets
                    .entry(key.clone())
                    .or_insert_with(first_version)
                    .insert(
                        version.clone(),
                        target_row(target, target.month, &event.event_id),
                    );
                self.dirty.targets.insert(key.clone());
                ReferenceFact::Target { key, version }
            }
            Payload::CalendarDay(day) => {
                reference
                    .calendar
                    .entry(day.date)
                    .or_insert_with(first_version)
                    .insert(
                        version.clone(),
                        DayDeclaration {
                            kind: day.kind,
                            name: day.name.clone(),
                        },
                    );
                self.dirty.calendar_days.insert(day.date);
                ReferenceFact::CalendarDay {
                    date: day.date,
                    key: version,
                }
            }
            _ => return Applied::NoEffect("agent events need an agent_id"),
        };
        reference.facts.insert(source, &event.event_id, fact);
        Applied::Applied
    }

    /// Every ledger table, sorted by key.
    pub fn tables(&self) -> LedgerTables {
        let mut tables = LedgerTables::default();
        let mut agents: Vec<(&String, &AgentState)> = self.agents.iter().collect();
        agents.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (agent_id, state) in agents {
            let first = tables.agent_outlet_day.len();
            // Each day's cells once (a frozen month is decoded once), for both tables.
            state.cells.for_each_day(|date, day| {
                for (place, counters) in day.iter() {
                    tables.agent_outlet_day.push(AgentOutletDay {
                        agent_id: agent_id.clone(),
                        outlet_id: state.outlets.name(*place).to_owned(),
                        business_date: date,
                        counters: *counters,
                    });
                }
                tables
                    .agent_day
                    .push(self.agent_day_of(agent_id, state, date, Some(day)));
            });
            in_key_order(&mut tables.agent_outlet_day[first..]);
            tables.plans.extend(plan_rows(agent_id, state));
            for versions in state.targets.values() {
                if let Some((_, target)) = versions.last() {
                    tables.targets.push(target.clone());
                }
            }
            tables.roster.extend(roster_rows(agent_id, state));
            tables.assignments.extend(assignment_rows(agent_id, state));
            tables
                .pending_cancellations
                .extend(pending_rows(agent_id, state));
            tables.agent_profiles.extend(profile_row(agent_id, state));
            tables
                .supervisor_facts
                .extend(state.supervision.values().cloned());
        }
        tables
            .supervisor_facts
            .extend(self.reference.supervision.values().cloned());
        tables
            .supervisor_facts
            .sort_by(|a, b| (&a.event_id, &a.source).cmp(&(&b.event_id, &b.source)));
        for versions in self.reference.targets.values() {
            if let Some((_, target)) = versions.last() {
                tables.targets.push(target.clone());
            }
        }
        tables
            .targets
            .sort_by(|a, b| (a.scope, &a.scope_id, a.month).cmp(&(b.scope, &b.scope_id, b.month)));
        tables.teams = self.reference.teams.values().flat_map(team_rows).collect();
        tables.outlets = self
            .reference
            .outlets
            .keys()
            .filter_map(|o| self.outlet_row(o))
            .collect();
        tables.team_day = team_days(&tables.agent_day);
        tables.calendar_days = self
            .reference
            .calendar
            .keys()
            .filter_map(|date| self.calendar_day_row(*date))
            .collect();
        tables
    }

    /// The declaration in force for `date`: the latest.
    fn calendar_day_row(&self, date: NaiveDate) -> Option<CalendarDayRow> {
        let (key, day) = self.reference.calendar.get(&date)?.last()?;
        Some(CalendarDayRow {
            business_date: date,
            kind: day.kind,
            name: day.name.clone(),
            event_id: key.2.clone(),
        })
    }

    /// The definition of `team_id` in force on `date`.
    fn team_on(&self, team_id: &str, date: NaiveDate) -> Option<&TeamRow> {
        let (_, versions) = self
            .reference
            .teams
            .get(team_id)?
            .range(..=Some(date))
            .next_back()?;
        versions.last().map(|(_, team)| team)
    }

    fn outlet_row(&self, outlet_id: &str) -> Option<OutletRow> {
        let (_, outlet) = self.reference.outlets.get(outlet_id)?.last()?;
        Some(outlet.clone())
    }

    fn agent_day(&self, agent_id: &str, state: &AgentState, date: NaiveDate) -> AgentDay {
        let day = state.cells.day(date);
        self.agent_day_of(agent_id, state, date, day.as_deref())
    }

    /// The agent's day `date` whose cells are `day`.
    fn agent_day_of(
        &self,
        agent_id: &str,
        state: &AgentState,
        date: NaiveDate,
        day: Option<&DayCells>,
    ) -> AgentDay {
        let mut counters = Counters::default();
        for cell in day.into_iter().flat_map(DayCells::values) {
            counters.add(cell);
        }
        let team_id = value_on(&state.memberships, date)
            .cloned()
            .flatten()
            .unwrap_or_default();
        let (branch_id, region_id) = self
            .team_on(&team_id, date)
            .map(|t| (t.branch_id.clone(), t.region_id.clone()))
            .unwrap_or_default();
        AgentDay {
            agent_id: agent_id.to_owned(),
            business_date: date,
            team_id,
            branch_id,
            region_id,
            counters,
        }
    }

    /// The rows changed since the previous call, and forgets the changes.
    pub fn take_changes(&mut self) -> LedgerChanges {
        let dirty = std::mem::take(&mut self.dirty);
        let mut changes = LedgerChanges::default();
        for (agent_id, cells) in in_agent_order(dirty.cells) {
            // An agent is never forgotten while its changes wait (`retain_agents`).
            let Some(state) = self.agents.get(&agent_id) else {
                continue;
            };
            let first = changes.agent_outlet_day.len();
            for (date, place) in cells {
                let counters = state
                    .cells
                    .day(date)
                    .and_then(|day| day.get(&place).copied())
                    .unwrap_or_default();
                changes.agent_outlet_day.push(AgentOutletDay {
                    agent_id: agent_id.clone(),
                    outlet_id: state.outlets.name(place).to_owned(),
                    business_date: date,
                    counters,
                });
            }
            in_key_order(&mut changes.agent_outlet_day[first..]);
        }
        let mut days: BTreeMap<String, BTreeSet<NaiveDate>> =
            dirty.agent_days.into_iter().collect();
        for (agent_id, state) in &self.agents {
            if dirty.retag_agents.contains(agent_id) {
                days.entry(agent_id.clone())
                    .or_default()
                    .extend(state.cells.dates());
            } else if !dirty.retag_teams.is_empty() {
                let retagged = days_of_changed_teams(state, &dirty.retag_teams);
                if !retagged.is_empty() {
                    days.entry(agent_id.clone()).or_default().extend(retagged);
                }
            }
        }
        for (agent_id, dates) in days {
            let state = self.agents.get(&agent_id);
            for date in dates {
                match state {
                    Some(state) => changes
                        .agent_day
                        .push(self.agent_day(&agent_id, state, date)),
                    None => changes.agent_day.push(AgentDay {
                        agent_id: agent_id.clone(),
                        business_date: date,
                        team_id: String::new(),
                        branch_id: String::new(),
                        region_id: String::new(),
                        counters: Counters::default(),
                    }),
                }
            }
        }
        for (agent_id, start, end) in dirty.plans {
            let current = self
                .agents
                .get(&agent_id)
                .and_then(|s| s.plans.get(&(start, end)))
                .and_then(|v| v.last());
            match current {
                Some((key, plan)) => changes.plans.push(PlanRow {
                    agent_id,
                    period_start: start,
                    period_end: end,
                    visits: plan.visits,
                    consultations: plan.consultations,
                    sales: plan.sales,
                    event_id: key.2.clone(),
                }),
                None => changes.deleted_plans.push((agent_id, start, end)),
            }
        }
        for key in dirty.targets {
            let versions = if key.0 == Scope::Agent {
                self.agents.get(&key.1).and_then(|s| s.targets.get(&key.2))
            } else {
                self.reference.targets.get(&key)
            };
            match versions.and_then(|v| v.last()) {
                Some((_, target)) => changes.targets.push(target.clone()),
                None => changes.deleted_targets.push(key),
            }
        }
        for agent_id in dirty.rosters {
            if let Some(state) = self.agents.get_mut(&agent_id) {
                let rows = roster_rows(&agent_id, state);
                let now: BTreeSet<NaiveDate> = rows.iter().map(|r| r.valid_from).collect();
                changes.deleted_roster.extend(
                    state
                        .published_roster
                        .difference(&now)
                        .map(|d| (agent_id.clone(), *d)),
                );
                state.published_roster = now;
                changes.roster.extend(rows);
                changes.roster_agents.push(agent_id);
            }
        }
        for agent_id in dirty.assignments {
            if let Some(state) = self.agents.get_mut(&agent_id) {
                let rows = assignment_rows(&agent_id, state);
                let now: BTreeSet<(String, NaiveDate)> = rows
                    .iter()
                    .map(|r| (r.outlet_id.clone(), r.valid_from))
                    .collect();
                changes.deleted_assignments.extend(
                    state
                        .published_assignments
                        .difference(&now)
                        .map(|(o, d)| (agent_id.clone(), o.clone(), *d)),
                );
                state.published_assignments = now;
                changes.assignments.extend(rows);
                changes.assignment_agents.push(agent_id);
            }
        }
        for agent_id in dirty.pending {
            if let Some(state) = self.agents.get(&agent_id) {
                changes
                    .pending_cancellations
                    .extend(pending_rows(&agent_id, state));
            }
            changes.pending_agents.push(agent_id);
        }
        for agent_id in dirty.profiles {
            match self
                .agents
                .get(&agent_id)
                .and_then(|state| profile_row(&agent_id, state))
            {
                Some(row) => changes.agent_profiles.push(row),
                None => changes.deleted_agent_profiles.push(agent_id),
            }
        }
        for team_id in dirty.teams {
            let rows: Vec<TeamRow> = self
                .reference
                .teams
                .get(&team_id)
                .map(team_rows)
                .unwrap_or_default();
            let now: BTreeSet<Option<NaiveDate>> = rows.iter().map(|r| r.effective_from).collect();
            let before = self
                .reference
                .published_teams
                .remove(&team_id)
                .unwrap_or_default();
            changes
                .deleted_teams
                .extend(before.difference(&now).map(|date| (team_id.clone(), *date)));
            if !now.is_empty() {
                self.reference.published_teams.insert(team_id, now);
            }
            changes.teams.extend(rows);
        }
        changes.outlets = dirty
            .outlets
            .iter()
            .filter_map(|o| self.outlet_row(o))
            .collect();
        for date in dirty.calendar_days {
            match self.calendar_day_row(date) {
                Some(row) => changes.calendar_days.push(row),
                None => changes.deleted_calendar_days.push(date),
            }
        }
        for (agent_id, key) in dirty.supervisor_facts {
            let facts = match agent_id.as_str() {
                "" => Some(&self.reference.supervision),
                agent => self.agents.get(agent).map(|state| &state.supervision),
            };
            match facts.and_then(|facts| facts.get(&key)) {
                Some(row) => changes.supervisor_facts.push(row.clone()),
                None => changes
                    .deleted_supervisor_facts
                    .push((agent_id, key.source, key.id)),
            }
        }
        changes
    }

    /// Number of agents held.
    pub fn agent_count(&self) -> usize {
        self.agents.len()
    }
}

/// One team's definitions: by effective date (`None`: from the beginning), then by version.
type TeamVersions = BTreeMap<Option<NaiveDate>, Versions<VersionKey, TeamRow>>;

/// The rows of one team: at each effective date, the latest definition.
fn team_rows(versions: &TeamVersions) -> Vec<TeamRow> {
    versions
        .values()
        .filter_map(|at_date| at_date.last().map(|(_, team)| team.clone()))
        .collect()
}

/// The days of an agent spent in a team whose definitions changed, on or after the earliest
/// date changed: the only days whose branch and region can have moved.
fn days_of_changed_teams(
    state: &AgentState,
    changed: &BTreeMap<String, Option<NaiveDate>>,
) -> BTreeSet<NaiveDate> {
    let mut days = BTreeSet::new();
    for date in state.cells.dates() {
        let Some(Some(team)) = value_on(&state.memberships, date) else {
            continue;
        };
        if let Some(from) = changed.get(team)
            && from.is_none_or(|from| date >= from)
        {
            days.insert(date);
        }
    }
    days
}

impl Dirty {
    /// A definition of `team` effective from `effective_from` came or went.
    fn team_changed(&mut self, team: &str, effective_from: Option<NaiveDate>) {
        self.teams.insert(team.to_owned());
        self.retag_teams
            .entry(team.to_owned())
            .and_modify(|earliest| *earliest = (*earliest).min(effective_from))
            .or_insert(effective_from);
    }
}

fn team_row(team: &TeamDefined) -> TeamRow {
    TeamRow {
        team_id: team.team_id.clone(),
        effective_from: team.effective_from,
        team_name: team.team_name.clone(),
        branch_id: team.branch_id.clone(),
        branch_name: team.branch_name.clone(),
        region_id: team.region_id.clone(),
        region_name: team.region_name.clone(),
        supervisor_id: team.supervisor_id.clone(),
    }
}

fn target_row(target: &aqs_schemas::event::Target, month: YearMonth, event_id: &str) -> TargetRow {
    TargetRow {
        scope: target.scope,
        scope_id: target.scope_id.clone(),
        month,
        premium: target.premium,
        outlet_activity_rate: target.outlet_activity_rate,
        visits: target.visits,
        consultations: target.consultations,
        sales: target.sales,
        event_id: event_id.to_owned(),
    }
}

/// The agent's name in force: the latest profile, else the latest join with a name.
fn profile_row(agent_id: &str, state: &AgentState) -> Option<AgentProfileRow> {
    let (key, name, origin) = match state.profiles.last() {
        Some((key, name)) => (key, name, EventType::AgentProfile),
        None => {
            let (key, name) = state.joined_names.last()?;
            (key, name, EventType::AgentJoinedTeam)
        }
    };
    Some(AgentProfileRow {
        agent_id: agent_id.to_owned(),
        display_name: name.clone(),
        origin,
        event_id: key.2.clone(),
    })
}

/// The version part of a timeline key (a join's place among the agent's joins by version).
fn version_of(key: &TimelineKey) -> VersionKey {
    (key.1, key.2, key.3.clone(), key.4.clone())
}

fn plan_rows(agent_id: &str, state: &AgentState) -> Vec<PlanRow> {
    state
        .plans
        .iter()
        .filter_map(|((start, end), versions)| {
            let (key, plan) = versions.last()?;
            Some(PlanRow {
                agent_id: agent_id.to_owned(),
                period_start: *start,
                period_end: *end,
                visits: plan.visits,
                consultations: plan.consultations,
                sales: plan.sales,
                event_id: key.2.clone(),
            })
        })
        .collect()
}

fn roster_rows(agent_id: &str, state: &AgentState) -> Vec<RosterRow> {
    timeline_runs(&state.memberships)
        .into_iter()
        .filter_map(|(from, to, team)| {
            Some(RosterRow {
                agent_id: agent_id.to_owned(),
                team_id: team?,
                valid_from: from,
                valid_to: to,
            })
        })
        .collect()
}

fn assignment_rows(agent_id: &str, state: &AgentState) -> Vec<AssignmentRow> {
    let mut rows = Vec::new();
    for (outlet, timeline) in &state.assignments {
        for (from, to, assigned) in timeline_runs(timeline) {
            if assigned {
                rows.push(AssignmentRow {
                    agent_id: agent_id.to_owned(),
                    outlet_id: outlet.clone(),
                    valid_from: from,
                    valid_to: to,
                });
            }
        }
    }
    rows
}

fn pending_rows(agent_id: &str, state: &AgentState) -> Vec<PendingCancellation> {
    let mut rows = Vec::new();
    for (policy, cancellations) in &state.cancellations_by_policy {
        for (event, c) in cancellations {
            if c.attributed.is_none() {
                rows.push(PendingCancellation {
                    agent_id: agent_id.to_owned(),
                    event_id: event.id.clone(),
                    policy_id: policy.clone(),
                    business_date: c.date,
                    refund: c.refund,
                });
            }
        }
    }
    rows
}

fn team_days(agent_days: &[AgentDay]) -> Vec<TeamDay> {
    let mut by_key: BTreeMap<(String, NaiveDate), TeamDay> = BTreeMap::new();
    for day in agent_days.iter().filter(|d| !d.team_id.is_empty()) {
        let row = by_key
            .entry((day.team_id.clone(), day.business_date))
            .or_insert_with(|| TeamDay {
                team_id: day.team_id.clone(),
                business_date: day.business_date,
                branch_id: day.branch_id.clone(),
                region_id: day.region_id.clone(),
                agents_active: 0,
                counters: Counters::default(),
            });
        row.agents_active += 1;
        row.counters.add(&day.counters);
    }
    by_key.into_values().collect()
}

/// Sorts one agent's cell rows by date, then outlet id: a cell names its outlet by its place,
/// which follows the order the agent first worked there, while the rows follow the table's
/// key.
fn in_key_order(rows: &mut [AgentOutletDay]) {
    rows.sort_unstable_by(|a, b| {
        (a.business_date, &a.outlet_id).cmp(&(b.business_date, &b.outlet_id))
    });
}

/// Whether `delta` fits into the cell (`date`, outlet at `place`) and into the agent's day
/// total. Only money can come near the bounds, so only deltas with money are checked.
fn fits(
    cells: &Cells,
    date: NaiveDate,
    place: u32,
    delta: &Counters,
    field: &'static str,
) -> Result<(), MoneyOverflow> {
    if !delta.has_money() {
        return Ok(());
    }
    let overflow = |sum| MoneyOverflow { field, sum };
    let mut day = Counters::default();
    let mut cell = Counters::default();
    let cells_of_day = cells.day(date);
    for (other, counters) in cells_of_day.iter().flat_map(|day| day.iter()) {
        day = day.checked_add(counters).ok_or(overflow("agent × day"))?;
        if *other == place {
            cell = *counters;
        }
    }
    cell.checked_add(delta)
        .ok_or(overflow("agent × outlet × day"))?;
    day.checked_add(delta).ok_or(overflow("agent × day"))?;
    Ok(())
}

/// Adds (or, with `add` false, takes back) a contribution. An addition of money must have
/// been found to [`fits`] first.
fn add_to_cell(
    cells: &mut Cells,
    agent_id: &str,
    date: NaiveDate,
    place: u32,
    delta: &Counters,
    add: bool,
    dirty: &mut Dirty,
) {
    let cells = cells.month_mut(date);
    let mut cell = cells
        .get(&date)
        .and_then(|day| day.get(&place))
        .copied()
        .unwrap_or_default();
    if add {
        cell.add(delta);
    } else {
        cell.subtract(delta);
    }
    // A cell back at zero is dropped, and its day with it when it was the day's last.
    if cell.is_zero() {
        if let Entry::Occupied(mut day) = cells.entry(date) {
            day.get_mut().remove(&place);
            if day.get().is_empty() {
                day.remove();
            }
        }
    } else {
        let day = cells
            .entry(date)
            .or_insert_with(|| DayCells::with_capacity(1));
        match day.get_mut(&place) {
            Some(stored) => *stored = cell,
            None => {
                day.insert(place, cell);
            }
        }
    }
    marked(&mut dirty.cells, agent_id).insert((date, place));
    marked(&mut dirty.agent_days, agent_id).insert(date);
}

/// The entries of a map by agent, sorted by agent id.
fn in_agent_order<T>(by_agent: HashMap<String, T>) -> Vec<(String, T)> {
    let mut entries: Vec<(String, T)> = by_agent.into_iter().collect();
    entries.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
    entries
}

/// The entry of an agent, made on first use (the id is copied only then).
fn marked<'a, T: Default>(by_agent: &'a mut impl AgentMap<T>, agent_id: &str) -> &'a mut T {
    if !by_agent.has(agent_id) {
        by_agent.put(agent_id.to_owned(), T::default());
    }
    by_agent.get_mut_of(agent_id).expect("inserted above")
}

/// The maps keyed by agent id that [`marked`] serves.
trait AgentMap<T> {
    fn has(&self, agent_id: &str) -> bool;
    fn put(&mut self, agent_id: String, value: T);
    fn get_mut_of(&mut self, agent_id: &str) -> Option<&mut T>;
}

macro_rules! agent_map {
    ($($map:ident),*) => {$(
        impl<T> AgentMap<T> for $map<String, T> {
            fn has(&self, agent_id: &str) -> bool {
                self.contains_key(agent_id)
            }
            fn put(&mut self, agent_id: String, value: T) {
                self.insert(agent_id, value);
            }
            fn get_mut_of(&mut self, agent_id: &str) -> Option<&mut T> {
                self.get_mut(agent_id)
            }
        }
    )*};
}

agent_map!(BTreeMap, HashMap);

/// The outlet a policy's refunds count on: the first (by event id, then source)
/// non-retracted sale's, by its place among the agent's outlets.
fn policy_outlet(state: &AgentState, policy: &str) -> Option<u32> {
    state
        .sales_by_policy
        .get(policy)
        .and_then(|sales| sales.values().next().copied())
}

/// Moves the refunds of a policy's cancellations to where they belong now.
fn reattribute(state: &mut AgentState, agent_id: &str, policy: &str, dirty: &mut Dirty) {
    let outlet = policy_outlet(state, policy);
    // Only those that move are copied: a policy with many cancellations stays cheap.
    let moving: Vec<(EventKey, CancellationState)> = match state.cancellations_by_policy.get(policy)
    {
        Some(cancellations) => cancellations
            .iter()
            .filter(|(_, c)| c.attributed != outlet)
            .map(|(key, c)| (key.clone(), c.clone()))
            .collect(),
        None => return,
    };
    for (key, c) in moving {
        let delta = refund_delta(c.refund);
        if let Some(old) = c.attributed {
            add_to_cell(
                &mut state.cells,
                agent_id,
                c.date,
                old,
                &delta,
                false,
                dirty,
            );
        }
        // A refund that no longer fits where it belongs now stays pending: listed, counted
        // nowhere (only possible with thousands of the largest refunds in one day).
        let attributed = match outlet {
            Some(new) if fits(&state.cells, c.date, new, &delta, "refund").is_ok() => {
                add_to_cell(&mut state.cells, agent_id, c.date, new, &delta, true, dirty);
                Some(new)
            }
            _ => None,
        };
        if let Some(entry) = state
            .cancellations_by_policy
            .get_mut(policy)
            .and_then(|m| m.get_mut(&key))
        {
            entry.attributed = attributed;
        }
        dirty.pending.insert(agent_id.to_owned());
    }
}

fn refund_delta(refund: Money) -> Counters {
    Counters {
        cancellations: 1,
        refunds: refund,
        ..Counters::default()
    }
}

/// Adds an activity's counters to its cell, once they are found to fit, or with `add` false
/// takes them back.
fn count_activity(
    state: &mut AgentState,
    agent_id: &str,
    activity: &Activity,
    add: bool,
    dirty: &mut Dirty,
) -> Result<(), MoneyOverflow> {
    let delta = activity.contribution.counters();
    if add {
        fits(
            &state.cells,
            activity.date,
            activity.outlet,
            &delta,
            "premium",
        )?;
    }
    add_to_cell(
        &mut state.cells,
        agent_id,
        activity.date,
        activity.outlet,
        &delta,
        add,
        dirty,
    );
    Ok(())
}

/// Applies an accepted fact; refuses it, changing nothing, when its money would overflow a
/// ledger sum.
fn do_agent_fact(
    state: &mut AgentState,
    agent_id: &str,
    (source, event_id): (&str, &str),
    fact: &AgentFact,
    payload: &Payload,
    dirty: &mut Dirty,
) -> Result<(), MoneyOverflow> {
    match fact {
        AgentFact::Activity(activity) => {
            count_activity(state, agent_id, activity, true, dirty)?;
            if let Some(policy) = &activity.policy {
                state
                    .sales_by_policy
                    .entry(policy.to_string())
                    .or_insert_with(first_version)
                    .insert(EventKey::new(source, event_id), activity.outlet);
                reattribute(state, agent_id, policy, dirty);
            }
        }
        AgentFact::Cancellation(cancellation) => {
            let (date, policy, refund) = (
                &cancellation.date,
                &cancellation.policy,
                &cancellation.refund,
            );
            if let Some(outlet) = policy_outlet(state, policy) {
                fits(
                    &state.cells,
                    *date,
                    outlet,
                    &refund_delta(*refund),
                    "refund",
                )?;
            }
            state
                .cancellations_by_policy
                .entry(policy.clone())
                .or_insert_with(first_version)
                .insert(
                    EventKey::new(source, event_id),
                    CancellationState {
                        date: *date,
                        refund: *refund,
                        attributed: None,
                    },
                );
            dirty.pending.insert(agent_id.to_owned());
            reattribute(state, agent_id, policy, dirty);
        }
        AgentFact::Membership(key) => {
            let team = match payload {
                Payload::AgentJoinedTeam(join) => {
                    if let Some(name) = &join.agent_name {
                        state.joined_names.insert(version_of(key), name.clone());
                        dirty.profiles.insert(agent_id.to_owned());
                    }
                    Some(join.team_id.clone())
                }
                _ => None,
            };
            state.memberships.insert(key.as_ref().clone(), team);
            dirty.rosters.insert(agent_id.to_owned());
            dirty.retag_agents.insert(agent_id.to_owned());
        }
        AgentFact::Assignment(assignment) => {
            let (outlet, key) = assignment.as_ref();
            let assigned = matches!(payload, Payload::OutletAssigned(_));
            state
                .assignments
                .entry(outlet.clone())
                .or_insert_with(first_version)
                .insert(key.clone(), assigned);
            dirty.assignments.insert(agent_id.to_owned());
        }
        AgentFact::Plan(plan_fact) => {
            let (period, key) = plan_fact.as_ref();
            if let Payload::ActivityPlan(plan) = payload {
                state
                    .plans
                    .entry(*period)
                    .or_insert_with(first_version)
                    .insert(
                        key.clone(),
                        PlanCounts {
                            visits: plan.visits,
                            consultations: plan.consultations,
                            sales: plan.sales,
                        },
                    );
                dirty
                    .plans
                    .insert((agent_id.to_owned(), period.0, period.1));
            }
        }
        AgentFact::Target(target_fact) => {
            let (month, key) = target_fact.as_ref();
            if let Payload::Target(target) = payload {
                state
                    .targets
                    .entry(*month)
                    .or_insert_with(first_version)
                    .insert(key.clone(), target_row(target, *month, &key.2));
                dirty
                    .targets
                    .insert((Scope::Agent, agent_id.to_owned(), *month));
            }
        }
        AgentFact::Profile(key) => {
            if let Payload::AgentProfile(profile) = payload {
                state
                    .profiles
                    .insert(key.as_ref().clone(), profile.display_name.clone());
                dirty.profiles.insert(agent_id.to_owned());
            }
        }
        AgentFact::Supervision => {}
    }
    Ok(())
}

/// Takes back an accepted fact of `source`; false when this agent holds no such fact.
fn undo_agent_fact(
    state: &mut AgentState,
    agent_id: &str,
    source: &str,
    event_id: &str,
    dirty: &mut Dirty,
) -> bool {
    let Some(fact) = state
        .seen
        .get_mut(source, event_id)
        .and_then(|sighting| sighting.fact.take())
    else {
        return false;
    };
    let key = || EventKey::new(source, event_id);
    match fact {
        AgentFact::Activity(activity) => {
            // Taking a contribution back never overflows: only additions are checked.
            let _ = count_activity(state, agent_id, &activity, false, dirty);
            if let Some(policy) = activity.policy {
                let policy: &str = &policy;
                if let Some(sales) = state.sales_by_policy.get_mut(policy) {
                    sales.remove(&key());
                    if sales.is_empty() {
                        state.sales_by_policy.remove(policy);
                    }
                }
                reattribute(state, agent_id, policy, dirty);
            }
        }
        AgentFact::Cancellation(cancellation) => {
            let CancellationFact {
                date,
                policy,
                refund,
            } = *cancellation;
            let removed = state
                .cancellations_by_policy
                .get_mut(&policy)
                .and_then(|m| m.remove(&key()));
            if state
                .cancellations_by_policy
                .get(&policy)
                .is_some_and(|versions| versions.is_empty())
            {
                state.cancellations_by_policy.remove(&policy);
            }
            if let Some(CancellationState {
                attributed: Some(place),
                ..
            }) = removed
            {
                add_to_cell(
                    &mut state.cells,
                    agent_id,
                    date,
                    place,
                    &refund_delta(refund),
                    false,
                    dirty,
                );
            }
            dirty.pending.insert(agent_id.to_owned());
        }
        AgentFact::Membership(key) => {
            let key = *key;
            if state.joined_names.remove(&version_of(&key)).is_some() {
                dirty.profiles.insert(agent_id.to_owned());
            }
            state.memberships.remove(&key);
            dirty.rosters.insert(agent_id.to_owned());
            dirty.retag_agents.insert(agent_id.to_owned());
        }
        AgentFact::Assignment(assignment) => {
            let (outlet, key) = *assignment;
            if let Some(timeline) = state.assignments.get_mut(&outlet) {
                timeline.remove(&key);
                if timeline.is_empty() {
                    state.assignments.remove(&outlet);
                }
            }
            dirty.assignments.insert(agent_id.to_owned());
        }
        AgentFact::Plan(plan) => {
            let (period, key) = *plan;
            if let Some(versions) = state.plans.get_mut(&period) {
                versions.remove(&key);
                if versions.is_empty() {
                    state.plans.remove(&period);
                }
            }
            dirty
                .plans
                .insert((agent_id.to_owned(), period.0, period.1));
        }
        AgentFact::Target(target) => {
            let (month, key) = *target;
            if let Some(versions) = state.targets.get_mut(&month) {
                versions.remove(&key);
                if versions.is_empty() {
                    state.targets.remove(&month);
                }
            }
            dirty
                .targets
                .insert((Scope::Agent, agent_id.to_owned(), month));
        }
        AgentFact::Profile(key) => {
            state.profiles.remove(&*key);
            dirty.profiles.insert(agent_id.to_owned());
        }
        AgentFact::Supervision => {
            state.supervision.remove(&key());
            dirty.supervisor_facts.insert((agent_id.to_owned(), key()));
        }
    }
    true
}

fn undo_reference_fact(
    reference: &mut ReferenceState,
    source: &str,
    event_id: &str,
    dirty: &mut Dirty,
) -> bool {
    let Some(fact) = reference.facts.remove(source, event_id) else {
        return false;
    };
    match fact {
        ReferenceFact::Team {
            team,
            effective_from,
            key,
        } => {
            if let Some(dates) = reference.teams.get_mut(&team) {
                if let Some(versions) = dates.get_mut(&effective_from) {
                    versions.remove(&key);
                    if versions.is_empty() {
                        dates.remove(&effective_from);
                    }
                }
                if dates.is_empty() {
                    reference.teams.remove(&team);
                }
            }
            dirty.team_changed(&team, effective_from);
        }
        ReferenceFact::Outlet { outlet, key } => {
            if let Some(versions) = reference.outlets.get_mut(&outlet) {
                versions.remove(&key);
                if versions.is_empty() {
                    reference.outlets.remove(&outlet);
                }
            }
            dirty.outlets.insert(outlet);
        }
        ReferenceFact::Target { key, version } => {
            if let Some(versions) = reference.targets.get_mut(&key) {
                versions.remove(&version);
                if versions.is_empty() {
                    reference.targets.remove(&key);
                }
            }
            dirty.targets.insert(key);
        }
        ReferenceFact::CalendarDay { date, key } => {
            if let Some(versions) = reference.calendar.get_mut(&date) {
                versions.remove(&key);
                if versions.is_empty() {
                    reference.calendar.remove(&date);
                }
            }
            dirty.calendar_days.insert(date);
        }
        ReferenceFact::Supervision => {
            let key = EventKey::new(source, event_id);
            reference.supervision.remove(&key);
            dirty.supervisor_facts.insert((String::new(), key));
        }
    }
    true
}

#[cfg(test)]
mod tests;
