//! The whole browser client as one sans-IO state machine per cache instance.
//!
//! A [`Client`] takes inputs — API calls, news from other tabs and from the page's other copies of
//! the package, `storage` events, answers and stream bytes from the backend, lock grants,
//! online/offline, its timer — each with the time on the device's clock, and returns what must
//! happen as [`Effect`]s: messages to tabs and peers, requests, locks, its next wake-up, changed
//! keys, errors. Storage is the one thing it touches itself, through the [`Storage`] trait,
//! because the browser's is synchronous. It never reads a clock and never draws a random number
//! it was not seeded with, so everything it decides — leadership, backoff, push, batching,
//! single-flight loading — runs in native tests on a manual clock.
mod backend;
mod effect;
mod leader;
mod loads;
mod rng;

use crate::hash::HashMap;

pub use self::backend::BackendConfig;
pub use self::effect::{Effect, Fetch, LockMode, LogRecord};
pub use self::leader::{LEASE_BEAT_MS, LEASE_MS};
pub use self::loads::{LoadOptions, LoaderOutcome};
use self::backend::Backend;
use self::loads::Loads;
use self::rng::Rng;
use crate::message::{decode_news, encode_news};
use crate::{Cache, CacheConfig, CacheError, Entry, KeyPattern, Reach, Stamp, Storage, SyncState};

/// What a [`Client`] needs to open.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Storage keys start with it; it also names the tab channel. Caches with different prefixes
    /// never see each other's keys.
    pub prefix: String,
    /// This instance's writer id.
    pub node: String,
    /// Shared by every instance on the page: they exchange writes synchronously through the page
    /// hub, so they skip each other's tab messages.
    pub page: String,
    /// Whether the platform has Web Locks (else leadership is a storage lease and loads are
    /// single-flight per page only).
    pub web_locks: bool,
    /// The backend, if there is one.
    pub backend: Option<BackendConfig>,
    /// Seeds the jitter of retries (tests pass a fixed one).
    pub seed: u64,
}

/// One visible entry, for dev tools: times are on the device's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryView {
    /// The key.
    pub key: String,
    /// The value as JSON text.
    pub json: String,
    /// When it expires (`None`: never).
    pub expires_at: Option<u64>,
    /// When it was written.
    pub written_at: u64,
    /// Its writer id.
    pub writer: String,
    /// Whether something of the key waits for the backend: this write, or one it covers.
    pub pending: bool,
}

/// `[active, expired]` counts and what is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Values visible now.
    pub active: usize,
    /// Values past their TTL still held (they order late writes until collected).
    pub expired: usize,
    /// Writes (and a clear) the backend has not acknowledged.
    pub pending: usize,
}

/// The sync status a UI shows (`syncStatus`); times on the device's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// Whether there is a backend.
    pub enabled: bool,
    /// The rest, when there is one.
    pub state: Option<SyncState>,
    /// Writes (and a clear) the backend has not acknowledged.
    pub pending: usize,
}

/// What of a key waits for the backend: whether its current write does, and the stamp of the
/// write its current one covers.
type Waits = (bool, Option<Stamp>);

/// Local writes (and a clear) told to the page's other instances as they were made, with what
/// of each waits for the backend, since the last flush.
#[derive(Default)]
struct PeersKnow {
    writes: HashMap<String, (Stamp, Waits)>,
    clear: Option<(Stamp, bool)>,
}

/// One cache instance (see the module docs).
pub struct Client<S: Storage> {
    cache: Cache<S>,
    page: String,
    web_locks: bool,
    effects: Vec<Effect>,
    /// A flush is asked for and has not happened.
    flush_queued: bool,
    /// What the page's other instances were told at write time, so the flush does not tell
    /// them again.
    peers_know: PeersKnow,
    backend: Option<Backend>,
    loads: Loads,
    rng: Rng,
    next_id: u32,
    /// The wake-up last asked for.
    wake: Option<u64>,
    /// The status last announced ([`Effect::Status`]).
    announced: Option<Status>,
    startup_errors: Vec<CacheError>,
}

