//! Rules on an event's values that the JSON Schema cannot state, and the quick checks that
//! let an already-typed event skip the schema walk.

use chrono::Datelike;

use crate::error::{FieldError, Problem};
use crate::event::{AgentRule, Event, EventType, Payload, PaymentMode, Scope};
use crate::supervision::MAX_SESSION_MINUTES;

/// Longest free-text note accepted.
pub const MAX_NOTE_LEN: usize = 2000;
/// Longest name accepted (teams, branches, outlets, banks, agents).
pub const MAX_NAME_LEN: usize = 200;
/// Longest retraction reason accepted.
pub const MAX_REASON_LEN: usize = 500;
/// Longest plan, in days.
pub const MAX_PLAN_DAYS: i64 = 366;
/// Earliest and latest years accepted in `occurred_at` (and in every date of an event).
pub const OCCURRED_AT_YEARS: std::ops::RangeInclusive<i32> = crate::dates::CONTRACT_YEARS;

fn id_is_well_formed(id: &str) -> bool {
    crate::event::is_valid_id(id)
}

fn minutes_ok(minutes: u32) -> bool {
    (1..=MAX_SESSION_MINUTES).contains(&minutes)
}

fn text_fits(text: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&text.chars().count())
}

/// Whether everything the JSON Schema states about field shapes holds for a typed event.
/// Only a yes lets the fast path skip the schema walk; a no is explained by the walk.
pub(crate) fn shapes_hold(event: &Event) -> bool {
    let ids_ok = |ids: &[&str]| ids.iter().all(|id| id_is_well_formed(id));
    let opt_id_ok = |id: &Option<String>| id.as_deref().is_none_or(id_is_well_formed);
    let name_ok = |name: &str| text_fits(name, 1, MAX_NAME_LEN);
    let opt_name_ok = |name: &Option<String>| name.as_deref().is_none_or(name_ok);
    let note_ok = |note: &Option<String>| {
        note.as_deref()
            .is_none_or(|n| text_fits(n, 0, MAX_NOTE_LEN))
    };

    let envelope_ok = ids_ok(&[&event.event_id, &event.source]) && opt_id_ok(&event.agent_id);
    let payload_ok = match &event.payload {
        Payload::OutletVisit(p) => ids_ok(&[&p.outlet_id]) && note_ok(&p.outcome_note),
        Payload::Consultation(p) => ids_ok(&[&p.outlet_id]) && p.customers_consulted >= 1,
        Payload::SaleClosed(p) => {
            ids_ok(&[&p.outlet_id, &p.policy_id, &p.product_code])
                && !p.premium.is_negative()
                && p.payment_years.is_none_or(|y| (2..=99).contains(&y))
        }
        Payload::PolicyCancelled(p) => {
            ids_ok(&[&p.policy_id]) && !p.refund.is_negative() && note_ok(&p.note)
        }
        Payload::ActivityPlan(_) | Payload::AgentLeft(_) => true,
        Payload::Target(p) => {
            ids_ok(&[&p.scope_id])
                && p.premium.is_none_or(|m| !m.is_negative())
                && p.outlet_activity_rate.is_none_or(|r| !r.is_negative())
        }
        Payload::TeamDefined(p) => {
            ids_ok(&[&p.team_id, &p.branch_id, &p.region_id])
                && opt_id_ok(&p.supervisor_id)
                && name_ok(&p.team_name)
                && opt_name_ok(&p.branch_name)
                && opt_name_ok(&p.region_name)
        }
        Payload::AgentJoinedTeam(p) => ids_ok(&[&p.team_id]) && opt_name_ok(&p.agent_name),
        Payload::AgentProfile(p) => name_ok(&p.display_name),
        Payload::CalendarDay(p) => opt_name_ok(&p.name),
        Payload::OutletRegistered(p) => {
            ids_ok(&[&p.outlet_id, &p.region_id]) && name_ok(&p.bank) && name_ok(&p.name)
        }
        Payload::OutletAssigned(p) => ids_ok(&[&p.outlet_id]),
        Payload::OutletUnassigned(p) => ids_ok(&[&p.outlet_id]),
        Payload::Retraction(p) => {
            ids_ok(&[&p.retracted_event_id]) && text_fits(&p.reason, 1, MAX_REASON_LEN)
        }
        Payload::CoachingSession(p) => {
            ids_ok(&[&p.supervisor_id]) && minutes_ok(p.duration_minutes) && note_ok(&p.note)
        }
        Payload::AccompaniedVisit(p) => {
            ids_ok(&[&p.supervisor_id, &p.outlet_id])
                && opt_id_ok(&p.visit_event_id)
                && note_ok(&p.note)
        }
        Payload::TeamMeeting(p) => ids_ok(&[&p.team_id]) && minutes_ok(p.duration_minutes),
        Payload::SkillWillEvaluation(p) => ids_ok(&[&p.supervisor_id]) && note_ok(&p.note),
        Payload::ImprovementMeasure(p) => {
            ids_ok(&[&p.scope_id, &p.owner_id]) && text_fits(&p.measure, 1, MAX_NOTE_LEN)
        }
        Payload::ImprovementMeasureStatus(p) => ids_ok(&[&p.measure_event_id]) && note_ok(&p.note),
    };
    envelope_ok && payload_ok
}

