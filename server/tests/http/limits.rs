//! The connection limit over real TCP, and the server binary under a descriptor
//! limit lower than the number of connections thrown at it.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mfe_cache_server::Config;
use tokio::net::TcpStream;

use crate::common::TestServer;
use crate::raw::{connect, read_answer, send_get, RawAnswer};

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

/// The server binary under `ulimit -n` of `descriptors`.
struct LimitedBinary {
    child: Child,
    base: String,
}

impl LimitedBinary {
    fn start(descriptors: u32) -> Self {
        let mut child = Command::new("sh")
            .args(["-c", &format!("ulimit -n {descriptors} && exec \"$0\" \"$@\"")])
            .arg(env!("CARGO_BIN_EXE_mfe-cache-server"))
            .args(["--listen", "127.0.0.1:0", "--memory"])
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("reads the listening line");
        let base =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected {line:?}")).to_owned();
        LimitedBinary { child, base }
    }
}

impl Drop for LimitedBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn with_more_idle_connections_than_descriptors_a_fresh_request_is_still_answered() {
    const DESCRIPTORS: u32 = 256;
    let server = LimitedBinary::start(DESCRIPTORS);
    let addr = server.base.trim_start_matches("http://").to_owned();
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
