//! The seed protocol and the merge rules, end to end.
use mfe_cache_server::Config;
use mfe_shared_cache_core::wire::SyncResponse;
use serde_json::{json, Value};

use crate::common::{by_key, cursor, keys, now_ms, TestServer};

#[tokio::test]
async fn every_endpoint_round_trips() {
    let s = TestServer::memory().await;
    let t = now_ms();

    let (status, health) = s.send(s.client.get(s.url("/healthz"))).await;
    assert_eq!((status, health), (200, json!({ "status": "ok", "store": "memory" })));

    let answer = s.set("user", json!({ "name": "John", "tags": [1, "x", null] }), 3600.0, t, "tab-1").await;
    assert_eq!(answer["success"], true);
    assert_eq!(answer["accepted"], true);
    let after_set = cursor(&answer);
    assert!(after_set > 0);

    let synced = s.sync(0, json!([])).await;
    assert_eq!(
        synced["updates"],
        json!([{ "key": "user", "value": { "name": "John", "tags": [1, "x", null] }, "ttl": 3600,
                 "timestamp": t, "deleted": false, "node": "tab-1" }])
    );
    assert_eq!(cursor(&synced), after_set);
    assert_eq!(synced["cursor"], synced["timestamp"]);
    // The answer is the seed's SyncResponse (extensions are extra fields).
    let seed: SyncResponse = serde_json::from_value(synced.clone()).unwrap();
    assert_eq!(seed.updates.len(), 1);

    let removed = s.remove("user", t + 1, "tab-1").await;
    assert_eq!((removed["success"].clone(), removed["accepted"].clone()), (json!(true), json!(true)));
    let synced = s.sync(after_set, json!([])).await;
    let update = &synced["updates"][0];
    assert_eq!(
        (update["key"].clone(), update["deleted"].clone(), update["timestamp"].clone()),
        (json!("user"), json!(true), json!(t + 1))
    );
    assert_eq!(update.get("value"), Some(&json!(null)), "a remove carries value null: every seed Change has all five fields");

    let (status, cleared) = s.post("/api/cache/clear", &json!({ "timestamp": t + 2, "node": "tab-1" })).await;
    assert_eq!(status, 200);
    assert_eq!((cleared["success"].clone(), cleared["accepted"].clone()), (json!(true), json!(true)));
    assert!(cursor(&cleared) > cursor(&removed));
    let synced = s.sync(cursor(&removed), json!([])).await;
    assert_eq!(synced["clear"], json!({ "timestamp": t + 2, "node": "tab-1" }));
    s.stop().await;
}

