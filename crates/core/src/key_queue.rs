//! Keys waiting for the next flush, in the order they were first queued. A burst's storage writes
//! and news keep the order of its writes with no sort: std's size-tuned sort is a heapsort, and the
//! flush of a 1,000-key burst spent about a microsecond a key sorting two sets of them.
use crate::hash::HashMap;

#[derive(Debug, Default)]
pub(crate) struct KeyQueue {
    /// Each key with its place (the map type of the cache's recency table: no new code in the
    /// wasm).
    places: HashMap<String, u64>,
    /// The place of the next key; places of keys taken out by `retain` stay unused until `drain`.
    next: u64,
}

impl KeyQueue {
    /// Queues `key` unless it is queued already (then it keeps its place).
    pub(crate) fn insert(&mut self, key: &str) {
        if self.places.get_mut(key).is_none() {
            self.places.insert(key.to_owned(), self.next);
            self.next += 1;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.places.len()
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.places.retain(|key, _| keep(key));
        if self.places.is_empty() {
            self.next = 0;
        }
    }

    /// Every queued key, in queue order; the queue is left empty.
    pub(crate) fn drain(&mut self) -> Vec<String> {
        let mut slots: Vec<Option<String>> = vec![None; usize::try_from(self.next).unwrap_or(0)];
        for (key, place) in self.places.drain() {
            match usize::try_from(place).ok().and_then(|place| slots.get_mut(place)) {
                Some(slot) => *slot = Some(key),
                None => slots.push(Some(key)),
            }
        }
        self.next = 0;
        slots.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::KeyQueue;

    #[test]
    fn drains_in_first_insert_order_once_each() {
        let mut q = KeyQueue::default();
        for key in ["b", "a", "c", "a", "b", "d"] {
            q.insert(key);
        }
        assert_eq!(q.len(), 4);
        assert_eq!(q.drain(), ["b", "a", "c", "d"]);
        assert_eq!(q.len(), 0);
        assert!(q.drain().is_empty());
    }

    #[test]
    fn retain_keeps_the_order_of_what_stays() {
        let mut q = KeyQueue::default();
        for key in ["x", "y", "z", "w"] {
            q.insert(key);
        }
        q.retain(|key| key != "y" && key != "w");
        q.insert("v");
        q.insert("x");
        assert_eq!(q.drain(), ["x", "z", "v"]);
        q.insert("y");
        assert_eq!(q.drain(), ["y"]);
    }
}
