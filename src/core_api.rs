//! [`CacheCore`]: one cache instance's state, driven by the JS shim. Calls from JS return their
//! results; changes that arrive on their own (other tabs, expiry) are delivered through the
//! `notify(keys, errors)` callback, always after every borrow of the state has been released, so a
//! listener may call straight back into the cache.
use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Array, Function, Object, Reflect};
use mfe_shared_cache_core::{
    BatchLimits, Cache, CacheConfig, CacheError, Entry, Stamp, SyncBatch, SyncEngine, SyncPolicy, TabWrite,
};
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, StorageEvent};

use crate::channel::TabLink;
use crate::errors::{disposed, reentrant, to_js};
use crate::storage::WebStorage;
use crate::timer::ExpiryTimer;

pub(crate) struct Inner {
    pub(crate) cache: Cache<WebStorage>,
    /// The backend sync policy state, when a backend is configured.
    pub(crate) sync: Option<SyncEngine>,
    /// The batch sent and not yet answered, and when it was sent (this device's clock).
    pub(crate) in_flight: Option<SyncBatch>,
    pub(crate) in_flight_bytes: usize,
    /// See [`CacheCore::last_written_at`].
    last_written_at: u64,
    pub(crate) sent_at: u64,
    /// How much one request may carry (shrinks when the backend answers 413).
    pub(crate) limits: BatchLimits,
    page_id: String,
    link: Option<TabLink>,
    timer: Option<ExpiryTimer>,
    notify: Function,
    startup_errors: Vec<CacheError>,
}

pub(crate) type Shared = Rc<RefCell<Option<Inner>>>;

/// One cache instance (internal: the JS shim's `BackendSyncedCacheService` wraps it).
#[wasm_bindgen]
pub struct CacheCore {
    pub(crate) inner: Shared,
}

/// This device's clock. The cache's own time is [`Inner::now`].
pub(crate) fn now_ms() -> u64 {
    js_sys::Date::now().max(0.0) as u64
}

impl Inner {
    /// The cache's time: this device's clock corrected by the backend's clock offset.
    pub(crate) fn now(&self) -> u64 {
        self.cache.time_at(now_ms())
    }
}

/// A writer id: random, after `app:` when the instance names its app, so every entry says which
/// MFE wrote it, in every tab, device and on the server.
fn node_id(app: Option<&str>) -> Result<String, JsValue> {
    // Math.random is enough: the id only has to differ between writers, it guards nothing.
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let random: String = (0..12).map(|_| DIGITS[(js_sys::Math::random() * 36.0) as usize % 36] as char).collect();
    let Some(app) = app else { return Ok(random) };
    let valid = (1..=32).contains(&app.len()) && app.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !valid {
        let message = format!("option app must be 1 to 32 of A-Z a-z 0-9 _ . -, got {app:?}");
        return Err(crate::errors::other("INVALID_OPTION", &message, false));
    }
    Ok(format!("{app}:{random}"))
}

#[wasm_bindgen]
impl CacheCore {
    /// Opens the cache over `storage` under `prefix`. `page_id` is shared by every instance on
    /// the page (they already exchange writes synchronously, so they skip each other's tab
    /// messages); `notify(keys, errors)` receives changes that arrive on their own.
    /// `app` names the MFE in the writer id (see `node_id`).
    #[wasm_bindgen(constructor)]
    pub fn new(storage: JsValue, prefix: String, page_id: String, notify: Function, app: Option<String>) -> Result<CacheCore, JsValue> {
        Self::open(storage, prefix, page_id, notify, None, app)
    }

    /// Like the constructor, for a cache that syncs with a backend: writes are tracked in the
    /// durable outbox and the sync policy is set up (intervals in ms, request bodies of at most
    /// `max_batch_bytes`).
    #[wasm_bindgen(js_name = openSynced)]
    #[allow(clippy::too_many_arguments, reason = "a JS factory: positional arguments, each a JS value")]
    pub fn open_synced(
        storage: JsValue,
        prefix: String,
        page_id: String,
        notify: Function,
        sync_interval_ms: f64,
        retry_delay_ms: f64,
        max_retries: u32,
        app: Option<String>,
        max_batch_bytes: f64,
    ) -> Result<CacheCore, JsValue> {
        let policy = SyncPolicy {
            sync_interval_ms: sync_interval_ms.max(1.0) as u64,
            retry_delay_ms: retry_delay_ms.max(1.0) as u64,
            max_retries,
        };
        let limits = BatchLimits::with_max_bytes(max_batch_bytes.clamp(1.0, usize::MAX as f64) as usize);
        Self::open(storage, prefix, page_id, notify, Some((policy, limits)), app)
    }

