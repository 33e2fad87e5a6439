//! Command-line flags, each with an environment variable of the same meaning.
use std::path::PathBuf;

use clap::builder::FalseyValueParser;
use clap::Parser;

use crate::store::redis::{parse_prefix, RedisTarget, DEFAULT_PREFIX};

/// Default `--max-body`: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;
/// Default `--max-batch`: changes per `/sync` request.
pub const DEFAULT_MAX_BATCH: usize = 1000;
/// Default `--max-updates`: updates per `/sync` response (the rest follow on the next sync).
pub const DEFAULT_MAX_UPDATES: usize = 10_000;
/// Default `--heartbeat-ms`: 15 s, under the idle timeouts of common proxies (30–60 s).
pub const DEFAULT_HEARTBEAT_MS: u64 = 15_000;
/// Default `--header-timeout-ms`: 10 s for a request's headers (a few hundred bytes, one or two
/// packets) even on a poor mobile link; a slow-loris client holds a connection no longer.
pub const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;
/// Default `--body-timeout-ms`: 30 s for a whole body, i.e. at least 35 KB/s for one of the
/// default 1 MiB `--max-body` (sync batches are usually a few KB).
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 30_000;
/// Default `--idle-timeout-ms`: 75 s, longer than the 60 s idle timeout of common load balancers
/// and proxies, so that they close an idle upstream connection first and never send a request
/// on one this server is closing at that moment.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 75_000;

