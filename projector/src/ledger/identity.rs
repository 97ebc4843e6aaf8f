//! Events are known by their identity, their `source` and their `event_id`: two sources may
//! use the same id for different facts, and a source speaks only for its own events (its
//! retractions reach only them).

use serde::{Deserialize, Serialize};

use super::HashMap;
use super::footprint::{Heap, HeapSize};

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
/// An agent hears from a handful of sources, so they are a short list scanned by
/// comparison (cheaper than hashing the source), and each entry costs what the id alone
/// does (a boxed `str`: no spare capacity kept per id).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub(super) struct ByIdentity<T> {
    by_source: Vec<(String, HashMap<Box<str>, T>)>,
}

impl<T> Default for ByIdentity<T> {
    fn default() -> Self {
        Self {
            by_source: Vec::new(),
        }
    }
}

impl<T> ByIdentity<T> {
    fn position(&self, source: &str) -> Option<usize> {
        self.by_source.iter().position(|(known, _)| known == source)
    }

    pub fn get(&self, source: &str, id: &str) -> Option<&T> {
        self.by_source
            .iter()
            .find(|(known, _)| known == source)?
            .1
            .get(id)
    }

    pub fn get_mut(&mut self, source: &str, id: &str) -> Option<&mut T> {
        self.by_source
            .iter_mut()
            .find(|(known, _)| known == source)?
            .1
            .get_mut(id)
    }

    pub fn contains(&self, source: &str, id: &str) -> bool {
        self.get(source, id).is_some()
    }

    /// The entries of one source, made on first use (the source is copied only then).
    pub fn ids_mut(&mut self, source: &str) -> &mut HashMap<Box<str>, T> {
        let at = match self.position(source) {
            Some(at) => at,
            None => {
                self.by_source.push((source.to_owned(), HashMap::default()));
                self.by_source.len() - 1
            }
        };
        &mut self.by_source[at].1
    }

    /// Inserts or replaces; returns the value it replaced.
    pub fn insert(&mut self, source: &str, id: &str, value: T) -> Option<T> {
        self.ids_mut(source).insert(id.into(), value)
    }

    /// Every entry as (source, id, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &T)> {
        self.by_source.iter().flat_map(|(source, ids)| {
            ids.iter()
                .map(move |(id, value)| (source.as_str(), &**id, value))
        })
    }

    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty()
    }

    /// Entries of every source.
    pub fn len(&self) -> usize {
        self.by_source.iter().map(|(_, ids)| ids.len()).sum()
    }

    pub fn remove(&mut self, source: &str, id: &str) -> Option<T> {
        let at = self.position(source)?;
        let ids = &mut self.by_source[at].1;
        let removed = ids.remove(id);
        if ids.is_empty() {
            self.by_source.swap_remove(at);
        }
        removed
    }
}

impl<T: HeapSize> HeapSize for ByIdentity<T> {
    fn add_heap(&self, heap: &mut Heap) {
        self.by_source.add_heap(heap);
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