impl<S: Storage> Client<S> {
    /// Opens the cache over `storage` at `now` (the device's clock) and starts what it runs by
    /// itself: the election and the first sync when there is a backend, the expiry timer.
    pub fn open(storage: S, config: ClientConfig, now: u64) -> Self {
        let cache_config = CacheConfig::new(config.prefix.clone(), config.node).with_sync(config.backend.is_some());
        let (cache, startup_errors) = Cache::open(storage, cache_config, now);
        let backend = config.backend.map(|b| Backend::new(b, &config.prefix, config.web_locks, now));
        let mut client = Client {
            cache,
            page: config.page,
            web_locks: config.web_locks,
            effects: Vec::new(),
            flush_queued: false,
            peers_know: PeersKnow::default(),
            backend,
            loads: Loads::default(),
            rng: Rng::new(config.seed),
            next_id: 0,
            wake: None,
            announced: None,
            startup_errors,
        };
        client.start_backend(now);
        client.settle(now);
        client
    }

    /// What the environment must do now (in order).
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Errors found while opening (corrupt entries, storage failures), handed over once.
    pub fn take_startup_errors(&mut self) -> Vec<CacheError> {
        std::mem::take(&mut self.startup_errors)
    }

    /// This instance's writer id.
    pub fn node(&self) -> &str {
        self.cache.node()
    }

    /// The engine underneath (tests and dev tools read its replica and storage).
    pub fn cache(&self) -> &Cache<S> {
        &self.cache
    }

