//! `getOrFetch`'s single flight: one load of a key at a time across every tab of the origin.
//!
//! On a miss the instance takes a Web Lock named after the key; the others wait for it (at most
//! `graceTime`, then load themselves). Whoever gets the lock first reads the key again from
//! storage: another tab may have loaded and stored it meanwhile. A tab's storage write and its
//! message reach other tabs asynchronously, so a tab that finished a load also holds a shared
//! "just loaded" marker lock, named after its write's stamp, for [`JUST_LOADED_MS`] — taken
//! before it releases the key's lock. The next tab to get the key's lock asks which markers are
//! held and, finding one, waits (up to [`ARRIVAL_WAIT_MS`]) for that write to arrive, driven by
//! the arrival itself, not by polling. Without Web Locks, loads are single-flight per page (the
//! shim shares one load among the page's instances).
use super::{Client, Effect, LockMode, LogRecord};
use crate::{validate_key, Backoff, CacheError, Reach, Storage};

/// How long a tab that finished a load holds its "just loaded" marker.
pub const JUST_LOADED_MS: u64 = 3_000;
/// How long a tab that found a marker waits for the loaded write to arrive before loading itself.
pub const ARRIVAL_WAIT_MS: u64 = 1_000;

/// The parts of `getOrFetch`'s options the core decides by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadOptions {
    /// The TTL of the loaded value, in ms.
    pub ttl_ms: u64,
    /// How long to wait for another tab's load of the key before loading here.
    pub grace_ms: u64,
    /// Load even on a hit: a value written after the load started counts, an older one not.
    pub refresh: bool,
    /// Delays between attempts (`initialDelay`, `backoffFactor`, `maxDelay`).
    pub retry: Backoff,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Whom the loaded value reaches: by default this browser only, since what a loader fetches
    /// is often the user's own (orders, a profile), and the backend would hand it to every
    /// client of the namespace.
    pub reach: Reach,
}

/// How the loader's attempt ended (the shim runs it, applies `filter` and checks the JSON).
#[derive(Debug, Clone, PartialEq)]
pub enum LoaderOutcome {
    /// The value to store, as JSON text.
    Value(String),
    /// The loader failed; `retryable` says whether the failure may go away by itself.
    Failed {
        /// Whether to retry.
        retryable: bool,
        /// The loader's error, for people.
        message: String,
    },
    /// The load failed for good with this error (the value is not JSON, the filter threw).
    Invalid(CacheError),
}

#[derive(Debug)]
enum Step {
    /// The key's lock is asked for.
    Locking,
    /// Asked which "just loaded" markers are held.
    Querying { query: u32 },
    /// Another tab loaded the key moments ago: waiting for its write (stamped `marker`).
    Arriving { marker: u64, until: u64 },
    /// The loader runs (attempt `attempt`, from 1).
    Loading { attempt: u32 },
    /// Waiting to retry.
    Waiting { attempt: u32, at: u64 },
    /// Loaded and stored: holding the marker lock `marker` until `until` (once granted).
    Marking { marker: u32, until: Option<u64> },
}

#[derive(Debug)]
struct Load {
    id: u32,
    key: String,
    options: LoadOptions,
    /// When the load started, in the cache's time (what `refresh` compares writes with).
    started: u64,
    /// When the load started on the device's clock (its duration, for the log).
    began: u64,
    /// The key's lock: asked for or held.
    lock: Option<u32>,
    held: bool,
    step: Step,
}

/// The loads in progress.
#[derive(Debug, Default)]
pub(crate) struct Loads {
    loads: Vec<Load>,
}

impl Loads {
    fn find(&mut self, pred: impl Fn(&Load) -> bool) -> Option<usize> {
        self.loads.iter().position(pred)
    }

    /// The locks to let go of when the instance is disposed.
    pub(crate) fn take_locks(&mut self) -> Vec<u32> {
        let mut locks = Vec::new();
        for load in self.loads.drain(..) {
            locks.extend(load.lock);
            if let Step::Marking { marker, .. } = load.step {
                locks.push(marker);
            }
        }
        locks
    }
}

/// A log record for the shim's logger.
fn log(level: &'static str, message: String, key: &str) -> Effect {
    Effect::Log(LogRecord { level, message, key: key.to_owned(), ..LogRecord::default() })
}

