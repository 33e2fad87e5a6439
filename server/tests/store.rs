//! The store test-suite: every test runs against the memory store, the redb store, a real Redis
//! and a real 3-node Redis Cluster (and against any store added later: add it to `suite!`).
mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mfe_cache_server::namespace::INVALIDATION_NODE;
use mfe_cache_server::store::{
    ChangeResult, Delta, DeltaQuery, EntriesPage, EntriesQuery, MemoryStore, RedbStore, RedisStore, Rejection, Store,
    StoreError, WriteOp,
};
use mfe_shared_cache_core::{Entry, KeyPattern, MergeOutcome, Replica, Stamp};
use support::Rng;
use tempfile::TempDir;

const NOW: u64 = 1_700_000_000_000;
const HOUR: u64 = 60 * 60 * 1000;
const DAY: u64 = 24 * HOUR;

struct Fixture {
    store: Arc<dyn Store>,
    _dir: Option<TempDir>,
}

async fn memory() -> Fixture {
    Fixture { store: Arc::new(MemoryStore::new()), _dir: None }
}

async fn redb() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    Fixture { store: Arc::new(RedbStore::open(dir.path()).unwrap()), _dir: Some(dir) }
}

/// A store on the binary's shared Redis (a static keeps it running until the binary exits),
/// under a key prefix of its own.
async fn redis() -> Fixture {
    let url = support::redis::standalone().url();
    Fixture { store: Arc::new(open_redis(&url, &support::redis::unique_prefix("suite")).await), _dir: None }
}

/// The same on the binary's shared Redis Cluster.
async fn redis_cluster() -> Fixture {
    let url = support::redis::cluster().url();
    Fixture { store: Arc::new(open_redis(&url, &support::redis::unique_prefix("suite")).await), _dir: None }
}

async fn open_redis(url: &str, prefix: &str) -> RedisStore {
    RedisStore::open(&url.parse().unwrap(), prefix).await.unwrap()
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        suite!(@store memory_store, memory; $($name),*);
        suite!(@store redb_store, redb; $($name),*);
        suite!(@store redis_store, redis; $($name),*);
        suite!(@store redis_cluster_store, redis_cluster; $($name),*);
    };
    (@store $store:ident, $fixture:ident; $($name:ident),*) => {
        mod $store {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(&super::$fixture().await).await })*
        }
    };
}

suite!(
    higher_stamp_wins_and_node_breaks_ties,
    an_older_set_does_not_resurrect_a_removed_key,
    clear_tombstones_older_writes_and_refuses_late_ones,
    clears_are_ordered_too,
    delta_is_by_receipt_not_by_timestamp,
    a_cursor_past_ours_means_full_resync,
    own_writes_can_be_excluded,
    deltas_page_without_repeats_or_gaps,
    namespaces_are_separate,
    gc_forgets_old_dead_entries_and_keeps_order,
    matches_the_core_replica_on_random_histories,
    concurrent_writers_end_in_the_merge_rules_state,
    invalidate_tombstones_exactly_the_live_matching_values,
    invalidation_tombstones_win_and_are_delivered,
    census_counts_live_dead_and_expired,
    entries_are_live_values_by_prefix_in_pages,
    the_cursor_moves_when_gc_forgets,
    gc_of_a_namespace_larger_than_a_page_forgets_everything_dead,
    clear_invalidate_and_census_of_a_namespace_larger_than_a_page,
    gc_on_a_clock_far_ahead_forgets_nothing_younger_by_the_namespaces_time,
    writes_not_stored_without_a_newer_write_say_why,
    invalidations_are_not_stamped_past_the_namespaces_time,
    the_written_time_is_kept_and_expiry_follows_it,
);

fn v(ts: u64, node: &str, json: &str) -> Entry {
    Entry::value(Stamp::new(ts, node), 0, json)
}

async fn put(f: &Fixture, ns: &str, key: &str, entry: Entry) -> ChangeResult {
    let report = f.store.apply(ns, WriteOp::Changes(vec![(key.into(), entry)]), NOW).await.unwrap();
    report.changes.into_iter().next().unwrap()
}

async fn clear(f: &Fixture, ns: &str, ts: u64, node: &str) -> MergeOutcome {
    let report = f.store.apply(ns, WriteOp::Clear(Stamp::new(ts, node)), NOW).await.unwrap();
    report.clear.unwrap().outcome
}

async fn since(f: &Fixture, ns: &str, last_sync: u64) -> Delta {
    let query = DeltaQuery { last_sync, exclude: HashSet::new(), max_rows: usize::MAX, max_bytes: usize::MAX };
    f.store.delta(ns, query).await.unwrap()
}

async fn state(f: &Fixture, ns: &str) -> BTreeMap<String, Entry> {
    since(f, ns, 0).await.rows.into_iter().map(|row| (row.key, row.stored.entry)).collect()
}

async fn higher_stamp_wins_and_node_breaks_ties(f: &Fixture) {
    assert_eq!(put(f, "n", "k", v(10, "a", "1")).await.outcome, MergeOutcome::Applied);
    let lost = put(f, "n", "k", v(9, "z", "2")).await;
    assert_eq!(lost.outcome, MergeOutcome::Stale);
    assert_eq!(lost.winner.unwrap().entry, v(10, "a", "1"), "a lost write learns the winner");
    assert_eq!(put(f, "n", "k", v(10, "b", "3")).await.outcome, MergeOutcome::Applied);
    assert_eq!(put(f, "n", "k", v(10, "b", "3")).await.outcome, MergeOutcome::Duplicate);
    assert_eq!(put(f, "n", "k", v(10, "", "seed")).await.outcome, MergeOutcome::Stale, "seed peers lose ties");
    assert_eq!(state(f, "n").await["k"], v(10, "b", "3"));
}

