//! The backend protocol (the README's wire protocol).
//!
//! Field names are the seed's. Extensions (`node`, `cursor`) are optional, so a peer that
//! speaks only the seed protocol can ignore them and still be understood.
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::validate::{is_valid_node, ttl_ms_from_secs, validate_key, MAX_SAFE_INTEGER};
use crate::{CacheError, Entry, Stamp};

/// One write as it travels: `{ key, value, ttl, timestamp, deleted }` (+ `node`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    /// The cache key.
    #[serde(deserialize_with = "key")]
    pub key: String,
    /// The value (absent or `null` on a remove).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Box<RawValue>>,
    /// Time to live in seconds; 0 never expires.
    #[serde(default)]
    pub ttl: f64,
    /// Milliseconds since the Unix epoch, from the writer's hybrid logical clock.
    #[serde(deserialize_with = "timestamp")]
    pub timestamp: u64,
    /// Whether this is a remove.
    #[serde(default)]
    pub deleted: bool,
    /// Extension: the writer's id, which breaks timestamp ties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Extension: when the writer wrote it by its wall clock, where that differs from `timestamp`
    /// (the TTL runs from it; see [`Entry::written_at`]).
    #[serde(default, rename = "writtenAt", skip_serializing_if = "Option::is_none", deserialize_with = "optional_timestamp")]
    pub written_at: Option<u64>,
}

/// A clear: `{ timestamp }` (+ `node`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClearRequest {
    /// Milliseconds since the Unix epoch, from the writer's hybrid logical clock.
    #[serde(deserialize_with = "timestamp")]
    pub timestamp: u64,
    /// Extension: the writer's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// `POST /sync` request body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequest {
    /// The `timestamp` (cursor) the server last returned; 0 at first.
    #[serde(default, deserialize_with = "timestamp")]
    pub last_sync: u64,
    /// Local changes not yet acknowledged.
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// `POST /sync` response body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncResponse {
    /// Every change the server accepted after `lastSync`.
    pub updates: Vec<Change>,
    /// The server's cursor, to send back as the next `lastSync`.
    #[serde(deserialize_with = "timestamp")]
    pub timestamp: u64,
    /// Extension: the server's wall clock when it answered (ms since the Unix epoch), from which
    /// a client learns how far its own clock is off.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_timestamp")]
    pub now: Option<u64>,
}

/// `POST /set` request body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetRequest {
    /// The cache key.
    #[serde(deserialize_with = "key")]
    pub key: String,
    /// The value.
    pub value: Box<RawValue>,
    /// Time to live in seconds.
    #[serde(default)]
    pub ttl: f64,
    /// The write's timestamp.
    #[serde(deserialize_with = "timestamp")]
    pub timestamp: u64,
    /// Extension: the writer's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// `POST /remove` request body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveRequest {
    /// The cache key.
    #[serde(deserialize_with = "key")]
    pub key: String,
    /// The remove's timestamp.
    #[serde(deserialize_with = "timestamp")]
    pub timestamp: u64,
    /// Extension: the writer's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A key: a JSON string whose escapes decode to Unicode text. A lone surrogate escape
/// (`"x\ud800"`, which `JSON.stringify` writes for a JS string holding one) has no UTF-8 form, so
/// two such keys would alias; it is refused with a message that says so.
pub fn key<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    let raw = Box::<RawValue>::deserialize(de)?;
    serde_json::from_str::<String>(raw.get()).map_err(|err| {
        let what = err.to_string();
        if what.contains("surrogate") || what.contains("hex escape") {
            serde::de::Error::custom(format!("key contains a lone surrogate (U+D800 to U+DFFF): {what}"))
        } else {
            serde::de::Error::custom(format!("key must be a string: {what}"))
        }
    })
}

fn timestamp<'de, D: Deserializer<'de>>(de: D) -> Result<u64, D::Error> {
    // Seed peers send `Date.now()`, which JSON may carry as `1.7e12`; accept any integral,
    // non-negative number a JS peer can hold exactly, and refuse the rest.
    let n = f64::deserialize(de)?;
    if n.is_finite() && n >= 0.0 && n <= MAX_SAFE_INTEGER as f64 && n.fract() == 0.0 {
        Ok(n as u64)
    } else {
        Err(serde::de::Error::custom("timestamp must be an integer in 0..=2^53-1"))
    }
}

fn optional_timestamp<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    timestamp(de).map(Some)
}

