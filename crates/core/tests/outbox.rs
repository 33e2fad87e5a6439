//! The durable outbox: writes not yet acknowledged by the backend are marked in their own storage
//! records, so they survive reloads and closed tabs, coalesce per key, and are acknowledged
//! precisely (a key rewritten while its batch was in flight stays pending).
use mfe_shared_cache_core::{
    encode_meta_flagged, encode_record, encode_record_pending, prefix_tag, Cache, CacheConfig, Entry, MemoryStorage, Pending, Reach, Stamp,
    Storage,
};

const T0: u64 = 1_800_000_000_000;

fn open(storage: MemoryStorage, node: &str) -> Cache<MemoryStorage> {
    let (cache, errors) = Cache::open(storage, CacheConfig::new("app_", node).with_sync(true), T0);
    assert!(errors.is_empty(), "{errors:?}");
    cache
}

fn record(c: &Cache<MemoryStorage>, key: &str) -> String {
    c.storage().get(&format!("app_{key}")).unwrap().unwrap()
}

#[test]
fn writes_are_pending_coalesced_and_survive_a_reload() {
    let mut c = open(MemoryStorage::new(), "a");
    for i in 0..100 {
        c.set(&format!("k{}", i % 10), i.to_string(), 0, T0 + i).unwrap();
    }
    c.remove("k3", T0 + 200).unwrap();
    assert_eq!(c.pending_sync(), 10);
    let batch = c.sync_batch(1000);
    assert_eq!(batch.changes.len(), 10, "one change per key");
    assert!(batch.changes.iter().any(|(k, e)| k == "k3" && e.value.is_none()));
    assert_eq!(batch.changes.iter().find(|(k, _)| k == "k9").unwrap().1.value.as_deref(), Some("99"));
    c.flush(T0 + 200);
    assert!(record(&c, "k1").contains("\"u\":1"));

    let reopened = open(c.storage().clone(), "b");
    assert_eq!(reopened.pending_sync(), 10, "the outbox survives a reload");
    assert_eq!(reopened.sync_batch(4).changes.len(), 4, "batches are bounded");
}

#[test]
fn a_write_for_this_browser_only_never_enters_the_outbox_and_keeps_the_key_s_pending_write_in_it() {
    let mut c = open(MemoryStorage::new(), "a");
    c.set("shared", "1".into(), 0, T0).unwrap();
    c.set("orders", "[1]".into(), 0, T0).unwrap();
    c.set_for("orders", "[1,2]".into(), 0, Reach::Browser, T0 + 1).unwrap();
    c.set_for("profile", "{}".into(), 0, Reach::Browser, T0 + 1).unwrap();
    let sent = |c: &Cache<MemoryStorage>| -> Vec<(String, Option<String>)> {
        c.sync_batch(100).changes.into_iter().map(|(k, e)| (k, e.value)).collect()
    };
    let covered = vec![("orders".to_owned(), Some("[1]".to_owned())), ("shared".to_owned(), Some("1".to_owned()))];
    assert_eq!(sent(&c), covered, "the write for everyone, as it was; never what covers it");
    assert_eq!(c.pending_sync(), 2);
    assert!(!c.is_unsynced("orders") && c.covered("orders").is_some());
    c.flush(T0 + 2);
    assert!(!record(&c, "orders").contains("\"u\""), "stored without the mark: no tab of the origin sends [1,2]");
    assert!(record(&c, "orders").contains("\"s\":{") && record(&c, "orders").contains("[1,2]"), "{}", record(&c, "orders"));
    let mut reopened = open(c.storage().clone(), "b");
    assert_eq!(sent(&reopened), covered, "after a reload too");
    assert_eq!(reopened.get("orders", T0 + 3), Some("[1,2]"), "and this browser shows what covers it");
    assert!(reopened.get("profile", T0 + 3).is_some());

    // Acknowledged, it leaves the outbox and the record.
    let batch = c.sync_batch(100);
    c.ack_sync(&batch);
    assert_eq!(c.pending_sync(), 0);
    c.flush(T0 + 4);
    assert!(!record(&c, "orders").contains("\"s\""), "{}", record(&c, "orders"));
    assert_eq!(open(c.storage().clone(), "b").pending_sync(), 0);

    // Written for everyone again, it goes.
    c.set("orders", "[3]".into(), 0, T0 + 4).unwrap();
    assert!(c.is_unsynced("orders"));
}

