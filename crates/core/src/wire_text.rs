//! Writing the protocol's JSON directly (the wire protocol): `Change` objects and clears. Values are
//! stored as JSON text that was validated when it entered the cache or the server, so they are
//! concatenated, not parsed again — this runs for every change a client sends and every update a
//! server answers. Both sides use it, so they write one format. (No serde: the wasm client has
//! no JSON library.)
use crate::{json, Entry, Stamp};

/// Milliseconds as a JSON number of seconds, exact, without floating point formatting.
pub fn seconds(ms: u64) -> String {
    let (whole, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:03}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Appends `{"key":…,"value":…,"ttl":…,"deleted":…,"timestamp":…,"node":"…"}`, and
/// `"writtenAt":…` where the write was written at another time than its stamp.
pub fn write_change(out: &mut String, key: &str, entry: &Entry) {
    out.push_str("{\"key\":");
    json::write_string(out, key);
    match &entry.value {
        Some(value) => {
            out.push_str(",\"value\":");
            out.push_str(value);
            out.push_str(",\"ttl\":");
            out.push_str(&seconds(entry.ttl_ms));
            out.push_str(",\"deleted\":false");
        }
        None => out.push_str(",\"value\":null,\"ttl\":0,\"deleted\":true"),
    }
    out.push_str(",\"timestamp\":");
    out.push_str(&entry.stamp.ts.to_string());
    out.push_str(",\"node\":");
    json::write_string(out, &entry.stamp.node);
    if entry.written_at != entry.stamp.ts {
        out.push_str(",\"writtenAt\":");
        out.push_str(&entry.written_at.to_string());
    }
    out.push('}');
}

/// Appends `{"timestamp":…,"node":"…"}` (a clear).
pub fn write_clear(out: &mut String, epoch: &Stamp) {
    out.push_str("{\"timestamp\":");
    out.push_str(&epoch.ts.to_string());
    out.push_str(",\"node\":");
    json::write_string(out, &epoch.node);
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_exact() {
        assert_eq!(seconds(0), "0");
        assert_eq!(seconds(3_600_000), "3600");
        assert_eq!(seconds(1_500), "1.5");
        assert_eq!(seconds(1), "0.001");
        assert_eq!(seconds(10_250), "10.25");
    }

    #[test]
    fn changes_are_json() {
        let mut out = String::new();
        write_change(&mut out, "k\"ey", &Entry::value(Stamp::new(5, "n"), 2500, r#"{"a":[1]}"#));
        assert_eq!(out, r#"{"key":"k\"ey","value":{"a":[1]},"ttl":2.5,"deleted":false,"timestamp":5,"node":"n"}"#);
        out.clear();
        write_change(&mut out, "k", &Entry::tombstone(Stamp::new(6, "")));
        assert_eq!(out, r#"{"key":"k","value":null,"ttl":0,"deleted":true,"timestamp":6,"node":""}"#);
        out.clear();
        write_clear(&mut out, &Stamp::new(7, "m"));
        assert_eq!(out, r#"{"timestamp":7,"node":"m"}"#);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn what_is_written_reads_back_through_the_wire_types() {
        for entry in [
            Entry::value(Stamp::new(42, "n1"), 1500, "[1,2]"),
            Entry::value(Stamp::new(90_000_042, "n1"), 1500, "[1,2]").written_at(42),
            Entry::tombstone(Stamp::new(90_000_042, "n1")).written_at(7),
        ] {
            let mut out = String::new();
            write_change(&mut out, "k", &entry);
            let change: crate::wire::Change = serde_json::from_str(&out).unwrap();
            assert_eq!(change.into_entry().unwrap(), ("k".into(), entry));
        }
    }
}
