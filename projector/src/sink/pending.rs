//! Changes waiting for a store, coalesced by row key.
//!
//! While a store is slow or down, the changes handed to it are merged: a newer row replaces
//! the older one of the same key, a tombstone replaces a row and a row a tombstone, and an
//! agent's roster, assignments or pending cancellations (replaced whole by every change) keep
//! only the newest list with every interval that left it since the store's last write. The
//! merged set, written once with the newest positions as versions, leaves the store exactly
//! as writing every change in turn would: each row's content is its newest, and the newest
//! positions cover it.
//!
//! Memory stays bounded by the number of distinct ledger rows changed since the store's last
//! successful write, never by the number of events or of publishes.

use std::collections::{BTreeMap, BTreeSet};

use aqs_schemas::YearMonth;
use aqs_schemas::event::Scope;
use chrono::NaiveDate;

use crate::ledger::{
    AgentDay, AgentOutletDay, AgentProfileRow, AssignmentRow, CalendarDayRow, LedgerChanges,
    OutletRow, PendingCancellation, PlanRow, RosterRow, SupervisorFact, TargetRow, TeamRow,
};

/// An agent's intervals replaced whole: the current rows, and the keys that left them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Intervals<R, K> {
    rows: Vec<R>,
    removed: BTreeSet<K>,
}

/// Changes keyed by row, newest content per key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingChanges {
    agent_outlet_day: BTreeMap<(String, String, NaiveDate), AgentOutletDay>,
    agent_day: BTreeMap<(String, NaiveDate), AgentDay>,
    /// `None`: a tombstone.
    plans: BTreeMap<(String, NaiveDate, NaiveDate), Option<PlanRow>>,
    targets: BTreeMap<(Scope, String, YearMonth), Option<TargetRow>>,
    roster: BTreeMap<String, Intervals<RosterRow, NaiveDate>>,
    assignments: BTreeMap<String, Intervals<AssignmentRow, (String, NaiveDate)>>,
    pending: BTreeMap<String, Vec<PendingCancellation>>,
    /// `None`: a tombstone.
    profiles: BTreeMap<String, Option<AgentProfileRow>>,
    /// By team and effective date; `None`: a tombstone.
    teams: BTreeMap<(String, Option<NaiveDate>), Option<TeamRow>>,
    outlets: BTreeMap<String, OutletRow>,
    /// `None`: a tombstone.
    calendar_days: BTreeMap<NaiveDate, Option<CalendarDayRow>>,
    /// By (event id, source): the agent the fact is about (empty: none) and the fact,
    /// `None` for a tombstone.
    supervisor_facts: BTreeMap<(String, String), (String, Option<SupervisorFact>)>,
}

impl PendingChanges {
    pub fn is_empty(&self) -> bool {
        self.rows() == 0
    }

    /// Rows (and tombstones) held: what a write of them would insert, about.
    pub fn rows(&self) -> usize {
        self.agent_outlet_day.len()
            + self.agent_day.len()
            + self.plans.len()
            + self.targets.len()
            + self
                .roster
                .values()
                .map(|i| i.rows.len() + i.removed.len())
                .sum::<usize>()
            + self
                .assignments
                .values()
                .map(|i| i.rows.len() + i.removed.len())
                .sum::<usize>()
            // An agent's list counts at least once: replacing it writes tombstones.
            + self.pending.values().map(|l| l.len().max(1)).sum::<usize>()
            + self.profiles.len()
            + self.teams.len()
            + self.outlets.len()
            + self.calendar_days.len()
            + self.supervisor_facts.len()
    }

