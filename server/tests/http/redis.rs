//! The server on the Redis store (`--store redis://…`, through `Server::bind` as the binary does):
//! a stopped Redis is answered `503` with the JSON error body, promptly, and the server serves
//! again by itself once Redis is back, with every acknowledged write.
use std::time::{Duration, Instant};

use mfe_cache_server::Config;
use serde_json::json;

use crate::common::{by_key, now_ms, TestServer};
use crate::support::redis::{unique_prefix, RedisServer};

fn redis_config(url: &str) -> Config {
    Config {
        memory: false,
        store: Some(url.parse().unwrap()),
        redis_prefix: unique_prefix("http"),
        ..Config::for_tests()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_is_a_503_and_the_server_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start(dir.path());
    let s = TestServer::start(redis_config(&redis.url())).await;
    let t = now_ms();
    s.set("before", json!({ "a": 1 }), 0.0, t, "node-a").await;
    assert_eq!(s.get("/api/cache/stats").await.json()["store"], "redis");

    redis.kill();
    let during = json!({ "key": "during", "value": 2, "ttl": 0, "timestamp": t + 1, "node": "node-a" });
    for _ in 0..2 {
        let started = Instant::now();
        let (status, answer) = s.post("/api/cache/set", &during).await;
        assert_eq!(status, 503, "{answer}");
        assert_eq!(answer["error"], "storage_error");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    }
    let (status, answer) = s.post("/api/cache/sync", &json!({ "lastSync": 0, "changes": [] })).await;
    assert_eq!((status, answer["error"].as_str()), (503, Some("storage_error")), "{answer}");
    let entries = s.get("/api/cache/entries").await;
    assert_eq!((entries.status, entries.json()["error"].as_str()), (503, Some("storage_error")));

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, answer) = s.post("/api/cache/set", &during).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{answer}");
        assert!(Instant::now() < deadline, "the server did not recover: {answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = by_key(&s.sync(0, json!([])).await);
    assert_eq!(all["before"]["value"], json!({ "a": 1 }));
    assert_eq!(all["during"]["value"], 2);
    s.stop().await;
}

/// Two servers on one Redis are one cache: a write through either is synced from the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_redis_share_their_data() {
    let url = crate::support::redis::standalone().url();
    let config = redis_config(&url);
    let (a, b) = (TestServer::start(config.clone()).await, TestServer::start(config).await);
    let t = now_ms();
    a.set("from-a", json!("A"), 0.0, t, "node-a").await;
    b.set("from-b", json!("B"), 0.0, t, "node-b").await;
    let cursor = crate::common::cursor(&a.sync(0, json!([])).await);
    assert_eq!(crate::common::cursor(&b.sync(0, json!([])).await), cursor, "one cursor");
    for s in [&a, &b] {
        let all = by_key(&s.sync(0, json!([])).await);
        assert_eq!((all["from-a"]["value"].as_str(), all["from-b"]["value"].as_str()), (Some("A"), Some("B")));
    }
    a.stop().await;
    b.stop().await;
}
