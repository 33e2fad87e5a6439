//! Change announcements: how an event stream learns that its namespace moved on.
//!
//! The announcement carries no data, only "namespace `ns` is at cursor `n` now": each stream then
//! reads the rows past its own cursor from the store, the same delta read `/sync` makes. So the
//! store's sequence alone decides what a stream sends and in which order, and an announcement
//! that is lost, late, duplicated or reordered (another instance's, relayed through Redis) can
//! only delay a stream until its next announcement or periodic re-check, never make it skip or
//! repeat a change.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::sync::{mpsc, watch};

use crate::store::{
    Census, Delta, DeltaQuery, EntriesPage, EntriesQuery, GcReport, OpReport, Store, StoreFuture, WriteOp,
};

/// One namespace's new cursor, for other server instances.
pub type Announcement = (Arc<str>, u64);

/// This instance's announcement board.
#[derive(Debug)]
pub struct Feed {
    channels: Mutex<HashMap<Arc<str>, watch::Sender<u64>>>,
    closing: watch::Sender<bool>,
    /// Where announcements of this instance's writes go for other instances (set by a bus).
    outbox: OnceLock<mpsc::UnboundedSender<Announcement>>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed { channels: Mutex::default(), closing: watch::channel(false).0, outbox: OnceLock::new() }
    }
}

impl Feed {
    /// A board with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes on every announcement for `ns` after this call (its value: the highest cursor
    /// announced, a hint only).
    pub fn subscribe(&self, ns: &Arc<str>) -> watch::Receiver<u64> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels.entry(ns.clone()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// Tells this instance's streams of `ns` that it is at `cursor`.
    pub fn notify(&self, ns: &str, cursor: u64) {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = channels.get(ns) {
            if sender.receiver_count() == 0 {
                channels.remove(ns);
            } else {
                sender.send_modify(|c| *c = (*c).max(cursor));
            }
        }
    }

    /// A write of this instance moved `ns` to `cursor`: tells this instance's streams and, when a
    /// bus is attached, the other instances'.
    pub fn announce(&self, ns: &str, cursor: u64) {
        self.notify(ns, cursor);
        if let Some(outbox) = self.outbox.get() {
            let _ = outbox.send((Arc::from(ns), cursor));
        }
    }

    /// Wakes every stream (a bus reconnected and may have missed announcements).
    pub fn wake_all(&self) {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        for sender in channels.values() {
            sender.send_modify(|_| {});
        }
    }

    /// Attaches a bus: this instance's announcements are sent to `outbox` too. Only the first
    /// attach counts; returns whether this one did.
    pub fn attach(&self, outbox: mpsc::UnboundedSender<Announcement>) -> bool {
        self.outbox.set(outbox).is_ok()
    }

    /// The server is shutting down: every stream ends (so graceful shutdown is not held up by
    /// connections that never finish by themselves).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Feed::close`] was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut closing = self.closing.subscribe();
        async move {
            let _ = closing.wait_for(|closed| *closed).await;
        }
    }

    /// Streams currently subscribed (tests and diagnostics).
    pub fn subscribers(&self) -> usize {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels.values().map(watch::Sender::receiver_count).sum()
    }
}

/// A store that announces every write that moved a namespace's cursor, once it is durable.
pub struct AnnouncingStore {
    inner: Arc<dyn Store>,
    feed: Arc<Feed>,
}

impl AnnouncingStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>, feed: Arc<Feed>) -> Self {
        AnnouncingStore { inner, feed }
    }
}

impl Store for AnnouncingStore {
    fn apply<'a>(&'a self, ns: &'a str, op: WriteOp, now_ms: u64) -> StoreFuture<'a, OpReport> {
        Box::pin(async move {
            let report = self.inner.apply(ns, op, now_ms).await?;
            if report.cursor != report.cursor_before {
                self.feed.announce(ns, report.cursor);
            }
            Ok(report)
        })
    }

    fn delta<'a>(&'a self, ns: &'a str, query: DeltaQuery) -> StoreFuture<'a, Delta> {
        self.inner.delta(ns, query)
    }

    // A collection moves cursors without a row to deliver: streams learn the new cursor at their
    // next read, nobody needs waking for it.
    fn gc(&self, now_ms: u64, retention_ms: u64) -> StoreFuture<'_, GcReport> {
        self.inner.gc(now_ms, retention_ms)
    }

    fn cursor<'a>(&'a self, ns: &'a str) -> StoreFuture<'a, u64> {
        self.inner.cursor(ns)
    }

    fn census<'a>(&'a self, ns: &'a str, now_ms: u64) -> StoreFuture<'a, Census> {
        self.inner.census(ns, now_ms)
    }

    fn entries<'a>(&'a self, ns: &'a str, query: EntriesQuery) -> StoreFuture<'a, EntriesPage> {
        self.inner.entries(ns, query)
    }

    fn health(&self) -> StoreFuture<'_, ()> {
        self.inner.health()
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_wake_on_announcements_of_their_namespace_only() {
        let feed = Feed::new();
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let mut on_a = feed.subscribe(&a);
        let on_b = feed.subscribe(&b);
        feed.announce("a", 7);
        assert!(on_a.has_changed().unwrap());
        assert_eq!(*on_a.borrow_and_update(), 7);
        assert!(!on_b.has_changed().unwrap());
        // A late, lower announcement wakes but does not lower the hint.
        feed.notify("a", 3);
        assert!(on_a.has_changed().unwrap());
        assert_eq!(*on_a.borrow_and_update(), 7);
        feed.wake_all();
        assert!(on_b.has_changed().unwrap());
        assert_eq!(feed.subscribers(), 2);
        drop(on_a);
        feed.notify("a", 8);
        assert_eq!(feed.subscribers(), 1, "a namespace nobody follows is forgotten");
    }

    #[tokio::test]
    async fn an_attached_bus_gets_this_instances_announcements() {
        let feed = Feed::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        assert!(feed.attach(tx));
        feed.announce("ns", 42);
        feed.notify("ns", 43); // from another instance: not sent back out
        assert_eq!(rx.recv().await, Some((Arc::from("ns"), 42)));
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn close_resolves_closed() {
        let feed = Feed::new();
        let closed = feed.closed();
        feed.close();
        closed.await;
        feed.closed().await;
    }
}
