//! The backend-sync half of [`CacheCore`]. The JS adapter owns fetch, timers, Web Locks and the
//! `online`/`offline` events; it asks these methods whether to send, what to send, and hands back
//! what came of it. JSON parsing of responses is the browser's (`JSON.parse`); every field is
//! checked again here before it reaches the cache.
use js_sys::{Array, Object, Reflect};
use mfe_shared_cache_core::{
    check_remote_stamp, json, sync_body, ttl_ms_from_secs, validate_key, wire_text, CacheError, Entry, Refusal, Stamp,
    SyncBatch, MAX_SAFE_INTEGER,
};
use wasm_bindgen::prelude::*;

use crate::core_api::{flush_inner, now_ms, rearm, CacheCore, Inner};
use crate::errors::to_js;
use crate::js_stamp;

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
    /// else `/sync` with the pending writes that fit the batch limits, and the cursor.
    #[wasm_bindgen(js_name = beginSync)]
    pub fn begin_sync(&self) -> Result<Array, JsValue> {
        self.with(|s| {
            let mut batch = s.cache.sync_batch_of(s.limits.max_changes, s.sends_for());
            let engine = s.sync.as_mut().ok_or_else(no_backend)?;
            engine.begin();
            let (path, body) = match batch.clear.clone() {
                Some(epoch) => {
                    batch.changes.clear();
                    ("/clear", clear_body(&epoch))
                }
                None => ("/sync", sync_body(s.cache.cursor(), &mut batch, &s.limits)),
            };
            s.in_flight = Some(batch);
            s.in_flight_bytes = body.len();
            s.sent_at = now_ms();
            Ok([JsValue::from_str(path), JsValue::from_str(&body)]
                .into_iter()
                .collect())
        })
    }

    /// The backend acknowledged the request (`/clear`, `/set`, `/remove`) without updates.
    #[wasm_bindgen(js_name = syncAcked)]
    pub fn sync_acked(&self) -> Result<Array, JsValue> {
        self.sync_applied(f64::NAN, Array::new(), None, false, f64::NAN, 0.5)
    }

    /// The backend answered `/sync`: `cursor` is its `timestamp`; `updates` is a flat array of
    /// `[key, valueJson | null, ttlSeconds, timestamp, node | null, deleted, writtenAt | null]`
    /// septuples; `clear` an optional `[timestamp, node]`, `more` whether the backend paged its
    /// answer and `server_now` its clock when it answered (NaN: unknown) (extensions); `jitter`
    /// is a random number in [0, 1). Returns `[changedKeys, errors, acked, clockOffset]`: `acked`
    /// (see [`encode_acked`]) and the clock offset, when it moved, are for the other instances
    /// on the page, which share this storage but not this memory.
    #[wasm_bindgen(js_name = syncApplied)]
    pub fn sync_applied(
        &self,
        cursor: f64,
        updates: Array,
        clear: Option<Array>,
        more: bool,
        server_now: f64,
        jitter: f64,
    ) -> Result<Array, JsValue> {
        let inner = std::rc::Rc::downgrade(&self.inner);
        self.with(|s| {
            let local = now_ms();
            let retimed = js_stamp::timestamp(&JsValue::from(server_now))
                .and_then(|backend| s.cache.observe_backend_clock(backend, s.sent_at, local));
            let now = s.now();
            let acked = match s.in_flight.take() {
                Some(batch) => {
                    s.cache.ack_sync(&batch);
                    encode_acked(&batch)
                }
                None => Array::new(),
            };
            let before = s.cache.cursor();
            let (keys, mut errors) = apply_from_backend(s, cursor, &updates, clear.as_ref(), now);
            let moved = s.cache.cursor() > before;
            if let Some(error) = s.sync.as_mut().and_then(|engine| engine.answered(local, more, moved, jitter)) {
                errors.push(to_js(&error));
            }
            errors.extend(flush_inner(s).iter());
            rearm(s, &inner);
            let offset = if retimed.is_some() { JsValue::from(s.cache.clock_offset() as f64) } else { JsValue::UNDEFINED };
            for key in retimed.into_iter().flatten() {
                keys.push(&JsValue::from(key));
            }
            Ok([JsValue::from(keys), errors.into_iter().collect::<Array>().into(), acked.into(), offset]
                .into_iter()
                .collect())
        })
    }

    /// Another instance on this page learned the backend's clock offset (and persisted it);
    /// returns the keys whose expiry moved with it.
    #[wasm_bindgen(js_name = adoptClockOffset)]
    pub fn adopt_clock_offset(&self, offset: f64) -> Result<Array, JsValue> {
        let inner = std::rc::Rc::downgrade(&self.inner);
        self.with(|s| {
            if !offset.is_finite() || offset.fract() != 0.0 || offset.abs() > MAX_SAFE_INTEGER as f64 {
                return Ok(Array::new());
            }
            let keys = s.cache.adopt_clock_offset(offset as i64, now_ms());
            rearm(s, &inner);
            Ok(keys.into_iter().map(JsValue::from).collect())
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
            let now = s.now();
            let (keys, mut errors) = apply_from_backend(s, cursor, &updates, clear.as_ref(), now);
            if let Some(engine) = s.sync.as_mut() {
                engine.push_received(now_ms());
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

    /// The request failed: `kind` and `message` say how, `network` whether the backend could
    /// not be reached at all, `status` the HTTP status it answered (0: none) and `named_change`
    /// the index of the change its error names (-1: none); `jitter` is a random number in
    /// [0, 1). A change the backend refuses for good leaves the outbox and is reported (see
    /// [`Refusal`]); anything else is retried with backoff. Returns `[errors, acked, handled]`:
    /// `acked` for the other instances on the page, as from [`CacheCore::sync_applied`];
    /// `handled` is false when the failure is retried with backoff (the shim reports it), true
    /// when the outbox dealt with it (what remains is due at once).
    #[wasm_bindgen(js_name = syncFailed)]
    pub fn sync_failed(
        &self,
        kind: &str,
        message: &str,
        network: bool,
        jitter: f64,
        status: u16,
        named_change: i32,
    ) -> Result<Array, JsValue> {
        self.with(|s| {
            let batch = s.in_flight.take().unwrap_or_default();
            let named = usize::try_from(named_change).ok();
            let engine = s.sync.as_mut().ok_or_else(no_backend)?;
            let refusal = Refusal::of(status, named, batch.changes.len());
            let handled = refusal != Refusal::Retry;
            let (errors, acked) = match refusal {
                Refusal::TooLarge => {
                    s.limits.shrink_below(batch.changes.len(), s.in_flight_bytes);
                    engine.resend_now();
                    (Array::new(), Array::new())
                }
                Refusal::Change(index) => {
                    engine.resend_now();
                    let refused = SyncBatch { clear: None, changes: batch.changes.into_iter().skip(index).take(1).collect() };
                    let errors: Array = refused
                        .changes
                        .iter()
                        .map(|(key, _)| to_js(&CacheError::Rejected { key: key.clone(), reason: format!("{kind}: {message}") }))
                        .collect();
                    // Out of the outbox, as if acknowledged: the value stays here, and is not
                    // sent again until the key is written again.
                    s.cache.ack_sync(&refused);
                    for e in flush_inner(s).iter() {
                        errors.push(&e);
                    }
                    (errors, encode_acked(&refused))
                }
                Refusal::Retry => {
                    engine.failed(now_ms(), CacheError::Protocol { message: format!("{kind}: {message}") }, network, jitter);
                    (Array::new(), Array::new())
                }
            };
            Ok([JsValue::from(errors), acked.into(), handled.into()].into_iter().collect())
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
    while i + 6 < updates.length() {
        let field = |n: u32| updates.get(i + n);
        match read_update(&field(0), &field(1), &field(2), &field(3), &field(4), &field(5), &field(6)) {
            Ok(change) => changes.push(change),
            Err(e) => errors.push(to_js(&e)),
        }
        i += 7;
    }
    let clear = match clear {
        Some(c) => match read_stamp(&c.get(0), &c.get(1)) {
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

fn protocol(message: &str) -> CacheError {
    CacheError::Protocol {
        message: message.into(),
    }
}

fn read_stamp(ts: &JsValue, node: &JsValue) -> Result<Stamp, CacheError> {
    let ts = js_stamp::timestamp(ts)
        .ok_or_else(|| protocol("a timestamp from the backend is not an integer in range"))?;
    let node = if node.is_null() || node.is_undefined() {
        String::new()
    } else {
        node.as_string()
            .ok_or_else(|| protocol("a writer id from the backend is not a string"))?
    };
    let stamp = Stamp::new(ts, node);
    check_remote_stamp(&stamp)?;
    Ok(stamp)
}

fn read_update(
    key: &JsValue,
    value: &JsValue,
    ttl: &JsValue,
    ts: &JsValue,
    node: &JsValue,
    deleted: &JsValue,
    written_at: &JsValue,
) -> Result<(String, Entry), CacheError> {
    let key = key
        .as_string()
        .ok_or_else(|| protocol("an update's key is not a string"))?;
    validate_key(&key).map_err(|e| protocol(&format!("an update has an invalid key: {e}")))?;
    let stamp = read_stamp(ts, node)?;
    let written_at = if written_at.is_null() || written_at.is_undefined() {
        stamp.ts
    } else {
        js_stamp::timestamp(written_at).ok_or_else(|| protocol("an update's writtenAt is not an integer in range"))?
    };
    if deleted.as_bool() == Some(true) {
        return Ok((key, Entry::tombstone(stamp).written_at(written_at)));
    }
    let ttl_ms = ttl_ms_from_secs(ttl.as_f64().unwrap_or(0.0))?;
    // The adapter passes JSON.stringify of the parsed value, so it is JSON; checked anyway.
    let json = value
        .as_string()
        .ok_or_else(|| protocol("an update's value is missing"))?;
    json::validate(&json).map_err(protocol)?;
    Ok((key, Entry::value(stamp, ttl_ms, json).written_at(written_at)))
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
