//! Devices, tabs, copies, the links between them and the backend, all on one manual clock. Every
//! delivery is an event at a time of the true clock; a device's clients see that time plus the
//! device's skew.
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::rc::Rc;

use mfe_shared_cache_core::client::{BackendConfig, Client, ClientConfig, Effect};
use mfe_shared_cache_core::{
    decode_record_pending, prefix_tag, Cache, CacheConfig, DecodedRecord, Entry, ErrorKind, MemoryStorage, Reach, Stamp, Storage,
    StorageError, SyncPolicy,
};

use super::backend::{event, Backend};
use super::Rng;

pub const PREFIX: &str = "sim_";

/// What a replica shows: live values with their stamps, and the clear epoch.
pub type View = (BTreeMap<String, (Stamp, String)>, Option<Stamp>);
pub const SYNC_INTERVAL_MS: u64 = 5_000;
pub const REQUEST_TIMEOUT_MS: u64 = 4_000;
pub const HEARTBEAT_MS: u64 = 15_000;

/// One device's `localStorage`, and the writes its tabs made that other tabs have not been told
/// of by a `storage` event yet.
#[derive(Default)]
pub struct DeviceStore {
    pub items: MemoryStorage,
    journal: Vec<(u64, String, Option<String>)>,
    /// Records stored by copies of a later version, with a member this version does not know.
    pub later_records: usize,
}

/// A tab's handle on its device's storage: writes are journaled with the tab's page, because a
/// `storage` event reaches every other page of the origin and never the writer's own. A copy of
/// a `later` version of the package stores its records with a member this version does not know.
#[derive(Clone)]
pub struct SharedStorage {
    store: Rc<RefCell<DeviceStore>>,
    page: u64,
    later: bool,
}

/// A member a later version of the package adds, holding what would end a record or start a known
/// member if it were read as text.
const LATER_MEMBER: &str = r#","later":{"x":[1,"}\",\"v\":0"]}"#;

/// `record` as a later version of the package stores it: with [`LATER_MEMBER`] where the record
/// format's rule puts added members (before the value, its TTL or the tombstone mark; at the end of
/// a bookkeeping record). `None` for what is not a record of this cache.
fn as_later_version(record: &str) -> Option<String> {
    let tail = if record.starts_with("{\"p\":") {
        "}".len()
    } else {
        let Ok((DecodedRecord::Mine(entry), _)) = decode_record_pending(record, &prefix_tag(PREFIX)) else { return None };
        match &entry.value {
            None => ",\"d\":1}".len(),
            Some(value) => {
                let ttl = if entry.ttl_ms == 0 { 0 } else { ",\"l\":".len() + entry.ttl_ms.to_string().len() };
                ttl + ",\"v\":".len() + value.len() + "}".len()
            }
        }
    };
    let at = record.len().checked_sub(tail)?;
    Some(format!("{}{LATER_MEMBER}{}", record.get(..at)?, record.get(at..)?))
}

/// News as a later version sends it: with a top-level member this version does not know.
fn news_as_later_version(news: &str) -> String {
    news.replacen("{\"v\":2,", "{\"v\":2,\"later\":[1],", 1)
}

impl Storage for SharedStorage {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.store.borrow().items.get(key)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), StorageError> {
        let later = if self.later { as_later_version(value) } else { None };
        let value = later.as_deref().unwrap_or(value);
        let mut store = self.store.borrow_mut();
        store.later_records += usize::from(later.is_some());
        let old = store.items.get(key)?;
        store.items.set(key, value)?;
        if std::env::var("SIM_TRACE").is_ok_and(|k| format!("{PREFIX}{k}") == key || (k == "meta" && key.ends_with("\0meta"))) {
            eprintln!("storage set by page {}: {value}", self.page);
        }
        // Browsers raise no event for a write that changes nothing.
        if old.as_deref() != Some(value) {
            store.journal.push((self.page, key.to_owned(), Some(value.to_owned())));
        }
        Ok(())
    }

    fn remove(&mut self, key: &str) -> Result<(), StorageError> {
        let mut store = self.store.borrow_mut();
        if store.items.get(key)?.is_some() {
            store.items.remove(key)?;
            store.journal.push((self.page, key.to_owned(), None));
        }
        Ok(())
    }

    fn keys(&self) -> Result<Vec<String>, StorageError> {
        self.store.borrow().items.keys()
    }
}

