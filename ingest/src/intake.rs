//! Judging a batch and handing it to the log: the synchronous core of `POST /v1/events`.
//!
//! Both steps block (schema validation is CPU work, the log call is I/O): the server runs
//! them on the blocking pool.

use std::sync::Arc;
use std::time::Instant;

use aqs_eventlog::{AppendOutcome, DeadLetter, EventLog, LogError};
use aqs_schemas::{Decoder, Event};

use crate::answer::{BatchAnswer, EventError, EventResult, EventStatus};
use crate::auth::SourceAccess;
use crate::batch::Item;
use crate::metrics::Metrics;

/// Who sent a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A token of this source: every event must carry it as `source`, and be of a class
    /// the source is granted.
    Source(Arc<SourceAccess>),
    /// Authentication is off: any source goes.
    Anyone,
}

impl Principal {
    /// The origin recorded with dead letters: `http <source>` or `http unauthenticated`.
    pub fn origin(&self) -> String {
        match self {
            Principal::Source(access) => format!("http {}", access.source),
            Principal::Anyone => "http unauthenticated".to_owned(),
        }
    }

    /// The source for logs and metrics.
    pub fn label(&self) -> &str {
        match self {
            Principal::Source(access) => &access.source,
            Principal::Anyone => "-",
        }
    }

    /// Why this sender may not append `event`, if it may not.
    fn refusal(&self, event: &Event) -> Option<EventError> {
        let Principal::Source(access) = self else {
            return None;
        };
        if event.source != access.source {
            return Some(EventError::new(
                "source",
                "source_mismatch",
                format!(
                    "the token is for source {:?}, not {:?}",
                    access.source, event.source
                ),
            ));
        }
        let class = event.event_type().class();
        if !access.grants.allows(class) {
            return Some(EventError::new(
                "type",
                "not_granted",
                format!(
                    "source {:?} is not granted {class} events ({}); its token grants: {}",
                    access.source,
                    event.event_type(),
                    access.grants.describe()
                ),
            ));
        }
        None
    }
}

/// One event of a batch, judged.
#[derive(Debug)]
pub struct Judged {
    pub index: usize,
    pub line: Option<u64>,
    pub verdict: Verdict,
}

/// Whether an event may go to the log.
#[derive(Debug)]
pub enum Verdict {
    Valid(Event),
    Rejected {
        event_id: Option<String>,
        errors: Vec<EventError>,
        /// The event as received, for its dead letter.
        bytes: Vec<u8>,
    },
}

