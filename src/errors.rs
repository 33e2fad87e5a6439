//! Errors cross into JavaScript as plain `{ type, message, retryable, key? }` objects; the JS shim
//! wraps them in its `CacheError` class so one error type spans the whole API.
use js_sys::{Object, Reflect};
use mfe_shared_cache_core::CacheError;
use wasm_bindgen::JsValue;

/// An error as the JS shim expects it.
pub fn to_js(error: &CacheError) -> JsValue {
    let obj = Object::new();
    set(&obj, "type", &error.kind().as_str().into());
    set(&obj, "message", &error.to_string().into());
    set(&obj, "retryable", &error.retryable().into());
    if let Some(key) = error.key() {
        set(&obj, "key", &key.into());
    }
    obj.into()
}

/// An error of a kind the core does not know (the client's own failures).
pub fn other(kind: &str, message: &str, retryable: bool) -> JsValue {
    let obj = Object::new();
    set(&obj, "type", &kind.into());
    set(&obj, "message", &message.into());
    set(&obj, "retryable", &retryable.into());
    obj.into()
}

/// The error for a call made while the cache is busy in a call further up the stack (a custom
/// storage or listener calling back into the cache).
pub fn reentrant() -> JsValue {
    other("REENTRANT_CALL", "the cache was called from inside one of its own storage calls", true)
}

/// The error for a call after `dispose()`.
pub fn disposed() -> JsValue {
    other("DISPOSED", "the cache has been disposed", false)
}

fn set(obj: &Object, key: &str, value: &JsValue) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

/// The `name` of a thrown JS error (`QuotaExceededError`, …), if it has one.
pub fn js_error_name(error: &JsValue) -> Option<String> {
    Reflect::get(error, &JsValue::from_str("name")).ok().and_then(|n| n.as_string())
}

/// A readable message for a thrown JS value.
pub fn js_error_message(error: &JsValue) -> String {
    Reflect::get(error, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "unknown error".into())
}
