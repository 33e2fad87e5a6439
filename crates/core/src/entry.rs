use crate::Stamp;

/// One key's latest write: a value (kept as JSON text) or a tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Where this write stands in the global order.
    pub stamp: Stamp,
    /// Time to live in milliseconds from `stamp.ts`; 0 never expires.
    pub ttl_ms: u64,
    /// The value as JSON text; `None` is a tombstone (a remove).
    pub value: Option<String>,
}

impl Entry {
    /// A value write.
    pub fn value(stamp: Stamp, ttl_ms: u64, json: impl Into<String>) -> Self {
        Entry { stamp, ttl_ms, value: Some(json.into()) }
    }

    /// A remove.
    pub fn tombstone(stamp: Stamp) -> Self {
        Entry { stamp, ttl_ms: 0, value: None }
    }

    /// When the value stops being visible, if it ever does. The same in every tab, in storage and
    /// on the server, because it depends only on the write itself.
    pub fn expires_at(&self) -> Option<u64> {
        if self.value.is_none() || self.ttl_ms == 0 {
            None
        } else {
            Some(self.stamp.ts.saturating_add(self.ttl_ms))
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
            None => Some(self.stamp.ts),
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
    fn tombstones_are_never_live() {
        let e = Entry::tombstone(Stamp::new(1000, "a"));
        assert!(!e.is_live(0));
        assert_eq!(e.dead_since(), Some(1000));
    }
}
