//! Connection timeouts over real TCP: slow-loris and silent clients, idle keep-alive connections,
//! stalled bodies, and event streams that must outlive the idle timeout.
use std::time::Duration;

use mfe_cache_server::Config;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use crate::common::{now_ms, TestServer};
use crate::raw::{closed_within, connect, read_answer, send_get};

/// Far past every timeout these tests configure: the bound on waiting for what must happen.
const DEADLINE: Duration = Duration::from_secs(10);

fn config(header_ms: u64, body_ms: u64, idle_ms: u64) -> Config {
    Config { header_timeout_ms: header_ms, body_timeout_ms: body_ms, idle_timeout_ms: idle_ms, ..Config::for_tests() }
}

#[tokio::test]
async fn a_slow_loris_client_is_disconnected_after_the_header_timeout() {
    let s = TestServer::start(config(300, 60_000, 60_000)).await;
    // Part of the headers, then nothing more.
    let mut partial = connect(&s.base).await;
    partial.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ").await.unwrap();
    // Nothing at all (hyper's own timer never starts for these: it waits for the first bytes).
    let mut silent = connect(&s.base).await;
    // The start of the HTTP/2 preface, which leaves hyper waiting to tell HTTP/1 from HTTP/2.
    let mut sniffed = connect(&s.base).await;
    sniffed.write_all(b"PR").await.unwrap();

    for (what, stream) in [("partial headers", &mut partial), ("silent", &mut silent), ("PR", &mut sniffed)] {
        let sent = closed_within(stream, DEADLINE).await;
        assert!(sent.is_empty(), "{what}: closed without an answer, got {:?}", String::from_utf8_lossy(&sent));
    }
    // The server itself is fine.
    assert_eq!(s.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let s = TestServer::start(config(10_000, 10_000, 300)).await;
    let mut stream = connect(&s.base).await;
    send_get(&mut stream, "/healthz").await;
    assert_eq!(read_answer(&mut stream, DEADLINE).await.status, 200);
    let after = closed_within(&mut stream, DEADLINE).await;
    assert!(after.is_empty(), "{:?}", String::from_utf8_lossy(&after));
}

#[tokio::test]
async fn between_requests_the_idle_timeout_applies_and_the_header_timeout_only_once_a_request_starts() {
    // The header timeout is far shorter than the idle one.
    let s = TestServer::start(config(200, 10_000, 30_000)).await;
    let mut stream = connect(&s.base).await;
    send_get(&mut stream, "/healthz").await;
    assert_eq!(read_answer(&mut stream, DEADLINE).await.status, 200);
    // Idle for longer than the header timeout: the connection still serves the next request.
    tokio::time::sleep(Duration::from_millis(600)).await;
    send_get(&mut stream, "/healthz").await;
    assert_eq!(read_answer(&mut stream, DEADLINE).await.status, 200);
    // A next request that starts and stalls is cut by the header timeout, well before the idle one.
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
    let after = closed_within(&mut stream, DEADLINE).await;
    assert!(after.is_empty(), "{:?}", String::from_utf8_lossy(&after));
}

#[tokio::test]
async fn http2_is_served_and_an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    let s = TestServer::start(config(10_000, 10_000, 300)).await;
    let io = hyper_util::rt::TokioIo::new(connect(&s.base).await);
    let (mut send, conn) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
        .await
        .expect("HTTP/2 handshake");
    let conn = tokio::spawn(conn);
    let request = hyper::Request::get(s.url("/healthz")).body(String::new()).unwrap();
    let response = send.send_request(request).await.expect("an HTTP/2 answer");
    assert_eq!((response.status().as_u16(), response.version()), (200, hyper::Version::HTTP_2));
    drop(response);
    // The server ends the idle connection (GOAWAY, then close), which ends the client's side.
    let ended = tokio::time::timeout(DEADLINE, conn).await.expect("the idle HTTP/2 connection is closed");
    ended.expect("the connection task").expect("a clean close");
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_nothing_is_written() {
    let s = TestServer::start(config(10_000, 300, 60_000)).await;
    let body = format!(r#"{{"key":"stalled","value":1,"ttl":0,"timestamp":{}}}"#, now_ms());
    let mut stream = connect(&s.base).await;
    let head = format!(
        "POST /api/cache/set HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..body.len() / 2]).await.unwrap();

    let answer = read_answer(&mut stream, DEADLINE).await;
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.json()["error"], "timeout");
    assert_eq!(answer.header("connection"), Some("close"));
    closed_within(&mut stream, DEADLINE).await;

    let all = s.sync(0, serde_json::json!([])).await;
    assert_eq!(all["updates"], serde_json::json!([]), "the half-sent write was not applied");
}

#[tokio::test]
async fn an_event_stream_with_heartbeats_outlives_the_idle_timeout() {
    let idle = Duration::from_millis(300);
    let s = TestServer::start(Config { heartbeat_ms: 100, ..config(300, 10_000, 300) }).await;
    let mut response = s.client.get(s.url("/api/cache/events")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // Heartbeats (comment lines) that arrive long after the idle timeout has passed (and after the
    // grace a connection gets to finish once found idle): the stream is still open and sending.
    let idle_passed = Instant::now() + idle * 4;
    let mut late_heartbeats = 0;
    let read = async {
        while late_heartbeats < 3 {
            let chunk = response.chunk().await.expect("the stream reads").expect("the stream is still open");
            if Instant::now() > idle_passed {
                late_heartbeats += std::str::from_utf8(&chunk).unwrap().lines().filter(|l| l.starts_with(':')).count();
            }
        }
    };
    tokio::time::timeout(DEADLINE, read).await.expect("heartbeats keep coming after the idle timeout");
}
