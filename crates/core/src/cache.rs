//! The persistent cache engine: a [`Replica`] kept in a [`Storage`] under a prefix, one storage
//! key per cache key. Sans-IO: callers pass the time in, and take out what must be told to other
//! tabs ([`FlushReport`]) and which keys changed.
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::hash::{HashMap, HashSet};
use crate::key_queue::KeyQueue;
use crate::record::{
    check_record_stamps, decode_clock_offset, decode_cursor, decode_meta_flagged, decode_record, decode_record_pending, encode_clock_offset,
    encode_cursor, encode_meta_flagged, encode_record_pending, prefix_tag, record_marks, record_stamp, DecodedRecord,
    Pending,
};
use crate::{validate_key, CacheError, Entry, MergeOutcome, Replica, Stamp, Storage, StorageError};

/// How long a tombstone (or an expired value) is kept so that a late, older write cannot bring the
/// key back. Past it, the entry is dropped from memory and storage when the cache next opens.
pub const DEFAULT_TOMBSTONE_RETENTION_MS: u64 = 24 * 60 * 60 * 1000;

/// Whom a write reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every instance and tab of the origin, and through the backend every device of the
    /// namespace (`set`).
    Everyone,
    /// This browser only: every instance and tab of the origin, never the backend (per-user
    /// data, such as what `getOrFetch` loads by default).
    Browser,
}

/// What a [`Cache`] needs to open.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Storage keys start with it; caches with different prefixes never see each other's keys.
    pub prefix: String,
    /// This writer's id.
    pub node: String,
    /// See [`DEFAULT_TOMBSTONE_RETENTION_MS`].
    pub tombstone_retention_ms: u64,
    /// Whether local writes are tracked as not yet acknowledged by a backend (the outbox).
    pub track_sync: bool,
}

impl CacheConfig {
    /// A config with the default retention.
    pub fn new(prefix: impl Into<String>, node: impl Into<String>) -> Self {
        CacheConfig {
            prefix: prefix.into(),
            node: node.into(),
            tombstone_retention_ms: DEFAULT_TOMBSTONE_RETENTION_MS,
            track_sync: false,
        }
    }

    /// The same config, tracking writes for a backend.
    pub fn with_sync(mut self, track_sync: bool) -> Self {
        self.track_sync = track_sync;
        self
    }
}

/// What the backend has not acknowledged yet: a clear (sent first) and the latest write of each
/// key written since it last acknowledged that key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncBatch {
    /// A clear not yet acknowledged.
    pub clear: Option<Stamp>,
    /// Writes not yet acknowledged, in key order.
    pub changes: Vec<(String, Entry)>,
}

impl SyncBatch {
    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.clear.is_none() && self.changes.is_empty()
    }
}

/// One write from another tab: the key, the write, and what of the key its writer still has to
/// send to the backend.
pub type TabWrite = (String, Entry, Pending);