/// Decodes every item and checks that it comes from the principal's source, in a class
/// that source is granted.
pub fn judge(items: &[Item<'_>], principal: &Principal, decoder: &Decoder) -> Vec<Judged> {
    items
        .iter()
        .map(|item| {
            let verdict = match decoder.decode(item.bytes) {
                Ok(event) => match principal.refusal(&event) {
                    Some(error) => Verdict::Rejected {
                        errors: vec![error],
                        event_id: Some(event.event_id),
                        bytes: item.bytes.to_vec(),
                    },
                    None => Verdict::Valid(event),
                },
                Err(rejection) => Verdict::Rejected {
                    event_id: rejection.event_id.clone(),
                    errors: rejection.errors.iter().map(EventError::from).collect(),
                    bytes: item.bytes.to_vec(),
                },
            };
            Judged {
                index: item.index,
                line: item.line,
                verdict,
            }
        })
        .collect()
}

/// Whether any judged event was rejected.
pub fn any_rejected(judged: &[Judged]) -> bool {
    judged
        .iter()
        .any(|j| matches!(j.verdict, Verdict::Rejected { .. }))
}

/// Appends the valid events and keeps the refused ones as dead letters; the answer tells
/// each event's fate.
///
/// `atomic`: when any event is rejected, no event is appended (the valid ones are
/// `skipped`). An error means that nothing may be reported as accepted: the caller answers
/// 503 (transient) or 500, and the client retries the whole batch, which is safe because
/// events already appended then come back as duplicates.
pub fn store(
    log: &dyn EventLog,
    judged: Vec<Judged>,
    atomic: bool,
    principal: &Principal,
    metrics: &Metrics,
) -> Result<BatchAnswer, LogError> {
    let origin = principal.origin();
    let hold_back = atomic && any_rejected(&judged);
    let valid: Vec<Event> = if hold_back {
        Vec::new()
    } else {
        judged
            .iter()
            .filter_map(|j| match &j.verdict {
                Verdict::Valid(event) => Some(event.clone()),
                Verdict::Rejected { .. } => None,
            })
            .collect()
    };
    let mut outcomes = if valid.is_empty() {
        Vec::new()
    } else {
        let started = Instant::now();
        let result = log.append(&valid);
        metrics.observe_append(started.elapsed());
        let outcomes = result?;
        if outcomes.len() != valid.len() {
            return Err(LogError::Unavailable(format!(
                "the log answered {} outcomes for {} events",
                outcomes.len(),
                valid.len()
            )));
        }
        outcomes
    }
    .into_iter();

    let mut answer = BatchAnswer::default();
    let mut letters = Vec::new();
    for judged in judged {
        let place = match judged.line {
            Some(line) => format!("{origin} line {line}"),
            None => format!("{origin} item {}", judged.index),
        };
        let (event_id, status, errors) = match judged.verdict {
            Verdict::Rejected {
                event_id,
                errors,
                bytes,
            } => {
                letters.push(DeadLetter {
                    origin: place,
                    event_id: event_id.clone(),
                    body: bytes,
                    reason: serde_json::to_string(&errors)?,
                });
                (event_id, EventStatus::Rejected, errors)
            }
            Verdict::Valid(event) if hold_back => {
                (Some(event.event_id), EventStatus::Skipped, Vec::new())
            }
            Verdict::Valid(event) => match outcomes.next() {
                Some(AppendOutcome::Appended { .. }) => {
                    (Some(event.event_id), EventStatus::Accepted, Vec::new())
                }
                Some(AppendOutcome::Duplicate) => {
                    (Some(event.event_id), EventStatus::Duplicate, Vec::new())
                }
                Some(AppendOutcome::Conflict) => {
                    let error = EventError::new(
                        "event_id",
                        "conflict",
                        "an event with this id and different content is already in the log; \
                         the first one stays",
                    );
                    letters.push(DeadLetter {
                        origin: place,
                        event_id: Some(event.event_id.clone()),
                        body: serde_json::to_vec(&event)?,
                        reason: serde_json::to_string(std::slice::from_ref(&error))?,
                    });
                    (Some(event.event_id), EventStatus::Conflict, vec![error])
                }
                None => {
                    return Err(LogError::Unavailable(
                        "the log answered fewer outcomes than events".to_owned(),
                    ));
                }
            },
        };
        answer.push(EventResult {
            index: judged.index,
            line: judged.line,
            event_id,
            status,
            errors,
        });
    }
    if !letters.is_empty() {
        log.dead_letter(&letters)?;
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use aqs_eventlog::sqlite::SqliteLog;

    use super::*;
    use crate::auth::Grants;
    use crate::batch::{Framing, split};

    fn visit(id: &str, source: &str, outlet: &str) -> String {
        format!(
            r#"{{"event_id":"{id}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"{source}","agent_id":"A1","payload":{{"outlet_id":"{outlet}","purpose":"training"}}}}"#
        )
    }

    fn batch(lines: &[String]) -> String {
        lines.join("\n")
    }

    #[test]
    fn partial_batches_append_the_valid_events_and_keep_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = SqliteLog::open(dir.path().join("events.db"), 4).expect("open");
        let body = batch(&[
            visit("e1", "crm", "O1"),
            r#"{"event_id":"e2","type":"outlet_visit"}"#.to_owned(),
            visit("e3", "other", "O1"),
            visit("e1", "crm", "O1"),
        ]);
        let items = split(body.as_bytes(), Framing::Ndjson, 10).expect("split");
        let principal = Principal::Source(Arc::new(SourceAccess {
            source: "crm".to_owned(),
            grants: Grants::all(),
        }));
        let judged = judge(&items, &principal, Decoder::standard());
        let metrics = Metrics::default();
        let answer = store(&log, judged, false, &principal, &metrics).expect("stored");
        let statuses: Vec<EventStatus> = answer.results.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [
                EventStatus::Accepted,
                EventStatus::Rejected,
                EventStatus::Rejected,
                EventStatus::Duplicate
            ]
        );
        assert_eq!(answer.results[2].errors[0].code, "source_mismatch");
        assert_eq!(log.len().expect("len"), 1);
        let letters = log.dead_letters().expect("letters");
        assert_eq!(letters.len(), 2);
        assert_eq!(letters[0].origin, "http crm line 2");
        assert_eq!(letters[1].event_id.as_deref(), Some("e3"));

        // The same batch again, one event now conflicting: nothing new is appended.
        let body = batch(&[visit("e1", "crm", "O1"), visit("e1", "crm", "O2")]);
        let items = split(body.as_bytes(), Framing::Ndjson, 10).expect("split");
        let judged = judge(&items, &principal, Decoder::standard());
        let answer = store(&log, judged, false, &principal, &metrics).expect("stored");
        assert_eq!((answer.duplicate, answer.conflict), (1, 1));
        assert_eq!(answer.results[1].errors[0].code, "conflict");
        assert_eq!(log.len().expect("len"), 1);
    }

    #[test]
    fn atomic_batches_append_nothing_when_one_event_is_bad() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = SqliteLog::open(dir.path().join("events.db"), 4).expect("open");
        let body = format!("[{},{{}}]", visit("e1", "crm", "O1"));
        let items = split(body.as_bytes(), Framing::JsonArray, 10).expect("split");
        let judged = judge(&items, &Principal::Anyone, Decoder::standard());
        let answer =
            store(&log, judged, true, &Principal::Anyone, &Metrics::default()).expect("stored");
        assert_eq!((answer.skipped, answer.rejected), (1, 1));
        assert!(!answer.any_stored());
        assert_eq!(log.len().expect("len"), 0);
        assert_eq!(
            log.dead_letters().expect("letters")[0].origin,
            "http unauthenticated item 1"
        );
    }

    #[test]
    fn an_event_of_a_class_not_granted_is_refused_and_kept_as_a_dead_letter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = SqliteLog::open(dir.path().join("events.db"), 4).expect("open");
        let team = r#"{"event_id":"t1","type":"team_defined","schema_version":1,"occurred_at":"2026-11-01T08:00:00+08:00","source":"crm","payload":{"team_id":"T1","team_name":"一组","branch_id":"B1","region_id":"R1"}}"#;
        let retraction = r#"{"event_id":"r1","type":"retraction","schema_version":1,"occurred_at":"2026-11-03T08:00:00+08:00","source":"crm","agent_id":"A1","payload":{"retracted_event_id":"e1","reason":"twice"}}"#;
        let body = batch(&[
            visit("e1", "crm", "O1"),
            team.to_owned(),
            retraction.to_owned(),
        ]);
        let items = split(body.as_bytes(), Framing::Ndjson, 10).expect("split");
        let principal = Principal::Source(Arc::new(SourceAccess {
            source: "crm".to_owned(),
            grants: Grants::only([aqs_schemas::EventClass::Activity]),
        }));
        let judged = judge(&items, &principal, Decoder::standard());
        let answer = store(&log, judged, false, &principal, &Metrics::default()).expect("stored");
        let statuses: Vec<EventStatus> = answer.results.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [
                EventStatus::Accepted,
                EventStatus::Rejected,
                EventStatus::Accepted
            ],
            "activity is granted, reference data is not, a retraction needs no grant"
        );
        let error = &answer.results[1].errors[0];
        assert_eq!(
            (error.field.as_str(), error.code.as_str()),
            ("type", "not_granted")
        );
        assert_eq!(
            error.message,
            "source \"crm\" is not granted reference events (team_defined); its token grants: activity"
        );
        assert_eq!(log.len().expect("len"), 2);
        let letters = log.dead_letters().expect("letters");
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].event_id.as_deref(), Some("t1"));
        assert!(
            letters[0].reason.contains("not_granted"),
            "{}",
            letters[0].reason
        );
    }
}
