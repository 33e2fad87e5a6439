//! The backend half of the client: the election, `/sync` and `/clear` requests cut by the batch
//! limits, their answers (acknowledgements, updates, refusals, the backend's clock), and the
//! leader's event stream with its watchdog.
use super::leader::{Ask, Leadership};
use super::{Client, Effect, Fetch, LockMode};
use crate::message::{decode_error_body, decode_stream_event, decode_sync_answer, SseReader, StreamItem};
use crate::wire_text;
use crate::{
    sync_body, BatchLimits, CacheError, Realtime, Refusal, Storage, SyncBatch, SyncEngine,
    SyncPolicy, SyncState,
};

/// A stream silent for this many of the server's heartbeats is taken for dead (a half-open
/// connection after a network change or a sleeping laptop) and reopened.
const MISSED_HEARTBEATS: f64 = 2.5;

/// How the client talks to its backend.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// Polling and retries (`syncInterval`, `retryDelay`, `maxRetries`).
    pub policy: SyncPolicy,
    /// A request with no complete answer by then is aborted (`requestTimeout`).
    pub request_timeout_ms: u64,
    /// Bytes one `/sync` request carries at most (`maxBatchBytes`).
    pub max_batch_bytes: usize,
    /// Whether the leader holds the event stream (`realtime: 'auto'`).
    pub realtime: bool,
    /// The backend's URL: tabs syncing with different backends elect their leaders apart.
    pub url: String,
}

struct InFlight {
    id: u32,
    batch: SyncBatch,
    bytes: usize,
    sent_at: u64,
    /// The `lastSync` it carried.
    cursor: u64,
    clear: bool,
}

struct Stream {
    id: u32,
    reader: SseReader,
    open: bool,
    /// How long it may stay silent.
    silence_ms: u64,
    /// When it is taken for dead.
    deadline: u64,
}

pub(crate) struct Backend {
    engine: SyncEngine,
    limits: BatchLimits,
    timeout_ms: u64,
    pub(crate) leadership: Leadership,
    leader_lock: Option<u32>,
    in_flight: Option<InFlight>,
    stream: Option<Stream>,
    /// `backendUrl`, for what the client says when nothing answers there.
    url: String,
}

/// What an instance must let go of when it is disposed.
#[derive(Default)]
pub(crate) struct Held {
    pub(crate) aborts: Vec<u32>,
    pub(crate) locks: Vec<u32>,
}

impl Backend {
    pub(crate) fn new(config: BackendConfig, prefix: &str, web_locks: bool, now: u64) -> Self {
        let mut engine = SyncEngine::new(config.policy, now);
        engine.set_push_enabled(config.realtime);
        Backend {
            engine,
            limits: BatchLimits::with_max_bytes(config.max_batch_bytes),
            timeout_ms: config.request_timeout_ms,
            leadership: Leadership::new(
                web_locks,
                format!("mfe-shared-cache:leader:{prefix}:{}", config.url),
                format!("{prefix}\u{0}leader"),
            ),
            leader_lock: None,
            in_flight: None,
            stream: None,
            url: config.url,
        }
    }

    pub(crate) fn state(&self) -> SyncState {
        self.engine.state()
    }

    pub(crate) fn take_ids(&mut self) -> Held {
        let mut held = Held::default();
        held.aborts.extend(self.in_flight.take().map(|f| f.id));
        held.aborts.extend(self.stream.take().map(|s| s.id));
        held.locks.extend(self.leader_lock.take());
        held
    }
}

impl<S: Storage> Client<S> {
    pub(super) fn start_backend(&mut self, now: u64) {
        let Some(backend) = self.backend.as_ref() else { return };
        if let Ask::Lock(name) = backend.leadership.start() {
            let id = self.id();
            if let Some(backend) = self.backend.as_mut() {
                backend.leader_lock = Some(id);
            }
            self.emit(Effect::Lock { id, name, mode: LockMode::Exclusive, timeout_ms: None });
        }
        self.backend_wake(now);
    }

    /// The browser went online or offline. Offline closes the stream; online retries at once.
    pub fn set_online(&mut self, online: bool, now: u64) {
        let Some(backend) = self.backend.as_mut() else { return };
        backend.engine.set_online(online);
        if !online {
            self.close_stream(now, false);
        }
        self.drive(now);
        self.settle(now);
    }

