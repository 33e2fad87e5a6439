//! Binding, serving and shutting down.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use mfe_shared_cache_core::Clock;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::auth::{Auth, TokensError};
use crate::config::Config;
use crate::fanout::pressure::{self, Gauge};
use crate::fanout::{Channels, Pressure};
use crate::feed::{AnnouncingStore, Feed};
use crate::gc;
use crate::redis_bus;
use crate::store::redis::{RedisOptions, RedisTarget};
use crate::metrics::Metrics;
use crate::routes::{router, RouterOptions};
use crate::serve::{self, descriptors, ConnectionLimits, Timeouts};
use crate::store::{MemoryStore, RedbStore, RedisStore, Store, StoreError};

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Limits on one request.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most changes in one `/sync`.
    pub max_batch: usize,
    /// Most updates in one `/sync` answer.
    pub max_updates: usize,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Where namespaces live.
    pub store: Arc<dyn Store>,
    /// Request limits.
    pub limits: Limits,
    /// The time, for stamp checks and cursors.
    pub clock: Arc<dyn Clock + Send + Sync>,
    /// Request counters and census caches for `/stats`.
    pub metrics: Arc<Metrics>,
    /// Wakes event streams when their namespace changes.
    pub feed: Arc<Feed>,
    /// The namespaces event streams follow, each read once per change for all its streams.
    pub channels: Arc<Channels>,
    /// One permit per event stream that may be open (`--max-streams`).
    pub streams: Arc<Semaphore>,
    /// Whether memory is over `--max-memory-mb` (new streams are refused).
    pub pressure: Arc<Pressure>,
}

impl AppState {
    /// The current time in ms since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A flag or file is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The tokens file is unusable.
    #[error(transparent)]
    Tokens(#[from] TokensError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Binding or serving failed.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
}

/// A bound, not yet serving, server.
pub struct Server {
    listener: TcpListener,
    app: Router,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock + Send + Sync>,
    feed: Arc<Feed>,
    channels: Arc<Channels>,
    pressure: Arc<Pressure>,
    /// `--max-memory-mb` in bytes, and how resident memory is read.
    memory_limit: Option<(u64, Gauge)>,
    /// With a Redis store: the Redis and key prefix whose pub/sub wakes other instances' streams.
    bus: Option<(RedisTarget, String)>,
    limits: ConnectionLimits,
}

impl Server {
    /// Opens the configured store and binds the configured address.
    pub async fn bind(config: &Config) -> Result<Self, ServerError> {
        let store: Arc<dyn Store> = if let Some(target) = &config.store {
            if config.memory {
                return Err(ServerError::Config("--memory and --store exclude each other".into()));
            }
            let options = RedisOptions { allow_eviction: config.redis_allow_eviction };
            Arc::new(RedisStore::open_with(target, &config.redis_prefix, options).await?)
        } else if config.memory {
            Arc::new(MemoryStore::new())
        } else {
            let dir = config.data.clone();
            // Opening may repair the file after a crash: keep it off the async workers.
            Arc::new(
                tokio::task::spawn_blocking(move || RedbStore::open(&dir))
                    .await
                    .map_err(|err| ServerError::Config(format!("opening the store panicked: {err}")))??,
            )
        };
        Self::bind_with(config, store, Arc::new(SystemClock)).await
    }

    /// Binds with a given store and clock (tests inject a manual clock or a shared store).
    pub async fn bind_with(
        config: &Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock + Send + Sync>,
    ) -> Result<Self, ServerError> {
        let auth = config.tokens.as_deref().map(Auth::load).transpose()?;
        if let Some(dir) = &config.static_dir {
            if !dir.is_dir() {
                return Err(ServerError::Config(format!("--static {} is not a directory", dir.display())));
            }
        }
        let limits = connection_limits(config);
        let max_streams = config.max_streams.unwrap_or((limits.max_connections / 2).max(1));
        let feed = Arc::new(Feed::new());
        // Every write that moves a cursor wakes the event streams of its namespace.
        let store: Arc<dyn Store> = Arc::new(AnnouncingStore::new(store, feed.clone()));
        let channels = Arc::new(Channels::new(store.clone(), feed.clone(), Duration::from_millis(config.heartbeat_ms)));
        let pressure = Arc::new(Pressure::default());
        let state = AppState {
            store: store.clone(),
            limits: Limits { max_batch: config.max_batch, max_updates: config.max_updates },
            clock: clock.clone(),
            metrics: Arc::new(Metrics::new(clock.now_ms())),
            feed: feed.clone(),
            channels: channels.clone(),
            pressure: pressure.clone(),
            streams: Arc::new(Semaphore::new(max_streams.min(Semaphore::MAX_PERMITS))),
        };
        let options = RouterOptions {
            auth,
            max_body: config.max_body,
            cors_origins: config.cors_origins.clone(),
            static_dir: config.static_dir.clone(),
        };
        let app = router(state, &options).map_err(ServerError::Config)?;
        let listener = TcpListener::bind(&config.listen).await?;
        let bus = config.store.clone().map(|target| (target, config.redis_prefix.clone()));
        tracing::debug!(max_connections = limits.max_connections, max_streams, "limits");
        let memory_limit = config.max_memory_mb.map(|mb| (mb << 20, Arc::new(pressure::resident_bytes) as Gauge));
        Ok(Server { listener, app, store, clock, feed, channels, pressure, memory_limit, bus, limits })
    }