#[test]
fn a_removal_for_this_browser_only_never_enters_the_outbox_and_keeps_the_key_s_pending_write_in_it() {
    let mut c = open(MemoryStorage::new(), "a");
    c.set("shared", "1".into(), 0, T0).unwrap();
    c.set("draft", "1".into(), 0, T0).unwrap();
    c.remove_for("draft", Reach::Browser, T0 + 1).unwrap();
    c.remove_for("never-written", Reach::Browser, T0 + 1).unwrap();
    let batch = c.sync_batch(100);
    let sent: Vec<(&str, Option<&str>)> = batch.changes.iter().map(|(k, e)| (k.as_str(), e.value.as_deref())).collect();
    assert_eq!(sent, [("draft", Some("1")), ("shared", Some("1"))], "no tombstone goes to the backend; the write it covers does");
    assert_eq!(c.pending_sync(), 2);
    c.flush(T0 + 2);
    assert!(!record(&c, "draft").contains("\"u\""), "stored without the mark: no tab of the origin sends the removal");
    let mut reopened = open(c.storage().clone(), "b");
    assert_eq!(reopened.pending_sync(), 2, "after a reload too");
    assert!(reopened.get("draft", T0 + 3).is_none(), "and the key stays removed here");

    // Removed for everyone, the removal goes, and supersedes what it covered.
    c.remove("draft", T0 + 4).unwrap();
    assert!(c.is_unsynced("draft") && c.covered("draft").is_none());
    assert!(c.sync_batch(100).changes.iter().any(|(k, e)| k == "draft" && e.value.is_none()));
}

#[test]
fn an_ack_clears_exactly_what_was_sent() {
    let mut c = open(MemoryStorage::new(), "a");
    c.set("a", "1".into(), 0, T0).unwrap();
    c.set("b", "1".into(), 0, T0).unwrap();
    let batch = c.sync_batch(100);
    c.set("a", "2".into(), 0, T0 + 1).unwrap(); // rewritten while the batch is in flight
    c.ack_sync(&batch);
    assert!(c.is_unsynced("a"), "the newer write is still pending");
    assert!(!c.is_unsynced("b"));
    let report = c.flush(T0 + 2);
    assert!(!record(&c, "b").contains("\"u\""), "the acknowledged record is rewritten without the mark");
    assert!(record(&c, "a").contains("\"u\":1"));
    assert!(report.changes.iter().any(|(k, _)| k == "b"), "other tabs are told b is acknowledged");
    assert_eq!(open(c.storage().clone(), "z").pending_sync(), 1);
}

#[test]
fn a_clear_is_pending_until_acknowledged_and_drops_older_pending_writes() {
    let mut c = open(MemoryStorage::new(), "a");
    c.set("a", "1".into(), 0, T0).unwrap();
    let (epoch, _) = c.clear(T0 + 1);
    c.set("b", "2".into(), 0, T0 + 2).unwrap();
    let batch = c.sync_batch(100);
    assert_eq!(batch.clear.as_ref(), Some(&epoch));
    assert_eq!(batch.changes.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["b"]);
    c.flush(T0 + 2);
    assert!(open(c.storage().clone(), "z").is_clear_unsynced(), "a pending clear survives a reload");
    c.ack_sync(&batch);
    c.flush(T0 + 3);
    let reopened = open(c.storage().clone(), "z");
    assert!(!reopened.is_clear_unsynced());
    assert_eq!(reopened.pending_sync(), 0);
}

#[test]
fn the_backend_echoing_our_write_acknowledges_it_and_a_newer_backend_write_replaces_it() {
    let mut c = open(MemoryStorage::new(), "a");
    let mine = c.set("k", "1".into(), 0, T0).unwrap();
    c.set("j", "1".into(), 0, T0).unwrap();
    let changed = c.apply_from_backend(vec![("k".into(), mine)], None, T0 + 1);
    assert!(changed.is_empty(), "no visible change");
    assert!(!c.is_unsynced("k"));
    let newer = Entry::value(Stamp::new(T0 + 10, "other"), 0, "9");
    assert_eq!(c.apply_from_backend(vec![("j".into(), newer)], None, T0 + 11), ["j"]);
    assert_eq!(c.pending_sync(), 0);
    let older = Entry::value(Stamp::new(T0 - 10, "other"), 0, "0");
    c.set("m", "1".into(), 0, T0 + 12).unwrap();
    c.apply_from_backend(vec![("m".into(), older)], None, T0 + 13);
    assert!(c.is_unsynced("m"), "a stale backend write does not acknowledge ours");
}

#[test]
fn tabs_adopt_each_others_pending_writes_and_acknowledgements() {
    let mut writer = open(MemoryStorage::new(), "w");
    let mut other = open(MemoryStorage::new(), "o");
    let entry = writer.set("k", "1".into(), 0, T0).unwrap();
    other.apply_from_tab(vec![("k".into(), entry.clone(), Pending::This)], None, T0);
    assert!(other.is_unsynced("k"), "a write its tab has not sent is adopted");
    other.apply_from_tab(vec![("k".into(), entry, Pending::None)], None, T0 + 1);
    assert!(!other.is_unsynced("k"), "the writer's acknowledgement reaches the other tab");
}

