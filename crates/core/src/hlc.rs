use crate::validate::MAX_SAFE_INTEGER;

/// How far a write's stamp may run ahead of its writer's wall clock and still be taken as the
/// time it was written (as a seed peer reckons a TTL: from the timestamp). A burst of writes
/// within one millisecond runs the clock ahead by one per write; past this lead the clock has
/// adopted a stamp from a faster clock elsewhere, and the write carries its wall time apart
/// ([`crate::Entry::written_at`]) so that its TTL does not stretch by that clock's error.
pub const HLC_LEAD_TOLERANCE_MS: u64 = 1_000;

/// A hybrid logical clock folded into one millisecond number.
///
/// Every timestamp it issues is at least the wall clock and strictly above every timestamp it has
/// issued or observed. So a write made after seeing another write is ordered after it even when
/// this machine's wall clock is minutes behind; a burst of writes within one millisecond runs ahead
/// of the wall clock by at most one millisecond per write, and falls back as the wall clock passes.
#[derive(Clone, Debug, Default)]
pub struct HybridClock {
    last: u64,
}

impl HybridClock {
    /// A clock that has seen nothing yet.
    pub fn new() -> Self {
        HybridClock { last: 0 }
    }

    /// Issues the timestamp of a new local write and the time its TTL runs from: the timestamp
    /// itself while it is within [`HLC_LEAD_TOLERANCE_MS`] of the wall clock, else the wall clock.
    pub fn tick_written(&mut self, wall_ms: u64) -> (u64, u64) {
        let ts = self.tick(wall_ms);
        let written_at = if ts.saturating_sub(wall_ms) <= HLC_LEAD_TOLERANCE_MS { ts } else { wall_ms };
        (ts, written_at)
    }

    /// Issues the timestamp of a new local write.
    pub fn tick(&mut self, wall_ms: u64) -> u64 {
        // Never above what a JS number holds exactly: a record stamped beyond it could not be read.
        let next = wall_ms.max(self.last.saturating_add(1)).min(MAX_SAFE_INTEGER);
        self.last = next;
        next
    }

    /// Records a timestamp seen from elsewhere, so later local writes order after it.
    pub fn observe(&mut self, ts: u64) {
        if ts > self.last {
            self.last = ts.min(MAX_SAFE_INTEGER);
        }
    }

    /// The highest timestamp issued or observed.
    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_below_wall_clock() {
        let mut c = HybridClock::new();
        assert_eq!(c.tick(1000), 1000);
        assert_eq!(c.tick(2000), 2000);
    }

    #[test]
    fn strictly_increasing_when_wall_clock_stalls_or_goes_back() {
        let mut c = HybridClock::new();
        assert_eq!(c.tick(1000), 1000);
        assert_eq!(c.tick(1000), 1001);
        assert_eq!(c.tick(500), 1002);
    }

    #[test]
    fn a_write_after_a_future_stamp_is_written_at_the_wall_clock() {
        let mut c = HybridClock::new();
        assert_eq!(c.tick_written(1000), (1000, 1000));
        // A burst within one millisecond: still within the tolerance, written at its stamp.
        for _ in 0..HLC_LEAD_TOLERANCE_MS - 1 {
            c.tick(1000);
        }
        assert_eq!(c.tick_written(1000), (1000 + HLC_LEAD_TOLERANCE_MS, 1000 + HLC_LEAD_TOLERANCE_MS));
        // A stamp 23 h ahead seen: the next write orders after it but is written now.
        let ahead = 1000 + 23 * 3_600_000;
        c.observe(ahead);
        assert_eq!(c.tick_written(2000), (ahead + 1, 2000));
    }

    #[test]
    fn a_write_after_observing_wins_despite_a_slow_wall_clock() {
        let mut slow = HybridClock::new();
        let seen = 1_000_000 + 10 * 60 * 1000; // another writer, ten minutes ahead
        slow.observe(seen);
        assert!(slow.tick(1_000_000) > seen);
    }
}