impl Change {
    /// The wire form of a key's write.
    pub fn from_entry(key: &str, entry: &Entry) -> Change {
        Change {
            key: key.to_owned(),
            value: entry.value.as_ref().and_then(|json| RawValue::from_string(json.clone()).ok()),
            ttl: entry.ttl_ms as f64 / 1000.0,
            timestamp: entry.stamp.ts,
            deleted: entry.value.is_none(),
            node: Some(entry.stamp.node.clone()),
            written_at: (entry.written_at != entry.stamp.ts).then_some(entry.written_at),
        }
    }

    /// Validates the change and turns it into a key and its write.
    pub fn into_entry(self) -> Result<(String, Entry), CacheError> {
        validate_key(&self.key)?;
        if self.node.as_deref().is_some_and(|n| !is_valid_node(n)) {
            return Err(CacheError::Protocol { message: format!("invalid writer id in the change of {}", crate::json::Quoted(&self.key)) });
        }
        let stamp = Stamp::new(self.timestamp, self.node.unwrap_or_default());
        let written_at = self.written_at.unwrap_or(stamp.ts);
        if self.deleted {
            return Ok((self.key, Entry::tombstone(stamp).written_at(written_at)));
        }
        let ttl_ms = ttl_ms_from_secs(self.ttl)?;
        let json = self.value.map_or_else(|| "null".to_owned(), |raw| String::from(Box::<str>::from(raw)));
        Ok((self.key, Entry::value(stamp, ttl_ms, json).written_at(written_at)))
    }
}

impl ClearRequest {
    /// The wire form of a clear epoch.
    pub fn from_stamp(stamp: &Stamp) -> Self {
        ClearRequest { timestamp: stamp.ts, node: Some(stamp.node.clone()) }
    }

    /// The clear's epoch.
    pub fn stamp(&self) -> Stamp {
        Stamp::new(self.timestamp, self.node.clone().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_change_without_extensions_parses() {
        let c: Change = serde_json::from_str(
            r#"{"key":"user","value":{"name":"John"},"ttl":3600,"timestamp":1700000000000,"deleted":false}"#,
        )
        .unwrap();
        let (key, entry) = c.into_entry().unwrap();
        assert_eq!(key, "user");
        assert_eq!(entry.value.as_deref(), Some(r#"{"name":"John"}"#));
        assert_eq!(entry.ttl_ms, 3_600_000);
        assert_eq!(entry.stamp, Stamp::new(1_700_000_000_000, ""));
    }

    #[test]
    fn float_timestamps_that_are_integral_are_accepted_others_refused() {
        assert!(serde_json::from_str::<ClearRequest>(r#"{"timestamp":1.7e12}"#).is_ok());
        for bad in [r#"{"timestamp":1.5}"#, r#"{"timestamp":-1}"#, r#"{"timestamp":"1"}"#, r#"{"timestamp":1e300}"#] {
            assert!(serde_json::from_str::<ClearRequest>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_trip_through_the_wire() {
        let entry = Entry::value(Stamp::new(42, "n1"), 1500, "[1,2]");
        let text = serde_json::to_string(&Change::from_entry("k", &entry)).unwrap();
        let back: Change = serde_json::from_str(&text).unwrap();
        assert_eq!(back.into_entry().unwrap(), ("k".into(), entry));
        let skewed = Entry::value(Stamp::new(86_400_042, "n1"), 1500, "1").written_at(40);
        let text = serde_json::to_string(&Change::from_entry("k", &skewed)).unwrap();
        assert!(text.contains(r#""writtenAt":40"#), "{text}");
        assert_eq!(serde_json::from_str::<Change>(&text).unwrap().into_entry().unwrap().1, skewed);
        let tomb = Entry::tombstone(Stamp::new(43, "n1"));
        let text = serde_json::to_string(&Change::from_entry("k", &tomb)).unwrap();
        assert_eq!(serde_json::from_str::<Change>(&text).unwrap().into_entry().unwrap().1, tomb);
    }

    #[test]
    fn a_null_value_is_a_value_not_a_remove() {
        let c: Change = serde_json::from_str(r#"{"key":"k","value":null,"ttl":0,"timestamp":1,"deleted":false}"#).unwrap();
        assert_eq!(c.into_entry().unwrap().1.value.as_deref(), Some("null"));
    }

    #[test]
    fn invalid_changes_are_typed_errors() {
        let c: Change = serde_json::from_str(r#"{"key":"","timestamp":1}"#).unwrap();
        assert_eq!(c.into_entry().unwrap_err().kind(), crate::ErrorKind::InvalidKey);
        let c: Change = serde_json::from_str(r#"{"key":"k","value":1,"ttl":-5,"timestamp":1}"#).unwrap();
        assert_eq!(c.into_entry().unwrap_err().kind(), crate::ErrorKind::InvalidTtl);
    }
}
