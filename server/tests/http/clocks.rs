//! Clocks that are off: a client days fast still syncs and its TTLs run from when it wrote; a
//! server clock moved days ahead and back stamps no tombstone past the namespace's time and makes
//! garbage collection forget nothing younger than the retention by it; and a write the server
//! does not store is never answered as if it were.
use std::sync::Arc;

use mfe_cache_server::gc::RETENTION_MS;
use mfe_cache_server::store::{MemoryStore, Store};
use mfe_cache_server::Config;
use serde_json::{json, Value};

use crate::common::{by_key, now_ms, TestClock, TestServer};

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

fn change(key: &str, value: Value, ttl: f64, timestamp: u64, node: &str) -> Value {
    json!({ "key": key, "value": value, "ttl": ttl, "timestamp": timestamp, "deleted": false, "node": node })
}

async fn entry_keys(s: &TestServer) -> Vec<String> {
    let answer = s.get("/api/cache/entries").await.json();
    answer["entries"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_client_days_fast_still_syncs_and_a_ttl_runs_from_when_it_was_written() {
    let t = now_ms();
    let clock = TestClock::new(t);
    let s = TestServer::start_with_clock(Config::for_tests(), clock.clone()).await;
    // Stamped three days ahead: stored, not refused (the client would otherwise never sync again).
    let answer = s.sync(0, json!([change("fast", json!(1), 0.0, t + 3 * DAY, "fast-device")])).await;
    assert_eq!(answer["now"], t, "the answer carries the server's clock");
    assert!(answer.get("rejected").is_none(), "{answer}");
    // A 5 s value whose writer's hybrid clock had run 23 h ahead: it expires 5 s after it was written.
    let skewed = json!({ "key": "k", "value": 2, "ttl": 5, "timestamp": t + 23 * HOUR, "writtenAt": t, "deleted": false, "node": "right" });
    s.sync(0, json!([skewed])).await;
    let seen = by_key(&s.sync(0, json!([])).await);
    assert_eq!((seen["fast"]["value"].clone(), seen["k"]["writtenAt"].clone()), (json!(1), json!(t)));
    assert_eq!(entry_keys(&s).await, ["fast", "k"]);
    clock.advance(5_000);
    assert_eq!(entry_keys(&s).await, ["fast"], "expired 5 s after it was written, not 23 h");
}

#[tokio::test]
async fn a_server_clock_two_days_ahead_stamps_no_invalidation_past_the_namespace() {
    let t = now_ms();
    let clock = TestClock::new(t);
    let s = TestServer::start_with_clock(Config::for_tests(), clock.clone()).await;
    s.sync(0, json!([change("k", json!("v1"), 0.0, t, "a")])).await;
    clock.set(t + 2 * DAY);
    assert_eq!(s.invalidate(json!(["k"])).await, 1);
    let tombstone = by_key(&s.sync(0, json!([])).await)["k"].clone();
    assert_eq!((tombstone["deleted"].clone(), tombstone["timestamp"].clone()), (json!(true), json!(t + 1)));
    // The clock is back; a client's write of a minute later (in real time) wins over it.
    clock.set(t + 60_000);
    let answer = s.sync(0, json!([change("k", json!("v2"), 0.0, t + 60_000, "a")])).await;
    assert!(answer.get("rejected").is_none(), "{answer}");
    assert_eq!(by_key(&s.sync(0, json!([])).await)["k"]["value"], "v2");
}

#[tokio::test]
async fn collection_on_a_clock_two_days_ahead_does_not_refuse_a_write_of_a_moment_ago() {
    let t = now_ms();
    let clock = TestClock::new(t);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let s = TestServer::start_on(Config::for_tests(), store.clone(), clock.clone()).await;
    s.sync(0, json!([change("gone", json!(1), 0.0, t - 2_000, "a")])).await;
    s.remove("gone", t - 1_000, "a").await;
    // What a start-up on a clock two days ahead runs, then the clock comes back.
    clock.set(t + 2 * DAY);
    store.gc(t + 2 * DAY, RETENTION_MS).await.unwrap();
    clock.set(t);
    let answer = s.sync(0, json!([change("fresh", json!("mine"), 0.0, t - 10_000, "b")])).await;
    assert!(answer.get("rejected").is_none(), "a write of ten seconds ago was refused: {answer}");
    assert_eq!(by_key(&s.sync(0, json!([])).await)["fresh"]["value"], "mine");
    // The remove is still known: an older write of that key does not bring it back.
    s.sync(0, json!([change("gone", json!("zombie"), 0.0, t - 1_500, "b")])).await;
    assert_eq!(by_key(&s.sync(0, json!([])).await)["gone"]["deleted"], true);
}

#[tokio::test]
async fn a_write_the_server_does_not_store_is_never_answered_as_stored() {
    let t = now_ms();
    let clock = TestClock::new(t);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let s = TestServer::start_on(Config::for_tests(), store.clone(), clock.clone()).await;

    // The same stamp with another value: the first stays, and the second is not "accepted".
    assert_eq!(s.set("k", json!("first"), 0.0, t, "n").await["accepted"], true);
    assert_eq!(s.set("k", json!("first"), 0.0, t, "n").await["accepted"], true, "a duplicate delivery is");
    assert_eq!(s.set("k", json!("second"), 0.0, t, "n").await["accepted"], false);
    let answer = s.sync(0, json!([change("k", json!("third"), 0.0, t, "n")])).await;
    assert_eq!(answer["rejected"][0]["key"], "k", "{answer}");
    assert_eq!(by_key(&answer)["k"]["value"], "first", "and is told what is kept");

    // Below the floor garbage collection left: refused, and said so in the answer.
    s.remove("old", t - 10 * DAY, "n").await;
    s.sync(0, json!([change("now", json!(1), 0.0, t, "n")])).await;
    assert_eq!(store.gc(t, RETENTION_MS).await.unwrap().removed, 1);
    let answer = s.sync(0, json!([change("ancient", json!(1), 0.0, t - 11 * DAY, "n")])).await;
    let rejected = answer["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{answer}");
    assert_eq!(rejected[0]["key"], "ancient");
    assert!(rejected[0]["reason"].as_str().unwrap().contains("forgotten"), "{answer}");
    let (status, answer) = s
        .post("/api/cache/set", &json!({ "key": "ancient2", "value": 1, "ttl": 0, "timestamp": t - 11 * DAY, "node": "n" }))
        .await;
    assert_eq!((status, answer["accepted"].clone()), (200, json!(false)));
}
