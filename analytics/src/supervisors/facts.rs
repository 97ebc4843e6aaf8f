//! The supervisors' facts and the organisation, indexed for the questions the rows ask:
//! who leads a team on a date, which agents a team has on a date, when an agent was last
//! coached, which evaluation of an agent's month and which review of a measure are in force.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use aqs_tables::ledgers::{RosterRow, SupervisorFactRow, TeamRow};
use aqs_tables::supervisors::source::SupervisorLedgerData;
use chrono::NaiveDate;

pub(super) const COACHING: &str = "coaching_session";
pub(super) const ACCOMPANIED: &str = "accompanied_visit";
pub(super) const MEETING: &str = "team_meeting";
pub(super) const EVALUATION: &str = "skill_will_evaluation";
pub(super) const MEASURE: &str = "improvement_measure";
pub(super) const REVIEW: &str = "improvement_measure_status";

/// The teams each supervisor leads on a day.
type TeamsBySupervisor<'a> = BTreeMap<&'a str, Vec<&'a str>>;
/// Each team's agents on a day.
type AgentsByTeam<'a> = BTreeMap<&'a str, Vec<&'a RosterRow>>;

/// "The latest" between versions of a fact: `occurred_at`, then `event_id`, then `source`.
fn version(fact: &SupervisorFactRow) -> (i64, &str, &str) {
    (fact.occurred_at_ns, &fact.event_id, &fact.source)
}

pub(super) struct Facts<'a> {
    /// Each team's definitions by effective date.
    teams: BTreeMap<&'a str, Vec<&'a TeamRow>>,
    /// Each agent's roster intervals.
    roster: BTreeMap<&'a str, Vec<&'a RosterRow>>,
    /// The facts of each type, ordered by business date.
    by_type: BTreeMap<&'a str, Vec<&'a SupervisorFactRow>>,
    /// Each agent's coaching dates, by any supervisor.
    coached: BTreeMap<&'a str, BTreeSet<NaiveDate>>,
    /// The evaluation in force per agent and month (first day).
    evaluations: BTreeMap<(&'a str, NaiveDate), &'a SupervisorFactRow>,
    /// Each measure's reviews, by (source, measure event id).
    reviews: BTreeMap<(&'a str, &'a str), Vec<&'a SupervisorFactRow>>,
    /// The facts of each type by the supervisor they count for (a meeting: its team's
    /// supervisor on its date), ordered by business date: a supervisor's period is a range.
    owned: BTreeMap<&'a str, BTreeMap<&'a str, Vec<&'a SupervisorFactRow>>>,
    /// Per day asked for: the teams each supervisor leads.
    led: RefCell<HashMap<NaiveDate, Rc<TeamsBySupervisor<'a>>>>,
    /// Per day asked for: each team's agents on the roster, by agent id.
    members: RefCell<HashMap<NaiveDate, Rc<AgentsByTeam<'a>>>>,
}

impl<'a> Facts<'a> {
    pub(super) fn new(data: &'a SupervisorLedgerData) -> Self {
        let mut teams: BTreeMap<&str, Vec<&TeamRow>> = BTreeMap::new();
        for team in &data.teams {
            teams.entry(&team.team_id).or_default().push(team);
        }
        for definitions in teams.values_mut() {
            definitions.sort_by_key(|t| t.effective_from);
        }
        let mut by_type: BTreeMap<&str, Vec<&SupervisorFactRow>> = BTreeMap::new();
        let mut coached: BTreeMap<&str, BTreeSet<NaiveDate>> = BTreeMap::new();
        let mut evaluations: BTreeMap<(&str, NaiveDate), &SupervisorFactRow> = BTreeMap::new();
        let mut reviews: BTreeMap<(&str, &str), Vec<&SupervisorFactRow>> = BTreeMap::new();
        for fact in &data.facts {
            by_type.entry(&fact.event_type).or_default().push(fact);
            match fact.event_type.as_str() {
                COACHING => {
                    coached
                        .entry(&fact.agent_id)
                        .or_default()
                        .insert(fact.business_date);
                }
                EVALUATION => {
                    if let Some(month) = fact.month {
                        let slot = evaluations.entry((&fact.agent_id, month)).or_insert(fact);
                        if version(fact) > version(slot) {
                            *slot = fact;
                        }
                    }
                }
                REVIEW => reviews
                    .entry((&fact.source, &fact.linked_event_id))
                    .or_default()
                    .push(fact),
                _ => {}
            }
        }
        for facts in by_type.values_mut() {
            facts.sort_by_key(|f| f.business_date);
        }
        let mut roster: BTreeMap<&str, Vec<&RosterRow>> = BTreeMap::new();
        for row in &data.roster {
            roster.entry(&row.agent_id).or_default().push(row);
        }
        let mut facts = Self {
            teams,
            roster,
            by_type,
            coached,
            evaluations,
            reviews,
            owned: BTreeMap::new(),
            led: RefCell::default(),
            members: RefCell::default(),
        };
        let mut owned: BTreeMap<&str, BTreeMap<&str, Vec<&SupervisorFactRow>>> = BTreeMap::new();
        for (event_type, list) in &facts.by_type {
            for fact in list {
                let owner = match fact.event_type.as_str() {
                    MEETING => facts.supervisor_of(&fact.team_id, fact.business_date),
                    _ => Some(fact.supervisor_id.as_str()).filter(|s| !s.is_empty()),
                };
                if let Some(owner) = owner {
                    owned
                        .entry(event_type)
                        .or_default()
                        .entry(owner)
                        .or_default()
                        .push(fact);
                }
            }
        }
        facts.owned = owned;
        facts
    }

