// @ts-check
// mfe-shared-cache: the public JavaScript API over the wasm core.
//
// The core (Rust → wasm) decides everything and drives the browser itself: storage, other tabs,
// the backend (requests, the event stream, leadership), expiry, single-flight loading. This shim
// keeps what must be JavaScript: the API class and its options, values ↔ JSON, a read cache that
// makes `get` cost about a Map lookup, subscribers and events, the page hub that separately
// bundled copies of the package meet on, and the loaders users pass to getOrFetch.
import { CacheCore, checkKey as coreCheckKey, ttlSeconds as coreTtl } from './core.js';
import { loadWasm } from './wasm.js';
import { CacheError, CacheErrorType, describe, reportThrown, toCacheError } from './errors.js';
import { LOG_LEVELS, makeLog } from './log.js';
import { MemoryStorage } from './memory-storage.js';
import { CacheScope } from './scope.js';
import { READ_STALE, REPORT, WRITTEN } from './symbols.js';

export { CacheError, CacheErrorType, CacheScope, MemoryStorage, READ_STALE, REPORT, WRITTEN };

/** @typedef {import('./core.js').CoreNews} CoreNews */
/** @typedef {import('./core.js').CoreError} CoreError */

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
const DEFAULT_RETRY = Object.freeze({ maxRetries: 3, initialDelay: 100, maxDelay: 2000, backoffFactor: 2 });
const DEFAULT_GRACE_MS = 10000;

// ---- the page hub -------------------------------------------------------------------------
// Copies of this package bundled separately into different MFEs each have their own module and
// wasm instance. They meet here, on a global registry: a group per prefix holds peers
// `{ storage, deliver(news), cache }`, where news is the core's own message text (versioned),
// delivered synchronously, so a write in one MFE is visible in every other one before `set`
// returns (and `cache` is the instance, for dev tools); and `loads` shares one getOrFetch flight
// per key among them.
const HUB = Symbol.for('mfe-shared-cache.hub.v2');

/** @returns {{ pageId: string, groups: Map<string, Set<{ storage: unknown, deliver(news: string): void, cache?: unknown }>>, loads: Map<string, Promise<unknown>> }} */
function pageHub() {
  const g = /** @type {any} */ (globalThis);
  if (!g[HUB]) {
    const bytes = new Uint8Array(9);
    typeof globalThis.crypto?.getRandomValues === 'function' ? crypto.getRandomValues(bytes) : bytes.forEach((_, i) => (bytes[i] = Math.random() * 256));
    const pageId = Array.from(bytes, (b) => b.toString(36).padStart(2, '0')).join('');
    Object.defineProperty(g, HUB, { value: { pageId, groups: new Map(), loads: new Map() }, configurable: true });
  }
  return g[HUB];
}

// ---- input checks ---------------------------------------------------------------------------
// A string with a lone surrogate has no UTF-8 form: handed to the wasm it would become U+FFFD,
// and 'x\ud800' and 'x\udbff' would be one key.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?:^|[^\ud800-\udbff])[\udc00-\udfff]/;

// The cheap part of the key rule, here: the core checks the rest (length, U+0000) in the call
// the key is for, and `fullKeyCheck` where no core call follows.
/** @param {unknown} key @returns {asserts key is string} */
function checkKey(key) {
  if (typeof key !== 'string') throw new CacheError('INVALID_KEY', `key must be a non-empty string, got ${describe(key)}`, { key });
  if (LONE_SURROGATE.test(key)) {
    throw new CacheError('INVALID_KEY', `key ${describe(key)} contains a lone surrogate (U+D800 to U+DFFF), which has no UTF-8 form`, { key });
  }
}

/** @param {unknown} key */
function fullKeyCheck(key) {
  checkKey(key);
  try {
    coreCheckKey(key);
  } catch (e) {
    throw toCacheError(e);
  }
}

/** @param {unknown} ttl @param {number} fallback @param {string} [what] */
function ttlSeconds(ttl, fallback, what = 'ttl') {
  if (ttl === undefined || ttl === null) return fallback;
  loadWasm();
  try {
    return coreTtl(/** @type {number | string} */ (ttl), what);
  } catch (e) {
    throw toCacheError(e);
  }
}

// JSON.stringify silently drops functions and symbols, turns NaN into null and Maps into {}:
// each would store something other than what the caller holds, so refuse them. The plain
// stringify runs first (V8's fast path; it throws on cycles and BigInt), then a walk looks for
// what it would have dropped, and for nesting deeper than other tabs and the backend accept.
const MAX_DEPTH = 512; // the core's json::MAX_DEPTH

