// mfe-shared-cache: the public JavaScript API over the wasm core.
//
// The core (Rust → wasm) decides what the cache holds: the write order, the merge, TTL,
// persistence, other tabs. This shim keeps what must be cheap or must talk to other copies of
// the package: a read cache of parsed values (so `get` of an unchanged entry returns the same
// object and costs a Map lookup), subscribers, the page hub shared by separately bundled copies,
// typed errors and promises.
import initWasm, { CacheCore, checkKey as coreCheckKey } from './core.js';
import { CacheError, CacheErrorType, describe, toCacheError } from './errors.js';
import { checkRetry, loadWithRetry } from './load.js';
import { checkLogOptions, makeLog } from './log.js';
import { MemoryStorage } from './memory-storage.js';
import { CacheScope } from './scope.js';
import { SyncDriver } from './sync.js';
import { ttlSeconds } from './ttl.js';
import { isWellFormed } from './unicode.js';

export { CacheError, CacheErrorType, CacheScope, MemoryStorage };

await initWasm({ module_or_path: await wasmSource() });

async function wasmSource() {
  const url = new URL('./core_bg.wasm', import.meta.url);
  if (url.protocol !== 'file:') return url;
  // Node (SSR, tests): fetch() cannot read file: URLs. The specifier is hidden from bundlers.
  const fs = 'node:fs/promises';
  const { readFile } = await import(/* webpackIgnore: true */ /* @vite-ignore */ fs);
  return readFile(url);
}

const DEFAULTS = Object.freeze({
  prefix: 'shared_mfe_cache_',
  defaultTTL: 3600,
  backendUrl: '/api/cache',
  syncInterval: 30000,
  retryDelay: 5000,
  maxRetries: 3,
  requestTimeout: 10000,
  app: null,
  logLevel: 'warn',
  realtime: 'auto',
  maxBatchBytes: 512 * 1024,
});

/** How long a getOrFetch waits for another tab's load of the same key before loading itself. */
const DEFAULT_GRACE_MS = 10000;
/**
 * A tab that loaded a key says so for this long (a shared Web Lock named after the write), and
 * another tab that finds the marker waits up to ARRIVAL_WAIT_MS for the write to reach it: in
 * Chromium, localStorage and BroadcastChannel reach other tabs asynchronously, so "the lock is
 * free" does not mean "its holder's write is visible here".
 */
const JUST_LOADED_MS = 3000;
const ARRIVAL_WAIT_MS = 1000;

/** Reads an expired value still held (stale-while-revalidate); shared by every copy on the page. */
export const READ_STALE = Symbol.for('mfe-shared-cache.readStale.v1');

// ---- the page hub -------------------------------------------------------------------------
// Copies of this package bundled separately into different MFEs each have their own module and
// wasm instance. They meet here, on a global registry whose shape is a frozen protocol (v1):
// a group per prefix holds peers `{ storage, deliver(message) }`; messages are
// `{ kind: 'set', key, json, ttl (seconds), ts, node, at? } | { kind: 'remove', key, ts, node } |
// { kind: 'clear', ts, node } | { kind: 'acked', acked }` (the backend acknowledged a batch; the
// format is the core's) `| { kind: 'clock', offset }` (how far the backend's clock is ahead of
// this device's, in ms). `at` is when a set was written where that differs from `ts`. Delivery is
// synchronous, so a write in one MFE is visible in every other one on the page before `set`
// returns. Kinds a copy does not know are ignored: newer copies may add some. Every field is
// checked on arrival: another copy may be older, newer or broken.
const HUB = Symbol.for('mfe-shared-cache.hub.v1');

function pageHub() {
  let hub = globalThis[HUB];
  if (!hub) {
    hub = { pageId: randomId(), groups: new Map() };
    Object.defineProperty(globalThis, HUB, { value: hub, configurable: true });
  }
  return hub;
}

function randomId() {
  const bytes = new Uint8Array(9);
  globalThis.crypto?.getRandomValues ? crypto.getRandomValues(bytes) : bytes.forEach((_, i) => (bytes[i] = Math.random() * 256));
  return Array.from(bytes, (b) => b.toString(36).padStart(2, '0')).join('');
}

// ---- input checks ---------------------------------------------------------------------------
function checkKey(key) {
  if (typeof key === 'string' && !isWellFormed(key)) {
    throw new CacheError('INVALID_KEY', `key ${describe(key)} contains a lone surrogate (U+D800 to U+DFFF), which has no UTF-8 form`, { key });
  }
  try {
    coreCheckKey(key);
  } catch (e) {
    throw toCacheError(e);
  }
}

function checkTtl(ttl, fallback) {
  if (ttl === undefined || ttl === null) return fallback;
  return ttlSeconds(ttl);
}

