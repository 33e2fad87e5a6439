//! The client's event stream: paging of `/sync` answers while it is open, and what it does when
//! its server instance says it is going away.
use mfe_shared_cache_core::client::{BackendConfig, Client, ClientConfig, Effect, Fetch};
use mfe_shared_cache_core::{ErrorKind, MemoryStorage, SyncPolicy};

const T0: u64 = 1_800_000_000_000;

fn fetches(effects: &[Effect]) -> Vec<Fetch> {
    effects.iter().filter_map(|e| if let Effect::Fetch(f) = e { Some(f.clone()) } else { None }).collect()
}

fn protocol_errors(effects: &[Effect]) -> usize {
    effects.iter().filter(|e| matches!(e, Effect::Error(e) if e.kind() == ErrorKind::Protocol)).count()
}

/// A leader whose stream is open after its first `/sync` (cursor 5); the stream's fetch.
fn leader_with_a_stream() -> (Client<MemoryStorage>, Fetch) {
    let config = ClientConfig {
        prefix: "app_".into(),
        node: "me".into(),
        page: "page".into(),
        web_locks: true,
        backend: Some(BackendConfig {
            policy: SyncPolicy { sync_interval_ms: 30_000, retry_delay_ms: 1_000, max_retries: 3 },
            request_timeout_ms: 10_000,
            max_batch_bytes: 512 * 1024,
            realtime: true,
            url: "/api/cache".into(),
        }),
        seed: 1,
    };
    let mut c = Client::open(MemoryStorage::new(), config, T0);
    let lock = c.take_effects().iter().find_map(|e| if let Effect::Lock { id, .. } = e { Some(*id) } else { None });
    c.lock_granted(lock.expect("the leader lock is asked for"), T0);
    let first = fetches(&c.take_effects());
    assert_eq!(first.len(), 1, "the leader's first /sync");
    c.answered(first[0].id, 200, &format!(r#"{{"updates":[],"timestamp":5,"now":{T0}}}"#), T0 + 10);
    let stream = fetches(&c.take_effects());
    assert_eq!(stream.len(), 1);
    assert_eq!(stream[0].path, "/events?cursor=5");
    c.stream_opened(stream[0].id, 200, "text/event-stream", None, T0 + 20);
    c.take_effects();
    (c, stream[0].clone())
}

#[test]
fn a_page_behind_the_streams_cursor_is_not_a_paging_loop() {
    let (mut c, stream) = leader_with_a_stream();
    let stream = [stream];

    c.set("k", "1".into(), 0, T0 + 30, false).unwrap();
    c.flush(T0 + 30);
    let sync = fetches(&c.take_effects());
    assert_eq!(sync.len(), 1);
    assert!(sync[0].body.as_deref().is_some_and(|b| b.starts_with(r#"{"lastSync":5,"#)));
    // While the /sync is in flight, the stream moves the cursor to 9.
    c.stream_data(stream[0].id, b"id: 9\nevent: cursor\ndata: {\"cursor\":9}\n\n", T0 + 40);
    assert_eq!(c.cache().cursor(), 9);
    c.take_effects();
    // The /sync answers its first page, up to 7: it moved from the lastSync it was sent with.
    let page = format!(
        r#"{{"updates":[{{"key":"j","value":2,"ttl":0,"deleted":false,"timestamp":{},"node":"other"}}],"timestamp":7,"more":true,"now":{T0}}}"#,
        T0 + 1
    );
    c.answered(sync[0].id, 200, &page, T0 + 50);
    let effects = c.take_effects();
    assert_eq!(protocol_errors(&effects), 0, "{effects:?}");
    assert!(c.status().state.is_some_and(|s| s.failures == 0 && s.retry_at.is_none()));
    let next = fetches(&effects);
    assert_eq!(next.len(), 1, "the next page at once: {effects:?}");
    assert_eq!(c.stats(T0 + 50).pending, 0);
}

fn wakes(effects: &[Effect]) -> Option<u64> {
    effects.iter().rev().find_map(|e| if let Effect::Wake(at) = e { Some(*at) } else { None }).flatten()
}

#[test]
fn an_instance_going_away_has_the_stream_reopened_within_its_spread_without_an_error() {
    let (mut c, stream) = leader_with_a_stream();
    // A change, then the hint, in one chunk: the change counts, then the stream is given up.
    let change = format!(r#"{{"key":"j","value":2,"ttl":0,"deleted":false,"timestamp":{},"node":"other"}}"#, T0 + 1);
    let chunk = format!("id: 8\nevent: change\ndata: {change}\n\nevent: reconnect\ndata: {{\"reason\":\"going away\",\"spreadMs\":2000}}\n\n");
    c.stream_data(stream.id, chunk.as_bytes(), T0 + 100);
    let effects = c.take_effects();
    assert!(effects.iter().any(|e| matches!(e, Effect::Abort(id) if *id == stream.id)), "{effects:?}");
    assert!(!effects.iter().any(|e| matches!(e, Effect::Error(_))), "going away is not an error: {effects:?}");
    assert_eq!(c.cache().cursor(), 8);
    assert!(fetches(&effects).is_empty(), "no request at once: {effects:?}");
    let at = wakes(&effects).expect("a timer for the reopening");
    assert!(at <= T0 + 100 + 2000, "within the spread: {}", at - T0);
    c.wake(at);
    let reopened = fetches(&c.take_effects());
    assert_eq!(reopened.len(), 1, "{reopened:?}");
    assert_eq!(reopened[0].path, "/events?cursor=8", "resumes from the cursor");
    assert_eq!(c.status().state.map(|s| s.failures), Some(0));
}
