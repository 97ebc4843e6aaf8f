//! Events the ledger stores cannot hold, set aside at fold time.
//!
//! Ingest checks events at the door, but a log may already hold events it would refuse today
//! (written before a check existed, or by another producer of the Kafka topics), and the
//! projector reads records without validating them again. An event with a value a store
//! cannot hold (a date outside ClickHouse's `Date`, an amount outside the contract's money)
//! would make every write of its rows fail and stop the pipeline; a retraction would not help.
//! Such an event is quarantined instead: it counts nowhere, a warning names it with its
//! partition and offset, a metric counts it by reason, and a record of it (the bytes as read,
//! the reason) is kept in the projector's own store, where `aqs projector quarantined` lists
//! it. Whether an event is quarantined depends on the event alone, so the rule keeps the fold
//! order-independent and a replay quarantines the same events again (the record is kept once).

use aqs_schemas::{BusinessClock, Event, Money, Payload};
use chrono::NaiveDate;

/// The first date every ledger store holds: ClickHouse `Date` starts at 1970-01-01.
pub const FIRST_STORABLE_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(date) => date,
    None => panic!("a valid date"),
};

/// The last date every ledger store holds: ClickHouse `Date` ends at 2149-06-06.
pub const LAST_STORABLE_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2149, 6, 6) {
    Some(date) => date,
    None => panic!("a valid date"),
};

/// The largest amount of one event: the contract's money, 13 integer digits and 2 decimals.
pub const MAX_MONEY_FEN: i64 = 999_999_999_999_999;

/// Why an event was set aside.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuarantineReason {
    #[error(
        "{field} {date} is outside the dates the ledger stores hold ({FIRST_STORABLE_DATE} to {LAST_STORABLE_DATE})"
    )]
    DateOutOfRange {
        field: &'static str,
        date: NaiveDate,
    },
    #[error("{field} {amount} is outside the contract's money (0.00 to 9999999999999.99)")]
    MoneyOutOfRange { field: &'static str, amount: Money },
    #[error("the record is not an event: {0}")]
    Undecodable(String),
}

impl QuarantineReason {
    /// The reason's label in metrics and records.
    pub fn code(&self) -> &'static str {
        match self {
            QuarantineReason::DateOutOfRange { .. } => "date_out_of_range",
            QuarantineReason::MoneyOutOfRange { .. } => "money_out_of_range",
            QuarantineReason::Undecodable(_) => "undecodable",
        }
    }

    /// Every reason's label, for metrics that list each one.
    pub const CODES: [&'static str; 3] = ["date_out_of_range", "money_out_of_range", "undecodable"];
}

fn date(field: &'static str, date: NaiveDate) -> Result<(), QuarantineReason> {
    if (FIRST_STORABLE_DATE..=LAST_STORABLE_DATE).contains(&date) {
        Ok(())
    } else {
        Err(QuarantineReason::DateOutOfRange { field, date })
    }
}

fn money(field: &'static str, amount: Money) -> Result<(), QuarantineReason> {
    if (0..=MAX_MONEY_FEN).contains(&amount.units()) {
        Ok(())
    } else {
        Err(QuarantineReason::MoneyOutOfRange { field, amount })
    }
}

/// Whether every value of `event` that reaches a ledger row can be stored; the first that
/// cannot, otherwise. Pure.
pub fn check(event: &Event, clock: &BusinessClock) -> Result<(), QuarantineReason> {
    let business_date = || date("occurred_at (business date)", event.business_date(clock));
    match &event.payload {
        Payload::OutletVisit(_) | Payload::Consultation(_) => business_date(),
        Payload::SaleClosed(sale) => {
            business_date()?;
            money("payload.premium", sale.premium)
        }
        Payload::PolicyCancelled(cancellation) => {
            business_date()?;
            money("payload.refund", cancellation.refund)
        }
        Payload::ActivityPlan(plan) => {
            date("payload.period_start", plan.period_start)?;
            date("payload.period_end", plan.period_end)
        }
        Payload::Target(target) => {
            date("payload.month", target.month.first_day())?;
            target
                .premium
                .map_or(Ok(()), |premium| money("payload.premium", premium))
        }
        Payload::AgentJoinedTeam(join) => date("payload.effective_date", join.effective_date),
        Payload::AgentLeft(left) => date("payload.effective_date", left.effective_date),
        Payload::OutletAssigned(assigned) => {
            date("payload.effective_date", assigned.effective_date)
        }
        Payload::OutletUnassigned(unassigned) => {
            date("payload.effective_date", unassigned.effective_date)
        }
        Payload::CalendarDay(day) => date("payload.date", day.date),
        Payload::TeamDefined(team) => team
            .effective_from
            .map_or(Ok(()), |from| date("payload.effective_from", from)),
        Payload::OutletRegistered(_) | Payload::AgentProfile(_) | Payload::Retraction(_) => Ok(()),
        Payload::CoachingSession(_)
        | Payload::AccompaniedVisit(_)
        | Payload::TeamMeeting(_)
        | Payload::ImprovementMeasureStatus(_) => business_date(),
        Payload::SkillWillEvaluation(evaluation) => {
            business_date()?;
            date("payload.month", evaluation.month.first_day())
        }
        Payload::ImprovementMeasure(measure) => {
            business_date()?;
            date("payload.month", measure.month.first_day())?;
            date("payload.due_date", measure.due_date)
        }
    }
}

