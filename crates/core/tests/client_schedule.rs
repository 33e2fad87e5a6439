//! When the client talks to its backend, on a manual clock: who polls, how often, and when it
//! must stay quiet. These replace the browser tests that slept and counted requests in a time
//! window; the browser tests keep the adapters and the API end to end.
//!
//! A small world: tabs of one origin sharing one storage, Web Locks granted in request order
//! (or a storage lease without them), and a backend that answers every `/sync` at once with
//! nothing new. Time only moves when the test says so, to the next wake-up any tab asked for.
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use mfe_shared_cache_core::client::{BackendConfig, Client, ClientConfig, Effect, LEASE_BEAT_MS, LEASE_MS};
use mfe_shared_cache_core::{CacheError, MemoryStorage, Reach, Realtime, Storage, StorageError, SyncPolicy, ABSENT_RECHECK_MS};

/// One storage for every tab of the origin, as localStorage is.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<MemoryStorage>>);

impl Storage for Shared {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.0.borrow().get(key)
    }
    fn set(&mut self, key: &str, value: &str) -> Result<(), StorageError> {
        self.0.borrow_mut().set(key, value)
    }
    fn remove(&mut self, key: &str) -> Result<(), StorageError> {
        self.0.borrow_mut().remove(key)
    }
    fn keys(&self) -> Result<Vec<String>, StorageError> {
        self.0.borrow().keys()
    }
}

/// How the backend answers `/events`.
#[derive(Clone, Copy, PartialEq)]
enum Events {
    /// Opens an event stream that stays open (heartbeats are not needed: the test moves time
    /// by less than the watchdog's silence).
    Stream,
    /// A seed-only backend: 404.
    Missing,
}

struct Tab {
    client: Client<Shared>,
    wake: Option<u64>,
    /// `/sync` and `/clear` requests this tab sent.
    syncs: usize,
    /// `/events` requests this tab sent.
    streams: usize,
    open: bool,
    /// Errors this tab reported to its API.
    errors: Vec<CacheError>,
}

struct World {
    now: u64,
    storage: Shared,
    tabs: Vec<Tab>,
    /// Web Locks: (tab, lock id) waiting for the leader lock, the first holds it.
    lock_queue: VecDeque<(usize, u32)>,
    events: Events,
    /// No backend at the URL: `/sync` answers 404 (an app's default `/api/cache` without one).
    no_backend: bool,
    online: bool,
    /// Requests waiting to be answered: (tab, id, path).
    requests: VecDeque<(usize, u32, String)>,
    web_locks: bool,
    sync_interval_ms: u64,
    cursor: u64,
    /// The keys of every change sent to the backend, in order.
    sent_keys: Vec<String>,
    /// Every change sent to the backend, as sent.
    sent: Vec<String>,
}

impl World {
    fn new(events: Events, web_locks: bool, sync_interval_ms: u64) -> Self {
        World {
            now: 1_700_000_000_000,
            storage: Shared::default(),
            tabs: Vec::new(),
            lock_queue: VecDeque::new(),
            events,
            no_backend: false,
            online: true,
            requests: VecDeque::new(),
            web_locks,
            sync_interval_ms,
            cursor: 0,
            sent_keys: Vec::new(),
            sent: Vec::new(),
        }
    }

    fn open_tab(&mut self) -> usize {
        let index = self.tabs.len();
        let config = ClientConfig {
            prefix: "t_".into(),
            node: format!("tab{index}"),
            page: format!("page{index}"),
            web_locks: self.web_locks,
            backend: Some(BackendConfig {
                policy: SyncPolicy { sync_interval_ms: self.sync_interval_ms, retry_delay_ms: 100, max_retries: 3 },
                request_timeout_ms: 10_000,
                max_batch_bytes: 512 * 1024,
                realtime: true,
                url: "http://backend.test/api/cache".into(),
            }),
            seed: index as u64 + 1,
        };
        let client = Client::open(self.storage.clone(), config, self.now);
        self.tabs.push(Tab { client, wake: None, syncs: 0, streams: 0, open: true, errors: Vec::new() });
        self.settle();
        index
    }

    fn close_tab(&mut self, tab: usize) {
        let now = self.now;
        self.tabs[tab].client.dispose(now);
        self.drain(tab);
        self.tabs[tab].open = false;
        self.tabs[tab].wake = None;
        // The browser lets go of a closed tab's locks and forgets its requests.
        self.release_locks_of(tab);
        self.requests.retain(|(t, _, _)| *t != tab);
        self.settle();
    }

