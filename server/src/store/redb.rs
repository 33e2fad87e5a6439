//! The durable store: one redb file (`<data dir>/cache.redb`).
//!
//! Tables (every key starts with the namespace, so one namespace's rows are contiguous):
//! - `entries`: `(namespace, key)` → encoded entry + its sequence number;
//! - `by_seq`:  `(namespace, seq)` → key; the row of a replaced write is deleted, so a delta is
//!   one range scan from `(namespace, lastSync + 1)`;
//! - `meta`:    `namespace` → cursor, clear epoch and GC floor;
//! - `schema`:  the layout version, checked at open.
//!
//! Writes go through one writer thread that applies whatever writes are queued in a single
//! transaction and commits it (fsync) before answering any of them: a write is acknowledged only
//! once durable, and concurrent writers share one fsync (group commit) instead of queueing for
//! one each. redb allows one writer at a time anyway, so this serialises writes per namespace
//! (and across namespaces) without holding a blocking thread per waiting request. Reads are MVCC
//! snapshots on the blocking pool and never wait for the writer.
//!
//! After an I/O error (a full disk) the writer reopens the database by itself, and `/healthz`
//! reports the fault until a commit succeeds again (`redb_recovery.rs`).
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use super::codec::{decode_header, decode_meta, decode_stored, encode_meta, encode_stored};
use super::redb_recovery::{classify, Recovery, Shared};
use super::{
    Census, Delta, DeltaQuery, EntriesPage, EntriesQuery, GcReport, Header, Meta, NsRead, NsWrite, OpReport, Row,
    Store, StoreError, StoreFuture, Stored, WriteOp,
};
use crate::namespace;

pub use super::redb_recovery::{Opener, PROBE_BYTES, RETRY_INTERVAL};

const ENTRIES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("entries");
const BY_SEQ: TableDefinition<(&str, u64), &str> = TableDefinition::new("by_seq");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const SCHEMA: TableDefinition<&str, u64> = TableDefinition::new("schema");
const SCHEMA_VERSION: u64 = 1;

/// The database file inside the data directory.
pub const FILE_NAME: &str = "cache.redb";

/// Writes waiting for the writer thread before callers feel back-pressure.
const QUEUE_DEPTH: usize = 1024;
/// Most writes committed together (bounds the latency one commit adds to the first of them).
const MAX_GROUP: usize = 256;
/// A delta read that can hold at most this many rows (by the cursor) runs on the request's own
/// thread (see [`RedbStore::read_inline`]); a larger one on the blocking pool.
const INLINE_ROWS: u64 = 32;

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(err: $t) -> Self {
                classify(err.into())
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    std::io::Error
);

/// The redb-backed store.
pub struct RedbStore {
    shared: Arc<Shared>,
    path: PathBuf,
    tasks: Option<mpsc::Sender<Task>>,
    writer: Option<JoinHandle<()>>,
    /// One health probe at a time; the calls waiting meanwhile take its answer.
    probing: tokio::sync::Mutex<()>,
}

enum Task {
    Apply {
        ns: String,
        op: WriteOp,
        now_ms: u64,
        reply: oneshot::Sender<Result<OpReport, StoreError>>,
    },
    Gc {
        now_ms: u64,
        retention_ms: u64,
        reply: oneshot::Sender<Result<GcReport, StoreError>>,
    },
    /// Reopen the database if an I/O error poisoned it, then commit a probe row (`/healthz`).
    Probe {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// A read met an I/O error: reopen the database if it is poisoned (no answer).
    Recover,
}

impl Task {
    fn is_write(&self) -> bool {
        matches!(self, Task::Apply { .. } | Task::Gc { .. })
    }

    /// Answers the task with `err` (writes and probes; a recovery has nobody to tell).
    fn fail(self, err: StoreError) {
        match self {
            Task::Apply { reply, .. } => drop(reply.send(Err(err))),
            Task::Gc { reply, .. } => drop(reply.send(Err(err))),
            Task::Probe { reply } => drop(reply.send(Err(err))),
            Task::Recover => {}
        }
    }
}

enum Done {
    Apply(OpReport),
    Gc(GcReport),
}

impl RedbStore {
    /// Opens (or creates) the store in `dir`. Fails if another process has it open.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let file = path.clone();
        Self::open_with(path, Box::new(move || Database::create(&file)))
    }

