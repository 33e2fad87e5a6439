//! The real binary on a data directory: acknowledged writes survive `kill -9`; SIGTERM stops it
//! cleanly.
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{by_key, now_ms, TestServer};

struct Binary {
    child: Child,
    base: String,
    _stdout: BufReader<ChildStdout>,
}

impl Binary {
    fn start(data: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mfe-cache-server"))
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("reads the listening line");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Binary { child, base, _stdout: stdout }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> Result<Value, String> {
    let response = client.post(url).json(&body).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    response.json().await.map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let t = now_ms() - 10_000;
    let mut server = Binary::start(dir.path());

    // A little of everything first: a value, a remove, a clear, a sync batch.
    post(
        &client,
        server.url("/api/cache/set"),
        json!({ "key": "cleared", "value": 0, "ttl": 0, "timestamp": t, "node": "n" }),
    )
    .await
    .unwrap();
    post(&client, server.url("/api/cache/clear"), json!({ "timestamp": t + 1, "node": "n" })).await.unwrap();
    post(
        &client,
        server.url("/api/cache/set"),
        json!({ "key": "removed", "value": 1, "ttl": 0, "timestamp": t + 2, "node": "n" }),
    )
    .await
    .unwrap();
    post(&client, server.url("/api/cache/remove"), json!({ "key": "removed", "timestamp": t + 3, "node": "n" }))
        .await
        .unwrap();
    let batch = json!({ "lastSync": 0, "changes": [
        { "key": "ttl", "value": { "deep": [1, 2] }, "ttl": 90.5, "timestamp": t + 4, "deleted": false, "node": "n" },
    ] });
    let before_kill = post(&client, server.url("/api/cache/sync"), batch).await.unwrap();

    // Writers hammer the server; it is killed under them. Each records what was acknowledged.
    let acked: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let (client, url, acked) = (client.clone(), server.url("/api/cache/set"), acked.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..100_000u64 {
                let key = format!("w{w}-k{}", i % 5);
                let ts = t + 100 + i;
                let body = json!({ "key": key, "value": i, "ttl": 0, "timestamp": ts, "node": format!("w{w}") });
                if post(&client, url.clone(), body).await.is_err() {
                    break;
                }
                acked.lock().unwrap().insert(key, ts);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "acknowledged keys before the kill: {}; last stamps: {:?}",
        acked.len(),
        acked.values().max().map(|m| m - t)
    );
    assert!(acked.len() >= 10, "the writers got acknowledgements before the kill ({})", acked.len());

    let server = Binary::start(dir.path());
    let all = post(&client, server.url("/api/cache/sync"), json!({ "lastSync": 0, "changes": [] })).await.unwrap();
    let all = by_key(&all);
    for (key, ts) in &acked {
        let stored = all.get(key).unwrap_or_else(|| panic!("acknowledged {key} is gone"));
        assert!(stored["timestamp"].as_u64().unwrap() >= *ts, "{key}: acknowledged {ts}, found {stored}");
    }
    assert_eq!(all["cleared"]["deleted"], true, "the clear's tombstone persisted");
    assert_eq!(all["removed"]["deleted"], true);
    assert_eq!(all["ttl"]["ttl"], 90.5);
    assert_eq!(all["ttl"]["value"], json!({ "deep": [1, 2] }));
    // The epoch persisted: an older write is still refused after the restart.
    let late = post(
        &client,
        server.url("/api/cache/set"),
        json!({ "key": "x", "value": 1, "ttl": 0, "timestamp": t, "node": "n" }),
    )
    .await
    .unwrap();
    assert_eq!(late["accepted"], false);
    // The cursor persisted: a client's pre-kill cursor is still valid, not a resync.
    let delta =
        post(&client, server.url("/api/cache/sync"), json!({ "lastSync": before_kill["timestamp"], "changes": [] }))
            .await
            .unwrap();
    assert!(!by_key(&delta).contains_key("cleared"), "a delta, not a full resync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut server = Binary::start(dir.path());
    let t = now_ms();
    post(&client, server.url("/api/cache/set"), json!({ "key": "k", "value": 1, "ttl": 0, "timestamp": t }))
        .await
        .unwrap();
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(code) = server.child.try_wait().unwrap() {
            exited = Some(code);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let code = exited.expect("exits within 5 s of SIGTERM");
    assert!(code.success(), "{code:?}");
    // The store was closed, so it reopens at once with the write in it.
    let server = Binary::start(dir.path());
    let all = post(&client, server.url("/api/cache/sync"), json!({ "lastSync": 0, "changes": [] })).await.unwrap();
    assert_eq!(by_key(&all)["k"]["value"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight() {
    let mut s = TestServer::memory().await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let body = format!(r#"{{"key":"k","value":"in flight","ttl":0,"timestamp":{}}}"#, now_ms());
    let (first, rest) = body.split_at(body.len() / 2);
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!("POST /api/cache/set HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.signal_stop(); // the request is half received
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""success":true"#), "{answer}");
    s.stop().await;
}
