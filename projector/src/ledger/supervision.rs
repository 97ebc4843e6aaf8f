//! The supervisors' facts (coaching, accompanied visits, meetings, evaluations, improvement
//! measures and their reviews): one row each in `supervisor_facts`, kept as sent, a
//! tombstone once retracted. Which of several versions is in force (an agent's evaluation of
//! a month, a measure's latest review) is decided by the KPI job from `occurred_at`,
//! `event_id` and `source`, so the fold stays a set of rows, order-independent by
//! construction. An accompanied visit is the supervisor's fact: it adds nothing to the
//! agent's cells.

use std::collections::BTreeMap;

use aqs_schemas::{Event, EventType, Payload};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::identity::EventKey;

/// One supervisor's fact as the ledger keeps it; absent fields are `None` or empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisorFact {
    pub source: String,
    pub event_id: String,
    pub event_type: EventType,
    /// The event's business date (a review's: the day from which its status holds).
    pub business_date: NaiveDate,
    /// Nanoseconds since the Unix epoch: the first key of "the latest" between versions.
    pub occurred_at_ns: i64,
    /// Who coached, accompanied or evaluated; a measure's owner; empty for meetings and
    /// reviews (a meeting's supervisor is its team's on the date).
    pub supervisor_id: String,
    /// The agent coached, accompanied or evaluated.
    pub agent_id: String,
    /// A meeting's team.
    pub team_id: String,
    /// An accompanied visit's outlet.
    pub outlet_id: String,
    /// An accompanied visit's `visit_event_id`; a review's `measure_event_id`.
    pub linked_event_id: String,
    /// A coaching topic, a meeting kind or a review's status.
    pub kind: String,
    /// A measure's scope (`agent`, `team`, `branch`, `region`) and its id.
    pub scope: String,
    pub scope_id: String,
    /// The first day of an evaluation's or a measure's month.
    pub month: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
    pub duration_minutes: Option<u32>,
    pub attendees: Option<u32>,
    pub skill: Option<String>,
    pub will: Option<String>,
    /// A note, or a measure's text.
    pub text: Option<String>,
}

/// The supervisor facts of one agent (or of reference data), by identity.
pub(super) type SupervisorFacts = BTreeMap<EventKey, SupervisorFact>;

/// The row of a supervisor's event; `None` for every other event.
pub(super) fn supervisor_fact(event: &Event, business_date: NaiveDate) -> Option<SupervisorFact> {
    let mut fact = SupervisorFact {
        source: event.source.clone(),
        event_id: event.event_id.clone(),
        event_type: event.event_type(),
        business_date,
        occurred_at_ns: event
            .occurred_at
            .as_datetime()
            .timestamp_nanos_opt()
            .unwrap_or_default(),
        supervisor_id: String::new(),
        agent_id: event.agent_id.clone().unwrap_or_default(),
        team_id: String::new(),
        outlet_id: String::new(),
        linked_event_id: String::new(),
        kind: String::new(),
        scope: String::new(),
        scope_id: String::new(),
        month: None,
        due_date: None,
        duration_minutes: None,
        attendees: None,
        skill: None,
        will: None,
        text: None,
    };
    match &event.payload {
        Payload::CoachingSession(p) => {
            fact.supervisor_id = p.supervisor_id.clone();
            fact.duration_minutes = Some(p.duration_minutes);
            fact.kind = p.topic.as_str().to_owned();
            fact.text = p.note.clone();
        }
        Payload::AccompaniedVisit(p) => {
            fact.supervisor_id = p.supervisor_id.clone();
            fact.outlet_id = p.outlet_id.clone();
            fact.linked_event_id = p.visit_event_id.clone().unwrap_or_default();
            fact.text = p.note.clone();
        }
        Payload::TeamMeeting(p) => {
            fact.team_id = p.team_id.clone();
            fact.kind = p.kind.as_str().to_owned();
            fact.duration_minutes = Some(p.duration_minutes);
            fact.attendees = Some(p.attendees);
        }
        Payload::SkillWillEvaluation(p) => {
            fact.supervisor_id = p.supervisor_id.clone();
            fact.month = Some(p.month.first_day());
            fact.skill = Some(p.skill.as_str().to_owned());
            fact.will = Some(p.will.as_str().to_owned());
            fact.text = p.note.clone();
        }
        Payload::ImprovementMeasure(p) => {
            fact.supervisor_id = p.owner_id.clone();
            fact.scope = p.scope.as_str().to_owned();
            fact.scope_id = p.scope_id.clone();
            fact.month = Some(p.month.first_day());
            fact.due_date = Some(p.due_date);
            fact.text = Some(p.measure.clone());
        }
        Payload::ImprovementMeasureStatus(p) => {
            fact.linked_event_id = p.measure_event_id.clone();
            fact.kind = p.status.as_str().to_owned();
            fact.text = p.note.clone();
        }
        _ => return None,
    }
    Some(fact)
}
