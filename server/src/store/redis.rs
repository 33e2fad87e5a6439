//! The Redis store (`--store redis://…` or `redis+cluster://…`): namespaces in a Redis server or
//! Redis Cluster shared by any number of server instances.
//!
//! Layout (`redis_layout.rs`): per namespace `PREFIX:{ns}:meta`, `:entries` (hash: key → the same
//! row bytes as redb), `:seq` (sorted set by sequence number) and `:keys` (sorted set for key
//! order), all in one hash tag (one cluster slot); and `PREFIX:namespaces` for GC.
//!
//! Every operation runs [`crate::namespace`] (the merge rule, clears, GC, paging) in this process,
//! on a snapshot read by one Lua script, so it sees one point in time:
//! - a read (`delta`, `entries`, `census`) reads what its query needs, then answers from it;
//! - a write reads the meta and what the operation will look at (the written keys, or the headers
//!   of the scanned prefixes), applies the operation to an in-memory overlay of that snapshot,
//!   and commits the overlay's writes with a second script that first checks the meta is still
//!   byte for byte the one it read. Every change moves the namespace's cursor, which is in the
//!   meta, so an unchanged meta means an unchanged namespace; otherwise another instance wrote
//!   in between, and the write starts over on a new snapshot (optimistic concurrency, bounded
//!   retries with jitter). So commits of one namespace are serialised by Redis, each one's
//!   sequence numbers are above every earlier one's, and a delta reader never sees a gap.
//!   An operation that writes nothing (a duplicate, a stale write) commits nothing: what it
//!   judged from its snapshot stays true, since a namespace's stamps, epoch and floor only grow.
//! - Inside one process, the writes to a namespace queue for one writer task, which applies all
//!   the writes queued meanwhile on one snapshot and commits them with one script call (group
//!   commit, `redis_group.rs`): one snapshot, one commit and one fsync by Redis for the lot, and
//!   an instance never conflicts with itself.
//! - No script visits more than a page of keys ([`PAGE_KEYS`]), since a script holds Redis for
//!   every client while it runs: what scans a namespace (garbage collection, a clear, a wildcard
//!   invalidation, the census of `/stats`) runs page by page, each page a snapshot and, for
//!   writes, a commit of its own, with other writes going on in between. A clear first takes its
//!   epoch (which refuses every older write from then on) and then tombstones page by page, so
//!   in between it is exact for writers and readers alike; one that stops half-way (the process
//!   dies) is finished by the next garbage collection or by sending it again. A census is then
//!   not one point in time but each of its pages is.
//!
//! Durability is Redis's: run it with `appendonly yes` and `appendfsync always` for a write to
//! be on disk when acknowledged (`everysec` can lose the last second on a crash). When Redis is
//! down or not answering, operations fail with [`StoreError::Unavailable`] (HTTP 503) within
//! seconds, and the connection comes back by itself when Redis does. A Redis whose
//! `maxmemory-policy` may evict this server's keys is refused at start (`redis_eviction.rs`).
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
use ::redis::{Cmd, ErrorKind, FromRedisValue, RedisError, Script, ServerErrorKind, Value};
use mfe_shared_cache_core::{KeyPattern, MergeOutcome};

use super::codec::decode_meta;
use super::redis_eviction;
use super::redis_group::{Done, Job, Step, Writers, PAGE_KEYS};
use super::redis_layout::{namespaces_key, NsKeys};
use super::redis_scripts::{commit_args, parse_commit, parse_read_for, read_args, COMMIT, READ};
use super::redis_snapshot::{Commit, Overlay, Plan, Snapshot};
use super::{
    Census, Delta, DeltaQuery, EntriesPage, EntriesQuery, GcReport, Meta, NsRead, OpReport, Store, StoreError,
    StoreFuture, WriteOp,
};
use crate::namespace;

pub use super::redis_layout::{parse_prefix, RedisTarget, DEFAULT_PREFIX};

/// How long connecting to a Redis node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may wait for its answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one store operation may take in all (snapshots, commits, conflicts), a backstop.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Commits that lost to another instance before a write gives up (as `Unavailable`).
const MAX_CONFLICTS: u32 = 50;
/// Snapshots one operation may take because the previous one lacked something it asked for.
const MAX_ROUNDS: u32 = 6;

/// The Redis-backed store.
pub struct RedisStore {
    redis: Redis,
    kind: &'static str,
    writers: Arc<Writers>,
}

