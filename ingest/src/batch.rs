//! Cutting a request body into the events of a batch, before any of them is judged.

use serde_json::value::RawValue;

/// How the events of a body are laid out, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `application/json`: a JSON array of events (a single event object is a batch of one).
    JsonArray,
    /// `application/x-ndjson` (or `application/ndjson`, `application/jsonl`,
    /// `application/x-jsonlines`): one event per line, blank lines skipped.
    Ndjson,
}

impl Framing {
    /// The framing of a `Content-Type` value, if it is one we read.
    pub fn from_content_type(value: &str) -> Option<Self> {
        let essence = value.split(';').next().unwrap_or_default().trim();
        let essence = essence.to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(Framing::JsonArray),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines" => Some(Framing::Ndjson),
            _ => None,
        }
    }
}

/// One event of a batch, not yet judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item<'a> {
    /// 0-based position among the events of the batch.
    pub index: usize,
    /// NDJSON only: the 1-based line number in the body.
    pub line: Option<u64>,
    /// The event's bytes as sent.
    pub bytes: &'a [u8],
}

/// Where an item lies in its body: owned, so that a body and its cuts can be kept apart
/// (across an `await`) and put together again with [`ItemSpan::item`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemSpan {
    pub index: usize,
    pub line: Option<u64>,
    pub start: usize,
    pub end: usize,
}

impl ItemSpan {
    /// The item of `body`, which must be the body it was cut from.
    pub fn item<'a>(&self, body: &'a [u8]) -> Item<'a> {
        Item {
            index: self.index,
            line: self.line,
            bytes: &body[self.start..self.end],
        }
    }
}

/// Cuts `body` as [`split`] does, into spans.
pub fn spans(
    body: &[u8],
    framing: Framing,
    max_events: usize,
) -> Result<Vec<ItemSpan>, FramingError> {
    let base = body.as_ptr() as usize;
    Ok(split(body, framing, max_events)?
        .into_iter()
        .map(|item| {
            // Every item is a slice of the body.
            let start = item.bytes.as_ptr() as usize - base;
            ItemSpan {
                index: item.index,
                line: item.line,
                start,
                end: start + item.bytes.len(),
            }
        })
        .collect())
}

/// Why a body could not be cut into events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("the body is not a JSON array of events: {0}")]
    Malformed(String),
    #[error("the batch holds no event")]
    Empty,
    #[error("the batch holds {found} events, more than the limit of {max}")]
    TooManyEvents { found: usize, max: usize },
}

/// Cuts `body` into at most `max_events` items.
///
/// A JSON array that does not parse is refused whole; an NDJSON line that does not parse
/// is an item like any other (the decoder rejects it alone).
pub fn split(
    body: &[u8],
    framing: Framing,
    max_events: usize,
) -> Result<Vec<Item<'_>>, FramingError> {
    let items = match framing {
        Framing::JsonArray => split_json(body, max_events)?,
        Framing::Ndjson => split_ndjson(body, max_events)?,
    };
    if items.is_empty() {
        return Err(FramingError::Empty);
    }
    Ok(items)
}

fn split_json(body: &[u8], max_events: usize) -> Result<Vec<Item<'_>>, FramingError> {
    let text = body.trim_ascii();
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    match text.first() {
        Some(b'{') => {
            // One event: it must still be one JSON value (the decoder reports what is in it).
            let raw: &RawValue =
                serde_json::from_slice(text).map_err(|e| FramingError::Malformed(e.to_string()))?;
            Ok(vec![Item {
                index: 0,
                line: None,
                bytes: raw.get().as_bytes(),
            }])
        }
        Some(b'[') => {
            let raw: Vec<&RawValue> =
                serde_json::from_slice(text).map_err(|e| FramingError::Malformed(e.to_string()))?;
            if raw.len() > max_events {
                return Err(FramingError::TooManyEvents {
                    found: raw.len(),
                    max: max_events,
                });
            }
            Ok(raw
                .into_iter()
                .enumerate()
                .map(|(index, raw)| Item {
                    index,
                    line: None,
                    bytes: raw.get().as_bytes(),
                })
                .collect())
        }
        None => Ok(Vec::new()),
        Some(_) => Err(FramingError::Malformed(
            "expected an array `[...]` of event objects".to_owned(),
        )),
    }
}

