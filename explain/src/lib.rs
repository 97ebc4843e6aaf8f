//! The events behind each figure of an agent or team row, and the events that moved a figure
//! between two KPI runs.
//!
//! Lineage is computed from the log, not kept: the events that can touch the agents asked
//! about are read back and folded with the projector's own fold
//! ([`aqs_projector::ledger::lineage`]), which says per event whether it counted, was a
//! duplicate, a conflict, retracted, a refund of a cancelled sale or pending, and on which
//! team's day it landed. The counted events therefore add up to the ledger's figures by
//! construction (docs/design.md, note 46).
//!
//! - [`explain_records`]: the pure procedure, from records to an [`Explanation`];
//! - [`LogExplainer`]: reads an event log ([`LineageLog`]: the embedded log, or Kafka through
//!   [`aqs_eventlog::kafka::KafkaHistory`]) and a ledger store's roster ([`Roster`]: the
//!   embedded store or ClickHouse), behind the [`Explain`] trait the dashboard calls.

pub mod changes;
pub mod figures;
mod reader;
mod roster;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use aqs_projector::ledger::lineage::{EventLineage, Lineage, Outcome};
use aqs_schemas::{BusinessClock, Decoder, Event, decode_canonical};
use chrono::NaiveDate;
use serde::Serialize;

pub use changes::{ChangedEvent, Changes};
pub use figures::{EXPLAINED_COLUMNS, Figures};
pub use reader::{EmbeddedLog, LineageLog, Record, records_of};
pub use roster::{ClickHouseRoster, EmbeddedRoster, Roster};

/// Whose figures are explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Agent(String),
    Team(String),
}

impl Subject {
    /// From the KPI table's `scope` and `scope_id`.
    pub fn parse(scope: &str, id: &str) -> Option<Self> {
        match scope {
            "agent" => Some(Self::Agent(id.to_owned())),
            "team" => Some(Self::Team(id.to_owned())),
            _ => None,
        }
    }
}

/// A row to explain: a subject and the days of its period counted (through the as-of date).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub subject: Subject,
    pub from: NaiveDate,
    pub through: NaiveDate,
}

/// One event behind a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explained {
    #[serde(flatten)]
    pub event: EventLineage,
    /// Whether it adds to this row's figures.
    pub counted_here: bool,
    /// When the log took it (RFC 3339, UTC), when known.
    pub recorded_at: Option<String>,
    /// Why an event that counts elsewhere does not count here (another team's day).
    pub note: Option<String>,
}

/// The events behind a row and what they add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub events: Vec<Explained>,
    /// The sums of the events counted here, column by column.
    pub figures: Figures,
    /// What it took: records read and folded, milliseconds.
    pub cost: Cost,
}

/// What an explanation cost to compute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Cost {
    pub records_read: u64,
    pub events_folded: u64,
    pub millis: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("reading the event log: {0}")]
    Log(#[from] aqs_eventlog::LogError),
    #[error("reading the team's roster from the ledger store: {0}")]
    Roster(String),
}

/// What the dashboard asks: the events behind a row, and what moved a row since a time.
pub trait Explain: Send + Sync {
    fn explain(&self, request: &Request) -> Result<Explanation, ExplainError>;
    /// The events of `request` whose effect on its figures differs between the log as it
    /// was at `since_ms` (milliseconds since the epoch) and the log now.
    fn changes(&self, request: &Request, since_ms: i64) -> Result<Changes, ExplainError>;
}

/// Decodes a record of the log as the projector does: the canonical fast path, else the
/// full decoder; a record that is no event is skipped (the projector sets it aside).
fn decode(bytes: &[u8]) -> Option<Event> {
    decode_canonical(bytes)
        .ok()
        .or_else(|| Decoder::standard().decode(bytes).ok())
}

/// Folds records one at a time: those of the subject's agents (and every reference
/// record), taking only the records appended at or before `cutoff_ms` when given.
#[derive(Debug)]
pub struct Folder<'a> {
    lineage: Lineage,
    /// When each kept delivery was appended, by delivery.
    recorded: Vec<Option<i64>>,
    cost: Cost,
    agents: &'a BTreeSet<String>,
    cutoff_ms: Option<i64>,
}

impl<'a> Folder<'a> {
    pub fn new(agents: &'a BTreeSet<String>, clock: BusinessClock, cutoff_ms: Option<i64>) -> Self {
        Self {
            lineage: Lineage::new(clock),
            recorded: Vec::new(),
            cost: Cost::default(),
            agents,
            cutoff_ms,
        }
    }

    pub fn push(&mut self, record: Record) {
        self.cost.records_read += 1;
        if let (Some(cutoff), Some(at)) = (self.cutoff_ms, record.appended_at_ms)
            && at > cutoff
        {
            return;
        }
        let Some(event) = decode(&record.bytes) else {
            return;
        };
        if let Some(agent) = &event.agent_id
            && !self.agents.contains(agent)
        {
            return;
        }
        self.cost.events_folded += 1;
        let before = self.lineage.delivered();
        self.lineage.apply(event, &record.bytes);
        if self.lineage.delivered() > before {
            self.recorded.push(record.appended_at_ms);
        }
    }