    fn id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    fn emit(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    fn report(&mut self, errors: impl IntoIterator<Item = CacheError>) {
        for e in errors {
            self.effects.push(Effect::Error(e));
        }
    }

    fn changed(&mut self, keys: impl IntoIterator<Item = String>, now: u64) {
        for key in keys {
            self.loads_saw(&key, now);
            self.effects.push(Effect::Changed(key));
        }
    }

    // ---- local writes ------------------------------------------------------------------------

    /// Sets `key` to `json` (JSON text the shim produced and checked) for `ttl_ms`. With
    /// `peers` (other instances share the page), returns their news, which they must get before
    /// this call's caller returns; alone on the page, the write costs no encoding for nobody.
    pub fn set(&mut self, key: &str, json: String, ttl_ms: u64, now: u64, peers: bool) -> Result<Option<String>, CacheError> {
        self.set_for(key, json, ttl_ms, Reach::Everyone, now, peers)
    }

    /// [`Client::set`] for whom `reach` says: [`Reach::Browser`] never goes to the backend.
    pub fn set_for(&mut self, key: &str, json: String, ttl_ms: u64, reach: Reach, now: u64, peers: bool) -> Result<Option<String>, CacheError> {
        let entry = self.cache.set_for(key, json, ttl_ms, reach, self.cache.time_at(now))?;
        Ok(self.local_write(key, entry, peers))
    }

    /// Removes `key` (a tombstone). With `peers`, returns the news for the page's other instances.
    pub fn remove(&mut self, key: &str, now: u64, peers: bool) -> Result<Option<String>, CacheError> {
        self.remove_for(key, Reach::Everyone, now, peers)
    }

    /// [`Client::remove`] for whom `reach` says: [`Reach::Browser`] never goes to the backend.
    pub fn remove_for(&mut self, key: &str, reach: Reach, now: u64, peers: bool) -> Result<Option<String>, CacheError> {
        let entry = self.cache.remove_for(key, reach, self.cache.time_at(now))?;
        Ok(self.local_write(key, entry, peers))
    }

    // No `settle` here: the flush that every local write queues settles once for the task's
    // writes, so a burst does not recompute the next wake-up and the status per write.
    fn local_write(&mut self, key: &str, entry: Entry, peers: bool) -> Option<String> {
        let record = peers.then(|| self.cache.encode_entry(key, &entry));
        self.peers_know.writes.insert(key.to_owned(), (entry.stamp, self.waits(key)));
        self.queue_flush();
        record.map(|record| encode_news(&self.page, None, [(key, record.as_str())], None))
    }

    /// Clears everything: every write ordered before now is gone, everywhere. Returns the news
    /// for the page's other instances and the keys that were visible (the caller tells its
    /// subscribers once the others know).
    pub fn clear(&mut self, now: u64) -> (String, Vec<String>) {
        let (epoch, visible) = self.cache.clear(self.cache.time_at(now));
        let pending = self.cache.is_clear_unsynced();
        self.peers_know = PeersKnow { writes: HashMap::default(), clear: Some((epoch.clone(), pending)) };
        self.queue_flush();
        for key in &visible {
            self.loads_saw(key, now);
        }
        self.settle(now);
        (encode_news(&self.page, Some((&epoch, pending)), std::iter::empty::<(&str, &str)>(), None), visible)
    }

    /// Removes every visible key matching `pattern`; returns the news for the page's other
    /// instances (`None` when nothing matched) and the keys it removed.
    pub fn invalidate(&mut self, pattern: &str, now: u64) -> Result<(Option<String>, Vec<String>), CacheError> {
        self.invalidate_for(pattern, Reach::Everyone, now)
    }

    /// [`Client::invalidate`] for whom `reach` says: [`Reach::Browser`] never goes to the backend.
    pub fn invalidate_for(&mut self, pattern: &str, reach: Reach, now: u64) -> Result<(Option<String>, Vec<String>), CacheError> {
        let pattern = KeyPattern::parse(pattern)?;
        let at = self.cache.time_at(now);
        let mut keys: Vec<String> = self
            .cache
            .replica()
            .iter()
            .filter(|(key, entry)| entry.is_live(at) && pattern.matches(key))
            .map(|(key, _)| key.clone())
            .collect();
        keys.sort_unstable();
        let mut records = Vec::with_capacity(keys.len());
        for key in &keys {
            let entry = self.cache.remove_for(key, reach, at)?;
            records.push((key.clone(), self.cache.encode_entry(key, &entry)));
            self.peers_know.writes.insert(key.clone(), (entry.stamp, self.waits(key)));
        }
        if keys.is_empty() {
            return Ok((None, keys));
        }
        self.queue_flush();
        self.settle(now);
        let news = encode_news(&self.page, None, records.iter().map(|(k, r)| (k.as_str(), r.as_str())), None);
        Ok((Some(news), keys))
    }

    fn waits(&self, key: &str) -> Waits {
        (self.cache.is_unsynced(key), self.cache.covered(key).map(|covered| covered.stamp.clone()))
    }

    /// A local write waits for [`Client::flush`], which the shim calls once the task that wrote
    /// ends (every write of a task persisted together).
    fn queue_flush(&mut self) {
        self.flush_queued = true;
    }

    /// Persists what this task wrote (one storage write per key), tells the other tabs and the
    /// page's other instances what they do not know yet, and lets the backend sync start.
    /// Returns the failures (each with its key, where there is one) for the writes' promises;
    /// they are reported as errors too.
    pub fn flush(&mut self, now: u64) -> Vec<CacheError> {
        self.flush_queued = false;
        let errors = self.persist(now);
        self.report(errors.iter().cloned());
        self.drive(now);
        self.settle(now);
        errors
    }

    /// Persists and tells; the failures.
    fn persist(&mut self, now: u64) -> Vec<CacheError> {
        let report = self.cache.flush(self.cache.time_at(now));
        if report.has_news() || report.clock.is_some() {
            let records: Vec<(&str, &str)> = report.changes.iter().zip(&report.records).map(|((key, _), record)| (key.as_str(), record.as_str())).collect();
            let clear = report.clear.as_ref().map(|epoch| (epoch, self.cache.is_clear_unsynced()));
            let tabs = encode_news(&self.page, clear, records.iter().copied(), report.clock);
            self.emit(Effect::Tab(tabs));
            // The page's instances heard of local writes as they were made: tell them the rest
            // (acknowledgements, updates from the backend, repairs).
            let known = std::mem::take(&mut self.peers_know);
            let unknown: Vec<(&str, &str)> = report
                .changes
                .iter()
                .zip(&records)
                .filter(|((key, entry), _)| known.writes.get(key).is_none_or(|(stamp, waits)| *stamp != entry.stamp || *waits != self.waits(key)))
                .map(|(_, record)| *record)
                .collect();
            let peer_clear = clear.filter(|(epoch, pending)| known.clear.as_ref() != Some(&((*epoch).clone(), *pending)));
            if !unknown.is_empty() || peer_clear.is_some() || report.clock.is_some() {
                let peers = encode_news(&self.page, peer_clear, unknown.iter().copied(), report.clock);
                self.emit(Effect::Peers(peers));
            }
        } else {
            self.peers_know = PeersKnow::default();
        }
        report.errors
    }

    // ---- what others wrote -------------------------------------------------------------------

    /// News from another tab (BroadcastChannel). Messages of this page are skipped: the page hub
    /// brought them already.
    pub fn tab_message(&mut self, text: &str, now: u64) {
        self.news(text, true, now);
    }

    /// News from another instance on this page (the page hub).
    pub fn peer_message(&mut self, text: &str, now: u64) {
        self.news(text, false, now);
    }

    fn news(&mut self, text: &str, from_tab: bool, now: u64) {
        let news = match decode_news(text, self.cache.tag()) {
            Ok(news) => news,
            Err(e) => {
                let via = if from_tab { "another tab" } else { "another copy of the package on this page" };
                self.report([CacheError::protocol(format!("ignored a message from {via}: {e}"))]);
                return;
            }
        };
        if from_tab && news.page == self.page {
            return;
        }
        let mut writes = Vec::new();
        for write in news.writes {
            match write {
                Ok(write) => writes.push(write),
                Err(e) => self.report([e]),
            }
        }
        let at = self.cache.time_at(now);
        let mut keys = self.cache.apply_from_tab(writes, news.clear, at);
        if let Some(offset) = news.clock {
            keys.extend(self.cache.adopt_clock_offset(offset, now));
        }
        self.heard(keys, now);
    }

    /// After news from elsewhere was merged: writes back what ours held newer, tells of the
    /// changed keys, and lets sync go on.
    fn heard(&mut self, keys: Vec<String>, now: u64) {
        if self.cache.pending_flush() > 0 {
            // Ours was newer than what the other tab just wrote over it in storage: write it back.
            let errors = self.persist(now);
            self.report(errors);
        }
        self.changed(keys, now);
        self.drive(now);
        self.settle(now);
    }

    /// A `storage` event: another tab wrote `value` (`None`: removed) under `storage_key` of this
    /// storage. With a channel it settles what the channel cannot — an older record landing after
    /// a newer one, which the holder of the newer one writes back; without one it is the news.
    pub fn storage_event(&mut self, storage_key: &str, value: Option<&str>, has_channel: bool, now: u64) {
        let Some(text) = value else { return };
        if has_channel && self.cache.holds_record(storage_key, text) {
            return;
        }
        let at = self.cache.time_at(now);
        let keys = if let Some((epoch, unsynced)) = self.cache.decode_foreign_epoch(storage_key, text) {
            self.cache.apply_from_tab(Vec::new(), Some((epoch, unsynced)), at)
        } else if let Some(offset) = self.cache.decode_foreign_clock(storage_key, text) {
            self.cache.adopt_clock_offset(offset, now)
        } else {
            match self.cache.decode_foreign_write(storage_key, text) {
                Some(Ok(write)) => self.cache.apply_from_tab(vec![write], None, at),
                Some(Err(e)) => {
                    self.report([e]);
                    Vec::new()
                }
                None => Vec::new(),
            }
        };
        self.heard(keys, now);
    }

    // ---- time ----------------------------------------------------------------------------------

    /// The timer asked for with [`Effect::Wake`] fired (or any time: nothing happens early).
    pub fn wake(&mut self, now: u64) {
        self.wake = None;
        let expired = self.cache.take_expired(self.cache.time_at(now));
        self.changed(expired, now);
        self.backend_wake(now);
        self.loads_wake(now);
        self.settle(now);
    }

    /// Asks for the next wake-up when it moved: the earliest of every deadline.
    fn settle(&mut self, now: u64) {
        let expiry = self.cache.next_expiry().map(|at| self.cache.local_time(at));
        let next = [expiry, self.backend_next_wake(), self.loads_next_wake()].into_iter().flatten().min();
        // A wake-up in the past is due now; asking again for the same time changes nothing.
        let next = next.map(|at| at.max(now));
        if next != self.wake {
            self.wake = next;
            self.emit(Effect::Wake(next));
        }
        // Every input ends here: the status is announced when, and only when, it changed.
        let status = self.status();
        if self.announced.as_ref() != Some(&status) {
            self.announced = Some(status);
            self.emit(Effect::Status);
        }
    }

    // ---- reads ---------------------------------------------------------------------------------

    /// The JSON text of `key`'s value, if it has one now, and when it expires on the device's
    /// clock (`None`: never). Counts as a use for eviction.
    pub fn get(&mut self, key: &str, now: u64) -> Option<(&str, Option<u64>)> {
        let expires = self.cache.expires_at(key).map(|at| self.cache.local_time(at));
        let at = self.cache.time_at(now);
        self.cache.get(key, at).map(|json| (json, expires))
    }

    /// An expired value still held (stale-while-revalidate).
    pub fn stale(&self, key: &str, now: u64) -> Option<&str> {
        let at = self.cache.time_at(now);
        self.cache.replica().entry(key).filter(|e| !e.is_live(at)).and_then(|e| e.value.as_deref())
    }

    /// When `key`'s value (expired or not) was written, on the device's clock, and by which
    /// writer, if it has one.
    pub fn written(&self, key: &str) -> Option<(u64, &str)> {
        let entry = self.cache.replica().entry(key).filter(|e| e.value.is_some())?;
        Some((self.cache.local_time(entry.written_at), entry.stamp.node.as_str()))
    }

    /// When `key`'s value expires on the device's clock (`Some(None)`: never), if it has one.
    pub fn expiry(&self, key: &str, now: u64) -> Option<Option<u64>> {
        let at = self.cache.time_at(now);
        let entry = self.cache.replica().entry(key).filter(|e| e.is_live(at))?;
        Some(entry.expires_at().map(|at| self.cache.local_time(at)))
    }

    /// The keys with a value now, matching `pattern` when given, sorted.
    pub fn keys(&self, pattern: Option<&str>, now: u64) -> Result<Vec<String>, CacheError> {
        let pattern = pattern.map(KeyPattern::parse).transpose()?;
        let at = self.cache.time_at(now);
        let mut keys: Vec<String> = self
            .cache
            .replica()
            .iter()
            .filter(|(key, entry)| entry.is_live(at) && pattern.as_ref().is_none_or(|p| p.matches(key)))
            .map(|(key, _)| key.clone())
            .collect();
        keys.sort_unstable();
        Ok(keys)
    }

    /// Every visible entry, sorted by key.
    pub fn entries(&self, now: u64) -> Vec<EntryView> {
        let at = self.cache.time_at(now);
        let replica = self.cache.replica();
        let mut keys: Vec<String> = replica.iter().filter(|(_, e)| e.is_live(at)).map(|(k, _)| k.clone()).collect();
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|key| {
                let entry = replica.entry(&key)?;
                Some(EntryView {
                    json: entry.value.clone()?,
                    expires_at: entry.expires_at().map(|t| self.cache.local_time(t)),
                    written_at: self.cache.local_time(entry.written_at),
                    writer: entry.stamp.node.clone(),
                    pending: self.cache.is_unsynced(&key) || self.cache.covered(&key).is_some(),
                    key,
                })
            })
            .collect()
    }