#[tokio::test]
async fn seed_shaped_requests_without_extensions_work() {
    let s = TestServer::memory().await;
    let t = now_ms();
    // Exactly the seed README's bodies: no `node`; `Date.now()` may arrive as a float.
    let (status, answer) = s
        .post_raw(
            "/api/cache/set",
            format!(r#"{{"key":"user","value":{{"name":"John"}},"ttl":3600,"timestamp":{t}.0}}"#),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let change = json!({ "key": "cart", "value": [1, 2], "ttl": 60, "timestamp": t, "deleted": false });
    let synced = s.sync(0, json!([change])).await;
    assert_eq!(keys(&synced), ["user"], "the request's own change is not echoed");
    assert_eq!(synced["updates"][0]["node"], "", "a seed writer has the empty node id");
    let (status, _) = s.post("/api/cache/remove", &json!({ "key": "cart", "timestamp": t + 1 })).await;
    assert_eq!(status, 200);
    let (status, _) = s.post("/api/cache/clear", &json!({ "timestamp": t - 10 })).await;
    assert_eq!(status, 200);
    // A text/plain body (a seed client skipping the CORS preflight) is read as JSON too.
    let request = s
        .client
        .post(s.url("/api/cache/sync"))
        .header("content-type", "text/plain")
        .body(r#"{"lastSync":0,"changes":[]}"#);
    let (status, all) = s.send(request).await;
    assert_eq!(status, 200);
    assert_eq!(by_key(&all)["cart"]["deleted"], true);
}

#[tokio::test]
async fn last_writer_wins_and_the_node_breaks_ties() {
    let s = TestServer::memory().await;
    let t = now_ms();
    assert_eq!(s.set("k", json!("a@t"), 0.0, t, "a").await["accepted"], true);
    assert_eq!(s.set("k", json!("b@t"), 0.0, t, "b").await["accepted"], true, "same time, higher node wins");
    assert_eq!(s.set("k", json!("a@t again"), 0.0, t, "a").await["accepted"], false);
    assert_eq!(s.set("k", json!("z@t-1"), 0.0, t - 1, "z").await["accepted"], false, "older loses whatever its node");
    let (_, seed) = s.post("/api/cache/set", &json!({ "key": "k", "value": "seed@t", "ttl": 0, "timestamp": t })).await;
    assert_eq!(seed["accepted"], false, "a seed peer (no node) loses ties");
    assert_eq!(s.set("k", json!("b@t"), 0.0, t, "b").await["accepted"], true, "a retried write is accepted again");
    let all = by_key(&s.sync(0, json!([])).await);
    assert_eq!((all["k"]["value"].clone(), all["k"]["node"].clone()), (json!("b@t"), json!("b")));
    assert_eq!(s.set("k", json!("a@t+1"), 0.0, t + 1, "a").await["accepted"], true);
}

#[tokio::test]
async fn an_older_set_after_a_remove_does_not_resurrect() {
    let s = TestServer::memory().await;
    let t = now_ms();
    s.set("k", json!(1), 0.0, t, "a").await;
    s.remove("k", t + 10, "b").await;
    assert_eq!(s.set("k", json!(2), 0.0, t + 5, "c").await["accepted"], false);
    let synced = s
        .sync(0, json!([{ "key": "k", "value": 3, "ttl": 0, "timestamp": t + 9, "deleted": false, "node": "d" }]))
        .await;
    let k = &by_key(&synced)["k"];
    assert_eq!((k["deleted"].clone(), k["timestamp"].clone()), (json!(true), json!(t + 10)));
    assert_eq!(synced["updates"].as_array().unwrap().len(), 1, "the tombstone once, not twice");
}

#[tokio::test]
async fn clear_epochs_refuse_older_writes_and_reach_seed_only_clients() {
    let s = TestServer::memory().await;
    let t = now_ms() - 60_000;
    s.set("before", json!(1), 0.0, t, "a").await;
    s.set("after", json!(2), 0.0, t + 20, "a").await;
    let seed_cursor = cursor(&s.sync(0, json!([])).await);

    let (status, cleared) = s.post("/api/cache/clear", &json!({ "timestamp": t + 10, "node": "c" })).await;
    assert_eq!((status, cleared["accepted"].clone()), (200, json!(true)));
    let (_, older) = s.post("/api/cache/clear", &json!({ "timestamp": t + 5, "node": "c" })).await;
    assert_eq!(older["accepted"], false, "an older clear loses to the epoch");

    // A seed-only client (which ignores `clear`) is told to drop the key as a tombstone.
    let synced = s.sync(seed_cursor, json!([])).await;
    let before = &by_key(&synced)["before"];
    assert_eq!(
        (before["deleted"].clone(), before["timestamp"].clone(), before["node"].clone()),
        (json!(true), json!(t + 10), json!("c"))
    );
    assert!(!by_key(&synced).contains_key("after"), "a write after the epoch stays");
    assert_eq!(synced["clear"], json!({ "timestamp": t + 10, "node": "c" }));
    let next = cursor(&synced);

    // Writes ordered before the epoch that arrive later are refused — not an error.
    assert_eq!(s.set("late", json!(3), 0.0, t + 9, "z").await["accepted"], false);
    let late = json!({ "key": "late2", "value": 4, "ttl": 0, "timestamp": t + 1, "deleted": false, "node": "z" });
    let synced = s.sync(next, json!([late])).await;
    let refusal = &by_key(&synced)["late2"];
    assert_eq!(
        (refusal["deleted"].clone(), refusal["timestamp"].clone()),
        (json!(true), json!(t + 10)),
        "the writer learns its write is gone"
    );
    assert!(synced.get("clear").is_none(), "the epoch is not repeated past it");
    let all = by_key(&s.sync(0, json!([])).await);
    assert!(!all.contains_key("late") && !all.contains_key("late2"));
    assert_eq!(all["after"]["value"], 2);
}

#[tokio::test]
async fn delta_is_by_receipt_and_never_repeats() {
    let s = TestServer::memory().await;
    let t = now_ms();
    s.set("a", json!(1), 0.0, t, "x").await;
    let c1 = cursor(&s.sync(0, json!([])).await);
    assert!(c1 > 1000);

    // Another client delivers a change made long ago (offline): its timestamp is far below c1.
    s.set("offline", json!("late"), 0.0, 1000, "old-tab").await;
    let synced = s.sync(c1, json!([])).await;
    assert_eq!(keys(&synced), ["offline"]);
    assert_eq!(synced["updates"][0]["timestamp"], 1000);
    let c2 = cursor(&synced);
    assert!(s.sync(c2, json!([])).await["updates"].as_array().unwrap().is_empty(), "nothing is repeated");

    // Rewritten twice since: delivered once, at its latest write.
    s.set("a", json!(2), 0.0, t + 1, "x").await;
    s.set("a", json!(3), 0.0, t + 2, "x").await;
    let synced = s.sync(c2, json!([])).await;
    assert_eq!(keys(&synced), ["a"]);
    assert_eq!(synced["updates"][0]["value"], 3);
}

#[tokio::test]
async fn own_winning_changes_are_not_echoed_but_concurrent_ones_and_winners_are() {
    let s = TestServer::memory().await;
    let t = now_ms();
    let c0 = cursor(&s.sync(0, json!([])).await);
    s.set("theirs", json!("other tab"), 0.0, t, "b").await;
    s.set("contested", json!("newer"), 0.0, t + 50, "b").await;
    let mine = json!([
        { "key": "mine", "value": 1, "ttl": 0, "timestamp": t + 1, "deleted": false, "node": "a" },
        { "key": "contested", "value": "older", "ttl": 0, "timestamp": t + 10, "deleted": false, "node": "a" },
    ]);
    let synced = s.sync(c0, mine).await;
    let got = by_key(&synced);
    assert!(!got.contains_key("mine"), "the client's own accepted change is not sent back");
    assert_eq!(got["theirs"]["value"], "other tab");
    assert_eq!(got["contested"]["value"], "newer", "a lost change learns what won");
    assert_eq!(got.len(), 2);
    assert!(s.sync(cursor(&synced), json!([])).await["updates"].as_array().unwrap().is_empty());
    // Another client sees the change that was not echoed.
    assert_eq!(by_key(&s.sync(c0, json!([])).await)["mine"]["value"], 1);
}

#[tokio::test]
async fn a_last_sync_past_the_cursor_means_full_resync() {
    let s = TestServer::memory().await;
    let t = now_ms();
    s.set("a", json!(1), 0.0, t, "x").await;
    s.set("b", json!(2), 0.0, t, "x").await;
    let c = cursor(&s.sync(0, json!([])).await);
    // A cursor from data this server no longer has (a wipe, a restore): everything comes back.
    let synced = s.sync(c + 10_000_000, json!([])).await;
    assert_eq!(keys(&synced), ["a", "b"]);
    assert_eq!(cursor(&synced), c);
    // Also when the same request writes (its writes move the cursor past the stale one).
    let far = c + 1;
    let change = json!([{ "key": "c", "value": 3, "ttl": 0, "timestamp": t, "deleted": false, "node": "x" }]);
    let synced = s.sync(far, change).await;
    assert_eq!(keys(&synced), ["a", "b"]);
}

#[tokio::test]
async fn ttl_and_timestamp_round_trip_unchanged() {
    let s = TestServer::memory().await;
    let t = now_ms();
    s.set("short", json!("s"), 1.5, t, "x").await;
    s.set("forever", json!("f"), 0.0, t, "x").await;
    s.set("hour", json!("h"), 3600.0, t, "x").await;
    // Long expired: still delivered, with its own stamp and ttl, so every client agrees it expired.
    s.set("expired", json!("e"), 1.0, t - 3_600_000, "x").await;
    let all = by_key(&s.sync(0, json!([])).await);
    let ttl = |k: &str| all[k]["ttl"].as_f64().unwrap();
    assert_eq!((ttl("short"), ttl("forever"), ttl("hour"), ttl("expired")), (1.5, 0.0, 3600.0, 1.0));
    assert_eq!(all["expired"]["timestamp"], json!(t - 3_600_000));
    assert_eq!(all["short"]["timestamp"], json!(t));
}

#[tokio::test]
async fn large_deltas_come_in_pages() {
    let s = TestServer::start(Config { max_updates: 3, ..Config::for_tests() }).await;
    let t = now_ms();
    for i in 0..8 {
        s.set(&format!("k{i}"), json!(i), 0.0, t, "x").await;
    }
    let mut last = 0;
    let mut seen = Vec::new();
    loop {
        let page = s.sync(last, json!([])).await;
        seen.extend(keys(&page));
        last = cursor(&page);
        if page.get("more") != Some(&Value::Bool(true)) {
            break;
        }
    }
    assert_eq!(seen, (0..8).map(|i| format!("k{i}")).collect::<Vec<_>>());
}
