//! The organisation beside a KPI run, as the dashboard shows it: the teams with their names,
//! who is on each team's roster on the run's as-of date, agents' plans from a date on, and
//! agents' display names. Read from the ledger tables of either engine.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use aqs_warehouse::BlockingClient;
use aqs_warehouse::clickhouse::error::Error as ClickHouseError;
use chrono::NaiveDate;
use rusqlite::params;

use crate::ledgers::clickhouse::live_rows;
use crate::ledgers::{AgentProfileRow, LIVE, LedgerRow, PlanRow, RosterRow, TeamRow, sqlite};

/// A team with its branch and region, and their names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub team_id: String,
    pub team_name: String,
    pub branch_id: String,
    pub branch_name: Option<String>,
    pub region_id: String,
    pub region_name: Option<String>,
}

impl From<TeamRow> for Team {
    fn from(row: TeamRow) -> Self {
        Self {
            team_id: row.team_id,
            team_name: row.team_name,
            branch_id: row.branch_id,
            branch_name: row.branch_name,
            region_id: row.region_id,
            region_name: row.region_name,
        }
    }
}

/// Planned visits, consultations and sales.
pub type PlannedCounts = [Option<i64>; 3];

/// The ledgers' part of what the dashboard shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Organisation {
    /// Every team defined on the as-of date, by id, under the branch and region of its
    /// definition in force on that date (a team defined only from a later date is absent).
    pub teams: Vec<Team>,
    /// Agents on each team's roster on the as-of date, by id.
    pub agents_by_team: BTreeMap<String, Vec<String>>,
    /// (agent, first day of the plan's range) → its planned counts.
    pub plans: HashMap<(String, NaiveDate), PlannedCounts>,
    /// Agents' display names (`agent_profiles`).
    pub agent_names: HashMap<String, String>,
}

impl Organisation {
    fn new(
        as_of: NaiveDate,
        teams: Vec<TeamRow>,
        roster: Vec<RosterRow>,
        plans: Vec<PlanRow>,
        names: Vec<AgentProfileRow>,
    ) -> Self {
        let mut agents_by_team: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in roster {
            agents_by_team
                .entry(row.team_id)
                .or_default()
                .push(row.agent_id);
        }
        let plans = plans
            .into_iter()
            .map(|plan| {
                let counts =
                    [plan.visits, plan.consultations, plan.sales].map(|c| c.map(i64::from));
                ((plan.agent_id, plan.period_start), counts)
            })
            .collect();
        Self {
            teams: teams_on(as_of, teams),
            agents_by_team,
            plans,
            agent_names: names
                .into_iter()
                .map(|name| (name.agent_id, name.display_name))
                .collect(),
        }
    }
}

/// Of every live team row, each team's definition in force on `as_of` (the greatest effective
/// date on or before it), by team id.
fn teams_on(as_of: NaiveDate, rows: Vec<TeamRow>) -> Vec<Team> {
    let mut in_force: BTreeMap<String, TeamRow> = BTreeMap::new();
    for row in rows.into_iter().filter(|row| row.effective_from <= as_of) {
        match in_force.get(&row.team_id) {
            Some(kept) if kept.effective_from >= row.effective_from => {}
            _ => {
                in_force.insert(row.team_id.clone(), row);
            }
        }
    }
    in_force.into_values().map(Team::from).collect()
}

/// The roster rows in force on a day, by team and agent.
const ON_DAY_SQLITE: &str = "valid_from <= ?1 AND (valid_to IS NULL OR valid_to > ?1)";

/// The organisation on `as_of` from the embedded ledger store at `ledgers`, with the plans
/// starting on `plans_from` or later. A store without agents' names (written before they
/// existed) gives ids only.
pub fn read_embedded(
    ledgers: &Path,
    as_of: NaiveDate,
    plans_from: NaiveDate,
) -> rusqlite::Result<Organisation> {
    let connection = sqlite::open_read_only(ledgers)?;
    let teams = sqlite::live_rows::<TeamRow>(&connection)?;
    let mut statement = connection.prepare(&format!(
        "SELECT {} FROM {} WHERE {LIVE} AND {ON_DAY_SQLITE} ORDER BY team_id, agent_id",
        RosterRow::COLUMNS,
        RosterRow::TABLE
    ))?;
    let roster = statement
        .query_map(params![as_of.to_string()], RosterRow::from_sqlite)?
        .collect::<Result<Vec<_>, _>>()?;
    let mut statement = connection.prepare(&format!(
        "SELECT {} FROM {} WHERE {LIVE} AND period_start >= ?1",
        PlanRow::COLUMNS,
        PlanRow::TABLE
    ))?;
    let plans = statement
        .query_map(params![plans_from.to_string()], PlanRow::from_sqlite)?
        .collect::<Result<Vec<_>, _>>()?;
    let names = sqlite::live_rows::<AgentProfileRow>(&connection).unwrap_or_else(|error| {
        tracing::warn!(%error, "agents' names not read from the ledger store");
        Vec::new()
    });
    Ok(Organisation::new(as_of, teams, roster, plans, names))
}

