//! Runs one core [`Client`]: every input gets the device's clock read once, the core's effects go
//! to the adapters (tabs, fetch, locks, the timer), and what the shim must hear — changed keys,
//! errors, status, news for the page's other instances, loader work — reaches it in one call
//! after the core's state is released, so a listener may call straight back into the cache.
use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::Function;
use mfe_shared_cache_core::client::{Client, Effect};
use mfe_shared_cache_core::CacheError;
use serde::Serialize;
use wasm_bindgen::JsValue;

use crate::errors::{to_js, JsError};
use crate::fetch::Http;
use crate::locks::Locks;
use crate::page::PageEvents;
use crate::storage::WebStorage;
use crate::tabs::TabLink;
use crate::timer::Timer;

/// The device's clock, read once per input.
pub(crate) fn now_ms() -> u64 {
    js_sys::Date::now().max(0.0) as u64
}

/// A client and the adapters that carry out its effects.
pub(crate) struct Inner {
    pub(crate) client: Client<WebStorage>,
    pub(crate) tabs: Option<TabLink>,
    pub(crate) http: Http,
    pub(crate) locks: Locks,
    pub(crate) timer: Timer,
    pub(crate) page: Option<PageEvents>,
    notify: Function,
}

/// What the shim hears after one input.
#[derive(Default, Serialize)]
struct ForShim {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    changed: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<JsError>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    status: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    peers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    run: Vec<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    settled: Vec<Settled>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logs: Vec<Log>,
}

/// A log record: `{ level, message, key, attempt?, delay?, duration?, error? }`.
#[derive(Serialize)]
struct Log {
    level: &'static str,
    message: String,
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct Settled {
    id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    json: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<JsError>,
}

impl ForShim {
    fn is_empty(&self) -> bool {
        self.changed.is_empty()
            && self.errors.is_empty()
            && !self.status
            && self.peers.is_empty()
            && self.run.is_empty()
            && self.settled.is_empty()
            && self.logs.is_empty()
    }
}

/// One cache instance's driver, shared by the exported object and the adapters' callbacks
/// (which hold it weakly: a disposed cache receives nothing).
pub(crate) struct Driver {
    inner: RefCell<Option<Inner>>,
}

impl Driver {
    pub(crate) fn new(inner: Inner) -> Rc<Self> {
        Rc::new(Driver { inner: RefCell::new(Some(inner)) })
    }

    /// Runs an API call: `f` gets the state and the time; the effects run; the shim hears the
    /// rest. A call made from inside a storage call is `REENTRANT_CALL`, after dispose `DISPOSED`.
    pub(crate) fn call<T>(self: &Rc<Self>, f: impl FnOnce(&mut Inner, u64) -> Result<T, CacheError>) -> Result<T, JsValue> {
        let mut f = Some(f);
        let mut result = None;
        self.enter(&mut |inner, now| result = f.take().map(|f| f(inner, now)))?;
        result.unwrap_or(Err(CacheError::Internal { message: "an input was not run".into() })).map_err(|e| to_js(&e))
    }

    /// The one body behind every call and input: generic code stays at the call sites' closures,
    /// which keeps the wasm small.
    fn enter(self: &Rc<Self>, f: &mut dyn FnMut(&mut Inner, u64)) -> Result<(), JsValue> {
        let (shim, notify) = {
            let mut guard = self.inner.try_borrow_mut().map_err(|_| to_js(&CacheError::Reentrant))?;
            let inner = guard.as_mut().ok_or_else(|| to_js(&CacheError::Disposed))?;
            let now = now_ms();
            f(inner, now);
            let shim = self.run(inner, now);
            // Most calls have nothing for the shim: no handle is cloned for them (each clone and
            // drop of a JS value is a call out of the wasm).
            let notify = (!shim.is_empty()).then(|| inner.notify.clone());
            (shim, notify)
        };
        if let Some(notify) = notify {
            deliver(&notify, shim);
        }
        Ok(())
    }

    /// Runs an input that arrived on its own (a message, an answer, the timer): like
    /// [`Driver::call`], and ignored when the cache is busy or gone.
    pub(crate) fn input(weak: &Weak<Self>, f: impl FnOnce(&mut Inner, u64)) {
        let Some(driver) = weak.upgrade() else { return };
        let mut f = Some(f);
        let _ = driver.enter(&mut |inner, now| {
            if let Some(f) = f.take() {
                f(inner, now);
            }
        });
    }

    /// Disposes: the client lets go of everything, then the adapters are dropped (closing the
    /// channel, the listeners and the timer).
    pub(crate) fn dispose(self: &Rc<Self>) {
        let _ = self.call(|inner, now| {
            inner.client.dispose(now);
            Ok(())
        });
        if let Ok(mut guard) = self.inner.try_borrow_mut() {
            guard.take();
        }
    }

    /// Carries out the client's effects; returns what the shim must hear.
    fn run(self: &Rc<Self>, inner: &mut Inner, now: u64) -> ForShim {
        let mut shim = ForShim::default();
        let weak = Rc::downgrade(self);
        for effect in inner.client.take_effects() {
            match effect {
                Effect::Tab(text) => {
                    if let Some(Err(e)) = inner.tabs.as_ref().map(|t| t.post(&text)) {
                        let message = format!("could not tell other tabs: {}", crate::errors::js_error_message(&e));
                        shim.errors.push(JsError::from(&CacheError::protocol(message)));
                    }
                }
                Effect::Peers(text) => shim.peers.push(text),
                Effect::Fetch(fetch) => inner.http.start(fetch, &weak),
                Effect::Abort(id) => inner.http.abort(id),
                Effect::Lock { id, name, mode, timeout_ms } => inner.locks.request(id, &name, mode, timeout_ms, &weak),
                Effect::Unlock(id) => inner.locks.release(id),
                Effect::QueryLocks { id, prefix } => inner.locks.query(id, prefix, &weak),
                Effect::Wake(at) => inner.timer.want(at),
                Effect::Changed(key) => shim.changed.push(key),
                Effect::Error(e) => shim.errors.push(JsError::from(&e)),
                Effect::Status => shim.status = true,
                Effect::RunLoader(id) => shim.run.push(id),
                Effect::Settled { id, result } => shim.settled.push(match result {
                    Ok(json) => Settled { id, json: Some(json), error: None },
                    Err(e) => Settled { id, json: None, error: Some(JsError::from(&e)) },
                }),
                Effect::Log(r) => shim.logs.push(Log {
                    level: r.level,
                    message: r.message,
                    key: r.key,
                    attempt: r.attempt,
                    delay: r.delay_ms,
                    duration: r.duration_ms,
                    error: r.error,
                }),
            }
        }
        inner.timer.arm(now, &weak);
        shim
    }
}

fn deliver(notify: &Function, shim: ForShim) {
    if let Ok(value) = serde_wasm_bindgen::to_value(&shim) {
        // A throwing listener must not break delivery to the cache; the shim reports its errors.
        let _ = notify.call1(&JsValue::NULL, &value);
    }
}

impl Inner {
    pub(crate) fn new(client: Client<WebStorage>, http: Http, notify: Function) -> Self {
        Inner { client, tabs: None, http, locks: Locks::default(), timer: Timer::default(), page: None, notify }
    }
}