    /// Counts of what is held.
    pub fn stats(&self, now: u64) -> Stats {
        let at = self.cache.time_at(now);
        let mut stats = Stats { pending: self.cache.pending_sync(), ..Stats::default() };
        for (_, entry) in self.cache.replica().iter().filter(|(_, e)| e.value.is_some()) {
            if entry.is_live(at) {
                stats.active += 1;
            } else {
                stats.expired += 1;
            }
        }
        stats
    }

    /// The sync status.
    pub fn status(&self) -> Status {
        Status {
            enabled: self.backend.is_some(),
            state: self.backend.as_ref().map(Backend::state),
            pending: self.cache.pending_sync(),
        }
    }

    // ---- the end -------------------------------------------------------------------------------

    /// The page is going away: give up what others should not wait for (a storage lease).
    pub fn page_hidden(&mut self) {
        let node = self.cache.node().to_owned();
        if let Some(backend) = self.backend.as_mut() {
            backend.leadership.release(self.cache.storage_mut(), &node);
        }
    }

    /// Persists what is pending and lets go of everything: requests, the stream, locks, the lease,
    /// the timer. The instance must not be used afterwards.
    pub fn dispose(&mut self, now: u64) {
        if self.flush_queued {
            self.flush_queued = false;
            let errors = self.persist(now);
            self.report(errors);
        }
        self.page_hidden();
        let ids = self.backend.as_mut().map(Backend::take_ids).unwrap_or_default();
        for id in ids.aborts {
            self.emit(Effect::Abort(id));
        }
        for id in ids.locks.into_iter().chain(self.loads.take_locks()) {
            self.emit(Effect::Unlock(id));
        }
        if self.wake.take().is_some() {
            self.emit(Effect::Wake(None));
        }
    }
}

/// A writer id: random (from `seed`), after `app:` when the instance names its MFE, so every
/// entry says which MFE wrote it, in every tab, device and on the server.
pub fn node_id(app: Option<&str>, seed: u64) -> Result<String, CacheError> {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = Rng::new(seed);
    let random: String = (0..12).map(|_| char::from(DIGITS[(rng.next() * 36.0) as usize % 36])).collect();
    let Some(app) = app else { return Ok(random) };
    let valid = (1..=32).contains(&app.len()) && app.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !valid {
        return Err(CacheError::InvalidOption { reason: format!("option app must be 1 to 32 of A-Z a-z 0-9 _ . -, got {}", crate::json::Quoted(app)) });
    }
    Ok(format!("{app}:{random}"))
}