    /// Opens the store with `opener`, which is called again whenever the database must be
    /// reopened after an I/O error; `path` is only reported by [`RedbStore::path`].
    pub fn open_with(path: PathBuf, opener: Opener) -> Result<Self, StoreError> {
        let recovery = Recovery::new(opener, prepare);
        let db = recovery.open().map_err(|err| match err {
            StoreError::Corrupt(why) => StoreError::Corrupt(format!("{}: {why}", path.display())),
            other => other,
        })?;
        let shared = Arc::new(Shared::new(db));
        let (tasks, queue) = mpsc::channel(QUEUE_DEPTH);
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("redb-writer".into())
            .spawn(move || run_writer(&writer_shared, recovery, queue))?;
        Ok(RedbStore { shared, path, tasks: Some(tasks), writer: Some(writer), probing: tokio::sync::Mutex::new(()) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn submit<T>(&self, task: Task, reply: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
        let tasks = self.tasks.as_ref().ok_or_else(|| StoreError::Unavailable("the store is closed".into()))?;
        tasks.send(task).await.map_err(|_| StoreError::Unavailable("the writer thread stopped".into()))?;
        reply.await.map_err(|_| StoreError::Unavailable("the writer thread stopped".into()))?
    }

    /// Runs `read` on an MVCC snapshot of `ns`, on the blocking pool: for reads whose size the
    /// caller does not bound (`/stats` censuses, `/entries` pages that may skip many tombstones).
    fn read<T: Send + 'static>(
        &self,
        ns: &str,
        read: impl FnOnce(&Reader<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        let shared = self.shared.clone();
        let tasks = self.tasks.clone();
        let ns = ns.to_owned();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || read_snapshot(&shared, tasks.as_ref(), &ns, read))
                .await
                .map_err(|err| StoreError::Unavailable(format!("read task failed: {err}")))?
        })
    }

    /// Runs `read` on an MVCC snapshot of `ns` right here, on the calling task's thread: for the
    /// small bounded reads every `/sync` makes (the cursor, a delta page of at most `max_rows`
    /// rows). Handing those to the blocking pool cost more than the read itself: two thread
    /// switches per request, and under load dozens of pool threads competing with the runtime's
    /// workers for the cores, which showed as a long latency tail. Readers never wait for the
    /// writer (redb is MVCC) and the rows just written are in the page cache.
    fn read_inline<T>(&self, ns: &str, read: impl FnOnce(&Reader<'_>) -> Result<T, StoreError>) -> StoreFuture<'_, T>
    where
        T: Send + 'static,
    {
        let result = read_snapshot(&self.shared, self.tasks.as_ref(), ns, read);
        Box::pin(std::future::ready(result))
    }

    /// Whether the store can write: the last commit's outcome, or a probe while it failed.
    async fn check_health(&self) -> Result<(), StoreError> {
        if self.shared.fault().is_none() {
            return Ok(());
        }
        let _turn = self.probing.lock().await;
        if self.shared.fault().is_none() {
            return Ok(());
        }
        if let Some(reason) = self.shared.recently_probed_fault() {
            return Err(StoreError::Io(reason));
        }
        let (reply, answer) = oneshot::channel();
        self.submit(Task::Probe { reply }, answer).await
    }
}

/// Runs `read` on a snapshot of `ns`. An I/O failure faults the store and asks the writer to
/// reopen the database.
fn read_snapshot<T>(
    shared: &Shared,
    tasks: Option<&mpsc::Sender<Task>>,
    ns: &str,
    read: impl FnOnce(&Reader<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let snapshot = |db: &Database| {
        let txn = db.begin_read()?;
        let reader = Reader {
            ns,
            entries: txn.open_table(ENTRIES)?,
            by_seq: txn.open_table(BY_SEQ)?,
            meta: txn.open_table(META)?,
        };
        read(&reader)
    };
    let result = shared.database().and_then(|db| snapshot(&db));
    result.map_err(|err| {
        let err = shared.failed(err);
        if matches!(err, StoreError::Io(_)) {
            // Nobody may write for a while: have the writer reopen it now. A full queue holds
            // writes, which reopen it anyway.
            if let Some(tasks) = tasks {
                let _ = tasks.try_send(Task::Recover);
            }
        }
        err
    })
}

/// Creates the tables of a new database, or checks the layout version of an existing one.
fn prepare(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        txn.open_table(ENTRIES)?;
        txn.open_table(BY_SEQ)?;
        txn.open_table(META)?;
        let mut schema = txn.open_table(SCHEMA)?;
        let found = schema.get("version")?.map(|v| v.value());
        match found {
            None => {
                schema.insert("version", SCHEMA_VERSION)?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(StoreError::Corrupt(format!(
                    "the database has layout version {other}; this server reads version {SCHEMA_VERSION}"
                )))
            }
        }
    }
    txn.commit()?;
    Ok(())
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and exit; joining it releases
        // the database file, so the same directory can be reopened right away.
        self.tasks = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Store for RedbStore {
    fn apply<'a>(&'a self, ns: &'a str, op: WriteOp, now_ms: u64) -> StoreFuture<'a, OpReport> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.submit(Task::Apply { ns: ns.to_owned(), op, now_ms, reply }, answer).await
        })
    }

