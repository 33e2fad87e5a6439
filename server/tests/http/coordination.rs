//! Frontend/backend coordination (issue 5): `/invalidate` by key pattern, `/entries` with ETags,
//! `/stats`. The tests that touch stored data run on both stores.
use mfe_cache_server::Config;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::common::{by_key, cursor, keys, now_ms, TestClock, TestServer};

/// A store to run a test on.
struct Backend {
    config: Config,
    _dir: Option<TempDir>,
}

impl Backend {
    fn memory() -> Self {
        Backend { config: Config::for_tests(), _dir: None }
    }

    fn redb() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { memory: false, data: dir.path().to_owned(), ..Config::for_tests() };
        Backend { config, _dir: Some(dir) }
    }

    async fn start(&self, clock: &TestClock) -> TestServer {
        TestServer::start_with_clock(self.config.clone(), clock.clone()).await
    }
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory_store {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::memory()).await })*
        }
        mod redb_store {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::redb()).await })*
        }
    };
}

on_both_stores!(
    invalidate_tombstones_exactly_the_matching_keys_for_every_client,
    invalidated_keys_refuse_older_writes_and_take_newer_ones,
    entries_filter_by_prefix_and_page,
    etag_round_trip,
);

/// Percent-encodes a query value (what `encodeURIComponent` does for these characters).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn entry_keys(answer: &Value) -> Vec<String> {
    answer["entries"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap().to_owned()).collect()
}

async fn invalidate_tombstones_exactly_the_matching_keys_for_every_client(backend: Backend) {
    let clock = TestClock::new(now_ms());
    let s = backend.start(&clock).await;
    let t = now_ms() - 1000;
    for key in ["stores:1", "stores:2:users", "stores", "store:3", "analytics:x", "exact-key", "exact-key-2"] {
        s.set(key, json!({ "k": key }), 3600.0, t, "tab-a").await;
    }
    s.remove("stores:gone", t, "tab-a").await;
    // Client A synced everything before the invalidation; client B (the invalidator) never synced.
    let a_cursor = cursor(&s.sync(0, json!([])).await);

    let (status, answer) =
        s.post("/api/cache/invalidate", &json!({ "patterns": ["stores:*", "exact-key", "nothing:*"] })).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["success"].clone(), answer["invalidated"].clone()), (json!(true), json!(3)));
    assert!(cursor(&answer) > a_cursor);

    // Client A gets exactly the three tombstones, written by the server, above the values: after
    // every write the namespace had accepted (all at `t`), and not later, though the server's
    // clock is a second ahead of them.
    let synced = s.sync(a_cursor, json!([])).await;
    assert_eq!(keys(&synced), ["exact-key", "stores:1", "stores:2:users"]);
    assert!(clock_now(&clock) > t + 1);
    for update in synced["updates"].as_array().unwrap() {
        assert_eq!((update["deleted"].clone(), update["value"].clone()), (json!(true), json!(null)), "{update}");
        assert_eq!(update["node"], "server");
        let ts = update["timestamp"].as_u64().unwrap();
        assert_eq!(ts, t + 1, "the tombstone is stamped just after the namespace's newest write");
    }
    // The invalidator's own sync from 0 sees the same state: the three keys removed, the rest kept.
    let all = by_key(&s.sync(0, json!([])).await);
    for key in ["stores:1", "stores:2:users", "exact-key", "stores:gone"] {
        assert_eq!(all[key]["deleted"], true, "{key}");
    }
    for key in ["stores", "store:3", "analytics:x", "exact-key-2"] {
        assert_eq!(all[key]["value"], json!({ "k": key }), "{key} does not match");
    }
    // Nothing is repeated past the new cursor; invalidating again finds nothing live.
    assert!(s.sync(cursor(&synced), json!([])).await["updates"].as_array().unwrap().is_empty());
    assert_eq!(s.invalidate(json!(["stores:*", "exact-key"])).await, 0);
    s.stop().await;
}

fn clock_now(clock: &TestClock) -> u64 {
    use mfe_shared_cache_core::Clock;
    clock.now_ms()
}

