//! Which agent, team and branch an outlet counts for on a date: the assignment in force
//! (dated), the agent's team that day (the roster), the team's definition in force that
//! day (dated team definitions).

use std::collections::BTreeMap;

use aqs_tables::ledgers::window::{Interval, Team};
use aqs_tables::outlets::source::OutletLedgerData;
use chrono::NaiveDate;

/// The assignments, roster and team definitions, indexed for questions by date.
pub(crate) struct Ownership<'d> {
    assignments: BTreeMap<&'d str, Vec<&'d Interval>>,
    roster: BTreeMap<&'d str, Vec<&'d Interval>>,
    teams: BTreeMap<&'d str, Vec<&'d Team>>,
}

/// Where an outlet reports on a date.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Owner {
    pub agent_id: Option<String>,
    pub team_id: Option<String>,
    pub branch_id: Option<String>,
    pub region_id: Option<String>,
}

impl<'d> Ownership<'d> {
    pub(crate) fn new(data: &'d OutletLedgerData) -> Self {
        let mut assignments: BTreeMap<&str, Vec<&Interval>> = BTreeMap::new();
        for assignment in &data.assignments {
            assignments
                .entry(assignment.key.as_str())
                .or_default()
                .push(assignment);
        }
        let mut roster: BTreeMap<&str, Vec<&Interval>> = BTreeMap::new();
        for membership in &data.roster {
            roster
                .entry(membership.agent_id.as_str())
                .or_default()
                .push(membership);
        }
        let mut teams: BTreeMap<&str, Vec<&Team>> = BTreeMap::new();
        for team in &data.teams {
            teams.entry(team.team_id.as_str()).or_default().push(team);
        }
        for definitions in teams.values_mut() {
            definitions.sort_by_key(|team| team.effective_from);
        }
        Self {
            assignments,
            roster,
            teams,
        }
    }

    /// The outlets assigned on at least one day of `first..=last`.
    pub(crate) fn outlets_assigned_within(
        &self,
        first: NaiveDate,
        last: NaiveDate,
    ) -> impl Iterator<Item = &'d str> + '_ {
        self.assignments
            .iter()
            .filter(move |(_, held)| held.iter().any(|a| overlaps(a, first, last)))
            .map(|(outlet, _)| *outlet)
    }

    /// Whether the outlet is assigned to an agent on `day`.
    pub(crate) fn is_assigned(&self, outlet: &str, day: NaiveDate) -> bool {
        self.assignments
            .get(outlet)
            .is_some_and(|held| held.iter().any(|a| a.contains(day)))
    }

    /// The first day the outlet was ever assigned, on or before `last`.
    pub(crate) fn first_assigned(&self, outlet: &str, last: NaiveDate) -> Option<NaiveDate> {
        self.assignments
            .get(outlet)?
            .iter()
            .map(|a| a.from)
            .filter(|from| *from <= last)
            .min()
    }

    /// The last day of `first..=last` on which the outlet was assigned.
    pub(crate) fn last_assigned_day(
        &self,
        outlet: &str,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Option<NaiveDate> {
        self.assignments
            .get(outlet)?
            .iter()
            .filter(|a| overlaps(a, first, last))
            .map(|a| match a.to {
                Some(to) => (to.pred_opt().expect("a day before")).min(last),
                None => last,
            })
            .max()
    }

    /// Where the outlet reports on `day`: the assignment in force with the later start,
    /// then the smaller agent id; that agent's team on the day (the membership with the
    /// later start); that team's definition in force on the day.
    pub(crate) fn owner_on(&self, outlet: &str, day: NaiveDate) -> Owner {
        let Some(assignment) = self.assignments.get(outlet).and_then(|held| {
            held.iter().filter(|a| a.contains(day)).max_by(|a, b| {
                a.from
                    .cmp(&b.from)
                    .then_with(|| b.agent_id.cmp(&a.agent_id))
            })
        }) else {
            return Owner::default();
        };
        let agent = assignment.agent_id.as_str();
        let team = self.team_of(agent, day);
        let (branch_id, region_id) = team
            .and_then(|team| self.parents_of(team, day))
            .map_or((None, None), |(branch, region)| {
                (Some(branch.to_owned()), Some(region.to_owned()))
            });
        Owner {
            agent_id: Some(agent.to_owned()),
            team_id: team.map(str::to_owned),
            branch_id,
            region_id,
        }
    }

    /// The agent's team on `day`.
    fn team_of(&self, agent: &str, day: NaiveDate) -> Option<&'d str> {
        self.roster
            .get(agent)?
            .iter()
            .filter(|m| m.contains(day))
            .max_by_key(|m| m.from)
            .map(|m| m.key.as_str())
    }

    /// The branch and region of the team's definition in force on `day`.
    pub(crate) fn parents_of(&self, team: &str, day: NaiveDate) -> Option<(&'d str, &'d str)> {
        self.teams
            .get(team)?
            .iter()
            .rev()
            .find(|definition| definition.effective_from <= day)
            .map(|definition| (definition.branch_id.as_str(), definition.region_id.as_str()))
    }
}

fn overlaps(interval: &Interval, first: NaiveDate, last: NaiveDate) -> bool {
    interval.from <= last && interval.to.is_none_or(|to| to > first)
}