/// The reference backend of mfe-shared-cache.
#[derive(Debug, Clone, Parser)]
#[command(name = "mfe-cache-server", version, about)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the bound one is printed).
    #[arg(long, env = "MFE_CACHE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Directory of the embedded store (created if missing).
    #[arg(long, env = "MFE_CACHE_DATA", default_value = "./mfe-cache-data")]
    pub data: PathBuf,

    /// Keep everything in memory only (tests, throwaway demos): nothing survives a restart.
    #[arg(long, env = "MFE_CACHE_MEMORY", value_parser = FalseyValueParser::new(), default_value_t = false)]
    pub memory: bool,

    /// Keep the data in Redis instead of the embedded store, so that several instances share it:
    /// `redis://[:PASSWORD@]HOST:PORT[/DB]`, or a Redis Cluster by one or more of its nodes,
    /// `redis+cluster://HOST:PORT[,HOST:PORT…]`. Run Redis with `--appendonly yes --appendfsync
    /// always` for acknowledged writes to survive a Redis crash. Not with `--memory`.
    #[arg(long, env = "MFE_CACHE_STORE", value_name = "URL")]
    pub store: Option<RedisTarget>,

    /// With `--store`: the prefix of every Redis key (`PREFIX:{namespace}:…`), so that several
    /// deployments can share one Redis.
    #[arg(long = "redis-prefix", env = "MFE_CACHE_REDIS_PREFIX", value_name = "PREFIX", default_value = DEFAULT_PREFIX,
          value_parser = parse_prefix)]
    pub redis_prefix: String,

    /// With `--store`: start even when Redis's `maxmemory-policy` may evict this server's keys
    /// (`allkeys-*`), which silently loses acknowledged writes once Redis is full.
    #[arg(long = "redis-allow-eviction", env = "MFE_CACHE_REDIS_ALLOW_EVICTION",
          value_parser = FalseyValueParser::new(), default_value_t = false)]
    pub redis_allow_eviction: bool,

    /// Serve this directory at `/` (the demo pages); `/api` and `/healthz` take precedence.
    #[arg(long = "static", env = "MFE_CACHE_STATIC", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,

    /// Allow cross-origin requests from ORIGIN (repeatable; `*` allows any). None: same-origin only.
    #[arg(long = "cors-origin", env = "MFE_CACHE_CORS_ORIGIN", value_name = "ORIGIN", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Require `Authorization: Bearer TOKEN`; FILE has lines `TOKEN NAMESPACE` (`#` comments).
    /// Each namespace is a separate keyspace.
    #[arg(long, env = "MFE_CACHE_TOKENS", value_name = "FILE")]
    pub tokens: Option<PathBuf>,

    /// Largest request body in bytes (413 beyond).
    #[arg(long, env = "MFE_CACHE_MAX_BODY", value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY,
          value_parser = positive)]
    pub max_body: usize,

    /// Most changes in one `/sync` request (413 beyond).
    #[arg(long, env = "MFE_CACHE_MAX_BATCH", value_name = "N", default_value_t = DEFAULT_MAX_BATCH,
          value_parser = positive)]
    pub max_batch: usize,

    /// Most updates in one `/sync` response; a client gets the rest on its next sync.
    #[arg(long, env = "MFE_CACHE_MAX_UPDATES", value_name = "N", default_value_t = DEFAULT_MAX_UPDATES,
          value_parser = positive)]
    pub max_updates: usize,

    /// How often event streams (`/api/cache/events`) send a heartbeat and re-check the store, in
    /// ms: the longest a change can wait if its wake-up was lost (e.g. Redis pub/sub reconnecting).
    #[arg(long = "heartbeat-ms", env = "MFE_CACHE_HEARTBEAT_MS", value_name = "MS", default_value_t = DEFAULT_HEARTBEAT_MS,
          value_parser = positive_u64)]
    pub heartbeat_ms: u64,

    /// Time a client has to send a request's headers, in ms: from the connection's opening for its
    /// first request, from the first byte for the next ones. Past it the connection is closed
    /// (slow-loris clients, connections opened and never used).
    #[arg(long = "header-timeout-ms", env = "MFE_CACHE_HEADER_TIMEOUT_MS", value_name = "MS",
          default_value_t = DEFAULT_HEADER_TIMEOUT_MS, value_parser = positive_u64)]
    pub header_timeout_ms: u64,

    /// Time a client has to send a request's whole body once its headers arrived, in ms; past it
    /// the request is answered `408` (`timeout`) and the connection closed.
    #[arg(long = "body-timeout-ms", env = "MFE_CACHE_BODY_TIMEOUT_MS", value_name = "MS",
          default_value_t = DEFAULT_BODY_TIMEOUT_MS, value_parser = positive_u64)]
    pub body_timeout_ms: u64,

    /// How long a keep-alive connection may wait for its next request, in ms, before it is closed.
    /// A connection with a request in progress (an event stream included) is never idle.
    #[arg(long = "idle-timeout-ms", env = "MFE_CACHE_IDLE_TIMEOUT_MS", value_name = "MS",
          default_value_t = DEFAULT_IDLE_TIMEOUT_MS, value_parser = positive_u64)]
    pub idle_timeout_ms: u64,

    /// Most connections served at once; past it a new connection is answered `503` (`overloaded`)
    /// and closed. Default: the open-file limit (raised to its hard limit at start) less a reserve
    /// for the store, Redis and those answers, at most 65536.
    #[arg(long = "max-connections", env = "MFE_CACHE_MAX_CONNECTIONS", value_name = "N", value_parser = positive)]
    pub max_connections: Option<usize>,

    /// Most event streams (`/api/cache/events`) open at once; past it a new one is answered `503`
    /// (`overloaded`, with `Retry-After`). Default: half of `--max-connections`, so streams never
    /// take every connection from ordinary requests.
    #[arg(long = "max-streams", env = "MFE_CACHE_MAX_STREAMS", value_name = "N", value_parser = positive)]
    pub max_streams: Option<usize>,

    /// Resident memory (MiB) above which event streams are shed: new ones are answered `503`
    /// (`overloaded`, with `Retry-After`) and, each second, 5 % of the open ones (the oldest) are
    /// told to reconnect, to another instance behind a load balancer, until memory is back under
    /// 90 % of this. Default: no limit (Linux only: read from /proc).
    #[arg(long = "max-memory-mb", env = "MFE_CACHE_MAX_MEMORY_MB", value_name = "MIB", value_parser = positive_u64)]
    pub max_memory_mb: Option<u64>,
}

