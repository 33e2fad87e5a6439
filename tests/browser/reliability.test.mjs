// No write lost or stuck, in headless Chromium against mfe-cache-server: storage full of pending
// writes, offline bursts larger than a request body, a change the backend refuses for good,
// devices whose clocks are hours or days fast, broken messages from another copy of the package,
// and a backend whose stream or pages never end.
import test, { describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fillStorage, until } from './harness.mjs';
import { SERVER_BIN, referenceServer } from '../servers/backends.mjs';
import { proxy } from '../servers/proxy.mjs';
import { environment, eventually, startCache, syncedTab } from './sync-env.mjs';

const skip = existsSync(SERVER_BIN) ? false : `${SERVER_BIN} is not built (run make test)`;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

// A tab's clock running `ms` ahead (its wasm reads Date.now() too).
const clockAhead = (ms) => (page) =>
  page.addInitScript((ms) => {
    const real = Date.now.bind(Date);
    Date.now = () => real() + ms;
  }, ms);

const online = (tab) => tab.evaluate(() => window.dispatchEvent(new Event('online')));

// Reads a request's body, for a test answering it itself.
const readBody = (req) =>
  new Promise((resolve) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => resolve(body));
  });

describe('no write lost or stuck (mfe-cache-server)', { skip }, () => {
  let env;
  test.before(async () => {
    env = await environment(() => referenceServer());
  });
  test.after(async () => env?.close());
  test.beforeEach(() => {
    env.state.mode = 'ok';
    env.state.eventsMode = 'ok';
    env.state.intercept = null;
    env.state.urls.length = 0;
  });

  test('under quota pressure only acknowledged records are evicted: pending writes survive a reload and reach the server', async () => {
    const ctx = await env.browser.newContext();
    const tab = await syncedTab(env, ctx, { prefix: 'q1_', realtime: 'off' });
    await tab.evaluate(() => Promise.all([c.set('synced-a', 'a'.repeat(400_000)), c.set('synced-b', 'b'.repeat(400_000)), c.set('doomed', 1)]));
    await until(tab, () => c.syncStatus.pending === 0, undefined, 8000);

    env.state.mode = 'reset'; // the backend is unreachable from here on
    await tab.evaluate(async () => {
      await c.remove('doomed'); // a pending remove: a dead entry, the first eviction candidate before
      await c.set('p1', 'p'.repeat(400_000));
    });
    await tab.evaluate(fillStorage);
    const r = await tab.evaluate(async () => {
      const out = {};
      try {
        await c.set('p2', 'q'.repeat(400_000)); // fits once an acknowledged record goes
        out.p2 = 'ok';
      } catch (e) {
        out.p2 = e.type;
      }
      try {
        await c.set('p3', 'r'.repeat(3_000_000)); // never fits without evicting pending writes
        out.p3 = 'ok';
      } catch (e) {
        out.p3 = [e.type, e.key];
      }
      const mark = (k) => {
        const text = localStorage.getItem('q1_' + k);
        return text === null ? 'evicted' : JSON.parse(text).u === 1 ? 'pending' : 'synced';
      };
      out.records = Object.fromEntries(['doomed', 'p1', 'p2', 'synced-a', 'synced-b'].map((k) => [k, mark(k)]));
      out.pending = c.syncStatus.pending;
      out.inMemory = [c.get('synced-a')?.length, c.get('p3')?.length];
      return out;
    });
    assert.deepEqual(r, {
      p2: 'ok',
      p3: ['QUOTA_EXCEEDED', 'p3'],
      records: { doomed: 'pending', p1: 'pending', p2: 'pending', 'synced-a': 'evicted', 'synced-b': 'synced' },
      pending: 4,
      inMemory: [400_000, 3_000_000],
    });

    // A reload while still offline: what was persisted is still pending (p3 lived in that page only).
    await tab.reload();
    await tab.waitForFunction(() => window.__ready === true);
    await startCache(tab, { prefix: 'q1_', realtime: 'off' });
    assert.equal(await tab.evaluate(() => c.syncStatus.pending), 3);
    env.state.mode = 'ok';
    await online(tab);
    await until(tab, () => c.syncStatus.pending === 0, undefined, 8000);
    const values = await env.backend.values();
    assert.deepEqual(
      { p1: values.p1?.length, p2: values.p2?.length, doomed: values.doomed, syncedB: values['synced-b']?.length },
      { p1: 400_000, p2: 400_000, doomed: undefined, syncedB: 400_000 },
    );
    await ctx.close();
  });

  test('a write that cannot be persisted at all is QUOTA_EXCEEDED and still reaches the server from memory', async () => {
    const ctx = await env.browser.newContext();
    const tab = await syncedTab(env, ctx, { prefix: 'q2_', realtime: 'off' });
    await tab.evaluate(fillStorage);
    const type = await tab.evaluate(async () => {
      try {
        await c.set('in-memory', 'm'.repeat(200_000));
        return 'ok';
      } catch (e) {
        return e.type;
      }
    });
    assert.equal(type, 'QUOTA_EXCEEDED');
    await eventually(async () => (await env.backend.values())['in-memory']?.length === 200_000, 'the server to have it');
    await ctx.close();
  });

  test('450 offline writes of 3 KB (more than a request body) go in several requests and all arrive', async () => {
    const ctx = await env.browser.newContext();
    const tab = await syncedTab(env, ctx, { prefix: 'b1_', realtime: 'off' });
    env.state.mode = 'reset';
    await tab.evaluate(() => Promise.all(Array.from({ length: 450 }, (_, i) => c.set(`k${i}`, `${'x'.repeat(3000)}${i}`))));
    env.state.urls.length = 0;
    env.state.mode = 'ok';
    await online(tab);
    await until(tab, () => c.syncStatus.pending === 0, undefined, 15000);
    const values = await env.backend.values();
    const arrived = Array.from({ length: 450 }, (_, i) => values[`k${i}`] === `${'x'.repeat(3000)}${i}`);
    assert.equal(arrived.filter(Boolean).length, 450);
    const syncs = env.state.urls.filter((u) => u.startsWith('/api/cache/sync')).length;
    assert.ok(syncs >= 3, `about 1.4 MB in bodies of at most 512 KiB takes at least 3 requests, took ${syncs}`);
    assert.deepEqual(await tab.evaluate(() => errors.filter((t) => t !== 'NETWORK')), []);
    await ctx.close();
  });

  test('a change too large for the backend is REJECTED with its key, kept here, and the others flow', async () => {
    const ctx = await env.browser.newContext();
    const tab = await syncedTab(env, ctx, { prefix: 'b2_', realtime: 'off' });
    env.state.mode = 'reset';
    await tab.evaluate(() => Promise.all([c.set('before', 1), c.set('big', 'B'.repeat(1_200_000)), c.set('later', 2)]));
    env.state.mode = 'ok';
    await online(tab);
    await until(tab, () => c.syncStatus.pending === 0, undefined, 8000);
    const r = await tab.evaluate(() => ({
      rejected: errorLog.filter((e) => e.type === 'REJECTED').map((e) => e.key),
      kept: c.get('big')?.length,
      other: errors.filter((t) => t !== 'REJECTED' && t !== 'NETWORK'),
    }));
    assert.deepEqual(r, { rejected: ['big'], kept: 1_200_000, other: [] });
    let values = await env.backend.values();
    assert.deepEqual([values.before, values.later, values.big], [1, 2, undefined]);
    // Written again, the key is sent again.
    await tab.evaluate(() => c.set('big', 'small now'));
    await until(tab, () => c.syncStatus.pending === 0, undefined, 8000);
    values = await env.backend.values();
    assert.equal(values.big, 'small now');
    await ctx.close();
  });

  test('a change the backend names in a 400 is set aside, and the rest of its batch is sent at once', async () => {
    const ctx = await env.browser.newContext();
    const tab = await syncedTab(env, ctx, { prefix: 'b3_', realtime: 'off' });
    let refused = 0;
    env.state.intercept = async (req, res, path) => {
      if (path !== '/api/cache/sync') return false;
      const body = await readBody(req);
      const index = JSON.parse(body).changes.findIndex((ch) => ch.key === 'poison');
      if (index < 0) return proxy(req, res, env.backend.origin, body);
      refused++;
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid_value', message: `changes[${index}]: not for this backend`, index, key: 'poison' }));
      return true;
    };
    await tab.evaluate(() => Promise.all([c.set('a', 1), c.set('poison', 2), c.set('z', 3)]));
    await until(tab, () => c.syncStatus.pending === 0, undefined, 8000);
    const values = await env.backend.values();
    assert.deepEqual([values.a, values.z, values.poison, refused], [1, 3, undefined, 1]);
    const r = await tab.evaluate(() => ({
      rejected: errorLog.filter((e) => e.type === 'REJECTED').map((e) => e.key),
      kept: c.get('poison'),
      failures: c.syncStatus.failures,
    }));
    assert.deepEqual(r, { rejected: ['poison'], kept: 2, failures: 0 });
    await ctx.close();
  });

  test('devices 23 h and 3 days fast: every device syncs, a 5 s TTL lives 5 s everywhere, and a write after seeing another wins', async () => {
    const options = { prefix: 'skew_', syncInterval: 300, realtime: 'off' };
    const devices = [await env.browser.newContext(), await env.browser.newContext(), await env.browser.newContext()];
    const right = await syncedTab(env, devices[0], options);
    const fast23h = await syncedTab(env, devices[1], options, { before: clockAhead(23 * HOUR) });
    const fast3d = await syncedTab(env, devices[2], options, { before: clockAhead(3 * DAY) });
    const all = [right, fast23h, fast3d];

    await fast23h.evaluate(() => c.set('k', 'theirs', 60));
    await until(right, () => c.get('k') === 'theirs', undefined, 8000);
    await right.evaluate(() => c.set('k', 'mine', 5));
    for (const tab of all) await until(tab, () => c.get('k') === 'mine', undefined, 8000);
    for (const tab of all) {
      const left = await tab.evaluate(() => c.getTimeToExpiry('k'));
      // 5 s, give or take the clock-offset estimate (about a second): not 23 h.
      assert.ok(left > 0 && left <= 7_000, `time to expiry ${left} ms`);
    }
    const onServer = (await (await fetch(`${env.backend.origin}/api/cache/entries`)).json()).entries.find((e) => e.key === 'k');
    const expiresAt = (onServer.writtenAt ?? onServer.timestamp) + onServer.ttl * 1000;
    assert.ok(expiresAt <= Date.now() + 7_000, `the server expires it at ${expiresAt}, ${expiresAt - Date.now()} ms from now`);
    for (const tab of all) await until(tab, () => c.get('k') === null, undefined, 10_000);

    // The device three days fast writes, and it reaches the others; a write made after seeing it wins.
    await fast3d.evaluate(() => c.set('x', 'three-days-fast'));
    for (const tab of [right, fast23h]) await until(tab, () => c.get('x') === 'three-days-fast', undefined, 8000);
    await right.evaluate(() => c.set('x', 'right-after'));
    for (const tab of all) await until(tab, () => c.get('x') === 'right-after', undefined, 8000);
    await fast23h.evaluate(() => c.set('x', 'last'));
    for (const tab of all) await until(tab, () => c.get('x') === 'last', undefined, 8000);
    for (const tab of all) await until(tab, () => c.syncStatus.pending === 0, undefined, 8000);
    assert.equal((await env.backend.values()).x, 'last');
    for (const tab of all) assert.deepEqual(await tab.evaluate(() => errors.filter((t) => t !== 'NETWORK')), []);
    for (const ctx of devices) await ctx.close();
  });

  test('broken messages from another copy of the package on the page are PROTOCOL errors and wedge nothing', async () => {
    const ctx = await env.browser.newContext();
    const tab = await syncedTab(env, ctx, { prefix: 'hub_', realtime: 'off' }, { query: '?copies=2' });
    const r = await tab.evaluate(() => {
      window.c2 = new pkg2.BackendSyncedCacheService({ prefix: 'hub_', backendUrl: '/api/cache', syncInterval: 60000, retryDelay: 100, requestTimeout: 1000, realtime: 'off' });
      // The page hub carries the core's own news text (version 2): hostile variants of it, and
      // of its records, from a copy of the package that went wrong.
      const hub = globalThis[Symbol.for('mfe-shared-cache.hub.v2')];
      const deliver = (m) => {
        for (const peer of hub.groups.get('hub_')) peer.deliver(m);
      };
      const now = Date.now();
      // The record tag of prefix 'hub_' (FNV-1a of the prefix, base 36), as storage records carry it.
      let hash = 0x811c9dc5;
      for (const ch of 'hub_') hash = Math.imul(hash ^ ch.charCodeAt(0), 0x01000193) >>> 0;
      const tag = hash.toString(36);
      const record = (fields) => `{"t":${now},"n":"evil","p":"${tag}",${fields}}`;
      const news = (body) => `{"v":2,"page":"${hub.pageId}",${body}}`;
      const deep = '['.repeat(100_000) + ']'.repeat(100_000);
      for (const m of [
        news(`"w":{"bad":${record('"v":{not json')}}`),
        news(`"w":{"deep":${record(`"v":${deep}`)}}`),
        news(`"w":{"x\\ud800":${record('"v":1')}}`),
        news(`"w":{"typed":{"n":"evil","p":"${tag}","v":7}}`),
        news(`"w":{"r":${record('"d":1').replace(`"t":${now}`, '"t":"now"')}}`),
        news('"clear":{"t":1}'),
        '{"v":1,"page":"x"}',
        null,
      ]) {
        deliver(m);
      }
      const read = (cache) => {
        try {
          return [cache.get('bad'), cache.get('deep'), cache.entries().length];
        } catch (e) {
          return `threw ${e.name}: ${e.message}`;
        }
      };
      return { c: read(c), c2: read(c2), protocol: errors.filter((t) => t === 'PROTOCOL').length };
    });
    assert.deepEqual(r, { c: [null, null, 0], c2: [null, null, 0], protocol: 8 });
    // Sync is not wedged: a write from either copy reaches the backend.
    await tab.evaluate(() => Promise.all([c.set('good', 1), c2.set('good2', 2)]));
    await until(tab, () => c.syncStatus.pending === 0 && c2.syncStatus.pending === 0, undefined, 8000);
    const values = await env.backend.values();
    assert.deepEqual([values.good, values.good2, values.bad], [1, 2, undefined]);
    assert.deepEqual(await tab.evaluate(() => errors.filter((t) => t !== 'PROTOCOL')), []);
    await ctx.close();
  });

  test('an event stream whose line never ends is closed with a PROTOCOL error and reopened with backoff', async () => {
    let opened = 0;
    let closedByClient = 0;
    env.state.intercept = async (req, res, path) => {
      if (path !== '/api/cache/events') return false;
      opened++;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.write(': hello\n\nevent: ready\ndata: {"heartbeat":60000}\n\ndata: ');
      const chunk = 'x'.repeat(64 * 1024);
      const timer = setInterval(() => res.write(chunk), 2);
      res.on('close', () => {
        clearInterval(timer);
        closedByClient++;
      });
      return true;
    };
    const ctx = await env.browser.newContext();
    const tab = await syncedTab(env, ctx, { prefix: 'sse_', realtime: 'auto' });
    await until(tab, () => errorLog.some((e) => e.type === 'PROTOCOL' && e.message.includes('longer than')), undefined, 15000);
    await eventually(() => closedByClient >= 1, 'the client to close the stream');
    await eventually(() => opened >= 2, 'the stream to be opened again after a backoff', 15000);
    await ctx.close();
  });

  test('a backend answering more: true without moving its cursor gets a PROTOCOL error and backoff, not a request loop', async () => {
    let syncs = 0;
    // The second answer (the one that fails) waits until the test listens for the error: the
    // first sync starts as the cache opens, before the test's next evaluate.
    let listening;
    const listened = new Promise((resolve) => (listening = resolve));
    env.state.intercept = async (req, res, path) => {
      if (path !== '/api/cache/sync') return false;
      syncs++;
      await readBody(req);
      if (syncs === 2) await listened;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ updates: [], timestamp: 7, cursor: 7, more: true }));
      return true;
    };
    const ctx = await env.browser.newContext();
    const tab = await syncedTab(env, ctx, { prefix: 'more_', realtime: 'off' }, {
      before: (p) => p.addInitScript(() => {
        window.syncsAtError = null;
      }),
    });
    await tab.evaluate(() => c.on('error', (e) => {
      if (e.type === 'PROTOCOL' && window.syncsAtError === null) window.syncsAtError = apiCalls.filter((p) => p === '/api/cache/sync').length;
    }));
    listening();
    await until(tab, () => window.syncsAtError !== null, undefined, 8000);
    // The first answer moves the cursor from 0 to 7 (a next page is fine); the second does not.
    assert.equal(await tab.evaluate(() => window.syncsAtError), 2);
    assert.ok((await tab.evaluate(() => c.syncStatus.failures)) >= 1);
    assert.ok(syncs >= 2);
    await ctx.close();
  });
});