async fn an_older_set_does_not_resurrect_a_removed_key(f: &Fixture) {
    put(f, "n", "k", v(10, "a", "1")).await;
    put(f, "n", "k", Entry::tombstone(Stamp::new(20, "a"))).await;
    assert_eq!(put(f, "n", "k", v(15, "b", "old")).await.outcome, MergeOutcome::Stale);
    assert_eq!(state(f, "n").await["k"], Entry::tombstone(Stamp::new(20, "a")));
    assert_eq!(put(f, "n", "k", v(21, "b", "new")).await.outcome, MergeOutcome::Applied);
}

async fn clear_tombstones_older_writes_and_refuses_late_ones(f: &Fixture) {
    put(f, "n", "old", v(10, "a", "1")).await;
    put(f, "n", "new", v(30, "a", "2")).await;
    put(f, "n", "gone", Entry::tombstone(Stamp::new(5, "a"))).await;
    put(f, "n", "at-epoch", v(20, "c", "3")).await;
    put(f, "n", "just-after", v(20, "d", "4")).await;
    let before = since(f, "n", 0).await.cursor;
    let epoch = Stamp::new(20, "c");
    assert_eq!(clear(f, "n", 20, "c").await, MergeOutcome::Applied);

    // A seed-only client at `before` learns of the clear as a tombstone, at the epoch's stamp.
    let delta = since(f, "n", before).await;
    let keys: Vec<_> = delta.rows.iter().map(|r| (r.key.as_str(), r.stored.entry.clone())).collect();
    assert_eq!(
        keys,
        vec![("at-epoch", Entry::tombstone(epoch.clone())), ("old", Entry::tombstone(epoch.clone()))],
        "exactly the values ordered at or before the epoch"
    );
    assert_eq!(delta.epoch, Some(epoch.clone()));

    // Writes ordered at or before the epoch are refused, even for keys never seen.
    let late = put(f, "n", "late", v(19, "z", "x")).await;
    assert_eq!(late.outcome, MergeOutcome::Cleared);
    assert_eq!(late.winner.unwrap().entry, Entry::tombstone(epoch.clone()));
    assert_eq!(put(f, "n", "old", v(20, "c", "x")).await.outcome, MergeOutcome::Cleared);
    assert_eq!(put(f, "n", "late2", v(20, "d", "y")).await.outcome, MergeOutcome::Applied);

    let all = state(f, "n").await;
    assert!(!all.contains_key("late"));
    assert_eq!(all["new"], v(30, "a", "2"));
    assert_eq!(all["just-after"], v(20, "d", "4"), "the node breaks the tie with the epoch too");
    assert_eq!(all["gone"], Entry::tombstone(Stamp::new(5, "a")), "old tombstones are left alone");
    // The epoch is not repeated to a client past it.
    assert_eq!(since(f, "n", delta.cursor).await.epoch, None);
}

async fn clears_are_ordered_too(f: &Fixture) {
    assert_eq!(clear(f, "n", 20, "a").await, MergeOutcome::Applied);
    assert_eq!(clear(f, "n", 20, "a").await, MergeOutcome::Duplicate);
    assert_eq!(clear(f, "n", 15, "z").await, MergeOutcome::Stale);
    put(f, "n", "k", v(25, "a", "1")).await;
    assert_eq!(clear(f, "n", 30, "a").await, MergeOutcome::Applied);
    assert_eq!(state(f, "n").await["k"], Entry::tombstone(Stamp::new(30, "a")));
    assert_eq!(put(f, "n", "k", v(29, "a", "1")).await.outcome, MergeOutcome::Cleared);
}

async fn delta_is_by_receipt_not_by_timestamp(f: &Fixture) {
    put(f, "n", "a", v(NOW, "x", "1")).await;
    let cursor = since(f, "n", 0).await.cursor;
    assert!(cursor >= NOW, "cursors never fall below the wall clock");
    // Accepted late, with a timestamp long before the client's cursor: still delivered.
    put(f, "n", "b", v(1000, "old-offline-writer", "late")).await;
    let delta = since(f, "n", cursor).await;
    assert_eq!(delta.rows.len(), 1);
    assert_eq!(delta.rows[0].key, "b");
    // Nothing is repeated; a rewritten entry appears once, at its latest write.
    assert!(since(f, "n", delta.cursor).await.rows.is_empty());
    put(f, "n", "a", v(NOW + 1, "x", "2")).await;
    put(f, "n", "a", v(NOW + 2, "x", "3")).await;
    let again = since(f, "n", delta.cursor).await;
    assert_eq!(again.rows.len(), 1);
    assert_eq!(again.rows[0].stored.entry, v(NOW + 2, "x", "3"));
    let everything = since(f, "n", 0).await;
    assert_eq!(everything.rows.len(), 2, "one row per key: the by-sequence rows of replaced writes are gone");
    let seqs: Vec<u64> = everything.rows.iter().map(|r| r.stored.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "rows come in sequence order");
}

async fn a_cursor_past_ours_means_full_resync(f: &Fixture) {
    put(f, "n", "a", v(1, "x", "1")).await;
    put(f, "n", "b", v(2, "x", "2")).await;
    let cursor = since(f, "n", 0).await.cursor;
    let delta = since(f, "n", cursor + 1_000_000).await;
    assert_eq!(delta.since, 0);
    assert_eq!(delta.rows.len(), 2);
    assert_eq!(delta.cursor, cursor);
}