/** @param {unknown} key @param {unknown} value @returns {string} */
function toJson(key, value) {
  let json;
  try {
    json = JSON.stringify(value);
  } catch (cause) {
    throw new CacheError('INVALID_VALUE', `value for ${describe(key)} is not JSON: ${/** @type {any} */ (cause)?.message ?? cause}`, { key, cause });
  }
  const problem = json === undefined ? `is ${typeof value === 'undefined' ? 'undefined' : 'a ' + typeof value}` : notJson(value, 0);
  if (problem) throw new CacheError('INVALID_VALUE', `value for ${describe(key)} is not JSON: it ${problem}`, { key });
  return /** @type {string} */ (json);
}

/** @param {any} v @param {number} depth @returns {string | null} */
function notJson(v, depth) {
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
        for (const item of v) {
          const p = item === undefined ? null : notJson(item, depth + 1);
          if (p) return p;
        }
        return null;
      }
      if (v instanceof Map || v instanceof Set || v instanceof WeakMap || ArrayBuffer.isView(v)) return `contains a ${v.constructor?.name ?? 'non-JSON object'}`;
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

// `get` compares expiries with a clock read once per task: a tight loop of reads costs no clock
// calls, and every read within one task (one React render, say) sees the same state. The task
// ends at the next microtask, so code that awaits (or a test's fake clock) sees time move.
let taskNow = 0;
const forgetNow = () => (taskNow = 0);
function now() {
  if (taskNow === 0) {
    taskNow = Date.now();
    queueMicrotask(forgetNow);
  }
  return taskNow;
}

/** @param {any} value */
function deepFreeze(value) {
  if (value !== null && typeof value === 'object') {
    Object.freeze(value);
    for (const k in value) deepFreeze(value[k]);
  }
  return value;
}

/** @type {(v: any) => boolean} */
const positiveMs = (v) => typeof v === 'number' && v > 0 && Number.isFinite(v);
/** @type {(v: any) => boolean} */
const msOrZero = (v) => typeof v === 'number' && v >= 0 && Number.isFinite(v);
/** @type {(v: any) => boolean} */
const count = (v) => Number.isInteger(v) && v >= 0;

/** @typedef {Record<string, [(v: any) => boolean, string]>} Rules each option's check, and what its error says */
/** @type {Rules} */
const OPTION_RULES = {
  prefix: [(v) => typeof v === 'string' && v !== '' && !v.includes('\0'), 'must be a non-empty string'],
  app: [(v) => v === null || (typeof v === 'string' && /^[A-Za-z0-9_.-]{1,32}$/.test(v)), 'must be 1 to 32 of A-Z a-z 0-9 _ . -'],
  logLevel: [(v) => Object.hasOwn(LOG_LEVELS, v), `must be one of ${Object.keys(LOG_LEVELS).join(', ')}`],
  logger: [(v) => v == null || typeof v === 'function', 'must be a function receiving log records'],
  backendUrl: [(v) => v === null || v === false || typeof v === 'string', 'must be a string, null or false'],
  maxBatchBytes: [(v) => Number.isInteger(v) && v >= 1, 'must be a whole number of bytes >= 1'],
  syncInterval: [positiveMs, 'must be a positive number of ms'],
  retryDelay: [positiveMs, 'must be a positive number of ms'],
  requestTimeout: [positiveMs, 'must be a positive number of ms'],
  maxRetries: [count, 'must be an integer >= 0'],
  realtime: [(v) => v === 'auto' || v === 'off', "must be 'auto' or 'off'"],
  headers: [(v) => v == null || typeof v === 'object' || typeof v === 'function', 'must be an object or a function returning one'],
  storage: [(v) => v === undefined || (!!v && ['getItem', 'setItem', 'removeItem', 'key'].every((m) => typeof v[m] === 'function')), 'must implement the Storage interface'],
};
/** @type {Rules} */
const RETRY_RULES = {
  maxRetries: [count, 'must be an integer >= 0'],
  initialDelay: [msOrZero, 'must be ms >= 0'],
  maxDelay: [msOrZero, 'must be ms >= 0'],
  backoffFactor: [(v) => typeof v === 'number' && v >= 1 && Number.isFinite(v), 'must be a number >= 1'],
};