    /// The facts of `event_type` counting for `supervisor`, dated `first..=last`.
    pub(super) fn dated_of(
        &self,
        event_type: &str,
        supervisor: &str,
        first: NaiveDate,
        last: NaiveDate,
    ) -> &[&'a SupervisorFactRow] {
        let Some(list) = self.owned.get(event_type).and_then(|of| of.get(supervisor)) else {
            return &[];
        };
        let from = list.partition_point(|f| f.business_date < first);
        let to = list.partition_point(|f| f.business_date <= last);
        &list[from..to.max(from)]
    }

    /// Every fact of `event_type` counting for `supervisor`.
    pub(super) fn all_of(&self, event_type: &str, supervisor: &str) -> &[&'a SupervisorFactRow] {
        self.owned
            .get(event_type)
            .and_then(|of| of.get(supervisor))
            .map_or(&[], Vec::as_slice)
    }

    /// The definition of `team` in force on `date`.
    pub(super) fn team_on(&self, team: &str, date: NaiveDate) -> Option<&'a TeamRow> {
        self.teams
            .get(team)?
            .iter()
            .rev()
            .find(|t| t.effective_from <= date)
            .copied()
    }

    /// The supervisor leading `team` on `date`.
    pub(super) fn supervisor_of(&self, team: &str, date: NaiveDate) -> Option<&'a str> {
        self.team_on(team, date)?.supervisor_id.as_deref()
    }

    /// Every supervisor named by a team definition or a fact, sorted.
    pub(super) fn supervisors(&self) -> BTreeSet<&'a str> {
        let from_teams = self
            .teams
            .values()
            .flatten()
            .filter_map(|t| t.supervisor_id.as_deref());
        let from_facts = self
            .by_type
            .values()
            .flatten()
            .map(|f| f.supervisor_id.as_str())
            .filter(|s| !s.is_empty());
        from_teams.chain(from_facts).collect()
    }

    /// The teams `supervisor` leads on `date`, sorted by id.
    pub(super) fn teams_led(&self, supervisor: &str, date: NaiveDate) -> Vec<&'a str> {
        let led = Rc::clone(self.led.borrow_mut().entry(date).or_insert_with(|| {
            let mut led: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for team in self.teams.keys() {
                if let Some(supervisor) = self.supervisor_of(team, date) {
                    led.entry(supervisor).or_default().push(team);
                }
            }
            Rc::new(led)
        }));
        led.get(supervisor).cloned().unwrap_or_default()
    }

    /// The roster interval of `agent` holding `date`: its team and first day.
    pub(super) fn membership(&self, agent: &str, date: NaiveDate) -> Option<&'a RosterRow> {
        self.roster
            .get(agent)?
            .iter()
            .filter(|r| r.valid_from <= date && r.valid_to.is_none_or(|to| date < to))
            .filter(|r| !r.team_id.is_empty())
            .max_by_key(|r| r.valid_from)
            .copied()
    }

    /// The agents on the roster of any of `teams` on `date`, with their interval, sorted.
    pub(super) fn agents_of(&self, teams: &[&str], date: NaiveDate) -> Vec<&'a RosterRow> {
        let members = Rc::clone(self.members.borrow_mut().entry(date).or_insert_with(|| {
            let mut members: BTreeMap<&str, Vec<&RosterRow>> = BTreeMap::new();
            for agent in self.roster.keys() {
                if let Some(held) = self.membership(agent, date) {
                    members.entry(&held.team_id).or_default().push(held);
                }
            }
            Rc::new(members)
        }));
        let mut agents: Vec<&RosterRow> = teams
            .iter()
            .filter_map(|team| members.get(team))
            .flatten()
            .copied()
            .collect();
        agents.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        agents
    }

    /// Every agent on any roster on `date`, sorted.
    pub(super) fn agents_on(&self, date: NaiveDate) -> BTreeSet<&'a str> {
        self.roster
            .keys()
            .filter(|agent| self.membership(agent, date).is_some())
            .copied()
            .collect()
    }

    /// The facts of `event_type` dated `first..=last`.
    pub(super) fn dated(
        &self,
        event_type: &str,
        first: NaiveDate,
        last: NaiveDate,
    ) -> impl Iterator<Item = &'a SupervisorFactRow> + '_ {
        self.by_type
            .get(event_type)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |f| first <= f.business_date && f.business_date <= last)
    }

    /// The latest day on or before `date` on which `agent` was coached, by anyone.
    pub(super) fn last_coached(&self, agent: &str, date: NaiveDate) -> Option<NaiveDate> {
        self.coached.get(agent)?.range(..=date).next_back().copied()
    }

    /// The evaluation of `agent` in force for the month starting on `month`.
    pub(super) fn evaluation(
        &self,
        agent: &str,
        month: NaiveDate,
    ) -> Option<&'a SupervisorFactRow> {
        self.evaluations.get(&(agent, month)).copied()
    }

    /// A measure's status on `date`: its latest review dated on or before it (none: open).
    pub(super) fn status_on(
        &self,
        measure: &SupervisorFactRow,
        date: NaiveDate,
    ) -> Option<&'a str> {
        self.reviews
            .get(&(measure.source.as_str(), measure.event_id.as_str()))?
            .iter()
            .filter(|review| review.business_date <= date)
            .max_by(|a, b| version(a).cmp(&version(b)))
            .map(|review| review.kind.as_str())
    }
}
