//! Objects only where the contract says object.
//!
//! A serde-derived struct also reads a JSON array, field by field in declaration order, so
//! `["O1", "training"]` would pass as an outlet visit's payload. The schema says `object`;
//! these adapters make the typed path say the same by asking the deserializer for a map.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

struct ObjectOnly<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

/// Reads `T` from a JSON object, refusing any other JSON value.
pub(crate) fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    d.deserialize_map(ObjectOnly(PhantomData))
}

struct OptionalObject<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for OptionalObject<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        object(d).map(Some)
    }
}

/// Reads an optional `T` from a JSON object or `null`.
pub(crate) fn optional_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    d.deserialize_option(OptionalObject(PhantomData))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Pair {
        a: u32,
        b: u32,
    }

    #[test]
    fn arrays_are_not_objects() {
        let read = |text: &str| object::<_, Pair>(&mut serde_json::Deserializer::from_str(text));
        assert_eq!(read(r#"{"a": 1, "b": 2}"#).ok(), Some(Pair { a: 1, b: 2 }));
        assert!(read("[1, 2]").is_err());
        assert!(
            serde_json::from_str::<Pair>("[1, 2]").is_ok(),
            "what serde alone does"
        );
        let optional =
            |text: &str| optional_object::<_, Pair>(&mut serde_json::Deserializer::from_str(text));
        assert_eq!(optional("null").ok(), Some(None));
        assert!(optional("[1, 2]").is_err());
        assert_eq!(
            optional(r#"{"a": 1, "b": 2}"#).ok(),
            Some(Some(Pair { a: 1, b: 2 }))
        );
    }
}