async fn own_writes_can_be_excluded(f: &Fixture) {
    put(f, "n", "theirs", v(5, "b", "1")).await;
    let report = f.store.apply("n", WriteOp::Changes(vec![("mine".into(), v(6, "a", "2"))]), NOW).await.unwrap();
    let own: HashSet<u64> = report.changes.iter().filter_map(|c| c.seq).collect();
    let query = DeltaQuery { last_sync: 0, exclude: own, max_rows: 100, max_bytes: 1 << 20 };
    let delta = f.store.delta("n", query).await.unwrap();
    let keys: Vec<_> = delta.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["theirs"]);
    assert_eq!(delta.cursor, report.cursor);
}

async fn deltas_page_without_repeats_or_gaps(f: &Fixture) {
    for i in 0..25 {
        put(f, "n", &format!("k{i:02}"), v(100 + i, "a", "\"xxxxxxxxxx\"")).await;
    }
    put(f, "n", "k03", v(500, "a", "\"again\"")).await;
    let mut cursor = 0;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let query = DeltaQuery { last_sync: cursor, exclude: HashSet::new(), max_rows: 4, max_bytes: 1 << 20 };
        let page = f.store.delta("n", query).await.unwrap();
        seen.extend(page.rows.iter().map(|r| r.key.clone()));
        cursor = page.cursor;
        pages += 1;
        if !page.more {
            break;
        }
        assert_eq!(page.rows.len(), 4);
    }
    assert_eq!(pages, 7);
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), 25);
    assert_eq!(unique.len(), 25);
    assert_eq!(seen.last().map(String::as_str), Some("k03"), "the rewritten key comes at its new place");
    // A byte budget also pages (one row always fits).
    let query = DeltaQuery { last_sync: 0, exclude: HashSet::new(), max_rows: 100, max_bytes: 1 };
    let page = f.store.delta("n", query).await.unwrap();
    assert_eq!(page.rows.len(), 1);
    assert!(page.more);
}

async fn namespaces_are_separate(f: &Fixture) {
    put(f, "a", "k", v(10, "x", "\"a\"")).await;
    put(f, "b", "k", v(5, "x", "\"b\"")).await;
    clear(f, "b", 20, "x").await;
    assert_eq!(state(f, "a").await["k"], v(10, "x", "\"a\""));
    assert_eq!(state(f, "b").await["k"], Entry::tombstone(Stamp::new(20, "x")));
    assert!(state(f, "c").await.is_empty());
    // A namespace whose name is a prefix of another's sees only its own rows.
    put(f, "ab", "z", v(1, "x", "1")).await;
    assert_eq!(state(f, "a").await.len(), 1);
}

async fn gc_forgets_old_dead_entries_and_keeps_order(f: &Fixture) {
    let t0 = NOW - 10 * DAY;
    put(f, "n", "removed", Entry::tombstone(Stamp::new(t0, "a"))).await;
    put(f, "n", "expired", Entry::value(Stamp::new(t0, "a"), 1000, "1")).await;
    put(f, "n", "live", v(t0 - 100, "a", "2")).await;
    put(f, "n", "fresh-remove", Entry::tombstone(Stamp::new(NOW - 1000, "a"))).await;
    let report = f.store.gc(NOW, DAY).await.unwrap();
    assert_eq!(report.removed, 2);
    let all = state(f, "n").await;
    assert_eq!(all.keys().map(String::as_str).collect::<Vec<_>>(), ["fresh-remove", "live"]);
    // An old write of a forgotten key could resurrect it: refused, and told it is gone.
    let stale = put(f, "n", "removed", v(t0 - 5, "b", "zombie")).await;
    assert_eq!(stale.outcome, MergeOutcome::Stale);
    assert!(stale.winner.unwrap().entry.value.is_none());
    // A key with an entry is judged against it alone (even below the floor); new writes are fine.
    assert_eq!(put(f, "n", "live", v(t0 - 50, "a", "3")).await.outcome, MergeOutcome::Applied);
    assert_eq!(put(f, "n", "removed", v(NOW, "b", "back")).await.outcome, MergeOutcome::Applied);
    assert_eq!(f.store.gc(NOW, DAY).await.unwrap().removed, 0);
}

/// Random histories of sets, removes and clears give the state the core's `Replica` reaches, and
/// a seed-only client (which ignores the `clear` extension) syncing along reaches it too.
async fn matches_the_core_replica_on_random_histories(f: &Fixture) {
    let mut rng = Rng::new(7);
    let mut model = Replica::new("model");
    let mut seed_client = Replica::new("seed");
    let mut cursor = 0;
    let nodes = ["", "a", "b"];
    for step in 0..300 {
        let ts = 1 + rng.below(80);
        let node = nodes[rng.below(3) as usize];
        match rng.below(10) {
            0 => {
                let stamp = Stamp::new(ts, node);
                model.merge_epoch(&stamp);
                f.store.apply("n", WriteOp::Clear(stamp), NOW + step).await.unwrap();
            }
            roll => {
                let batch: Vec<(String, Entry)> = (0..1 + rng.below(3))
                    .map(|_| {
                        let key = format!("k{}", rng.below(6));
                        let entry = if roll < 3 {
                            Entry::tombstone(Stamp::new(1 + rng.below(80), node))
                        } else {
                            Entry::value(Stamp::new(1 + rng.below(80), node), 0, format!("{}", rng.below(1000)))
                        };
                        (key, entry)
                    })
                    .collect();
                for (key, entry) in &batch {
                    model.merge(key, entry.clone());
                }
                f.store.apply("n", WriteOp::Changes(batch), NOW + step).await.unwrap();
            }
        }
        if rng.below(4) == 0 {
            let delta = since(f, "n", cursor).await;
            for row in delta.rows {
                seed_client.merge(&row.key, row.stored.entry);
            }
            cursor = delta.cursor;
        }
    }
    let delta = since(f, "n", cursor).await;
    for row in delta.rows {
        seed_client.merge(&row.key, row.stored.entry);
    }
    let server = state(f, "n").await;
    for k in 0..6 {
        let key = format!("k{k}");
        let expected = model.get(&key, 0).map(str::to_owned);
        let stored = server.get(&key).and_then(|e| e.value.clone());
        assert_eq!(stored, expected, "server, {key}");
        assert_eq!(seed_client.get(&key, 0).map(str::to_owned), expected, "seed-only client, {key}");
        if let (Some(e), Some(m)) = (server.get(&key), model.entry(&key)) {
            assert_eq!(e, m, "same write held for {key}");
        }
    }
}

