//! The ledger's changes as the rows of the ledger tables (`aqs_tables::ledgers`), each at
//! its version: what every ledger store writes.

use aqs_schemas::event::Scope;
use aqs_tables::ledgers::{
    ActivityCounters, AgentDayRow, AgentOutletDayRow, AgentProfileRow, AssignmentRow,
    CalendarDayRow, LedgerBatch, OutletRow, PendingCancellationRow, PlanRow, RosterRow,
    SupervisorFactRow, TEAM_DEFINED_FROM_THE_BEGINNING, TargetRow, TeamRow,
};

use super::RowVersions;
use crate::ledger::{Counters, LedgerChanges, SupervisorFact};

/// Versions are positions: never negative.
fn version(value: i64) -> u64 {
    value as u64
}

fn activity(c: &Counters) -> ActivityCounters {
    ActivityCounters {
        visits: c.visits,
        consultations: c.consultations,
        customers_consulted: c.customers_consulted,
        customers_interested: c.customers_interested,
        sales: c.sales,
        premium_fen: c.premium.units(),
        cancellations: c.cancellations,
        refunds_fen: c.refunds.units(),
    }
}

/// The rows of `changes` at `versions`, tombstones included: removed plans, targets, roster
/// and assignment rows and names with `deleted = 1`, cells with zero counters as they are.
pub fn ledger_batch(changes: &LedgerChanges, versions: &RowVersions<'_>) -> LedgerBatch {
    let agent = |agent_id: &str| version(versions.agent(agent_id));
    let reference = version(versions.reference());
    let mut batch = LedgerBatch::default();
    for row in &changes.agent_outlet_day {
        batch.agent_outlet_day.push(AgentOutletDayRow::new(
            row.agent_id.clone(),
            row.outlet_id.clone(),
            row.business_date,
            activity(&row.counters),
            agent(&row.agent_id),
        ));
    }
    for row in &changes.agent_day {
        batch.agent_day.push(AgentDayRow::new(
            row.agent_id.clone(),
            row.business_date,
            [
                row.team_id.clone(),
                row.branch_id.clone(),
                row.region_id.clone(),
            ],
            activity(&row.counters),
            agent(&row.agent_id),
        ));
    }
    for row in &changes.plans {
        batch.plans.push(PlanRow {
            agent_id: row.agent_id.clone(),
            period_start: row.period_start,
            period_end: row.period_end,
            visits: row.visits,
            consultations: row.consultations,
            sales: row.sales,
            event_id: row.event_id.clone(),
            deleted: 0,
            ver: agent(&row.agent_id),
        });
    }
    for (agent_id, period_start, period_end) in &changes.deleted_plans {
        batch.plans.push(PlanRow {
            agent_id: agent_id.clone(),
            period_start: *period_start,
            period_end: *period_end,
            visits: None,
            consultations: None,
            sales: None,
            event_id: String::new(),
            deleted: 1,
            ver: agent(agent_id),
        });
    }
    // An agent's own target changes with its partition; the others with reference data.
    let target_version = |scope: Scope, scope_id: &str| {
        if scope == Scope::Agent {
            agent(scope_id)
        } else {
            reference
        }
    };
    for row in &changes.targets {
        batch.targets.push(TargetRow {
            scope: row.scope.as_str().to_owned(),
            scope_id: row.scope_id.clone(),
            month: row.month.first_day(),
            premium_fen: row.premium.map(|m| m.units()),
            outlet_activity_rate_bp: row.outlet_activity_rate.map(|r| r.units()),
            visits: row.visits,
            consultations: row.consultations,
            sales: row.sales,
            event_id: row.event_id.clone(),
            deleted: 0,
            ver: target_version(row.scope, &row.scope_id),
        });
    }
    for (scope, scope_id, month) in &changes.deleted_targets {
        batch.targets.push(TargetRow {
            scope: scope.as_str().to_owned(),
            scope_id: scope_id.clone(),
            month: month.first_day(),
            premium_fen: None,
            outlet_activity_rate_bp: None,
            visits: None,
            consultations: None,
            sales: None,
            event_id: String::new(),
            deleted: 1,
            ver: target_version(*scope, scope_id),
        });
    }
    for row in &changes.roster {
        batch.roster.push(RosterRow {
            agent_id: row.agent_id.clone(),
            valid_from: row.valid_from,
            team_id: row.team_id.clone(),
            valid_to: row.valid_to,
            deleted: 0,
            ver: agent(&row.agent_id),
        });
    }
    for (agent_id, valid_from) in &changes.deleted_roster {
        batch.roster.push(RosterRow {
            agent_id: agent_id.clone(),
            valid_from: *valid_from,
            team_id: String::new(),
            valid_to: None,
            deleted: 1,
            ver: agent(agent_id),
        });
    }
    for row in &changes.assignments {
        batch.assignments.push(AssignmentRow {
            agent_id: row.agent_id.clone(),
            outlet_id: row.outlet_id.clone(),
            valid_from: row.valid_from,
            valid_to: row.valid_to,
            deleted: 0,
            ver: agent(&row.agent_id),
        });
    }
    for (agent_id, outlet_id, valid_from) in &changes.deleted_assignments {
        batch.assignments.push(AssignmentRow {
            agent_id: agent_id.clone(),
            outlet_id: outlet_id.clone(),
            valid_from: *valid_from,
            valid_to: None,
            deleted: 1,
            ver: agent(agent_id),
        });
    }
    batch.pending_replaced = changes
        .pending_agents
        .iter()
        .map(|agent_id| (agent_id.clone(), agent(agent_id)))
        .collect();
    for row in &changes.pending_cancellations {
        batch.pending_cancellations.push(PendingCancellationRow {
            agent_id: row.agent_id.clone(),
            event_id: row.event_id.clone(),
            policy_id: row.policy_id.clone(),
            business_date: row.business_date,
            refund_fen: row.refund.units(),
            deleted: 0,
            ver: agent(&row.agent_id),
        });
    }
    for row in &changes.agent_profiles {
        batch.agent_profiles.push(AgentProfileRow {
            agent_id: row.agent_id.clone(),
            display_name: row.display_name.clone(),
            origin: row.origin.as_str().to_owned(),
            event_id: row.event_id.clone(),
            deleted: 0,
            ver: agent(&row.agent_id),
        });
    }
    for agent_id in &changes.deleted_agent_profiles {
        batch.agent_profiles.push(AgentProfileRow {
            agent_id: agent_id.clone(),
            display_name: String::new(),
            origin: String::new(),
            event_id: String::new(),
            deleted: 1,
            ver: agent(agent_id),
        });
    }
    for row in &changes.teams {
        batch.teams.push(TeamRow {
            team_id: row.team_id.clone(),
            effective_from: row
                .effective_from
                .unwrap_or(TEAM_DEFINED_FROM_THE_BEGINNING),
            team_name: row.team_name.clone(),
            branch_id: row.branch_id.clone(),
            branch_name: row.branch_name.clone(),
            region_id: row.region_id.clone(),
            region_name: row.region_name.clone(),
            supervisor_id: row.supervisor_id.clone(),
            deleted: 0,
            ver: reference,
        });
    }
    for (team_id, effective_from) in &changes.deleted_teams {
        batch.teams.push(TeamRow {
            team_id: team_id.clone(),
            effective_from: effective_from.unwrap_or(TEAM_DEFINED_FROM_THE_BEGINNING),
            team_name: String::new(),
            branch_id: String::new(),
            branch_name: None,
            region_id: String::new(),
            region_name: None,
            supervisor_id: None,
            deleted: 1,
            ver: reference,
        });
    }
    for row in &changes.outlets {
        batch.outlets.push(OutletRow {
            outlet_id: row.outlet_id.clone(),
            bank: row.bank.clone(),
            name: row.name.clone(),
            region_id: row.region_id.clone(),
            ver: reference,
        });
    }
    for row in &changes.calendar_days {
        batch.calendar_days.push(CalendarDayRow {
            business_date: row.business_date,
            kind: row.kind.as_str().to_owned(),
            name: row.name.clone(),
            event_id: row.event_id.clone(),
            deleted: 0,
            ver: reference,
        });
    }
    for date in &changes.deleted_calendar_days {
        batch.calendar_days.push(CalendarDayRow {
            business_date: *date,
            kind: String::new(),
            name: None,
            event_id: String::new(),
            deleted: 1,
            ver: reference,
        });
    }
    // A fact about an agent is on that agent's partition; the others are reference data.
    let of = |agent_id: &str| match agent_id {
        "" => reference,
        agent_id => agent(agent_id),
    };
    for row in &changes.supervisor_facts {
        batch
            .supervisor_facts
            .push(supervisor_fact_row(row, of(&row.agent_id)));
    }
    for (agent_id, source, event_id) in &changes.deleted_supervisor_facts {
        batch.supervisor_facts.push(SupervisorFactRow::tombstone(
            event_id.clone(),
            source.clone(),
            of(agent_id),
        ));
    }
    batch
}

fn supervisor_fact_row(fact: &SupervisorFact, ver: u64) -> SupervisorFactRow {
    SupervisorFactRow {
        event_id: fact.event_id.clone(),
        source: fact.source.clone(),
        event_type: fact.event_type.as_str().to_owned(),
        business_date: fact.business_date,
        occurred_at_ns: fact.occurred_at_ns,
        supervisor_id: fact.supervisor_id.clone(),
        agent_id: fact.agent_id.clone(),
        team_id: fact.team_id.clone(),
        outlet_id: fact.outlet_id.clone(),
        linked_event_id: fact.linked_event_id.clone(),
        kind: fact.kind.clone(),
        scope: fact.scope.clone(),
        scope_id: fact.scope_id.clone(),
        month: fact.month,
        due_date: fact.due_date,
        duration_minutes: fact.duration_minutes,
        attendees: fact.attendees,
        skill: fact.skill.clone(),
        will: fact.will.clone(),
        text: fact.text.clone(),
        deleted: 0,
        ver,
    }
}