    /// Closes `tab` while offline, comes back online and opens a tab, which leads: the tab that
    /// sends what the closed one could not.
    fn replace_offline_tab(&mut self, tab: usize) -> usize {
        self.close_tab(tab);
        self.set_online(true);
        let next = self.open_tab();
        assert_eq!(self.leaders(), vec![next]);
        next
    }

    fn leaders(&self) -> Vec<usize> {
        (0..self.tabs.len()).filter(|&t| self.tabs[t].open && self.tabs[t].client.status().state.is_some_and(|s| s.leader)).collect()
    }

    fn set_online(&mut self, online: bool) {
        self.online = online;
        let now = self.now;
        for t in 0..self.tabs.len() {
            if self.tabs[t].open {
                self.tabs[t].client.set_online(online, now);
            }
        }
        self.settle();
    }

    fn set(&mut self, tab: usize, key: &str, json: &str) {
        self.set_for(tab, key, json, Reach::Everyone);
    }

    fn set_for(&mut self, tab: usize, key: &str, json: &str, reach: Reach) {
        let now = self.now;
        self.tabs[tab].client.set_for(key, json.into(), 0, reach, now, false).expect("a valid write");
        // As the binding does when the task that wrote ends.
        let errors = self.tabs[tab].client.flush(now);
        assert!(errors.is_empty(), "{errors:?}");
        self.settle();
    }

    fn remove_for(&mut self, tab: usize, key: &str, reach: Reach) {
        let now = self.now;
        self.tabs[tab].client.remove_for(key, reach, now, false).expect("a valid removal");
        let errors = self.tabs[tab].client.flush(now);
        assert!(errors.is_empty(), "{errors:?}");
        self.settle();
    }

    /// Carries out every effect until nothing is left to do at this instant.
    fn settle(&mut self) {
        for _ in 0..1_000 {
            let mut busy = false;
            for t in 0..self.tabs.len() {
                busy |= self.drain(t);
            }
            busy |= self.answer_requests();
            if !busy {
                return;
            }
        }
        panic!("the tabs keep making work at one instant");
    }

    /// Carries out tab `t`'s effects; whether there were any.
    fn drain(&mut self, t: usize) -> bool {
        let effects = self.tabs[t].client.take_effects();
        let busy = !effects.is_empty();
        for effect in effects {
            self.carry_out(t, effect);
        }
        busy
    }

    fn carry_out(&mut self, t: usize, effect: Effect) {
        let now = self.now;
        match effect {
            Effect::Wake(at) => self.tabs[t].wake = at,
            Effect::Lock { id, .. } => {
                self.lock_queue.push_back((t, id));
                if self.lock_queue.len() == 1 {
                    self.tabs[t].client.lock_granted(id, now);
                }
            }
            Effect::Unlock(id) => {
                let holder = self.lock_queue.front().copied();
                self.lock_queue.retain(|&(tab, lock)| !(tab == t && lock == id));
                if holder == Some((t, id)) {
                    self.grant_next();
                }
            }
            Effect::Fetch(fetch) => {
                if fetch.stream {
                    self.tabs[t].streams += 1;
                } else {
                    self.tabs[t].syncs += 1;
                    // The test keys are plain: each change starts with its `{"key":"…"`.
                    let body = fetch.body.as_deref().unwrap_or("");
                    for part in body.split("{\"key\":\"").skip(1) {
                        self.sent_keys.extend(part.split('"').next().map(str::to_owned));
                        self.sent.push(part.to_owned());
                    }
                }
                self.requests.push_back((t, fetch.id, fetch.path));
            }
            Effect::Abort(id) => self.requests.retain(|&(tab, request, _)| !(tab == t && request == id)),
            Effect::Error(e) => self.tabs[t].errors.push(e),
            _ => {}
        }
    }

    fn release_locks_of(&mut self, tab: usize) {
        let holder = self.lock_queue.front().map(|&(t, _)| t);
        self.lock_queue.retain(|&(t, _)| t != tab);
        if holder == Some(tab) {
            self.grant_next();
        }
    }

    fn grant_next(&mut self) {
        if let Some(&(t, id)) = self.lock_queue.front() {
            let now = self.now;
            self.tabs[t].client.lock_granted(id, now);
        }
    }