async fn concurrent_writers_end_in_the_merge_rules_state(f: &Fixture) {
    let mut tasks = Vec::new();
    for writer in 0..8u64 {
        let store = f.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(100 + writer);
            let mut sent = Vec::new();
            for i in 0..50 {
                let key = format!("k{}", rng.below(10));
                // Unique stamps per writer (its node), random order across writers.
                let entry =
                    Entry::value(Stamp::new(1 + rng.below(1000) * 64 + i, format!("w{writer}")), 0, format!("{i}"));
                store.apply("n", WriteOp::Changes(vec![(key.clone(), entry.clone())]), NOW).await.unwrap();
                sent.push((key, entry));
            }
            sent
        }));
    }
    let mut expected: BTreeMap<String, Entry> = BTreeMap::new();
    for task in tasks {
        for (key, entry) in task.await.unwrap() {
            if expected.get(&key).is_none_or(|e| e.stamp < entry.stamp) {
                expected.insert(key, entry);
            }
        }
    }
    assert_eq!(state(f, "n").await, expected);
    let seqs: Vec<u64> = since(f, "n", 0).await.rows.iter().map(|r| r.stored.seq).collect();
    assert_eq!(seqs.iter().collect::<HashSet<_>>().len(), seqs.len(), "sequence numbers are unique");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_store_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let cursor = {
        let f = Fixture { store: Arc::new(RedbStore::open(dir.path()).unwrap()), _dir: None };
        put(&f, "n", "a", v(10, "x", r#"{"deep":[1,2,3]}"#)).await;
        put(&f, "n", "b", Entry::value(Stamp::new(11, "x"), 5000, "\"ttl\"")).await;
        put(&f, "n", "c", Entry::tombstone(Stamp::new(12, "x"))).await;
        clear(&f, "n", 10, "y").await;
        since(&f, "n", 0).await.cursor
    };
    let f = Fixture { store: Arc::new(RedbStore::open(dir.path()).unwrap()), _dir: None };
    let all = state(&f, "n").await;
    assert_eq!(all["a"], Entry::tombstone(Stamp::new(10, "y")));
    assert_eq!(all["b"], Entry::value(Stamp::new(11, "x"), 5000, "\"ttl\""));
    assert_eq!(all["c"], Entry::tombstone(Stamp::new(12, "x")));
    assert_eq!(since(&f, "n", 0).await.cursor, cursor);
    assert_eq!(since(&f, "n", 0).await.epoch, Some(Stamp::new(10, "y")));
    assert_eq!(put(&f, "n", "z", v(9, "q", "1")).await.outcome, MergeOutcome::Cleared, "the epoch persisted");
    let report = f.store.apply("n", WriteOp::Changes(vec![("d".into(), v(13, "x", "1"))]), 0).await.unwrap();
    assert!(report.changes[0].seq.unwrap() > cursor, "the cursor persisted");
}

#[test]
fn a_second_process_cannot_open_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let _first = RedbStore::open(dir.path()).unwrap();
    assert!(RedbStore::open(dir.path()).is_err());
}

async fn invalidate(f: &Fixture, ns: &str, patterns: &[&str], now: u64) -> usize {
    let patterns = patterns.iter().map(|p| KeyPattern::parse(p).unwrap()).collect();
    f.store.apply(ns, WriteOp::Invalidate(patterns), now).await.unwrap().invalidated
}

async fn invalidate_tombstones_exactly_the_live_matching_values(f: &Fixture) {
    let t = NOW - 1000;
    for key in ["stores:1", "stores:2:users", "stores", "store:3", "xstores:4", "a*b", "a-b", "user:1", "user:12"] {
        put(f, "n", key, v(t, "a", "1")).await;
    }
    put(f, "n", "stores:removed", Entry::tombstone(Stamp::new(t, "a"))).await;
    put(f, "n", "stores:expired", Entry::value(Stamp::new(t - DAY, "a"), 1000, "1")).await;
    put(f, "other", "stores:1", v(t, "a", "1")).await;
    // Overlapping patterns count a key once; `\*` is a literal star; `?` is one character.
    let n = invalidate(f, "n", &["stores:*", "stores:2:*", r"a\*b", "user:?", "nothing:*"], NOW).await;
    assert_eq!(n, 4);
    let all = state(f, "n").await;
    let gone: Vec<&str> =
        all.iter().filter(|(_, e)| e.stamp.node == INVALIDATION_NODE).map(|(k, _)| k.as_str()).collect();
    assert_eq!(gone, ["a*b", "stores:1", "stores:2:users", "user:1"]);
    for key in ["stores", "store:3", "xstores:4", "a-b", "user:12"] {
        assert!(all[key].value.is_some(), "{key} does not match");
    }
    assert_eq!(all["stores:removed"], Entry::tombstone(Stamp::new(t, "a")), "an existing tombstone is left alone");
    assert!(all["stores:expired"].value.is_some(), "an expired value is not live: left to expire and be collected");
    assert!(state(f, "other").await["stores:1"].value.is_some(), "other namespaces are untouched");
    assert_eq!(invalidate(f, "n", &["stores:*"], NOW).await, 0, "nothing live matches any more");
    assert_eq!(invalidate(f, "n", &["*"], NOW).await, 5);
}

