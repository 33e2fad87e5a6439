//! Several server instances on one Redis (standalone and a 3-node cluster): a write through one
//! instance reaches the event streams of another at once (through Redis pub/sub, not the
//! heartbeat's re-check), in order, and every instance serves the same data.
use std::time::Duration;

use mfe_cache_server::Config;
use serde_json::json;

use crate::common::{by_key, now_ms, TestServer};
use crate::sse::{SseEvent, SseStream};
use crate::support::redis::{cluster, require_redis, standalone, unique_prefix};

/// Far longer than the waits below: only a wake-up through Redis can deliver in time.
const HEARTBEAT_MS: u64 = 60_000;
const WAIT: Duration = Duration::from_secs(5);

async fn instance(url: &str, prefix: &str) -> TestServer {
    let config = Config {
        memory: false,
        store: Some(url.parse().expect("a Redis URL")),
        redis_prefix: prefix.to_owned(),
        heartbeat_ms: HEARTBEAT_MS,
        ..Config::for_tests()
    };
    TestServer::start(config).await
}

/// Waits (bounded) until both instances listen on the deployment's channel at the node their bus
/// talks to, so that no write below can precede a subscription.
async fn wait_for_subscribers(port: u16, prefix: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let channel = mfe_cache_server::redis_bus::channel(prefix);
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "PUBSUB", "NUMSUB", &channel])
            .output()
            .expect("redis-cli runs");
        let reply = String::from_utf8_lossy(&out.stdout).into_owned();
        if reply.lines().nth(1).and_then(|n| n.trim().parse::<u32>().ok()) == Some(2) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the instances did not subscribe: {reply:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn two_instances_share_writes_and_wake_each_others_streams(url: &str, bus_port: u16) {
    let prefix = unique_prefix("scale-out");
    let one = instance(url, &prefix).await;
    let two = instance(url, &prefix).await;
    wait_for_subscribers(bus_port, &prefix).await;
    let events = |s: &TestServer| s.url("/api/cache/events?cursor=0");
    let mut on_two = SseStream::open(&two.client, &events(&two), None, None).await;
    let mut on_one = SseStream::open(&one.client, &events(&one), None, None).await;
    on_two.until("ready", WAIT).await;
    on_one.until("ready", WAIT).await;
    let t = now_ms();
    let mut written = Vec::new();
    for i in 0..20u64 {
        let (via, key) = if i % 2 == 0 { (&one, format!("k{i}")) } else { (&two, format!("k{i}")) };
        via.set(&key, json!(i), 0.0, t + i, "w").await;
        written.push(key);
    }
    for stream in [&mut on_two, &mut on_one] {
        let got: Vec<SseEvent> = stream.take(20, WAIT).await;
        let keys: Vec<String> = got.iter().map(|e| e.json()["key"].as_str().unwrap().to_owned()).collect();
        assert_eq!(keys, written, "every write, in acceptance order, through either instance");
        let ids: Vec<u64> = got.iter().map(SseEvent::seq).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "one gap-free order for both instances: {ids:?}");
    }
    // Both instances serve the same state.
    let a = by_key(&one.sync(0, json!([])).await);
    let b = by_key(&two.sync(0, json!([])).await);
    assert_eq!(a, b);
    assert_eq!(a.len(), 20);
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_redis() {
    require_redis();
    two_instances_share_writes_and_wake_each_others_streams(&standalone().url(), standalone().port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_a_redis_cluster() {
    require_redis();
    let cluster = cluster();
    two_instances_share_writes_and_wake_each_others_streams(&cluster.url(), cluster.nodes[0].port).await;
}
