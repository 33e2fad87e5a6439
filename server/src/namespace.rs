//! The merge rule applied to one namespace, inside whatever transaction a store provides.
//!
//! Each key keeps its highest-stamped write (`(timestamp, node)` order, tombstones included) and
//! the namespace keeps its newest clear epoch, exactly as the core's [`Replica`] does; the
//! decision for each incoming write is made *by* a [`Replica`] so the server cannot drift from the
//! client. On top of that the server adds what only it needs:
//! - every accepted write gets the next sequence number, which is what `/sync` delivers by;
//! - a clear turns every stored value ordered at or before it into a tombstone stamped with the
//!   epoch, at a new sequence number, so clients that know nothing of clears drop those keys too;
//! - garbage collection forgets entries dead for longer than the retention and raises the
//!   namespace's *floor* to the newest stamp it forgot: a write at or before the floor to a key
//!   the namespace holds nothing for might be an old write of a key whose remove was forgotten,
//!   so it is refused like a stale write (such a write is always more than the retention old). A
//!   key that has a stored entry needs no floor: that entry is newer than anything forgotten of
//!   the key (a write after a collection must beat the floor), so the plain rule is exact;
//! - an invalidation turns every live value whose key matches a pattern into a tombstone written
//!   by the server itself ([`INVALIDATION_NODE`]), stamped by the core's hybrid clock after
//!   observing the value, so it wins under the ordinary rule and is delivered like any write;
//! - the namespace keeps its own notion of the time, [`Meta::clock`], the highest timestamp it has
//!   accepted. The server's wall clock only ever holds it back, never pushes it: invalidations are
//!   stamped no later than it (plus what they must beat) and garbage collection forgets nothing
//!   younger than the retention by it, so a server clock that jumps days ahead can neither stamp
//!   tombstones that outrank the clients' next writes for days nor raise the floor over writes
//!   made a moment ago.
use std::collections::BTreeMap;

use mfe_shared_cache_core::{Entry, KeyPattern, MergeOutcome, Replica, Stamp};

use crate::store::{
    Census, ChangeResult, ClearResult, Delta, DeltaQuery, DeltaRow, EntriesPage, EntriesQuery, Header, Meta, NsRead,
    NsWrite, OpReport, Rejection, StoreError, Stored, WriteOp,
};

/// The writer id of the tombstones an invalidation writes. Client ids are 12 random characters,
/// or `app:` and 12 random characters, so no client writes as it.
pub const INVALIDATION_NODE: &str = "server";

/// Decides whether `incoming` beats what the namespace holds for `key`.
///
/// The stored entry and the epoch are replayed into a [`Replica`] (as value-less stand-ins: the
/// rule looks only at stamps), and the incoming write is merged into it: the outcome is the core's.
pub fn decide(key: &str, current: Option<&Entry>, meta: &Meta, incoming: &Entry) -> MergeOutcome {
    let stand_in = |e: &Entry| match &e.value {
        Some(_) => Entry::value(e.stamp.clone(), e.ttl_ms, String::new()),
        None => Entry::tombstone(e.stamp.clone()),
    };
    let mut replica = Replica::new("");
    if let Some(epoch) = &meta.epoch {
        replica.merge_epoch(epoch);
    }
    if let Some(current) = current {
        replica.merge(key, stand_in(current));
    }
    let outcome = replica.merge(key, stand_in(incoming));
    if outcome == MergeOutcome::Applied
        && current.is_none()
        && meta.floor.as_ref().is_some_and(|floor| incoming.stamp <= *floor)
    {
        return MergeOutcome::Stale;
    }
    outcome
}

/// Whether a clear at `epoch` removes a write stamped `stamp` (the core's rule: at or before).
pub fn cleared_by(stamp: &Stamp, epoch: &Stamp) -> bool {
    stamp <= epoch
}

/// Applies one write operation to a namespace.
pub(crate) fn apply<T: NsWrite>(txn: &mut T, op: &WriteOp, now_ms: u64) -> Result<OpReport, StoreError> {
    let mut meta = txn.meta()?;
    let cursor_before = meta.cursor;
    let mut changes = Vec::new();
    let mut clear = None;
    let mut invalidated = 0;
    match op {
        WriteOp::Changes(writes) => {
            changes.reserve(writes.len());
            for (key, incoming) in writes {
                changes.push(apply_change(txn, &mut meta, key, incoming, now_ms)?);
            }
        }
        WriteOp::Clear(epoch) => clear = Some(apply_clear(txn, &mut meta, epoch, now_ms)?),
        WriteOp::Invalidate(patterns) => invalidated = apply_invalidate(txn, &mut meta, patterns, now_ms)?,
    }
    if meta.cursor != cursor_before {
        txn.put_meta(&meta)?;
    }
    Ok(OpReport { cursor_before, cursor: meta.cursor, changes, clear, invalidated })
}