#[test]
fn the_cursor_persists() {
    let mut c = open(MemoryStorage::new(), "a");
    assert_eq!(c.cursor(), 0);
    c.set_cursor(42);
    c.flush(T0);
    assert_eq!(open(c.storage().clone(), "b").cursor(), 42);
}

#[test]
fn without_a_backend_nothing_is_tracked() {
    let (mut c, _) = Cache::open(MemoryStorage::new(), CacheConfig::new("app_", "a"), T0);
    c.set("k", "1".into(), 0, T0).unwrap();
    c.clear(T0 + 1);
    assert_eq!(c.pending_sync(), 0);
    assert!(c.sync_batch(10).is_empty());
}

#[test]
fn a_follower_sends_only_its_own_writes_the_leader_everyones() {
    let mut c = open(MemoryStorage::new(), "me");
    c.set("mine", "1".into(), 0, T0).unwrap();
    let theirs = Entry::value(Stamp::new(T0, "closed-tab"), 0, "2");
    c.apply_from_tab(vec![("theirs".into(), theirs, Pending::This)], None, T0);
    let keys = |b: mfe_shared_cache_core::SyncBatch| b.changes.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(keys(c.sync_batch_of(10, Some("me"))), ["mine"]);
    assert_eq!(keys(c.sync_batch_of(10, None)), ["mine", "theirs"]);
    assert!(c.has_pending_sync_of(Some("me")));
    let batch = c.sync_batch_of(10, Some("me"));
    c.ack_sync(&batch);
    assert!(!c.has_pending_sync_of(Some("me")));
    assert!(c.has_pending_sync_of(None));
}

#[test]
fn an_ack_made_by_another_instance_on_the_page_clears_pending_here_too() {
    // Two MFEs' instances over one storage: b adopted a's writes as pending (a may vanish first).
    let mut a = open(MemoryStorage::new(), "a");
    let mut b = open(a.storage().clone(), "b");
    a.set("cart", "[1]".into(), 0, T0).unwrap();
    a.set("user", "\"ada\"".into(), 0, T0 + 1).unwrap();
    let (epoch, _) = a.clear(T0 + 2);
    a.set("cart", "[2]".into(), 0, T0 + 3).unwrap();
    let batch = a.sync_batch(100);
    let adopted: Vec<_> = batch.changes.iter().map(|(k, e)| (k.clone(), e.clone(), Pending::This)).collect();
    b.apply_from_tab(adopted, Some((epoch.clone(), true)), T0 + 3);
    assert_eq!(b.pending_sync(), 2, "cart and the clear");

    // b writes user again after the batch was taken: that write is not acknowledged by it.
    b.set("user", "\"bob\"".into(), 0, T0 + 4).unwrap();
    assert_eq!(b.pending_sync(), 3);
    a.ack_sync(&batch);
    assert!(b.ack_from_peer(&batch));
    assert_eq!(b.pending_sync(), 1, "only b's own newer write is left");
    assert!(b.is_unsynced("user") && !b.is_unsynced("cart") && !b.is_clear_unsynced());
    assert!(!b.ack_from_peer(&batch), "a repeated ack changes nothing");
}

#[test]
fn a_pending_clear_heard_after_its_acknowledgement_stays_acknowledged() {
    let mut writer = open(MemoryStorage::new(), "w");
    let mut other = open(MemoryStorage::new(), "o");
    let (epoch, _) = writer.clear(T0);
    other.apply_from_tab(Vec::new(), Some((epoch.clone(), true)), T0);
    assert!(other.is_clear_unsynced(), "a clear its tab has not sent is adopted");
    other.apply_from_tab(Vec::new(), Some((epoch.clone(), false)), T0 + 1);
    assert!(!other.is_clear_unsynced());
    // The first message again (a storage event of the pending record, delivered late).
    other.apply_from_tab(Vec::new(), Some((epoch, true)), T0 + 2);
    assert!(!other.is_clear_unsynced(), "a follower would hold it pending and never send it");
    assert_eq!(other.pending_sync(), 0);
}

#[test]
fn a_remove_made_on_a_stale_view_leaves_a_newer_write_in_storage() {
    let mut a = open(MemoryStorage::new(), "a");
    // Another tab, whose clock ran ahead after seeing a fast device's write, stored a newer value
    // a moment ago; its news has not reached this tab yet.
    let newer = Entry::value(Stamp::new(T0 + 1_000, "b"), 0, "2");
    let text = encode_record_pending(&newer, &prefix_tag("app_"), Pending::This);
    a.storage_mut().set("app_k", &text).unwrap();
    let mine = a.remove("k", T0).unwrap();
    assert!(mine.stamp < newer.stamp);
    a.flush(T0);
    assert_eq!(record(&a, "k"), text, "the older remove is not written over it");
    // The news arrives: tabs share storage, so nobody writes the newer value again.
    a.apply_from_tab(vec![("k".into(), newer, Pending::This)], None, T0 + 1);
    a.flush(T0 + 1);
    let reopened = open(a.storage().clone(), "z");
    assert_eq!(reopened.replica().get("k", T0 + 2), Some("2"), "a reload still has the newer write");
    assert!(reopened.is_unsynced("k"));
}