/// Rules across fields of the payload, and value rules the schema leaves open.
pub(crate) fn check_payload(payload: &Payload, errors: &mut Vec<FieldError>) {
    let push = |errors: &mut Vec<FieldError>, field: &str, problem: Problem| {
        errors.push(FieldError::new(format!("payload.{field}"), problem));
    };
    match payload {
        Payload::Consultation(p) if p.customers_interested > p.customers_consulted => {
            push(
                errors,
                "customers_interested",
                Problem::InterestedExceedsConsulted {
                    interested: p.customers_interested,
                    consulted: p.customers_consulted,
                },
            );
        }
        Payload::SaleClosed(p) => {
            if p.premium.units() == 0 {
                push(errors, "premium", Problem::NotPositive);
            }
            match (p.payment_mode, p.payment_years) {
                (PaymentMode::Regular, None) => push(errors, "payment_years", Problem::Missing),
                (PaymentMode::Single, Some(_)) => push(
                    errors,
                    "payment_years",
                    Problem::Inconsistent {
                        detail: "only regular premium (payment_mode regular) has payment years"
                            .to_owned(),
                    },
                ),
                _ => {}
            }
        }
        Payload::ActivityPlan(p) => {
            if p.period_end < p.period_start {
                push(
                    errors,
                    "period_end",
                    Problem::DateRangeInverted {
                        start: p.period_start.to_string(),
                        end: p.period_end.to_string(),
                    },
                );
            } else if (p.period_end - p.period_start).num_days() + 1 > MAX_PLAN_DAYS {
                push(
                    errors,
                    "period_end",
                    Problem::OutOfRange {
                        allowed: format!("at most {MAX_PLAN_DAYS} days after period_start"),
                    },
                );
            }
            let by_purpose = p.visits_by_purpose.as_ref();
            if p.visits.is_none()
                && p.consultations.is_none()
                && p.sales.is_none()
                && by_purpose.is_none()
            {
                errors.push(FieldError::new(
                    "payload",
                    Problem::Inconsistent {
                        detail: "a plan needs at least one planned count: visits, consultations or sales".to_owned(),
                    },
                ));
            } else if let (Some(visits), Some(purposes)) = (p.visits, by_purpose) {
                let planned: u64 = [
                    purposes.relationship,
                    purposes.training,
                    purposes.promotion,
                    purposes.service,
                    purposes.other,
                ]
                .into_iter()
                .flatten()
                .map(u64::from)
                .sum();
                if planned > u64::from(visits) {
                    errors.push(FieldError::new(
                        "payload.visits_by_purpose",
                        Problem::Inconsistent {
                            detail: format!(
                                "visits by purpose add up to {planned}, more than visits ({visits})"
                            ),
                        },
                    ));
                }
            }
        }
        Payload::Target(p) => {
            if p.premium.is_none()
                && p.outlet_activity_rate.is_none()
                && p.visits.is_none()
                && p.consultations.is_none()
                && p.sales.is_none()
            {
                errors.push(FieldError::new(
                    "payload",
                    Problem::Inconsistent {
                        detail: "a target needs at least one of premium, outlet_activity_rate, visits, consultations, sales"
                            .to_owned(),
                    },
                ));
            }
            if let Some(rate) = p.outlet_activity_rate
                && rate.units() > 10_000
            {
                push(
                    errors,
                    "outlet_activity_rate",
                    Problem::OutOfRange {
                        allowed: "between 0 and 1".to_owned(),
                    },
                );
            }
        }
        Payload::ImprovementMeasure(p) if p.due_date < p.month.first_day() => {
            push(
                errors,
                "due_date",
                Problem::Inconsistent {
                    detail: format!(
                        "due_date {} is before the measure's month {}",
                        p.due_date,
                        p.month.first_day().format("%Y-%m")
                    ),
                },
            );
        }
        _ => {}
    }
}

