// @ts-check
// The cache inspector: a panel any app mounts (no framework), in a shadow root so that neither the
// app's styles nor its own leak. It finds every cache instance on the page, of every copy of the
// package, on the page hub, and shows each one's MFE, writer id, role, network state, outbox and
// last error; every entry with its value, TTL counting down, writer and whether the backend has
// it; and a live log of changes, sync states and errors, with a filter and an offline switch.
// Nothing imports this module but an app that mounts the panel, so bundles without it drop it.

const HUB = Symbol.for('mfe-shared-cache.hub.v2');
const LOG_SIZE = 200;

/** @typedef {import('./index.js').BackendSyncedCacheService} Cache */
/** @typedef {{ isOffline(): boolean, setOffline(offline: boolean): void, onChange(listener: () => void): () => void }} OfflineSwitch */

/** Every instance on the page, in the order they were made. @returns {Cache[]} */
function instancesOnPage() {
  const hub = /** @type {any} */ (globalThis)[HUB];
  const found = [];
  for (const group of hub?.groups?.values() ?? []) for (const peer of group) if (peer.cache) found.push(peer.cache);
  return found;
}

/**
 * The page's own switch: it tells every instance on the page the browser went offline (their
 * requests stop, the outbox fills) or came back, as DevTools' network switch would, without
 * cutting the page's other requests.
 * @returns {OfflineSwitch}
 */
