//! What each row is about: the scope and its id, the team, branch and region it reports
//! under, the period and its dates, and the working days of the period.

use aqs_schemas::WorkingCalendar;
use aqs_schemas::event::Scope;
use chrono::NaiveDate;
use polars::prelude::*;

use super::super::facts::LedgerFacts;
use super::super::ids::{NONE, ScopeKeys};
use super::super::rows::TableRows;
use super::super::window::Periods;
use super::{Build, dates, ints, optional_strings, strings};
use crate::periods::{WorkingDays, day_number, working_days, working_days_from};

/// The labels of the rows, worked out per scope and per period once. They keep their own
/// copies of the ids (one per scope and team definition, not per row), so that the ledger
/// rows they were read from can be let go before the columns are built.
pub(crate) struct RowLabels<'a> {
    rows: &'a TableRows,
    keys: &'a ScopeKeys,
    /// Per scope key: its scope's name and its id.
    scope: Vec<(&'static str, Box<str>)>,
    /// Per scope key: the team, branch and region ids it reports under (agents and teams:
    /// unused, they report per period).
    parents: Vec<[Option<Box<str>>; 3]>,
    /// Per team definition (row of `LedgerData::teams`): branch and region ids as it
    /// spells them.
    team_definition_ids: Vec<(Box<str>, Box<str>)>,
    /// Per kind of period and period: its last day inside the window.
    last_days: [Vec<u32>; 3],
    /// Per row: the team of an agent row and the day it reports the team's parents of
    /// (`NONE`: none, or not an agent row).
    agent_teams: Vec<(u32, u32)>,
    /// Per kind of period and period: start and end as polars dates, and working days.
    dates: [Vec<(i32, i32)>; 3],
    working_days: [Vec<WorkingDays>; 3],
    /// Per kind of period and period: working days from the as-of date through its end.
    working_days_ahead: [Vec<u32>; 3],
    as_of: NaiveDate,
    /// Teams, and branches: numbers of the groups of peers.
    teams: u64,
    branches: u64,
    /// Per kind of period: the number of its first period among the periods of every kind.
    period_base: [u64; 3],
    /// Periods of every kind.
    all_periods: u64,
}

impl<'a> RowLabels<'a> {
    pub(crate) fn new(
        facts: &LedgerFacts<'_>,
        keys: &'a ScopeKeys,
        periods: &[Periods; 3],
        rows: &'a TableRows,
        calendar: &WorkingCalendar,
        as_of: NaiveDate,
    ) -> Self {
        // A branch reports under the region of the teams table's last row naming it (rows
        // come by team, then effective date).
        let branch_region: PlHashMap<&str, &str> =
            facts.team_definition_ids.iter().copied().collect();
        let mut scope = Vec::with_capacity(keys.len());
        let mut parents = Vec::with_capacity(keys.len());
        for key in 0..keys.len() as u32 {
            let (kind, number) = keys.split(key);
            let (id, of_key) = match kind {
                Scope::Agent => (facts.agents.id(number), [None, None, None]),
                Scope::Team => (facts.teams.id(number), [None, None, None]),
                Scope::Branch => {
                    let branch = facts.branches.id(number);
                    let region = branch_region.get(branch).map(|region| (*region).into());
                    (branch, [None, Some(branch.into()), region])
                }
                Scope::Region => {
                    let region = facts.regions.id(number);
                    (region, [None, None, Some(region.into())])
                }
            };
            scope.push((kind.as_str(), id.into()));
            parents.push(of_key);
        }
        let dates = periods.each_ref().map(|of_kind| {
            of_kind
                .starts
                .iter()
                .map(|start| (day_number(*start), day_number(of_kind.kind.end_of(*start))))
                .collect()
        });
        let working_days = periods.each_ref().map(|of_kind| {
            of_kind
                .starts
                .iter()
                .map(|start| working_days(calendar, of_kind.kind, *start, as_of))
                .collect()
        });
        let working_days_ahead = periods.each_ref().map(|of_kind| {
            of_kind
                .starts
                .iter()
                .map(|start| working_days_from(calendar, of_kind.kind, *start, as_of))
                .collect()
        });
        let lengths = periods.each_ref().map(|of_kind| of_kind.len() as u64);
        Self {
            rows,
            keys,
            scope,
            parents,
            team_definition_ids: facts
                .team_definition_ids
                .iter()
                .map(|(branch, region)| ((*branch).into(), (*region).into()))
                .collect(),
            last_days: periods.each_ref().map(|of_kind| of_kind.last_days.clone()),
            agent_teams: agent_teams(facts, keys, periods, rows),
            dates,
            working_days,
            working_days_ahead,
            as_of,
            teams: facts.teams.len() as u64,
            branches: facts.branches.len() as u64,
            period_base: [0, lengths[0], lengths[0] + lengths[1]],
            all_periods: lengths.iter().sum(),
        }
    }