async fn invalidation_tombstones_win_and_are_delivered(f: &Fixture) {
    put(f, "n", "behind", v(NOW - 5000, "a", "1")).await;
    // A value stamped ahead of the server's wall clock (a client clock running fast).
    put(f, "n", "ahead", v(NOW + 60_000, "zzz", "2")).await;
    let before = since(f, "n", 0).await.cursor;
    assert_eq!(invalidate(f, "n", &["*"], NOW).await, 2);
    let delta = since(f, "n", before).await;
    let got: BTreeMap<_, _> = delta.rows.into_iter().map(|r| (r.key, r.stored.entry)).collect();
    assert_eq!(got.len(), 2, "every tombstone is delivered to a client at the earlier cursor");
    assert_eq!(got["behind"], Entry::tombstone(Stamp::new(NOW, INVALIDATION_NODE)), "the wall clock");
    // Ordered above the value, written now: the value's clock being fast does not date the tombstone.
    let above = Entry::tombstone(Stamp::new(NOW + 60_001, INVALIDATION_NODE)).written_at(NOW);
    assert_eq!(got["ahead"], above, "above the value");
    // Older writes that arrive later lose; newer ones win.
    assert_eq!(put(f, "n", "behind", v(NOW - 1, "zzz", "old")).await.outcome, MergeOutcome::Stale);
    assert_eq!(put(f, "n", "ahead", v(NOW + 60_000, "zzz", "old")).await.outcome, MergeOutcome::Stale);
    assert_eq!(put(f, "n", "behind", v(NOW + 1, "a", "new")).await.outcome, MergeOutcome::Applied);
    // The model agrees: the tombstone is an ordinary write under the core's rule.
    let mut model = Replica::new("m");
    model.merge("k", v(NOW + 60_000, "zzz", "2"));
    assert_eq!(model.merge("k", got["ahead"].clone()), MergeOutcome::Applied);
}

async fn census_counts_live_dead_and_expired(f: &Fixture) {
    let empty = f.store.census("n", NOW).await.unwrap();
    assert_eq!((empty.cursor, empty.live, empty.tombstones, empty.expired), (0, 0, 0, 0));
    put(f, "n", "a", v(NOW, "x", "1")).await;
    put(f, "n", "b", Entry::value(Stamp::new(NOW, "x"), 5000, "1")).await;
    put(f, "n", "c", Entry::tombstone(Stamp::new(NOW, "x"))).await;
    put(f, "n", "d", Entry::value(Stamp::new(NOW - 10_000, "x"), 1000, "1")).await;
    put(f, "other", "e", v(NOW, "x", "1")).await;
    let census = f.store.census("n", NOW).await.unwrap();
    assert_eq!((census.live, census.tombstones, census.expired), (2, 1, 1));
    assert_eq!(census.next_expiry, Some(NOW + 5000));
    assert_eq!(census.cursor, f.store.cursor("n").await.unwrap());
    let later = f.store.census("n", NOW + 5000).await.unwrap();
    assert_eq!((later.live, later.expired, later.next_expiry), (1, 2, None));
}

async fn page(f: &Fixture, prefix: &str, after: Option<&str>, max_rows: usize, max_examined: usize) -> EntriesPage {
    let query = EntriesQuery {
        prefix: prefix.into(),
        after: after.map(str::to_owned),
        now_ms: NOW,
        max_rows,
        max_bytes: 1 << 20,
        max_examined,
    };
    f.store.entries("n", query).await.unwrap()
}

fn page_keys(page: &EntriesPage) -> Vec<&str> {
    page.rows.iter().map(|r| r.key.as_str()).collect()
}

async fn entries_are_live_values_by_prefix_in_pages(f: &Fixture) {
    for key in ["s:1", "s:2", "s:3", "s", "t:1", "r:1"] {
        put(f, "n", key, v(NOW, "x", "1")).await;
    }
    put(f, "n", "s:2", Entry::tombstone(Stamp::new(NOW + 1, "x"))).await;
    put(f, "n", "s:4", Entry::value(Stamp::new(NOW - 10_000, "x"), 1000, "1")).await;
    put(f, "n", "s:5", Entry::value(Stamp::new(NOW, "x"), 7000, "\"five\"")).await;
    put(f, "ns-prefix-of-n", "s:9", v(NOW, "x", "1")).await;
    let all = page(f, "s:", None, 100, 100).await;
    assert_eq!(page_keys(&all), ["s:1", "s:3", "s:5"], "live values only, by key");
    assert_eq!((all.next_after.clone(), all.next_expiry), (None, Some(NOW + 7000)));
    assert_eq!(all.rows[2].stored.entry, Entry::value(Stamp::new(NOW, "x"), 7000, "\"five\""));
    assert_eq!(all.cursor, f.store.cursor("n").await.unwrap());
    assert_eq!(page_keys(&page(f, "", None, 100, 100).await), ["r:1", "s", "s:1", "s:3", "s:5", "t:1"]);
    assert!(page(f, "zz", None, 100, 100).await.rows.is_empty());

    // Pages of two, then on from `after`, without repeats or gaps.
    let first = page(f, "s:", None, 2, 100).await;
    assert_eq!((page_keys(&first), first.next_after.as_deref()), (vec!["s:1", "s:3"], Some("s:3")));
    let second = page(f, "s:", first.next_after.as_deref(), 2, 100).await;
    assert_eq!((page_keys(&second), second.next_after.as_deref()), (vec!["s:5"], None));
    // A full last page says no more when no further key has the prefix.
    let exact = page(f, "s:", Some("s:1"), 2, 100).await;
    assert_eq!((page_keys(&exact), exact.next_after.as_deref()), (vec!["s:3", "s:5"], None));
    // Dead keys count against the examined budget: paging moves on through them.
    let dead = page(f, "s:", Some("s:1"), 100, 1).await;
    assert_eq!((page_keys(&dead), dead.next_after.as_deref()), (vec![], Some("s:2")));
    // `after` outside the prefix: before it starts at the prefix, past it is empty.
    assert_eq!(page_keys(&page(f, "s:", Some("a"), 100, 100).await).len(), 3);
    assert!(page(f, "s:", Some("t"), 100, 100).await.rows.is_empty());
}

