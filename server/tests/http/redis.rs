//! The server on the Redis store (`--store redis://…`, through `Server::bind` as the binary does):
//! a stopped Redis is answered `503` with the JSON error body, promptly, and the server serves
//! again by itself once Redis is back, with every acknowledged write; a Redis that may evict
//! keys is refused at start.
use std::time::{Duration, Instant};

use mfe_cache_server::{Config, Server};
use serde_json::json;

use crate::binary;
use crate::common::{by_key, now_ms, TestServer};
use crate::support::redis::{command, unique_prefix, RedisCluster, RedisServer};

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

/// `/healthz` on Redis is a `PING`: 503 with the reason while Redis is down, 200 again once it is
/// back, with no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_says_when_redis_is_down_and_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start(dir.path());
    let s = TestServer::start(redis_config(&redis.url())).await;
    let (status, health) = s.send(s.client.get(s.url("/healthz"))).await;
    assert_eq!((status, health), (200, json!({ "status": "ok", "store": "redis" })));

    redis.kill();
    let (status, health) = s.send(s.client.get(s.url("/healthz"))).await;
    assert_eq!(status, 503, "{health}");
    assert_eq!((health["status"].as_str(), health["store"].as_str()), (Some("unavailable"), Some("redis")), "{health}");
    assert!(health["reason"].as_str().is_some_and(|r| r.contains("Redis")), "{health}");

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, health) = s.send(s.client.get(s.url("/healthz"))).await;
        if status == 200 {
            assert_eq!(health["status"], "ok");
            break;
        }
        assert_eq!(status, 503, "{health}");
        assert!(Instant::now() < deadline, "healthz did not recover: {health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

/// With `allkeys-lru`, 364 of 400 acknowledged writes vanished without an error: a Redis that may
/// evict any key is refused at start, with the policy and the fix in the message, unless the
/// flag (or its variable) accepts it, and then the server says so in its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_may_evict_keys_is_refused_at_start_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start_with_args(dir.path(), &["--maxmemory-policy", "allkeys-lru"]);
    let (url, prefix) = (redis.url(), unique_prefix("evict"));
    let args = ["--store", url.as_str(), "--redis-prefix", prefix.as_str()];

    let (status, log) = binary::start(&args, &[]).exited();
    assert!(!status.success(), "{status}");
    for needle in ["maxmemory-policy allkeys-lru", "noeviction", "--redis-allow-eviction"] {
        assert!(log.contains(needle), "{needle:?} is not in the log:\n{log}");
    }

    let client = reqwest::Client::new();
    let with_flag = [args.as_slice(), &["--redis-allow-eviction"]].concat();
    let with_variable = [("MFE_CACHE_REDIS_ALLOW_EVICTION", "1")];
    for (args, env) in [(with_flag.as_slice(), [].as_slice()), (args.as_slice(), with_variable.as_slice())] {
        let server = binary::start(args, env).listening();
        server.wait_for_log(&["WARN", "maxmemory-policy allkeys-lru", "lose acknowledged writes"]);
        let body = json!({ "key": "k", "value": 1, "ttl": 0, "timestamp": now_ms(), "node": "n" });
        let answer = client.post(server.url("/api/cache/set")).json(&body).send().await.unwrap();
        assert_eq!(answer.status(), 200);
    }
}

/// On a cluster the policy is read from every master, not only the one the URL names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_master_of_a_cluster_is_checked_for_eviction() {
    let cluster = RedisCluster::start();
    let evicting = &cluster.nodes[2];
    assert_eq!(command(evicting.port, "CONFIG SET maxmemory-policy allkeys-random").unwrap(), "+OK");
    let seed = format!("redis+cluster://127.0.0.1:{}", cluster.nodes[0].port);
    let config = Config {
        memory: false,
        store: Some(seed.parse().unwrap()),
        redis_prefix: unique_prefix("evict-cluster"),
        ..Config::for_tests()
    };
    let message = Server::bind(&config).await.err().expect("the cluster is refused").to_string();
    let node = format!("127.0.0.1:{}", evicting.port);
    for needle in [node.as_str(), "maxmemory-policy allkeys-random", "noeviction"] {
        assert!(message.contains(needle), "{needle:?} is not in {message:?}");
    }
    let s = TestServer::start(Config { redis_allow_eviction: true, ..config }).await;
    s.set("k", json!(1), 0.0, now_ms(), "n").await;
    s.stop().await;
}

/// A managed Redis may not allow `CONFIG`: the policy cannot be read, and the server starts, but
/// says that it could not check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_refuses_config_starts_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start_with_args(dir.path(), &["--rename-command", "CONFIG", ""]);
    let (url, prefix) = (redis.url(), unique_prefix("no-config"));
    let server = binary::start(&["--store", url.as_str(), "--redis-prefix", prefix.as_str()], &[]).listening();
    server.wait_for_log(&["WARN", "could not check", "maxmemory-policy", "noeviction"]);
}