impl<S: Storage> Client<S> {
    fn lock_name(&self, what: &str, key: &str) -> String {
        format!("mfe-shared-cache:{what}:{}:{key}", self.cache.prefix())
    }

    /// The start of the names of `key`'s "just loaded" markers (the stamp follows).
    fn marker_prefix(&self, key: &str) -> String {
        format!("{}:", self.lock_name("loaded", key))
    }

    /// Starts a load of `key` (a miss, or `refresh`); returns its id. The environment is asked
    /// to run the loader ([`Effect::RunLoader`]) when it is this instance's turn, or the load
    /// ends with another tab's value; either way it ends with [`Effect::Settled`].
    pub fn load(&mut self, key: &str, options: LoadOptions, now: u64) -> Result<u32, CacheError> {
        validate_key(key)?;
        let id = self.id();
        // After every stamp this instance has made or seen: a write made just before the call, in
        // the same millisecond (the clock's counter runs ahead of the time then), is not newer
        // than a `refresh`.
        let started = self.cache.time_at(now).max(self.cache.replica().clock().last().saturating_add(1));
        let mut load = Load { id, key: key.to_owned(), options, started, began: now, lock: None, held: false, step: Step::Locking };
        if self.web_locks {
            let lock = self.id();
            load.lock = Some(lock);
            let name = self.lock_name("load", key);
            self.emit(Effect::Lock { id: lock, name, mode: LockMode::Exclusive, timeout_ms: Some(options.grace_ms) });
            self.loads.loads.push(load);
        } else {
            self.loads.loads.push(load);
            self.start_loading(id, 1);
        }
        self.settle(now);
        Ok(id)
    }

    fn start_loading(&mut self, id: u32, attempt: u32) {
        let Some(i) = self.loads.find(|l| l.id == id) else { return };
        self.loads.loads[i].step = Step::Loading { attempt };
        if attempt == 1 {
            let key = self.loads.loads[i].key.clone();
            self.emit(log("info", "cache miss, loading".into(), &key));
        }
        self.emit(Effect::RunLoader(id));
    }

    /// Ends load `i` with `result` and lets go of its key's lock.
    fn finish(&mut self, i: usize, result: Result<String, CacheError>) {
        let load = self.loads.loads.remove(i);
        if let Some(lock) = load.lock {
            self.emit(Effect::Unlock(lock));
        }
        self.emit(Effect::Settled { id: load.id, result });
    }

    /// The value another tab (or instance) stored for load `i`'s key, if one counts: read again
    /// from storage, since its message may still be on the way.
    fn loaded_meanwhile(&mut self, i: usize, now: u64) -> Option<String> {
        let key = self.loads.loads[i].key.clone();
        let storage_key = format!("{}{key}", self.cache.prefix());
        if let Ok(Some(text)) = self.cache.storage().get(&storage_key) {
            if let Some(Ok(write)) = self.cache.decode_foreign_write(&storage_key, &text) {
                let at = self.cache.time_at(now);
                let keys = self.cache.apply_from_tab(vec![write], None, at);
                for key in keys {
                    self.emit(Effect::Changed(key));
                }
            }
        }
        let load = &self.loads.loads[i];
        let written = self.cache.replica().entry(&key).map_or(0, |e| e.stamp.ts);
        if load.options.refresh && written < load.started {
            return None;
        }
        let at = self.cache.time_at(now);
        self.cache.replica().get(&key, at).map(str::to_owned)
    }

    pub(super) fn load_lock_granted(&mut self, id: u32, now: u64) {
        if let Some(i) = self.loads.find(|l| l.lock == Some(id) && matches!(l.step, Step::Locking)) {
            self.loads.loads[i].held = true;
            if let Some(json) = self.loaded_meanwhile(i, now) {
                let key = self.loads.loads[i].key.clone();
                self.emit(log("debug", "loaded by another instance or tab".into(), &key));
                self.finish(i, Ok(json));
            } else {
                let query = self.id();
                self.loads.loads[i].step = Step::Querying { query };
                let prefix = self.marker_prefix(&self.loads.loads[i].key);
                self.emit(Effect::QueryLocks { id: query, prefix });
            }
        } else if let Some(i) = self.loads.find(|l| matches!(l.step, Step::Marking { marker, until: None } if marker == id)) {
            // The marker is held: the key's lock may go.
            let load = &mut self.loads.loads[i];
            load.step = Step::Marking { marker: id, until: Some(now.saturating_add(JUST_LOADED_MS)) };
            if let Some(lock) = load.lock.take() {
                self.emit(Effect::Unlock(lock));
            }
        } else {
            // Granted after this instance stopped caring (its load ended another way): let it go.
            self.emit(Effect::Unlock(id));
        }
        self.settle(now);
    }

