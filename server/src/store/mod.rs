//! Where namespaces live: the [`Store`] trait and its implementations.
//!
//! A store only keeps rows; *what* to keep is decided by [`crate::namespace`], which runs the
//! core's merge rule inside each store's transaction through the small [`NsWrite`] / [`NsRead`]
//! traits. So every store (redb, memory, Redis) applies exactly the same rule, and the same
//! test-suite (`tests/store.rs`) runs against each.
//!
//! Per namespace a store keeps:
//! - entries: key → the key's latest write ([`Entry`]) and the sequence number it was accepted at;
//! - by-sequence: seq → key, one row per entry (the row of a replaced write is deleted), so a
//!   delta is a range scan;
//! - meta: the cursor (the last sequence number issued), the clear epoch, and the GC floor.
//!
//! The cursor moves on every change of what a namespace holds (an accepted write, a clear, an
//! invalidation, a garbage collection that forgot something), so it doubles as the namespace's
//! content version: `/entries` ETags and the `/stats` census cache are keyed by it.
pub mod memory;
pub mod redb;
pub mod redis;

mod codec;
mod redis_eviction;
mod redis_group;
mod redb_recovery;
mod redis_layout;
mod redis_scripts;
mod redis_snapshot;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use mfe_shared_cache_core::{Entry, KeyPattern, MergeOutcome, Stamp, MAX_SAFE_INTEGER};

pub use self::memory::MemoryStore;
pub use self::redb::RedbStore;
pub use self::redis::RedisStore;

/// A store operation in flight. Boxed so that `dyn Store` works (the server picks the store at
/// run time) without an `async-trait` dependency.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A failure of the storage itself (never of the input, which is validated before it gets here).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded database failed (a corrupt file, a misuse); I/O failures are [`StoreError::Io`].
    #[error("database error: {0}")]
    Database(::redb::Error),
    /// The embedded database could not read or write its file (a full disk, an I/O error). The
    /// store reopens the file and recovers by itself once the disk can take writes again, so it
    /// is worth retrying later (HTTP 503).
    #[error("the database file failed: {0}")]
    Io(String),
    /// A stored row could not be decoded.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The store was shut down or its worker died, or Redis cannot be reached or cannot serve
    /// now (refused, timed out, loading, cluster down): worth retrying later (HTTP 503).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with an error that retrying will not fix, or is misconfigured.
    #[error("Redis error: {0}")]
    Redis(String),
    /// A Redis master's `maxmemory-policy` may evict this server's keys (`allkeys-*`): once Redis
    /// is full, acknowledged writes would vanish without an error.
    #[error(
        "Redis {node} runs with maxmemory-policy {policy}, which may evict this server's keys when \
         Redis is full and so silently lose acknowledged writes: set maxmemory-policy noeviction \
         (CONFIG SET maxmemory-policy noeviction, and in redis.conf; a volatile-* policy is safe too, \
         as this server sets no TTL on its keys), or start with --redis-allow-eviction \
         (MFE_CACHE_REDIS_ALLOW_EVICTION=1) to accept that loss"
    )]
    EvictingRedis {
        /// The master (`host:port`, or the URL of a single Redis with its password hidden).
        node: String,
        /// Its `maxmemory-policy`.
        policy: String,
    },
}

/// One key's latest write as stored, with the sequence number it was accepted at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The write.
    pub entry: Entry,
    /// Its position in the namespace's delivery order.
    pub seq: u64,
}

/// The part of a stored entry that ordering, clears and GC need (no value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The write's stamp.
    pub stamp: Stamp,
    /// Its sequence number.
    pub seq: u64,
    /// Whether it is a remove.
    pub tombstone: bool,
    /// Since when it has been dead (see [`Entry::dead_since`]).
    pub dead_since: Option<u64>,
    /// When its writer wrote it (see [`Entry::written_at`]).
    pub written_at: u64,
}

