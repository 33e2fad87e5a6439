//! Errors cross into JavaScript as plain `{ type, message, retryable, key? }` objects; the JS shim
//! wraps them in its `CacheError` class, so one error type spans the whole API.
use js_sys::Reflect;
use mfe_shared_cache_core::CacheError;
use serde::Serialize;
use wasm_bindgen::JsValue;

/// An error as the JS shim receives it.
#[derive(Serialize)]
pub(crate) struct JsError {
    #[serde(rename = "type")]
    kind: &'static str,
    message: String,
    retryable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl From<&CacheError> for JsError {
    fn from(error: &CacheError) -> Self {
        JsError {
            kind: error.kind().as_str(),
            message: error.to_string(),
            retryable: error.retryable(),
            key: error.key().map(str::to_owned),
        }
    }
}

/// An error thrown to JavaScript.
pub(crate) fn to_js(error: &CacheError) -> JsValue {
    serde_wasm_bindgen::to_value(&JsError::from(error)).unwrap_or_else(|_| JsValue::from_str(&error.to_string()))
}

/// The `name` of a thrown JS error (`QuotaExceededError`, …), if it has one.
pub(crate) fn js_error_name(error: &JsValue) -> Option<String> {
    Reflect::get(error, &JsValue::from_str("name")).ok().and_then(|n| n.as_string())
}

/// A readable message for a thrown JS value.
pub(crate) fn js_error_message(error: &JsValue) -> String {
    Reflect::get(error, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "unknown error".into())
}