/**
 * The options given over their defaults (`undefined` is "not given"), each checked by its rule;
 * `whole` names the object in errors, `what` prefixes each option's name.
 * @param {string} whole @param {string} what @param {any} given @param {object} defaults @param {Rules} rules @returns {any}
 */
function withDefaults(whole, what, given, defaults, rules) {
  if (given === null || typeof given !== 'object') throw new CacheError('INVALID_OPTION', `${whole} must be an object, got ${describe(given)}`);
  /** @type {any} */
  const o = { ...defaults, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) };
  for (const [name, [ok, why]] of Object.entries(rules)) {
    if (!ok(o[name])) throw new CacheError('INVALID_OPTION', `${what}${name} ${why}, got ${describe(o[name])}`);
  }
  return o;
}

/** @param {any} options */
function checkOptions(options) {
  const o = withDefaults('options', 'option ', options, DEFAULTS, OPTION_RULES);
  try {
    o.defaultTTL = ttlSeconds(o.defaultTTL, 0, 'option defaultTTL');
  } catch (e) {
    throw new CacheError('INVALID_OPTION', /** @type {Error} */ (e).message);
  }
  return o;
}

/** @param {(e: CacheError) => void} report */
function defaultStorage(report) {
  try {
    if (globalThis.localStorage) return globalThis.localStorage;
  } catch (cause) {
    // Sandboxed iframes and disabled storage throw on access: keep working in memory.
    report(new CacheError('STORAGE_FAILED', `localStorage is not available (${/** @type {any} */ (cause)?.message ?? cause}); using memory`, { cause }));
  }
  return new MemoryStorage();
}

/**
 * Whether a write goes to the backend: `options.sync`, or `fallback` when not given.
 * @param {any} options @param {boolean} fallback
 */
function syncOption(options, fallback) {
  if (options === undefined || options === null) return fallback;
  if (typeof options !== 'object') throw new CacheError('INVALID_OPTION', `options must be an object, got ${describe(options)}`);
  const { sync = fallback } = options;
  if (typeof sync !== 'boolean') throw new CacheError('INVALID_OPTION', `option sync must be true or false, got ${describe(sync)}`);
  return sync;
}

/** @param {any} retry */
const checkRetry = (retry) => (retry == null ? DEFAULT_RETRY : withDefaults('option retry', 'retry.', retry, DEFAULT_RETRY, RETRY_RULES));

/** @type {readonly any[]} */
const NONE = Object.freeze([]);

/**
 * A shared key-value cache for micro-frontends: one state per prefix across every MFE on the
 * page and every tab of the origin, persisted in Storage, synced with a backend.
 */
export class BackendSyncedCacheService {
  /** @type {CacheCore} */ #core;
  /** @type {string} */ #node;
  /** @type {any} */ #options;
  /** @type {unknown} */ #storage;
  // The read cache: key → the frozen value `get` returns, so that a hit is one Map lookup and one
  // comparison. Expiries are kept apart; until the earliest of them every cached value is fresh,
  // and past it the expired ones are dropped.
  /** @type {Map<string, unknown>} */ #reads = new Map();
  /** @type {Map<string, number>} */ #readExpiries = new Map();
  #freshUntil = Infinity;
  /** @type {Map<string, Set<(value: unknown) => void>>} */ #subscribers = new Map();
  /** @type {{ error: Set<Function>, sync: Set<Function>, change: Set<Function> }} */ #listeners = { error: new Set(), sync: new Set(), change: new Set() };
  /** @type {Set<{ storage: unknown, deliver(news: string): void }>} */ #group;
  /** @type {{ storage: unknown, deliver(news: string): void, cache: BackendSyncedCacheService }} */ #peer;
  /** @type {{ key: string | null, resolve: () => void, reject: (e: CacheError) => void }[]} */ #waiters = [];
  #flushQueued = false;
  #disposed = false;
  /** @type {(level: string, message: string, fields?: object) => void} */ #log;
  #debugLog = false;
  #hits = 0;
  #misses = 0;
  /** @type {Map<string, { json: string, value: unknown }>} */ #stale = new Map();
  /** @type {Map<number, { key: string, loader: () => unknown, filter?: Function, resolve: Function, reject: Function, cause?: unknown, error?: CacheError }>} */ #loads = new Map();