impl Header {
    /// The header of a stored entry.
    pub fn of(stored: &Stored) -> Self {
        let entry = &stored.entry;
        Header::from_parts(entry.stamp.clone(), entry.ttl_ms, entry.written_at, entry.value.is_none(), stored.seq)
    }

    /// A header from its parts. Expiry comes from the core's [`Entry::dead_since`] (on a value-less
    /// stand-in, so no value is copied) so that the server expires exactly as the clients do.
    pub fn from_parts(stamp: Stamp, ttl_ms: u64, written_at: u64, tombstone: bool, seq: u64) -> Self {
        let probe = if tombstone { Entry::tombstone(stamp) } else { Entry::value(stamp, ttl_ms, String::new()) };
        let probe = probe.written_at(written_at);
        let dead_since = probe.dead_since();
        Header { stamp: probe.stamp, seq, tombstone, dead_since, written_at: probe.written_at }
    }

    /// Whether a reader at `now_ms` sees a value (the core's [`Entry::is_live`]).
    pub fn is_live(&self, now_ms: u64) -> bool {
        !self.tombstone && self.dead_since.is_none_or(|at| now_ms < at)
    }
}

/// A namespace's bookkeeping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// The last sequence number issued (0: nothing accepted yet).
    pub cursor: u64,
    /// The newest clear accepted.
    pub epoch: Option<Stamp>,
    /// The sequence number the clear was accepted at.
    pub epoch_seq: u64,
    /// The newest stamp garbage collection forgot: a write at or before it could resurrect a
    /// collected remove, so it is refused (see [`crate::namespace`]).
    pub floor: Option<Stamp>,
    /// The highest timestamp the namespace has accepted (writes, clears, invalidations): the
    /// namespace's own notion of the time, which the server's clock may lag but never push
    /// (see [`crate::namespace`]). 0 for namespaces written before it was kept.
    pub clock: u64,
}

impl Meta {
    /// Issues the next sequence number: above the last one, and never below the wall clock.
    ///
    /// Why the wall clock: a cursor that starts from the time, not from 1, keeps growing across a
    /// wipe of the store, so a client holding a cursor from the old data is (almost always) still
    /// below the new cursor and gets every new write; and seed peers that read `timestamp` as a
    /// time still see a plausible one. Strictly increasing is all delivery needs; gaps are fine.
    pub fn next_seq(&mut self, now_ms: u64) -> Result<u64, StoreError> {
        let next = self.cursor.saturating_add(1).max(now_ms.min(MAX_SAFE_INTEGER));
        if next > MAX_SAFE_INTEGER {
            return Err(StoreError::Corrupt("the namespace cursor is exhausted".into()));
        }
        self.cursor = next;
        Ok(next)
    }
}

/// A write to one namespace, already validated.
#[derive(Clone, Debug)]
pub enum WriteOp {
    /// Key writes (values and removes), merged in order.
    Changes(Vec<(String, Entry)>),
    /// A clear epoch.
    Clear(Stamp),
    /// Tombstones every key whose value is live (at `now_ms`) and matches one of the patterns,
    /// each stamped by the server's hybrid clock so that it wins over the value it replaces.
    Invalidate(Vec<KeyPattern>),
}

/// What happened to one change of a [`WriteOp::Changes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeResult {
    /// The merge outcome.
    pub outcome: MergeOutcome,
    /// The sequence number the change was accepted at (when it won).
    pub seq: Option<u64>,
    /// When the change lost: what the namespace holds instead (the newer write, or a tombstone
    /// stamped with the clear epoch or GC floor that refused it, which is not stored and has
    /// `seq` 0), so the writer can converge.
    pub winner: Option<Stored>,
    /// Why the change was not stored although no write known to be newer beat it: the writer
    /// must hear of it (see [`Rejection`]).
    pub rejected: Option<Rejection>,
}

/// A change refused without a newer write of its key to show for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Ordered at or before the newest entry garbage collection forgot, for a key the namespace
    /// holds nothing for: it could be an old write of a key whose remove was forgotten.
    BelowFloor,
    /// The namespace holds another value under the very same stamp (a writer reused a stamp).
    StampConflict,
}

