//! One namespace's shared log: the events of its recent changes, read from the store once and
//! encoded once, for every stream that follows the namespace on this instance.
//!
//! A reader task per followed namespace waits for an announcement (or a heartbeat: a lost
//! wake-up only delays), reads the store from its `head` in pages, appends the encoded events,
//! and wakes the streams. The log keeps the last [`LOG_EVENTS`] events (at most [`LOG_BYTES`]):
//! it holds every event with an id in `(floor, head]`, so a stream whose cursor is in that range
//! takes what follows its cursor from here. A stream further behind (a resume from an old cursor,
//! a client slower than the log) reads the store itself, in pages, until it is in range again.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::Waker;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::sse::{events_of, Encoded};
use crate::feed::Feed;
use crate::store::{DeltaQuery, Store};

/// Events kept per namespace for streams to take; a stream further behind reads the store.
pub const LOG_EVENTS: usize = 256;
/// Bytes of events kept per namespace (one event may exceed it; it is kept alone then).
pub const LOG_BYTES: usize = 256 << 10;
/// Rows per store read (a reader or a stream far behind reads in pages).
pub const PAGE_ROWS: usize = 1000;
/// Bytes of keys and values per store read.
pub const PAGE_BYTES: usize = 1 << 20;

/// Why a namespace's streams end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The store failed: each stream says so and ends; its client reconnects from its cursor.
    StoreFailed,
    /// The server is going away: each stream tells its client to reconnect at once.
    GoingAway,
}

/// What a stream finds when it looks at the log.
pub enum Look {
    /// The next event after the stream's cursor.
    Event(Encoded),
    /// The stream is at the head.
    AtHead {
        /// Heartbeats so far.
        ticks: u64,
    },
    /// The cursor is not in the log's range: the stream reads the store itself.
    OutOfRange {
        /// The head, to know whether the reader still has to catch up with the stream.
        head: u64,
    },
    /// The reader has not read the namespace's cursor yet.
    Starting,
    /// The streams of this namespace end.
    Ended(End),
}

/// The waiter table is not shrunk below room for this many streams.
const MIN_WAITERS: usize = 16;

#[derive(Default)]
struct State {
    /// The reader has read the namespace's cursor: `head` and `floor` mean something.
    primed: bool,
    head: u64,
    floor: u64,
    log: VecDeque<Encoded>,
    log_bytes: usize,
    ticks: u64,
    end: Option<End>,
    waiters: HashMap<u64, Waker>,
    next_id: u64,
    /// Streams numbered up to this are told to reconnect (memory pressure).
    shed_through: u64,
}

/// One followed namespace.
pub struct Channel {
    ns: Arc<str>,
    state: Mutex<State>,
    /// Dropped with the last follower: the reader task ends.
    _stop: oneshot::Sender<()>,
}

impl Channel {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The namespace.
    pub fn ns(&self) -> &Arc<str> {
        &self.ns
    }

    /// A number naming one stream among this channel's waiters.
    pub fn stream_id(&self) -> u64 {
        let mut state = self.state();
        state.next_id += 1;
        state.next_id
    }

    /// What follows `cursor` for stream `stream`. When the answer means waiting (at the head,
    /// starting, or `wait_above_head` and the cursor is above the head), `waker` is woken at the
    /// log's next change; registered under the same lock as the look, so no change slips between.
    pub fn look(&self, cursor: u64, stream: u64, waker: &Waker, wait_above_head: bool) -> Look {
        let mut state = self.state();
        if let Some(end) = state.end {
            return Look::Ended(end);
        }
        if stream <= state.shed_through {
            return Look::Ended(End::GoingAway);
        }
        let look = if !state.primed {
            Look::Starting
        } else if cursor < state.floor || cursor > state.head {
            Look::OutOfRange { head: state.head }
        } else if cursor == state.head {
            Look::AtHead { ticks: state.ticks }
        } else {
            let at = state.log.partition_point(|e| e.id <= cursor);
            match state.log.get(at) {
                Some(event) => return Look::Event(event.clone()),
                // Not reached: the log's last id is the head.
                None => Look::OutOfRange { head: state.head },
            }
        };
        let waits = match look {
            Look::OutOfRange { head } => wait_above_head && cursor > head,
            _ => true,
        };
        if waits {
            match state.waiters.get_mut(&stream) {
                Some(w) if w.will_wake(waker) => {}
                Some(w) => w.clone_from(waker),
                None => {
                    state.waiters.insert(stream, waker.clone());
                }
            }
        }
        look
    }