async fn the_cursor_moves_when_gc_forgets(f: &Fixture) {
    put(f, "n", "old", Entry::tombstone(Stamp::new(NOW - 10 * DAY, "a"))).await;
    put(f, "n", "live", v(NOW, "a", "1")).await;
    let before = f.store.cursor("n").await.unwrap();
    assert_eq!(f.store.gc(NOW, DAY).await.unwrap().removed, 1);
    let after = f.store.cursor("n").await.unwrap();
    assert!(after > before, "what the namespace holds changed: {before} -> {after}");
    assert!(since(f, "n", before).await.rows.is_empty(), "nothing to deliver for it");
    assert_eq!(f.store.gc(NOW, DAY).await.unwrap().removed, 0);
    assert_eq!(f.store.cursor("n").await.unwrap(), after, "a pass that forgets nothing changes nothing");
}

/// Larger than one page of the Redis store's incremental collection (1,000 keys): dead entries
/// on every page are forgotten, live ones on every page kept, and the floor refuses old writes of
/// keys from any page.
async fn gc_of_a_namespace_larger_than_a_page_forgets_everything_dead(f: &Fixture) {
    let t0 = NOW - 10 * DAY;
    let writes = (0..2500u64)
        .map(|i| {
            let entry = if i % 5 == 0 { v(t0 + i, "a", "1") } else { Entry::tombstone(Stamp::new(t0 + i, "a")) };
            (format!("k{i:05}"), entry)
        })
        .collect();
    f.store.apply("n", WriteOp::Changes(writes), NOW).await.unwrap();
    // A recent write, so that by the namespace's time the old ones are dead for long enough.
    put(f, "n", "k99995", v(NOW, "a", "1")).await;
    assert_eq!(f.store.gc(NOW, DAY).await.unwrap().removed, 2000);
    let all = state(f, "n").await;
    assert_eq!(all.len(), 501);
    assert!(all.keys().all(|k| k[1..].parse::<u64>().unwrap() % 5 == 0), "only the live values are left");
    for key in ["k00001", "k02499"] {
        assert_eq!(put(f, "n", key, v(t0, "b", "zombie")).await.outcome, MergeOutcome::Stale, "{key}");
    }
    assert_eq!(f.store.gc(NOW, DAY).await.unwrap().removed, 0);
}

