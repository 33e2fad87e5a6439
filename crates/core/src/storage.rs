use std::collections::BTreeMap;

use thiserror::Error;

/// Why a storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StorageError {
    /// The storage is full (`QuotaExceededError` in browsers).
    #[error("storage quota exceeded")]
    QuotaExceeded,
    /// Any other failure, with the storage's own words.
    #[error("{0}")]
    Failed(String),
}

/// A string key-value store with the shape of the Web Storage API. The client implements it over
/// `localStorage` (or any `Storage` passed in); tests use [`MemoryStorage`].
pub trait Storage {
    /// The value stored under `key`.
    fn get(&self, key: &str) -> Result<Option<String>, StorageError>;
    /// Stores `value` under `key`.
    fn set(&mut self, key: &str, value: &str) -> Result<(), StorageError>;
    /// Removes `key` (no error if absent).
    fn remove(&mut self, key: &str) -> Result<(), StorageError>;
    /// Every key in the store, in any order.
    fn keys(&self) -> Result<Vec<String>, StorageError>;

    /// The values stored under `keys`, in their order. Adapters where each call is costly
    /// override it to read them all in one go.
    fn get_each(&self, keys: &[String]) -> Result<Fetched, StorageError> {
        Ok(Fetched::apart(keys.iter().map(|key| self.get(key)).collect::<Result<_, _>>()?))
    }

    /// Stores each `(key, value)` in order, stopping at the first failure: `Err((n, why))` when
    /// the first `n` were stored and the next was not. Adapters where each call is costly
    /// override it to hand every item over in one go.
    fn set_each(&mut self, items: &[(String, String)]) -> Result<(), (usize, StorageError)> {
        for (n, (key, value)) in items.iter().enumerate() {
            self.set(key, value).map_err(|e| (n, e))?;
        }
        Ok(())
    }

    /// Every item whose key starts with `prefix`. Adapters where each call is costly (a browser's
    /// storage seen from wasm) override it to read everything in one go.
    fn scan(&self, prefix: &str) -> Result<Scanned, StorageError> {
        let mut items = Scanned::default();
        for key in self.keys()? {
            if key.starts_with(prefix) {
                if let Some(value) = self.get(&key)? {
                    items.push(key, value);
                }
            }
        }
        Ok(items)
    }
}

/// What [`Storage::scan`] found: items joined in one text, read in place (a hydrate of thousands
/// of items makes no string per item), then items held apart.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Keys and values, each followed by a NUL (which none of them holds).
    joined: String,
    count: usize,
    apart: Vec<(String, String)>,
}

impl Scanned {
    /// `count` items in `joined`, each key and value followed by a NUL (which none holds).
    pub fn joined(joined: String, count: usize) -> Self {
        Scanned { joined, count, apart: Vec::new() }
    }

    /// Adds an item (one that holds a NUL, or one read on its own).
    pub fn push(&mut self, key: String, value: String) {
        self.apart.push((key, value));
    }

    /// How many items there are (as the joined ones were counted).
    pub fn len(&self) -> usize {
        self.count + self.apart.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each item's key and value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.joined.split_terminator('\0');
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
            .chain(self.apart.iter().map(|(key, value)| (key.as_str(), value.as_str())))
    }
}

/// What [`Storage::get_each`] read: the value under each key asked for, in their order. Read in
/// one go, they come as one text, read in place (a flush of a thousand keys makes no string per
/// value).
#[derive(Debug, Default)]
pub struct Fetched {
    /// Per key: `1` and its value, `0` when it has none, or `2` when its value holds a NUL (no
    /// record does), each followed by a NUL.
    joined: String,
    apart: Vec<Option<String>>,
}

impl Fetched {
    /// The values in one text, each as [`Fetched`]'s `joined` says.
    pub fn joined(joined: String) -> Self {
        Fetched { joined, apart: Vec::new() }
    }

    /// The values one by one.
    pub fn apart(values: Vec<Option<String>>) -> Self {
        Fetched { joined: String::new(), apart: values }
    }

    /// Each value, in order; a value no record can be is empty (so it reads as damaged).
    pub fn values(&self) -> impl Iterator<Item = Option<&str>> {
        let joined = self.joined.split_terminator('\0').map(|item| item.strip_prefix('1').or_else(|| item.starts_with('2').then_some("")));
        joined.chain(self.apart.iter().map(Option::as_deref))
    }
}

/// An in-memory [`Storage`] with an optional quota counted like browsers count it (UTF-16 code
/// units of keys and values), for native tests of persistence and quota handling.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    items: BTreeMap<String, String>,
    quota: Option<usize>,
}

fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

impl MemoryStorage {
    /// An empty store without a quota.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that refuses writes past `units` UTF-16 code units.
    pub fn with_quota(units: usize) -> Self {
        MemoryStorage { items: BTreeMap::new(), quota: Some(units) }
    }

    /// Space used, in UTF-16 code units.
    pub fn used(&self) -> usize {
        self.items.iter().map(|(k, v)| units(k) + units(v)).sum()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The raw items, for assertions.
    pub fn items(&self) -> &BTreeMap<String, String> {
        &self.items
    }
}

impl Storage for MemoryStorage {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        Ok(self.items.get(key).cloned())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), StorageError> {
        if let Some(quota) = self.quota {
            let old = self.items.get(key).map_or(0, |v| units(key) + units(v));
            if self.used() - old + units(key) + units(value) > quota {
                return Err(StorageError::QuotaExceeded);
            }
        }
        self.items.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn remove(&mut self, key: &str) -> Result<(), StorageError> {
        self.items.remove(key);
        Ok(())
    }

    fn keys(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.items.keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::{Fetched, Scanned};

    #[test]
    fn fetched_values_are_read_in_place_then_those_apart() {
        let joined = Fetched::joined("1{\"v\":1}\u{0}0\u{0}2\u{0}1\u{0}".into());
        let values: Vec<Option<&str>> = joined.values().collect();
        assert_eq!(values, [Some("{\"v\":1}"), None, Some(""), Some("")]);
        let apart = Fetched::apart(vec![None, Some("x".into())]);
        assert_eq!(apart.values().collect::<Vec<_>>(), [None, Some("x")]);
        assert!(Fetched::default().values().next().is_none());
    }

    #[test]
    fn joined_items_are_read_in_place_then_those_apart() {
        assert!(Scanned::joined(String::new(), 0).iter().next().is_none());
        let mut scanned = Scanned::joined("a\0{\"v\":1}\0bé\0\0c\0".into(), 2);
        scanned.push("with\0nul".into(), "x\0y".into());
        let items: Vec<(&str, &str)> = scanned.iter().collect();
        assert_eq!(items, [("a", "{\"v\":1}"), ("bé", ""), ("with\0nul", "x\0y")], "an unfinished item is left out");
        assert_eq!(scanned.len(), 3);
    }
}