fn apply_change<T: NsWrite>(
    txn: &mut T,
    meta: &mut Meta,
    key: &str,
    incoming: &Entry,
    now_ms: u64,
) -> Result<ChangeResult, StoreError> {
    let current = txn.get(key)?;
    let outcome = decide(key, current.as_ref().map(|s| &s.entry), meta, incoming);
    let (seq, winner, rejected) = match outcome {
        MergeOutcome::Applied => {
            let seq = meta.next_seq(now_ms)?;
            meta.clock = meta.clock.max(incoming.stamp.ts);
            txn.put(key, &Stored { entry: incoming.clone(), seq }, current.map(|c| c.seq))?;
            (Some(seq), None, None)
        }
        MergeOutcome::Duplicate => match current {
            // The same stamp with other contents is not the same write: the first one stays.
            Some(current) if !same_write(&current.entry, incoming) => (None, Some(current), Some(Rejection::StampConflict)),
            _ => (None, None, None),
        },
        // Refused by the epoch or the GC floor: the key is gone as of that stamp.
        MergeOutcome::Cleared => (None, Some(refusal(current, meta.epoch.as_ref())), None),
        MergeOutcome::Stale => match current {
            Some(current) => (None, Some(current), None),
            None => (None, Some(refusal(None, meta.floor.as_ref())), Some(Rejection::BelowFloor)),
        },
    };
    Ok(ChangeResult { outcome, seq, winner, rejected })
}

/// Whether two writes under one stamp are the same write (a duplicate delivery), not two.
fn same_write(a: &Entry, b: &Entry) -> bool {
    a.value == b.value && a.ttl_ms == b.ttl_ms && a.written_at == b.written_at
}

/// What a writer whose change was refused by `by` (the epoch or the floor) should hold instead:
/// the stored entry if it is newer, else a tombstone at `by`, which is not stored (its `seq` is 0).
fn refusal(current: Option<Stored>, by: Option<&Stamp>) -> Stored {
    match (current, by) {
        (Some(current), Some(by)) if current.entry.stamp > *by => current,
        (_, by) => Stored { entry: Entry::tombstone(by.cloned().unwrap_or_default()), seq: 0 },
    }
}

fn apply_clear<T: NsWrite>(
    txn: &mut T,
    meta: &mut Meta,
    epoch: &Stamp,
    now_ms: u64,
) -> Result<ClearResult, StoreError> {
    let outcome = take_epoch(meta, epoch, now_ms)?;
    if outcome != MergeOutcome::Applied {
        return Ok(ClearResult { outcome, tombstoned: 0 });
    }
    let headers = txn.headers("")?;
    let tombstoned = tombstone_cleared(txn, meta, headers, now_ms)?;
    Ok(ClearResult { outcome, tombstoned })
}

/// Makes `epoch` the namespace's clear epoch if it is newer than the one it has (`Applied`);
/// `Duplicate` or `Stale` (and nothing changed) otherwise.
fn take_epoch(meta: &mut Meta, epoch: &Stamp, now_ms: u64) -> Result<MergeOutcome, StoreError> {
    match &meta.epoch {
        Some(current) if current == epoch => return Ok(MergeOutcome::Duplicate),
        Some(current) if current > epoch => return Ok(MergeOutcome::Stale),
        _ => {}
    }
    // The clear itself takes a sequence number, so a client whose cursor is below it learns of
    // the epoch even when there was nothing to tombstone.
    meta.epoch_seq = meta.next_seq(now_ms)?;
    meta.epoch = Some(epoch.clone());
    meta.clock = meta.clock.max(epoch.ts);
    Ok(MergeOutcome::Applied)
}

/// Whether a stored value is removed by the namespace's epoch but not yet a tombstone: only
/// between the pages of a clear a store runs in steps (or after one that stopped half-way), and
/// readers then treat it as removed.
fn uncleared(header: &Header, meta: &Meta) -> bool {
    !header.tombstone && meta.epoch.as_ref().is_some_and(|epoch| cleared_by(&header.stamp, epoch))
}

