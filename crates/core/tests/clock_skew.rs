//! Devices whose clocks are hours or days off: a TTL runs from when its writer wrote it (by the
//! writer's clock, corrected by the backend's once it has heard from it), whatever stamps from
//! faster clocks the writer has seen; a write made after seeing another still orders after it.
use mfe_shared_cache_core::{Cache, CacheConfig, Entry, MemoryStorage, CLOCK_OFFSET_TOLERANCE_MS};

const T: u64 = 1_800_000_000_000; // the true time at the start
const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

fn device(node: &str) -> Cache<MemoryStorage> {
    let (cache, errors) = Cache::open(MemoryStorage::new(), CacheConfig::new("s_", node).with_sync(true), T);
    assert!(errors.is_empty());
    cache
}

/// What a device's backend answer carries back to another device: the write of `key`.
fn write_of(cache: &Cache<MemoryStorage>, key: &str) -> (String, Entry) {
    (key.to_owned(), cache.replica().entry(key).cloned().expect("written"))
}

#[test]
fn a_ttl_set_after_seeing_a_write_from_a_clock_23_hours_fast_lives_its_own_length() {
    let mut fast = device("fast");
    let mut right = device("right");
    let fast_clock = T + 23 * HOUR;
    fast.set("k", "\"theirs\"".into(), 60_000, fast_clock).unwrap();
    right.apply_from_backend(vec![write_of(&fast, "k")], None, T);

    // Five seconds, set one second later by a device whose clock is right.
    let mine = right.set("k", "\"mine\"".into(), 5_000, T + 1_000).unwrap();
    assert!(mine.stamp > fast.replica().entry("k").unwrap().stamp, "a write made after seeing another orders after it");
    assert_eq!(mine.expires_at(), Some(T + 6_000), "not 23 h");
    assert_eq!(right.get("k", T + 5_999), Some("\"mine\""));
    assert_eq!(right.get("k", T + 6_000), None);

    // The fast device takes the write, and once it knows the backend's clock, sees the same expiry.
    fast.apply_from_backend(vec![write_of(&right, "k")], None, fast_clock + 1_000);
    assert_eq!(fast.replica().entry("k").unwrap().value.as_deref(), Some("\"mine\""));
    fast.observe_backend_clock(T + 1_000, fast_clock + 990, fast_clock + 1_010);
    let fast_local = |true_ms: u64| true_ms + 23 * HOUR;
    assert_eq!(fast.get("k", fast.time_at(fast_local(T + 5_999))), Some("\"mine\""));
    assert_eq!(fast.get("k", fast.time_at(fast_local(T + 6_000))), None);
    assert_eq!(fast.local_time(mine.expires_at().unwrap()), fast_local(T + 6_000), "the shim compares in local time");
}

#[test]
fn a_device_three_days_fast_learns_the_backend_clock_and_writes_on_it() {
    let mut fast = device("fast");
    let local = |true_ms: u64| true_ms + 3 * DAY;
    assert_eq!(fast.clock_offset(), 0);
    // Offline, before it has heard from the backend: its own clock is all it has.
    let offline = fast.set("early", "1".into(), 60_000, fast.time_at(local(T))).unwrap();
    assert_eq!(offline.expires_at(), Some(local(T) + 60_000), "within the writer's own clock error");

    // The first answer tells it how far off it is (the reading's uncertainty is half the round trip).
    let changed = fast.observe_backend_clock(T + 100, local(T + 80), local(T + 120)).expect("the offset moves");
    assert_eq!(changed, ["early"], "the expiry of what it holds moved in local time");
    assert_eq!(fast.clock_offset(), -(3 * DAY as i64));
    assert_eq!(fast.time_at(local(T + 5_000)), T + 5_000);

    let later = fast.set("later", "2".into(), 60_000, fast.time_at(local(T + 5_000))).unwrap();
    assert!(later.stamp > offline.stamp, "its hybrid clock still orders after its own earlier write");
    assert_eq!(later.written_at, T + 5_000);
    assert_eq!(later.expires_at(), Some(T + 65_000));
    assert!(fast.get("later", fast.time_at(local(T + 64_999))).is_some());
    assert!(fast.get("later", fast.time_at(local(T + 65_000))).is_none());

    // Readings within their uncertainty do not move it; the offset is kept for the next page load.
    assert!(fast.observe_backend_clock(T + 10_000 + CLOCK_OFFSET_TOLERANCE_MS / 2, local(T + 10_000), local(T + 10_000)).is_none());
    let report = fast.flush(fast.time_at(local(T + 10_000)));
    assert!(report.errors.is_empty());
    let (reopened, errors) = Cache::open(fast.storage().clone(), CacheConfig::new("s_", "fast2").with_sync(true), local(T + 11_000));
    assert!(errors.is_empty());
    assert_eq!(reopened.clock_offset(), -(3 * DAY as i64));
    assert_eq!(reopened.time_at(local(T + 11_000)), T + 11_000);
}

#[test]
fn another_tab_adopts_an_offset_and_its_expiries_follow() {
    let mut tab = device("tab");
    tab.set("k", "1".into(), 10_000, T).unwrap();
    assert_eq!(tab.expires_at("k"), Some(T + 10_000));
    assert_eq!(tab.adopt_clock_offset(-(2 * HOUR as i64), T + 2 * HOUR), ["k"]);
    assert_eq!(tab.local_time(T + 10_000), T + 2 * HOUR + 10_000);
    assert!(tab.adopt_clock_offset(-(2 * HOUR as i64), T).is_empty(), "the same offset again changes nothing");
}