/// The agents who belonged to `team_id` on at least one day from `from` through `through`,
/// by id, from the embedded ledger store at `ledgers` (a team's roster for a period).
pub fn team_members_embedded(
    ledgers: &Path,
    team_id: &str,
    from: NaiveDate,
    through: NaiveDate,
) -> rusqlite::Result<Vec<String>> {
    let connection = sqlite::open_read_only(ledgers)?;
    let mut statement = connection.prepare(&format!(
        "SELECT DISTINCT agent_id FROM {} WHERE {LIVE} AND team_id = ?1 AND valid_from <= ?3 \
         AND (valid_to IS NULL OR valid_to > ?2) ORDER BY agent_id",
        RosterRow::TABLE
    ))?;
    statement
        .query_map(
            params![team_id, from.to_string(), through.to_string()],
            |r| r.get(0),
        )?
        .collect()
}

/// The agents who belonged to `team_id` on at least one day from `from` through `through`,
/// by id, from the ledger tables in ClickHouse (the same rows as
/// [`team_members_embedded`]), giving up after `limit`.
pub fn team_members_clickhouse(
    client: &BlockingClient,
    team_id: &str,
    from: NaiveDate,
    through: NaiveDate,
    limit: std::time::Duration,
) -> Result<Vec<String>, ClickHouseError> {
    client.run_within(
        limit,
        client
            .client()
            .query(&format!(
                "SELECT DISTINCT agent_id FROM {} FINAL WHERE {LIVE} AND team_id = ? \
                 AND valid_from <= toDate(?) AND (isNull(valid_to) OR valid_to > toDate(?)) \
                 ORDER BY agent_id",
                RosterRow::TABLE
            ))
            .bind(team_id)
            .bind(through.to_string())
            .bind(from.to_string())
            .fetch_all::<String>(),
    )
}

/// The organisation on `as_of` from the ledger tables in ClickHouse, with the plans starting
/// on `plans_from` or later. A database without `agent_profiles` (migration `0006`) gives
/// ids only.
pub fn read_clickhouse(
    client: &BlockingClient,
    as_of: NaiveDate,
    plans_from: NaiveDate,
) -> Result<Organisation, ClickHouseError> {
    let teams = client
        .run(live_rows::<TeamRow>(client.client()))
        .map_err(|e| e.source)?;
    let day = as_of.to_string();
    let roster: Vec<RosterRow> = client.run(
        client
            .client()
            .query(&format!(
                "SELECT {} FROM {} FINAL WHERE {LIVE} AND valid_from <= toDate(?) \
                 AND (isNull(valid_to) OR valid_to > toDate(?)) ORDER BY team_id, agent_id",
                RosterRow::COLUMNS,
                RosterRow::TABLE
            ))
            .bind(day.as_str())
            .bind(day.as_str())
            .fetch_all(),
    )?;
    let plans: Vec<PlanRow> = client.run(
        client
            .client()
            .query(&format!(
                "SELECT {} FROM {} FINAL WHERE {LIVE} AND period_start >= toDate(?)",
                PlanRow::COLUMNS,
                PlanRow::TABLE
            ))
            .bind(plans_from.to_string())
            .fetch_all(),
    )?;
    let names = client
        .run(live_rows::<AgentProfileRow>(client.client()))
        .unwrap_or_else(|error| {
            tracing::warn!(error = %error.source, "agents' names not read from ClickHouse");
            Vec::new()
        });
    Ok(Organisation::new(as_of, teams, roster, plans, names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledgers::TEAM_DEFINED_FROM_THE_BEGINNING;

    fn row(team: &str, from: NaiveDate, branch: &str) -> TeamRow {
        TeamRow {
            team_id: team.to_owned(),
            effective_from: from,
            team_name: team.to_owned(),
            branch_id: branch.to_owned(),
            branch_name: None,
            region_id: "R1".to_owned(),
            region_name: None,
            supervisor_id: None,
            deleted: 0,
            ver: 1,
        }
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    #[test]
    fn the_tree_shows_each_team_under_its_definition_in_force_on_the_as_of_date() {
        let rows = || {
            vec![
                row("T1", date("2026-11-15"), "B2"),
                row("T1", TEAM_DEFINED_FROM_THE_BEGINNING, "B1"),
                row("T2", date("2026-12-01"), "B3"),
            ]
        };
        let branches = |as_of: &str| {
            teams_on(date(as_of), rows())
                .into_iter()
                .map(|t| (t.team_id, t.branch_id))
                .collect::<Vec<_>>()
        };
        assert_eq!(branches("2026-11-14"), [("T1".into(), "B1".into())]);
        assert_eq!(branches("2026-11-15"), [("T1".into(), "B2".into())]);
        assert_eq!(
            branches("2026-12-01"),
            [("T1".into(), "B2".into()), ("T2".into(), "B3".into())]
        );
    }
}