fn positive_u64(text: &str) -> Result<u64, String> {
    positive(text).map(|n| n as u64)
}

fn positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number above 0".into()),
    }
}

impl Config {
    /// A configuration for tests and embedding: memory store, ephemeral port, defaults elsewhere.
    pub fn for_tests() -> Self {
        Config {
            listen: "127.0.0.1:0".into(),
            data: PathBuf::from("./mfe-cache-data"),
            memory: true,
            store: None,
            redis_prefix: DEFAULT_PREFIX.into(),
            redis_allow_eviction: false,
            static_dir: None,
            cors_origins: Vec::new(),
            tokens: None,
            max_body: DEFAULT_MAX_BODY,
            max_batch: DEFAULT_MAX_BATCH,
            max_updates: DEFAULT_MAX_UPDATES,
            heartbeat_ms: DEFAULT_HEARTBEAT_MS,
            header_timeout_ms: DEFAULT_HEADER_TIMEOUT_MS,
            body_timeout_ms: DEFAULT_BODY_TIMEOUT_MS,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            max_connections: None,
            max_streams: None,
            max_memory_mb: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        let c = Config::try_parse_from([
            "x",
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--cors-origin",
            "http://a",
            "--cors-origin",
            "http://b",
            "--max-batch",
            "5",
        ])
        .unwrap();
        assert!(c.memory);
        assert_eq!(c.cors_origins, ["http://a", "http://b"]);
        assert_eq!(c.max_batch, 5);
        assert_eq!(c.max_body, DEFAULT_MAX_BODY);
        assert!(Config::try_parse_from(["x", "--max-batch", "0"]).is_err());
    }

    #[test]
    fn connection_flags_parse() {
        let c = Config::try_parse_from(["x"]).unwrap();
        assert_eq!((c.header_timeout_ms, c.body_timeout_ms, c.idle_timeout_ms), (10_000, 30_000, 75_000));
        assert_eq!((c.max_connections, c.max_streams), (None, None));
        let c = Config::try_parse_from([
            "x",
            "--header-timeout-ms",
            "200",
            "--body-timeout-ms",
            "300",
            "--idle-timeout-ms",
            "400",
            "--max-connections",
            "10",
            "--max-streams",
            "2",
        ])
        .unwrap();
        assert_eq!((c.header_timeout_ms, c.body_timeout_ms, c.idle_timeout_ms), (200, 300, 400));
        assert_eq!((c.max_connections, c.max_streams), (Some(10), Some(2)));
        for zero in ["--header-timeout-ms", "--body-timeout-ms", "--idle-timeout-ms", "--max-connections", "--max-streams"] {
            assert!(Config::try_parse_from(["x", zero, "0"]).is_err(), "{zero} 0");
        }
    }

    #[test]
    fn store_flags_parse() {
        let c = Config::try_parse_from(["x"]).unwrap();
        assert_eq!((c.store, c.redis_prefix.as_str()), (None, "mfe"));
        let c = Config::try_parse_from(["x", "--store", "redis://127.0.0.1:6379/1", "--redis-prefix", "prod"]).unwrap();
        assert_eq!(c.store, Some(RedisTarget::Standalone("redis://127.0.0.1:6379/1".into())));
        assert_eq!(c.redis_prefix, "prod");
        assert!(!c.redis_allow_eviction);
        assert!(Config::try_parse_from(["x", "--redis-allow-eviction"]).unwrap().redis_allow_eviction);
        let c = Config::try_parse_from(["x", "--store", "redis+cluster://a:7000,b:7001"]).unwrap();
        assert_eq!(c.store.unwrap().kind(), "redis-cluster");
        assert!(Config::try_parse_from(["x", "--store", "postgres://h"]).is_err());
        assert!(Config::try_parse_from(["x", "--redis-prefix", "a{b}"]).is_err());
    }
}
