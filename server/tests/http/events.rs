//! `GET /api/cache/events`: pushed changes, in order, resumable, with heartbeats and auth.
use std::time::Duration;

use mfe_cache_server::Config;
use serde_json::json;

use crate::common::{cursor, now_ms, TestServer};
use crate::sse::{SseEvent, SseStream};

const WAIT: Duration = Duration::from_secs(5);

async fn open(s: &TestServer, query: &str, last_event_id: Option<&str>) -> SseStream {
    SseStream::open(&s.client, &s.url(&format!("/api/cache/events{query}")), last_event_id, None).await
}

fn ids(events: &[SseEvent]) -> Vec<u64> {
    events.iter().filter(|e| e.id.is_some()).map(SseEvent::seq).collect()
}

fn assert_increasing(events: &[SseEvent]) {
    let ids = ids(events);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids go up: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_catches_up_then_pushes_every_accepted_change_in_order() {
    let s = TestServer::memory().await;
    let t = now_ms();
    s.set("before", json!(1), 0.0, t, "w").await;
    let mut stream = open(&s, "?cursor=0", None).await;
    let caught_up = stream.until("ready", WAIT).await;
    assert_eq!(caught_up.len(), 2, "{caught_up:?}");
    assert_eq!(caught_up[0].event, "change");
    assert_eq!(caught_up[0].json(), json!({"key":"before","value":1,"ttl":0,"deleted":false,"timestamp":t,"node":"w"}));
    let ready = caught_up[1].json();
    assert_eq!(ready["cursor"], caught_up[0].seq());
    assert!(caught_up[1].id.is_none(), "ready does not move the resume point");

    // Every kind of accepted write, through every endpoint. Each step waits for its events: a
    // stream that reads after a key was written twice rightly sends only the latest write.
    let mut events = Vec::new();
    let answer = s.set("a", json!({"n": 1}), 60.0, t + 1, "w").await;
    let a_seq = answer["timestamp"].as_u64().unwrap();
    events.extend(stream.take(1, WAIT).await);
    s.sync(0, json!([{ "key": "b", "value": [2], "ttl": 0, "timestamp": t + 2, "deleted": false, "node": "x" }])).await;
    events.extend(stream.take(1, WAIT).await);
    s.remove("a", t + 3, "w").await;
    events.extend(stream.take(1, WAIT).await);
    let (status, _) = s.post("/api/cache/clear", &json!({ "timestamp": t + 4, "node": "w" })).await;
    assert_eq!(status, 200);
    events.extend(stream.take(3, WAIT).await);
    s.set("c", json!("after"), 0.0, t + 5, "w").await;
    events.extend(stream.take(1, WAIT).await);
    assert_eq!(s.invalidate(json!(["c"])).await, 1);
    events.extend(stream.take(1, WAIT).await);

    assert_increasing(&events);
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let d = e.json();
            (
                e.event.clone(),
                d["key"].as_str().unwrap_or("").to_owned() + if d["deleted"] == true { " (removed)" } else { "" },
            )
        })
        .collect();
    let expect = [
        ("change", "a"),
        ("change", "b"),
        ("change", "a (removed)"),
        ("clear", ""),
        // The clear's tombstones, in key order, for every value written before it.
        ("change", "b (removed)"),
        ("change", "before (removed)"),
        ("change", "c"),
        ("change", "c (removed)"), // the invalidation's tombstone
    ];
    assert_eq!(summary, expect.map(|(a, b)| (a.to_owned(), b.to_owned())));
    assert_eq!(events[0].seq(), a_seq, "each event's id is the cursor it was accepted at");
    assert_eq!(events[3].json(), json!({ "timestamp": t + 4, "node": "w" }));
    assert_eq!(events[7].json()["node"], "server");
    // The last id is the namespace's cursor: a /sync from it has nothing new.
    let last = events.last().unwrap().seq();
    assert_eq!(cursor(&s.sync(last, json!([])).await), last);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumes_after_its_last_event_id_without_gaps_or_repeats() {
    let s = TestServer::memory().await;
    let t = now_ms();
    let mut first = open(&s, "?cursor=0", None).await;
    first.until("ready", WAIT).await;
    for i in 0..5 {
        s.set(&format!("k{i}"), json!(i), 0.0, t + i, "w").await;
    }
    let got = first.take(5, WAIT).await;
    drop(first);
    let resume_at = got[2].id.clone().unwrap();
    // Written while disconnected; k1 is rewritten, so it comes again (a new change), once.
    s.set("k1", json!("again"), 0.0, t + 10, "w").await;
    s.set("k9", json!(9), 0.0, t + 11, "w").await;

    // Last-Event-ID wins over ?cursor (an EventSource reconnects with both, the URL's being old).
    let mut again = open(&s, "?cursor=0", Some(&resume_at)).await;
    let events = again.until("ready", WAIT).await;
    let keys: Vec<String> =
        events.iter().filter(|e| e.event == "change").map(|e| e.json()["key"].as_str().unwrap().to_owned()).collect();
    assert_eq!(keys, ["k3", "k4", "k1", "k9"], "after the resume point, each key once, at its latest write");
    assert_increasing(&events);
    assert_eq!(events.iter().find(|e| e.json()["key"] == "k1").unwrap().json()["value"], "again");

    // The same from ?cursor.
    let mut by_query = open(&s, &format!("?cursor={resume_at}"), None).await;
    let same = by_query.until("ready", WAIT).await;
    assert_eq!(ids(&same), ids(&events));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cursor_a_stream_starts_at_the_present() {
    let s = TestServer::memory().await;
    let t = now_ms();
    s.set("old", json!(1), 0.0, t, "w").await;
    let mut stream = open(&s, "", None).await;
    let ready = stream.until("ready", WAIT).await;
    assert_eq!(ready.len(), 1, "nothing from before: {ready:?}");
    s.set("new", json!(2), 0.0, t + 1, "w").await;
    assert_eq!(stream.take(1, WAIT).await[0].json()["key"], "new");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_catch_up_is_paged_in_order_with_the_clear_in_its_place() {
    let s = TestServer::memory().await;
    let t = now_ms();
    let batch = |from: u64, n: u64| {
        json!((from..from + n)
            .map(|i| json!({ "key": format!("k{i:05}"), "value": i, "ttl": 0, "timestamp": t + i, "deleted": false, "node": "w" }))
            .collect::<Vec<_>>())
    };
    s.sync(0, batch(0, 1000)).await;
    s.sync(0, batch(1000, 700)).await;
    let (status, _) = s.post("/api/cache/clear", &json!({ "timestamp": t + 1200, "node": "w" })).await;
    assert_eq!(status, 200);
    s.sync(0, batch(5000, 10)).await;

    let mut stream = open(&s, "?cursor=0", None).await;
    let events = stream.until("ready", WAIT).await;
    assert_increasing(&events);
    let clears: Vec<usize> = events.iter().enumerate().filter(|(_, e)| e.event == "clear").map(|(i, _)| i).collect();
    assert_eq!(clears.len(), 1);
    // The clear comes after every row accepted before it and before its own tombstones.
    let clear_seq = events[clears[0]].seq();
    let changes = events.iter().filter(|e| e.event == "change").count();
    assert_eq!(changes, 1200 + 500 + 10, "1200 tombstoned keys (cleared after their values), 500 kept, 10 new");
    let ready = events.last().unwrap().json();
    assert_eq!(ready["cursor"].as_u64().unwrap(), ids(&events).into_iter().max().unwrap());
    assert!(clear_seq < ready["cursor"].as_u64().unwrap());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_get_heartbeats() {
    let s = TestServer::start(Config { heartbeat_ms: 50, ..Config::for_tests() }).await;
    let mut stream = open(&s, "", None).await;
    let ready = stream.until("ready", WAIT).await;
    assert_eq!(ready[0].json()["heartbeat"], 50);
    // Wait for a write that comes after at least two heartbeats' worth of silence.
    let writer = {
        let (client, url) = (s.client.clone(), s.url("/api/cache/set"));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let body = json!({ "key": "k", "value": 1, "ttl": 0, "timestamp": now_ms(), "node": "w" });
            client.post(url).json(&body).send().await.unwrap();
        })
    };
    assert_eq!(stream.take(1, WAIT).await[0].json()["key"], "k");
    writer.await.unwrap();
    assert!(stream.comments >= 2, "heartbeat comments seen: {}", stream.comments);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_need_the_same_auth_and_see_only_their_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens");
    std::fs::write(&path, "tok-a alpha\ntok-b beta\n").unwrap();
    let s = TestServer::start(Config { tokens: Some(path), ..Config::for_tests() }).await;
    let url = s.url("/api/cache/events?cursor=0");
    let refused = SseStream::request(&s.client, &url, None, None).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.json::<serde_json::Value>().await.unwrap()["error"], "unauthorized");
    let mut alpha = SseStream::open(&s.client, &url, None, Some("tok-a")).await;
    alpha.until("ready", WAIT).await;
    let write = |token: &'static str, key: &'static str| {
        let body = json!({ "key": key, "value": 1, "ttl": 0, "timestamp": now_ms(), "node": "w" });
        s.client.post(s.url("/api/cache/set")).bearer_auth(token).json(&body).send()
    };
    assert_eq!(write("tok-b", "beta-only").await.unwrap().status(), 200);
    assert_eq!(write("tok-a", "alpha-key").await.unwrap().status(), 200);
    assert_eq!(alpha.take(1, WAIT).await[0].json()["key"], "alpha-key", "beta's write is not in alpha's stream");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_cursor_is_a_json_400() {
    let s = TestServer::memory().await;
    for query in ["?cursor=abc", "?cursor=-1", "?cursor=9007199254740992"] {
        let answer = s.get(&format!("/api/cache/events{query}")).await;
        assert_eq!(answer.status, 400, "{query}");
        assert_eq!(answer.json()["error"], "invalid_cursor");
    }
    let answer = s.fetch(s.client.get(s.url("/api/cache/events")).header("last-event-id", "x")).await;
    assert_eq!(answer.status, 400);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_open_streams_to_reconnect_and_ends_them() {
    let s = TestServer::memory().await;
    let mut stream = open(&s, "", None).await;
    stream.until("ready", WAIT).await;
    tokio::time::timeout(WAIT, s.stop()).await.expect("graceful shutdown does not wait for event streams");
    let last = tokio::time::timeout(WAIT, stream.next()).await.unwrap().expect("a last event");
    assert_eq!(last.event, "reconnect", "{last:?}");
    assert!(last.id.is_none(), "the hint does not move the resume point");
    assert!(last.json()["spreadMs"].as_u64().is_some_and(|ms| ms > 0), "{last:?}");
    assert!(tokio::time::timeout(WAIT, stream.next()).await.unwrap().is_none(), "the stream ended");
}