    /// The writer whose writes this instance sends: its own, or everyone's when it leads (those
    /// of tabs that closed before they could).
    fn sends_for(&self) -> Option<String> {
        match &self.backend {
            Some(b) if b.engine.is_leader() => None,
            _ => Some(self.cache.node().to_owned()),
        }
    }

    /// Starts what is due: a request when nothing is in flight, the event stream for the leader.
    pub(super) fn drive(&mut self, now: u64) {
        let writer = self.sends_for();
        let pending = self.cache.has_pending_sync_of(writer.as_deref());
        let Some(backend) = self.backend.as_mut() else { return };
        if backend.in_flight.is_none() && backend.engine.due(now, pending) {
            self.send(writer.as_deref(), now);
        }
        let Some(backend) = self.backend.as_mut() else { return };
        if backend.stream.is_none() && backend.engine.push_due(now) {
            backend.engine.push_begin();
            let id = self.id();
            let cursor = self.cache.cursor();
            let Some(backend) = self.backend.as_mut() else { return };
            let timeout_ms = backend.timeout_ms;
            backend.stream = Some(Stream { id, reader: SseReader::default(), open: false, silence_ms: 0, deadline: u64::MAX });
            self.emit(Effect::Fetch(Fetch { id, path: format!("/events?cursor={cursor}"), body: None, stream: true, timeout_ms }));
        }
    }

    fn send(&mut self, writer: Option<&str>, now: u64) {
        let Some(backend) = self.backend.as_ref() else { return };
        let limits = backend.limits;
        let mut batch = self.cache.sync_batch_of(limits.max_changes, writer);
        let cursor = self.cache.cursor();
        let (path, body, clear) = match batch.clear.clone() {
            Some(epoch) => {
                batch.changes.clear();
                let mut body = String::new();
                wire_text::write_clear(&mut body, &epoch);
                ("/clear", body, true)
            }
            None => ("/sync", sync_body(cursor, &mut batch, &limits), false),
        };
        let id = self.id();
        let Some(backend) = self.backend.as_mut() else { return };
        backend.engine.begin();
        backend.in_flight = Some(InFlight { id, batch, bytes: body.len(), sent_at: now, cursor, clear });
        let timeout_ms = backend.timeout_ms;
        self.emit(Effect::Fetch(Fetch { id, path: path.to_owned(), body: Some(body), stream: false, timeout_ms }));
    }

    /// The backend answered request `id` (not the stream) with `status` and `body`.
    pub fn answered(&mut self, id: u32, status: u16, body: &str, now: u64) {
        let Some(flight) = self.take_in_flight(id) else { return };
        if !(200..300).contains(&status) {
            self.refused(flight, status, body, now);
        } else if flight.clear {
            self.cache.ack_sync(&flight.batch);
            if let Some(backend) = self.backend.as_mut() {
                backend.engine.cleared(now);
            }
            self.after_answer(now);
        } else {
            self.synced(flight, body, now);
        }
    }

    fn take_in_flight(&mut self, id: u32) -> Option<InFlight> {
        let backend = self.backend.as_mut()?;
        if backend.in_flight.as_ref().is_some_and(|f| f.id == id) {
            backend.in_flight.take()
        } else {
            None
        }
    }

    fn synced(&mut self, flight: InFlight, body: &str, now: u64) {
        let answer = match decode_sync_answer(body) {
            Ok(answer) => answer,
            Err(e) => return self.failed(flight, e, false, now),
        };
        let mut keys = Vec::new();
        if let Some(backend_now) = answer.now {
            keys.extend(self.cache.observe_backend_clock(backend_now, flight.sent_at, now).unwrap_or_default());
        }
        self.cache.ack_sync(&flight.batch);
        keys.extend(self.apply_updates(answer.updates, answer.clear, now));
        self.cache.set_cursor(answer.cursor);
        // Against what this request asked from: the event stream may have moved the cursor past
        // this page meanwhile, which does not make the backend's paging a loop.
        let moved = answer.cursor > flight.cursor;
        let jitter = self.rng.next();
        if let Some(error) = self.backend.as_mut().and_then(|b| b.engine.answered(now, answer.more, moved, jitter)) {
            self.report([error]);
        }
        for (key, reason) in answer.rejected {
            self.report([CacheError::Rejected { key, reason: format!("the backend did not store it: {reason}") }]);
        }
        self.changed(keys, now);
        self.after_answer(now);
    }

