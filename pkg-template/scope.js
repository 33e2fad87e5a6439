// @ts-check
// A view of a cache whose keys live under `name:`: an MFE owns its part of the keyspace and
// cannot collide with another's. Writes still record the instance's writer id (`app:random` with
// the `app` option), so every entry says which MFE wrote it.
import { CacheError, describe } from './errors.js';
import { READ_STALE, REPORT, WRITTEN } from './symbols.js';

/** @param {string} text */
const escapePattern = (text) => text.replace(/[\\*?]/g, (c) => `\\${c}`);

/** @typedef {import('./index.js').BackendSyncedCacheService} Cache */

export class CacheScope {
  /** @type {Cache} */ #cache;
  /** @type {string} */ #prefix;
  /** @type {boolean} */ #sync;

  /**
   * `sync`: whether this scope's writes (and loads) go to the backend unless a call says otherwise;
   * false keeps a per-user part of the keyspace in this browser.
   * @param {Cache} cache @param {string} name @param {boolean} [sync]
   */
  constructor(cache, name, sync = true) {
    if (typeof name !== 'string' || name.length === 0 || name.includes('\0')) {
      throw new CacheError('INVALID_ARGUMENT', `a scope name must be a non-empty string, got ${describe(name)}`);
    }
    this.#cache = cache;
    this.#prefix = `${name}:`;
    this.#sync = sync;
    this.name = name;
  }

  /** The instance this view writes through. */
  get cache() {
    return this.#cache;
  }

  // What the React hooks read, so that they work on a scope as on its instance.
  get nodeId() {
    return this.#cache.nodeId;
  }
  get syncStatus() {
    return this.#cache.syncStatus;
  }
  /**
   * The instance's 'error' and 'sync' events; 'change' for this scope's keys only (without the
   * `name:` part). Returns the off function.
   * @param {'error' | 'sync' | 'change'} event @param {Function} listener
   */
  on(event, listener) {
    if (event !== 'change' || typeof listener !== 'function') return this.#cache.on(/** @type {any} */ (event), /** @type {any} */ (listener));
    const n = this.#prefix.length;
    return this.#cache.on('change', (/** @type {string} */ key) => key.startsWith(this.#prefix) && listener(key.slice(n)));
  }
  /** @param {string} key */
  getUpdatedAt(key) {
    return this.#cache.getUpdatedAt(this.#key(key));
  }
  // The instance's methods the package's declarations leave out.
  get #inner() {
    return /** @type {any} */ (this.#cache);
  }
  /** @param {string} key */
  [READ_STALE](key) {
    return this.#inner[READ_STALE](this.#key(key));
  }
  /** @param {CacheError} error */
  [REPORT](error) {
    this.#inner[REPORT](error);
  }
  /** @param {string} key */
  [WRITTEN](key) {
    return this.#inner[WRITTEN](this.#key(key));
  }

  /** @param {unknown} key */
  #key(key) {
    if (typeof key !== 'string' || key.length === 0) throw new CacheError('INVALID_KEY', `key must be a non-empty string, got ${describe(key)}`, { key });
    return this.#prefix + key;
  }

  /** A call's options over the scope's `sync` (what is not an object goes on, for the cache to refuse). @param {unknown} options */
  #withSync(options) {
    const given = options === undefined || options === null ? {} : options;
    return typeof given === 'object' ? { sync: this.#sync, ...given } : given;
  }

  /** @param {string} key @param {any} value @param {number | string} [ttl] @param {{ sync?: boolean }} [options] */
  set(key, value, ttl, options) {
    try {
      return this.#cache.set(this.#key(key), value, ttl, /** @type {any} */ (this.#withSync(options)));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  /** @param {string} key */
  get(key) {
    return this.#cache.get(this.#key(key));
  }
  /** @param {string} key */
  has(key) {
    return this.#cache.has(this.#key(key));
  }
  /** @param {string} key @param {{ sync?: boolean }} [options] */
  remove(key, options) {
    try {
      return this.#cache.remove(this.#key(key), this.#withSync(options));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  /** @param {string} key @param {(value: any) => void} callback */
  subscribe(key, callback) {
    return this.#cache.subscribe(this.#key(key), callback);
  }
  /** @param {string} key */
  getTimeToExpiry(key) {
    return this.#cache.getTimeToExpiry(this.#key(key));
  }
  /** @param {string} key @param {() => any} loader @param {any} [options] */
  async getOrFetch(key, loader, options) {
    return this.#cache.getOrFetch(this.#key(key), loader, this.#sync ? options : { sync: false, ...options });
  }
  /** @param {string} key @param {() => any} loader @param {any} [options] */
  async getOrFetchWithFallback(key, loader, options) {
    // An invalid key goes through as it is: the cache reports it and resolves to the default.
    return this.#cache.getOrFetchWithFallback(typeof key === 'string' && key !== '' ? this.#prefix + key : key, loader, options);
  }
  /** Keys of this scope (without the `name:` part), matching `pattern` within the scope. */
  /** @param {string} [pattern] */
  keys(pattern = '*') {
    const n = this.#prefix.length;
    return this.#cache.keys(escapePattern(this.#prefix) + pattern).map((/** @type {string} */ k) => k.slice(n));
  }
  size() {
    return this.keys().length;
  }
  /** Invalidates keys of this scope only: `pattern` is matched within it (default: all of them). */
  /** @param {string} [pattern] @param {{ sync?: boolean }} [options] */
  invalidate(pattern = '*', options) {
    if (typeof pattern !== 'string') return Promise.reject(new CacheError('INVALID_ARGUMENT', `invalidate takes a key or pattern string, got ${describe(pattern)}`));
    return this.#cache.invalidate(escapePattern(this.#prefix) + pattern, /** @type {any} */ (this.#withSync(options)));
  }
  /** The entries of this scope, keys without the `name:` part. */
  entries() {
    const n = this.#prefix.length;
    return this.#cache
      .entries()
      .filter((/** @type {any} */ e) => e.key.startsWith(this.#prefix))
      .map((/** @type {any} */ e) => ({ ...e, key: e.key.slice(n) }));
  }
  /** A scope inside this one (`outer:inner:`). */
  /** @param {string} name */
  scope(name) {
    return new CacheScope(this.#cache, this.#prefix + name, this.#sync);
  }
}
