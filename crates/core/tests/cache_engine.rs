//! Tests of the persistent engine, `Cache<MemoryStorage>`: hydration, bad storage contents,
//! prefixes, TTL, retention, clear epochs, re-persisting, quota eviction and broken storage.
use std::collections::BTreeMap;

use mfe_shared_cache_core::{
    encode_record, prefix_tag, Cache, CacheConfig, CacheError, Entry, ErrorKind, MemoryStorage, Stamp, Storage,
    StorageError,
};

const T0: u64 = 10_000;

fn config(prefix: &str, node: &str) -> CacheConfig {
    CacheConfig::new(prefix, node)
}

fn open(storage: MemoryStorage, prefix: &str, node: &str, now: u64) -> Cache<MemoryStorage> {
    let (cache, errors) = Cache::open(storage, config(prefix, node), now);
    assert_eq!(errors, vec![], "opening a clean storage reported errors");
    cache
}

fn set(cache: &mut Cache<MemoryStorage>, key: &str, json: &str, ttl_ms: u64, now: u64) -> Entry {
    cache.set(key, json.to_owned(), ttl_ms, now).expect("valid key")
}

fn flush_ok(cache: &mut Cache<MemoryStorage>, now: u64) {
    let report = cache.flush(now);
    assert_eq!(report.errors, vec![], "flush reported errors");
}

fn visible(cache: &mut Cache<MemoryStorage>, keys: &[&str], now: u64) -> BTreeMap<String, Option<String>> {
    keys.iter().map(|k| (k.to_string(), cache.get(k, now).map(str::to_owned))).collect()
}

fn owned_state(cache: &Cache<MemoryStorage>) -> (BTreeMap<String, Entry>, Option<Stamp>) {
    let (entries, epoch) = cache.replica().state();
    (entries.into_iter().map(|(k, e)| (k.to_owned(), e.clone())).collect(), epoch.cloned())
}

fn stored_keys(storage: &MemoryStorage) -> Vec<String> {
    storage.items().keys().cloned().collect()
}

// ---------------------------------------------------------------------------------------------
// Open / hydrate

