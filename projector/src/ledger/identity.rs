//! Events are known by their identity, their `source` and their `event_id`: two sources may
//! use the same id for different facts, and a source speaks only for its own events (its
//! retractions reach only them).

use serde::{Deserialize, Serialize};

use super::HashMap;

/// An event's identity where order matters (choosing the first sale of a policy, listing
/// pending cancellations): ordered by id, then source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(super) struct EventKey {
    pub id: String,
    pub source: String,
}

impl EventKey {
    pub fn new(source: &str, id: &str) -> Self {
        Self {
            id: id.to_owned(),
            source: source.to_owned(),
        }
    }
}

/// Values by event identity, looked up without building a key: per source, then per id.
/// Sources are few, so the outer map stays tiny and each entry costs what the id alone did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub(super) struct ByIdentity<T> {
    by_source: HashMap<String, HashMap<String, T>>,
}

impl<T> Default for ByIdentity<T> {
    fn default() -> Self {
        Self {
            by_source: HashMap::default(),
        }
    }
}

impl<T> ByIdentity<T> {
    pub fn get(&self, source: &str, id: &str) -> Option<&T> {
        self.by_source.get(source)?.get(id)
    }

    pub fn contains(&self, source: &str, id: &str) -> bool {
        self.get(source, id).is_some()
    }

    /// Inserts or replaces; returns the value it replaced.
    pub fn insert(&mut self, source: &str, id: &str, value: T) -> Option<T> {
        let ids = match self.by_source.get_mut(source) {
            Some(ids) => ids,
            None => self.by_source.entry(source.to_owned()).or_default(),
        };
        ids.insert(id.to_owned(), value)
    }

    pub fn remove(&mut self, source: &str, id: &str) -> Option<T> {
        let ids = self.by_source.get_mut(source)?;
        let removed = ids.remove(id);
        if ids.is_empty() {
            self.by_source.remove(source);
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_id_of_two_sources_is_two_entries() {
        let mut known = ByIdentity::default();
        assert_eq!(known.insert("crm", "e1", 1), None);
        assert_eq!(known.insert("app", "e1", 2), None);
        assert_eq!(known.get("crm", "e1"), Some(&1));
        assert_eq!(known.get("app", "e1"), Some(&2));
        assert_eq!(known.insert("crm", "e1", 3), Some(1));
        assert_eq!(known.remove("app", "e1"), Some(2));
        assert!(!known.contains("app", "e1"));
        assert!(known.contains("crm", "e1"));
    }
}
