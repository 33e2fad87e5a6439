use crate::hash::HashMap;

use crate::{Entry, HybridClock, Stamp};

/// What merging one incoming write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The write is newer than what the replica had: it now holds it.
    Applied,
    /// The replica already holds this very write.
    Duplicate,
    /// The replica holds a newer write for the key; the incoming one lost.
    Stale,
    /// The write is ordered at or before the clear epoch: it is gone for good.
    Cleared,
}

/// One replica's state as a join-semilattice: per key the highest-stamped write, and the highest
/// clear epoch, which removes every write ordered at or before it.
///
/// Merging is commutative, associative and idempotent, so replicas that have seen the same writes
/// hold the same state whatever the order, duplication or batching of delivery. TTL does not enter
/// the merge: an expired value still orders writes, exactly like a tombstone, so expiry cannot make
/// an older write reappear.
#[derive(Clone, Debug, Default)]
pub struct Replica {
    node: String,
    clock: HybridClock,
    entries: HashMap<String, Entry>,
    epoch: Option<Stamp>,
}

impl Replica {
    /// An empty replica writing as `node`.
    pub fn new(node: impl Into<String>) -> Self {
        Replica { node: node.into(), ..Default::default() }
    }

    /// This replica's writer id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The clock local writes are stamped from.
    pub fn clock(&self) -> &HybridClock {
        &self.clock
    }

    /// Records a timestamp seen elsewhere (in storage, say) so later local writes order after it.
    pub fn observe(&mut self, ts: u64) {
        self.clock.observe(ts);
    }

    /// Records a local write (a value, or a remove when `value` is `None`) and returns it.
    pub fn write(&mut self, key: &str, value: Option<String>, ttl_ms: u64, wall_ms: u64) -> Entry {
        let (ts, written_at) = self.clock.tick_written(wall_ms);
        let stamp = Stamp::new(ts, self.node.clone());
        let entry = Entry { stamp, ttl_ms: if value.is_some() { ttl_ms } else { 0 }, value, written_at };
        self.entries.insert(key.to_owned(), entry.clone());
        entry
    }

    /// Records a local clear and returns its epoch and the keys it removed.
    pub fn clear(&mut self, wall_ms: u64) -> (Stamp, Vec<String>) {
        let stamp = Stamp::new(self.clock.tick(wall_ms), self.node.clone());
        let removed = self.merge_epoch(&stamp);
        (stamp, removed)
    }

