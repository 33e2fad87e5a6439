//! The browser client of `mfe-shared-cache`: the core's [`Client`] state machine wired to the
//! browser by mechanical adapters — Web Storage, BroadcastChannel and the `storage` event, fetch
//! (gloo-net) for requests and the event stream, Web Locks, one timer (gloo-timers), and the
//! page's online/offline/pagehide events. Every rule is the core's; this crate only converts.
//! The public JavaScript API (`BackendSyncedCacheService`) is the thin shim in `pkg-template/`,
//! which drives the exported [`CacheCore`].
#![deny(missing_docs)]

mod driver;
mod errors;
mod fetch;
mod locks;
mod options;
mod page;
mod storage;
mod tabs;
mod timer;

use std::rc::Rc;

use js_sys::Function;
use mfe_shared_cache_core::client::{node_id, BackendConfig, Client, ClientConfig, LoadOptions, LoaderOutcome, Status};
use mfe_shared_cache_core::{parse_ttl, ttl_ms_from_secs, validate_key, Backoff, CacheError, Reach, SyncPolicy, ThrownError};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::driver::{Driver, Inner};
use crate::errors::{to_js, JsError};
use crate::fetch::Http;
use crate::options::Fields;
use crate::page::PageEvents;
pub use crate::storage::WebStorage;
use crate::tabs::TabLink;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** The options a `CacheCore` opens with (the shim has checked them). */
export interface CoreOptions {
  prefix: string;
  app?: string | null;
  /** Shared by every instance on the page. */
  page: string;
  backend?: { url: string; syncInterval: number; retryDelay: number; maxRetries: number; requestTimeout: number; maxBatchBytes: number; realtime: boolean } | null;
}
/** An error as the core reports it. */
export interface CoreError { type: string; message: string; retryable: boolean; key?: string }
/** What a `CacheCore` tells its shim after an input. */
export interface CoreNews {
  changed?: string[];
  errors?: CoreError[];
  status?: boolean;
  peers?: string[];
  run?: number[];
  settled?: { id: number; json?: string; error?: CoreError }[];
  logs?: { level: 'debug' | 'info' | 'warn'; message: string; key: string; attempt?: number; delay?: number; duration?: number; error?: string }[];
}
/** `syncStatus`. */
export interface CoreStatus {
  enabled: boolean; online: boolean; syncing: boolean; leader: boolean; pending: number; failures: number;
  lastError: string | null; lastSyncedAt: number | null; retryAt: number | null;
  realtime: 'off' | 'follower' | 'connecting' | 'open' | 'retrying' | 'unsupported';
  backend: 'off' | 'on' | 'absent';
}
/** One entry, for dev tools (times on the device's clock). */
export interface CoreEntry { key: string; json: string; expiresAt: number | null; writtenAt: number; writer: string; pending: boolean }
/** `getOrFetch`'s options the core decides by. */
export interface CoreLoadOptions {
  ttl: number; graceTime: number; refresh: boolean; sync: boolean;
  retry: { maxRetries: number; initialDelay: number; maxDelay: number; backoffFactor: number };
}
/** How a loader's attempt ended. */
export type CoreLoaderOutcome = { value: string } | { thrown: unknown } | { invalid: CoreError };
"#;

/// `CoreOptions`, read.
fn read_config(options: &JsValue, seed: u64) -> Result<(ClientConfig, Option<String>), CacheError> {
    let o = Fields::of(options, "options")?;
    let app = o.optional_string("app")?;
    let backend = match o.object("backend")? {
        Some(b) => {
            let b = Fields::of(&b, "options.backend")?;
            Some(BackendConfig {
                policy: SyncPolicy {
                    sync_interval_ms: b.ms("syncInterval", 1)?,
                    retry_delay_ms: b.ms("retryDelay", 1)?,
                    max_retries: u32::try_from(b.ms("maxRetries", 0)?).unwrap_or(u32::MAX),
                },
                request_timeout_ms: b.ms("requestTimeout", 1)?,
                max_batch_bytes: usize::try_from(b.ms("maxBatchBytes", 1)?).unwrap_or(usize::MAX),
                realtime: b.boolean("realtime")?,
                url: b.string("url")?,
            })
        }
        None => None,
    };
    let config = ClientConfig {
        prefix: o.string("prefix")?,
        node: node_id(app.as_deref(), seed)?,
        page: o.string("page")?,
        web_locks: locks::lock_manager().is_some(),
        backend,
        seed,
    };
    let url = config.backend.as_ref().map(|b| b.url.clone());
    Ok((config, url))
}

