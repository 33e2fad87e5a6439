use crate::{CacheError, Stamp};

/// The longest key accepted, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// The largest integer a JavaScript number holds exactly; timestamps and TTLs above it are refused
/// because a JS peer could not represent them.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Checks a user key: non-empty, at most [`MAX_KEY_BYTES`], and free of U+0000, which the storage
/// layout reserves for the cache's own bookkeeping keys.
pub fn validate_key(key: &str) -> Result<(), CacheError> {
    let reason = if key.is_empty() {
        "key must not be empty"
    } else if key.len() > MAX_KEY_BYTES {
        "key is longer than 1024 bytes"
    } else if key.contains('\0') {
        "key must not contain U+0000"
    } else {
        return Ok(());
    };
    Err(CacheError::InvalidKey { key: key.chars().take(64).collect(), reason: reason.into() })
}

/// The longest writer id accepted.
pub const MAX_NODE_LEN: usize = 64;

/// Whether `node` is an acceptable writer id: up to 64 of `A-Z a-z 0-9 _ - . :` (empty for peers
/// that speak only the seed protocol). Ids never need escaping in records or messages.
pub fn is_valid_node(node: &str) -> bool {
    node.len() <= MAX_NODE_LEN && node.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// Converts a TTL in seconds (as the JS API and the wire protocol give it) to milliseconds.
/// Refuses negative, non-finite and absurdly large values rather than guessing.
pub fn ttl_ms_from_secs(ttl_secs: f64) -> Result<u64, CacheError> {
    if !ttl_secs.is_finite() || ttl_secs < 0.0 {
        return Err(CacheError::InvalidTtl { reason: "ttl must be a finite number of seconds >= 0".into() });
    }
    let ms = (ttl_secs * 1000.0).round();
    if ms > MAX_SAFE_INTEGER as f64 {
        return Err(CacheError::InvalidTtl { reason: "ttl is too large".into() });
    }
    // A positive TTL under half a millisecond must not round to 0, which means "never expires".
    Ok(if ttl_secs > 0.0 { (ms as u64).max(1) } else { 0 })
}

/// A TTL in seconds, from a number of seconds or a duration such as `"90"`, `"30s"`, `"5m"`,
/// `"1h 30m"`, `"1.5h"`, `"2 days"`, `"500ms"` (units `ms s m h d w` and their long forms).
/// `what` names the TTL in the error (`INVALID_TTL`). Exactly one of `seconds` and `text` is the
/// value given; neither means it was of another type.
pub fn parse_ttl(seconds: Option<f64>, text: Option<&str>, what: &str) -> Result<f64, CacheError> {
    let shown = || match (seconds, text) {
        (Some(n), _) => show_number(n),
        (_, Some(t)) => crate::json::Quoted(t).to_string(),
        _ => "a value of another type".into(),
    };
    let bad = |why: &str| CacheError::InvalidTtl { reason: format!("{what} {why}, got {}", shown()) };
    if let Some(n) = seconds {
        return if n.is_finite() && n >= 0.0 { Ok(n) } else { Err(bad("must be a finite number of seconds >= 0")) };
    }
    let Some(text) = text else { return Err(bad("must be seconds or a duration such as \"5m\", \"1h\", \"2 days\"")) };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad("must not be empty"));
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        // Checked splits (the offsets are on ASCII boundaries anyway): an indexing panic would
        // pull the wasm's whole Debug formatting of strings in.
        let (number, after) = rest.split_at_checked(digits).unwrap_or((rest, ""));
        let Some(value) = decimal(number) else {
            return Err(bad("is not a duration (use e.g. \"30s\", \"5m\", \"1h 30m\", \"2 days\")"));
        };
        rest = after.trim_start();
        let letters = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let (word, after) = rest.split_at_checked(letters).unwrap_or((rest, ""));
        let unit = word.to_ascii_lowercase();
        let scale = match unit.as_str() {
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "ms" | "msec" | "millisecond" | "milliseconds" => 0.001,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "week" | "weeks" => 604_800.0,
            _ => return Err(bad(&format!("has an unknown unit {} (ms, s, m, h, d, w)", crate::json::Quoted(word)))),
        };
        total += value * scale;
        rest = after.trim_start();
    }
    if total.is_finite() {
        Ok(total)
    } else {
        Err(bad("is too large"))
    }
}

/// `12`, `1.5`: digits with at most one inner point. Written out rather than `str::parse::<f64>`,
/// whose correctly rounded parser costs the wasm several KB; this one is exact up to 15
/// significant digits (the quotient of two exact doubles), far past any duration's precision.
fn decimal(text: &str) -> Option<f64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || (text.contains('.') && fraction.is_empty()) || !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value = 0.0;
    for b in whole.bytes().chain(fraction.bytes()) {
        value = value * 10.0 + f64::from(b - b'0');
    }
    let mut scale = 1.0;
    for _ in 0..fraction.len() {
        scale *= 10.0;
    }
    Some(value / scale)
}

/// A number as JavaScript's `String(n)` shows the ones a TTL check refuses (negative, NaN,
/// infinite), to the millisecond; written out because `f64`'s `Display` costs the wasm ~20 KB.
fn show_number(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let millis = (n.abs() * 1000.0).round();
    if millis > MAX_SAFE_INTEGER as f64 {
        return if n < 0.0 { "a huge negative number" } else { "a huge number" }.into();
    }
    let millis = millis as u64;
    let sign = if n < 0.0 && millis > 0 { "-" } else { "" };
    let fraction = format!("{:03}", millis % 1000);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{sign}{}", millis / 1000)
    } else {
        format!("{sign}{}.{fraction}", millis / 1000)
    }
}