/// The connection and the scripts: what the store and its namespaces' writer tasks share.
#[derive(Clone)]
pub(crate) struct Redis {
    conn: Conn,
    prefix: Arc<str>,
    read: Arc<Script>,
    commit: Arc<Script>,
}

#[derive(Clone)]
enum Conn {
    /// Reconnects by itself after a failure, on the next command.
    Single(ConnectionManager),
    /// Follows the cluster's slot map and reconnects by itself.
    Cluster(ClusterConnection),
}

impl Conn {
    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, RedisError> {
        match self {
            Conn::Single(conn) => cmd.query_async(&mut conn.clone()).await,
            Conn::Cluster(conn) => cmd.query_async(&mut conn.clone()).await,
        }
    }

    /// Sends `cmd` to every master: per node (`host:port`, or `single` for a standalone Redis),
    /// its answer, or why there is none.
    async fn query_masters(&self, cmd: &Cmd, single: &str) -> Result<Vec<(String, Result<Value, String>)>, RedisError> {
        match self {
            Conn::Single(conn) => {
                let answer = cmd.query_async::<Value>(&mut conn.clone()).await.map_err(|err| err.to_string());
                Ok(vec![(single.to_owned(), answer)])
            }
            Conn::Cluster(conn) => {
                let every_master = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                // Without a response policy the client answers a map of node → that node's answer.
                let answers = match conn.clone().route_command(cmd.clone(), every_master).await? {
                    Value::Map(answers) => answers,
                    other => vec![(Value::SimpleString("the cluster".into()), other)],
                };
                Ok(answers
                    .into_iter()
                    .map(|(node, answer)| {
                        let node = String::from_redis_value(node).unwrap_or_else(|_| "a cluster node".into());
                        let answer = match answer {
                            Value::ServerError(err) => Err(RedisError::from(err).to_string()),
                            value => Ok(value),
                        };
                        (node, answer)
                    })
                    .collect())
            }
        }
    }

    async fn eval(&self, script: &Script, keys: &NsKeys, args: Vec<Vec<u8>>) -> Result<Value, RedisError> {
        let mut invocation = script.prepare_invoke();
        for key in keys.all() {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        match self {
            Conn::Single(conn) => invocation.invoke_async(&mut conn.clone()).await,
            Conn::Cluster(conn) => invocation.invoke_async(&mut conn.clone()).await,
        }
    }
}

/// A Redis failure as a store error: `Unavailable` (HTTP 503, retry later) when Redis cannot be
/// reached or cannot serve now (connection refused or dropped, timeouts, loading its data, a
/// cluster without a quorum or in a failover, out of memory or unable to persist); anything else
/// is a plain Redis error (500).
pub(crate) fn from_redis(err: RedisError) -> StoreError {
    let transient = err.is_io_error()
        || err.is_timeout()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || err.is_cluster_error()
        || matches!(
            err.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                )
        )
        || matches!(err.code(), Some("BUSY" | "MISCONF" | "OOM" | "NOREPLICAS"));
    if transient {
        StoreError::Unavailable(format!("Redis: {err}"))
    } else {
        StoreError::Redis(err.to_string())
    }
}

/// What the store accepts of the Redis it opens.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedisOptions {
    /// Start even if a master's `maxmemory-policy` may evict this server's keys
    /// (`--redis-allow-eviction`), with a warning instead of [`StoreError::EvictingRedis`].
    pub allow_eviction: bool,
}

impl RedisStore {
    /// Connects to `target` and checks that it answers and cannot evict this server's keys. Keys
    /// start with `prefix` (see the module docs), so deployments can share one Redis.
    pub async fn open(target: &RedisTarget, prefix: &str) -> Result<Self, StoreError> {
        Self::open_with(target, prefix, RedisOptions::default()).await
    }