/// Whether the copy `uid` is of a later version of the package: one in three, so that most pages
/// and storages mix the two.
fn is_later(uid: u64) -> bool {
    uid % 3 == 1
}

pub struct Copy {
    pub uid: u64,
    pub client: Client<SharedStorage>,
    /// The wake-up asked for, on the device's clock.
    pub wake: Option<u64>,
    aborted: HashSet<u32>,
}

pub struct Tab {
    pub page: u64,
    pub copies: Vec<Copy>,
}

#[derive(Default)]
struct Lock {
    holder: Option<(u64, u32)>,
    queue: VecDeque<(u64, u32)>,
}

pub struct Device {
    pub skew: i64,
    pub store: Rc<RefCell<DeviceStore>>,
    pub tabs: Vec<Tab>,
    pub online: bool,
    web_locks: bool,
    /// Whether the browser has BroadcastChannel; without it `storage` events are the only link.
    channel: bool,
    locks: HashMap<String, Lock>,
    /// Per receiving page, when its last `storage` event is due: they arrive in order.
    storage_due: HashMap<u64, u64>,
}

enum Ev {
    Tab { dev: usize, page: u64, text: String },
    Storage { dev: usize, page: u64, key: String, value: Option<String> },
    Arrive { dev: usize, uid: u64, id: u32, path: String, body: Option<String>, sent: u64 },
    Answer { uid: u64, id: u32, status: u16, body: String },
    Failed { uid: u64, id: u32, timed_out: bool },
    StreamOpen { uid: u64, id: u32 },
    StreamData { uid: u64, id: u32, text: String },
    StreamEnd { uid: u64, id: u32 },
    Granted { dev: usize, uid: u64, id: u32, name: String },
    Heartbeat,
}

struct StreamReg {
    uid: u64,
    id: u32,
    /// When its last data is due: a stream delivers in order.
    due: u64,
}

/// How unreliable this run's links and backend are (percentages; 0 once healed).
#[derive(Clone, Copy, Default)]
pub struct Faults {
    pub net_fail: u64,
    pub answer_lost: u64,
    pub unavailable: u64,
    pub slow: u64,
    pub slow_tabs: u64,
}

/// One write of the global log: a key's write (with the device it stays on, for a write for
/// that browser only), or a clear.
pub enum Logged {
    Write(String, Entry, Option<usize>),
    Clear(Stamp),
}

#[derive(Default)]
pub struct Figures {
    pub ops: usize,
    pub writes: usize,
    pub clears: usize,
    pub reloads: usize,
    pub requests: usize,
    pub failures: Vec<String>,
}

pub struct World {
    pub rng: Rng,
    pub now: u64,
    pub devices: Vec<Device>,
    pub backend: Backend,
    pub backend_up: bool,
    pub faults: Faults,
    pub log: Vec<Logged>,
    pub figures: Figures,
    pub realtime: bool,
    max_batch_bytes: usize,
    events: BTreeMap<(u64, u64), Ev>,
    seq: u64,
    next_uid: u64,
    streams: Vec<StreamReg>,
    /// Clients that have had a `/sync` answered: the leader opens the stream after its first.
    synced: HashSet<u64>,
    heartbeat_armed: bool,
}

