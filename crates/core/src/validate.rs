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

/// Checks that a stamp from another tab, peer or server is one this cache can adopt: a timestamp a
/// JS peer holds exactly and a well-formed writer id. A stamp far ahead of this machine's clock is
/// adopted like any other: the hybrid clock must order later writes after it, and since the TTL
/// of a write runs from the writer's own wall clock ([`crate::Entry::written_at`]), a clock that
/// is days fast elsewhere stretches no expiry here.
pub fn check_remote_stamp(stamp: &Stamp) -> Result<(), CacheError> {
    if stamp.ts > MAX_SAFE_INTEGER {
        return Err(CacheError::Protocol { message: format!("a write stamped {} ms is beyond 2^53-1", stamp.ts) });
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
    fn remote_stamps_are_checked_for_range_and_writer_not_for_skew() {
        let days_ahead = 1_000_000 + 3 * 86_400_000;
        assert!(check_remote_stamp(&Stamp::new(days_ahead, "a")).is_ok());
        assert!(check_remote_stamp(&Stamp::new(MAX_SAFE_INTEGER, "a")).is_ok());
        assert!(check_remote_stamp(&Stamp::new(MAX_SAFE_INTEGER + 1, "a")).is_err());
        assert!(check_remote_stamp(&Stamp::new(1, "a b")).is_err());
    }
}