    /// Merges updates and a clear from the backend (a `/sync` answer or pushed events); returns
    /// the keys whose visible value changed. Each refused update is reported on its own.
    fn apply_updates(
        &mut self,
        updates: Vec<Result<(String, crate::Entry), CacheError>>,
        clear: Option<Result<crate::Stamp, CacheError>>,
        now: u64,
    ) -> Vec<String> {
        let mut changes = Vec::with_capacity(updates.len());
        for update in updates {
            match update {
                Ok(change) => changes.push(change),
                Err(e) => self.report([e]),
            }
        }
        let clear = match clear {
            Some(Ok(epoch)) => Some(epoch),
            Some(Err(e)) => {
                self.report([e]);
                None
            }
            None => None,
        };
        let at = self.cache.time_at(now);
        self.cache.apply_from_backend(changes, clear, at)
    }

    fn after_answer(&mut self, now: u64) {
        let errors = self.persist(now);
        self.report(errors);
        self.drive(now);
        self.settle(now);
    }

    /// A failed request the outbox may deal with: a change the backend refuses for good leaves
    /// it (reported as `REJECTED`), a `413` makes requests smaller; anything else backs off.
    fn refused(&mut self, flight: InFlight, status: u16, body: &str, now: u64) {
        let error_body = decode_error_body(body);
        let named = error_body.as_ref().and_then(|b| b.index);
        let what = error_body.map_or_else(|| body.chars().take(200).collect(), |b| format!("{}: {}", b.code, b.message));
        let path = if flight.clear { "/clear" } else { "/sync" };
        let answered = format!("{path} answered HTTP {status}");
        let message = format!("{answered}: {what}");
        let Some(backend) = self.backend.as_mut() else { return };
        if status == 404 || status == 405 {
            // No backend there (the default `/api/cache` of an app that has none, or a wrong
            // URL): said once, then quiet until a recheck, an `online` event or the next load.
            let error = CacheError::Server {
                status,
                message: format!(
                    "no cache backend at {} ({answered}). Writes stay queued in this browser and are sent when it answers: on the next page load, when the browser comes back online, or at a check every few minutes. To use the cache without a backend, pass backendUrl: null",
                    backend.url
                ),
            };
            let jitter = self.rng.next();
            let news = self.backend.as_mut().is_some_and(|b| b.engine.absent(now, error.clone(), jitter));
            if news {
                self.report([error]);
            }
            return self.settle(now);
        }
        match Refusal::of(status, named, flight.batch.changes.len()) {
            Refusal::TooLarge => {
                backend.limits.shrink_below(flight.batch.changes.len(), flight.bytes);
                backend.engine.resend_now();
                self.after_answer(now);
            }
            Refusal::Change(index) => {
                backend.engine.resend_now();
                let refused = SyncBatch { clear: None, changes: flight.batch.changes.into_iter().skip(index).take(1).collect() };
                // Out of the outbox, as if acknowledged: the value stays here, and is not sent
                // again until the key is written again.
                self.cache.ack_sync(&refused);
                let errors = refused.changes.into_iter().map(|(key, _)| CacheError::Rejected { key, reason: message.clone() });
                self.report(errors.collect::<Vec<_>>());
                self.after_answer(now);
            }
            Refusal::Retry => {
                let error = if status == 401 || status == 403 {
                    CacheError::Unauthorized { status, message }
                } else {
                    CacheError::Server { status, message }
                };
                self.failed(flight, error, false, now);
            }
        }
    }

    fn failed(&mut self, _flight: InFlight, error: CacheError, network: bool, now: u64) {
        let jitter = self.rng.next();
        if let Some(backend) = self.backend.as_mut() {
            backend.engine.failed(now, error.clone(), network, jitter);
        }
        self.report([error]);
        self.settle(now);
    }

