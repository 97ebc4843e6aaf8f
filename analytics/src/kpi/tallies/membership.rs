//! Distinct outlets assigned and agents on the roster per scope and period, from runs of
//! days ([`crate::spans`]), never from one row per day and scope.

use super::super::facts::LedgerFacts;
use super::super::ids::{NONE, ScopeKeys};
use super::super::window::Periods;
use crate::spans::{DistinctCounts, Span, SpanIndex, distinct_per_period};

/// Who counted for which scope on which days, and the distinct counts per period.
pub(crate) struct Membership {
    /// Outlets per scope key and run of days: an agent's own assignments, and its team's,
    /// branch's and region's over the days the agent belonged to them.
    pub(crate) assigned: SpanIndex,
    /// Per kind of period: distinct outlets assigned per scope key and period.
    pub(crate) assigned_outlets: [DistinctCounts; 3],
    /// Per kind of period: distinct agents on the roster of each team, branch and region.
    pub(crate) roster_agents: [DistinctCounts; 3],
}

impl Membership {
    pub(crate) fn count(facts: &LedgerFacts<'_>, keys: &ScopeKeys, periods: &[Periods; 3]) -> Self {
        let assigned = SpanIndex::new(assigned_spans(facts, keys), facts.outlets.len());
        let assigned_outlets = periods
            .each_ref()
            .map(|p| distinct_per_period(assigned.spans(), keys.len(), &p.index));
        let roster = SpanIndex::new(roster_spans(facts, keys), facts.agents.len());
        let roster_agents = periods
            .each_ref()
            .map(|p| distinct_per_period(roster.spans(), keys.len(), &p.index));
        Self {
            assigned,
            assigned_outlets,
            roster_agents,
        }
    }
}

/// Outlet assignments per scope: the agent's own, and its team's, branch's and region's
/// over the days it belonged to them (runs of days with the same team and the same
/// definition of the team in force).
fn assigned_spans(facts: &LedgerFacts<'_>, keys: &ScopeKeys) -> Vec<Span> {
    let mut spans = Vec::with_capacity(facts.assignments.len() * 4);
    for assignment in &facts.assignments {
        let (agent, outlet) = (assignment.agent, assignment.outlet);
        spans.push(Span {
            member: outlet,
            group: agent,
            first: assignment.first,
            last: assignment.last,
        });
        let mut from = assignment.first;
        while from <= assignment.last {
            let team = facts.roster_team(agent, from);
            let definition = facts.team_parents.definition_on(team, from);
            let mut to = from;
            while to < assignment.last
                && facts.roster_team(agent, to + 1) == team
                && facts.team_parents.definition_on(team, to + 1) == definition
            {
                to += 1;
            }
            for &group in &keys.of_agent(agent, team, from)[1..] {
                if group != NONE {
                    spans.push(Span {
                        member: outlet,
                        group,
                        first: from,
                        last: to,
                    });
                }
            }
            from = to + 1;
        }
    }
    spans
}

/// Agents on the roster of teams, branches and regions: a stint counts for the branch and
/// region of each definition of its team in force during it.
fn roster_spans(facts: &LedgerFacts<'_>, keys: &ScopeKeys) -> Vec<Span> {
    let mut spans = Vec::with_capacity(facts.roster.len() * 3);
    for stint in &facts.roster {
        let mut from = stint.first;
        while from <= stint.last {
            let definition = facts.team_parents.definition_on(stint.team, from);
            let mut to = from;
            while to < stint.last
                && facts.team_parents.definition_on(stint.team, to + 1) == definition
            {
                to += 1;
            }
            for &group in &keys.of_agent(stint.agent, stint.team, from)[1..] {
                if group != NONE {
                    spans.push(Span {
                        member: stint.agent,
                        group,
                        first: from,
                        last: to,
                    });
                }
            }
            from = to + 1;
        }
    }
    spans
}