#[test]
fn a_pending_mark_repaired_after_the_acknowledgement_is_not_written_over_it() {
    let tag = prefix_tag("app_");
    let mut b = open(MemoryStorage::new(), "b");
    let write = Entry::value(Stamp::new(T0, "w"), 0, "1");
    b.apply_from_tab(vec![("k".into(), write.clone(), Pending::This)], None, T0);
    assert!(b.is_unsynced("k"), "b adopted w's pending write");
    // w's acknowledgement lands in storage; its news to b is still on the way.
    b.storage_mut().set("app_k", &encode_record(&write, &tag)).unwrap();
    // A storage event of an older record, delivered late: b writes back the write it holds.
    let older = Entry::value(Stamp::new(T0 - 5, "x"), 0, "0");
    b.apply_from_tab(vec![("k".into(), older, Pending::None)], None, T0 + 1);
    b.flush(T0 + 1);
    assert!(!record(&b, "k").contains("\"u\""), "the acknowledgement stays: {}", record(&b, "k"));
    b.apply_from_tab(vec![("k".into(), write, Pending::None)], None, T0 + 2);
    b.flush(T0 + 2);
    assert_eq!(b.pending_sync(), 0);
    assert_eq!(open(b.storage().clone(), "z").pending_sync(), 0, "a reload finds nothing pending");
}

#[test]
fn a_clear_persisted_from_a_stale_view_leaves_a_newer_clear_in_storage() {
    let mut a = open(MemoryStorage::new(), "a");
    let newer = Stamp::new(T0 + 10, "b");
    // Another tab cleared and stored its clear, not yet sent; its news has not reached this tab,
    // which now hears of an older clear from the backend and persists it.
    a.storage_mut().set("app_\u{0}meta", &encode_meta_flagged(&newer, &prefix_tag("app_"), true)).unwrap();
    a.apply_from_backend(Vec::new(), Some(Stamp::new(T0, "x")), T0);
    a.flush(T0 + 1);
    let reopened = open(a.storage().clone(), "z");
    assert_eq!(reopened.replica().epoch(), Some(&newer), "the newer clear is still in storage");
    assert!(reopened.is_clear_unsynced(), "and still to be sent");
}

#[test]
fn a_record_older_than_the_clear_stored_over_a_newer_write_is_written_over() {
    let tag = prefix_tag("app_");
    let mut a = open(MemoryStorage::new(), "a");
    a.clear(T0);
    let mine = a.set("k", "2".into(), 0, T0 + 10).unwrap();
    a.flush(T0 + 10);
    // A tab that had heard of neither the clear nor this write stored its older one over it.
    let older = Entry::value(Stamp::new(T0 - 5, "x"), 0, "1");
    let text = encode_record_pending(&older, &tag, Pending::This);
    a.storage_mut().set("app_k", &text).unwrap();
    a.apply_from_tab(vec![("k".into(), older, Pending::This)], None, T0 + 11);
    a.flush(T0 + 11);
    assert_eq!(record(&a, "k"), a.encode_entry("k", &mine), "the newer write is back in storage");
    assert_eq!(open(a.storage().clone(), "z").replica().get("k", T0 + 12), Some("2"));
}

#[test]
fn a_copy_without_a_backend_repairing_storage_keeps_another_writers_pending_mark() {
    let tag = prefix_tag("app_");
    // A copy of the package configured without a backend, on a page whose other copies sync.
    let (mut local, errors) = Cache::open(MemoryStorage::new(), CacheConfig::new("app_", "l"), T0);
    assert!(errors.is_empty(), "{errors:?}");
    let write = Entry::value(Stamp::new(T0, "w"), 0, "1");
    let pending = encode_record_pending(&write, &tag, Pending::This);
    local.storage_mut().set("app_k", &pending).unwrap();
    local.apply_from_tab(vec![("k".into(), write, Pending::This)], None, T0);
    // A storage event of an older record, delivered late: the copy writes back the write it holds.
    let older = Entry::value(Stamp::new(T0 - 5, "x"), 0, "0");
    local.apply_from_tab(vec![("k".into(), older, Pending::None)], None, T0 + 1);
    local.flush(T0 + 1);
    assert_eq!(record(&local, "k"), pending, "the write is still marked for the backend");
    assert_eq!(open(local.storage().clone(), "z").pending_sync(), 1, "a syncing tab reloaded still sends it");
}
