//! Reading a request body within a size bound and a deadline.
//!
//! The body is read into one buffer sized from `Content-Length` (never beyond the bound),
//! so it is held once; a body that is larger than the bound, or arrives too slowly, is
//! refused as soon as that is known, without reading the rest.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use http_body::Body as _;
use tokio::time::Instant;

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is over the limit of {max} bytes; send smaller batches")]
    TooLarge { max: usize },
    #[error(
        "the body did not arrive within {} ms; send it faster, or in smaller batches",
        timeout.as_millis()
    )]
    TooSlow { timeout: Duration },
    #[error("the body could not be read: {0}")]
    Interrupted(String),
    #[error("the Content-Length header is not a number")]
    BadLength,
}

/// The `Content-Length` of a request, if it has one.
pub fn declared_length(headers: &HeaderMap) -> Result<Option<usize>, BodyError> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .map(|length| Some(usize::try_from(length).unwrap_or(usize::MAX)))
            .ok_or(BodyError::BadLength),
    }
}

/// Reads `body` (of `declared` bytes when known) up to `max` bytes, all of it by `timeout`.
pub async fn read_body(
    mut body: Body,
    declared: Option<usize>,
    max: usize,
    timeout: Duration,
) -> Result<Vec<u8>, BodyError> {
    if declared.is_some_and(|length| length > max) {
        return Err(BodyError::TooLarge { max });
    }
    let deadline = Instant::now() + timeout;
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(max));
    loop {
        let frame =
            tokio::time::timeout_at(deadline, poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)))
                .await
                .map_err(|_| BodyError::TooSlow { timeout })?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|error| BodyError::Interrupted(error.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > max {
                return Err(BodyError::TooLarge { max });
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_within_the_bounds_and_refuses_beyond_them() {
        let read = read_body(Body::from("[1,2]"), Some(5), 5, Duration::from_secs(1)).await;
        assert_eq!(read, Ok(b"[1,2]".to_vec()));
        let declared_too_large =
            read_body(Body::from("[1,2]"), Some(6), 5, Duration::from_secs(1)).await;
        assert_eq!(declared_too_large, Err(BodyError::TooLarge { max: 5 }));
        let too_large = read_body(Body::from("[1,2,3]"), None, 5, Duration::from_secs(1)).await;
        assert_eq!(too_large, Err(BodyError::TooLarge { max: 5 }));
    }

    #[test]
    fn reads_content_length() {
        let mut headers = HeaderMap::new();
        assert_eq!(declared_length(&headers), Ok(None));
        headers.insert(header::CONTENT_LENGTH, "42".parse().expect("value"));
        assert_eq!(declared_length(&headers), Ok(Some(42)));
        headers.insert(header::CONTENT_LENGTH, "x".parse().expect("value"));
        assert_eq!(declared_length(&headers), Err(BodyError::BadLength));
    }
}
