use crate::json::Quoted;
use thiserror::Error;

/// Every failure the cache reports, from the core to the JS API: one taxonomy. Each maps to one
/// stable [`ErrorKind`] that the JS API exposes as `type`, and says whether retrying the same
/// operation may succeed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CacheError {
    /// The key is empty, too long or contains a reserved character.
    #[error("invalid key {}: {reason}", Quoted(.key))]
    InvalidKey {
        /// The key (cut to 64 characters).
        key: String,
        /// Why it was refused.
        reason: String,
    },
    /// The value is not JSON.
    #[error("invalid value for {}: {reason}", Quoted(.key))]
    InvalidValue {
        /// The key written.
        key: String,
        /// Why it was refused.
        reason: String,
    },
    /// The TTL is negative, not finite, too large or an unknown duration.
    #[error("invalid ttl: {reason}")]
    InvalidTtl {
        /// Why it was refused.
        reason: String,
    },
    /// A constructor or `getOrFetch` option is invalid.
    #[error("{reason}")]
    InvalidOption {
        /// Which option and why.
        reason: String,
    },
    /// An argument of a call is invalid (an unknown event, a callback that is not a function).
    #[error("{reason}")]
    InvalidArgument {
        /// What was wrong.
        reason: String,
    },
    /// Storage is full even after the cache freed what it could; the value stays in memory.
    #[error("storage quota exceeded while persisting {}; the value is kept in memory only", Quoted(.key))]
    QuotaExceeded {
        /// The key that could not be persisted.
        key: String,
    },
    /// A stored entry under the cache's prefix could not be read; it was skipped and left as is.
    #[error("corrupt or foreign storage entry {} skipped: {reason}", Quoted(.key))]
    StorageCorrupt {
        /// The storage key.
        key: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Storage refused an operation for another reason (disabled, security error, a broken
    /// custom storage).
    #[error("storage failed: {message}")]
    Storage {
        /// The key being persisted, when the failure concerns one.
        key: Option<String>,
        /// What the storage said.
        message: String,
    },
    /// A message from another tab, another copy of the package or the backend could not be
    /// understood; it was ignored.
    #[error("protocol error: {message}")]
    Protocol {
        /// What was wrong.
        message: String,
    },
    /// The backend could not be reached, or did not answer in time.
    #[error("{message}")]
    Network {
        /// What happened.
        message: String,
    },
    /// The backend answered with an HTTP error.
    #[error("{message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// What it said.
        message: String,
    },
    /// The backend refused the credentials (401 or 403).
    #[error("{message}")]
    Unauthorized {
        /// The HTTP status.
        status: u16,
        /// What it said.
        message: String,
    },
    /// The backend refuses this write for good (too large for it, or invalid by its rules): it
    /// left the outbox and stays in this browser only, until the key is written again.
    #[error("the backend rejected the write of {} for good; it is kept in this browser only: {reason}", Quoted(.key))]
    Rejected {
        /// The key written.
        key: String,
        /// What the backend said.
        reason: String,
    },
    /// A `getOrFetch` loader failed with an error not worth retrying.
    #[error("loading {} failed: {message}", Quoted(.key))]
    FetchFailed {
        /// The key loaded.
        key: String,
        /// The loader's error.
        message: String,
    },
    /// A `getOrFetch` loader still failed after its retries.
    #[error("loading {} failed {attempts} times; last: {message}", Quoted(.key))]
    RetryExhausted {
        /// The key loaded.
        key: String,
        /// How many times the loader ran.
        attempts: u32,
        /// The last error.
        message: String,
    },
    /// A loaded value could not be stored.
    #[error("storing the loaded {} failed: {message}", Quoted(.key))]
    CacheSetFailed {
        /// The key loaded.
        key: String,
        /// Why.
        message: String,
        /// Whether storing may succeed later.
        retryable: bool,
    },
    /// The instance was disposed.
    #[error("the cache has been disposed")]
    Disposed,
    /// A custom storage (or listener) called back into the cache from inside one of its calls.
    #[error("the cache was called from inside one of its own storage calls")]
    Reentrant,
    /// Anything else: a bug.
    #[error("{message}")]
    Internal {
        /// What happened.
        message: String,
    },
}

