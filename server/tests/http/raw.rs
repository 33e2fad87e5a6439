//! HTTP/1.1 by hand over TCP, for what an HTTP client library hides: half-sent requests, stalls,
//! connections held open or closed by the server.
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer read off the wire.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON ({}): {:?}", self.status, self.body))
    }
}

/// `host:port` of a test server's base URL.
pub fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

pub async fn connect(base: &str) -> TcpStream {
    TcpStream::connect(addr(base)).await.expect("connects")
}

/// Sends a complete `GET path` (keep-alive).
pub async fn send_get(stream: &mut TcpStream, path: &str) {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes()).await.expect("writes");
}

/// Reads one answer (headers and a `Content-Length` body); panics without one within `within`.
pub async fn read_answer(stream: &mut TcpStream, within: Duration) -> RawAnswer {
    let read = async {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = find(&data, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).into_owned();
                let mut lines = head.split("\r\n");
                let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let length: usize =
                    headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
                if data.len() >= end + 4 + length {
                    let body = String::from_utf8_lossy(&data[end + 4..end + 4 + length]).into_owned();
                    return RawAnswer { status, headers, body };
                }
            }
            let n = stream.read(&mut buf).await.expect("reads the answer");
            assert!(n > 0, "the connection closed before a complete answer: {:?}", String::from_utf8_lossy(&data));
            data.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(within, read).await.unwrap_or_else(|_| panic!("no answer within {within:?}"))
}

/// Waits until the server closes the connection (end of stream or reset); returns what it sent
/// before. Panics if it is still open after `within`.
pub async fn closed_within(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let read = async {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return data,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.unwrap_or_else(|_| panic!("still open after {within:?}"))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