#[cfg(test)]
mod tests {
    use aqs_schemas::{OccurredAt, YearMonth, decode_canonical};
    use chrono::DateTime;

    use super::*;

    /// An event of today's contract, then given a value no store holds (the contract refuses
    /// such values now, but a log may hold them from before).
    fn event(line: &str, change: impl FnOnce(&mut Event)) -> Event {
        let mut event = decode_canonical(line.as_bytes()).expect("canonical");
        change(&mut event);
        event
    }

    fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).expect("date")
    }

    fn reason(event: &Event) -> Option<String> {
        check(event, &BusinessClock::default())
            .err()
            .map(|r| r.to_string())
    }

    const PLAN: &str = r#"{"event_id":"p1","type":"activity_plan","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","agent_id":"A1","payload":{"period_start":"2026-11-02","period_end":"2026-11-08","visits":3}}"#;
    const TARGET: &str = r#"{"event_id":"g1","type":"target","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","payload":{"month":"2026-11","scope":"team","scope_id":"T1","premium":"10.00"}}"#;

    #[test]
    fn values_beyond_the_stores_are_named_with_their_field() {
        let plan = event(PLAN, |e| {
            if let Payload::ActivityPlan(p) = &mut e.payload {
                p.period_start = ymd(1969, 12, 31);
            }
        });
        let found = reason(&plan).expect("quarantined");
        assert!(
            found.contains("payload.period_start") && found.contains("1969-12-31"),
            "{found}"
        );

        let join = event(
            r#"{"event_id":"j1","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","agent_id":"A1","payload":{"team_id":"T1","effective_date":"2026-11-01"}}"#,
            |e| {
                if let Payload::AgentJoinedTeam(j) = &mut e.payload {
                    j.effective_date = ymd(2150, 1, 1);
                }
            },
        );
        assert!(reason_of(&join).contains("payload.effective_date"));

        let target = event(TARGET, |e| {
            if let Payload::Target(t) = &mut e.payload {
                t.month = YearMonth::new(2150, 1).expect("month");
            }
        });
        assert!(reason_of(&target).contains("payload.month"));

        let day = event(
            r#"{"event_id":"c1","type":"calendar_day","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","payload":{"date":"2026-10-01","kind":"holiday"}}"#,
            |e| {
                if let Payload::CalendarDay(d) = &mut e.payload {
                    d.date = ymd(1969, 10, 1);
                }
            },
        );
        assert!(reason_of(&day).contains("payload.date"));

        // 1969 would sort before the row standing for "from the beginning" (1970-01-01).
        let team = event(
            r#"{"event_id":"t1","type":"team_defined","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","payload":{"team_id":"T1","team_name":"T","branch_id":"B1","region_id":"R1","effective_from":"2026-11-15"}}"#,
            |e| {
                if let Payload::TeamDefined(t) = &mut e.payload {
                    t.effective_from = Some(ymd(1969, 12, 31));
                }
            },
        );
        assert!(reason_of(&team).contains("payload.effective_from"));

        // The business date of a visit at 2149-06-06T20:00Z is 2149-06-07 in Shanghai.
        let visit = event(
            r#"{"event_id":"v1","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","agent_id":"A1","payload":{"outlet_id":"O1","purpose":"other"}}"#,
            |e| {
                e.occurred_at = OccurredAt::new(
                    DateTime::parse_from_rfc3339("2149-06-06T20:00:00Z").expect("instant"),
                );
            },
        );
        assert!(reason_of(&visit).contains("2149-06-07"));

        let sale = event(
            r#"{"event_id":"s1","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","agent_id":"A1","payload":{"outlet_id":"O1","policy_id":"P","product_code":"X","premium":"5.00","payment_mode":"single"}}"#,
            |e| {
                if let Payload::SaleClosed(s) = &mut e.payload {
                    s.premium = Money::from_units(-500);
                }
            },
        );
        assert!(reason_of(&sale).contains("payload.premium"));
    }

    fn reason_of(event: &Event) -> String {
        reason(event).expect("quarantined")
    }

    #[test]
    fn the_edges_of_the_range_are_kept() {
        let plan = event(PLAN, |e| {
            if let Payload::ActivityPlan(p) = &mut e.payload {
                p.period_start = ymd(1970, 1, 1);
                p.period_end = ymd(2149, 6, 6);
            }
        });
        assert_eq!(reason(&plan), None);
        let target = event(TARGET, |e| {
            if let Payload::Target(t) = &mut e.payload {
                t.month = YearMonth::new(2149, 6).expect("month");
                t.premium = Some(Money::from_units(MAX_MONEY_FEN));
            }
        });
        assert_eq!(reason(&target), None);
    }
}