/// Turns the values among `headers` that the epoch removes into tombstones at the epoch.
fn tombstone_cleared<T: NsWrite>(
    txn: &mut T,
    meta: &mut Meta,
    headers: impl IntoIterator<Item = (String, Header)>,
    now_ms: u64,
) -> Result<usize, StoreError> {
    let Some(epoch) = meta.epoch.clone() else { return Ok(0) };
    let mut tombstoned = 0;
    for (key, header) in headers {
        // Tombstones already ordered before the epoch stay as they are: both refuse the same writes
        // from now on, and re-sending them would only repeat a remove every client has.
        if !uncleared(&header, meta) {
            continue;
        }
        let seq = meta.next_seq(now_ms)?;
        txn.put(&key, &Stored { entry: Entry::tombstone(epoch.clone()), seq }, Some(header.seq))?;
        tombstoned += 1;
    }
    Ok(tombstoned)
}

/// A clear in steps, for a store that must not visit a whole namespace at once (Redis): this
/// first step takes the epoch (from then on the namespace refuses every write ordered at or
/// before it) and visits no key; [`clear_page`] then tombstones the values it removes, a page of
/// keys at a time. The report is the whole clear's once the last page is done.
pub(crate) fn start_clear<T: NsWrite>(txn: &mut T, epoch: &Stamp, now_ms: u64) -> Result<OpReport, StoreError> {
    let mut meta = txn.meta()?;
    let cursor_before = meta.cursor;
    let outcome = take_epoch(&mut meta, epoch, now_ms)?;
    if outcome == MergeOutcome::Applied {
        txn.put_meta(&meta)?;
    }
    let clear = Some(ClearResult { outcome, tombstoned: 0 });
    Ok(OpReport { cursor_before, cursor: meta.cursor, changes: Vec::new(), clear, invalidated: 0 })
}

/// One page of a clear in steps (see [`start_clear`]): how many of `headers` it tombstoned.
pub(crate) fn clear_page<T: NsWrite>(txn: &mut T, headers: Vec<(String, Header)>, now_ms: u64) -> Result<usize, StoreError> {
    let mut meta = txn.meta()?;
    let tombstoned = tombstone_cleared(txn, &mut meta, headers, now_ms)?;
    if tombstoned > 0 {
        txn.put_meta(&meta)?;
    }
    Ok(tombstoned)
}

/// The tombstone the server writes over a live value stamped `current` to invalidate it: the
/// core's own local write path (a [`Replica`] writing as [`INVALIDATION_NODE`] after observing the
/// value and the epoch), with the namespace's time as its wall clock: `min(now, meta.clock)`. So
/// its timestamp is `max(min(now, clock), current + 1)`: after every write the namespace had
/// accepted when it ran (a client that loaded the old value then cannot bring it back), and never
/// later than that, whatever the server's clock says (a clock days ahead would otherwise stamp
/// tombstones that beat the clients' next writes for days). Each key gets its own stamp: one
/// stamp for a whole invalidation would be pushed by the newest value matched, and would then beat
/// later writes to every other key. `None` if the rule would not let it win (only possible for a
/// value stamped at the largest timestamp there is).
pub fn invalidation_tombstone(key: &str, current: &Stamp, meta: &Meta, now_ms: u64) -> Option<Entry> {
    let stand_in = Entry::value(current.clone(), 0, String::new());
    let mut server = Replica::new(INVALIDATION_NODE);
    if let Some(epoch) = &meta.epoch {
        server.merge_epoch(epoch);
    }
    server.merge(key, stand_in.clone());
    let tombstone = server.write(key, None, 0, now_ms.min(meta.clock));
    (decide(key, Some(&stand_in), meta, &tombstone) == MergeOutcome::Applied).then_some(tombstone)
}

/// The key ranges an invalidation scans: the literal prefixes of its wildcard patterns, without
/// those inside another (`stores:` covers `stores:42:`), so no key is visited twice.
pub(crate) fn scan_prefixes(patterns: &[KeyPattern]) -> Vec<String> {
    let mut prefixes: Vec<String> = patterns.iter().filter(|p| !p.is_exact()).map(KeyPattern::literal_prefix).collect();
    prefixes.sort_unstable();
    let mut kept: Vec<String> = Vec::with_capacity(prefixes.len());
    for prefix in prefixes {
        // Sorted, a prefix that covers this one is the last kept one if any is.
        if kept.last().is_none_or(|last| !prefix.starts_with(last.as_str())) {
            kept.push(prefix);
        }
    }
    kept
}

