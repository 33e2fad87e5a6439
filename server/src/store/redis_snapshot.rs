//! One atomic read of a namespace in Redis, and what [`crate::namespace`] runs on.
//!
//! A [`Plan`] says which rows to read (a range of sequence numbers, ranges of keys, single keys);
//! the read script returns them with the meta, all from one point in time; a [`Snapshot`] serves
//! them through [`NsRead`], and an [`Overlay`] on it through [`NsWrite`], recording writes for
//! the commit script instead of doing them. The merge rule, clears, GC and paging stay in
//! `namespace`: these types only answer its questions.
//!
//! A plan is a guess (how many rows a delta page needs depends on their sizes and on which ones
//! are excluded). When `namespace` asks for something the snapshot does not hold, the snapshot
//! answers "nothing more" and records a *miss*; the caller then discards the result, widens the
//! plan and reads again (a new snapshot: answers never mix two points in time). After two
//! widenings every limit is gone, so this ends within a few rounds.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, PoisonError};

use mfe_shared_cache_core::KeyPattern;

use super::codec::{decode_header, decode_meta, decode_stored, encode_meta, encode_stored};
use super::{DeltaQuery, EntriesQuery, Header, Meta, NsRead, NsWrite, Row, StoreError, Stored, WriteOp};

/// "No byte budget": the largest integer a Lua number holds exactly.
pub(crate) const UNLIMITED: u64 = 1 << 53;
/// What a row costs the read script's byte budget beyond its key and value (its header), at most.
const ROW_OVERHEAD: u64 = 128;
/// Rounds of widening before every limit is dropped.
const GROWTH_ROUNDS: u32 = 2;
/// How much a limit grows per round.
const GROWTH: u64 = 8;

/// Rows by sequence number: those above `after`, at most `limit` of them (`None`: all), stopping
/// once keys and rows add up to `budget` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SeqRange {
    pub after: u64,
    pub limit: Option<u64>,
    pub budget: u64,
}

/// Keys at or after `from` that start with `prefix` (so the read stops at the prefix's end), in
/// key order, with their whole rows (`full`) or only their headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRange {
    pub from: String,
    pub prefix: String,
    pub limit: Option<u64>,
    pub budget: u64,
    pub full: bool,
}

impl KeyRange {
    /// Every key with `prefix`, headers only (what [`NsWrite::headers`] returns).
    fn headers(prefix: &str) -> Self {
        KeyRange { from: prefix.to_owned(), prefix: prefix.to_owned(), limit: None, budget: UNLIMITED, full: false }
    }

    /// The headers of at most `keys` keys with `prefix` after `after` (from the first one when
    /// `None`), for a scan in pages ([`Overlay::header_page`]).
    pub fn page(prefix: &str, after: Option<&str>, keys: u64) -> Self {
        let from = page_start(prefix, after);
        // `from` is inclusive: one more key to skip `after` itself.
        let limit = if after == Some(from) { keys.saturating_add(1) } else { keys };
        KeyRange {
            from: from.to_owned(),
            prefix: prefix.to_owned(),
            limit: Some(limit.max(1)),
            budget: UNLIMITED,
            full: false,
        }
    }
}

/// Where a page of the keys with `prefix` after `after` starts (inclusive).
fn page_start<'a>(prefix: &'a str, after: Option<&'a str>) -> &'a str {
    match after {
        Some(after) if after > prefix => after,
        _ => prefix,
    }
}

/// What to read in one snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub seq: Option<SeqRange>,
    pub ranges: Vec<KeyRange>,
    /// Keys to read whole.
    pub gets: BTreeSet<String>,
    /// Widenings so far.
    rounds: u32,
}

impl Plan {
    /// What [`crate::namespace::apply`] will ask for `op`: the written keys. (A clear and the
    /// wildcards of an invalidation are run in pages instead, see `redis.rs`; anything else it
    /// asks is a miss, and read on the next round.)
    pub fn for_write(op: &WriteOp) -> Self {
        let mut plan = Plan::default();
        match op {
            WriteOp::Changes(changes) => plan.gets.extend(changes.iter().map(|(key, _)| key.clone())),
            WriteOp::Clear(_) => {}
            WriteOp::Invalidate(patterns) => {
                plan.gets.extend(patterns.iter().filter(|p| p.is_exact()).map(KeyPattern::literal_prefix));
            }
        }
        plan
    }

    /// One page of a step-wise scan (see [`Overlay::header_page`]).
    pub fn for_page(prefix: &str, after: Option<&str>, keys: u64) -> Self {
        Plan { ranges: vec![KeyRange::page(prefix, after, keys)], ..Plan::default() }
    }

