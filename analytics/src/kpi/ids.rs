//! Ids as dense numbers: agents, teams, branches, regions and outlets are each numbered
//! from 0 in order of first sight, and the four scopes share one number space (the scope
//! keys), so that every table the job keeps per scope is a plain vector.

use aqs_schemas::event::Scope;
use polars::prelude::PlHashMap;

/// No number: a missing team, branch, region or row.
pub(crate) const NONE: u32 = u32::MAX;

/// The ids of one kind, numbered in order of first sight.
#[derive(Default)]
pub(crate) struct IdNumbers<'a> {
    numbers: PlHashMap<&'a str, u32>,
    ids: Vec<&'a str>,
    // Ledger rows come grouped by agent, so the id just looked up is often the next one.
    last: Option<(&'a str, u32)>,
}

impl<'a> IdNumbers<'a> {
    pub(crate) fn number(&mut self, id: &'a str) -> u32 {
        // The ledger's reader shares an id between the rows that repeat it: the same
        // address and length is the same id, without comparing its bytes.
        if let Some((last, number)) = self.last
            && (std::ptr::eq(last, id) || last == id)
        {
            return number;
        }
        let next = self.ids.len() as u32;
        let number = *self.numbers.entry(id).or_insert(next);
        if number == next {
            self.ids.push(id);
        }
        self.last = Some((id, number));
        number
    }

    /// The id's number, `NONE` for no id.
    pub(crate) fn optional(&mut self, id: Option<&'a str>) -> u32 {
        id.map_or(NONE, |id| self.number(id))
    }

    /// The number of an id already numbered, without numbering it.
    pub(crate) fn get(&self, id: &str) -> Option<u32> {
        self.numbers.get(id).copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn id(&self, number: u32) -> &'a str {
        self.ids[number as usize]
    }

    /// The numbers in the byte order of their ids (the order of the output's rows).
    pub(crate) fn in_id_order(&self) -> Vec<u32> {
        let mut numbers: Vec<u32> = (0..self.ids.len() as u32).collect();
        numbers.sort_unstable_by_key(|n| self.ids[*n as usize]);
        numbers
    }
}

/// Which definition of each team is in force on each day of the window, and the branch and
/// region numbers of each definition: a team that moves counts for its old parents before
/// the move and for its new ones from it.
#[derive(Debug, Clone, Default)]
pub(crate) struct TeamParents {
    days: usize,
    /// Per team and day: the definition in force (`NONE`: none).
    definition: Vec<u32>,
    /// Per definition: branch and region numbers (`NONE`: unknown or empty).
    parents: Vec<[u32; 2]>,
}

impl TeamParents {
    /// `definition` has `days` entries per team; `parents` one per definition.
    pub(crate) fn new(days: usize, definition: Vec<u32>, parents: Vec<[u32; 2]>) -> Self {
        debug_assert!(days == 0 || definition.len().is_multiple_of(days));
        Self {
            days,
            definition,
            parents,
        }
    }

    /// The definition of `team` in force on `day` (`NONE`: none, or no team).
    pub(crate) fn definition_on(&self, team: u32, day: u32) -> u32 {
        if team == NONE {
            return NONE;
        }
        self.definition
            .get(team as usize * self.days + day as usize)
            .copied()
            .unwrap_or(NONE)
    }

    /// The branch and region numbers of `team` on `day` (`NONE` where unknown).
    pub(crate) fn on(&self, team: u32, day: u32) -> [u32; 2] {
        match self.definition_on(team, day) {
            NONE => [NONE; 2],
            definition => self.parents[definition as usize],
        }
    }
}

/// Scope keys: agents' numbers, then teams', branches' and regions' after them.
#[derive(Debug, Clone)]
pub(crate) struct ScopeKeys {
    teams: u32,
    branches: u32,
    regions: u32,
    end: u32,
    team_parents: TeamParents,
}

impl ScopeKeys {
    /// Keys for the numbers of each kind, with the teams' parents by day.
    pub(crate) fn new(
        [agents, teams, branches, regions]: [usize; 4],
        team_parents: TeamParents,
    ) -> Self {
        let teams_from = agents as u32;
        let branches_from = teams_from + teams as u32;
        let regions_from = branches_from + branches as u32;
        Self {
            teams: teams_from,
            branches: branches_from,
            regions: regions_from,
            end: regions_from + regions as u32,
            team_parents,
        }
    }