impl World {
    pub fn new(seed: u64, start: u64) -> World {
        let mut rng = Rng::new(seed);
        let realtime = rng.percent(60);
        let max_batch_bytes = if rng.percent(50) { 300 } else { 512 * 1024 };
        let faults = Faults {
            net_fail: rng.below(15),
            answer_lost: rng.below(10),
            unavailable: rng.below(10),
            slow: rng.below(8),
            slow_tabs: rng.below(30),
        };
        let mut world = World {
            rng,
            now: start,
            devices: Vec::new(),
            backend: Backend::default(),
            backend_up: true,
            faults,
            log: Vec::new(),
            figures: Figures::default(),
            realtime,
            max_batch_bytes,
            events: BTreeMap::new(),
            seq: 0,
            next_uid: 0,
            streams: Vec::new(),
            synced: HashSet::new(),
            heartbeat_armed: false,
        };
        // The second device's clock is hours fast (up to a day and more): its first writes are
        // stamped hours ahead, and its TTLs run on the backend's clock once it has read it.
        let fast = (1 + world.rng.below(26)) * 3_600_000 + world.rng.below(600_000);
        for skew in [0i64, fast as i64] {
            let web_locks = world.rng.percent(80);
            let channel = world.rng.percent(80);
            world.devices.push(Device {
                skew,
                store: Rc::default(),
                tabs: Vec::new(),
                online: true,
                web_locks,
                channel,
                locks: HashMap::new(),
                storage_due: HashMap::new(),
            });
        }
        for dev in 0..world.devices.len() {
            let tabs = 2 + world.rng.index(2);
            for _ in 0..tabs {
                let page = world.uid();
                world.devices[dev].tabs.push(Tab { page, copies: Vec::new() });
                let tab = world.devices[dev].tabs.len() - 1;
                world.open_tab(dev, tab);
            }
        }
        world
    }

    fn uid(&mut self) -> u64 {
        self.next_uid += 1;
        self.next_uid
    }

    pub fn local(&self, dev: usize) -> u64 {
        self.now.saturating_add_signed(self.devices[dev].skew)
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.events.insert((at.max(self.now), self.seq), ev);
    }

    fn config(&self, dev: usize, page: u64, uid: u64, copy: usize) -> ClientConfig {
        ClientConfig {
            prefix: PREFIX.into(),
            node: format!("d{dev}p{page}c{copy}u{uid}"),
            page: format!("page{page}"),
            web_locks: self.devices[dev].web_locks,
            backend: Some(BackendConfig {
                policy: SyncPolicy { sync_interval_ms: SYNC_INTERVAL_MS, retry_delay_ms: 300, max_retries: 3 },
                request_timeout_ms: REQUEST_TIMEOUT_MS,
                max_batch_bytes: self.max_batch_bytes,
                realtime: self.realtime,
                url: "/api/cache".into(),
            }),
            seed: uid,
        }
    }

    /// Opens the tab's page: one copy of the package, sometimes two.
    fn open_tab(&mut self, dev: usize, tab: usize) {
        let copies = if self.rng.percent(30) { 2 } else { 1 };
        let page = self.devices[dev].tabs[tab].page;
        for copy in 0..copies {
            let uid = self.uid();
            let storage = SharedStorage { store: self.devices[dev].store.clone(), page, later: is_later(uid) };
            let config = self.config(dev, page, uid, copy);
            let now = self.local(dev);
            let mut client = Client::open(storage, config, now);
            let errors = client.take_startup_errors();
            if !errors.is_empty() {
                self.figures.failures.push(format!("startup errors in d{dev}: {errors:?}"));
            }
            if !self.devices[dev].online {
                client.set_online(false, now);
            }
            self.devices[dev].tabs[tab].copies.push(Copy { uid, client, wake: None, aborted: HashSet::new() });
        }
        self.settle_tab(dev, tab);
    }

    /// One copy of the package on the page is disposed and opened again (its micro-frontend
    /// unmounted and mounted), while the page and its other copy stay.
    pub fn remount(&mut self, dev: usize, tab: usize, copy: usize) {
        let now = self.local(dev);
        self.devices[dev].tabs[tab].copies[copy].client.dispose(now);
        self.settle_tab(dev, tab);
        let page = self.devices[dev].tabs[tab].page;
        let uid = self.uid();
        let storage = SharedStorage { store: self.devices[dev].store.clone(), page, later: is_later(uid) };
        let config = self.config(dev, page, uid, copy);
        let now = self.local(dev);
        let mut client = Client::open(storage, config, now);
        if !self.devices[dev].online {
            client.set_online(false, now);
        }
        self.devices[dev].tabs[tab].copies[copy] = Copy { uid, client, wake: None, aborted: HashSet::new() };
        self.figures.reloads += 1;
        self.settle_tab(dev, tab);
    }

