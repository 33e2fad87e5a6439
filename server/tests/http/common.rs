//! A real server on 127.0.0.1 with an ephemeral port, and a small JSON client for it.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mfe_cache_server::store::{MemoryStore, RedbStore, Store};
use mfe_cache_server::{Config, Server, ServerError};
use mfe_shared_cache_core::Clock;
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

/// A server clock the test moves (shared by clones), so TTLs expire without sleeping.
#[derive(Clone, Debug)]
pub struct TestClock(Arc<AtomicU64>);

impl TestClock {
    pub fn new(now_ms: u64) -> Self {
        TestClock(Arc::new(AtomicU64::new(now_ms)))
    }

    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the time, backwards too (a wall clock corrected by NTP or by hand).
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A plain HTTP answer: status, headers and body text.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|_| panic!("answer is not JSON ({}): {:?}", self.status, self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        let server = Server::bind(&config).await.expect("server binds");
        Self::serve(server).await
    }

    /// A server on the configured store (memory, or redb in `config.data`) with a test clock.
    pub async fn start_with_clock(config: Config, clock: TestClock) -> Self {
        let store: Arc<dyn Store> = if config.memory { Arc::new(MemoryStore::new()) } else { Arc::new(open_redb(&config.data).await) };
        let server = Server::bind_with(&config, store, Arc::new(clock)).await.expect("server binds");
        Self::serve(server).await
    }

    /// A server on a store the test keeps a handle on (to run garbage collection, say).
    pub async fn start_on(config: Config, store: Arc<dyn Store>, clock: TestClock) -> Self {
        let server = Server::bind_with(&config, store, Arc::new(clock)).await.expect("server binds");
        Self::serve(server).await
    }

    /// A server on a given store (one that fails on demand, say).
    pub async fn start_with_store(config: Config, store: Arc<dyn Store>) -> Self {
        let server = Server::bind_with(&config, store, Arc::new(mfe_cache_server::SystemClock)).await.expect("server binds");
        Self::serve(server).await
    }

    pub async fn serve(server: Server) -> Self {
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

    /// Sends a request and keeps the whole answer (for headers, and bodies that are not JSON).
    pub async fn fetch(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("request reaches the server");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Answer { status, headers, text }
    }

    /// GETs a path.
    pub async fn get(&self, path: &str) -> Answer {
        self.fetch(self.client.get(self.url(path))).await
    }

    /// A successful `/invalidate`; returns how many keys it tombstoned.
    pub async fn invalidate(&self, patterns: Value) -> u64 {
        let (status, answer) = self.post("/api/cache/invalidate", &json!({ "patterns": patterns })).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["success"], true);
        answer["invalidated"].as_u64().unwrap()
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

    /// What the server holds, as a sync from 0 shows it, without the answer's clock reading
    /// (`now`), which moves between two identical states.
    pub async fn state(&self) -> Value {
        let mut answer = self.sync(0, json!([])).await;
        if let Some(fields) = answer.as_object_mut() {
            fields.remove("now");
        }
        answer
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

/// Opens the redb store of a server just stopped in this process: its background tasks (group
/// commit, GC, stats) drop their handles a moment after `serve` returns, and redb refuses a
/// second open until then. A real restart is a new process; this only waits for the old handles.
async fn open_redb(path: &std::path::Path) -> RedbStore {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match RedbStore::open(path) {
            Ok(store) => return store,
            Err(e) if std::time::Instant::now() < deadline && format!("{e:?}").contains("AlreadyOpen") => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot open the redb store: {e:?}"),
        }
    }
}
