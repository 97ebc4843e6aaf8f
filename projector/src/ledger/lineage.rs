//! Lineage: what the fold made of each delivered event, so that a ledger figure can be
//! listed as the events behind it.
//!
//! [`Lineage`] folds events with the very [`Ledger`] the projector runs and keeps, per
//! delivery, what `apply` answered; [`Lineage::events`] then reads each activity event's fate
//! from the final state (a fate can change after delivery: a later retraction takes a sale
//! back, a later sale makes a pending cancellation count). The contributions of the events
//! listed as counted add up to the ledger's cells by construction: they are the very deltas
//! the ledger added. Pure, like the fold: no I/O, no clock.

use aqs_schemas::{BusinessClock, Event, EventType, Money, Payload};
use chrono::NaiveDate;
use serde::Serialize;

use super::identity::{ByIdentity, EventKey};
use super::{AgentFact, AgentState, Applied, Counters, Ledger, digest, refund_delta, value_on};

/// What became of one delivery of an activity event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// It counts: its contribution is in the ledger.
    Counted,
    /// A cancellation whose refund counts, on its own date at the outlet of the sale.
    RefundCounted,
    /// A cancellation whose sale is not known (or was retracted): counted nowhere yet.
    Pending,
    /// The same identity and body delivered again: counted once, by its first delivery.
    Duplicate,
    /// The same identity with another body: the first body is kept, this one counts nowhere.
    Conflict,
    /// Retracted, by the retraction named when it is known.
    Retracted { by: Option<String> },
    /// Its money would overflow a ledger sum: counted nowhere.
    Overflow,
    /// Accepted without an effect on the counts, with the fold's reason.
    NoEffect { reason: String },
}

/// One delivered activity event (visit, consultation, sale, cancellation) and its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventLineage {
    /// Place among the deliveries folded (0 first).
    pub delivery: usize,
    pub event_id: String,
    pub source: String,
    pub event_type: EventType,
    pub agent_id: String,
    /// The business date it counts on (a cancellation's own date).
    pub business_date: NaiveDate,
    /// When it happened, as sent (RFC 3339).
    pub occurred_at: String,
    /// The outlet it counts at: the payload's, or for a cancellation the outlet of the sale
    /// its refund is attributed to (none while pending).
    pub outlet_id: Option<String>,
    /// Premium of a sale, refund of a cancellation.
    pub amount: Option<Money>,
    pub outcome: Outcome,
    /// What it adds to the agent's ledger cell (zero unless counted).
    pub contribution: Counters,
    /// The agent's team on the business date (none when on no team that day).
    pub team_id: Option<String>,
}

impl EventLineage {
    /// Whether the event adds to the ledger.
    pub fn counts(&self) -> bool {
        matches!(self.outcome, Outcome::Counted | Outcome::RefundCounted)
    }
}

/// A fold that remembers its deliveries.
#[derive(Debug, Default)]
pub struct Lineage {
    ledger: Ledger,
    deliveries: Vec<(Event, Applied)>,
    /// The retraction that took each event back: target identity → retraction id.
    retracted_by: ByIdentity<String>,
}

fn is_activity(event_type: EventType) -> bool {
    matches!(
        event_type,
        EventType::OutletVisit
            | EventType::Consultation
            | EventType::SaleClosed
            | EventType::PolicyCancelled
    )
}

impl Lineage {
    pub fn new(clock: BusinessClock) -> Self {
        Self {
            ledger: Ledger::new(clock),
            ..Self::default()
        }
    }

    /// Folds one delivery, as the projector does; `bytes` are the event's canonical bytes.
    pub fn apply(&mut self, event: Event, bytes: &[u8]) -> Applied {
        let applied = self.ledger.apply(&event, digest(bytes));
        if let Payload::Retraction(retraction) = &event.payload
            && applied == Applied::Applied
            && !self
                .retracted_by
                .contains(&event.source, &retraction.retracted_event_id)
        {
            self.retracted_by.insert(
                &event.source,
                &retraction.retracted_event_id,
                event.event_id.clone(),
            );
        }
        if event.agent_id.is_some() && is_activity(event.event_type()) {
            self.deliveries.push((event, applied.clone()));
        }
        applied
    }

