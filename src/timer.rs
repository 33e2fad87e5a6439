//! The client's one timer. The core names its next deadline after every input; re-arming
//! `setTimeout` each time would cost a closure and two calls across the boundary per input, so a
//! timer already armed for an earlier time is kept: it wakes the core early, which is harmless
//! (nothing is due), and the timer is then armed again for the deadline still wanted. It cancels
//! itself when dropped, so it disappears with the cache.
use std::rc::Weak;

use gloo_timers::callback::Timeout;

use crate::driver::Driver;

/// The longest delay `setTimeout` honours (2^31 - 1 ms); a later deadline wakes early and re-arms.
const MAX_DELAY_MS: u64 = i32::MAX as u64;

/// The deadline the core wants and the timeout armed for it (or for an earlier time).
#[derive(Default)]
pub(crate) struct Timer {
    wanted: Option<u64>,
    armed: Option<(u64, Timeout)>,
}

impl Timer {
    /// The core's next deadline (`None`: none).
    pub(crate) fn want(&mut self, at: Option<u64>) {
        self.wanted = at;
        if let (Some(at), Some((armed_at, _))) = (at, &self.armed) {
            if at < *armed_at {
                self.armed = None;
            }
        }
    }

    /// Arms the timeout for the wanted deadline if none is armed; it calls the core's `wake`.
    pub(crate) fn arm(&mut self, now: u64, driver: &Weak<Driver>) {
        let Some(at) = self.wanted.filter(|_| self.armed.is_none()) else { return };
        let delay = at.saturating_sub(now).min(MAX_DELAY_MS) as u32;
        let driver = driver.clone();
        let timeout = Timeout::new(delay, move || {
            Driver::input(&driver, |inner, now| {
                inner.timer.armed = None;
                // Reached: from here the core says what comes next (a deadline it keeps is not
                // re-armed in a loop). Not reached (armed early): still wanted.
                if inner.timer.wanted.is_some_and(|at| at <= now) {
                    inner.timer.wanted = None;
                }
                inner.client.wake(now);
            })
        });
        self.armed = Some((at, timeout));
    }
}