    /// Enough rows for one delta page, unless many are excluded or the values are large.
    pub fn for_delta(query: &DeltaQuery) -> Self {
        // A page looks at one row past its limit, and excluded rows do not count towards it.
        let limit = (query.max_rows as u64).saturating_add(query.exclude.len() as u64).saturating_add(1);
        let (limit, budget) = bounded(limit, query.max_bytes);
        Plan { seq: Some(SeqRange { after: query.last_sync, limit, budget }), ..Plan::default() }
    }

    /// Enough keys for one `/entries` page: it looks at `max_examined` keys, skips `after`, and
    /// needs one more to know whether more follow.
    pub fn for_entries(query: &EntriesQuery) -> Self {
        let limit = (query.max_examined.max(1) as u64).saturating_add(2);
        let from = match query.after.as_deref() {
            Some(after) if after > query.prefix.as_str() => after,
            _ => query.prefix.as_str(),
        };
        let (limit, budget) = bounded(limit, query.max_bytes);
        let range = KeyRange { from: from.to_owned(), prefix: query.prefix.clone(), limit, budget, full: true };
        Plan { ranges: vec![range], ..Plan::default() }
    }

    /// Adds what `other` reads, for several writes applied on one snapshot (a group commit).
    pub fn merge(&mut self, other: Plan) {
        if other.seq.is_some() && self.seq.is_none() {
            self.seq = other.seq;
        }
        for range in other.ranges {
            if !self.ranges.contains(&range) {
                self.ranges.push(range);
            }
        }
        self.gets.extend(other.gets);
    }

    /// Adds what a round missed, and lets the limits that ran out grow (then go).
    pub fn widen(&mut self, misses: Misses) {
        self.rounds += 1;
        let unlimited = self.rounds >= GROWTH_ROUNDS;
        let grow = |limit: &mut Option<u64>, budget: &mut u64| {
            if unlimited {
                *limit = None;
                *budget = UNLIMITED;
            } else {
                *limit = limit.map(|l| l.saturating_mul(GROWTH));
                *budget = budget.saturating_mul(GROWTH).min(UNLIMITED);
            }
        };
        if let Some(after) = misses.seq_after {
            match &mut self.seq {
                Some(seq) => seq.after = seq.after.min(after),
                None => self.seq = Some(SeqRange { after, limit: None, budget: UNLIMITED }),
            }
        }
        if misses.seq_more {
            if let Some(seq) = &mut self.seq {
                grow(&mut seq.limit, &mut seq.budget);
            }
        }
        for index in misses.range_more {
            if let Some(range) = self.ranges.get_mut(index) {
                grow(&mut range.limit, &mut range.budget);
            }
        }
        for index in misses.range_full {
            if let Some(range) = self.ranges.get_mut(index) {
                range.full = true;
            }
        }
        for from in misses.scans {
            self.ranges.push(KeyRange { from, prefix: String::new(), limit: None, budget: UNLIMITED, full: true });
        }
        for prefix in misses.prefixes {
            self.ranges.push(KeyRange::headers(&prefix));
        }
        self.gets.extend(misses.keys);
    }
}

/// A row limit and a byte budget for reading `limit` rows of at most `max_bytes` in all.
fn bounded(limit: u64, max_bytes: usize) -> (Option<u64>, u64) {
    let budget = (max_bytes as u64).saturating_add(limit.saturating_mul(ROW_OVERHEAD)).min(UNLIMITED);
    // Past a million rows, read them all: the budget bounds the bytes anyway.
    ((limit <= 1 << 20).then_some(limit), budget)
}

/// What a snapshot was asked for and did not hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Misses {
    /// A scan by sequence from below where the snapshot starts (or with no sequence range).
    pub seq_after: Option<u64>,
    /// The sequence range ran out before the scan stopped.
    pub seq_more: bool,
    /// Key ranges (by index) that ran out before a scan stopped.
    pub range_more: BTreeSet<usize>,
    /// Key ranges (by index) read as headers whose whole rows were asked for.
    pub range_full: BTreeSet<usize>,
    /// Key scans from a key no range covers.
    pub scans: BTreeSet<String>,
    /// Header scans of a prefix no range covers.
    pub prefixes: BTreeSet<String>,
    /// Single keys not read.
    pub keys: BTreeSet<String>,
}

impl Misses {
    fn is_empty(&self) -> bool {
        *self == Misses::default()
    }
}