/// Larger than one page of the Redis store's step-wise scans (1,000 keys): a clear, a wildcard
/// invalidation and a census see every key on every page, count each once, and deliver each
/// tombstone once, as the stores that do it in one step.
async fn clear_invalidate_and_census_of_a_namespace_larger_than_a_page(f: &Fixture) {
    let t = NOW - 1000;
    let writes = |prefix: &str| {
        (0..2500u64)
            .map(|i| {
                let entry = if i % 10 == 0 { Entry::tombstone(Stamp::new(t, "a")) } else { v(t, "a", "1") };
                (format!("{prefix}{i:05}"), entry)
            })
            .collect()
    };
    f.store.apply("n", WriteOp::Changes(writes("p:")), NOW).await.unwrap();
    f.store.apply("n", WriteOp::Changes(writes("q:")), NOW).await.unwrap();
    put(f, "n", "later", v(NOW + 1, "a", "1")).await;
    let census = f.store.census("n", NOW).await.unwrap();
    assert_eq!((census.live, census.tombstones, census.expired), (4501, 500, 0));
    assert_eq!(census.cursor, f.store.cursor("n").await.unwrap());

    // A wildcard and an exact pattern that it covers too: each of p:'s 2,250 live values once.
    let before = f.store.cursor("n").await.unwrap();
    assert_eq!(invalidate(f, "n", &["p:*", "p:00001"], NOW).await, 2250);
    let delta = since(f, "n", before).await;
    assert_eq!(delta.rows.len(), 2250, "each tombstone delivered once");
    assert!(delta.rows.iter().all(|r| r.key.starts_with("p:") && r.stored.entry.value.is_none()));
    assert_eq!(delta.cursor, f.store.cursor("n").await.unwrap());

    // A clear between the two batches of writes' stamps and the later one.
    let before = f.store.cursor("n").await.unwrap();
    let report = f.store.apply("n", WriteOp::Clear(Stamp::new(NOW, "z")), NOW).await.unwrap();
    let clear = report.clear.unwrap();
    assert_eq!((clear.outcome, clear.tombstoned), (MergeOutcome::Applied, 2250), "q:'s live values");
    assert_eq!(report.cursor, f.store.cursor("n").await.unwrap());
    let delta = since(f, "n", before).await;
    let mut keys: Vec<&str> = delta.rows.iter().map(|r| r.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!((delta.rows.len(), keys.len()), (2250, 2250), "each tombstone delivered once");
    let census = f.store.census("n", NOW).await.unwrap();
    assert_eq!((census.live, census.tombstones), (1, 5000));
    assert_eq!(put(f, "n", "q:02499", v(NOW - 1, "b", "old")).await.outcome, MergeOutcome::Cleared);
    // Sent again, the clear changes nothing.
    let again = f.store.apply("n", WriteOp::Clear(Stamp::new(NOW, "z")), NOW).await.unwrap().clear.unwrap();
    assert_eq!((again.outcome, again.tombstoned), (MergeOutcome::Duplicate, 0));
}

/// Two server instances on one Redis (two `RedisStore`s: separate connections, separate
/// in-process write locks) writing the same keys at once contend only through the commit check.
/// They end in the merge rule's state, and a client paging through deltas meanwhile gets every
/// accepted write (or a later one of its key) exactly once, in sequence order: no gap, no repeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_instances_sharing_one_redis_merge_and_deliver_without_gaps() {
    let url = support::redis::standalone().url();
    let prefix = support::redis::unique_prefix("instances");
    let instances = [Arc::new(open_redis(&url, &prefix).await), Arc::new(open_redis(&url, &prefix).await)];
    let writers_done = Arc::new(AtomicBool::new(false));
    let reader = {
        let store = instances[0].clone();
        let writers_done = writers_done.clone();
        tokio::spawn(async move {
            let (mut cursor, mut seen) = (0, Vec::new());
            loop {
                let last_round = writers_done.load(Ordering::SeqCst);
                let query = DeltaQuery { last_sync: cursor, exclude: HashSet::new(), max_rows: 7, max_bytes: 1 << 20 };
                let page = store.delta("n", query).await.unwrap();
                let mut previous = cursor;
                for row in &page.rows {
                    assert!(
                        row.stored.seq > previous,
                        "rows come once, in sequence order: {} after {previous}",
                        row.stored.seq
                    );
                    previous = row.stored.seq;
                }
                assert!(page.cursor >= previous);
                cursor = page.cursor;
                seen.extend(page.rows.into_iter().map(|row| (row.key, row.stored)));
                if last_round && !page.more {
                    return (seen, cursor);
                }
                if !page.more {
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            }
        })
    };
    let mut writers = Vec::new();
    for writer in 0..6u64 {
        let store = instances[(writer % 2) as usize].clone();
        writers.push(tokio::spawn(async move {
            let mut rng = Rng::new(500 + writer);
            let mut sent = Vec::new();
            for i in 0..40 {
                let key = format!("k{}", rng.below(8));
                let stamp = Stamp::new(1 + rng.below(200) * 64 + i, format!("w{writer}"));
                let entry = if rng.below(5) == 0 {
                    Entry::tombstone(stamp)
                } else {
                    Entry::value(stamp, 0, format!("{writer}.{i}"))
                };
                let report = store.apply("n", WriteOp::Changes(vec![(key.clone(), entry.clone())]), NOW).await.unwrap();
                sent.push((key, entry, report.changes[0].seq));
            }
            sent
        }));
    }
    let mut expected: BTreeMap<String, Entry> = BTreeMap::new();
    let mut accepted = Vec::new();
    for writer in writers {
        for (key, entry, seq) in writer.await.unwrap() {
            if let Some(seq) = seq {
                accepted.push((key.clone(), seq));
            }
            if expected.get(&key).is_none_or(|e| e.stamp < entry.stamp) {
                expected.insert(key, entry);
            }
        }
    }
    writers_done.store(true, Ordering::SeqCst);
    let (seen, reader_cursor) = reader.await.unwrap();

    let f = Fixture { store: instances[1].clone(), _dir: None };
    assert_eq!(state(&f, "n").await, expected, "the merge rule's state");
    let mut delivered: BTreeMap<String, Entry> = BTreeMap::new();
    let mut latest_seq: BTreeMap<String, u64> = BTreeMap::new();
    for (key, stored) in &seen {
        delivered.insert(key.clone(), stored.entry.clone());
        latest_seq.insert(key.clone(), stored.seq);
    }
    assert_eq!(delivered, expected, "the paging client reached the same state");
    for (key, seq) in &accepted {
        assert!(latest_seq.get(key).is_some_and(|s| s >= seq), "accepted write {key}@{seq} was never delivered");
    }
    let cursors = [instances[0].cursor("n").await.unwrap(), instances[1].cursor("n").await.unwrap()];
    assert_eq!(cursors, [reader_cursor, reader_cursor], "both instances see one cursor");
}

/// A stopped Redis (SIGKILL, AOF with `appendfsync always`) makes operations fail promptly as
/// `Unavailable`; once it runs again on the same port and data, the same store handle works by
/// itself, and every write acknowledged before the crash is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_crash_fails_fast_and_the_same_store_recovers_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = support::redis::RedisServer::start(dir.path());
    let f = Fixture { store: Arc::new(open_redis(&server.url(), "crash").await), _dir: None };
    let mut acknowledged = BTreeMap::new();
    for i in 0..30 {
        let key = format!("k{}", i % 20);
        let entry =
            if i % 7 == 3 { Entry::tombstone(Stamp::new(NOW + i, "a")) } else { v(NOW + i, "a", &i.to_string()) };
        assert_eq!(put(&f, "n", &key, entry.clone()).await.outcome, MergeOutcome::Applied);
        acknowledged.insert(key, entry);
    }
    let cursor = f.store.cursor("n").await.unwrap();

    server.kill();
    // The first attempt finds the connection dropped, the next ones find nothing listening.
    for _ in 0..3 {
        let started = Instant::now();
        let late = WriteOp::Changes(vec![("late".into(), v(NOW + 100, "a", "1"))]);
        let err = f.store.apply("n", late, NOW).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    }
    let query = DeltaQuery { last_sync: 0, exclude: HashSet::new(), max_rows: 10, max_bytes: 1 << 20 };
    assert!(matches!(f.store.delta("n", query).await.unwrap_err(), StoreError::Unavailable(_)));
    assert!(matches!(f.store.cursor("n").await.unwrap_err(), StoreError::Unavailable(_)));

    server.restart();
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let recovered = loop {
        match f.store.cursor("n").await {
            Ok(cursor) => break cursor,
            Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(err) => panic!("the store did not recover: {err}"),
        }
    };
    assert_eq!(recovered, cursor, "the cursor survived");
    assert_eq!(state(&f, "n").await, acknowledged, "every acknowledged write survived");
    assert_eq!(put(&f, "n", "after", v(NOW + 200, "a", "1")).await.outcome, MergeOutcome::Applied);
}

