//! The backend-sync half of [`CacheCore`]. The JS adapter owns fetch, timers, Web Locks and the
//! `online`/`offline` events; it asks these methods whether to send, what to send, and hands back
//! what came of it. JSON parsing of responses is the browser's (`JSON.parse`); every field is
//! checked again here before it reaches the cache.
use js_sys::{Array, Object, Reflect};
use mfe_shared_cache_core::{
    check_remote_stamp, json, ttl_ms_from_secs, validate_key, wire_text, CacheError, Entry, Stamp,
    SyncBatch, MAX_SAFE_INTEGER,
};
use wasm_bindgen::prelude::*;

use crate::core_api::{flush_inner, now_ms, rearm, CacheCore, Inner};
use crate::errors::to_js;
use crate::js_stamp;

/// The most writes one `/sync` request carries (the reference server accepts 1000).
const MAX_BATCH: usize = 500;

fn no_backend() -> JsValue {
    crate::errors::other("INTERNAL", "this cache has no backend", false)
}

impl Inner {
    /// The writer whose writes this instance sends: its own, or everyone's when it leads.
    fn sends_for(&self) -> Option<&str> {
        match &self.sync {
            Some(engine) if engine.is_leader() => None,
            _ => Some(self.cache.node()),
        }
    }

    fn has_pending(&self) -> bool {
        self.cache.has_pending_sync_of(self.sends_for())
    }
}

#[wasm_bindgen]
impl CacheCore {
    /// Whether a request to the backend should start now.
    #[wasm_bindgen(js_name = syncDue)]
    pub fn sync_due(&self) -> Result<bool, JsValue> {
        self.with(|s| {
            let pending = s.has_pending();
            Ok(s.sync.as_ref().is_some_and(|e| e.due(now_ms(), pending)))
        })
    }

    /// When to check [`CacheCore::sync_due`] again (ms since epoch; 0: now; -1: only after an
    /// event or a local write).
    #[wasm_bindgen(js_name = syncWake)]
    pub fn sync_wake(&self) -> Result<f64, JsValue> {
        self.with(|s| {
            let pending = s.has_pending();
            Ok(s.sync
                .as_ref()
                .and_then(|e| e.next_wake(pending))
                .map_or(-1.0, |at| at as f64))
        })
    }

    /// Starts a request: returns `[path, body]` — `/clear` for a pending clear (sent first),
    /// else `/sync` with up to 500 pending writes and the cursor.
    #[wasm_bindgen(js_name = beginSync)]
    pub fn begin_sync(&self) -> Result<Array, JsValue> {
        self.with(|s| {
            let mut batch = s.cache.sync_batch_of(MAX_BATCH, s.sends_for());
            let engine = s.sync.as_mut().ok_or_else(no_backend)?;
            engine.begin();
            let (path, body) = match batch.clear.clone() {
                Some(epoch) => {
                    batch.changes.clear();
                    ("/clear", clear_body(&epoch))
                }
                None => ("/sync", sync_body(s.cache.cursor(), &batch)),
            };
            s.in_flight = Some(batch);
            Ok([JsValue::from_str(path), JsValue::from_str(&body)]
                .into_iter()
                .collect())
        })
    }

    /// The backend acknowledged the request (`/clear`, `/set`, `/remove`) without updates.
    #[wasm_bindgen(js_name = syncAcked)]
    pub fn sync_acked(&self) -> Result<Array, JsValue> {
        self.sync_applied(f64::NAN, Array::new(), None, false)
    }

