//! When to talk to the backend: a Sans-IO policy. The adapter asks [`SyncEngine::due`] whether to
//! send now and [`SyncEngine::next_wake`] when to ask again, reports how each request ended, and
//! passes in the time and a random jitter; the engine never sleeps, fetches or reads a clock, so
//! retries and backoff are tested deterministically.
use crate::{Backoff, CacheError};

/// The options that shape syncing (the JS API's `syncInterval`, `retryDelay`, `maxRetries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPolicy {
    /// How often the leader tab polls for other writers' changes, in ms.
    pub sync_interval_ms: u64,
    /// The first retry delay; later retries double it (with jitter), in ms.
    pub retry_delay_ms: u64,
    /// Retries per cycle before waiting for the next interval or an `online` event. Pending
    /// changes are never dropped.
    pub max_retries: u32,
}

/// The sync state a UI can show.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncState {
    /// The browser says it is online and the backend answered the last request (or none failed).
    pub online: bool,
    /// A request is in flight.
    pub syncing: bool,
    /// This instance polls for the whole origin.
    pub leader: bool,
    /// Failed attempts in the current cycle.
    pub failures: u32,
    /// When the next attempt may start, if one is scheduled after a failure.
    pub retry_at: Option<u64>,
    /// The last error, cleared by the next success.
    pub last_error: Option<CacheError>,
    /// When a request last succeeded.
    pub last_synced_at: Option<u64>,
    /// How changes from other writers arrive (see [`Realtime`]).
    pub realtime: Realtime,
    /// The backend answered that it does not exist (`404`/`405` on `/sync`): nothing is sent
    /// until a recheck at `retry_at`, the browser coming back online, or the next page load.
    pub absent: bool,
}

/// How this instance learns of other writers' changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realtime {
    /// Push is switched off (`realtime: 'off'`): the leader polls.
    Off,
    /// Not the leader: the leader tab receives changes for the whole origin.
    Follower,
    /// The leader is opening the event stream.
    Connecting,
    /// The leader holds the event stream: changes are pushed, nobody polls.
    Open,
    /// The stream failed and is retried with backoff; the leader polls meanwhile.
    Retrying,
    /// The backend has no event stream (a seed-only backend): the leader polls, and asks again
    /// after [`UNSUPPORTED_RECHECK_MS`].
    Unsupported,
}

impl Realtime {
    /// The name the JS API shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Realtime::Off => "off",
            Realtime::Follower => "follower",
            Realtime::Connecting => "connecting",
            Realtime::Open => "open",
            Realtime::Retrying => "retrying",
            Realtime::Unsupported => "unsupported",
        }
    }
}

/// The first reconnect delay of the event stream; it doubles per failure.
pub const PUSH_RETRY_MS: u64 = 1_000;
/// The longest reconnect delay of the event stream.
pub const PUSH_RETRY_MAX_MS: u64 = 30_000;
/// How long a backend without an event stream is polled before it is asked again (it may have
/// been upgraded meanwhile).
pub const UNSUPPORTED_RECHECK_MS: u64 = 5 * 60_000;
/// How long after the backend answered that it does not exist it is asked again; the wait doubles
/// per answer alike up to [`ABSENT_RECHECK_MAX_MS`]. A backend being deployed answers `404` for a
/// moment, and a long-lived page must not stop syncing for good because of it.
pub const ABSENT_RECHECK_MS: u64 = 5 * 60_000;
/// The longest wait between two checks of a backend that answered that it does not exist.
pub const ABSENT_RECHECK_MAX_MS: u64 = 60 * 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Push {
    Closed,
    Connecting,
    Open,
}

/// The sync policy's state.
#[derive(Debug, Clone)]
pub struct SyncEngine {
    policy: SyncPolicy,
    browser_online: bool,
    reachable: bool,
    in_flight: bool,
    failures: u32,
    retry_at: Option<u64>,
    next_poll_at: u64,
    leader: bool,
    /// The backend paged its answer: the next page is due at once.
    more: bool,
    last_error: Option<CacheError>,
    last_synced_at: Option<u64>,
    /// A `/sync` was answered: the cursor is current, so the stream may start from it. A `/clear`
    /// answer is a success too, but carries no cursor.
    caught_up: bool,
    push_enabled: bool,
    push: Push,
    push_failures: u32,
    push_retry_at: Option<u64>,
    push_unsupported: bool,
    /// How many answers in a row said the backend does not exist (0: it may).
    absent_answers: u32,
}