describe('keys with lone surrogates', () => {
  let env;
  test.before(async () => {
    env = await environment(async () => ({ handle: () => false, stop: async () => {} }));
  });
  test.after(async () => env?.close());

  test('are INVALID_KEY everywhere in the API, so two of them never alias', async () => {
    const ctx = await env.browser.newContext();
    const tab = await syncedTab(env, ctx, { prefix: 'sur_', backendUrl: null });
    const r = await tab.evaluate(async () => {
      const type = async (f) => {
        try {
          await f();
          return 'ok';
        } catch (e) {
          return e.type;
        }
      };
      return {
        set: await type(() => c.set('x\ud800', 1)),
        setLow: await type(() => c.set('x\udbff', 2)),
        lone: await type(() => c.set('\udc00y', 2)),
        get: await type(() => c.get('x\ud800')),
        remove: await type(() => c.remove('x\udbff')),
        subscribe: await type(() => c.subscribe('x\ud800', () => {})),
        pair: await type(() => c.set('x\ud83d\ude00', 3)),
        pairValue: c.get('x\ud83d\ude00'),
        replacement: c.get('x\ufffd'),
        stored: Object.keys(localStorage).filter((k) => k.startsWith('sur_')),
      };
    });
    assert.deepEqual(r, {
      set: 'INVALID_KEY',
      setLow: 'INVALID_KEY',
      lone: 'INVALID_KEY',
      get: 'INVALID_KEY',
      remove: 'INVALID_KEY',
      subscribe: 'INVALID_KEY',
      pair: 'ok',
      pairValue: 3,
      replacement: null,
      stored: ['sur_x\ud83d\ude00'],
    });
    await ctx.close();
  });
});
