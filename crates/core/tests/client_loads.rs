//! `getOrFetch` across tabs, on a manual clock: the "just loaded" marker a loading tab leaves
//! behind, and the next tab that finds it waiting for that write rather than loading again.
//!
//! Each tab has its own storage here: the loader's write has not reached the other tab's storage
//! when that tab gets the key's lock, which is the race the marker exists for.
use mfe_shared_cache_core::client::{Client, ClientConfig, Effect, LoadOptions, LoaderOutcome, LockMode};
use mfe_shared_cache_core::{Backoff, MemoryStorage, Reach};

const NOW: u64 = 1_700_000_000_000;

fn tab(node: &str) -> Client<MemoryStorage> {
    let config = ClientConfig { prefix: "t_".into(), node: node.into(), page: format!("page-{node}"), web_locks: true, backend: None, seed: 1 };
    Client::open(MemoryStorage::default(), config, NOW)
}

fn options() -> LoadOptions {
    LoadOptions {
        ttl_ms: 60_000,
        grace_ms: 10_000,
        refresh: false,
        retry: Backoff { first_ms: 100, factor: 2.0, max_ms: 1_000, jitter: false },
        max_retries: 0,
        reach: Reach::Browser,
    }
}

/// The lock the load asked for: (id, name, mode).
fn lock_asked(effects: &[Effect]) -> (u32, String, LockMode) {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Lock { id, name, mode, .. } => Some((*id, name.clone(), *mode)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no lock asked for: {effects:?}"))
}

fn query_asked(effects: &[Effect]) -> (u32, String) {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::QueryLocks { id, prefix } => Some((*id, prefix.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no lock query: {effects:?}"))
}

#[test]
fn a_tab_that_finds_a_just_loaded_marker_waits_for_that_write_instead_of_loading() {
    let (mut a, mut b) = (tab("a"), tab("b"));
    a.take_effects();
    b.take_effects();

    // A gets the key's lock first, finds nothing, runs its loader and stores the value.
    let load_a = a.load("user:1", options(), NOW).unwrap();
    let (lock_a, _, _) = lock_asked(&a.take_effects());
    a.lock_granted(lock_a, NOW);
    let (query_a, prefix_a) = query_asked(&a.take_effects());
    a.locks_held(query_a, &[], NOW);
    assert!(a.take_effects().iter().any(|e| matches!(e, Effect::RunLoader(id) if *id == load_a)));
    a.loader_done(load_a, LoaderOutcome::Value(r#"{"name":"Ada"}"#.into()), NOW + 30);
    let after = a.take_effects();
    let news = after.iter().find_map(|e| if let Effect::Tab(text) = e { Some(text.clone()) } else { None }).expect("the write's tab message");
    let (_, marker, mode) = lock_asked(&after);
    assert_eq!(mode, LockMode::Shared, "{after:?}");
    assert!(marker.starts_with(&prefix_a), "the marker {marker:?} is found by the query prefix {prefix_a:?}");

    // B asked too; it gets the lock once A lets go, before A's write reached its storage.
    let load_b = b.load("user:1", options(), NOW).unwrap();
    let (lock_b, _, _) = lock_asked(&b.take_effects());
    b.lock_granted(lock_b, NOW + 31);
    let (query_b, prefix_b) = query_asked(&b.take_effects());
    assert_eq!(prefix_b, prefix_a, "every tab asks for the same key's markers by the same prefix");
    // The adapter hands over the held names that start with the prefix: A's marker, and one of a
    // key that merely starts like this one (its remainder is not a stamp).
    let other_key = format!("{prefix_b}x:{}", NOW + 30);
    b.locks_held(query_b, &[other_key, marker], NOW + 32);
    let waiting = b.take_effects();
    assert!(!waiting.iter().any(|e| matches!(e, Effect::RunLoader(_))), "B loads nothing while A's write is on its way: {waiting:?}");
    assert!(!waiting.iter().any(|e| matches!(e, Effect::Settled { .. })), "{waiting:?}");

    // A's message arrives: B's load ends with A's value.
    b.tab_message(&news, NOW + 33);
    let done = b.take_effects();
    let settled = done.iter().find_map(|e| match e {
        Effect::Settled { id, result } if *id == load_b => Some(result.clone()),
        _ => None,
    });
    assert_eq!(settled, Some(Ok(r#"{"name":"Ada"}"#.to_owned())), "{done:?}");
    assert!(!done.iter().any(|e| matches!(e, Effect::RunLoader(_))), "{done:?}");
}

#[test]
fn without_a_marker_the_tab_with_the_lock_loads() {
    let mut b = tab("b");
    b.take_effects();
    let load = b.load("user:2", options(), NOW).unwrap();
    let (lock, _, _) = lock_asked(&b.take_effects());
    b.lock_granted(lock, NOW);
    let (query, prefix) = query_asked(&b.take_effects());
    // A marker of another key only: not this key's.
    let other_key = format!("{}{NOW}", prefix.replace(":user:2:", ":user:3:"));
    b.locks_held(query, &[other_key], NOW + 1);
    assert!(b.take_effects().iter().any(|e| matches!(e, Effect::RunLoader(id) if *id == load)));
}

#[test]
fn a_refresh_right_after_a_write_in_the_same_millisecond_loads() {
    let mut a = tab("a");
    a.set("profile", "1".into(), 0, NOW, false).unwrap();
    a.set("profile", "2".into(), 0, NOW, false).unwrap();
    a.flush(NOW);
    a.take_effects();
    // Stamped NOW and NOW + 1 by the clock's counter, both before the call, made at NOW.
    let load = a.load("profile", LoadOptions { refresh: true, ..options() }, NOW).unwrap();
    let (lock, _, _) = lock_asked(&a.take_effects());
    a.lock_granted(lock, NOW);
    let (query, _) = query_asked(&a.take_effects());
    a.locks_held(query, &[], NOW);
    assert!(a.take_effects().iter().any(|e| matches!(e, Effect::RunLoader(id) if *id == load)), "the refresh loads");
}
