//! An HTTP/1.1 event stream is served outside hyper; every other way of asking for one (HTTP/1.0,
//! HTTP/2, a request pipelined behind it) is left to hyper. Each gets the same events.
use std::time::Duration;

use http_body_util::BodyExt;
use mfe_cache_server::Config;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{now_ms, TestServer};
use crate::raw::{closed_within, connect};
use crate::sse::SseStream;

const DEADLINE: Duration = Duration::from_secs(10);

/// Reads from `stream` until what it sent contains `needle`; returns it all.
async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let read = async {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&data).contains(needle) {
            let n = stream.read(&mut buf).await.expect("reads");
            assert!(n > 0, "closed before {needle:?}: {:?}", String::from_utf8_lossy(&data));
            data.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&data).into_owned()
    };
    tokio::time::timeout(DEADLINE, read).await.unwrap_or_else(|_| panic!("no {needle:?} within {DEADLINE:?}"))
}

/// Reads an HTTP/2 answer's body until what it sent contains `needle`.
async fn read_h2_until(body: &mut hyper::body::Incoming, needle: &str) {
    let read = async {
        let mut text = String::new();
        while !text.contains(needle) {
            let frame = body.frame().await.expect("a frame").expect("no error");
            if let Ok(data) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
    };
    tokio::time::timeout(DEADLINE, read).await.unwrap_or_else(|_| panic!("no {needle:?} over HTTP/2 within {DEADLINE:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_of_asking_for_a_stream_gets_its_events() {
    let s = TestServer::memory().await;
    // HTTP/1.1, the head arriving a few bytes at a time.
    let mut trickled = connect(&s.base).await;
    for piece in b"GET /api/cache/events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n".chunks(7) {
        trickled.write_all(piece).await.unwrap();
        trickled.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // HTTP/1.0 (no chunked encoding: hyper streams it and closes at the end).
    let mut old = connect(&s.base).await;
    old.write_all(b"GET /api/cache/events HTTP/1.0\r\nHost: test\r\n\r\n").await.unwrap();
    // A request pipelined behind the stream's: hyper's.
    let mut pipelined = connect(&s.base).await;
    pipelined.write_all(b"GET /api/cache/events HTTP/1.1\r\nHost: test\r\n\r\nGET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    // HTTP/2 with prior knowledge.
    let io = hyper_util::rt::TokioIo::new(connect(&s.base).await);
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let request = hyper::Request::get(s.url("/api/cache/events")).body(String::new()).unwrap();
    let response = send.send_request(request).await.expect("an HTTP/2 answer");
    assert_eq!((response.status().as_u16(), response.version()), (200, hyper::Version::HTTP_2));
    let mut h2 = response.into_body();

    let head = read_until(&mut trickled, "event: ready").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("content-type: text/event-stream") && lower.contains("transfer-encoding: chunked"), "{head}");
    assert!(read_until(&mut old, "event: ready").await.starts_with("HTTP/1.0 200"));
    assert!(read_until(&mut pipelined, "event: ready").await.starts_with("HTTP/1.1 200"));
    read_h2_until(&mut h2, "event: ready").await;

    s.set("pushed", json!("to all"), 0.0, now_ms(), "w").await;
    for stream in [&mut trickled, &mut old, &mut pipelined] {
        read_until(stream, "\"key\":\"pushed\"").await;
    }
    read_h2_until(&mut h2, "\"key\":\"pushed\"").await;
    s.stop().await;
}

#[tokio::test]
async fn a_stalled_event_stream_head_is_cut_by_the_header_timeout() {
    let s = TestServer::start(Config { header_timeout_ms: 300, ..Config::for_tests() }).await;
    let mut stalled = connect(&s.base).await;
    stalled.write_all(b"GET /api/cache/events HTTP/1.1\r\nHost: test\r\n").await.unwrap();
    let sent = closed_within(&mut stalled, DEADLINE).await;
    assert!(sent.is_empty(), "closed without an answer, got {:?}", String::from_utf8_lossy(&sent));
    assert_eq!(s.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn an_error_answer_on_the_fast_path_is_whole_and_closes_the_connection() {
    let s = TestServer::memory().await;
    let mut stream = connect(&s.base).await;
    stream.write_all(b"GET /api/cache/events?cursor=-1 HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    let sent = String::from_utf8_lossy(&closed_within(&mut stream, DEADLINE).await).into_owned();
    let (head, body) = sent.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains(&format!("content-length: {}", body.len())), "{head}");
    assert!(lower.contains("connection: close"), "{head}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(body).unwrap()["error"], "invalid_cursor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_and_gives_its_place_back() {
    let s = TestServer::start(Config {
        max_streams: Some(1),
        header_timeout_ms: 200,
        idle_timeout_ms: 1000,
        ..Config::for_tests()
    })
    .await;
    // A client that reads nothing, with a small receive buffer: the events below fill it and
    // the server's send buffer, and the server's writes block.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(crate::raw::addr(&s.base).parse().unwrap()).await.unwrap();
    stalled.write_all(b"GET /api/cache/events HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    let head = read_until(&mut stalled, "event: ready").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let url = s.url("/api/cache/events");
    SseStream::wait_for_status(&s.client, &url, 503, DEADLINE, "the stalled client holds the only stream").await;
    // About 12 MB of events, more than the sockets' buffers hold.
    let t = now_ms();
    let value = "x".repeat(400 << 10);
    for i in 0..30u64 {
        s.set(&format!("k{i}"), json!(value), 0.0, t + i, "writer").await;
    }
    // Its place is given back once its writes have been blocked for the idle timeout.
    SseStream::wait_for_status(&s.client, &url, 200, DEADLINE, "a stream opens again once the stalled one is closed").await;
    // And its connection was closed: what it had been sent ends.
    let got = closed_within(&mut stalled, DEADLINE).await;
    assert!(got.len() < 30 * (400 << 10), "it was closed before it got every event ({} bytes)", got.len());
}