    /// Request `id` got no answer: the backend is unreachable, or did not answer within the
    /// request timeout (`timed_out`).
    pub fn request_failed(&mut self, id: u32, message: &str, timed_out: bool, now: u64) {
        if self.backend.as_ref().and_then(|b| b.stream.as_ref()).is_some_and(|s| s.id == id) {
            return self.stream_ended(id, now);
        }
        let Some(flight) = self.take_in_flight(id) else { return };
        let path = if flight.clear { "/clear" } else { "/sync" };
        let message = if timed_out {
            format!("no answer from the backend's {path} within the request timeout")
        } else {
            format!("cannot reach the backend's {path}: {message}")
        };
        self.failed(flight, CacheError::Network { message }, true, now);
    }

    // ---- the event stream ----------------------------------------------------------------------

    fn stream_id(&self, id: u32) -> bool {
        self.backend.as_ref().and_then(|b| b.stream.as_ref()).is_some_and(|s| s.id == id)
    }

    /// The stream's answer arrived: `status`, its `content_type`, and for an error status its
    /// body. A backend without the endpoint (a 4xx other than auth, timeout or rate limiting, a
    /// 501, or an answer that is not an event stream: a seed-only backend, a proxy's HTML page)
    /// is polled instead and asked again much later.
    pub fn stream_opened(&mut self, id: u32, status: u16, content_type: &str, body: Option<&str>, now: u64) {
        if !self.stream_id(id) {
            return;
        }
        let refused = ((400..500).contains(&status) && ![401, 403, 408, 429].contains(&status)) || status == 501;
        let ok = (200..300).contains(&status);
        if refused || (ok && !content_type.starts_with("text/event-stream")) {
            if let Some(backend) = self.backend.as_mut() {
                backend.stream = None;
                backend.engine.push_unsupported(now);
            }
            self.emit(Effect::Abort(id));
        } else if !ok {
            let message = format!("/events answered HTTP {status}: {}", body.unwrap_or("").chars().take(200).collect::<String>());
            let error = if status == 401 || status == 403 {
                CacheError::Unauthorized { status, message }
            } else {
                CacheError::Server { status, message }
            };
            self.report([error]);
            self.close_stream(now, true);
        } else if let Some(backend) = self.backend.as_mut() {
            backend.engine.push_opened(now);
            if let Some(stream) = backend.stream.as_mut() {
                stream.open = true;
                stream.silence_ms = (backend.timeout_ms as f64 * MISSED_HEARTBEATS) as u64;
                stream.deadline = now.saturating_add(stream.silence_ms);
            }
        }
        self.drive(now);
        self.settle(now);
    }

    /// Bytes of the stream arrived.
    pub fn stream_data(&mut self, id: u32, bytes: &[u8], now: u64) {
        if !self.stream_id(id) {
            return;
        }
        let Some(stream) = self.backend.as_mut().and_then(|b| b.stream.as_mut()) else { return };
        let pushed = match stream.reader.push(bytes) {
            Ok(pushed) => pushed,
            Err(e) => {
                self.report([CacheError::protocol(format!("/events: {e}; reconnecting"))]);
                return self.close_stream(now, true);
            }
        };
        if pushed.lines > 0 {
            stream.deadline = now.saturating_add(stream.silence_ms);
        }
        let mut updates = Vec::new();
        let mut clear = None;
        let mut cursor = None;
        let mut moved = false;
        for event in &pushed.events {
            match decode_stream_event(event) {
                StreamItem::Change(change, id) => {
                    updates.push(change);
                    cursor = id.or(cursor);
                }
                StreamItem::Clear(epoch, id) => {
                    clear = Some(epoch);
                    cursor = id.or(cursor);
                }
                StreamItem::Cursor(id) => cursor = Some(id),
                StreamItem::Ready { heartbeat_ms } => {
                    if let (Some(ms), Some(stream)) = (heartbeat_ms, self.backend.as_mut().and_then(|b| b.stream.as_mut())) {
                        stream.silence_ms = (ms as f64 * MISSED_HEARTBEATS) as u64;
                        stream.deadline = now.saturating_add(stream.silence_ms);
                    }
                }
                StreamItem::Error(message) => {
                    self.report([CacheError::protocol(format!("/events sent an error: {message}; reconnecting"))]);
                    return self.close_stream(now, true);
                }
                StreamItem::Reconnect { spread_ms } => {
                    // Not a failure: the instance is going away. What came before it still
                    // counts (its cursor is applied below), then the stream reopens soon.
                    let delay = (self.rng.next() * spread_ms as f64) as u64;
                    if let Some(stream) = self.backend.as_mut().and_then(|b| b.stream.take()) {
                        self.emit(Effect::Abort(stream.id));
                    }
                    if let Some(backend) = self.backend.as_mut() {
                        backend.engine.push_moved(now, delay);
                    }
                    moved = true;
                    break;
                }
                StreamItem::Other => {}
            }
        }
        if updates.is_empty() && clear.is_none() && cursor.is_none() {
            if moved {
                self.drive(now);
            }
            return self.settle(now);
        }
        let keys = self.apply_updates(updates, clear, now);
        if let Some(cursor) = cursor {
            self.cache.set_cursor(cursor);
        }
        if let Some(backend) = self.backend.as_mut() {
            backend.engine.push_received(now);
        }
        self.changed(keys, now);
        self.after_answer(now);
    }