/// A server clock days ahead of every write (and a collection run on it, as at start-up) forgets
/// nothing the namespace's own time says is younger than the retention: a write stamped a moment
/// before the namespace's newest, to a key it holds nothing for, is still stored.
async fn gc_on_a_clock_far_ahead_forgets_nothing_younger_by_the_namespaces_time(f: &Fixture) {
    put(f, "n", "removed", Entry::tombstone(Stamp::new(NOW, "a"))).await;
    put(f, "n", "kept", v(NOW, "a", "1")).await;
    assert_eq!(f.store.gc(NOW + 2 * DAY, DAY).await.unwrap().removed, 0);
    let fresh = put(f, "n", "fresh", v(NOW - 10_000, "b", "2")).await;
    assert_eq!((fresh.outcome, fresh.rejected), (MergeOutcome::Applied, None));
    // Once the namespace's own time has moved past the retention, the tombstone goes.
    put(f, "n", "later", v(NOW + DAY + 1_000, "a", "3")).await;
    assert_eq!(f.store.gc(NOW + 2 * DAY, DAY).await.unwrap().removed, 1);
}

/// A write refused by the GC floor, or one that reuses a stamp with other contents, is not stored
/// and says why: its answer must not look like an acknowledgement.
async fn writes_not_stored_without_a_newer_write_say_why(f: &Fixture) {
    put(f, "n", "gone", Entry::tombstone(Stamp::new(NOW - 10 * DAY, "a"))).await;
    put(f, "n", "live", v(NOW, "a", "1")).await;
    assert_eq!(f.store.gc(NOW, DAY).await.unwrap().removed, 1);
    let below = put(f, "n", "other", v(NOW - 11 * DAY, "b", "old")).await;
    assert_eq!((below.outcome, below.rejected), (MergeOutcome::Stale, Some(Rejection::BelowFloor)));
    assert!(!state(f, "n").await.contains_key("other"));
    let again = put(f, "n", "live", v(NOW, "a", "1")).await;
    assert_eq!((again.outcome, again.rejected), (MergeOutcome::Duplicate, None), "a duplicate delivery");
    let conflict = put(f, "n", "live", v(NOW, "a", "2")).await;
    assert_eq!((conflict.outcome, conflict.rejected), (MergeOutcome::Duplicate, Some(Rejection::StampConflict)));
    assert_eq!(state(f, "n").await["live"], v(NOW, "a", "1"), "the first write stays");
    let stale = put(f, "n", "live", v(NOW - 1, "a", "3")).await;
    assert_eq!((stale.outcome, stale.rejected), (MergeOutcome::Stale, None), "losing to a newer write is no rejection");
}

/// With the server's clock days ahead of every write, an invalidation is stamped just after the
/// namespace's newest write, not at the server's time: a client's write made after it in real
/// time wins.
async fn invalidations_are_not_stamped_past_the_namespaces_time(f: &Fixture) {
    put(f, "n", "k", v(NOW, "a", "1")).await;
    assert_eq!(invalidate(f, "n", &["k"], NOW + 2 * DAY).await, 1);
    assert_eq!(state(f, "n").await["k"], Entry::tombstone(Stamp::new(NOW + 1, INVALIDATION_NODE)));
    assert_eq!(put(f, "n", "k", v(NOW + 60_000, "a", "2")).await.outcome, MergeOutcome::Applied);
}

/// The time a TTL runs from travels with the write, and expiry follows it: a writer whose hybrid
/// clock had run 23 h ahead (it saw a stamp from a fast clock) wrote a 5 s value.
async fn the_written_time_is_kept_and_expiry_follows_it(f: &Fixture) {
    let skewed = Entry::value(Stamp::new(NOW + 23 * HOUR, "a"), 5_000, "1").written_at(NOW);
    put(f, "n", "k", skewed.clone()).await;
    assert_eq!(state(f, "n").await["k"], skewed);
    let census = f.store.census("n", NOW + 4_999).await.unwrap();
    assert_eq!((census.live, census.expired), (1, 0));
    let census = f.store.census("n", NOW + 5_000).await.unwrap();
    assert_eq!((census.live, census.expired), (0, 1), "expired 5 s after it was written, not 23 h");
}
