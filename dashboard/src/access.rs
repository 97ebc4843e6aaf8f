//! Who may see what: roles, row-level scope, and the one rule that decides whether a KPI
//! row or an organisation node is visible to a signed-in user.
//!
//! Pure and I/O-free. Every answer of the API goes through [`Access::permits`], via
//! [`crate::scoped::ScopedSnapshot`]; exports and history are meant to reuse it.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::{KpiRow, Team};

/// What a user does in the organisation; decides which scopes are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Regional headquarters: the whole organisation, or one region.
    Headquarters,
    /// One branch (营业部) and everything under it.
    BranchManager,
    /// One team and its agents.
    Supervisor,
    /// Every KPI row; agent names only when granted.
    Analyst,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Headquarters,
        Role::BranchManager,
        Role::Supervisor,
        Role::Analyst,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Headquarters => "headquarters",
            Role::BranchManager => "branch_manager",
            Role::Supervisor => "supervisor",
            Role::Analyst => "analyst",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The part of the organisation a user may see.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "level", content = "id", rename_all = "snake_case")]
pub enum Scope {
    All,
    Region(String),
    Branch(String),
    Team(String),
}

impl Scope {
    /// The level's name as the API's `scope` parameter spells it (`all` for everything).
    pub fn level(&self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Region(_) => "region",
            Scope::Branch(_) => "branch",
            Scope::Team(_) => "team",
        }
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Region(id) | Scope::Branch(id) | Scope::Team(id) => Some(id),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id() {
            Some(id) => write!(f, "{} {id}", self.level()),
            None => f.write_str("all"),
        }
    }
}

/// Why a role and a scope id do not make an [`Access`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("role {role} needs a {level} id as its scope")]
    MissingScope { role: Role, level: &'static str },
    #[error("role analyst sees every KPI row and takes no scope (got {0:?})")]
    AnalystWithScope(String),
    #[error("scope id {0:?} is not a valid id (letters, digits, '-', '_', '.', up to 64)")]
    InvalidScopeId(String),
    #[error("unknown role {0:?}: expected headquarters, branch_manager, supervisor or analyst")]
    UnknownRole(String),
}

/// A user's role, scope and grants: everything the server filters by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    role: Role,
    scope: Scope,
    agent_names: bool,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Access {
    /// The access of `role` over the node `scope_id` (a region for headquarters, none for the
    /// whole organisation; a branch for a branch manager; a team for a supervisor; none for an
    /// analyst). `agent_names` grants an analyst the agents' names; the other roles see the
    /// names of the agents in their scope anyway.
    pub fn new(role: Role, scope_id: Option<&str>, agent_names: bool) -> Result<Self, AccessError> {
        let scope_id = scope_id.map(str::trim).filter(|id| !id.is_empty());
        if let Some(id) = scope_id
            && !valid_id(id)
        {
            return Err(AccessError::InvalidScopeId(id.to_owned()));
        }
        let owned = |level| {
            scope_id
                .map(str::to_owned)
                .ok_or(AccessError::MissingScope { role, level })
        };
        let scope = match role {
            Role::Headquarters => scope_id.map_or(Scope::All, |id| Scope::Region(id.to_owned())),
            Role::BranchManager => Scope::Branch(owned("branch")?),
            Role::Supervisor => Scope::Team(owned("team")?),
            Role::Analyst => match scope_id {
                Some(id) => return Err(AccessError::AnalystWithScope(id.to_owned())),
                None => Scope::All,
            },
        };
        Ok(Self {
            role,
            scope,
            agent_names: agent_names || role != Role::Analyst,
        })
    }

    /// Like [`Access::new`] from the role's name.
    pub fn parse(
        role: &str,
        scope_id: Option<&str>,
        agent_names: bool,
    ) -> Result<Self, AccessError> {
        let role =
            Role::parse(role.trim()).ok_or_else(|| AccessError::UnknownRole(role.to_owned()))?;
        Self::new(role, scope_id, agent_names)
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Whether agents' names may be shown (ids are shown to everyone who sees the row).
    pub fn agent_names(&self) -> bool {
        self.agent_names
    }

    /// The view a user lands on: their own node, or `None` for the whole organisation.
    pub fn home(&self) -> Option<(&'static str, &str)> {
        Some((self.scope.level(), self.scope.id()?))
    }

    /// The rule: whether something placed at `placement` lies inside this user's scope.
    /// A placement that does not say where it is (no region, branch or team known) is
    /// visible to the whole-organisation scope only.
    pub fn permits(&self, placement: &Placement<'_>) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::Region(id) => placement.region == Some(id.as_str()),
            Scope::Branch(id) => placement.branch == Some(id.as_str()),
            Scope::Team(id) => placement.team == Some(id.as_str()),
        }
    }

    /// The items of `items` this user may see, in their order: KPI rows, teams of the
    /// organisation, or anything else that knows its [`Placement`].
    pub fn filter<'a, T: Placed + ?Sized + 'a>(
        &'a self,
        items: impl IntoIterator<Item = &'a T> + 'a,
    ) -> impl Iterator<Item = &'a T> + 'a {
        items
            .into_iter()
            .filter(move |item| self.permits(&item.placement()))
    }
}