/// The read script's answer, parsed but not decoded (see `redis_scripts`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fetched {
    pub meta: Option<Vec<u8>>,
    /// Present when the plan had a sequence range.
    pub seq: Option<FetchedSeq>,
    /// One per key range of the plan, in order.
    pub ranges: Vec<FetchedRange>,
    /// One per key of `plan.gets`, in order.
    pub gets: Vec<Option<Vec<u8>>>,
}

/// Rows by sequence number: `(key, seq, row)`; the row is `None` if the index names a key with
/// no entry (a corrupt namespace).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FetchedSeq {
    pub complete: bool,
    pub rows: Vec<(String, u64, Option<Vec<u8>>)>,
}

/// Rows by key, in key order (whole, or cut after the header).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FetchedRange {
    pub complete: bool,
    pub rows: Vec<(String, Option<Vec<u8>>)>,
}

struct SeqPart {
    after: u64,
    complete: bool,
    rows: Vec<(u64, String)>,
}

struct RangePart {
    from: String,
    prefix: String,
    full: bool,
    complete: bool,
    rows: Vec<(String, Option<Vec<u8>>)>,
}

/// A namespace as one read script saw it.
pub(crate) struct Snapshot {
    /// The meta as stored (`None`: the namespace was never written), for the commit's check.
    meta_raw: Option<Vec<u8>>,
    meta: Meta,
    seq: Option<SeqPart>,
    ranges: Vec<RangePart>,
    /// Keys whose whole row (or absence) is known.
    rows: HashMap<String, Option<Vec<u8>>>,
    /// Behind a lock only so that snapshots are `Sync` (futures holding them are `Send`).
    misses: Mutex<Misses>,
}

impl Snapshot {
    pub fn new(plan: &Plan, fetched: Fetched) -> Result<Self, StoreError> {
        let meta = match &fetched.meta {
            Some(raw) => decode_meta(raw)?,
            None => Meta::default(),
        };
        let mut rows = HashMap::new();
        let seq = match (&plan.seq, fetched.seq) {
            (Some(range), Some(part)) => {
                let mut by_seq = Vec::with_capacity(part.rows.len());
                for (key, seq, row) in part.rows {
                    by_seq.push((seq, key.clone()));
                    rows.insert(key, row);
                }
                Some(SeqPart { after: range.after, complete: part.complete, rows: by_seq })
            }
            (None, None) => None,
            _ => return Err(StoreError::Corrupt("the Redis read script answered another plan".into())),
        };
        if plan.ranges.len() != fetched.ranges.len() || plan.gets.len() != fetched.gets.len() {
            return Err(StoreError::Corrupt("the Redis read script answered another plan".into()));
        }
        let mut ranges = Vec::with_capacity(plan.ranges.len());
        for (range, part) in plan.ranges.iter().zip(fetched.ranges) {
            if range.full {
                rows.extend(part.rows.iter().cloned());
            }
            ranges.push(RangePart {
                from: range.from.clone(),
                prefix: range.prefix.clone(),
                full: range.full,
                complete: part.complete,
                rows: part.rows,
            });
        }
        rows.extend(plan.gets.iter().cloned().zip(fetched.gets));
        Ok(Snapshot { meta_raw: fetched.meta, meta, seq, ranges, rows, misses: Mutex::default() })
    }

    /// What was asked and not held since the snapshot was made (`None`: nothing, the answers
    /// computed on it stand).
    pub fn take_misses(&self) -> Option<Misses> {
        let misses = std::mem::take(&mut *self.misses.lock().unwrap_or_else(PoisonError::into_inner));
        (!misses.is_empty()).then_some(misses)
    }

