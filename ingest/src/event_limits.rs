//! Bounds on one event: its bytes before it is parsed, and what is said about it.
//!
//! An event over `--max-event-bytes` is rejected without being parsed (`event_too_large`),
//! so the work and memory of judging one event follow the bound and not the body; its dead
//! letter keeps its first `--max-event-bytes` bytes and says so. What the answer and the
//! dead letter say about a rejected event is bounded too: at most
//! [`MAX_ERRORS_PER_EVENT`] problems (then one `too_many_errors` entry with the count; the
//! decoder already stops listing earlier), and
//! every text taken from the event (a field path, an echoed value, the event id) cut to a
//! few hundred bytes, so that neither repeats an unbounded part of the event.

use aqs_schemas::Decoder;
use serde_json::Value;

use crate::answer::EventError;
use crate::batch::Item;
use crate::intake::{Judged, Principal, Verdict, judge};

/// Problems listed per rejected event; the rest are counted in one last entry. A backstop:
/// the decoder itself lists about 20 and counts the rest.
pub const MAX_ERRORS_PER_EVENT: usize = 25;
/// Longest field path shown, in bytes.
const MAX_FIELD_BYTES: usize = 256;
/// Longest message or detail text shown, in bytes.
const MAX_TEXT_BYTES: usize = 512;
/// Longest event id shown back for a rejected event, in bytes (a valid id is far shorter).
const MAX_ECHOED_ID_BYTES: usize = 256;