/// Whether the envelope names an agent exactly when the event type requires it.
pub(crate) fn check_agent(
    event_type: EventType,
    agent_id: Option<&str>,
    payload: Option<&Payload>,
    errors: &mut Vec<FieldError>,
) {
    let required = match event_type.agent_rule() {
        AgentRule::Required => Some(true),
        AgentRule::Forbidden => Some(false),
        AgentRule::Conditional => match payload {
            Some(Payload::Target(target)) => Some(target.scope == Scope::Agent),
            _ => None,
        },
    };
    match (required, agent_id) {
        (Some(true), None) => errors.push(FieldError::new("agent_id", Problem::Missing)),
        (Some(false), Some(_)) => errors.push(FieldError::new(
            "agent_id",
            Problem::Inconsistent {
                detail: format!(
                    "{event_type} events of this scope concern no single agent; leave agent_id out"
                ),
            },
        )),
        _ => {}
    }
    if let (Some(Payload::Target(target)), Some(agent_id)) = (payload, agent_id)
        && target.scope == Scope::Agent
        && target.scope_id != agent_id
    {
        errors.push(FieldError::new(
            "payload.scope_id",
            Problem::Inconsistent {
                detail: format!("an agent target's scope_id must equal agent_id ({agent_id:?})"),
            },
        ));
    }
}

/// Rules across the envelope and the payload.
pub(crate) fn check_envelope(event: &Event, errors: &mut Vec<FieldError>) {
    let year = event.occurred_at.as_datetime().year();
    if !OCCURRED_AT_YEARS.contains(&year) {
        errors.push(FieldError::new(
            "occurred_at",
            Problem::OutOfRange {
                allowed: crate::dates::years_allowed(),
            },
        ));
    }
    let supervisor = match &event.payload {
        Payload::CoachingSession(p) => Some(&p.supervisor_id),
        Payload::AccompaniedVisit(p) => Some(&p.supervisor_id),
        Payload::SkillWillEvaluation(p) => Some(&p.supervisor_id),
        _ => None,
    };
    if let (Some(supervisor), Some(agent)) = (supervisor, &event.agent_id)
        && supervisor == agent
    {
        errors.push(FieldError::new(
            "payload.supervisor_id",
            Problem::Inconsistent {
                detail: format!(
                    "the supervisor ({supervisor:?}) is the agent of the event: agent_id names the agent coached, accompanied or evaluated"
                ),
            },
        ));
    }
    if let Payload::Retraction(retraction) = &event.payload
        && retraction.retracted_event_id == event.event_id
    {
        errors.push(FieldError::new(
            "payload.retracted_event_id",
            Problem::Inconsistent {
                detail: "an event cannot retract itself".to_owned(),
            },
        ));
    }
    check_agent(
        event.event_type(),
        event.agent_id.as_deref(),
        Some(&event.payload),
        errors,
    );
    check_payload(&event.payload, errors);
}