/// Where something sits in the organisation: the chain of nodes above it (and itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement<'a> {
    pub region: Option<&'a str>,
    pub branch: Option<&'a str>,
    pub team: Option<&'a str>,
    pub agent: Option<&'a str>,
}

/// Anything with a place in the organisation.
pub trait Placed {
    fn placement(&self) -> Placement<'_>;
}

fn text<'a>(row: &'a KpiRow, key: &str) -> Option<&'a str> {
    row.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A KPI row is placed by its own scope id at its level and by the contract's `team_id`,
/// `branch_id` and `region_id` above it.
impl Placed for KpiRow {
    fn placement(&self) -> Placement<'_> {
        let scope = text(self, "scope").unwrap_or_default();
        let own = |level: &str| {
            if scope == level {
                text(self, "scope_id")
            } else {
                None
            }
        };
        Placement {
            region: own("region").or_else(|| text(self, "region_id")),
            branch: own("branch").or_else(|| text(self, "branch_id")),
            team: own("team").or_else(|| text(self, "team_id")),
            agent: own("agent"),
        }
    }
}

impl Placed for Team {
    fn placement(&self) -> Placement<'_> {
        Placement {
            region: Some(&self.region_id),
            branch: Some(&self.branch_id),
            team: Some(&self.team_id),
            agent: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(value: Value) -> KpiRow {
        value.as_object().cloned().expect("an object")
    }

    fn agent(id: &str, team: &str, branch: &str, region: &str) -> KpiRow {
        row(
            json!({"scope": "agent", "scope_id": id, "team_id": team, "branch_id": branch, "region_id": region}),
        )
    }

    fn rows() -> Vec<KpiRow> {
        vec![
            row(
                json!({"scope": "region", "scope_id": "R1", "team_id": null, "branch_id": null, "region_id": null}),
            ),
            row(
                json!({"scope": "region", "scope_id": "R2", "team_id": null, "branch_id": null, "region_id": "R2"}),
            ),
            row(
                json!({"scope": "branch", "scope_id": "B1", "team_id": null, "branch_id": null, "region_id": "R1"}),
            ),
            row(
                json!({"scope": "branch", "scope_id": "B2", "team_id": null, "branch_id": "B2", "region_id": "R1"}),
            ),
            row(
                json!({"scope": "branch", "scope_id": "B3", "team_id": null, "branch_id": "B3", "region_id": "R2"}),
            ),
            row(
                json!({"scope": "team", "scope_id": "T1", "team_id": "T1", "branch_id": "B1", "region_id": "R1"}),
            ),
            row(
                json!({"scope": "team", "scope_id": "T2", "team_id": null, "branch_id": "B1", "region_id": "R1"}),
            ),
            row(
                json!({"scope": "team", "scope_id": "T3", "team_id": "T3", "branch_id": "B3", "region_id": "R2"}),
            ),
            agent("A1", "T1", "B1", "R1"),
            agent("A2", "T2", "B1", "R1"),
            agent("A3", "T3", "B3", "R2"),
            // On no team in the period: placed nowhere below the organisation.
            row(
                json!({"scope": "agent", "scope_id": "A4", "team_id": null, "branch_id": null, "region_id": null}),
            ),
        ]
    }

    fn visible(access: &Access) -> Vec<String> {
        let rows = rows();
        access
            .filter(&rows)
            .map(|r| {
                format!(
                    "{}:{}",
                    text(r, "scope").unwrap_or("?"),
                    text(r, "scope_id").unwrap_or("?")
                )
            })
            .collect()
    }

    #[test]
    fn headquarters_sees_everything_or_one_region() {
        let all = Access::new(Role::Headquarters, None, false).expect("valid");
        assert_eq!(visible(&all).len(), 12);
        assert!(all.agent_names());
        assert_eq!(all.home(), None);
        let region = Access::new(Role::Headquarters, Some("R1"), false).expect("valid");
        assert_eq!(
            visible(&region),
            [
                "region:R1",
                "branch:B1",
                "branch:B2",
                "team:T1",
                "team:T2",
                "agent:A1",
                "agent:A2"
            ]
        );
        assert_eq!(region.home(), Some(("region", "R1")));
    }

    #[test]
    fn branch_manager_sees_one_branch() {
        let access = Access::new(Role::BranchManager, Some("B1"), false).expect("valid");
        assert_eq!(
            visible(&access),
            ["branch:B1", "team:T1", "team:T2", "agent:A1", "agent:A2"]
        );
    }

    #[test]
    fn supervisor_sees_one_team_and_its_agents_only() {
        let access = Access::new(Role::Supervisor, Some("T1"), false).expect("valid");
        assert_eq!(visible(&access), ["team:T1", "agent:A1"]);
        assert_eq!(access.home(), Some(("team", "T1")));
        // A team row without team_id is still placed by its own scope id.
        let t2 = Access::new(Role::Supervisor, Some("T2"), false).expect("valid");
        assert_eq!(visible(&t2), ["team:T2", "agent:A2"]);
    }

    #[test]
    fn analyst_sees_every_row_without_names_unless_granted() {
        let access = Access::new(Role::Analyst, None, false).expect("valid");
        assert_eq!(visible(&access).len(), 12);
        assert!(!access.agent_names());
        assert!(
            Access::new(Role::Analyst, None, true)
                .expect("valid")
                .agent_names()
        );
    }

    #[test]
    fn a_scope_that_does_not_fit_the_role_is_refused() {
        assert_eq!(
            Access::new(Role::Supervisor, None, false),
            Err(AccessError::MissingScope {
                role: Role::Supervisor,
                level: "team"
            })
        );
        assert_eq!(
            Access::new(Role::BranchManager, Some("  "), false),
            Err(AccessError::MissingScope {
                role: Role::BranchManager,
                level: "branch"
            })
        );
        assert_eq!(
            Access::new(Role::Analyst, Some("R1"), false),
            Err(AccessError::AnalystWithScope("R1".into()))
        );
        assert_eq!(
            Access::new(Role::Supervisor, Some("T1' OR 1=1"), false),
            Err(AccessError::InvalidScopeId("T1' OR 1=1".into()))
        );
        assert_eq!(
            Access::parse("admin", None, false),
            Err(AccessError::UnknownRole("admin".into()))
        );
    }

    #[test]
    fn teams_of_the_organisation_are_filtered_by_the_same_rule() {
        let team = |id: &str, branch: &str, region: &str| Team {
            team_id: id.into(),
            team_name: id.into(),
            branch_id: branch.into(),
            branch_name: None,
            region_id: region.into(),
            region_name: None,
        };
        let teams = vec![
            team("T1", "B1", "R1"),
            team("T2", "B1", "R1"),
            team("T3", "B3", "R2"),
        ];
        let ids = |access: &Access| -> Vec<String> {
            access.filter(&teams).map(|t| t.team_id.clone()).collect()
        };
        assert_eq!(
            ids(&Access::new(Role::Supervisor, Some("T2"), false).expect("valid")),
            ["T2"]
        );
        assert_eq!(
            ids(&Access::new(Role::BranchManager, Some("B1"), false).expect("valid")),
            ["T1", "T2"]
        );
        assert_eq!(
            ids(&Access::new(Role::Headquarters, Some("R2"), false).expect("valid")),
            ["T3"]
        );
        assert_eq!(
            ids(&Access::new(Role::Analyst, None, false).expect("valid")).len(),
            3
        );
    }
}
