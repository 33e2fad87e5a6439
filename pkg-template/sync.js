// The backend sync adapter: fetch, timers, leader election and online/offline events. What to
// send and when is decided by the wasm core (its sync engine); this file only carries it out.

const LEASE_MS = 3000; // storage-lease leadership (where Web Locks are missing): renewed every second
const HEARTBEAT_MS = 1000;

/** Runs the sync loop of one cache instance. */
export class SyncDriver {
  #core;
  #url;
  #timeout;
  #headers;
  #lockName;
  #leaseKey;
  #storage;
  #hooks;
  #timer = null;
  #leaseTimer = null;
  #pumping = false;
  #again = false;
  #disposed = false;
  #abort = new AbortController();
  #releaseLock = null;
  #onOnline = () => this.#setOnline(true);
  #onOffline = () => this.#setOnline(false);
  #onPageHide = () => this.#releaseLease();

  /**
   * @param core the wasm CacheCore (opened with openSynced)
   * @param options { backendUrl, prefix, requestTimeout, headers, storage, node }
   * @param hooks { applied(keys), acked(batch for the page's other instances), error(CacheError-like), status() }
   */
  constructor(core, options, hooks) {
    this.#core = core;
    this.#url = options.backendUrl.replace(/\/+$/, '');
    this.#timeout = options.requestTimeout;
    this.#headers = options.headers;
    this.#lockName = `mfe-shared-cache:leader:${options.prefix}:${this.#url}`;
    this.#leaseKey = `${options.prefix}\u0000leader`;
    this.#storage = options.storage;
    this.node = options.node;
    this.#hooks = hooks;
  }

