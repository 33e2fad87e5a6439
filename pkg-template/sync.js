// The backend sync adapter: fetch, timers, leader election, online/offline events and the event
// stream. What to send and when is decided by the wasm core (its sync engine); this file only
// carries it out.
import { readEventStream, StreamLimitError } from './event-stream.js';
import { isWellFormed } from './unicode.js';

const LEASE_MS = 3000; // storage-lease leadership (where Web Locks are missing): renewed every second
const HEARTBEAT_MS = 1000;
// A stream silent for this many of the server's heartbeats is taken for dead (a half-open
// connection after a network change or a sleeping laptop) and reopened.
const MISSED_HEARTBEATS = 2.5;

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
  #stream = null; // the AbortController of the open event stream
  #onOnline = () => this.#setOnline(true);
  #onOffline = () => this.#setOnline(false);
  #onPageHide = () => this.#releaseLease();

  /**
   * @param core the wasm CacheCore (opened with openSynced)
   * @param options { backendUrl, prefix, requestTimeout, headers, storage, node, realtime }
   * @param hooks { applied(keys), acked(batch for the page's other instances), clock(offset for them),
   *   error(CacheError-like), status() }
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
    core.setRealtime(options.realtime !== 'off');
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
    if (!online) this.#stream?.abort();
    this.#core.setOnline(online);
    this.#hooks.status();
    if (online) this.kick();
  }

  #setLeader(leader) {
    if (this.#disposed) return;
    if (!leader) this.#stream?.abort();
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
            const [errors, acked, handled] = this.#core.syncFailed(error.type, error.message, !!error.network, Math.random(), error.status ?? 0, error.index ?? -1);
            this.#hooks.acked(acked);
            for (const e of errors) this.#hooks.error(e);
            // Handled: a change the backend refuses for good left the outbox, or the batches got
            // smaller after a 413; what remains is due at once.
            if (handled) continue;
            this.#hooks.error(error);
            break;
          }
          if (this.#disposed) return;
          const [keys, errors, acked, offset] =
            path === '/sync'
              ? this.#core.syncApplied(answer.cursor, answer.updates, answer.clear, answer.more, answer.now, Math.random())
              : this.#core.syncAcked();
          this.#hooks.acked(acked);
          if (offset !== undefined) this.#hooks.clock(offset);
          this.#hooks.applied(keys);
          for (const e of errors) this.#hooks.error(e);
          for (const { key, reason } of answer?.rejected ?? []) {
            this.#hooks.error({ type: 'REJECTED', message: `the backend did not store the write of ${JSON.stringify(key)}: ${reason}`, retryable: false, key });
          }
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
    if (this.#core.pushDue()) this.#openStream();
    const at = this.#core.syncWake();
    if (at < 0) return;
    // setTimeout's delay is a signed 32-bit number of ms.
    const delay = Math.min(Math.max(0, at - Date.now()), 0x7fffffff);
    this.#timer = setTimeout(() => this.#pump(), delay);
  }

  // The leader's event stream: changes other writers make reach this tab (and, through the
  // cache's tab channel, every tab of the origin) as the backend accepts them, with no polling.
  // A backend without the endpoint (a 4xx other than auth/timeout/rate limit, 501, or an answer
  // that is not an event stream) is polled instead. The stream resumes from the cache's cursor, so nothing is missed between two
  // streams; the core decides when to reconnect.
  async #openStream() {
    const core = this.#core;
    core.pushBegin();
    this.#hooks.status();
    const abort = new AbortController();
    this.#stream = abort;
    const onDispose = () => abort.abort();
    this.#abort.signal.addEventListener('abort', onDispose);
    let unsupported = false;
    let watchdog;
    try {
      const headers = { accept: 'text/event-stream' };
      const extra = typeof this.#headers === 'function' ? await this.#headers() : this.#headers;
      if (extra) Object.assign(headers, extra);
      if (abort.signal.aborted) return;
      const opening = setTimeout(() => abort.abort(), this.#timeout);
      let res;
      try {
        res = await fetch(`${this.#url}/events?cursor=${core.syncCursor()}`, { headers, signal: abort.signal, cache: 'no-store' });
      } finally {
        clearTimeout(opening);
      }
      const type = res.headers.get('content-type') ?? '';
      // A backend without the endpoint answers 404/405/501, or 400 when it reads every request as
      // a JSON POST; a 4xx that retrying can fix (auth, timeout, rate limit) is a failure instead.
      const refused = (res.status >= 400 && res.status < 500 && ![401, 403, 408, 429].includes(res.status)) || res.status === 501;
      if (refused || (res.ok && !type.startsWith('text/event-stream'))) {
        unsupported = true;
        res.body?.cancel().catch(() => {});
        return;
      }
      if (!res.ok) {
        const text = await res.text().catch(() => '');
        const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
        const kind = res.status === 401 || res.status === 403 ? 'UNAUTHORIZED' : 'SERVER';
        this.#hooks.error(failure(kind, `/events answered HTTP ${res.status}: ${text.slice(0, 200)}`, retryable, false));
        return;
      }
      core.pushOpened();
      this.#hooks.status();
      this.#schedule(); // the poll timer is not needed while the stream is open
      let silence = this.#timeout * MISSED_HEARTBEATS;
      const alive = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => abort.abort(), silence);
      };
      alive();
      await readEventStream(
        res.body,
        (events) => {
          for (const e of events) if (e.event === 'ready') silence = readHeartbeat(e.data, silence);
          this.#onPushed(events, abort);
        },
        alive,
      );
    } catch (cause) {
      // A dropped or refused connection: reopened after a backoff, polling meanwhile. A stream
      // that broke the format's limits is closed the same way, and said so.
      if (cause instanceof StreamLimitError) this.#hooks.error(failure('PROTOCOL', `/events: ${cause.message}; reconnecting`, true, false));
    } finally {
      clearTimeout(watchdog);
      this.#abort.signal.removeEventListener('abort', onDispose);
      abort.abort();
      if (this.#stream === abort) this.#stream = null;
      if (!this.#disposed) {
        if (unsupported) core.pushUnsupported();
        else core.pushClosed(Math.random());
        this.#hooks.status();
        this.kick();
      }
    }
  }

  // Applies one chunk's events in one call: updates in order, the last id as the cursor.
  #onPushed(events, abort) {
    const updates = [];
    let clear;
    let cursor = NaN;
    try {
      for (const e of events) {
        if (e.event === 'change') {
          const u = JSON.parse(e.data);
          if (u === null || typeof u !== 'object') throw new Error('a change is not an object');
          pushUpdate(updates, u);
        } else if (e.event === 'clear') {
          const c = JSON.parse(e.data);
          clear = [c?.timestamp, c?.node ?? null];
        } else if (e.event === 'error') {
          abort.abort();
          return;
        } else if (e.event !== 'cursor') {
          continue;
        }
        if (e.id !== null && /^\d+$/.test(e.id)) cursor = Number(e.id);
      }
    } catch (cause) {
      this.#hooks.error(failure('PROTOCOL', `/events sent an unreadable event: ${cause?.message ?? cause}`, true, false));
      abort.abort();
      return;
    }
    if (updates.length === 0 && clear === undefined && Number.isNaN(cursor)) return;
    const [keys, errors] = this.#core.pushApplied(cursor, updates, clear);
    this.#hooks.applied(keys);
    for (const e of errors) this.#hooks.error(e);
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
      const error = failure(status === 401 || status === 403 ? 'UNAUTHORIZED' : 'SERVER', `${path} answered HTTP ${status}: ${text.slice(0, 200)}`, retryable, false);
      error.status = status;
      // A backend that names the one change of a batch it refuses (the reference server's 400s do).
      const index = errorIndex(text);
      if (index !== undefined) error.index = index;
      throw error;
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

// The server's heartbeat from its `ready` event; the watchdog allows a few of them.
function readHeartbeat(data, fallback) {
  try {
    const ms = JSON.parse(data)?.heartbeat;
    return Number.isFinite(ms) && ms > 0 ? ms * MISSED_HEARTBEATS : fallback;
  } catch {
    return fallback;
  }
}

function failure(type, message, retryable, network) {
  return { type, message, retryable, network };
}

// The `index` of an error body `{ error, message, index }`, if it has a usable one.
function errorIndex(text) {
  try {
    const index = JSON.parse(text)?.index;
    return Number.isInteger(index) && index >= 0 && index < 2 ** 31 ? index : undefined;
  } catch {
    return undefined;
  }
}

// An update as the core reads it: [key, valueJson | null, ttl, timestamp, node | null, deleted,
// writtenAt | null]. A key with a lone surrogate is passed as null, which the core refuses (as a
// string it would reach the wasm as another key).
function pushUpdate(updates, u) {
  const deleted = u.deleted === true;
  const key = typeof u.key === 'string' && isWellFormed(u.key) ? u.key : null;
  const value = deleted || u.value === undefined ? null : JSON.stringify(u.value);
  updates.push(key, value, typeof u.ttl === 'number' ? u.ttl : 0, u.timestamp, u.node ?? null, deleted, u.writtenAt ?? null);
}

// Checks the shape of a /sync answer and flattens updates for the core (which checks each field
// again; see pushUpdate).
function readSyncAnswer(data) {
  const bad = (why) => failure('PROTOCOL', `/sync answered an unexpected shape: ${why}`, true, false);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw bad('not an object');
  if (!Array.isArray(data.updates)) throw bad('updates is not an array');
  const cursor = data.cursor ?? data.timestamp;
  if (typeof cursor !== 'number' || !Number.isInteger(cursor) || cursor < 0) throw bad('timestamp is not a non-negative integer');
  const updates = [];
  for (const u of data.updates) {
    if (u === null || typeof u !== 'object') throw bad('an update is not an object');
    pushUpdate(updates, u);
  }
  const clear = data.clear && typeof data.clear === 'object' ? [data.clear.timestamp, data.clear.node ?? null] : undefined;
  const rejected = Array.isArray(data.rejected)
    ? data.rejected.filter((r) => typeof r?.key === 'string').map((r) => ({ key: r.key, reason: String(r.reason ?? 'refused') }))
    : [];
  const now = typeof data.now === 'number' ? data.now : NaN;
  return { cursor, updates, clear, more: data.more === true, rejected, now };
}