impl Rejection {
    /// What to tell the writer.
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::BelowFloor => {
                "the write is older than entries the server has forgotten (tombstones are kept 24 h), so it could bring a removed key back"
            }
            Rejection::StampConflict => "another value was already written under the same timestamp and writer id",
        }
    }
}

/// What a [`WriteOp::Clear`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClearResult {
    /// `Applied` when it was newer than the namespace's epoch (and so became it), `Duplicate`
    /// when it is the epoch already, `Stale` when a newer clear was accepted before.
    pub outcome: MergeOutcome,
    /// How many values it turned into tombstones.
    pub tombstoned: usize,
}

/// The result of one [`WriteOp`], durable once returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpReport {
    /// The cursor before the operation.
    pub cursor_before: u64,
    /// The cursor after it.
    pub cursor: u64,
    /// Per change, in order (empty for a clear).
    pub changes: Vec<ChangeResult>,
    /// For a clear.
    pub clear: Option<ClearResult>,
    /// For an invalidation: how many keys it tombstoned (0 otherwise).
    pub invalidated: usize,
}

/// Which rows a delta read returns.
#[derive(Clone, Debug)]
pub struct DeltaQuery {
    /// The client's cursor; rows above it are returned. Above the namespace's cursor it means the
    /// client's cursor came from other data (a wiped store): it is read as 0, a full resync.
    pub last_sync: u64,
    /// Sequence numbers not to return (the caller's own just-accepted writes).
    pub exclude: HashSet<u64>,
    /// At most this many rows.
    pub max_rows: usize,
    /// Stop adding rows once keys and values add up to this many bytes (one row always fits).
    pub max_bytes: usize,
}

/// One row of a delta.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeltaRow {
    /// The key.
    pub key: String,
    /// Its latest write and sequence number.
    pub stored: Stored,
}

/// A delta read, from one consistent snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delta {
    /// The rows, by sequence number.
    pub rows: Vec<DeltaRow>,
    /// The cursor to hand back: the namespace's cursor, or the last row examined when `more`.
    pub cursor: u64,
    /// The cursor the read started from (0 after a resync).
    pub since: u64,
    /// The clear epoch, when it was accepted after `since`.
    pub epoch: Option<Stamp>,
    /// The sequence number that clear was accepted at (0 when `epoch` is `None`).
    pub epoch_seq: u64,
    /// Whether rows remain past `cursor` (the response hit a limit).
    pub more: bool,
}

/// Counts of what a namespace holds, from one consistent snapshot (a scan of every key's header).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// The namespace's cursor in the snapshot (its content version).
    pub cursor: u64,
    /// Values a reader sees now.
    pub live: u64,
    /// Removes (kept to order writes until garbage collection forgets them).
    pub tombstones: u64,
    /// Values past their TTL that garbage collection has not forgotten yet.
    pub expired: u64,
    /// When the first live value expires (then `live` and `expired` change without a write).
    pub next_expiry: Option<u64>,
}

/// Which live values an entries read returns: keys starting with `prefix`, in key order.
#[derive(Clone, Debug)]
pub struct EntriesQuery {
    /// Only keys starting with this ("" = every key).
    pub prefix: String,
    /// Only keys after this one (the previous page's last key).
    pub after: Option<String>,
    /// Liveness is judged at this time.
    pub now_ms: u64,
    /// At most this many entries.
    pub max_rows: usize,
    /// Stop adding entries once keys and values add up to this many bytes (one always fits).
    pub max_bytes: usize,
    /// Stop after looking at this many keys, live or not, so a range full of tombstones costs a
    /// bounded amount per page too.
    pub max_examined: usize,
}

/// One page of live values, from one consistent snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntriesPage {
    /// The entries, by key.
    pub rows: Vec<DeltaRow>,
    /// The namespace's cursor in the snapshot.
    pub cursor: u64,
    /// When more keys with the prefix follow: the last key looked at (ask again `after` it).
    pub next_after: Option<String>,
    /// When the first returned entry expires (then this page's answer changes without a write).
    pub next_expiry: Option<u64>,
}

