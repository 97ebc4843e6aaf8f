//! What moved a row's figures between an earlier state of the log and now: the log folded
//! twice, once up to the earlier time and once whole, and the events whose effect on the
//! row differs. Their contributions add up to the change of every figure, by construction.

use std::collections::BTreeMap;

use aqs_projector::ledger::Counters;
use aqs_projector::ledger::lineage::Outcome;
use aqs_schemas::{BusinessClock, EventType, OccurredAt};
use serde::Serialize;

use crate::{Explained, Figures, Folder, Request};

/// Why an event moved a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Recorded after the earlier time, on a date before the day it was recorded.
    LateEvent,
    /// Recorded after the earlier time, on its own day or later.
    NewEvent,
    /// Counted before, retracted since.
    Retraction,
    /// A refund that counts now and did not before (a cancellation, or the sale it waited for).
    Cancellation,
    /// A cancellation's refund no longer counts (its sale was retracted).
    RefundWithdrawn,
    /// Counted for another team now (a roster change recorded since).
    Transfer,
    /// Any other change of fate.
    Other,
}

/// One event whose effect on the row changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedEvent {
    #[serde(flatten)]
    pub now: Explained,
    /// Its fate at the earlier time (none when the log did not hold it yet).
    pub before: Option<Outcome>,
    pub counted_here_before: bool,
    pub cause: Cause,
}

/// The row's figures then and now, and the events that moved them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    pub before: Figures,
    pub now: Figures,
    pub events: Vec<ChangedEvent>,
}

/// An event delivery's identity across the two folds: source, id and which delivery of
/// that identity it is.
type Key = (String, String, usize);

fn keyed(events: Vec<Explained>) -> BTreeMap<Key, Explained> {
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    events
        .into_iter()
        .map(|e| {
            let n = seen
                .entry((e.event.source.clone(), e.event.event_id.clone()))
                .or_default();
            *n += 1;
            ((e.event.source.clone(), e.event.event_id.clone(), *n), e)
        })
        .collect()
}

fn effect(e: &Explained) -> (bool, Counters, Option<&str>) {
    if e.counted_here {
        (true, e.event.contribution, e.event.outlet_id.as_deref())
    } else {
        (false, Counters::default(), None)
    }
}

fn cause(before: Option<&Explained>, now: &Explained, clock: &BusinessClock) -> Cause {
    let after = &now.event.outcome;
    match before {
        None => {
            let recorded_on = now
                .recorded_at
                .as_deref()
                .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                .map(|at| clock.business_date(&OccurredAt::new(at)));
            if now.event.event_type == EventType::PolicyCancelled && now.counted_here {
                Cause::Cancellation
            } else if recorded_on.is_some_and(|day| now.event.business_date < day) {
                Cause::LateEvent
            } else {
                Cause::NewEvent
            }
        }
        Some(before) => match (&before.event.outcome, after) {
            (_, Outcome::Retracted { .. }) => Cause::Retraction,
            (Outcome::Pending, Outcome::RefundCounted) => Cause::Cancellation,
            (Outcome::RefundCounted, Outcome::Pending) => Cause::RefundWithdrawn,
            _ if before.event.team_id != now.event.team_id => Cause::Transfer,
            _ => Cause::Other,
        },
    }
}

/// The events whose effect on `request`'s row differs between `before` (the log up to the
/// earlier time) and `now` (the whole log), both folded from the same records.
pub fn changes_between(
    before: &Folder<'_>,
    now: &Folder<'_>,
    request: &Request,
    clock: &BusinessClock,
) -> Changes {
    let before = before.explanation(request);
    let now = now.explanation(request);
    let earlier = keyed(before.events);
    let mut events = Vec::new();
    for (key, current) in keyed(now.events) {
        let then = earlier.get(&key);
        let moved = match then {
            Some(then) => effect(then) != effect(&current),
            None => current.counted_here,
        };
        if moved {
            events.push(ChangedEvent {
                cause: cause(then, &current, clock),
                before: then.map(|t| t.event.outcome.clone()),
                counted_here_before: then.is_some_and(|t| t.counted_here),
                now: current,
            });
        }
    }
    // By date, as a reader goes through a period.
    events.sort_by(|a, b| {
        (
            a.now.event.business_date,
            &a.now.event.occurred_at,
            &a.now.event.event_id,
        )
            .cmp(&(
                b.now.event.business_date,
                &b.now.event.occurred_at,
                &b.now.event.event_id,
            ))
    });
    Changes {
        before: before.figures,
        now: now.figures,
        events,
    }
}