    fn open(
        storage: JsValue,
        prefix: String,
        page_id: String,
        notify: Function,
        sync: Option<(SyncPolicy, BatchLimits)>,
        app: Option<String>,
    ) -> Result<CacheCore, JsValue> {
        let config = CacheConfig::new(prefix.clone(), node_id(app.as_deref())?).with_sync(sync.is_some());
        let (cache, startup_errors) = Cache::open(WebStorage::new(storage), config, now_ms());
        let now = cache.time_at(now_ms());
        let inner: Shared = Rc::new(RefCell::new(Some(Inner {
            cache,
            sync: sync.map(|(policy, _)| SyncEngine::new(policy, now)),
            in_flight: None,
            in_flight_bytes: 0,
            last_written_at: 0,
            sent_at: 0,
            limits: sync.map_or_else(BatchLimits::default, |(_, limits)| limits),
            page_id,
            link: None,
            timer: None,
            notify,
            startup_errors,
        })));
        let on_message = {
            let weak = Rc::downgrade(&inner);
            move |event: MessageEvent| on_tab_message(&weak, event.data())
        };
        let on_storage = {
            let weak = Rc::downgrade(&inner);
            move |event: StorageEvent| on_storage_event(&weak, &event)
        };
        let link = TabLink::open(&prefix, on_message, on_storage);
        if let Ok(mut guard) = inner.try_borrow_mut() {
            if let Some(state) = guard.as_mut() {
                state.link = Some(link);
                rearm(state, &Rc::downgrade(&inner));
            }
        }
        Ok(CacheCore { inner })
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Inner) -> Result<T, JsValue>) -> Result<T, JsValue> {
        let mut guard = self.inner.try_borrow_mut().map_err(|_| reentrant())?;
        let state = guard.as_mut().ok_or_else(disposed)?;
        f(state)
    }

    /// This instance's writer id.
    pub fn node(&self) -> Result<String, JsValue> {
        self.with(|s| Ok(s.cache.node().to_owned()))
    }

    /// How this instance reaches other tabs: `broadcast-channel`, `storage-event` or `none`.
    #[wasm_bindgen(js_name = tabLink)]
    pub fn tab_link(&self) -> Result<String, JsValue> {
        self.with(|s| Ok(s.link.as_ref().map_or("none", TabLink::kind).to_owned()))
    }

    /// Errors found while opening (corrupt entries, storage failures), handed over once.
    #[wasm_bindgen(js_name = takeStartupErrors)]
    pub fn take_startup_errors(&self) -> Result<Array, JsValue> {
        self.with(|s| Ok(s.startup_errors.drain(..).map(|e| to_js(&e)).collect()))
    }

    /// Sets `key` to `json` (produced by `JSON.stringify`) for `ttl_secs` seconds; returns the
    /// write's timestamp, negated in the rare case that the write was written at another time
    /// than its stamp (the hybrid clock had run ahead after a stamp from a faster clock), which
    /// [`CacheCore::last_written_at`] then gives: the page's other instances need both, and the
    /// common case costs no second call. Persisted at the next [`CacheCore::flush`].
    pub fn set(&self, key: &str, json: String, ttl_secs: f64) -> Result<f64, JsValue> {
        let inner = Rc::downgrade(&self.inner);
        self.with(|s| {
            let ttl_ms = mfe_shared_cache_core::ttl_ms_from_secs(ttl_secs).map_err(|e| to_js(&e))?;
            let now = s.now();
            let entry = s.cache.set(key, json, ttl_ms, now).map_err(|e| to_js(&e))?;
            rearm(s, &inner);
            s.last_written_at = entry.written_at;
            let ts = entry.stamp.ts as f64;
            Ok(if entry.written_at == entry.stamp.ts { ts } else { -ts })
        })
    }

    /// When the last write [`CacheCore::set`] returned a negated timestamp for was written.
    #[wasm_bindgen(js_name = lastWrittenAt)]
    pub fn last_written_at(&self) -> Result<f64, JsValue> {
        self.with(|s| Ok(s.last_written_at as f64))
    }

    /// Removes `key`; returns the remove's timestamp.
    pub fn remove(&self, key: &str) -> Result<f64, JsValue> {
        self.with(|s| {
            let now = s.now();
            let entry = s.cache.remove(key, now).map_err(|e| to_js(&e))?;
            Ok(entry.stamp.ts as f64)
        })
    }

    /// Clears the cache; returns `{ timestamp, keys }` (the keys that were visible).
    pub fn clear(&self) -> Result<Object, JsValue> {
        self.with(|s| {
            let now = s.now();
            let (epoch, keys) = s.cache.clear(now);
            let out = Object::new();
            Reflect::set(&out, &"timestamp".into(), &(epoch.ts as f64).into())?;
            Reflect::set(&out, &"keys".into(), &keys.into_iter().map(JsValue::from).collect::<Array>())?;
            Ok(out)
        })
    }

    /// The JSON text of `key`'s value, if it has one now.
    pub fn get(&self, key: &str) -> Result<Option<String>, JsValue> {
        self.with(|s| {
            let now = s.now();
            Ok(s.cache.get(key, now).map(str::to_owned))
        })
    }

    /// When `key`'s value expires, as this device's clock will show it (ms since epoch; the shim
    /// compares it with `Date.now()`); 0 when it never does or has no value.
    #[wasm_bindgen(js_name = expiresAt)]
    pub fn expires_at(&self, key: &str) -> Result<f64, JsValue> {
        self.with(|s| Ok(s.cache.expires_at(key).map_or(0.0, |at| s.cache.local_time(at) as f64)))
    }

    /// Every visible entry, flat: `[key, json, expiresAt (0: never), writtenAt, writer, pending]`
    /// per entry (times as this device's clock shows them), in no particular order. For dev tools
    /// and debugging; reads count as no use.
    pub fn entries(&self) -> Result<Array, JsValue> {
        self.with(|s| {
            let now = s.now();
            let out = Array::new();
            for (key, entry) in s.cache.replica().iter() {
                let Some(json) = entry.value.as_deref().filter(|_| entry.is_live(now)) else { continue };
                out.push(&JsValue::from_str(key));
                out.push(&JsValue::from_str(json));
                out.push(&entry.expires_at().map_or(0.0, |at| s.cache.local_time(at) as f64).into());
                out.push(&(s.cache.local_time(entry.written_at) as f64).into());
                out.push(&JsValue::from_str(&entry.stamp.node));
                out.push(&s.cache.is_unsynced(key).into());
            }
            Ok(out)
        })
    }

    /// Applies a write made by another instance on this page (already persisted by it); `ttl_secs`
    /// is the TTL the writer was given, converted here by the same rule, and `written_at` when it
    /// was written where that differs from `ts` (NaN otherwise). Everything is checked like a
    /// message from another tab: another copy of the package may be older, newer or broken.
    /// Returns whether the visible value of `key` changed.
    #[wasm_bindgen(js_name = applyPeer)]
    pub fn apply_peer(
        &self,
        key: String,
        json: Option<String>,
        ttl_secs: f64,
        ts: f64,
        node: String,
        written_at: f64,
    ) -> Result<bool, JsValue> {
        let inner = Rc::downgrade(&self.inner);
        self.with(|s| {
            let entry = read_peer_write(&key, json, ttl_secs, ts, node, written_at).map_err(|e| to_js(&e))?;
            // Not yet acknowledged by the backend: if the writer goes away before sending it, this
            // instance (or the leader) still will.
            let now = s.now();
            let changed = s.cache.apply_from_tab(vec![(key, entry, true)], None, now);
            rearm(s, &inner);
            Ok(!changed.is_empty())
        })
    }

    /// Applies a clear made by another instance on this page; returns the keys it hid.
    #[wasm_bindgen(js_name = applyPeerClear)]
    pub fn apply_peer_clear(&self, ts: f64, node: String) -> Result<Array, JsValue> {
        self.with(|s| {
            let stamp = peer_stamp(ts, node).map_err(|e| to_js(&e))?;
            let now = s.now();
            let changed = s.cache.apply_remote(Vec::new(), Some(stamp), false, now);
            Ok(changed.into_iter().map(JsValue::from).collect())
        })
    }

    /// Persists the writes made since the last flush and tells the other tabs; returns the
    /// errors (each with the key it concerns, where there is one).
    pub fn flush(&self) -> Result<Array, JsValue> {
        self.with(|s| Ok(flush_inner(s)))
    }

    /// Closes the tab link and the timer and releases the state; later calls fail with DISPOSED.
    pub fn dispose(&self) {
        if let Ok(mut guard) = self.inner.try_borrow_mut() {
            // Dropping the state drops the link (closing the channel / removing the listener) and
            // the timer (clearing the timeout).
            guard.take();
        }
    }
}