    /// [`RedisStore::open`] with `options`.
    pub async fn open_with(target: &RedisTarget, prefix: &str, options: RedisOptions) -> Result<Self, StoreError> {
        let prefix = parse_prefix(prefix).map_err(StoreError::Redis)?;
        let conn = match target {
            RedisTarget::Standalone(url) => {
                let client = ::redis::Client::open(url.as_str()).map_err(from_redis)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    // Reconnect attempts per failure: few and quick, so a request while Redis is
                    // down fails fast; the next request starts a new attempt.
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                let manager = ConnectionManager::new_with_config(client, config);
                Conn::Single(timed(manager).await?.map_err(from_redis)?)
            }
            RedisTarget::Cluster(nodes) => {
                let client = ClusterClient::builder(nodes.iter().map(String::as_str))
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .overall_response_timeout(Some(RESPONSE_TIMEOUT * 2))
                    .retries(3)
                    .min_retry_wait(20)
                    .max_retry_wait(500)
                    .build()
                    .map_err(from_redis)?;
                Conn::Cluster(timed(client.get_async_connection()).await?.map_err(from_redis)?)
            }
        };
        let redis = Redis {
            conn,
            prefix: prefix.into(),
            read: Arc::new(Script::new(READ)),
            commit: Arc::new(Script::new(COMMIT)),
        };
        let store = RedisStore { redis, kind: target.kind(), writers: Arc::default() };
        timed(store.redis.conn.query::<Value>(&::redis::cmd("PING"))).await?.map_err(from_redis)?;
        store.check_persistence().await;
        store.check_eviction(target, options.allow_eviction).await?;
        tracing::info!(store = store.kind, target = %target, prefix = %store.redis.prefix, "connected to Redis");
        Ok(store)
    }

    /// Warns when Redis would lose acknowledged writes on a crash (if `CONFIG` is allowed).
    async fn check_persistence(&self) {
        let mut get = ::redis::cmd("CONFIG");
        get.arg("GET").arg("append*");
        match timed(self.redis.conn.query::<HashMap<String, String>>(&get)).await {
            Ok(Ok(config)) => match (config.get("appendonly").map(String::as_str), config.get("appendfsync")) {
                (Some("no"), _) => tracing::warn!(
                    "Redis runs with appendonly no: acknowledged writes can be lost on a Redis crash \
                     (run it with --appendonly yes --appendfsync always)"
                ),
                (Some("yes"), Some(fsync)) if fsync != "always" => tracing::info!(
                    appendfsync = %fsync,
                    "Redis fsyncs its AOF less than once per write: a crash can lose the last second of writes"
                ),
                _ => {}
            },
            Ok(Err(err)) => tracing::debug!(error = %err, "cannot read the Redis persistence settings"),
            Err(_) => tracing::debug!("reading the Redis persistence settings timed out"),
        }
    }

    /// Refuses a Redis that may evict this server's keys unless `allow` (see
    /// [`redis_eviction`]); warns when the policy cannot be read (`CONFIG` not allowed).
    async fn check_eviction(&self, target: &RedisTarget, allow: bool) -> Result<(), StoreError> {
        let mut get = ::redis::cmd("CONFIG");
        get.arg("GET").arg("maxmemory-policy");
        let name = target.to_string();
        let answers = match timed(self.redis.conn.query_masters(&get, &name)).await {
            Ok(Ok(answers)) => answers,
            Ok(Err(err)) => vec![(name, Err(err.to_string()))],
            Err(err) => vec![(name, Err(err.to_string()))],
        };
        redis_eviction::judge(answers, allow)
    }

    async fn gc_now(&self, now_ms: u64, retention_ms: u64) -> Result<GcReport, StoreError> {
        let mut members = ::redis::cmd("SMEMBERS");
        members.arg(namespaces_key(&self.redis.prefix));
        let names: Vec<String> = timed(self.redis.conn.query(&members)).await?.map_err(from_redis)?;
        let mut report = GcReport::default();
        for ns in &names {
            let (removed, _) = self.in_pages(ns, Step::Collect { retention_ms }, "", now_ms).await?;
            report.removed += removed;
            report.namespaces += 1;
        }
        Ok(report)
    }

    /// Runs `step` on every key with `prefix`, a page at a time through the namespace's writer:
    /// each page is one more write in its order. How many keys the pages changed, and the
    /// namespace's cursor after the last one.
    async fn in_pages(&self, ns: &str, step: Step, prefix: &str, now_ms: u64) -> Result<(usize, u64), StoreError> {
        let (mut count, mut after) = (0, None);
        loop {
            let job = Job::Page { step: step.clone(), prefix: prefix.to_owned(), after: after.take(), now_ms };
            match timed(self.writers.submit(&self.redis, ns, job)).await?? {
                Done::Page { count: n, next, cursor } => {
                    count += n;
                    match next {
                        Some(key) => after = Some(key),
                        None => return Ok((count, cursor)),
                    }
                }
                Done::Apply(_) => return Err(StoreError::Redis("a page was answered with a write".into())),
            }
        }
    }

    async fn submit(&self, ns: &str, job: Job) -> Result<OpReport, StoreError> {
        match timed(self.writers.submit(&self.redis, ns, job)).await?? {
            Done::Apply(report) => Ok(report),
            Done::Page { .. } => Err(StoreError::Redis("a write was answered with a page".into())),
        }
    }