  /** @param {import('./index.js').CacheOptions} [options] */
  constructor(options = {}) {
    loadWasm();
    const o = checkOptions(options);
    /** @type {CacheError[]} */
    const early = [];
    this.#storage = o.storage ?? defaultStorage((e) => early.push(e));
    const backendUrl = o.backendUrl || null;
    this.#options = Object.freeze({
      prefix: o.prefix, defaultTTL: o.defaultTTL, backendUrl, syncInterval: o.syncInterval, retryDelay: o.retryDelay, maxRetries: o.maxRetries,
      requestTimeout: o.requestTimeout, app: o.app, logLevel: o.logLevel, realtime: o.realtime, maxBatchBytes: o.maxBatchBytes,
    });
    this.#log = makeLog(o.logLevel, o.logger);
    this.#debugLog = o.logLevel === 'debug';
    const hub = pageHub();
    const backend = backendUrl && {
      url: backendUrl, syncInterval: o.syncInterval, retryDelay: o.retryDelay, maxRetries: o.maxRetries,
      requestTimeout: o.requestTimeout, maxBatchBytes: o.maxBatchBytes, realtime: o.realtime === 'auto',
    };
    try {
      this.#core = new CacheCore({ prefix: o.prefix, app: o.app, page: hub.pageId, backend }, this.#storage, o.headers ?? null, (news) => this.#onNews(news));
    } catch (e) {
      throw toCacheError(e);
    }
    this.#node = this.#core.inspect('node');
    for (const e of this.#core.inspect('startupErrors')) early.push(toCacheError(e));

    let group = hub.groups.get(o.prefix);
    if (!group) hub.groups.set(o.prefix, (group = new Set()));
    this.#group = group;
    // `cache`: for dev tools, which list every instance on the page (of every copy).
    this.#peer = { storage: this.#storage, deliver: (news) => this.#fromPeer(news), cache: this };
    group.add(this.#peer);
    // Reported after the constructor returns, so listeners attached right after it hear them.
    if (early.length) queueMicrotask(() => early.forEach((e) => this.#emitError(e)));
  }

  /** The backend sync status (`enabled: false` and `pending: 0` without a backend). */
  get syncStatus() {
    return this.#inspect('status');
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
    return this.#inspect('tabLink');
  }

  /**
   * Sets `key` to a JSON value for `ttl` seconds (default `defaultTTL`; 0 never expires).
   * Visible to every instance on the page when this returns; resolves once persisted.
   * Options: `sync` (default true): false keeps the value in this browser (every MFE and tab of
   * the origin), never sent to the backend.
   * @param {string} key @param {unknown} value @param {number | string} [ttl] @param {{ sync?: boolean }} [options]
   */
  set(key, value, ttl, options) {
    try {
      this.#assertOpen();
      checkKey(key);
      const ttlSecs = ttlSeconds(ttl, this.#options.defaultTTL);
      const sync = syncOption(options, true);
      return this.#write(key, toJson(key, value), ttlSecs, sync);
    } catch (e) {
      return Promise.reject(toCacheError(e));
    }
  }

  /** @param {string} key @param {string} json @param {number} ttlSecs @param {boolean} sync */
  #write(key, json, ttlSecs, sync) {
    this.#published(key, this.#call(() => this.#core.set(key, json, ttlSecs, sync, this.#group.size > 1)));
    return this.#whenFlushed(key);
  }

  /** The value of `key`, or null; the same (frozen) object for as long as the entry is unchanged. @param {string} key */
  get(key) {
    let value = this.#reads.get(key);
    if (value !== undefined && now() < this.#freshUntil) {
      this.#hits++;
      return value;
    }
    value = this.#cached(key);
    if (value === undefined) value = this.#read(key);
    if (value === null) this.#misses++;
    else this.#hits++;
    return value;
  }

  /** Whether `key` has a value now, JSON null included (not counted in the hit rate). @param {string} key */
  has(key) {
    if (this.#cached(key) === undefined) this.#read(key);
    return this.#reads.has(key);
  }

  /** `key`'s value in the read cache if it is still fresh. @param {string} key */
  #cached(key) {
    const t = now();
    if (t >= this.#freshUntil) {
      let until = Infinity;
      for (const [k, exp] of this.#readExpiries) {
        if (exp <= t) this.#forget(k);
        else if (exp < until) until = exp;
      }
      this.#freshUntil = until;
    }
    return this.#reads.get(key);
  }

  #forgetAll() {
    this.#reads.clear();
    this.#readExpiries.clear();
    this.#freshUntil = Infinity;
  }

  /** @param {string} key */
  #forget(key) {
    this.#reads.delete(key);
    this.#readExpiries.delete(key);
  }

  /** @param {string} key */
  #read(key) {
    this.#assertOpen();
    checkKey(key);
    const found = this.#call(() => this.#core.read(key));
    if (found === undefined) {
      this.#forget(key);
      return null;
    }
    const [json, exp] = found;
    const value = deepFreeze(JSON.parse(json));
    this.#reads.set(key, value);
    if (exp === 0) this.#readExpiries.delete(key);
    else {
      this.#readExpiries.set(key, exp);
      if (exp < this.#freshUntil) this.#freshUntil = exp;
    }
    return value;
  }

  /** The keys that have a value now, sorted; with a pattern (`*`, `?`, `\` escapes), those matching it. @param {string} [pattern] */
  keys(pattern) {
    if (pattern !== undefined && typeof pattern !== 'string') throw new CacheError('INVALID_ARGUMENT', `pattern must be a string, got ${describe(pattern)}`);
    return this.#inspect('keys', pattern);
  }

  /** How many keys have a value now. */
  size() {
    return this.#inspect('stats')[0];
  }

  /** Milliseconds until `key` expires: null when it has no value, Infinity when it never expires. @param {string} key */
  getTimeToExpiry(key) {
    checkKey(key);
    const at = this.#inspect('expiry', key);
    return at === null ? null : at === 0 ? Infinity : Math.max(0, at - Date.now());
  }

  /** When `key`'s value (expired or not) was written, in ms since epoch on this device's clock; null without one. @param {string} key */
  getUpdatedAt(key) {
    return this[WRITTEN](key)?.[0] ?? null;
  }

  /** @param {string} key @returns {[number, string] | null} */
  [WRITTEN](key) {
    checkKey(key);
    return this.#inspect('written', key);
  }

  /** `{ size, active, expired, hits, misses, hitRate, pending }`. */
  getStats() {
    const [active, expired, pending] = this.#inspect('stats');
    const reads = this.#hits + this.#misses;
    return { size: active + expired, active, expired, hits: this.#hits, misses: this.#misses, hitRate: reads === 0 ? 0 : this.#hits / reads, pending };
  }

  /**
   * Removes every key matching `keyOrPattern` here, in every other instance and tab, and
   * (through the outbox) on the backend; resolves to how many keys it removed, once persisted.
   * Options: `sync` (default true): false removes them in this browser only.
   * @param {string} keyOrPattern @param {{ sync?: boolean }} [options]
   */
  invalidate(keyOrPattern, options) {
    try {
      this.#assertOpen();
      if (typeof keyOrPattern !== 'string') throw new CacheError('INVALID_ARGUMENT', `invalidate takes a key or pattern string, got ${describe(keyOrPattern)}`);
      const sync = syncOption(options, true);
      const [news, keys] = this.#call(() => this.#core.invalidate(keyOrPattern, sync));
      if (news !== undefined) this.#tellPeers(news);
      for (const key of keys) {
        this.#forget(key);
        this.#notify(key);
      }
      this.#log('info', 'invalidated', { key: keyOrPattern, count: keys.length });
      return this.#whenFlushed(null).then(() => keys.length);
    } catch (e) {
      return Promise.reject(toCacheError(e));
    }
  }

  /**
   * The value of `key`, loading it with `loader()` on a miss: one load at a time per key across
   * every instance on the page and every tab. Options: `ttl`, `staleWhileRevalidate`, `retry`,
   * `defaultValue`, `filter`, `graceTime`, `refresh` (see the README).
   * @param {string} key @param {() => unknown} loader @param {any} [options]
   */
  getOrFetch(key, loader, options = {}) {
    // The hit path first and lean (a hit is most calls): options are read in full on a miss.
    if (options?.refresh !== true) {
      // Called once per await, so the hit compares with the clock itself: the per-task clock of
      // `get` would queue a job on every call to forget it.
      const read = this.#reads.get(key);
      let hit;
      try {
        hit = read !== undefined && Date.now() < this.#freshUntil ? (this.#hits++, read) : this.get(key);
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

  /** @param {string} key @param {() => unknown} loader @param {any} options */
  async #getOrLoad(key, loader, options) {
    this.#assertOpen();
    checkKey(key);
    if (typeof loader !== 'function') throw new CacheError('INVALID_ARGUMENT', 'loader must be a function returning the value or a promise of it');
    if (options === null || typeof options !== 'object') throw new CacheError('INVALID_OPTION', 'getOrFetch options must be an object');
    const { filter, graceTime = DEFAULT_GRACE_MS } = options;
    if (filter !== undefined && typeof filter !== 'function') throw new CacheError('INVALID_OPTION', 'option filter must be a function');
    if (typeof graceTime !== 'number' || !(graceTime >= 0) || !Number.isFinite(graceTime)) throw new CacheError('INVALID_OPTION', `option graceTime must be ms >= 0, got ${describe(graceTime)}`);
    const core = { ttl: ttlSeconds(options.ttl, this.#options.defaultTTL), graceTime, refresh: options.refresh === true, sync: syncOption(options, false), retry: checkRetry(options.retry) };
    const flight = () => this.#flight(key, () => this.#load(key, loader, filter, core));
    if (!core.refresh && options.staleWhileRevalidate === true) {
      const stale = this[READ_STALE](key);
      if (stale !== null) {
        this.#log('debug', 'serving a stale value while revalidating', { key });
        flight().catch((e) => this.#emitError(toCacheError(e)));
        return stale;
      }
    }
    try {
      return await flight();
    } catch (e) {
      if (!Object.hasOwn(options, 'defaultValue')) throw toCacheError(e);
      // Resolved with the default, but never silently: 'error' listeners (or the log) hear why.
      this.#emitError(toCacheError(e));
      return options.defaultValue;
    }
  }

  // One flight per key on the page: every copy of the package meets in the hub.
  /** @param {string} key @param {() => Promise<unknown>} start */
  #flight(key, start) {
    const loads = pageHub().loads;
    const id = `${this.#options.prefix}\u0000${key}`;
    let flight = loads.get(id);
    if (!flight) {
      flight = start().finally(() => loads.delete(id));
      loads.set(id, flight);
    }
    return flight;
  }

  /** @param {string} key @param {() => unknown} loader @param {Function | undefined} filter @param {object} options */
  #load(key, loader, filter, options) {
    return new Promise((resolve, reject) => {
      const id = this.#call(() => this.#core.load(key, /** @type {any} */ (options)));
      this.#loads.set(id, { key, loader, filter, resolve, reject });
    });
  }

  // An attempt of a loader (the core decides whether and when to retry).
  /** @param {number} id */
  async #runLoader(id) {
    const load = this.#loads.get(id);
    if (!load) return;
    /** @type {any} */
    let outcome;
    try {
      let value = await load.loader();
      if (load.filter) {
        try {
          value = load.filter(value);
        } catch (cause) {
          throw new CacheError('FETCH_FAILED', `the filter for ${describe(load.key)} threw: ${/** @type {any} */ (cause)?.message ?? cause}`, { key: load.key, cause });
        }
      }
      outcome = { value: toJson(load.key, value) };
    } catch (e) {
      // Not JSON, or the filter threw: this error ends the load. Else the core decides whether
      // what the loader threw may go away by itself (then it retries).
      if (e instanceof CacheError) load.error = e;
      else load.cause = e;
      outcome = e instanceof CacheError ? { invalid: { type: e.type, message: e.message } } : { thrown: e };
    }
    if (this.#disposed) return;
    const news = this.#call(() => this.#core.loaded(id, outcome));
    if (news !== undefined) this.#published(load.key, news);
  }

  /** An expired value still held (for stale-while-revalidate), the same object while unchanged. @param {string} key */
  [READ_STALE](key) {
    const json = this.#inspect('stale', key);
    if (json == null) {
      this.#stale.delete(key);
      return null;
    }
    const cached = this.#stale.get(key);
    if (cached !== undefined && cached.json === json) return cached.value;
    const value = deepFreeze(JSON.parse(json));
    this.#stale.set(key, { json, value });
    return value;
  }

  /** @param {CacheError} error */
  [REPORT](error) {
    this.#emitError(error);
  }

  /** Like getOrFetch, but never rejects: failures go to 'error' listeners and resolve to `defaultValue` (default null). */
  async getOrFetchWithFallback(/** @type {string} */ key, /** @type {() => unknown} */ loader, /** @type {any} */ options = {}) {
    try {
      return await this.getOrFetch(key, loader, { ...options, defaultValue: options?.defaultValue ?? null });
    } catch (e) {
      this.#emitError(toCacheError(e));
      return options?.defaultValue ?? null;
    }
  }

  /**
   * A view whose keys live under `name:`, so an MFE owns its part of the keyspace; with
   * `{ sync: false }` its writes and loads stay in this browser unless a call says otherwise.
   * @param {string} name @param {{ sync?: boolean }} [options]
   */
  scope(name, options) {
    this.#assertOpen();
    return new CacheScope(/** @type {any} */ (this), name, syncOption(options, true));
  }

  /**
   * Removes `key` everywhere; an older write arriving later does not bring it back. Options:
   * `sync` (default true): false removes it in this browser only (every MFE and tab of the
   * origin), never on the backend.
   * @param {string} key @param {{ sync?: boolean }} [options]
   */
  remove(key, options) {
    try {
      this.#assertOpen();
      checkKey(key);
      const sync = syncOption(options, true);
      this.#published(key, this.#call(() => this.#core.remove(key, sync, this.#group.size > 1)));
      return this.#whenFlushed(key);
    } catch (e) {
      return Promise.reject(toCacheError(e));
    }
  }

  /** Removes every key everywhere, including writes made before now that arrive later. */
  clear() {
    try {
      this.#assertOpen();
      const [news, keys] = this.#call(() => this.#core.clear());
      this.#forgetAll();
      this.#tellPeers(news);
      for (const key of keys) this.#notify(key);
      return this.#whenFlushed(null);
    } catch (e) {
      return Promise.reject(toCacheError(e));
    }
  }

  /** Every visible entry, sorted by key: `{ key, value, expiresAt, updatedAt, writer, app, pending }` (for dev tools). */
  entries() {
    return this.#inspect('entries').map((/** @type {import('./core.js').CoreEntry} */ e) => {
      const colon = e.writer.indexOf(':');
      const value = this.#cached(e.key) ?? this.#read(e.key) ?? deepFreeze(JSON.parse(e.json));
      return { key: e.key, value, expiresAt: e.expiresAt, updatedAt: e.writtenAt, writer: e.writer, app: colon > 0 ? e.writer.slice(0, colon) : null, pending: e.pending };
    });
  }

  /**
   * Calls `callback(value)` whenever `key` changes here, in another MFE or another tab (`null` on
   * remove, expiry and clear). Returns the function that unsubscribes.
   * @param {string} key @param {(value: any) => void} callback
   */
  subscribe(key, callback) {
    this.#assertOpen();
    fullKeyCheck(key);
    if (typeof callback !== 'function') throw new CacheError('INVALID_ARGUMENT', 'callback must be a function');
    let set = this.#subscribers.get(key);
    if (!set) this.#subscribers.set(key, (set = new Set()));
    // Wrapped so that subscribing the same function twice gives two independent subscriptions.
    const entry = (/** @type {unknown} */ value) => callback(value);
    set.add(entry);
    return () => {
      set.delete(entry);
      if (set.size === 0 && this.#subscribers.get(key) === set) this.#subscribers.delete(key);
    };
  }

  /** Listens to 'error', 'sync' or 'change' events; returns the off function. @param {string} event @param {Function} listener */
  on(event, listener) {
    this.#checkEvent(event, listener).add(listener);
    return () => this.off(event, listener);
  }

  /** Stops listening. @param {string} event @param {Function} listener */
  off(event, listener) {
    this.#checkEvent(event, listener).delete(listener);
  }

  /** @param {string} event @param {Function} listener */
  #checkEvent(event, listener) {
    const set = Object.hasOwn(this.#listeners, event) ? /** @type {any} */ (this.#listeners)[event] : undefined;
    if (!set) throw new CacheError('INVALID_ARGUMENT', `unknown event ${describe(event)}; events: 'error', 'sync', 'change'`);
    if (typeof listener !== 'function') throw new CacheError('INVALID_ARGUMENT', 'listener must be a function');
    return /** @type {Set<Function>} */ (set);
  }

  /** Persists what is pending, then closes the channel, timers, locks and listeners. Idempotent. */
  dispose() {
    if (this.#disposed) return;
    if (this.#flushQueued) this.#flush();
    this.#disposed = true;
    this.#group.delete(this.#peer);
    this.#core.dispose();
    this.#core.free();
    for (const load of this.#loads.values()) load.reject(new CacheError('DISPOSED', 'the cache has been disposed'));
    this.#loads.clear();
    this.#forgetAll();
    this.#subscribers.clear();
    for (const set of Object.values(this.#listeners)) set.clear();
  }

  #assertOpen() {
    if (this.#disposed) throw new CacheError('DISPOSED', 'the cache has been disposed');
  }

  /** @template T @param {() => T} f @returns {T} */
  #call(f) {
    this.#assertOpen();
    try {
      return f();
    } catch (e) {
      throw toCacheError(e);
    }
  }

  /** @param {string} what @param {string} [arg] */
  #inspect(what, arg) {
    return this.#call(() => this.#core.inspect(what, arg));
  }

  // A local write: drop the stale read, let every other instance on the page apply it, then tell
  // subscribers (after all states agree, so a subscriber may read any instance).
  /** @param {string} key @param {string | undefined} news (none when no other instance shares the page) */
  #published(key, news) {
    this.#forget(key);
    if (news !== undefined) this.#tellPeers(news);
    this.#notify(key);
  }

  /** @param {string} news */
  #tellPeers(news) {
    for (const peer of this.#group) if (peer !== this.#peer && peer.storage === this.#storage) peer.deliver(news);
  }

  // Another copy's news: whatever it sends, the sender's write goes on and this copy reports it.
  /** @param {unknown} news */
  #fromPeer(news) {
    if (this.#disposed) return;
    try {
      if (typeof news !== 'string') throw new CacheError('PROTOCOL', `ignored a message from another copy of the package on this page: it is ${describe(news)}, not text`);
      this.#core.peer(news);
    } catch (e) {
      this.#emitError(toCacheError(e));
    }
  }

  /** What the core says happened on its own. @param {CoreNews} news */
  #onNews(news) {
    for (const key of news.changed ?? NONE) {
      this.#forget(key);
      this.#notify(key);
    }
    for (const peers of news.peers ?? NONE) this.#tellPeers(peers);
    for (const e of news.errors ?? NONE) this.#emitError(toCacheError(e));
    for (const { level, message, ...fields } of news.logs ?? NONE) this.#log(level, message, fields);
    for (const s of news.settled ?? NONE) this.#settled(s);
    for (const id of news.run ?? NONE) queueMicrotask(() => this.#runLoader(id));
    if (news.status) this.#emitStatus();
  }

  /** @param {{ id: number, json?: string, error?: CoreError }} s */
  #settled({ id, json, error }) {
    const load = this.#loads.get(id);
    if (!load) return;
    this.#loads.delete(id);
    if (error) load.reject(load.error ?? toCacheError(error, load.cause));
    // Read once the call that stored it has published it: the caller gets the object `get` returns.
    else queueMicrotask(() => load.resolve((!this.#disposed && this.get(load.key)) || deepFreeze(JSON.parse(/** @type {string} */ (json)))));
  }

  /** @param {string} key */
  #notify(key) {
    const subscribers = this.#subscribers.get(key);
    if (subscribers) callEach(subscribers, this.get(key));
    callEach(this.#listeners.change, key);
  }

  #emitStatus() {
    if (!this.#disposed && this.#listeners.sync.size) callEach(this.#listeners.sync, Object.freeze(this.#core.inspect('status')));
  }

  /** @param {CacheError} error */
  #emitError(error) {
    // Nobody listens: a warning (the default logLevel shows it); otherwise a debug record.
    this.#log(this.#listeners.error.size ? 'debug' : 'warn', `${error.type}: ${error.message}`, { key: error.key, error: error.type });
    callEach(this.#listeners.error, error);
  }

  // Writes are persisted in one batch per task: a burst of writes costs one storage write per key
  // and one message to other tabs, and each promise settles once its key is persisted.
  /** @param {string | null} key @returns {Promise<void>} */
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
    /** @type {CacheError[]} */
    let errors;
    try {
      errors = this.#core.flush().map((/** @type {CoreError} */ e) => toCacheError(e));
    } catch (e) {
      errors = [toCacheError(e)];
    }
    const byKey = new Map();
    let general = null;
    for (const error of errors) {
      if (error.key !== undefined) byKey.set(error.key, error);
      else if (error.type !== 'PROTOCOL') general ??= error; // a failed tab message persisted fine
    }
    for (const w of waiters) {
      const error = w.key === null ? general : byKey.get(w.key) ?? general;
      if (error) w.reject(error);
      else w.resolve();
    }
  }
}

/**
 * Calls each listener; one that throws is reported the way event listeners' errors are, and the
 * others still run. @param {Set<Function>} listeners @param {unknown} arg
 */
function callEach(listeners, arg) {
  if (listeners.size === 0) return;
  for (const listener of [...listeners]) {
    try {
      listener(arg);
    } catch (e) {
      reportThrown(e);
    }
  }
}

export default BackendSyncedCacheService;
