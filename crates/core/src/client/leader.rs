//! Which instance of the origin talks to the backend for everyone (polls, holds the event stream,
//! sends the writes of tabs that closed before they could): the holder of a Web Lock, which the
//! browser hands to a waiting tab the moment the holder's tab closes; where Web Locks are missing,
//! the holder of a lease in storage, renewed every second and good for three; with no storage
//! either, every instance for itself.
use crate::Storage;

/// How long a storage lease is good for without renewal.
pub const LEASE_MS: u64 = 3_000;
/// How often the lease holder renews it (and the others look whether it lapsed).
pub const LEASE_BEAT_MS: u64 = 1_000;

#[derive(Debug)]
enum Election {
    Locks { name: String },
    Lease { key: String, next_beat: u64 },
    Alone,
}

/// This instance's part in the election.
#[derive(Debug)]
pub(crate) struct Leadership {
    election: Election,
    leader: bool,
}

/// What the election asks of the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ask {
    Nothing,
    /// Request the leader lock under this name.
    Lock(String),
}

impl Leadership {
    /// Web Locks when the platform has them, else a lease under `lease_key`.
    pub(crate) fn new(web_locks: bool, lock_name: String, lease_key: String) -> Self {
        let election = if web_locks { Election::Locks { name: lock_name } } else { Election::Lease { key: lease_key, next_beat: 0 } };
        Leadership { election, leader: false }
    }

    /// Whether this instance leads now.
    pub(crate) fn is_leader(&self) -> bool {
        self.leader
    }

    /// What to do to start: request the lock (it is granted when no one else holds it).
    pub(crate) fn start(&self) -> Ask {
        match &self.election {
            Election::Locks { name } => Ask::Lock(name.clone()),
            _ => Ask::Nothing,
        }
    }

    /// The leader lock was granted.
    pub(crate) fn granted(&mut self) -> bool {
        let changed = !self.leader;
        self.leader = true;
        changed
    }

    /// When the lease must be looked at next (local ms).
    pub(crate) fn next_wake(&self) -> Option<u64> {
        match self.election {
            Election::Lease { next_beat, .. } => Some(next_beat),
            _ => None,
        }
    }

    /// Renews or takes the lease when due; returns whether leadership changed.
    pub(crate) fn beat<S: Storage>(&mut self, storage: &mut S, node: &str, now: u64) -> bool {
        let Election::Lease { key, next_beat } = &mut self.election else { return false };
        if now < *next_beat {
            return false;
        }
        *next_beat = now.saturating_add(LEASE_BEAT_MS);
        let leader = match take_lease(storage, key, node, now) {
            Ok(leader) => leader,
            Err(()) => {
                // No usable storage: nobody can coordinate with this instance, so it leads for itself.
                self.election = Election::Alone;
                true
            }
        };
        let changed = leader != self.leader;
        self.leader = leader;
        changed
    }

    /// Gives up a lease this instance holds, so a successor need not wait for it to lapse (the
    /// page is going away, or the instance is disposed).
    pub(crate) fn release<S: Storage>(&mut self, storage: &mut S, node: &str) {
        if let Election::Lease { key, .. } = &self.election {
            if holder(storage, key).is_some_and(|(holder, _)| holder == node) {
                let _ = storage.remove(key);
            }
        }
    }
}

/// `node until` (ms), the lease record.
fn holder<S: Storage>(storage: &S, key: &str) -> Option<(String, u64)> {
    let text = storage.get(key).ok()??;
    let (node, until) = text.split_once(' ')?;
    Some((node.to_owned(), until.parse().ok()?))
}

fn take_lease<S: Storage>(storage: &mut S, key: &str, node: &str, now: u64) -> Result<bool, ()> {
    let free = match holder(storage, key) {
        None => true,
        Some((holder, until)) => holder == node || until <= now,
    };
    if free {
        storage.set(key, &format!("{node} {}", now.saturating_add(LEASE_MS))).map_err(|_| ())?;
    }
    // Read back: another tab may have written its own a moment before.
    Ok(holder(storage, key).is_some_and(|(holder, _)| holder == node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStorage;

    #[test]
    fn one_lease_holder_and_a_successor_once_it_lapses_or_is_given_up() {
        let mut storage = MemoryStorage::new();
        let mut a = Leadership::new(false, String::new(), "p\0leader".into());
        let mut b = Leadership::new(false, String::new(), "p\0leader".into());
        assert!(a.beat(&mut storage, "a", 0));
        assert!(!b.beat(&mut storage, "b", 10));
        assert!(a.is_leader() && !b.is_leader());
        // a renews every second; b keeps looking and stays a follower.
        for t in [1_000, 2_000, 3_000] {
            a.beat(&mut storage, "a", t);
            b.beat(&mut storage, "b", t + 10);
            assert!(a.is_leader() && !b.is_leader(), "at {t}");
        }
        // a's tab freezes: its lease lapses 3 s after its last renewal and b takes it.
        assert!(!b.beat(&mut storage, "b", 5_999));
        assert!(b.beat(&mut storage, "b", 7_000));
        assert!(b.is_leader());
        // b gives it up (the page hides): a takes it at its next beat.
        b.release(&mut storage, "b");
        assert!(a.beat(&mut storage, "a", 7_100) || a.is_leader());
        assert!(a.is_leader());
        assert_eq!(a.next_wake(), Some(8_100));
    }

    #[test]
    fn with_web_locks_the_lock_decides_and_no_beat_is_needed() {
        let mut storage = MemoryStorage::new();
        let mut l = Leadership::new(true, "lock".into(), "p\0leader".into());
        assert_eq!(l.start(), Ask::Lock("lock".into()));
        assert!(!l.beat(&mut storage, "a", 0));
        assert_eq!(l.next_wake(), None);
        assert!(l.granted());
        assert!(l.is_leader());
    }
}