/// A stored record and its head: stamp and pending marks ([`record_marks`]).
type StoredHead<'a> = (&'a str, (u64, &'a str, Pending<()>));

/// What [`Cache::flush`] did: the writes to tell other tabs, and what could not be persisted.
#[derive(Debug, Default)]
pub struct FlushReport {
    /// Keys written locally since the last flush with their current write (coalesced: a key
    /// written ten times is one change), for other tabs and the backend.
    pub changes: Vec<(String, Entry)>,
    /// The record of each change, in the same order: the text the flush stored, or would have.
    pub records: Vec<String>,
    /// A local clear since the last flush.
    pub clear: Option<Stamp>,
    /// Failures; a key that failed stays readable in memory.
    pub errors: Vec<CacheError>,
    /// The backend clock offset, when this flush persisted a new one (other tabs and instances
    /// adopt it).
    pub clock: Option<i64>,
}

impl FlushReport {
    /// Whether there is anything to tell other tabs.
    pub fn has_news(&self) -> bool {
        !self.changes.is_empty() || self.clear.is_some()
    }
}

/// A shared cache replica persisted in a [`Storage`].
pub struct Cache<S: Storage> {
    replica: Replica,
    storage: S,
    prefix: String,
    tag: String,
    meta_key: String,
    retention_ms: u64,
    /// Keys whose record must be (re)written at the next flush.
    dirty: KeyQueue,
    /// Whether the clear epoch must be persisted (and older records removed) at the next flush.
    epoch_dirty: bool,
    /// Keys written locally since the last flush (what other tabs must be told).
    outgoing: KeyQueue,
    outgoing_clear: Option<Stamp>,
    /// Keys held in memory whose record is not in storage (quota): candidates for nothing.
    unpersisted: HashSet<String>,
    /// Recency of use per key, for evicting the least recently used under quota pressure.
    last_use: HashMap<String, u64>,
    use_counter: u64,
    /// Pending expiries. An item is a reminder: due, it reports its key if the key's expiry is
    /// due too, or moves on to the key's later expiry (a rewrite that only pushes a key's expiry
    /// back adds no item); items of expiries brought forward or gone are dropped when popped.
    expiries: BinaryHeap<Reverse<(u64, String)>>,
    /// The latest time expiries were taken at: every expiry up to it has been reported.
    expiry_checked: u64,
    track_sync: bool,
    /// Keys whose current write the backend has not acknowledged (the durable outbox: each
    /// record carries the mark, so it survives reloads and closed tabs).
    unsynced: HashSet<String>,
    /// The rest of the outbox: per key, a write for everyone the backend has not acknowledged,
    /// covered here by a later write for this browser only (which is never sent). The key's
    /// record carries it. Never a key of `unsynced`: a pending current write is for everyone and
    /// newer, so it supersedes what it would cover.
    covered: HashMap<String, Entry>,
    /// Covered writes the backend has acknowledged (or superseded) since the last flush, with
    /// their keys: the flush takes them out of the stored records. (A list: it is nearly always
    /// empty, and one more map type costs the wasm more than its lookups save.)
    covers_done: Vec<(String, Stamp)>,
    /// Whether the current clear epoch is not yet acknowledged by the backend.
    clear_unsynced: bool,
    /// The last `timestamp` (cursor) the backend returned, and its storage key.
    cursor: u64,
    cursor_key: String,
    cursor_dirty: bool,
    /// How far the backend's clock is ahead of this device's (ms; negative: behind), so that a
    /// device whose clock is off by hours or days still writes and expires on the backend's
    /// time. Learned from the backend's answers, shared by the tabs through storage.
    clock_offset: i64,
    clock_key: String,
    clock_dirty: bool,
}

/// A backend clock reading moves the offset only when it differs from the current one by more
/// than this (plus half the request's round trip, the reading's own uncertainty): a device whose
/// clock is right keeps an offset of 0, and readings do not jitter expiries by milliseconds.
pub const CLOCK_OFFSET_TOLERANCE_MS: u64 = 1_000;

impl<S: Storage> Cache<S> {
    /// Opens the cache over `storage`, loading every entry under the prefix, at `local_ms` by
    /// this device's clock (the stored clock offset turns it into the cache's time). Entries that
    /// cannot be read are skipped, left in place, and reported; nothing makes opening fail.
    pub fn open(storage: S, config: CacheConfig, local_ms: u64) -> (Self, Vec<CacheError>) {
        let tag = prefix_tag(&config.prefix);
        let mut cache = Cache {
            replica: Replica::new(config.node),
            storage,
            meta_key: format!("{}\u{0}meta", config.prefix),
            cursor_key: format!("{}\u{0}sync", config.prefix),
            clock_key: format!("{}\u{0}clock", config.prefix),
            prefix: config.prefix,
            tag,
            retention_ms: config.tombstone_retention_ms,
            dirty: KeyQueue::default(),
            epoch_dirty: false,
            outgoing: KeyQueue::default(),
            outgoing_clear: None,
            unpersisted: HashSet::default(),
            last_use: HashMap::default(),
            use_counter: 0,
            expiries: BinaryHeap::new(),
            expiry_checked: 0,
            track_sync: config.track_sync,
            unsynced: HashSet::default(),
            covered: HashMap::default(),
            covers_done: Vec::new(),
            clear_unsynced: false,
            cursor: 0,
            cursor_dirty: false,
            clock_offset: 0,
            clock_dirty: false,
        };
        let errors = cache.hydrate(local_ms);
        (cache, errors)
    }

    fn hydrate(&mut self, local_ms: u64) -> Vec<CacheError> {
        let mut errors = Vec::new();
        match self.storage.get(&self.meta_key) {
            Ok(Some(text)) => match decode_meta_flagged(&text, &self.tag) {
                Ok(Some((epoch, unsynced))) => {
                    self.replica.merge_epoch(&epoch);
                    self.clear_unsynced = unsynced && self.track_sync;
                }
                Ok(None) => {}
                Err(reason) => errors.push(corrupt(&self.meta_key, reason)),
            },
            Ok(None) => {}
            Err(e) => errors.push(storage_failed(e)),
        }
        match self.storage.get(&self.clock_key) {
            Ok(Some(text)) => match decode_clock_offset(&text, &self.tag) {
                Ok(offset) => self.clock_offset = offset.unwrap_or(0),
                Err(reason) => errors.push(corrupt(&self.clock_key, reason)),
            },
            Ok(None) => {}
            Err(e) => errors.push(storage_failed(e)),
        }
        let now_ms = self.time_at(local_ms);
        match self.storage.get(&self.cursor_key) {
            Ok(Some(text)) => match decode_cursor(&text, &self.tag) {
                Ok(cursor) => self.cursor = cursor.unwrap_or(0),
                Err(reason) => errors.push(corrupt(&self.cursor_key, reason)),
            },
            Ok(None) => {}
            Err(e) => errors.push(storage_failed(e)),
        }
        let items = match self.storage.scan(&self.prefix) {
            Ok(items) => items,
            Err(e) => {
                errors.push(storage_failed(e));
                return errors;
            }
        };
        let mut garbage = Vec::new();
        // The heap is built once from all the expiries (linear) instead of one push per entry.
        let mut expiries = Vec::new();
        self.replica.reserve(items.len());
        for (storage_key, text) in items.iter() {
            let Some(key) = storage_key.strip_prefix(self.prefix.as_str()) else { continue };
            if key.contains('\0') {
                continue; // bookkeeping of this cache or of one with a longer prefix
            }
            match decode_record_pending(text, &self.tag) {
                Ok((DecodedRecord::Mine(entry), pending)) => {
                    if let Err(e) = validate_key(key).and_then(|()| check_record_stamps(&entry, &pending)) {
                        errors.push(corrupt(storage_key, e.to_string()));
                        continue;
                    }
                    let dead_past_retention =
                        entry.dead_since().is_some_and(|since| since.saturating_add(self.retention_ms) <= now_ms);
                    let expires_at = entry.expires_at();
                    self.replica.observe(entry.stamp.ts);
                    // An unsynced write is kept whatever its age: the backend has not seen it yet.
                    let garbage_now = (dead_past_retention && matches!(pending, Pending::None))
                        || self.replica.merge(key, entry) == MergeOutcome::Cleared;
                    if garbage_now {
                        garbage.push(storage_key);
                    } else {
                        if self.track_sync {
                            match pending {
                                Pending::This => {
                                    self.unsynced.insert(key.to_owned());
                                }
                                // Unless the clear epoch supersedes it.
                                Pending::Covered(covered) => {
                                    self.cover(key, covered);
                                }
                                Pending::None => {}
                            }
                        }
                        // Storage holds one record per key, so this entry is the replica's.
                        if let Some(at) = expires_at.filter(|at| *at > now_ms) {
                            expiries.push(Reverse((at, key.to_owned())));
                        }
                    }
                }
                Ok((DecodedRecord::OtherCache, _)) => {}
                Err(reason) => errors.push(corrupt(storage_key, reason)),
            }
        }
        self.expiries = BinaryHeap::from(expiries); // hydrate runs first: the heap was empty
        self.expiry_checked = now_ms;
        for storage_key in garbage {
            if let Err(e) = self.storage.remove(storage_key) {
                errors.push(storage_failed(e));
            }
        }
        errors
    }

    /// This writer's id.
    pub fn node(&self) -> &str {
        self.replica.node()
    }

    /// The prefix storage keys start with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The tag that marks this cache's records (see [`crate::prefix_tag`]).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The underlying storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The underlying storage, mutably (tests use it to simulate other tabs).
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// The replica's state.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// Sets `key` to `json` (JSON text, already validated by the caller) with a TTL in ms, for
    /// everyone ([`Reach::Everyone`]).
    pub fn set(&mut self, key: &str, json: String, ttl_ms: u64, now_ms: u64) -> Result<Entry, CacheError> {
        self.set_for(key, json, ttl_ms, Reach::Everyone, now_ms)
    }

    /// Sets `key` for whom `reach` says. A write for this browser only is never marked pending,
    /// so no instance of any tab ever sends it; an earlier write for everyone of the key that is
    /// still pending stays in the outbox, covered (see [`Pending::Covered`]).
    pub fn set_for(&mut self, key: &str, json: String, ttl_ms: u64, reach: Reach, now_ms: u64) -> Result<Entry, CacheError> {
        validate_key(key)?;
        Ok(self.local_write(key, Some(json), ttl_ms, reach, now_ms))
    }

    /// Removes `key` (a tombstone, so an older write arriving later cannot bring it back), for
    /// everyone.
    pub fn remove(&mut self, key: &str, now_ms: u64) -> Result<Entry, CacheError> {
        self.remove_for(key, Reach::Everyone, now_ms)
    }

    /// Removes `key` for whom `reach` says: a removal for this browser only is never sent, so it
    /// cannot delete what another device wrote to the backend; like [`Cache::set_for`], it keeps
    /// an earlier pending write of the key in the outbox.
    pub fn remove_for(&mut self, key: &str, reach: Reach, now_ms: u64) -> Result<Entry, CacheError> {
        validate_key(key)?;
        Ok(self.local_write(key, None, 0, reach, now_ms))
    }

    fn local_write(&mut self, key: &str, value: Option<String>, ttl_ms: u64, reach: Reach, now_ms: u64) -> Entry {
        let covers = reach == Reach::Browser && self.unsynced.contains(key);
        let displaced = if covers { self.replica.entry(key).cloned() } else { None };
        let expired_before = self.expires_at(key);
        let entry = self.replica.write(key, value, ttl_ms, now_ms);
        if reach == Reach::Everyone {
            self.covered.remove(key);
            self.set_unsynced(key, true);
        } else if let Some(displaced) = displaced {
            self.unsynced.remove(key);
            self.cover(key, displaced);
        }
        self.touch(key);
        self.dirty.insert(key);
        self.outgoing.insert(key);
        self.schedule_expiry(key, expired_before, now_ms);
        entry
    }

    /// Clears the cache: every write ordered before now is gone, everywhere, including writes that
    /// arrive later. Returns the epoch and the keys that were visible at `now_ms`.
    pub fn clear(&mut self, now_ms: u64) -> (Stamp, Vec<String>) {
        let visible = self.visible_keys(now_ms);
        let (epoch, _) = self.replica.clear(now_ms);
        self.clear_unsynced = self.track_sync;
        self.after_epoch();
        self.outgoing_clear = Some(epoch.clone());
        (epoch, visible.into_iter().collect())
    }

    fn visible_keys(&self, now_ms: u64) -> HashSet<String> {
        self.replica.iter().filter(|(_, e)| e.is_live(now_ms)).map(|(k, _)| k.clone()).collect()
    }

    fn after_epoch(&mut self) {
        self.epoch_dirty = true;
        self.forget_cleared();
    }

    /// Drops bookkeeping of keys a clear removed.
    fn forget_cleared(&mut self) {
        let replica = &self.replica;
        self.dirty.retain(|key| replica.entry(key).is_some());
        self.outgoing.retain(|key| replica.entry(key).is_some());
        self.unsynced.retain(|key| replica.entry(key).is_some());
        // A clear is a write for everyone ordered after every write it removes.
        self.covered.retain(|_, covered| replica.epoch().is_none_or(|epoch| covered.stamp > *epoch));
    }

    /// Applies writes and possibly a clear from another tab (`persist == false`) or the backend
    /// (`persist == true`), as [`Cache::apply_from_tab`] (with every write marked as acknowledged)
    /// and [`Cache::apply_from_backend`] do. Returns the keys whose visible value changed.
    pub fn apply_remote(
        &mut self,
        changes: Vec<(String, Entry)>,
        clear: Option<Stamp>,
        persist: bool,
        now_ms: u64,
    ) -> Vec<String> {
        if persist {
            self.apply_from_backend(changes, clear, now_ms)
        } else {
            let changes = changes.into_iter().map(|(k, e)| (k, e, Pending::None)).collect();
            self.apply_from_tab(changes, clear.map(|c| (c, false)), now_ms)
        }
    }

    /// Applies writes and a clear another tab has persisted and announced (tabs share storage, so
    /// nothing is written again — except where ours is newer: the sender may just have
    /// overwritten it with its older record, so ours is written back). Each write says whether its
    /// writer still has to send it to the backend; this tab adopts that, so writes of a tab that
    /// closes offline still reach the backend. Returns the keys whose visible value changed.
    pub fn apply_from_tab(&mut self, changes: Vec<TabWrite>, clear: Option<(Stamp, bool)>, now_ms: u64) -> Vec<String> {
        let mut changed = HashSet::default();
        if let Some((epoch, unsynced)) = clear {
            let known = self.replica.epoch() == Some(&epoch);
            if self.merge_clear(&epoch, now_ms, &mut changed) {
                // News of a clear this tab knows already only ever brings its acknowledgement: a
                // message or storage event saying pending may arrive after the one saying
                // acknowledged, and must not put the clear back in the outbox.
                if !known || !unsynced {
                    self.clear_unsynced = unsynced && self.track_sync;
                }
                self.forget_cleared();
            }
        }
        for (key, entry, pending) in changes {
            let was_visible = self.replica.get(&key, now_ms).is_some();
            let covers = matches!(pending, Pending::Covered(_)) || self.covered.contains_key(&key);
            let this = matches!(pending, Pending::This);
            // Cloned only where they may be kept, off the path of every message.
            let held = self.replica.entry(&key);
            let (newer, older) = (held.is_none_or(|h| h.stamp < entry.stamp), held.is_some_and(|h| h.stamp > entry.stamp));
            let waits_here = self.unsynced.contains(&key);
            let displaced = if newer && !this && waits_here { held.cloned() } else { None };
            let incoming = if older && !waits_here { pending.waiting(&entry).cloned() } else { None };
            match self.replica.merge(&key, entry) {
                MergeOutcome::Applied => {
                    // The writer's record says what waits: its write, or one it covers (read as
                    // stored). A write that waited here stays in the outbox, covered, unless the
                    // new one waits itself: a record does not say whether its write is for this
                    // browser only or one the backend has, and at worst the backend acknowledges
                    // the covered one without taking it.
                    self.set_unsynced(&key, this);
                    if covers {
                        self.cover_as_stored(&key);
                    }
                    if let Some(displaced) = displaced.filter(|_| !this) {
                        if self.cover(&key, displaced) {
                            self.dirty.insert(&key);
                        }
                    }
                    self.after_applied(key, was_visible, now_ms, &mut changed);
                }
                // The writer announcing that the backend acknowledged its write, or what the
                // write covers now.
                MergeOutcome::Duplicate => {
                    if matches!(pending, Pending::None) {
                        self.unsynced.remove(&key);
                    }
                    if covers {
                        self.cover_as_stored(&key);
                    }
                }
                MergeOutcome::Stale => {
                    // A write for everyone still pending, older than this browser's: it waits,
                    // covered, unless this tab's write is for everyone and pending (that one
                    // supersedes it). Other tabs hear of it, as of any change to the outbox.
                    if let Some(write) = incoming {
                        if self.cover(&key, write) {
                            self.outgoing.insert(&key);
                        }
                    }
                    self.dirty.insert(&key);
                }
                // Older than the clear, and so older than the write this tab holds: it was stored
                // over that write (by a tab that had heard of neither), so write ours back, as for
                // any older record; the flush leaves storage alone if it is current already.
                MergeOutcome::Cleared if self.replica.entry(&key).is_some() => {
                    self.dirty.insert(&key);
                }
                _ => {}
            }
        }
        changed.into_iter().collect()
    }

    /// Applies the backend's updates: persisted here and announced to other tabs, and marked as
    /// acknowledged (an update equal to our pending write acknowledges it). Returns the keys whose
    /// visible value changed.
    pub fn apply_from_backend(&mut self, changes: Vec<(String, Entry)>, clear: Option<Stamp>, now_ms: u64) -> Vec<String> {
        let mut changed = HashSet::default();
        if let Some(epoch) = clear {
            if self.merge_clear(&epoch, now_ms, &mut changed) {
                self.clear_unsynced = false;
                self.after_epoch();
                self.outgoing_clear = Some(epoch);
            }
        }
        for (key, entry) in changes {
            let was_visible = self.replica.get(&key, now_ms).is_some();
            // The backend holds this write or a newer one: a covered write it supersedes or equals
            // is done with.
            if self.covered.get(&key).is_some_and(|covered| covered.stamp <= entry.stamp) {
                self.uncover(&key, None);
                self.dirty.insert(&key);
                self.outgoing.insert(&key);
            }
            match self.replica.merge(&key, entry) {
                MergeOutcome::Applied => {
                    self.unsynced.remove(&key);
                    self.dirty.insert(&key);
                    self.outgoing.insert(&key);
                    self.after_applied(key, was_visible, now_ms, &mut changed);
                }
                MergeOutcome::Duplicate => self.mark_synced(&key),
                _ => {}
            }
        }
        changed.into_iter().collect()
    }

    /// Merges a clear from elsewhere, adding the keys it hid to `changed`; true when it is now the
    /// epoch (the caller's own bookkeeping then follows).
    fn merge_clear(&mut self, epoch: &Stamp, now_ms: u64, changed: &mut HashSet<String>) -> bool {
        let visible = self.visible_keys(now_ms);
        let removed = self.replica.merge_epoch(epoch);
        changed.extend(removed.into_iter().filter(|k| visible.contains(k)));
        self.replica.epoch() == Some(epoch)
    }

    /// Bookkeeping common to every write from elsewhere that won the merge.
    fn after_applied(&mut self, key: String, was_visible: bool, now_ms: u64, changed: &mut HashSet<String>) {
        self.touch(&key);
        self.schedule_expiry(&key, None, now_ms);
        if was_visible || self.replica.get(&key, now_ms).is_some() {
            changed.insert(key);
        }
    }

    fn set_unsynced(&mut self, key: &str, unsynced: bool) {
        if unsynced && self.track_sync {
            self.unsynced.insert(key.to_owned());
        } else {
            self.unsynced.remove(key);
        }
    }

    /// Keeps `write`, a pending write for everyone of `key` older than the key's current one, in
    /// the outbox, unless a newer one is kept already (the newer supersedes it on the backend).
    /// Returns whether it did; the caller has the record written.
    fn cover(&mut self, key: &str, write: Entry) -> bool {
        let superseded = self.covered.get(key).is_some_and(|held| held.stamp >= write.stamp)
            || self.replica.epoch().is_some_and(|epoch| write.stamp <= *epoch)
            || self.replica.entry(key).is_none_or(|current| current.stamp <= write.stamp);
        if !self.track_sync || superseded {
            return false;
        }
        self.covered.insert(key.to_owned(), write);
        true
    }

    /// Takes what the stored record of `key` covers as this tab's view, when that record is of
    /// the write this tab holds: tabs share storage, and its record is newer than any message
    /// about it (a message saying a write is covered may arrive after the one saying the backend
    /// has it).
    fn cover_as_stored(&mut self, key: &str) {
        self.covered.remove(key);
        let Some(current) = self.replica.entry(key) else { return };
        let Ok(Some(text)) = self.storage.get(&self.storage_key(key)) else { return };
        if let Ok((DecodedRecord::Mine(stored), Pending::Covered(covered))) = decode_record_pending(&text, &self.tag) {
            if stored.stamp == current.stamp && !self.unsynced.contains(key) {
                self.cover(key, covered);
            }
        }
    }

    /// The covered write of `key` is done with: the backend acknowledged it (`sent`, when given:
    /// only if it is still the one covered) or holds something newer.
    fn uncover(&mut self, key: &str, sent: Option<&Stamp>) -> bool {
        match self.covered.get(key) {
            Some(covered) if sent.is_none_or(|sent| covered.stamp == *sent) => {
                self.covers_done.push((key.to_owned(), covered.stamp.clone()));
                self.covered.remove(key);
                true
            }
            _ => false,
        }
    }

    /// Marks `key`'s current write as acknowledged: its record is rewritten without the mark and
    /// other tabs are told, so they stop counting it as pending.
    fn mark_synced(&mut self, key: &str) {
        if self.unsynced.remove(key) {
            self.dirty.insert(key);
            self.outgoing.insert(key);
        }
    }

    /// Another instance over the same storage (a copy of the package in another MFE on the page)
    /// had `batch` acknowledged and has rewritten its records: stop counting those writes as
    /// pending here too. Writes replaced since are still pending. Returns whether anything changed.
    pub fn ack_from_peer(&mut self, batch: &SyncBatch) -> bool {
        let mut changed = false;
        if let Some(clear) = &batch.clear {
            if self.clear_unsynced && self.replica.epoch() == Some(clear) {
                self.clear_unsynced = false;
                changed = true;
            }
        }
        for (key, sent) in &batch.changes {
            if self.replica.entry(key).is_some_and(|e| e.stamp == sent.stamp) {
                changed |= self.unsynced.remove(key);
            } else {
                changed |= self.uncover(key, Some(&sent.stamp));
            }
        }
        changed
    }

    /// What the backend has not acknowledged, up to `max` writes.
    pub fn sync_batch(&self, max: usize) -> SyncBatch {
        self.sync_batch_of(max, None)
    }

    /// Like [`Cache::sync_batch`], restricted to writes (and a clear) made by `writer` when given:
    /// a tab that does not lead sends only its own writes, the leader sends everyone's (those of
    /// tabs that closed before they could). Covered writes are sent by every tab that holds one:
    /// a tab may hold one no other tab knows of (it covered another tab's write that reached it
    /// after its own), and they are rare; the backend takes a repeat as it took the first.
    pub fn sync_batch_of(&self, max: usize, writer: Option<&str>) -> SyncBatch {
        let mine = |stamp: &Stamp| writer.is_none_or(|w| stamp.node == w);
        // Owned keys: one sort of `String`s serves the whole crate (each sorted type costs the wasm).
        let mut keys: Vec<String> = self
            .unsynced
            .iter()
            .filter(|k| self.replica.entry(k).is_some_and(|e| mine(&e.stamp)))
            .chain(self.covered.keys())
            .cloned()
            .collect();
        keys.sort_unstable();
        SyncBatch {
            clear: self.replica.epoch().filter(|e| self.clear_unsynced && mine(e)).cloned(),
            changes: keys
                .into_iter()
                .filter_map(|k| self.pending_write(&k).cloned().map(|e| (k, e)))
                .take(max)
                .collect(),
        }
    }

    /// The write of `key` the outbox holds: its current one, or the one that covers.
    fn pending_write(&self, key: &str) -> Option<&Entry> {
        if self.unsynced.contains(key) {
            self.replica.entry(key)
        } else {
            self.covered.get(key)
        }
    }

    /// Whether anything [`Cache::sync_batch_of`] would send for `writer` is pending.
    pub fn has_pending_sync_of(&self, writer: Option<&str>) -> bool {
        let mine = |stamp: &Stamp| writer.is_none_or(|w| stamp.node == w);
        (self.clear_unsynced && self.replica.epoch().is_some_and(mine))
            || self.unsynced.iter().any(|k| self.replica.entry(k).is_some_and(|e| mine(&e.stamp)))
            || !self.covered.is_empty()
    }

    /// Marks a batch as acknowledged by the backend. A key written again since the batch was
    /// taken stays pending, and so does a newer clear.
    pub fn ack_sync(&mut self, batch: &SyncBatch) {
        if let Some(clear) = &batch.clear {
            if self.clear_unsynced && self.replica.epoch() == Some(clear) {
                self.clear_unsynced = false;
                self.epoch_dirty = true;
                self.outgoing_clear = Some(clear.clone());
            }
        }
        for (key, sent) in &batch.changes {
            if self.replica.entry(key).is_some_and(|e| e.stamp == sent.stamp) {
                self.mark_synced(key);
            } else if self.uncover(key, Some(&sent.stamp)) {
                self.dirty.insert(key);
                self.outgoing.insert(key);
            }
        }
    }

    /// Number of writes (and a clear) the backend has not acknowledged.
    pub fn pending_sync(&self) -> usize {
        self.unsynced.len() + self.covered.len() + usize::from(self.clear_unsynced)
    }

    /// Whether `key`'s current write is waiting for the backend.
    pub fn is_unsynced(&self, key: &str) -> bool {
        self.unsynced.contains(key)
    }

    /// The write for everyone of `key` that waits for the backend under a later write for this
    /// browser only, if there is one.
    pub fn covered(&self, key: &str) -> Option<&Entry> {
        self.covered.get(key)
    }

    /// Whether the clear epoch is waiting for the backend.
    pub fn is_clear_unsynced(&self) -> bool {
        self.clear_unsynced
    }

    /// The last cursor the backend returned (0 before the first sync).
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Records the backend's new cursor; persisted at the next flush.
    pub fn set_cursor(&mut self, cursor: u64) {
        if cursor != self.cursor {
            self.cursor = cursor;
            self.cursor_dirty = true;
        }
    }

    /// The cache's time for a reading `local_ms` of this device's clock: corrected by the
    /// backend's clock offset. Every `now_ms` this engine takes is in this time.
    pub fn time_at(&self, local_ms: u64) -> u64 {
        local_ms.saturating_add_signed(self.clock_offset)
    }

    /// A time of the cache (an expiry, say) as this device's clock will show it.
    pub fn local_time(&self, at_ms: u64) -> u64 {
        at_ms.saturating_add_signed(self.clock_offset.saturating_neg())
    }

    /// How far the backend's clock is ahead of this device's, in ms.
    pub fn clock_offset(&self) -> i64 {
        self.clock_offset
    }

    /// A reading of the backend's clock, `backend_ms`, taken by a request sent at `sent_local`
    /// and answered at `received_local` (this device's clock). Moves the offset when the reading
    /// is off by more than its uncertainty and [`CLOCK_OFFSET_TOLERANCE_MS`]; the new offset is
    /// persisted at the next flush. Returns the keys whose expiry moved (see `set_clock_offset`).
    pub fn observe_backend_clock(&mut self, backend_ms: u64, sent_local: u64, received_local: u64) -> Option<Vec<String>> {
        let rtt = received_local.saturating_sub(sent_local);
        let midpoint = sent_local.saturating_add(rtt / 2);
        let sample = i64::try_from(backend_ms).ok()?.checked_sub(i64::try_from(midpoint).ok()?)?;
        let uncertainty = CLOCK_OFFSET_TOLERANCE_MS.saturating_add(rtt / 2);
        if sample.abs_diff(self.clock_offset) <= uncertainty {
            return None;
        }
        let changed = self.set_clock_offset(sample, received_local);
        self.clock_dirty = true;
        Some(changed)
    }

    /// Takes the offset another tab or instance learned (it persisted it); returns the keys whose
    /// expiry moved.
    pub fn adopt_clock_offset(&mut self, offset: i64, local_ms: u64) -> Vec<String> {
        if offset == self.clock_offset {
            return Vec::new();
        }
        self.set_clock_offset(offset, local_ms)
    }

    /// Moves the offset; returns every key whose expiry, as this device's clock shows it, moved
    /// with it (their visibility may have flipped, and readers that cached an expiry in local
    /// time must drop it).
    fn set_clock_offset(&mut self, offset: i64, local_ms: u64) -> Vec<String> {
        self.clock_offset = offset;
        let now_ms = self.time_at(local_ms);
        let mut expiring: Vec<String> =
            self.replica.iter().filter(|(_, e)| e.expires_at().is_some()).map(|(k, _)| k.clone()).collect();
        expiring.sort_unstable();
        // Expiries already reported may be ahead again, others now past: schedule them afresh.
        self.expiries.clear();
        self.expiry_checked = now_ms;
        for key in &expiring {
            self.schedule_expiry(key, None, now_ms);
        }
        expiring
    }

    /// Decodes the clock offset record written by another tab (`storage` event).
    pub fn decode_foreign_clock(&self, storage_key: &str, text: &str) -> Option<i64> {
        if storage_key != self.clock_key {
            return None;
        }
        decode_clock_offset(text, &self.tag).ok().flatten()
    }

    /// The value of `key` as JSON text, if visible at `now_ms`. Counts as a use for eviction.
    pub fn get(&mut self, key: &str, now_ms: u64) -> Option<&str> {
        if self.replica.get(key, now_ms).is_some() {
            self.touch(key);
        }
        self.replica.get(key, now_ms)
    }

    /// When `key`'s value expires (`None`: never, or no value).
    pub fn expires_at(&self, key: &str) -> Option<u64> {
        self.replica.entry(key).and_then(Entry::expires_at)
    }

    fn touch(&mut self, key: &str) {
        self.use_counter += 1;
        if let Some(slot) = self.last_use.get_mut(key) {
            *slot = self.use_counter;
        } else {
            self.last_use.insert(key.to_owned(), self.use_counter);
        }
    }

    /// Schedules `key`'s expiry if it is still to come (an entry that arrives already expired never
    /// had a visible value here, so there is nothing to announce). `before`: the key's expiry
    /// before this write, when known; if it was still to be reported and comes no later, its
    /// reminder serves (a key rewritten with the same TTL adds nothing to the heap).
    fn schedule_expiry(&mut self, key: &str, before: Option<u64>, now_ms: u64) {
        let Some(at) = self.expires_at(key).filter(|at| *at > now_ms) else { return };
        if before.is_some_and(|before| before > now_ms.max(self.expiry_checked) && before <= at) {
            return;
        }
        self.expiries.push(Reverse((at, key.to_owned())));
        // Items of expiries brought forward, removed or cleared stay behind: rebuild before they
        // outnumber the entries, so a hot key written forever cannot grow the heap without bound.
        // One item per expiry not yet reported: one already reported must not come back.
        if self.expiries.len() > 2 * self.replica.len() + 64 {
            let checked = self.expiry_checked;
            let pending: Vec<Reverse<(u64, String)>> = self
                .replica
                .iter()
                .filter_map(|(k, e)| e.expires_at().filter(|at| *at > checked).map(|at| Reverse((at, k.clone()))))
                .collect();
            self.expiries = BinaryHeap::from(pending);
        }
    }

    /// When to take expired values next, so a timer runs only while something can expire: the
    /// next expiry, or before it the reminder of a key whose expiry was pushed back (then
    /// [`Cache::take_expired`] finds nothing and moves the reminder on).
    pub fn next_expiry(&mut self) -> Option<u64> {
        while let Some(Reverse((at, key))) = self.expiries.peek() {
            if self.expires_at(key).is_some_and(|expiry| expiry >= *at) {
                return Some(*at);
            }
            self.expiries.pop();
        }
        None
    }

    /// Keys whose value expired at or before `now_ms` since the last call.
    pub fn take_expired(&mut self, now_ms: u64) -> Vec<String> {
        self.expiry_checked = self.expiry_checked.max(now_ms);
        let mut expired = Vec::new();
        while let Some(Reverse((at, _))) = self.expiries.peek() {
            if *at > now_ms {
                break;
            }
            if let Some(Reverse((at, key))) = self.expiries.pop() {
                match self.expires_at(&key) {
                    Some(expiry) if expiry > now_ms => self.expiries.push(Reverse((expiry, key))),
                    // Every item of the key up to now is popped in this call: reported once.
                    Some(expiry) if expiry >= at && !expired.contains(&key) => expired.push(key),
                    _ => {}
                }
            }
        }
        expired
    }

    /// Number of local writes and re-persists waiting for [`Cache::flush`].
    pub fn pending_flush(&self) -> usize {
        self.dirty.len() + usize::from(self.epoch_dirty)
    }

    /// What other tabs must be told since the last flush: the keys written locally (with their
    /// current write) and a local clear. Only [`Cache::flush`] hands it out, after persisting:
    /// other tabs must hear of a write only once it is in storage (see `apply_from_tab`).
    fn take_news(&mut self) -> FlushReport {
        FlushReport {
            changes: self
                .outgoing
                .drain()
                .into_iter()
                .filter_map(|key| self.replica.entry(&key).cloned().map(|entry| (key, entry)))
                .collect(),
            records: Vec::new(),
            clear: self.outgoing_clear.take(),
            errors: Vec::new(),
            clock: None,
        }
    }

    /// Fills in the records of the changes the flush did not write (its storage held them, or
    /// they were not its to write), so that `records` lines up with `changes`.
    fn with_records(&self, mut report: FlushReport, mut written: Vec<Option<String>>) -> FlushReport {
        report.records = report
            .changes
            .iter()
            .enumerate()
            .map(|(i, (key, entry))| written.get_mut(i).and_then(Option::take).unwrap_or_else(|| self.encode_entry(key, entry)))
            .collect();
        report
    }

    /// Persists what changed since the last flush and hands over what other tabs must be told.
    /// When storage is full it frees space (dead entries first, then the least recently used
    /// ones, never the key being written) and retries; a key that still does not fit stays in
    /// memory and is reported.
    pub fn flush(&mut self, now_ms: u64) -> FlushReport {
        let mut report = self.take_news();
        if self.cursor_dirty {
            match self.storage.set(&self.cursor_key, &encode_cursor(self.cursor, &self.tag)) {
                Ok(()) => self.cursor_dirty = false,
                Err(e) => report.errors.push(storage_failed(e)),
            }
        }
        if self.clock_dirty {
            match self.storage.set(&self.clock_key, &encode_clock_offset(self.clock_offset, &self.tag)) {
                Ok(()) => self.clock_dirty = false,
                Err(e) => report.errors.push(storage_failed(e)),
            }
            report.clock = Some(self.clock_offset);
        }
        if self.epoch_dirty {
            if let Err(e) = self.persist_epoch() {
                report.errors.push(e);
            } else {
                self.epoch_dirty = false;
            }
        }
        let mut dirty = self.dirty.drain();
        // Every record is read first, then every write is made, each in one call where the
        // adapter can: a browser's storage converts every string that crosses into it, and
        // answers reads made between writes more slowly than reads made together.
        dirty.retain(|key| self.replica.entry(key).is_some());
        if dirty.is_empty() {
            return self.with_records(report, Vec::new());
        }
        // The records written that are news too, taken along rather than encoded again: both
        // lists are in the order of the task's writes, so a burst's keys line up one for one.
        let mut news_records: Vec<Option<String>> = vec![None; report.changes.len()];
        let mut next_change = 0;
        let storage_keys: Vec<String> = dirty.iter().map(|key| self.storage_key(key)).collect();
        let fetched = self.storage.get_each(&storage_keys).unwrap_or_default();
        let mut stored = fetched.values();
        let mut keys = Vec::with_capacity(dirty.len());
        let mut writes = Vec::with_capacity(dirty.len());
        for (key, storage_key) in dirty.into_iter().zip(storage_keys) {
            // Taken first, so that each answer stays with its key whatever the loop skips.
            let text = stored.next().flatten();
            let change = report.changes.get(next_change).is_some_and(|(k, _)| *k == key).then(|| {
                next_change += 1;
                next_change - 1
            });
            // The stored record's head, read once for both questions asked of it.
            let stored_head = text.and_then(|text| Some((text, record_marks(text, &self.tag)?)));
            // A write for everyone still pending in the record this one replaces (another tab's,
            // made before it heard of ours) stays in the outbox, covered; other tabs hear of it.
            if !self.unsynced.contains(&key) {
                let held = self.replica.entry(&key);
                let waiting = stored_head.clone().zip(held).and_then(|(stored, held)| self.stored_pending_before(stored, &key, held));
                if waiting.is_some_and(|waiting| self.cover(&key, waiting)) {
                    if let Some(held) = self.replica.entry(&key) {
                        match report.changes.iter_mut().find(|(k, _)| *k == key) {
                            Some(change) => change.1 = held.clone(),
                            None => report.changes.push((key.clone(), held.clone())),
                        }
                    }
                }
            }
            let Some(entry) = self.replica.entry(&key) else { continue };
            // What could not be read is written over, as if nothing were stored.
            if stored_head.is_some_and(|stored| self.stored_is_current(stored, &key, entry)) {
                self.unpersisted.remove(&key);
                continue;
            }
            let record = self.encode_entry(&key, entry);
            if let Some(slot) = change.and_then(|i| news_records.get_mut(i)) {
                *slot = Some(record.clone());
            }
            writes.push((storage_key, record));
            keys.push(key);
        }
        self.covers_done.clear();
        let mut done = 0;
        while done < writes.len() {
            let stored = match self.storage.set_each(&writes[done..]) {
                Ok(()) => writes.len() - done,
                // An adapter's count is not trusted further than the items it was given.
                Err((stored, _)) => stored.min(writes.len() - done),
            };
            for key in &keys[done..done + stored] {
                self.unpersisted.remove(key);
            }
            done += stored;
            // The write that failed goes on alone: where storage is full, space is made for it.
            if let Some((storage_key, text)) = writes.get(done) {
                if let Err(e) = self.persist(&keys[done], storage_key, text, now_ms) {
                    report.errors.push(e);
                }
                done += 1;
            }
        }
        self.with_records(report, news_records)
    }

    /// The write for everyone waiting in `text` (whose head is `marks`), a stored record older
    /// than `entry`: the record's own (marked pending) or the one it covers. Read whole only when
    /// it may hold one.
    fn stored_pending_before(&self, (text, (ts, node, marks)): StoredHead, key: &str, entry: &Entry) -> Option<Entry> {
        if (ts, node) >= (entry.stamp.ts, entry.stamp.node.as_str()) || matches!(marks, Pending::None) {
            return None;
        }
        let waiting = match decode_record_pending(text, &self.tag) {
            Ok((DecodedRecord::Mine(stored), Pending::This)) => stored,
            Ok((DecodedRecord::Mine(_), Pending::Covered(covered))) => covered,
            _ => return None,
        };
        self.cover_done(key).is_none_or(|done| *done < waiting.stamp).then_some(waiting)
    }

    /// Whether `text`, stored where `entry` goes, is `entry` or a newer write, so that writing
    /// `entry` would only undo another tab's work ([`Cache::stored_is_current_as`]).
    fn stored_is_current(&self, (text, (ts, node, marks)): StoredHead, key: &str, entry: &Entry) -> bool {
        // Before nearly every write, storage holds this tab's own older record: its head says so,
        // and its value need not be read. A record kept is first read whole: a damaged one is
        // written over.
        let marked = matches!(marks, Pending::This);
        let unsynced = self.unsynced.contains(key);
        if !self.stored_is_current_as((ts, node), marked, &entry.stamp, unsynced) {
            return false;
        }
        let Ok((DecodedRecord::Mine(_), stored)) = decode_record_pending(text, &self.tag) else { return false };
        let same = (ts, node) == (entry.stamp.ts, entry.stamp.node.as_str());
        if !same || marked || unsynced || !self.track_sync {
            return true;
        }
        // The same write: which covered write its record keeps. A tab may cover a write no other
        // tab knows of, and only the backend's word takes one out.
        let stored = match stored {
            Pending::Covered(covered) => Some(covered.stamp),
            _ => None,
        };
        match (stored, self.covered.get(key)) {
            (Some(stored), Some(ours)) => stored >= ours.stamp,
            (Some(stored), None) => self.cover_done(key).is_none_or(|done| *done < stored),
            (None, ours) => ours.is_none(),
        }
    }

    /// The last covered write of `key` the backend took since the last flush.
    fn cover_done(&self, key: &str) -> Option<&Stamp> {
        self.covers_done.iter().rev().find(|(k, _)| k == key).map(|(_, stamp)| stamp)
    }

    /// Whether what storage holds, stamped `stored` (with its pending mark `marked`), must stay
    /// rather than be written over with ours, stamped `ours` (pending: `unsynced`), for a write
    /// or a clear alike. This tab's view is only as new as the news it has heard, and news travels
    /// apart from storage: another tab may have stored something newer since (its news is on the
    /// way, and nothing would ever write it back), or the backend's acknowledgement of this very
    /// one (a pending mark written over it would stay: after a reload it is pending in a tab that
    /// only sends it if it leads). An instance without a backend never marks anything, so it never
    /// writes over the same thing stored with its mark: that would take it out of the outbox of
    /// the instances that sync.
    fn stored_is_current_as(&self, stored: (u64, &str), marked: bool, ours: &Stamp, unsynced: bool) -> bool {
        let ours = (ours.ts, ours.node.as_str());
        stored > ours || (stored == ours && (!marked || unsynced || !self.track_sync))
    }

    fn persist_epoch(&mut self) -> Result<(), CacheError> {
        let Some(epoch) = self.replica.epoch().cloned() else { return Ok(()) };
        // Remove records ordered before the epoch first (that frees the space the epoch needs on a
        // full storage), re-reading each: another tab may have written a newer one since.
        let items = self.storage.scan(&self.prefix).map_err(storage_failed)?;
        for (storage_key, text) in items.iter() {
            if storage_key == self.meta_key {
                continue;
            }
            if let Ok(DecodedRecord::Mine(entry)) = decode_record(text, &self.tag) {
                if entry.stamp <= epoch {
                    self.storage.remove(storage_key).map_err(storage_failed)?;
                }
            }
        }
        // As for records: never over a newer clear, nor over this one's acknowledgement.
        if let Ok(Some(text)) = self.storage.get(&self.meta_key) {
            if let Ok(Some((stored, marked))) = decode_meta_flagged(&text, &self.tag) {
                if self.stored_is_current_as((stored.ts, &stored.node), marked, &epoch, self.clear_unsynced) {
                    return Ok(());
                }
            }
        }
        let text = encode_meta_flagged(&epoch, &self.tag, self.clear_unsynced);
        match self.storage.set(&self.meta_key, &text) {
            Ok(()) => Ok(()),
            Err(StorageError::QuotaExceeded) => Err(CacheError::QuotaExceeded { key: self.meta_key.clone() }),
            Err(e) => Err(storage_failed(e)),
        }
    }

    fn persist(&mut self, key: &str, storage_key: &str, text: &str, now_ms: u64) -> Result<(), CacheError> {
        match self.storage.set(storage_key, text) {
            Ok(()) => {
                self.unpersisted.remove(key);
                return Ok(());
            }
            Err(StorageError::QuotaExceeded) => {}
            Err(e) => return Err(storage_failed_for(key, e)),
        }
        // Storage is full: drop dead entries' records first; they only guard against late writes.
        // A write the backend has not acknowledged is never a candidate, dead (a pending remove)
        // or not: its record is the outbox, and without it a reload would never send it.
        let dead: Vec<String> = self
            .replica
            .iter()
            .filter(|(k, e)| e.is_dead(now_ms) && self.evictable(k, key))
            .map(|(k, _)| k.clone())
            .collect();
        let mut candidates = self.live_by_recency(key, now_ms);
        candidates.reverse(); // pop() takes the least recently used first
        let mut batch = dead;
        let mut evicted: Vec<(String, String)> = Vec::new();
        loop {
            for victim in batch.drain(..) {
                if let Some(old_text) = self.evict(&victim) {
                    evicted.push((victim, old_text));
                }
            }
            match self.storage.set(storage_key, text) {
                Ok(()) => {
                    self.unpersisted.remove(key);
                    return Ok(());
                }
                Err(StorageError::QuotaExceeded) if !candidates.is_empty() => {
                    let n = (candidates.len() / 8).max(1);
                    let at = candidates.len() - n;
                    batch = candidates.split_off(at);
                }
                Err(e) => {
                    // Evicting did not make room: put back what was evicted for nothing.
                    for (victim, old_text) in evicted.into_iter().rev() {
                        if self.storage.set(&self.storage_key(&victim), &old_text).is_ok() {
                            self.unpersisted.remove(&victim);
                        }
                    }
                    self.unpersisted.insert(key.to_owned());
                    return Err(match e {
                        StorageError::QuotaExceeded => CacheError::QuotaExceeded { key: key.to_owned() },
                        e => storage_failed_for(key, e),
                    });
                }
            }
        }
    }

    /// Whether `candidate`'s record may be evicted to make room for `writing`'s.
    fn evictable(&self, candidate: &str, writing: &str) -> bool {
        candidate != writing
            && !self.unpersisted.contains(candidate)
            && !self.unsynced.contains(candidate)
            && !self.covered.contains_key(candidate)
    }

    /// Removes `victim`'s record from storage if it is still the write this replica holds (another
    /// tab may just have stored a newer one) and no instance still has to send it (an instance
    /// without a backend shares storage with those that have one); returns the removed text.
    fn evict(&mut self, victim: &str) -> Option<String> {
        let storage_key = self.storage_key(victim);
        let text = self.storage.get(&storage_key).ok()??;
        let held = self.replica.entry(victim)?;
        match decode_record_pending(&text, &self.tag) {
            Ok((DecodedRecord::Mine(stored), Pending::None)) if stored.stamp <= held.stamp => {}
            _ => return None,
        }
        self.storage.remove(&storage_key).ok()?;
        self.unpersisted.insert(victim.to_owned());
        Some(text)
    }

    /// Evictable live keys other than `except`, least recently used first.
    fn live_by_recency(&self, except: &str, now_ms: u64) -> Vec<String> {
        // Ordered by a heap of the expiry schedule's own type rather than a sort: one more
        // sort's code in the wasm costs more than this rarely taken path gains.
        let mut live: BinaryHeap<Reverse<(u64, String)>> = self
            .replica
            .iter()
            .filter(|(k, e)| e.is_live(now_ms) && self.evictable(k, except))
            .map(|(k, _)| Reverse((self.last_use.get(k).copied().unwrap_or(0), k.clone())))
            .collect();
        std::iter::from_fn(|| live.pop().map(|Reverse((_, k))| k)).collect()
    }

    /// Whether `key`'s current write is only in memory (storage was full).
    pub fn is_unpersisted(&self, key: &str) -> bool {
        self.unpersisted.contains(key)
    }

    /// Where `key`'s record is stored.
    fn storage_key(&self, key: &str) -> String {
        [self.prefix.as_str(), key].concat()
    }

    /// Encodes `key`'s write in this cache's storage record format (also what tabs send each
    /// other), with what of the key waits for the backend.
    pub fn encode_entry(&self, key: &str, entry: &Entry) -> String {
        let pending = match self.covered.get(key) {
            Some(covered) => Pending::Covered(covered),
            None if self.unsynced.contains(key) => Pending::This,
            None => Pending::None,
        };
        encode_record_pending(entry, &self.tag, pending)
    }

    /// Decodes a record sent by another tab, with what of its key waits for the backend; `None`
    /// when it belongs to another cache.
    pub fn decode_entry(&self, key: &str, text: &str) -> Option<Result<(Entry, Pending), CacheError>> {
        match decode_record_pending(text, &self.tag) {
            Ok((DecodedRecord::Mine(entry), pending)) => Some(Ok((entry, pending))),
            Ok((DecodedRecord::OtherCache, _)) => None,
            Err(reason) => Some(Err(CacheError::Protocol { message: format!("bad record for {}: {reason}", crate::json::Quoted(key)) })),
        }
    }

    /// Decodes a storage record written by another tab (the `storage` event fallback), if the key
    /// is one of this cache's entries.
    pub fn decode_foreign_write(&self, storage_key: &str, text: &str) -> Option<Result<TabWrite, CacheError>> {
        let key = storage_key.strip_prefix(self.prefix.as_str())?;
        if key.contains('\0') || key.is_empty() {
            return None;
        }
        match decode_record_pending(text, &self.tag) {
            Ok((DecodedRecord::Mine(entry), pending)) => Some(Ok((key.to_owned(), entry, pending))),
            Ok((DecodedRecord::OtherCache, _)) => None,
            Err(reason) => Some(Err(corrupt(storage_key, reason))),
        }
    }

    /// Whether a record another tab stored under `storage_key` is exactly the write this cache
    /// holds for that key (a `storage` event that needs no work).
    pub fn holds_record(&self, storage_key: &str, text: &str) -> bool {
        let held = storage_key.strip_prefix(self.prefix.as_str()).and_then(|key| self.replica.entry(key));
        held.is_some_and(|entry| record_stamp(text, &self.tag).as_ref() == Some(&entry.stamp))
    }

    /// Decodes the clear epoch from a meta record written by another tab (`storage` event).
    pub fn decode_foreign_epoch(&self, storage_key: &str, text: &str) -> Option<(Stamp, bool)> {
        if storage_key != self.meta_key {
            return None;
        }
        decode_meta_flagged(text, &self.tag).ok().flatten()
    }
}

fn corrupt(key: &str, reason: String) -> CacheError {
    CacheError::StorageCorrupt { key: key.to_owned(), reason }
}

fn storage_failed(e: StorageError) -> CacheError {
    CacheError::Storage { key: None, message: e.to_string() }
}

fn storage_failed_for(key: &str, e: StorageError) -> CacheError {
    CacheError::Storage { key: Some(key.to_owned()), message: e.to_string() }
}
