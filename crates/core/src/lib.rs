//! Platform-free core of `mfe-shared-cache`.
//!
//! Everything that decides *what the cache contains* lives here and is tested natively: the write
//! order ([`Stamp`]), the hybrid logical clock ([`HybridClock`]), the merge rule with tombstones and
//! clear epochs ([`Replica`]), TTL against an injected [`Clock`], the storage record format, the
//! persistent [`Cache`] engine over any [`Storage`], the sync [`Outbox`], and the wire types of the
//! backend protocol ([`wire`]). Adapters (the wasm client, the server) own I/O and time.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod backoff;
mod batch;
mod cache;
pub mod client;
mod clock;
mod entry;
mod error;
mod hash;
mod hlc;
mod key_queue;
pub mod json;
pub mod json_read;
pub mod message;
mod pattern;
mod record;
mod replica;
mod stamp;
mod storage;
mod sync;
mod validate;
#[cfg(feature = "serde")]
pub mod wire;
pub mod wire_text;

pub use backoff::Backoff;
pub use batch::{sync_body, BatchLimits, Refusal, DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_CHANGES};
pub use cache::{Cache, CacheConfig, FlushReport, Reach, SyncBatch, TabWrite, CLOCK_OFFSET_TOLERANCE_MS};
pub use clock::{Clock, ManualClock};
pub use entry::Entry;
pub use error::{status_is_retryable, CacheError, ErrorKind, ThrownError};
pub use hash::{hashes_seeded, seed_hashes};
pub use hlc::{HybridClock, HLC_LEAD_TOLERANCE_MS};
pub use record::{
    decode_clock_offset, decode_cursor, decode_meta, decode_meta_flagged, decode_record, decode_record_pending,
    encode_cursor, encode_meta, encode_meta_flagged, encode_clock_offset, encode_record, encode_record_pending,
    prefix_tag, check_record_stamps, DecodedRecord, Pending,
};
pub use pattern::{KeyPattern, MAX_PATTERN_BYTES};
pub use replica::{MergeOutcome, Replica};
pub use stamp::Stamp;
pub use storage::{Fetched, MemoryStorage, Scanned, Storage, StorageError};
pub use sync::{Realtime, SyncEngine, SyncPolicy, SyncState, ABSENT_RECHECK_MS};
pub use validate::{
    check_remote_stamp, is_valid_node, parse_ttl, ttl_ms_from_secs, validate_key, MAX_KEY_BYTES, MAX_NODE_LEN,
    MAX_SAFE_INTEGER, MAX_STAMP_MS,
};
