// Loading through the cache (seeds 002 and 004): getOrFetch with one load per key across copies and
// tabs, retries, defaults, stale-while-revalidate, filters; invalidation by pattern; the inspection
// API (keys, size, has, getStats, getTimeToExpiry); human TTLs; logging; scopes.
import test, { describe } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openTab, startServer } from './harness.mjs';

describe('loading, invalidation and inspection', () => {
  let server;
  let browser;
  const loads = new Map(); // key -> number of loader requests the server saw
  test.before(async () => {
    server = await startServer({
      // A slow data source that counts its calls: /source/<key> answers {"key": …} after 150 ms.
      api: async (req, res, path) => {
        if (!path.startsWith('/source/')) return false;
        const key = path.slice('/source/'.length);
        loads.set(key, (loads.get(key) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 150));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ key, n: loads.get(key) }));
        return true;
      },
    });
    browser = await launch();
  });
  test.after(async () => {
    await browser?.close();
    await server?.close();
  });
  const page = (query = '') => `${server.url}/tests/browser/page.html${query}`;

  test('three tabs call getOrFetch on one key at once: the loader runs once, every tab gets its value', async () => {
    const ctx = await browser.newContext();
    const tabs = await Promise.all([0, 1, 2].map(() => openTab(ctx, page('?copies=2'))));
    const results = await Promise.all(
      tabs.map((t) =>
        t.evaluate(async () => {
          const a = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'sf_' });
          const b = new pkg2.BackendSyncedCacheService({ backendUrl: null, prefix: 'sf_' });
          const load = () => fetch('/source/stores').then((r) => r.json());
          // Two copies of the package in each tab, each asking twice.
          return Promise.all([a.getOrFetch('stores', load), a.getOrFetch('stores', load), b.getOrFetch('stores', load), b.getOrFetch('stores', load)]);
        }),
      ),
    );
    assert.equal(loads.get('stores'), 1, 'one loader call in all');
    for (const r of results) assert.deepEqual(r, Array(4).fill({ key: 'stores', n: 1 }));
    for (const t of tabs) assert.deepEqual(t.problems, []);
    await ctx.close();
  });

  test('100 keys × 3 tabs concurrently: exactly one load per key', async () => {
    const ctx = await browser.newContext();
    const tabs = await Promise.all([0, 1, 2].map(() => openTab(ctx, page())));
    await Promise.all(
      tabs.map((t) =>
        t.evaluate(async () => {
          const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'many_' });
          await Promise.all(Array.from({ length: 100 }, (_, i) => c.getOrFetch(`k${i}`, () => fetch(`/source/many${i}`).then((r) => r.json()))));
        }),
      ),
    );
    const counts = Array.from({ length: 100 }, (_, i) => loads.get(`many${i}`));
    assert.deepEqual(counts, Array(100).fill(1));
    await ctx.close();
  });

  test('a hit does not call the loader; ttl strings, filter, and a loader result that is not JSON', async () => {
    const ctx = await browser.newContext();
    const t = await openTab(ctx, page());
    const r = await t.evaluate(async () => {
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'hit_' });
      let calls = 0;
      const loader = async () => ({ items: [1, 2, 3], secret: 'x', n: ++calls });
      const first = await c.getOrFetch('list', loader, { ttl: '5m', filter: ({ secret, ...rest }) => rest });
      const second = await c.getOrFetch('list', loader);
      const ttl = c.getTimeToExpiry('list');
      let notJson;
      try {
        await c.getOrFetch('bad', async () => new Map());
      } catch (e) {
        notJson = [e.type, c.has('bad')];
      }
      return { first, same: first === second, calls, ttlOk: ttl > 299000 && ttl <= 300000, notJson };
    });
    assert.deepEqual(r, { first: { items: [1, 2, 3], n: 1 }, same: true, calls: 1, ttlOk: true, notJson: ['INVALID_VALUE', false] });
    await ctx.close();
  });

  test('retries: a loader that fails twice then succeeds; one that always fails gives RETRY_EXHAUSTED or the default', async () => {
    const ctx = await browser.newContext();
    const t = await openTab(ctx, page());
    const r = await t.evaluate(async () => {
      const records = [];
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'retry_', logLevel: 'info', logger: (rec) => records.push(rec) });
      const retry = { initialDelay: 5, maxDelay: 20, backoffFactor: 2 };
      let calls = 0;
      const flaky = async () => {
        if (++calls <= 2) throw new TypeError('Failed to fetch');
        return 'ok';
      };
      const value = await c.getOrFetch('flaky', flaky, { retry });
      const attempts = records.filter((x) => x.message === 'retry attempt').map((x) => [x.attempt, x.delay]);

      let down = 0;
      const broken = async () => {
        down++;
        throw Object.assign(new Error('503 from upstream'), { status: 503 });
      };
      let exhausted;
      try {
        await c.getOrFetch('down', broken, { retry });
      } catch (e) {
        exhausted = { type: e.type, retryable: e.retryable, cause: e.cause.message, key: e.key, isCacheError: e instanceof pkg.CacheError };
      }
      const errors = [];
      c.on('error', (e) => errors.push(e.type));
      const withDefault = await c.getOrFetch('down', broken, { retry: { maxRetries: 0 }, defaultValue: [] });
      const stored = c.has('down');
      const downCalls = down;
      let notRetried = 0;
      let fatal;
      try {
        await c.getOrFetch('fatal', async () => {
          notRetried++;
          throw new Error('404 no such store');
        });
      } catch (e) {
        fatal = e.type;
      }
      const fallback = await c.getOrFetchWithFallback('down2', broken, { retry: { maxRetries: 1, initialDelay: 1 } });
      const fallbackBadKey = await c.getOrFetchWithFallback('', broken, { defaultValue: 'd' });
      return { value, calls, attempts, exhausted, down: downCalls, withDefault, stored, notRetried, fatal, fallback, fallbackBadKey, errors };
    });
    assert.deepEqual(r, {
      value: 'ok',
      calls: 3,
      attempts: [[1, 5], [2, 10]],
      exhausted: { type: 'RETRY_EXHAUSTED', retryable: false, cause: '503 from upstream', key: 'down', isCacheError: true },
      down: 5, // 4 attempts (3 retries), then 1 with maxRetries 0
      withDefault: [],
      stored: false,
      notRetried: 1,
      fatal: 'FETCH_FAILED',
      fallback: null,
      fallbackBadKey: 'd',
      // The default's reason, the fallback's reason, the fallback's bad key: each reported.
      errors: ['RETRY_EXHAUSTED', 'RETRY_EXHAUSTED', 'INVALID_KEY'],
    });
    await ctx.close();
  });

  test('stale-while-revalidate serves the expired value at once, then the fresh one (fake clock)', async () => {
    const ctx = await browser.newContext();
    const t = await openTab(ctx, page(), { before: (p) => p.clock.install({ time: new Date('2026-11-21T10:00:00Z') }) });
    await t.evaluate(async () => {
      window.c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'swr_' });
      window.version = 1;
      window.loader = async () => `v${version}`;
      await c.getOrFetch('conf', loader, { ttl: 60 });
    });
    await t.clock.fastForward(61_000);
    const r = await t.evaluate(async () => {
      version = 2;
      const seen = [];
      c.subscribe('conf', (v) => seen.push(v));
      const expired = c.get('conf');
      const served = await c.getOrFetch('conf', loader, { ttl: 60, staleWhileRevalidate: true });
      // The refresh runs behind (a Web Lock, the loader, the write): wait for its notification.
      await new Promise((resolve) => (seen.length > 0 ? resolve() : c.subscribe('conf', resolve)));
      return { expired, served, now: c.get('conf'), seen };
    });
    assert.deepEqual(r, { expired: null, served: 'v1', now: 'v2', seen: ['v2'] });
    await ctx.close();
  });

  test('invalidate by pattern reaches other tabs; keys, size, has, getStats, getTimeToExpiry', async () => {
    const ctx = await browser.newContext();
    const a = await openTab(ctx, page());
    const b = await openTab(ctx, page());
    await b.evaluate(() => {
      window.c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'inv_' });
      window.seen = [];
      c.subscribe('stores:1', (v) => seen.push(v));
    });
    const r = await a.evaluate(async () => {
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'inv_' });
      await Promise.all([c.set('stores:1', 1), c.set('stores:2', 2), c.set('stores', 0), c.set('analytics:1', 3, 0), c.set('a*b', 4)]);
      const before = { keys: c.keys(), stores: c.keys('stores:*'), star: c.keys('a\\*b'), q: c.keys('stores:?'), size: c.size() };
      c.get('stores:1');
      c.get('nope');
      const count = await c.invalidate('stores:*');
      let bad;
      try {
        c.keys('oops\\');
      } catch (e) {
        bad = e.type;
      }
      return {
        before,
        count,
        after: c.keys(),
        has: [c.has('stores:1'), c.has('stores')],
        stats: c.getStats(),
        ttl: [c.getTimeToExpiry('analytics:1'), c.getTimeToExpiry('stores:1'), c.getTimeToExpiry('stores') > 3599000],
        bad,
        again: await c.invalidate('stores:*'),
      };
    });
    assert.deepEqual(r.before, { keys: ['a*b', 'analytics:1', 'stores', 'stores:1', 'stores:2'], stores: ['stores:1', 'stores:2'], star: ['a*b'], q: ['stores:1', 'stores:2'], size: 5 });
    assert.equal(r.count, 2);
    assert.deepEqual(r.after, ['a*b', 'analytics:1', 'stores']);
    assert.deepEqual(r.has, [false, true]);
    assert.deepEqual(r.stats, { size: 3, active: 3, expired: 0, hits: 1, misses: 1, hitRate: 0.5, pending: 0 });
    assert.deepEqual(r.ttl, [Infinity, null, true]);
    assert.equal(r.bad, 'INVALID_KEY');
    assert.equal(r.again, 0);
    await b.waitForFunction(() => seen.length === 2 && seen[1] === null && c.keys('stores:*').length === 0);
    await ctx.close();
  });

  test('TTL strings: units, compounds and typed errors, for set, getOrFetch and defaultTTL', async () => {
    const ctx = await browser.newContext();
    const t = await openTab(ctx, page());
    const r = await t.evaluate(async () => {
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'ttls_', defaultTTL: '2h' });
      const expiry = async (ttl) => {
        await c.set('k', 1, ttl);
        return Math.round(c.getTimeToExpiry('k') / 1000);
      };
      const good = [];
      for (const ttl of ['90', '5m', '1h', '2 days', '1h 30m', '1.5h', '1 week', ' 10 s ', '30sec', undefined]) good.push([ttl ?? 'default', await expiry(ttl)]);
      const bad = [];
      for (const ttl of ['', '5 parsecs', '-1m', 'abc', '5m extra', 'm', '1e3s', {}, -1, NaN]) {
        try {
          await c.set('k', 1, ttl);
          bad.push([String(ttl), 'accepted']);
        } catch (e) {
          bad.push([String(ttl), e.type]);
        }
      }
      let option;
      try {
        new pkg.BackendSyncedCacheService({ backendUrl: null, defaultTTL: 'soon' });
      } catch (e) {
        option = e.type;
      }
      return { good, bad, option };
    });
    assert.deepEqual(r.good, [['90', 90], ['5m', 300], ['1h', 3600], ['2 days', 172800], ['1h 30m', 5400], ['1.5h', 5400], ['1 week', 604800], [' 10 s ', 10], ['30sec', 30], ['default', 7200]]);
    for (const [ttl, type] of r.bad) assert.equal(type, 'INVALID_TTL', `ttl ${ttl}`);
    assert.equal(r.option, 'INVALID_OPTION');
    await ctx.close();
  });

  test('logging is quiet by default and structured when asked; scopes own a part of the keyspace; app names the writer', async () => {
    const ctx = await browser.newContext();
    const t = await openTab(ctx, page());
    const consoleLines = [];
    t.on('console', (m) => consoleLines.push(m.text()));
    const r = await t.evaluate(async () => {
      const quiet = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'log_' });
      await quiet.getOrFetch('x', async () => 1);
      const records = [];
      const loud = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'log_', logLevel: 'debug', logger: (rec) => records.push(rec), app: 'product' });
      await loud.getOrFetch('y', async () => 2);
      await loud.getOrFetch('y', async () => 3);
      const levels = records.map((x) => [x.level, x.message, x.key, typeof x.duration]);

      const product = loud.scope('product');
      const cart = quiet.scope('cart');
      await product.set('catalogue', ['a']);
      await product.getOrFetch('featured', async () => ['b']);
      await cart.set('items', [1]);
      const scoped = { keys: product.keys(), all: loud.keys(), size: product.size(), get: product.get('catalogue'), raw: loud.get('product:catalogue') };
      const removed = await product.invalidate();
      const entries = quiet.entries().map((e) => [e.key, e.app]);
      const nested = product.scope('v2').cache === loud;
      const errors = [];
      for (const bad of [() => new pkg.BackendSyncedCacheService({ backendUrl: null, logLevel: 'loud' }), () => new pkg.BackendSyncedCacheService({ backendUrl: null, app: 'no spaces' }), () => loud.scope(''), () => product.get(''), () => product.get(7)]) {
        try {
          bad();
        } catch (e) {
          errors.push(e.type);
        }
      }
      return { levels, scoped, removed, entries, nested, errors, node: loud.nodeId.startsWith('product:') };
    });
    assert.deepEqual(consoleLines, [], 'nothing on the console by default');
    assert.deepEqual(r.levels, [
      ['info', 'cache miss, loading', 'y', 'undefined'],
      ['info', 'loaded and cached', 'y', 'number'],
      ['debug', 'cache hit', 'y', 'undefined'],
    ]);
    assert.deepEqual(r.scoped, { keys: ['catalogue', 'featured'], all: ['cart:items', 'product:catalogue', 'product:featured', 'x', 'y'], size: 2, get: ['a'], raw: ['a'] });
    assert.equal(r.removed, 2);
    assert.deepEqual(r.entries, [['cart:items', null], ['x', null], ['y', 'product']]);
    assert.equal(r.nested, true);
    assert.deepEqual(r.errors, ['INVALID_OPTION', 'INVALID_OPTION', 'INVALID_ARGUMENT', 'INVALID_KEY', 'INVALID_KEY']);
    assert.equal(r.node, true);
    await ctx.close();
  });
});