fn apply_invalidate<T: NsWrite>(
    txn: &mut T,
    meta: &mut Meta,
    patterns: &[KeyPattern],
    now_ms: u64,
) -> Result<usize, StoreError> {
    // Collect first (a key matched by several patterns counts once), then write in key order.
    let mut matched: BTreeMap<String, Header> = BTreeMap::new();
    for pattern in patterns.iter().filter(|p| p.is_exact()) {
        // An exact pattern names one key: its literal text, escapes resolved.
        let key = pattern.literal_prefix();
        if let Some(stored) = txn.get(&key)? {
            matched.insert(key, Header::of(&stored));
        }
    }
    let wild = Wildcards::of(patterns);
    for prefix in scan_prefixes(patterns) {
        matched.extend(wild.filter(txn.headers(&prefix)?));
    }
    invalidate_matched(txn, meta, matched, now_ms)
}

/// The wildcard patterns of an invalidation, each with its literal prefix.
struct Wildcards<'a>(Vec<(String, &'a KeyPattern)>);

impl<'a> Wildcards<'a> {
    fn of(patterns: &'a [KeyPattern]) -> Self {
        Wildcards(patterns.iter().filter(|p| !p.is_exact()).map(|p| (p.literal_prefix(), p)).collect())
    }

    fn filter<'s, I>(&'s self, headers: I) -> impl Iterator<Item = (String, Header)> + 's
    where
        I: IntoIterator<Item = (String, Header)>,
        I::IntoIter: 's,
    {
        // The cheap prefix test first: most keys of a range fail it for most patterns.
        headers
            .into_iter()
            .filter(|(key, _)| self.0.iter().any(|(p, pattern)| key.starts_with(p.as_str()) && pattern.matches(key)))
    }
}

/// One page of an invalidation in steps, for a store that must not visit a whole range at once
/// (Redis): its exact patterns go first as an ordinary [`apply`] (single keys); then each range of
/// [`scan_prefixes`] is visited a page of `headers` at a time. A key already invalidated by
/// an earlier step is a tombstone by then, so it counts once, as in one step.
pub(crate) fn invalidate_page<T: NsWrite>(
    txn: &mut T,
    patterns: &[KeyPattern],
    headers: Vec<(String, Header)>,
    now_ms: u64,
) -> Result<usize, StoreError> {
    let mut meta = txn.meta()?;
    let matched: BTreeMap<String, Header> = Wildcards::of(patterns).filter(headers).collect();
    let invalidated = invalidate_matched(txn, &mut meta, matched, now_ms)?;
    if invalidated > 0 {
        txn.put_meta(&meta)?;
    }
    Ok(invalidated)
}

fn invalidate_matched<T: NsWrite>(
    txn: &mut T,
    meta: &mut Meta,
    matched: BTreeMap<String, Header>,
    now_ms: u64,
) -> Result<usize, StoreError> {
    let mut invalidated = 0;
    for (key, header) in matched {
        if !header.is_live(now_ms) {
            continue;
        }
        let Some(tombstone) = invalidation_tombstone(&key, &header.stamp, meta, now_ms) else { continue };
        let seq = meta.next_seq(now_ms)?;
        meta.clock = meta.clock.max(tombstone.stamp.ts);
        txn.put(&key, &Stored { entry: tombstone, seq }, Some(header.seq))?;
        invalidated += 1;
    }
    Ok(invalidated)
}

/// Forgets the entries of a namespace that have been dead for longer than `retention_ms`, by the
/// namespace's time: `min(now, newest timestamp it holds)`. A server clock that jumps ahead (and
/// a collection at start-up on it) cannot forget tombstones of a moment ago and raise the floor
/// over writes stamped a moment ago; an idle namespace keeps its tombstones until it is written
/// again, which costs space, never a write.
///
/// A pass that forgets something moves the cursor (with no row to deliver: clients never held
/// what is forgotten as a value) because what the namespace holds changed, and the cursor is the
/// version caches of it are keyed by.
pub(crate) fn collect<T: NsWrite>(txn: &mut T, now_ms: u64, retention_ms: u64) -> Result<usize, StoreError> {
    let headers = txn.headers("")?;
    collect_these(txn, headers, now_ms, retention_ms)
}