#[test]
fn values_written_by_one_cache_are_read_by_another_over_the_same_storage() {
    let mut a = open(MemoryStorage::new(), "app_", "tab-a", T0);
    set(&mut a, "user", r#"{"name":"John","tags":["x",1,null]}"#, 0, T0);
    set(&mut a, "count", "42", 60_000, T0 + 1);
    set(&mut a, "gone", "true", 0, T0 + 2);
    a.remove("gone", T0 + 3).unwrap();
    set(&mut a, "nul", "null", 0, T0 + 4);
    set(&mut a, "ünïcødé 🔑", "\"✓\"", 0, T0 + 5);
    flush_ok(&mut a, T0 + 5);

    let mut b = open(a.storage().clone(), "app_", "tab-b", T0 + 10);
    let keys = ["user", "count", "gone", "nul", "ünïcødé 🔑", "missing"];
    assert_eq!(visible(&mut b, &keys, T0 + 10), visible(&mut a, &keys, T0 + 10));
    assert_eq!(b.get("user", T0 + 10), Some(r#"{"name":"John","tags":["x",1,null]}"#));
    assert_eq!(b.get("nul", T0 + 10), Some("null"));
    assert_eq!(b.get("gone", T0 + 10), None);
    // Every write, tombstone and TTL came through unchanged.
    assert_eq!(owned_state(&b), owned_state(&a));
    assert_eq!(b.expires_at("count"), Some(T0 + 1 + 60_000));

    // The reader's clock saw the stored stamps: its next write orders after them even with a
    // wall clock far behind.
    let later = b.set("user", "1".into(), 0, 0).unwrap();
    assert!(later.stamp > a.replica().entry("user").unwrap().stamp);
}

#[test]
fn a_tombstone_read_back_still_blocks_an_older_write() {
    let mut a = open(MemoryStorage::new(), "app_", "a", T0);
    set(&mut a, "k", "1", 0, T0);
    a.remove("k", T0 + 100).unwrap();
    flush_ok(&mut a, T0 + 100);

    let mut b = open(a.storage().clone(), "app_", "b", T0 + 200);
    let late = Entry::value(Stamp::new(T0 + 50, "z"), 0, "\"resurrected\"");
    let changed = b.apply_remote(vec![("k".into(), late)], None, true, T0 + 200);
    assert_eq!(changed, Vec::<String>::new());
    assert_eq!(b.get("k", T0 + 200), None);
}

#[test]
fn corrupt_and_foreign_entries_under_the_prefix_are_skipped_reported_and_left_in_place() {
    let tag = prefix_tag("app_");
    let mut storage = MemoryStorage::new();
    let good = Entry::value(Stamp::new(T0, "n"), 0, "\"ok\"");
    storage.set("app_good", &encode_record(&good, &tag)).unwrap();
    let bad: [(&str, String); 8] = [
        ("app_garbage", "not json at all".into()),
        ("app_truncated", encode_record(&good, &tag)[..20].to_owned()),
        ("app_foreign", r#"{"hello":"world"}"#.into()),
        ("app_number", "42".into()),
        ("app_null", "null".into()),
        ("app_negative", format!(r#"{{"t":-5,"n":"n","p":"{tag}","v":1}}"#)),
        ("app_too_big", format!(r#"{{"t":{},"n":"n","p":"{tag}","v":1}}"#, 1u64 << 60)),
        // A well-formed record of this cache, but under an empty key (the bare prefix).
        ("app_", encode_record(&good, &tag)),
    ];
    for (key, text) in &bad {
        storage.set(key, text).unwrap();
    }
    storage.set("app_\u{0}meta", "{broken").unwrap();
    // Outside the prefix: none of this cache's business, not reported.
    storage.set("unrelated", "garbage").unwrap();
    storage.set("ap", "garbage").unwrap();
    let before = storage.items().clone();

    let (mut cache, errors) = Cache::open(storage, config("app_", "n2"), T0 + 1);

    let mut reported: Vec<&str> = errors.iter().filter_map(CacheError::key).collect();
    reported.sort_unstable();
    let mut expected: Vec<&str> = bad.iter().map(|(k, _)| *k).chain(["app_\u{0}meta"]).collect();
    expected.sort_unstable();
    assert_eq!(reported, expected);
    for e in &errors {
        assert_eq!(e.kind(), ErrorKind::StorageCorrupt, "{e}");
        assert_eq!(e.kind().as_str(), "STORAGE_CORRUPT");
        assert!(!e.retryable());
    }
    assert_eq!(cache.get("good", T0 + 1), Some("\"ok\""));
    assert_eq!(cache.replica().len(), 1);
    assert_eq!(cache.storage().items(), &before, "bad entries must be left untouched");

    // Writing unrelated keys and flushing does not touch them either.
    set(&mut cache, "other", "1", 0, T0 + 2);
    flush_ok(&mut cache, T0 + 2);
    for (key, text) in &bad {
        assert_eq!(cache.storage().items().get(*key), Some(text));
    }
}

#[test]
fn records_a_later_version_adds_members_to_are_read_and_left_as_they_are() {
    // Another MFE's newer copy of the package shares the storage: the members it adds are skipped.
    let tag = prefix_tag("app_");
    let mut storage = MemoryStorage::new();
    let later = [
        ("app_k", format!(r#"{{"t":{T0},"n":"w","p":"{tag}","x":{{"y":[1,"}}"]}},"l":60000,"v":"later"}}"#)),
        ("app_gone", format!(r#"{{"t":{T0},"n":"w","p":"{tag}","x":1,"d":1}}"#)),
        ("app_\u{0}meta", format!(r#"{{"p":"{tag}","t":{},"n":"w","x":null}}"#, T0 - 5)),
    ];
    for (key, text) in &later {
        storage.set(key, text).unwrap();
    }
    let mut cache = open(storage, "app_", "n2", T0 + 1);
    assert_eq!(visible(&mut cache, &["k", "gone"], T0 + 1), BTreeMap::from([("k".into(), Some("\"later\"".into())), ("gone".into(), None)]));
    assert_eq!(cache.expires_at("k"), Some(T0 + 60_000));
    let (entries, epoch) = owned_state(&cache);
    assert_eq!(entries.get("gone"), Some(&Entry::tombstone(Stamp::new(T0, "w"))));
    assert_eq!(epoch, Some(Stamp::new(T0 - 5, "w")));

    set(&mut cache, "other", "1", 0, T0 + 2);
    flush_ok(&mut cache, T0 + 2);
    for (key, text) in &later {
        assert_eq!(cache.storage().items().get(*key), Some(text), "{key}");
    }
}

#[test]
fn entries_of_a_cache_with_a_longer_prefix_are_silently_skipped() {
    // "app_x_" keys start with "app_"; "app_" writing key "x_k" uses "app_x_k" too.
    let mut long = open(MemoryStorage::new(), "app_x_", "l", T0);
    set(&mut long, "k", "\"long\"", 0, T0);
    set(&mut long, "t", "1", 0, T0);
    long.remove("t", T0 + 1).unwrap();
    long.clear(T0 + 2);
    set(&mut long, "after", "\"long after\"", 0, T0 + 3);
    flush_ok(&mut long, T0 + 3);
    assert!(long.storage().items().contains_key("app_x_\u{0}meta"));

    let mut short = open(long.storage().clone(), "app_", "s", T0 + 4);
    assert!(short.replica().is_empty(), "{:?}", owned_state(&short));
    assert_eq!(short.replica().epoch(), None, "the other cache's clear must not apply");
    assert_eq!(short.get("x_after", T0 + 4), None);

    // The short-prefix cache writes its own "x_k" (storage key "app_x_k") and clears: the long
    // prefix cache's records are not touched by the clear...
    set(&mut short, "x_k", "\"short\"", 0, T0 + 5);
    set(&mut short, "s", "\"short\"", 0, T0 + 5);
    flush_ok(&mut short, T0 + 5);
    short.clear(T0 + 6);
    set(&mut short, "x_z", "\"short after\"", 0, T0 + 7);
    flush_ok(&mut short, T0 + 7);
    assert!(short.storage().items().contains_key("app_x_after"));
    assert!(short.storage().items().contains_key("app_x_\u{0}meta"));

    // ...and the long-prefix cache skips the short one's records ("app_x_z" looks like its key "z").
    let mut long2 = open(short.storage().clone(), "app_x_", "l2", T0 + 8);
    assert_eq!(long2.get("after", T0 + 8), Some("\"long after\""));
    assert_eq!(long2.get("z", T0 + 8), None);
    assert_eq!(long2.replica().len(), 1);
    assert_eq!(long2.replica().epoch(), long.replica().epoch());
}

// ---------------------------------------------------------------------------------------------
// TTL

#[test]
fn a_value_is_visible_until_just_before_it_expires() {
    let mut c = open(MemoryStorage::new(), "p_", "n", T0);
    set(&mut c, "k", "1", 1_000, T0);
    assert_eq!(c.expires_at("k"), Some(T0 + 1_000));
    assert_eq!(c.get("k", T0), Some("1"));
    assert_eq!(c.get("k", T0 + 999), Some("1"));
    assert_eq!(c.get("k", T0 + 1_000), None);
    assert_eq!(c.get("k", T0 + 1_001), None);
    assert_eq!(c.get("k", u64::MAX), None);
    // Expiry depends on the write only: a reader's clock going back shows it again, like every tab.
    assert_eq!(c.get("k", T0 + 500), Some("1"));
}

#[test]
fn take_expired_reports_each_expiry_once_and_next_expiry_follows_the_earliest() {
    let mut c = open(MemoryStorage::new(), "p_", "n", T0);
    assert_eq!(c.next_expiry(), None);
    set(&mut c, "forever", "0", 0, T0);
    assert_eq!(c.next_expiry(), None, "ttl 0 never expires");
    set(&mut c, "late", "1", 5_000, T0 + 1); // expires T0 + 5_001
    set(&mut c, "soon", "2", 998, T0 + 2); // expires T0 + 1_000
    set(&mut c, "soon2", "3", 997, T0 + 3); // expires T0 + 1_000 too
    assert_eq!(c.expires_at("soon2"), Some(T0 + 1_000));
    assert_eq!(c.next_expiry(), Some(T0 + 1_000));

    assert_eq!(c.take_expired(T0 + 999), Vec::<String>::new());
    let mut first = c.take_expired(T0 + 1_000);
    first.sort();
    assert_eq!(first, vec!["soon".to_string(), "soon2".to_string()]);
    assert_eq!(c.take_expired(T0 + 1_000), Vec::<String>::new(), "reported twice");
    assert_eq!(c.take_expired(T0 + 5_000), Vec::<String>::new());
    assert_eq!(c.next_expiry(), Some(T0 + 5_001));
    assert_eq!(c.take_expired(T0 + 60_000), vec!["late".to_string()]);
    assert_eq!(c.take_expired(T0 + 60_000), Vec::<String>::new());
    assert_eq!(c.next_expiry(), None);
}

#[test]
fn overwriting_removing_or_clearing_cancels_a_pending_expiry() {
    let mut c = open(MemoryStorage::new(), "p_", "n", T0);
    set(&mut c, "a", "1", 1_000, T0);
    set(&mut c, "b", "1", 2_000, T0 + 1);
    set(&mut c, "c", "1", 3_000, T0 + 2);
    set(&mut c, "a", "2", 0, T0 + 10); // now never expires
    c.remove("b", T0 + 11).unwrap();
    set(&mut c, "c", "2", 10_000, T0 + 12); // expires later
    assert_eq!(c.next_expiry(), Some(T0 + 2 + 3_000), "c's reminder, at its first expiry");
    assert_eq!(c.take_expired(T0 + 5_000), Vec::<String>::new());
    assert_eq!(c.next_expiry(), Some(T0 + 12 + 10_000), "the reminder moved on to c's expiry");
    c.clear(T0 + 20);
    assert_eq!(c.next_expiry(), None);
    assert_eq!(c.take_expired(u64::MAX), Vec::<String>::new());
}

#[test]
fn a_key_rewritten_many_times_expires_once_at_its_last_expiry() {
    let mut c = open(MemoryStorage::new(), "p_", "n", T0);
    for i in 0..1_000 {
        set(&mut c, "hot", "1", 1_000, T0 + i);
    }
    set(&mut c, "cold", "1", 50_000, T0); // the HLC stamps it T0 + 1_000, after "hot"
    assert_eq!(c.next_expiry(), Some(T0 + 1_000), "the first write's reminder");
    assert_eq!(c.take_expired(T0 + 1_000), Vec::<String>::new());
    assert_eq!(c.next_expiry(), Some(T0 + 999 + 1_000));
    assert_eq!(c.take_expired(T0 + 1_998), Vec::<String>::new());
    assert_eq!(c.take_expired(T0 + 1_999), vec!["hot".to_string()]);
    assert_eq!(c.take_expired(T0 + 49_999), Vec::<String>::new());
    assert_eq!(c.take_expired(T0 + 1_000 + 50_000), vec!["cold".to_string()]);
    assert_eq!(c.next_expiry(), None);
}

#[test]
fn an_expiry_pushed_back_then_brought_forward_is_reported_once_at_the_right_time() {
    let mut c = open(MemoryStorage::new(), "p_", "n", T0);
    set(&mut c, "k", "1", 5_000, T0); // T0 + 5_000
    set(&mut c, "k", "2", 1_000, T0 + 1); // brought forward: T0 + 1_001
    set(&mut c, "k", "3", 3_000, T0 + 2); // pushed back: T0 + 3_002, no item of its own
    assert_eq!(c.take_expired(T0 + 1_001), Vec::<String>::new(), "the reminder moves on");
    assert_eq!(c.next_expiry(), Some(T0 + 3_002));
    assert_eq!(c.take_expired(T0 + 3_001), Vec::<String>::new());
    assert_eq!(c.take_expired(T0 + 3_002), vec!["k".to_string()]);
    assert_eq!(c.take_expired(T0 + 5_000), Vec::<String>::new(), "the first write's item is stale");
    assert_eq!(c.next_expiry(), None);
}

#[test]
fn a_key_rewritten_with_alternating_ttls_expires_once() {
    let mut c = open(MemoryStorage::new(), "p_", "n", T0);
    // Every other write brings the expiry forward (an item each), so the heap is rebuilt.
    for i in 0..1_000u64 {
        let ttl = if i % 2 == 0 { 10_000 } else { 5_000 };
        set(&mut c, "hot", "1", ttl, T0 + i);
    }
    let last = c.expires_at("hot").expect("an expiry");
    assert_eq!(last, T0 + 999 + 5_000);
    assert_eq!(c.take_expired(last - 1), Vec::<String>::new());
    assert_eq!(c.take_expired(last), vec!["hot".to_string()]);
    assert_eq!(c.take_expired(u64::MAX), Vec::<String>::new());
    assert_eq!(c.next_expiry(), None);
}

#[test]

fn an_expiry_is_reported_once_even_after_the_expiry_heap_is_rebuilt() {
    let mut c = open(MemoryStorage::new(), "p_", "n", T0);
    set(&mut c, "once", "1", 10, T0);
    assert_eq!(c.take_expired(T0 + 10), vec!["once".to_string()]);
    // Bringing another key's expiry forward 200 times (an item each) makes the heap rebuild itself.
    for i in 0..200 {
        set(&mut c, "hot", "1", 1_000_000 - 2 * i, T0 + 20 + i);
    }
    assert_eq!(c.expires_at("hot"), Some(T0 + 20 + 1_000_000 - 199));
    assert_eq!(c.next_expiry(), Some(T0 + 20 + 1_000_000 - 199), "an expiry in the past is pending again");
    assert_eq!(c.take_expired(T0 + 1_000), Vec::<String>::new(), "\"once\" expired twice");
}

#[test]
fn expiries_of_remote_and_hydrated_entries_are_scheduled() {
    let mut a = open(MemoryStorage::new(), "p_", "a", T0);
    set(&mut a, "k", "1", 1_000, T0);
    flush_ok(&mut a, T0);
    let mut b = open(a.storage().clone(), "p_", "b", T0 + 1);
    assert_eq!(b.next_expiry(), Some(T0 + 1_000));
    let remote = Entry::value(Stamp::new(T0 + 5, "z"), 100, "2");
    b.apply_remote(vec![("r".into(), remote)], None, true, T0 + 6);
    assert_eq!(b.next_expiry(), Some(T0 + 105));
    assert_eq!(b.take_expired(T0 + 105), vec!["r".to_string()]);
    assert_eq!(b.take_expired(T0 + 1_000), vec!["k".to_string()]);
}

// ---------------------------------------------------------------------------------------------
// Retention

#[test]
fn tombstones_and_expired_values_past_retention_are_purged_on_open() {
    let mut cfg = config("p_", "a");
    cfg.tombstone_retention_ms = 1_000;
    let (mut a, errors) = Cache::open(MemoryStorage::new(), cfg.clone(), T0);
    assert!(errors.is_empty());
    set(&mut a, "live", "1", 0, T0);
    set(&mut a, "tomb", "1", 0, T0);
    a.remove("tomb", T0).unwrap(); // dead since T0 + 1 (its own stamp)
    set(&mut a, "ttl", "1", 500, T0 + 1); // dead since T0 + 501
    flush_ok(&mut a, T0 + 1);
    let tomb_ts = a.replica().entry("tomb").unwrap().stamp.ts;
    let ttl_dead = a.expires_at("ttl").unwrap();
    assert_eq!(stored_keys(a.storage()), ["p_live", "p_tomb", "p_ttl"]);

    let reopen = |now: u64| {
        let (c, errors) = Cache::open(a.storage().clone(), cfg.clone(), now);
        assert!(errors.is_empty());
        c
    };
    // Just before the tombstone's retention ends: everything is kept.
    let c = reopen(tomb_ts + 999);
    assert_eq!(c.replica().len(), 3);
    assert_eq!(stored_keys(c.storage()), ["p_live", "p_tomb", "p_ttl"]);
    // At its end: the tombstone goes, from memory and storage; the expired value stays.
    let c = reopen(tomb_ts + 1_000);
    assert!(c.replica().entry("tomb").is_none());
    assert!(c.replica().entry("ttl").is_some());
    assert_eq!(stored_keys(c.storage()), ["p_live", "p_ttl"]);
    // Past the expired value's retention: it goes too; the live value never does.
    let mut c = reopen(ttl_dead + 1_000);
    assert!(c.replica().entry("ttl").is_none());
    assert_eq!(stored_keys(c.storage()), ["p_live"]);
    assert_eq!(c.get("live", u64::MAX / 2), Some("1"));
}

// ---------------------------------------------------------------------------------------------
// Clear epochs

#[test]
fn a_clear_persists_and_older_writes_arriving_after_reopen_are_ignored() {
    let mut a = open(MemoryStorage::new(), "app_", "a", T0);
    set(&mut a, "x", "1", 0, T0);
    set(&mut a, "y", "2", 0, T0 + 1);
    flush_ok(&mut a, T0 + 1);
    let (epoch, visible) = a.clear(T0 + 1_000);
    let mut visible = visible;
    visible.sort();
    assert_eq!(visible, ["x", "y"]);
    let report = a.flush(T0 + 1_000);
    assert!(report.errors.is_empty());
    assert_eq!(report.clear.clone(), Some(epoch.clone()));
    assert!(report.changes.is_empty(), "writes cleared before the flush are not news");
    assert_eq!(stored_keys(a.storage()), ["app_\u{0}meta"], "cleared records are removed");

    let mut b = open(a.storage().clone(), "app_", "b", T0 + 2_000);
    assert_eq!(b.replica().epoch(), Some(&epoch));
    assert!(b.replica().is_empty());
    // An old write (from a slow tab, or the backend) arrives after the reopen.
    let old = Entry::value(Stamp::new(T0 + 500, "zzz"), 0, "\"old\"");
    assert!(b.apply_remote(vec![("x".into(), old)], None, true, T0 + 2_000).is_empty());
    assert_eq!(b.get("x", T0 + 2_000), None);
    assert_eq!(b.pending_flush(), 0);
    flush_ok(&mut b, T0 + 2_000);
    assert!(!b.storage().items().contains_key("app_x"));
    // A write ordered after the clear is applied.
    let new = Entry::value(Stamp::new(T0 + 1_500, "zzz"), 0, "\"new\"");
    assert_eq!(b.apply_remote(vec![("x".into(), new)], None, true, T0 + 2_000), ["x"]);
    assert_eq!(b.get("x", T0 + 2_000), Some("\"new\""));
}

#[test]
fn a_record_older_than_the_persisted_clear_is_dropped_on_open() {
    let tag = prefix_tag("app_");
    let mut a = open(MemoryStorage::new(), "app_", "a", T0);
    a.clear(T0 + 1_000);
    flush_ok(&mut a, T0 + 1_000);
    // Another tab that had not seen the clear writes an older record, and a newer one.
    let mut storage = a.storage().clone();
    storage.set("app_old", &encode_record(&Entry::value(Stamp::new(T0 + 999, "t"), 0, "1"), &tag)).unwrap();
    storage.set("app_new", &encode_record(&Entry::value(Stamp::new(T0 + 1_001, "t"), 0, "2"), &tag)).unwrap();
    let mut b = open(storage, "app_", "b", T0 + 2_000);
    assert_eq!(b.get("old", T0 + 2_000), None);
    assert_eq!(b.get("new", T0 + 2_000), Some("2"));
    assert_eq!(stored_keys(b.storage()), ["app_\u{0}meta", "app_new"]);
}

#[test]
fn a_remote_clear_removes_visible_keys_and_is_persisted_when_asked() {
    let mut c = open(MemoryStorage::new(), "app_", "a", T0);
    set(&mut c, "x", "1", 0, T0);
    set(&mut c, "exp", "1", 10, T0);
    set(&mut c, "after", "1", 0, T0 + 500);
    flush_ok(&mut c, T0 + 500);
    let epoch = Stamp::new(T0 + 100, "remote");
    let mut changed = c.apply_remote(vec![], Some(epoch.clone()), true, T0 + 600);
    changed.sort();
    assert_eq!(changed, ["x"], "only keys visible before the clear changed");
    assert_eq!(c.get("after", T0 + 600), Some("1"));
    flush_ok(&mut c, T0 + 600);
    let b = open(c.storage().clone(), "app_", "b", T0 + 700);
    assert_eq!(b.replica().epoch(), Some(&epoch));
    assert_eq!(stored_keys(b.storage()), ["app_\u{0}meta", "app_after"]);
}

// ---------------------------------------------------------------------------------------------
// Re-persisting what another tab overwrote

#[test]
fn a_stale_change_from_a_tab_marks_the_newer_record_for_re_persisting() {
    let tag = prefix_tag("app_");
    let mut c = open(MemoryStorage::new(), "app_", "mine", T0);
    let mine = set(&mut c, "k", "\"mine\"", 0, T0 + 100);
    flush_ok(&mut c, T0 + 100);
    assert_eq!(c.pending_flush(), 0);

    // A slower tab persists its older write over ours, then tells us (persist = false: it has
    // already written storage).
    let theirs = Entry::value(Stamp::new(T0 + 50, "theirs"), 0, "\"theirs\"");
    c.storage_mut().set("app_k", &encode_record(&theirs, &tag)).unwrap();
    let changed = c.apply_remote(vec![("k".into(), theirs)], None, false, T0 + 200);
    assert!(changed.is_empty());
    assert_eq!(c.get("k", T0 + 200), Some("\"mine\""));
    assert_eq!(c.pending_flush(), 1);
    let report = c.flush(T0 + 200);
    assert!(report.errors.is_empty());
    assert!(report.changes.is_empty(), "a re-persist is not a new change");
    assert_eq!(c.storage().items().get("app_k"), Some(&encode_record(&mine, &tag)));

    let mut reopened = open(c.storage().clone(), "app_", "other", T0 + 300);
    assert_eq!(reopened.get("k", T0 + 300), Some("\"mine\""));
}

#[test]
fn a_write_leaves_another_tabs_newer_record_but_not_a_damaged_one() {
    let tag = prefix_tag("app_");
    let mut c = open(MemoryStorage::new(), "app_", "mine", T0);
    // Another tab stored newer writes whose news has not arrived; one of them is damaged since
    // (its head is sound, its value is not JSON).
    let theirs = Entry::value(Stamp::new(T0 + 500, "theirs"), 0, "\"theirs\"");
    let theirs_text = encode_record(&theirs, &tag);
    let damaged = encode_record(&theirs, &tag).replace("\"theirs\"}", "{oops}");
    c.storage_mut().set("app_kept", &theirs_text).unwrap();
    c.storage_mut().set("app_damaged", &damaged).unwrap();

    set(&mut c, "kept", "\"mine\"", 0, T0 + 100);
    set(&mut c, "damaged", "\"mine\"", 0, T0 + 100);
    flush_ok(&mut c, T0 + 100);
    assert_eq!(c.storage().items().get("app_kept"), Some(&theirs_text), "an older write went over a newer one");
    let mut reopened = open(c.storage().clone(), "app_", "other", T0 + 200);
    assert_eq!(reopened.get("damaged", T0 + 200), Some("\"mine\""), "a damaged record was kept because its head looked newer");
}

#[test]
fn an_applied_change_from_a_tab_is_not_written_again_but_one_from_the_backend_is() {
    let mut c = open(MemoryStorage::new(), "app_", "mine", T0);
    let remote = Entry::value(Stamp::new(T0, "tab"), 0, "1");
    assert_eq!(c.apply_remote(vec![("k".into(), remote.clone())], None, false, T0), ["k"]);
    assert_eq!(c.pending_flush(), 0);
    flush_ok(&mut c, T0);
    assert!(c.storage().is_empty(), "the sending tab persists its own write");

    let backend = Entry::value(Stamp::new(T0 + 1, "server"), 0, "2");
    assert_eq!(c.apply_remote(vec![("k".into(), backend)], None, true, T0 + 1), ["k"]);
    assert_eq!(c.pending_flush(), 1);
    let report = c.flush(T0 + 1);
    assert!(report.errors.is_empty());
    // Only one tab talks to the backend: what it learns is announced to the others.
    let announced: Vec<_> = report.changes.iter().map(|(k, e)| (k.as_str(), e.value.as_deref())).collect();
    assert_eq!(announced, [("k", Some("2"))], "the backend's write is announced to other tabs");
    assert_eq!(open(c.storage().clone(), "app_", "x", T0 + 2).get("k", T0 + 2), Some("2"));
}

// ---------------------------------------------------------------------------------------------
// Quota

const PREFIX: &str = "q_";

fn big(n: usize) -> String {
    format!("\"{}\"", "x".repeat(n))
}

/// UTF-16 units a record of `key` takes in storage, for a write at a 5-digit timestamp.
fn units(key: &str, ttl_ms: u64, json: &str) -> usize {
    let probe = Entry::value(Stamp::new(T0, "n"), ttl_ms, json);
    (PREFIX.len() + key.len() + encode_record(&probe, &prefix_tag(PREFIX)).len()).max(1)
}

fn quota_cache(quota: usize) -> Cache<MemoryStorage> {
    let (c, errors) = Cache::open(MemoryStorage::with_quota(quota), config(PREFIX, "n"), T0);
    assert!(errors.is_empty());
    c
}

#[test]
fn under_quota_pressure_dead_entries_go_first() {
    let v = big(100);
    let quota = units("d", 100, &v) + 2 * units("a", 0, &v) + 10;
    let mut c = quota_cache(quota);
    set(&mut c, "a", &v, 0, T0);
    set(&mut c, "b", &v, 0, T0 + 1);
    set(&mut c, "d", &v, 100, T0 + 2); // the newest, but it expires
    flush_ok(&mut c, T0 + 2);
    assert_eq!(stored_keys(c.storage()), ["q_a", "q_b", "q_d"]);

    set(&mut c, "c", &v, 0, T0 + 5_000);
    flush_ok(&mut c, T0 + 5_000);
    assert_eq!(stored_keys(c.storage()), ["q_a", "q_b", "q_c"], "the expired entry, not the LRU one, goes");
    assert!(c.is_unpersisted("d"));
    assert!(!c.is_unpersisted("a") && !c.is_unpersisted("c"));
    assert!(c.storage().used() <= quota);
}

#[test]
fn under_quota_pressure_the_least_recently_used_live_entry_goes() {
    let v = big(100);
    let quota = 3 * units("a", 0, &v) + 10;
    let mut c = quota_cache(quota);
    set(&mut c, "a", &v, 0, T0);
    set(&mut c, "b", &v, 0, T0 + 1);
    set(&mut c, "c", &v, 0, T0 + 2);
    flush_ok(&mut c, T0 + 2);
    assert_eq!(c.get("a", T0 + 3), Some(v.as_str())); // "a" is now the most recently used
    set(&mut c, "d", &v, 0, T0 + 4);
    flush_ok(&mut c, T0 + 4);
    assert_eq!(stored_keys(c.storage()), ["q_a", "q_c", "q_d"]);
    assert!(c.is_unpersisted("b"));
    // Evicted from storage, still in memory.
    assert_eq!(c.get("b", T0 + 5), Some(v.as_str()));
}

#[test]
fn without_a_use_the_oldest_write_is_the_least_recently_used() {
    let v = big(100);
    let mut c = quota_cache(3 * units("a", 0, &v) + 10);
    for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
        set(&mut c, k, &v, 0, T0 + i as u64);
    }
    flush_ok(&mut c, T0 + 2);
    // Reading a missing or expired key is not a use of anything.
    assert_eq!(c.get("zzz", T0 + 3), None);
    set(&mut c, "d", &v, 0, T0 + 4);
    flush_ok(&mut c, T0 + 4);
    assert_eq!(stored_keys(c.storage()), ["q_b", "q_c", "q_d"]);
    assert!(c.is_unpersisted("a"));
}

#[test]
fn the_key_being_written_is_never_evicted_even_when_it_is_the_least_recently_used() {
    let small = big(100);
    let larger = big(180);
    let quota = 2 * units("a", 0, &small) + 10;
    assert!(units("a", 0, &small) + units("b", 0, &larger) > quota);
    assert!(units("b", 0, &larger) <= quota);
    let mut c = quota_cache(quota);
    set(&mut c, "b", &small, 0, T0);
    set(&mut c, "a", &small, 0, T0 + 1);
    flush_ok(&mut c, T0 + 1);
    c.get("a", T0 + 2);
    // "b" is the least recently used key, and the one growing past the quota.
    let entry = set(&mut c, "b", &larger, 0, T0 + 3);
    flush_ok(&mut c, T0 + 3);
    assert_eq!(stored_keys(c.storage()), ["q_b"]);
    assert_eq!(c.storage().items()["q_b"], encode_record(&entry, &prefix_tag(PREFIX)));
    assert!(c.is_unpersisted("a"));
    assert!(!c.is_unpersisted("b"));
}

#[test]
fn a_value_that_can_never_fit_is_reported_and_kept_in_memory() {
    let v = big(50);
    let quota = 2 * units("a", 0, &v) + 10;
    let mut c = quota_cache(quota);
    set(&mut c, "a", &v, 0, T0);
    set(&mut c, "b", &v, 0, T0 + 1);
    flush_ok(&mut c, T0 + 1);

    let huge = big(quota);
    set(&mut c, "huge", &huge, 0, T0 + 2);
    let report = c.flush(T0 + 2);
    assert_eq!(report.errors, vec![CacheError::QuotaExceeded { key: "huge".into() }]);
    let err = &report.errors[0];
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(err.kind().as_str(), "QUOTA_EXCEEDED");
    assert_eq!(err.key(), Some("huge"));
    assert!(err.retryable());
    // Still told to other tabs: the write happened, only persisting it failed.
    assert_eq!(report.changes.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["huge"]);
    assert_eq!(c.get("huge", T0 + 3), Some(huge.as_str()));
    assert!(c.is_unpersisted("huge"));
    assert!(!c.storage().items().contains_key("q_huge"));
    assert!(c.storage().used() <= quota);
    // The other values are still readable (from memory at least).
    assert_eq!(c.get("a", T0 + 3), Some(v.as_str()));
    assert_eq!(c.get("b", T0 + 3), Some(v.as_str()));

    // A later write of the key that fits is persisted and clears the flag.
    set(&mut c, "huge", "1", 0, T0 + 4);
    flush_ok(&mut c, T0 + 4);
    assert!(!c.is_unpersisted("huge"));
    assert!(c.storage().items().contains_key("q_huge"));
}

#[test]

fn a_value_that_can_never_fit_does_not_evict_other_records_for_nothing() {
    let v = big(50);
    let quota = 2 * units("a", 0, &v) + 10;
    let mut c = quota_cache(quota);
    set(&mut c, "a", &v, 0, T0);
    set(&mut c, "b", &v, 0, T0 + 1);
    flush_ok(&mut c, T0 + 1);
    set(&mut c, "huge", &big(quota), 0, T0 + 2);
    let report = c.flush(T0 + 2);
    assert_eq!(report.errors, vec![CacheError::QuotaExceeded { key: "huge".into() }]);
    // The write failed anyway, so "a" and "b" must still be persisted: a reload must find them.
    assert_eq!(stored_keys(c.storage()), ["q_a", "q_b"]);
    assert!(!c.is_unpersisted("a") && !c.is_unpersisted("b"));
    let mut reopened = open(c.storage().clone(), PREFIX, "r", T0 + 3);
    assert_eq!(reopened.get("a", T0 + 3), Some(v.as_str()));
}

#[test]

fn a_clear_on_a_full_storage_is_persisted() {
    let v = big(100);
    // Room for exactly three records and nothing else.
    let quota = 3 * units("a", 0, &v);
    let mut c = quota_cache(quota);
    for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
        set(&mut c, k, &v, 0, T0 + i as u64);
    }
    flush_ok(&mut c, T0 + 2);
    assert_eq!(c.storage().len(), 3);

    c.clear(T0 + 10);
    let report = c.flush(T0 + 10);
    // Nothing is left to retry either.
    let again = c.flush(T0 + 11);
    let mut reopened = open(c.storage().clone(), PREFIX, "r", T0 + 20);
    assert_eq!(
        reopened.get("a", T0 + 20),
        None,
        "a cleared value came back after reload; flush errors: {:?} then {:?}; storage: {:?}",
        report.errors,
        again.errors,
        stored_keys(c.storage())
    );
    assert!(reopened.replica().epoch().is_some());
    assert_eq!(report.errors, vec![], "clearing frees space; persisting it must not fail");
}

#[test]

fn quota_eviction_does_not_delete_another_tabs_newer_record() {
    let tag = prefix_tag(PREFIX);
    let v = big(100);
    let theirs = Entry::value(Stamp::new(T0 + 2_000, "other"), 0, v.as_str());
    let theirs_text = encode_record(&theirs, &tag);
    let theirs_units = PREFIX.len() + 1 + theirs_text.len();
    // Room for "a", the other tab's "d" and "c" only if one record goes.
    let quota = units("a", 0, &v) + theirs_units + units("c", 0, &v) - 1;
    let mut c = quota_cache(quota);
    set(&mut c, "d", &v, 100, T0); // expires at T0 + 100 in this tab's view
    set(&mut c, "a", &v, 0, T0 + 1);
    flush_ok(&mut c, T0 + 1);

    // Another tab writes a newer, live "d"; its broadcast has not arrived yet.
    c.storage_mut().set("q_d", &theirs_text).unwrap();
    // This tab writes "c"; storage is full, and "d" looks dead here.
    set(&mut c, "c", &v, 0, T0 + 5_000);
    let report = c.flush(T0 + 5_000);
    assert!(report.errors.is_empty());
    // The broadcast arrives (the sender has persisted it, so persist = false).
    c.apply_remote(vec![("d".into(), theirs.clone())], None, false, T0 + 5_001);
    c.flush(T0 + 5_001);
    assert_eq!(
        c.storage().items().get("q_d"),
        Some(&theirs_text),
        "the other tab's newer record was evicted as if it were this tab's dead one"
    );
    let mut reopened = open(c.storage().clone(), PREFIX, "r", T0 + 6_000);
    assert_eq!(reopened.get("d", T0 + 6_000), Some(v.as_str()));
}

fn synced_quota_cache(quota: usize) -> Cache<MemoryStorage> {
    let (c, errors) = Cache::open(MemoryStorage::with_quota(quota), config(PREFIX, "n").with_sync(true), T0);
    assert!(errors.is_empty());
    c
}

#[test]
fn quota_eviction_never_takes_a_write_the_backend_has_not_acknowledged() {
    let v = big(100);
    let quota = 3 * units("a", 0, &v) + 40;
    let mut c = synced_quota_cache(quota);
    set(&mut c, "a", &v, 0, T0);
    set(&mut c, "b", &v, 0, T0 + 1);
    flush_ok(&mut c, T0 + 1);
    // "a" and "b" are acknowledged; "gone" is a pending remove (a dead entry) and "p" a pending set.
    c.ack_sync(&c.sync_batch(100));
    flush_ok(&mut c, T0 + 1);
    set(&mut c, "gone", "1", 0, T0 + 2);
    flush_ok(&mut c, T0 + 2);
    c.ack_sync(&c.sync_batch(100));
    c.remove("gone", T0 + 3).unwrap();
    set(&mut c, "p", &v, 0, T0 + 4);
    flush_ok(&mut c, T0 + 4);
    assert_eq!(c.pending_sync(), 2);

    // Storage is full: room must come from "a" and "b" (synced), never from "gone" or "p".
    set(&mut c, "c", &v, 0, T0 + 5);
    let report = c.flush(T0 + 5);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(c.storage().items().contains_key("q_gone"), "a pending remove was evicted");
    assert!(c.storage().items().contains_key("q_p"), "a pending set was evicted");
    // A value that does not fit without them keeps its QUOTA_EXCEEDED and stays pending.
    set(&mut c, "d", &big(2 * 100 + 50), 0, T0 + 6);
    let report = c.flush(T0 + 6);
    assert_eq!(report.errors, vec![CacheError::QuotaExceeded { key: "d".into() }]);
    assert!(c.storage().items().contains_key("q_gone") && c.storage().items().contains_key("q_p"));
    let batch = c.sync_batch(100);
    let pending: Vec<&str> = batch.changes.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(pending, ["c", "d", "gone", "p"], "the unpersisted write is still sent from memory");

    // After a reload the pending writes are still there, still marked.
    let reopened = Cache::open(c.storage().clone(), config(PREFIX, "r").with_sync(true), T0 + 7).0;
    assert!(reopened.is_unsynced("gone") && reopened.is_unsynced("p"));
    assert_eq!(reopened.replica().entry("gone").map(|e| e.value.is_none()), Some(true));
}

#[test]
fn a_cache_without_a_backend_does_not_evict_another_instances_pending_record() {
    let v = big(100);
    let quota = 2 * units("a", 0, &v) + 40;
    let mut synced = synced_quota_cache(quota);
    set(&mut synced, "p", &v, 0, T0);
    flush_ok(&mut synced, T0);
    // A local-only instance over the same storage and prefix (it tracks no outbox).
    let mut local = open(synced.storage().clone(), PREFIX, "local", T0 + 1);
    set(&mut local, "a", &v, 0, T0 + 2);
    flush_ok(&mut local, T0 + 2);
    set(&mut local, "b", &v, 0, T0 + 3);
    flush_ok(&mut local, T0 + 3);
    assert_eq!(stored_keys(local.storage()), ["q_b", "q_p"], "another instance's pending write was evicted");
    assert!(local.is_unpersisted("a"));
}

/// A storage that logs its calls.
#[derive(Default)]
struct Logged {
    inner: MemoryStorage,
    log: std::cell::RefCell<Vec<String>>,
}

impl Storage for Logged {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.log.borrow_mut().push(format!("get {key}"));
        self.inner.get(key)
    }
    fn set(&mut self, key: &str, value: &str) -> Result<(), StorageError> {
        self.log.borrow_mut().push(format!("set {key}"));
        self.inner.set(key, value)
    }
    fn remove(&mut self, key: &str) -> Result<(), StorageError> {
        self.log.borrow_mut().push(format!("remove {key}"));
        self.inner.remove(key)
    }
    fn keys(&self) -> Result<Vec<String>, StorageError> {
        self.inner.keys()
    }
}

#[test]
fn a_flush_reads_every_record_before_it_writes_any() {
    let (mut c, errors) = Cache::open(Logged::default(), config("app_", "n"), T0);
    assert_eq!(errors, vec![]);
    for key in ["a", "b", "c"] {
        c.set(key, "1".into(), 0, T0).unwrap();
    }
    c.storage().log.borrow_mut().clear();
    assert_eq!(c.flush(T0).errors, vec![]);
    // Reads first, then writes: the browser's adapter makes each group one call.
    assert_eq!(*c.storage().log.borrow(), ["get app_a", "get app_b", "get app_c", "set app_a", "set app_b", "set app_c"]);
    assert_eq!(stored_keys(&c.storage().inner), ["app_a", "app_b", "app_c"]);
}

// ---------------------------------------------------------------------------------------------
// Broken storage

/// A storage that fails every call, like a disabled `localStorage` or a broken custom one.
#[derive(Default)]
struct Broken {
    calls: usize,
}

impl Storage for Broken {
    fn get(&self, _key: &str) -> Result<Option<String>, StorageError> {
        Err(StorageError::Failed("SecurityError: get".into()))
    }
    fn set(&mut self, _key: &str, _value: &str) -> Result<(), StorageError> {
        self.calls += 1;
        Err(StorageError::Failed("SecurityError: set".into()))
    }
    fn remove(&mut self, _key: &str) -> Result<(), StorageError> {
        self.calls += 1;
        Err(StorageError::Failed("SecurityError: remove".into()))
    }
    fn keys(&self) -> Result<Vec<String>, StorageError> {
        Err(StorageError::Failed("SecurityError: keys".into()))
    }
}

fn assert_all_storage_failed(errors: &[CacheError]) {
    assert!(!errors.is_empty());
    for e in errors {
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
        assert_eq!(e.kind().as_str(), "STORAGE_FAILED");
        assert!(e.retryable());
    }
}

#[test]
fn a_broken_storage_never_panics_and_every_failure_is_reported() {
    let (mut c, errors) = Cache::open(Broken::default(), config("app_", "n"), T0);
    assert_all_storage_failed(&errors);
    assert!(errors.iter().any(|e| e.to_string().contains("SecurityError")));

    // Writes still work in memory.
    c.set("a", "1".into(), 1_000, T0).unwrap();
    c.set("b", "2".into(), 0, T0).unwrap();
    c.remove("b", T0 + 1).unwrap();
    assert_eq!(c.get("a", T0 + 1), Some("1"));
    let report = c.flush(T0 + 1);
    assert_all_storage_failed(&report.errors);
    let mut keys: Vec<_> = report.errors.iter().map(CacheError::key).collect();
    keys.sort();
    assert_eq!(keys, [Some("a"), Some("b")], "one error per key, naming it");
    // Other tabs are still told, coalesced per key: b's set was superseded by its remove.
    let told: Vec<_> = report.changes.iter().map(|(k, e)| (k.as_str(), e.value.is_none())).collect();
    assert_eq!(told, [("a", false), ("b", true)], "other tabs are still told, one change per key");
    assert_eq!(c.get("a", T0 + 1), Some("1"));

    c.clear(T0 + 2);
    let report = c.flush(T0 + 2);
    assert_all_storage_failed(&report.errors);
    assert!(report.clear.is_some());

    c.apply_remote(vec![("r".into(), Entry::value(Stamp::new(T0 + 3, "x"), 0, "3"))], None, true, T0 + 3);
    assert_eq!(c.get("r", T0 + 3), Some("3"));
    assert_all_storage_failed(&c.flush(T0 + 3).errors);
    assert!(c.storage().calls > 0);
    assert_eq!(c.next_expiry(), None);
}

#[test]
fn invalid_keys_are_refused_before_anything_is_stored() {
    let mut c = open(MemoryStorage::new(), "app_", "n", T0);
    for bad in ["", "a\u{0}b", &"k".repeat(1025)] {
        let err = c.set(bad, "1".into(), 0, T0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey);
        assert_eq!(c.remove(bad, T0).unwrap_err().kind(), ErrorKind::InvalidKey);
    }
    assert_eq!(c.pending_flush(), 0);
    let report = c.flush(T0);
    assert!(!report.has_news());
    assert!(c.storage().is_empty());
}

/// A storage whose batch write claims more than it was given.
#[derive(Default)]
struct Overclaiming {
    inner: MemoryStorage,
}

impl Storage for Overclaiming {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.inner.get(key)
    }
    fn set(&mut self, key: &str, value: &str) -> Result<(), StorageError> {
        self.inner.set(key, value)
    }
    fn remove(&mut self, key: &str) -> Result<(), StorageError> {
        self.inner.remove(key)
    }
    fn keys(&self) -> Result<Vec<String>, StorageError> {
        self.inner.keys()
    }
    fn set_each(&mut self, items: &[(String, String)]) -> Result<(), (usize, StorageError)> {
        for (key, value) in items {
            self.inner.set(key, value).map_err(|e| (0, e))?;
        }
        Err((items.len() + 5, StorageError::Failed("confused".into())))
    }
}

#[test]
fn a_storage_that_miscounts_its_batch_cannot_make_a_flush_panic() {
    let (mut c, errors) = Cache::open(Overclaiming::default(), config("app_", "n"), T0);
    assert_eq!(errors, vec![]);
    c.set("a", "1".into(), 0, T0).unwrap();
    c.set("b", "2".into(), 0, T0).unwrap();
    assert_eq!(c.flush(T0).errors, vec![]);
    assert_eq!(stored_keys(&c.storage().inner), ["app_a", "app_b"]);
    assert!(!c.is_unpersisted("a") && !c.is_unpersisted("b"));
}
