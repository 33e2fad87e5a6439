//! A real server on 127.0.0.1 with an ephemeral port, and a small JSON client for it.
use mfe_cache_server::{Config, Server, ServerError};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use crate::support::{now_ms, Rng};

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        let server = Server::bind(&config).await.expect("server binds");
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        TestServer {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The default test server: memory store.
    pub async fn memory() -> Self {
        Self::start(Config::for_tests()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a JSON value; returns the status and the JSON answer.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    /// POSTs raw bytes.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        self.send(self.client.post(self.url(path)).header("content-type", "application/json").body(body)).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("request reaches the server");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("answer is not JSON ({status}): {text:?}"));
        (status, value)
    }

    /// A successful `/sync`.
    pub async fn sync(&self, last_sync: u64, changes: Value) -> Value {
        let (status, body) = self.post("/api/cache/sync", &json!({ "lastSync": last_sync, "changes": changes })).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A successful `/set`.
    pub async fn set(&self, key: &str, value: Value, ttl: f64, timestamp: u64, node: &str) -> Value {
        let body = json!({ "key": key, "value": value, "ttl": ttl, "timestamp": timestamp, "node": node });
        let (status, answer) = self.post("/api/cache/set", &body).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    /// A successful `/remove`.
    pub async fn remove(&self, key: &str, timestamp: u64, node: &str) -> Value {
        let (status, answer) =
            self.post("/api/cache/remove", &json!({ "key": key, "timestamp": timestamp, "node": node })).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    /// Tells the server to shut down gracefully, without waiting.
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.signal_stop();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// The updates of a `/sync` answer by key.
pub fn by_key(answer: &Value) -> std::collections::BTreeMap<String, Value> {
    answer["updates"].as_array().unwrap().iter().map(|u| (u["key"].as_str().unwrap().to_owned(), u.clone())).collect()
}

pub fn keys(answer: &Value) -> Vec<String> {
    answer["updates"].as_array().unwrap().iter().map(|u| u["key"].as_str().unwrap().to_owned()).collect()
}

pub fn cursor(answer: &Value) -> u64 {
    answer["timestamp"].as_u64().unwrap()
}