    /// A row's peers and parent: agent rows are peers when they report under the same
    /// team (or under none) in the same period, and their parent is that team's row of the
    /// period; team rows are peers under the same branch (or none), their parent is that
    /// branch's row. Branch and region rows have neither. The group is a number shared by
    /// the peers of one period and no other rows; the parent a row number, if the table has
    /// that row.
    fn peers_and_parent(&self, row: usize) -> (Option<u64>, Option<u32>) {
        let (kind, period) = (self.rows.kind_of(row), self.rows.period[row]);
        let (scope, number) = self.keys.split(self.rows.scope[row]);
        let teams = self.teams;
        // Agents' groups are numbered by team (the last one for no team), teams' after them
        // by the branch they report under in the period (the last one for no branch).
        let (group_of, parent_key) = match scope {
            Scope::Agent => match self.agent_teams[row].0 {
                NONE => (teams, NONE),
                team => (u64::from(team), self.keys.of(Scope::Team, team)),
            },
            Scope::Team => {
                let day = self.last_days[kind][period as usize];
                match self.keys.team_parents(number, day)[0] {
                    NONE => (teams + 1 + self.branches, NONE),
                    branch => (
                        teams + 1 + u64::from(branch),
                        self.keys.of(Scope::Branch, branch),
                    ),
                }
            }
            Scope::Branch | Scope::Region => return (None, None),
        };
        let group = group_of * self.all_periods + self.period_base[kind] + u64::from(period);
        let parent = match parent_key {
            NONE => None,
            key => Some(self.rows.of(kind, key, period)).filter(|r| *r != NONE),
        };
        (Some(group), parent)
    }

    /// The team, branch and region ids a row reports under: an agent row under the team of
    /// its latest roster day in the period and that team's parents on that day; a team row
    /// under its parents on the period's last day inside the window.
    fn parents(&self, row: usize) -> [Option<&str>; 3] {
        let key = self.rows.scope[row];
        match self.keys.split(key) {
            (Scope::Agent, _) => match self.agent_teams[row] {
                (NONE, _) => [None; 3],
                (team, day) => self.team_on(team, day),
            },
            (Scope::Team, team) => {
                let day = self.last_days[self.rows.kind_of(row)][self.rows.period[row] as usize];
                self.team_on(team, day)
            }
            _ => self.parents[key as usize].each_ref().map(Option::as_deref),
        }
    }

    /// A team's id with the branch and region ids of its definition in force on `day`.
    fn team_on(&self, team: u32, day: u32) -> [Option<&str>; 3] {
        let ids = match self.keys.team_definition_on(team, day) {
            NONE => None,
            definition => Some(&self.team_definition_ids[definition as usize]),
        };
        let team_id = &self.scope[self.keys.of(Scope::Team, team) as usize].1;
        [
            Some(team_id),
            ids.map(|(branch, _)| &**branch),
            ids.map(|(_, region)| &**region),
        ]
    }

    fn dates(&self, row: usize) -> (i32, i32) {
        self.dates[self.rows.kind_of(row)][self.rows.period[row] as usize]
    }

    fn working_days(&self, row: usize) -> WorkingDays {
        self.working_days[self.rows.kind_of(row)][self.rows.period[row] as usize]
    }