    /// How many keys there are.
    pub(crate) fn len(&self) -> usize {
        self.end as usize
    }

    /// The key of a scope's number (`NONE` for `NONE`).
    pub(crate) fn of(&self, scope: Scope, number: u32) -> u32 {
        if number == NONE {
            return NONE;
        }
        number
            + match scope {
                Scope::Agent => 0,
                Scope::Team => self.teams,
                Scope::Branch => self.branches,
                Scope::Region => self.regions,
            }
    }

    /// The scope and its number of a key.
    pub(crate) fn split(&self, key: u32) -> (Scope, u32) {
        if key < self.teams {
            (Scope::Agent, key)
        } else if key < self.branches {
            (Scope::Team, key - self.teams)
        } else if key < self.regions {
            (Scope::Branch, key - self.branches)
        } else {
            (Scope::Region, key - self.regions)
        }
    }

    /// The branch and region numbers of a team on a day (`NONE` where unknown).
    pub(crate) fn team_parents(&self, team: u32, day: u32) -> [u32; 2] {
        self.team_parents.on(team, day)
    }

    /// The team definition in force on a day (row of `LedgerData::teams`; `NONE`: none).
    pub(crate) fn team_definition_on(&self, team: u32, day: u32) -> u32 {
        self.team_parents.definition_on(team, day)
    }

    /// The scopes an agent counts for on a day while on a team: itself, the team and the
    /// branch and region of the team's definition in force that day (`NONE` where unknown).
    pub(crate) fn of_agent(&self, agent: u32, team: u32, day: u32) -> [u32; 4] {
        let [branch, region] = self.team_parents(team, day);
        [
            agent,
            self.of(Scope::Team, team),
            self.of(Scope::Branch, branch),
            self.of(Scope::Region, region),
        ]
    }

    /// The scopes of an agent's day as the ledger tagged it with team, branch and region.
    pub(crate) fn of_tagged(&self, agent: u32, [team, branch, region]: [u32; 3]) -> [u32; 4] {
        [
            agent,
            self.of(Scope::Team, team),
            self.of(Scope::Branch, branch),
            self.of(Scope::Region, region),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_numbered_in_order_of_first_sight_and_listed_in_byte_order() {
        let mut agents = IdNumbers::default();
        assert_eq!(
            ["A2", "A10", "A2", "A1", "A10"].map(|id| agents.number(id)),
            [0, 1, 0, 2, 1]
        );
        assert_eq!(agents.optional(None), NONE);
        assert_eq!(agents.get("A1"), Some(2));
        assert_eq!(agents.get("A3"), None);
        assert_eq!(agents.len(), 3);
        assert_eq!(agents.id(2), "A1");
        // "A1" < "A10" < "A2" byte by byte.
        assert_eq!(agents.in_id_order(), [2, 1, 0]);
    }

    #[test]
    fn scope_keys_share_one_number_space() {
        // Two agents, two teams, one branch, one region; team 1 has no branch or region.
        // One day; team 0 has definition 0, team 1 none.
        let parents = TeamParents::new(1, vec![0, NONE], vec![[0, 0]]);
        let keys = ScopeKeys::new([2, 2, 1, 1], parents);
        assert_eq!(keys.len(), 6);
        assert_eq!(keys.of(Scope::Team, 1), 3);
        assert_eq!(keys.of(Scope::Region, NONE), NONE);
        assert_eq!(keys.split(4), (Scope::Branch, 0));
        assert_eq!(keys.of_agent(1, 0, 0), [1, 2, 4, 5]);
        assert_eq!(keys.of_agent(1, 1, 0), [1, 3, NONE, NONE]);
        assert_eq!(keys.of_agent(0, NONE, 0), [0, NONE, NONE, NONE]);
        assert_eq!(keys.of_tagged(0, [1, 0, NONE]), [0, 3, 4, NONE]);
    }

    #[test]
    fn a_team_counts_for_the_parents_in_force_on_the_day() {
        // Three days; team 0 under branch 0 on day 0 and 1, under branch 1 from day 2.
        let parents = TeamParents::new(3, vec![0, 0, 1], vec![[0, 0], [1, 0]]);
        let keys = ScopeKeys::new([1, 1, 2, 1], parents);
        assert_eq!(keys.of_agent(0, 0, 1), [0, 1, 2, 4]);
        assert_eq!(keys.of_agent(0, 0, 2), [0, 1, 3, 4]);
    }
}