    /// Activity deliveries kept so far.
    pub fn delivered(&self) -> usize {
        self.deliveries.len()
    }

    /// The ledger folded so far.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The agent's team on `date`, when on one.
    pub fn team_on(&self, agent_id: &str, date: NaiveDate) -> Option<String> {
        let state = self.ledger.agents.get(agent_id)?;
        value_on(&state.memberships, date).cloned().flatten()
    }

    /// Every activity event delivered, in delivery order, with its fate now.
    pub fn events(&self) -> Vec<EventLineage> {
        self.deliveries
            .iter()
            .enumerate()
            .map(|(delivery, (event, applied))| self.lineage_of(delivery, event, applied))
            .collect()
    }

    fn lineage_of(&self, delivery: usize, event: &Event, applied: &Applied) -> EventLineage {
        let agent_id = event.agent_id.clone().unwrap_or_default();
        let state = self.ledger.agents.get(&agent_id);
        let mut lineage = EventLineage {
            delivery,
            event_id: event.event_id.clone(),
            source: event.source.clone(),
            event_type: event.event_type(),
            agent_id: agent_id.clone(),
            business_date: event.business_date(&self.ledger.clock),
            occurred_at: event.occurred_at.as_datetime().to_rfc3339(),
            outlet_id: payload_outlet(&event.payload),
            amount: payload_amount(&event.payload),
            outcome: Outcome::NoEffect {
                reason: String::new(),
            },
            contribution: Counters::default(),
            team_id: None,
        };
        lineage.team_id = self.team_on(&agent_id, lineage.business_date);
        lineage.outcome = match applied {
            Applied::Duplicate => Outcome::Duplicate,
            Applied::Conflict => Outcome::Conflict,
            Applied::Overflow(_) => Outcome::Overflow,
            Applied::NoEffect(reason) => Outcome::NoEffect {
                reason: (*reason).to_owned(),
            },
            Applied::Applied | Applied::Retracted => match state {
                Some(state) => self.fate(state, event, &mut lineage),
                None => Outcome::NoEffect {
                    reason: "agent unknown to the fold".to_owned(),
                },
            },
        };
        lineage
    }

    /// The fate of an event's first delivery, read from the final state.
    fn fate(&self, state: &AgentState, event: &Event, lineage: &mut EventLineage) -> Outcome {
        let (source, id) = (event.source.as_str(), event.event_id.as_str());
        match state.seen.get(source, id).and_then(|s| s.fact.as_ref()) {
            Some(AgentFact::Activity(activity)) => {
                lineage.contribution = activity.contribution.counters();
                lineage.outlet_id = Some(state.outlets.name(activity.outlet).to_owned());
                Outcome::Counted
            }
            Some(AgentFact::Cancellation(cancellation)) => {
                let (policy, refund) = (&cancellation.policy, &cancellation.refund);
                let attributed = state
                    .cancellations_by_policy
                    .get(policy)
                    .and_then(|c| c.get(&EventKey::new(source, id)))
                    .and_then(|c| c.attributed);
                match attributed {
                    Some(place) => {
                        lineage.contribution = refund_delta(*refund);
                        lineage.outlet_id = Some(state.outlets.name(place).to_owned());
                        Outcome::RefundCounted
                    }
                    None => Outcome::Pending,
                }
            }
            Some(_) => Outcome::NoEffect {
                reason: "not an activity".to_owned(),
            },
            None if state.retracted.contains(source, id)
                || self.ledger.reference.retracted.contains(source, id) =>
            {
                Outcome::Retracted {
                    by: self.retracted_by.get(source, id).cloned(),
                }
            }
            None => Outcome::NoEffect {
                reason: "not recorded by the fold".to_owned(),
            },
        }
    }
}

fn payload_outlet(payload: &Payload) -> Option<String> {
    match payload {
        Payload::OutletVisit(v) => Some(v.outlet_id.clone()),
        Payload::Consultation(c) => Some(c.outlet_id.clone()),
        Payload::SaleClosed(s) => Some(s.outlet_id.clone()),
        _ => None,
    }
}

