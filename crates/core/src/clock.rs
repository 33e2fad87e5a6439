use std::cell::Cell;
use std::rc::Rc;

/// Wall-clock time in milliseconds since the Unix epoch, injected so that TTL, retries and
/// conflicts are tested without sleeping.
pub trait Clock {
    /// The current wall-clock time.
    fn now_ms(&self) -> u64;
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: Rc<Cell<u64>>,
}

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        ManualClock { now: Rc::new(Cell::new(now_ms)) }
    }

    /// Sets the time (it may go backwards, as real wall clocks do).
    pub fn set(&self, now_ms: u64) {
        self.now.set(now_ms);
    }

    /// Moves the time forward.
    pub fn advance(&self, ms: u64) {
        self.now.set(self.now.get().saturating_add(ms));
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
}