    /// Answers what was asked, at this instant. A stream stays open (it is not re-queued).
    fn answer_requests(&mut self) -> bool {
        let busy = !self.requests.is_empty();
        let now = self.now;
        while let Some((t, id, path)) = self.requests.pop_front() {
            let client = &mut self.tabs[t].client;
            if !self.online {
                client.request_failed(id, "offline", false, now);
            } else if self.no_backend {
                client.answered(id, 404, "<html>Cannot POST</html>", now);
            } else if path.starts_with("/events") {
                match self.events {
                    Events::Stream => client.stream_opened(id, 200, "text/event-stream", None, now),
                    Events::Missing => client.stream_opened(id, 404, "text/html", Some("not found"), now),
                }
            } else {
                self.cursor += 1;
                let body = format!(r#"{{"updates":[],"timestamp":{},"more":false}}"#, self.cursor);
                client.answered(id, 200, &body, now);
            }
        }
        busy
    }

    /// Moves the clock forward by `ms`, waking each tab at every time it asked for on the way.
    fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        loop {
            let next = self.tabs.iter().filter(|t| t.open).filter_map(|t| t.wake).filter(|&at| at <= end).min();
            let Some(at) = next else { break };
            self.now = self.now.max(at);
            let now = self.now;
            for t in 0..self.tabs.len() {
                if self.tabs[t].open && self.tabs[t].wake.is_some_and(|w| w <= now) {
                    self.tabs[t].wake = None;
                    self.tabs[t].client.wake(now);
                }
            }
            self.settle();
        }
        self.now = end;
    }

    fn syncs(&self) -> Vec<usize> {
        self.tabs.iter().map(|t| t.syncs).collect()
    }
}

#[test]
fn with_three_idle_tabs_one_polls_every_interval_and_when_it_closes_another_takes_over() {
    let mut world = World::new(Events::Missing, true, 150);
    for _ in 0..3 {
        world.open_tab();
    }
    assert_eq!(world.leaders(), vec![0], "the first tab to ask for the lock leads");
    let before = world.syncs();
    world.advance(1_500);
    let polled: Vec<usize> = world.syncs().iter().zip(&before).map(|(after, before)| after - before).collect();
    assert_eq!(polled, vec![10, 0, 0], "one poll per 150 ms interval by the leader, none by the followers");

    world.close_tab(0);
    assert_eq!(world.leaders(), vec![1], "the next tab in the lock's queue leads at once");
    let before = world.syncs();
    world.advance(1_500);
    assert_eq!(world.syncs()[1] - before[1], 10, "the new leader polls");
    assert_eq!(world.syncs()[2], before[2], "the remaining follower still does not");
}

#[test]
fn without_web_locks_the_storage_lease_elects_one_poller_and_a_successor_once_it_lapses() {
    let mut world = World::new(Events::Missing, false, 150);
    for _ in 0..3 {
        world.open_tab();
    }
    world.advance(1_000);
    let leaders = world.leaders();
    assert_eq!(leaders.len(), 1, "one lease holder: {leaders:?}");
    let leader = leaders[0];
    let before = world.syncs();
    world.advance(1_500);
    for (t, (after, before)) in world.syncs().into_iter().zip(before).enumerate() {
        let polled = after - before;
        if t == leader {
            assert!(polled >= 9, "the lease holder polls every interval: {polled}");
        } else {
            assert_eq!(polled, 0, "follower {t} polls");
        }
    }
    // A tab that vanishes without giving the lease up (a crash) is replaced once it lapses.
    world.tabs[leader].open = false;
    world.tabs[leader].wake = None;
    world.advance(LEASE_MS + LEASE_BEAT_MS);
    let successors = world.leaders().into_iter().filter(|&t| t != leader).count();
    assert_eq!(successors, 1, "one successor");
}

#[test]
fn the_leader_does_not_poll_while_its_event_stream_is_open_and_followers_never_ask_for_one() {
    let mut world = World::new(Events::Stream, true, 300);
    world.open_tab();
    world.open_tab();
    assert_eq!(world.leaders(), vec![0]);
    assert_eq!(world.tabs[0].streams, 1, "the leader opens the stream");
    let before = world.syncs();
    // Well inside the watchdog's silence (2.5 × the 10 s request timeout before the first
    // heartbeat announces another).
    world.advance(20_000);
    assert_eq!(world.syncs(), before, "no polls while the stream is open");
    assert_eq!(world.tabs[0].streams, 1, "and no second stream");
    assert_eq!(world.tabs[1].streams, 0, "one stream per origin: the leader's");

    // A local write is still sent at once, by its writer.
    world.set(1, "k", "1");
    assert_eq!(world.syncs()[1], before[1] + 1);
}