fn payload_amount(payload: &Payload) -> Option<Money> {
    match payload {
        Payload::SaleClosed(s) => Some(s.premium),
        Payload::PolicyCancelled(c) => Some(c.refund),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use aqs_schemas::Decoder;

    use super::*;

    fn apply_all(lines: &[&str]) -> Lineage {
        let mut lineage = Lineage::new(BusinessClock::default());
        for line in lines {
            let event = Decoder::standard().decode(line.as_bytes()).expect("valid");
            lineage.apply(event, line.as_bytes());
        }
        lineage
    }

    const JOIN: &str = r#"{"event_id":"j1","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-10-30T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"team_id":"T1","effective_date":"2026-11-01"}}"#;
    const VISIT: &str = r#"{"event_id":"v1","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T10:00:00+08:00","source":"app","agent_id":"A1","payload":{"outlet_id":"O1","purpose":"promotion"}}"#;
    const VISIT_OTHER_BODY: &str = r#"{"event_id":"v1","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T10:00:00+08:00","source":"app","agent_id":"A1","payload":{"outlet_id":"O2","purpose":"promotion"}}"#;
    const SALE: &str = r#"{"event_id":"s1","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-03T11:00:00+08:00","source":"core","agent_id":"A1","payload":{"outlet_id":"O1","policy_id":"P1","product_code":"WL","premium":"10000.00","payment_mode":"single"}}"#;
    const CANCEL: &str = r#"{"event_id":"c1","type":"policy_cancelled","schema_version":1,"occurred_at":"2026-11-09T09:00:00+08:00","source":"core","agent_id":"A1","payload":{"policy_id":"P1","refund":"4000.00","reason":"cooling_off"}}"#;
    const CANCEL_UNKNOWN: &str = r#"{"event_id":"c2","type":"policy_cancelled","schema_version":1,"occurred_at":"2026-11-09T09:00:00+08:00","source":"core","agent_id":"A1","payload":{"policy_id":"P9","refund":"100.00","reason":"cooling_off"}}"#;
    const RETRACT_VISIT: &str = r#"{"event_id":"r1","type":"retraction","schema_version":1,"occurred_at":"2026-11-04T09:00:00+08:00","source":"app","agent_id":"A1","payload":{"retracted_event_id":"v2","reason":"entered twice"}}"#;
    const VISIT_2: &str = r#"{"event_id":"v2","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T12:00:00+08:00","source":"app","agent_id":"A1","payload":{"outlet_id":"O3","purpose":"promotion"}}"#;

    #[test]
    fn every_fate_is_named_and_the_counted_ones_add_up_to_the_ledger() {
        // The retraction arrives before its original; the cancellation before its sale.
        let lineage = apply_all(&[
            JOIN,
            RETRACT_VISIT,
            CANCEL,
            VISIT,
            VISIT,
            VISIT_OTHER_BODY,
            VISIT_2,
            SALE,
            CANCEL_UNKNOWN,
        ]);
        let events = lineage.events();
        let fates: Vec<(&str, &Outcome)> = events
            .iter()
            .map(|e| (e.event_id.as_str(), &e.outcome))
            .collect();
        assert_eq!(
            fates,
            vec![
                ("c1", &Outcome::RefundCounted),
                ("v1", &Outcome::Counted),
                ("v1", &Outcome::Duplicate),
                ("v1", &Outcome::Conflict),
                (
                    "v2",
                    &Outcome::Retracted {
                        by: Some("r1".to_owned())
                    }
                ),
                ("s1", &Outcome::Counted),
                ("c2", &Outcome::Pending),
            ]
        );
        assert_eq!(
            events[0].outlet_id.as_deref(),
            Some("O1"),
            "the sale's outlet"
        );
        assert_eq!(events[1].team_id.as_deref(), Some("T1"));
        let mut sum = Counters::default();
        for event in events.iter().filter(|e| e.counts()) {
            sum.add(&event.contribution);
        }
        let mut ledger = Counters::default();
        for row in lineage.ledger().tables().agent_outlet_day {
            ledger.add(&row.counters);
        }
        assert_eq!(sum, ledger);
        assert_eq!(sum.refunds, Money::from_units(400_000));
    }
}
