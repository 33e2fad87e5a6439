//! The in-memory store (`--memory`): the same rule and layout as the durable store, gone on exit.
//! For tests and throwaway demos.
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock};

use super::{
    Census, Delta, DeltaQuery, EntriesPage, EntriesQuery, GcReport, Header, Meta, NsRead, NsWrite, OpReport, Row,
    Store, StoreError, StoreFuture, Stored, WriteOp,
};
use crate::namespace;

/// Namespaces in memory; each behind its own lock, so namespaces never wait for each other and
/// reads of one namespace run concurrently.
#[derive(Default)]
pub struct MemoryStore {
    namespaces: RwLock<HashMap<String, Arc<RwLock<NsState>>>>,
}

#[derive(Default)]
struct NsState {
    meta: Meta,
    /// Ordered, so that prefix scans (`/entries`, invalidation) are range reads as in redb.
    entries: BTreeMap<String, Stored>,
    by_seq: BTreeMap<u64, String>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn namespace(&self, ns: &str) -> Option<Arc<RwLock<NsState>>> {
        self.namespaces.read().unwrap_or_else(PoisonError::into_inner).get(ns).cloned()
    }

    fn namespace_or_create(&self, ns: &str) -> Arc<RwLock<NsState>> {
        if let Some(state) = self.namespace(ns) {
            return state;
        }
        let mut all = self.namespaces.write().unwrap_or_else(PoisonError::into_inner);
        all.entry(ns.to_owned()).or_default().clone()
    }

    fn apply_now(&self, ns: &str, op: &WriteOp, now_ms: u64) -> Result<OpReport, StoreError> {
        let state = self.namespace_or_create(ns);
        let mut state = state.write().unwrap_or_else(PoisonError::into_inner);
        let mut txn = MemTxn { state: &mut state, undo: Vec::new() };
        let result = namespace::apply(&mut txn, op, now_ms);
        if result.is_err() {
            txn.rollback();
        }
        result
    }

    /// Runs `read` on a snapshot of `ns` (the namespace's read lock; an empty one if it is new).
    fn read<T>(&self, ns: &str, read: impl FnOnce(&NsState) -> Result<T, StoreError>) -> Result<T, StoreError> {
        match self.namespace(ns) {
            Some(state) => read(&state.read().unwrap_or_else(PoisonError::into_inner)),
            None => read(&NsState::default()),
        }
    }

    fn gc_now(&self, now_ms: u64, retention_ms: u64) -> Result<GcReport, StoreError> {
        let all: Vec<_> = self.namespaces.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        let mut report = GcReport::default();
        for state in all {
            let mut state = state.write().unwrap_or_else(PoisonError::into_inner);
            let mut txn = MemTxn { state: &mut state, undo: Vec::new() };
            match namespace::collect(&mut txn, now_ms, retention_ms) {
                Ok(removed) => report.removed += removed,
                Err(err) => {
                    txn.rollback();
                    return Err(err);
                }
            }
            report.namespaces += 1;
        }
        Ok(report)
    }
}

impl Store for MemoryStore {
    fn apply<'a>(&'a self, ns: &'a str, op: WriteOp, now_ms: u64) -> StoreFuture<'a, OpReport> {
        Box::pin(async move { self.apply_now(ns, &op, now_ms) })
    }

    fn delta<'a>(&'a self, ns: &'a str, query: DeltaQuery) -> StoreFuture<'a, Delta> {
        Box::pin(async move { self.read(ns, |state| namespace::delta(state, &query)) })
    }

    fn gc(&self, now_ms: u64, retention_ms: u64) -> StoreFuture<'_, GcReport> {
        Box::pin(async move { self.gc_now(now_ms, retention_ms) })
    }

    fn cursor<'a>(&'a self, ns: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move { self.read(ns, |state| Ok(state.meta.cursor)) })
    }

    fn census<'a>(&'a self, ns: &'a str, now_ms: u64) -> StoreFuture<'a, Census> {
        Box::pin(async move { self.read(ns, |state| namespace::census(state, now_ms)) })
    }

    fn entries<'a>(&'a self, ns: &'a str, query: EntriesQuery) -> StoreFuture<'a, EntriesPage> {
        Box::pin(async move { self.read(ns, |state| namespace::entries(state, &query)) })
    }

    /// Memory always takes writes.
    fn health(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

/// Undo records, so a failed operation leaves the namespace as it was (a transaction, like redb's).
enum Undo {
    Meta(Meta),
    /// The key's previous row (None: it had none) and the seq row added for it (if any).
    Row {
        key: String,
        previous: Option<Stored>,
        added_seq: Option<u64>,
    },
}

struct MemTxn<'a> {
    state: &'a mut NsState,
    undo: Vec<Undo>,
}

impl MemTxn<'_> {
    fn rollback(&mut self) {
        while let Some(undo) = self.undo.pop() {
            match undo {
                Undo::Meta(meta) => self.state.meta = meta,
                Undo::Row { key, previous, added_seq } => {
                    if let Some(seq) = added_seq {
                        self.state.by_seq.remove(&seq);
                    }
                    match previous {
                        Some(previous) => {
                            self.state.by_seq.insert(previous.seq, key.clone());
                            self.state.entries.insert(key, previous);
                        }
                        None => {
                            self.state.entries.remove(&key);
                        }
                    }
                }
            }
        }
    }
}

impl NsWrite for MemTxn<'_> {
    fn meta(&mut self) -> Result<Meta, StoreError> {
        Ok(self.state.meta.clone())
    }

    fn put_meta(&mut self, meta: &Meta) -> Result<(), StoreError> {
        self.undo.push(Undo::Meta(std::mem::replace(&mut self.state.meta, meta.clone())));
        Ok(())
    }

    fn get(&mut self, key: &str) -> Result<Option<Stored>, StoreError> {
        Ok(self.state.entries.get(key).cloned())
    }

    fn put(&mut self, key: &str, stored: &Stored, replaced_seq: Option<u64>) -> Result<(), StoreError> {
        if let Some(seq) = replaced_seq {
            self.state.by_seq.remove(&seq);
        }
        self.state.by_seq.insert(stored.seq, key.to_owned());
        let previous = self.state.entries.insert(key.to_owned(), stored.clone());
        self.undo.push(Undo::Row { key: key.to_owned(), previous, added_seq: Some(stored.seq) });
        Ok(())
    }

    fn forget(&mut self, key: &str, seq: u64) -> Result<(), StoreError> {
        self.state.by_seq.remove(&seq);
        let previous = self.state.entries.remove(key);
        self.undo.push(Undo::Row { key: key.to_owned(), previous, added_seq: None });
        Ok(())
    }

    fn headers(&mut self, prefix: &str) -> Result<Vec<(String, Header)>, StoreError> {
        // In key order, like the redb store, so clears number their tombstones the same way.
        Ok(self
            .state
            .entries
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, stored)| (key.clone(), Header::of(stored)))
            .collect())
    }
}

impl NsRead for NsState {
    fn meta(&self) -> Result<Meta, StoreError> {
        Ok(self.meta.clone())
    }

    fn get(&self, key: &str) -> Result<Option<Stored>, StoreError> {
        Ok(self.entries.get(key).cloned())
    }

    fn scan_after(
        &self,
        after: u64,
        visit: &mut dyn FnMut(u64, String) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for (seq, key) in self.by_seq.range(after.saturating_add(1)..) {
            if !visit(*seq, key.clone())? {
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
        for (key, stored) in self.entries.range::<str, _>((Bound::Included(from), Bound::Unbounded)) {
            if !visit(key, stored)? {
                break;
            }
        }
        Ok(())
    }
}
