//! [`Storage`] over any JavaScript object with the Web Storage interface (`localStorage`,
//! `sessionStorage`, or a user's own). Calls are structural, so a plain object with `getItem`,
//! `setItem`, `removeItem`, `key` and `length` works, and every throw becomes a typed error.
use mfe_shared_cache_core::{Fetched, Scanned, Storage, StorageError};
use wasm_bindgen::prelude::*;

use crate::errors::{js_error_message, js_error_name};

#[wasm_bindgen(module = "/src/adapters.js")]
extern "C" {
    /// Reads every item under `prefix` in one call: `[joined, count, key, value, key, value, …]`,
    /// where `joined` holds `count` keys and values separated by NUL (one string crosses into the
    /// wasm instead of two per item: each crossing costs more than the joining), and the items
    /// that hold a NUL themselves follow one by one.
    #[wasm_bindgen(catch)]
    fn scan(storage: &JsValue, prefix: &str) -> Result<js_sys::Array, JsValue>;
    /// Writes `text` as UTF-8 into `into` (`TextEncoder.encodeInto`, which stops before a
    /// character that does not fit): how many bytes it wrote.
    #[wasm_bindgen(js_name = encodeInto)]
    fn encode_into(text: &js_sys::JsString, into: &mut [u8]) -> u32;
}

/// A long JS string as a Rust one, written into the wasm's memory by the browser's encoder.
/// wasm-bindgen's own conversion copies character by character in JavaScript, which runs cold
/// on a page's first cache: for a hydrate's 1.75 MB it took 8 ms, the encoder 3.5 ms.
fn long_string(text: &js_sys::JsString) -> Option<String> {
    let units = text.length() as usize;
    // Room for mostly ASCII text first; then for any (a UTF-16 unit takes at most 3 bytes).
    for room in [units + units / 16 + 4, 3 * units + 4] {
        let mut bytes = vec![0; room];
        let written = encode_into(text, &mut bytes) as usize;
        // With 4 bytes left over, no character was left out.
        if written + 4 <= room {
            bytes.truncate(written);
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

#[wasm_bindgen(module = "/src/adapters.js")]
extern "C" {
    /// Reads `count` keys, each followed by a NUL in `joined`: for each, `1` and its value, `0`
    /// when it has none, or `2` when its value holds a NUL (it is no record), followed by a NUL.
    #[wasm_bindgen(catch, js_name = getEach)]
    fn get_each(storage: &JsValue, joined: &str, count: u32) -> Result<js_sys::JsString, JsValue>;
    /// Stores `count` keys and values, each followed by a NUL in `joined`, in order: how many
    /// were stored before one failed (the error is [`take_failure`]'s).
    #[wasm_bindgen(js_name = setEach)]
    fn set_each(storage: &JsValue, joined: &str, count: u32) -> u32;
    #[wasm_bindgen(js_name = takeFailure)]
    fn take_failure() -> JsValue;
}

#[wasm_bindgen]
extern "C" {
    /// Anything shaped like the Web Storage API.
    pub type StorageLike;

    #[wasm_bindgen(method, catch, js_name = getItem)]
    fn get_item(this: &StorageLike, key: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, js_name = setItem)]
    fn set_item(this: &StorageLike, key: &str, value: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = removeItem)]
    fn remove_item(this: &StorageLike, key: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn key(this: &StorageLike, index: u32) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, getter, catch)]
    fn length(this: &StorageLike) -> Result<JsValue, JsValue>;
}

/// The core's [`Storage`] over a JavaScript storage object.
pub struct WebStorage {
    inner: StorageLike,
}

impl WebStorage {
    /// Wraps a JS storage object.
    pub fn new(storage: JsValue) -> Self {
        WebStorage { inner: storage.unchecked_into() }
    }

    /// The wrapped JS object (to match `storage` events against it).
    pub fn js(&self) -> &JsValue {
        self.inner.as_ref()
    }
}

fn failed(error: JsValue) -> StorageError {
    let is_quota = matches!(js_error_name(&error).as_deref(), Some("QuotaExceededError" | "NS_ERROR_DOM_QUOTA_REACHED"));
    if is_quota {
        StorageError::QuotaExceeded
    } else {
        StorageError::Failed(js_error_message(&error))
    }
}

impl Storage for WebStorage {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        let value = self.inner.get_item(key).map_err(failed)?;
        if value.is_null() || value.is_undefined() {
            return Ok(None);
        }
        value.as_string().map(Some).ok_or_else(|| StorageError::Failed("getItem returned a non-string".into()))
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), StorageError> {
        self.inner.set_item(key, value).map_err(failed)
    }

    fn remove(&mut self, key: &str) -> Result<(), StorageError> {
        self.inner.remove_item(key).map_err(failed)
    }

    /// One call and one string for every key: each string handed over costs a conversion of its
    /// own. The values come back as one text, written in by the encoder and read in place.
    fn get_each(&self, keys: &[String]) -> Result<Fetched, StorageError> {
        let mut joined = String::new();
        for key in keys {
            joined.push_str(key);
            joined.push('\0');
        }
        let text = get_each(self.inner.as_ref(), &joined, keys.len() as u32).map_err(failed)?;
        long_string(&text).map(Fetched::joined).ok_or_else(|| StorageError::Failed("the stored values could not be read as text".into()))
    }

    /// One call and one string for every item, as for `get_each`.
    fn set_each(&mut self, items: &[(String, String)]) -> Result<(), (usize, StorageError)> {
        let mut joined = String::new();
        for (key, value) in items {
            joined.push_str(key);
            joined.push('\0');
            joined.push_str(value);
            joined.push('\0');
        }
        let stored = set_each(self.inner.as_ref(), &joined, items.len() as u32) as usize;
        if stored < items.len() {
            return Err((stored, failed(take_failure())));
        }
        Ok(())
    }

    fn keys(&self) -> Result<Vec<String>, StorageError> {
        let length = self.inner.length().map_err(failed)?.as_f64().unwrap_or(0.0);
        if !(0.0..=u32::MAX as f64).contains(&length) {
            return Err(StorageError::Failed("storage length is not a valid count".into()));
        }
        // No pre-allocation from `length`, and a stop at the first missing key: a storage may
        // misreport its length.
        let mut keys = Vec::new();
        for index in 0..length as u32 {
            match self.inner.key(index).map_err(failed)?.as_string() {
                Some(key) => keys.push(key),
                None => break,
            }
        }
        Ok(keys)
    }

    fn scan(&self, prefix: &str) -> Result<Scanned, StorageError> {
        let flat = scan(self.inner.as_ref(), prefix).map_err(failed)?;
        let joined = flat
            .get(0)
            .dyn_ref::<js_sys::JsString>()
            .and_then(long_string)
            .ok_or_else(|| StorageError::Failed("the stored items could not be read as text".into()))?;
        let count = (flat.get(1).as_f64().unwrap_or(0.0) as usize).min(joined.len());
        // Each value is followed by a NUL, the last one too: the joined items are read in place.
        let mut items = Scanned::joined(joined + "\0", count);
        let mut i = 2;
        while i + 1 < flat.length() {
            if let (Some(key), Some(value)) = (flat.get(i).as_string(), flat.get(i + 1).as_string()) {
                items.push(key, value);
            }
            i += 2;
        }
        Ok(items)
    }
}