/// [`collect`] on some of the namespace's keys (a page of them, so that a store can collect a
/// large namespace in bounded steps). The namespace's time is then judged from its clock, its
/// epoch and these headers only: never later than a whole pass would judge it, so a page forgets
/// nothing a whole pass would keep (and, for a namespace whose clock is kept, exactly the same).
pub(crate) fn collect_these<T: NsWrite>(
    txn: &mut T,
    headers: Vec<(String, Header)>,
    now_ms: u64,
    retention_ms: u64,
) -> Result<usize, StoreError> {
    let mut meta = txn.meta()?;
    let newest = headers.iter().map(|(_, h)| h.stamp.ts).chain(meta.epoch.iter().map(|e| e.ts)).fold(meta.clock, u64::max);
    let cutoff = now_ms.min(newest).saturating_sub(retention_ms);
    let before = meta.clone();
    // Values a clear in steps left behind when it stopped half-way are tombstoned now (and so
    // not forgotten in this pass, even if expired long ago: their row has just changed).
    let (left, headers): (Vec<_>, Vec<_>) = headers.into_iter().partition(|(_, h)| uncleared(h, &meta));
    tombstone_cleared(txn, &mut meta, left, now_ms)?;
    let mut removed = 0;
    for (key, header) in headers {
        if header.dead_since.is_some_and(|since| since < cutoff) {
            txn.forget(&key, header.seq)?;
            if meta.floor.as_ref().is_none_or(|floor| header.stamp > *floor) {
                meta.floor = Some(header.stamp);
            }
            removed += 1;
        }
    }
    if removed > 0 {
        meta.next_seq(now_ms)?;
    }
    if meta != before {
        txn.put_meta(&meta)?;
    }
    Ok(removed)
}

/// Counts what a namespace holds (a scan of every header, no value is decoded).
pub(crate) fn census<T: NsRead>(txn: &T, now_ms: u64) -> Result<Census, StoreError> {
    let meta = txn.meta()?;
    let mut census = Census { cursor: meta.cursor, ..Census::default() };
    txn.scan_keys("", &mut |_, row| {
        count(&mut census, &row.header()?, &meta, now_ms);
        Ok(true)
    })?;
    Ok(census)
}

/// Adds one entry to a census; a value an unfinished clear removes counts as the tombstone it is
/// about to be.
pub(crate) fn count(census: &mut Census, header: &Header, meta: &Meta, now_ms: u64) {
    if header.tombstone || uncleared(header, meta) {
        census.tombstones += 1;
    } else if header.is_live(now_ms) {
        census.live += 1;
        if let Some(at) = header.dead_since {
            census.next_expiry = Some(census.next_expiry.map_or(at, |next| next.min(at)));
        }
    } else {
        census.expired += 1;
    }
}

/// Reads one page of the live values whose keys start with `query.prefix`, after `query.after`.
pub(crate) fn entries<T: NsRead>(txn: &T, query: &EntriesQuery) -> Result<EntriesPage, StoreError> {
    let meta = txn.meta()?;
    let cursor = meta.cursor;
    let prefix = query.prefix.as_str();
    let after = query.after.as_deref();
    let from = match after {
        Some(after) if after > prefix => after,
        _ => prefix,
    };
    let mut rows = Vec::new();
    let (mut bytes, mut examined) = (0usize, 0usize);
    let mut last_examined: Option<String> = None;
    let mut more = false;
    let mut next_expiry: Option<u64> = None;
    // At least one key per page, so paging always moves on.
    let (max_rows, max_examined) = (query.max_rows.max(1), query.max_examined.max(1));
    txn.scan_keys(from, &mut |key, row| {
        if !key.starts_with(prefix) {
            return Ok(false);
        }
        if Some(key) == after {
            return Ok(true);
        }
        // Only now is it known that another key with the prefix follows.
        if rows.len() >= max_rows || bytes >= query.max_bytes || examined >= max_examined {
            more = true;
            return Ok(false);
        }
        examined += 1;
        last_examined = Some(key.to_owned());
        let header = row.header()?;
        if !header.is_live(query.now_ms) || uncleared(&header, &meta) {
            return Ok(true);
        }
        let stored = row.stored()?;
        if let Some(at) = stored.entry.expires_at() {
            next_expiry = Some(next_expiry.map_or(at, |next| next.min(at)));
        }
        bytes = bytes.saturating_add(key.len() + stored.entry.value.as_ref().map_or(0, String::len));
        rows.push(DeltaRow { key: key.to_owned(), stored });
        Ok(true)
    })?;
    Ok(EntriesPage { rows, cursor, next_after: if more { last_examined } else { None }, next_expiry })
}

