//! Connections past `--max-connections`: answered `503` at once and closed, so that a client
//! learns it should come back later instead of hanging, and the server's descriptors are not
//! spent on it.
//!
//! The answer goes out as soon as the client has sent something (an answer sent before the
//! request confuses some clients, hyper's among them, that read it as a stray message on an
//! idle connection). Then the server closes its side and reads what is left of the request
//! until the client closes: closing with unread data would reset the connection, and a reset
//! can destroy the answer before the client reads it. The refusals that wait like this are
//! few ([`SLOTS`]): a new one ends the oldest, whose client has had the longest to act, so
//! refusing never takes more descriptors however many clients come.
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::throttle::Throttle;

/// Refusals in progress at most (each holds a descriptor, taken from the reserve).
pub const SLOTS: usize = 64;

/// Bytes of the refused request read at most before closing.
const DRAIN_BYTES: usize = 64 << 10;

/// The body of the answer to a refused connection.
const BODY: &str = r#"{"error":"overloaded","message":"the server has too many open connections; retry in a moment"}"#;

/// What a refused connection gets: the whole HTTP/1.1 answer.
pub fn answer_bytes() -> Bytes {
    Bytes::from(format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         cache-control: no-store\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    ))
}

/// Refuses connections, within a fixed number of descriptors.
#[derive(Debug)]
pub struct Overload {
    /// One per refusal in progress, oldest first; dropping one ends its refusal.
    waiting: Mutex<VecDeque<oneshot::Sender<()>>>,
    answer: Bytes,
    /// How long a refused client has to send its request, and then to close.
    patience: Duration,
    log: Throttle,
}

impl Overload {
    /// Refusals give a client `patience` to send its request, then as long to close.
    pub fn new(patience: Duration) -> Self {
        Overload {
            waiting: Mutex::new(VecDeque::with_capacity(SLOTS)),
            answer: answer_bytes(),
            patience,
            log: Throttle::default(),
        }
    }

    /// Answers `stream` 503 and closes it, in the background.
    pub fn refuse(&self, stream: TcpStream, max_connections: usize) {
        if let Some(refused) = self.log.tick() {
            tracing::warn!(refused, max_connections, "refusing connections: --max-connections reached");
        }
        let (slot, evicted) = oneshot::channel();
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            waiting.retain(|slot| !slot.is_closed());
            while waiting.len() >= SLOTS {
                waiting.pop_front();
            }
            waiting.push_back(slot);
        }
        let (patience, answer_bytes) = (self.patience, self.answer.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = answer(stream, answer_bytes, patience) => {}
                _ = evicted => {}
            }
        });
    }
}

async fn answer(mut stream: TcpStream, answer: Bytes, patience: Duration) {
    let mut buf = [0u8; 4096];
    // Nothing from the client in time: an idle connection, closed without a word.
    let Ok(Ok(read)) = tokio::time::timeout(patience, stream.read(&mut buf)).await else { return };
    // An HTTP/2 client (its preface starts `PRI`) could not read an HTTP/1 answer: it only
    // sees the connection close.
    if read == 0 || buf[..read].starts_with(b"PRI") {
        return;
    }
    if stream.write_all(&answer).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut drained = read;
        while drained < DRAIN_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(patience, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_a_complete_json_503() {
        let answer = answer_bytes();
        let text = std::str::from_utf8(&answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.lines().any(|line| line == format!("content-length: {}", body.len())), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "overloaded");
    }
}
