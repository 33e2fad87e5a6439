//! Writes a browser sends on behalf of another site are refused; the server's own pages, the
//! `--cors-origin` list and non-browser clients keep writing.
use mfe_cache_server::Config;
use serde_json::{json, Value};

use crate::common::{by_key, now_ms, TestServer};

/// Every state-changing endpoint with a body that would change something.
fn writes(t: u64) -> Vec<(&'static str, Value)> {
    vec![
        (
            "/api/cache/sync",
            json!({ "lastSync": 0, "changes": [
            { "key": "evil", "value": 1, "ttl": 0, "timestamp": t, "deleted": false, "node": "evil" },
        ] }),
        ),
        ("/api/cache/set", json!({ "key": "evil", "value": 1, "ttl": 0, "timestamp": t, "node": "evil" })),
        ("/api/cache/remove", json!({ "key": "kept", "timestamp": t, "node": "evil" })),
        // Stamped an hour ahead: accepted, it would refuse every legitimate write for that hour.
        ("/api/cache/clear", json!({ "timestamp": t + 3_600_000, "node": "evil" })),
        ("/api/cache/invalidate", json!({ "patterns": ["*"] })),
    ]
}

/// A `text/plain` POST, which a page may send to any site without a CORS preflight.
async fn post_plain(s: &TestServer, path: &str, body: &Value, headers: &[(&str, &str)]) -> crate::common::Answer {
    let mut request =
        s.client.post(s.url(path)).header("content-type", "text/plain;charset=UTF-8").body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    s.fetch(request).await
}

#[tokio::test]
async fn cross_site_writes_are_refused_and_change_nothing() {
    let s =
        TestServer::start(Config { cors_origins: vec!["https://shell.example".into()], ..Config::for_tests() }).await;
    let t = now_ms();
    s.set("kept", json!("mine"), 0.0, t - 1000, "me").await;
    let cross_site: [&[(&str, &str)]; 4] = [
        &[("origin", "https://evil.example")],
        &[("origin", "null")],
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")],
    ];
    for headers in cross_site {
        for (path, body) in writes(t) {
            let answer = post_plain(&s, path, &body, headers).await;
            assert_eq!(answer.status, 403, "{path} {headers:?}: {}", answer.text);
            assert_eq!(answer.json()["error"], "forbidden_origin", "{path} {headers:?}");
            assert!(answer.json()["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert!(answer.header("access-control-allow-origin").is_none(), "no CORS grant for a refused origin");
        }
    }
    // Nothing was written: the one value is there, unchanged, and no clear happened.
    let all = s.sync(0, json!([])).await;
    assert_eq!(all["updates"].as_array().unwrap().len(), 1, "{all}");
    assert_eq!(by_key(&all)["kept"]["value"], "mine");
    assert_eq!(by_key(&all)["kept"]["deleted"], false);
    assert!(all.get("clear").is_none(), "{all}");
}

#[tokio::test]
async fn same_origin_listed_origins_and_non_browser_clients_may_write() {
    let s =
        TestServer::start(Config { cors_origins: vec!["https://shell.example".into()], ..Config::for_tests() }).await;
    let own = s.base.clone();
    let t = now_ms();
    let allowed: [(&str, Vec<(&str, &str)>); 5] = [
        ("own-origin", vec![("origin", own.as_str())]),
        ("own-origin-fetch", vec![("origin", own.as_str()), ("sec-fetch-site", "same-origin")]),
        ("listed", vec![("origin", "https://shell.example")]),
        ("listed-fetch", vec![("origin", "https://shell.example"), ("sec-fetch-site", "cross-site")]),
        ("no-browser", vec![]),
    ];
    for (i, (name, headers)) in allowed.iter().enumerate() {
        let body = json!({ "key": name, "value": i, "ttl": 0, "timestamp": t, "node": "n" });
        let answer = post_plain(&s, "/api/cache/set", &body, headers).await;
        assert_eq!(answer.status, 200, "{name}: {}", answer.text);
        assert_eq!(answer.json()["accepted"], true, "{name}");
    }
    // The listed origin still gets its CORS grant on the answer.
    let answer = post_plain(
        &s,
        "/api/cache/sync",
        &json!({ "lastSync": 0, "changes": [] }),
        &[("origin", "https://shell.example")],
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-origin"), Some("https://shell.example"));
    let all = by_key(&s.sync(0, json!([])).await);
    for (i, (name, _)) in allowed.iter().enumerate() {
        assert_eq!(all[*name]["value"], i, "{name}");
    }
}

#[tokio::test]
async fn reads_from_other_sites_are_not_refused() {
    let s = TestServer::memory().await;
    let answer = s.fetch(s.client.get(s.url("/api/cache/entries")).header("origin", "https://evil.example")).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}