    /// The events behind `request`'s row among those folded (any number of rows of the
    /// same agents from one fold).
    pub fn explanation(&self, request: &Request) -> Explanation {
        let events = explained(&self.lineage, &self.recorded, request);
        let figures = Figures::of(events.iter().filter(|e| e.counted_here).map(|e| &e.event));
        Explanation {
            events,
            figures,
            cost: self.cost,
        }
    }
}

/// The events behind `request`'s row among `records`; `agents` are the subject's agents (a
/// team's: everyone on its roster on a day of the period).
pub fn explain_records(
    records: impl IntoIterator<Item = Record>,
    request: &Request,
    agents: &BTreeSet<String>,
    clock: BusinessClock,
) -> Explanation {
    let started = Instant::now();
    let mut folder = Folder::new(agents, clock, None);
    for record in records {
        folder.push(record);
    }
    let mut explanation = folder.explanation(request);
    explanation.cost.millis = started.elapsed().as_millis() as u64;
    explanation
}

/// The events of a folded lineage that lie in the request's days, with whether each counts
/// for the row.
fn explained(lineage: &Lineage, recorded: &[Option<i64>], request: &Request) -> Vec<Explained> {
    lineage
        .events()
        .into_iter()
        .filter(|e| e.business_date >= request.from && e.business_date <= request.through)
        .filter(|e| match &request.subject {
            Subject::Agent(agent) => &e.agent_id == agent,
            Subject::Team(_) => true,
        })
        .map(|event| {
            let recorded_at = recorded
                .get(event.delivery)
                .copied()
                .flatten()
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|at| at.to_rfc3339());
            let (counted_here, note) = match &request.subject {
                Subject::Agent(_) => (event.counts(), None),
                Subject::Team(team) => {
                    let here = event.team_id.as_deref() == Some(team.as_str());
                    let note = (event.counts() && !here).then(|| match &event.team_id {
                        Some(other) => {
                            format!("counted for team {other} (the agent's team that day)")
                        }
                        None => "counted for the agent only (on no team that day)".to_owned(),
                    });
                    (event.counts() && here, note)
                }
            };
            Explained {
                event,
                counted_here,
                recorded_at,
                note,
            }
        })
        .collect()
}

/// Whether an outcome is one a reader would call "taken back" (for short summaries).
pub fn is_retraction(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Retracted { .. })
}

/// Explains rows from an event log (the embedded log or Kafka) and a ledger store's roster
/// (the embedded store or ClickHouse).
pub struct LogExplainer {
    log: Box<dyn LineageLog + Send + Sync>,
    roster: Box<dyn Roster + Send + Sync>,
    clock: BusinessClock,
}

impl std::fmt::Debug for LogExplainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogExplainer")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl LogExplainer {
    pub fn new(
        log: Box<dyn LineageLog + Send + Sync>,
        roster: Box<dyn Roster + Send + Sync>,
        clock: BusinessClock,
    ) -> Self {
        Self { log, roster, clock }
    }

    /// On the embedded stores of a data folder: the log `events` (`events.db`) and the
    /// ledger store `ledgers` (`ledgers.db`).
    pub fn embedded(events: PathBuf, ledgers: PathBuf, clock: BusinessClock) -> Self {
        Self::new(
            Box::new(EmbeddedLog::new(events)),
            Box::new(EmbeddedRoster::new(ledgers)),
            clock,
        )
    }

    /// The agents of `request`'s subject.
    fn agents(&self, request: &Request) -> Result<BTreeSet<String>, ExplainError> {
        Ok(match &request.subject {
            Subject::Agent(agent) => BTreeSet::from([agent.clone()]),
            Subject::Team(team) => self
                .roster
                .team_members(team, request.from, request.through)
                .map_err(ExplainError::Roster)?
                .into_iter()
                .collect(),
        })
    }

    /// Folds the log's records of `agents` into `folder`.
    fn fold(
        &self,
        agents: &BTreeSet<String>,
        folder: &mut dyn FnMut(Record),
    ) -> Result<(), ExplainError> {
        self.log.each_record_of(agents, folder)?;
        Ok(())
    }
}

impl Explain for LogExplainer {
    fn explain(&self, request: &Request) -> Result<Explanation, ExplainError> {
        let started = Instant::now();
        let agents = self.agents(request)?;
        let mut folder = Folder::new(&agents, self.clock, None);
        self.fold(&agents, &mut |record| folder.push(record))?;
        let mut explanation = folder.explanation(request);
        explanation.cost.millis = started.elapsed().as_millis() as u64;
        tracing::debug!(
            subject = ?request.subject,
            from = %request.from,
            through = %request.through,
            records = explanation.cost.records_read,
            millis = explanation.cost.millis,
            "figures explained"
        );
        Ok(explanation)
    }

    fn changes(&self, request: &Request, since_ms: i64) -> Result<Changes, ExplainError> {
        let agents = self.agents(request)?;
        let mut before = Folder::new(&agents, self.clock, Some(since_ms));
        let mut now = Folder::new(&agents, self.clock, None);
        self.fold(&agents, &mut |record| {
            before.push(record.clone());
            now.push(record);
        })?;
        Ok(changes::changes_between(
            &before,
            &now,
            request,
            &self.clock,
        ))
    }
}