function pageSwitch() {
  let offline = false;
  const listeners = new Set();
  return {
    isOffline: () => offline,
    setOffline(value) {
      offline = value;
      dispatchEvent(new Event(value ? 'offline' : 'online'));
      for (const l of listeners) l();
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** Text for HTML. @param {unknown} v */
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** @param {number | null} expiresAt @param {number} now */
function ttlLeft(expiresAt, now) {
  if (expiresAt === null) return '∞';
  const s = Math.max(0, Math.ceil((expiresAt - now) / 1000));
  if (s >= 86400) return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${s} s`;
}

/** @param {number | null} at @param {number} now */
const ago = (at, now) => (at === null ? 'never' : now - at < 1000 ? 'just now' : `${Math.round((now - at) / 1000)} s ago`);

/** What the Backend column says of an instance's state. */
/** @type {Record<string, string>} */
const STATES = { local: 'none (this browser only)', offline: 'offline', absent: 'no backend answers', syncing: 'syncing', retrying: 'retrying', online: 'online' };

// How the leader learns of other devices' changes.
/** @type {Record<string, string>} */
const HOW = { open: 'pushed by the server', connecting: 'opening the event stream', retrying: 'polling until the stream reopens', unsupported: 'polling (the backend has no push)', off: 'polling' };

const STYLE = `
:host { all: initial; display: block; font: 13px/1.4 system-ui, sans-serif; color: #d8dde8; background: #151a24; border-top: 1px solid #2a3140; }
.bar { display: flex; flex-wrap: wrap; gap: 12px 16px; align-items: center; padding: 8px 16px; }
button, input { font: inherit; }
button { background: #263043; color: #fff; border: 1px solid #3a4660; border-radius: 4px; padding: 2px 10px; cursor: pointer; }
.title { background: transparent; border: 0; font-weight: 600; padding: 2px 0; }
.summary { color: #9aa3b5; }
input[type=search] { background: #0f131b; color: inherit; border: 1px solid #3a4660; border-radius: 4px; padding: 2px 8px; }
.body { padding: 0 16px 12px; max-height: 45vh; overflow: auto; }
table { border-collapse: collapse; width: 100%; margin-top: 8px; }
caption { text-align: left; color: #9aa3b5; padding: 4px 0; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #232a38; vertical-align: top; }
th { color: #9aa3b5; font-weight: 500; }
code { font: 12px ui-monospace, monospace; color: #b6c2ff; word-break: break-all; }
.num { text-align: right; }
.dim { color: #6d768a; }
.error { color: #ff8a8a; }
.dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: #4caf50; }
.dot.offline, .dot.absent, .dot.local { background: #888; } .dot.syncing { background: #4da3ff; } .dot.retrying { background: #ffb74d; }
.log td:first-child { white-space: nowrap; color: #6d768a; }
`;

/**
 * Mounts the inspector at the end of `target` (default: the document's body); returns the
 * function that unmounts it. Options: `open` (default true), and `offline`, a switch of your own
 * (`{ isOffline, setOffline, onChange }`) in place of the page's.
 * @param {Element} [target] @param {{ open?: boolean, offline?: OfflineSwitch }} [options]
 */
export function mountDevtools(target = document.body, options = {}) {
  const host = document.createElement('aside');
  host.setAttribute('aria-label', 'Cache inspector');
  host.dataset.testid = 'dev-panel';
  const root = host.attachShadow({ mode: 'open' });
  const network = options.offline ?? pageSwitch();
  let open = options.open !== false;
  let filter = '';
  /** @type {{ at: number, app: string, kind: string, detail: string }[]} */
  const log = [];
  /** @type {Map<Cache, () => void>} */
  const watched = new Map();

  root.innerHTML = `<style>${STYLE}</style>
    <div class="bar">
      <button type="button" class="title" aria-expanded="true">Cache inspector</button>
      <span class="summary" data-testid="dp-summary"></span>
      <label><input type="checkbox" data-testid="offline-toggle"> Offline</label>
      <input type="search" placeholder="Filter keys, values, events" aria-label="Filter" data-testid="dp-filter">
      <button type="button" data-testid="dp-clear">Clear cache</button>
    </div>
    <div class="body"></div>`;
  const $ = (/** @type {string} */ selector) => /** @type {HTMLElement} */ (root.querySelector(selector));
  const body = $('.body');
  const toggle = /** @type {HTMLInputElement} */ ($('[data-testid=offline-toggle]'));
  $('.title').onclick = () => {
    open = !open;
    $('.title').setAttribute('aria-expanded', String(open));
    render();
  };
  toggle.onchange = () => network.setOffline(toggle.checked);
  $('[data-testid=dp-filter]').oninput = (e) => {
    filter = /** @type {HTMLInputElement} */ (e.target).value.toLowerCase();
    render();
  };
  $('[data-testid=dp-clear]').onclick = () => void instancesOnPage()[0]?.clear();

  /** @param {Cache} cache @param {string} kind @param {string} detail */
  const note = (cache, kind, detail) => {
    log.unshift({ at: Date.now(), app: name(cache), kind, detail });
    log.length = Math.min(log.length, LOG_SIZE);
    render();
  };
  /** @param {Cache} cache */
  const name = (cache) => cache.options.app ?? cache.nodeId;

  // Follows instances as they come (an MFE loaded later) and go (disposed).
  const watch = () => {
    const now = new Set(instancesOnPage());
    for (const cache of now) {
      if (watched.has(cache)) continue;
      const offs = [
        cache.on('change', (key) => note(cache, 'change', key)),
        cache.on('sync', (s) => note(cache, 'sync', `${s.syncing ? 'syncing' : s.online ? 'online' : 'offline'}, ${s.pending} pending${s.lastError ? `, ${s.lastError}` : ''}`)),
        cache.on('error', (e) => note(cache, 'error', `${e.type}: ${e.message}`)),
      ];
      watched.set(cache, () => offs.forEach((off) => off()));
    }
    for (const [cache, off] of watched) if (!now.has(cache)) (off(), watched.delete(cache));
  };

  const matches = (/** @type {string} */ text) => filter === '' || text.toLowerCase().includes(filter);

  function render() {
    const caches = [...watched.keys()];
    const first = caches[0];
    toggle.checked = network.isOffline();
    const now = Date.now();
    const entries = safe(() => first?.entries() ?? [], []);
    $('[data-testid=dp-summary]').textContent = first
      ? `${entries.length} entries · ${entries.filter((e) => e.pending).length} waiting for the server · tabs via ${safe(() => first.tabLink, '?')}`
      : 'no cache on this page yet';
    if (!open) {
      body.innerHTML = '';
      return;
    }
    const writers = new Set(caches.map((c) => c.nodeId));
    const instances = caches.map((cache) => {
      const s = safe(() => cache.syncStatus, null);
      if (!s) return '';
      const state = !s.enabled ? 'local' : network.isOffline() || (!s.online && s.backend !== 'absent') ? 'offline' : s.backend === 'absent' ? 'absent' : s.syncing ? 'syncing' : s.failures > 0 ? 'retrying' : 'online';
      const role = !s.enabled ? 'no backend' : s.leader ? `leader: ${HOW[s.realtime] ?? s.realtime}` : 'follower';
      const n = esc(name(cache));
      // Rows without line breaks: a row's text reads as its cells' texts, one after the other.
      return (
        `<tr data-testid="instance-${n}"><td><strong>${n}</strong> <code>${esc(cache.nodeId)}</code></td>` +
        `<td><span class="dot ${state}"></span> ${STATES[state]}</td><td data-testid="leader-${n}">${esc(role)}</td>` +
        `<td class="num" data-testid="pending-${n}">${s.pending}</td><td>${ago(s.lastSyncedAt, now)}</td><td class="error">${esc(s.lastError ?? '')}</td></tr>`
      );
    });
    const rows = entries
      .map((e) => ({ e, value: JSON.stringify(e.value) }))
      .filter(({ e, value }) => matches(`${e.key} ${value}`))
      .map(({ e, value }) => {
        const k = esc(e.key);
        const where = writers.has(e.writer) ? ' MFE, this tab' : ' MFE, another tab, device or earlier page load';
        return (
          `<tr data-testid="entry-${k}"><td><code>${k}</code></td><td><code>${esc(value)}</code></td>` +
          `<td data-testid="ttl-${k}">${ttlLeft(e.expiresAt, now)}</td><td>${esc(e.app ?? 'unnamed app')}${where} <code class="dim">${esc(e.writer)}</code></td>` +
          `<td data-testid="sync-${k}">${e.pending ? 'pending' : 'synced'}</td></tr>`
        );
      });
    const events = log
      .filter((l) => matches(`${l.app} ${l.kind} ${l.detail}`))
      .slice(0, 50)
      .map((l) => `<tr class="${l.kind === 'error' ? 'error' : ''}"><td>${new Date(l.at).toLocaleTimeString()}</td><td>${esc(l.app)}</td><td>${l.kind}</td><td>${esc(l.detail)}</td></tr>`);
    body.innerHTML = `
      <table><caption>Instances on this page (every copy of the package)</caption>
        <thead><tr><th>MFE · writer id</th><th>Backend</th><th>Role</th><th class="num">Outbox</th><th>Last sync</th><th>Last error</th></tr></thead>
        <tbody>${instances.join('')}</tbody></table>
      <table data-testid="dp-entries"><caption>Entries${first ? ` (prefix ${esc(first.options.prefix)})` : ''}</caption>
        <thead><tr><th>Key</th><th>Value</th><th>Expires in</th><th>Written by</th><th>Server</th></tr></thead>
        <tbody>${rows.join('') || '<tr><td colspan="5" class="dim">Nothing to show.</td></tr>'}</tbody></table>
      <table class="log" data-testid="dp-log"><caption>Events, newest first</caption>
        <tbody>${events.join('') || '<tr><td class="dim">None yet.</td></tr>'}</tbody></table>`;
  }

  // Once a second: TTLs count down, "synced 3 s ago" moves, MFEs loaded since show up.
  const tick = () => {
    watch();
    render();
  };
  const timer = setInterval(tick, 1000);
  const offNetwork = network.onChange(render);
  target.append(host);
  tick();
  return () => {
    clearInterval(timer);
    offNetwork();
    for (const off of watched.values()) off();
    host.remove();
  };
}

/** What `read()` gives, or `fallback` when it throws (a disposed instance). @template T @param {() => T} read @param {T} fallback */
function safe(read, fallback) {
  try {
    return read();
  } catch {
    return fallback;
  }
}
