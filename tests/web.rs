//! Browser tests of the wasm client's boundary (`CacheCore`) and its adapters in headless
//! Chromium: real `localStorage`, `BroadcastChannel`, `storage` events, timers, Web Locks and
//! fetch, and JS storage objects that fill up, throw or misbehave. Each test drives `CacheCore`
//! the way the shim (`pkg-template/index.js`) does: a write, then `flush()` (the shim flushes
//! once per task), news handed to the page's other instances through `peer()`.
//!
//! The protocol's rules themselves (merge, clock, expiry bookkeeping, retention, quota policy,
//! message decoding) are the core's and are tested natively in `crates/core`; here they matter
//! only as far as the browser carries them out.
//!
//! Every test uses its own key prefix (which also names the channel and the locks) and removes
//! the `localStorage` keys it created, because all tests share one page. Waits for asynchronous
//! delivery are bounded polls on a condition; "nothing arrives" is checked only once a control
//! that must receive the same message (or fire later on the same clock) has received it.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use js_sys::{Array, Function, Object, Promise, Reflect, JSON};
use mfe_shared_cache::{check_key, ttl_seconds, CacheCore};
use mfe_shared_cache_core::{prefix_tag, MAX_SAFE_INTEGER};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

// ---- JS helpers ----------------------------------------------------------------------------------

#[wasm_bindgen(inline_js = r#"
// A Storage-shaped object with a capacity counted like browsers count it (UTF-16 code units of
// keys and values); a write past it throws a DOMException named QuotaExceededError.
export function makeQuotaStorage(capacity) {
  const items = new Map();
  const used = () => { let n = 0; for (const [k, v] of items) n += k.length + v.length; return n; };
  return {
    capacity,
    items,
    used,
    get length() { return items.size; },
    key(i) { const keys = [...items.keys()]; return i < keys.length ? keys[i] : null; },
    getItem(k) { k = String(k); return items.has(k) ? items.get(k) : null; },
    setItem(k, v) {
      k = String(k); v = String(v);
      const old = items.has(k) ? k.length + items.get(k).length : 0;
      if (used() - old + k.length + v.length > this.capacity) {
        throw new DOMException('the quota has been exceeded', 'QuotaExceededError');
      }
      items.set(k, v);
    },
    removeItem(k) { items.delete(String(k)); },
  };
}
export function setCapacity(s, capacity) { s.capacity = capacity; }
export function usedUnits(s) { return s.used(); }
export function rawItem(s, k) { return s.items.get(k); }
export function rawKeys(s) { return [...s.items.keys()].sort(); }

// A storage whose every call (including the length getter) throws `kind` of thing.
export function makeThrowingStorage(kind) {
  const thrown = () => {
    switch (kind) {
      case 'string': return 'plain string thrown';
      case 'null': return null;
      case 'undefined': return undefined;
      case 'security': return new DOMException('access denied', 'SecurityError');
      case 'quota': return new DOMException('full', 'QuotaExceededError');
      default: return new Error('storage is broken');
    }
  };
  const s = { calls: 0 };
  Object.defineProperty(s, 'length', { get() { s.calls++; throw thrown(); } });
  for (const m of ['key', 'getItem', 'setItem', 'removeItem']) s[m] = () => { s.calls++; throw thrown(); };
  return s;
}
export function storageCalls(s) { return s.calls; }

// Storage-shaped objects that are wrong in other ways.
export function makeOddStorage(kind, prefix) {
  switch (kind) {
    case 'nonStringValues': return {
      length: 1, key: () => prefix + 'x', getItem: () => 42, setItem() {}, removeItem() {},
    };
    case 'nanLength': return { length: NaN, key: () => null, getItem: () => null, setItem() {}, removeItem() {} };
    case 'stringLength': return { length: 'many', key: () => null, getItem: () => null, setItem() {}, removeItem() {} };
    case 'hugeLength': {
      // Claims 2^31 items but has none. key() gives up after a million calls, so a reader that
      // trusts `length` fails in milliseconds instead of hanging the page.
      const s = {
        calls: 0,
        get length() { return 2 ** 31; },
        key() { if (++s.calls > 1e6) throw new Error('asked for a millionth key'); return null; },
        getItem: () => null, setItem() {}, removeItem() {},
      };
      return s;
    }
    default: return {};
  }
}

// A Map-backed storage that calls `hook()` at the start of every setItem.
export function makeHookStorage(hook) {
  const items = new Map();
  return {
    get length() { return items.size; },
    key(i) { const keys = [...items.keys()]; return i < keys.length ? keys[i] : null; },
    getItem(k) { return items.has(k) ? items.get(k) : null; },
    setItem(k, v) { hook(); items.set(String(k), String(v)); },
    removeItem(k) { items.delete(k); },
  };
}

let savedBroadcastChannel;
export function hideBroadcastChannel() {
  savedBroadcastChannel = globalThis.BroadcastChannel;
  delete globalThis.BroadcastChannel;
  return typeof globalThis.BroadcastChannel === 'undefined';
}
export function restoreBroadcastChannel() {
  if (savedBroadcastChannel !== undefined) globalThis.BroadcastChannel = savedBroadcastChannel;
  savedBroadcastChannel = undefined;
}

// Records uncaught errors on the page (a throw or a Rust panic inside a channel, timer, lock or
// storage callback never reaches the test itself).
export function trapPageErrors() {
  const trap = { seen: [] };
  trap.onError = (e) => { trap.seen.push(String(e.message || e.error || e)); e.preventDefault(); };
  trap.onRejection = (e) => {
    trap.seen.push('unhandled rejection: ' + String(e.reason?.message ?? e.reason));
    e.preventDefault();
  };
  window.addEventListener('error', trap.onError);
  window.addEventListener('unhandledrejection', trap.onRejection);
  return trap;
}
export function releasePageErrors(trap) {
  window.removeEventListener('error', trap.onError);
  window.removeEventListener('unhandledrejection', trap.onRejection);
  return trap.seen;
}

export function dispatchStorageEvent(key, newValue, area) {
  window.dispatchEvent(new StorageEvent('storage', {
    key, newValue, oldValue: null, storageArea: area, url: location.href,
  }));
}
export function dispatchWindowEvent(name) { window.dispatchEvent(new Event(name)); }

export function hasWebLocks() { return typeof globalThis.navigator?.locks?.request === 'function'; }
export async function pendingLockNames() {
  const snapshot = await navigator.locks.query();
  return (snapshot.pending ?? []).map((l) => l.name);
}

// The backend's `headers` option in each form the shim passes on, counting the calls of a function.
export function makeHeaders(kind) {
  const h = { calls: 0 };
  const headers = { 'x-test': '1' };
  switch (kind) {
    case 'object': h.option = headers; break;
    case 'function': h.option = () => { h.calls++; return headers; }; break;
    case 'async': h.option = async () => { h.calls++; return headers; }; break;
    case 'throwing': h.option = () => { h.calls++; throw new Error('no token yet'); }; break;
    case 'rejecting': h.option = async () => { h.calls++; throw new Error('token refresh failed'); }; break;
    case 'number': h.option = () => { h.calls++; return 42; }; break;
    default: h.option = null;
  }
  return h;
}
export function headersOption(h) { return h.option; }
export function headersCalls(h) { return h.calls; }
"#)]
extern "C" {
    #[wasm_bindgen(js_name = makeQuotaStorage)]
    fn make_quota_storage(capacity: f64) -> JsValue;
    #[wasm_bindgen(js_name = setCapacity)]
    fn set_capacity(storage: &JsValue, capacity: f64);
    #[wasm_bindgen(js_name = usedUnits)]
    fn used_units(storage: &JsValue) -> f64;
    #[wasm_bindgen(js_name = rawItem)]
    fn raw_item(storage: &JsValue, key: &str) -> Option<String>;
    #[wasm_bindgen(js_name = rawKeys)]
    fn raw_keys(storage: &JsValue) -> Array;
    #[wasm_bindgen(js_name = makeThrowingStorage)]
    fn make_throwing_storage(kind: &str) -> JsValue;
    #[wasm_bindgen(js_name = storageCalls)]
    fn storage_calls(storage: &JsValue) -> f64;
    #[wasm_bindgen(js_name = makeOddStorage)]
    fn make_odd_storage(kind: &str, prefix: &str) -> JsValue;
    #[wasm_bindgen(js_name = makeHookStorage)]
    fn make_hook_storage(hook: &Function) -> JsValue;
    #[wasm_bindgen(js_name = hideBroadcastChannel)]
    fn hide_broadcast_channel() -> bool;
    #[wasm_bindgen(js_name = restoreBroadcastChannel)]
    fn restore_broadcast_channel();
    #[wasm_bindgen(js_name = dispatchStorageEvent)]
    fn dispatch_storage_event(key: &str, new_value: Option<String>, area: &JsValue);
    #[wasm_bindgen(js_name = dispatchWindowEvent)]
    fn dispatch_window_event(name: &str);
    #[wasm_bindgen(js_name = trapPageErrors)]
    fn trap_page_errors() -> JsValue;
    #[wasm_bindgen(js_name = releasePageErrors)]
    fn release_page_errors(trap: &JsValue) -> Array;
    #[wasm_bindgen(js_name = hasWebLocks)]
    fn has_web_locks() -> bool;
    #[wasm_bindgen(js_name = pendingLockNames)]
    fn pending_lock_names() -> Promise;
    #[wasm_bindgen(js_name = makeHeaders)]
    fn make_headers(kind: &str) -> JsValue;
    #[wasm_bindgen(js_name = headersOption)]
    fn headers_option(headers: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = headersCalls)]
    fn headers_calls(headers: &JsValue) -> f64;
}

// ---- localStorage ----------------------------------------------------------------------------

fn local() -> web_sys::Storage {
    web_sys::window().unwrap().local_storage().unwrap().unwrap()
}

fn local_js() -> JsValue {
    local().into()
}

/// Every `localStorage` key under `prefix`, sorted.
fn local_keys(prefix: &str) -> Vec<String> {
    let storage = local();
    let mut keys: Vec<String> = (0..storage.length().unwrap())
        .filter_map(|i| storage.key(i).unwrap())
        .filter(|k| k.starts_with(prefix))
        .collect();
    keys.sort();
    keys
}

fn local_get(key: &str) -> Option<String> {
    local().get_item(key).unwrap()
}

fn local_set(key: &str, value: &str) {
    local().set_item(key, value).unwrap();
}

/// Removes every `localStorage` key under `prefix` (run at the start and end of a test).
fn clean(prefix: &str) {
    for key in local_keys(prefix) {
        local().remove_item(&key).unwrap();
    }
}

fn meta_key(prefix: &str) -> String {
    format!("{prefix}\u{0}meta")
}

/// The stored record of `key` under `prefix`, parsed.
fn stored(prefix: &str, key: &str) -> JsValue {
    parse(&local_get(&format!("{prefix}{key}")).unwrap_or_else(|| panic!("no record for {prefix}{key}")))
}

/// The stamp (`t`) of `key`'s stored record.
fn stored_ts(prefix: &str, key: &str) -> f64 {
    get(&stored(prefix, key), "t").as_f64().unwrap()
}

// ---- JS values -------------------------------------------------------------------------------

fn get(obj: &JsValue, name: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(name)).unwrap()
}

fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (name, value) in fields {
        Reflect::set(&o, &JsValue::from_str(name), value).unwrap();
    }
    o.into()
}