    pub(super) fn load_lock_failed(&mut self, id: u32, now: u64) {
        if let Some(i) = self.loads.find(|l| l.lock == Some(id) && matches!(l.step, Step::Locking)) {
            let load = &mut self.loads.loads[i];
            load.lock = None;
            let (load_id, key, grace) = (load.id, load.key.clone(), load.options.grace_ms);
            self.emit(log("warn", format!("another tab has been loading for over {grace} ms; loading here"), &key));
            self.start_loading(load_id, 1);
        } else if let Some(i) = self.loads.find(|l| matches!(l.step, Step::Marking { marker, .. } if marker == id)) {
            let load = self.loads.loads.remove(i);
            if let Some(lock) = load.lock {
                self.emit(Effect::Unlock(lock));
            }
        }
        self.settle(now);
    }

    /// The names of the locks held now (the answer to [`Effect::QueryLocks`]).
    pub fn locks_held(&mut self, query: u32, names: &[String], now: u64) {
        let Some(i) = self.loads.find(|l| matches!(l.step, Step::Querying { query: q } if q == query)) else { return };
        let marker_prefix = self.marker_prefix(&self.loads.loads[i].key);
        let marker = names.iter().filter_map(|n| n.strip_prefix(&marker_prefix)?.parse::<u64>().ok()).max();
        let load = &self.loads.loads[i];
        match marker {
            Some(stamp) if !(load.options.refresh && stamp < load.started) => {
                self.loads.loads[i].step = Step::Arriving { marker: stamp, until: now.saturating_add(ARRIVAL_WAIT_MS) };
                let key = self.loads.loads[i].key.clone();
                self.arrived(&key, now);
            }
            _ => {
                let id = load.id;
                self.start_loading(id, 1);
            }
        }
        self.settle(now);
    }

    /// A key's value changed: a load waiting for another tab's write of it may be over.
    pub(super) fn loads_saw(&mut self, key: &str, now: u64) {
        if self.loads.loads.iter().any(|l| l.key == key && matches!(l.step, Step::Arriving { .. })) {
            self.arrived(key, now);
        }
    }

    fn arrived(&mut self, key: &str, now: u64) {
        let Some(i) = self.loads.find(|l| l.key == key && matches!(l.step, Step::Arriving { .. })) else { return };
        let Step::Arriving { marker, .. } = self.loads.loads[i].step else { return };
        let written = self.cache.replica().entry(key).map_or(0, |e| e.stamp.ts);
        if written < marker {
            return;
        }
        let at = self.cache.time_at(now);
        match self.cache.replica().get(key, at).map(str::to_owned) {
            Some(json) => self.finish(i, Ok(json)),
            // Removed since it was loaded: load it again.
            None => {
                let id = self.loads.loads[i].id;
                self.start_loading(id, 1);
            }
        }
    }