fn peer_error(what: impl std::fmt::Display) -> CacheError {
    CacheError::Protocol { message: format!("ignored a write from another copy of the package on this page: {what}") }
}

/// A time from another copy of the package on this page: an integer a JS number holds exactly.
fn peer_time(ms: f64) -> Option<u64> {
    (ms.is_finite() && ms >= 0.0 && ms.fract() == 0.0 && ms <= mfe_shared_cache_core::MAX_SAFE_INTEGER as f64)
        .then_some(ms as u64)
}

/// A stamp from another copy of the package on this page, checked like any other input.
fn peer_stamp(ts: f64, node: String) -> Result<Stamp, CacheError> {
    let ts = peer_time(ts).ok_or_else(|| peer_error("its timestamp is not an integer in range"))?;
    let stamp = Stamp::new(ts, node);
    mfe_shared_cache_core::check_remote_stamp(&stamp).map_err(peer_error)?;
    Ok(stamp)
}

/// A write from another copy of the package on this page, checked as a tab message is: key,
/// stamp, TTL and the value's JSON (a copy that skipped its own checks must not make this one's
/// reads throw, nor hand the backend text it refuses).
fn read_peer_write(
    key: &str,
    json: Option<String>,
    ttl_secs: f64,
    ts: f64,
    node: String,
    written_at: f64,
) -> Result<Entry, CacheError> {
    mfe_shared_cache_core::validate_key(key).map_err(peer_error)?;
    let stamp = peer_stamp(ts, node)?;
    let written_at = if written_at.is_nan() {
        stamp.ts
    } else {
        peer_time(written_at).ok_or_else(|| peer_error("its written time is not an integer in range"))?
    };
    let entry = match json {
        Some(json) => {
            mfe_shared_cache_core::json::validate(&json).map_err(|why| peer_error(format!("its value is not JSON: {why}")))?;
            let ttl_ms = mfe_shared_cache_core::ttl_ms_from_secs(ttl_secs).map_err(peer_error)?;
            Entry::value(stamp, ttl_ms, json)
        }
        None => Entry::tombstone(stamp),
    };
    Ok(entry.written_at(written_at))
}