/// The stable name of an error's kind, shown to JavaScript as `err.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// See [`CacheError::InvalidKey`].
    InvalidKey,
    /// See [`CacheError::InvalidValue`].
    InvalidValue,
    /// See [`CacheError::InvalidTtl`].
    InvalidTtl,
    /// See [`CacheError::InvalidOption`].
    InvalidOption,
    /// See [`CacheError::InvalidArgument`].
    InvalidArgument,
    /// See [`CacheError::QuotaExceeded`].
    QuotaExceeded,
    /// See [`CacheError::StorageCorrupt`].
    StorageCorrupt,
    /// See [`CacheError::Storage`].
    Storage,
    /// See [`CacheError::Protocol`].
    Protocol,
    /// See [`CacheError::Network`].
    Network,
    /// See [`CacheError::Server`].
    Server,
    /// See [`CacheError::Unauthorized`].
    Unauthorized,
    /// See [`CacheError::Rejected`].
    Rejected,
    /// See [`CacheError::FetchFailed`].
    FetchFailed,
    /// See [`CacheError::RetryExhausted`].
    RetryExhausted,
    /// See [`CacheError::CacheSetFailed`].
    CacheSetFailed,
    /// See [`CacheError::Disposed`].
    Disposed,
    /// See [`CacheError::Reentrant`].
    Reentrant,
    /// See [`CacheError::Internal`].
    Internal,
}

impl ErrorKind {
    /// The name used across the JS API (`INVALID_KEY`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidKey => "INVALID_KEY",
            ErrorKind::InvalidValue => "INVALID_VALUE",
            ErrorKind::InvalidTtl => "INVALID_TTL",
            ErrorKind::InvalidOption => "INVALID_OPTION",
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorKind::StorageCorrupt => "STORAGE_CORRUPT",
            ErrorKind::Storage => "STORAGE_FAILED",
            ErrorKind::Protocol => "PROTOCOL",
            ErrorKind::Network => "NETWORK",
            ErrorKind::Server => "SERVER",
            ErrorKind::Unauthorized => "UNAUTHORIZED",
            ErrorKind::Rejected => "REJECTED",
            ErrorKind::FetchFailed => "FETCH_FAILED",
            ErrorKind::RetryExhausted => "RETRY_EXHAUSTED",
            ErrorKind::CacheSetFailed => "CACHE_SET_FAILED",
            ErrorKind::Disposed => "DISPOSED",
            ErrorKind::Reentrant => "REENTRANT_CALL",
            ErrorKind::Internal => "INTERNAL",
        }
    }
}

/// Whether an HTTP status means "try again later": a server error, a timeout or rate limiting.
pub fn status_is_retryable(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

/// Node's error codes for a network that may come back.
const NETWORK_CODES: [&str; 7] = ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "ENETUNREACH", "EAI_AGAIN", "EPIPE"];

/// What a `getOrFetch` loader threw, as far as retrying it goes (the binding reads these fields
/// off the thrown value; absent ones are `None`).
#[derive(Debug, Default, Clone, Copy)]
pub struct ThrownError<'a> {
    /// Its own `retryable`, when it says.
    pub retryable: Option<bool>,
    /// Its `code`, or its `cause`'s (Node's network errors).
    pub codes: [Option<&'a str>; 2],
    /// Its `status`, or its `response`'s (HTTP clients' errors).
    pub status: Option<f64>,
    /// Its `name` (`TypeError` is what `fetch` rejects with when the network fails).
    pub name: Option<&'a str>,
    /// Its `message`.
    pub message: &'a str,
}

impl ThrownError<'_> {
    /// Whether the failure may go away by itself: it says so, it is a network failure, or its
    /// HTTP status means "later".
    pub fn is_retryable(&self) -> bool {
        if let Some(retryable) = self.retryable {
            return retryable;
        }
        if self.codes.iter().flatten().any(|code| NETWORK_CODES.contains(code)) {
            return true;
        }
        if let Some(status) = self.status {
            return status.fract() == 0.0 && (0.0..=f64::from(u16::MAX)).contains(&status) && status_is_retryable(status as u16);
        }
        // A window scan: `str::contains` would bring a whole substring searcher into the wasm.
        let mentions = |word: &[u8]| self.message.as_bytes().windows(word.len()).any(|w| w.eq_ignore_ascii_case(word));
        match self.name {
            Some("TypeError") => mentions(b"fetch") || mentions(b"network"),
            Some("TimeoutError") => true,
            _ => false,
        }
    }
}

