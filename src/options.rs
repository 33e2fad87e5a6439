//! The structured values the shim hands in (options, a loader's outcome), read field by field.
//! serde-wasm-bindgen carries every value out; in, its deserializer would cost the wasm more than
//! the rest of this crate's conversions together (serde's error messages format floats), for a
//! handful of fields the shim has already checked.
use js_sys::Reflect;
use mfe_shared_cache_core::CacheError;
use wasm_bindgen::JsValue;

/// A JS object whose fields are read by name; `what` names it in errors.
pub(crate) struct Fields<'a> {
    object: &'a JsValue,
    what: &'static str,
}

impl<'a> Fields<'a> {
    pub(crate) fn of(object: &'a JsValue, what: &'static str) -> Result<Self, CacheError> {
        if object.is_object() {
            Ok(Fields { object, what })
        } else {
            Err(CacheError::InvalidOption { reason: format!("{what} must be an object") })
        }
    }

    fn bad(&self, name: &str, kind: &str) -> CacheError {
        CacheError::InvalidOption { reason: format!("{}.{name} must be {kind}", self.what) }
    }

    /// The field, or `None` when it is absent, undefined or null.
    pub(crate) fn get(&self, name: &str) -> Option<JsValue> {
        Reflect::get(self.object, &JsValue::from_str(name)).ok().filter(|v| !v.is_undefined() && !v.is_null())
    }

    pub(crate) fn string(&self, name: &str) -> Result<String, CacheError> {
        self.get(name).and_then(|v| v.as_string()).ok_or_else(|| self.bad(name, "a string"))
    }

    pub(crate) fn optional_string(&self, name: &str) -> Result<Option<String>, CacheError> {
        self.get(name).map(|v| v.as_string().ok_or_else(|| self.bad(name, "a string"))).transpose()
    }

    /// A finite number.
    pub(crate) fn number(&self, name: &str) -> Result<f64, CacheError> {
        self.get(name).and_then(|v| v.as_f64()).filter(|n| n.is_finite()).ok_or_else(|| self.bad(name, "a finite number"))
    }

    /// A number of milliseconds, at least `min`.
    pub(crate) fn ms(&self, name: &str, min: u64) -> Result<u64, CacheError> {
        let n = self.number(name)?;
        Ok(if n < min as f64 { min } else { n as u64 })
    }

    pub(crate) fn boolean(&self, name: &str) -> Result<bool, CacheError> {
        self.get(name).and_then(|v| v.as_bool()).ok_or_else(|| self.bad(name, "true or false"))
    }

    /// A nested object, or `None` when absent or null.
    pub(crate) fn object(&self, name: &str) -> Result<Option<JsValue>, CacheError> {
        match self.get(name) {
            Some(v) if v.is_object() => Ok(Some(v)),
            Some(_) => Err(self.bad(name, "an object")),
            None => Ok(None),
        }
    }
}
