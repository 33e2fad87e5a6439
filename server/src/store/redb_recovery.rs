//! The embedded store after an I/O error (a full disk): reopening the database, and what
//! `/healthz` says meanwhile.
//!
//! redb poisons a `Database` after a failed read or write of its file: every later transaction
//! fails with `PreviousIo` until it is closed and opened again. Without recovery one full disk
//! failed every write until the process restarted, even once space was freed. So:
//! - An I/O failure (of a commit, a read, a reopen) is a [`StoreError::Io`] (HTTP 503: retry
//!   later); it *faults* the store, with the failure as the reason, and marks the database to be
//!   reopened.
//! - Before its next transaction, the writer thread (the only one that writes, so no write
//!   transaction is open then) takes the database out of service, waits a moment for the reads
//!   still on it, and opens the file again, at most once per [`RETRY_INTERVAL`]. redb recovers
//!   the file to its last commit, which holds every acknowledged write: a write is acknowledged
//!   only after its commit returned, and one whose commit failed was answered with the failure
//!   (it may still have reached the disk if the failure came after the commit record did, as
//!   with a Redis timeout; sending it again is a no-op).
//! - The fault clears with the next commit that succeeds: a write's, or the health probe's.
//!
//! `/healthz` reads the fault. Without one (the last commit succeeded) it costs nothing. With
//! one it asks the writer for a probe (at most one per [`RETRY_INTERVAL`]; other calls meanwhile
//! get its answer): reopen if needed, commit a [`PROBE_BYTES`] row and delete it. So a store that
//! recovered says so even when no client writes to it (a load balancer took it out), and "ok"
//! means that a write the size of the largest default request body fits now.
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, TableDefinition};

use super::StoreError;

/// Most one reopen attempt (and one health probe) per this long while the store is faulted.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// How long a reopen waits for reads still on the old database (redb refuses a second open of
/// the file while they hold it; after this the attempt fails and the next one tries again).
const READS_GRACE: Duration = Duration::from_secs(1);
/// The size of the row the health probe commits and deletes: the default `--max-body`.
pub const PROBE_BYTES: usize = 1 << 20;

const PROBE: TableDefinition<&str, &[u8]> = TableDefinition::new("health_probe");

/// Opens the database file, at start and again after an I/O error (tests inject a backend that
/// fails on demand, through `redb::Builder::create_with_backend`).
pub type Opener = Box<dyn Fn() -> Result<Database, redb::DatabaseError> + Send + Sync>;

/// The reason of a `PreviousIo`: it says nothing of the failure itself, so it never replaces the
/// reason of the fault it follows.
const PREVIOUS_IO: &str = "an earlier I/O error left the database unusable until it is reopened";

/// A redb failure as a store error: I/O ones (`Io`, and `PreviousIo` for the poisoned database
/// after one) are [`StoreError::Io`], the rest [`StoreError::Database`].
pub(super) fn classify(err: redb::Error) -> StoreError {
    match err {
        redb::Error::Io(err) => StoreError::Io(err.to_string()),
        redb::Error::PreviousIo => StoreError::Io(PREVIOUS_IO.into()),
        other => StoreError::Database(other),
    }
}

/// What went wrong, without the "the database file failed" of an [`StoreError::Io`], which the
/// fault's reason is wrapped in again when it is answered.
fn reason_of(err: &StoreError) -> String {
    match err {
        StoreError::Io(reason) => reason.clone(),
        other => other.to_string(),
    }
}

/// The database and the fault, shared by the store, its reads and its writer thread.
pub(super) struct Shared {
    /// `None` while the writer reopens it (or after a reopen failed).
    db: RwLock<Option<Arc<Database>>>,
    fault: Mutex<Option<Fault>>,
}

#[derive(Clone, Debug)]
struct Fault {
    /// The failure: what the disk said.
    reason: String,
    /// Why the last attempt to reopen the database failed, if it did (kept apart so that it
    /// does not hide the failure that made the reopen necessary).
    reopen_failed: Option<String>,
    /// The database must be reopened before it is used again.
    poisoned: bool,
    /// When a health probe last answered this fault.
    probed_at: Option<Instant>,
}

