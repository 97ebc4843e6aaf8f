//! What the ledger remembers of each agent event it has seen, in as few bytes as it can:
//! the fold keeps one such record for every event ever seen (a late retraction or copy must
//! still be recognised), so its size is the projector's memory per event.

use aqs_schemas::{Money, YearMonth};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{Counters, TimelineKey, VersionKey};

/// One sighting of an event identity: the digest of the first body seen (a later copy
/// with another body is a conflict) and, while the event counts, what it contributed (so
/// that a retraction can take it back). Retractions, repeats and events that count nowhere
/// keep the digest alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Sighting {
    pub digest: u64,
    pub fact: Option<AgentFact>,
}

/// A record of the first sighting of an identity, made from the body's digest.
pub(super) trait Sighted {
    fn first(digest: u64) -> Self;
    fn digest(&self) -> u64;
}

impl Sighted for u64 {
    fn first(digest: u64) -> Self {
        digest
    }
    fn digest(&self) -> u64 {
        *self
    }
}

impl Sighted for Sighting {
    fn first(digest: u64) -> Self {
        Self { digest, fact: None }
    }
    fn digest(&self) -> u64 {
        self.digest
    }
}

/// What an accepted agent event contributed. Activity, nearly every event, is kept inline;
/// the rare kinds are boxed so that they do not widen every record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum AgentFact {
    Activity(Activity),
    Cancellation(Box<CancellationFact>),
    Membership(Box<TimelineKey>),
    Assignment(Box<(String, TimelineKey)>),
    Plan(Box<((NaiveDate, NaiveDate), VersionKey)>),
    Target(Box<(YearMonth, VersionKey)>),
    Profile(Box<VersionKey>),
    /// A supervisor's fact about this agent, held in the agent's supervision rows.
    Supervision,
}

/// A visit, consultation or sale on its business date at an outlet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Activity {
    #[serde(with = "day_number")]
    pub date: NaiveDate,
    /// The outlet, as its place in the agent's [`OutletNames`].
    pub outlet: u32,
    pub contribution: Contribution,
    /// The policy of a sale.
    pub policy: Option<Box<str>>,
}

/// The counters an activity adds, without the zeros.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(super) enum Contribution {
    Visit,
    Consultation { consulted: u32, interested: u32 },
    Sale { premium: Money },
}

impl Contribution {
    pub fn counters(self) -> Counters {
        match self {
            Self::Visit => Counters {
                visits: 1,
                ..Counters::default()
            },
            Self::Consultation {
                consulted,
                interested,
            } => Counters {
                consultations: 1,
                customers_consulted: i64::from(consulted),
                customers_interested: i64::from(interested),
                ..Counters::default()
            },
            Self::Sale { premium } => Counters {
                sales: 1,
                premium,
                ..Counters::default()
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CancellationFact {
    #[serde(with = "day_number")]
    pub date: NaiveDate,
    pub policy: String,
    pub refund: Money,
}

/// A date kept in a record or the saved state as its day number (days from 1 January of
/// year 1, `num_days_from_ce`): three bytes in the saved form, where chrono's own is the
/// ten characters of the ISO date, made by the formatter for every record.
pub(super) mod day_number {
    use chrono::{Datelike, NaiveDate};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(date: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(date.num_days_from_ce())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
        let days = i32::deserialize(deserializer)?;
        NaiveDate::from_num_days_from_ce_opt(days)
            .ok_or_else(|| D::Error::custom(format!("day number {days} is out of range")))
    }
}

/// The outlets an agent's activity happened at, each name kept once per agent and named
/// by its place (an agent works at a handful of outlets, so a scan finds one).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct OutletNames(Vec<String>);

impl OutletNames {
    pub fn place(&mut self, outlet: &str) -> u32 {
        let at = match self.0.iter().position(|known| known == outlet) {
            Some(at) => at,
            None => {
                self.0.push(outlet.to_owned());
                self.0.len() - 1
            }
        };
        u32::try_from(at).expect("an agent works at fewer than 4 billion outlets")
    }

    pub fn names(&self) -> &Vec<String> {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn name(&self, place: u32) -> &str {
        &self.0[place as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Dated(#[serde(with = "day_number")] NaiveDate);

    #[test]
    fn dates_are_saved_as_day_numbers_and_read_back_the_same() {
        for date in [
            NaiveDate::MIN,
            NaiveDate::MAX,
            "2026-11-02".parse().expect("date"),
        ] {
            let bytes = postcard::to_allocvec(&Dated(date)).expect("encode");
            assert_eq!(
                postcard::from_bytes::<Dated>(&bytes).expect("decode"),
                Dated(date)
            );
        }
        let today = postcard::to_allocvec(&Dated("2026-11-02".parse().expect("date")));
        assert_eq!(
            today.expect("encode").len(),
            3,
            "a day of our era in three bytes"
        );
        let beyond = postcard::to_allocvec(&i32::MAX).expect("encode");
        assert!(postcard::from_bytes::<Dated>(&beyond).is_err());
    }

    #[test]
    fn an_activity_record_stays_small() {
        // The size of a record is the projector's memory per event; keep it from growing
        // by accident.
        assert!(
            std::mem::size_of::<Sighting>() <= 56,
            "{}",
            std::mem::size_of::<Sighting>()
        );
    }

    #[test]
    fn an_outlet_is_named_once_per_agent() {
        let mut names = OutletNames::default();
        assert_eq!(names.place("B001"), 0);
        assert_eq!(names.place("B002"), 1);
        assert_eq!(names.place("B001"), 0);
        assert_eq!(names.name(1), "B002");
    }

    #[test]
    fn a_contribution_adds_what_the_event_counted() {
        let sale = Contribution::Sale {
            premium: Money::from_units(12_345),
        }
        .counters();
        assert_eq!((sale.sales, sale.premium.units()), (1, 12_345));
        let consultation = Contribution::Consultation {
            consulted: 3,
            interested: 2,
        }
        .counters();
        assert_eq!(
            (
                consultation.consultations,
                consultation.customers_consulted,
                consultation.customers_interested
            ),
            (1, 3, 2)
        );
        assert_eq!(Contribution::Visit.counters().visits, 1);
    }
}
