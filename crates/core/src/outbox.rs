use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::wire::{Change, ClearRequest};
use crate::{Entry, Stamp};

/// Local changes not yet acknowledged by the backend, coalesced per key: only the newest write of
/// each key is worth sending, and a clear makes every pending write ordered before it moot.
///
/// It serialises to JSON so the sync engine can keep it durably in storage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outbox {
    changes: BTreeMap<String, PendingWrite>,
    clear: Option<Stamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PendingWrite {
    stamp: Stamp,
    ttl_ms: u64,
    value: Option<String>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a write, replacing an older pending write of the same key.
    pub fn push(&mut self, key: &str, entry: &Entry) {
        if self.clear.as_ref().is_some_and(|clear| entry.stamp <= *clear) {
            return;
        }
        if self.changes.get(key).is_some_and(|pending| pending.stamp >= entry.stamp) {
            return;
        }
        let pending = PendingWrite { stamp: entry.stamp.clone(), ttl_ms: entry.ttl_ms, value: entry.value.clone() };
        self.changes.insert(key.to_owned(), pending);
    }

    /// Queues a clear; pending writes ordered before it are dropped.
    pub fn push_clear(&mut self, stamp: &Stamp) {
        if self.clear.as_ref().is_some_and(|clear| clear >= stamp) {
            return;
        }
        self.changes.retain(|_, pending| pending.stamp > *stamp);
        self.clear = Some(stamp.clone());
    }

    /// The pending clear, to send before any change.
    pub fn pending_clear(&self) -> Option<ClearRequest> {
        self.clear.as_ref().map(ClearRequest::from_stamp)
    }

    /// Up to `max` pending changes, in key order.
    pub fn batch(&self, max: usize) -> Vec<Change> {
        self.changes
            .iter()
            .take(max)
            .map(|(key, p)| {
                let entry = Entry { stamp: p.stamp.clone(), ttl_ms: p.ttl_ms, value: p.value.clone() };
                Change::from_entry(key, &entry)
            })
            .collect()
    }

    /// Marks changes as delivered. A key written again since the batch was taken stays pending.
    pub fn ack(&mut self, delivered: &[Change]) {
        for change in delivered {
            let stamp = Stamp::new(change.timestamp, change.node.clone().unwrap_or_default());
            if self.changes.get(&change.key).is_some_and(|p| p.stamp <= stamp) {
                self.changes.remove(&change.key);
            }
        }
    }

    /// Marks the clear as delivered (unless a newer one was queued since).
    pub fn ack_clear(&mut self, delivered: &ClearRequest) {
        if self.clear.as_ref().is_some_and(|clear| *clear <= delivered.stamp()) {
            self.clear = None;
        }
    }

    /// Number of pending changes (a pending clear counts as one).
    pub fn len(&self) -> usize {
        self.changes.len() + usize::from(self.clear.is_some())
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(ts: u64, v: &str) -> Entry {
        Entry::value(Stamp::new(ts, "n"), 0, v)
    }

    #[test]
    fn coalesces_per_key_keeping_the_newest() {
        let mut o = Outbox::new();
        for ts in 1..=300 {
            o.push(&format!("k{}", ts % 3), &w(ts, &ts.to_string()));
        }
        assert_eq!(o.len(), 3);
        o.push("k0", &w(1, "old"));
        let batch = o.batch(10);
        assert_eq!(batch.iter().find(|c| c.key == "k0").unwrap().timestamp, 300);
    }

    #[test]
    fn ack_keeps_writes_made_after_the_batch() {
        let mut o = Outbox::new();
        o.push("a", &w(1, "1"));
        o.push("b", &w(2, "2"));
        let batch = o.batch(10);
        o.push("a", &w(3, "3"));
        o.ack(&batch);
        assert_eq!(o.len(), 1);
        assert_eq!(o.batch(10)[0].timestamp, 3);
    }

    #[test]
    fn clear_drops_older_pending_writes() {
        let mut o = Outbox::new();
        o.push("a", &w(1, "1"));
        o.push("b", &w(5, "2"));
        o.push_clear(&Stamp::new(3, "n"));
        o.push("c", &w(2, "late"));
        assert_eq!(o.batch(10).len(), 1);
        assert_eq!(o.len(), 2);
        let clear = o.pending_clear().unwrap();
        o.ack_clear(&clear);
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn survives_a_round_trip_through_json() {
        let mut o = Outbox::new();
        o.push("a", &w(1, r#"{"x":1}"#));
        o.push_clear(&Stamp::new(0, "m"));
        let text = serde_json::to_string(&o).unwrap();
        assert_eq!(serde_json::from_str::<Outbox>(&text).unwrap(), o);
    }
}