impl SyncEngine {
    /// A fresh engine; the first poll (if leader) is due at once.
    pub fn new(policy: SyncPolicy, now_ms: u64) -> Self {
        SyncEngine {
            policy,
            browser_online: true,
            reachable: true,
            in_flight: false,
            failures: 0,
            retry_at: None,
            next_poll_at: now_ms,
            leader: false,
            more: false,
            last_error: None,
            last_synced_at: None,
            caught_up: false,
            push_enabled: false,
            push: Push::Closed,
            push_failures: 0,
            push_retry_at: None,
            push_unsupported: false,
            absent_answers: 0,
        }
    }

    /// Switches push (`realtime: 'auto'`) on or off; off by default, so that a backend is only
    /// asked for an event stream when the adapter can hold one.
    pub fn set_push_enabled(&mut self, enabled: bool) {
        self.push_enabled = enabled;
    }

    /// Whether push is wanted at all: switched on, and a backend answered that it exists.
    fn push_wanted(&self) -> bool {
        self.push_enabled && self.absent_answers == 0
    }

    /// Whether the leader should open the event stream now (after the first successful sync).
    pub fn push_due(&self, now_ms: u64) -> bool {
        // After a first successful contact: the initial `/sync` catches up, so the stream starts
        // from a current cursor instead of sending the whole namespace a second time.
        self.push_wanted()
            && self.leader
            && self.browser_online
            && self.caught_up
            && self.push == Push::Closed
            && self.push_retry_at.is_none_or(|at| now_ms >= at)
    }

    /// The adapter started opening the event stream.
    pub fn push_begin(&mut self) {
        self.push = Push::Connecting;
    }

    /// The event stream is open: changes arrive without polling, so the leader stops polling.
    pub fn push_opened(&mut self, now_ms: u64) {
        self.push = Push::Open;
        self.push_failures = 0;
        self.push_retry_at = None;
        self.push_unsupported = false;
        self.reachable = true;
        self.last_synced_at = Some(now_ms);
    }

    /// The stream delivered changes (they count as a successful contact with the backend).
    pub fn push_received(&mut self, now_ms: u64) {
        self.last_synced_at = Some(now_ms);
    }

    /// The stream failed to open or ended. It is reopened after a backoff from
    /// [`PUSH_RETRY_MS`] doubling to [`PUSH_RETRY_MAX_MS`], scaled by a jitter factor in
    /// `[0.5, 1.5)`; meanwhile the leader polls, starting at once (changes may have been missed
    /// since the stream's last event).
    pub fn push_closed(&mut self, now_ms: u64, jitter: f64) {
        let was_open = self.push == Push::Open;
        self.push = Push::Closed;
        if !self.push_enabled || !self.leader {
            return;
        }
        // A stream that was open and then dropped starts a fresh backoff cycle.
        self.push_failures = if was_open {
            1
        } else {
            self.push_failures.saturating_add(1)
        };
        let delay = Backoff::doubling(PUSH_RETRY_MS, PUSH_RETRY_MAX_MS).delay(self.push_failures, jitter);
        self.push_retry_at = Some(now_ms.saturating_add(delay));
        if was_open {
            self.next_poll_at = now_ms;
        }
    }

    /// The stream's instance is going away and said so: the stream is reopened after `delay_ms`
    /// (a share of the spread the server asked for), not after a failure's backoff, and the
    /// leader does not poll at once (the reopened stream resumes from the cursor).
    pub fn push_moved(&mut self, now_ms: u64, delay_ms: u64) {
        self.push = Push::Closed;
        if !self.push_enabled || !self.leader {
            return;
        }
        self.push_failures = 0;
        self.push_retry_at = Some(now_ms.saturating_add(delay_ms));
    }