// JSON.stringify silently drops functions and symbols, turns NaN into null and Maps into {}:
// each of those would store something other than what the caller holds, so refuse them. The
// plain stringify runs first (V8's fast path; it throws on cycles and BigInt), then a walk
// looks for what it would have dropped — much cheaper than a replacer function — and for
// nesting deeper than every other tab and the backend accept (the core's limit).
const MAX_DEPTH = 512;
function toJson(key, value) {
  let json;
  try {
    json = JSON.stringify(value);
  } catch (cause) {
    throw new CacheError('INVALID_VALUE', `value for ${describe(key)} is not JSON: ${cause?.message ?? cause}`, { key, cause });
  }
  const problem = json === undefined ? `is ${typeof value === 'undefined' ? 'undefined' : 'a ' + typeof value}` : notJson(value);
  if (problem) throw new CacheError('INVALID_VALUE', `value for ${describe(key)} is not JSON: it ${problem}`, { key });
  return json;
}

function notJson(v, depth = 0) {
  switch (typeof v) {
    case 'number':
      return Number.isFinite(v) ? null : `contains the non-finite number ${v}`;
    case 'function':
    case 'symbol':
      return `contains a ${typeof v}`;
    case 'object': {
      if (v === null || typeof v.toJSON === 'function') return null;
      if (depth >= MAX_DEPTH) return `is nested more than ${MAX_DEPTH} levels deep`;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const p = v[i] === undefined ? null : notJson(v[i], depth + 1);
          if (p) return p;
        }
        return null;
      }
      if (v instanceof Map || v instanceof Set || v instanceof WeakMap || ArrayBuffer.isView(v)) {
        return `contains a ${v.constructor?.name ?? 'non-JSON object'}`;
      }
      for (const k of Object.keys(v)) {
        const p = notJson(v[k], depth + 1);
        if (p) return p;
      }
      return null;
    }
    default:
      return null; // strings, booleans, and undefined properties (JSON drops them, as it should)
  }
}

// The clock `get` compares expiries with is read once per task: a tight loop of reads costs no
// clock calls, and every read within one task (one React render, say) sees the same expiry state.
let taskNow = 0;
const forgetNow = () => {
  taskNow = 0;
};
function now() {
  if (taskNow === 0) {
    taskNow = Date.now();
    queueMicrotask(forgetNow);
  }
  return taskNow;
}

/** Whether a read-cache entry `{ value, exp }` is still valid now. */
const isFresh = (hit) => hit !== undefined && (hit.exp === 0 || hit.exp > now());

function deepFreeze(value) {
  if (value !== null && typeof value === 'object') {
    Object.freeze(value);
    for (const k in value) deepFreeze(value[k]);
  }
  return value;
}

function checkOptions(options) {
  if (options === null || typeof options !== 'object') {
    throw new CacheError('INVALID_OPTION', 'options must be an object');
  }
  const o = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
  const bad = (name, why) => {
    throw new CacheError('INVALID_OPTION', `option ${name} ${why}, got ${describe(o[name])}`);
  };
  if (typeof o.prefix !== 'string' || o.prefix.length === 0 || o.prefix.includes('\0')) bad('prefix', 'must be a non-empty string');
  try {
    o.defaultTTL = ttlSeconds(o.defaultTTL, 'option defaultTTL');
  } catch (e) {
    throw new CacheError('INVALID_OPTION', e.message);
  }
  if (o.app !== null && (typeof o.app !== 'string' || !/^[A-Za-z0-9_.-]{1,32}$/.test(o.app))) bad('app', 'must be 1 to 32 of A-Z a-z 0-9 _ . -');
  checkLogOptions(o);
  if (!(o.backendUrl === null || o.backendUrl === false || typeof o.backendUrl === 'string')) bad('backendUrl', 'must be a string, null or false');
  if (!Number.isInteger(o.maxBatchBytes) || o.maxBatchBytes < 1) bad('maxBatchBytes', 'must be a whole number of bytes >= 1');
  for (const name of ['syncInterval', 'retryDelay', 'requestTimeout']) {
    if (typeof o[name] !== 'number' || !(o[name] > 0) || !Number.isFinite(o[name])) bad(name, 'must be a positive number of ms');
  }
  if (!Number.isInteger(o.maxRetries) || o.maxRetries < 0) bad('maxRetries', 'must be an integer >= 0');
  if (o.realtime !== 'auto' && o.realtime !== 'off') bad('realtime', "must be 'auto' or 'off'");
  if (o.headers !== undefined && o.headers !== null && typeof o.headers !== 'object' && typeof o.headers !== 'function') {
    bad('headers', 'must be an object or a function returning one');
  }
  if (o.storage !== undefined) {
    const s = o.storage;
    if (!s || ['getItem', 'setItem', 'removeItem', 'key'].some((m) => typeof s[m] !== 'function')) {
      bad('storage', 'must implement the Storage interface');
    }
  }
  return o;
}