    /// The backend answered `/sync`: `cursor` is its `timestamp`; `updates` is a flat array of
    /// `[key, valueJson | null, ttlSeconds, timestamp, node | null, deleted]` sextuples;
    /// `clear` an optional `[timestamp, node]` and `more` whether the backend paged its answer
    /// (extensions). Returns `[changedKeys, errors, acked]`; `acked` (see [`encode_acked`]) is for
    /// the other instances on the page, which share this storage but not this memory.
    #[wasm_bindgen(js_name = syncApplied)]
    pub fn sync_applied(
        &self,
        cursor: f64,
        updates: Array,
        clear: Option<Array>,
        more: bool,
    ) -> Result<Array, JsValue> {
        let inner = std::rc::Rc::downgrade(&self.inner);
        self.with(|s| {
            let now = now_ms();
            let acked = match s.in_flight.take() {
                Some(batch) => {
                    s.cache.ack_sync(&batch);
                    encode_acked(&batch)
                }
                None => Array::new(),
            };
            let (keys, mut errors) = apply_from_backend(s, cursor, &updates, clear.as_ref(), now);
            if let Some(engine) = s.sync.as_mut() {
                engine.succeeded(now);
                if more {
                    engine.more_to_fetch();
                }
            }
            errors.extend(flush_inner(s).iter());
            rearm(s, &inner);
            Ok([
                JsValue::from(keys),
                errors.into_iter().collect::<Array>().into(),
                acked.into(),
            ]
            .into_iter()
            .collect())
        })
    }

    /// The event stream delivered changes (same formats as [`CacheCore::sync_applied`]; `cursor`
    /// is the last event's id). Returns `[changedKeys, errors]`. Unlike a `/sync` answer it
    /// acknowledges nothing: this instance's own writes come back on the stream before their
    /// `/sync` answer does, and only that answer says they were accepted as sent.
    #[wasm_bindgen(js_name = pushApplied)]
    pub fn push_applied(
        &self,
        cursor: f64,
        updates: Array,
        clear: Option<Array>,
    ) -> Result<Array, JsValue> {
        let inner = std::rc::Rc::downgrade(&self.inner);
        self.with(|s| {
            let now = now_ms();
            let (keys, mut errors) = apply_from_backend(s, cursor, &updates, clear.as_ref(), now);
            if let Some(engine) = s.sync.as_mut() {
                engine.push_received(now);
            }
            errors.extend(flush_inner(s).iter());
            rearm(s, &inner);
            Ok([
                JsValue::from(keys),
                errors.into_iter().collect::<Array>().into(),
            ]
            .into_iter()
            .collect())
        })
    }

    /// The cursor to resume the event stream from (the last one the backend gave).
    #[wasm_bindgen(js_name = syncCursor)]
    pub fn sync_cursor(&self) -> Result<f64, JsValue> {
        self.with(|s| Ok(s.cache.cursor() as f64))
    }

    /// `realtime: 'auto'` (true) or `'off'`.
    #[wasm_bindgen(js_name = setRealtime)]
    pub fn set_realtime(&self, enabled: bool) -> Result<(), JsValue> {
        self.with_engine(|e, _| e.set_push_enabled(enabled))
    }

    /// Whether the leader should open the event stream now.
    #[wasm_bindgen(js_name = pushDue)]
    pub fn push_due(&self) -> Result<bool, JsValue> {
        self.with(|s| Ok(s.sync.as_ref().is_some_and(|e| e.push_due(now_ms()))))
    }

    /// The adapter started opening the event stream.
    #[wasm_bindgen(js_name = pushBegin)]
    pub fn push_begin(&self) -> Result<(), JsValue> {
        self.with_engine(|e, _| e.push_begin())
    }

    /// The event stream is open.
    #[wasm_bindgen(js_name = pushOpened)]
    pub fn push_opened(&self) -> Result<(), JsValue> {
        self.with_engine(|e, now| e.push_opened(now))
    }

    /// The event stream failed or ended (`jitter` in [0, 1)).
    #[wasm_bindgen(js_name = pushClosed)]
    pub fn push_closed(&self, jitter: f64) -> Result<(), JsValue> {
        self.with_engine(|e, now| e.push_closed(now, jitter))
    }

    /// The backend has no event stream.
    #[wasm_bindgen(js_name = pushUnsupported)]
    pub fn push_unsupported(&self) -> Result<(), JsValue> {
        self.with_engine(|e, now| e.push_unsupported(now))
    }

    /// Another instance on this page had a batch acknowledged (`acked` from its
    /// [`CacheCore::sync_applied`]); returns whether this instance's pending count changed.
    #[wasm_bindgen(js_name = applyPeerAcked)]
    pub fn apply_peer_acked(&self, acked: &Array) -> Result<bool, JsValue> {
        self.with(|s| Ok(decode_acked(acked).is_some_and(|batch| s.cache.ack_from_peer(&batch))))
    }

