//! The ledger tables as rows: what sinks store and analytics reads.

use aqs_schemas::EventType;
use aqs_schemas::event::{DayKind, Scope};
use aqs_schemas::{Money, Rate, YearMonth};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::counters::Counters;

/// Agent × outlet × business date. Refunds land on the outlet of the cancelled sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentOutletDay {
    pub agent_id: String,
    pub outlet_id: String,
    pub business_date: NaiveDate,
    #[serde(flatten)]
    pub counters: Counters,
}

/// Agent × business date, tagged with the agent's team, branch and region on that date
/// (empty when the agent belonged to no team that day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDay {
    pub agent_id: String,
    pub business_date: NaiveDate,
    pub team_id: String,
    pub branch_id: String,
    pub region_id: String,
    #[serde(flatten)]
    pub counters: Counters,
}

/// Team × business date: the sum of its agents' days while they belonged to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamDay {
    pub team_id: String,
    pub business_date: NaiveDate,
    pub branch_id: String,
    pub region_id: String,
    /// Agents with any activity in the team that day.
    pub agents_active: i64,
    #[serde(flatten)]
    pub counters: Counters,
}

/// The current plan of an agent for a date range (latest by `occurred_at`, then event id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRow {
    pub agent_id: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub visits: Option<u32>,
    pub consultations: Option<u32>,
    pub sales: Option<u32>,
    pub event_id: String,
}

/// The current target of a scope for a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRow {
    pub scope: Scope,
    pub scope_id: String,
    pub month: YearMonth,
    pub premium: Option<Money>,
    pub outlet_activity_rate: Option<Rate>,
    pub visits: Option<u32>,
    pub consultations: Option<u32>,
    pub sales: Option<u32>,
    pub event_id: String,
}

/// An agent's membership of a team from `valid_from` to the day before `valid_to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterRow {
    pub agent_id: String,
    pub team_id: String,
    pub valid_from: NaiveDate,
    /// First day no longer in the team; `None` while it lasts.
    pub valid_to: Option<NaiveDate>,
}

/// An outlet assigned to an agent from `valid_from` to the day before `valid_to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentRow {
    pub agent_id: String,
    pub outlet_id: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRow {
    pub team_id: String,
    /// The first date this definition holds for; `None`: from the beginning.
    pub effective_from: Option<NaiveDate>,
    pub team_name: String,
    pub branch_id: String,
    pub branch_name: Option<String>,
    pub region_id: String,
    pub region_name: Option<String>,
    pub supervisor_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutletRow {
    pub outlet_id: String,
    pub bank: String,
    pub name: String,
    pub region_id: String,
}

/// The display name in force for an agent: the latest `agent_profile` (by `occurred_at`,
/// then `event_id`, then `source`), else the latest `agent_joined_team` that carries a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProfileRow {
    pub agent_id: String,
    pub display_name: String,
    /// The event type that gave the name: `agent_profile` or `agent_joined_team`.
    pub origin: EventType,
    pub event_id: String,
}

/// A date of the working-day calendar as its latest declaration (by `occurred_at`, then
/// `event_id`, then `source`) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarDayRow {
    pub business_date: NaiveDate,
    pub kind: DayKind,
    pub name: Option<String>,
    pub event_id: String,
}

/// A cancellation waiting for its policy's sale: it counts once that sale is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCancellation {
    pub agent_id: String,
    pub event_id: String,
    pub policy_id: String,
    pub business_date: NaiveDate,
    pub refund: Money,
}

/// Every ledger table, each sorted by its key: two ledgers built from the same events
/// serialise to the same bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTables {
    pub agent_outlet_day: Vec<AgentOutletDay>,
    pub agent_day: Vec<AgentDay>,
    pub team_day: Vec<TeamDay>,
    pub plans: Vec<PlanRow>,
    pub targets: Vec<TargetRow>,
    pub roster: Vec<RosterRow>,
    pub assignments: Vec<AssignmentRow>,
    pub teams: Vec<TeamRow>,
    pub outlets: Vec<OutletRow>,
    pub pending_cancellations: Vec<PendingCancellation>,
    pub agent_profiles: Vec<AgentProfileRow>,
    pub calendar_days: Vec<CalendarDayRow>,
    pub supervisor_facts: Vec<super::SupervisorFact>,
}