impl Shared {
    pub(super) fn new(db: Database) -> Self {
        Shared { db: RwLock::new(Some(Arc::new(db))), fault: Mutex::new(None) }
    }

    /// The database for a read.
    pub(super) fn database(&self) -> Result<Arc<Database>, StoreError> {
        self.slot().clone().ok_or_else(|| StoreError::Io(self.reason()))
    }

    /// Notes a failure: an I/O one faults the store and has the database reopened.
    pub(super) fn failed(&self, err: StoreError) -> StoreError {
        if let StoreError::Io(reason) = &err {
            self.fault_with(reason, true);
        }
        err
    }

    /// A commit succeeded: the store can write.
    pub(super) fn succeeded(&self) {
        let mut fault = self.lock_fault();
        if fault.take().is_some() {
            tracing::info!("the store can write again");
        }
    }

    /// Why the store cannot write, if it cannot.
    pub(super) fn fault(&self) -> Option<String> {
        self.lock_fault().as_ref().map(Fault::describe)
    }

    /// The fault, if a health probe answered it less than [`RETRY_INTERVAL`] ago.
    pub(super) fn recently_probed_fault(&self) -> Option<String> {
        let fault = self.lock_fault();
        fault.as_ref().filter(|f| f.probed_at.is_some_and(|at| at.elapsed() < RETRY_INTERVAL)).map(Fault::describe)
    }

    fn reopen_failed(&self, why: String) {
        let mut fault = self.lock_fault();
        match fault.as_mut() {
            Some(fault) => {
                fault.reopen_failed = Some(why);
                fault.poisoned = true;
            }
            None => {
                *fault = Some(Fault {
                    reason: format!("reopening the database failed: {why}"),
                    reopen_failed: None,
                    poisoned: true,
                    probed_at: None,
                })
            }
        }
    }

    fn reopened(&self) {
        if let Some(fault) = self.lock_fault().as_mut() {
            fault.poisoned = false;
            fault.reopen_failed = None;
        }
    }

    fn probed(&self) {
        if let Some(fault) = self.lock_fault().as_mut() {
            fault.probed_at = Some(Instant::now());
        }
    }

    fn fault_with(&self, reason: &str, poisoned: bool) {
        let mut fault = self.lock_fault();
        match fault.as_mut() {
            Some(fault) if reason == PREVIOUS_IO => fault.poisoned |= poisoned,
            Some(fault) => {
                fault.reason = reason.to_owned();
                fault.poisoned |= poisoned;
            }
            None => *fault = Some(Fault { reason: reason.to_owned(), reopen_failed: None, poisoned, probed_at: None }),
        }
    }

    /// Why the store cannot write now.
    pub(super) fn reason(&self) -> String {
        self.fault().unwrap_or_else(|| "the database is being reopened".into())
    }

    /// The database, unless it must be reopened first.
    fn healthy_database(&self) -> Option<Arc<Database>> {
        if self.lock_fault().as_ref().is_some_and(|f| f.poisoned) {
            return None;
        }
        self.slot().clone()
    }

    fn slot(&self) -> std::sync::RwLockReadGuard<'_, Option<Arc<Database>>> {
        self.db.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_fault(&self) -> std::sync::MutexGuard<'_, Option<Fault>> {
        self.fault.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Fault {
    fn describe(&self) -> String {
        match &self.reopen_failed {
            Some(why) => format!("{} (reopening the database failed: {why})", self.reason),
            None => self.reason.clone(),
        }
    }
}

/// The writer thread's side: reopening.
pub(super) struct Recovery {
    opener: Opener,
    prepare: fn(&Database) -> Result<(), StoreError>,
    last_attempt: Option<Instant>,
}

impl Recovery {
    /// `prepare` checks (and creates) the tables of a freshly opened database.
    pub(super) fn new(opener: Opener, prepare: fn(&Database) -> Result<(), StoreError>) -> Self {
        Recovery { opener, prepare, last_attempt: None }
    }

