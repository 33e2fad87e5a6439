//! Event streams of one namespace share one store read per change: the count of store reads does
//! not grow with the number of streams.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mfe_cache_server::store::{
    Census, Delta, DeltaQuery, EntriesPage, EntriesQuery, GcReport, MemoryStore, OpReport, Store, StoreFuture, WriteOp,
};
use mfe_cache_server::{Config, Server};
use serde_json::json;

use crate::common::{now_ms, TestServer};
use crate::sse::SseStream;

const WAIT: Duration = Duration::from_secs(5);
const STREAMS: usize = 20;

/// A memory store that counts its delta reads.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    deltas: AtomicU64,
}

impl Store for Counting {
    fn apply<'a>(&'a self, ns: &'a str, op: WriteOp, now_ms: u64) -> StoreFuture<'a, OpReport> {
        self.inner.apply(ns, op, now_ms)
    }
    fn delta<'a>(&'a self, ns: &'a str, query: DeltaQuery) -> StoreFuture<'a, Delta> {
        self.deltas.fetch_add(1, Ordering::SeqCst);
        self.inner.delta(ns, query)
    }
    fn gc(&self, now_ms: u64, retention_ms: u64) -> StoreFuture<'_, GcReport> {
        self.inner.gc(now_ms, retention_ms)
    }
    fn cursor<'a>(&'a self, ns: &'a str) -> StoreFuture<'a, u64> {
        self.inner.cursor(ns)
    }
    fn census<'a>(&'a self, ns: &'a str, now_ms: u64) -> StoreFuture<'a, Census> {
        self.inner.census(ns, now_ms)
    }
    fn entries<'a>(&'a self, ns: &'a str, query: EntriesQuery) -> StoreFuture<'a, EntriesPage> {
        self.inner.entries(ns, query)
    }
    fn health(&self) -> StoreFuture<'_, ()> {
        self.inner.health()
    }
    fn kind(&self) -> &'static str {
        "counting"
    }
}

async fn server() -> (TestServer, Arc<Counting>) {
    let store = Arc::new(Counting::default());
    // No heartbeat within the test: each store read counted is one a change caused.
    let config = Config { heartbeat_ms: 3_600_000, ..Config::for_tests() };
    let s = TestServer::start_with_store(config, store.clone()).await;
    (s, store)
}