async fn invalidated_keys_refuse_older_writes_and_take_newer_ones(backend: Backend) {
    let clock = TestClock::new(now_ms());
    let s = backend.start(&clock).await;
    let now = clock_now(&clock);
    // One value stamped ahead of the server's clock (a client whose clock runs fast).
    s.set("stores:behind", json!(1), 0.0, now - 5000, "tab-a").await;
    s.set("stores:ahead", json!(2), 0.0, now + 60_000, "tab-a").await;
    assert_eq!(s.invalidate(json!(["stores:*"])).await, 2);
    let all = by_key(&s.sync(0, json!([])).await);
    let tomb_behind = all["stores:behind"]["timestamp"].as_u64().unwrap();
    let tomb_ahead = all["stores:ahead"]["timestamp"].as_u64().unwrap();
    assert_eq!(tomb_behind, now, "never below the wall clock");
    assert_eq!(tomb_ahead, now + 60_001, "above the value it replaces");

    // A write made before the invalidation that arrives late (offline client) loses ...
    assert_eq!(s.set("stores:behind", json!("late"), 0.0, now - 1, "tab-zzz").await["accepted"], false);
    assert_eq!(s.set("stores:ahead", json!("late"), 0.0, now + 60_000, "tab-zzz").await["accepted"], false);
    // ... also through /sync, where the writer is told what won: the tombstone.
    let late = json!([{ "key": "stores:behind", "value": 3, "ttl": 0, "timestamp": now - 2, "deleted": false,
                        "node": "tab-b" }]);
    let synced = s.sync(cursor(&s.sync(0, json!([])).await), late).await;
    let told = &by_key(&synced)["stores:behind"];
    assert_eq!((told["deleted"].clone(), told["timestamp"].clone()), (json!(true), json!(tomb_behind)));

    // A write made after the invalidation (a client that saw the tombstone) wins.
    assert_eq!(s.set("stores:behind", json!("fresh"), 0.0, tomb_behind + 1, "tab-a").await["accepted"], true);
    let page = s.get("/api/cache/entries?prefix=stores:").await.json();
    assert_eq!(entry_keys(&page), ["stores:behind"]);
    assert_eq!(page["entries"][0]["value"], "fresh");
    s.stop().await;
}

async fn entries_filter_by_prefix_and_page(backend: Backend) {
    let clock = TestClock::new(now_ms());
    let s = backend.start(&clock).await;
    let t = clock_now(&clock);
    for i in 0..5 {
        s.set(&format!("stores:{i}"), json!(i), 0.0, t, "tab-a").await;
    }
    s.set("stores:short", json!("s"), 2.0, t, "tab-a").await;
    s.set("store", json!("no"), 0.0, t, "tab-a").await;
    s.set("users/ü 1&x", json!("odd key"), 0.0, t, "tab-a").await;
    s.remove("stores:3", t + 1, "tab-a").await;

    let page = s.get("/api/cache/entries?prefix=stores:").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("application/json"));
    let body = page.json();
    assert_eq!(entry_keys(&body), ["stores:0", "stores:1", "stores:2", "stores:4", "stores:short"]);
    assert_eq!(
        body["entries"][4],
        json!({ "key": "stores:short", "value": "s", "ttl": 2, "timestamp": t, "node": "tab-a", "deleted": false })
    );
    assert_eq!(body["more"], false);
    assert_eq!(body["cursor"], cursor(&s.sync(0, json!([])).await), "the cursor a client can /sync on from");

    // No prefix (or an empty one): every live value. A prefix is URL-encoded like any value.
    assert_eq!(entry_keys(&s.get("/api/cache/entries").await.json()).len(), 7);
    assert_eq!(entry_keys(&s.get("/api/cache/entries?prefix=").await.json()).len(), 7);
    let odd = s.get(&format!("/api/cache/entries?prefix={}", encode("users/ü 1&"))).await.json();
    assert_eq!(entry_keys(&odd), ["users/ü 1&x"]);

    // Pages: `limit`, then `after` the last key, until `more` is false.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/api/cache/entries?prefix=stores%3A&limit=2".to_owned();
        if let Some(after) = &after {
            path.push_str(&format!("&after={}", encode(after)));
        }
        let page = s.get(&path).await.json();
        seen.extend(entry_keys(&page));
        pages += 1;
        if page["more"] == false {
            assert!(page.get("after").is_none());
            break;
        }
        after = Some(page["after"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, ["stores:0", "stores:1", "stores:2", "stores:4", "stores:short"]);
    assert_eq!(pages, 3);

    // An expired value is not listed.
    clock.advance(2000);
    assert_eq!(entry_keys(&s.get("/api/cache/entries?prefix=stores:s").await.json()), Vec::<String>::new());
    s.stop().await;
}