    /// Opens the database file and prepares it.
    pub(super) fn open(&self) -> Result<Database, StoreError> {
        let db = (self.opener)()?;
        (self.prepare)(&db)?;
        Ok(db)
    }

    /// The database to write to: the open one, or, after an I/O error, the file opened again.
    /// Must only be called by the writer thread between transactions. On an error the fault
    /// ([`Shared::reason`]) says why.
    pub(super) fn writable(&mut self, shared: &Shared) -> Result<Arc<Database>, ()> {
        if let Some(db) = shared.healthy_database() {
            return Ok(db);
        }
        if self.last_attempt.is_some_and(|at| at.elapsed() < RETRY_INTERVAL) {
            return Err(());
        }
        self.last_attempt = Some(Instant::now());
        retire(shared);
        match self.open() {
            Ok(db) => {
                let db = Arc::new(db);
                *shared.db.write().unwrap_or_else(PoisonError::into_inner) = Some(db.clone());
                shared.reopened();
                tracing::warn!("reopened the database after an I/O error");
                Ok(db)
            }
            Err(err) => {
                tracing::error!(error = %err, "reopening the database failed; retrying later");
                shared.reopen_failed(reason_of(&err));
                Err(())
            }
        }
    }

    /// The health probe: reopens if needed, then commits a [`PROBE_BYTES`] row and deletes it.
    pub(super) fn probe(&mut self, shared: &Shared) -> Result<(), String> {
        let outcome = self.writable(shared).and_then(|db| {
            write_probe(&db).map_err(|err| shared.fault_with(&reason_of(&err), matches!(err, StoreError::Io(_))))
        });
        match outcome {
            Ok(()) => {
                shared.succeeded();
                Ok(())
            }
            Err(()) => {
                shared.probed();
                Err(shared.reason())
            }
        }
    }
}

/// Takes the database out of service and waits (bounded) for the reads still on it, so that the
/// file is closed before it is opened again.
fn retire(shared: &Shared) {
    let old = shared.db.write().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(old) = old {
        let left = Arc::downgrade(&old);
        drop(old);
        let deadline = Instant::now() + READS_GRACE;
        while left.strong_count() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn write_probe(db: &Database) -> Result<(), StoreError> {
    let filler = vec![0x5Au8; PROBE_BYTES];
    for keep in [true, false] {
        let mut txn = db.begin_write()?;
        txn.set_quick_repair(true);
        {
            let mut table = txn.open_table(PROBE)?;
            if keep {
                table.insert("probe", filler.as_slice())?;
            } else {
                table.remove("probe")?;
            }
        }
        txn.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared::new(redb::Builder::new().create_with_backend(redb::backends::InMemoryBackend::new()).unwrap())
    }

    #[test]
    fn the_fault_keeps_what_the_disk_said() {
        let shared = shared();
        assert_eq!(shared.fault(), None);
        assert!(shared.healthy_database().is_some());
        let _ = shared.failed(StoreError::Io("No space left on device".into()));
        assert!(shared.healthy_database().is_none(), "to be reopened");
        let _ = shared.failed(StoreError::Io(PREVIOUS_IO.into()));
        assert_eq!(shared.fault().as_deref(), Some("No space left on device"), "PreviousIo says nothing new");
        shared.reopen_failed("already open".into());
        assert_eq!(
            shared.fault().as_deref(),
            Some("No space left on device (reopening the database failed: already open)")
        );
        shared.reopened();
        assert_eq!(shared.fault().as_deref(), Some("No space left on device"), "faulted until a commit succeeds");
        assert!(shared.healthy_database().is_some());
        let _ = shared.failed(StoreError::Corrupt("a bad row".into()));
        assert!(shared.healthy_database().is_some(), "only I/O failures poison the database");
        shared.succeeded();
        assert_eq!(shared.fault(), None);
    }
}