    /// The request failed (`error`: a `{ type, message, retryable }` object). `network` says the
    /// backend could not be reached; `jitter` is a random number in [0, 1).
    #[wasm_bindgen(js_name = syncFailed)]
    pub fn sync_failed(
        &self,
        kind: &str,
        message: &str,
        network: bool,
        jitter: f64,
    ) -> Result<(), JsValue> {
        self.with(|s| {
            s.in_flight = None;
            let error = CacheError::Protocol {
                message: format!("{kind}: {message}"),
            };
            if let Some(engine) = s.sync.as_mut() {
                engine.failed(now_ms(), error, network, jitter);
            }
            Ok(())
        })
    }

    /// The browser went online or offline.
    #[wasm_bindgen(js_name = setOnline)]
    pub fn set_online(&self, online: bool) -> Result<(), JsValue> {
        self.with(|s| {
            if let Some(engine) = s.sync.as_mut() {
                engine.set_online(online);
            }
            Ok(())
        })
    }

    /// This instance became, or stopped being, the origin's leader.
    #[wasm_bindgen(js_name = setLeader)]
    pub fn set_leader(&self, leader: bool) -> Result<(), JsValue> {
        self.with(|s| {
            if let Some(engine) = s.sync.as_mut() {
                engine.set_leader(leader, now_ms());
            }
            Ok(())
        })
    }

    /// `{ online, syncing, leader, pending, failures, lastError, lastSyncedAt, retryAt }` (null
    /// fields when unknown); `pending` counts every write the backend has not acknowledged.
    #[wasm_bindgen(js_name = syncState)]
    pub fn sync_state(&self) -> Result<Object, JsValue> {
        self.with(|s| {
            let out = Object::new();
            let set = |k: &str, v: JsValue| Reflect::set(&out, &k.into(), &v).map(|_| ());
            // Every field is always present; without a backend: not enabled, offline, idle.
            let state = s.sync.as_ref().map(|e| e.state());
            let time = |t: Option<u64>| t.map_or(JsValue::NULL, |t| JsValue::from(t as f64));
            set("enabled", state.is_some().into())?;
            set("pending", (s.cache.pending_sync() as f64).into())?;
            set("online", state.as_ref().is_some_and(|st| st.online).into())?;
            set(
                "syncing",
                state.as_ref().is_some_and(|st| st.syncing).into(),
            )?;
            set("leader", state.as_ref().is_some_and(|st| st.leader).into())?;
            set(
                "failures",
                state.as_ref().map_or(0, |st| st.failures).into(),
            )?;
            set("retryAt", time(state.as_ref().and_then(|st| st.retry_at)))?;
            set(
                "lastSyncedAt",
                time(state.as_ref().and_then(|st| st.last_synced_at)),
            )?;
            let last_error = state.as_ref().and_then(|st| st.last_error.as_ref());
            set(
                "lastError",
                last_error.map_or(JsValue::NULL, |e| JsValue::from(e.to_string())),
            )?;
            set(
                "realtime",
                JsValue::from_str(state.as_ref().map_or("off", |st| st.realtime.as_str())),
            )?;
            Ok(out)
        })
    }
}

impl CacheCore {
    fn with_engine(
        &self,
        f: impl FnOnce(&mut mfe_shared_cache_core::SyncEngine, u64),
    ) -> Result<(), JsValue> {
        self.with(|s| {
            if let Some(engine) = s.sync.as_mut() {
                f(engine, now_ms());
            }
            Ok(())
        })
    }
}

/// Checks and merges updates from the backend (a `/sync` answer or pushed events) and records
/// its cursor; returns the changed keys and the errors of the updates that were refused.
fn apply_from_backend(
    s: &mut Inner,
    cursor: f64,
    updates: &Array,
    clear: Option<&Array>,
    now: u64,
) -> (Array, Vec<JsValue>) {
    let mut errors: Vec<JsValue> = Vec::new();
    let mut changes = Vec::new();
    let mut i = 0;
    while i + 5 < updates.length() {
        let field = |n: u32| updates.get(i + n);
        match read_update(
            &field(0),
            &field(1),
            &field(2),
            &field(3),
            &field(4),
            &field(5),
            now,
        ) {
            Ok(change) => changes.push(change),
            Err(e) => errors.push(to_js(&e)),
        }
        i += 6;
    }
    let clear = match clear {
        Some(c) => match read_stamp(&c.get(0), &c.get(1), now) {
            Ok(stamp) => Some(stamp),
            Err(e) => {
                errors.push(to_js(&e));
                None
            }
        },
        None => None,
    };
    let keys = s.cache.apply_from_backend(changes, clear, now);
    if cursor.is_finite() && cursor >= 0.0 && cursor <= MAX_SAFE_INTEGER as f64 {
        s.cache.set_cursor(cursor as u64);
    }
    (keys.into_iter().map(JsValue::from).collect(), errors)
}

