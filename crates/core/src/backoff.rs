//! One backoff for everything that retries: requests to the backend, the event stream, and
//! `getOrFetch` loaders. Each delay grows by a factor per attempt up to a cap, and may be scaled
//! by a random factor in `[0.5, 1.5)` so that many tabs of many users do not retry in step.

/// A backoff schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The delay before the first retry, in ms.
    pub first_ms: u64,
    /// How much each retry's delay grows.
    pub factor: f64,
    /// The longest delay, in ms.
    pub max_ms: u64,
    /// Whether delays are scaled by a random factor in `[0.5, 1.5)`.
    pub jitter: bool,
}

impl Backoff {
    /// Doubling from `first_ms` up to `max_ms`, with jitter: requests and the event stream.
    pub fn doubling(first_ms: u64, max_ms: u64) -> Self {
        Backoff { first_ms, factor: 2.0, max_ms, jitter: true }
    }

    /// The delay before retry number `retry` (1 for the first), given `random` in `[0, 1)`.
    pub fn delay(&self, retry: u32, random: f64) -> u64 {
        let growth = self.factor.max(1.0).powi(i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX));
        let base = (self.first_ms as f64 * growth).min(self.max_ms as f64);
        let scaled = if self.jitter { base * (0.5 + random.clamp(0.0, 1.0)) } else { base };
        // Finite and non-negative by construction; `as` saturates anyway.
        scaled as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_jitter_scales_by_half_to_one_and_a_half() {
        let b = Backoff::doubling(1_000, 30_000);
        let delays: Vec<u64> = (1..=7).map(|n| b.delay(n, 0.5)).collect();
        assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        assert_eq!(b.delay(1, 0.0), 500);
        assert!(b.delay(1, 0.999_999) < 1_500);
        assert_eq!(b.delay(u32::MAX, 0.5), 30_000, "no overflow");
    }

    #[test]
    fn a_loader_schedule_has_its_own_factor_and_no_jitter() {
        let b = Backoff { first_ms: 100, factor: 3.0, max_ms: 2_000, jitter: false };
        let delays: Vec<u64> = (1..=5).map(|n| b.delay(n, 0.9)).collect();
        assert_eq!(delays, [100, 300, 900, 2_000, 2_000]);
    }
}