    async fn apply_op(&self, ns: &str, op: WriteOp, now_ms: u64) -> Result<OpReport, StoreError> {
        match op {
            WriteOp::Clear(epoch) => {
                let mut report = self.submit(ns, Job::StartClear { epoch, now_ms }).await?;
                // A duplicate may be a clear sent again after it stopped half-way: finish it.
                if let Some(clear) = report.clear.as_mut().filter(|c| c.outcome != MergeOutcome::Stale) {
                    let (tombstoned, cursor) = self.in_pages(ns, Step::Clear, "", now_ms).await?;
                    clear.tombstoned = tombstoned;
                    report.cursor = cursor;
                }
                Ok(report)
            }
            WriteOp::Invalidate(patterns) if patterns.iter().any(|p| !p.is_exact()) => {
                let prefixes = namespace::scan_prefixes(&patterns);
                let (exact, wild): (Vec<KeyPattern>, Vec<KeyPattern>) =
                    patterns.into_iter().partition(KeyPattern::is_exact);
                let mut report = self.submit(ns, Job::Apply { op: WriteOp::Invalidate(exact), now_ms }).await?;
                let step = Step::Invalidate(Arc::new(wild));
                for prefix in prefixes {
                    let (invalidated, cursor) = self.in_pages(ns, step.clone(), &prefix, now_ms).await?;
                    report.invalidated += invalidated;
                    report.cursor = cursor;
                }
                Ok(report)
            }
            op => self.submit(ns, Job::Apply { op, now_ms }).await,
        }
    }

    /// Counts what a namespace holds, a page at a time (each page is one snapshot).
    async fn census_in_pages(&self, ns: &str, now_ms: u64) -> Result<Census, StoreError> {
        let mut census: Option<Census> = None;
        let mut after: Option<String> = None;
        loop {
            let plan = Plan::for_page("", after.as_deref(), PAGE_KEYS);
            let (meta, (headers, next)) = timed(self.redis.read(ns, plan, |snap| {
                Ok((snap.meta()?, Overlay::new(snap).header_page("", after.as_deref())?))
            }))
            .await??;
            let census = census.get_or_insert_with(|| Census { cursor: meta.cursor, ..Census::default() });
            for (_, header) in &headers {
                namespace::count(census, header, &meta, now_ms);
            }
            match next {
                Some(key) => after = Some(key),
                None => return Ok(census.clone()),
            }
        }
    }
}

impl Redis {
    fn keys(&self, ns: &str) -> NsKeys {
        NsKeys::new(&self.prefix, ns)
    }

    async fn fetch(&self, keys: &NsKeys, plan: &Plan) -> Result<Snapshot, StoreError> {
        let answer = self.conn.eval(&self.read, keys, read_args(plan)).await.map_err(from_redis)?;
        Snapshot::new(plan, parse_read_for(plan, answer)?)
    }

    /// Runs `read` on a snapshot holding what it asks for.
    async fn read<T>(
        &self,
        ns: &str,
        mut plan: Plan,
        read: impl Fn(&Snapshot) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let keys = self.keys(ns);
        for _ in 0..MAX_ROUNDS {
            let snap = self.fetch(&keys, &plan).await?;
            let result = read(&snap);
            match snap.take_misses() {
                None => return result,
                Some(misses) => plan.widen(misses),
            }
        }
        Err(StoreError::Redis(format!("no snapshot of namespace {ns:?} held what the read asked for")))
    }