/// What one garbage collection pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Namespaces visited.
    pub namespaces: usize,
    /// Dead entries forgotten.
    pub removed: usize,
}

/// A durable (or, for tests, in-memory) home for namespaces.
///
/// Writes to a namespace are serialised and durable when the future resolves; reads see a
/// consistent snapshot and run concurrently with each other and with writes.
pub trait Store: Send + Sync + 'static {
    /// Applies a write to `ns` with the merge rule; `now_ms` feeds the cursor.
    fn apply<'a>(&'a self, ns: &'a str, op: WriteOp, now_ms: u64) -> StoreFuture<'a, OpReport>;

    /// Reads the rows accepted after `query.last_sync`.
    fn delta<'a>(&'a self, ns: &'a str, query: DeltaQuery) -> StoreFuture<'a, Delta>;

    /// Forgets, in every namespace, the entries dead for longer than `retention_ms`.
    fn gc(&self, now_ms: u64, retention_ms: u64) -> StoreFuture<'_, GcReport>;

    /// The namespace's cursor (0 for a namespace that holds nothing): one small read.
    fn cursor<'a>(&'a self, ns: &'a str) -> StoreFuture<'a, u64>;

    /// Counts live values, tombstones and expired values: a scan of every key's header.
    fn census<'a>(&'a self, ns: &'a str, now_ms: u64) -> StoreFuture<'a, Census>;

    /// Reads a page of live values by key prefix.
    fn entries<'a>(&'a self, ns: &'a str, query: EntriesQuery) -> StoreFuture<'a, EntriesPage>;

    /// Whether the store can take writes now (`/healthz`): `Ok`, or why not. Cheap when it can;
    /// see each store for how it knows.
    fn health(&self) -> StoreFuture<'_, ()>;

    /// A short name for logs.
    fn kind(&self) -> &'static str;
}

/// Storage primitives inside one write transaction on one namespace.
pub(crate) trait NsWrite {
    fn meta(&mut self) -> Result<Meta, StoreError>;
    fn put_meta(&mut self, meta: &Meta) -> Result<(), StoreError>;
    fn get(&mut self, key: &str) -> Result<Option<Stored>, StoreError>;
    /// Stores `stored` under `key`, deleting the by-sequence row of the write it replaces.
    fn put(&mut self, key: &str, stored: &Stored, replaced_seq: Option<u64>) -> Result<(), StoreError>;
    /// Deletes `key` and its by-sequence row.
    fn forget(&mut self, key: &str, seq: u64) -> Result<(), StoreError>;
    /// The header of every key starting with `prefix` ("" = every key), in key order.
    fn headers(&mut self, prefix: &str) -> Result<Vec<(String, Header)>, StoreError>;
}

/// One stored row met by [`NsRead::scan_keys`], decoded only as far as it is asked.
pub(crate) trait Row {
    fn header(&self) -> Result<Header, StoreError>;
    fn stored(&self) -> Result<Stored, StoreError>;
}

impl Row for Stored {
    fn header(&self) -> Result<Header, StoreError> {
        Ok(Header::of(self))
    }

    fn stored(&self) -> Result<Stored, StoreError> {
        Ok(self.clone())
    }
}

/// Storage primitives inside one read snapshot of one namespace.
pub(crate) trait NsRead {
    fn meta(&self) -> Result<Meta, StoreError>;
    fn get(&self, key: &str) -> Result<Option<Stored>, StoreError>;
    /// Visits the by-sequence rows above `after` in order, until `visit` returns `false`.
    fn scan_after(
        &self,
        after: u64,
        visit: &mut dyn FnMut(u64, String) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
    /// Visits the entries with keys at or after `from` in key order, until `visit` returns `false`.
    fn scan_keys(
        &self,
        from: &str,
        visit: &mut dyn FnMut(&str, &dyn Row) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
}
