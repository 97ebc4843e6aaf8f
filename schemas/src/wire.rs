//! The canonical wire form of an event and its fast path in and out.
//!
//! `serde_json::to_vec(&event)` writes the canonical form (current schema version, fixed
//! field order, money as strings). [`decode_canonical`] reads it back without building an
//! intermediate JSON tree; it is what replay uses on events already accepted.

use std::borrow::Cow;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::event::{CURRENT_SCHEMA_VERSION, Event, EventType};
use crate::time::OccurredAt;

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("event_id", &self.event_id)?;
        map.serialize_entry("type", &self.event_type())?;
        map.serialize_entry("schema_version", &CURRENT_SCHEMA_VERSION)?;
        map.serialize_entry("occurred_at", &self.occurred_at)?;
        map.serialize_entry("source", &self.source)?;
        if let Some(agent_id) = &self.agent_id {
            map.serialize_entry("agent_id", agent_id)?;
        }
        self.payload.serialize_into(&mut map)?;
        map.end()
    }
}

/// The envelope as it arrives, with the payload left raw until its type is known.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEnvelope<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(rename = "type")]
    event_type: EventType,
    schema_version: u64,
    occurred_at: OccurredAt,
    #[serde(borrow)]
    source: Cow<'a, str>,
    #[serde(default, borrow)]
    agent_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// Why the fast path declined an input; the full decoder then explains it.
#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("schema version {0} is not the current one")]
    NotCurrentVersion(u64),
}

/// Reads an event of the current schema version, without the semantic checks of
/// [`crate::Decoder`]. For events that were validated when they were accepted.
pub fn decode_canonical(bytes: &[u8]) -> Result<Event, CanonicalError> {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let wire: WireEnvelope<'_> = crate::objects::object(&mut reader)?;
    reader.end()?;
    if wire.schema_version != u64::from(CURRENT_SCHEMA_VERSION) {
        return Err(CanonicalError::NotCurrentVersion(wire.schema_version));
    }
    let mut payload_reader = serde_json::Deserializer::from_str(wire.payload.get());
    let payload = wire.event_type.decode_payload(&mut payload_reader)?;
    payload_reader.end()?;
    Ok(Event {
        event_id: wire.event_id.into_owned(),
        occurred_at: wire.occurred_at,
        source: wire.source.into_owned(),
        agent_id: wire.agent_id.map(Cow::into_owned),
        payload,
    })
}
