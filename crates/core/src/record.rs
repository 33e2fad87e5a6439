//! The format of one entry in storage: compact JSON, one storage key per cache key.
//!
//! `{"t":<ms>,"n":"<node>","l":<ttl ms>,"p":"<tag>","v":<value>}` for a value and
//! `{"t":<ms>,"n":"<node>","p":"<tag>","d":1}` for a tombstone. `p` is a short hash of the
//! cache's prefix: a cache with prefix `app_` must not read the entries of one with prefix
//! `app_x_`, whose storage keys also start with `app_`.
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::validate::MAX_SAFE_INTEGER;
use crate::{Entry, Stamp};

#[derive(Deserialize)]
struct Record<'a> {
    t: u64,
    #[serde(borrow)]
    n: std::borrow::Cow<'a, str>,
    #[serde(default)]
    l: u64,
    #[serde(borrow)]
    p: std::borrow::Cow<'a, str>,
    #[serde(default)]
    d: u8,
    #[serde(borrow, default)]
    v: Option<&'a RawValue>,
}

/// The tag that marks records as belonging to the cache with this prefix (FNV-1a, base 36).
pub fn prefix_tag(prefix: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in prefix.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    let mut out = Vec::new();
    loop {
        let digit = (hash % 36) as u8;
        out.push(if digit < 10 { b'0' + digit } else { b'a' + digit - 10 });
        hash /= 36;
        if hash == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Encodes an entry for storage. The value is already JSON text (validated where it entered the
/// cache), so it is concatenated rather than parsed again: this runs on every write.
pub fn encode_record(entry: &Entry, tag: &str) -> String {
    let node = serde_json::to_string(&entry.stamp.node).unwrap_or_else(|_| "\"\"".into());
    let mut out = String::with_capacity(48 + node.len() + entry.value.as_ref().map_or(0, String::len));
    out.push_str("{\"t\":");
    out.push_str(&entry.stamp.ts.to_string());
    out.push_str(",\"n\":");
    out.push_str(&node);
    out.push_str(",\"p\":\"");
    out.push_str(tag);
    out.push('"');
    match &entry.value {
        Some(json) => {
            if entry.ttl_ms != 0 {
                out.push_str(",\"l\":");
                out.push_str(&entry.ttl_ms.to_string());
            }
            out.push_str(",\"v\":");
            out.push_str(json);
        }
        None => out.push_str(",\"d\":1"),
    }
    out.push('}');
    out
}

/// What a stored string turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodedRecord {
    /// An entry of this cache.
    Mine(Entry),
    /// A well-formed record of another cache whose prefix starts with this one's.
    OtherCache,
}

/// Decodes a stored record; `Err` says why it is not a record of any cache (corrupt or foreign).
pub fn decode_record(text: &str, tag: &str) -> Result<DecodedRecord, String> {
    let record: Record = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if record.p != tag {
        return Ok(DecodedRecord::OtherCache);
    }
    if record.t > MAX_SAFE_INTEGER || record.l > MAX_SAFE_INTEGER {
        return Err("timestamp or ttl out of range".into());
    }
    let stamp = Stamp::new(record.t, record.n.into_owned());
    let entry = if record.d != 0 {
        Entry::tombstone(stamp)
    } else {
        let value = record.v.map_or("null", RawValue::get);
        Entry::value(stamp, record.l, value)
    };
    Ok(DecodedRecord::Mine(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_values_tombstones_and_null() {
        let tag = prefix_tag("app_");
        for entry in [
            Entry::value(Stamp::new(5, "n\"1"), 3000, r#"{"a":[1,2,"x"]}"#),
            Entry::value(Stamp::new(5, "n"), 0, "null"),
            Entry::tombstone(Stamp::new(7, "n")),
        ] {
            let text = encode_record(&entry, &tag);
            assert_eq!(decode_record(&text, &tag), Ok(DecodedRecord::Mine(entry)));
        }
    }

    #[test]
    fn other_caches_records_are_recognised() {
        let entry = Entry::value(Stamp::new(5, "n"), 0, "1");
        let text = encode_record(&entry, &prefix_tag("app_x_"));
        assert_eq!(decode_record(&text, &prefix_tag("app_")), Ok(DecodedRecord::OtherCache));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let tag = prefix_tag("p");
        for bad in ["", "{", "null", "42", "{\"t\":-1}", "{\"t\":1,\"n\":\"a\"}", "\u{0}\u{ffff}", "{\"t\":1e400}"] {
            assert!(decode_record(bad, &tag).is_err(), "{bad:?} accepted");
        }
        let huge = format!(r#"{{"t":{},"n":"a","p":"{tag}","v":1}}"#, u64::MAX);
        assert!(decode_record(&huge, &tag).is_err());
    }

    #[test]
    fn tags_differ_per_prefix() {
        assert_ne!(prefix_tag("a"), prefix_tag("b"));
        assert_eq!(prefix_tag("shared_mfe_cache_"), prefix_tag("shared_mfe_cache_"));
    }
}