    fn miss(&self, record: impl FnOnce(&mut Misses)) {
        record(&mut self.misses.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// The rows with `prefix` of a range that covers the prefix and starts at or before `from`,
    /// from `from` on, and whether they run to the prefix's last key.
    fn key_order_from(&self, prefix: &str, from: &str) -> Option<(Vec<&KeyRow>, bool)> {
        self.ranges.iter().filter(|r| prefix.starts_with(r.prefix.as_str()) && r.from.as_str() <= from).find_map(|r| {
            let last = r.rows.last().map(|(key, _)| key.as_str());
            // Complete for this prefix: the range ran to its own end, or past the prefix's keys.
            let complete = r.complete || last.is_some_and(|key| key > from && !key.starts_with(prefix));
            // A range of a group's other job may stop before `from`: it does not cover it.
            if !complete && last.is_none_or(|key| key <= from) {
                return None;
            }
            let rows = r.rows.iter().filter(|(key, _)| key.as_str() >= from && key.starts_with(prefix)).collect();
            Some((rows, complete))
        })
    }

    /// The headers of every key with `prefix`, if a range holds them all.
    fn headers(&self, prefix: &str) -> Option<Result<BTreeMap<String, Header>, StoreError>> {
        let range = self
            .ranges
            .iter()
            .find(|r| r.complete && prefix.starts_with(r.prefix.as_str()) && r.from.as_str() <= prefix)?;
        let mut headers = BTreeMap::new();
        for (key, row) in range.rows.iter().filter(|(key, _)| key.starts_with(prefix)) {
            let header = match row {
                Some(row) => decode_header(row).map_err(|e| at(key, e)),
                None => Err(unindexed(key)),
            };
            match header {
                Ok(header) => headers.insert(key.clone(), header),
                Err(err) => return Some(Err(err)),
            };
        }
        Some(Ok(headers))
    }
}

fn at(key: &str, err: StoreError) -> StoreError {
    match err {
        StoreError::Corrupt(what) => StoreError::Corrupt(format!("{what} (key {key:?})")),
        other => other,
    }
}

fn unindexed(key: &str) -> StoreError {
    StoreError::Corrupt(format!("the key index lists {key:?}, which has no entry"))
}

impl NsRead for Snapshot {
    fn meta(&self) -> Result<Meta, StoreError> {
        Ok(self.meta.clone())
    }

    fn get(&self, key: &str) -> Result<Option<Stored>, StoreError> {
        match self.rows.get(key) {
            Some(Some(row)) => decode_stored(row).map(Some).map_err(|e| at(key, e)),
            Some(None) => Ok(None),
            None => {
                self.miss(|m| {
                    m.keys.insert(key.to_owned());
                });
                Ok(None)
            }
        }
    }

    fn scan_after(
        &self,
        after: u64,
        visit: &mut dyn FnMut(u64, String) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let Some(part) = self.seq.as_ref().filter(|part| part.after <= after) else {
            self.miss(|m| m.seq_after = Some(m.seq_after.map_or(after, |a| a.min(after))));
            return Ok(());
        };
        for (seq, key) in part.rows.iter().filter(|(seq, _)| *seq > after) {
            if !visit(*seq, key.clone())? {
                return Ok(());
            }
        }
        if !part.complete {
            self.miss(|m| m.seq_more = true);
        }
        Ok(())
    }

    /// Visits the held range that starts at or before `from`. A range read for a prefix ends
    /// where the prefix does: its only reader ([`crate::namespace::entries`]) stops at the first
    /// key without the prefix, which is exactly where the range ends.
    fn scan_keys(
        &self,
        from: &str,
        visit: &mut dyn FnMut(&str, &dyn Row) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let Some(index) = self.ranges.iter().position(|r| r.from.as_str() <= from) else {
            self.miss(|m| {
                m.scans.insert(from.to_owned());
            });
            return Ok(());
        };
        let range = &self.ranges[index];
        for (key, row) in range.rows.iter().filter(|(key, _)| key.as_str() >= from) {
            let row = SnapRow { snap: self, index, key, row: row.as_deref(), full: range.full };
            if !visit(key, &row)? {
                return Ok(());
            }
        }
        if !range.complete {
            self.miss(|m| {
                m.range_more.insert(index);
            });
        }
        Ok(())
    }
}

struct SnapRow<'a> {
    snap: &'a Snapshot,
    index: usize,
    key: &'a str,
    row: Option<&'a [u8]>,
    full: bool,
}

impl Row for SnapRow<'_> {
    fn header(&self) -> Result<Header, StoreError> {
        decode_header(self.row.ok_or_else(|| unindexed(self.key))?).map_err(|e| at(self.key, e))
    }

    fn stored(&self) -> Result<Stored, StoreError> {
        if !self.full {
            let index = self.index;
            self.snap.miss(|m| {
                m.range_full.insert(index);
            });
            // Never seen by a caller: a snapshot with misses is read again.
            return Err(StoreError::Unavailable("the snapshot holds headers only".into()));
        }
        decode_stored(self.row.ok_or_else(|| unindexed(self.key))?).map_err(|e| at(self.key, e))
    }
}

/// A write transaction on a snapshot: reads see the snapshot under this transaction's own
/// writes; the writes are kept for the commit script.
pub(crate) struct Overlay<'s> {
    snap: &'s Snapshot,
    meta: Meta,
    meta_dirty: bool,
    /// Key → its new row, or `None` to forget it.
    writes: BTreeMap<String, Option<Stored>>,
}