/// Whom a write reaches: `sync` (the API's option) sends it to the backend too.
fn reach(sync: bool) -> Reach {
    if sync {
        Reach::Everyone
    } else {
        Reach::Browser
    }
}

/// `CoreLoadOptions`, read.
fn read_load_options(options: &JsValue) -> Result<LoadOptions, CacheError> {
    let o = Fields::of(options, "load options")?;
    let retry = o.object("retry")?.ok_or_else(|| CacheError::InvalidOption { reason: "load options.retry must be an object".into() })?;
    let r = Fields::of(&retry, "retry")?;
    Ok(LoadOptions {
        ttl_ms: ttl_ms_from_secs(o.number("ttl")?)?,
        grace_ms: o.ms("graceTime", 0)?,
        refresh: o.boolean("refresh")?,
        retry: Backoff { first_ms: r.ms("initialDelay", 0)?, factor: r.number("backoffFactor")?.max(1.0), max_ms: r.ms("maxDelay", 0)?, jitter: false },
        max_retries: u32::try_from(r.ms("maxRetries", 0)?).unwrap_or(u32::MAX),
        reach: reach(o.boolean("sync")?),
    })
}

/// `CoreLoaderOutcome`, read.
fn read_outcome(outcome: &JsValue) -> Result<LoaderOutcome, CacheError> {
    let o = Fields::of(outcome, "loader outcome")?;
    if let Some(json) = o.optional_string("value")? {
        return Ok(LoaderOutcome::Value(json));
    }
    if js_sys::Reflect::has(outcome, &"thrown".into()).unwrap_or(false) {
        let thrown = o.get("thrown").unwrap_or(JsValue::UNDEFINED);
        return Ok(loader_failure(&thrown));
    }
    let invalid = o.object("invalid")?.ok_or_else(|| CacheError::InvalidOption { reason: "a loader outcome is a value, thrown or invalid".into() })?;
    let i = Fields::of(&invalid, "loader outcome.invalid")?;
    let message = i.string("message")?;
    Ok(LoaderOutcome::Invalid(if i.string("type")? == "INVALID_VALUE" {
        CacheError::InvalidValue { key: String::new(), reason: message }
    } else {
        CacheError::Internal { message }
    }))
}