    /// Reloads a tab: its copies are disposed (persisting what they hold) and the page opens again.
    pub fn reload(&mut self, dev: usize, tab: usize) {
        let now = self.local(dev);
        for copy in 0..self.devices[dev].tabs[tab].copies.len() {
            self.devices[dev].tabs[tab].copies[copy].client.dispose(now);
        }
        self.settle_tab(dev, tab);
        self.devices[dev].tabs[tab].copies.clear();
        self.devices[dev].tabs[tab].page = self.uid();
        self.figures.reloads += 1;
        self.open_tab(dev, tab);
    }

    /// The page is hidden (it may be going away): a lease holder gives up its lease.
    pub fn hide(&mut self, dev: usize, tab: usize) {
        for copy in &mut self.devices[dev].tabs[tab].copies {
            copy.client.page_hidden();
        }
        self.settle_tab(dev, tab);
    }

    pub fn set_online(&mut self, dev: usize, online: bool) {
        self.devices[dev].online = online;
        let now = self.local(dev);
        for tab in 0..self.devices[dev].tabs.len() {
            for copy in &mut self.devices[dev].tabs[tab].copies {
                copy.client.set_online(online, now);
            }
            self.settle_tab(dev, tab);
        }
    }

    /// The backend process dies: requests in flight get no answer and streams end; its store is
    /// durable, so nothing it acknowledged is lost.
    pub fn crash_backend(&mut self) {
        self.backend_up = false;
        let streams = std::mem::take(&mut self.streams);
        for s in streams {
            let at = s.due.max(self.now) + 1;
            self.schedule(at, Ev::StreamEnd { uid: s.uid, id: s.id });
        }
    }

    /// Runs `f` on one copy, then carries out what every copy of its tab asked for.
    pub fn with_copy<T>(&mut self, dev: usize, tab: usize, copy: usize, f: impl FnOnce(&mut Client<SharedStorage>, u64) -> T) -> T {
        let now = self.local(dev);
        let out = f(&mut self.devices[dev].tabs[tab].copies[copy].client, now);
        self.settle_tab(dev, tab);
        out
    }

    /// Hands `news` (returned by a local write) to the page's other copies, synchronously.
    pub fn tell_peers(&mut self, dev: usize, tab: usize, from: usize, news: &str) {
        let now = self.local(dev);
        for (i, copy) in self.devices[dev].tabs[tab].copies.iter_mut().enumerate() {
            if i != from {
                copy.client.peer_message(news, now);
            }
        }
        self.settle_tab(dev, tab);
    }

    /// Carries out the effects of every copy of a tab until none asks for more (the page hub is
    /// synchronous), then schedules the `storage` events of what was written.
    fn settle_tab(&mut self, dev: usize, tab: usize) {
        loop {
            let mut any = false;
            for copy in 0..self.devices[dev].tabs[tab].copies.len() {
                let effects = self.devices[dev].tabs[tab].copies[copy].client.take_effects();
                any |= !effects.is_empty();
                for effect in effects {
                    self.effect(dev, tab, copy, effect);
                }
            }
            if !any {
                break;
            }
        }
        self.storage_events(dev);
    }

    fn storage_events(&mut self, dev: usize) {
        let journal = std::mem::take(&mut self.devices[dev].store.borrow_mut().journal);
        for (from, key, value) in journal {
            let pages: Vec<u64> = self.devices[dev].tabs.iter().map(|t| t.page).filter(|p| *p != from).collect();
            for page in pages {
                let slow = self.rng.percent(self.faults.slow_tabs);
                let delay = self.rng.below(if slow { 1_500 } else { 200 });
                let due = self.devices[dev].storage_due.get(&page).copied().unwrap_or(0).max(self.now + delay);
                self.devices[dev].storage_due.insert(page, due);
                self.schedule(due, Ev::Storage { dev, page, key: key.clone(), value: value.clone() });
            }
        }
    }

