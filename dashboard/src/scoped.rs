//! A KPI snapshot as one user may see it: every read goes through [`Access::permits`], so a
//! handler cannot hand out a row or a node of another scope by forgetting a filter.

use chrono::NaiveDate;

use crate::access::{Access, Placed, Placement, Scope};
use crate::store::{KpiRow, Snapshot, Team};

/// Planned visits, consultations and sales of an agent for a period.
pub type Plan = [Option<i64>; 3];

/// The part of a [`Snapshot`] that an [`Access`] permits.
#[derive(Debug, Clone, Copy)]
pub struct ScopedSnapshot<'a> {
    snapshot: &'a Snapshot,
    access: &'a Access,
    /// The month and week shown, when not the as-of date's own.
    periods: Option<(NaiveDate, NaiveDate)>,
}

impl<'a> ScopedSnapshot<'a> {
    pub fn new(snapshot: &'a Snapshot, access: &'a Access) -> Self {
        Self {
            snapshot,
            access,
            periods: None,
        }
    }

    /// The same snapshot showing the month starting `month_start` and the week starting
    /// `week_start` (a past month of the run, with its last week).
    pub fn showing(mut self, month_start: NaiveDate, week_start: NaiveDate) -> Self {
        self.periods = Some((month_start, week_start));
        self
    }

    pub fn access(&self) -> &'a Access {
        self.access
    }

    pub fn as_of(&self) -> Option<NaiveDate> {
        self.snapshot.as_of
    }

    pub fn generated_at(&self) -> Option<&'a str> {
        self.snapshot.generated_at.as_deref()
    }

    pub fn month_start(&self) -> Option<NaiveDate> {
        match self.periods {
            Some((month, _)) => Some(month),
            None => self.snapshot.month_start(),
        }
    }

    pub fn week_start(&self) -> Option<NaiveDate> {
        match self.periods {
            Some((_, week)) => Some(week),
            None => self.snapshot.week_start(),
        }
    }

    /// The agent's display name, for users allowed to see names and agents in their scope;
    /// `None` otherwise (the page and exports then show the pseudonymous id).
    pub fn agent_name(&self, agent_id: &str) -> Option<&'a str> {
        if !self.access.agent_names() {
            return None;
        }
        let name = self.snapshot.agent_names.get(agent_id)?;
        self.permits_agent(agent_id).then_some(name.as_str())
    }

    /// The display names of `agent_ids` that this user may see.
    pub fn agent_names<'i>(
        &self,
        agent_ids: impl IntoIterator<Item = &'i str>,
    ) -> std::collections::BTreeMap<String, String> {
        agent_ids
            .into_iter()
            .filter_map(|id| Some((id.to_owned(), self.agent_name(id)?.to_owned())))
            .collect()
    }

    /// One row by its key, when permitted.
    pub fn row(&self, scope: &str, id: &str, period: &str, start: NaiveDate) -> Option<&'a KpiRow> {
        self.snapshot
            .row(scope, id, period, start)
            .filter(|row| self.access.permits(&row.placement()))
    }

    /// The permitted rows that satisfy `predicate`.
    pub fn rows_where(
        &self,
        predicate: impl Fn(&KpiRow) -> bool + 'a,
    ) -> impl Iterator<Item = &'a KpiRow> + 'a {
        let access = self.access;
        self.snapshot
            .rows_where(predicate)
            .filter(move |row| access.permits(&row.placement()))
    }

    /// The permitted rows of the outlet table that satisfy `predicate`: an outlet row is
    /// placed by the team, branch and region it reports under, a summary by its own id.
    pub fn outlet_rows_where(
        &self,
        predicate: impl Fn(&KpiRow) -> bool + 'a,
    ) -> impl Iterator<Item = &'a KpiRow> + 'a {
        let access = self.access;
        self.snapshot
            .outlet_rows
            .iter()
            .filter(move |row| predicate(row) && access.permits(&row.placement()))
    }

    /// The supervisor table of the run, unfiltered: `supervisors.rs` places its rows (a
    /// supervisor's row by the teams they lead).
    pub(crate) fn supervisor_rows(&self) -> &'a [KpiRow] {
        &self.snapshot.supervisor_rows
    }

    /// The permitted teams of the organisation (with the names of their branch and region).
    pub fn teams(&self) -> impl Iterator<Item = &'a Team> + 'a {
        self.access.filter(&self.snapshot.teams)
    }

    /// The agents on a permitted team's roster (none for a team outside the scope).
    pub fn agents_of(&self, team_id: &str) -> Vec<String> {
        if !self.teams().any(|team| team.team_id == team_id) {
            return Vec::new();
        }
        self.snapshot
            .agents_by_team
            .get(team_id)
            .cloned()
            .unwrap_or_default()
    }

    /// An agent's plan for the period starting `start`, when the agent is on a permitted
    /// team's roster or has a permitted row.
    pub fn plan(&self, agent_id: &str, start: NaiveDate) -> Option<Plan> {
        self.permits_agent(agent_id)
            .then(|| {
                self.snapshot
                    .plans
                    .get(&(agent_id.to_owned(), start))
                    .copied()
            })
            .flatten()
    }

    fn permits_agent(&self, agent_id: &str) -> bool {
        if matches!(self.access.scope(), Scope::All) {
            return true;
        }
        self.teams().any(|team| {
            self.snapshot
                .agents_by_team
                .get(&team.team_id)
                .is_some_and(|agents| agents.iter().any(|a| a == agent_id))
        }) || self
            .rows_where(|r| {
                r.get("scope").and_then(|v| v.as_str()) == Some("agent")
                    && r.get("scope_id").and_then(|v| v.as_str()) == Some(agent_id)
            })
            .next()
            .is_some()
    }

    /// Whether the node `(scope, id)` lies in the user's scope: its own place in the
    /// organisation is asked, not its ancestors' (a supervisor's team is in a region, yet
    /// the region is not the supervisor's). An id the organisation does not know is placed
    /// by itself alone, so a refusal does not reveal whether the id exists.
    pub fn permits_node(&self, scope: &str, id: &str) -> bool {
        let teams = &self.snapshot.teams;
        let placement = match scope {
            "region" => Placement {
                region: Some(id),
                ..Placement::default()
            },
            "branch" => Placement {
                region: teams
                    .iter()
                    .find(|t| t.branch_id == id)
                    .map(|t| t.region_id.as_str()),
                branch: Some(id),
                ..Placement::default()
            },
            "team" => teams
                .iter()
                .find(|t| t.team_id == id)
                .map(Placed::placement)
                .unwrap_or(Placement {
                    team: Some(id),
                    ..Placement::default()
                }),
            "agent" => {
                let team = self
                    .snapshot
                    .agents_by_team
                    .iter()
                    .find(|(_, agents)| agents.iter().any(|a| a == id))
                    .and_then(|(team, _)| teams.iter().find(|t| &t.team_id == team));
                if let Some(team) = team {
                    Placement {
                        agent: Some(id),
                        ..team.placement()
                    }
                } else {
                    // Not on a roster today: placed by its own rows.
                    return self.permits_agent(id);
                }
            }
            _ => return false,
        };
        self.access.permits(&placement)
    }
}