/// What an [`Overlay`] wrote, ready for the commit script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Commit {
    /// The meta the snapshot saw (`None`: no namespace yet); the commit happens only if Redis
    /// still holds exactly these bytes.
    pub expected: Option<Vec<u8>>,
    /// The new meta, if it changed.
    pub meta: Option<Vec<u8>>,
    /// `(key, encoded row, sequence number)`.
    pub puts: Vec<(String, Vec<u8>, u64)>,
    pub forgets: Vec<String>,
}

impl Commit {
    /// Whether there is nothing to write (a duplicate, a stale write, a GC pass with nothing to
    /// forget).
    pub fn is_empty(&self) -> bool {
        self.meta.is_none() && self.puts.is_empty() && self.forgets.is_empty()
    }
}

impl<'s> Overlay<'s> {
    pub fn new(snap: &'s Snapshot) -> Self {
        Overlay { snap, meta: snap.meta.clone(), meta_dirty: false, writes: BTreeMap::new() }
    }

    pub fn into_commit(self) -> Commit {
        let mut commit = Commit {
            expected: self.snap.meta_raw.clone(),
            meta: self.meta_dirty.then(|| encode_meta(&self.meta)),
            ..Commit::default()
        };
        for (key, write) in self.writes {
            match write {
                Some(stored) => {
                    let row = encode_stored(&stored);
                    commit.puts.push((key, row, stored.seq));
                }
                None => commit.forgets.push(key),
            }
        }
        commit
    }
}

/// A key and its row (`None`: the key index names a key with no entry).
type KeyRow = (String, Option<Vec<u8>>);

/// A page of headers in key order, and the key the next page starts after (`None`: none follows).
pub(crate) type HeaderPage = (Vec<(String, Header)>, Option<String>);

impl Overlay<'_> {
    /// One page of the headers of the keys with `prefix` in key order, after `after` (from the
    /// first one when `None`), as read by [`KeyRange::page`], with this transaction's own writes
    /// in the page's span; and the key to go on after, `None` when the page reached the prefix's
    /// last key. So a large namespace is scanned in bounded steps, each one script call short.
    pub fn header_page(&mut self, prefix: &str, after: Option<&str>) -> Result<HeaderPage, StoreError> {
        let from = page_start(prefix, after);
        let Some((rows, complete)) = self.snap.key_order_from(prefix, from) else {
            self.snap.miss(|m| {
                m.prefixes.insert(prefix.to_owned());
            });
            return Ok((Vec::new(), None));
        };
        let end = if complete { None } else { rows.last().map(|(key, _)| key.clone()) };
        let mut headers = BTreeMap::new();
        for (key, row) in rows.into_iter().filter(|(key, _)| Some(key.as_str()) != after) {
            let row = row.as_deref().ok_or_else(|| unindexed(key))?;
            headers.insert(key.clone(), decode_header(row).map_err(|e| at(key, e))?);
        }
        let start = match after {
            Some(after) if after == from => Bound::Excluded(after),
            _ => Bound::Included(from),
        };
        for (key, write) in self.writes.range::<str, _>((start, Bound::Unbounded)) {
            if end.as_ref().is_some_and(|end| key > end) || !key.starts_with(prefix) {
                break;
            }
            match write {
                Some(stored) => headers.insert(key.clone(), Header::of(stored)),
                None => headers.remove(key),
            };
        }
        Ok((headers.into_iter().collect(), end))
    }
}

