//! Untrusted JSON into a tree for the thorough path, with what serde_json's own `Value`
//! hides: a key given twice in one object (serde_json keeps the last; the fast path's
//! typed structs refuse it). The contract refuses repeated keys (RFC 8259 only says names
//! SHOULD be unique, and readers disagree on which one wins), so they are reported, each by
//! its dotted path; the tree keeps the first value.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Where a value sits: a linked list of keys and indexes up to the root, rendered only when
/// a repeat is found.
#[derive(Clone, Copy)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

struct Path<'a> {
    segment: Segment<'a>,
    parent: Option<&'a Path<'a>>,
}

fn render(mut path: Option<&Path<'_>>) -> String {
    let mut segments = Vec::new();
    while let Some(node) = path {
        segments.push(match node.segment {
            Segment::Key(key) => key.to_owned(),
            Segment::Index(index) => index.to_string(),
        });
        path = node.parent;
    }
    segments.reverse();
    segments.join(".")
}

/// Repeated keys found: the first few paths, and how many more.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RepeatedKeys {
    pub paths: Vec<String>,
    pub more: usize,
}

struct Found<'c> {
    repeated: &'c RefCell<RepeatedKeys>,
    keep: usize,
}

impl Found<'_> {
    fn record(&self, path: Option<&Path<'_>>) {
        let mut repeated = self.repeated.borrow_mut();
        if repeated.paths.len() < self.keep {
            repeated.paths.push(render(path));
        } else {
            repeated.more += 1;
        }
    }
}

struct Node<'p, 'c> {
    path: Option<&'p Path<'p>>,
    found: &'p Found<'c>,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let path = Path {
                segment: Segment::Index(items.len()),
                parent: self.path,
            };
            let seed = Node {
                path: Some(&path),
                found: self.found,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = Path {
                segment: Segment::Key(&key),
                parent: self.path,
            };
            if object.contains_key(&key) {
                self.found.record(Some(&path));
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = map.next_value_seed(Node {
                path: Some(&path),
                found: self.found,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Parses `bytes` as one JSON value; repeated keys keep their first value and are listed
/// (at most `keep` paths, then a count).
pub(crate) fn parse(bytes: &[u8], keep: usize) -> Result<(Value, RepeatedKeys), serde_json::Error> {
    let repeated = RefCell::new(RepeatedKeys::default());
    let found = Found {
        repeated: &repeated,
        keep,
    };
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let value = Node {
        path: None,
        found: &found,
    }
    .deserialize(&mut reader)?;
    reader.end()?;
    Ok((value, repeated.into_inner()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn repeated_keys_are_found_wherever_they_are() {
        let (value, repeated) = parse(
            br#"{"a": 1, "b": {"c": [{"d": 1, "d": 2}], "c": 3}, "a": 2, "e": null}"#,
            10,
        )
        .expect("json");
        assert_eq!(value, json!({"a": 1, "b": {"c": [{"d": 1}]}, "e": null}));
        assert_eq!(repeated.paths, ["b.c.0.d", "b.c", "a"]);
        assert_eq!(repeated.more, 0);
    }

    #[test]
    fn the_list_of_repeats_is_bounded() {
        let body = format!("{{{}}}", vec![r#""k": 1"#; 1000].join(","));
        let (_, repeated) = parse(body.as_bytes(), 5).expect("json");
        assert_eq!(repeated.paths.len(), 5);
        assert_eq!(repeated.more, 994);
    }

    #[test]
    fn the_tree_is_serde_json_s_for_unique_keys() {
        let text = br#"{"n": -0.0, "m": 12.5, "i": -3, "u": 18446744073709551615, "s": "\u00e9", "l": [true, null]}"#;
        let (value, repeated) = parse(text, 10).expect("json");
        assert_eq!(value, serde_json::from_slice::<Value>(text).expect("json"));
        assert_eq!(repeated, RepeatedKeys::default());
        assert!(parse(b"{} x", 10).is_err());
    }
}
