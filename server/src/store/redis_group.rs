//! Group commit for the Redis store: the writes to one namespace queue for one writer task, which
//! applies every write queued meanwhile on one snapshot and commits them all with one script call.
//!
//! Why: a write costs two round trips (the snapshot, then the commit) and, with `appendfsync
//! always`, one fsync by Redis; writes to a namespace must not overlap (an instance would conflict
//! with itself), so one at a time they cap a namespace at one write per round trips + fsync. As a
//! group they share both, the way redb's writer thread shares one fsync among the queued writes.
//! The writes of a group are applied in the order they arrived, each on the overlay the previous
//! ones left, so each one's report (cursors, sequence numbers, outcomes) is what it would have
//! been alone in that order.
//!
//! A namespace's writer task exists while writes are queued for it, and leaves when its queue is
//! empty (under the map's lock, so no write can be queued for a task that is leaving). The task
//! runs a group to the end even if the callers waiting for it went away: another caller's write
//! may be in the same group.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use mfe_shared_cache_core::{KeyPattern, Stamp};
use tokio::sync::{mpsc, oneshot};

use super::redis::{timed, Redis};
use super::redis_snapshot::{Overlay, Plan};
use super::{NsWrite, OpReport, StoreError, WriteOp};
use crate::namespace;

/// Most writes committed together (bounds the size of one commit script and the latency it adds
/// to the first of them).
const MAX_GROUP: usize = 256;
/// Keys per page of a step-wise scan (garbage collection, clear, wildcard invalidation, census):
/// one page is one read script and one commit script, so a large namespace never holds Redis for
/// a whole scan, and its writes go on between the pages.
pub(crate) const PAGE_KEYS: u64 = 1000;

/// A write to one namespace.
pub(crate) enum Job {
    /// A [`WriteOp`], as [`super::Store::apply`] takes it (a clear or a wildcard invalidation
    /// only as [`Job::StartClear`] and pages: no job visits more than a page of keys).
    Apply { op: WriteOp, now_ms: u64 },
    /// The first step of a clear: the epoch, no key visited (see [`namespace::start_clear`]).
    StartClear { epoch: Stamp, now_ms: u64 },
    /// One page of a step-wise scan: the keys with `prefix` after `after` (from the first when
    /// `None`), [`PAGE_KEYS`] of them.
    Page { step: Step, prefix: String, after: Option<String>, now_ms: u64 },
}

/// What a page of a step-wise scan does to its keys.
#[derive(Clone)]
pub(crate) enum Step {
    /// Garbage collection: forgets entries dead for longer than the retention.
    Collect { retention_ms: u64 },
    /// Tombstones the values the namespace's clear epoch removes.
    Clear,
    /// Tombstones the live values these wildcard patterns match.
    Invalidate(Arc<Vec<KeyPattern>>),
}

/// What a [`Job`] did.
pub(crate) enum Done {
    Apply(OpReport),
    /// How many entries the page forgot or tombstoned, the key to go on after (`None`: it was
    /// the last), and the namespace's cursor after it.
    Page { count: usize, next: Option<String>, cursor: u64 },
}

impl Job {
    /// What the job will read of the snapshot.
    fn plan(&self) -> Plan {
        match self {
            Job::Apply { op, .. } => Plan::for_write(op),
            Job::StartClear { .. } => Plan::default(),
            Job::Page { prefix, after, .. } => Plan::for_page(prefix, after.as_deref(), PAGE_KEYS),
        }
    }

    fn run(&self, txn: &mut Overlay<'_>) -> Result<Done, StoreError> {
        match self {
            Job::Apply { op, now_ms } => namespace::apply(txn, op, *now_ms).map(Done::Apply),
            Job::StartClear { epoch, now_ms } => namespace::start_clear(txn, epoch, *now_ms).map(Done::Apply),
            Job::Page { step, prefix, after, now_ms } => {
                let (headers, next) = txn.header_page(prefix, after.as_deref())?;
                let count = match step {
                    Step::Collect { retention_ms } => namespace::collect_these(txn, headers, *now_ms, *retention_ms)?,
                    Step::Clear => namespace::clear_page(txn, headers, *now_ms)?,
                    Step::Invalidate(patterns) => namespace::invalidate_page(txn, patterns, headers, *now_ms)?,
                };
                Ok(Done::Page { count, next, cursor: txn.meta()?.cursor })
            }
        }
    }
}