async fn open(s: &TestServer, last_event_id: Option<&str>) -> SseStream {
    SseStream::open(&s.client, &s.url("/api/cache/events"), last_event_id, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_of_one_namespace_share_one_store_read_per_change() {
    let (s, store) = server().await;
    let mut streams = Vec::new();
    for _ in 0..STREAMS {
        let mut stream = open(&s, None).await;
        stream.until("ready", WAIT).await;
        streams.push(stream);
    }
    let before = store.deltas.load(Ordering::SeqCst);
    let t = now_ms();
    const WRITES: u64 = 5;
    for i in 0..WRITES {
        let answer = s.set(&format!("k{i}"), json!(i), 0.0, t + i, "w").await;
        let seq = answer["timestamp"].as_u64().unwrap();
        for stream in &mut streams {
            let got = stream.take(1, WAIT).await;
            assert_eq!((got[0].event.as_str(), got[0].seq()), ("change", seq));
            assert_eq!(got[0].json()["key"], format!("k{i}"));
        }
    }
    let reads = store.deltas.load(Ordering::SeqCst) - before;
    assert!(reads <= WRITES, "{reads} store reads for {WRITES} changes to {STREAMS} streams (one per stream would be {})", WRITES * STREAMS as u64);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resuming_from_a_recent_event_is_served_from_the_shared_log() {
    let (s, store) = server().await;
    let mut follower = open(&s, None).await;
    follower.until("ready", WAIT).await;
    let t = now_ms();
    let mut seqs = Vec::new();
    for i in 0..3 {
        seqs.push(s.set(&format!("k{i}"), json!(i), 0.0, t + i, "w").await["timestamp"].as_u64().unwrap());
        follower.take(1, WAIT).await;
    }
    let before = store.deltas.load(Ordering::SeqCst);
    // Resumes after the first change: gets the second and third, in order, then `ready`, without
    // a store read of its own.
    let mut resumed = open(&s, Some(&seqs[0].to_string())).await;
    let events = resumed.until("ready", WAIT).await;
    let got: Vec<(String, Option<u64>)> = events.iter().map(|e| (e.event.clone(), e.id.as_ref().map(|_| e.seq()))).collect();
    assert_eq!(
        got,
        vec![("change".into(), Some(seqs[1])), ("change".into(), Some(seqs[2])), ("ready".into(), None)],
        "{events:?}"
    );
    assert_eq!(events[2].json()["cursor"], seqs[2]);
    assert_eq!(store.deltas.load(Ordering::SeqCst), before, "served from the log, not the store");
    // And it follows on like any stream.
    let next = s.set("k3", json!(3), 0.0, t + 3, "w").await["timestamp"].as_u64().unwrap();
    assert_eq!(resumed.take(1, WAIT).await[0].seq(), next);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_further_behind_than_the_log_reads_the_store_and_misses_nothing() {
    let (s, _store) = server().await;
    let mut follower = open(&s, None).await;
    follower.until("ready", WAIT).await;
    let t = now_ms();
    // More changes than the log keeps, in one /sync so that the reader reads them in one go.
    let keys = mfe_cache_server::fanout::channel::LOG_EVENTS + 50;
    let changes: Vec<_> = (0..keys)
        .map(|i| json!({ "key": format!("k{i:04}"), "value": i, "ttl": 0, "timestamp": t + i as u64, "deleted": false, "node": "w" }))
        .collect();
    let (status, _) = s.post("/api/cache/sync", &json!({ "lastSync": 0, "changes": changes })).await;
    assert_eq!(status, 200);
    let pushed = follower.take(keys, WAIT).await;
    let first = pushed[0].seq();
    // From before the first change: further back than the log reaches.
    let mut late = open(&s, Some(&(first - 1).to_string())).await;
    let events = late.until("ready", WAIT).await;
    let changes: Vec<String> = events.iter().filter(|e| e.event == "change").map(|e| e.json()["key"].as_str().unwrap().to_owned()).collect();
    let expected: Vec<String> = (0..keys).map(|i| format!("k{i:04}")).collect();
    assert_eq!(changes, expected);
    let ids: Vec<u64> = events.iter().filter(|e| e.id.is_some()).map(|e| e.seq()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids go up");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_memory_pressure_streams_are_told_to_reconnect_and_new_ones_refused() {
    let resident = Arc::new(AtomicU64::new(10 << 20));
    let gauge = resident.clone();
    let config = Config { max_memory_mb: Some(100), ..Config::for_tests() };
    let server = Server::bind(&config).await.expect("binds").with_memory_gauge(Arc::new(move || Some(gauge.load(Ordering::SeqCst))));
    let s = TestServer::serve(server).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = open(&s, None).await;
        stream.until("ready", WAIT).await;
        streams.push(stream);
    }
    resident.store(200 << 20, Ordering::SeqCst);
    // 5 % a second, at least one: each stream in turn is told to reconnect, then ends.
    for stream in &mut streams {
        let events = stream.until("reconnect", Duration::from_secs(15)).await;
        assert!(events.last().is_some_and(|e| e.id.is_none()), "{events:?}");
        assert!(tokio::time::timeout(WAIT, stream.next()).await.unwrap().is_none(), "the stream ended");
    }
    let refused = SseStream::request(&s.client, &s.url("/api/cache/events"), None, None).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(refused.json::<serde_json::Value>().await.unwrap()["error"], "overloaded");
    // Back under 90 % of the limit: streams are accepted again.
    resident.store(50 << 20, Ordering::SeqCst);
    let url = s.url("/api/cache/events");
    SseStream::wait_for_status(&s.client, &url, 200, Duration::from_secs(15), "streams are accepted again").await;
    s.stop().await;
}