/// What a loader threw, as the core classifies it (retry or not).
fn loader_failure(thrown: &JsValue) -> LoaderOutcome {
    let field = |of: &JsValue, name: &str| js_sys::Reflect::get(of, &JsValue::from_str(name)).ok().filter(|v| !v.is_undefined() && !v.is_null());
    let text = |of: &JsValue, name: &str| field(of, name).and_then(|v| v.as_string());
    let (cause, response) = (field(thrown, "cause"), field(thrown, "response"));
    let code = text(thrown, "code");
    let cause_code = cause.as_ref().and_then(|c| text(c, "code"));
    let name = text(thrown, "name");
    let message = errors::js_error_message(thrown);
    let status = field(thrown, "status").or_else(|| response.as_ref().and_then(|r| field(r, "status")));
    let failure = ThrownError {
        retryable: field(thrown, "retryable").and_then(|v| v.as_bool()),
        codes: [code.as_deref(), cause_code.as_deref()],
        status: status.and_then(|s| s.as_f64()),
        name: name.as_deref(),
        message: &message,
    };
    LoaderOutcome::Failed { retryable: failure.is_retryable(), message }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusJs {
    enabled: bool,
    online: bool,
    syncing: bool,
    leader: bool,
    pending: usize,
    failures: u32,
    last_error: Option<String>,
    last_synced_at: Option<u64>,
    retry_at: Option<u64>,
    realtime: &'static str,
    backend: &'static str,
}

impl From<Status> for StatusJs {
    fn from(s: Status) -> Self {
        let state = s.state;
        StatusJs {
            enabled: s.enabled,
            online: state.as_ref().is_some_and(|st| st.online),
            syncing: state.as_ref().is_some_and(|st| st.syncing),
            leader: state.as_ref().is_some_and(|st| st.leader),
            pending: s.pending,
            failures: state.as_ref().map_or(0, |st| st.failures),
            last_error: state.as_ref().and_then(|st| st.last_error.as_ref()).map(|e| format!("{}: {e}", e.kind().as_str())),
            last_synced_at: state.as_ref().and_then(|st| st.last_synced_at),
            retry_at: state.as_ref().and_then(|st| st.retry_at),
            realtime: state.as_ref().map_or("off", |st| st.realtime.as_str()),
            backend: match &state {
                None => "off",
                Some(st) if st.absent => "absent",
                Some(_) => "on",
            },
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryJs {
    key: String,
    json: String,
    expires_at: Option<u64>,
    written_at: u64,
    writer: String,
    pending: bool,
}

/// What the API returns: `None` is `null` there (`syncStatus.lastError`, `expiresAt`), as documented.
fn to_value<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let serializer = serde_wasm_bindgen::Serializer::new().serialize_missing_as_null(true);
    value.serialize(&serializer).map_err(|e| to_js(&CacheError::Internal { message: e.to_string() }))
}

/// A random `u64` (the seed of the node id and of retry jitter); `Math.random` is enough: these
/// only have to differ between instances, they guard nothing.
fn random_seed() -> u64 {
    let high = (js_sys::Math::random() * (1u64 << 32) as f64) as u64;
    let low = (js_sys::Math::random() * (1u64 << 32) as f64) as u64;
    (high << 32) | low
}

#[wasm_bindgen(module = "/src/adapters.js")]
extern "C" {
    /// Fills `into` from `crypto.getRandomValues` (`Math.random` where there is none).
    #[wasm_bindgen(js_name = fillRandom)]
    fn fill_random(into: &mut [u8]);
}

/// The secret the core's hash maps are keyed with: keys chosen elsewhere (another user's, through
/// the backend) must not be able to collide on purpose, so it comes from the secure source.
fn secret_seed() -> u64 {
    let mut bytes = [0u8; 8];
    fill_random(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// One cache instance (internal: the shim's `BackendSyncedCacheService` wraps it).
#[wasm_bindgen]
pub struct CacheCore {
    driver: Rc<Driver>,
}

#[wasm_bindgen]
impl CacheCore {
    /// Opens the cache over `storage` (anything with the Web Storage interface). `headers` is
    /// the backend's `headers` option (an object, or a function returning one or a promise of
    /// one); `notify` receives what the shim must hear (`CoreNews`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "CoreOptions")] options: JsValue,
        storage: JsValue,
        headers: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(news: CoreNews) => void")] notify: Function,
    ) -> Result<CacheCore, JsValue> {
        mfe_shared_cache_core::seed_hashes(secret_seed);
        let (config, url) = read_config(&options, random_seed()).map_err(|e| to_js(&e))?;
        let prefix = config.prefix.clone();
        let synced = url.is_some();
        let storage_js = storage.clone();
        let now = driver::now_ms();
        let mut client = Client::open(WebStorage::new(storage), config, now);
        if synced && !PageEvents::online() {
            client.set_online(false, now);
        }
        let driver = Driver::new(Inner::new(client, Http::new(url.unwrap_or_default(), headers), notify));
        let weak = Rc::downgrade(&driver);
        driver.call(|inner, _| {
            inner.tabs = Some(TabLink::open(&prefix, storage_js, &weak));
            inner.page = if synced { PageEvents::listen(&weak) } else { None };
            Ok(())
        })?;
        Ok(CacheCore { driver })
    }

    /// Sets `key` to `json` (from `JSON.stringify`, checked by the shim) for `ttl` seconds; for
    /// this browser only unless `sync`. With `peers` (the page has other instances), returns
    /// their news.
    pub fn set(&self, key: &str, json: String, ttl: f64, sync: bool, peers: bool) -> Result<Option<String>, JsValue> {
        self.driver.call(|inner, now| inner.client.set_for(key, json, ttl_ms_from_secs(ttl)?, reach(sync), now, peers))
    }

    /// Removes `key`; for this browser only unless `sync`. With `peers`, returns the news for
    /// the page's other instances.
    pub fn remove(&self, key: &str, sync: bool, peers: bool) -> Result<Option<String>, JsValue> {
        self.driver.call(|inner, now| inner.client.remove_for(key, reach(sync), now, peers))
    }

    /// Clears the cache; returns `[news, keysThatWereVisible]`.
    #[wasm_bindgen(unchecked_return_type = "[news: string, keys: string[]]")]
    pub fn clear(&self) -> Result<JsValue, JsValue> {
        let (news, keys) = self.driver.call(|inner, now| Ok(inner.client.clear(now)))?;
        to_value(&(news, keys))
    }

    /// Removes every visible key matching `pattern`, for this browser only unless `sync`;
    /// returns `[news | undefined, keys]`.
    #[wasm_bindgen(unchecked_return_type = "[news: string | undefined, keys: string[]]")]
    pub fn invalidate(&self, pattern: &str, sync: bool) -> Result<JsValue, JsValue> {
        let (news, keys) = self.driver.call(|inner, now| inner.client.invalidate_for(pattern, reach(sync), now))?;
        // Not through `to_value`, which makes a missing value null: the shim hands anything but
        // undefined to the page's other instances as news.
        let news = news.map_or(JsValue::UNDEFINED, JsValue::from);
        Ok(js_sys::Array::of2(&news, &to_value(&keys)?).into())
    }

    /// `[json, expiresAt]` of `key`'s value (`expiresAt` on the device's clock, 0: never), or
    /// undefined when it has none now.
    #[wasm_bindgen(unchecked_return_type = "[json: string, expiresAt: number] | undefined")]
    pub fn read(&self, key: &str) -> Result<JsValue, JsValue> {
        self.driver.call(|inner, now| {
            validate_key(key)?;
            Ok(match inner.client.get(key, now) {
                Some((json, expires)) => {
                    let pair = js_sys::Array::of2(&JsValue::from_str(json), &(expires.unwrap_or(0) as f64).into());
                    pair.into()
                }
                None => JsValue::UNDEFINED,
            })
        })
    }

    /// News from another instance on this page (the page hub).
    pub fn peer(&self, news: &str) -> Result<(), JsValue> {
        self.driver.call(|inner, now| {
            inner.client.peer_message(news, now);
            Ok(())
        })
    }

    /// Persists the writes made since the last flush, tells the other tabs and lets sync start;
    /// returns the failures (each with its key, where there is one).
    #[wasm_bindgen(unchecked_return_type = "CoreError[]")]
    pub fn flush(&self) -> Result<JsValue, JsValue> {
        let errors = self.driver.call(|inner, now| Ok(inner.client.flush(now)))?;
        to_value(&errors.iter().map(JsError::from).collect::<Vec<_>>())
    }

    /// Reads what the API and dev tools show: `status`, `keys` (`arg`: a pattern), `stats`,
    /// `entries`, `stale` (`arg`: a key), `expiry` (`arg`: a key; null without a value, 0 never),
    /// `written` (`arg`: a key; `[at, writer]`, null without a value), `tabLink`, `node`,
    /// `startupErrors`.
    #[wasm_bindgen(unchecked_return_type = "any")]
    pub fn inspect(&self, what: &str, arg: Option<String>) -> Result<JsValue, JsValue> {
        let driver = &self.driver;
        if let (Some(key), "stale" | "expiry" | "written") = (arg.as_deref(), what) {
            validate_key(key).map_err(|e| to_js(&e))?;
        }
        driver.call(|inner, now| {
            let client = &mut inner.client;
            let value = match what {
                "status" => to_value(&StatusJs::from(client.status())),
                "keys" => to_value(&client.keys(arg.as_deref(), now)?),
                "stats" => {
                    let stats = client.stats(now);
                    to_value(&(stats.active, stats.expired, stats.pending))
                }
                "entries" => to_value(
                    &client
                        .entries(now)
                        .into_iter()
                        .map(|e| EntryJs {
                            key: e.key,
                            json: e.json,
                            expires_at: e.expires_at,
                            written_at: e.written_at,
                            writer: e.writer,
                            pending: e.pending,
                        })
                        .collect::<Vec<_>>(),
                ),
                "stale" => to_value(&arg.as_deref().and_then(|key| client.stale(key, now))),
                "expiry" => to_value(&arg.as_deref().and_then(|key| client.expiry(key, now)).map(|at| at.unwrap_or(0))),
                "written" => to_value(&arg.as_deref().and_then(|key| client.written(key))),
                "tabLink" => to_value(&inner.tabs.as_ref().map_or("none", TabLink::kind)),
                "node" => to_value(&client.node()),
                "startupErrors" => to_value(&client.take_startup_errors().iter().map(JsError::from).collect::<Vec<_>>()),
                other => return Err(CacheError::InvalidArgument { reason: format!("nothing to inspect as {}", mfe_shared_cache_core::json::Quoted(other)) }),
            };
            value.map_err(|_| CacheError::Internal { message: format!("could not convert {what}") })
        })
    }

    /// Starts a `getOrFetch` load of `key` (a miss, or `refresh`); returns its id. The loader
    /// runs when the news says so (`run`), and the load ends in `settled`.
    pub fn load(&self, key: &str, #[wasm_bindgen(unchecked_param_type = "CoreLoadOptions")] options: JsValue) -> Result<u32, JsValue> {
        let options = read_load_options(&options).map_err(|e| to_js(&e))?;
        self.driver.call(|inner, now| inner.client.load(key, options, now))
    }

    /// The loader of load `id` finished an attempt; returns the news for the page's other
    /// instances when the value was stored.
    pub fn loaded(&self, id: u32, #[wasm_bindgen(unchecked_param_type = "CoreLoaderOutcome")] outcome: JsValue) -> Result<Option<String>, JsValue> {
        let outcome = read_outcome(&outcome).map_err(|e| to_js(&e))?;
        self.driver.call(|inner, now| Ok(inner.client.loader_done(id, outcome, now)))
    }

    /// Persists what is pending, then lets go of the channel, requests, locks, listeners and the
    /// timer. Later calls fail with `DISPOSED`.
    pub fn dispose(&self) {
        self.driver.dispose();
    }
}

/// Checks a key by the core's rule (a non-empty string of at most 1024 UTF-8 bytes without
/// U+0000), so the shim refuses exactly what the core refuses.
#[wasm_bindgen(js_name = checkKey)]
pub fn check_key(key: &JsValue) -> Result<(), JsValue> {
    let Some(key) = key.as_string() else {
        let message = format!("key must be a non-empty string, got {}", key.js_typeof().as_string().unwrap_or_default());
        return Err(to_js(&CacheError::InvalidKey { key: String::new(), reason: message }));
    };
    validate_key(&key).map_err(|e| to_js(&e))
}

/// A TTL in seconds from a number of seconds or a duration such as `"5m"`, `"1h 30m"`, `"2 days"`;
/// `what` names it in the error (`INVALID_TTL`).
#[wasm_bindgen(js_name = ttlSeconds)]
pub fn ttl_seconds(#[wasm_bindgen(unchecked_param_type = "number | string")] ttl: &JsValue, what: &str) -> Result<f64, JsValue> {
    parse_ttl(ttl.as_f64(), ttl.as_string().as_deref(), what).map_err(|e| to_js(&e))
}

/// Smaller in the wasm than the default dlmalloc, and faster (the package's size is a goal).
#[cfg(all(not(target_feature = "atomics"), target_family = "wasm"))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
