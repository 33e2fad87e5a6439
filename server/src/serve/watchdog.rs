//! What one connection is doing, and when it has waited too long.
//!
//! hyper alone does not bound a connection's life: its HTTP/1 `header_read_timeout` starts only
//! once the first bytes have arrived (behind the auto builder's HTTP/1-or-2 sniffing, a client
//! that sends nothing, or only `PR`, is never timed out), it is also the only idle timeout of a
//! keep-alive connection (the timer starts as soon as hyper waits for the next request, so it
//! cannot be longer than the header timeout), and HTTP/2 has neither. So the server keeps its own
//! watch on each connection, from two signals: requests in progress (a request counts from its
//! headers until its answer's body is finished or dropped, so an event stream is in progress for
//! as long as it is open) and bytes arriving while none is.
//!
//! With no request in progress a connection gets, in order:
//! - before its first request: `header` from its opening (slow-loris, connections never used);
//! - HTTP/1, once bytes of the next request arrived: `header` from the first of them;
//! - otherwise: `idle` from the end of the last request (keep-alive).
//!
//! HTTP/2 connections skip the middle rule: their control frames (pings, window updates) arrive
//! between requests without starting one.
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
// tokio's clock, which tests can pause and move.
use tokio::time::Instant;

/// How long a connection may wait at each stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// For a request's headers: from the opening for the first request, from the first byte for
    /// the next ones.
    pub header: Duration,
    /// For a request's whole body, from its headers.
    pub body: Duration,
    /// Between requests on a keep-alive connection.
    pub idle: Duration,
}

/// Why a connection is to be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A request did not arrive, or not completely, in time: close it at once.
    Stalled,
    /// No request for the idle timeout: close it gracefully (HTTP/2 says GOAWAY).
    Idle,
}

const NONE: u64 = u64::MAX;

/// The shared state of one connection: written by its I/O and its requests, read by its watch.
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    in_progress: AtomicUsize,
    served: AtomicBool,
    multiplexed: AtomicBool,
    /// Milliseconds since `opened`.
    idle_since: AtomicU64,
    /// Milliseconds since `opened` of the first byte read while idle, or [`NONE`].
    next_head_since: AtomicU64,
    changed: Notify,
}

impl Activity {
    /// A connection just opened.
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            opened: Instant::now(),
            in_progress: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            multiplexed: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            next_head_since: AtomicU64::new(NONE),
            changed: Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    /// Bytes arrived from the client.
    pub fn on_read(&self) {
        if self.in_progress.load(Ordering::Acquire) == 0
            && self.served.load(Ordering::Acquire)
            && !self.multiplexed.load(Ordering::Relaxed)
            && self.next_head_since.compare_exchange(NONE, self.now_ms(), Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            // The header deadline may come before the idle one the watch is sleeping towards.
            self.changed.notify_one();
        }
    }

    /// A request's headers arrived; it is in progress until the guard is dropped.
    pub fn begin(self: &Arc<Self>, http2: bool) -> InProgress {
        self.in_progress.fetch_add(1, Ordering::AcqRel);
        self.served.store(true, Ordering::Release);
        if http2 {
            self.multiplexed.store(true, Ordering::Relaxed);
        }
        InProgress(self.clone())
    }

    /// When the connection is to be closed as things stand, and why; `None` while a request is in
    /// progress.
    fn deadline(&self, timeouts: &Timeouts) -> Option<(Instant, Verdict)> {
        if self.in_progress.load(Ordering::Acquire) > 0 {
            return None;
        }
        if !self.served.load(Ordering::Acquire) {
            return Some((self.opened + timeouts.header, Verdict::Stalled));
        }
        match self.next_head_since.load(Ordering::Acquire) {
            NONE => Some((self.at(self.idle_since.load(Ordering::Acquire)) + timeouts.idle, Verdict::Idle)),
            since => Some((self.at(since) + timeouts.header, Verdict::Stalled)),
        }
    }

    /// Resolves when the connection has waited past its deadline. Cancel-safe: the state lives in
    /// `self`, so a new call picks up where a dropped one was.
    pub async fn expired(&self, timeouts: &Timeouts) -> Verdict {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before reading the state, so a change made in between still wakes us.
            changed.as_mut().enable();
            match self.deadline(timeouts) {
                None => changed.await,
                Some((at, _)) => {
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(at) => {
                            // A request may have begun since (that sends no wake-up): look again.
                            if let Some((at, verdict)) = self.deadline(timeouts) {
                                if at <= Instant::now() {
                                    return verdict;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A request in progress on its connection (see [`Activity::begin`]).
#[derive(Debug)]
pub struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.idle_since.store(activity.now_ms(), Ordering::Release);
        activity.next_head_since.store(NONE, Ordering::Release);
        if activity.in_progress.fetch_sub(1, Ordering::AcqRel) == 1 {
            activity.changed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        header: Duration::from_millis(100),
        body: Duration::from_millis(100),
        idle: Duration::from_millis(300),
    };

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_is_stalled_after_the_header_timeout() {
        let activity = Activity::new();
        let opened = Instant::now();
        assert_eq!(activity.expired(&T).await, Verdict::Stalled);
        assert!(opened.elapsed() >= T.header);
    }

    #[tokio::test(start_paused = true)]
    async fn between_requests_the_idle_timeout_applies_then_the_header_one_from_the_first_byte() {
        let activity = Activity::new();
        drop(activity.begin(false));
        let idle_from = Instant::now();
        assert_eq!(activity.expired(&T).await, Verdict::Idle);
        assert!(idle_from.elapsed() >= T.idle);

        drop(activity.begin(false));
        tokio::time::sleep(Duration::from_millis(50)).await;
        activity.on_read();
        let head_from = Instant::now();
        assert_eq!(activity.expired(&T).await, Verdict::Stalled);
        let waited = head_from.elapsed();
        assert!(waited >= T.header && waited < T.idle, "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_progress_is_never_timed_out_and_its_end_starts_the_idle_clock() {
        let activity = Activity::new();
        let request = activity.begin(false);
        let watch = activity.clone();
        let expired = tokio::spawn(async move { watch.expired(&T).await });
        tokio::time::sleep(T.idle * 10).await;
        let ended = Instant::now();
        drop(request);
        // Counted from the end of the request: it did not expire while the request was going on.
        assert_eq!(expired.await.unwrap(), Verdict::Idle);
        assert!(ended.elapsed() >= T.idle);
    }

    #[tokio::test(start_paused = true)]
    async fn http2_control_frames_between_requests_do_not_shorten_the_idle_timeout() {
        let activity = Activity::new();
        drop(activity.begin(true));
        let idle_from = Instant::now();
        activity.on_read();
        assert_eq!(activity.expired(&T).await, Verdict::Idle);
        assert!(idle_from.elapsed() >= T.idle);
    }
}
