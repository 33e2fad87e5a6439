//! Stamps as they cross into JS arrays (tab messages, acknowledgements for the page's other
//! instances): a timestamp is an integer JS number in range, and an optional stamp takes two slots,
//! `ts, node` or `-1, null`.
use js_sys::Array;
use mfe_shared_cache_core::{Stamp, MAX_SAFE_INTEGER};
use wasm_bindgen::JsValue;

/// A timestamp: an integer JS number in `0..=2^53-1`.
pub(crate) fn timestamp(value: &JsValue) -> Option<u64> {
    value.as_f64().filter(|t| t.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER as f64).contains(t)).map(|t| t as u64)
}

/// Appends an optional stamp as its two slots.
pub(crate) fn push_optional(out: &Array, stamp: Option<&Stamp>) {
    match stamp {
        Some(stamp) => {
            out.push(&(stamp.ts as f64).into());
            out.push(&JsValue::from_str(&stamp.node));
        }
        None => {
            out.push(&(-1.0).into());
            out.push(&JsValue::NULL);
        }
    }
}

/// Reads the two slots of an optional stamp; `Err` when they are neither a stamp nor `-1, null`.
pub(crate) fn read_optional(ts: &JsValue, node: &JsValue) -> Result<Option<Stamp>, ()> {
    if ts.as_f64() == Some(-1.0) && node.is_null() {
        return Ok(None);
    }
    match (timestamp(ts), node.as_string()) {
        (Some(ts), Some(node)) => Ok(Some(Stamp::new(ts, node))),
        _ => Err(()),
    }
}
