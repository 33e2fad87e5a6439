//! The JSON body extractor of the API: any content type (so seed clients sending `text/plain` to
//! skip a CORS preflight work too), the body limit answered as 413, and bodies that do not fit
//! the protocol's types answered with the precise code of the first offending field.
use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use mfe_shared_cache_core::wire::{ClearRequest, RemoveRequest, SetRequest, SyncRequest};
use mfe_shared_cache_core::MAX_SAFE_INTEGER;
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::errors::ApiError;

/// A request body parsed as `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + Diagnose, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large("the request body is larger than the server accepts")
            } else {
                ApiError::bad_request("invalid_request", rejection.body_text())
            }
        })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Parses a body as `T`, with the error codes of the API.
pub fn parse<T: DeserializeOwned + Diagnose>(bytes: &[u8]) -> Result<T, ApiError> {
    require_object(bytes)?;
    T::check_nested(bytes)?;
    serde_json::from_slice(bytes).map_err(|err| match err.classify() {
        serde_json::error::Category::Data => {
            // The body is JSON of the wrong shape. serde's message does not name the field, so
            // look again (this path only runs on bad input) to say which field and why.
            match serde_json::from_slice::<Value>(bytes) {
                Ok(Value::Object(fields)) => T::diagnose(&fields),
                Ok(_) => Some(not_an_object()),
                // Strings `Value` cannot hold either (a key with a lone surrogate escape).
                Err(_) => T::diagnose_raw(bytes),
            }
            .unwrap_or_else(|| ApiError::bad_request("invalid_request", err.to_string()))
        }
        _ => ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {err}")),
    })
}

/// Refuses a body that is not a JSON object. serde reads a struct from a JSON array as well (its
/// fields in order), so without this `[]` would be an empty sync and `["k", 1, 0, 5]` a set.
/// Only the first byte is looked at when it is `{`; otherwise the body is checked to be JSON at
/// all, so that malformed text keeps its `invalid_json`.
fn require_object(bytes: &[u8]) -> Result<(), ApiError> {
    let first = bytes.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first == Some(&b'{') || serde_json::from_slice::<IgnoredAny>(bytes).is_err() {
        return Ok(());
    }
    Err(not_an_object())
}

fn not_an_object() -> ApiError {
    ApiError::bad_request("invalid_request", "the body must be a JSON object")
}

/// Finds the first field of a request body that does not fit the protocol.
pub trait Diagnose {
    /// The error for the first offending field, if one is found.
    fn diagnose(fields: &Map<String, Value>) -> Option<ApiError>;

    /// The same for a body whose strings `serde_json::Value` cannot hold.
    fn diagnose_raw(_body: &[u8]) -> Option<ApiError> {
        None
    }

    /// Refuses nested structs given as arrays (read before the body is parsed as `Self`, which
    /// would accept them): none by default.
    fn check_nested(_bytes: &[u8]) -> Result<(), ApiError> {
        Ok(())
    }
}

impl Diagnose for SetRequest {
    fn diagnose(o: &Map<String, Value>) -> Option<ApiError> {
        key(o).or_else(|| value(o)).or_else(|| ttl(o)).or_else(|| timestamp(o)).or_else(|| node(o))
    }

    fn diagnose_raw(body: &[u8]) -> Option<ApiError> {
        diagnose_key_raw(body)
    }
}

impl Diagnose for RemoveRequest {
    fn diagnose(o: &Map<String, Value>) -> Option<ApiError> {
        key(o).or_else(|| timestamp(o)).or_else(|| node(o))
    }

    fn diagnose_raw(body: &[u8]) -> Option<ApiError> {
        diagnose_key_raw(body)
    }
}

impl Diagnose for ClearRequest {
    fn diagnose(o: &Map<String, Value>) -> Option<ApiError> {
        timestamp(o).or_else(|| node(o))
    }
}

impl Diagnose for SyncRequest {
    /// Each change must be an object, for the same reason as the body. This costs a second pass
    /// over the body that skips the values; a body of the wrong shape here is left to the parse.
    fn check_nested(bytes: &[u8]) -> Result<(), ApiError> {
        #[derive(Deserialize)]
        struct Shape {
            changes: Option<Vec<IsObject>>,
        }
        let Ok(Shape { changes: Some(changes) }) = serde_json::from_slice::<Shape>(bytes) else {
            return Ok(());
        };
        match changes.iter().position(|change| !change.0) {
            Some(i) => {
                Err(ApiError::bad_request("invalid_request", "a change must be an object").at(&format!("changes[{i}]")))
            }
            None => Ok(()),
        }
    }

