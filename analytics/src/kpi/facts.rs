//! The ledger rows as facts with numbered ids and days, and who belonged where each day.

use aqs_schemas::event::Scope;

use super::both;
use super::ids::{IdNumbers, NONE, ScopeKeys, TeamParents};
use super::window::DayWindow;
use crate::data::LedgerData;

/// An agent's day of the ledger.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AgentDayFact {
    pub(crate) agent: u32,
    pub(crate) day: u32,
    /// Team, branch and region as the ledger tagged the day.
    pub(crate) tags: [u32; 3],
    /// The row in `LedgerData::agent_days`.
    pub(crate) row: u32,
}

/// An agent's day at an outlet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutletDayFact {
    pub(crate) outlet: u32,
    pub(crate) agent: u32,
    pub(crate) day: u32,
    pub(crate) visited: bool,
    pub(crate) sold: bool,
}

/// An outlet assigned to an agent on the days `first..=last`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Assignment {
    pub(crate) agent: u32,
    pub(crate) outlet: u32,
    pub(crate) first: u32,
    pub(crate) last: u32,
}

/// An agent on a team's roster on the days `first..=last`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RosterStint {
    pub(crate) agent: u32,
    pub(crate) team: u32,
    pub(crate) first: u32,
    pub(crate) last: u32,
}

/// The ledger rows of the window with numbered ids and days.
pub(crate) struct LedgerFacts<'a> {
    pub(crate) window: DayWindow,
    pub(crate) agents: IdNumbers<'a>,
    pub(crate) teams: IdNumbers<'a>,
    pub(crate) branches: IdNumbers<'a>,
    pub(crate) regions: IdNumbers<'a>,
    pub(crate) outlets: IdNumbers<'a>,
    /// Per team and day: the definition of the teams table in force, and its branch and
    /// region numbers (`NONE`: unknown or empty).
    pub(crate) team_parents: TeamParents,
    /// Per definition (row of `LedgerData::teams`): branch and region ids as it spells them.
    pub(crate) team_definition_ids: Vec<(&'a str, &'a str)>,
    pub(crate) agent_days: Vec<AgentDayFact>,
    pub(crate) outlet_days: Vec<OutletDayFact>,
    pub(crate) assignments: Vec<Assignment>,
    pub(crate) roster: Vec<RosterStint>,
    /// Per plan of `LedgerData::plans`: its agent.
    pub(crate) plan_agents: Vec<u32>,
    /// Per target of `LedgerData::targets`: its scope and the scope's number.
    pub(crate) target_scopes: Vec<(Scope, u32)>,
    /// Per agent and day: the team of the first roster interval holding the day.
    roster_team: Vec<u32>,
    /// Per agent and day: its fact in `agent_days`, if the window has one.
    agent_day: Vec<u32>,
}