// A tab message is an array: [1, pageId, clearTs | -1, clearNode, key, record, key, record, …],
// records in the storage format, so receivers decode exactly what hydration decodes.
const TAB_MESSAGE_VERSION: f64 = 1.0;

pub(crate) fn flush_inner(s: &mut Inner) -> Array {
    // Storage first, then the message: a tab that finds our write older than its own writes its
    // record back, and that repair must land after our record, never before it.
    let now = s.now();
    let report = s.cache.flush(now);
    let errors: Array = report.errors.iter().map(to_js).collect();
    if report.has_news() {
        let message = Array::new();
        message.push(&TAB_MESSAGE_VERSION.into());
        message.push(&JsValue::from_str(&s.page_id));
        crate::js_stamp::push_optional(&message, report.clear.as_ref());
        for (key, entry) in &report.changes {
            message.push(&JsValue::from_str(key));
            message.push(&JsValue::from_str(&s.cache.encode_entry(key, entry)));
        }
        if let Some(Err(e)) = s.link.as_ref().map(|l| l.post(&message)) {
            let message = format!("could not tell other tabs: {}", crate::errors::js_error_message(&e));
            errors.push(&to_js(&CacheError::Protocol { message }));
        }
    }
    errors
}

/// What a tab message carried: writes, a clear, and the parts that could not be read.
type TabNews = (Vec<TabWrite>, Option<Stamp>, Vec<JsValue>);