    /// The loader of load `id` finished an attempt. Returns the news for the page's other
    /// instances when it stored a value.
    pub fn loader_done(&mut self, id: u32, outcome: LoaderOutcome, now: u64) -> Option<String> {
        let i = self.loads.find(|l| l.id == id && matches!(l.step, Step::Loading { .. }))?;
        let Step::Loading { attempt } = self.loads.loads[i].step else { return None };
        let key = self.loads.loads[i].key.clone();
        let duration_ms = Some(now.saturating_sub(self.loads.loads[i].began));
        let news = match outcome {
            LoaderOutcome::Value(json) => self.store_loaded(i, json, duration_ms, now),
            LoaderOutcome::Invalid(error) => {
                self.finish(i, Err(error));
                None
            }
            LoaderOutcome::Failed { retryable, message } => {
                let load = &self.loads.loads[i];
                if retryable && attempt <= load.options.max_retries {
                    let wait = load.options.retry.delay(attempt, 0.0);
                    self.loads.loads[i].step = Step::Waiting { attempt, at: now.saturating_add(wait) };
                    let record = LogRecord { attempt: Some(attempt), delay_ms: Some(wait), error: Some(message), ..LogRecord::default() };
                    self.emit(Effect::Log(LogRecord { level: "info", message: "retry attempt".into(), key, ..record }));
                } else {
                    let error = if retryable {
                        CacheError::RetryExhausted { key: key.clone(), attempts: attempt, message: message.clone() }
                    } else {
                        CacheError::FetchFailed { key: key.clone(), message: message.clone() }
                    };
                    let record = LogRecord { duration_ms, error: Some(message), ..LogRecord::default() };
                    self.emit(Effect::Log(LogRecord { level: "warn", message: error.to_string(), key, ..record }));
                    self.finish(i, Err(error));
                }
                None
            }
        };
        self.settle(now);
        news
    }

    fn store_loaded(&mut self, i: usize, json: String, duration_ms: Option<u64>, now: u64) -> Option<String> {
        let key = self.loads.loads[i].key.clone();
        let ttl_ms = self.loads.loads[i].options.ttl_ms;
        // Loads are few: always the news, so that the shim needs no count of its peers here.
        let reach = self.loads.loads[i].options.reach;
        let news = match self.set_for(&key, json.clone(), ttl_ms, reach, now, true) {
            Ok(news) => news,
            Err(e) => {
                let error = CacheError::CacheSetFailed { key, message: e.to_string(), retryable: e.retryable() };
                self.finish(i, Err(error));
                return None;
            }
        };
        // Stored before the key's lock goes: the next tab to get it reads storage first.
        let failed = self.flush(now).into_iter().find(|e| e.key() == Some(key.as_str()));
        // Over quota the value still lives in memory, here and on the page: loading succeeded.
        if let Some(e) = failed.filter(|e| !matches!(e, CacheError::QuotaExceeded { .. })) {
            let error = CacheError::CacheSetFailed { key, message: e.to_string(), retryable: e.retryable() };
            self.finish(i, Err(error));
            return news;
        }
        self.emit(Effect::Log(LogRecord { level: "info", message: "loaded and cached".into(), key: key.clone(), duration_ms, ..LogRecord::default() }));
        let id = self.loads.loads[i].id;
        self.emit(Effect::Settled { id, result: Ok(json) });
        if self.loads.loads[i].held {
            let stamp = self.cache.replica().entry(&key).map_or(0, |e| e.stamp.ts);
            let marker = self.id();
            let name = format!("{}{stamp}", self.marker_prefix(&key));
            self.loads.loads[i].step = Step::Marking { marker, until: None };
            self.emit(Effect::Lock { id: marker, name, mode: LockMode::Shared, timeout_ms: None });
        } else {
            let load = self.loads.loads.remove(i);
            if let Some(lock) = load.lock {
                self.emit(Effect::Unlock(lock));
            }
        }
        news
    }

    pub(super) fn loads_wake(&mut self, now: u64) {
        let mut i = 0;
        while i < self.loads.loads.len() {
            let load = &self.loads.loads[i];
            match load.step {
                Step::Arriving { until, .. } if now >= until => {
                    let (id, key) = (load.id, load.key.clone());
                    self.emit(log(
                        "warn",
                        format!("another tab loaded this key but its write did not arrive within {ARRIVAL_WAIT_MS} ms; loading here"),
                        &key,
                    ));
                    self.start_loading(id, 1);
                }
                Step::Waiting { attempt, at } if now >= at => {
                    let id = load.id;
                    self.start_loading(id, attempt + 1);
                }
                Step::Marking { marker, until: Some(until) } if now >= until => {
                    self.loads.loads.remove(i);
                    self.emit(Effect::Unlock(marker));
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }

    pub(super) fn loads_next_wake(&self) -> Option<u64> {
        self.loads
            .loads
            .iter()
            .filter_map(|l| match l.step {
                Step::Arriving { until, .. } => Some(until),
                Step::Waiting { at, .. } => Some(at),
                Step::Marking { until, .. } => until,
                _ => None,
            })
            .min()
    }
}