    /// The stream is gone.
    pub fn forget(&self, stream: u64) {
        self.state().waiters.remove(&stream);
    }

    /// Runs `change` on the state; when it says the streams have something new, wakes every
    /// waiter (outside the lock).
    fn update(&self, change: impl FnOnce(&mut State) -> bool) {
        let waiters: Vec<Waker> = {
            let mut state = self.state();
            if !change(&mut state) {
                return;
            }
            state.take_waiters()
        };
        for waker in waiters {
            waker.wake();
        }
    }
}

impl State {
    /// Every waiter, to be woken. The streams that are still there wait again at once, so the
    /// table refills to about as many as it held: a table that grew for a crowd since gone gives
    /// back what it no longer needs (it would otherwise keep its peak size for the channel's life).
    fn take_waiters(&mut self) -> Vec<Waker> {
        let waiters: Vec<Waker> = self.waiters.drain().map(|(_, w)| w).collect();
        let wanted = 2 * waiters.len().max(MIN_WAITERS);
        if self.waiters.capacity() > 2 * wanted {
            self.waiters.shrink_to(wanted);
        }
        waiters
    }

    fn append(&mut self, events: Vec<Encoded>, head: u64) {
        for event in events {
            self.log_bytes += event.bytes.len();
            self.log.push_back(event);
        }
        self.head = head;
        while self.log.len() > LOG_EVENTS || (self.log_bytes > LOG_BYTES && self.log.len() > 1) {
            let Some(old) = self.log.pop_front() else { break };
            self.log_bytes -= old.bytes.len();
            self.floor = old.id;
        }
        if self.log.is_empty() {
            self.floor = head;
        }
    }
}

/// Every followed namespace of this instance.
pub struct Channels {
    map: Mutex<HashMap<Arc<str>, Weak<Channel>>>,
    store: Arc<dyn Store>,
    feed: Arc<Feed>,
    heartbeat: Duration,
    tasks: Mutex<JoinSet<()>>,
}

impl Channels {
    /// Channels reading `store`, woken by `feed`, with a heartbeat (and store re-read) every
    /// `heartbeat`.
    pub fn new(store: Arc<dyn Store>, feed: Arc<Feed>, heartbeat: Duration) -> Self {
        Channels { map: Mutex::default(), store, feed, heartbeat, tasks: Mutex::new(JoinSet::new()) }
    }

    /// The store streams read themselves when they are behind the log.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The heartbeat period.
    pub fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    /// The channel of `ns`, started if nobody follows it yet.
    pub fn follow(self: &Arc<Self>, ns: &Arc<str>) -> Arc<Channel> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(channel) = map.get(ns).and_then(Weak::upgrade) {
            return channel;
        }
        let (stop, stopped) = oneshot::channel();
        let channel = Arc::new(Channel { ns: ns.clone(), state: Mutex::default(), _stop: stop });
        map.insert(ns.clone(), Arc::downgrade(&channel));
        // Subscribed here, before the reader's first read, so that no write is missed between.
        let wake = self.feed.subscribe(ns);
        let reader = read(self.clone(), Arc::downgrade(&channel), wake, stopped);
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(reader);
        channel
    }

    /// Tells `share` of each namespace's streams (at least one), the oldest, to reconnect; returns
    /// how many.
    pub fn shed(&self, share: f64) -> usize {
        let live: Vec<Arc<Channel>> =
            self.map.lock().unwrap_or_else(PoisonError::into_inner).values().filter_map(Weak::upgrade).collect();
        let mut shed = 0;
        for channel in live {
            channel.update(|s| {
                // Streams waiting are nearly all of them; one busy sending is shed next time.
                let mut ids: Vec<u64> = s.waiters.keys().copied().filter(|id| *id > s.shed_through).collect();
                if ids.is_empty() {
                    return false;
                }
                ids.sort_unstable();
                let n = ((ids.len() as f64 * share).ceil() as usize).clamp(1, ids.len());
                s.shed_through = ids[n - 1];
                shed += n;
                true
            });
        }
        shed
    }

    /// Waits for every reader task to end (after [`Feed::close`], they all do).
    pub async fn join(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        while tasks.join_next().await.is_some() {}
    }

    fn forget(&self, ns: &Arc<str>, channel: &Weak<Channel>) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.get(ns).is_some_and(|c| c.ptr_eq(channel)) {
            map.remove(ns);
        }
    }
}