    /// Reads resident memory with `gauge` for `--max-memory-mb` (tests move it by hand).
    pub fn with_memory_gauge(mut self, gauge: Gauge) -> Self {
        if let Some((_, current)) = &mut self.memory_limit {
            *current = gauge;
        }
        self
    }

    /// The bound address (the real port when `:0` was asked for).
    pub fn local_addr(&self) -> Result<SocketAddr, ServerError> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight and returns.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServerError> {
        tracing::info!(store = self.store.kind(), "serving");
        let gc = gc::spawn(self.store.clone(), self.clock.clone());
        let memory = self
            .memory_limit
            .map(|(limit, gauge)| pressure::spawn(self.channels.clone(), self.pressure.clone(), limit, gauge));
        let bus = match &self.bus {
            Some((target, prefix)) => redis_bus::spawn(target, prefix, self.feed.clone()),
            None => Vec::new(),
        };
        // Event streams never end by themselves: end them when shutdown starts, or graceful
        // shutdown would wait for them forever.
        let feed = self.feed.clone();
        let shutdown = async move {
            shutdown.await;
            feed.close();
        };
        let result = serve::serve(self.listener, self.app, self.limits, shutdown).await;
        // Every connection has ended; the namespace readers end with their streams (the feed
        // is closed). The periodic tasks never end by themselves: abort them, and wait for all,
        // so that nothing of this server runs after this returns and the store (and the redb
        // writer thread) closes.
        self.channels.join().await;
        gc.abort();
        for task in bus.iter().chain(&memory) {
            task.abort();
        }
        let _ = gc.await;
        if let Some(task) = memory {
            let _ = task.await;
        }
        for task in bus {
            let _ = task.await;
        }
        result.map_err(ServerError::Io)
    }
}

/// The connection limits of `config`, the default `--max-connections` from the descriptor limit.
fn connection_limits(config: &Config) -> ConnectionLimits {
    let descriptors = descriptors::soft_limit();
    let budget = descriptors::default_max_connections(descriptors);
    let max_connections = match config.max_connections {
        Some(asked) => {
            if asked > budget {
                tracing::warn!(
                    max_connections = asked,
                    descriptors,
                    "--max-connections is above what the open-file limit leaves for connections: \
                     past it, accept fails and new clients wait instead of getting a 503"
                );
            }
            asked
        }
        None => budget,
    };
    let timeouts = Timeouts {
        header: Duration::from_millis(config.header_timeout_ms),
        body: Duration::from_millis(config.body_timeout_ms),
        idle: Duration::from_millis(config.idle_timeout_ms),
    };
    ConnectionLimits { max_connections, timeouts }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Binds, prints `listening on http://ADDR`, and serves until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> Result<(), ServerError> {
    let descriptors = descriptors::raise_soft_limit();
    tracing::debug!(descriptors, "open-file limit");
    let server = Server::bind(&config).await?;
    let addr = server.local_addr()?;
    // On stdout, for scripts and tests that start the binary with `--listen 127.0.0.1:0`.
    println!("listening on http://{addr}");
    if let Some(target) = &config.store {
        tracing::info!(%addr, store = %target, prefix = %config.redis_prefix, "listening");
    } else if config.memory {
        tracing::warn!(%addr, "listening; memory store: nothing is kept when the server stops");
    } else {
        tracing::info!(%addr, data = %config.data.display(), "listening");
    }
    server.serve(shutdown_signal()).await
}