fn parse(text: &str) -> JsValue {
    JSON::parse(text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// The JSON text of `value` (canonical, for comparing JSON values).
fn json(value: &JsValue) -> String {
    JSON::stringify(value).unwrap().as_string().unwrap()
}

fn quoted(s: &str) -> String {
    json(&JsValue::from_str(s))
}

fn strings(value: &JsValue) -> Vec<String> {
    if value.is_undefined() || value.is_null() {
        return Vec::new();
    }
    Array::from(value).iter().map(|s| s.as_string().unwrap_or_else(|| panic!("not a string: {s:?}"))).collect()
}

fn array(value: &JsValue) -> Vec<JsValue> {
    Array::from(value).iter().collect()
}

/// A JSON string value.
fn v(s: &str) -> String {
    quoted(s)
}

fn now() -> u64 {
    js_sys::Date::now() as u64
}

// ---- errors ------------------------------------------------------------------------------------

fn err_type(e: &JsValue) -> String {
    get(e, "type").as_string().unwrap_or_else(|| panic!("error without a string type: {e:?}"))
}

fn err_key(e: &JsValue) -> Option<String> {
    get(e, "key").as_string()
}

fn err_retryable(e: &JsValue) -> bool {
    get(e, "retryable").as_bool().unwrap_or_else(|| panic!("error without a boolean retryable: {e:?}"))
}

fn err_message(e: &JsValue) -> String {
    get(e, "message").as_string().unwrap_or_default()
}

fn describe(errors: &[JsValue]) -> Vec<String> {
    errors.iter().map(|e| format!("{}({:?}): {}", err_type(e), err_key(e), err_message(e))).collect()
}

fn types(errors: &[JsValue]) -> Vec<String> {
    errors.iter().map(err_type).collect()
}

/// Asserts that `result` failed with an error of type `kind`.
#[track_caller]
fn assert_fails<T: std::fmt::Debug>(result: Result<T, JsValue>, kind: &str, what: &str) {
    match result {
        Ok(value) => panic!("{what}: expected {kind}, got {value:?}"),
        Err(e) => assert_eq!(err_type(&e), kind, "{what}: {}", err_message(&e)),
    }
}

// ---- records and news, written by hand in the documented formats ----------------------------------

/// A value record (`crates/core/src/record.rs`).
fn value_record(prefix: &str, ts: u64, node: &str, ttl_ms: u64, value_json: &str) -> String {
    let tag = prefix_tag(prefix);
    if ttl_ms == 0 {
        format!(r#"{{"t":{ts},"n":"{node}","p":"{tag}","v":{value_json}}}"#)
    } else {
        format!(r#"{{"t":{ts},"n":"{node}","p":"{tag}","l":{ttl_ms},"v":{value_json}}}"#)
    }
}

/// A tab or page-hub news message, version 2 (`crates/core/src/message/news.rs`).
fn news(page: &str, clear: Option<(u64, &str)>, writes: &[(&str, &str)]) -> String {
    let mut out = format!(r#"{{"v":2,"page":{}"#, quoted(page));
    if let Some((ts, node)) = clear {
        out.push_str(&format!(r#","clear":{{"t":{ts},"n":{}}}"#, quoted(node)));
    }
    if !writes.is_empty() {
        let writes: Vec<String> = writes.iter().map(|(key, record)| format!("{}:{record}", quoted(key))).collect();
        out.push_str(&format!(r#","w":{{{}}}"#, writes.join(",")));
    }
    out.push('}');
    out
}

/// Another tab, as far as a cache can tell: a BroadcastChannel of its own on the prefix.
struct FakeTab(web_sys::BroadcastChannel);

impl FakeTab {
    fn open(prefix: &str) -> Self {
        FakeTab(web_sys::BroadcastChannel::new(prefix).unwrap())
    }

    fn post(&self, message: &JsValue) {
        self.0.post_message(message).unwrap();
    }

    fn say(&self, text: &str) {
        self.post(&JsValue::from_str(text));
    }
}

impl Drop for FakeTab {
    fn drop(&mut self) {
        self.0.close();
    }
}

// ---- waiting -------------------------------------------------------------------------------------

/// Polls `cond` every few ms for at most `max_ms`; returns whether it became true.
async fn wait_until(mut cond: impl FnMut() -> bool, max_ms: f64) -> bool {
    let start = js_sys::Date::now();
    loop {
        if cond() {
            return true;
        }
        if js_sys::Date::now() - start > max_ms {
            return false;
        }
        TimeoutFuture::new(5).await;
    }
}

/// Like [`wait_until`], for a condition that must itself wait (a Web Locks query).
async fn wait_until_async<F: Future<Output = bool>>(mut cond: impl FnMut() -> F, max_ms: f64) -> bool {
    let start = js_sys::Date::now();
    loop {
        if cond().await {
            return true;
        }
        if js_sys::Date::now() - start > max_ms {
            return false;
        }
        TimeoutFuture::new(5).await;
    }
}

/// Collects the page's uncaught errors until [`PageErrors::assert_none`].
struct PageErrors(Option<JsValue>);

impl PageErrors {
    fn trap() -> Self {
        PageErrors(Some(trap_page_errors()))
    }

    fn assert_none(mut self) {
        let trap = self.0.take().unwrap();
        let seen: Vec<String> = release_page_errors(&trap).iter().map(|e| e.as_string().unwrap_or_default()).collect();
        assert!(seen.is_empty(), "uncaught errors on the page (a callback threw or panicked): {seen:?}");
    }
}

impl Drop for PageErrors {
    fn drop(&mut self) {
        if let Some(trap) = self.0.take() {
            release_page_errors(&trap);
        }
    }
}

// ---- what notify delivers ------------------------------------------------------------------------

/// One load that ended (`settled`).
#[derive(Clone, Debug)]
struct Settled {
    id: u32,
    json: Option<String>,
    error: Option<JsValue>,
}

/// One `notify(news)` call, read field by field (`CoreNews`).
#[derive(Clone, Debug)]
struct News {
    changed: Vec<String>,
    errors: Vec<JsValue>,
    status: bool,
    run: Vec<u32>,
    settled: Vec<Settled>,
    logs: Vec<JsValue>,
    at: f64,
}

impl News {
    fn read(news: &JsValue) -> Self {
        let ids = |v: JsValue| -> Vec<u32> {
            if v.is_undefined() {
                return Vec::new();
            }
            array(&v).iter().map(|id| id.as_f64().expect("an id is a number") as u32).collect()
        };
        let list = |v: JsValue| if v.is_undefined() { Vec::new() } else { array(&v) };
        let settled = list(get(news, "settled"))
            .iter()
            .map(|s| Settled {
                id: get(s, "id").as_f64().expect("a settled load has an id") as u32,
                json: get(s, "json").as_string(),
                error: Some(get(s, "error")).filter(|e| !e.is_undefined()),
            })
            .collect();
        News {
            changed: strings(&get(news, "changed")),
            errors: list(get(news, "errors")),
            status: get(news, "status").as_bool().unwrap_or(false),
            run: ids(get(news, "run")),
            settled,
            logs: list(get(news, "logs")),
            at: js_sys::Date::now(),
        }
    }
}

/// A `notify` callback that records every call.
#[derive(Clone)]
struct Recorder {
    calls: Rc<RefCell<Vec<News>>>,
    function: Function,
}

impl Recorder {
    fn new() -> Self {
        Self::with_hook(|_| {})
    }

    /// A recorder that also runs `hook(news)` inside the callback (to call back into a cache).
    fn with_hook(mut hook: impl FnMut(&News) + 'static) -> Self {
        let calls: Rc<RefCell<Vec<News>>> = Rc::default();
        let log = calls.clone();
        let closure = Closure::<dyn FnMut(JsValue)>::new(move |news: JsValue| {
            let news = News::read(&news);
            hook(&news);
            log.borrow_mut().push(news);
        });
        // Leaked on purpose: a cache may call it until the end of the page.
        let function: Function = closure.into_js_value().unchecked_into();
        Recorder { calls, function }
    }

    fn function(&self) -> Function {
        self.function.clone()
    }

    fn calls(&self) -> Vec<News> {
        self.calls.borrow().clone()
    }

    fn len(&self) -> usize {
        self.calls.borrow().len()
    }

    fn since(&self, from: usize) -> Vec<News> {
        self.calls.borrow()[from..].to_vec()
    }

    fn count(&self, key: &str) -> usize {
        self.calls.borrow().iter().map(|c| c.changed.iter().filter(|k| *k == key).count()).sum()
    }

    fn saw(&self, key: &str) -> bool {
        self.count(key) > 0
    }

    fn changed(&self) -> Vec<String> {
        self.calls.borrow().iter().flat_map(|c| c.changed.clone()).collect()
    }

    fn errors(&self) -> Vec<JsValue> {
        self.calls.borrow().iter().flat_map(|c| c.errors.clone()).collect()
    }

    fn run(&self) -> Vec<u32> {
        self.calls.borrow().iter().flat_map(|c| c.run.clone()).collect()
    }

    fn settled(&self, id: u32) -> Option<Settled> {
        self.calls.borrow().iter().flat_map(|c| c.settled.clone()).find(|s| s.id == id)
    }

    fn log_messages(&self) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .flat_map(|c| c.logs.clone())
            .map(|l| get(&l, "message").as_string().unwrap_or_default())
            .collect()
    }

    fn status_calls(&self) -> usize {
        self.calls.borrow().iter().filter(|c| c.status).count()
    }
}

// ---- driving CacheCore as the shim does ------------------------------------------------------------

/// A cache instance shared with a callback (to call back into it from a listener or a storage).
type Slot = Rc<RefCell<Option<Rc<CacheCore>>>>;

/// `CoreOptions` without a backend.
fn options(prefix: &str, page: &str) -> JsValue {
    object(&[("prefix", prefix.into()), ("page", page.into())])
}

/// `CoreOptions` with a backend at `url` that is never polled by itself during a test.
fn backend_options(prefix: &str, page: &str, url: &str) -> JsValue {
    let backend = object(&[
        ("url", url.into()),
        ("syncInterval", 600_000.into()),
        ("retryDelay", 600_000.into()),
        ("maxRetries", 3.into()),
        ("requestTimeout", 10_000.into()),
        ("maxBatchBytes", 65_536.into()),
        ("realtime", false.into()),
    ]);
    object(&[("prefix", prefix.into()), ("page", page.into()), ("backend", backend)])
}

fn open(storage: &JsValue, prefix: &str, page: &str, recorder: &Recorder) -> CacheCore {
    CacheCore::new(options(prefix, page), storage.clone(), JsValue::NULL, recorder.function()).expect("opens")
}

/// Flushes and asserts that nothing failed.
#[track_caller]
fn flush_ok(core: &CacheCore) {
    let errors = array(&core.flush().unwrap());
    assert!(errors.is_empty(), "flush failed: {:?}", describe(&errors));
}

fn flush_errors(core: &CacheCore) -> Vec<JsValue> {
    array(&core.flush().unwrap())
}

/// The JSON text of `key`'s value, if it has one now.
fn read(core: &CacheCore, key: &str) -> Option<String> {
    let found = core.read(key).unwrap();
    (!found.is_undefined()).then(|| Array::from(&found).get(0).as_string().expect("read gives [json, expiresAt]"))
}

/// When `key`'s value expires (0: never), if it has one now.
fn read_expiry(core: &CacheCore, key: &str) -> Option<f64> {
    let found = core.read(key).unwrap();
    (!found.is_undefined()).then(|| Array::from(&found).get(1).as_f64().expect("read gives [json, expiresAt]"))
}

fn inspect(core: &CacheCore, what: &str) -> JsValue {
    core.inspect(what, None).unwrap()
}

fn node_of(core: &CacheCore) -> String {
    inspect(core, "node").as_string().unwrap()
}

fn tab_link(core: &CacheCore) -> String {
    inspect(core, "tabLink").as_string().unwrap()
}

fn startup_errors(core: &CacheCore) -> Vec<JsValue> {
    array(&inspect(core, "startupErrors"))
}

/// `clear()`: the news for the page and the keys that were visible, sorted.
fn clear(core: &CacheCore) -> (String, Vec<String>) {
    let result = core.clear().unwrap();
    let mut keys = strings(&Array::from(&result).get(1));
    keys.sort();
    (Array::from(&result).get(0).as_string().unwrap(), keys)
}

/// `CoreLoadOptions` with no retry.
fn load_options(ttl_secs: f64, grace_ms: f64) -> JsValue {
    let retry = object(&[
        ("maxRetries", 0.into()),
        ("initialDelay", 0.into()),
        ("maxDelay", 0.into()),
        ("backoffFactor", 2.into()),
    ]);
    object(&[("ttl", ttl_secs.into()), ("graceTime", grace_ms.into()), ("refresh", false.into()), ("sync", false.into()), ("retry", retry)])
}

/// The loader's outcome `{ value: json }`.
fn loaded_value(json: &str) -> JsValue {
    object(&[("value", json.into())])
}

// ---- 1. persistence ----------------------------------------------------------------------------

#[wasm_bindgen_test]
fn inspect_names_the_tab_link_and_a_node_id_of_its_own_per_instance() {
    let p = "wt_link_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    let b = open(&local_js(), p, "page-b", &Recorder::new());
    let app = object(&[("prefix", p.into()), ("page", "page-c".into()), ("app", "checkout".into())]);
    let c = CacheCore::new(app, local_js(), JsValue::NULL, Recorder::new().function()).unwrap();
    for core in [&a, &b, &c] {
        assert_eq!(tab_link(core), "broadcast-channel");
        assert!(startup_errors(core).is_empty());
    }
    let (na, nb, nc) = (node_of(&a), node_of(&b), node_of(&c));
    assert!(!na.is_empty());
    assert_ne!(na, nb, "every instance writes under its own node id");
    assert!(nc.starts_with("checkout:"), "the app option names the writer: {nc}");
    for core in [a, b, c] {
        core.dispose();
    }
    clean(p);
}

#[wasm_bindgen_test]
fn a_cache_keys_the_hash_maps_with_a_secret() {
    let p = "wt_seed_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    assert!(mfe_shared_cache_core::hashes_seeded(), "keys chosen elsewhere could be made to collide");
    a.dispose();
    clean(p);
}

#[wasm_bindgen_test]
fn set_and_flush_write_one_record_per_key_that_a_new_instance_hydrates() {
    let p = "wt_persist_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    let node = node_of(&a);

    a.set("user", r#"{"name":"Ada","tags":["x",1,null]}"#.into(), 0.0, true, false).unwrap();
    a.set("count", "1".into(), 0.0, true, false).unwrap();
    a.set("count", "2".into(), 60.0, true, false).unwrap(); // coalesced with the previous write
    a.set("nothing", "null".into(), 0.0, true, false).unwrap();
    assert!(local_keys(p).is_empty(), "nothing is persisted before flush");

    flush_ok(&a);
    let expected_keys: Vec<String> = ["count", "nothing", "user"].iter().map(|k| format!("{p}{k}")).collect();
    assert_eq!(local_keys(p), expected_keys, "one record per key, under prefix + key");

    let user = stored(p, "user");
    assert_eq!(get(&user, "n").as_string(), Some(node.clone()));
    assert_eq!(get(&user, "p").as_string(), Some(prefix_tag(p)));
    assert_eq!(json(&get(&user, "v")), r#"{"name":"Ada","tags":["x",1,null]}"#);
    for absent in ["l", "d", "u", "w"] {
        assert!(get(&user, absent).is_undefined(), "a plain value without TTL or backend has no {absent:?}");
    }
    let count = stored(p, "count");
    assert_eq!(get(&count, "l").as_f64(), Some(60_000.0));
    assert_eq!(json(&get(&count, "v")), "2");
    let (user_ts, count_ts) = (stored_ts(p, "user"), stored_ts(p, "count"));
    assert!(count_ts > user_ts, "stamps of one writer strictly increase");

    // A second flush with nothing new writes nothing and fails nothing.
    let nothing = local_get(&format!("{p}nothing")).unwrap();
    local().remove_item(&format!("{p}nothing")).unwrap();
    flush_ok(&a);
    assert_eq!(local_get(&format!("{p}nothing")), None, "flush only writes what changed");
    local_set(&format!("{p}nothing"), &nothing);

    let b = open(&local_js(), p, "page-b", &Recorder::new());
    assert!(startup_errors(&b).is_empty());
    assert_eq!(read(&b, "user").as_deref(), Some(r#"{"name":"Ada","tags":["x",1,null]}"#));
    assert_eq!(read(&b, "count").as_deref(), Some("2"));
    assert_eq!(read(&b, "nothing").as_deref(), Some("null"), "a stored JSON null is a value");
    assert_eq!(read(&b, "missing"), None);
    assert_eq!(read_expiry(&b, "count"), Some(count_ts + 60_000.0));
    assert_eq!(read_expiry(&b, "user"), Some(0.0), "0: never expires");

    // A write made by the reopened instance orders after everything it loaded.
    b.set("count", "3".into(), 0.0, true, false).unwrap();
    flush_ok(&b);
    assert!(stored_ts(p, "count") > count_ts);
    a.dispose();
    b.dispose();
    clean(p);
}

#[wasm_bindgen_test]
fn remove_leaves_a_tombstone_that_a_later_instance_respects() {
    let p = "wt_tomb_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    a.set("gone", v("bye"), 0.0, true, false).unwrap();
    a.set("stays", v("here"), 0.0, true, false).unwrap();
    flush_ok(&a);
    let set_ts = stored_ts(p, "gone");
    a.remove("gone", true, false).unwrap();
    assert_eq!(read(&a, "gone"), None);
    flush_ok(&a);

    let tomb = stored(p, "gone");
    assert_eq!(get(&tomb, "d").as_f64(), Some(1.0), "a remove keeps a record: the tombstone");
    let rm_ts = get(&tomb, "t").as_f64().unwrap();
    assert!(rm_ts > set_ts);
    assert!(get(&tomb, "v").is_undefined(), "a tombstone carries no value");

    let b = open(&local_js(), p, "page-b", &Recorder::new());
    assert!(startup_errors(&b).is_empty());
    assert_eq!(read(&b, "gone"), None);
    assert_eq!(read(&b, "stays"), Some(v("here")));
    // The tombstone orders writes: the reopened instance's next write is newer than the remove.
    b.set("gone", "1".into(), 0.0, true, false).unwrap();
    flush_ok(&b);
    assert!(stored_ts(p, "gone") > rm_ts);
    a.dispose();
    b.dispose();
    clean(p);
}

#[wasm_bindgen_test]
fn clear_persists_an_epoch_and_removes_older_records_only() {
    let p = "wt_clear_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    a.set("one", "1".into(), 0.0, true, false).unwrap();
    a.set("two", "2".into(), 0.0, true, false).unwrap();
    a.remove("three", true, false).unwrap();
    flush_ok(&a);
    // Another tab (whose clock is ahead) wrote a record after `a` opened: it is newer than the
    // clear below and must survive it.
    let future_ts = now() + 10 * 60 * 1000;
    local_set(&format!("{p}later"), &value_record(p, future_ts, "other-tab", 0, "42"));

    let (news_text, visible) = clear(&a);
    assert_eq!(visible, ["one", "two"], "clear reports the keys that were visible");
    assert_eq!(read(&a, "one"), None);
    flush_ok(&a);

    let meta = parse(&local_get(&meta_key(p)).expect("the epoch is persisted"));
    assert_eq!(get(&meta, "p").as_string(), Some(prefix_tag(p)));
    assert_eq!(get(&meta, "n").as_string(), Some(node_of(&a)));
    let epoch_ts = get(&meta, "t").as_f64().unwrap();
    // The news for the page carries the same epoch.
    let news = parse(&news_text);
    assert_eq!(get(&news, "v").as_f64(), Some(2.0));
    assert_eq!(get(&get(&news, "clear"), "t").as_f64(), Some(epoch_ts));
    assert_eq!(
        local_keys(p),
        vec![meta_key(p), format!("{p}later")], // sorted: U+0000 sorts first
        "records ordered before the epoch are removed, newer ones kept"
    );

    // A record older than the epoch written back by a slow tab stays invisible after reopening.
    local_set(&format!("{p}late"), &value_record(p, epoch_ts as u64 - 1, "slow-tab", 0, "7"));
    let b = open(&local_js(), p, "page-b", &Recorder::new());
    assert!(startup_errors(&b).is_empty());
    assert_eq!(read(&b, "one"), None);
    assert_eq!(read(&b, "two"), None);
    assert_eq!(read(&b, "late"), None, "a write ordered before the epoch is gone for good");
    assert_eq!(read(&b, "later").as_deref(), Some("42"));
    a.dispose();
    b.dispose();
    clean(p);
}

// ---- 2. corrupt and foreign entries -------------------------------------------------------------

#[wasm_bindgen_test]
fn corrupt_and_foreign_entries_are_skipped_reported_and_left_in_place() {
    let p = "wt_corrupt_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    a.set("good", r#"{"ok":true}"#.into(), 0.0, true, false).unwrap();
    flush_ok(&a);
    a.dispose();

    let tag = prefix_tag(p);
    let bad: Vec<(String, String)> = vec![
        (format!("{p}garbage"), "not json at all {".into()),
        (format!("{p}shape"), r#"{"hello":"world"}"#.into()),
        (format!("{p}array"), "[1,2,3]".into()),
        (format!("{p}number"), "42".into()),
        (format!("{p}empty"), String::new()),
        (format!("{p}huge_ts"), format!(r#"{{"t":{},"n":"x","p":"{tag}","v":1}}"#, u64::MAX)),
        (format!("{p}neg_ts"), format!(r#"{{"t":-5,"n":"x","p":"{tag}","v":1}}"#)),
        (format!("{p}bad_value"), format!(r#"{{"t":5,"n":"x","p":"{tag}","v":[1,}}"#)),
        // Storage is read in one joined string with NUL between items: an item holding a NUL
        // itself comes apart from it, and is judged on its own.
        (format!("{p}nul_value"), format!("{{\"t\":5,\"n\":\"x\",\"p\":\"{tag}\",\"v\":\"a\u{0}b\"}}")),
        (meta_key(p), "{broken meta".into()),
    ];
    for (key, text) in &bad {
        local_set(key, text);
    }
    // A well-formed record of another cache (a longer prefix shares these storage keys): not ours,
    // not an error.
    let foreign = format!("{p}x_other");
    let foreign_text = value_record(&format!("{p}x_"), now(), "n", 0, "1");
    local_set(&foreign, &foreign_text);

    let b = open(&local_js(), p, "page-b", &Recorder::new());
    let errors = startup_errors(&b);
    let mut reported: Vec<String> =
        errors.iter().map(|e| err_key(e).expect("a corrupt entry error names its key")).collect();
    reported.sort();
    let mut expected: Vec<String> = bad.iter().map(|(k, _)| k.clone()).collect();
    expected.sort();
    assert_eq!(reported, expected, "errors: {:?}", describe(&errors));
    for e in &errors {
        assert_eq!(err_type(e), "STORAGE_CORRUPT", "{:?}", describe(&errors));
        assert!(!err_retryable(e));
    }
    assert!(startup_errors(&b).is_empty(), "startup errors are handed over once");

    assert_eq!(read(&b, "good").as_deref(), Some(r#"{"ok":true}"#), "valid entries still load");
    for name in ["garbage", "shape", "array", "number", "empty", "huge_ts", "neg_ts", "bad_value", "nul_value", "x_other"] {
        assert_eq!(read(&b, name), None, "{name} must not load");
    }
    for (key, text) in &bad {
        assert_eq!(local_get(key).as_ref(), Some(text), "{key:?} is left in storage as it was");
    }
    assert_eq!(local_get(&foreign), Some(foreign_text));

    // The instance works normally, and flushing does not touch the entries it skipped.
    b.set("fresh", "1".into(), 0.0, true, false).unwrap();
    flush_ok(&b);
    assert_eq!(local_get(&format!("{p}garbage")).as_deref(), Some("not json at all {"));
    b.dispose();
    clean(p);
}

// ---- 3. other tabs over BroadcastChannel -----------------------------------------------------

#[wasm_bindgen_test]
async fn set_remove_and_clear_reach_another_tab_over_broadcast_channel() {
    let page_errors = PageErrors::trap();
    let p = "wt_tabs_";
    clean(p);
    let ra = Recorder::new();
    // B's listener reads straight back from B inside notify (delivery happens outside any borrow).
    let slot: Slot = Rc::default();
    type Reads = Rc<RefCell<Vec<(String, Option<String>)>>>;
    let reads: Reads = Rc::default();
    let rb = {
        let (slot, reads) = (slot.clone(), reads.clone());
        Recorder::with_hook(move |news| {
            if let Some(core) = slot.borrow().as_ref() {
                for k in &news.changed {
                    let found = core.read(k).expect("a listener may call back into the cache");
                    let value = (!found.is_undefined()).then(|| Array::from(&found).get(0).as_string().unwrap());
                    reads.borrow_mut().push((k.clone(), value));
                }
            }
        })
    };
    let a = open(&local_js(), p, "page-a", &ra);
    let b = Rc::new(open(&local_js(), p, "page-b", &rb));
    *slot.borrow_mut() = Some(b.clone());

    a.set("k", v("hello"), 0.0, true, false).unwrap();
    flush_ok(&a);
    let ts = stored_ts(p, "k");
    assert!(wait_until(|| rb.saw("k"), 2000.0).await, "B never heard of A's write");
    assert_eq!(read(&b, "k"), Some(v("hello")));
    assert_eq!(reads.borrow().last().cloned(), Some(("k".to_string(), Some(v("hello")))));
    assert!(rb.errors().is_empty(), "{:?}", describe(&rb.errors()));
    // B applies the write without writing it again: storage still holds A's record.
    assert_eq!(stored_ts(p, "k"), ts);
    assert_eq!(get(&stored(p, "k"), "n").as_string(), Some(node_of(&a)));

    b.remove("k", true, false).unwrap();
    flush_ok(&b);
    assert!(wait_until(|| ra.saw("k"), 2000.0).await, "A never heard of B's remove");
    assert_eq!(read(&a, "k"), None);
    assert_eq!(ra.count("k"), 1);

    a.set("x", "1".into(), 0.0, true, false).unwrap();
    a.set("y", "2".into(), 0.0, true, false).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| rb.saw("x") && rb.saw("y"), 2000.0).await);
    assert_eq!(read(&b, "y").as_deref(), Some("2"));
    let before = ra.len();
    let (_, visible) = clear(&b);
    assert_eq!(visible, ["x", "y"]);
    flush_ok(&b);
    assert!(wait_until(|| ra.saw("x") && ra.saw("y"), 2000.0).await, "A never heard of B's clear");
    let cleared: Vec<String> = ra.since(before).iter().flat_map(|c| c.changed.clone()).collect();
    assert!(!cleared.contains(&"k".to_string()), "a key already gone is not reported by clear: {cleared:?}");
    assert_eq!(read(&a, "x"), None);
    assert_eq!(read(&a, "y"), None);
    assert!(ra.errors().is_empty(), "{:?}", describe(&ra.errors()));
    // Neither instance hears its own writes.
    assert_eq!(ra.count("y"), 1, "A hears of y once: from B's clear, never from its own write");
    assert_eq!(rb.count("k"), 1, "B is not notified of its own remove");

    // A write after the clear still propagates.
    a.set("after", "3".into(), 0.0, true, false).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| rb.saw("after"), 2000.0).await);
    assert_eq!(read(&b, "after").as_deref(), Some("3"));
    slot.borrow_mut().take();
    a.dispose();
    b.dispose();
    clean(p);
    page_errors.assert_none();
}

#[wasm_bindgen_test]
async fn instances_of_one_page_skip_each_others_channel_news_and_meet_through_peer() {
    let p = "wt_samepage_";
    clean(p);
    let (ra, rsame, rother) = (Recorder::new(), Recorder::new(), Recorder::new());
    let a = open(&local_js(), p, "page-1", &ra);
    let same = open(&local_js(), p, "page-1", &rsame);
    let other = open(&local_js(), p, "page-2", &rother);

    // A shim alone on its page asks for no news: the write costs no encoding for nobody.
    assert_eq!(a.set("solo", "1".into(), 0.0, true, false).unwrap(), None);
    assert_eq!(a.remove("solo", true, false).unwrap(), None);
    let set_news = a.set("s", v("mine"), 5.0, true, true).unwrap().expect("news for the page's peers");
    flush_ok(&a);
    // `other` (another page) is the control: once it has the message, `same` has had it too.
    assert!(wait_until(|| rother.saw("s"), 2000.0).await);
    assert!(!rsame.saw("s"), "an instance of the same page skips the channel message");
    assert_eq!(read(&same, "s"), None);

    // On one page, writes travel through the page hub: the news `set` returned, handed to `peer`
    // (delivered synchronously, so what it changed is known when `peer` returns).
    same.peer(&set_news).unwrap();
    assert_eq!(rsame.count("s"), 1);
    assert_eq!(read(&same, "s"), Some(v("mine")));
    assert_eq!(read_expiry(&same, "s"), Some(stored_ts(p, "s") + 5000.0));
    same.peer(&set_news).unwrap();
    assert_eq!(rsame.count("s"), 1, "a duplicate changes nothing");
    let older = value_record(p, stored_ts(p, "s") as u64 - 1, &node_of(&a), 0, &v("older"));
    same.peer(&news("page-1", None, &[("s", &older)])).unwrap();
    assert_eq!(rsame.count("s"), 1, "an older write loses");
    assert_eq!(read(&same, "s"), Some(v("mine")));

    same.peer(&a.remove("s", true, true).unwrap().expect("news")).unwrap();
    assert_eq!(rsame.count("s"), 2);
    assert_eq!(read(&same, "s"), None);

    // A clear made after seeing `same`'s write (the hub delivered it) hides that write there too.
    a.peer(&same.set("z", "1".into(), 0.0, true, true).unwrap().expect("news")).unwrap();
    let (clear_news, visible) = clear(&a);
    assert_eq!(visible, ["z"]);
    same.peer(&clear_news).unwrap();
    assert_eq!(read(&same, "z"), None);
    assert!(rsame.saw("z"));
    assert!(rsame.errors().is_empty() && ra.errors().is_empty());
    for core in [a, same, other] {
        core.dispose();
    }
    clean(p);
}

#[wasm_bindgen_test]
async fn caches_with_different_prefixes_never_see_each_others_keys() {
    let (p, px, q) = ("wt_pre_", "wt_pre_x_", "wt_prq_");
    for prefix in [p, px, q] {
        clean(prefix);
    }
    let (rp, rx, rq) = (Recorder::new(), Recorder::new(), Recorder::new());
    let short = open(&local_js(), p, "page-1", &rp);
    let long = open(&local_js(), px, "page-2", &rx);
    let unrelated = open(&local_js(), q, "page-3", &rq);
    // The control listens on the longer prefix's channel: once it has a message, `short` would too.
    let rcontrol = Recorder::new();
    let control = open(&local_js(), px, "page-5", &rcontrol);

    // `long`'s storage key `wt_pre_x_k` starts with `short`'s prefix.
    long.set("k", v("long"), 0.0, true, false).unwrap();
    flush_ok(&long);
    assert!(wait_until(|| rcontrol.saw("k"), 2000.0).await);
    assert!(rp.changed().is_empty() && rp.errors().is_empty(), "another prefix's channel is not ours");
    assert!(rq.changed().is_empty() && rq.errors().is_empty());
    assert_eq!(read(&short, "x_k"), None);
    assert_eq!(read(&short, "k"), None);

    // Reopening under the shorter prefix does not load (or report) the longer prefix's records.
    let reopened = open(&local_js(), p, "page-6", &Recorder::new());
    assert!(startup_errors(&reopened).is_empty());
    assert_eq!(read(&reopened, "x_k"), None);

    // A clear under the shorter prefix leaves the longer prefix's records (and its epoch) alone.
    clear(&long);
    long.set("k2", "2".into(), 0.0, true, false).unwrap();
    flush_ok(&long);
    let long_keys = local_keys(px);
    short.set("mine", "1".into(), 0.0, true, false).unwrap();
    clear(&short);
    flush_ok(&short);
    assert_eq!(local_keys(px), long_keys, "the shorter prefix's clear removed another cache's records");
    let reopened_long = open(&local_js(), px, "page-7", &Recorder::new());
    assert!(startup_errors(&reopened_long).is_empty());
    assert_eq!(read(&reopened_long, "k2").as_deref(), Some("2"));
    assert_eq!(read(&unrelated, "k"), None);
    for c in [short, long, unrelated, control, reopened, reopened_long] {
        c.dispose();
    }
    for prefix in [p, px, q] {
        clean(prefix);
    }
}

// ---- 4. newer and older writes from other tabs ----------------------------------------------

#[wasm_bindgen_test]
async fn a_newer_write_from_another_tab_wins() {
    let p = "wt_newer_";
    clean(p);
    let (ra, rb) = (Recorder::new(), Recorder::new());
    let a = open(&local_js(), p, "page-a", &ra);
    let b = open(&local_js(), p, "page-b", &rb);
    a.set("k", v("a"), 0.0, true, false).unwrap();
    flush_ok(&a);
    let ts_a = stored_ts(p, "k");
    assert!(wait_until(|| rb.saw("k"), 2000.0).await);
    // B has seen A's write, so its own write is ordered after it, whatever the wall clock says.
    b.set("k", v("b"), 0.0, true, false).unwrap();
    flush_ok(&b);
    assert!(stored_ts(p, "k") > ts_a);
    assert_eq!(get(&stored(p, "k"), "n").as_string(), Some(node_of(&b)));
    assert!(wait_until(|| ra.saw("k"), 2000.0).await);
    assert_eq!(read(&a, "k"), Some(v("b")));
    assert_eq!(read(&b, "k"), Some(v("b")));
    a.dispose();
    b.dispose();
    clean(p);
}

#[wasm_bindgen_test]
async fn an_older_write_from_another_tab_loses_and_the_newer_one_is_persisted_again() {
    let page_errors = PageErrors::trap();
    let p = "wt_older_";
    clean(p);
    let (ra, rb) = (Recorder::new(), Recorder::new());
    let a = open(&local_js(), p, "page-a", &ra);
    let b = open(&local_js(), p, "page-b", &rb);
    // Both write before either hears of the other. B writes first, so A's second write is newer
    // than B's (A's clock: wall time at or after B's, plus one).
    b.set("k", v("old"), 0.0, true, false).unwrap();
    a.set("k", v("x"), 0.0, true, false).unwrap();
    a.set("k", v("new"), 0.0, true, false).unwrap();
    flush_ok(&b);
    let (older, ts_old) = (local_get(&format!("{p}k")).unwrap(), stored_ts(p, "k"));
    flush_ok(&a);
    let ts_new = stored_ts(p, "k");
    assert!(ts_new > ts_old);
    // Two tabs' storage writes cross: B's older record lands over A's newer one. (A flush reads
    // the record first and leaves a newer one alone, so within one page it takes a write from
    // outside, as it does between tabs.)
    local_set(&format!("{p}k"), &older);
    assert_eq!(stored_ts(p, "k"), ts_old);

    // ...until A hears of B's write, finds its own newer, and writes it back.
    assert!(wait_until(|| stored_ts(p, "k") == ts_new, 2000.0).await, "A did not re-persist its newer write");
    assert!(wait_until(|| rb.saw("k"), 2000.0).await);
    assert_eq!(read(&b, "k"), Some(v("new")), "B takes A's newer write");
    assert_eq!(read(&a, "k"), Some(v("new")));
    // A handled B's message before it wrote its repair, so a notification of it would be in.
    assert!(!ra.saw("k"), "A's visible value never changed, so A is not notified");
    assert!(ra.errors().is_empty() && rb.errors().is_empty());
    let record = stored(p, "k");
    assert_eq!(json(&get(&record, "v")), v("new"));
    assert_eq!(get(&record, "n").as_string(), Some(node_of(&a)));
    // A third instance opened now reads the winner.
    let c = open(&local_js(), p, "page-c", &Recorder::new());
    assert_eq!(read(&c, "k"), Some(v("new")));
    for core in [a, b, c] {
        core.dispose();
    }
    clean(p);
    page_errors.assert_none();
}

#[wasm_bindgen_test]
async fn a_stale_tab_message_makes_the_holder_of_the_newer_write_restore_storage() {
    // A tab overwrote storage with an older record and announced it; the receiver holds a newer one.
    let p = "wt_restore_";
    clean(p);
    let ra = Recorder::new();
    let a = open(&local_js(), p, "page-a", &ra);
    a.set("k", v("newer"), 0.0, true, false).unwrap();
    flush_ok(&a);
    let ts = stored_ts(p, "k");
    let older = value_record(p, ts as u64 - 1000, "slow-tab", 0, &v("older"));
    local_set(&format!("{p}k"), &older);
    let tab = FakeTab::open(p);
    tab.say(&news("page-slow", None, &[("k", &older)]));
    assert!(
        wait_until(|| local_get(&format!("{p}k")).as_deref() != Some(older.as_str()), 2000.0).await,
        "storage was never restored"
    );
    let restored = stored(p, "k");
    assert_eq!(get(&restored, "t").as_f64(), Some(ts));
    assert_eq!(json(&get(&restored, "v")), v("newer"));
    assert_eq!(read(&a, "k"), Some(v("newer")));
    // The restore is A's answer to the message, so A has handled it: nothing changed for it.
    assert!(!ra.saw("k"));
    assert!(ra.errors().is_empty(), "{:?}", describe(&ra.errors()));
    a.dispose();
    clean(p);
}

#[wasm_bindgen_test]
async fn one_flush_is_one_message_with_every_changed_key() {
    let p = "wt_batch_";
    clean(p);
    let rb = Recorder::new();
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    let b = open(&local_js(), p, "page-b", &rb);
    let from = rb.len();
    for i in 0..20 {
        a.set(&format!("k{}", i % 5), i.to_string(), 0.0, true, false).unwrap();
    }
    flush_ok(&a);
    // A second flush is the control: messages of one sender arrive in order.
    a.set("sentinel", "1".into(), 0.0, true, false).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| rb.saw("sentinel"), 2000.0).await);
    let calls = rb.since(from);
    assert_eq!(calls.len(), 2, "a burst of writes is one tab message: {calls:?}");
    let mut keys = calls[0].changed.clone();
    keys.sort();
    assert_eq!(keys, ["k0", "k1", "k2", "k3", "k4"]);
    assert_eq!(calls[1].changed, ["sentinel"]);
    assert_eq!(read(&b, "k4").as_deref(), Some("19"), "the last write of each key wins");
    a.dispose();
    b.dispose();
    clean(p);
}

// ---- 5. TTL and the timer -----------------------------------------------------------------------

#[wasm_bindgen_test]
async fn ttl_expires_values_and_the_timer_delivers_the_key() {
    let page_errors = PageErrors::trap();
    let p = "wt_ttl_";
    clean(p);
    let (ra, rb) = (Recorder::new(), Recorder::new());
    let a = open(&local_js(), p, "page-a", &ra);
    let b = open(&local_js(), p, "page-b", &rb);
    a.set("short", v("brief"), 0.12, true, false).unwrap();
    a.set("forever", "1".into(), 0.0, true, false).unwrap();
    assert_eq!(read(&a, "short"), Some(v("brief")));
    assert_eq!(read_expiry(&a, "forever"), Some(0.0), "ttl 0 never expires");
    flush_ok(&a);
    let expiry = stored_ts(p, "short") + 120.0;
    assert_eq!(read_expiry(&a, "short"), Some(expiry), "expiresAt = timestamp + ttl");
    assert_eq!(inspect_expiry(&a, "short"), Some(expiry));
    assert!(wait_until(|| rb.saw("short"), 1000.0).await);
    assert_eq!(read_expiry(&b, "short"), Some(expiry), "expiry is the same in every tab");

    // A's timer reports the key once it expired; B got it once on arrival and once on expiry.
    assert!(wait_until(|| ra.saw("short") && rb.count("short") >= 2, 2000.0).await, "no expiry notification");
    for rec in [&ra, &rb] {
        let call = rec.calls().into_iter().rfind(|c| c.changed.contains(&"short".to_string())).unwrap();
        assert!(call.at >= expiry, "notified at {} before the expiry at {expiry}", call.at);
        assert!(call.errors.is_empty());
    }
    assert_eq!(read(&a, "short"), None);
    assert_eq!(read(&b, "short"), None);
    assert_eq!(inspect_expiry(&a, "short"), None);
    assert_eq!(read(&a, "forever").as_deref(), Some("1"));
    assert!(!ra.saw("forever"));
    assert_eq!(ra.count("short"), 1, "an expiry is reported once");

    // The expired record is not loaded by a later instance either.
    let c = open(&local_js(), p, "page-c", &Recorder::new());
    assert_eq!(read(&c, "short"), None);
    assert_eq!(read(&c, "forever").as_deref(), Some("1"));

    // Successive expiries are delivered by the re-armed timer, with no other call in between.
    a.set("first", "1".into(), 0.04, true, false).unwrap();
    a.set("second", "2".into(), 0.08, true, false).unwrap();
    flush_ok(&a); // as the shim does after every write: the flush arms the timer
    assert!(
        wait_until(|| ra.saw("first") && ra.saw("second"), 1000.0).await,
        "the timer was not re-armed after an expiry: {:?}",
        ra.calls()
    );

    // Overwriting a key without TTL disarms its expiry. `re`, set after it with a longer TTL, is
    // the control: the timer reports deadlines in order, so once `re` is reported, `again`'s old
    // deadline has passed.
    a.set("again", "1".into(), 0.05, true, false).unwrap();
    a.set("again", "2".into(), 0.0, true, false).unwrap();
    a.set("re", "1".into(), 0.06, true, false).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| ra.saw("re"), 1000.0).await);
    assert_eq!(read(&a, "again").as_deref(), Some("2"));
    assert!(!ra.saw("again"), "a key rewritten without TTL must not be reported as expired");
    for core in [a, b, c] {
        core.dispose();
    }
    clean(p);
    page_errors.assert_none();
}

fn inspect_expiry(core: &CacheCore, key: &str) -> Option<f64> {
    core.inspect("expiry", Some(key.into())).unwrap().as_f64()
}

#[wasm_bindgen_test]
async fn opening_over_already_expired_records_notifies_nothing() {
    let p = "wt_stale_expiry_";
    clean(p);
    local_set(&format!("{p}old"), &value_record(p, now() - 60_000, "x", 1000, "1"));
    // The control: a live record that expires soon. The timer reports deadlines in order, so once
    // `soon` is reported, anything due at opening would have been.
    local_set(&format!("{p}soon"), &value_record(p, now(), "x", 300, "2"));
    let rec = Recorder::new();
    let a = open(&local_js(), p, "page-a", &rec);
    assert_eq!(read(&a, "old"), None);
    assert_eq!(read(&a, "soon").as_deref(), Some("2"));
    assert!(wait_until(|| rec.saw("soon"), 2000.0).await);
    assert_eq!(rec.changed(), ["soon"], "notified of a key that was never visible");
    a.dispose();
    clean(p);
}

// ---- 6. quota -------------------------------------------------------------------------------

fn big(n: usize) -> String {
    format!("\"{}\"", "x".repeat(n))
}

#[wasm_bindgen_test]
async fn quota_frees_expired_entries_before_live_ones() {
    let p = "wt_qexp_";
    let storage = make_quota_storage(1e9);
    let a = open(&storage, p, "page-a", &Recorder::new());
    a.set("keep", big(200), 0.0, true, false).unwrap(); // least recently used, but live
    a.set("e1", big(200), 0.05, true, false).unwrap();
    a.set("e2", big(200), 0.05, true, false).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| read(&a, "e1").is_none() && read(&a, "e2").is_none(), 1000.0).await);
    set_capacity(&storage, used_units(&storage) + 100.0); // a new 200-char value needs one record freed

    a.set("new", big(200), 0.0, true, false).unwrap();
    flush_ok(&a);
    assert!(raw_item(&storage, &format!("{p}new")).is_some(), "the new value was persisted");
    assert!(raw_item(&storage, &format!("{p}keep")).is_some(), "a live entry was evicted while expired ones could go");
    assert_eq!(raw_item(&storage, &format!("{p}e1")), None);
    assert_eq!(raw_item(&storage, &format!("{p}e2")), None);
    assert_eq!(read(&a, "keep"), Some(big(200)));
    assert_eq!(read(&a, "new"), Some(big(200)));
    a.dispose();
}

#[wasm_bindgen_test]
fn quota_evicts_the_least_recently_used_entry_and_reports_a_value_that_never_fits() {
    let p = "wt_qlru_";
    let storage = make_quota_storage(1e9);
    let rec = Recorder::new();
    let a = open(&storage, p, "page-a", &rec);
    for k in ["a", "b", "c"] {
        a.set(k, big(200), 0.0, true, false).unwrap();
    }
    flush_ok(&a);
    assert_eq!(read(&a, "a"), Some(big(200))); // `a` is read again: `b` is now the LRU
    set_capacity(&storage, used_units(&storage) + 100.0);

    a.set("d", big(200), 0.0, true, false).unwrap();
    flush_ok(&a);
    let keys = |s: &JsValue| raw_keys(s).iter().map(|k| k.as_string().unwrap()).collect::<Vec<_>>();
    assert_eq!(keys(&storage), [format!("{p}a"), format!("{p}c"), format!("{p}d")], "only the LRU entry is evicted");
    assert_eq!(read(&a, "b"), Some(big(200)), "an evicted entry is still readable in memory");

    // A value larger than the whole quota: reported, kept in memory, and nothing else is lost.
    let snapshot = |s: &JsValue| keys(s).into_iter().map(|k| (k.clone(), raw_item(s, &k))).collect::<Vec<_>>();
    let before = snapshot(&storage);
    let reported = rec.errors().len();
    a.set("huge", big(5000), 0.0, true, false).unwrap();
    let errors = flush_errors(&a);
    assert_eq!(errors.len(), 1, "{:?}", describe(&errors));
    assert_eq!(err_type(&errors[0]), "QUOTA_EXCEEDED");
    assert_eq!(err_key(&errors[0]).as_deref(), Some("huge"));
    assert!(err_retryable(&errors[0]));
    assert_eq!(
        types(&rec.errors()[reported..]),
        ["QUOTA_EXCEEDED"],
        "a flush's failures are reported through notify too"
    );
    assert_eq!(read(&a, "huge"), Some(big(5000)), "the value is kept in memory");
    assert_eq!(snapshot(&storage), before, "entries evicted for a value that still did not fit are put back");

    // Once there is room, a write of the key is persisted again.
    set_capacity(&storage, 1e9);
    a.set("huge", big(5000), 0.0, true, false).unwrap();
    flush_ok(&a);
    assert!(raw_item(&storage, &format!("{p}huge")).is_some());
    a.dispose();
}

/// A flush reads the records of its keys in one call and writes them in another: a stored value
/// holding a NUL (what the calls' separator is) and a write that does not fit in the middle leave
/// every other key's outcome as it would be key by key.
#[wasm_bindgen_test]
fn a_flush_with_an_odd_stored_value_and_a_write_that_does_not_fit_settles_every_other_key() {
    let p = "wt_qbatch_";
    let storage = make_quota_storage(1e9);
    let newer = value_record(p, now() + 60_000, "other-tab", 0, "\"theirs\"");
    let a = open(&storage, p, "page-a", &Recorder::new());
    // Stored after this instance opened: it has not heard of them.
    let raw = storage.unchecked_ref::<web_sys::Storage>();
    raw.set_item(&format!("{p}a_odd"), "x\0y").unwrap();
    raw.set_item(&format!("{p}c_theirs"), &newer).unwrap();
    set_capacity(&storage, used_units(&storage) + 1_000.0);
    for (key, json) in [("a_odd", v("mine")), ("b_huge", big(5000)), ("c_theirs", v("mine")), ("d_after", v("mine"))] {
        a.set(key, json, 0.0, true, false).unwrap();
    }
    let errors = flush_errors(&a);
    assert_eq!(errors.len(), 1, "{:?}", describe(&errors));
    assert_eq!((err_type(&errors[0]), err_key(&errors[0])), ("QUOTA_EXCEEDED".to_owned(), Some("b_huge".to_owned())));
    let value_of = |key: &str| raw_item(&storage, &format!("{p}{key}")).map(|text| json(&get(&parse(&text), "v")));
    assert_eq!(value_of("a_odd"), Some(v("mine")), "the odd value was written over");
    assert_eq!(value_of("b_huge"), None);
    assert_eq!(raw_item(&storage, &format!("{p}c_theirs")), Some(newer), "another tab's newer record stays");
    assert_eq!(value_of("d_after"), Some(v("mine")), "the write after the one that did not fit was stored");
    a.dispose();
}

#[wasm_bindgen_test]
fn real_local_storage_quota_is_reported_as_quota_exceeded() {
    let p = "wt_realquota_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    a.set("small", "1".into(), 0.0, true, false).unwrap();
    flush_ok(&a);
    // Chromium allows about 5 MiB per origin: 6 million characters never fit.
    let huge = big(6_000_000);
    a.set("huge", huge.clone(), 0.0, true, false).unwrap();
    let errors = flush_errors(&a);
    assert_eq!(errors.len(), 1, "{:?}", describe(&errors));
    assert_eq!(err_type(&errors[0]), "QUOTA_EXCEEDED", "{:?}", describe(&errors));
    assert_eq!(err_key(&errors[0]).as_deref(), Some("huge"));
    assert!(err_retryable(&errors[0]));
    assert_eq!(read(&a, "huge").map(|s| s.len()), Some(huge.len()));
    assert_eq!(local_get(&format!("{p}huge")), None);
    assert!(local_get(&format!("{p}small")).is_some(), "an entry evicted for nothing is put back");
    a.dispose();
    clean(p);
}

// ---- 7. broken storage ---------------------------------------------------------------------------

#[wasm_bindgen_test]
fn a_storage_that_throws_on_every_call_gives_typed_errors_and_never_kills_the_instance() {
    for kind in ["error", "string", "null", "undefined", "security", "quota"] {
        let p = format!("wt_throw_{kind}_");
        let storage = make_throwing_storage(kind);
        let a = open(&storage, &p, "page-a", &Recorder::new());
        assert!(storage_calls(&storage) > 0.0, "{kind}: the storage was never asked");
        let startup = startup_errors(&a);
        assert!(!startup.is_empty(), "{kind}: a failing storage must be reported at startup");
        for e in &startup {
            assert_eq!(err_type(e), "STORAGE_FAILED", "{kind}: {:?}", describe(&startup));
            assert!(err_retryable(e));
            assert!(!err_message(e).is_empty());
        }
        assert_eq!(tab_link(&a), "broadcast-channel", "{kind}: the instance is alive after opening");

        // A storage that is always full says so; any other failure is STORAGE_FAILED.
        let write_failure = if kind == "quota" { "QUOTA_EXCEEDED" } else { "STORAGE_FAILED" };
        a.set("k", "1".into(), 0.0, true, false).unwrap();
        assert_eq!(read(&a, "k").as_deref(), Some("1"));
        let errors = flush_errors(&a);
        assert_eq!(types(&errors), [write_failure], "{kind}: {:?}", describe(&errors));
        assert_eq!(err_key(&errors[0]).as_deref(), Some("k"));
        assert!(err_retryable(&errors[0]));
        assert_eq!(read(&a, "k").as_deref(), Some("1"), "{kind}: a value that failed to persist stays readable");

        a.remove("k", true, false).unwrap();
        let errors = flush_errors(&a);
        assert_eq!(types(&errors), [write_failure], "{kind}: {:?}", describe(&errors));
        assert_eq!(read(&a, "k"), None);

        a.set("k2", "2".into(), 0.0, true, false).unwrap();
        clear(&a);
        let errors = flush_errors(&a);
        assert!(!errors.is_empty(), "{kind}: a clear that could not be persisted is reported");
        assert!(errors.iter().all(|e| err_type(e) == "STORAGE_FAILED"), "{kind}: {:?}", describe(&errors));
        assert_eq!(read(&a, "k2"), None);
        a.set("k3", "3".into(), 0.0, true, false).unwrap();
        assert_eq!(read(&a, "k3").as_deref(), Some("3"), "{kind}: the instance is alive at the end");
        a.dispose();
    }
}

#[wasm_bindgen_test]
fn storages_of_the_wrong_shape_never_kill_the_instance() {
    let p = "wt_odd_";
    // (name, storage, whether reading fails, whether writing fails): every call on a non-storage
    // throws a TypeError; a value that is not a string is a failed read.
    let odd: Vec<(&str, JsValue, bool, bool)> = vec![
        ("null", JsValue::NULL, true, true),
        ("undefined", JsValue::UNDEFINED, true, true),
        ("number", JsValue::from_f64(42.0), true, true),
        ("string", JsValue::from_str("localStorage"), true, true),
        ("empty object", Object::new().into(), true, true),
        ("non-string values", make_odd_storage("nonStringValues", p), true, false),
        ("NaN length", make_odd_storage("nanLength", p), false, false),
        ("string length", make_odd_storage("stringLength", p), false, false),
    ];
    for (name, storage, reads_fail, writes_fail) in odd {
        let a = open(&storage, p, "page-a", &Recorder::new());
        let startup = startup_errors(&a);
        for e in &startup {
            assert_eq!(err_type(e), "STORAGE_FAILED", "{name}: {:?}", describe(&startup));
        }
        assert_eq!(!startup.is_empty(), reads_fail, "{name}: {:?}", describe(&startup));
        a.set("k", "1".into(), 0.0, true, false).unwrap();
        let errors = flush_errors(&a);
        let expected: &[&str] = if writes_fail { &["STORAGE_FAILED"] } else { &[] };
        assert_eq!(types(&errors), expected, "{name}: {:?}", describe(&errors));
        assert_eq!(read(&a, "k").as_deref(), Some("1"), "{name}: alive");
        a.dispose();
    }
}

#[wasm_bindgen_test]
fn a_storage_reporting_an_absurd_length_does_not_kill_the_instance() {
    let storage = make_odd_storage("hugeLength", "wt_huge_len_");
    let a = open(&storage, "wt_huge_len_", "page-a", &Recorder::new());
    for e in startup_errors(&a) {
        assert_eq!(err_type(&e), "STORAGE_FAILED");
    }
    a.set("k", "1".into(), 0.0, true, false).unwrap();
    clear(&a); // persisting an epoch scans the storage too
    let _ = flush_errors(&a);
    assert_eq!(read(&a, "k"), None);
    assert!(
        storage_calls(&storage) <= 10.0,
        "key() was called {} times for a storage without items",
        storage_calls(&storage)
    );
    a.dispose();
}

#[wasm_bindgen_test]
fn a_storage_calling_back_into_the_cache_gets_a_typed_error() {
    let slot: Slot = Rc::default();
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let hook = {
        let (slot, seen) = (slot.clone(), seen.clone());
        Closure::<dyn FnMut()>::new(move || {
            if let Some(core) = slot.borrow().as_ref() {
                match core.read("k") {
                    Ok(_) => seen.borrow_mut().push("ok".into()),
                    Err(e) => seen.borrow_mut().push(err_type(&e)),
                }
            }
        })
    };
    let storage = make_hook_storage(hook.as_ref().unchecked_ref());
    let a = Rc::new(open(&storage, "wt_reent_", "page-a", &Recorder::new()));
    *slot.borrow_mut() = Some(a.clone());
    a.set("k", "1".into(), 0.0, true, false).unwrap();
    flush_ok(&a);
    assert_eq!(*seen.borrow(), ["REENTRANT_CALL"]);
    assert_eq!(read(&a, "k").as_deref(), Some("1"));
    slot.borrow_mut().take();
    a.dispose();
    drop(hook);
}

// ---- 8. invalid input ----------------------------------------------------------------------------

#[wasm_bindgen_test]
fn invalid_keys_and_ttls_are_typed_errors_and_store_nothing() {
    let p = "wt_invalid_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    let long_key = "k".repeat(1025);
    for key in ["", "a\u{0}b", long_key.as_str()] {
        let e = a.set(key, "1".into(), 0.0, true, false).unwrap_err();
        assert_eq!(err_type(&e), "INVALID_KEY");
        assert!(!err_retryable(&e));
        assert_fails(a.remove(key, true, false), "INVALID_KEY", "remove");
        assert_fails(a.load(key, load_options(1.0, 0.0)), "INVALID_KEY", "load");
        // The shim checks only a key's type before these: the core refuses the rest.
        assert_fails(a.read(key), "INVALID_KEY", "read");
        assert_fails(a.inspect("expiry", Some(key.into())), "INVALID_KEY", "expiry");
        assert_fails(a.inspect("stale", Some(key.into())), "INVALID_KEY", "stale");
        assert_fails(check_key(&JsValue::from_str(key)), "INVALID_KEY", "checkKey");
    }
    for not_a_string in [JsValue::from_f64(42.0), JsValue::NULL, JsValue::UNDEFINED, Object::new().into()] {
        assert_fails(check_key(&not_a_string), "INVALID_KEY", "checkKey of a non-string");
    }
    assert!(check_key(&JsValue::from_str("user:1")).is_ok());
    for ttl in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
        assert_fails(a.set("k", "1".into(), ttl, true, false), "INVALID_TTL", &format!("set with ttl {ttl}"));
    }
    assert_eq!(read(&a, "k"), None);
    flush_ok(&a);
    assert!(local_keys(p).is_empty());

    // TTLs as the API takes them: seconds or a duration; the error names what was given.
    assert_eq!(ttl_seconds(&JsValue::from_f64(90.0), "ttl").unwrap(), 90.0);
    assert_eq!(ttl_seconds(&JsValue::from_str("5m"), "ttl").unwrap(), 300.0);
    assert_eq!(ttl_seconds(&JsValue::from_str("1h 30m"), "ttl").unwrap(), 5400.0);
    for bad in [JsValue::from_f64(-1.0), JsValue::from_f64(f64::NAN), JsValue::from_str("soon"), JsValue::TRUE] {
        let e = ttl_seconds(&bad, "option defaultTTL").unwrap_err();
        assert_eq!(err_type(&e), "INVALID_TTL", "{bad:?}");
        assert!(err_message(&e).contains("option defaultTTL"), "{}", err_message(&e));
    }
    a.dispose();
    clean(p);
}

#[wasm_bindgen_test]
fn bad_options_are_invalid_option_errors() {
    let p = "wt_options_";
    clean(p);
    let with = |extra: &[(&str, JsValue)]| {
        let o = options(p, "page-a");
        for (name, value) in extra {
            Reflect::set(&o, &JsValue::from_str(name), value).unwrap();
        }
        o
    };
    let backend = |field: &str, value: JsValue| {
        let o = backend_options(p, "page-a", "http://127.0.0.1:9/api");
        Reflect::set(&get(&o, "backend"), &JsValue::from_str(field), &value).unwrap();
        o
    };
    let bad: Vec<(&str, JsValue)> = vec![
        ("null", JsValue::NULL),
        ("a number", JsValue::from_f64(1.0)),
        ("a string", JsValue::from_str(p)),
        ("no prefix", object(&[("page", "page-a".into())])),
        ("a numeric prefix", object(&[("prefix", 5.into()), ("page", "page-a".into())])),
        ("no page", object(&[("prefix", p.into())])),
        ("a numeric app", with(&[("app", 5.into())])),
        ("an app with a space", with(&[("app", "my app".into())])),
        ("an app too long", with(&[("app", "a".repeat(33).into())])),
        ("a numeric backend", with(&[("backend", 5.into())])),
        ("a backend without fields", with(&[("backend", Object::new().into())])),
        ("a backend without url", backend("url", JsValue::UNDEFINED)),
        ("a NaN syncInterval", backend("syncInterval", f64::NAN.into())),
        ("an infinite retryDelay", backend("retryDelay", f64::INFINITY.into())),
        ("a string requestTimeout", backend("requestTimeout", "1000".into())),
        ("a string realtime", backend("realtime", "auto".into())),
    ];
    for (what, options) in bad {
        let result = CacheCore::new(options, local_js(), JsValue::NULL, Recorder::new().function());
        match result {
            Ok(core) => {
                core.dispose();
                panic!("options with {what} were accepted");
            }
            Err(e) => assert_eq!(err_type(&e), "INVALID_OPTION", "{what}: {}", err_message(&e)),
        }
    }

    // getOrFetch's options and a loader's outcome are read the same way.
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    let no_retry = load_options(1.0, 0.0);
    Reflect::delete_property(no_retry.unchecked_ref::<Object>(), &"retry".into()).unwrap();
    let string_ttl = load_options(1.0, 0.0);
    Reflect::set(&string_ttl, &"ttl".into(), &"1".into()).unwrap();
    for (what, load) in
        [("null", JsValue::NULL), ("{}", Object::new().into()), ("no retry", no_retry), ("a string ttl", string_ttl)]
    {
        assert_fails(a.load("k", load), "INVALID_OPTION", &format!("load options {what}"));
    }
    let outcomes = [
        ("null", JsValue::NULL),
        ("{}", Object::new().into()),
        ("a numeric value", object(&[("value", 1.into())])),
        ("the failed shape of old", object(&[("failed", object(&[("retryable", true.into())]))])),
    ];
    for (what, outcome) in outcomes {
        assert_fails(a.loaded(1, outcome), "INVALID_OPTION", &format!("loader outcome {what}"));
    }
    assert_eq!(
        a.loaded(12345, loaded_value("1")).unwrap(),
        None,
        "the outcome of a load that is not running is ignored"
    );
    assert_fails(a.inspect("everything", None), "INVALID_ARGUMENT", "inspect of an unknown kind");
    assert!(local_keys(p).is_empty());
    a.dispose();
    clean(p);
}

// ---- 9. hostile messages ---------------------------------------------------------------------

#[wasm_bindgen_test]
async fn hostile_tab_messages_are_protocol_errors_and_change_nothing() {
    let page_errors = PageErrors::trap();
    let p = "wt_hostile_";
    clean(p);
    let rec = Recorder::new();
    let a = open(&local_js(), p, "page-a", &rec);
    a.set("keep", v("safe"), 0.0, true, false).unwrap();
    flush_ok(&a);
    let stored_before = local_keys(p).into_iter().map(|k| (k.clone(), local_get(&k))).collect::<Vec<_>>();
    let tag = prefix_tag(p);
    // A day ahead: accepted, any of these would win over `keep`, and push the clock a day.
    let newer = now() + 24 * 60 * 60 * 1000;
    let record = |body: &str| format!(r#"{{"t":{newer},"n":"x","p":"{tag}",{body}}}"#);
    let good = value_record(p, newer, "x", 0, "1");
    let one_write = |key: &str, record: &str| news("page-x", None, &[(key, record)]);
    let with_clear = |clear: &str| format!(r#"{{"v":2,"page":"page-x","clear":{clear}}}"#);
    let long_key = "k".repeat(1025);

    // Not text: a sender of another kind (the adapter hands the core what it can read).
    let not_text: Vec<JsValue> = vec![
        42.into(),
        JsValue::NULL,
        JsValue::TRUE,
        Object::new().into(),
        Array::of2(&2.into(), &"page-x".into()).into(),
    ];
    let texts: Vec<String> = vec![
        // not a news object
        "hello".into(),
        String::new(),
        "42".into(),
        "null".into(),
        r#""text""#.into(),
        format!(r#"[1,"page-x",-1,null,"keep",{}]"#, quoted(&good)), // version 1, an array
        format!(r#"{{"v":2,"page":"page-x","w":{{"keep":{good}}}}} and more"#),
        // no version, or another one
        format!(r#"{{"page":"page-x","w":{{"keep":{good}}}}}"#),
        format!(r#"{{"v":1,"page":"page-x","w":{{"keep":{good}}}}}"#),
        format!(r#"{{"v":3,"page":"page-x","w":{{"keep":{good}}}}}"#),
        format!(r#"{{"v":"2","page":"page-x","w":{{"keep":{good}}}}}"#),
        // no page, or not a string
        format!(r#"{{"v":2,"w":{{"keep":{good}}}}}"#),
        format!(r#"{{"v":2,"page":7,"w":{{"keep":{good}}}}}"#),
        // writes that are not an object of records
        format!(r#"{{"v":2,"page":"page-x","w":[{good}]}}"#),
        format!(r#"{{"v":2,"page":"page-x","w":{{"keep":{}}}}}"#, quoted(&good)),
        r#"{"v":2,"page":"page-x","w":{"keep":null}}"#.into(),
        // a malformed clock
        r#"{"v":2,"page":"page-x","clock":"soon"}"#.into(),
        // malformed clears
        with_clear(r#"{"t":1e300,"n":"evil"}"#),
        with_clear(&format!(r#"{{"t":{},"n":"evil"}}"#, MAX_SAFE_INTEGER + 2)),
        with_clear(r#"{"t":"123","n":"evil"}"#),
        with_clear(r#"{"t":123,"n":42}"#),
        with_clear(r#"{"t":-5,"n":"evil"}"#),
        with_clear(r#"{"t":123}"#),
        with_clear(r#"{"t":123,"n":"evil","u":2}"#),
        with_clear(r#"{"t":123,"n":"e vil"}"#),
        with_clear("5"),
        // garbage records
        one_write("keep", r#"{"hello":"world"}"#),
        one_write("keep", "{}"),
        one_write("keep", &format!(r#"{{"t":"soon","n":"x","p":"{tag}","v":1}}"#)),
        one_write("keep", &format!(r#"{{"t":{},"n":"x","p":"{tag}","v":1}}"#, u64::MAX)),
        one_write("keep", &format!(r#"{{"t":{},"n":"x","p":"{tag}","v":1}}"#, MAX_SAFE_INTEGER + 1)),
        one_write("keep", &format!(r#"{{"t":1e300,"n":"x","p":"{tag}","v":1}}"#)),
        one_write("keep", &format!(r#"{{"t":{newer},"n":"e vil","p":"{tag}","v":1}}"#)),
        one_write("keep", &format!(r#"{{"t":{newer},"n":"x","v":1}}"#)),
        one_write("keep", &record(r#""l":1e300,"v":1"#)),
        one_write("keep", &record(r#""v":[1,}"#)),
        one_write("keep", &record(r#""d":2"#)),
        one_write("keep", &record(r#""v":1,"x":2"#)),
        // invalid keys
        one_write("", &good),
        one_write("a\u{0}b", &good),
        one_write(&long_key, &good),
    ];
    let hostile: Vec<JsValue> = not_text.into_iter().chain(texts.iter().map(|t| JsValue::from_str(t))).collect();
    let tab = FakeTab::open(p);
    let from = rec.len();
    for message in &hostile {
        tab.post(message);
    }
    // Skipped without a word: a write of another cache (a longer prefix), and this page's own news.
    tab.say(&one_write("keep", &value_record(&format!("{p}x_"), newer, "x", 0, "1")));
    tab.say(&news("page-a", None, &[("keep", &good)]));
    // Messages from one channel arrive in order: once the sentinel is in, every one before it is.
    tab.say(&one_write("sentinel", &value_record(p, now(), "x", 0, "1")));
    assert!(wait_until(|| rec.saw("sentinel"), 3000.0).await, "the valid message after the hostile ones never arrived");

    let calls = rec.since(from);
    assert_eq!(calls.len(), hostile.len() + 1, "one notify per hostile message, then the sentinel: {calls:?}");
    for (i, (call, message)) in calls.iter().zip(&hostile).enumerate() {
        assert!(call.changed.is_empty(), "message {i} ({message:?}) changed {:?}", call.changed);
        assert_eq!(types(&call.errors), ["PROTOCOL"], "message {i} ({message:?}): {:?}", describe(&call.errors));
        assert!(!err_retryable(&call.errors[0]));
    }
    assert_eq!(calls.last().unwrap().changed, ["sentinel"]);
    assert!(calls.last().unwrap().errors.is_empty());

    assert_eq!(read(&a, "keep"), Some(v("safe")));
    assert_eq!(read(&a, "sentinel").as_deref(), Some("1"));
    let stored_after = local_keys(p)
        .into_iter()
        .filter(|k| !k.ends_with("sentinel"))
        .map(|k| (k.clone(), local_get(&k)))
        .collect::<Vec<_>>();
    assert_eq!(stored_after, stored_before, "hostile messages changed storage");
    // Still works, and its clock was not pushed by anything it refused.
    a.set("keep", v("later"), 0.0, true, false).unwrap();
    flush_ok(&a);
    assert!(stored_ts(p, "keep") < (now() + 60 * 60 * 1000) as f64, "the clock was pushed to {}", stored_ts(p, "keep"));
    a.dispose();
    clean(p);
    page_errors.assert_none();
}

#[wasm_bindgen_test]
async fn a_stamp_where_the_clock_would_stop_is_refused_and_later_writes_keep_their_order() {
    let p = "wt_poison_";
    clean(p);
    let rec = Recorder::new();
    let a = open(&local_js(), p, "page-a", &rec);
    let rec_b = Recorder::new();
    let b = open(&local_js(), p, "page-b", &rec_b);
    let tab = FakeTab::open(p);
    // At 2^53-1 a hybrid clock cannot move on: every later write of an adopter would carry that
    // one stamp, and a second write of a key would be taken for the first. Refused.
    tab.say(&news("page-x", None, &[("evil", &value_record(p, MAX_SAFE_INTEGER, "evil", 0, "1"))]));
    assert!(wait_until(|| types(&rec.errors()).contains(&"PROTOCOL".to_string()), 2000.0).await, "the stamp was taken");
    assert!(!rec.saw("evil"));
    for value in ["1", "2"] {
        a.set("mine", value.into(), 0.0, true, false).unwrap();
        flush_ok(&a);
        assert!(wait_until(|| read(&b, "mine").as_deref() == Some(value), 2000.0).await, "the other tab kept an older write than {value}");
    }
    assert!(stored_ts(p, "mine") < (now() + 60 * 60 * 1000) as f64, "the clock was pushed to {}", stored_ts(p, "mine"));
    a.dispose();
    b.dispose();
    clean(p);
}

#[wasm_bindgen_test]
fn hostile_page_hub_news_is_a_protocol_error_and_changes_nothing() {
    // The page hub's news comes from other copies of the package (maybe other versions).
    let p = "wt_peer_hostile_";
    clean(p);
    let rec = Recorder::new();
    let a = open(&local_js(), p, "page-a", &rec);
    a.set("k", "1".into(), 0.0, true, false).unwrap();
    let tag = prefix_tag(p);
    let newer = now() + 24 * 60 * 60 * 1000;
    let write = |key: &str, record: &str| news("page-a", None, &[(key, record)]);
    let good = value_record(p, newer, "peer", 0, "2");
    let hostile = [
        "garbage".to_string(),
        format!(r#"[1,"page-a",-1,null,"k",{}]"#, quoted(&good)),
        write("k", &value_record(p, MAX_SAFE_INTEGER + 10, "peer", 0, "2")),
        write("k", &format!(r#"{{"t":1e300,"n":"peer","p":"{tag}","v":2}}"#)),
        write("k", &format!(r#"{{"t":{newer},"n":"peer","p":"{tag}","l":-5,"v":2}}"#)),
        write("k", &format!(r#"{{"t":{newer},"n":"peer","p":"{tag}","l":1e300,"v":2}}"#)),
        write("k", &format!(r#"{{"t":{newer},"n":"peer","p":"{tag}","l":"60","v":2}}"#)),
        write("", &good),
        write("a\u{0}meta", &good),
        format!(r#"{{"v":2,"page":"page-a","clear":{{"t":{},"n":"peer"}}}}"#, MAX_SAFE_INTEGER + 10),
    ];
    for text in &hostile {
        let from = rec.len();
        a.peer(text).unwrap();
        // Delivered synchronously: the error is in when `peer` returns.
        let calls = rec.since(from);
        let errors: Vec<JsValue> = calls.iter().flat_map(|c| c.errors.clone()).collect();
        assert_eq!(types(&errors), ["PROTOCOL"], "{text}: {:?}", describe(&errors));
        assert!(calls.iter().all(|c| c.changed.is_empty()), "{text} changed {calls:?}");
    }
    assert_eq!(read(&a, "k").as_deref(), Some("1"));
    // An empty key is refused by `read` itself; the key list shows the hostile one never landed.
    assert_eq!(strings(&inspect(&a, "keys")), ["k"]);
    a.set("k", "3".into(), 0.0, true, false).unwrap();
    flush_ok(&a);
    assert!(stored_ts(p, "k") < (now() + 60 * 60 * 1000) as f64, "the clock was pushed to {}", stored_ts(p, "k"));
    a.dispose();
    clean(p);
}

// ---- 10. dispose and listeners ----------------------------------------------------------------

#[wasm_bindgen_test]
async fn after_dispose_calls_fail_with_disposed_and_nothing_is_delivered() {
    let page_errors = PageErrors::trap();
    let p = "wt_dispose_";
    clean(p);
    let (ra, rb, rc) = (Recorder::new(), Recorder::new(), Recorder::new());
    let a = open(&local_js(), p, "page-a", &ra);
    let b = open(&local_js(), p, "page-b", &rb);
    let control = open(&local_js(), p, "page-c", &rc);
    b.set("unflushed", "1".into(), 0.0, true, false).unwrap();
    b.set("ttl", "1".into(), 0.05, true, false).unwrap(); // B's expiry timer is armed...
                                             // ...and the control's, for a later deadline: once it fires, B's would have.
    control.set("control_ttl", "1".into(), 0.1, true, false).unwrap();
    b.dispose(); // ...and cleared here
    b.dispose(); // idempotent
    assert!(local_get(&format!("{p}unflushed")).is_some(), "dispose persists what was not flushed");
    let delivered = rb.len();

    assert_fails(b.read("ttl"), "DISPOSED", "read");
    assert_fails(b.set("k", "1".into(), 0.0, true, false), "DISPOSED", "set");
    assert_fails(b.remove("k", true, false), "DISPOSED", "remove");
    assert_fails(b.clear(), "DISPOSED", "clear");
    assert_fails(b.invalidate("*", true), "DISPOSED", "invalidate");
    assert_fails(b.flush(), "DISPOSED", "flush");
    assert_fails(b.inspect("node", None), "DISPOSED", "inspect");
    assert_fails(b.peer(&news("page-a", None, &[])), "DISPOSED", "peer");
    assert_fails(b.load("k", load_options(1.0, 0.0)), "DISPOSED", "load");
    assert_fails(b.loaded(1, loaded_value("1")), "DISPOSED", "loaded");
    let e = b.flush().unwrap_err();
    assert!(!err_retryable(&e));

    a.set("k", "1".into(), 0.0, true, false).unwrap();
    flush_ok(&a);
    clear(&a);
    flush_ok(&a);
    let tab = FakeTab::open(p);
    tab.say("hostile");
    assert!(
        wait_until(|| rc.count("k") >= 2 && !rc.errors().is_empty() && rc.saw("control_ttl"), 2000.0).await,
        "the control instance did not hear everything: {:?}",
        rc.calls()
    );
    assert!(rc.saw("unflushed"), "the writes dispose persisted reached the other tabs");
    assert_eq!(rb.len(), delivered, "a disposed instance was notified: {:?}", rb.since(delivered));
    // The others keep working.
    assert_eq!(read(&control, "k"), None);
    a.dispose();
    control.dispose();
    clean(p);
    page_errors.assert_none();
}

#[wasm_bindgen_test]
async fn a_throwing_listener_does_not_break_the_cache() {
    let page_errors = PageErrors::trap();
    let p = "wt_throwlistener_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    let thrower = Function::new_with_args("news", "throw new Error('listener failed')");
    let b = CacheCore::new(options(p, "page-b"), local_js(), JsValue::NULL, thrower).expect("opens");
    let rc = Recorder::new();
    let control = open(&local_js(), p, "page-c", &rc);
    a.set("k", "1".into(), 0.05, true, false).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| rc.count("k") >= 2, 2000.0).await, "control never saw the write and its expiry");
    assert_eq!(read(&b, "k"), None);
    a.set("k", "2".into(), 0.0, true, false).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| read(&b, "k").as_deref() == Some("2"), 2000.0).await);
    for c in [a, b, control] {
        c.dispose();
    }
    clean(p);
    page_errors.assert_none();
}

#[wasm_bindgen_test]
async fn a_listener_may_dispose_the_cache_from_inside_notify() {
    let page_errors = PageErrors::trap();
    let p = "wt_disposelistener_";
    // One instance disposes itself on a tab message, another (under its own prefix, so it hears
    // no tab message) on its expiry timer.
    let p_timer = "wt_disposelistener_timer_";
    clean(p);
    clean(p_timer);
    let outcome: Rc<RefCell<Vec<String>>> = Rc::default();
    let mut cores = Vec::new();
    for (prefix, page) in [(p, "page-msg"), (p_timer, "page-timer")] {
        let slot: Slot = Rc::default();
        let rec = {
            let (slot, outcome) = (slot.clone(), outcome.clone());
            Recorder::with_hook(move |news| {
                if news.changed.is_empty() {
                    return;
                }
                if let Some(core) = slot.borrow_mut().take() {
                    core.dispose();
                    let after = core.read("x").map_err(|e| err_type(&e));
                    outcome.borrow_mut().push(format!("{:?}:{after:?}", news.changed));
                }
            })
        };
        let core = Rc::new(open(&local_js(), prefix, page, &rec));
        *slot.borrow_mut() = Some(core.clone());
        cores.push(core);
    }
    cores[1].set("t", "1".into(), 0.05, true, false).unwrap(); // page-timer's own write, so only its timer fires
    flush_ok(&cores[1]); // as the shim does after every write: the flush arms the expiry timer
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    a.set("m", "1".into(), 0.0, true, false).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| outcome.borrow().len() == 2, 2000.0).await, "{:?}", outcome.borrow());
    let mut got = outcome.borrow().clone();
    got.sort();
    assert_eq!(got, [r#"["m"]:Err("DISPOSED")"#, r#"["t"]:Err("DISPOSED")"#]);
    // The page still works.
    a.set("after", "1".into(), 0.0, true, false).unwrap();
    flush_ok(&a);
    a.dispose();
    clean(p);
    clean(p_timer);
    page_errors.assert_none();
}

// ---- 11. tab link: the storage event ---------------------------------------------------------------

#[wasm_bindgen_test]
fn storage_event_fallback_applies_other_tabs_records_and_clears() {
    let page_errors = PageErrors::trap();
    let p = "wt_sevent_";
    clean(p);
    let rx = Recorder::new();
    assert!(hide_broadcast_channel(), "could not hide BroadcastChannel");
    let x = CacheCore::new(options(p, "page-x"), local_js(), JsValue::NULL, rx.function());
    restore_broadcast_channel();
    let x = x.expect("opens without BroadcastChannel");
    assert_eq!(tab_link(&x), "storage-event");

    let w = open(&local_js(), p, "page-w", &Recorder::new());
    assert_eq!(tab_link(&w), "broadcast-channel");
    w.set("k", v("from w"), 0.0, true, false).unwrap();
    flush_ok(&w);
    let key = format!("{p}k");
    let record = local_get(&key).unwrap();

    // Another tab's write, as the browser reports it: dispatched synchronously.
    dispatch_storage_event(&key, Some(record.clone()), &local_js());
    assert_eq!(read(&x, "k"), Some(v("from w")));
    assert_eq!(rx.count("k"), 1);
    // The same write again changes nothing.
    dispatch_storage_event(&key, Some(record.clone()), &local_js());
    assert_eq!(rx.count("k"), 1);

    // Events of another storage area, of keys outside the prefix, and removals are not writes.
    let from = rx.len();
    let session: JsValue = web_sys::window().unwrap().session_storage().unwrap().unwrap().into();
    let other = value_record(p, now() + 5000, "n", 0, "2");
    dispatch_storage_event(&key, Some(other.clone()), &session);
    dispatch_storage_event("unrelated_k", Some(other), &local_js());
    dispatch_storage_event(&key, None, &local_js());
    assert_eq!(rx.len(), from, "{:?}", rx.since(from));
    assert_eq!(read(&x, "k"), Some(v("from w")));

    // A corrupt record is reported, not applied.
    dispatch_storage_event(&key, Some("garbage".into()), &local_js());
    let errors = rx.errors();
    assert_eq!(types(&errors), ["STORAGE_CORRUPT"], "{:?}", describe(&errors));
    assert_eq!(err_key(&errors[0]), Some(key.clone()));
    assert_eq!(read(&x, "k"), Some(v("from w")));

    // A clear is read from the epoch record.
    clear(&w);
    flush_ok(&w);
    let meta = local_get(&meta_key(p)).unwrap();
    dispatch_storage_event(&meta_key(p), Some(meta), &local_js());
    assert_eq!(read(&x, "k"), None);
    assert_eq!(rx.count("k"), 2);

    // X's own writes still persist (no channel to post on, and no error for it).
    x.set("own", "1".into(), 0.0, true, false).unwrap();
    flush_ok(&x);
    assert!(local_get(&format!("{p}own")).is_some());

    // After dispose the window listener is gone.
    x.dispose();
    let calls = rx.len();
    dispatch_storage_event(&key, Some(value_record(p, now() + 60_000, "n", 0, "3")), &local_js());
    assert_eq!(rx.len(), calls);
    w.dispose();
    clean(p);
    page_errors.assert_none();
}

#[wasm_bindgen_test]
fn with_a_channel_the_storage_event_settles_what_the_channel_cannot() {
    // A tab's storage write and its channel message travel apart: an older record may land in
    // storage after a newer one was applied. The storage event shows it, and the holder of the
    // newer write writes it back.
    let p = "wt_sevent_channel_";
    clean(p);
    let rx = Recorder::new();
    let x = open(&local_js(), p, "page-x", &rx);
    assert_eq!(tab_link(&x), "broadcast-channel");
    x.set("k", v("newer"), 0.0, true, false).unwrap();
    flush_ok(&x);
    let key = format!("{p}k");
    let mine = local_get(&key).unwrap();
    let ts = stored_ts(p, "k");

    // The record it holds: no work.
    dispatch_storage_event(&key, Some(mine.clone()), &local_js());
    assert!(rx.changed().is_empty() && rx.errors().is_empty());

    // An older record over it: written back at once (the event is dispatched synchronously).
    let older = value_record(p, ts as u64 - 1000, "slow-tab", 0, &v("older"));
    local_set(&key, &older);
    dispatch_storage_event(&key, Some(older), &local_js());
    assert_eq!(local_get(&key), Some(mine), "the newer record was not written back");
    assert_eq!(read(&x, "k"), Some(v("newer")));
    assert!(rx.changed().is_empty());

    // A newer record is applied, as from the channel.
    let newest = value_record(p, ts as u64 + 1000, "fast-tab", 0, &v("newest"));
    local_set(&key, &newest);
    dispatch_storage_event(&key, Some(newest.clone()), &local_js());
    assert_eq!(read(&x, "k"), Some(v("newest")));
    assert_eq!(rx.changed(), ["k"]);
    assert_eq!(local_get(&key), Some(newest), "a record that won is not written again");
    x.dispose();
    clean(p);
}

// ---- 12. the boundary's reads ---------------------------------------------------------------

#[wasm_bindgen_test]
async fn inspect_and_invalidate_answer_what_the_shim_reads() {
    let p = "wt_inspect_";
    clean(p);
    let (ra, rb) = (Recorder::new(), Recorder::new());
    let a = open(&local_js(), p, "page-a", &ra);
    let b = open(&local_js(), p, "page-b", &rb);
    let node = node_of(&a);

    let status = inspect(&a, "status");
    assert_eq!(get(&status, "enabled").as_bool(), Some(false), "no backend");
    assert_eq!(get(&status, "pending").as_f64(), Some(0.0));
    assert!(get(&status, "lastError").is_null());
    assert_eq!(get(&status, "realtime").as_string().as_deref(), Some("off"));

    a.set("user:1", r#"{"n":1}"#.into(), 0.0, true, false).unwrap();
    a.set("user:2", "2".into(), 60.0, true, false).unwrap();
    a.set("team:1", "3".into(), 0.05, true, false).unwrap();
    flush_ok(&a);
    assert_eq!(strings(&inspect(&a, "keys")), ["team:1", "user:1", "user:2"]);
    assert_eq!(strings(&a.inspect("keys", Some("user:*".into())).unwrap()), ["user:1", "user:2"]);
    assert_fails(a.inspect("keys", Some(String::new())), "INVALID_KEY", "an empty pattern");
    assert_eq!(json(&inspect(&a, "stats")), "[3,0,0]", "[active, expired, pending]");

    let entries = array(&inspect(&a, "entries"));
    assert_eq!(entries.len(), 3);
    let user = &entries[1];
    assert_eq!(get(user, "key").as_string().as_deref(), Some("user:1"));
    assert_eq!(get(user, "json").as_string().as_deref(), Some(r#"{"n":1}"#));
    assert!(get(user, "expiresAt").is_null(), "never expires: null");
    assert_eq!(get(user, "writtenAt").as_f64(), Some(stored_ts(p, "user:1")));
    assert_eq!(get(user, "writer").as_string(), Some(node.clone()));
    assert_eq!(get(user, "pending").as_bool(), Some(false));
    assert_eq!(get(&entries[2], "expiresAt").as_f64(), Some(stored_ts(p, "user:2") + 60_000.0));

    // An expired value is held for stale-while-revalidate until collected.
    assert!(wait_until(|| read(&a, "team:1").is_none(), 1000.0).await);
    assert_eq!(a.inspect("stale", Some("team:1".into())).unwrap().as_string().as_deref(), Some("3"));
    assert!(a.inspect("stale", Some("user:1".into())).unwrap().is_null(), "a live value is not stale");
    assert_eq!(json(&inspect(&a, "stats")), "[2,1,0]");

    // invalidate removes what matches, here and in other tabs; nothing matching: no news.
    assert!(wait_until(|| rb.saw("user:2"), 2000.0).await);
    let result = a.invalidate("user:*", true).unwrap();
    let (news_text, keys) = (Array::from(&result).get(0), strings(&Array::from(&result).get(1)));
    assert_eq!(keys, ["user:1", "user:2"]);
    let writes = get(&parse(&news_text.as_string().expect("news for the page")), "w");
    let mut written = strings(&Object::keys(writes.unchecked_ref::<Object>()).into());
    written.sort();
    assert_eq!(written, ["user:1", "user:2"], "the page's other instances hear of both removes");
    assert_eq!(get(&get(&writes, "user:1"), "d").as_f64(), Some(1.0));
    flush_ok(&a);
    assert_eq!(get(&stored(p, "user:1"), "d").as_f64(), Some(1.0), "invalidated keys are tombstones");
    assert!(wait_until(|| rb.count("user:1") >= 2, 2000.0).await);
    assert_eq!(read(&b, "user:2"), None);
    let none = a.invalidate("nobody:*", true).unwrap();
    assert!(Array::from(&none).get(0).is_undefined());
    assert!(strings(&Array::from(&none).get(1)).is_empty());
    assert_fails(a.invalidate("", true), "INVALID_KEY", "an empty pattern");
    a.dispose();
    b.dispose();
    clean(p);
}

// ---- 13. Web Locks: one load per key across instances ------------------------------------------------

/// Whether a Web Lock request for `key` of the cache with `prefix` is waiting.
async fn load_lock_waiting(prefix: &str, key: &str) -> bool {
    let names = JsFuture::from(pending_lock_names()).await.unwrap();
    strings(&names).iter().any(|name| name.contains(prefix) && name.ends_with(&format!(":{key}")))
}

#[wasm_bindgen_test]
async fn a_second_load_waits_for_the_first_instances_lock_and_takes_its_value() {
    let page_errors = PageErrors::trap();
    assert!(has_web_locks(), "the test page has no Web Locks: the lock adapter goes untested");
    let p = "wt_lock_wait_";
    clean(p);
    let (ra, rb) = (Recorder::new(), Recorder::new());
    let a = open(&local_js(), p, "tab-a", &ra);
    let b = open(&local_js(), p, "tab-b", &rb);

    let id_a = a.load("k", load_options(60.0, 10_000.0)).unwrap();
    assert!(
        wait_until(|| ra.run().contains(&id_a), 3000.0).await,
        "A got the lock but was never told to run its loader"
    );
    let id_b = b.load("k", load_options(60.0, 10_000.0)).unwrap();
    assert!(wait_until_async(|| load_lock_waiting(p, "k"), 3000.0).await, "B's load is not waiting for A's lock");

    let news_a = a.loaded(id_a, loaded_value(&v("loaded"))).unwrap();
    assert!(news_a.is_some(), "a stored value is news for the page");
    let settled_a = ra.settled(id_a).expect("A's load settles when its value is stored");
    assert_eq!(settled_a.json, Some(v("loaded")));
    assert!(settled_a.error.is_none());

    // A's lock goes once its value is stored: B gets it, finds the value and takes it.
    assert!(wait_until(|| rb.settled(id_b).is_some(), 5000.0).await, "B's load never settled; B ran {:?}", rb.run());
    let settled_b = rb.settled(id_b).unwrap();
    assert_eq!(settled_b.json, Some(v("loaded")));
    assert!(settled_b.error.is_none());
    assert!(rb.run().is_empty(), "B ran its loader although A's value was there");
    assert!(rb.log_messages().iter().any(|m| m.contains("another instance or tab")), "{:?}", rb.log_messages());
    assert_eq!(read(&a, "k"), Some(v("loaded")));
    assert_eq!(read(&b, "k"), Some(v("loaded")));
    assert_eq!(read_expiry(&b, "k"), Some(stored_ts(p, "k") + 60_000.0));
    a.dispose();
    b.dispose();
    clean(p);
    page_errors.assert_none();
}

#[wasm_bindgen_test]
async fn with_no_grace_time_a_second_load_runs_its_own_loader_at_once() {
    let page_errors = PageErrors::trap();
    assert!(has_web_locks(), "the test page has no Web Locks: the lock adapter goes untested");
    let p = "wt_lock_grace_";
    clean(p);
    let (ra, rb) = (Recorder::new(), Recorder::new());
    let a = open(&local_js(), p, "tab-a", &ra);
    let b = open(&local_js(), p, "tab-b", &rb);

    let id_a = a.load("k", load_options(0.0, 10_000.0)).unwrap();
    assert!(wait_until(|| ra.run().contains(&id_a), 3000.0).await);
    // A holds the key's lock until its loader is done; B gives up waiting for it at once.
    let id_b = b.load("k", load_options(0.0, 0.0)).unwrap();
    assert!(wait_until(|| rb.run().contains(&id_b), 3000.0).await, "B never ran its loader");
    assert!(rb.log_messages().iter().any(|m| m.contains("loading here")), "{:?}", rb.log_messages());

    b.loaded(id_b, loaded_value(&v("from b"))).unwrap();
    assert_eq!(rb.settled(id_b).and_then(|s| s.json), Some(v("from b")));
    a.loaded(id_a, loaded_value(&v("from a"))).unwrap();
    assert_eq!(ra.settled(id_a).and_then(|s| s.json), Some(v("from a")));
    // A stored last: its value wins in both.
    assert!(wait_until(|| read(&b, "k") == Some(v("from a")), 2000.0).await);
    assert_eq!(read(&a, "k"), Some(v("from a")));
    a.dispose();
    b.dispose();
    clean(p);
    page_errors.assert_none();
}

// ---- 14. a backend that cannot be reached, and the headers option ------------------------------------

/// A loopback port nothing listens on (and Chromium refuses outright: it is on its unsafe list).
const CLOSED_PORT_URL: &str = "http://127.0.0.1:9/api";

fn network_errors(rec: &Recorder) -> Vec<JsValue> {
    rec.errors().into_iter().filter(|e| err_type(e) == "NETWORK").collect()
}

#[wasm_bindgen_test]
async fn an_unreachable_backend_is_a_network_error_and_the_instance_keeps_working() {
    let page_errors = PageErrors::trap();
    let p = "wt_unreachable_";
    clean(p);
    let rec = Recorder::new();
    let a = CacheCore::new(backend_options(p, "page-a", CLOSED_PORT_URL), local_js(), JsValue::NULL, rec.function())
        .unwrap();
    assert!(get(&inspect(&a, "status"), "enabled").as_bool().unwrap());
    a.set("k", "1".into(), 0.0, true, false).unwrap();
    flush_ok(&a);
    assert!(
        wait_until(|| !network_errors(&rec).is_empty(), 5000.0).await,
        "no NETWORK error: {:?}",
        describe(&rec.errors())
    );
    let error = &network_errors(&rec)[0];
    assert!(err_retryable(error));
    let status = inspect(&a, "status");
    let last_error = get(&status, "lastError").as_string().unwrap_or_default();
    assert!(last_error.starts_with("NETWORK: "), "syncStatus.lastError: {last_error:?}");
    assert_eq!(get(&status, "pending").as_f64(), Some(1.0), "the write waits in the outbox");
    assert!(get(&status, "failures").as_f64().unwrap() >= 1.0);
    assert!(rec.status_calls() >= 1, "the status change was announced");
    assert_eq!(get(&stored(p, "k"), "u").as_f64(), Some(1.0), "the record says it is not acknowledged");

    // Alive: reads, writes and persistence go on.
    assert_eq!(read(&a, "k").as_deref(), Some("1"));
    a.set("k2", "2".into(), 0.0, true, false).unwrap();
    flush_ok(&a);
    assert_eq!(read(&a, "k2").as_deref(), Some("2"));

    // The page's online and offline events reach the sync. `online` in the status is "the browser
    // says so and the backend answered": coming online counts the backend as reachable again until
    // the retry it starts at once fails, which cannot happen before this task ends, so within it
    // each event shows.
    let online = |core: &CacheCore| get(&inspect(core, "status"), "online").as_bool();
    assert_eq!(online(&a), Some(false), "the backend did not answer");
    let failed = network_errors(&rec).len();
    dispatch_window_event("online");
    assert_eq!(online(&a), Some(true));
    dispatch_window_event("offline");
    assert_eq!(online(&a), Some(false));
    assert!(wait_until(|| network_errors(&rec).len() > failed, 5000.0).await, "coming online did not retry");
    let failed = network_errors(&rec).len();
    dispatch_window_event("online");
    assert!(wait_until(|| network_errors(&rec).len() > failed, 5000.0).await, "coming online again did not retry");
    a.dispose();
    clean(p);
    page_errors.assert_none();
}

#[wasm_bindgen_test]
fn a_removal_for_this_browser_only_keeps_the_key_s_pending_write_in_its_record_and_the_outbox() {
    let p = "wt_pending_";
    clean(p);
    let rec = Recorder::new();
    let a = CacheCore::new(backend_options(p, "page-a", CLOSED_PORT_URL), local_js(), JsValue::NULL, rec.function())
        .unwrap();
    let waiting = |a: &CacheCore| get(&inspect(a, "status"), "pending").as_f64();
    a.set("k", "1".into(), 0.0, true, false).unwrap();
    a.set("local", "1".into(), 0.0, false, false).unwrap();
    flush_ok(&a);
    assert_eq!(waiting(&a), Some(1.0), "the write for everyone waits, the other never will");
    a.remove("k", false, false).unwrap();
    flush_ok(&a);
    assert!(read(&a, "k").is_none(), "removed here");
    let record = stored(p, "k");
    assert!(get(&record, "u").is_undefined(), "the tombstone's record is not marked for the backend");
    assert_eq!(get(&get(&record, "s"), "v").as_f64(), Some(1.0), "it keeps the write it covers: {record:?}");
    assert_eq!(waiting(&a), Some(1.0), "which still waits");
    let entries = inspect(&a, "entries");
    assert_eq!(Array::from(&entries).length(), 1, "only `local` has a value");
    a.dispose();
    let b = CacheCore::new(backend_options(p, "page-b", CLOSED_PORT_URL), local_js(), JsValue::NULL, rec.function())
        .unwrap();
    assert_eq!(waiting(&b), Some(1.0), "and after a reload");
    assert!(read(&b, "k").is_none());
    b.remove("local", true, false).unwrap();
    flush_ok(&b);
    assert_eq!(waiting(&b), Some(2.0), "removed for everyone, it goes");
    b.dispose();
    clean(p);
}

#[wasm_bindgen_test]
async fn the_headers_option_is_an_object_or_a_function_asked_for_each_request() {
    let page_errors = PageErrors::trap();
    // (form, whether it is a function, what the failure says about the headers)
    let forms = [
        ("object", false, None),
        ("null", false, None),
        ("function", true, None),
        ("async", true, None),
        ("throwing", true, Some("the headers option failed: no token yet")),
        // Only a promise that is awaited can fail the request.
        ("rejecting", true, Some("the headers option failed: token refresh failed")),
        ("number", true, Some("did not give an object")),
    ];
    for (form, is_function, failure) in forms {
        let p = format!("wt_headers_{form}_");
        clean(&p);
        let headers = make_headers(form);
        let rec = Recorder::new();
        let a = CacheCore::new(
            backend_options(&p, "page-a", CLOSED_PORT_URL),
            local_js(),
            headers_option(&headers),
            rec.function(),
        )
        .unwrap_or_else(|e| panic!("{form}: {}", err_message(&e)));
        a.set("k", "1".into(), 0.0, true, false).unwrap();
        flush_ok(&a);
        assert!(wait_until(|| !network_errors(&rec).is_empty(), 5000.0).await, "{form}: no request failed");
        let message = err_message(&network_errors(&rec)[0]);
        match failure {
            Some(why) => assert!(message.contains(why), "{form}: {message}"),
            None => assert!(!message.contains("headers option"), "{form}: the headers were refused: {message}"),
        }
        if is_function {
            assert!(headers_calls(&headers) >= 1.0, "{form}: the function was never asked");
        }
        assert_eq!(read(&a, "k").as_deref(), Some("1"), "{form}: alive");
        a.dispose();
        clean(&p);
    }
    page_errors.assert_none();
}