    /// Runs `write` (`namespace::apply` or `collect`, for a group of writes) on a snapshot and
    /// commits what it wrote if nothing changed in between; starts over otherwise. Only one write
    /// of a namespace runs at a time in this process: its writer task's (`redis_group.rs`).
    pub(super) async fn write<T>(
        &self,
        ns: &str,
        mut plan: Plan,
        write: impl Fn(&mut Overlay<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let keys = self.keys(ns);
        let (mut rounds, mut conflicts) = (0, 0);
        loop {
            let snap = self.fetch(&keys, &plan).await?;
            let mut overlay = Overlay::new(&snap);
            let result = write(&mut overlay);
            if let Some(misses) = snap.take_misses() {
                rounds += 1;
                if rounds >= MAX_ROUNDS {
                    return Err(StoreError::Redis(format!(
                        "no snapshot of namespace {ns:?} held what the write asked for"
                    )));
                }
                plan.widen(misses);
                continue;
            }
            let done = result?;
            let commit = overlay.into_commit();
            if commit.is_empty() || self.try_commit(ns, &keys, &commit).await? {
                return Ok(done);
            }
            conflicts += 1;
            if conflicts >= MAX_CONFLICTS {
                return Err(StoreError::Unavailable(format!(
                    "namespace {ns:?}: {conflicts} concurrent writes from other instances won in a row"
                )));
            }
            tokio::time::sleep(jitter(conflicts)).await;
        }
    }

    async fn try_commit(&self, ns: &str, keys: &NsKeys, commit: &Commit) -> Result<bool, StoreError> {
        if commit.expected.is_none() {
            // A new namespace: list it for GC first (a separate key, possibly on another cluster
            // node). Listing one that then fails to commit is harmless.
            let mut add = ::redis::cmd("SADD");
            add.arg(namespaces_key(&self.prefix)).arg(ns);
            self.conn.query::<Value>(&add).await.map_err(from_redis)?;
        }
        let answer = self.conn.eval(&self.commit, keys, commit_args(commit)).await.map_err(from_redis)?;
        parse_commit(&answer)
    }

    async fn meta(&self, ns: &str) -> Result<Meta, StoreError> {
        let mut get = ::redis::cmd("GET");
        get.arg(&self.keys(ns).meta);
        match self.conn.query::<Option<Vec<u8>>>(&get).await.map_err(from_redis)? {
            Some(raw) => decode_meta(&raw),
            None => Ok(Meta::default()),
        }
    }

}

/// Bounds an operation by [`OPERATION_TIMEOUT`].
pub(super) async fn timed<T>(op: impl Future<Output = T>) -> Result<T, StoreError> {
    tokio::time::timeout(OPERATION_TIMEOUT, op).await.map_err(|_| {
        StoreError::Unavailable(format!("Redis did not complete the operation within {OPERATION_TIMEOUT:?}"))
    })
}

/// A random pause before retrying a commit that lost, growing with the number of losses (up to
/// 64 ms), so instances contending for a namespace spread out.
fn jitter(conflicts: u32) -> Duration {
    let ceiling = 1u64 << conflicts.min(6);
    let random = RandomState::new().build_hasher().finish();
    Duration::from_micros(random % (ceiling * 1000))
}

impl Store for RedisStore {
    fn apply<'a>(&'a self, ns: &'a str, op: WriteOp, now_ms: u64) -> StoreFuture<'a, OpReport> {
        Box::pin(self.apply_op(ns, op, now_ms))
    }

    fn delta<'a>(&'a self, ns: &'a str, query: DeltaQuery) -> StoreFuture<'a, Delta> {
        Box::pin(
            async move { timed(self.redis.read(ns, Plan::for_delta(&query), |snap| namespace::delta(snap, &query))).await? },
        )
    }

    fn gc(&self, now_ms: u64, retention_ms: u64) -> StoreFuture<'_, GcReport> {
        Box::pin(self.gc_now(now_ms, retention_ms))
    }

    fn cursor<'a>(&'a self, ns: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move { Ok(timed(self.redis.meta(ns)).await??.cursor) })
    }

    fn census<'a>(&'a self, ns: &'a str, now_ms: u64) -> StoreFuture<'a, Census> {
        Box::pin(self.census_in_pages(ns, now_ms))
    }

    fn entries<'a>(&'a self, ns: &'a str, query: EntriesQuery) -> StoreFuture<'a, EntriesPage> {
        Box::pin(async move {
            timed(self.redis.read(ns, Plan::for_entries(&query), |snap| namespace::entries(snap, &query))).await?
        })
    }

    /// A `PING` (on a cluster, to every master): Redis answers, and the connection to it works.
    fn health(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            timed(self.redis.conn.query::<Value>(&::redis::cmd("PING"))).await?.map_err(from_redis)?;
            Ok(())
        })
    }

    fn kind(&self) -> &'static str {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_are_unavailable() {
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(from_redis(refused), StoreError::Unavailable(_)));
        let timeout = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(matches!(from_redis(timeout), StoreError::Unavailable(_)));
        let wrong = RedisError::from((ErrorKind::Server(ServerErrorKind::ResponseError), "WRONGTYPE"));
        assert!(matches!(from_redis(wrong), StoreError::Redis(_)));
    }

    #[test]
    fn jitter_stays_small() {
        for conflicts in 0..100 {
            assert!(jitter(conflicts) < Duration::from_millis(64));
        }
    }
}
