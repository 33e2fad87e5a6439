//! Bad input: the exact status and `error` code, the server stays up, nothing stored is touched.
use mfe_cache_server::Config;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{keys, now_ms, TestServer};
use crate::raw::connect;

#[tokio::test]
async fn bad_bodies_get_their_status_and_code_and_change_nothing() {
    let s = TestServer::memory().await;
    let t = now_ms();
    s.set("kept", json!("original"), 0.0, t, "a").await;
    let before = s.state().await;

    let long_key = "k".repeat(1025);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/api/cache/set", "this is not json".into(), 400, "invalid_json"),
        ("/api/cache/set", "".into(), 400, "invalid_json"),
        ("/api/cache/set", "{\"key\":".into(), 400, "invalid_json"),
        ("/api/cache/set", "[1,2]".into(), 400, "invalid_request"),
        ("/api/cache/set", format!(r#"{{"value":1,"ttl":0,"timestamp":{t}}}"#), 400, "invalid_key"),
        ("/api/cache/set", format!(r#"{{"key":"","value":1,"ttl":0,"timestamp":{t}}}"#), 400, "invalid_key"),
        ("/api/cache/set", format!(r#"{{"key":42,"value":1,"ttl":0,"timestamp":{t}}}"#), 400, "invalid_key"),
        ("/api/cache/set", format!(r#"{{"key":"{long_key}","value":1,"ttl":0,"timestamp":{t}}}"#), 400, "invalid_key"),
        ("/api/cache/set", format!(r#"{{"key":"a\u0000b","value":1,"ttl":0,"timestamp":{t}}}"#), 400, "invalid_key"),
        ("/api/cache/set", format!(r#"{{"key":"kept","ttl":0,"timestamp":{t}}}"#), 400, "invalid_value"),
        ("/api/cache/set", format!(r#"{{"key":"kept","value":1,"ttl":-1,"timestamp":{t}}}"#), 400, "invalid_ttl"),
        ("/api/cache/set", format!(r#"{{"key":"kept","value":1,"ttl":null,"timestamp":{t}}}"#), 400, "invalid_ttl"),
        ("/api/cache/set", format!(r#"{{"key":"kept","value":1,"ttl":"60","timestamp":{t}}}"#), 400, "invalid_ttl"),
        ("/api/cache/set", format!(r#"{{"key":"kept","value":1,"ttl":1e300,"timestamp":{t}}}"#), 400, "invalid_ttl"),
        ("/api/cache/set", r#"{"key":"kept","value":1,"ttl":0}"#.into(), 400, "invalid_timestamp"),
        ("/api/cache/set", r#"{"key":"kept","value":1,"ttl":0,"timestamp":"now"}"#.into(), 400, "invalid_timestamp"),
        ("/api/cache/set", r#"{"key":"kept","value":1,"ttl":0,"timestamp":-5}"#.into(), 400, "invalid_timestamp"),
        ("/api/cache/set", r#"{"key":"kept","value":1,"ttl":0,"timestamp":1.5}"#.into(), 400, "invalid_timestamp"),
        (
            "/api/cache/set",
            format!(r#"{{"key":"kept","value":1,"ttl":0,"timestamp":{}}}"#, (1u64 << 53) + 2),
            400,
            "invalid_timestamp",
        ),
        // A lone surrogate has no UTF-8 form: two such keys would be one.
        ("/api/cache/set", format!(r#"{{"key":"x\ud800","value":1,"ttl":0,"timestamp":{t}}}"#), 400, "invalid_key"),
        ("/api/cache/remove", format!(r#"{{"key":"x\udbff","timestamp":{t}}}"#), 400, "invalid_key"),
        (
            "/api/cache/set",
            format!(r#"{{"key":"kept","value":1,"ttl":0,"timestamp":{t},"node":"has space"}}"#),
            400,
            "invalid_node",
        ),
        (
            "/api/cache/set",
            format!(r#"{{"key":"kept","value":1,"ttl":0,"timestamp":{t},"node":7}}"#),
            400,
            "invalid_node",
        ),
        ("/api/cache/remove", format!(r#"{{"timestamp":{t}}}"#), 400, "invalid_key"),
        ("/api/cache/remove", r#"{"key":"kept"}"#.into(), 400, "invalid_timestamp"),
        ("/api/cache/clear", "{}".into(), 400, "invalid_timestamp"),
        ("/api/cache/clear", r#"{"timestamp":1e300}"#.into(), 400, "invalid_timestamp"),
        ("/api/cache/clear", format!(r#"{{"timestamp":{t},"node":"bad\"node"}}"#), 400, "invalid_node"),
        ("/api/cache/sync", "nope".into(), 400, "invalid_json"),
        ("/api/cache/sync", r#"{"lastSync":"yesterday","changes":[]}"#.into(), 400, "invalid_request"),
        ("/api/cache/sync", r#"{"lastSync":0,"changes":"all"}"#.into(), 400, "invalid_request"),
        ("/api/cache/sync", r#"{"lastSync":0,"changes":[5]}"#.into(), 400, "invalid_request"),
        // One invalid change rejects the whole batch (the valid one before it is not stored).
        (
            "/api/cache/sync",
            format!(
                r#"{{"lastSync":0,"changes":[{{"key":"new","value":1,"ttl":0,"timestamp":{t},"deleted":false}},
                   {{"key":"","value":2,"ttl":0,"timestamp":{t},"deleted":false}}]}}"#
            ),
            400,
            "invalid_key",
        ),
        (
            "/api/cache/sync",
            format!(
                r#"{{"lastSync":0,"changes":[{{"key":"new","value":1,"ttl":0,"timestamp":{t},"deleted":false}},
                   {{"key":"kept","value":2,"ttl":-3,"timestamp":{t},"deleted":false}}]}}"#
            ),
            400,
            "invalid_ttl",
        ),
        (
            "/api/cache/sync",
            format!(
                r#"{{"lastSync":0,"changes":[{{"key":"new","value":1,"ttl":0,"timestamp":{t},"deleted":false}},
                   {{"key":"x\udc00","value":2,"ttl":0,"timestamp":{t},"deleted":false}}]}}"#
            ),
            400,
            "invalid_key",
        ),
        // Hostile nesting is refused (clients would refuse to read it), not a stack overflow.
        (
            "/api/cache/set",
            format!(
                r#"{{"key":"deep","value":{}{},"ttl":0,"timestamp":{t}}}"#,
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            400,
            "invalid_value",
        ),
        (
            "/api/cache/set",
            format!(
                r#"{{"key":"deep","value":{}1{},"ttl":0,"timestamp":{t}}}"#,
                "{\"a\":".repeat(600),
                "}".repeat(600)
            ),
            400,
            "invalid_value",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got_status, answer) = s.post_raw(path, body.clone()).await;
        let shown = &body[..body.len().min(120)];
        assert_eq!(got_status, status, "{path} {shown}: {answer}");
        assert_eq!(answer["error"], code, "{path} {shown}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
    }

    let (status, health) = s.send(s.client.get(s.url("/healthz"))).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")), "the server stays up");
    assert_eq!(s.state().await, before, "nothing stored was touched");
}

#[tokio::test]
async fn oversized_bodies_and_batches_are_413() {
    let s = TestServer::start(Config { max_body: 4096, max_batch: 3, ..Config::for_tests() }).await;
    let t = now_ms();
    let big = format!(r#"{{"key":"k","value":"{}","ttl":0,"timestamp":{t}}}"#, "x".repeat(5000));
    let (status, answer) = s.post_raw("/api/cache/set", big).await;
    assert_eq!((status, answer["error"].as_str()), (413, Some("payload_too_large")), "{answer}");

    let change = |i: u64| json!({ "key": format!("k{i}"), "value": i, "ttl": 0, "timestamp": t, "deleted": false });
    let (status, answer) = s
        .post("/api/cache/sync", &json!({ "lastSync": 0, "changes": [change(1), change(2), change(3), change(4)] }))
        .await;
    assert_eq!((status, answer["error"].as_str()), (413, Some("batch_too_large")), "{answer}");
    let synced = s.sync(0, json!([change(1), change(2), change(3)])).await;
    assert!(keys(&synced).is_empty(), "a batch at the limit is fine");
    assert_eq!(keys(&s.sync(1, json!([])).await).len(), 3);
}

#[tokio::test]
async fn oversized_chunked_bodies_are_413_too() {
    // No Content-Length: the limit is only found while reading the stream.
    let s = TestServer::start(Config { max_body: 4096, ..Config::for_tests() }).await;
    let mut stream = connect(&s.base).await;
    let head = "POST /api/cache/set HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    // Far more than the limit and than the sockets' buffers: the server answers long before the
    // client is done sending, and must let it finish rather than reset the connection under it.
    let chunk = "x".repeat(64 * 1024);
    for _ in 0..128 {
        let frame = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        stream.write_all(frame.as_bytes()).await.expect("the whole body can be sent");
    }
    stream.write_all(b"0\r\n\r\n").await.expect("the whole body can be sent");
    assert_payload_too_large(&mut stream).await;
}

/// Reads to the end what the server answers on `stream`: a whole `413 payload_too_large`, not a
/// reset connection.
async fn assert_payload_too_large(stream: &mut tokio::net::TcpStream) {
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("the answer is read, not reset");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""error":"payload_too_large""#), "{answer}");
}

#[tokio::test]
async fn a_client_still_sending_a_refused_body_reads_the_answer() {
    // The 413 for a declared length comes before any of the body is read; a client (or a proxy)
    // that sends the whole body before reading must get it, not a reset connection.
    let s = TestServer::start(Config { max_body: 4096, ..Config::for_tests() }).await;
    let mut stream = connect(&s.base).await;
    let body = vec![b'x'; 8 << 20];
    let head = format!(
        "POST /api/cache/sync HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.expect("the whole body can be sent");
    stream.shutdown().await.expect("the client half-closes");
    assert_payload_too_large(&mut stream).await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let s = TestServer::memory().await;
    for path in ["/api/nope", "/api/cache/get", "/api", "/api/cache/sync/extra"] {
        let (status, answer) = s.post(path, &json!({})).await;
        assert_eq!((status, answer["error"].as_str()), (404, Some("not_found")), "{path}");
    }
    let (status, answer) = s.send(s.client.get(s.url("/api/cache/sync"))).await;
    assert_eq!((status, answer["error"].as_str()), (405, Some("method_not_allowed")));
    let (status, answer) = s.send(s.client.get(s.url("/elsewhere"))).await;
    assert_eq!((status, answer["error"].as_str()), (404, Some("not_found")), "no static dir: JSON 404 too");
}

/// serde reads a struct from a JSON array too (fields in order), so `[]` was an empty sync and
/// `["k", 1, 0, t]` a set: every endpoint that takes a body wants an object, and writes nothing.
#[tokio::test]
async fn bodies_that_are_not_objects_are_refused_on_every_endpoint() {
    let s = TestServer::memory().await;
    let t = now_ms();
    let shapes =
        |fields: String| vec![fields, "[]".into(), "null".into(), "true".into(), "7".into(), r#""text""#.into()];
    let cases = [
        ("/api/cache/sync", shapes(format!(r#"[0, [{{"key":"s","value":1,"ttl":0,"timestamp":{t}}}]]"#))),
        ("/api/cache/set", shapes(format!(r#"["k", 1, 0, {t}, "n"]"#))),
        ("/api/cache/remove", shapes(format!(r#"["k", {t}]"#))),
        ("/api/cache/clear", shapes(format!("[{t}]"))),
        ("/api/cache/invalidate", shapes(r#"[["*"]]"#.into())),
    ];
    for (path, bodies) in cases {
        for body in bodies {
            let (status, answer) = s.post_raw(path, format!("  \n{body}")).await;
            assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_request")), "{path} {body}: {answer}");
            assert_eq!(answer["message"], "the body must be a JSON object", "{path} {body}");
        }
    }
    // A change inside a sync is an object too.
    let body = format!(r#"{{"lastSync":0,"changes":[["c", 1, 0, {t}, false]]}}"#);
    let (status, answer) = s.post_raw("/api/cache/sync", body).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_request")), "{answer}");
    assert_eq!(answer["message"], "changes[0]: a change must be an object", "{answer}");
    assert!(keys(&s.sync(0, json!([])).await).is_empty(), "nothing was written");
}
