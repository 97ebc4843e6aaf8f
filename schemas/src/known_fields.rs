//! Unknown keys found before the schema walk, so that its work stays bounded.
//!
//! The JSON Schema refuses unknown keys (`additionalProperties: false`), and a validator
//! reports them all in one error: an event with 500,000 unknown keys would become 500,000
//! field errors. The decoder therefore takes the unknown keys out of the tree first,
//! reporting the first few, and walks the schema over what is left. Which keys are known
//! is read from the same schema document, so the two cannot disagree.

use std::collections::BTreeMap;

use serde_json::Value;

/// The keys the schema allows in one object, with the objects nested under them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct KnownFields {
    keys: BTreeMap<String, Option<KnownFields>>,
}

impl KnownFields {
    /// Reads the closed objects (`additionalProperties: false`) of a schema document,
    /// following local `$ref`s and the alternatives of `anyOf` / `oneOf`.
    pub(crate) fn of_schema(document: &Value) -> Option<Self> {
        Self::of_node(document, document, 0)
    }

    fn of_node(root: &Value, node: &Value, depth: usize) -> Option<Self> {
        // The documents are generated and shallow; the bound only guards against a cycle.
        if depth > 16 {
            return None;
        }
        if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let target = reference
                .strip_prefix('#')
                .and_then(|pointer| root.pointer(pointer))?;
            return Self::of_node(root, target, depth + 1);
        }
        for alternatives in ["anyOf", "oneOf"] {
            if let Some(list) = node.get(alternatives).and_then(Value::as_array) {
                return list
                    .iter()
                    .find_map(|alternative| Self::of_node(root, alternative, depth + 1));
            }
        }
        if node.get("additionalProperties") != Some(&Value::Bool(false)) {
            return None;
        }
        let properties = node.get("properties").and_then(Value::as_object)?;
        Some(Self {
            keys: properties
                .iter()
                .map(|(key, schema)| (key.clone(), Self::of_node(root, schema, depth + 1)))
                .collect(),
        })
    }

    /// Takes every unknown key out of `value`, calling `unknown` with the dotted path of
    /// each, in order.
    pub(crate) fn strip(&self, value: &mut Value, path: &str, unknown: &mut impl FnMut(String)) {
        let Some(object) = value.as_object_mut() else {
            return;
        };
        let dotted = |key: &str| {
            if path.is_empty() {
                key.to_owned()
            } else {
                format!("{path}.{key}")
            }
        };
        object.retain(|key, _| {
            let known = self.keys.contains_key(key);
            if !known {
                unknown(dotted(key));
            }
            known
        });
        for (key, child) in object.iter_mut() {
            if let Some(Some(nested)) = self.keys.get(key) {
                nested.strip(child, &dotted(key), unknown);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::EventType;
    use crate::schema::event_type_schema;

    #[test]
    fn unknown_keys_are_taken_out_at_every_level() {
        let known = KnownFields::of_schema(&event_type_schema(EventType::ActivityPlan))
            .expect("closed object");
        let mut event = json!({
            "event_id": "p1", "surprise": 1,
            "payload": {"period_start": "2026-11-02", "extra": true,
                        "visits_by_purpose": {"training": 1, "lunch": 2}},
        });
        let mut found = Vec::new();
        known.strip(&mut event, "", &mut |path| found.push(path));
        assert_eq!(
            found,
            [
                "surprise",
                "payload.extra",
                "payload.visits_by_purpose.lunch"
            ]
        );
        assert_eq!(
            event,
            json!({"event_id": "p1", "payload": {"period_start": "2026-11-02",
                   "visits_by_purpose": {"training": 1}}})
        );
    }
}