/// Reads what a client at `query.last_sync` has not seen yet.
pub(crate) fn delta<T: NsRead>(txn: &T, query: &DeltaQuery) -> Result<Delta, StoreError> {
    let meta = txn.meta()?;
    // A cursor ahead of ours did not come from this data (it was wiped or restored from an older
    // backup): answer with everything rather than with nothing.
    let since = if query.last_sync > meta.cursor { 0 } else { query.last_sync };
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    let mut last_examined = since;
    let mut more = false;
    txn.scan_after(since, &mut |seq, key| {
        if rows.len() >= query.max_rows || bytes >= query.max_bytes {
            more = true;
            return Ok(false);
        }
        last_examined = seq;
        if query.exclude.contains(&seq) {
            return Ok(true);
        }
        let stored = txn
            .get(&key)?
            .filter(|stored| stored.seq == seq)
            .ok_or_else(|| StoreError::Corrupt(format!("sequence {seq} points to {key:?}, which is not at it")))?;
        bytes = bytes.saturating_add(key.len() + stored.entry.value.as_ref().map_or(0, String::len));
        rows.push(DeltaRow { key, stored });
        Ok(true)
    })?;
    let cursor = if more { last_examined } else { meta.cursor };
    let epoch = meta.epoch.filter(|_| meta.epoch_seq > since);
    let epoch_seq = if epoch.is_some() { meta.epoch_seq } else { 0 };
    Ok(Delta { rows, cursor, since, epoch, epoch_seq, more })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(ts: u64, node: &str) -> Entry {
        Entry::value(Stamp::new(ts, node), 0, "1")
    }

    #[test]
    fn decisions_follow_the_core_rule() {
        let meta = Meta::default();
        assert_eq!(decide("k", None, &meta, &v(1, "a")), MergeOutcome::Applied);
        assert_eq!(decide("k", Some(&v(10, "a")), &meta, &v(10, "b")), MergeOutcome::Applied);
        assert_eq!(decide("k", Some(&v(10, "b")), &meta, &v(10, "a")), MergeOutcome::Stale);
        assert_eq!(decide("k", Some(&v(10, "b")), &meta, &v(10, "b")), MergeOutcome::Duplicate);
        let tomb = Entry::tombstone(Stamp::new(20, "a"));
        assert_eq!(decide("k", Some(&tomb), &meta, &v(15, "z")), MergeOutcome::Stale);
    }

    #[test]
    fn the_epoch_and_the_floor_refuse_older_writes() {
        let epoch = Stamp::new(50, "e");
        let meta = Meta { epoch: Some(epoch.clone()), ..Meta::default() };
        assert_eq!(decide("k", None, &meta, &v(50, "e")), MergeOutcome::Cleared);
        assert_eq!(decide("k", None, &meta, &v(50, "f")), MergeOutcome::Applied);
        // A tombstone the clear left behind is at the epoch and must not change the outcome.
        assert_eq!(decide("k", Some(&Entry::tombstone(epoch)), &meta, &v(51, "a")), MergeOutcome::Applied);
        let meta = Meta { floor: Some(Stamp::new(70, "x")), ..Meta::default() };
        assert_eq!(decide("k", None, &meta, &v(70, "x")), MergeOutcome::Stale);
        assert_eq!(decide("k", None, &meta, &v(71, "")), MergeOutcome::Applied);
        // A key with a stored entry is judged against it alone.
        assert_eq!(decide("k", Some(&v(5, "a")), &meta, &v(6, "a")), MergeOutcome::Applied);
    }

    #[test]
    fn cleared_by_matches_the_replica() {
        for (ts, node) in [(9, "z"), (10, "a"), (10, "b"), (11, "")] {
            let mut replica = Replica::new("r");
            replica.merge("k", v(ts, node));
            let epoch = Stamp::new(10, "a");
            let removed = !replica.merge_epoch(&epoch).is_empty();
            assert_eq!(cleared_by(&Stamp::new(ts, node), &epoch), removed, "{ts} {node}");
        }
    }

    #[test]
    fn cursors_grow_and_follow_the_wall_clock() {
        let mut meta = Meta::default();
        assert_eq!(meta.next_seq(1000).unwrap(), 1000);
        assert_eq!(meta.next_seq(1000).unwrap(), 1001);
        assert_eq!(meta.next_seq(5).unwrap(), 1002);
        assert_eq!(meta.next_seq(0).unwrap(), 1003);
    }
}