impl<'a> LedgerFacts<'a> {
    pub(crate) fn read(data: &'a LedgerData, window: DayWindow) -> Self {
        let mut agents = IdNumbers::default();
        let mut teams = IdNumbers::default();
        let mut branches = IdNumbers::default();
        let mut regions = IdNumbers::default();
        let mut outlets = IdNumbers::default();

        let mut team_definition_ids = Vec::with_capacity(data.teams.len());
        let mut definition_parents = Vec::with_capacity(data.teams.len());
        let mut definition_teams = Vec::with_capacity(data.teams.len());
        for team in &data.teams {
            definition_teams.push(teams.number(&team.team_id));
            team_definition_ids.push((team.branch_id.as_str(), team.region_id.as_str()));
            let non_empty = |id: &'a str| (!id.is_empty()).then_some(id);
            definition_parents.push([
                branches.optional(non_empty(&team.branch_id)),
                regions.optional(non_empty(&team.region_id)),
            ]);
        }

        // The outlet days (the most rows) are numbered on a thread of their own, their
        // agents apart; those agents then take their numbers here in the order the outlet
        // days first name them, which gives every id the number it would have had in one
        // pass over the agent days and then the outlet days.
        let ((mut outlet_days, outlet_agents), agent_days) = both(
            || outlet_day_facts(data, &window, &mut outlets),
            || {
                data.agent_days
                    .iter()
                    .enumerate()
                    .filter_map(|(row, r)| {
                        Some(AgentDayFact {
                            day: window.day(r.date)?,
                            agent: agents.number(&r.agent_id),
                            tags: [
                                teams.optional(r.team_id.as_deref()),
                                branches.optional(r.branch_id.as_deref()),
                                regions.optional(r.region_id.as_deref()),
                            ],
                            row: row as u32,
                        })
                    })
                    .collect::<Vec<_>>()
            },
        );
        let agent_numbers: Vec<u32> = (0..outlet_agents.len() as u32)
            .map(|apart| agents.number(outlet_agents.id(apart)))
            .collect();
        for fact in &mut outlet_days {
            fact.agent = agent_numbers[fact.agent as usize];
        }
        let assignments = data
            .assignments
            .iter()
            .filter_map(|i| {
                let (first, last) = window.interval(i)?;
                Some(Assignment {
                    agent: agents.number(&i.agent_id),
                    outlet: outlets.number(&i.key),
                    first,
                    last,
                })
            })
            .collect();
        // Every roster interval numbers its agent and team, in the window or not.
        let roster: Vec<_> = data
            .roster
            .iter()
            .map(|i| {
                (
                    agents.number(&i.agent_id),
                    teams.number(&i.key),
                    window.interval(i),
                )
            })
            .collect();
        let plan_agents = data
            .plans
            .iter()
            .map(|p| agents.number(&p.agent_id))
            .collect();
        let target_scopes = data
            .targets
            .iter()
            .map(|t| {
                let ids = match t.scope {
                    Scope::Agent => &mut agents,
                    Scope::Team => &mut teams,
                    Scope::Branch => &mut branches,
                    Scope::Region => &mut regions,
                };
                (t.scope, ids.number(&t.scope_id))
            })
            .collect();
        let days = window.days;
        let team_parents = TeamParents::new(
            days,
            definitions_by_day(data, &window, &definition_teams, teams.len()),
            definition_parents,
        );
        let mut roster_team = vec![NONE; agents.len() * days];
        // Backwards, so that the first interval holding a day has the last word.
        for &(agent, team, span) in roster.iter().rev() {
            if let Some((first, last)) = span {
                let base = agent as usize * days;
                roster_team[base + first as usize..=base + last as usize].fill(team);
            }
        }
        let mut agent_day = vec![NONE; agents.len() * days];
        for (index, fact) in agent_days.iter().enumerate() {
            agent_day[fact.agent as usize * days + fact.day as usize] = index as u32;
        }
        let roster = roster
            .into_iter()
            .filter_map(|(agent, team, span)| {
                span.map(|(first, last)| RosterStint {
                    agent,
                    team,
                    first,
                    last,
                })
            })
            .collect();
        Self {
            window,
            agents,
            teams,
            branches,
            regions,
            outlets,
            team_parents,
            team_definition_ids,
            agent_days,
            outlet_days,
            assignments,
            roster,
            plan_agents,
            target_scopes,
            roster_team,
            agent_day,
        }
    }

    /// The scope keys of these facts' ids.
    pub(crate) fn scope_keys(&self) -> ScopeKeys {
        ScopeKeys::new(
            [
                self.agents.len(),
                self.teams.len(),
                self.branches.len(),
                self.regions.len(),
            ],
            self.team_parents.clone(),
        )
    }

    /// The agent's team on a day by the roster (`NONE`: on none).
    pub(crate) fn roster_team(&self, agent: u32, day: u32) -> u32 {
        self.roster_team[agent as usize * self.window.days + day as usize]
    }