/// Reads a tab message; `Err` says why it is not one.
fn read_tab_message(s: &Inner, data: &JsValue) -> Result<TabNews, String> {
    let message: &Array = data.dyn_ref().ok_or("not an array")?;
    if message.get(0).as_f64() != Some(TAB_MESSAGE_VERSION) {
        return Err("unknown tab message version".into());
    }
    if message.get(1).as_string().as_deref() == Some(s.page_id.as_str()) {
        return Ok((Vec::new(), None, Vec::new())); // this page's instances have it already
    }
    let clear = crate::js_stamp::read_optional(&message.get(2), &message.get(3)).map_err(|()| "malformed clear")?;
    if message.length() % 2 != 0 {
        return Err("a key without its record".into());
    }
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut i = 4;
    while i + 1 < message.length() {
        let (key, record) = (message.get(i).as_string(), message.get(i + 1).as_string());
        i += 2;
        let (Some(key), Some(record)) = (key, record) else {
            return Err("malformed change".into());
        };
        if let Err(e) = mfe_shared_cache_core::validate_key(&key) {
            errors.push(to_js(&CacheError::Protocol { message: format!("invalid key in a tab message: {e}") }));
            continue;
        }
        match s.cache.decode_entry(&key, &record) {
            Some(Ok((entry, unsynced))) => entries.push((key, entry, unsynced)),
            Some(Err(e)) => errors.push(to_js(&e)),
            None => {}
        }
    }
    Ok((entries, clear, errors))
}

/// Re-arms the expiry timer for the earliest pending expiry (or disarms it when nothing can
/// expire).
pub(crate) fn rearm(s: &mut Inner, weak: &Weak<RefCell<Option<Inner>>>) {
    let next = s.cache.next_expiry();
    // An armed timer that fires at or before the next expiry is kept: when it fires early it finds
    // nothing due and re-arms. Re-arming only when the next expiry moves earlier keeps a burst of
    // rewrites from clearing and setting a timeout per write.
    if let (Some(timer), Some(next)) = (&s.timer, next) {
        if timer.at() <= next {
            return;
        }
    }
    if next.is_none() && s.timer.is_none() {
        return;
    }
    s.timer = next.map(|at| {
        let weak = weak.clone();
        ExpiryTimer::arm(at, s.now(), move || on_timer(&weak))
    });
}

fn on_timer(weak: &Weak<RefCell<Option<Inner>>>) {
    let Some(shared) = weak.upgrade() else { return };
    let delivery = {
        let Ok(mut guard) = shared.try_borrow_mut() else { return };
        let Some(s) = guard.as_mut() else { return };
        s.timer = None;
        let now = s.now();
        let keys = s.cache.take_expired(now);
        rearm(s, weak);
        (s.notify.clone(), keys, Vec::new())
    };
    deliver(delivery);
}

fn on_tab_message(weak: &Weak<RefCell<Option<Inner>>>, data: JsValue) {
    let Some(shared) = weak.upgrade() else { return };
    let delivery = {
        let Ok(mut guard) = shared.try_borrow_mut() else { return };
        let Some(s) = guard.as_mut() else { return };
        let mut errors = Vec::new();
        let keys = match read_tab_message(s, &data) {
            Ok((entries, clear, bad)) => {
                errors.extend(bad);
                if entries.is_empty() && clear.is_none() {
                    Vec::new()
                } else {
                    apply_from_other_tab(s, entries, clear, &mut errors, weak)
                }
            }
            Err(why) => {
                let message = format!("ignored a tab message: {why}");
                errors.push(to_js(&CacheError::Protocol { message }));
                Vec::new()
            }
        };
        (s.notify.clone(), keys, errors)
    };
    deliver(delivery);
}