/// The latest stamp accepted from elsewhere: the end of the year 9999 (UTC). Far past any clock
/// that is merely wrong, and far below 2^53-1, where the hybrid clock would stop: a peer that
/// sent a stamp there would make every later write of every adopter carry that same stamp, and
/// a second write of a key would be taken for the first.
pub const MAX_STAMP_MS: u64 = 253_402_300_799_999;

/// Checks that a stamp from another tab, peer or server is one this cache can adopt: a timestamp a
/// JS peer holds exactly and a well-formed writer id. A stamp far ahead of this machine's clock is
/// adopted like any other: the hybrid clock must order later writes after it, and since the TTL
/// of a write runs from the writer's own wall clock ([`crate::Entry::written_at`]), a clock that
/// is days fast elsewhere stretches no expiry here.
pub fn check_remote_stamp(stamp: &Stamp) -> Result<(), CacheError> {
    if stamp.ts > MAX_STAMP_MS {
        return Err(CacheError::Protocol { message: format!("a write stamped {} ms is after the year 9999", stamp.ts) });
    }
    if !is_valid_node(&stamp.node) {
        return Err(CacheError::Protocol { message: "invalid writer id".into() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(validate_key("user").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("a\0b").is_err());
        assert!(validate_key(&"x".repeat(1025)).is_err());
        assert!(validate_key(&"x".repeat(1024)).is_ok());
    }

    #[test]
    fn nodes() {
        assert!(is_valid_node(""));
        assert!(is_valid_node("abc-1.2:x_Y"));
        assert!(!is_valid_node("a\"b"));
        assert!(!is_valid_node("a b"));
        assert!(!is_valid_node(&"n".repeat(65)));
    }

    #[test]
    fn ttls() {
        assert_eq!(ttl_ms_from_secs(0.0).unwrap(), 0);
        assert_eq!(ttl_ms_from_secs(1.5).unwrap(), 1500);
        assert!(ttl_ms_from_secs(-1.0).is_err());
        assert!(ttl_ms_from_secs(f64::NAN).is_err());
        assert!(ttl_ms_from_secs(f64::INFINITY).is_err());
        assert!(ttl_ms_from_secs(1e300).is_err());
        assert_eq!(ttl_ms_from_secs(0.0004).unwrap(), 1, "a positive ttl never means forever");
    }

    #[test]
    fn ttls_are_seconds_or_durations() {
        let ttl = |t: &str| parse_ttl(None, Some(t), "ttl");
        assert_eq!(parse_ttl(Some(90.0), None, "ttl"), Ok(90.0));
        for (text, secs) in [
            ("90", 90.0),
            ("30s", 30.0),
            ("5m", 300.0),
            ("1h 30m", 5400.0),
            ("1.5h", 5400.0),
            ("2 days", 172_800.0),
            ("1 week", 604_800.0),
            ("500ms", 0.5),
            (" 1H ", 3600.0),
        ] {
            assert_eq!(ttl(text), Ok(secs), "{text}");
        }
        for bad in ["", "  ", "5x", "m5", "1..5s", ".5s", "5.s", "-5s", "5 m m"] {
            let err = ttl(bad).expect_err(bad);
            assert_eq!(err.kind(), crate::ErrorKind::InvalidTtl, "{bad}");
        }
        assert!(parse_ttl(Some(-1.0), None, "ttl").is_err());
        assert!(parse_ttl(Some(f64::NAN), None, "ttl").is_err());
        assert!(parse_ttl(None, None, "option defaultTTL").unwrap_err().to_string().contains("option defaultTTL"));
        assert_eq!(ttl("0.1"), Ok(0.1));
        assert_eq!(ttl("12.375m"), Ok(742.5));
        assert!(ttl("1e3").is_err(), "no exponents in durations");
    }

    #[test]
    fn refused_ttls_are_shown_as_javascript_shows_them() {
        let shown = |n: f64| parse_ttl(Some(n), None, "ttl").unwrap_err().to_string();
        assert!(shown(-5.0).ends_with("got -5"), "{}", shown(-5.0));
        assert!(shown(-1.25).ends_with("got -1.25"), "{}", shown(-1.25));
        assert!(shown(f64::NAN).ends_with("got NaN"));
        assert!(shown(f64::NEG_INFINITY).ends_with("got -Infinity"));
        assert!(shown(-1e300).ends_with("got a huge negative number"));
    }

    #[test]
    fn remote_stamps_are_checked_for_range_and_writer_not_for_skew() {
        let days_ahead = 1_000_000 + 3 * 86_400_000;
        assert!(check_remote_stamp(&Stamp::new(days_ahead, "a")).is_ok());
        assert!(check_remote_stamp(&Stamp::new(MAX_STAMP_MS, "a")).is_ok());
        assert!(check_remote_stamp(&Stamp::new(MAX_STAMP_MS + 1, "a")).is_err());
        assert!(check_remote_stamp(&Stamp::new(MAX_SAFE_INTEGER, "a")).is_err(), "the hybrid clock would stop there");
        assert!(check_remote_stamp(&Stamp::new(1, "a b")).is_err());
    }
}