#[test]
fn a_backend_without_an_event_stream_is_asked_once_and_polled_every_interval() {
    let mut world = World::new(Events::Missing, true, 300);
    world.open_tab();
    world.open_tab();
    world.advance(3_000);
    assert_eq!(world.tabs[0].streams, 1, "asked once, not on every poll");
    assert_eq!(world.tabs[0].syncs, 11, "the first sync, then one every 300 ms");
    assert_eq!(world.tabs[1].streams + world.tabs[1].syncs, 0, "the follower stays quiet");
}

#[test]
fn nothing_is_sent_while_offline_however_long_and_the_outbox_goes_the_moment_the_browser_is_online() {
    let mut world = World::new(Events::Missing, true, 60_000);
    world.open_tab();
    world.set_online(false);
    let before = world.syncs()[0];
    world.set(0, "off1", "1");
    world.set(0, "off2", "2");
    world.advance(10 * 60_000);
    assert_eq!(world.syncs()[0], before, "no request while offline");
    assert_eq!(world.tabs[0].client.status().pending, 2);

    world.set_online(true);
    assert_eq!(world.syncs()[0], before + 1, "sent at the online event, not at the next interval");
    assert_eq!(world.tabs[0].client.status().pending, 0);
}

#[test]
fn without_a_backend_at_the_url_each_tab_says_so_once_and_stays_quiet_until_a_recheck_the_online_event_or_an_answer() {
    let mut world = World::new(Events::Stream, true, 300);
    world.no_backend = true;
    world.open_tab();
    world.open_tab();
    world.advance(60_000);
    assert_eq!(world.syncs(), vec![1, 0], "the leader asked once, and nobody polls or retries a backend that is not there");
    assert_eq!(world.tabs[0].streams, 0, "nor asks it for an event stream");
    let state = world.tabs[0].client.status().state.expect("a backend is configured");
    assert!(state.absent && state.online, "{state:?}");
    assert_eq!(state.realtime, Realtime::Off);
    assert_eq!(world.tabs[0].errors.len(), 1, "said once: {:?}", world.tabs[0].errors);
    let said = world.tabs[0].errors[0].to_string();
    assert!(said.contains("no cache backend at http://backend.test/api/cache") && said.contains("backendUrl: null"), "{said}");
    assert!(matches!(world.tabs[0].errors[0], CacheError::Server { status: 404, .. }));

    // A follower's write is sent (it has not heard yet), then it is quiet too; writes stay queued.
    world.set(1, "a", "1");
    world.set(1, "b", "2");
    assert_eq!(world.syncs()[1], 1);
    assert_eq!(world.tabs[1].errors.len(), 1);
    assert_eq!(world.tabs[1].client.status().pending, 2);

    // A recheck minutes later (jitter scales the wait by at most 1.5), without a second warning.
    world.advance(ABSENT_RECHECK_MS * 3 / 2);
    assert_eq!(world.syncs(), vec![2, 2], "each asked once more");
    assert_eq!((world.tabs[0].errors.len(), world.tabs[1].errors.len()), (1, 1), "and said nothing new");

    // The backend is there now: the online event checks at once, the outbox goes, sync goes on.
    world.no_backend = false;
    world.set_online(true);
    assert_eq!(world.syncs(), vec![3, 3]);
    assert_eq!(world.tabs[1].client.status().pending, 0);
    let state = world.tabs[0].client.status().state.expect("a backend is configured");
    assert!(!state.absent && state.last_error.is_none(), "{state:?}");
    assert_eq!(world.tabs[0].streams, 1, "the leader opens its event stream");
}

#[test]
fn a_write_for_this_browser_only_is_sent_by_no_tab_neither_its_writer_nor_a_later_leader() {
    let mut world = World::new(Events::Missing, true, 300);
    world.open_tab();
    world.set_online(false);
    world.set_for(0, "orders", "[1]", Reach::Browser);
    world.set(0, "shared", "1");
    assert_eq!(world.tabs[0].client.status().pending, 1, "only the write for everyone waits to be sent");
    // A tab opened later reads both from storage and leads.
    let tab = world.replace_offline_tab(0);
    assert_eq!(world.tabs[tab].client.status().pending, 0, "the write for everyone went and was acknowledged");
    assert_eq!(world.sent_keys, vec!["shared".to_owned()], "and nothing else");
}