    /// The backend answered that it has no event stream: poll, and ask again much later.
    pub fn push_unsupported(&mut self, now_ms: u64) {
        self.push = Push::Closed;
        self.push_unsupported = true;
        self.push_failures = 0;
        self.push_retry_at = Some(now_ms.saturating_add(UNSUPPORTED_RECHECK_MS));
    }

    /// How other writers' changes arrive now.
    pub fn realtime(&self) -> Realtime {
        match (self.push_wanted(), self.leader, self.push) {
            (false, _, _) => Realtime::Off,
            (true, false, _) => Realtime::Follower,
            (true, true, Push::Connecting) => Realtime::Connecting,
            (true, true, Push::Open) => Realtime::Open,
            (true, true, Push::Closed) if self.push_unsupported => Realtime::Unsupported,
            (true, true, Push::Closed) => Realtime::Retrying,
        }
    }

    fn polls(&self) -> bool {
        self.leader && self.push != Push::Open
    }

    /// Whether a request should start now, given whether local changes are pending.
    pub fn due(&self, now_ms: u64, pending: bool) -> bool {
        if self.in_flight || !self.browser_online || self.retry_at.is_some_and(|at| now_ms < at) {
            return false;
        }
        pending || self.more || (self.polls() && now_ms >= self.next_poll_at)
    }