    /// Merges `newer`, handed over after everything merged so far.
    pub fn merge(&mut self, newer: &LedgerChanges) {
        for row in &newer.agent_outlet_day {
            self.agent_outlet_day.insert(
                (
                    row.agent_id.clone(),
                    row.outlet_id.clone(),
                    row.business_date,
                ),
                row.clone(),
            );
        }
        for row in &newer.agent_day {
            self.agent_day
                .insert((row.agent_id.clone(), row.business_date), row.clone());
        }
        for row in &newer.plans {
            self.plans.insert(
                (row.agent_id.clone(), row.period_start, row.period_end),
                Some(row.clone()),
            );
        }
        for key in &newer.deleted_plans {
            self.plans.insert(key.clone(), None);
        }
        for row in &newer.targets {
            self.targets.insert(
                (row.scope, row.scope_id.clone(), row.month),
                Some(row.clone()),
            );
        }
        for key in &newer.deleted_targets {
            self.targets.insert(key.clone(), None);
        }
        replace_intervals(
            &mut self.roster,
            &newer.roster_agents,
            &newer.roster,
            |row| (row.agent_id.as_str(), row.valid_from),
            newer
                .deleted_roster
                .iter()
                .map(|(agent, from)| (agent.as_str(), *from)),
        );
        replace_intervals(
            &mut self.assignments,
            &newer.assignment_agents,
            &newer.assignments,
            |row| {
                (
                    row.agent_id.as_str(),
                    (row.outlet_id.clone(), row.valid_from),
                )
            },
            newer
                .deleted_assignments
                .iter()
                .map(|(agent, outlet, from)| (agent.as_str(), (outlet.clone(), *from))),
        );
        for agent in &newer.pending_agents {
            self.pending.insert(agent.clone(), Vec::new());
        }
        for row in &newer.pending_cancellations {
            self.pending
                .entry(row.agent_id.clone())
                .or_default()
                .push(row.clone());
        }
        for row in &newer.agent_profiles {
            self.profiles
                .insert(row.agent_id.clone(), Some(row.clone()));
        }
        for agent in &newer.deleted_agent_profiles {
            self.profiles.insert(agent.clone(), None);
        }
        for row in &newer.teams {
            self.teams
                .insert((row.team_id.clone(), row.effective_from), Some(row.clone()));
        }
        for key in &newer.deleted_teams {
            self.teams.insert(key.clone(), None);
        }
        for row in &newer.outlets {
            self.outlets.insert(row.outlet_id.clone(), row.clone());
        }
        for row in &newer.calendar_days {
            self.calendar_days
                .insert(row.business_date, Some(row.clone()));
        }
        for date in &newer.deleted_calendar_days {
            self.calendar_days.insert(*date, None);
        }
        for row in &newer.supervisor_facts {
            self.supervisor_facts.insert(
                (row.event_id.clone(), row.source.clone()),
                (row.agent_id.clone(), Some(row.clone())),
            );
        }
        for (agent, source, event_id) in &newer.deleted_supervisor_facts {
            self.supervisor_facts
                .insert((event_id.clone(), source.clone()), (agent.clone(), None));
        }
    }

    /// The merged changes, in the form a store writes.
    pub fn to_changes(&self) -> LedgerChanges {
        let mut changes = LedgerChanges {
            agent_outlet_day: self.agent_outlet_day.values().cloned().collect(),
            agent_day: self.agent_day.values().cloned().collect(),
            outlets: self.outlets.values().cloned().collect(),
            ..LedgerChanges::default()
        };
        for (key, row) in &self.plans {
            match row {
                Some(row) => changes.plans.push(row.clone()),
                None => changes.deleted_plans.push(key.clone()),
            }
        }
        for (key, row) in &self.targets {
            match row {
                Some(row) => changes.targets.push(row.clone()),
                None => changes.deleted_targets.push(key.clone()),
            }
        }
        for (key, row) in &self.teams {
            match row {
                Some(row) => changes.teams.push(row.clone()),
                None => changes.deleted_teams.push(key.clone()),
            }
        }
        for (date, row) in &self.calendar_days {
            match row {
                Some(row) => changes.calendar_days.push(row.clone()),
                None => changes.deleted_calendar_days.push(*date),
            }
        }
        for ((event_id, source), (agent, row)) in &self.supervisor_facts {
            match row {
                Some(row) => changes.supervisor_facts.push(row.clone()),
                None => changes.deleted_supervisor_facts.push((
                    agent.clone(),
                    source.clone(),
                    event_id.clone(),
                )),
            }
        }
        for (agent, row) in &self.profiles {
            match row {
                Some(row) => changes.agent_profiles.push(row.clone()),
                None => changes.deleted_agent_profiles.push(agent.clone()),
            }
        }
        for (agent, intervals) in &self.roster {
            changes.roster_agents.push(agent.clone());
            changes.roster.extend(intervals.rows.iter().cloned());
            changes
                .deleted_roster
                .extend(intervals.removed.iter().map(|from| (agent.clone(), *from)));
        }
        for (agent, intervals) in &self.assignments {
            changes.assignment_agents.push(agent.clone());
            changes.assignments.extend(intervals.rows.iter().cloned());
            changes.deleted_assignments.extend(
                intervals
                    .removed
                    .iter()
                    .map(|(outlet, from)| (agent.clone(), outlet.clone(), *from)),
            );
        }
        for (agent, rows) in &self.pending {
            changes.pending_agents.push(agent.clone());
            changes.pending_cancellations.extend(rows.iter().cloned());
        }
        changes
    }
}