    fn effect(&mut self, dev: usize, tab: usize, copy: usize, effect: Effect) {
        let uid = self.devices[dev].tabs[tab].copies[copy].uid;
        match effect {
            Effect::Tab(_) if !self.devices[dev].channel => {}
            Effect::Tab(text) => {
                let text = if is_later(uid) { news_as_later_version(&text) } else { text };
                let from = self.devices[dev].tabs[tab].page;
                let pages: Vec<u64> = self.devices[dev].tabs.iter().map(|t| t.page).filter(|p| *p != from).collect();
                for page in pages {
                    // BroadcastChannel: delayed, and not ordered with storage events or other messages.
                    let slow = self.rng.percent(self.faults.slow_tabs);
                    let delay = self.rng.below(if slow { 2_000 } else { 60 });
                    self.schedule(self.now + delay, Ev::Tab { dev, page, text: text.clone() });
                }
            }
            Effect::Peers(text) => {
                let text = if is_later(uid) { news_as_later_version(&text) } else { text };
                let now = self.local(dev);
                for (i, other) in self.devices[dev].tabs[tab].copies.iter_mut().enumerate() {
                    if i != copy {
                        other.client.peer_message(&text, now);
                    }
                }
            }
            Effect::Fetch(fetch) => {
                self.figures.requests += 1;
                if fetch.stream && !self.synced.contains(&uid) {
                    self.figures.failures.push(format!("{uid} opened the event stream before any /sync was answered"));
                }
                if !self.devices[dev].online {
                    self.schedule(self.now + 1, Ev::Failed { uid, id: fetch.id, timed_out: false });
                } else {
                    // Sometimes the request reaches the backend only after the client gave up on
                    // it (and maybe sent the next one): it is stored all the same.
                    let late = !fetch.stream && self.rng.percent(self.faults.slow);
                    let delay = if late { REQUEST_TIMEOUT_MS + 1 + self.rng.below(6_000) } else { 5 + self.rng.below(120) };
                    let sent = self.now;
                    if late {
                        self.schedule(sent + REQUEST_TIMEOUT_MS, Ev::Failed { uid, id: fetch.id, timed_out: true });
                    }
                    self.schedule(self.now + delay, Ev::Arrive { dev, uid, id: fetch.id, path: fetch.path, body: fetch.body, sent });
                }
            }
            Effect::Abort(id) => {
                self.devices[dev].tabs[tab].copies[copy].aborted.insert(id);
                self.streams.retain(|s| !(s.uid == uid && s.id == id));
            }
            Effect::Lock { id, name, .. } => {
                let lock = self.devices[dev].locks.entry(name.clone()).or_default();
                if lock.holder.is_none() {
                    lock.holder = Some((uid, id));
                    self.schedule(self.now, Ev::Granted { dev, uid, id, name });
                } else {
                    lock.queue.push_back((uid, id));
                }
            }
            Effect::Unlock(id) => {
                let names: Vec<String> = self.devices[dev].locks.keys().cloned().collect();
                for name in names {
                    self.unlock(dev, &name, uid, id);
                }
            }
            Effect::QueryLocks { .. } | Effect::RunLoader(_) | Effect::Settled { .. } => {}
            Effect::Wake(at) => self.devices[dev].tabs[tab].copies[copy].wake = at,
            // The links and the backend fail only in ways the client must take in its stride;
            // anything else (a message or answer it cannot read, a write refused) is a finding.
            Effect::Error(e) if !matches!(e.kind(), ErrorKind::Network | ErrorKind::Server) => {
                let node = self.devices[dev].tabs[tab].copies[copy].client.node().to_owned();
                self.figures.failures.push(format!("{node} reported {e:?}"));
            }
            Effect::Changed(_) | Effect::Error(_) | Effect::Status | Effect::Log(_) => {}
        }
    }

    fn unlock(&mut self, dev: usize, name: &str, uid: u64, id: u32) {
        let Some(lock) = self.devices[dev].locks.get_mut(name) else { return };
        lock.queue.retain(|w| *w != (uid, id));
        if lock.holder == Some((uid, id)) {
            lock.holder = lock.queue.pop_front();
            if let Some((next_uid, next_id)) = lock.holder {
                self.schedule(self.now, Ev::Granted { dev, uid: next_uid, id: next_id, name: name.to_owned() });
            }
        }
    }

    fn find(&self, uid: u64) -> Option<(usize, usize, usize)> {
        for (d, device) in self.devices.iter().enumerate() {
            for (t, tab) in device.tabs.iter().enumerate() {
                if let Some(c) = tab.copies.iter().position(|c| c.uid == uid) {
                    return Some((d, t, c));
                }
            }
        }
        None
    }