    /// Makes room for `additional` more keys at once (a cache loading its storage).
    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
    }

    /// Merges a write from elsewhere.
    pub fn merge(&mut self, key: &str, incoming: Entry) -> MergeOutcome {
        self.clock.observe(incoming.stamp.ts);
        if self.epoch.as_ref().is_some_and(|epoch| incoming.stamp <= *epoch) {
            return MergeOutcome::Cleared;
        }
        match self.entries.get_mut(key) {
            Some(current) if current.stamp > incoming.stamp => MergeOutcome::Stale,
            Some(current) if current.stamp == incoming.stamp => MergeOutcome::Duplicate,
            Some(current) => {
                *current = incoming;
                MergeOutcome::Applied
            }
            None => {
                self.entries.insert(key.to_owned(), incoming);
                MergeOutcome::Applied
            }
        }
    }

    /// Merges a clear epoch from elsewhere; returns the keys it removed (if it is newer).
    pub fn merge_epoch(&mut self, epoch: &Stamp) -> Vec<String> {
        self.clock.observe(epoch.ts);
        if self.epoch.as_ref().is_some_and(|current| current >= epoch) {
            return Vec::new();
        }
        let mut removed = Vec::new();
        self.entries.retain(|key, entry| {
            let keep = entry.stamp > *epoch;
            if !keep {
                removed.push(key.clone());
            }
            keep
        });
        self.epoch = Some(epoch.clone());
        removed
    }

    /// The current clear epoch.
    pub fn epoch(&self) -> Option<&Stamp> {
        self.epoch.as_ref()
    }

    /// The write held for `key`, live or not.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// The value of `key` as a reader at `now_ms` sees it.
    pub fn get(&self, key: &str, now_ms: u64) -> Option<&str> {
        self.entries.get(key).filter(|e| e.is_live(now_ms)).and_then(|e| e.value.as_deref())
    }

    /// Every key and its write.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter()
    }

    /// Number of writes held (live, expired and tombstones).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no write is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets a key without ordering anything (housekeeping of dead entries, not a remove).
    pub fn forget(&mut self, key: &str) -> Option<Entry> {
        self.entries.remove(key)
    }

    /// Merges another replica's whole state into this one (state-based sync).
    pub fn join(&mut self, other: &Replica) {
        if let Some(epoch) = &other.epoch {
            self.merge_epoch(epoch);
        }
        for (key, entry) in &other.entries {
            self.merge(key, entry.clone());
        }
    }

    /// The replicated state alone (entries and epoch, not clock or node), for comparing replicas.
    pub fn state(&self) -> (std::collections::BTreeMap<&str, &Entry>, Option<&Stamp>) {
        (self.entries.iter().map(|(k, e)| (k.as_str(), e)).collect(), self.epoch.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(ts: u64, node: &str, json: &str) -> Entry {
        Entry::value(Stamp::new(ts, node), 0, json)
    }

    #[test]
    fn higher_stamp_wins_and_ties_break_on_node() {
        let mut r = Replica::new("r");
        assert_eq!(r.merge("k", v(10, "a", "1")), MergeOutcome::Applied);
        assert_eq!(r.merge("k", v(9, "z", "2")), MergeOutcome::Stale);
        assert_eq!(r.merge("k", v(10, "b", "3")), MergeOutcome::Applied);
        assert_eq!(r.merge("k", v(10, "b", "3")), MergeOutcome::Duplicate);
        assert_eq!(r.get("k", 0), Some("3"));
    }

    #[test]
    fn an_older_set_does_not_resurrect_a_removed_key() {
        let mut r = Replica::new("r");
        r.merge("k", Entry::tombstone(Stamp::new(20, "a")));
        assert_eq!(r.merge("k", v(15, "b", "1")), MergeOutcome::Stale);
        assert_eq!(r.get("k", 0), None);
    }

    #[test]
    fn clear_removes_everything_before_it_including_late_arrivals() {
        let mut r = Replica::new("r");
        r.merge("a", v(10, "x", "1"));
        r.merge("b", v(30, "x", "2"));
        let removed = r.merge_epoch(&Stamp::new(20, "y"));
        assert_eq!(removed, vec!["a".to_string()]);
        assert_eq!(r.merge("c", v(19, "x", "3")), MergeOutcome::Cleared);
        assert_eq!(r.get("b", 0), Some("2"));
        assert_eq!(r.merge("c", v(21, "x", "4")), MergeOutcome::Applied);
    }

    #[test]
    fn local_write_after_seeing_a_remote_one_wins_even_with_a_slow_clock() {
        let mut r = Replica::new("slow");
        let ahead = 1_000_000 + 600_000;
        r.merge("k", v(ahead, "fast", "\"theirs\""));
        let mine = r.write("k", Some("\"mine\"".into()), 0, 1_000_000);
        assert!(mine.stamp.ts > ahead);
        assert_eq!(r.get("k", 0), Some("\"mine\""));
    }

    #[test]
    fn expired_values_still_order_writes() {
        let mut r = Replica::new("r");
        r.merge("k", Entry::value(Stamp::new(100, "a"), 10, "1"));
        assert_eq!(r.get("k", 200), None);
        assert_eq!(r.merge("k", Entry::value(Stamp::new(50, "b"), 0, "2")), MergeOutcome::Stale);
        assert_eq!(r.get("k", 200), None);
    }
}
