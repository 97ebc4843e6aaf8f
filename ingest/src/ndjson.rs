//! Reading NDJSON event files line by line, without holding the file in memory.

use std::io::BufRead;

use aqs_schemas::{Decoder, Event, InvalidEvent};

/// One non-blank line of an NDJSON file, decoded.
#[derive(Debug)]
pub struct Line {
    /// 1-based line number in the file.
    pub number: u64,
    pub outcome: Result<Event, InvalidEvent>,
    /// The line as read, kept for rejected events (dead letters); empty for valid ones.
    pub rejected_bytes: Vec<u8>,
}

/// Failure to read the file itself (as opposed to a bad event on a line).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading line {line}: {source}")]
    Io {
        line: u64,
        #[source]
        source: std::io::Error,
    },
}

/// Decodes each non-blank line of `reader`; blank lines are skipped but counted.
pub fn lines<'d, R: BufRead + 'd>(
    mut reader: R,
    decoder: &'d Decoder,
) -> impl Iterator<Item = Result<Line, ReadError>> + 'd {
    let mut number = 0_u64;
    let mut buffer = Vec::with_capacity(1024);
    std::iter::from_fn(move || {
        loop {
            buffer.clear();
            number += 1;
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) => return None,
                Ok(_) => {
                    let text = buffer.trim_ascii();
                    if text.is_empty() {
                        continue;
                    }
                    let outcome = decoder.decode(text);
                    let rejected_bytes = if outcome.is_err() {
                        text.to_vec()
                    } else {
                        Vec::new()
                    };
                    return Some(Ok(Line {
                        number,
                        outcome,
                        rejected_bytes,
                    }));
                }
                Err(source) => {
                    return Some(Err(ReadError::Io {
                        line: number,
                        source,
                    }));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_line_numbers_and_skips_blank_lines() {
        let text = concat!(
            r#"{"event_id":"e1","type":"agent_left","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"hr","agent_id":"A1","payload":{"effective_date":"2026-11-03"}}"#,
            "\n\n",
            r#"{"event_id":"e2","type":"agent_left","schema_version":1,"occurred_at":"2026-11-02T09:00:00","source":"hr","agent_id":"A1","payload":{"effective_date":"2026-11-03"}}"#,
            "\n",
        );
        let read: Vec<Line> = lines(
            std::io::Cursor::new(text.as_bytes().to_vec()),
            Decoder::standard(),
        )
        .collect::<Result<_, _>>()
        .expect("readable");
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].number, 1);
        assert!(read[0].outcome.is_ok());
        assert_eq!(read[1].number, 3);
        let rejection = read[1].outcome.as_ref().expect_err("no time zone");
        assert_eq!(rejection.errors[0].field, "occurred_at");
        assert_eq!(rejection.errors[0].problem.code(), "time_zone_missing");
    }
}