function defaultStorage(report) {
  try {
    const ls = globalThis.localStorage;
    if (ls) return ls;
  } catch (cause) {
    // Sandboxed iframes and disabled storage throw on access: keep working in memory.
    report(new CacheError('STORAGE_FAILED', `localStorage is not available (${cause?.message ?? cause}); using memory`, { cause }));
  }
  return new MemoryStorage();
}

const NO_LISTENERS = Object.freeze([]);

/**
 * A shared key-value cache for micro-frontends: one state per prefix across every MFE on the
 * page and every tab of the origin, persisted in Storage.
 */
export class BackendSyncedCacheService {
  #core;
  #node;
  #options;
  #storage;
  #reads = new Map(); // key -> { value, exp } (exp 0: never)
  #subscribers = new Map(); // key -> Set<callback>
  #listeners = { error: new Set(), sync: new Set(), change: new Set() };
  #sync = null;
  #lastStatus = '';
  #group;
  #peer;
  #waiters = [];
  #flushQueued = false;
  #disposed = false;
  #log;
  #debugLog = false;
  #hits = 0;
  #misses = 0;
  #stale = new Map(); // key -> { json, value }: READ_STALE answers, stable while unchanged

  constructor(options = {}) {
    const o = checkOptions(options);
    const early = [];
    this.#storage = o.storage ?? defaultStorage((e) => early.push(e));
    this.#options = Object.freeze({
      prefix: o.prefix,
      defaultTTL: o.defaultTTL,
      backendUrl: o.backendUrl || null,
      syncInterval: o.syncInterval,
      retryDelay: o.retryDelay,
      maxRetries: o.maxRetries,
      requestTimeout: o.requestTimeout,
      app: o.app,
      logLevel: o.logLevel,
      realtime: o.realtime,
      maxBatchBytes: o.maxBatchBytes,
    });
    this.#log = makeLog(o.logLevel, o.logger);
    this.#debugLog = o.logLevel === 'debug';
    const hub = pageHub();
    const notify = (keys, errors) => this.#onCoreNews(keys, errors);
    const app = o.app ?? undefined;
    try {
      this.#core = this.#options.backendUrl
        ? CacheCore.openSynced(this.#storage, o.prefix, hub.pageId, notify, o.syncInterval, o.retryDelay, o.maxRetries, app, o.maxBatchBytes)
        : new CacheCore(this.#storage, o.prefix, hub.pageId, notify, app);
    } catch (e) {
      throw toCacheError(e);
    }
    this.#node = this.#core.node();
    for (const e of this.#core.takeStartupErrors()) early.push(toCacheError(e));

    let group = hub.groups.get(o.prefix);
    if (!group) hub.groups.set(o.prefix, (group = new Set()));
    this.#group = group;
    this.#peer = { storage: this.#storage, deliver: (message) => this.#onPeerMessage(message) };
    group.add(this.#peer);

    // Reported after the constructor returns, so listeners attached right after it hear them.
    if (early.length) queueMicrotask(() => early.forEach((e) => this.#emitError(e)));

    if (this.#options.backendUrl) {
      this.#sync = new SyncDriver(
        this.#core,
        { backendUrl: this.#options.backendUrl, prefix: o.prefix, requestTimeout: o.requestTimeout, headers: o.headers, storage: this.#storage, node: this.#node, realtime: o.realtime },
        {
          applied: (keys) => this.#onCoreNews(keys, NO_LISTENERS),
          acked: (acked) => (acked.length > 2 || acked[0] !== -1) && this.#tellPeers({ kind: 'acked', acked }),
          clock: (offset) => this.#tellPeers({ kind: 'clock', offset }),
          error: (e) => this.#emitError(toCacheError(e)),
          status: () => this.#emitStatus(),
        },
      );
      this.#sync.start();
    }
  }

  /**
   * The backend sync status: `{ enabled, online, syncing, leader, pending, failures, lastError,
   * lastSyncedAt, retryAt, realtime }` (`enabled: false` and `pending: 0` without a backend).
   */
  get syncStatus() {
    this.#assertOpen();
    return { ...this.#core.syncState() };
  }

  /** The options in force (defaults filled in). */
  get options() {
    return this.#options;
  }

  /** This instance's writer id (breaks timestamp ties; shown by dev tools). */
  get nodeId() {
    return this.#node;
  }

  /** How this instance reaches other tabs: 'broadcast-channel', 'storage-event' or 'none'. */
  get tabLink() {
    this.#assertOpen();
    return this.#core.tabLink();
  }

  /**
   * Sets `key` to a JSON value for `ttl` seconds (default `defaultTTL`; 0 never expires).
   * Visible to every instance on the page when this returns; resolves once persisted.
   */
  set(key, value, ttl) {
    try {
      this.#assertOpen();
      checkKey(key);
      const ttlSecs = checkTtl(ttl, this.#options.defaultTTL);
      return this.#write(key, toJson(key, value), ttlSecs);
    } catch (e) {
      return Promise.reject(toCacheError(e));
    }
  }

  // A checked write of JSON text: applied, given to the page's other instances, then persisted.
  #write(key, json, ttlSecs) {
    const stamped = this.#core.set(key, json, ttlSecs);
    const message = { kind: 'set', key, json, ttl: ttlSecs, ts: Math.abs(stamped), node: this.#node };
    if (stamped < 0) message.at = this.#core.lastWrittenAt();
    this.#publish(key, message);
    return this.#whenFlushed(key);
  }

  /**
   * The value of `key`, or null when missing or expired. Returns the same (frozen) object for as
   * long as the entry is unchanged.
   */
  get(key) {
    const hit = this.#reads.get(key);
    if (isFresh(hit)) {
      this.#hits++;
      return hit.value;
    }
    const value = this.#load(key);
    if (value === null) this.#misses++;
    else this.#hits++;
    return value;
  }

  /** Whether `key` has a value now (not counted in the hit rate). */
  has(key) {
    if (isFresh(this.#reads.get(key))) return true;
    return this.#load(key) !== null;
  }

  /**
   * The keys that have a value now, sorted; with a pattern (`*` any run of characters, `?` one
   * character, `` escapes), only those matching it.
   */
  keys(pattern) {
    this.#assertOpen();
    if (pattern !== undefined && typeof pattern !== 'string') throw new CacheError('INVALID_ARGUMENT', `pattern must be a string, got ${describe(pattern)}`);
    try {
      return this.#core.keys(pattern).sort();
    } catch (e) {
      throw toCacheError(e);
    }
  }

  /** How many keys have a value now. */
  size() {
    this.#assertOpen();
    return this.#core.stats()[0];
  }

  /** Milliseconds until `key` expires: null when it has no value, Infinity when it never expires. */
  getTimeToExpiry(key) {
    if (!this.has(key)) return null;
    const at = this.#core.expiresAt(key);
    return at === 0 ? Infinity : Math.max(0, at - Date.now());
  }

  /**
   * `{ size, active, expired, hits, misses, hitRate, pending }`: values held (visible and expired),
   * visible ones, expired ones not yet collected, this instance's reads that found a value or not
   * (get, getOrFetch), hits / (hits + misses) (0 before any read), and writes the backend has not
   * acknowledged.
   */
  getStats() {
    this.#assertOpen();
    const [active, expired] = this.#core.stats();
    const reads = this.#hits + this.#misses;
    return {
      size: active + expired,
      active,
      expired,
      hits: this.#hits,
      misses: this.#misses,
      hitRate: reads === 0 ? 0 : this.#hits / reads,
      pending: this.#core.syncState().pending,
    };
  }

  /**
   * Removes every key matching `keyOrPattern` (a key, or a pattern such as `stores:*`) here, in
   * every other instance and tab, and (through the outbox) on the backend; resolves to how many
   * keys it removed, once persisted.
   */
  invalidate(keyOrPattern) {
    try {
      this.#assertOpen();
      if (typeof keyOrPattern !== 'string') throw new CacheError('INVALID_ARGUMENT', `invalidate takes a key or pattern string, got ${describe(keyOrPattern)}`);
      const removed = this.#core.invalidate(keyOrPattern);
      for (let i = 0; i < removed.length; i += 2) {
        this.#publish(removed[i], { kind: 'remove', key: removed[i], ts: removed[i + 1], node: this.#node });
      }
      const count = removed.length / 2;
      this.#log('info', 'invalidated', { key: keyOrPattern, count });
      return this.#whenFlushed(null).then(() => count);
    } catch (e) {
      return Promise.reject(toCacheError(e));
    }
  }

  /**
   * The value of `key`, loading it with `loader()` on a miss: one load at a time per key across
   * every instance on the page and every tab (Web Locks); the others wait for it and read its
   * result from the cache. Options: `ttl` (seconds or "5m"), `staleWhileRevalidate` (serve an
   * expired value at once and refresh in the background), `retry` ({ maxRetries, initialDelay,
   * maxDelay, backoffFactor }), `defaultValue` (resolved, not stored, when loading fails for
   * good), `filter(value)` (transforms what is stored), `graceTime` (ms to wait for another
   * tab's load before loading here, default 10000), `refresh` (load even on a hit).
   */
  getOrFetch(key, loader, options = {}) {
    // The hit path first and lean, without an async frame (a hit is most calls): the options are
    // read in full on a miss.
    const refresh = options?.refresh === true;
    if (!refresh) {
      let hit;
      try {
        hit = this.get(key); // checks the key and whether the cache is open
      } catch (e) {
        return Promise.reject(toCacheError(e));
      }
      if (hit !== null) {
        if (this.#debugLog) this.#log('debug', 'cache hit', { key });
        return Promise.resolve(hit);
      }
    }
    return this.#getOrLoad(key, loader, options);
  }

  async #getOrLoad(key, loader, options) {
    this.#assertOpen();
    checkKey(key);
    if (typeof loader !== 'function') throw new CacheError('INVALID_ARGUMENT', 'loader must be a function returning the value or a promise of it');
    const o = this.#loadOptions(options);
    const startedAt = Date.now();
    if (!o.refresh && o.staleWhileRevalidate) {
      const stale = this[READ_STALE](key);
      if (stale !== null) {
        this.#log('debug', 'serving a stale value while revalidating', { key });
        this.#flight(key, loader, o, startedAt).catch((e) => this.#emitError(toCacheError(e)));
        return stale;
      }
    }
    try {
      const json = await this.#flight(key, loader, o, startedAt);
      return this.get(key) ?? deepFreeze(JSON.parse(json));
    } catch (e) {
      const error = toCacheError(e);
      if (!o.hasDefault) throw error;
      // Resolved with the default, but never silently: 'error' listeners (or the log) hear why.
      this.#emitError(error);
      return o.defaultValue;
    }
  }

  /** Like getOrFetch, but never rejects: failures go to 'error' listeners and resolve to `defaultValue` (default null). */
  async getOrFetchWithFallback(key, loader, options = {}) {
    try {
      return await this.getOrFetch(key, loader, { ...options, defaultValue: options?.defaultValue ?? null });
    } catch (e) {
      this.#emitError(toCacheError(e));
      return options?.defaultValue ?? null;
    }
  }

  /** A view whose keys live under `name:`, so an MFE owns its part of the keyspace. */
  scope(name) {
    this.#assertOpen();
    return new CacheScope(this, name);
  }

  #loadOptions(options) {
    if (options === null || typeof options !== 'object') throw new CacheError('INVALID_OPTION', 'getOrFetch options must be an object');
    const filter = options.filter;
    if (filter !== undefined && typeof filter !== 'function') throw new CacheError('INVALID_OPTION', 'option filter must be a function');
    const graceTime = options.graceTime ?? DEFAULT_GRACE_MS;
    if (typeof graceTime !== 'number' || !(graceTime >= 0) || !Number.isFinite(graceTime)) throw new CacheError('INVALID_OPTION', `option graceTime must be ms >= 0, got ${describe(graceTime)}`);
    return {
      ttl: checkTtl(options.ttl, this.#options.defaultTTL),
      retry: checkRetry(options.retry),
      staleWhileRevalidate: options.staleWhileRevalidate === true,
      hasDefault: Object.hasOwn(options, 'defaultValue'),
      defaultValue: options.defaultValue,
      filter,
      graceTime,
      refresh: options.refresh === true,
    };
  }

  // One load per key at a time on the page (every copy of the package meets in the hub), and
  // across tabs (a Web Lock). Resolves to the JSON text of what was stored.
  #flight(key, loader, o, startedAt) {
    const loads = (pageHub().loads ??= new Map());
    const id = `${this.#options.prefix}\u0000${key}`;
    let flight = loads.get(id);
    if (!flight) {
      flight = this.#loadAcrossTabs(key, loader, o, startedAt).finally(() => loads.delete(id));
      loads.set(id, flight);
    }
    return flight;
  }

  async #loadAcrossTabs(key, loader, o, startedAt) {
    const locks = globalThis.navigator?.locks;
    if (typeof locks?.request !== 'function' || typeof locks.query !== 'function') return this.#loadAndStore(key, loader, o, null);
    // Browsers without AbortSignal.timeout wait for the other tab's load however long it takes.
    const signal = typeof AbortSignal.timeout === 'function' ? AbortSignal.timeout(o.graceTime) : undefined;
    let granted = false;
    const load = async () => this.#loadedMeanwhile(key, o, startedAt) ?? (await this.#arriving(key, o, startedAt, locks)) ?? this.#loadAndStore(key, loader, o, locks);
    try {
      return await locks.request(`mfe-shared-cache:load:${this.#options.prefix}:${key}`, signal ? { signal } : {}, () => {
        granted = true;
        return load();
      });
    } catch (e) {
      if (granted || !signal?.aborted) throw e;
      this.#log('warn', `another tab has been loading for over ${o.graceTime} ms; loading here`, { key });
      return load();
    }
  }

  #loadedMarker(key) {
    return `mfe-shared-cache:loaded:${this.#options.prefix}:${key}:`;
  }

  // Another tab loaded this key moments ago (its marker lock is held) but its write has not
  // reached this tab yet: wait for it rather than load again.
  async #arriving(key, o, startedAt, locks) {
    const marker = this.#loadedMarker(key);
    let stamp = 0;
    try {
      for (const lock of (await locks.query()).held ?? []) {
        if (lock.name?.startsWith(marker)) stamp = Math.max(stamp, Number(lock.name.slice(marker.length)) || 0);
      }
    } catch {
      return null;
    }
    if (stamp === 0 || (o.refresh && stamp < startedAt)) return null;
    const deadline = Date.now() + ARRIVAL_WAIT_MS;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      const json = this.#loadedMeanwhile(key, o, startedAt);
      if (this.#core.writtenAt(key) >= stamp) return json; // null when it was removed since: load
    }
    this.#log('warn', `another tab loaded this key but its write did not arrive within ${ARRIVAL_WAIT_MS} ms; loading here`, { key });
    return null;
  }

  // After waiting for another tab: did it store the value? Storage is written before its lock is
  // released; its message to this tab may still be on the way, so read the record itself.
  #loadedMeanwhile(key, o, startedAt) {
    this.#assertOpen();
    try {
      if (this.#core.reloadKey(key)) this.#onCoreNews([key], NO_LISTENERS);
    } catch (e) {
      this.#emitError(toCacheError(e));
    }
    const json = this.#core.get(key);
    if (json === undefined || (o.refresh && this.#core.writtenAt(key) < startedAt)) return null;
    this.#log('debug', 'loaded by another instance or tab', { key });
    return json;
  }

  async #loadAndStore(key, loader, o, locks) {
    const started = performance.now();
    this.#log('info', 'cache miss, loading', { key });
    const onRetry = (attempt, cause, wait) => this.#log('info', 'retry attempt', { key, attempt, error: String(cause?.message ?? cause), delay: wait });
    let value;
    try {
      value = await loadWithRetry(key, loader, o.retry, onRetry);
    } catch (e) {
      this.#log('warn', e.message, { key, duration: performance.now() - started, error: String(e.cause?.message ?? e.cause) });
      throw e;
    }
    if (o.filter) {
      try {
        value = o.filter(value);
      } catch (cause) {
        throw new CacheError('FETCH_FAILED', `the filter for ${describe(key)} threw: ${cause?.message ?? cause}`, { key, cause });
      }
    }
    const json = toJson(key, value);
    try {
      this.#assertOpen();
      await this.#write(key, json, o.ttl);
    } catch (e) {
      const error = toCacheError(e);
      // Over quota the value still lives in memory, here and on the page: loading succeeded.
      if (error.type !== 'QUOTA_EXCEEDED') {
        throw new CacheError('CACHE_SET_FAILED', `storing the loaded ${describe(key)} failed: ${error.message}`, { key, cause: error, retryable: error.retryable });
      }
    }
    this.#log('info', 'loaded and cached', { key, duration: performance.now() - started });
    if (locks) {
      // Held before the load lock is released, so a tab that gets that lock next sees it.
      const name = this.#loadedMarker(key) + this.#core.writtenAt(key);
      await new Promise((held) => {
        locks
          .request(name, { mode: 'shared' }, () => {
            held();
            return new Promise((release) => setTimeout(release, JUST_LOADED_MS));
          })
          .catch(held);
      });
    }
    return json;
  }

  /** An expired value still held (for stale-while-revalidate), the same object while unchanged. */
  [READ_STALE](key) {
    this.#assertOpen();
    const json = this.#core.getStale(key);
    if (json === undefined) {
      this.#stale.delete(key);
      return null;
    }
    const cached = this.#stale.get(key);
    if (cached?.json === json) return cached.value;
    const value = deepFreeze(JSON.parse(json));
    this.#stale.set(key, { json, value });
    return value;
  }

  #load(key) {
    this.#assertOpen();
    checkKey(key);
    let json;
    try {
      json = this.#core.get(key);
    } catch (e) {
      throw toCacheError(e);
    }
    if (json === undefined) {
      this.#reads.delete(key);
      return null;
    }
    const value = deepFreeze(JSON.parse(json));
    this.#reads.set(key, { value, exp: this.#core.expiresAt(key) });
    return value;
  }

  /** Removes `key` everywhere; an older write arriving later does not bring it back. */
  remove(key) {
    try {
      this.#assertOpen();
      checkKey(key);
      const ts = this.#core.remove(key);
      this.#publish(key, { kind: 'remove', key, ts, node: this.#node });
      return this.#whenFlushed(key);
    } catch (e) {
      return Promise.reject(toCacheError(e));
    }
  }

  /** Removes every key everywhere, including writes made before now that arrive later. */
  clear() {
    try {
      this.#assertOpen();
      const { timestamp, keys } = this.#core.clear();
      this.#reads.clear();
      const message = { kind: 'clear', ts: timestamp, node: this.#node };
      this.#tellPeers(message);
      for (const key of keys) this.#notify(key);
      return this.#whenFlushed(null);
    } catch (e) {
      return Promise.reject(toCacheError(e));
    }
  }

  /**
   * Every visible entry, sorted by key, with what a developer wants to see about it:
   * `{ key, value, expiresAt (ms since epoch, null: never), updatedAt (the write's timestamp),
   * writer (the writing instance's nodeId), pending (not yet acknowledged by the backend) }`.
   * Meant for dev tools and debugging: it walks the whole cache.
   */
  entries() {
    this.#assertOpen();
    let flat;
    try {
      flat = this.#core.entries();
    } catch (e) {
      throw toCacheError(e);
    }
    const out = [];
    for (let i = 0; i < flat.length; i += 6) {
      const key = flat[i];
      const writer = flat[i + 4];
      const colon = writer.indexOf(':');
      const app = colon > 0 ? writer.slice(0, colon) : null;
      out.push({ key, value: this.get(key), expiresAt: flat[i + 2] || null, updatedAt: flat[i + 3], writer, app, pending: flat[i + 5] });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Calls `callback(value)` whenever `key` changes here, in another MFE or in another tab
   * (`null` on remove, expiry and clear). Returns the function that unsubscribes.
   */
  subscribe(key, callback) {
    this.#assertOpen();
    checkKey(key);
    if (typeof callback !== 'function') throw new CacheError('INVALID_ARGUMENT', 'callback must be a function');
    let set = this.#subscribers.get(key);
    if (!set) this.#subscribers.set(key, (set = new Set()));
    // Wrapped so that subscribing the same function twice gives two independent subscriptions.
    const entry = (value) => callback(value);
    set.add(entry);
    return () => {
      set.delete(entry);
      if (set.size === 0 && this.#subscribers.get(key) === set) this.#subscribers.delete(key);
    };
  }

  /**
   * Listens to `'error'` events (`CacheError`: `{ type, message, retryable, key? }`), `'sync'`
   * events (the new `syncStatus`) or `'change'` events (the key whose value changed, from
   * anywhere: for views of the whole cache). Returns the off function.
   */
  on(event, listener) {
    this.#checkEvent(event, listener).add(listener);
    return () => this.off(event, listener);
  }

  /** Stops listening. */
  off(event, listener) {
    this.#checkEvent(event, listener).delete(listener);
  }

  #checkEvent(event, listener) {
    const set = Object.hasOwn(this.#listeners, event) ? this.#listeners[event] : undefined;
    if (!set) throw new CacheError('INVALID_ARGUMENT', `unknown event ${describe(event)}; events: 'error', 'sync', 'change'`);
    if (typeof listener !== 'function') throw new CacheError('INVALID_ARGUMENT', 'listener must be a function');
    return set;
  }

  /** Persists what is pending, then closes the channel, timers and listeners. Idempotent. */
  dispose() {
    if (this.#disposed) return;
    if (this.#flushQueued) this.#flush();
    this.#disposed = true;
    this.#sync?.dispose();
    this.#group.delete(this.#peer);
    this.#core.dispose();
    this.#core.free();
    this.#reads.clear();
    this.#subscribers.clear();
    for (const set of Object.values(this.#listeners)) set.clear();
  }

  #assertOpen() {
    if (this.#disposed) throw new CacheError('DISPOSED', 'the cache has been disposed');
  }

  // A local write: drop the stale read, let every other instance on the page apply it, then tell
  // subscribers (after all states agree, so a subscriber may read any instance).
  #publish(key, message) {
    this.#reads.delete(key);
    this.#tellPeers(message);
    this.#notify(key);
  }

  // Every other instance on this page with the same prefix and storage (the hub protocol).
  #tellPeers(message) {
    for (const peer of this.#group) if (peer !== this.#peer && peer.storage === this.#storage) peer.deliver(message);
  }

  #onPeerMessage(m) {
    if (this.#disposed) return;
    try {
      const problem = peerMessageProblem(m);
      if (problem) throw new CacheError('PROTOCOL', `ignored a message from another copy of the package on this page: ${problem}`);
      switch (m.kind) {
        case 'acked':
          if (this.#sync && this.#core.applyPeerAcked(m.acked)) this.#emitStatus();
          return;
        case 'clock':
          this.#onCoreNews(this.#core.adoptClockOffset(m.offset), NO_LISTENERS);
          return;
        case 'clear': {
          const keys = this.#core.applyPeerClear(m.ts, m.node);
          this.#reads.clear();
          for (const key of keys) this.#notify(key);
          return;
        }
        case 'set':
        case 'remove': {
          const json = m.kind === 'set' ? m.json : undefined;
          if (this.#core.applyPeer(m.key, json, m.kind === 'set' ? m.ttl ?? 0 : 0, m.ts, m.node, m.at ?? NaN)) {
            this.#reads.delete(m.key);
            this.#notify(m.key);
          }
          return;
        }
        default:
          return; // a kind a newer copy added
      }
    } catch (e) {
      this.#emitError(toCacheError(e));
    }
  }

  #onCoreNews(keys, errors) {
    for (const key of keys) this.#reads.delete(key);
    for (const key of keys) this.#notify(key);
    for (const e of errors) this.#emitError(toCacheError(e));
    // Another tab's writes (and acknowledgements) change what is pending here.
    if (this.#sync) this.#emitStatus();
  }

  #notify(key) {
    const set = this.#subscribers.get(key);
    if (set) {
      const value = this.get(key);
      for (const callback of [...set]) {
        try {
          callback(value);
        } catch (e) {
          reportAsync(e);
        }
      }
    }
    if (this.#listeners.change.size === 0) return;
    for (const listener of [...this.#listeners.change]) {
      try {
        listener(key);
      } catch (e) {
        reportAsync(e);
      }
    }
  }

  #emitStatus() {
    if (this.#disposed || this.#listeners.sync.size === 0) return;
    const status = this.#core.syncState();
    const key = JSON.stringify(status);
    if (key === this.#lastStatus) return;
    this.#lastStatus = key;
    for (const listener of [...this.#listeners.sync]) {
      try {
        listener({ ...status });
      } catch (e) {
        reportAsync(e);
      }
    }
  }

  #emitError(error) {
    const listeners = this.#listeners.error.size ? [...this.#listeners.error] : NO_LISTENERS;
    // Nobody listens: a warning (the default logLevel shows it); otherwise a debug record.
    this.#log(listeners.length === 0 ? 'warn' : 'debug', `${error.type}: ${error.message}`, { key: error.key, error: error.type });
    if (listeners.length === 0) return;
    for (const listener of listeners) {
      try {
        listener(error);
      } catch (e) {
        reportAsync(e);
      }
    }
  }

  // Writes are persisted in one batch per task: a burst of writes costs one storage write per
  // key and one message to other tabs, and each promise settles once its key is persisted.
  #whenFlushed(key) {
    return new Promise((resolve, reject) => {
      this.#waiters.push({ key, resolve, reject });
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        queueMicrotask(() => this.#flush());
      }
    });
  }

  #flush() {
    if (!this.#flushQueued || this.#disposed) return;
    this.#flushQueued = false;
    const waiters = this.#waiters;
    this.#waiters = [];
    let errors;
    try {
      errors = Array.from(this.#core.flush(), toCacheError);
    } catch (e) {
      errors = [toCacheError(e)];
    }
    const byKey = new Map();
    let general = null;
    for (const error of errors) {
      this.#emitError(error);
      if (error.key !== undefined) byKey.set(error.key, error);
      else if (error.type !== 'PROTOCOL') general ??= error; // a failed tab message persisted fine
    }
    for (const w of waiters) {
      const error = w.key === null ? general : byKey.get(w.key) ?? general;
      if (error) w.reject(error);
      else w.resolve();
    }
    if (this.#sync) {
      this.#sync.kick();
      this.#emitStatus();
    }
  }
}

// What is wrong with a page-hub message's shape, if anything; the core checks the contents (key
// rules, stamps, the value's JSON) as it checks another tab's.
function peerMessageProblem(m) {
  if (m === null || typeof m !== 'object') return 'it is not an object';
  const number = (v) => typeof v === 'number';
  switch (m.kind) {
    case 'acked':
      return Array.isArray(m.acked) ? null : 'acked is not an array';
    case 'clock':
      return number(m.offset) ? null : 'offset is not a number';
    case 'clear':
      return number(m.ts) && typeof m.node === 'string' ? null : 'its stamp is malformed';
    case 'set':
    case 'remove':
      if (typeof m.key !== 'string' || !isWellFormed(m.key)) return 'its key is not a well-formed string';
      if (!number(m.ts) || typeof m.node !== 'string' || (m.at !== undefined && !number(m.at))) return 'its stamp is malformed';
      if (m.kind === 'set' && (typeof m.json !== 'string' || (m.ttl !== undefined && !number(m.ttl)))) return 'its value or ttl is malformed';
      return null;
    default:
      return null;
  }
}

function reportAsync(error) {
  // A throwing subscriber must not stop the others; surface it the way event listeners do.
  if (typeof globalThis.reportError === 'function') globalThis.reportError(error);
  else setTimeout(() => {
    throw error;
  });
}

export default BackendSyncedCacheService;