    fn delta<'a>(&'a self, ns: &'a str, query: DeltaQuery) -> StoreFuture<'a, Delta> {
        Box::pin(async move {
            // Most deltas are a few rows: read them here. One that may be larger (a client
            // catching up, or polling a busy namespace) is read on the blocking pool rather than
            // hold up this thread and the requests queued behind it: measured, reading ~180 rows
            // here cost the /sync tail more than the pool's thread switches. A delta holds at
            // most one row per sequence number above the client's cursor.
            let small = self
                .read_inline(ns, |reader| {
                    let cursor = reader.meta()?.cursor;
                    let since = if query.last_sync > cursor { 0 } else { query.last_sync };
                    if cursor - since <= INLINE_ROWS {
                        namespace::delta(reader, &query).map(Some)
                    } else {
                        Ok(None)
                    }
                })
                .await?;
            match small {
                Some(delta) => Ok(delta),
                None => self.read(ns, move |reader| namespace::delta(reader, &query)).await,
            }
        })
    }

    fn gc(&self, now_ms: u64, retention_ms: u64) -> StoreFuture<'_, GcReport> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.submit(Task::Gc { now_ms, retention_ms, reply }, answer).await
        })
    }

    fn cursor<'a>(&'a self, ns: &'a str) -> StoreFuture<'a, u64> {
        self.read_inline(ns, |reader| reader.meta().map(|meta| meta.cursor))
    }

    fn census<'a>(&'a self, ns: &'a str, now_ms: u64) -> StoreFuture<'a, Census> {
        self.read(ns, move |reader| namespace::census(reader, now_ms))
    }

    fn entries<'a>(&'a self, ns: &'a str, query: EntriesQuery) -> StoreFuture<'a, EntriesPage> {
        self.read(ns, move |reader| namespace::entries(reader, &query))
    }

    fn health(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.check_health())
    }

    fn kind(&self) -> &'static str {
        "redb"
    }
}

