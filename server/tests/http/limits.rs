//! Connection and event-stream limits over real TCP, and the server binary under a descriptor
//! limit lower than the number of connections thrown at it.
use std::time::Duration;

use mfe_cache_server::Config;
use tokio::net::TcpStream;

use crate::binary::start_with_descriptors;
use crate::common::TestServer;
use crate::raw::{connect, read_answer, send_get, RawAnswer};
use crate::sse::SseStream;

const DEADLINE: Duration = Duration::from_secs(10);

fn assert_overloaded(answer: &RawAnswer) {
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.json()["error"], "overloaded");
    assert!(answer.json()["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(answer.header("retry-after").is_some_and(|v| v.parse::<u64>().is_ok()), "{answer:?}");
    assert!(answer.header("content-type").is_some_and(|v| v.starts_with("application/json")));
}

/// Retries `GET /healthz` on fresh connections until one is answered 200.
async fn healthy_again(base: &str) {
    let retry = async {
        loop {
            let mut stream = connect(base).await;
            send_get(&mut stream, "/healthz").await;
            if read_answer(&mut stream, DEADLINE).await.status == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(DEADLINE, retry).await.expect("new connections are served again");
}

#[tokio::test]
async fn past_max_connections_a_new_connection_gets_a_503_at_once() {
    let s = TestServer::start(Config { max_connections: Some(3), ..Config::for_tests() }).await;
    // Three keep-alive connections, each known to be served: they hold the three places.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(&s.base).await;
        send_get(&mut stream, "/healthz").await;
        assert_eq!(read_answer(&mut stream, DEADLINE).await.status, 200);
        held.push(stream);
    }
    let mut fourth = connect(&s.base).await;
    send_get(&mut fourth, "/healthz").await;
    let answer = read_answer(&mut fourth, DEADLINE).await;
    assert_overloaded(&answer);
    assert_eq!(answer.header("connection"), Some("close"));

    // The held connections are still served.
    send_get(&mut held[0], "/healthz").await;
    assert_eq!(read_answer(&mut held[0], DEADLINE).await.status, 200);
    // Once they close, new connections are served again.
    drop(held);
    healthy_again(&s.base).await;
}

#[tokio::test]
async fn past_max_streams_a_new_event_stream_gets_a_503_with_retry_after() {
    let s = TestServer::start(Config { max_streams: Some(2), ..Config::for_tests() }).await;
    let url = s.url("/api/cache/events");
    let mut first = SseStream::open(&s.client, &url, None, None).await;
    let mut second = SseStream::open(&s.client, &url, None, None).await;
    first.until("ready", DEADLINE).await;
    second.until("ready", DEADLINE).await;

    // (Its status is checked before anything is read: a stream's body never ends.)
    let third = SseStream::request(&s.client, &url, None, None).await;
    assert_eq!(third.status(), 503);
    let retry_after =
        third.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    assert!(retry_after.is_some(), "{:?}", third.headers());
    let body: serde_json::Value = third.json().await.expect("a JSON answer");
    assert_eq!(body["error"], "overloaded");
    // Other requests are not affected.
    assert_eq!(s.get("/api/cache/stats").await.status, 200);

    // A stream that ends gives its place back.
    drop(first);
    SseStream::wait_for_status(&s.client, &url, 200, DEADLINE, "a stream opens again once one has ended").await;
}

#[tokio::test]
async fn with_more_idle_connections_than_descriptors_a_fresh_request_is_still_answered() {
    const DESCRIPTORS: u32 = 256;
    let server = start_with_descriptors(DESCRIPTORS, &["--memory"]).listening();
    let addr = server.addr();
    // Idle connections that never send anything, more than the server has descriptors.
    let mut idle = Vec::new();
    for _ in 0..DESCRIPTORS + 64 {
        idle.push(TcpStream::connect(&addr).await.expect("connects"));
    }
    let client = reqwest::Client::builder().timeout(DEADLINE).build().unwrap();
    let response = client.get(format!("{}/healthz", server.base)).send().await.expect("answered before the deadline");
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.expect("a JSON answer");
    match status {
        200 => assert_eq!(body["status"], "ok"),
        503 => assert_eq!(body["error"], "overloaded"),
        other => panic!("unexpected {other}: {body}"),
    }
    drop(idle);
}

#[tokio::test]
async fn when_accept_runs_out_of_descriptors_the_server_keeps_going_and_recovers() {
    const DESCRIPTORS: u32 = 256;
    // A connection limit above what the descriptors allow: accept itself fails (EMFILE). The
    // header timeout is long enough that every connection below is open at once however slow
    // the machine is, and short enough to end within the deadline.
    let args = ["--memory", "--max-connections", "1000", "--header-timeout-ms", "4000"];
    let server = start_with_descriptors(DESCRIPTORS, &args).listening();
    let addr = server.addr();
    let mut idle = Vec::new();
    for _ in 0..DESCRIPTORS + 64 {
        idle.push(TcpStream::connect(&addr).await.expect("connects"));
    }
    let ran_out = async {
        while !server.log().contains("accept failed") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if tokio::time::timeout(DEADLINE, ran_out).await.is_err() {
        panic!("accept never ran out of descriptors: {}", server.log());
    }
    // The silent connections are closed after the header timeout, descriptors come back, and the
    // paused accept loop takes new connections again.
    let client = reqwest::Client::builder().timeout(DEADLINE).build().unwrap();
    let retry = async {
        loop {
            if let Ok(response) = client.get(format!("{}/healthz", server.base)).send().await {
                if response.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(DEADLINE, retry).await.expect("a fresh request is served again");
    drop(idle);
}
