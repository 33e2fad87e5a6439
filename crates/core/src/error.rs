use thiserror::Error;

/// Every failure the core reports. Each maps to one stable [`ErrorKind`] that the JS API exposes
/// as `type`, and says whether retrying the same operation may succeed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CacheError {
    /// The key is empty, too long or contains a reserved character.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key (cut to 64 characters).
        key: String,
        /// Why it was refused.
        reason: String,
    },
    /// The value is not JSON.
    #[error("invalid value for {key:?}: {reason}")]
    InvalidValue {
        /// The key written.
        key: String,
        /// Why it was refused.
        reason: String,
    },
    /// The TTL is negative, not finite or too large.
    #[error("invalid ttl: {reason}")]
    InvalidTtl {
        /// Why it was refused.
        reason: String,
    },
    /// Storage is full even after the cache freed what it could; the value stays in memory.
    #[error("storage quota exceeded while persisting {key:?}; the value is kept in memory only")]
    QuotaExceeded {
        /// The key that could not be persisted.
        key: String,
    },
    /// A stored entry under the cache's prefix could not be read; it was skipped and left as is.
    #[error("corrupt or foreign storage entry {key:?} skipped: {reason}")]
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
    /// A message from another tab or a peer could not be understood; it was ignored.
    #[error("protocol error: {message}")]
    Protocol {
        /// What was wrong.
        message: String,
    },
    /// The backend refuses this write for good (too large for it, or invalid by its rules): it
    /// left the outbox and stays in this browser only, until the key is written again.
    #[error("the backend rejected the write of {key:?} for good; it is kept in this browser only: {reason}")]
    Rejected {
        /// The key written.
        key: String,
        /// What the backend said.
        reason: String,
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
    /// See [`CacheError::QuotaExceeded`].
    QuotaExceeded,
    /// See [`CacheError::StorageCorrupt`].
    StorageCorrupt,
    /// See [`CacheError::Storage`].
    Storage,
    /// See [`CacheError::Protocol`].
    Protocol,
    /// See [`CacheError::Rejected`].
    Rejected,
}

impl ErrorKind {
    /// The name used across the JS API (`INVALID_KEY`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidKey => "INVALID_KEY",
            ErrorKind::InvalidValue => "INVALID_VALUE",
            ErrorKind::InvalidTtl => "INVALID_TTL",
            ErrorKind::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorKind::StorageCorrupt => "STORAGE_CORRUPT",
            ErrorKind::Storage => "STORAGE_FAILED",
            ErrorKind::Protocol => "PROTOCOL",
            ErrorKind::Rejected => "REJECTED",
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
            CacheError::QuotaExceeded { .. } => ErrorKind::QuotaExceeded,
            CacheError::StorageCorrupt { .. } => ErrorKind::StorageCorrupt,
            CacheError::Storage { .. } => ErrorKind::Storage,
            CacheError::Protocol { .. } => ErrorKind::Protocol,
            CacheError::Rejected { .. } => ErrorKind::Rejected,
        }
    }

    /// Whether the same operation may succeed later without changing its input.
    pub fn retryable(&self) -> bool {
        matches!(self, CacheError::QuotaExceeded { .. } | CacheError::Storage { .. })
    }

    /// The key concerned, where there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            CacheError::InvalidKey { key, .. }
            | CacheError::InvalidValue { key, .. }
            | CacheError::QuotaExceeded { key }
            | CacheError::StorageCorrupt { key, .. }
            | CacheError::Rejected { key, .. } => Some(key),
            CacheError::Storage { key, .. } => key.as_deref(),
            _ => None,
        }
    }
}