    fn diagnose(o: &Map<String, Value>) -> Option<ApiError> {
        if o.get("lastSync").is_some_and(|v| !is_integer(v)) {
            return Some(ApiError::bad_request("invalid_request", "lastSync must be an integer in 0..=2^53-1"));
        }
        let changes = match o.get("changes") {
            None => return None,
            Some(Value::Array(changes)) => changes,
            Some(_) => return Some(ApiError::bad_request("invalid_request", "changes must be an array")),
        };
        changes.iter().enumerate().find_map(|(i, change)| {
            let problem = match change {
                Value::Object(c) => key(c)
                    .or_else(|| ttl(c))
                    .or_else(|| timestamp(c))
                    .or_else(|| node(c))
                    .or_else(|| flag(c, "deleted")),
                _ => Some(ApiError::bad_request("invalid_request", "a change must be an object")),
            };
            let key = change.get("key").and_then(Value::as_str).map(str::to_owned);
            problem.map(|p| p.at_change(i, key))
        })
    }

    fn diagnose_raw(body: &[u8]) -> Option<ApiError> {
        // Each change on its own, unparsed, then parsed alone: the first that fails is named.
        #[derive(serde::Deserialize)]
        struct Changes<'a> {
            #[serde(borrow, default)]
            changes: Vec<&'a serde_json::value::RawValue>,
        }
        let changes: Changes = serde_json::from_slice(body).ok()?;
        changes.changes.iter().enumerate().find_map(|(i, raw)| {
            let err = serde_json::from_str::<mfe_shared_cache_core::wire::Change>(raw.get()).err()?;
            let code = if err.to_string().contains(LONE_SURROGATE) { "invalid_key" } else { "invalid_request" };
            Some(ApiError::bad_request(code, err.to_string()).at_change(i, None))
        })
    }
}

/// What the core's wire types say of a key with a lone surrogate escape.
const LONE_SURROGATE: &str = "lone surrogate";

/// Bodies whose strings `serde_json::Value` cannot hold: `/set` and `/remove` name one key.
fn diagnose_key_raw(body: &[u8]) -> Option<ApiError> {
    let err = serde_json::from_slice::<KeyOnly>(body).err()?;
    err.to_string().contains(LONE_SURROGATE).then(|| ApiError::bad_request("invalid_key", err.to_string()))
}

#[derive(serde::Deserialize)]
struct KeyOnly {
    #[serde(rename = "key", deserialize_with = "mfe_shared_cache_core::wire::key")]
    _key: String,
}

/// Any JSON value, skipped, remembering only whether it was an object.
struct IsObject(bool);

impl<'de> Deserialize<'de> for IsObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Kind;
        impl<'de> Visitor<'de> for Kind {
            type Value = IsObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IsObject, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(IsObject(true))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IsObject, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IsObject(false))
            }

            fn visit_bool<E>(self, _: bool) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }

            fn visit_i64<E>(self, _: i64) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }

            fn visit_u64<E>(self, _: u64) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }

            fn visit_f64<E>(self, _: f64) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }

            fn visit_str<E>(self, _: &str) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }

            fn visit_unit<E>(self) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }
        }
        deserializer.deserialize_any(Kind)
    }
}

fn key(o: &Map<String, Value>) -> Option<ApiError> {
    match o.get("key") {
        Some(Value::String(_)) => None,
        None => Some(ApiError::bad_request("invalid_key", "key is required")),
        Some(_) => Some(ApiError::bad_request("invalid_key", "key must be a string")),
    }
}

fn value(o: &Map<String, Value>) -> Option<ApiError> {
    (!o.contains_key("value")).then(|| ApiError::bad_request("invalid_value", "value is required"))
}

fn ttl(o: &Map<String, Value>) -> Option<ApiError> {
    match o.get("ttl") {
        None | Some(Value::Number(_)) => None,
        // JSON.stringify turns Infinity and NaN into null.
        Some(Value::Null) => {
            Some(ApiError::bad_request("invalid_ttl", "ttl must be a finite number of seconds (got null)"))
        }
        Some(_) => Some(ApiError::bad_request("invalid_ttl", "ttl must be a number of seconds")),
    }
}

fn timestamp(o: &Map<String, Value>) -> Option<ApiError> {
    match o.get("timestamp") {
        None => Some(ApiError::bad_request("invalid_timestamp", "timestamp is required")),
        Some(v) if is_integer(v) => None,
        Some(_) => Some(ApiError::bad_request(
            "invalid_timestamp",
            "timestamp must be an integer number of milliseconds in 0..=2^53-1",
        )),
    }
}

fn node(o: &Map<String, Value>) -> Option<ApiError> {
    match o.get("node") {
        None | Some(Value::Null | Value::String(_)) => None,
        Some(_) => Some(ApiError::bad_request("invalid_node", "node must be a string")),
    }
}

