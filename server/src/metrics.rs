//! Counters behind `GET /api/cache/stats`, kept per namespace (a token sees its own traffic only)
//! in atomics, since the server started; and each namespace's last census, reused while it is
//! still exact so that polling `/stats` does not scan the namespace every time.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::auth::Namespace;
use crate::store::Census;

/// The endpoints that are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /sync`
    Sync,
    /// `POST /set`
    Set,
    /// `POST /remove`
    Remove,
    /// `POST /clear`
    Clear,
    /// `POST /invalidate`
    Invalidate,
    /// `GET /entries`
    Entries,
    /// `GET /stats`
    Stats,
}

impl Endpoint {
    /// Every endpoint, in the order `/stats` lists them.
    pub const ALL: [Endpoint; 7] = [
        Endpoint::Sync,
        Endpoint::Set,
        Endpoint::Remove,
        Endpoint::Clear,
        Endpoint::Invalidate,
        Endpoint::Entries,
        Endpoint::Stats,
    ];

    /// The last path segment, which is also its name in `/stats`.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Sync => "sync",
            Endpoint::Set => "set",
            Endpoint::Remove => "remove",
            Endpoint::Clear => "clear",
            Endpoint::Invalidate => "invalidate",
            Endpoint::Entries => "entries",
            Endpoint::Stats => "stats",
        }
    }

    fn from_path(path: &str) -> Option<Self> {
        let last = path.rsplit('/').next()?;
        Self::ALL.into_iter().find(|e| e.name() == last)
    }
}

/// One namespace's counters.
#[derive(Debug, Default)]
pub struct NsMetrics {
    requests: [AtomicU64; Endpoint::ALL.len()],
    errors: [AtomicU64; Endpoint::ALL.len()],
    sync_updates_served: AtomicU64,
    entries_full: AtomicU64,
    entries_not_modified: AtomicU64,
    keys_invalidated: AtomicU64,
    census: Mutex<Option<Census>>,
}

/// A snapshot of one namespace's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests per endpoint (in [`Endpoint::ALL`] order), whatever their answer.
    pub requests: [u64; Endpoint::ALL.len()],
    /// Of those, answered with a 4xx or 5xx.
    pub errors: [u64; Endpoint::ALL.len()],
    /// Updates sent in `/sync` answers.
    pub sync_updates_served: u64,
    /// `/entries` answered in full (200).
    pub entries_full: u64,
    /// `/entries` answered 304 Not Modified.
    pub entries_not_modified: u64,
    /// Keys tombstoned by `/invalidate`.
    pub keys_invalidated: u64,
}

impl NsMetrics {
    /// Counts updates sent in a `/sync` answer.
    pub fn sync_updates(&self, n: usize) {
        self.sync_updates_served.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts an `/entries` answer: 304 (`not_modified`) or 200.
    pub fn entries_answer(&self, not_modified: bool) {
        let counter = if not_modified { &self.entries_not_modified } else { &self.entries_full };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts keys tombstoned by an invalidation.
    pub fn invalidated(&self, n: usize) {
        self.keys_invalidated.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The census last taken, if it still holds: taken at `cursor` and no value has expired since.
    pub fn cached_census(&self, cursor: u64, now_ms: u64) -> Option<Census> {
        let cached = self.census.lock().unwrap_or_else(PoisonError::into_inner);
        cached.clone().filter(|c| c.cursor == cursor && c.next_expiry.is_none_or(|at| now_ms < at))
    }

    /// Keeps a census for [`Self::cached_census`].
    pub fn keep_census(&self, census: &Census) {
        *self.census.lock().unwrap_or_else(PoisonError::into_inner) = Some(census.clone());
    }

    /// The counters now.
    pub fn counts(&self) -> Counts {
        let load = |a: &[AtomicU64; Endpoint::ALL.len()]| a.each_ref().map(|c| c.load(Ordering::Relaxed));
        Counts {
            requests: load(&self.requests),
            errors: load(&self.errors),
            sync_updates_served: self.sync_updates_served.load(Ordering::Relaxed),
            entries_full: self.entries_full.load(Ordering::Relaxed),
            entries_not_modified: self.entries_not_modified.load(Ordering::Relaxed),
            keys_invalidated: self.keys_invalidated.load(Ordering::Relaxed),
        }
    }
}

/// Every namespace's counters (one entry per namespace that made a request: bounded by the tokens
/// file), and when counting started.
#[derive(Debug)]
pub struct Metrics {
    started_ms: u64,
    namespaces: RwLock<HashMap<Arc<str>, Arc<NsMetrics>>>,
}

impl Metrics {
    /// Counting from `started_ms`.
    pub fn new(started_ms: u64) -> Self {
        Metrics { started_ms, namespaces: RwLock::default() }
    }

    /// When counting started (ms since the Unix epoch).
    pub fn started_ms(&self) -> u64 {
        self.started_ms
    }

    /// The counters of `ns`.
    pub fn ns(&self, ns: &Arc<str>) -> Arc<NsMetrics> {
        if let Some(found) = self.namespaces.read().unwrap_or_else(PoisonError::into_inner).get(ns) {
            return found.clone();
        }
        self.namespaces.write().unwrap_or_else(PoisonError::into_inner).entry(ns.clone()).or_default().clone()
    }
}

/// Route middleware (inside auth, so only authorised requests count): counts each request to a
/// known endpoint, and its answer if it is an error.
pub async fn count(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let endpoint = request.extensions().get::<MatchedPath>().and_then(|p| Endpoint::from_path(p.as_str()));
    let ns = request.extensions().get::<Namespace>().map(|n| metrics.ns(&n.0));
    let (Some(endpoint), Some(ns)) = (endpoint, ns) else { return next.run(request).await };
    let index = endpoint as usize;
    ns.requests[index].fetch_add(1, Ordering::Relaxed);
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        ns.errors[index].fetch_add(1, Ordering::Relaxed);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_by_path_and_census_validity() {
        assert_eq!(Endpoint::from_path("/api/cache/sync"), Some(Endpoint::Sync));
        assert_eq!(Endpoint::from_path("/cache/entries"), Some(Endpoint::Entries));
        assert_eq!(Endpoint::from_path("/cache/other"), None);
        for (i, e) in Endpoint::ALL.into_iter().enumerate() {
            assert_eq!(e as usize, i);
        }
        let m = NsMetrics::default();
        assert_eq!(m.cached_census(0, 0), None);
        m.keep_census(&Census { cursor: 5, live: 1, next_expiry: Some(100), ..Census::default() });
        assert_eq!(m.cached_census(5, 99).map(|c| c.live), Some(1));
        assert_eq!(m.cached_census(5, 100), None, "a value expired since");
        assert_eq!(m.cached_census(6, 0), None, "the namespace changed since");
    }
}
