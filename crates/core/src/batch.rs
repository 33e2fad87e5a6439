//! Cutting the outbox into `/sync` requests a backend accepts: at most so many changes and so
//! many bytes each, so that a burst of offline writes or one large value never makes a request
//! the backend refuses on every retry. A backend that still answers `413` makes the limits
//! shrink; a change it refuses alone, for good, leaves the outbox (see [`Refusal`]).
use crate::{wire_text, SyncBatch};

/// The most changes one `/sync` request carries (the reference server accepts 1000).
pub const DEFAULT_MAX_CHANGES: usize = 500;

/// The most bytes one `/sync` request body carries by default: half the reference server's
/// default body limit (1 MiB), so a request fits with room to spare behind proxies that count
/// headers too.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 512 * 1024;

/// How much one `/sync` request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Changes per request.
    pub max_changes: usize,
    /// Bytes of the request body. A single change larger than this is still sent, alone: the
    /// backend decides whether it is too large.
    pub max_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits { max_changes: DEFAULT_MAX_CHANGES, max_bytes: DEFAULT_MAX_BATCH_BYTES }
    }
}

impl BatchLimits {
    /// Limits of `max_bytes` per request (at least one byte) and the default number of changes.
    pub fn with_max_bytes(max_bytes: usize) -> Self {
        BatchLimits { max_bytes: max_bytes.max(1), ..BatchLimits::default() }
    }

    /// The backend answered `413` to a request of `changes` changes in `bytes` bytes: ask for at
    /// most half of that from now on (the backend's limit is lower than ours). For the rest of
    /// this instance's life: backends do not change their limits often.
    pub fn shrink_below(&mut self, changes: usize, bytes: usize) {
        self.max_changes = (changes / 2).clamp(1, self.max_changes);
        self.max_bytes = (bytes / 2).clamp(1, self.max_bytes);
    }
}

/// What the backend said about a request that failed, as far as the outbox is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request was too large (`413`) and carried several changes: send fewer at once.
    TooLarge,
    /// The backend refuses the change at this index of the request for good (`413` for a request
    /// of that change alone, or a `400` naming it): it leaves the outbox and is reported; the
    /// others are sent again at once.
    Change(usize),
    /// Anything else: retried with backoff, nothing leaves the outbox.
    Retry,
}

impl Refusal {
    /// Classifies a failed `/sync` of `sent` changes by its HTTP `status` (0: no answer) and the
    /// index of the change the error body names, if any.
    pub fn of(status: u16, named_change: Option<usize>, sent: usize) -> Refusal {
        match (status, named_change) {
            (413, _) if sent > 1 => Refusal::TooLarge,
            (413, _) if sent == 1 => Refusal::Change(0),
            (400, Some(index)) if index < sent => Refusal::Change(index),
            _ => Refusal::Retry,
        }
    }
}

/// The body of `POST /sync` for `batch` after `cursor`: its changes in order while they fit in
/// `limits` (always at least one, so a large change is not stuck behind the limit). `batch` is
/// cut to the changes the body carries.
pub fn sync_body(cursor: u64, batch: &mut SyncBatch, limits: &BatchLimits) -> String {
    let mut out = format!("{{\"lastSync\":{cursor},\"changes\":[");
    let mut change = String::new();
    let mut taken = 0;
    for (key, entry) in batch.changes.iter().take(limits.max_changes) {
        change.clear();
        wire_text::write_change(&mut change, key, entry);
        // The comma before it and the closing "]}".
        if taken > 0 && out.len() + 1 + change.len() + 2 > limits.max_bytes {
            break;
        }
        if taken > 0 {
            out.push(',');
        }
        out.push_str(&change);
        taken += 1;
    }
    batch.changes.truncate(taken);
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, Stamp};

    fn batch(values: &[usize]) -> SyncBatch {
        let changes = values
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("k{i}"), Entry::value(Stamp::new(1 + i as u64, "n"), 0, format!("\"{}\"", "x".repeat(*n)))))
            .collect();
        SyncBatch { clear: None, changes }
    }

    #[test]
    fn a_body_stops_before_the_byte_limit_and_always_carries_one_change() {
        let limits = BatchLimits { max_changes: 500, max_bytes: 3_000 };
        let mut b = batch(&[1_000, 1_000, 1_000, 10]);
        let body = sync_body(7, &mut b, &limits);
        assert_eq!(b.changes.len(), 2, "a third 1 KB change would pass 3,000 bytes");
        assert!(body.len() <= 3_000, "{}", body.len());
        assert!(body.starts_with(r#"{"lastSync":7,"changes":[{"key":"k0""#) && body.ends_with("}]}"));

        let mut huge = batch(&[1_200_000, 10]);
        let body = sync_body(0, &mut huge, &limits);
        assert_eq!(huge.changes.len(), 1, "a change over the limit goes alone");
        assert!(body.len() > 1_200_000);
    }

    #[test]
    fn a_body_carries_at_most_max_changes() {
        let mut b = batch(&[1; 20]);
        sync_body(0, &mut b, &BatchLimits { max_changes: 8, max_bytes: usize::MAX });
        assert_eq!(b.changes.len(), 8);
    }

    #[test]
    fn bodies_cut_by_the_default_limits_fit_the_reference_servers_default_body_limit() {
        // 450 offline writes of 3 KB: one request would be about 1.4 MB, over the server's 1 MiB.
        let mut pending = batch(&[3_000; 450]);
        let mut sent = 0;
        while !pending.changes.is_empty() {
            let mut request = pending.clone();
            let body = sync_body(0, &mut request, &BatchLimits::default());
            assert!(body.len() <= DEFAULT_MAX_BATCH_BYTES && body.len() < 1 << 20);
            sent += request.changes.len();
            pending.changes.drain(..request.changes.len());
        }
        assert_eq!(sent, 450);
    }

    #[test]
    fn a_413_shrinks_the_limits_below_what_was_sent() {
        let mut limits = BatchLimits::default();
        limits.shrink_below(300, 400_000);
        assert_eq!(limits, BatchLimits { max_changes: 150, max_bytes: 200_000 });
        limits.shrink_below(1, 1);
        assert_eq!(limits, BatchLimits { max_changes: 1, max_bytes: 1 }, "never below one");
    }

    #[test]
    fn refusals_name_a_change_only_when_the_backend_singles_it_out() {
        assert_eq!(Refusal::of(413, None, 5), Refusal::TooLarge);
        assert_eq!(Refusal::of(413, None, 1), Refusal::Change(0));
        assert_eq!(Refusal::of(400, Some(3), 5), Refusal::Change(3));
        assert_eq!(Refusal::of(400, Some(5), 5), Refusal::Retry, "an index out of the request names nothing");
        assert_eq!(Refusal::of(400, None, 5), Refusal::Retry);
        assert_eq!(Refusal::of(500, Some(0), 5), Refusal::Retry);
        assert_eq!(Refusal::of(0, None, 1), Refusal::Retry);
    }
}