fn run_writer(shared: &Shared, mut recovery: Recovery, mut queue: mpsc::Receiver<Task>) {
    while let Some(first) = queue.blocking_recv() {
        let mut tasks = vec![first];
        while tasks.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(task) => tasks.push(task),
                Err(_) => break,
            }
        }
        let (writes, others): (Vec<Task>, Vec<Task>) = tasks.into_iter().partition(Task::is_write);
        if !writes.is_empty() {
            match recovery.writable(shared) {
                Ok(db) => write_group(shared, &db, writes),
                Err(()) => {
                    let reason = shared.reason();
                    for task in writes {
                        task.fail(StoreError::Io(reason.clone()));
                    }
                }
            }
        }
        let (probes, recoveries): (Vec<Task>, Vec<Task>) =
            others.into_iter().partition(|task| matches!(task, Task::Probe { .. }));
        if probes.is_empty() {
            if !recoveries.is_empty() {
                // A read found the database poisoned: reopen it now rather than at the next write.
                let _ = recovery.writable(shared);
            }
            continue;
        }
        // Probes queued together share one (it reopens the database too).
        let outcome = recovery.probe(shared);
        for probe in probes {
            match (&outcome, probe) {
                (Ok(()), Task::Probe { reply }) => drop(reply.send(Ok(()))),
                (Err(reason), task) => task.fail(StoreError::Io(reason.clone())),
                _ => {}
            }
        }
    }
}

/// Commits a group of tasks together. If the disk failed, every task fails alike (and the
/// database is reopened before the next); if something else did, each task is retried alone, so
/// one failing task (a corrupt row, say) does not fail the writes queued beside it.
fn write_group(shared: &Shared, db: &Database, group: Vec<Task>) {
    match commit_group(db, &group).map_err(|err| shared.failed(err)) {
        Ok(done) => {
            shared.succeeded();
            for (task, done) in group.into_iter().zip(done) {
                match (task, done) {
                    (Task::Apply { reply, .. }, Done::Apply(report)) => drop(reply.send(Ok(report))),
                    (Task::Gc { reply, .. }, Done::Gc(report)) => drop(reply.send(Ok(report))),
                    // commit_group answers task by task, in order, with the matching kind.
                    _ => {}
                }
            }
        }
        Err(StoreError::Io(reason)) => {
            tracing::error!(error = %reason, tasks = group.len(), "store write failed: the disk failed");
            for task in group {
                task.fail(StoreError::Io(reason.clone()));
            }
        }
        Err(err) if group.len() == 1 => {
            tracing::error!(error = %err, "store write failed");
            if let Some(task) = group.into_iter().next() {
                task.fail(err);
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, tasks = group.len(), "group commit failed; retrying each write alone");
            for task in group {
                write_group(shared, db, vec![task]);
            }
        }
    }
}

fn commit_group(db: &Database, group: &[Task]) -> Result<Vec<Done>, StoreError> {
    let mut txn = db.begin_write()?;
    // Commits also save the allocator state, so reopening after a crash (kill -9, power loss)
    // takes no full-file repair; group commit pays for the slower commit.
    txn.set_quick_repair(true);
    let mut done = Vec::with_capacity(group.len());
    {
        let mut tables =
            Tables { entries: txn.open_table(ENTRIES)?, by_seq: txn.open_table(BY_SEQ)?, meta: txn.open_table(META)? };
        for task in group {
            done.push(match task {
                Task::Apply { ns, op, now_ms, .. } => {
                    Done::Apply(namespace::apply(&mut NsTables { ns, t: &mut tables }, op, *now_ms)?)
                }
                Task::Gc { now_ms, retention_ms, .. } => Done::Gc(collect_all(&mut tables, *now_ms, *retention_ms)?),
                Task::Probe { .. } | Task::Recover => {
                    return Err(StoreError::Unavailable("not a write: the writer handles it apart".into()))
                }
            });
        }
    }
    txn.commit()?;
    Ok(done)
}

fn collect_all(tables: &mut Tables<'_>, now_ms: u64, retention_ms: u64) -> Result<GcReport, StoreError> {
    let mut names = Vec::new();
    for row in tables.meta.iter()? {
        names.push(row?.0.value().to_owned());
    }
    let mut report = GcReport::default();
    for ns in &names {
        report.removed += namespace::collect(&mut NsTables { ns, t: tables }, now_ms, retention_ms)?;
        report.namespaces += 1;
    }
    Ok(report)
}