impl From<&LedgerChanges> for PendingChanges {
    fn from(changes: &LedgerChanges) -> Self {
        let mut pending = Self::default();
        pending.merge(changes);
        pending
    }
}

/// Replaces the intervals of every agent in `agents` by `rows`; a key that left the rows
/// (now or in an earlier change not yet written) stays removed unless it is back.
fn replace_intervals<'a, R: Clone, K: Ord + Clone>(
    by_agent: &mut BTreeMap<String, Intervals<R, K>>,
    agents: &[String],
    rows: &'a [R],
    key_of: impl Fn(&'a R) -> (&'a str, K),
    removed: impl Iterator<Item = (&'a str, K)>,
) {
    for agent in agents {
        let entry = by_agent.entry(agent.clone()).or_insert_with(|| Intervals {
            rows: Vec::new(),
            removed: BTreeSet::new(),
        });
        entry.rows.clear();
    }
    for (agent, key) in removed {
        if let Some(entry) = by_agent.get_mut(agent) {
            entry.removed.insert(key);
        }
    }
    for row in rows {
        let (agent, key) = key_of(row);
        if let Some(entry) = by_agent.get_mut(agent) {
            entry.removed.remove(&key);
            entry.rows.push(row.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use aqs_eventlog::{PartitionId, Positions};
    use aqs_schemas::generator::{GeneratorConfig, generate};
    use aqs_schemas::{BusinessClock, Decoder};

    use super::*;
    use crate::ledger::{Ledger, digest};
    use crate::sink::sqlite::SqliteSink;
    use crate::sink::{LedgerSink, RowVersions};

    const PARTITIONS: u32 = 3;

    /// A month of a small region full of retractions, transfers and cancellations, folded
    /// in batches: each batch's changes and the positions after it.
    fn batches(size: usize) -> Vec<(LedgerChanges, Positions)> {
        let config = GeneratorConfig {
            late_share: 0.1,
            duplicate_share: 0.05,
            retraction_share: 0.08,
            cancellation_share: 0.2,
            ..GeneratorConfig::new(3, 16, "2026-11-02".parse().expect("date"), 20)
        };
        let mut bytes = Vec::new();
        generate(&config, &mut bytes).expect("generate");
        let mut ledger = Ledger::new(BusinessClock::default());
        let mut positions = Positions::new();
        let mut out = Vec::new();
        let lines: Vec<&[u8]> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        for chunk in lines.chunks(size) {
            for line in chunk {
                let event = Decoder::standard().decode(line).expect("valid");
                *positions
                    .entry(PartitionId::of(&event, PARTITIONS))
                    .or_insert(0) += 1;
                ledger.apply(&event, digest(line));
            }
            out.push((ledger.take_changes(), positions.clone()));
        }
        out
    }

    fn store() -> (tempfile::TempDir, SqliteSink) {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = SqliteSink::open(&dir.path().join("ledgers.db")).expect("store");
        (dir, sink)
    }

    #[test]
    fn merged_changes_written_once_equal_every_change_written_in_turn() {
        let batches = batches(150);
        assert!(batches.len() > 10, "{} batches", batches.len());
        let (_one, mut each) = store();
        for (changes, positions) in &batches {
            each.publish(changes, &RowVersions::new(positions, PARTITIONS))
                .expect("publish");
        }
        let expected = each.dump().expect("dump");

        // A store that was down after the third batch until the end: the rest merged.
        let (_two, mut merged) = store();
        let mut pending = PendingChanges::default();
        for (index, (changes, positions)) in batches.iter().enumerate() {
            if index < 3 {
                merged
                    .publish(changes, &RowVersions::new(positions, PARTITIONS))
                    .expect("publish");
            } else {
                pending.merge(changes);
            }
        }
        let last = &batches.last().expect("batches").1;
        assert!(pending.rows() > 0);
        merged
            .publish(&pending.to_changes(), &RowVersions::new(last, PARTITIONS))
            .expect("publish");
        pretty_assertions::assert_eq!(merged.dump().expect("dump"), expected);
    }

    #[test]
    fn merging_keeps_one_row_per_key() {
        let batches = batches(40);
        let mut pending = PendingChanges::default();
        let mut handed = 0;
        for (changes, _) in &batches {
            handed += changes.agent_outlet_day.len();
            pending.merge(changes);
        }
        let merged = pending.to_changes();
        let keys: BTreeSet<_> = merged
            .agent_outlet_day
            .iter()
            .map(|r| (&r.agent_id, &r.outlet_id, r.business_date))
            .collect();
        assert_eq!(keys.len(), merged.agent_outlet_day.len());
        assert!(
            merged.agent_outlet_day.len() < handed,
            "rows changed again and again are held once: {} of {handed}",
            merged.agent_outlet_day.len()
        );
    }

    #[test]
    fn an_interval_removed_then_back_is_a_row_and_one_removed_stays_a_tombstone() {
        let row = |from: &str| RosterRow {
            agent_id: "A1".into(),
            team_id: "T1".into(),
            valid_from: from.parse().expect("date"),
            valid_to: None,
        };
        let older = LedgerChanges {
            roster_agents: vec!["A1".into()],
            roster: vec![row("2026-11-05")],
            deleted_roster: vec![("A1".into(), "2026-11-01".parse().expect("date"))],
            ..LedgerChanges::default()
        };
        let newer = LedgerChanges {
            roster_agents: vec!["A1".into()],
            roster: vec![row("2026-11-01")],
            deleted_roster: vec![("A1".into(), "2026-11-05".parse().expect("date"))],
            ..LedgerChanges::default()
        };
        let mut pending = PendingChanges::from(&older);
        pending.merge(&newer);
        let merged = pending.to_changes();
        assert_eq!(merged.roster, vec![row("2026-11-01")]);
        assert_eq!(
            merged.deleted_roster,
            vec![("A1".to_owned(), "2026-11-05".parse().expect("date"))]
        );
    }

    #[test]
    fn a_team_definition_date_retracted_after_it_was_handed_over_stays_a_tombstone() {
        let row = |from: Option<&str>, branch: &str| TeamRow {
            team_id: "T1".into(),
            effective_from: from.map(|d| d.parse().expect("date")),
            team_name: "T1".into(),
            branch_id: branch.into(),
            branch_name: None,
            region_id: "R1".into(),
            region_name: None,
            supervisor_id: None,
        };
        let older = LedgerChanges {
            teams: vec![row(None, "B1"), row(Some("2026-11-15"), "B2")],
            ..LedgerChanges::default()
        };
        let newer = LedgerChanges {
            teams: vec![row(None, "B1")],
            deleted_teams: vec![("T1".into(), Some("2026-11-15".parse().expect("date")))],
            ..LedgerChanges::default()
        };
        let mut pending = PendingChanges::from(&older);
        pending.merge(&newer);
        let merged = pending.to_changes();
        assert_eq!(merged.teams, vec![row(None, "B1")]);
        assert_eq!(merged.deleted_teams, newer.deleted_teams);
    }
}
