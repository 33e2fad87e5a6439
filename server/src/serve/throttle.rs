//! Log lines for events that can come by the thousand per second (refused connections, accept
//! failures): one line per interval, with how many happened since the last one.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

/// At most one log line per this long.
const INTERVAL: Duration = Duration::from_secs(10);

/// Counts events; says when one deserves a log line.
#[derive(Debug, Default)]
pub struct Throttle {
    count: AtomicU64,
    last: Mutex<Option<Instant>>,
}

impl Throttle {
    /// Counts an event; returns how many there were since the last line when it is time for one.
    pub fn tick(&self) -> Option<u64> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < INTERVAL) {
            return None;
        }
        *last = Some(Instant::now());
        Some(self.count.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_event_is_logged_and_the_next_ones_are_counted_for_later() {
        let throttle = Throttle::default();
        assert_eq!(throttle.tick(), Some(1));
        assert_eq!(throttle.tick(), None);
        assert_eq!(throttle.tick(), None);
        assert_eq!(throttle.count.load(Ordering::Relaxed), 2);
    }
}
