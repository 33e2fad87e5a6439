//! A small Server-Sent Events reader over reqwest, for the `/events` tests.
use std::time::Duration;

use serde_json::Value;

/// One event as sent: its `id`, `event` name and `data`.
#[derive(Clone, Debug, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|_| panic!("event data is not JSON: {:?}", self.data))
    }

    pub fn seq(&self) -> u64 {
        self.id.as_deref().expect("event has an id").parse().expect("id is a number")
    }
}

/// An open event stream.
pub struct SseStream {
    response: reqwest::Response,
    buffer: String,
    /// Comment lines seen (heartbeats).
    pub comments: usize,
}

impl SseStream {
    /// Opens `url` (with `Last-Event-ID` when given); panics unless the answer is an event stream.
    pub async fn open(client: &reqwest::Client, url: &str, last_event_id: Option<&str>, token: Option<&str>) -> Self {
        let response = Self::request(client, url, last_event_id, token).await;
        assert_eq!(response.status(), 200, "events answered {}", response.status());
        let kind = response.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
        assert!(kind.starts_with("text/event-stream"), "content-type {kind}");
        SseStream { response, buffer: String::new(), comments: 0 }
    }

    pub async fn request(
        client: &reqwest::Client,
        url: &str,
        last_event_id: Option<&str>,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = client.get(url).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("events request reaches the server")
    }

    /// Asks for `url`'s stream again and again until the answer's status is `status` (a stream
    /// slot given back, or taken); panics with `what` after `within`.
    pub async fn wait_for_status(client: &reqwest::Client, url: &str, status: u16, within: Duration, what: &str) {
        let wait = async {
            while Self::request(client, url, None, None).await.status() != status {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(within, wait).await.unwrap_or_else(|_| panic!("{what} (no {status} within {within:?})"));
    }

    /// The next event (comments are counted, not returned); `None` when the stream ended. Panics
    /// after `within` without one.
    pub async fn next_within(&mut self, within: Duration) -> Option<SseEvent> {
        tokio::time::timeout(within, self.next()).await.unwrap_or_else(|_| panic!("no event within {within:?}"))
    }

    /// The next event; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = self.parse(&block) {
                    return Some(event);
                }
                continue;
            }
            let chunk = self.response.chunk().await.expect("the stream reads")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("events are UTF-8"));
        }
    }

    fn parse(&mut self, block: &str) -> Option<SseEvent> {
        let (mut id, mut event, mut data) = (None, String::from("message"), Vec::new());
        let mut fields = false;
        for line in block.lines() {
            if line.is_empty() {
                continue;
            }
            if line.starts_with(':') {
                self.comments += 1;
                continue;
            }
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            fields = true;
            match name {
                "id" => id = Some(value.to_owned()),
                "event" => event = value.to_owned(),
                "data" => data.push(value.to_owned()),
                _ => {}
            }
        }
        fields.then(|| SseEvent { id, event, data: data.join("\n") })
    }

    /// Events until (and including) the first one named `name`.
    pub async fn until(&mut self, name: &str, within: Duration) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        loop {
            let event =
                self.next_within(within).await.unwrap_or_else(|| panic!("stream ended before {name}: {seen:?}"));
            let done = event.event == name;
            seen.push(event);
            if done {
                return seen;
            }
        }
    }

    /// The next `n` events that are not `ready`.
    pub async fn take(&mut self, n: usize, within: Duration) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        while seen.len() < n {
            let event = self.next_within(within).await.unwrap_or_else(|| panic!("stream ended after {seen:?}"));
            if event.event != "ready" {
                seen.push(event);
            }
        }
        seen
    }
}