/// `set(k, v)` offline, then `set(k, w, { sync: false })`, `remove(k, { sync: false })` or
/// `invalidate` for this browser (an optimistic value, a loaded one, a per-user scope): the first
/// write still reaches the backend as it was made, here from a tab that leads after its writer
/// closed; what covers it never does, and stays what this browser shows.
#[test]
fn a_write_for_this_browser_only_keeps_the_key_s_pending_write_for_everyone_in_the_outbox() {
    let mut world = World::new(Events::Missing, true, 300);
    world.open_tab();
    world.set_online(false);
    world.set(0, "draft", "1");
    assert!(world.tabs[0].client.cache().is_unsynced("draft"));
    world.remove_for(0, "draft", Reach::Browser);
    world.remove_for(0, "never-written", Reach::Browser);
    assert!(!world.tabs[0].client.cache().is_unsynced("draft"), "the removal itself waits for nothing");
    world.set(0, "note", "1");
    world.set_for(0, "note", "2", Reach::Browser);
    world.set(0, "own:1", "1");
    let now = world.now;
    let (_, removed) = world.tabs[0].client.invalidate_for("own:*", Reach::Browser, now).expect("a valid pattern");
    assert_eq!(removed, vec!["own:1".to_owned()]);
    assert!(world.tabs[0].client.flush(now).is_empty());
    world.set(0, "shared", "1");
    assert_eq!(world.tabs[0].client.status().pending, 4, "every write for everyone waits, three of them covered");
    let tab = world.replace_offline_tab(0);
    assert_eq!(world.tabs[tab].client.status().pending, 0, "they went and were acknowledged");
    assert_eq!(world.sent_keys, ["draft", "note", "own:1", "shared"], "and nothing else");
    for sent in &world.sent {
        assert!(sent.contains("\"value\":1,"), "each as it was written, not what covers it: {sent}");
    }
    let now = world.now;
    let client = &mut world.tabs[tab].client;
    assert_eq!(client.get("draft", now), None, "this browser still shows what covers them");
    assert_eq!(client.get("note", now).map(|(json, _)| json.to_owned()), Some("2".to_owned()));
    assert_eq!(client.get("own:1", now), None);
}

/// A burst of writes in one task is announced once: the status (its pending count) and the next
/// wake-up are settled by the flush the task ends with, not by each write, so a `sync` listener
/// (and a React hook on it) hears one change per burst.
#[test]
fn a_burst_of_writes_announces_the_status_once_at_its_flush() {
    let now = 1_700_000_000_000;
    let config = ClientConfig {
        prefix: "burst_".into(),
        node: "tab0".into(),
        page: "page0".into(),
        web_locks: true,
        backend: Some(BackendConfig {
            policy: SyncPolicy { sync_interval_ms: 30_000, retry_delay_ms: 100, max_retries: 3 },
            request_timeout_ms: 10_000,
            max_batch_bytes: 512 * 1024,
            realtime: false,
            url: "http://backend.test/api/cache".into(),
        }),
        seed: 1,
    };
    let mut client = Client::open(MemoryStorage::default(), config, now);
    // Offline: nothing is sent, so the only status changes are the writes' pending count.
    client.set_online(false, now);
    client.take_effects();
    let statuses = |effects: &[Effect]| effects.iter().filter(|e| matches!(e, Effect::Status)).count();
    let wakes = |effects: &[Effect]| effects.iter().filter(|e| matches!(e, Effect::Wake(_))).count();

    for i in 0..50 {
        client.set(&format!("k{i}"), i.to_string(), 60_000, now, false).unwrap();
    }
    let during = client.take_effects();
    assert_eq!((statuses(&during), wakes(&during)), (0, 0), "the writes settle nothing themselves: {during:?}");
    assert_eq!(client.status().pending, 50, "the status read between the writes and the flush is current");

    assert!(client.flush(now).is_empty());
    let after = client.take_effects();
    assert_eq!(statuses(&after), 1, "one announcement for the burst: {after:?}");
    assert_eq!(wakes(&after), 1, "the flush asks for the expiry wake-up: {after:?}");
    assert!(after.iter().any(|e| matches!(e, Effect::Wake(Some(at)) if *at == now + 60_000)), "{after:?}");
}