fn split_ndjson(body: &[u8], max_events: usize) -> Result<Vec<Item<'_>>, FramingError> {
    let mut items = Vec::new();
    let mut found = 0;
    for (number, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.trim_ascii();
        let line = if number == 0 {
            line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line)
        } else {
            line
        };
        if line.is_empty() {
            continue;
        }
        found += 1;
        if found <= max_events {
            items.push(Item {
                index: items.len(),
                line: Some(number as u64 + 1),
                bytes: line,
            });
        }
    }
    if found > max_events {
        return Err(FramingError::TooManyEvents {
            found,
            max: max_events,
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_content_types() {
        assert_eq!(
            Framing::from_content_type("application/json; charset=utf-8"),
            Some(Framing::JsonArray)
        );
        assert_eq!(
            Framing::from_content_type("Application/X-NDJSON"),
            Some(Framing::Ndjson)
        );
        assert_eq!(
            Framing::from_content_type("application/x-www-form-urlencoded"),
            None
        );
    }

    #[test]
    fn cuts_arrays_single_objects_and_lines() {
        let items = split(br#" [{"a":1}, {"b":[2]} ,3] "#, Framing::JsonArray, 10).expect("ok");
        let bytes: Vec<&[u8]> = items.iter().map(|i| i.bytes).collect();
        assert_eq!(bytes, [&br#"{"a":1}"#[..], br#"{"b":[2]}"#, b"3"]);
        assert_eq!(items[2].index, 2);

        let one = split(br#"{"a":1}"#, Framing::JsonArray, 10).expect("ok");
        assert_eq!(one.len(), 1);

        let lines = split(
            b"{\"a\":1}\r\n\n  \nnot json\n{\"c\":3}",
            Framing::Ndjson,
            10,
        )
        .expect("ok");
        let found: Vec<(usize, Option<u64>, &[u8])> =
            lines.iter().map(|i| (i.index, i.line, i.bytes)).collect();
        assert_eq!(
            found,
            [
                (0, Some(1), &b"{\"a\":1}"[..]),
                (1, Some(4), b"not json"),
                (2, Some(5), b"{\"c\":3}")
            ]
        );
    }

    #[test]
    fn spans_put_the_same_items_together_again() {
        let body = b"\xef\xbb\xbf[ {\"a\":1}, {\"b\":[2]} ,3] ";
        let items = split(body, Framing::JsonArray, 10).expect("ok");
        let again: Vec<Item<'_>> = spans(body, Framing::JsonArray, 10)
            .expect("ok")
            .iter()
            .map(|span| span.item(body))
            .collect();
        assert_eq!(again, items);
        let lines = b"{\"a\":1}\r\n\n{\"c\":3}";
        let spans = spans(lines, Framing::Ndjson, 10).expect("ok");
        assert_eq!(spans[1].item(lines).bytes, b"{\"c\":3}");
        assert_eq!(spans[1].line, Some(3));
    }

    #[test]
    fn refuses_bad_bodies() {
        assert!(matches!(
            split(b"[{\"a\":1},", Framing::JsonArray, 10),
            Err(FramingError::Malformed(_))
        ));
        assert!(matches!(
            split(b"\"text\"", Framing::JsonArray, 10),
            Err(FramingError::Malformed(_))
        ));
        assert_eq!(
            split(b"[]", Framing::JsonArray, 10),
            Err(FramingError::Empty)
        );
        assert_eq!(
            split(b" \n\n", Framing::Ndjson, 10),
            Err(FramingError::Empty)
        );
        assert_eq!(
            split(b"[1,2,3]", Framing::JsonArray, 2),
            Err(FramingError::TooManyEvents { found: 3, max: 2 })
        );
        assert_eq!(
            split(b"1\n2\n3\n", Framing::Ndjson, 2),
            Err(FramingError::TooManyEvents { found: 3, max: 2 })
        );
    }
}