    /// The stream ended (the server closed it, the network dropped it).
    pub fn stream_ended(&mut self, id: u32, now: u64) {
        if self.stream_id(id) {
            if let Some(backend) = self.backend.as_mut() {
                backend.stream = None;
            }
            self.closed(now);
        }
    }

    /// Closes the stream (if open) and backs off before reopening it when `retry`.
    fn close_stream(&mut self, now: u64, retry: bool) {
        let Some(stream) = self.backend.as_mut().and_then(|b| b.stream.take()) else { return };
        self.emit(Effect::Abort(stream.id));
        if retry {
            self.closed(now);
        } else if let Some(backend) = self.backend.as_mut() {
            backend.engine.push_closed(now, 0.5);
        }
    }

    fn closed(&mut self, now: u64) {
        let jitter = self.rng.next();
        if let Some(backend) = self.backend.as_mut() {
            backend.engine.push_closed(now, jitter);
        }
        self.drive(now);
        self.settle(now);
    }

    // ---- locks and time ------------------------------------------------------------------------

    /// Lock `id` was granted.
    pub fn lock_granted(&mut self, id: u32, now: u64) {
        if self.backend.as_ref().is_some_and(|b| b.leader_lock == Some(id)) {
            if let Some(backend) = self.backend.as_mut() {
                backend.leadership.granted();
                backend.engine.set_leader(true, now);
            }
            self.drive(now);
            self.settle(now);
            return;
        }
        self.load_lock_granted(id, now);
    }

    /// Lock `id` was not granted (refused, or not within its timeout).
    pub fn lock_failed(&mut self, id: u32, now: u64) {
        if self.backend.as_ref().is_some_and(|b| b.leader_lock == Some(id)) {
            // Aborted (disposing) or refused: this instance follows.
            if let Some(backend) = self.backend.as_mut() {
                backend.leader_lock = None;
            }
            return self.settle(now);
        }
        self.load_lock_failed(id, now);
    }

    pub(super) fn backend_wake(&mut self, now: u64) {
        let node = self.cache.node().to_owned();
        let Some(backend) = self.backend.as_mut() else { return };
        if backend.leadership.beat(self.cache.storage_mut(), &node, now) {
            let leader = backend.leadership.is_leader();
            backend.engine.set_leader(leader, now);
            if !leader {
                self.close_stream(now, false);
            }
        }
        let dead = self.backend.as_ref().and_then(|b| b.stream.as_ref()).is_some_and(|s| s.open && now >= s.deadline);
        if dead {
            self.close_stream(now, true);
        }
        self.drive(now);
    }

    pub(super) fn backend_next_wake(&self) -> Option<u64> {
        let backend = self.backend.as_ref()?;
        let pending = self.cache.has_pending_sync_of(self.sends_for().as_deref());
        let sync = if backend.in_flight.is_some() { None } else { backend.engine.next_wake(pending) };
        let watchdog = backend.stream.as_ref().filter(|s| s.open).map(|s| s.deadline);
        [sync, backend.leadership.next_wake(), watchdog].into_iter().flatten().min()
    }

    /// How changes from other writers arrive now (for the status).
    pub fn realtime(&self) -> Realtime {
        self.backend.as_ref().map_or(Realtime::Off, |b| b.engine.realtime())
    }
}
