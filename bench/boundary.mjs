// What one `set` costs at the edges, from the call to the backend's acknowledgement: calls across
// the JS↔wasm boundary (each way), storage writes and tab messages, against the floor a
// hand-written cache cannot go under (one storage write, one tab message, one request).
// Counted, not timed: the page wraps the wasm instance's exports and imports before the package
// creates it (WebAssembly.Instance is the only way in), and counts localStorage.setItem and
// BroadcastChannel.postMessage.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, openTab, startServer } from '../tests/browser/harness.mjs';
import { proxy } from '../tests/servers/proxy.mjs';
import { buildReleaseServer, startCacheServer } from './backend.mjs';

function countBoundary() {
  const counts = (window.__edges = { jsToWasm: 0, wasmToJs: 0, storageWrites: 0, tabMessages: 0, requests: 0 });
  // Which functions, and which storage keys: what the note lists.
  const byName = (window.__edgeNames = { exports: new Map(), imports: new Map(), keys: [] });
  const tally = (map, name) => map.set(name, (map.get(name) ?? 0) + 1);
  const RealInstance = WebAssembly.Instance;
  WebAssembly.Instance = function (module, imports) {
    const wrapped = {};
    for (const [ns, fns] of Object.entries(imports)) {
      wrapped[ns] = {};
      for (const [name, f] of Object.entries(fns)) {
        wrapped[ns][name] = typeof f === 'function' ? (...args) => (counts.wasmToJs++, tally(byName.imports, name), f(...args)) : f;
      }
    }
    const instance = new RealInstance(module, wrapped);
    const exports = {};
    for (const [name, f] of Object.entries(instance.exports)) {
      exports[name] = typeof f === 'function' ? (...args) => (counts.jsToWasm++, tally(byName.exports, name), f(...args)) : f;
    }
    return { exports };
  };
  const setItem = Storage.prototype.setItem;
  Storage.prototype.setItem = function (k, v) {
    if (String(k).startsWith('edges_')) {
      counts.storageWrites++;
      byName.keys.push(JSON.stringify(String(k)));
      // The write of the acknowledged record (no "u":1 any more) is the acknowledgement, seen
      // without calling into the cache.
      if (k === 'edges_cart' && !String(v).includes('"u":1')) window.__acked?.();
    }
    return setItem.call(this, k, v);
  };
  const post = BroadcastChannel.prototype.postMessage;
  BroadcastChannel.prototype.postMessage = function (m) {
    counts.tabMessages++;
    return post.call(this, m);
  };
  const fetch = window.fetch;
  window.fetch = (...args) => (counts.requests++, fetch(...args));
}

export async function benchBoundary(browser, report) {
  buildReleaseServer();
  const backend = await startCacheServer();
  const front = await startServer({ api: async (req, res, path) => (path.startsWith('/api/cache/') ? proxy(req, res, backend.origin) : false) });
  const context = await browser.newContext();
  try {
    const page = await openTab(context, `${front.url}/bench/bench.html`, { before: (p) => p.addInitScript(countBoundary) });
    const r = await page.evaluate(async () => {
      const { BackendSyncedCacheService } = await import('/pkg/index.js');
      const cache = new BackendSyncedCacheService({ prefix: 'edges_', backendUrl: '/api/cache', realtime: 'off', syncInterval: 600000 });
      const idle = () =>
        new Promise((resolve) => {
          const check = () => (cache.syncStatus.pending === 0 && !cache.syncStatus.syncing ? resolve() : setTimeout(check, 5));
          check();
        });
      await idle(); // the first sync (and the election) happen before the measured set
      await new Promise((resolve) => setTimeout(resolve, 50));
      const before = { ...window.__edges };
      window.__edgeNames.exports = new Map();
      window.__edgeNames.imports = new Map();
      window.__edgeNames.keys = [];
      const acked = new Promise((resolve) => (window.__acked = resolve));
      await cache.set('cart', { items: [1, 2, 3] });
      await acked;
      // What the input that carried the acknowledgement does after its storage write.
      await new Promise((resolve) => setTimeout(resolve, 0));
      const after = { ...window.__edges };
      const names = window.__edgeNames;
      const listed = { exports: [...names.exports], imports: [...names.imports], keys: names.keys.join(', ') };
      const leader = cache.syncStatus.leader;
      cache.dispose();
      return { ...Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]])), leader, ...listed };
    });
    // The package's wasm has short import and export names; the build keeps what they stand for.
    const original = JSON.parse(readFileSync(join(ROOT, 'target', 'pkg-wasm', 'names.json'), 'utf8'));
    const top = (counts, names) =>
      counts
        .sort((a, b) => b[1] - a[1])
        .map(([name, n]) => `${(names[name] ?? name).replace(/^__wbg_/, '').replace(/_[0-9a-f]{16}$/, '')} ×${n}`)
        .join(', ');
    r.exports = top(r.exports, original.exports);
    r.imports = top(r.imports, original.imports);
    report.row(
      'one set → its acknowledgement: edges crossed',
      `${r.jsToWasm} JS→wasm + ${r.wasmToJs} wasm→JS calls, ${r.storageWrites} storage writes, ${r.tabMessages} tab messages, ${r.requests} requests`,
      'floor: 1 storage write, 1 tab message, 1 request',
      'n/a',
      '—',
    );
    report.note(
      `edges: one instance (${r.leader ? 'the leader' : 'a follower'}), mfe-cache-server (release) behind the front proxy; counted from the set() call until the acknowledged record is in storage and that input has ended (no 'sync' listener: the cache's own cost); ` +
        `JS→wasm counts every call into the wasm's exports (wasm-bindgen's own allocation helpers included), wasm→JS every call of its imports; ` +
        `storage keys written: ${r.keys}; JS→wasm: ${r.exports}; wasm→JS: ${r.imports}; ` +
        `before the client was rebuilt as one core state machine the same set cost 19 JS→wasm and 113 wasm→JS calls, 2 storage writes and 2 tab messages`,
    );
  } finally {
    await context.close();
    await front.close();
    await backend.stop();
  }
}