    /// The agent's fact of a day in `agent_days`, `NONE` when it has none.
    pub(crate) fn agent_day(&self, agent: u32, day: u32) -> u32 {
        self.agent_day[agent as usize * self.window.days + day as usize]
    }

    /// The agent's team on a day as its activity counts: the ledger's tag when the agent
    /// has a row that day, else the roster.
    pub(crate) fn activity_team(&self, agent: u32, day: u32) -> u32 {
        match self.agent_day(agent, day) {
            NONE => self.roster_team(agent, day),
            fact => self.agent_days[fact as usize].tags[0],
        }
    }
}

/// The outlet days of the window as facts, their outlets numbered in `outlets` and their
/// agents in numbers of their own (returned beside them).
fn outlet_day_facts<'a>(
    data: &'a LedgerData,
    window: &DayWindow,
    outlets: &mut IdNumbers<'a>,
) -> (Vec<OutletDayFact>, IdNumbers<'a>) {
    let mut agents = IdNumbers::default();
    let facts = data
        .outlet_days
        .iter()
        .filter_map(|r| {
            Some(OutletDayFact {
                day: window.day(r.date)?,
                agent: agents.number(&r.agent_id),
                outlet: outlets.number(&r.outlet_id),
                visited: r.visits > 0,
                sold: r.sales > 0,
            })
        })
        .collect();
    (facts, agents)
}

/// Per team and day of the window: the row of `data.teams` in force (`NONE`: none), the
/// one with the greatest effective date on or before the day (the readers give one row per
/// team and effective date). A definition effective before the window holds from its first
/// day; one effective after it holds on none of its days.
fn definitions_by_day(
    data: &LedgerData,
    window: &DayWindow,
    definition_teams: &[u32],
    teams: usize,
) -> Vec<u32> {
    let days = window.days;
    let mut in_force = vec![NONE; teams * days];
    let mut order: Vec<usize> = (0..data.teams.len()).collect();
    order.sort_by_key(|&row| data.teams[row].effective_from);
    for row in order {
        let effective_from = data.teams[row].effective_from;
        let first = if effective_from <= window.first {
            0
        } else {
            match window.day(effective_from) {
                Some(day) => day as usize,
                None => continue,
            }
        };
        let base = definition_teams[row] as usize * days;
        in_force[base + first..base + days].fill(row as u32);
    }
    in_force
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpi::tallies::tests::{agent_day, date, outlet_day};

    #[test]
    fn outlet_days_numbered_apart_name_the_same_agents_as_one_pass_would() {
        // A3 has outlet days and no agent day; A1 and A2 are first named in the other
        // order by the outlet days than by the agent days.
        let data = LedgerData {
            agent_days: vec![
                agent_day("A2", "2026-11-02", "T1"),
                agent_day("A1", "2026-11-02", "T1"),
            ],
            outlet_days: vec![
                outlet_day("A3", "O9", "2026-11-02", 1, 0),
                outlet_day("A1", "O1", "2026-11-02", 1, 0),
                outlet_day("A2", "O2", "2026-11-02", 1, 0),
                outlet_day("A3", "O1", "2026-11-03", 1, 0),
            ],
            ..LedgerData::default()
        };
        let facts = LedgerFacts::read(
            &data,
            DayWindow::new(date("2026-11-01"), date("2026-11-30")),
        );
        let numbered: Vec<&str> = (0..facts.agents.len() as u32)
            .map(|n| facts.agents.id(n))
            .collect();
        assert_eq!(
            numbered,
            ["A2", "A1", "A3"],
            "agent days first, then outlet days"
        );
        let named: Vec<(&str, &str)> = facts
            .outlet_days
            .iter()
            .map(|f| (facts.agents.id(f.agent), facts.outlets.id(f.outlet)))
            .collect();
        assert_eq!(
            named,
            [("A3", "O9"), ("A1", "O1"), ("A2", "O2"), ("A3", "O1")]
        );
    }
}