struct Queued {
    job: Job,
    reply: oneshot::Sender<Result<Done, StoreError>>,
}

/// The queues of the namespaces being written, one writer task each.
#[derive(Default)]
pub(crate) struct Writers {
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Queued>>>,
}

impl Writers {
    /// Queues `job` for `ns`'s writer task (starting one if there is none) and waits for its
    /// outcome, durable in Redis once it is `Ok`.
    pub async fn submit(self: &Arc<Self>, redis: &Redis, ns: &str, job: Job) -> Result<Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        {
            let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
            let queued = Queued { job, reply };
            let unsent = match queues.get(ns) {
                // A send fails only if the task is gone without leaving (it panicked).
                Some(queue) => queue.send(queued).err().map(|mpsc::error::SendError(back)| back),
                None => Some(queued),
            };
            if let Some(queued) = unsent {
                let (queue, jobs) = mpsc::unbounded_channel();
                // The receiver is alive: the send cannot fail.
                let _ = queue.send(queued);
                queues.insert(ns.to_owned(), queue);
                tokio::spawn(run_writer(self.clone(), redis.clone(), ns.to_owned(), jobs));
            }
        }
        answer.await.map_err(|_| StoreError::Unavailable(format!("the writer of namespace {ns:?} stopped")))?
    }
}

/// A namespace's writer task: takes whatever is queued, up to [`MAX_GROUP`], and commits it as one.
async fn run_writer(writers: Arc<Writers>, redis: Redis, ns: String, mut jobs: mpsc::UnboundedReceiver<Queued>) {
    loop {
        let mut group = Vec::new();
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(queued) => group.push(queued),
                Err(_) => break,
            }
        }
        if group.is_empty() {
            let mut queues = writers.queues.lock().unwrap_or_else(PoisonError::into_inner);
            match jobs.try_recv() {
                Ok(queued) => group.push(queued),
                Err(_) => {
                    queues.remove(&ns);
                    return;
                }
            }
        }
        commit_group(&redis, &ns, group).await;
    }
}

/// Commits a group and answers each of its writes. When it fails for a reason other than Redis
/// being unavailable, each write is retried alone, so one failing write (a corrupt row, say) does
/// not fail the writes queued beside it.
async fn commit_group(redis: &Redis, ns: &str, group: Vec<Queued>) {
    let jobs: Vec<&Job> = group.iter().map(|queued| &queued.job).collect();
    match run_group(redis, ns, &jobs).await {
        Ok(done) => {
            for (queued, done) in group.into_iter().zip(done) {
                let _ = queued.reply.send(Ok(done));
            }
        }
        Err(err) if group.len() == 1 || matches!(err, StoreError::Unavailable(_)) => {
            for queued in group {
                let _ = queued.reply.send(Err(clone_error(&err)));
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, writes = group.len(), ns, "Redis group commit failed; retrying each write alone");
            for queued in group {
                let alone = run_group(redis, ns, &[&queued.job]).await;
                let _ = queued.reply.send(alone.and_then(|mut done| {
                    done.pop().ok_or_else(|| StoreError::Redis("a write was committed without a report".into()))
                }));
            }
        }
    }
}

/// Applies `jobs` in order on one snapshot and commits what they wrote together.
async fn run_group(redis: &Redis, ns: &str, jobs: &[&Job]) -> Result<Vec<Done>, StoreError> {
    let mut plan = Plan::default();
    for job in jobs {
        plan.merge(job.plan());
    }
    timed(redis.write(ns, plan, |txn| jobs.iter().map(|job| job.run(txn)).collect())).await?
}

/// The same error for every write of a failed group ([`StoreError`] holds a redb error, which
/// is not `Clone`; a Redis store never makes one).
fn clone_error(err: &StoreError) -> StoreError {
    match err {
        StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
        StoreError::Corrupt(why) => StoreError::Corrupt(why.clone()),
        StoreError::Redis(why) => StoreError::Redis(why.clone()),
        StoreError::Io(why) => StoreError::Io(why.clone()),
        StoreError::EvictingRedis { node, policy } => {
            StoreError::EvictingRedis { node: node.clone(), policy: policy.clone() }
        }
        StoreError::Database(err) => StoreError::Redis(err.to_string()),
    }
}
