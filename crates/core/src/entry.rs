use crate::Stamp;

/// One key's latest write: a value (kept as JSON text) or a tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Where this write stands in the global order.
    pub stamp: Stamp,
    /// Time to live in milliseconds from `written_at`; 0 never expires.
    pub ttl_ms: u64,
    /// The value as JSON text; `None` is a tombstone (a remove).
    pub value: Option<String>,
    /// When the writer wrote it by its own wall clock (ms since the Unix epoch): the TTL runs from
    /// here, not from `stamp.ts`. The two differ when the writer's hybrid clock ran ahead of its
    /// wall clock after seeing a write stamped in the future (another device's fast clock): the
    /// stamp must order after that write, but the TTL must not stretch by that device's error.
    /// At most `stamp.ts`; equal to it for writes of peers that speak only the seed protocol.
    pub written_at: u64,
}

impl Entry {
    /// A value write, written at its stamp's time.
    pub fn value(stamp: Stamp, ttl_ms: u64, json: impl Into<String>) -> Self {
        let written_at = stamp.ts;
        Entry { stamp, ttl_ms, value: Some(json.into()), written_at }
    }

    /// A remove, written at its stamp's time.
    pub fn tombstone(stamp: Stamp) -> Self {
        let written_at = stamp.ts;
        Entry { stamp, ttl_ms: 0, value: None, written_at }
    }

    /// The same write, written at `written_at` by the writer's wall clock (never after its stamp).
    pub fn written_at(mut self, written_at: u64) -> Self {
        self.written_at = written_at.min(self.stamp.ts);
        self
    }

    /// When the value stops being visible, if it ever does. The same in every tab, in storage and
    /// on the server, because it depends only on the write itself.
    pub fn expires_at(&self) -> Option<u64> {
        if self.value.is_none() || self.ttl_ms == 0 {
            None
        } else {
            Some(self.written_at.saturating_add(self.ttl_ms))
        }
    }

    /// Whether a reader at `now_ms` sees a value.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.value.is_some() && self.expires_at().is_none_or(|at| now_ms < at)
    }

    /// Whether the entry is a tombstone or an expired value: it only orders writes now.
    pub fn is_dead(&self, now_ms: u64) -> bool {
        !self.is_live(now_ms)
    }

    /// Since when the entry has been dead (tombstone: its write; expired value: its expiry).
    pub fn dead_since(&self) -> Option<u64> {
        match self.value {
            None => Some(self.written_at),
            Some(_) => self.expires_at(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_timestamp_plus_ttl() {
        let e = Entry::value(Stamp::new(1000, "a"), 5000, "1");
        assert_eq!(e.expires_at(), Some(6000));
        assert!(e.is_live(5999));
        assert!(!e.is_live(6000));
    }

    #[test]
    fn ttl_zero_never_expires() {
        let e = Entry::value(Stamp::new(1000, "a"), 0, "1");
        assert_eq!(e.expires_at(), None);
        assert!(e.is_live(u64::MAX));
    }

    #[test]
    fn the_ttl_runs_from_when_it_was_written_not_from_its_stamp() {
        // Stamped a day ahead (the writer had seen a write from a fast clock), written at 1000.
        let e = Entry::value(Stamp::new(1000 + 86_400_000, "a"), 5000, "1").written_at(1000);
        assert_eq!(e.expires_at(), Some(6000));
        assert!(!e.is_live(6000));
        let t = Entry::tombstone(Stamp::new(90_000, "a")).written_at(500);
        assert_eq!(t.dead_since(), Some(500));
        // Never after the stamp: the stamp is at least the writer's wall clock.
        assert_eq!(Entry::tombstone(Stamp::new(7, "a")).written_at(9).written_at, 7);
    }

    #[test]
    fn tombstones_are_never_live() {
        let e = Entry::tombstone(Stamp::new(1000, "a"));
        assert!(!e.is_live(0));
        assert_eq!(e.dead_since(), Some(1000));
    }
}