impl CacheError {
    /// This error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CacheError::InvalidKey { .. } => ErrorKind::InvalidKey,
            CacheError::InvalidValue { .. } => ErrorKind::InvalidValue,
            CacheError::InvalidTtl { .. } => ErrorKind::InvalidTtl,
            CacheError::InvalidOption { .. } => ErrorKind::InvalidOption,
            CacheError::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            CacheError::QuotaExceeded { .. } => ErrorKind::QuotaExceeded,
            CacheError::StorageCorrupt { .. } => ErrorKind::StorageCorrupt,
            CacheError::Storage { .. } => ErrorKind::Storage,
            CacheError::Protocol { .. } => ErrorKind::Protocol,
            CacheError::Network { .. } => ErrorKind::Network,
            CacheError::Server { .. } => ErrorKind::Server,
            CacheError::Unauthorized { .. } => ErrorKind::Unauthorized,
            CacheError::Rejected { .. } => ErrorKind::Rejected,
            CacheError::FetchFailed { .. } => ErrorKind::FetchFailed,
            CacheError::RetryExhausted { .. } => ErrorKind::RetryExhausted,
            CacheError::CacheSetFailed { .. } => ErrorKind::CacheSetFailed,
            CacheError::Disposed => ErrorKind::Disposed,
            CacheError::Reentrant => ErrorKind::Reentrant,
            CacheError::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// Whether the same operation may succeed later without changing its input.
    pub fn retryable(&self) -> bool {
        match self {
            CacheError::QuotaExceeded { .. }
            | CacheError::Storage { .. }
            | CacheError::Network { .. }
            | CacheError::Reentrant => true,
            CacheError::Server { status, .. } => status_is_retryable(*status),
            CacheError::CacheSetFailed { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// The key concerned, where there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            CacheError::InvalidKey { key, .. }
            | CacheError::InvalidValue { key, .. }
            | CacheError::QuotaExceeded { key }
            | CacheError::StorageCorrupt { key, .. }
            | CacheError::Rejected { key, .. }
            | CacheError::FetchFailed { key, .. }
            | CacheError::RetryExhausted { key, .. }
            | CacheError::CacheSetFailed { key, .. } => Some(key),
            CacheError::Storage { key, .. } => key.as_deref(),
            _ => None,
        }
    }

    /// A protocol error with `message`.
    pub fn protocol(message: impl Into<String>) -> Self {
        CacheError::Protocol { message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_that_mean_later_are_retryable() {
        for status in [500, 502, 503, 408, 429] {
            assert!(CacheError::Server { status, message: String::new() }.retryable(), "{status}");
        }
        for status in [400, 404, 413, 422] {
            assert!(!CacheError::Server { status, message: String::new() }.retryable(), "{status}");
        }
        assert!(!CacheError::Unauthorized { status: 401, message: String::new() }.retryable());
        assert!(CacheError::Network { message: String::new() }.retryable());
    }

    #[test]
    fn a_loaders_failure_is_retried_when_it_may_go_away_by_itself() {
        let thrown = |f: fn(&mut ThrownError<'static>)| {
            let mut e = ThrownError { message: "boom", ..ThrownError::default() };
            f(&mut e);
            e.is_retryable()
        };
        assert!(!thrown(|_| ()), "an error that says nothing is final");
        assert!(thrown(|e| e.retryable = Some(true)));
        assert!(!thrown(|e| {
            e.retryable = Some(false);
            e.status = Some(503.0);
        }), "its own word comes first");
        assert!(thrown(|e| e.codes = [Some("ECONNRESET"), None]));
        assert!(thrown(|e| e.codes = [Some("ERR_X"), Some("ENOTFOUND")]), "the cause's code counts");
        assert!(!thrown(|e| e.codes = [Some("ENOENT"), None]));
        assert!(thrown(|e| e.status = Some(503.0)));
        assert!(thrown(|e| e.status = Some(429.0)));
        assert!(!thrown(|e| e.status = Some(404.0)));
        assert!(!thrown(|e| e.status = Some(5e9)), "not a status");
        assert!(thrown(|e| {
            e.name = Some("TypeError");
            e.message = "Failed to fetch";
        }));
        assert!(thrown(|e| {
            e.name = Some("TypeError");
            e.message = "NetworkError when attempting to fetch resource.";
        }));
        assert!(!thrown(|e| {
            e.name = Some("TypeError");
            e.message = "x is not a function";
        }), "a bug in the loader is final");
        assert!(thrown(|e| e.name = Some("TimeoutError")));
    }

    #[test]
    fn kinds_have_the_api_names() {
        assert_eq!(CacheError::Reentrant.kind().as_str(), "REENTRANT_CALL");
        assert_eq!(CacheError::Storage { key: None, message: String::new() }.kind().as_str(), "STORAGE_FAILED");
        assert_eq!(
            CacheError::RetryExhausted { key: "k".into(), attempts: 4, message: "x".into() }.key(),
            Some("k")
        );
    }
}