    /// The copy `uid` if it is alive and has not aborted request `id`.
    fn live(&self, uid: u64, id: u32) -> Option<(usize, usize, usize)> {
        let (d, t, c) = self.find(uid)?;
        (!self.devices[d].tabs[t].copies[c].aborted.contains(&id)).then_some((d, t, c))
    }

    /// When the next thing happens: an event, or a copy's timer (converted to the true clock).
    pub fn next_due(&self) -> Option<u64> {
        let event = self.events.keys().next().map(|(at, _)| *at);
        let wake = self
            .devices
            .iter()
            .flat_map(|d| d.tabs.iter().flat_map(move |t| t.copies.iter().filter_map(move |c| c.wake.map(|w| w.saturating_add_signed(-d.skew)))))
            .min();
        [event, wake].into_iter().flatten().min()
    }

    /// Runs everything due up to `until` (the true clock), in time order; returns the steps.
    pub fn run_until(&mut self, until: u64) -> usize {
        let mut steps = 0;
        let mut same_time = 0;
        while let Some(at) = self.next_due().filter(|at| *at <= until) {
            same_time = if at <= self.now { same_time + 1 } else { 0 };
            if same_time > 10_000 {
                // A client asking to be woken now, again and again, without doing anything.
                self.figures.failures.push(format!("a busy loop at {}: {:?}", self.now, self.busy()));
                self.events.clear();
                for device in &mut self.devices {
                    for tab in &mut device.tabs {
                        for copy in &mut tab.copies {
                            copy.wake = None;
                        }
                    }
                }
                break;
            }
            self.now = self.now.max(at);
            steps += 1;
            if let Some((&key, _)) = self.events.iter().next().filter(|((t, _), _)| *t <= self.now) {
                if let Some(ev) = self.events.remove(&key) {
                    self.deliver(ev);
                }
                continue;
            }
            let mut due = None;
            'find: for (d, device) in self.devices.iter().enumerate() {
                for (t, tab) in device.tabs.iter().enumerate() {
                    for (c, copy) in tab.copies.iter().enumerate() {
                        if copy.wake.is_some_and(|w| w.saturating_add_signed(-device.skew) <= self.now) {
                            due = Some((d, t, c));
                            break 'find;
                        }
                    }
                }
            }
            if let Some((d, t, c)) = due {
                self.devices[d].tabs[t].copies[c].wake = None;
                self.with_copy(d, t, c, |client, now| client.wake(now));
            }
        }
        self.now = self.now.max(until);
        steps
    }

    fn busy(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (d, device) in self.devices.iter().enumerate() {
            for tab in &device.tabs {
                for copy in &tab.copies {
                    if copy.wake.is_some_and(|w| w.saturating_add_signed(-device.skew) <= self.now) {
                        out.push(format!("d{d} {} {:?}", copy.client.node(), copy.client.status()));
                    }
                }
            }
        }
        out.extend(self.events.keys().take(3).map(|k| format!("event at {}", k.0)));
        out
    }

    fn trace(&self, ev: &Ev) {
        let Ok(key) = std::env::var("SIM_TRACE") else { return };
        let quoted = format!("\"{key}\"");
        let line = match ev {
            Ev::Tab { dev, page, text } if text.contains(&quoted) || (key == "meta" && text.contains("\"clear\"")) => {
                format!("tab msg to d{dev} page {page}: {text}")
            }
            Ev::Storage { dev, page, key: k, value } if *k == format!("{PREFIX}{key}") || (key == "meta" && k.ends_with("\0meta")) => {
                format!("storage event to d{dev} page {page}: {value:?}")
            }
            Ev::Arrive { uid, path, body, .. } => format!("arrive from {uid} {path} {body:?}"),
            Ev::Answer { uid, body, status, .. } => format!("answer to {uid} {status} {body}"),
            Ev::Failed { uid, .. } => format!("failed to {uid}"),
            _ => return,
        };
        eprintln!("{} {line}", self.now);
    }

    fn deliver(&mut self, ev: Ev) {
        self.trace(&ev);
        match ev {
            Ev::Tab { dev, page, text } => {
                let Some(tab) = self.devices[dev].tabs.iter().position(|t| t.page == page) else { return };
                let now = self.local(dev);
                for copy in &mut self.devices[dev].tabs[tab].copies {
                    copy.client.tab_message(&text, now);
                }
                self.settle_tab(dev, tab);
            }
            Ev::Storage { dev, page, key, value } => {
                let Some(tab) = self.devices[dev].tabs.iter().position(|t| t.page == page) else { return };
                let now = self.local(dev);
                let channel = self.devices[dev].channel;
                for copy in &mut self.devices[dev].tabs[tab].copies {
                    copy.client.storage_event(&key, value.as_deref(), channel, now);
                }
                self.settle_tab(dev, tab);
            }
            Ev::Arrive { dev, uid, id, path, body, sent } => self.arrive(dev, uid, id, path, body, sent),
            Ev::Answer { uid, id, status, body } => {
                let Some((d, t, c)) = self.live(uid, id) else { return };
                if status == 200 && body.contains("\"updates\"") {
                    self.synced.insert(uid);
                }
                self.with_copy(d, t, c, |client, now| client.answered(id, status, &body, now));
            }
            Ev::Failed { uid, id, timed_out } => {
                let Some((d, t, c)) = self.live(uid, id) else { return };
                self.with_copy(d, t, c, |client, now| client.request_failed(id, "network error", timed_out, now));
            }
            Ev::StreamOpen { uid, id } => {
                let Some((d, t, c)) = self.live(uid, id) else { return };
                self.with_copy(d, t, c, |client, now| client.stream_opened(id, 200, "text/event-stream", None, now));
            }
            Ev::StreamData { uid, id, text } => {
                let Some((d, t, c)) = self.live(uid, id) else { return };
                self.with_copy(d, t, c, |client, now| client.stream_data(id, text.as_bytes(), now));
            }
            Ev::StreamEnd { uid, id } => {
                let Some((d, t, c)) = self.live(uid, id) else { return };
                self.with_copy(d, t, c, |client, now| client.stream_ended(id, now));
            }
            Ev::Granted { dev, uid, id, name } => {
                let held = self.devices[dev].locks.get(&name).is_some_and(|l| l.holder == Some((uid, id)));
                if !held {
                    return;
                }
                match self.find(uid) {
                    Some((d, t, c)) => self.with_copy(d, t, c, |client, now| client.lock_granted(id, now)),
                    // Granted after its tab closed: let go, as the binding does.
                    None => self.unlock(dev, &name, uid, id),
                }
            }
            Ev::Heartbeat => {
                self.heartbeat_armed = false;
                for i in 0..self.streams.len() {
                    self.push_stream(i, ":\n\n".into());
                }
                self.arm_heartbeat();
            }
        }
    }

    fn arm_heartbeat(&mut self) {
        if !self.heartbeat_armed && !self.streams.is_empty() {
            self.heartbeat_armed = true;
            self.schedule(self.now + HEARTBEAT_MS, Ev::Heartbeat);
        }
    }

    fn push_stream(&mut self, i: usize, text: String) {
        let delay = 5 + self.rng.below(80);
        let s = &mut self.streams[i];
        s.due = s.due.max(self.now + delay);
        let (uid, id, due) = (s.uid, s.id, s.due);
        self.schedule(due, Ev::StreamData { uid, id, text });
    }

    fn answer(&mut self, uid: u64, id: u32, sent: u64, status: u16, body: String) {
        if self.now - sent >= REQUEST_TIMEOUT_MS {
            return; // the client timed out already
        }
        let slow = self.rng.percent(self.faults.slow);
        let at = self.now + if slow { REQUEST_TIMEOUT_MS + 1_000 } else { 5 + self.rng.below(150) };
        if at - sent >= REQUEST_TIMEOUT_MS {
            self.schedule(sent + REQUEST_TIMEOUT_MS, Ev::Failed { uid, id, timed_out: true });
        } else {
            self.schedule(at, Ev::Answer { uid, id, status, body });
        }
    }

    fn arrive(&mut self, _dev: usize, uid: u64, id: u32, path: String, body: Option<String>, sent: u64) {
        if self.now - sent >= REQUEST_TIMEOUT_MS && path.starts_with("/events") {
            return;
        }
        if !self.backend_up || self.rng.percent(self.faults.net_fail) {
            let at = self.now + 1 + self.rng.below(50);
            return self.schedule(at, Ev::Failed { uid, id, timed_out: false });
        }
        if let Some(cursor) = path.strip_prefix("/events?cursor=") {
            let cursor = cursor.parse().unwrap_or(0);
            let text = self.backend.catch_up(cursor, HEARTBEAT_MS);
            self.streams.push(StreamReg { uid, id, due: self.now });
            self.schedule(self.now + 1, Ev::StreamOpen { uid, id });
            let i = self.streams.len() - 1;
            self.push_stream(i, text);
            return self.arm_heartbeat();
        }
        if self.rng.percent(self.faults.unavailable) {
            return self.answer(uid, id, sent, 503, "{\"error\":\"unavailable\",\"message\":\"try later\"}".into());
        }
        let body = body.unwrap_or_default();
        let (status, answer, accepted) = match path.as_str() {
            "/sync" => self.backend.sync(&body, self.now),
            "/clear" => self.backend.clear(&body),
            other => (404, format!("{{\"error\":\"not_found\",\"message\":\"{other}\"}}"), Vec::new()),
        };
        if status != 200 {
            self.figures.failures.push(format!("the backend refused {path} {body}: {answer}"));
        }
        for item in &accepted {
            let text = event(item);
            for i in 0..self.streams.len() {
                self.push_stream(i, text.clone());
            }
        }
        if self.rng.percent(self.faults.answer_lost) {
            // Stored, but the answer never arrives: the client must send it again.
            let at = self.now + 1 + self.rng.below(50);
            return self.schedule(at, Ev::Failed { uid, id, timed_out: false });
        }
        self.answer(uid, id, sent, status, answer);
    }

    /// Records the write a client just made of `key`, for the model.
    pub fn log_write(&mut self, dev: usize, tab: usize, copy: usize, key: &str, reach: Reach) {
        if let Some(entry) = self.devices[dev].tabs[tab].copies[copy].client.cache().replica().entry(key) {
            let entry = entry.clone();
            let only = (reach == Reach::Browser).then_some(dev);
            self.log.push(Logged::Write(key.to_owned(), entry, only));
            self.figures.writes += 1;
        }
    }

    pub fn log_clear(&mut self, dev: usize, tab: usize, copy: usize) {
        if let Some(epoch) = self.devices[dev].tabs[tab].copies[copy].client.cache().replica().epoch() {
            let epoch = epoch.clone();
            self.log.push(Logged::Clear(epoch));
            self.figures.clears += 1;
        }
    }

    /// Every copy, as (device, tab, copy).
    pub fn copies(&self) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for (d, device) in self.devices.iter().enumerate() {
            for (t, tab) in device.tabs.iter().enumerate() {
                for c in 0..tab.copies.len() {
                    out.push((d, t, c));
                }
            }
        }
        out
    }

    /// What a client shows at `true_now`: live values with their stamps, and the clear epoch.
    pub fn client_view(&self, d: usize, t: usize, c: usize, true_now: u64) -> View {
        let cache = self.devices[d].tabs[t].copies[c].client.cache();
        view(cache, true_now.saturating_add_signed(self.devices[d].skew))
    }

    /// What a tab opened now on device `d` would show, and how much it would find pending.
    pub fn reopened_view(&self, d: usize, true_now: u64) -> (View, mfe_shared_cache_core::SyncBatch) {
        let storage = self.devices[d].store.borrow().items.clone();
        let local = true_now.saturating_add_signed(self.devices[d].skew);
        let (cache, _) = Cache::open(storage, CacheConfig::new(PREFIX, "check").with_sync(true), local);
        (view(&cache, local), cache.sync_batch(100))
    }
}

fn view<S: Storage>(cache: &Cache<S>, local: u64) -> View {
    let at = cache.time_at(local);
    let visible = cache
        .replica()
        .iter()
        .filter(|(_, e)| e.is_live(at))
        .filter_map(|(k, e)| Some((k.clone(), (e.stamp.clone(), e.value.clone()?))))
        .collect();
    (visible, cache.replica().epoch().cloned())
}
