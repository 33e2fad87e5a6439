//! What the client asks its environment to do. The core never touches the platform: it returns
//! these, and the browser binding (or a test's simulation) carries them out and reports back
//! through the client's inputs, quoting the `id` each one carries.
use crate::CacheError;

/// An HTTP request to the backend, relative to its base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// Quoted back with the answer ([`super::Client::answered`], [`super::Client::request_failed`]) or
    /// the stream's events.
    pub id: u32,
    /// `/sync`, `/clear`, or `/events?cursor=N` for the event stream.
    pub path: String,
    /// A POST body (JSON); `None` for the event stream (a GET).
    pub body: Option<String>,
    /// Whether this opens the event stream: its body is read as it arrives
    /// ([`super::Client::stream_data`]) instead of whole.
    pub stream: bool,
    /// How long the request (for a stream: until its headers) may take before it is aborted and
    /// counts as a network failure.
    pub timeout_ms: u64,
}

/// How a Web Lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// One holder at a time.
    Exclusive,
    /// Any number of holders (a marker other tabs can see).
    Shared,
}

/// One thing for the environment to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Tell the other tabs (BroadcastChannel) this news message. Where only the `storage` event
    /// links tabs, the storage writes already told them, and this is dropped.
    Tab(String),
    /// Hand this news message to the page's other instances (other copies of the package).
    Peers(String),
    /// Send a request.
    Fetch(Fetch),
    /// Abort a request or close the event stream.
    Abort(u32),
    /// Ask for a Web Lock; the answer is [`super::Client::lock_granted`] or
    /// [`super::Client::lock_failed`] (refused, or not granted within `timeout_ms`).
    Lock {
        /// Quoted back.
        id: u32,
        /// The lock's name (shared by every tab of the origin).
        name: String,
        /// How it is held.
        mode: LockMode,
        /// Give up waiting after this long.
        timeout_ms: Option<u64>,
    },
    /// Release a held lock (or stop waiting for it).
    Unlock(u32),
    /// List the names of the locks held now that start with `prefix` (the others are of no
    /// interest: the adapter need not hand them over); the answer is
    /// [`super::Client::locks_held`].
    QueryLocks {
        /// The query's id, given back with the answer.
        id: u32,
        /// The start of the names asked for.
        prefix: String,
    },
    /// Call [`super::Client::wake`] at this time of the device's clock (ms); `None`: no timer
    /// needed. Replaces the previous one.
    Wake(Option<u64>),
    /// The visible value of this key changed (or may have: subscribers are told).
    Changed(String),
    /// Report this error.
    Error(CacheError),
    /// The sync status changed since it was last announced ([`super::Client::status`]).
    Status,
    /// Run the `getOrFetch` loader of this load.
    RunLoader(u32),
    /// A record for the shim's logger (`logLevel`, `logger`).
    Log(LogRecord),
    /// This load is over: its value is the key's (read it), or it failed.
    Settled {
        /// The load.
        id: u32,
        /// The JSON text to resolve with, or why it failed.
        result: Result<String, CacheError>,
    },
}

/// A structured log record: what a `logger` receives, besides `level` and `message`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogRecord {
    /// `debug`, `info` or `warn`.
    pub level: &'static str,
    /// What happened.
    pub message: String,
    /// The key concerned.
    pub key: String,
    /// The loader's attempt that failed (from 1), for a retry.
    pub attempt: Option<u32>,
    /// The wait before the next attempt, in ms.
    pub delay_ms: Option<u64>,
    /// How long the load took until now, in ms.
    pub duration_ms: Option<u64>,
    /// The loader's error, for people.
    pub error: Option<String>,
}
