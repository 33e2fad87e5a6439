//! A one-shot timer that cancels itself when dropped, so the expiry timer exists only while
//! something can expire and disappears with the cache.
use gloo_timers::callback::Timeout;

/// The longest delay `setTimeout` honours (2^31 - 1 ms); longer waits re-arm.
const MAX_DELAY_MS: u64 = i32::MAX as u64;

/// An armed timer and the time it fires for.
pub struct ExpiryTimer {
    at: u64,
    _timeout: Timeout,
}

impl ExpiryTimer {
    /// Arms a timer that calls `fire` at wall time `at` (ms), or earlier for very long waits.
    pub fn arm(at: u64, now: u64, fire: impl FnOnce() + 'static) -> Self {
        let delay = at.saturating_sub(now).min(MAX_DELAY_MS) as u32;
        ExpiryTimer { at, _timeout: Timeout::new(delay, fire) }
    }

    /// When the timer is for.
    pub fn at(&self) -> u64 {
        self.at
    }
}