/// Judges every item as [`judge`] does, but rejects an item over `max_event_bytes` without
/// parsing it, and bounds what is said about each rejected event.
pub fn judge_bounded(
    items: &[Item<'_>],
    principal: &Principal,
    decoder: &Decoder,
    max_event_bytes: usize,
) -> Vec<Judged> {
    items
        .iter()
        .map(|item| {
            if item.bytes.len() > max_event_bytes {
                return too_large(item, max_event_bytes);
            }
            let mut judged = judge(std::slice::from_ref(item), principal, decoder);
            let mut one = judged.pop().expect("one judgement per item");
            if let Verdict::Rejected {
                event_id, errors, ..
            } = &mut one.verdict
            {
                bound_errors(errors);
                if let Some(id) = event_id {
                    cut(id, MAX_ECHOED_ID_BYTES);
                }
            }
            one
        })
        .collect()
}

/// Whether a judged event was refused for its size.
pub fn is_too_large(judged: &Judged) -> bool {
    matches!(&judged.verdict, Verdict::Rejected { errors, .. }
        if errors.first().is_some_and(|e| e.code == EVENT_TOO_LARGE))
}

const EVENT_TOO_LARGE: &str = "event_too_large";

fn too_large(item: &Item<'_>, max: usize) -> Judged {
    let size = item.bytes.len();
    let mut error = EventError::new(
        "",
        EVENT_TOO_LARGE,
        format!(
            "the event is {size} bytes, over the limit of {max} bytes per event; it was not \
             read, and its dead letter keeps only its first {max} bytes"
        ),
    );
    error.details.insert("size_bytes".to_owned(), size.into());
    error.details.insert("max_bytes".to_owned(), max.into());
    Judged {
        index: item.index,
        line: item.line,
        verdict: Verdict::Rejected {
            event_id: None,
            errors: vec![error],
            bytes: item.bytes[..max].to_vec(),
        },
    }
}

/// At most [`MAX_ERRORS_PER_EVENT`] problems with short texts, then a count of the rest.
pub fn bound_errors(errors: &mut Vec<EventError>) {
    let more = errors.len().saturating_sub(MAX_ERRORS_PER_EVENT);
    errors.truncate(MAX_ERRORS_PER_EVENT);
    for error in errors.iter_mut() {
        cut(&mut error.field, MAX_FIELD_BYTES);
        cut(&mut error.message, MAX_TEXT_BYTES);
        for value in error.details.values_mut() {
            bound_value(value);
        }
    }
    if more > 0 {
        let mut summary = EventError::new(
            "",
            "too_many_errors",
            format!("{more} more problems, not listed"),
        );
        summary.details.insert("more".to_owned(), more.into());
        errors.push(summary);
    }
    // Held until the batch is answered, with those of every other event of the batch.
    errors.shrink_to_fit();
}

fn bound_value(value: &mut Value) {
    match value {
        Value::String(text) => cut(text, MAX_TEXT_BYTES),
        Value::Array(items) => {
            items.truncate(MAX_ERRORS_PER_EVENT);
            items.iter_mut().for_each(bound_value);
        }
        Value::Object(map) => {
            if map.len() > MAX_ERRORS_PER_EVENT {
                *value = Value::String("(left out: too large)".to_owned());
            } else {
                map.values_mut().for_each(bound_value);
            }
        }
        _ => {}
    }
}

/// Cuts `text` to at most `max` bytes at a character boundary, marking the cut with `…`.
fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Framing, split};

    #[test]
    fn an_oversized_event_is_refused_unread_and_kept_in_part() {
        let body = format!(
            r#"[{{"event_id":"big","padding":"{}"}},{{"event_id":"small"}}]"#,
            "x".repeat(5_000)
        );
        let items = split(body.as_bytes(), Framing::JsonArray, 10).expect("split");
        let judged = judge_bounded(&items, &Principal::Anyone, Decoder::standard(), 1_000);
        let Verdict::Rejected {
            event_id,
            errors,
            bytes,
        } = &judged[0].verdict
        else {
            panic!("rejected")
        };
        assert_eq!(event_id, &None);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, "event_too_large");
        assert_eq!(errors[0].details["size_bytes"], items[0].bytes.len());
        assert_eq!(bytes.len(), 1_000);
        assert!(is_too_large(&judged[0]));
        // The small one is judged as usual.
        assert!(!is_too_large(&judged[1]));
        assert!(
            matches!(&judged[1].verdict, Verdict::Rejected { errors, .. }
            if errors.iter().any(|e| e.code == "missing"))
        );
    }

    #[test]
    fn what_is_said_about_a_rejected_event_is_bounded() {
        let long_key = "k".repeat(2_000);
        let mut event = serde_json::json!({
            "event_id": "i".repeat(3_000),
            "type": "outlet_visit",
            "schema_version": 1,
        });
        for n in 0..40 {
            event[format!("{long_key}{n}")] = serde_json::json!(n);
        }
        let bytes = serde_json::to_vec(&event).expect("JSON");
        let items = split(&bytes, Framing::JsonArray, 10).expect("split");
        let judged = judge_bounded(&items, &Principal::Anyone, Decoder::standard(), 1 << 20);
        let Verdict::Rejected {
            event_id, errors, ..
        } = &judged[0].verdict
        else {
            panic!("rejected")
        };
        // An id longer than any valid one is not echoed at all; a shorter one is cut.
        assert!(
            event_id
                .as_ref()
                .is_none_or(|id| id.len() <= MAX_ECHOED_ID_BYTES)
        );
        assert!(errors.len() <= MAX_ERRORS_PER_EVENT + 1, "{errors:?}");
        let said = serde_json::to_string(errors).expect("JSON").len();
        assert!(said < 40 * MAX_TEXT_BYTES, "{said} bytes of errors");
        assert!(
            errors
                .iter()
                .all(|e| e.field.len() <= MAX_FIELD_BYTES && e.message.len() <= MAX_TEXT_BYTES)
        );
    }

    #[test]
    fn long_lists_of_errors_end_with_a_count() {
        let mut errors: Vec<EventError> = (0..45)
            .map(|n| EventError::new(format!("f{n}"), "unknown_field", "unknown field"))
            .collect();
        bound_errors(&mut errors);
        assert_eq!(errors.len(), MAX_ERRORS_PER_EVENT + 1);
        let last = errors.last().expect("summary");
        assert_eq!(last.code, "too_many_errors");
        assert_eq!(last.details["more"], 45 - MAX_ERRORS_PER_EVENT);
        let mut text = "汉字汉字".to_owned();
        cut(&mut text, 8);
        assert_eq!(text, "汉…");
    }
}