async fn etag_round_trip(backend: Backend) {
    let clock = TestClock::new(now_ms());
    let s = backend.start(&clock).await;
    let t = clock_now(&clock);
    s.set("stores:1", json!(1), 0.0, t, "tab-a").await;
    s.set("stores:2", json!(2), 10.0, t, "tab-a").await;
    s.set("users:1", json!("u"), 0.0, t, "tab-a").await;
    let path = "/api/cache/entries?prefix=stores:";
    let revalidate = |tag: &str| s.fetch(s.client.get(s.url(path)).header("if-none-match", tag));

    let first = s.get(path).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("cache-control"), Some("no-cache"));
    let tag = first.header("etag").expect("an ETag").to_owned();
    assert!(tag.starts_with('"') && tag.ends_with('"') && !tag.starts_with("W/"), "a strong tag: {tag}");
    assert_eq!(s.get(path).await.header("etag"), Some(tag.as_str()), "the same answer has the same tag");

    let same = revalidate(&tag).await;
    assert_eq!(same.status, 304);
    assert_eq!(same.text, "", "no body");
    assert_eq!(same.header("etag"), Some(tag.as_str()));
    assert_eq!(same.header("cache-control"), Some("no-cache"));
    // A list, a weak form of the tag (If-None-Match compares weakly) and `*` match too.
    assert_eq!(revalidate(&format!("\"nope\", {tag}")).await.status, 304);
    assert_eq!(revalidate(&format!("W/{tag}")).await.status, 304);
    assert_eq!(revalidate("*").await.status, 304);
    assert_eq!(revalidate("\"something-else\"").await.status, 200);
    // The tag names this query: another prefix or page size does not match it.
    let other = s.fetch(s.client.get(s.url("/api/cache/entries?prefix=users:")).header("if-none-match", &tag)).await;
    assert_eq!(other.status, 200);
    assert_ne!(other.header("etag"), Some(tag.as_str()));

    // A write to a matching key: 200 with the new value and a new tag.
    s.set("stores:1", json!("changed"), 0.0, t + 1, "tab-a").await;
    let changed = revalidate(&tag).await;
    assert_eq!(changed.status, 200);
    assert_eq!(changed.json()["entries"][0]["value"], "changed");
    let tag2 = changed.header("etag").unwrap().to_owned();
    assert_ne!(tag2, tag);
    assert_eq!(revalidate(&tag2).await.status, 304);

    // A write outside the prefix moves the namespace's version, so the tag changes although the
    // entries do not (documented: one version per namespace; a spurious 200 is always correct).
    s.set("users:2", json!("v"), 0.0, t + 1, "tab-a").await;
    let unrelated = revalidate(&tag2).await;
    assert_eq!(unrelated.status, 200);
    assert_eq!(unrelated.json()["entries"], changed.json()["entries"]);
    let tag3 = unrelated.header("etag").unwrap().to_owned();
    assert_ne!(tag3, tag2);

    // A write that loses the merge changes nothing: still 304.
    assert_eq!(s.set("stores:1", json!("older"), 0.0, t, "tab-a").await["accepted"], false);
    assert_eq!(revalidate(&tag3).await.status, 304);

    // An entry in the answer expiring changes the answer without any write: 200, and it is gone.
    clock.advance(9_999);
    assert_eq!(revalidate(&tag3).await.status, 304);
    clock.advance(1);
    let expired = revalidate(&tag3).await;
    assert_eq!(expired.status, 200);
    assert_eq!(entry_keys(&expired.json()), ["stores:1"]);

    // An invalidation of matching keys: 200, empty.
    let tag4 = expired.header("etag").unwrap().to_owned();
    assert_eq!(s.invalidate(json!(["stores:*"])).await, 1);
    let invalidated = revalidate(&tag4).await;
    assert_eq!(invalidated.status, 200);
    assert!(entry_keys(&invalidated.json()).is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_is_durable_on_the_redb_store() {
    let backend = Backend::redb();
    let clock = TestClock::new(now_ms());
    let t = clock_now(&clock);
    let s = backend.start(&clock).await;
    s.set("stores:1", json!(1), 0.0, t, "tab-a").await;
    s.set("users:1", json!(1), 0.0, t, "tab-a").await;
    let before = cursor(&s.sync(0, json!([])).await);
    assert_eq!(s.invalidate(json!(["stores:*"])).await, 1);
    s.stop().await;

    let s = backend.start(&clock).await;
    let synced = s.sync(before, json!([])).await;
    assert_eq!(keys(&synced), ["stores:1"], "a client that synced before the restart still gets the tombstone");
    assert_eq!(
        (synced["updates"][0]["deleted"].clone(), synced["updates"][0]["node"].clone()),
        (json!(true), json!("server"))
    );
    assert_eq!(s.set("stores:1", json!("late"), 0.0, t, "tab-z").await["accepted"], false);
    s.stop().await;
}

#[tokio::test]
async fn bad_invalidate_bodies_are_400_and_change_nothing() {
    let s = TestServer::memory().await;
    s.set("stores:1", json!(1), 0.0, now_ms(), "tab-a").await;
    let before = s.state().await;
    let too_many = json!({ "patterns": vec!["k"; 101] }).to_string();
    let too_long = json!({ "patterns": ["x".repeat(1025)] }).to_string();
    let cases: Vec<(String, u16, &str)> = vec![
        ("not json".into(), 400, "invalid_json"),
        ("".into(), 400, "invalid_json"),
        ("[\"stores:*\"]".into(), 400, "invalid_request"),
        ("{}".into(), 400, "invalid_request"),
        (r#"{"pattern":["stores:*"]}"#.into(), 400, "invalid_request"),
        (r#"{"patterns":null}"#.into(), 400, "invalid_request"),
        (r#"{"patterns":"stores:*"}"#.into(), 400, "invalid_request"),
        (r#"{"patterns":{"0":"stores:*"}}"#.into(), 400, "invalid_request"),
        (r#"{"patterns":[]}"#.into(), 400, "invalid_request"),
        (too_many, 400, "invalid_request"),
        (r#"{"patterns":["stores:*",5]}"#.into(), 400, "invalid_pattern"),
        (r#"{"patterns":[null]}"#.into(), 400, "invalid_pattern"),
        (r#"{"patterns":["stores:*",""]}"#.into(), 400, "invalid_pattern"),
        (r#"{"patterns":["trailing\\"]}"#.into(), 400, "invalid_pattern"),
        (too_long, 400, "invalid_pattern"),
    ];
    for (body, status, code) in cases {
        let (got, answer) = s.post_raw("/api/cache/invalidate", body.clone()).await;
        let shown = &body[..body.len().min(80)];
        assert_eq!((got, answer["error"].as_str()), (status, Some(code)), "{shown}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
    }
    let (_, answer) = s.post_raw("/api/cache/invalidate", r#"{"patterns":["ok:*","bad\\"]}"#).await;
    assert!(answer["message"].as_str().unwrap().starts_with("patterns[1]"), "{answer}");
    // The body limit applies as everywhere.
    let s_small = TestServer::start(Config { max_body: 256, ..Config::for_tests() }).await;
    let big = json!({ "patterns": vec!["stores:*"; 50] }).to_string();
    let (status, answer) = s_small.post_raw("/api/cache/invalidate", big).await;
    assert_eq!((status, answer["error"].as_str()), (413, Some("payload_too_large")));
    // Wrong methods answer JSON too.
    let (status, answer) = s.send(s.client.get(s.url("/api/cache/invalidate"))).await;
    assert_eq!((status, answer["error"].as_str()), (405, Some("method_not_allowed")));
    let (status, answer) = s.post("/api/cache/entries", &json!({})).await;
    assert_eq!((status, answer["error"].as_str()), (405, Some("method_not_allowed")));
    assert_eq!(s.state().await, before, "nothing stored was touched");
}

#[tokio::test]
async fn bad_entries_queries_are_400() {
    let s = TestServer::memory().await;
    let long = "k".repeat(1025);
    for query in [
        "limit=0".to_owned(),
        "limit=1001".into(),
        "limit=ten".into(),
        "limit=-1".into(),
        "prefix=a&prefix=b".into(),
        format!("prefix={long}"),
        format!("after={long}"),
    ] {
        let answer = s.get(&format!("/api/cache/entries?{query}")).await;
        assert_eq!(answer.status, 400, "{query}");
        let body = answer.json();
        assert_eq!(body["error"], "invalid_request", "{query}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(s.get("/api/cache/entries?limit=1000&_=123").await.status, 200, "unknown parameters are ignored");
}

fn tokens_config(dir: &TempDir) -> Config {
    let path = dir.path().join("tokens");
    std::fs::write(&path, "token-alpha alpha\ntoken-beta beta\n").unwrap();
    Config { tokens: Some(path), ..Config::for_tests() }
}

#[tokio::test]
async fn namespaces_isolate_invalidate_stats_and_entries() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(tokens_config(&dir)).await;
    let t = now_ms();
    let post = |token: &str, path: &str, body: Value| s.send(s.client.post(s.url(path)).bearer_auth(token).json(&body));
    let get = |token: &str, path: &str| s.fetch(s.client.get(s.url(path)).bearer_auth(token));
    for (token, value) in [("token-alpha", "alpha's"), ("token-beta", "beta's")] {
        for key in ["stores:1", "stores:2"] {
            let body = json!({ "key": key, "value": value, "ttl": 0, "timestamp": t, "node": "n" });
            assert_eq!(post(token, "/api/cache/set", body).await.0, 200);
        }
    }

    // Without a token: 401 JSON on all three.
    for (method, path) in [
        (reqwest::Method::POST, "/api/cache/invalidate"),
        (reqwest::Method::GET, "/api/cache/entries"),
        (reqwest::Method::GET, "/api/cache/stats"),
    ] {
        let answer = s.fetch(s.client.request(method, s.url(path)).json(&json!({ "patterns": ["*"] }))).await;
        assert_eq!(answer.status, 401, "{path}");
        assert_eq!(answer.json()["error"], "unauthorized");
    }

    let (status, answer) = post("token-beta", "/api/cache/invalidate", json!({ "patterns": ["stores:*"] })).await;
    assert_eq!((status, answer["invalidated"].clone()), (200, json!(2)));
    let alpha = get("token-alpha", "/api/cache/entries").await.json();
    assert_eq!(entry_keys(&alpha), ["stores:1", "stores:2"], "beta's invalidation leaves alpha's keys");
    assert_eq!(alpha["entries"][0]["value"], "alpha's");
    assert!(entry_keys(&get("token-beta", "/api/cache/entries").await.json()).is_empty());

    let alpha_stats = get("token-alpha", "/api/cache/stats").await.json();
    let beta_stats = get("token-beta", "/api/cache/stats").await.json();
    assert_eq!((alpha_stats["namespace"].clone(), alpha_stats["entries"].clone()), (json!("alpha"), json!(2)));
    assert_eq!(alpha_stats["tombstones"], 0);
    assert_eq!((beta_stats["entries"].clone(), beta_stats["tombstones"].clone()), (json!(0), json!(2)));
    assert_eq!((alpha_stats["keysInvalidated"].clone(), beta_stats["keysInvalidated"].clone()), (json!(0), json!(2)));
    assert_eq!(alpha_stats["requests"]["invalidate"], 0, "request counters are per namespace too");
    assert_eq!(beta_stats["requests"]["invalidate"], 1);
    assert_eq!(alpha_stats["requests"]["set"], 2);

    // A tag from one namespace is not current in another, even for the same query.
    let tag = get("token-alpha", "/api/cache/entries").await.header("etag").unwrap().to_owned();
    let cross = s
        .fetch(s.client.get(s.url("/api/cache/entries")).bearer_auth("token-beta").header("if-none-match", &tag))
        .await;
    assert_eq!(cross.status, 200);
}

#[tokio::test]
async fn stats_follow_what_happens() {
    let clock = TestClock::new(now_ms());
    let s = TestServer::start_with_clock(Config::for_tests(), clock.clone()).await;
    let t = clock_now(&clock);
    let stats = || async { s.get("/api/cache/stats").await };

    let empty = stats().await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.header("cache-control"), Some("no-store"));
    let empty = empty.json();
    assert_eq!(
        (empty["entries"].clone(), empty["tombstones"].clone(), empty["expired"].clone()),
        (json!(0), json!(0), json!(0))
    );
    assert_eq!((empty["namespace"].clone(), empty["store"].clone()), (json!("default"), json!("memory")));
    assert_eq!(empty["requests"]["stats"], 1, "this request counts");
    assert_eq!(empty["entriesAnswers"], json!({ "full": 0, "notModified": 0, "notModifiedRate": null }));

    s.set("a", json!(1), 0.0, t, "tab-a").await;
    s.set("b", json!(2), 10.0, t, "tab-a").await;
    s.set("c", json!(3), 0.0, t, "tab-a").await;
    s.remove("c", t + 1, "tab-a").await;
    let (status, _) = s.post_raw("/api/cache/set", "nope").await;
    assert_eq!(status, 400);
    let now = stats().await.json();
    assert_eq!(
        (now["entries"].clone(), now["tombstones"].clone(), now["expired"].clone()),
        (json!(2), json!(1), json!(0))
    );
    assert_eq!(now["nextExpiry"], t + 10_000);
    assert_eq!(now["censusCached"], false);
    assert_eq!((now["requests"]["set"].clone(), now["errors"]["set"].clone()), (json!(4), json!(1)));
    assert_eq!(now["requests"]["remove"], 1);
    assert_eq!(now["requests"]["stats"], 2);
    // Nothing changed: the census is reused, not scanned again.
    let again = stats().await.json();
    assert_eq!(again["censusCached"], true);
    assert_eq!(again["entries"], 2);

    // A value expiring moves it from entries to expired, without a write.
    clock.advance(10_000);
    let later = stats().await.json();
    assert_eq!(
        (later["entries"].clone(), later["expired"].clone(), later["censusCached"].clone()),
        (json!(1), json!(1), json!(false))
    );

    // Sync updates served, /entries answers and their rate, invalidated keys.
    s.sync(0, json!([])).await; // a, b (expired, still delivered), c
    s.sync(cursor(&s.sync(0, json!([])).await), json!([])).await; // nothing new
    let tag = s.get("/api/cache/entries").await.header("etag").unwrap().to_owned();
    for _ in 0..3 {
        let answer = s.fetch(s.client.get(s.url("/api/cache/entries")).header("if-none-match", &tag)).await;
        assert_eq!(answer.status, 304);
    }
    assert_eq!(s.invalidate(json!(["a"])).await, 1);
    let last = stats().await.json();
    assert_eq!(last["syncUpdatesServed"], 6);
    assert_eq!(last["requests"]["sync"], 3);
    assert_eq!(last["entriesAnswers"], json!({ "full": 1, "notModified": 3, "notModifiedRate": 0.75 }));
    assert_eq!(last["requests"]["entries"], 4);
    assert_eq!(last["keysInvalidated"], 1);
    assert_eq!((last["entries"].clone(), last["tombstones"].clone()), (json!(0), json!(2)));
    assert!(last["startedAt"].as_u64().unwrap() <= last["now"].as_u64().unwrap());
}

#[tokio::test]
async fn cors_lets_a_page_revalidate_entries() {
    let config = Config { cors_origins: vec!["http://shell.example:3000".into()], ..Config::for_tests() };
    let s = TestServer::start(config).await;
    s.set("stores:1", json!(1), 0.0, now_ms(), "tab-a").await;
    let preflight = s
        .client
        .request(reqwest::Method::OPTIONS, s.url("/api/cache/entries"))
        .header("origin", "http://shell.example:3000")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "if-none-match,authorization")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let allowed = preflight.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("if-none-match"), "{allowed}");

    let answer = s.fetch(s.client.get(s.url("/api/cache/entries")).header("origin", "http://shell.example:3000")).await;
    assert_eq!(answer.header("access-control-allow-origin"), Some("http://shell.example:3000"));
    let exposed = answer.header("access-control-expose-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(exposed.contains("etag"), "the page can read the ETag: {exposed:?}");
}