    /// When to ask [`SyncEngine::due`] again (`None`: only after a local change or an event).
    pub fn next_wake(&self, pending: bool) -> Option<u64> {
        if self.in_flight || !self.browser_online {
            return None;
        }
        let poll = if self.more {
            Some(0)
        } else {
            self.polls().then_some(self.next_poll_at)
        };
        let sync = match (self.retry_at, pending) {
            (Some(at), true) => Some(at),
            (Some(at), false) => poll.map(|p| p.max(at)),
            (None, true) => Some(0),
            (None, false) => poll,
        };
        // Only when `push_due` can turn true by time alone: before the first successful sync
        // nothing but an answer opens the stream, and a wake-up due at once would spin.
        let push = (self.push_wanted() && self.leader && self.push == Push::Closed && self.caught_up)
            .then(|| self.push_retry_at.unwrap_or(0));
        match (sync, push) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A request started.
    pub fn begin(&mut self) {
        self.in_flight = true;
        self.more = false;
    }

    /// The backend's answer was one page of more (`more: true`): fetch the next at once.
    pub fn more_to_fetch(&mut self) {
        self.more = true;
    }

    /// The backend answered `/sync` (see [`SyncEngine::succeeded`]). With `more: true` the next
    /// page is fetched at once, but only if the answer `moved` the cursor: a backend that pages
    /// without moving would be asked again and again, as fast as it answers. That is a protocol
    /// error, returned, and retried with backoff like any failure.
    pub fn answered(&mut self, now_ms: u64, more: bool, moved: bool, jitter: f64) -> Option<CacheError> {
        if more && !moved {
            let error = CacheError::Protocol {
                message: "the backend answered more: true without moving its cursor".into(),
            };
            self.failed(now_ms, error.clone(), false, jitter);
            // Asked again after the backoff: the backend still says there is more.
            self.more = true;
            return Some(error);
        }
        self.succeeded(now_ms);
        if more {
            self.more_to_fetch();
        }
        None
    }

    /// The request failed, but the outbox took care of it (a change the backend refuses for
    /// good left it, or the limits shrank after a `413`): send what remains at once. The backend
    /// answered, so it is reachable; nothing counts as a failed attempt.
    pub fn resend_now(&mut self) {
        self.in_flight = false;
        self.reachable = true;
        self.retry_at = None;
    }

    /// The `/sync` request succeeded: the backend is reachable, retries reset, the next poll is an
    /// interval away, and the cursor is current.
    pub fn succeeded(&mut self, now_ms: u64) {
        self.cleared(now_ms);
        self.caught_up = true;
        self.next_poll_at = now_ms.saturating_add(self.policy.sync_interval_ms);
    }

    /// The `/clear` request succeeded: as [`SyncEngine::succeeded`], but the cursor is as old as
    /// it was, so a poll due stays due and the event stream still waits for a `/sync` (opened
    /// now, the leader would stop polling before it ever caught up or read the backend's clock).
    pub fn cleared(&mut self, now_ms: u64) {
        self.in_flight = false;
        self.absent_answers = 0;
        self.reachable = true;
        self.failures = 0;
        self.retry_at = None;
        self.last_error = None;
        self.last_synced_at = Some(now_ms);
    }

    /// The request failed. Retries back off exponentially from `retry_delay_ms`, each delay
    /// scaled by a jitter factor in `[0.5, 1.5)` (from `jitter` in `[0, 1)`), capped at the sync
    /// interval; after `max_retries` retries the engine waits a whole interval (or an `online`
    /// event) before the next cycle. A network failure also marks the backend unreachable.
    pub fn failed(&mut self, now_ms: u64, error: CacheError, network: bool, jitter: f64) {
        self.in_flight = false;
        self.failures += 1;
        if network {
            self.reachable = false;
        }
        self.last_error = Some(error);
        let delay = if self.failures > self.policy.max_retries {
            self.failures = 0;
            self.policy.sync_interval_ms
        } else {
            Backoff::doubling(self.policy.retry_delay_ms, self.policy.sync_interval_ms.max(1)).delay(self.failures, jitter)
        };
        self.retry_at = Some(now_ms.saturating_add(delay.max(1)));
    }

    /// The backend answered that it does not exist (`404`/`405` on `/sync` or `/clear`: no
    /// backend at the configured URL). Nothing is sent, nor polled, until a recheck after
    /// [`ABSENT_RECHECK_MS`] (doubling per answer alike), an `online` event, or the next page
    /// load; pending writes stay in the outbox. The wait is scaled by a jitter factor in
    /// `[0.5, 1.5)` like retries. Returns whether this is news (the first such answer in a row),
    /// so that it is reported once.
    pub fn absent(&mut self, now_ms: u64, error: CacheError, jitter: f64) -> bool {
        self.in_flight = false;
        self.reachable = true;
        self.failures = 0;
        self.more = false;
        self.last_error = Some(error);
        self.absent_answers = self.absent_answers.saturating_add(1);
        let delay = Backoff::doubling(ABSENT_RECHECK_MS, ABSENT_RECHECK_MAX_MS).delay(self.absent_answers, jitter);
        self.retry_at = Some(now_ms.saturating_add(delay));
        self.absent_answers == 1
    }

    /// The browser went online or offline. Coming online retries at once.
    pub fn set_online(&mut self, online: bool) {
        self.browser_online = online;
        if online {
            self.failures = 0;
            self.retry_at = None;
            self.reachable = true;
            if !self.push_unsupported {
                self.push_retry_at = None;
                self.push_failures = 0;
            }
        }
    }

    /// This instance became (or stopped being) the origin's leader; a new leader polls at once.
    pub fn set_leader(&mut self, leader: bool, now_ms: u64) {
        if leader && !self.leader {
            self.next_poll_at = now_ms;
            self.push_retry_at = None;
            self.push_failures = 0;
        }
        self.leader = leader;
    }

    /// Whether this instance is the leader.
    pub fn is_leader(&self) -> bool {
        self.leader
    }

    /// The state to show.
    pub fn state(&self) -> SyncState {
        SyncState {
            online: self.browser_online && self.reachable,
            syncing: self.in_flight,
            leader: self.leader,
            failures: self.failures,
            retry_at: self.retry_at,
            last_error: self.last_error.clone(),
            last_synced_at: self.last_synced_at,
            realtime: self.realtime(),
            absent: self.absent_answers > 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: SyncPolicy = SyncPolicy {
        sync_interval_ms: 30_000,
        retry_delay_ms: 5_000,
        max_retries: 3,
    };

    fn err() -> CacheError {
        CacheError::Protocol {
            message: "x".into(),
        }
    }

    /// A leader with push enabled whose first /sync is under way.
    fn pushing_leader_syncing() -> SyncEngine {
        let mut e = SyncEngine::new(POLICY, 0);
        e.set_push_enabled(true);
        e.set_leader(true, 0);
        e.begin();
        e
    }

    #[test]
    fn a_pending_change_is_sent_at_once_and_only_one_request_is_in_flight() {
        let mut e = SyncEngine::new(POLICY, 0);
        assert!(!e.due(0, false), "a follower does not poll");
        assert!(e.due(0, true));
        assert_eq!(e.next_wake(true), Some(0));
        e.begin();
        assert!(!e.due(0, true));
        assert_eq!(e.next_wake(true), None);
        e.succeeded(10);
        assert!(!e.due(10, false));
        assert!(e.state().online && e.state().last_synced_at == Some(10));
    }

    #[test]
    fn the_leader_polls_every_interval() {
        let mut e = SyncEngine::new(POLICY, 0);
        e.set_leader(true, 0);
        assert!(e.due(0, false));
        e.begin();
        e.succeeded(100);
        assert_eq!(e.next_wake(false), Some(30_100));
        assert!(!e.due(30_099, false));
        assert!(e.due(30_100, false));
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_then_wait_an_interval() {
        let mut e = SyncEngine::new(POLICY, 0);
        let mut now = 0;
        let mut delays = Vec::new();
        for _ in 0..4 {
            e.begin();
            e.failed(now, err(), true, 0.5); // jitter factor exactly 1.0
            let at = e.state().retry_at.unwrap();
            delays.push(at - now);
            assert!(!e.due(at - 1, true));
            assert!(e.due(at, true));
            now = at;
        }
        assert_eq!(
            delays,
            [5_000, 10_000, 20_000, 30_000],
            "doubling from retryDelay, then a whole interval"
        );
        assert!(!e.state().online);
        e.begin();
        e.failed(now, err(), true, 0.0);
        assert_eq!(
            e.state().retry_at.unwrap() - now,
            2_500,
            "a new cycle, jitter 0.5x"
        );
        e.begin();
        e.failed(now, err(), true, 0.999_999);
        assert!(
            (e.state().retry_at.unwrap() - now) < 15_000,
            "jitter stays under 1.5x"
        );
    }

    #[test]
    fn coming_online_retries_at_once_and_offline_sends_nothing() {
        let mut e = SyncEngine::new(POLICY, 0);
        e.begin();
        e.failed(0, err(), true, 0.5);
        e.set_online(false);
        assert!(!e.due(1_000_000, true));
        assert_eq!(e.next_wake(true), None);
        e.set_online(true);
        assert!(e.due(1, true));
        assert!(e.state().online);
    }

    #[test]
    fn a_paged_answer_fetches_the_next_page_at_once_even_for_a_follower() {
        let mut e = SyncEngine::new(POLICY, 0);
        e.begin();
        e.succeeded(10);
        e.more_to_fetch();
        assert!(e.due(10, false));
        assert_eq!(e.next_wake(false), Some(0));
        e.begin();
        e.succeeded(20);
        assert!(!e.due(20, false), "the last page ends it");
    }

    #[test]
    fn paging_without_moving_the_cursor_is_a_protocol_error_with_backoff() {
        let mut e = SyncEngine::new(POLICY, 0);
        e.set_leader(true, 0);
        e.begin();
        assert_eq!(e.answered(10, true, true, 0.5), None);
        assert!(e.due(10, false), "the next page at once");
        e.begin();
        let error = e.answered(20, true, false, 0.5).expect("a protocol error");
        assert_eq!(error.kind(), crate::ErrorKind::Protocol);
        assert!(!e.due(20, false), "not asked again at once");
        assert_eq!(e.state().retry_at, Some(20 + 5_000), "backoff from retryDelay");
        assert_eq!(e.state().failures, 1);
        assert!(e.due(5_020, false));
    }

    #[test]
    fn a_change_refused_for_good_lets_the_rest_go_at_once() {
        let mut e = SyncEngine::new(POLICY, 0);
        e.begin();
        e.resend_now();
        assert!(e.due(0, true));
        assert_eq!(e.state().failures, 0);
        assert!(e.state().online);
    }

    #[test]
    fn with_push_open_the_leader_stops_polling_and_resumes_when_it_drops() {
        let mut e = SyncEngine::new(POLICY, 0);
        e.set_push_enabled(true);
        assert!(!e.push_due(0), "only the leader holds the stream");
        assert_eq!(e.realtime(), Realtime::Follower);
        e.set_leader(true, 0);
        assert!(
            !e.push_due(0),
            "the first poll catches up before the stream opens"
        );
        e.begin();
        e.succeeded(0);
        assert!(e.push_due(0));
        assert_eq!(e.next_wake(false), Some(0));
        e.push_begin();
        assert!(!e.push_due(0), "one stream at a time");
        e.push_opened(5);
        assert_eq!(e.realtime(), Realtime::Open);
        assert!(!e.due(1_000_000, false), "no polling while pushed");
        assert_eq!(
            e.next_wake(false),
            None,
            "an idle leader with an open stream sleeps"
        );
        assert!(e.due(10, true), "pending writes are still sent");
        e.push_closed(100_000, 0.5);
        assert_eq!(e.realtime(), Realtime::Retrying);
        assert!(
            e.due(100_000, false),
            "a dropped stream may have missed changes: poll at once"
        );
        assert!(!e.push_due(100_999));
        assert!(e.push_due(101_000), "reconnect after the first backoff");
    }

    #[test]
    fn push_reconnects_back_off_with_jitter_and_reset_once_open() {
        let mut e = pushing_leader_syncing();
        e.succeeded(0);
        let mut delays = Vec::new();
        let mut now = 0;
        for _ in 0..7 {
            e.push_begin();
            e.push_closed(now, 0.5);
            let at = e.push_retry_at.unwrap();
            delays.push(at - now);
            now = at;
        }
        assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        e.push_begin();
        e.push_opened(now);
        e.push_closed(now, 0.0);
        assert_eq!(
            e.push_retry_at.unwrap() - now,
            500,
            "a fresh cycle after being open, jitter 0.5x"
        );
    }

    #[test]
    fn a_backend_without_push_is_polled_and_asked_again_later() {
        let mut e = pushing_leader_syncing();
        e.succeeded(0);
        e.push_begin();
        e.push_unsupported(10);
        assert_eq!(e.realtime(), Realtime::Unsupported);
        assert!(e.due(30_000, false), "polling goes on, every interval");
        assert!(!e.push_due(10 + UNSUPPORTED_RECHECK_MS - 1));
        assert!(e.push_due(10 + UNSUPPORTED_RECHECK_MS));
    }

    #[test]
    fn push_off_or_offline_never_opens_a_stream() {
        let mut e = SyncEngine::new(POLICY, 0);
        e.set_leader(true, 0);
        e.begin();
        e.succeeded(0);
        assert!(!e.push_due(0));
        assert_eq!(e.realtime(), Realtime::Off);
        e.set_push_enabled(true);
        e.set_online(false);
        assert!(!e.push_due(0));
        e.set_online(true);
        assert!(e.push_due(0));
    }

    #[test]
    fn a_leader_that_never_synced_does_not_wake_at_once_for_the_stream() {
        let mut e = pushing_leader_syncing();
        e.failed(0, err(), true, 0.5);
        assert!(!e.push_due(10));
        assert_eq!(e.next_wake(false), Some(5_000), "the retry, not a stream that cannot open yet");
        e.begin();
        e.succeeded(5_000);
        assert!(e.push_due(5_000));
        assert_eq!(e.next_wake(false), Some(0));
    }

    #[test]
    fn an_acknowledged_clear_does_not_open_the_stream_before_a_sync() {
        let mut e = pushing_leader_syncing();
        e.cleared(10);
        assert!(e.state().last_synced_at == Some(10) && e.state().online);
        assert!(!e.push_due(10), "the stream starts after a /sync");
        assert!(e.due(10, false), "a new leader still polls at once");
        e.begin();
        e.succeeded(20);
        assert!(e.push_due(20));
    }

    #[test]
    fn a_follower_with_nothing_pending_sleeps_until_an_event() {
        let mut e = SyncEngine::new(POLICY, 0);
        assert_eq!(e.next_wake(false), None);
        e.begin();
        e.failed(0, err(), false, 0.5);
        assert_eq!(e.next_wake(false), None);
        assert_eq!(e.next_wake(true), Some(5_000));
    }
}