fn flag(o: &Map<String, Value>, name: &str) -> Option<ApiError> {
    match o.get(name) {
        None | Some(Value::Bool(_)) => None,
        Some(_) => Some(ApiError::bad_request("invalid_request", format!("{name} must be a boolean"))),
    }
}

/// What the core's timestamp fields accept: an integral number in 0..=2^53-1 (`1.7e12` too).
fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_u64().map_or_else(
            || n.as_f64().is_some_and(|f| f >= 0.0 && f <= MAX_SAFE_INTEGER as f64 && f.fract() == 0.0),
            |u| u <= MAX_SAFE_INTEGER,
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T: DeserializeOwned + Diagnose>(body: &str) -> &'static str {
        match parse::<T>(body.as_bytes()) {
            Ok(_) => "ok",
            Err(err) => err.code,
        }
    }

    #[test]
    fn codes_name_the_offending_field() {
        assert_eq!(code::<SetRequest>(r#"{"key":"k","value":1,"ttl":0,"timestamp":1}"#), "ok");
        assert_eq!(code::<SetRequest>("not json"), "invalid_json");
        assert_eq!(code::<SetRequest>(""), "invalid_json");
        assert_eq!(code::<SetRequest>("[1]"), "invalid_request");
        assert_eq!(code::<SetRequest>(r#"{"value":1,"timestamp":1}"#), "invalid_key");
        assert_eq!(code::<SetRequest>(r#"{"key":7,"value":1,"timestamp":1}"#), "invalid_key");
        assert_eq!(code::<SetRequest>(r#"{"key":"k","timestamp":1}"#), "invalid_value");
        assert_eq!(code::<SetRequest>(r#"{"key":"k","value":1,"ttl":null,"timestamp":1}"#), "invalid_ttl");
        assert_eq!(code::<SetRequest>(r#"{"key":"k","value":1,"ttl":"5","timestamp":1}"#), "invalid_ttl");
        assert_eq!(code::<SetRequest>(r#"{"key":"k","value":1,"timestamp":-1}"#), "invalid_timestamp");
        assert_eq!(code::<SetRequest>(r#"{"key":"k","value":1,"timestamp":1.5}"#), "invalid_timestamp");
        assert_eq!(code::<SetRequest>(r#"{"key":"k","value":1}"#), "invalid_timestamp");
        assert_eq!(code::<SetRequest>(r#"{"key":"k","value":1,"timestamp":1,"node":5}"#), "invalid_node");
        assert_eq!(code::<ClearRequest>(r#"{"timestamp":"now"}"#), "invalid_timestamp");
        assert_eq!(code::<SyncRequest>(r#"{"lastSync":-3,"changes":[]}"#), "invalid_request");
        assert_eq!(code::<SyncRequest>(r#"{"lastSync":0,"changes":{}}"#), "invalid_request");
        assert_eq!(
            code::<SyncRequest>(r#"{"lastSync":0,"changes":[{"key":"a","timestamp":1},{"timestamp":1}]}"#),
            "invalid_key"
        );
        assert_eq!(
            code::<SyncRequest>(r#"{"changes":[{"key":"a","timestamp":1,"deleted":"yes"}]}"#),
            "invalid_request"
        );
    }

    #[test]
    fn sync_errors_say_which_change() {
        let err = parse::<SyncRequest>(br#"{"changes":[{"key":"a","timestamp":1},{"key":"b","timestamp":"x"}]}"#)
            .err()
            .unwrap();
        assert!(err.message.starts_with("changes[1]:"), "{}", err.message);
        assert_eq!((err.index, err.key.as_deref()), (Some(1), Some("b")));
    }

    #[test]
    fn a_key_with_a_lone_surrogate_is_an_invalid_key_named_by_its_index() {
        for key in [r"x\ud800", r"x\udbff", r"\udc00y", r"a\ud800\ud800"] {
            let body = format!(r#"{{"changes":[{{"key":"ok","timestamp":1}},{{"key":"{key}","timestamp":1}}]}}"#);
            let err = parse::<SyncRequest>(body.as_bytes()).err().unwrap_or_else(|| panic!("{key} accepted"));
            assert_eq!((err.code, err.index), ("invalid_key", Some(1)), "{key}: {}", err.message);
            let body = format!(r#"{{"key":"{key}","value":1,"timestamp":1}}"#);
            assert_eq!(code::<SetRequest>(&body), "invalid_key", "{key}");
            let body = format!(r#"{{"key":"{key}","timestamp":1}}"#);
            assert_eq!(code::<RemoveRequest>(&body), "invalid_key", "{key}");
        }
        // A pair is one character, and fine.
        assert_eq!(code::<SetRequest>(r#"{"key":"x\ud83d\ude00","value":1,"timestamp":1}"#), "ok");
    }
}