fn on_storage_event(weak: &Weak<RefCell<Option<Inner>>>, event: &StorageEvent) {
    let Some(shared) = weak.upgrade() else { return };
    let (Some(storage_key), Some(text)) = (event.key(), event.new_value()) else { return };
    let delivery = {
        let Ok(mut guard) = shared.try_borrow_mut() else { return };
        let Some(s) = guard.as_mut() else { return };
        let same_area = event.storage_area().is_some_and(|area| Object::is(area.as_ref(), s.cache.storage().js()));
        if !same_area {
            return;
        }
        // With a channel, most events are writes its messages carried already.
        if s.link.as_ref().is_some_and(TabLink::has_channel) && s.cache.holds_record(&storage_key, &text) {
            return;
        }
        let mut errors = Vec::new();
        let keys = if let Some((epoch, _)) = s.cache.decode_foreign_epoch(&storage_key, &text) {
            apply_from_other_tab(s, Vec::new(), Some(epoch), &mut errors, weak)
        } else if let Some(offset) = s.cache.decode_foreign_clock(&storage_key, &text) {
            let keys = s.cache.adopt_clock_offset(offset, now_ms());
            rearm(s, weak);
            keys
        } else {
            match s.cache.decode_foreign_write(&storage_key, &text) {
                Some(Ok(write)) => apply_from_other_tab(s, vec![write], None, &mut errors, weak),
                Some(Err(e)) => {
                    errors.push(to_js(&e));
                    Vec::new()
                }
                None => Vec::new(),
            }
        };
        (s.notify.clone(), keys, errors)
    };
    deliver(delivery);
}

/// Applies what another tab announced (by message or storage event). Stamps too far ahead of this
/// clock are refused here, for every way in: a bad clear refuses the whole announcement, a bad
/// write only itself.
pub(crate) fn apply_from_other_tab(
    s: &mut Inner,
    entries: Vec<TabWrite>,
    clear: Option<Stamp>,
    errors: &mut Vec<JsValue>,
    weak: &Weak<RefCell<Option<Inner>>>,
) -> Vec<String> {
    let now = s.now();
    if let Some(Err(e)) = clear.as_ref().map(mfe_shared_cache_core::check_remote_stamp) {
        errors.push(to_js(&CacheError::Protocol { message: format!("ignored a tab message: {e}") }));
        return Vec::new();
    }
    let entries: Vec<TabWrite> = entries
        .into_iter()
        .filter(|(_, entry, _)| match mfe_shared_cache_core::check_remote_stamp(&entry.stamp) {
            Ok(()) => true,
            Err(e) => {
                errors.push(to_js(&e));
                false
            }
        })
        .collect();
    let keys = s.cache.apply_from_tab(entries, clear.map(|c| (c, false)), now);
    if s.cache.pending_flush() > 0 {
        // Ours was newer than what the other tab just wrote over it in storage: write it back.
        // (No local write can be waiting here: the shim flushes in the same task as the write.)
        errors.extend(flush_inner(s).iter());
    }
    rearm(s, weak);
    keys
}

fn deliver((notify, keys, errors): (Function, Vec<String>, Vec<JsValue>)) {
    if keys.is_empty() && errors.is_empty() {
        return;
    }
    let keys: Array = keys.into_iter().map(JsValue::from).collect();
    let errors: Array = errors.into_iter().collect();
    // A throwing listener must not break delivery to the cache; the shim reports its errors.
    let _ = notify.call2(&JsValue::NULL, &keys, &errors);
}

/// Checks a key by the core's rule (non-empty string, at most 1024 UTF-8 bytes, no U+0000), so the
/// JS API refuses exactly what the core refuses.
#[wasm_bindgen(js_name = checkKey)]
pub fn check_key(key: &JsValue) -> Result<(), JsValue> {
    let Some(key) = key.as_string() else {
        let message = format!("key must be a non-empty string, got {}", key.js_typeof().as_string().unwrap_or_default());
        return Err(crate::errors::other("INVALID_KEY", &message, false));
    };
    mfe_shared_cache_core::validate_key(&key).map_err(|e| to_js(&e))
}