struct Tables<'t> {
    entries: redb::Table<'t, (&'static str, &'static str), &'static [u8]>,
    by_seq: redb::Table<'t, (&'static str, u64), &'static str>,
    meta: redb::Table<'t, &'static str, &'static [u8]>,
}

/// The tables of one write transaction, seen as one namespace.
struct NsTables<'a, 't> {
    ns: &'a str,
    t: &'a mut Tables<'t>,
}

impl NsWrite for NsTables<'_, '_> {
    fn meta(&mut self) -> Result<Meta, StoreError> {
        match self.t.meta.get(self.ns)? {
            Some(row) => decode_meta(row.value()),
            None => Ok(Meta::default()),
        }
    }

    fn put_meta(&mut self, meta: &Meta) -> Result<(), StoreError> {
        self.t.meta.insert(self.ns, encode_meta(meta).as_slice())?;
        Ok(())
    }

    fn get(&mut self, key: &str) -> Result<Option<Stored>, StoreError> {
        match self.t.entries.get((self.ns, key))? {
            Some(row) => decode_stored(row.value()).map(Some),
            None => Ok(None),
        }
    }

    fn put(&mut self, key: &str, stored: &Stored, replaced_seq: Option<u64>) -> Result<(), StoreError> {
        if let Some(seq) = replaced_seq {
            self.t.by_seq.remove((self.ns, seq))?;
        }
        self.t.by_seq.insert((self.ns, stored.seq), key)?;
        self.t.entries.insert((self.ns, key), encode_stored(stored).as_slice())?;
        Ok(())
    }

    fn forget(&mut self, key: &str, seq: u64) -> Result<(), StoreError> {
        self.t.by_seq.remove((self.ns, seq))?;
        self.t.entries.remove((self.ns, key))?;
        Ok(())
    }

    fn headers(&mut self, prefix: &str) -> Result<Vec<(String, Header)>, StoreError> {
        let mut headers = Vec::new();
        for row in self.t.entries.range((self.ns, prefix)..)? {
            let (key, value) = row?;
            let (ns, key) = key.value();
            if ns != self.ns || !key.starts_with(prefix) {
                break;
            }
            headers.push((key.to_owned(), decode_header(value.value())?));
        }
        Ok(headers)
    }
}

/// One read snapshot, seen as one namespace.
struct Reader<'a> {
    ns: &'a str,
    entries: redb::ReadOnlyTable<(&'static str, &'static str), &'static [u8]>,
    by_seq: redb::ReadOnlyTable<(&'static str, u64), &'static str>,
    meta: redb::ReadOnlyTable<&'static str, &'static [u8]>,
}

impl NsRead for Reader<'_> {
    fn meta(&self) -> Result<Meta, StoreError> {
        match self.meta.get(self.ns)? {
            Some(row) => decode_meta(row.value()),
            None => Ok(Meta::default()),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Stored>, StoreError> {
        match self.entries.get((self.ns, key))? {
            Some(row) => decode_stored(row.value()).map(Some),
            None => Ok(None),
        }
    }

    fn scan_after(
        &self,
        after: u64,
        visit: &mut dyn FnMut(u64, String) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for row in self.by_seq.range((self.ns, after.saturating_add(1))..=(self.ns, u64::MAX))? {
            let (seq, key) = row?;
            if !visit(seq.value().1, key.value().to_owned())? {
                break;
            }
        }
        Ok(())
    }

    fn scan_keys(
        &self,
        from: &str,
        visit: &mut dyn FnMut(&str, &dyn Row) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for row in self.entries.range((self.ns, from)..)? {
            let (key, value) = row?;
            let (ns, key) = key.value();
            if ns != self.ns {
                break;
            }
            if !visit(key, &Encoded(value.value()))? {
                break;
            }
        }
        Ok(())
    }
}

/// An `entries` row as stored: the header is decoded without copying the value.
struct Encoded<'a>(&'a [u8]);

impl Row for Encoded<'_> {
    fn header(&self) -> Result<Header, StoreError> {
        decode_header(self.0)
    }

    fn stored(&self) -> Result<Stored, StoreError> {
        decode_stored(self.0)
    }
}