    /// The label columns, heaviest first: `scope`, `scope_id`, `team_id`, `branch_id`,
    /// `region_id`, `period`, `period_start`, `period_end`, `as_of`, `working_days` and
    /// `working_days_elapsed` and `working_days_from_as_of`, `peer_group` and `parent_row`.
    pub(crate) fn columns(&'a self) -> Vec<Build<'a>> {
        let all = || 0..self.rows.len();
        let scope = |row: usize| &self.scope[self.rows.scope[row] as usize];
        let kind_name = |row: usize| self.kind_name(row);
        let parent = |name: &'static str, level: usize| -> Build<'a> {
            Box::new(move || {
                Ok(vec![optional_strings(
                    name,
                    all().map(|r| self.parents(r)[level]),
                )])
            })
        };
        vec![
            Box::new(move || Ok(vec![strings("scope_id", all().map(|r| &*scope(r).1))])),
            parent("team_id", 0),
            parent("branch_id", 1),
            parent("region_id", 2),
            Box::new(move || Ok(vec![strings("scope", all().map(|r| scope(r).0))])),
            Box::new(move || Ok(vec![strings("period", all().map(kind_name))])),
            Box::new(move || {
                Ok(vec![
                    dates("period_start", all().map(|r| self.dates(r).0)),
                    dates("period_end", all().map(|r| self.dates(r).1)),
                    dates("as_of", all().map(|_| day_number(self.as_of))),
                ])
            }),
            Box::new(move || {
                let (groups, parents): (Vec<_>, Vec<_>) =
                    all().map(|r| self.peers_and_parent(r)).unzip();
                Ok(vec![
                    groups
                        .into_iter()
                        .collect::<UInt64Chunked>()
                        .with_name("peer_group".into())
                        .into_column(),
                    parents
                        .into_iter()
                        .collect::<IdxCa>()
                        .with_name("parent_row".into())
                        .into_column(),
                ])
            }),
            Box::new(move || {
                Ok(vec![
                    ints(
                        "working_days",
                        all().map(|r| i64::from(self.working_days(r).total)),
                    ),
                    ints(
                        "working_days_elapsed",
                        all().map(|r| i64::from(self.working_days(r).elapsed)),
                    ),
                    ints(
                        "working_days_from_as_of",
                        all().map(|r| {
                            let ahead = &self.working_days_ahead[self.rows.kind_of(r)];
                            i64::from(ahead[self.rows.period[r] as usize])
                        }),
                    ),
                ])
            }),
        ]
    }

    fn kind_name(&self, row: usize) -> &'static str {
        crate::periods::PeriodKind::ALL[self.rows.kind_of(row)].name()
    }
}

/// Agent rows: the team of the agent's latest roster day in the period (of two teams on
/// that day, the one with the greatest id), and that day.
fn agent_teams(
    facts: &LedgerFacts<'_>,
    keys: &ScopeKeys,
    periods: &[Periods; 3],
    rows: &TableRows,
) -> Vec<(u32, u32)> {
    let team_order = facts.teams.in_id_order();
    let mut team_rank = vec![0_u32; team_order.len()];
    for (rank, team) in team_order.iter().enumerate() {
        team_rank[*team as usize] = rank as u32;
    }
    // Per row: the latest day and the rank of its team.
    let mut latest = vec![(NONE, NONE); rows.len()];
    for stint in &facts.roster {
        let agent = keys.of(Scope::Agent, stint.agent);
        for (k, of_kind) in periods.iter().enumerate() {
            for period in of_kind.index.of(stint.first)..=of_kind.index.of(stint.last) {
                let r = rows.of(k, agent, period);
                if r == NONE {
                    continue;
                }
                let day = stint.last.min(of_kind.last_days[period as usize]);
                let candidate = (day, team_rank[stint.team as usize]);
                let current = &mut latest[r as usize];
                if current.0 == NONE || candidate > *current {
                    *current = candidate;
                }
            }
        }
    }
    latest
        .into_iter()
        .map(|(day, rank)| {
            if rank == NONE {
                (NONE, NONE)
            } else {
                (team_order[rank as usize], day)
            }
        })
        .collect()
}
