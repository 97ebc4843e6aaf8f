//! The published contract as an upstream team reads it: the checked-in documents under
//! `json/v1/`, loaded from disk with their relative `$ref`s resolved, plus the one rule the
//! documents can only state in words (an object never repeats a key).

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;

use jsonschema::{Registry, Resource, Validator};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A validator over the checked-in documents, with formats asserted.
pub struct Published {
    any_event: Validator,
}

impl Published {
    pub fn load() -> Self {
        let dir = PathBuf::from(
            std::env::var("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
        )
        .join("json/v1");
        // Each document is known by where it was read from, as a client reading the folder
        // knows it: `event.json` refers to its siblings by file name.
        let mut documents = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("schemas/json/v1") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("read a published document");
            let document: Value = serde_json::from_str(&text).expect("a document is JSON");
            documents.push((format!("file://{}", path.display()), document));
        }
        let root = format!("file://{}", dir.join("event.json").display());
        let event = documents
            .iter()
            .find(|(uri, _)| *uri == root)
            .map(|(_, document)| document.clone())
            .expect("event.json is published");
        let registry = Registry::new()
            .extend(
                documents
                    .into_iter()
                    .map(|(uri, document)| (uri, Resource::from_contents(document))),
            )
            .expect("file addresses are URIs")
            .prepare()
            .expect("the documents form a registry");
        let any_event = jsonschema::options()
            .should_validate_formats(true)
            .with_base_uri(root)
            .with_registry(&registry)
            .build(&event)
            .expect("event.json compiles with the type documents it refers to");
        Self { any_event }
    }

    /// Whether the published contract accepts these bytes as an event.
    pub fn accepts(&self, bytes: &[u8]) -> bool {
        let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
            return false;
        };
        !repeats_a_key(bytes) && self.any_event.is_valid(&value)
    }

    /// Whether the documents alone (without the unique-keys rule) accept the JSON value.
    #[allow(dead_code)] // not every test crate that shares this module asks
    pub fn documents_accept(&self, value: &Value) -> bool {
        self.any_event.is_valid(value)
    }
}

/// Whether any object in the JSON text gives a key twice (a check independent of the
/// decoder's own).
pub fn repeats_a_key(bytes: &[u8]) -> bool {
    serde_json::from_slice::<UniqueKeys>(bytes).is_ok_and(|checked| !checked.0)
}

struct UniqueKeys(bool);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys(true))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys(true))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys(true))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys(true))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys(true))
    }
    fn visit_unit<E: de::Error>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys(true))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        let mut unique = true;
        while let Some(item) = seq.next_element::<UniqueKeys>()? {
            unique &= item.0;
        }
        Ok(UniqueKeys(unique))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = HashSet::new();
        let mut unique = true;
        while let Some(key) = map.next_key::<String>()? {
            unique &= seen.insert(key);
            unique &= map.next_value::<UniqueKeys>()?.0;
        }
        Ok(UniqueKeys(unique))
    }
}
