//! The reads and bulk operations behind `getOrFetch`, `keys`, `invalidate` and `getStats`: the
//! other half of [`CacheCore`] that the shim's loading and inspection APIs use.
use js_sys::Array;
use mfe_shared_cache_core::{Entry, KeyPattern};
use wasm_bindgen::prelude::*;

use crate::core_api::{apply_from_other_tab, rearm, CacheCore, Inner};
use crate::errors::to_js;

fn parse(pattern: &str) -> Result<KeyPattern, JsValue> {
    KeyPattern::parse(pattern).map_err(|e| to_js(&e))
}

/// The keys with a visible value now, matching `pattern` when given, unsorted.
fn live_keys(s: &Inner, pattern: Option<&KeyPattern>) -> Vec<String> {
    let now = s.now();
    s.cache
        .replica()
        .iter()
        .filter(|(key, entry)| entry.is_live(now) && pattern.is_none_or(|p| p.matches(key)))
        .map(|(key, _)| key.clone())
        .collect()
}

#[wasm_bindgen]
impl CacheCore {
    /// The keys with a visible value, matching `pattern` when given (`*`, `?`, `\\`), unsorted.
    pub fn keys(&self, pattern: Option<String>) -> Result<Array, JsValue> {
        let pattern = pattern.as_deref().map(parse).transpose()?;
        self.with(|s| Ok(live_keys(s, pattern.as_ref()).iter().map(|key| JsValue::from_str(key)).collect()))
    }

    /// Removes every visible key matching `pattern`; returns `[key, timestamp, …]` of the removes
    /// (for the other instances on the page). Persisted at the next flush, like `remove`.
    pub fn invalidate(&self, pattern: &str) -> Result<Array, JsValue> {
        let pattern = parse(pattern)?;
        self.with(|s| {
            let now = s.now();
            let mut keys = live_keys(s, Some(&pattern));
            keys.sort_unstable();
            let out = Array::new();
            for key in keys {
                let entry = s.cache.remove(&key, now).map_err(|e| to_js(&e))?;
                out.push(&JsValue::from_str(&key));
                out.push(&(entry.stamp.ts as f64).into());
            }
            Ok(out)
        })
    }

    /// `[active, expired]`: values visible now, and values past their TTL still held (they keep
    /// ordering late writes until they are collected).
    pub fn stats(&self) -> Result<Array, JsValue> {
        self.with(|s| {
            let now = s.now();
            let (mut active, mut expired) = (0u32, 0u32);
            for (_, entry) in s.cache.replica().iter().filter(|(_, e)| e.value.is_some()) {
                if entry.is_live(now) {
                    active += 1;
                } else {
                    expired += 1;
                }
            }
            Ok([JsValue::from(active), JsValue::from(expired)].into_iter().collect())
        })
    }

    /// The JSON text of `key`'s value when it has expired but is still held (stale-while-revalidate);
    /// nothing when it is visible, removed, cleared or unknown.
    #[wasm_bindgen(js_name = getStale)]
    pub fn get_stale(&self, key: &str) -> Result<Option<String>, JsValue> {
        self.with(|s| {
            let now = s.now();
            Ok(s.cache.replica().entry(key).filter(|e| !e.is_live(now)).and_then(|e| e.value.clone()))
        })
    }

    /// The timestamp of `key`'s latest write (value or remove) as this device's clock shows it
    /// (the shim compares it with `Date.now()`), 0 when there is none.
    #[wasm_bindgen(js_name = writtenAt)]
    pub fn written_at(&self, key: &str) -> Result<f64, JsValue> {
        self.with(|s| Ok(s.cache.replica().entry(key).map_or(0.0, |e: &Entry| s.cache.local_time(e.stamp.ts) as f64)))
    }

    /// Reads `key`'s record from storage again and merges it: storage is written before a tab
    /// releases a lock, while its message may still be on the way. Returns whether the visible
    /// value changed (the shim tells subscribers).
    #[wasm_bindgen(js_name = reloadKey)]
    pub fn reload_key(&self, key: &str) -> Result<bool, JsValue> {
        let weak = std::rc::Rc::downgrade(&self.inner);
        self.with(|s| {
            let storage_key = format!("{}{key}", s.cache.prefix());
            let text = match mfe_shared_cache_core::Storage::get(s.cache.storage(), &storage_key) {
                Ok(Some(text)) => text,
                Ok(None) | Err(_) => return Ok(false), // nothing newer to learn; a failing storage reports elsewhere
            };
            let write = match s.cache.decode_foreign_write(&storage_key, &text) {
                Some(Ok(write)) => write,
                Some(Err(e)) => return Err(to_js(&e)),
                None => return Ok(false),
            };
            let mut errors = Vec::new();
            let changed = apply_from_other_tab(s, vec![write], None, &mut errors, &weak);
            rearm(s, &weak);
            match errors.into_iter().next() {
                Some(e) => Err(e),
                None => Ok(!changed.is_empty()),
            }
        })
    }
}