/// The reader of one namespace: runs while anybody follows it.
async fn read(
    channels: Arc<Channels>,
    channel: Weak<Channel>,
    mut wake: tokio::sync::watch::Receiver<u64>,
    mut stopped: oneshot::Receiver<()>,
) {
    let Some(ns) = channel.upgrade().map(|c| c.ns.clone()) else { return };
    let store = channels.store.clone();
    let closed = channels.feed.closed();
    tokio::pin!(closed);
    let mut ticks = tokio::time::interval(channels.heartbeat);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.reset();
    let mut head = None;
    let mut tick = false;
    loop {
        wake.mark_unchanged();
        let outcome = catch_up(&*store, &ns, &channel, head).await;
        let Some(outcome) = outcome else { break };
        match outcome {
            Ok(h) => head = Some(h),
            Err(()) => break,
        }
        if tick {
            let Some(c) = channel.upgrade() else { break };
            c.update(|s| {
                s.ticks += 1;
                true
            });
        }
        tokio::select! {
            changed = wake.changed() => { tick = false; if changed.is_err() { break } }
            _ = ticks.tick() => tick = true,
            () = &mut closed => {
                if let Some(c) = channel.upgrade() {
                    c.update(|s| {
                        s.end = Some(End::GoingAway);
                        true
                    });
                }
                break;
            }
            _ = &mut stopped => break,
        }
    }
    channels.forget(&ns, &channel);
}

/// Reads what the namespace accepted after `head` (its cursor, the first time) into the log.
/// `None`: nobody follows any more; `Err`: the store failed (the streams were told).
async fn catch_up(store: &dyn Store, ns: &Arc<str>, channel: &Weak<Channel>, head: Option<u64>) -> Option<Result<u64, ()>> {
    let Some(mut head) = head else {
        let cursor = store.cursor(ns).await;
        let c = channel.upgrade()?;
        return Some(match cursor {
            Ok(cursor) => {
                c.update(|s| {
                    s.primed = true;
                    s.head = cursor;
                    s.floor = cursor;
                    true
                });
                Ok(cursor)
            }
            Err(err) => {
                tracing::warn!(error = %err, "event streams: store read failed; ending the namespace's streams");
                c.update(|s| {
                    s.end = Some(End::StoreFailed);
                    true
                });
                Err(())
            }
        });
    };
    loop {
        let query = DeltaQuery { last_sync: head, exclude: Default::default(), max_rows: PAGE_ROWS, max_bytes: PAGE_BYTES };
        let delta = store.delta(ns, query).await;
        let c = channel.upgrade()?;
        let delta = match delta {
            Ok(delta) => delta,
            Err(err) => {
                tracing::warn!(error = %err, "event streams: store read failed; ending the namespace's streams");
                c.update(|s| {
                    s.end = Some(End::StoreFailed);
                    true
                });
                return Some(Err(()));
            }
        };
        let mut events = Vec::with_capacity(delta.rows.len() + 2);
        if delta.since == head {
            events_of(&delta, &mut events);
        }
        c.update(|s| {
            if delta.since != head {
                // The head is above the namespace's cursor: the store was wiped. Streams start
                // over from the store (each reads it, resyncing like `/sync`).
                s.log.clear();
                s.log_bytes = 0;
                s.floor = delta.cursor;
                s.head = delta.cursor;
                true
            } else if delta.cursor != head {
                s.append(events, delta.cursor);
                true
            } else {
                false
            }
        });
        if delta.since != head {
            return Some(Ok(delta.cursor));
        }
        head = delta.cursor;
        if !delta.more {
            return Some(Ok(head));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(state: &mut State, streams: std::ops::Range<u64>) {
        for id in streams {
            state.waiters.insert(id, Waker::noop().clone());
        }
    }

    #[test]
    fn the_waiter_table_gives_back_what_a_crowd_since_gone_needed() {
        let mut state = State::default();
        wait(&mut state, 0..10_000);
        let peak = state.waiters.capacity();
        assert_eq!(state.take_waiters().len(), 10_000);
        assert_eq!(state.waiters.capacity(), peak, "the same crowd waits again: no shrinking");
        wait(&mut state, 0..10);
        assert_eq!(state.take_waiters().len(), 10);
        assert!(state.waiters.capacity() < 100, "{} slots kept for 10 streams", state.waiters.capacity());
        wait(&mut state, 0..10);
        assert_eq!(state.take_waiters().len(), 10, "every waiter is still woken");
    }
}
