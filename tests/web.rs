//! Browser tests of the wasm client (`CacheCore`) in headless Chromium: real `localStorage`, real
//! `BroadcastChannel`, real timers, and JS storage objects that fill up or throw.
//!
//! Every test uses its own key prefix (which also names the channel) and removes the
//! `localStorage` keys it created, because all tests share one page. Waits for asynchronous
//! delivery are bounded polls; "nothing arrives" is checked after a control instance that must
//! receive the same message has received it.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use js_sys::{Array, Function, Object, Reflect, JSON};
use mfe_shared_cache::CacheCore;
use mfe_shared_cache_core::{prefix_tag, MAX_SAFE_INTEGER};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
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
export function makeOddStorage(kind) {
  switch (kind) {
    case 'nonStringValues': return {
      length: 1, key: () => 'odd_x', getItem: () => 42, setItem() {}, removeItem() {},
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

// Records uncaught errors on the page (a throw or a Rust panic inside a channel, timer or storage
// callback never reaches the test itself).
export function trapPageErrors() {
  const trap = { seen: [] };
  trap.onError = (e) => { trap.seen.push(String(e.message || e.error || e)); e.preventDefault(); };
  window.addEventListener('error', trap.onError);
  return trap;
}
export function releasePageErrors(trap) {
  window.removeEventListener('error', trap.onError);
  return trap.seen;
}

export function dispatchStorageEvent(key, newValue, area) {
  window.dispatchEvent(new StorageEvent('storage', {
    key, newValue, oldValue: null, storageArea: area, url: location.href,
  }));
}
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
    fn make_odd_storage(kind: &str) -> JsValue;
    #[wasm_bindgen(js_name = makeHookStorage)]
    fn make_hook_storage(hook: &Function) -> JsValue;
    #[wasm_bindgen(js_name = hideBroadcastChannel)]
    fn hide_broadcast_channel() -> bool;
    #[wasm_bindgen(js_name = restoreBroadcastChannel)]
    fn restore_broadcast_channel();
    #[wasm_bindgen(js_name = dispatchStorageEvent)]
    fn dispatch_storage_event(key: &str, new_value: Option<String>, area: &JsValue);
    #[wasm_bindgen(js_name = trapPageErrors)]
    fn trap_page_errors() -> JsValue;
    #[wasm_bindgen(js_name = releasePageErrors)]
    fn release_page_errors(trap: &JsValue) -> Array;
}

// ---- Rust helpers --------------------------------------------------------------------------------

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

fn get(obj: &JsValue, name: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(name)).unwrap()
}

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

fn array(a: &Array) -> Vec<JsValue> {
    a.iter().collect()
}

fn parse(text: &str) -> JsValue {
    JSON::parse(text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// The JSON text of `value` (canonical, for comparing JSON values).
fn json(value: &JsValue) -> String {
    JSON::stringify(value).unwrap().as_string().unwrap()
}

/// A stored value record, written by hand in the documented storage format.
fn value_record(prefix: &str, ts: u64, node: &str, ttl_ms: u64, value_json: &str) -> String {
    let tag = prefix_tag(prefix);
    if ttl_ms == 0 {
        format!(r#"{{"t":{ts},"n":"{node}","p":"{tag}","v":{value_json}}}"#)
    } else {
        format!(r#"{{"t":{ts},"n":"{node}","p":"{tag}","l":{ttl_ms},"v":{value_json}}}"#)
    }
}

/// A tab message as the client sends it: `[1, pageId, clearTs | -1, clearNode, key, record, …]`.
fn tab_message(page: &str, clear: Option<(f64, &str)>, changes: &[(&str, &str)]) -> Array {
    let message = Array::new();
    message.push(&1.0.into());
    message.push(&page.into());
    match clear {
        Some((ts, node)) => {
            message.push(&ts.into());
            message.push(&node.into());
        }
        None => {
            message.push(&(-1.0).into());
            message.push(&JsValue::NULL);
        }
    }
    for (key, record) in changes {
        message.push(&(*key).into());
        message.push(&(*record).into());
    }
    message
}

fn now() -> u64 {
    js_sys::Date::now() as u64
}

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

async fn sleep(ms: u32) {
    TimeoutFuture::new(ms).await;
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

/// A cache instance shared with a callback (to call back into it from a listener or a storage).
type Slot = Rc<RefCell<Option<Rc<CacheCore>>>>;

/// One `notify(keys, errors)` call.
#[derive(Clone, Debug)]
struct Call {
    keys: Vec<String>,
    errors: Vec<JsValue>,
    at: f64,
}

/// A `notify` callback that records every call.
#[derive(Clone)]
struct Recorder {
    calls: Rc<RefCell<Vec<Call>>>,
    function: Function,
}

impl Recorder {
    fn new() -> Self {
        Self::with_hook(|_| {})
    }

    /// A recorder that also runs `hook(keys)` inside the callback (to call back into a cache).
    fn with_hook(mut hook: impl FnMut(&[String]) + 'static) -> Self {
        let calls: Rc<RefCell<Vec<Call>>> = Rc::default();
        let log = calls.clone();
        let closure = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |keys: JsValue, errors: JsValue| {
            let keys: Vec<String> =
                Array::from(&keys).iter().map(|k| k.as_string().expect("notify key is a string")).collect();
            let errors: Vec<JsValue> = Array::from(&errors).iter().collect();
            hook(&keys);
            log.borrow_mut().push(Call { keys, errors, at: js_sys::Date::now() });
        });
        // Leaked on purpose: a cache may call it until the end of the page.
        let function: Function = closure.into_js_value().unchecked_into();
        Recorder { calls, function }
    }

    fn function(&self) -> Function {
        self.function.clone()
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    fn count(&self, key: &str) -> usize {
        self.calls.borrow().iter().map(|c| c.keys.iter().filter(|k| *k == key).count()).sum()
    }

    fn saw(&self, key: &str) -> bool {
        self.count(key) > 0
    }

    fn errors(&self) -> Vec<JsValue> {
        self.calls.borrow().iter().flat_map(|c| c.errors.clone()).collect()
    }

    fn len(&self) -> usize {
        self.calls.borrow().len()
    }
}

fn open(storage: &JsValue, prefix: &str, page: &str, recorder: &Recorder) -> CacheCore {
    CacheCore::new(storage.clone(), prefix.into(), page.into(), recorder.function(), None).expect("opens")
}

/// Flushes and asserts that nothing failed.
fn flush_ok(core: &CacheCore) {
    let errors = array(&core.flush().unwrap());
    assert!(errors.is_empty(), "flush failed: {:?}", describe(&errors));
}

fn v(s: &str) -> String {
    format!("\"{s}\"")
}

// ---- 1. persistence --------------------------------------------------------------------------

#[wasm_bindgen_test]
fn tab_link_is_broadcast_channel_and_node_ids_differ() {
    let p = "wt_link_";
    clean(p);
    let (ra, rb) = (Recorder::new(), Recorder::new());
    let a = open(&local_js(), p, "page-a", &ra);
    let b = open(&local_js(), p, "page-b", &rb);
    assert_eq!(a.tab_link().unwrap(), "broadcast-channel");
    assert_eq!(b.tab_link().unwrap(), "broadcast-channel");
    let (na, nb) = (a.node().unwrap(), b.node().unwrap());
    assert!(!na.is_empty());
    assert_ne!(na, nb, "every instance writes under its own node id");
    assert_eq!(array(&a.take_startup_errors().unwrap()).len(), 0);
    a.dispose();
    b.dispose();
    clean(p);
}

#[wasm_bindgen_test]
fn set_and_flush_write_one_record_per_key_that_a_new_instance_hydrates() {
    let p = "wt_persist_";
    clean(p);
    let rec = Recorder::new();
    let a = open(&local_js(), p, "page-a", &rec);
    let node = a.node().unwrap();

    let ts1 = a.set("user", r#"{"name":"Ada","tags":["x",1,null]}"#.into(), 0.0).unwrap();
    a.set("count", "1".into(), 0.0).unwrap();
    let ts2 = a.set("count", "2".into(), 60.0).unwrap(); // coalesced with the previous write
    a.set("nothing", "null".into(), 0.0).unwrap();
    assert!(ts2 > ts1, "timestamps of one writer strictly increase");
    assert!(local_keys(p).is_empty(), "nothing is persisted before flush");

    flush_ok(&a);
    let expected_keys: Vec<String> = ["count", "nothing", "user"].iter().map(|k| format!("{p}{k}")).collect();
    assert_eq!(local_keys(p), expected_keys, "one record per key, under prefix + key");

    let user = parse(&local_get(&format!("{p}user")).unwrap());
    assert_eq!(get(&user, "t").as_f64(), Some(ts1));
    assert_eq!(get(&user, "n").as_string(), Some(node.clone()));
    assert_eq!(get(&user, "p").as_string(), Some(prefix_tag(p)));
    assert_eq!(json(&get(&user, "v")), r#"{"name":"Ada","tags":["x",1,null]}"#);
    assert!(get(&user, "l").is_undefined(), "ttl 0 is not written");
    assert!(get(&user, "d").is_undefined());
    let count = parse(&local_get(&format!("{p}count")).unwrap());
    assert_eq!(get(&count, "t").as_f64(), Some(ts2));
    assert_eq!(get(&count, "l").as_f64(), Some(60_000.0));
    assert_eq!(json(&get(&count, "v")), "2");

    // A second flush with nothing new writes nothing and fails nothing.
    local().remove_item(&format!("{p}nothing")).unwrap();
    flush_ok(&a);
    assert_eq!(local_get(&format!("{p}nothing")), None, "flush only writes what changed");
    local_set(&format!("{p}nothing"), &value_record(p, ts1 as u64, &node, 0, "null"));

    let rec_b = Recorder::new();
    let b = open(&local_js(), p, "page-b", &rec_b);
    assert_eq!(array(&b.take_startup_errors().unwrap()).len(), 0);
    assert_eq!(b.get("user").unwrap().as_deref(), Some(r#"{"name":"Ada","tags":["x",1,null]}"#));
    assert_eq!(b.get("count").unwrap().as_deref(), Some("2"));
    assert_eq!(b.get("nothing").unwrap().as_deref(), Some("null"), "a stored JSON null is a value");
    assert_eq!(b.get("missing").unwrap(), None);
    assert_eq!(b.expires_at("count").unwrap(), ts2 + 60_000.0);
    assert_eq!(b.expires_at("user").unwrap(), 0.0);

    // A write made by the reopened instance orders after everything it loaded.
    let ts3 = b.set("count", "3".into(), 0.0).unwrap();
    assert!(ts3 > ts2);
    a.dispose();
    b.dispose();
    clean(p);
}

#[wasm_bindgen_test]
fn remove_leaves_a_tombstone_that_a_later_instance_respects() {
    let p = "wt_tomb_";
    clean(p);
    let rec = Recorder::new();
    let a = open(&local_js(), p, "page-a", &rec);
    let set_ts = a.set("gone", v("bye"), 0.0).unwrap();
    a.set("stays", v("here"), 0.0).unwrap();
    flush_ok(&a);
    let rm_ts = a.remove("gone").unwrap();
    assert!(rm_ts > set_ts);
    assert_eq!(a.get("gone").unwrap(), None);
    flush_ok(&a);

    let text = local_get(&format!("{p}gone")).expect("a remove keeps a record: the tombstone");
    let tomb = parse(&text);
    assert_eq!(get(&tomb, "d").as_f64(), Some(1.0));
    assert_eq!(get(&tomb, "t").as_f64(), Some(rm_ts));
    assert!(get(&tomb, "v").is_undefined(), "a tombstone carries no value");

    let b = open(&local_js(), p, "page-b", &Recorder::new());
    assert_eq!(array(&b.take_startup_errors().unwrap()).len(), 0);
    assert_eq!(b.get("gone").unwrap(), None);
    assert_eq!(b.get("stays").unwrap().as_deref(), Some(v("here").as_str()));
    // The tombstone orders writes: the reopened instance's next write is newer than the remove.
    assert!(b.set("gone", "1".into(), 0.0).unwrap() > rm_ts);
    a.dispose();
    b.dispose();
    clean(p);
}

#[wasm_bindgen_test]
fn clear_persists_an_epoch_and_removes_older_records_only() {
    let p = "wt_clear_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    a.set("one", "1".into(), 0.0).unwrap();
    a.set("two", "2".into(), 0.0).unwrap();
    a.remove("three").unwrap();
    flush_ok(&a);
    // Another tab (whose clock is ahead) wrote a record after `a` opened: it is newer than the
    // clear below and must survive it.
    let future_ts = now() + 10 * 60 * 1000;
    local_set(&format!("{p}later"), &value_record(p, future_ts, "other-tab", 0, "42"));

    let cleared = a.clear().unwrap();
    let epoch_ts = get(&cleared, "timestamp").as_f64().unwrap();
    let mut visible: Vec<String> = Array::from(&get(&cleared, "keys")).iter().map(|k| k.as_string().unwrap()).collect();
    visible.sort();
    assert_eq!(visible, ["one", "two"], "clear reports the keys that were visible");
    assert_eq!(a.get("one").unwrap(), None);
    flush_ok(&a);

    // The epoch record's layout is the core's business; it must be JSON naming this cache's tag and
    // the epoch's timestamp and writer.
    let meta_text = local_get(&meta_key(p)).expect("the epoch is persisted");
    let meta = json(&parse(&meta_text));
    for part in [prefix_tag(p), (epoch_ts as u64).to_string(), a.node().unwrap()] {
        assert!(meta.contains(&part), "epoch record {meta_text} lacks {part}");
    }
    assert_eq!(
        local_keys(p),
        vec![meta_key(p), format!("{p}later")], // sorted: U+0000 sorts first
        "records ordered before the epoch are removed, newer ones kept"
    );

    // A record older than the epoch written back by a slow tab stays invisible after reopening.
    local_set(&format!("{p}late"), &value_record(p, epoch_ts as u64 - 1, "slow-tab", 0, "7"));
    let b = open(&local_js(), p, "page-b", &Recorder::new());
    assert_eq!(array(&b.take_startup_errors().unwrap()).len(), 0);
    assert_eq!(b.get("one").unwrap(), None);
    assert_eq!(b.get("two").unwrap(), None);
    assert_eq!(b.get("late").unwrap(), None, "a write ordered before the epoch is gone for good");
    assert_eq!(b.get("later").unwrap().as_deref(), Some("42"));
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
    a.set("good", r#"{"ok":true}"#.into(), 0.0).unwrap();
    flush_ok(&a);
    a.dispose();

    let bad: Vec<(String, String)> = vec![
        (format!("{p}garbage"), "not json at all {".into()),
        (format!("{p}shape"), r#"{"hello":"world"}"#.into()),
        (format!("{p}array"), "[1,2,3]".into()),
        (format!("{p}number"), "42".into()),
        (format!("{p}empty"), String::new()),
        (format!("{p}huge_ts"), format!(r#"{{"t":{},"n":"x","p":"{}","v":1}}"#, u64::MAX, prefix_tag(p))),
        (format!("{p}neg_ts"), format!(r#"{{"t":-5,"n":"x","p":"{}","v":1}}"#, prefix_tag(p))),
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
    let errors = array(&b.take_startup_errors().unwrap());
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
    assert_eq!(array(&b.take_startup_errors().unwrap()).len(), 0, "startup errors are handed over once");

    assert_eq!(b.get("good").unwrap().as_deref(), Some(r#"{"ok":true}"#), "valid entries still load");
    for name in ["garbage", "shape", "array", "number", "empty", "huge_ts", "neg_ts", "x_other"] {
        assert_eq!(b.get(name).unwrap(), None, "{name} must not load");
    }
    for (key, text) in &bad {
        assert_eq!(local_get(key).as_ref(), Some(text), "{key:?} is left in storage as it was");
    }
    assert_eq!(local_get(&foreign), Some(foreign_text));

    // The instance works normally, and flushing does not touch the entries it skipped.
    b.set("fresh", "1".into(), 0.0).unwrap();
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
        Recorder::with_hook(move |keys| {
            if let Some(core) = slot.borrow().as_ref() {
                for k in keys {
                    let value = core.get(k).expect("a listener may call back into the cache");
                    reads.borrow_mut().push((k.clone(), value));
                }
            }
        })
    };
    let a = open(&local_js(), p, "page-a", &ra);
    let b = Rc::new(open(&local_js(), p, "page-b", &rb));
    *slot.borrow_mut() = Some(b.clone());

    let ts = a.set("k", v("hello"), 0.0).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| rb.saw("k"), 2000.0).await, "B never heard of A's write");
    assert_eq!(b.get("k").unwrap(), Some(v("hello")));
    assert_eq!(reads.borrow().last().cloned(), Some(("k".to_string(), Some(v("hello")))));
    assert!(rb.errors().is_empty(), "{:?}", describe(&rb.errors()));
    // B applies the write without writing it again: storage still holds A's record.
    assert_eq!(get(&parse(&local_get(&format!("{p}k")).unwrap()), "t").as_f64(), Some(ts));

    b.remove("k").unwrap();
    flush_ok(&b);
    assert!(wait_until(|| ra.saw("k"), 2000.0).await, "A never heard of B's remove");
    assert_eq!(a.get("k").unwrap(), None);
    assert_eq!(ra.count("k"), 1);

    a.set("x", "1".into(), 0.0).unwrap();
    a.set("y", "2".into(), 0.0).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| rb.saw("x") && rb.saw("y"), 2000.0).await);
    assert_eq!(b.get("y").unwrap().as_deref(), Some("2"));
    let before = ra.len();
    b.clear().unwrap();
    flush_ok(&b);
    assert!(wait_until(|| ra.saw("x") && ra.saw("y"), 2000.0).await, "A never heard of B's clear");
    let cleared: Vec<String> = ra.calls()[before..].iter().flat_map(|c| c.keys.clone()).collect();
    assert!(!cleared.contains(&"k".to_string()), "a key already gone is not reported by clear: {cleared:?}");
    assert_eq!(a.get("x").unwrap(), None);
    assert_eq!(a.get("y").unwrap(), None);
    assert!(ra.errors().is_empty(), "{:?}", describe(&ra.errors()));
    // Neither instance hears its own writes.
    assert_eq!(ra.count("y"), 1, "A hears of y once: from B's clear, never from its own write");
    assert_eq!(rb.count("k"), 1, "B is not notified of its own remove");

    // A write after the clear still propagates.
    a.set("after", "3".into(), 0.0).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| rb.saw("after"), 2000.0).await);
    assert_eq!(b.get("after").unwrap().as_deref(), Some("3"));
    a.dispose();
    b.dispose();
    clean(p);
    page_errors.assert_none();
}

#[wasm_bindgen_test]
async fn instances_of_one_page_ignore_each_others_channel_messages() {
    let p = "wt_samepage_";
    clean(p);
    let (ra, rsame, rother) = (Recorder::new(), Recorder::new(), Recorder::new());
    let a = open(&local_js(), p, "page-1", &ra);
    let same = open(&local_js(), p, "page-1", &rsame);
    let other = open(&local_js(), p, "page-2", &rother);

    let ts = a.set("s", v("mine"), 5.0).unwrap();
    flush_ok(&a);
    // `other` (another page) is the control: once it has the message, `same` has had it too.
    assert!(wait_until(|| rother.saw("s"), 2000.0).await);
    sleep(20).await;
    assert_eq!(rsame.len(), 0, "an instance of the same page ignores the channel message");
    assert_eq!(same.get("s").unwrap(), None);

    // On one page writes travel through the JS page hub instead, as applyPeer.
    let node = a.node().unwrap();
    assert!(same.apply_peer("s".into(), Some(v("mine")), 5.0, ts, node.clone(), f64::NAN).unwrap());
    assert_eq!(same.get("s").unwrap(), Some(v("mine")));
    assert_eq!(same.expires_at("s").unwrap(), ts + 5000.0);
    assert!(
        !same.apply_peer("s".into(), Some(v("mine")), 5.0, ts, node.clone(), f64::NAN).unwrap(),
        "a duplicate changes nothing"
    );
    assert!(
        !same.apply_peer("s".into(), Some(v("older")), 0.0, ts - 1.0, node.clone(), f64::NAN).unwrap(),
        "an older write loses"
    );
    assert_eq!(same.get("s").unwrap(), Some(v("mine")));
    let rm = a.remove("s").unwrap();
    assert!(same.apply_peer("s".into(), None, 0.0, rm, node.clone(), f64::NAN).unwrap());
    assert_eq!(same.get("s").unwrap(), None);
    let epoch = a.clear().unwrap();
    same.set("z", "1".into(), 0.0).unwrap();
    let hidden = same.apply_peer_clear(get(&epoch, "timestamp").as_f64().unwrap() + 1000.0, node).unwrap();
    assert_eq!(array(&hidden).iter().map(|k| k.as_string().unwrap()).collect::<Vec<_>>(), ["z"]);
    assert_eq!(same.get("z").unwrap(), None);
    a.dispose();
    same.dispose();
    other.dispose();
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
    long.set("k", v("long"), 0.0).unwrap();
    flush_ok(&long);
    assert!(wait_until(|| rcontrol.saw("k"), 2000.0).await);
    sleep(20).await;
    assert_eq!(rp.len(), 0, "another prefix's channel is not ours");
    assert_eq!(rq.len(), 0);
    assert_eq!(short.get("x_k").unwrap(), None);
    assert_eq!(short.get("k").unwrap(), None);

    // Reopening under the shorter prefix does not load (or report) the longer prefix's records.
    let reopened = open(&local_js(), p, "page-6", &Recorder::new());
    assert_eq!(array(&reopened.take_startup_errors().unwrap()).len(), 0);
    assert_eq!(reopened.get("x_k").unwrap(), None);

    // A clear under the shorter prefix leaves the longer prefix's records (and its epoch) alone.
    long.clear().unwrap();
    long.set("k2", "2".into(), 0.0).unwrap();
    flush_ok(&long);
    let long_keys = local_keys(px);
    short.set("mine", "1".into(), 0.0).unwrap();
    short.clear().unwrap();
    flush_ok(&short);
    assert_eq!(local_keys(px), long_keys, "the shorter prefix's clear removed another cache's records");
    let reopened_long = open(&local_js(), px, "page-7", &Recorder::new());
    assert_eq!(array(&reopened_long.take_startup_errors().unwrap()).len(), 0);
    assert_eq!(reopened_long.get("k2").unwrap().as_deref(), Some("2"));
    assert_eq!(unrelated.get("k").unwrap(), None);
    for c in [short, long, unrelated, control, reopened, reopened_long] {
        c.dispose();
    }
    for prefix in [p, px, q] {
        clean(prefix);
    }
}

// ---- 4. merge across tabs -------------------------------------------------------------------

#[wasm_bindgen_test]
async fn a_newer_write_from_another_tab_wins() {
    let p = "wt_newer_";
    clean(p);
    let (ra, rb) = (Recorder::new(), Recorder::new());
    let a = open(&local_js(), p, "page-a", &ra);
    let b = open(&local_js(), p, "page-b", &rb);
    let ts_a = a.set("k", v("a"), 0.0).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| rb.saw("k"), 2000.0).await);
    // B has seen A's write, so its own write is ordered after it, whatever the wall clock says.
    let ts_b = b.set("k", v("b"), 0.0).unwrap();
    assert!(ts_b > ts_a);
    flush_ok(&b);
    assert!(wait_until(|| ra.saw("k"), 2000.0).await);
    assert_eq!(a.get("k").unwrap(), Some(v("b")));
    assert_eq!(b.get("k").unwrap(), Some(v("b")));
    let stored = parse(&local_get(&format!("{p}k")).unwrap());
    assert_eq!(get(&stored, "t").as_f64(), Some(ts_b));
    assert_eq!(get(&stored, "n").as_string(), Some(b.node().unwrap()));
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
    let ts_old = b.set("k", v("old"), 0.0).unwrap();
    a.set("k", v("x"), 0.0).unwrap();
    let ts_new = a.set("k", v("new"), 0.0).unwrap();
    assert!(ts_new > ts_old);
    flush_ok(&a);
    flush_ok(&b); // B's older record overwrites A's newer one in the shared storage...
    let stored = || get(&parse(&local_get(&format!("{p}k")).unwrap()), "t").as_f64();
    assert_eq!(stored(), Some(ts_old));

    // ...until A hears of B's write, finds its own newer, and writes it back.
    assert!(wait_until(|| stored() == Some(ts_new), 2000.0).await, "A did not re-persist its newer write");
    assert!(wait_until(|| rb.saw("k"), 2000.0).await);
    assert_eq!(b.get("k").unwrap(), Some(v("new")), "B takes A's newer write");
    assert_eq!(a.get("k").unwrap(), Some(v("new")));
    sleep(30).await;
    assert!(!ra.saw("k"), "A's visible value never changed, so A is not notified");
    assert!(ra.errors().is_empty() && rb.errors().is_empty());
    let stored = parse(&local_get(&format!("{p}k")).unwrap());
    assert_eq!(json(&get(&stored, "v")), v("new"));
    assert_eq!(get(&stored, "n").as_string(), Some(a.node().unwrap()));
    // A third instance opened now reads the winner.
    let c = open(&local_js(), p, "page-c", &Recorder::new());
    assert_eq!(c.get("k").unwrap(), Some(v("new")));
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
    let ts = a.set("k", v("newer"), 0.0).unwrap();
    flush_ok(&a);
    let older = value_record(p, ts as u64 - 1000, "slow-tab", 0, &v("older"));
    local_set(&format!("{p}k"), &older);
    let tab = web_sys::BroadcastChannel::new(p).unwrap();
    tab.post_message(&tab_message("page-slow", None, &[("k", &older)])).unwrap();
    let stored = || local_get(&format!("{p}k"));
    assert!(wait_until(|| stored().as_deref() != Some(older.as_str()), 2000.0).await, "storage was never restored");
    let restored = parse(&stored().unwrap());
    assert_eq!(get(&restored, "t").as_f64(), Some(ts));
    assert_eq!(json(&get(&restored, "v")), v("newer"));
    assert_eq!(a.get("k").unwrap(), Some(v("newer")));
    assert!(ra.errors().is_empty());
    tab.close();
    a.dispose();
    clean(p);
}

#[wasm_bindgen_test]
async fn a_write_made_after_seeing_a_future_stamp_wins_over_it() {
    // Another tab's clock is ten minutes ahead: a write made here after seeing its write must
    // still win (hybrid logical clock), although the local wall clock is behind.
    let p = "wt_skew_";
    clean(p);
    let ra = Recorder::new();
    let a = open(&local_js(), p, "page-a", &ra);
    let ahead = now() + 10 * 60 * 1000;
    let theirs = value_record(p, ahead, "fast-tab", 0, &v("theirs"));
    let tab = web_sys::BroadcastChannel::new(p).unwrap();
    tab.post_message(&tab_message("page-fast", None, &[("k", &theirs)])).unwrap();
    assert!(wait_until(|| ra.saw("k"), 2000.0).await);
    assert_eq!(a.get("k").unwrap(), Some(v("theirs")));
    // Negated: its stamp is ten minutes ahead of the wall clock it was written at.
    let stamped = a.set("k", v("mine"), 0.0).unwrap();
    assert!(stamped < 0.0, "the write carries its written time apart: {stamped}");
    let mine = -stamped;
    assert!(mine > ahead as f64, "a write after seeing ts {ahead} got ts {mine}");
    let written = a.last_written_at().unwrap();
    assert!(written < ahead as f64 && written >= (now() - 60_000) as f64, "written at the wall clock: {written}");
    assert_eq!(a.get("k").unwrap(), Some(v("mine")));
    // And the fast tab's write, delivered again (duplicate), does not bring it back.
    tab.post_message(&tab_message("page-fast", None, &[("k", &theirs)])).unwrap();
    tab.post_message(&tab_message("page-fast", None, &[("sentinel", &value_record(p, now(), "fast-tab", 0, "1"))]))
        .unwrap();
    assert!(wait_until(|| ra.saw("sentinel"), 2000.0).await);
    assert_eq!(a.get("k").unwrap(), Some(v("mine")));
    tab.close();
    a.dispose();
    clean(p);
}

// ---- 5. TTL -------------------------------------------------------------------------------

#[wasm_bindgen_test]
async fn ttl_expires_values_and_the_timer_delivers_the_key() {
    let page_errors = PageErrors::trap();
    let p = "wt_ttl_";
    clean(p);
    let (ra, rb) = (Recorder::new(), Recorder::new());
    let a = open(&local_js(), p, "page-a", &ra);
    let b = open(&local_js(), p, "page-b", &rb);
    let ts = a.set("short", v("brief"), 0.12).unwrap();
    a.set("forever", "1".into(), 0.0).unwrap();
    assert_eq!(a.expires_at("short").unwrap(), ts + 120.0, "expiresAt = timestamp + ttl");
    assert_eq!(a.expires_at("forever").unwrap(), 0.0, "ttl 0 never expires");
    assert_eq!(a.get("short").unwrap(), Some(v("brief")));
    flush_ok(&a);
    assert!(wait_until(|| rb.saw("short"), 1000.0).await);
    assert_eq!(b.expires_at("short").unwrap(), ts + 120.0, "expiry is the same in every tab");

    // A's timer reports the key once it expired; B got it once on arrival and once on expiry.
    assert!(wait_until(|| ra.saw("short") && rb.count("short") >= 2, 2000.0).await, "no expiry notification");
    let expiry = ts + 120.0;
    for rec in [&ra, &rb] {
        let call = rec.calls().into_iter().rfind(|c| c.keys.contains(&"short".to_string())).unwrap();
        assert!(call.at >= expiry, "notified at {} before the expiry at {expiry}", call.at);
        assert!(call.errors.is_empty());
    }
    assert_eq!(a.get("short").unwrap(), None);
    assert_eq!(b.get("short").unwrap(), None);
    assert_eq!(a.get("forever").unwrap().as_deref(), Some("1"));
    assert!(!ra.saw("forever"));
    assert_eq!(ra.count("short"), 1, "an expiry is reported once");

    // The expired record is not loaded by a later instance either.
    let c = open(&local_js(), p, "page-c", &Recorder::new());
    assert_eq!(c.get("short").unwrap(), None);
    assert_eq!(c.get("forever").unwrap().as_deref(), Some("1"));

    // Successive expiries are delivered by the re-armed timer, with no other call in between.
    a.set("first", "1".into(), 0.04).unwrap();
    a.set("second", "2".into(), 0.08).unwrap();
    assert!(
        wait_until(|| ra.saw("first") && ra.saw("second"), 1000.0).await,
        "the timer was not re-armed after an expiry: {:?}",
        ra.calls()
    );

    // Rewriting a key with a TTL re-arms for the new expiry; overwriting without TTL disarms.
    a.set("again", "1".into(), 0.05).unwrap();
    a.set("again", "2".into(), 0.0).unwrap();
    let ts_re = a.set("re", "1".into(), 0.06).unwrap();
    sleep(200).await;
    assert_eq!(a.get("again").unwrap().as_deref(), Some("2"));
    assert!(!ra.saw("again"), "a key rewritten without TTL must not be reported as expired");
    assert!(ra.saw("re"));
    assert!(js_sys::Date::now() >= ts_re + 60.0);
    for core in [a, b, c] {
        core.dispose();
    }
    clean(p);
    page_errors.assert_none();
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
    a.set("keep", big(200), 0.0).unwrap(); // least recently used, but live
    a.set("e1", big(200), 0.05).unwrap();
    a.set("e2", big(200), 0.05).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| a.get("e1").unwrap().is_none() && a.get("e2").unwrap().is_none(), 1000.0).await);
    set_capacity(&storage, used_units(&storage) + 100.0); // a new 200-char value needs one record freed

    a.set("new", big(200), 0.0).unwrap();
    flush_ok(&a);
    assert!(raw_item(&storage, &format!("{p}new")).is_some(), "the new value was persisted");
    assert!(raw_item(&storage, &format!("{p}keep")).is_some(), "a live entry was evicted while expired ones could go");
    assert_eq!(raw_item(&storage, &format!("{p}e1")), None);
    assert_eq!(raw_item(&storage, &format!("{p}e2")), None);
    assert_eq!(a.get("keep").unwrap(), Some(big(200)));
    assert_eq!(a.get("new").unwrap(), Some(big(200)));
    a.dispose();
}

#[wasm_bindgen_test]
fn quota_evicts_the_least_recently_used_entry_and_reports_a_value_that_never_fits() {
    let p = "wt_qlru_";
    let storage = make_quota_storage(1e9);
    let a = open(&storage, p, "page-a", &Recorder::new());
    for k in ["a", "b", "c"] {
        a.set(k, big(200), 0.0).unwrap();
    }
    flush_ok(&a);
    assert_eq!(a.get("a").unwrap(), Some(big(200))); // `a` is used again: `b` is now the LRU
    set_capacity(&storage, used_units(&storage) + 100.0);

    a.set("d", big(200), 0.0).unwrap();
    flush_ok(&a);
    let keys = |s: &JsValue| raw_keys(s).iter().map(|k| k.as_string().unwrap()).collect::<Vec<_>>();
    assert_eq!(keys(&storage), [format!("{p}a"), format!("{p}c"), format!("{p}d")], "only the LRU entry is evicted");
    assert_eq!(a.get("b").unwrap(), Some(big(200)), "an evicted entry is still readable in memory");

    // A value larger than the whole quota: reported, kept in memory, and nothing else is lost.
    let before: Vec<(String, Option<String>)> =
        keys(&storage).into_iter().map(|k| (k.clone(), raw_item(&storage, &k))).collect();
    a.set("huge", big(5000), 0.0).unwrap();
    let errors = array(&a.flush().unwrap());
    assert_eq!(errors.len(), 1, "{:?}", describe(&errors));
    assert_eq!(err_type(&errors[0]), "QUOTA_EXCEEDED");
    assert_eq!(err_key(&errors[0]).as_deref(), Some("huge"));
    assert!(err_retryable(&errors[0]));
    assert_eq!(a.get("huge").unwrap(), Some(big(5000)), "the value is kept in memory");
    let after: Vec<(String, Option<String>)> =
        keys(&storage).into_iter().map(|k| (k.clone(), raw_item(&storage, &k))).collect();
    assert_eq!(after, before, "entries evicted for a value that still did not fit are put back");

    // Once there is room, a write of the key is persisted again.
    set_capacity(&storage, 1e9);
    a.set("huge", big(5000), 0.0).unwrap();
    flush_ok(&a);
    assert!(raw_item(&storage, &format!("{p}huge")).is_some());
    a.dispose();
}

#[wasm_bindgen_test]
fn quota_on_clear_frees_old_records_before_writing_the_epoch() {
    let p = "wt_qclear_";
    let storage = make_quota_storage(1e9);
    let a = open(&storage, p, "page-a", &Recorder::new());
    a.set("a", big(100), 0.0).unwrap();
    flush_ok(&a);
    set_capacity(&storage, used_units(&storage)); // full
    a.clear().unwrap();
    flush_ok(&a);
    let keys: Vec<String> = raw_keys(&storage).iter().map(|k| k.as_string().unwrap()).collect();
    assert_eq!(keys, [meta_key(p)]);
    a.dispose();
}

// ---- 7. broken storage ---------------------------------------------------------------------------

#[wasm_bindgen_test]
fn a_storage_that_throws_on_every_call_gives_typed_errors_and_never_kills_the_instance() {
    for kind in ["error", "string", "null", "undefined", "security"] {
        let p = format!("wt_throw_{kind}_");
        let storage = make_throwing_storage(kind);
        let rec = Recorder::new();
        let a = open(&storage, &p, "page-a", &rec);
        assert!(storage_calls(&storage) > 0.0, "{kind}: the storage was never asked");
        let startup = array(&a.take_startup_errors().unwrap());
        assert!(!startup.is_empty(), "{kind}: a failing storage must be reported at startup");
        for e in &startup {
            assert_eq!(err_type(e), "STORAGE_FAILED", "{kind}: {:?}", describe(&startup));
            assert!(err_retryable(e));
            assert!(!err_message(e).is_empty());
        }
        assert!(a.node().is_ok(), "{kind}: the instance is alive after opening");

        a.set("k", "1".into(), 0.0).unwrap();
        assert_eq!(a.get("k").unwrap().as_deref(), Some("1"));
        let errors = array(&a.flush().unwrap());
        assert_eq!(errors.len(), 1, "{kind}: {:?}", describe(&errors));
        assert_eq!(err_type(&errors[0]), "STORAGE_FAILED");
        assert_eq!(err_key(&errors[0]).as_deref(), Some("k"));
        assert!(err_retryable(&errors[0]));
        assert_eq!(a.get("k").unwrap().as_deref(), Some("1"), "{kind}: a value that failed to persist stays readable");

        a.remove("k").unwrap();
        let errors = array(&a.flush().unwrap());
        assert_eq!(errors.iter().map(err_type).collect::<Vec<_>>(), ["STORAGE_FAILED"], "{kind}");
        assert_eq!(a.get("k").unwrap(), None);

        a.set("k2", "2".into(), 0.0).unwrap();
        a.clear().unwrap();
        let errors = array(&a.flush().unwrap());
        assert!(!errors.is_empty(), "{kind}: a clear that could not be persisted is reported");
        assert!(errors.iter().all(|e| err_type(e) == "STORAGE_FAILED"), "{kind}: {:?}", describe(&errors));
        assert_eq!(a.get("k2").unwrap(), None);
        assert_eq!(a.tab_link().unwrap(), "broadcast-channel");
        a.set("k3", "3".into(), 0.0).unwrap();
        assert_eq!(a.get("k3").unwrap().as_deref(), Some("3"), "{kind}: the instance is alive at the end");
        a.dispose();
    }
}

#[wasm_bindgen_test]
fn storages_of_the_wrong_shape_never_kill_the_instance() {
    let odd: Vec<(&str, JsValue)> = vec![
        ("null", JsValue::NULL),
        ("undefined", JsValue::UNDEFINED),
        ("number", JsValue::from_f64(42.0)),
        ("string", JsValue::from_str("localStorage")),
        ("empty object", Object::new().into()),
        ("non-string values", make_odd_storage("nonStringValues")),
        ("NaN length", make_odd_storage("nanLength")),
        ("string length", make_odd_storage("stringLength")),
    ];
    for (name, storage) in odd {
        let a = open(&storage, "odd_", "page-a", &Recorder::new());
        for e in array(&a.take_startup_errors().unwrap()) {
            assert!(["STORAGE_FAILED", "STORAGE_CORRUPT"].contains(&err_type(&e).as_str()), "{name}: {}", err_type(&e));
        }
        a.set("k", "1".into(), 0.0).unwrap();
        for e in array(&a.flush().unwrap()) {
            assert_eq!(err_type(&e), "STORAGE_FAILED", "{name}");
        }
        assert_eq!(a.get("k").unwrap().as_deref(), Some("1"), "{name}: alive");
        a.dispose();
    }
}

#[wasm_bindgen_test]

fn a_storage_reporting_an_absurd_length_does_not_kill_the_instance() {
    let storage = make_odd_storage("hugeLength");
    let a = open(&storage, "huge_len_", "page-a", &Recorder::new());
    for e in array(&a.take_startup_errors().unwrap()) {
        assert_eq!(err_type(&e), "STORAGE_FAILED");
    }
    a.set("k", "1".into(), 0.0).unwrap();
    a.clear().unwrap(); // persisting an epoch scans the storage too
    let _ = a.flush().unwrap();
    assert_eq!(a.get("k").unwrap(), None);
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
                match core.get("k") {
                    Ok(_) => seen.borrow_mut().push("ok".into()),
                    Err(e) => seen.borrow_mut().push(err_type(&e)),
                }
            }
        })
    };
    let storage = make_hook_storage(hook.as_ref().unchecked_ref());
    let a = Rc::new(open(&storage, "reent_", "page-a", &Recorder::new()));
    *slot.borrow_mut() = Some(a.clone());
    a.set("k", "1".into(), 0.0).unwrap();
    flush_ok(&a);
    assert_eq!(*seen.borrow(), ["REENTRANT_CALL"]);
    assert_eq!(a.get("k").unwrap().as_deref(), Some("1"));
    slot.borrow_mut().take();
    a.dispose();
    drop(hook);
}

#[wasm_bindgen_test]
fn invalid_keys_and_ttls_are_typed_errors_and_store_nothing() {
    let p = "wt_invalid_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    let long_key = "k".repeat(1025);
    for key in ["", "a\u{0}b", long_key.as_str()] {
        let e = a.set(key, "1".into(), 0.0).unwrap_err();
        assert_eq!(err_type(&e), "INVALID_KEY");
        assert!(!err_retryable(&e));
        assert_eq!(err_type(&a.remove(key).unwrap_err()), "INVALID_KEY");
    }
    for ttl in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
        let e = a.set("k", "1".into(), ttl).unwrap_err();
        assert_eq!(err_type(&e), "INVALID_TTL", "ttl {ttl}");
    }
    assert_eq!(a.get("k").unwrap(), None);
    flush_ok(&a);
    assert!(local_keys(p).is_empty());
    a.dispose();
    clean(p);
}

// ---- 8. hostile tab messages -----------------------------------------------------------------

#[wasm_bindgen_test]
async fn hostile_tab_messages_are_protocol_errors_and_change_nothing() {
    let page_errors = PageErrors::trap();
    let p = "wt_hostile_";
    clean(p);
    let rec = Recorder::new();
    let a = open(&local_js(), p, "page-a", &rec);
    let keep_ts = a.set("keep", v("safe"), 0.0).unwrap();
    flush_ok(&a);
    let stored_before = local_keys(p).into_iter().map(|k| (k.clone(), local_get(&k))).collect::<Vec<_>>();
    let tag = prefix_tag(p);
    let newer = now() + 1000;

    let not_array: Vec<JsValue> = vec![
        "hello".into(),
        42.into(),
        JsValue::NULL,
        Object::new().into(),
        parse(r#"{"0":1,"1":"page-x","length":2}"#),
    ];
    let arrays: Vec<JsValue> = vec![
        // wrong versions
        Array::new().into(),
        parse(r#"[2,"page-x",-1,null,"keep","{}"]"#),
        parse(r#"["1","page-x",-1,null]"#),
        parse(r#"[null]"#),
        // non-string keys or records
        parse(&format!(r#"[1,"page-x",-1,null,42,{rec:?}]"#, rec = value_record(p, newer, "x", 0, "1"))),
        parse(r#"[1,"page-x",-1,null,"keep",{"t":1}]"#),
        parse(r#"[1,"page-x",-1,null,"keep",null]"#),
        // garbage records
        tab_message("page-x", None, &[("keep", "garbage")]).into(),
        tab_message("page-x", None, &[("keep", r#"{"hello":"world"}"#)]).into(),
        tab_message("page-x", None, &[("keep", "")]).into(),
        tab_message("page-x", None, &[("keep", &format!(r#"{{"t":"soon","n":"x","p":"{tag}","v":1}}"#))]).into(),
        // timestamps beyond what a JS number holds exactly, or no number at all
        tab_message("page-x", None, &[("keep", &format!(r#"{{"t":{},"n":"x","p":"{tag}","v":1}}"#, u64::MAX))]).into(),
        tab_message("page-x", None, &[("keep", &format!(r#"{{"t":1e300,"n":"x","p":"{tag}","v":1}}"#))]).into(),
        tab_message(
            "page-x",
            None,
            &[("keep", &format!(r#"{{"t":{},"n":"x","p":"{tag}","v":1}}"#, MAX_SAFE_INTEGER + 1))],
        )
        .into(),
        tab_message("page-x", None, &[("keep", &format!(r#"{{"t":{newer},"n":"x","p":"{tag}","l":1e300,"v":1}}"#))])
            .into(),
        tab_message("page-x", None, &[("keep", &format!(r#"{{"t":{newer},"n":"x","p":"{tag}","v":[1,}}"#))]).into(),
    ];
    let hostile: Vec<JsValue> = not_array.into_iter().chain(arrays).collect();
    let tab = web_sys::BroadcastChannel::new(p).unwrap();
    for message in &hostile {
        tab.post_message(message).unwrap();
    }
    // Messages from one channel arrive in order: once the sentinel is in, every one before it is.
    let sentinel = value_record(p, now(), "x", 0, "1");
    tab.post_message(&tab_message("page-x", None, &[("sentinel", &sentinel)])).unwrap();
    assert!(wait_until(|| rec.saw("sentinel"), 3000.0).await, "the valid message after the hostile ones never arrived");

    let calls = rec.calls();
    assert_eq!(calls.len(), hostile.len() + 1, "one notify per message: {calls:?}");
    for (i, (call, message)) in calls.iter().zip(&hostile).enumerate() {
        assert!(call.keys.is_empty(), "message {i} ({message:?}) changed {:?}", call.keys);
        assert_eq!(call.errors.len(), 1, "message {i} ({message:?}): {:?}", describe(&call.errors));
        assert_eq!(err_type(&call.errors[0]), "PROTOCOL", "message {i} ({message:?}): {:?}", describe(&call.errors));
        assert!(!err_retryable(&call.errors[0]));
    }
    assert_eq!(calls.last().unwrap().keys, ["sentinel"]);
    assert!(calls.last().unwrap().errors.is_empty());

    assert_eq!(a.get("keep").unwrap(), Some(v("safe")));
    assert_eq!(a.get("sentinel").unwrap().as_deref(), Some("1"));
    let stored_after = local_keys(p)
        .into_iter()
        .filter(|k| !k.ends_with("sentinel"))
        .map(|k| (k.clone(), local_get(&k)))
        .collect::<Vec<_>>();
    assert_eq!(stored_after, stored_before, "hostile messages changed storage");
    // Still works, and its clock was not pushed by anything it refused.
    let ts = a.set("keep", v("later"), 0.0).unwrap();
    assert!(ts > keep_ts && ts < (now() + 1000) as f64);
    flush_ok(&a);
    tab.close();
    a.dispose();
    clean(p);
    page_errors.assert_none();
}

#[wasm_bindgen_test]
async fn tab_messages_with_an_invalid_key_are_refused_and_reported() {
    let p = "wt_badkey_";
    clean(p);
    let rec = Recorder::new();
    let a = open(&local_js(), p, "page-a", &rec);
    let tab = web_sys::BroadcastChannel::new(p).unwrap();
    let record = value_record(p, now(), "x", 0, "1");
    let long_key = "k".repeat(1025);
    for key in ["", "a\u{0}b", long_key.as_str()] {
        tab.post_message(&tab_message("page-x", None, &[(key, &record)])).unwrap();
    }
    tab.post_message(&tab_message("page-x", None, &[("sentinel", &record)])).unwrap();
    assert!(wait_until(|| rec.saw("sentinel"), 2000.0).await);
    let calls = rec.calls();
    assert_eq!(calls.len(), 4);
    for call in &calls[..3] {
        assert!(call.keys.is_empty());
        assert_eq!(call.errors.len(), 1, "{:?}", describe(&call.errors));
        // Reported with the key validation's own type.
        assert!(["INVALID_KEY", "PROTOCOL"].contains(&err_type(&call.errors[0]).as_str()));
    }
    assert_eq!(a.get("").ok().flatten(), None);
    assert!(local_keys(p).is_empty(), "tab messages are applied, never written again by the receiver");
    tab.close();
    a.dispose();
    clean(p);
}

#[wasm_bindgen_test]

async fn a_malformed_clear_in_a_tab_message_is_reported() {
    let p = "wt_badclear_";
    clean(p);
    let rec = Recorder::new();
    let a = open(&local_js(), p, "page-a", &rec);
    a.set("keep", "1".into(), 0.0).unwrap();
    flush_ok(&a);
    let tab = web_sys::BroadcastChannel::new(p).unwrap();
    let bad_clears = [
        parse(r#"[1,"page-x",1e300,"evil"]"#),
        parse(&format!(r#"[1,"page-x",{},"evil"]"#, MAX_SAFE_INTEGER + 2)),
        parse(r#"[1,"page-x","123","evil"]"#),
        parse(r#"[1,"page-x",123,42]"#),
        parse(r#"[1,"page-x",-5,"evil"]"#),
    ];
    for m in &bad_clears {
        tab.post_message(m).unwrap();
    }
    tab.post_message(&tab_message("page-x", None, &[("sentinel", &value_record(p, now(), "x", 0, "1"))])).unwrap();
    assert!(wait_until(|| rec.saw("sentinel"), 2000.0).await);
    assert_eq!(a.get("keep").unwrap().as_deref(), Some("1"), "a malformed clear must change nothing");
    let calls = rec.calls();
    assert_eq!(calls.len(), bad_clears.len() + 1, "every malformed clear is reported: {calls:?}");
    for call in &calls[..bad_clears.len()] {
        assert_eq!(call.errors.iter().map(err_type).collect::<Vec<_>>(), ["PROTOCOL"]);
    }
    tab.close();
    a.dispose();
    clean(p);
}

#[wasm_bindgen_test]

async fn a_far_future_stamp_from_a_tab_does_not_poison_the_clock() {
    let p = "wt_poison_";
    clean(p);
    let rec = Recorder::new();
    let a = open(&local_js(), p, "page-a", &rec);
    let tab = web_sys::BroadcastChannel::new(p).unwrap();
    let evil = value_record(p, MAX_SAFE_INTEGER, "evil", 0, "1");
    tab.post_message(&tab_message("page-x", None, &[("evil", &evil)])).unwrap();
    tab.post_message(&tab_message("page-x", None, &[("sentinel", &value_record(p, now(), "x", 0, "1"))])).unwrap();
    assert!(wait_until(|| rec.saw("sentinel"), 2000.0).await);
    let ts = a.set("mine", v("precious"), 0.0).unwrap();
    flush_ok(&a);
    assert!(ts <= MAX_SAFE_INTEGER as f64, "local write stamped {ts}, beyond what a record may hold");
    let b = open(&local_js(), p, "page-b", &Recorder::new());
    let errors = array(&b.take_startup_errors().unwrap());
    assert!(errors.is_empty(), "{:?}", describe(&errors));
    assert_eq!(b.get("mine").unwrap(), Some(v("precious")), "a local write made after the hostile message was lost");
    tab.close();
    a.dispose();
    b.dispose();
    clean(p);
}

#[wasm_bindgen_test]
fn apply_peer_refuses_out_of_range_timestamps() {
    // The page hub's messages come from other copies of the package (maybe other versions).
    let p = "wt_peerts_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    a.set("k", "1".into(), 0.0).unwrap();
    for ts in [1e300, f64::INFINITY, (MAX_SAFE_INTEGER + 10) as f64] {
        let result = a.apply_peer("k".into(), Some("2".into()), 0.0, ts, "peer".into(), f64::NAN);
        match result {
            Err(e) => assert_eq!(err_type(&e), "PROTOCOL"),
            Ok(changed) => assert!(!changed, "a peer write stamped {ts} was applied"),
        }
    }
    assert_eq!(a.get("k").unwrap().as_deref(), Some("1"));
    let ts = a.set("k", "3".into(), 0.0).unwrap();
    assert!(ts < (now() + 1000) as f64, "the clock was pushed to {ts}");
    a.dispose();
    clean(p);
}

// ---- 9. dispose -------------------------------------------------------------------------------

#[wasm_bindgen_test]
async fn after_dispose_calls_fail_with_disposed_and_nothing_is_delivered() {
    let page_errors = PageErrors::trap();
    let p = "wt_dispose_";
    clean(p);
    let (ra, rb, rc) = (Recorder::new(), Recorder::new(), Recorder::new());
    let a = open(&local_js(), p, "page-a", &ra);
    let b = open(&local_js(), p, "page-b", &rb);
    let control = open(&local_js(), p, "page-c", &rc);
    b.set("ttl", "1".into(), 0.05).unwrap(); // B's expiry timer is armed...
    b.dispose(); // ...and cleared here
    b.dispose(); // idempotent

    let disposed = |r: Result<JsValue, JsValue>| {
        let e = r.expect_err("a disposed instance answered");
        assert_eq!(err_type(&e), "DISPOSED");
        assert!(!err_retryable(&e));
    };
    disposed(b.get("ttl").map(JsValue::from));
    disposed(b.set("k", "1".into(), 0.0).map(JsValue::from));
    disposed(b.remove("k").map(JsValue::from));
    disposed(b.clear().map(JsValue::from));
    disposed(b.flush().map(JsValue::from));
    disposed(b.node().map(JsValue::from));
    disposed(b.tab_link().map(JsValue::from));
    disposed(b.expires_at("k").map(JsValue::from));
    disposed(b.take_startup_errors().map(JsValue::from));
    disposed(b.apply_peer("k".into(), Some("1".into()), 0.0, 1.0, "n".into(), f64::NAN).map(JsValue::from));
    disposed(b.apply_peer_clear(1.0, "n".into()).map(JsValue::from));

    a.set("k", "1".into(), 0.0).unwrap();
    flush_ok(&a);
    a.clear().unwrap();
    flush_ok(&a);
    let tab = web_sys::BroadcastChannel::new(p).unwrap();
    tab.post_message(&JsValue::from_str("hostile")).unwrap();
    assert!(wait_until(|| rc.saw("k") && !rc.errors().is_empty(), 2000.0).await, "control instance heard nothing");
    sleep(120).await; // past B's TTL too
    assert_eq!(rb.len(), 0, "a disposed instance was notified: {:?}", rb.calls());
    // The others keep working.
    assert_eq!(control.get("k").unwrap(), None);
    tab.close();
    a.dispose();
    control.dispose();
    clean(p);
    page_errors.assert_none();
}

// ---- 10. tab link: BroadcastChannel, and the storage-event fallback ------------------------------

#[wasm_bindgen_test]
fn storage_event_fallback_applies_other_tabs_records_and_clears() {
    let page_errors = PageErrors::trap();
    let p = "wt_sevent_";
    clean(p);
    let rx = Recorder::new();
    assert!(hide_broadcast_channel(), "could not hide BroadcastChannel");
    let x = open(&local_js(), p, "page-x", &rx);
    restore_broadcast_channel();
    assert_eq!(x.tab_link().unwrap(), "storage-event");

    let w = open(&local_js(), p, "page-w", &Recorder::new());
    assert_eq!(w.tab_link().unwrap(), "broadcast-channel");
    w.set("k", v("from w"), 0.0).unwrap();
    flush_ok(&w);
    let key = format!("{p}k");
    let record = local_get(&key).unwrap();

    // Another tab's write, as the browser reports it: dispatched synchronously.
    dispatch_storage_event(&key, Some(record.clone()), &local_js());
    assert_eq!(x.get("k").unwrap(), Some(v("from w")));
    assert_eq!(rx.count("k"), 1);
    // The same write again changes nothing.
    dispatch_storage_event(&key, Some(record.clone()), &local_js());
    assert_eq!(rx.count("k"), 1);

    // Events of another storage area, of keys outside the prefix, and removals are not writes.
    let session: JsValue = web_sys::window().unwrap().session_storage().unwrap().unwrap().into();
    let other = value_record(p, now() + 5000, "n", 0, "2");
    dispatch_storage_event(&key, Some(other.clone()), &session);
    dispatch_storage_event("unrelated_k", Some(other), &local_js());
    dispatch_storage_event(&key, None, &local_js());
    assert_eq!(rx.len(), 1);
    assert_eq!(x.get("k").unwrap(), Some(v("from w")));

    // A corrupt record is reported, not applied.
    dispatch_storage_event(&key, Some("garbage".into()), &local_js());
    let errors = rx.errors();
    assert_eq!(errors.iter().map(err_type).collect::<Vec<_>>(), ["STORAGE_CORRUPT"]);
    assert_eq!(x.get("k").unwrap(), Some(v("from w")));

    // A clear is read from the epoch record.
    w.clear().unwrap();
    flush_ok(&w);
    let meta = local_get(&meta_key(p)).unwrap();
    dispatch_storage_event(&meta_key(p), Some(meta), &local_js());
    assert_eq!(x.get("k").unwrap(), None);
    assert_eq!(rx.count("k"), 2);

    // X's own writes still persist (no channel to post on, and no error for it).
    x.set("own", "1".into(), 0.0).unwrap();
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

// ---- more: retention, real quota, listeners, coalescing ------------------------------------------

#[wasm_bindgen_test]
fn dead_records_past_retention_are_dropped_at_open_and_recent_ones_kept() {
    let p = "wt_retain_";
    clean(p);
    let day = 24 * 60 * 60 * 1000;
    let old = now() - day - 60_000;
    let recent = now() - 60_000;
    let tag = prefix_tag(p);
    local_set(&format!("{p}old_tomb"), &format!(r#"{{"t":{old},"n":"x","p":"{tag}","d":1}}"#));
    local_set(&format!("{p}old_expired"), &value_record(p, old - 1000, "x", 1000, "1"));
    local_set(&format!("{p}recent_tomb"), &format!(r#"{{"t":{recent},"n":"x","p":"{tag}","d":1}}"#));
    local_set(&format!("{p}live"), &value_record(p, old, "x", 0, "1"));
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    assert_eq!(array(&a.take_startup_errors().unwrap()).len(), 0);
    assert_eq!(
        local_keys(p),
        [format!("{p}live"), format!("{p}recent_tomb")],
        "tombstones and expired values older than the retention are housekept; newer ones still guard"
    );
    assert_eq!(a.get("live").unwrap().as_deref(), Some("1"));
    // The recent tombstone still orders writes: an older write arriving now loses.
    assert!(!a.apply_peer("recent_tomb".into(), Some("2".into()), 0.0, (recent - 1) as f64, "y".into(), f64::NAN).unwrap());
    assert_eq!(a.get("recent_tomb").unwrap(), None);
    a.dispose();
    clean(p);
}

#[wasm_bindgen_test]
fn real_local_storage_quota_is_reported_as_quota_exceeded() {
    let p = "wt_realquota_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    a.set("small", "1".into(), 0.0).unwrap();
    flush_ok(&a);
    // Chromium allows about 5 MiB per origin: 6 million characters never fit.
    let huge = big(6_000_000);
    a.set("huge", huge.clone(), 0.0).unwrap();
    let errors = array(&a.flush().unwrap());
    assert_eq!(errors.len(), 1, "{:?}", describe(&errors));
    assert_eq!(err_type(&errors[0]), "QUOTA_EXCEEDED", "{:?}", describe(&errors));
    assert_eq!(err_key(&errors[0]).as_deref(), Some("huge"));
    assert!(err_retryable(&errors[0]));
    assert_eq!(a.get("huge").unwrap().map(|s| s.len()), Some(huge.len()));
    assert_eq!(local_get(&format!("{p}huge")), None);
    assert!(local_get(&format!("{p}small")).is_some(), "an entry evicted for nothing is put back");
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
    for i in 0..20 {
        a.set(&format!("k{}", i % 5), i.to_string(), 0.0).unwrap();
    }
    flush_ok(&a);
    assert!(wait_until(|| rb.len() > 0, 2000.0).await);
    sleep(30).await;
    let calls = rb.calls();
    assert_eq!(calls.len(), 1, "a burst of writes is one tab message: {calls:?}");
    let mut keys = calls[0].keys.clone();
    keys.sort();
    assert_eq!(keys, ["k0", "k1", "k2", "k3", "k4"]);
    assert_eq!(b.get("k4").unwrap().as_deref(), Some("19"), "the last write of each key wins");
    a.dispose();
    b.dispose();
    clean(p);
}

#[wasm_bindgen_test]
async fn a_throwing_listener_does_not_break_the_cache() {
    let page_errors = PageErrors::trap();
    let p = "wt_throwlistener_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    let thrower = Function::new_with_args("keys, errors", "throw new Error('listener failed')");
    let b = CacheCore::new(local_js(), p.into(), "page-b".into(), thrower, None).expect("opens");
    let rc = Recorder::new();
    let control = open(&local_js(), p, "page-c", &rc);
    a.set("k", "1".into(), 0.05).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| rc.count("k") >= 2, 2000.0).await, "control never saw the write and its expiry");
    assert_eq!(b.get("k").unwrap(), None);
    a.set("k", "2".into(), 0.0).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| b.get("k").unwrap().as_deref() == Some("2"), 2000.0).await);
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
    clean(p);
    let outcome: Rc<RefCell<Vec<String>>> = Rc::default();
    let mut cores = Vec::new();
    // One instance disposes itself on a tab message, another (under its own prefix, so it hears
    // no tab message) on its expiry timer.
    let p_timer = "wt_disposelistener_timer_";
    clean(p_timer);
    for (prefix, page) in [(p, "page-msg"), (p_timer, "page-timer")] {
        let slot: Slot = Rc::default();
        let rec = {
            let (slot, outcome) = (slot.clone(), outcome.clone());
            Recorder::with_hook(move |keys| {
                if let Some(core) = slot.borrow_mut().take() {
                    core.dispose();
                    let after = core.get("x").map_err(|e| err_type(&e));
                    outcome.borrow_mut().push(format!("{keys:?}:{after:?}"));
                }
            })
        };
        let core = Rc::new(open(&local_js(), prefix, page, &rec));
        *slot.borrow_mut() = Some(core.clone());
        cores.push(core);
    }
    cores[1].set("t", "1".into(), 0.05).unwrap(); // page-timer's own write, so only its timer fires
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    a.set("m", "1".into(), 0.0).unwrap();
    flush_ok(&a);
    assert!(wait_until(|| outcome.borrow().len() == 2, 2000.0).await, "{:?}", outcome.borrow());
    let mut got = outcome.borrow().clone();
    got.sort();
    assert_eq!(got, [r#"["m"]:Err("DISPOSED")"#, r#"["t"]:Err("DISPOSED")"#]);
    // The page still works: a new instance opens and writes.
    a.set("after", "1".into(), 0.0).unwrap();
    flush_ok(&a);
    sleep(20).await;
    a.dispose();
    clean(p);
    clean(p_timer);
    page_errors.assert_none();
}

#[wasm_bindgen_test]

async fn opening_over_already_expired_records_notifies_nothing() {
    let p = "wt_stale_expiry_";
    clean(p);
    local_set(&format!("{p}old"), &value_record(p, now() - 60_000, "x", 1000, "1"));
    let rec = Recorder::new();
    let a = open(&local_js(), p, "page-a", &rec);
    sleep(50).await;
    assert_eq!(a.get("old").unwrap(), None);
    assert_eq!(rec.len(), 0, "notified of a key that was never visible: {:?}", rec.calls());
    a.dispose();
    clean(p);
}

#[wasm_bindgen_test]

fn a_tiny_positive_ttl_does_not_mean_forever() {
    let p = "wt_tinyttl_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    a.set("k", "1".into(), 0.0004).unwrap();
    assert_ne!(a.expires_at("k").unwrap(), 0.0, "a positive TTL became 'never expires'");
    a.dispose();
    clean(p);
}

#[wasm_bindgen_test]

fn apply_peer_refuses_invalid_keys_and_ttls() {
    let p = "wt_peerkey_";
    clean(p);
    let a = open(&local_js(), p, "page-a", &Recorder::new());
    for key in ["", "a\u{0}meta"] {
        match a.apply_peer(key.into(), Some("1".into()), 0.0, now() as f64, "peer".into(), f64::NAN) {
            Err(e) => assert!(["INVALID_KEY", "PROTOCOL"].contains(&err_type(&e).as_str())),
            Ok(changed) => assert!(!changed, "a peer write to the invalid key {key:?} was applied"),
        }
        assert_eq!(a.get(key).unwrap(), None);
    }
    for ttl_secs in [f64::NAN, -5.0, f64::INFINITY, 1e300] {
        let result = a.apply_peer("k".into(), Some("1".into()), ttl_secs, now() as f64, "peer".into(), f64::NAN);
        assert!(result.is_err(), "a peer write with ttl {ttl_secs} s was accepted (expiresAt {:?})", a.expires_at("k"));
    }
    a.dispose();
    clean(p);
}