fn clear_body(epoch: &Stamp) -> String {
    let mut out = String::new();
    wire_text::write_clear(&mut out, epoch);
    out
}

fn sync_body(cursor: u64, batch: &SyncBatch) -> String {
    let mut out = format!("{{\"lastSync\":{cursor},\"changes\":[");
    for (i, (key, entry)) in batch.changes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        wire_text::write_change(&mut out, key, entry);
    }
    out.push_str("]}");
    out
}

fn protocol(message: &str) -> CacheError {
    CacheError::Protocol {
        message: message.into(),
    }
}

fn read_stamp(ts: &JsValue, node: &JsValue, now: u64) -> Result<Stamp, CacheError> {
    let ts = js_stamp::timestamp(ts)
        .ok_or_else(|| protocol("a timestamp from the backend is not an integer in range"))?;
    let node = if node.is_null() || node.is_undefined() {
        String::new()
    } else {
        node.as_string()
            .ok_or_else(|| protocol("a writer id from the backend is not a string"))?
    };
    let stamp = Stamp::new(ts, node);
    check_remote_stamp(&stamp, now)?;
    Ok(stamp)
}

fn read_update(
    key: &JsValue,
    value: &JsValue,
    ttl: &JsValue,
    ts: &JsValue,
    node: &JsValue,
    deleted: &JsValue,
    now: u64,
) -> Result<(String, Entry), CacheError> {
    let key = key
        .as_string()
        .ok_or_else(|| protocol("an update's key is not a string"))?;
    validate_key(&key).map_err(|e| protocol(&format!("an update has an invalid key: {e}")))?;
    let stamp = read_stamp(ts, node, now)?;
    if deleted.as_bool() == Some(true) {
        return Ok((key, Entry::tombstone(stamp)));
    }
    let ttl_ms = ttl_ms_from_secs(ttl.as_f64().unwrap_or(0.0))?;
    // The adapter passes JSON.stringify of the parsed value, so it is JSON; checked anyway.
    let json = value
        .as_string()
        .ok_or_else(|| protocol("an update's value is missing"))?;
    json::validate(&json).map_err(protocol)?;
    Ok((key, Entry::value(stamp, ttl_ms, json)))
}

/// An acknowledged batch for the page's other instances: `[clearTs | -1, clearNode | null, key, ts,
/// node, key, ts, node, …]`. Only stamps travel: a receiver drops a pending mark only where its
/// entry has exactly that stamp.
fn encode_acked(batch: &SyncBatch) -> Array {
    let out = Array::new();
    js_stamp::push_optional(&out, batch.clear.as_ref());
    for (key, entry) in &batch.changes {
        out.push(&JsValue::from_str(key));
        js_stamp::push_optional(&out, Some(&entry.stamp));
    }
    out
}

/// Reads [`encode_acked`]'s format; anything malformed reads as nothing (it can only ever clear
/// pending marks, so ignoring it is safe: the write is sent again and acknowledged as a duplicate).
fn decode_acked(acked: &Array) -> Option<SyncBatch> {
    if acked.length() < 2 || (acked.length() - 2) % 3 != 0 {
        return None;
    }
    let clear = js_stamp::read_optional(&acked.get(0), &acked.get(1)).ok()?;
    let mut changes = Vec::new();
    let mut i = 2;
    while i + 2 < acked.length() {
        let key = acked.get(i).as_string()?;
        let stamp = js_stamp::read_optional(&acked.get(i + 1), &acked.get(i + 2)).ok()??;
        // Only the stamp is compared; the value is not needed.
        changes.push((key, Entry::tombstone(stamp)));
        i += 3;
    }
    Some(SyncBatch { clear, changes })
}