  start() {
    const online = globalThis.navigator?.onLine;
    if (online === false) this.#core.setOnline(false);
    globalThis.addEventListener?.('online', this.#onOnline);
    globalThis.addEventListener?.('offline', this.#onOffline);
    this.#elect();
    this.kick();
  }

  /** Something may be due (a local write was persisted, an event happened). */
  kick() {
    if (this.#disposed) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    queueMicrotask(() => this.#pump());
  }

  dispose() {
    this.#disposed = true;
    this.#abort.abort();
    clearTimeout(this.#timer);
    clearInterval(this.#leaseTimer);
    this.#releaseLock?.();
    globalThis.removeEventListener?.('online', this.#onOnline);
    globalThis.removeEventListener?.('offline', this.#onOffline);
    globalThis.removeEventListener?.('pagehide', this.#onPageHide);
    this.#releaseLease();
  }

  // Gives up a storage lease this instance holds, so a successor need not wait for it to expire.
  #releaseLease() {
    try {
      if (this.#storage.getItem(this.#leaseKey)?.startsWith(this.node + ' ')) this.#storage.removeItem(this.#leaseKey);
    } catch {
      // Storage gone: the lease simply expires.
    }
  }

  #setOnline(online) {
    if (this.#disposed) return;
    this.#core.setOnline(online);
    this.#hooks.status();
    if (online) this.kick();
  }

  #setLeader(leader) {
    if (this.#disposed) return;
    this.#core.setLeader(leader);
    this.#hooks.status();
    if (leader) this.kick();
  }

  // One tab of the origin polls: the holder of a Web Lock, released by the browser when the tab
  // closes, so the next waiting tab takes over at once. Without Web Locks, a lease in storage.
  #elect() {
    const locks = globalThis.navigator?.locks;
    if (typeof locks?.request === 'function') {
      locks
        .request(this.#lockName, { signal: this.#abort.signal }, () => {
          if (this.#disposed) return undefined;
          this.#setLeader(true);
          return new Promise((resolve) => (this.#releaseLock = resolve));
        })
        .catch(() => {}); // aborted on dispose
      return;
    }
    const beat = () => {
      try {
        const [holder, until] = (this.#storage.getItem(this.#leaseKey) ?? '').split(' ');
        const now = Date.now();
        if (!holder || holder === this.node || !(Number(until) > now)) {
          this.#storage.setItem(this.#leaseKey, `${this.node} ${now + LEASE_MS}`);
        }
        const leader = this.#storage.getItem(this.#leaseKey)?.startsWith(this.node + ' ') ?? false;
        if (leader !== this.#core.syncState().leader) this.#setLeader(leader);
      } catch {
        // No storage: every instance polls for itself.
        if (!this.#core.syncState().leader) this.#setLeader(true);
      }
    };
    beat();
    this.#leaseTimer = setInterval(beat, HEARTBEAT_MS);
    globalThis.addEventListener?.('pagehide', this.#onPageHide);
  }

  async #pump() {
    if (this.#pumping || this.#disposed) return;
    this.#pumping = true;
    try {
      do {
        this.#again = false;
        while (!this.#disposed && this.#core.syncDue()) {
          const [path, body] = this.#core.beginSync();
          this.#hooks.status();
          let answer;
          try {
            answer = await this.#post(path, body);
          } catch (error) {
            if (this.#disposed) return;
            this.#core.syncFailed(error.type, error.message, !!error.network, Math.random());
            this.#hooks.error(error);
            break;
          }
          if (this.#disposed) return;
          const [keys, errors, acked] =
            path === '/sync' ? this.#core.syncApplied(answer.cursor, answer.updates, answer.clear, answer.more) : this.#core.syncAcked();
          this.#hooks.acked(acked);
          this.#hooks.applied(keys);
          for (const e of errors) this.#hooks.error(e);
        }
      } while (this.#again && !this.#disposed);
    } finally {
      this.#pumping = false;
      if (!this.#disposed) {
        this.#schedule();
        this.#hooks.status();
      }
    }
  }

  #schedule() {
    clearTimeout(this.#timer);
    const at = this.#core.syncWake();
    if (at < 0) return;
    // setTimeout's delay is a signed 32-bit number of ms.
    const delay = Math.min(Math.max(0, at - Date.now()), 0x7fffffff);
    this.#timer = setTimeout(() => this.#pump(), delay);
  }

  // POSTs a body; resolves to the parsed, checked answer or rejects with a typed error object.
  async #post(path, body) {
    const headers = { 'content-type': 'application/json' };
    const extra = typeof this.#headers === 'function' ? await this.#headers() : this.#headers;
    if (extra) Object.assign(headers, extra);
    const abort = new AbortController();
    const onDispose = () => abort.abort();
    this.#abort.signal.addEventListener('abort', onDispose);
    const timer = setTimeout(() => abort.abort(), this.#timeout);
    let status;
    let text;
    try {
      const res = await fetch(this.#url + path, { method: 'POST', headers, body, signal: abort.signal });
      status = res.status;
      text = await res.text();
    } catch (cause) {
      const timedOut = abort.signal.aborted;
      throw failure('NETWORK', timedOut ? `no answer from ${this.#url}${path} within ${this.#timeout} ms` : `cannot reach ${this.#url}${path}: ${cause?.message ?? cause}`, true, true);
    } finally {
      clearTimeout(timer);
      this.#abort.signal.removeEventListener('abort', onDispose);
    }
    if (status < 200 || status > 299) {
      const retryable = status >= 500 || status === 408 || status === 429;
      throw failure(status === 401 || status === 403 ? 'UNAUTHORIZED' : 'SERVER', `${path} answered HTTP ${status}: ${text.slice(0, 200)}`, retryable, false);
    }
    if (path !== '/sync') return null;
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      throw failure('PROTOCOL', `${path} answered something that is not JSON: ${JSON.stringify(text.slice(0, 80))}`, true, false);
    }
    return readSyncAnswer(data);
  }
}

function failure(type, message, retryable, network) {
  return { type, message, retryable, network };
}

// Checks the shape of a /sync answer and flattens updates for the core (which checks each field
// again): [key, valueJson | null, ttl, timestamp, node | null, deleted] per update.
function readSyncAnswer(data) {
  const bad = (why) => failure('PROTOCOL', `/sync answered an unexpected shape: ${why}`, true, false);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw bad('not an object');
  if (!Array.isArray(data.updates)) throw bad('updates is not an array');
  const cursor = data.cursor ?? data.timestamp;
  if (typeof cursor !== 'number' || !Number.isInteger(cursor) || cursor < 0) throw bad('timestamp is not a non-negative integer');
  const updates = [];
  for (const u of data.updates) {
    if (u === null || typeof u !== 'object') throw bad('an update is not an object');
    const deleted = u.deleted === true;
    const value = deleted || u.value === undefined ? null : JSON.stringify(u.value);
    updates.push(u.key, value, typeof u.ttl === 'number' ? u.ttl : 0, u.timestamp, u.node ?? null, deleted);
  }
  const clear = data.clear && typeof data.clear === 'object' ? [data.clear.timestamp, data.clear.node ?? null] : undefined;
  return { cursor, updates, clear, more: data.more === true };
}