impl NsWrite for Overlay<'_> {
    fn meta(&mut self) -> Result<Meta, StoreError> {
        Ok(self.meta.clone())
    }

    fn put_meta(&mut self, meta: &Meta) -> Result<(), StoreError> {
        self.meta = meta.clone();
        self.meta_dirty = true;
        Ok(())
    }

    fn get(&mut self, key: &str) -> Result<Option<Stored>, StoreError> {
        match self.writes.get(key) {
            Some(write) => Ok(write.clone()),
            None => NsRead::get(self.snap, key),
        }
    }

    fn put(&mut self, key: &str, stored: &Stored, _replaced_seq: Option<u64>) -> Result<(), StoreError> {
        // The seq index is keyed by key, so the new score replaces the old one by itself.
        self.writes.insert(key.to_owned(), Some(stored.clone()));
        Ok(())
    }

    fn forget(&mut self, key: &str, _seq: u64) -> Result<(), StoreError> {
        self.writes.insert(key.to_owned(), None);
        Ok(())
    }

    fn headers(&mut self, prefix: &str) -> Result<Vec<(String, Header)>, StoreError> {
        let Some(headers) = self.snap.headers(prefix) else {
            self.snap.miss(|m| {
                m.prefixes.insert(prefix.to_owned());
            });
            return Ok(Vec::new());
        };
        let mut headers = headers?;
        for (key, write) in self
            .writes
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
        {
            match write {
                Some(stored) => headers.insert(key.clone(), Header::of(stored)),
                None => headers.remove(key),
            };
        }
        Ok(headers.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use mfe_shared_cache_core::{Entry, Stamp};

    use super::*;
    use crate::namespace;

    fn row(key: &str, seq: u64, value: Option<&str>) -> (String, u64, Option<Vec<u8>>) {
        let entry = match value {
            Some(v) => Entry::value(Stamp::new(seq, "n"), 0, v),
            None => Entry::tombstone(Stamp::new(seq, "n")),
        };
        (key.to_owned(), seq, Some(encode_stored(&Stored { entry, seq })))
    }

    fn meta(cursor: u64) -> Option<Vec<u8>> {
        Some(encode_meta(&Meta { cursor, ..Meta::default() }))
    }

    fn query(last_sync: u64, max_rows: usize) -> DeltaQuery {
        DeltaQuery { last_sync, exclude: HashSet::new(), max_rows, max_bytes: usize::MAX }
    }

    #[test]
    fn a_short_sequence_range_is_a_miss_not_the_end() {
        let q = query(0, 2);
        let plan = Plan::for_delta(&q);
        assert_eq!(plan.seq.as_ref().unwrap().limit, Some(3));
        // The script stopped at 2 rows (say, its byte budget): the page needs a third to know
        // that more follow.
        let fetched = Fetched {
            meta: meta(9),
            seq: Some(FetchedSeq { complete: false, rows: vec![row("a", 1, Some("1")), row("b", 2, Some("2"))] }),
            ..Fetched::default()
        };
        let snap = Snapshot::new(&plan, fetched).unwrap();
        let delta = namespace::delta(&snap, &q).unwrap();
        assert!(!delta.more, "computed on too little");
        let misses = snap.take_misses().expect("the snapshot knows it was short");
        assert!(misses.seq_more);
        let mut wider = plan.clone();
        wider.widen(misses);
        assert_eq!(wider.seq.as_ref().unwrap().limit, Some(24));
        wider.widen(Misses { seq_more: true, ..Misses::default() });
        assert_eq!(wider.seq.unwrap().limit, None, "then unlimited");

        // Complete, the same rows are the whole answer.
        let fetched = Fetched {
            meta: meta(9),
            seq: Some(FetchedSeq { complete: true, rows: vec![row("a", 1, Some("1")), row("b", 2, Some("2"))] }),
            ..Fetched::default()
        };
        let snap = Snapshot::new(&plan, fetched).unwrap();
        let delta = namespace::delta(&snap, &q).unwrap();
        assert_eq!((delta.rows.len(), delta.cursor, delta.more), (2, 9, false));
        assert!(snap.take_misses().is_none());
    }

    #[test]
    fn a_resync_reads_again_from_zero() {
        let q = query(50, 10);
        let plan = Plan::for_delta(&q);
        let fetched =
            Fetched { meta: meta(9), seq: Some(FetchedSeq { complete: true, rows: vec![] }), ..Fetched::default() };
        let snap = Snapshot::new(&plan, fetched).unwrap();
        namespace::delta(&snap, &q).unwrap();
        let mut plan = plan;
        plan.widen(snap.take_misses().unwrap());
        assert_eq!(plan.seq.unwrap().after, 0);
    }

    #[test]
    fn the_overlay_reads_its_own_writes_and_records_them() {
        let plan = Plan { gets: ["a".to_owned()].into(), ranges: vec![KeyRange::headers("")], ..Plan::default() };
        let (key, _, bytes) = row("a", 5, Some("1"));
        let fetched = Fetched {
            meta: meta(5),
            ranges: vec![FetchedRange { complete: true, rows: vec![(key.clone(), bytes.clone())] }],
            gets: vec![bytes],
            ..Fetched::default()
        };
        let snap = Snapshot::new(&plan, fetched).unwrap();
        let mut overlay = Overlay::new(&snap);
        let op = WriteOp::Changes(vec![
            ("a".into(), Entry::value(Stamp::new(10, "n"), 0, "2")),
            ("a".into(), Entry::value(Stamp::new(11, "n"), 0, "3")),
        ]);
        let report = namespace::apply(&mut overlay, &op, 0).unwrap();
        assert!(snap.take_misses().is_none());
        assert_eq!(report.changes.iter().map(|c| c.seq).collect::<Vec<_>>(), [Some(6), Some(7)]);
        let headers = overlay.headers("").unwrap();
        assert_eq!(headers[0].1.seq, 7, "headers see the overlay's writes");
        let commit = overlay.into_commit();
        assert_eq!(commit.expected, meta(5));
        assert_eq!(commit.puts.len(), 1, "one row per key");
        assert_eq!(commit.puts[0].2, 7);
        assert_eq!(decode_meta(commit.meta.as_ref().unwrap()).unwrap().cursor, 7);
    }

    #[test]
    fn unplanned_reads_are_misses() {
        let snap = Snapshot::new(&Plan::default(), Fetched::default()).unwrap();
        let mut overlay = Overlay::new(&snap);
        assert_eq!(NsWrite::get(&mut overlay, "k").unwrap(), None);
        assert!(overlay.headers("p:").unwrap().is_empty());
        let misses = snap.take_misses().unwrap();
        assert_eq!(misses.keys, BTreeSet::from(["k".to_owned()]));
        assert_eq!(misses.prefixes, BTreeSet::from(["p:".to_owned()]));
        let mut plan = Plan::default();
        plan.widen(misses);
        assert_eq!(plan.gets.len(), 1);
        assert_eq!(plan.ranges, vec![KeyRange::headers("p:")]);
    }

    #[test]
    fn a_group_reads_what_each_of_its_writes_reads_once() {
        let set = |key: &str| WriteOp::Changes(vec![(key.into(), Entry::value(Stamp::new(1, "n"), 0, "1"))]);
        let mut plan = Plan::for_write(&set("a"));
        plan.merge(Plan::for_write(&set("b")));
        plan.merge(Plan::for_write(&set("a")));
        plan.merge(Plan::for_page("", Some("k"), 1000));
        plan.merge(Plan::for_page("", Some("k"), 1000));
        assert_eq!(plan.gets, BTreeSet::from(["a".to_owned(), "b".to_owned()]));
        assert_eq!(plan.ranges, vec![KeyRange::page("", Some("k"), 1000)], "one range serves both pages");
    }

    #[test]
    fn no_write_plan_reads_a_whole_range() {
        let patterns = ["a:*", "b", "*"].map(|p| KeyPattern::parse(p).unwrap()).to_vec();
        let ops = [WriteOp::Clear(Stamp::new(2, "n")), WriteOp::Invalidate(patterns)];
        for op in &ops {
            let plan = Plan::for_write(op);
            assert!(plan.ranges.is_empty() && plan.seq.is_none(), "{plan:?}");
        }
        assert_eq!(Plan::for_write(&ops[1]).gets, BTreeSet::from(["b".to_owned()]));
        let page = Plan::for_page("p:", Some("p:7"), 1000);
        assert!(page.ranges.iter().all(|r| r.limit == Some(1001)), "{page:?}");
    }

    /// A snapshot of `ranges` (each a plan range and the keys it returned), meta at cursor 5.
    fn snapshot_of(ranges: Vec<(KeyRange, Vec<&str>, bool)>) -> Snapshot {
        let mut fetched_ranges = Vec::new();
        let mut plan = Plan::default();
        for (range, keys, complete) in ranges {
            let rows = keys
                .iter()
                .map(|k| {
                    let (key, _, bytes) = row(k, 1, Some("1"));
                    (key, bytes)
                })
                .collect();
            fetched_ranges.push(FetchedRange { complete, rows });
            plan.ranges.push(range);
        }
        Snapshot::new(&plan, Fetched { meta: meta(5), ranges: fetched_ranges, ..Fetched::default() }).unwrap()
    }

    fn page_keys(page: &HeaderPage) -> (Vec<&str>, Option<&str>) {
        (page.0.iter().map(|(k, _)| k.as_str()).collect(), page.1.as_deref())
    }

    #[test]
    fn header_pages_keep_to_their_prefix_and_go_on_after_their_last_key() {
        // A page of two keys of `p:` after `p:1`: the range read one more to skip `p:1` itself.
        let snap = snapshot_of(vec![(KeyRange::page("p:", Some("p:1"), 2), vec!["p:1", "p:2", "p:3"], false)]);
        let mut overlay = Overlay::new(&snap);
        assert_eq!(page_keys(&overlay.header_page("p:", Some("p:1")).unwrap()), (vec!["p:2", "p:3"], Some("p:3")));
        // The last page: complete, nothing follows; keys past the prefix are not its.
        let snap = snapshot_of(vec![(KeyRange::page("p:", Some("p:3"), 2), vec!["p:3", "p:4"], true)]);
        let mut overlay = Overlay::new(&snap);
        overlay.put("q:1", &Stored { entry: Entry::value(Stamp::new(9, "n"), 0, "1"), seq: 6 }, None).unwrap();
        assert_eq!(page_keys(&overlay.header_page("p:", Some("p:3")).unwrap()), (vec!["p:4"], None));
        assert!(snap.take_misses().is_none());
    }

    #[test]
    fn a_clear_stopped_half_way_counts_as_done_and_the_next_collection_finishes_it() {
        // The epoch is at 10; `a`, `b` and `c` (stamped 1, 3 and 5) are values it removes that
        // the clear's pages did not reach, `c` expired long ago; `z` (stamped 20) was written
        // after it.
        let epoch = Stamp::new(10, "e");
        let stopped = Meta { cursor: 20, clock: 20, epoch: Some(epoch.clone()), epoch_seq: 19, ..Meta::default() };
        let plan = Plan { ranges: vec![KeyRange::headers("")], ..Plan::default() };
        let mut rows: Vec<KeyRow> = ["a", "b", "z"]
            .iter()
            .zip([1, 3, 20])
            .map(|(k, seq)| {
                let (key, _, bytes) = row(k, seq, Some("1"));
                (key, bytes)
            })
            .collect();
        let expired = Stored { entry: Entry::value(Stamp::new(5, "n"), 1, "1"), seq: 5 };
        rows.insert(2, ("c".to_owned(), Some(encode_stored(&expired))));
        let fetched = Fetched {
            meta: Some(encode_meta(&stopped)),
            ranges: vec![FetchedRange { complete: true, rows }],
            ..Fetched::default()
        };
        let snap = Snapshot::new(&plan, fetched).unwrap();
        let census = namespace::census(&snap, 0).unwrap();
        assert_eq!((census.live, census.tombstones), (1, 3));
        let mut overlay = Overlay::new(&snap);
        let headers = overlay.headers("").unwrap();
        // A retention of 1 ms: `c` is dead for long enough, but its row changes in this pass.
        assert_eq!(namespace::collect_these(&mut overlay, headers, 20, 1).unwrap(), 0, "nothing forgotten");
        let commit = overlay.into_commit();
        assert!(commit.forgets.is_empty(), "{:?}", commit.forgets);
        let tombstoned: Vec<(&str, Stored)> =
            commit.puts.iter().map(|(k, row, _)| (k.as_str(), decode_stored(row).unwrap())).collect();
        assert_eq!(tombstoned.len(), 3);
        for ((key, stored), (want, seq)) in tombstoned.iter().zip([("a", 21), ("b", 22), ("c", 23)]) {
            assert_eq!((*key, &stored.entry, stored.seq), (want, &Entry::tombstone(epoch.clone()), seq));
        }
        assert_eq!(decode_meta(commit.meta.as_ref().unwrap()).unwrap().cursor, 23);
    }

    #[test]
    fn a_page_is_not_served_by_a_range_that_stopped_before_it() {
        // Two pages of one group: the first range starts earlier but ends before the second page.
        let snap = snapshot_of(vec![
            (KeyRange::page("", None, 2), vec!["a", "b"], false),
            (KeyRange::page("", Some("m"), 2), vec!["m", "n", "o"], false),
        ]);
        let mut overlay = Overlay::new(&snap);
        assert_eq!(page_keys(&overlay.header_page("", Some("m")).unwrap()), (vec!["n", "o"], Some("o")));
        assert_eq!(page_keys(&overlay.header_page("", None).unwrap()), (vec!["a", "b"], Some("b")));
        assert!(snap.take_misses().is_none());
    }

    #[test]
    fn header_rows_ask_for_whole_rows_when_needed() {
        let plan = Plan { ranges: vec![KeyRange::headers("")], ..Plan::default() };
        let (key, _, bytes) = row("a", 5, Some("\"value\""));
        let bytes = bytes.unwrap();
        // What the read script keeps of a row in header mode: up to the end of the node id.
        let cut = bytes[..27 + usize::from(bytes[26])].to_vec();
        assert_eq!(decode_header(&cut).unwrap(), decode_header(&bytes).unwrap());
        let fetched = Fetched {
            meta: meta(5),
            ranges: vec![FetchedRange { complete: true, rows: vec![(key, Some(cut))] }],
            ..Fetched::default()
        };
        let snap = Snapshot::new(&plan, fetched).unwrap();
        assert_eq!(namespace::census(&snap, 0).unwrap().live, 1);
        assert!(snap.take_misses().is_none());
        let q = EntriesQuery {
            prefix: String::new(),
            after: None,
            now_ms: 0,
            max_rows: 10,
            max_bytes: 1000,
            max_examined: 10,
        };
        assert!(namespace::entries(&snap, &q).is_err());
        assert_eq!(snap.take_misses().unwrap().range_full, BTreeSet::from([0]));
    }
}
