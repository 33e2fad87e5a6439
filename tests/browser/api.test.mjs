// The JS API in one page: the documented behaviour, TTL on a fake clock, and every bad input.
import test, { describe } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINE, suite, openTab } from './harness.mjs';

describe('BackendSyncedCacheService in one page', () => {
  const env = suite({ before: test.before, after: test.after });

  test('set/get round trip; get returns the same frozen object while unchanged', async () => {
    const ctx = await env.context();
    const page = await openTab(ctx, env.page());
    const r = await page.evaluate(async () => {
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null });
      const v = { user: { name: 'John', tags: ['a'] } };
      const p = c.set('user', v);
      const visibleBeforeAwait = c.get('user')?.user.name;
      await p;
      const a = c.get('user');
      const b = c.get('user');
      let mutationThrew = false;
      try {
        'use strict';
        a.user.tags.push('x');
      } catch {
        mutationThrew = true;
      }
      await c.set('user', { user: { name: 'Jane' } });
      const after = c.get('user');
      return {
        visibleBeforeAwait,
        same: a === b,
        copy: a !== v,
        frozen: Object.isFrozen(a) && Object.isFrozen(a.user.tags),
        mutationThrew,
        changedIsNew: after !== a && after.user.name === 'Jane',
        stored: JSON.parse(localStorage.getItem('shared_mfe_cache_user')).v,
        missing: c.get('nope'),
      };
    });
    assert.deepEqual(r, {
      visibleBeforeAwait: 'John',
      same: true,
      copy: true,
      frozen: true,
      mutationThrew: true,
      changedIsNew: true,
      stored: { user: { name: 'Jane' } },
      missing: null,
    });
    assert.deepEqual(page.problems, []);
    await ctx.close();
  });

  test('every JSON value round-trips, including null, 0, "" and false', async () => {
    const ctx = await env.context();
    const page = await openTab(ctx, env.page());
    const r = await page.evaluate(async () => {
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'vals_' });
      const values = [0, -1.5, '', 'ünïcødé ✓', false, true, [], {}, [1, [2, [3]]], { a: { b: null } }, 'a\u0000b'];
      const out = [];
      for (const [i, v] of values.entries()) {
        await c.set('k' + i, v);
        out.push(c.get('k' + i));
      }
      // JSON null is a value; get() cannot tell it from missing, but the entry exists.
      await c.set('n', null);
      const fresh = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'vals_' });
      const has = [c.has('n'), fresh.has('n'), fresh.has('n'), c.has('missing')];
      return { out, reloaded: values.map((_, i) => fresh.get('k' + i)), nullStored: localStorage.getItem('vals_n') !== null, has };
    });
    const values = [0, -1.5, '', 'ünïcødé ✓', false, true, [], {}, [1, [2, [3]]], { a: { b: null } }, 'a\u0000b'];
    assert.deepEqual(r.out, values);
    assert.deepEqual(r.reloaded, values);
    assert.equal(r.nullStored, true);
    assert.deepEqual(r.has, [true, true, true, false], 'has() is true for a stored null, read or not');
    await ctx.close();
  });

  test('subscribe: called on set, remove and clear, not after unsubscribe; a throwing subscriber does not stop others', async () => {
    const ctx = await env.context();
    const page = await openTab(ctx, env.page(), { allowConsoleErrors: true });
    const r = await page.evaluate(async () => {
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'sub_' });
      const seen = [];
      const reported = [];
      window.addEventListener('error', (e) => {
        reported.push(e.message);
        e.preventDefault();
      });
      c.subscribe('k', () => {
        throw new Error('boom');
      });
      const off = c.subscribe('k', (v) => seen.push(v));
      const otherKey = [];
      c.subscribe('other', (v) => otherKey.push(v));
      await c.set('k', 1);
      await c.set('k', 2);
      await c.remove('k');
      await c.set('k', 3);
      await c.clear();
      off();
      off();
      await c.set('k', 4);
      return { seen, otherKey, reported: reported.length };
    });
    assert.deepEqual(r.seen, [1, 2, null, 3, null]);
    assert.deepEqual(r.otherKey, []);
    assert.ok(r.reported >= 5, `throwing subscriber was reported (${r.reported})`);
    await ctx.close();
  });

  test('remove is a tombstone and clear an epoch, both persisted', async () => {
    const ctx = await env.context();
    const page = await openTab(ctx, env.page());
    await page.evaluate(async () => {
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'rc_' });
      await c.set('a', 1);
      await c.set('b', 2);
      await c.remove('a');
      await c.clear();
      await c.set('c', 3);
    });
    await page.reload();
    await page.waitForFunction(() => window.__ready);
    const r = await page.evaluate(() => {
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'rc_' });
      return { a: c.get('a'), b: c.get('b'), c: c.get('c'), keys: Object.keys(localStorage).filter((k) => k.startsWith('rc_')).sort() };
    });
    assert.deepEqual(r, { a: null, b: null, c: 3, keys: ['rc_\u0000meta', 'rc_c'] });
    await ctx.close();
  });

  test('TTL: entries expire at timestamp + ttl, subscribers hear null, ttl 0 never expires (fake clock)', { skip: ENGINE !== 'chromium' && "playwright's fake clock, which this harness has in Chromium only" }, async () => {
    const ctx = await env.context();
    const start = new Date('2026-11-21T10:00:00Z').getTime();
    const page = await openTab(ctx, env.page(), { before: (p) => p.clock.install({ time: start }) });
    await page.evaluate(async () => {
      const c = (window.c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'ttl_', defaultTTL: 120 }));
      window.seen = [];
      c.subscribe('short', (v) => seen.push(v));
      await c.set('short', 'x', 60);
      await c.set('default', 'd');
      await c.set('forever', 'f', 0);
    });
    await page.clock.fastForward(59_000);
    assert.deepEqual(await page.evaluate(() => [c.get('short'), seen]), ['x', ['x']]);
    await page.clock.fastForward(1_500);
    assert.deepEqual(await page.evaluate(() => [c.get('short'), seen]), [null, ['x', null]]);
    assert.equal(await page.evaluate(() => c.get('default')), 'd');
    await page.clock.fastForward(60_000);
    assert.deepEqual(await page.evaluate(() => [c.get('default'), c.get('forever')]), [null, 'f']);
    await page.clock.fastForward(365 * 24 * 3600 * 1000);
    assert.equal(await page.evaluate(() => c.get('forever')), 'f');
    // A fresh instance (same clock) agrees: expiry depends on the write, not on who reads it.
    assert.deepEqual(
      await page.evaluate(() => {
        const d = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'ttl_' });
        return [d.get('short'), d.get('default'), d.get('forever')];
      }),
      [null, null, 'f'],
    );
    await ctx.close();
  });

  test('a fake clock moved between awaits is seen by get and getOrFetch within one task', async () => {
    const ctx = await env.context();
    const page = await openTab(ctx, env.page());
    const r = await page.evaluate(async () => {
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'fakeclock_' });
      await c.set('k', 'stored', 1);
      await c.set('g', 'stored', 1);
      const real = Date.now;
      let t = real();
      Date.now = () => t; // what a test's fake timers install
      try {
        const before = [c.get('k'), await c.getOrFetch('g', () => 'loaded')];
        t += 2_000;
        await Promise.resolve(); // a microtask later, in the same task
        return { before, after: [c.get('k'), await c.getOrFetch('g', () => 'loaded')] };
      } finally {
        Date.now = real;
      }
    });
    assert.deepEqual(r.before, ['stored', 'stored']);
    assert.deepEqual(r.after, [null, 'loaded'], 'both reads see the expiry after the await');
    await ctx.close();
  });

  test("one key's expiry leaves the other keys' values the same objects", async () => {
    const ctx = await env.context();
    const page = await openTab(ctx, env.page());
    const r = await page.evaluate(async () => {
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'staggered_' });
      const real = Date.now;
      let t = real();
      Date.now = () => t; // from before the writes: their stamps and expiries are on this clock
      try {
        await Promise.all([c.set('short', { n: 1 }, 1), c.set('long', { n: 2 }, 10), c.set('forever', { n: 3 }, 0)]);
        const [long, forever] = [c.get('long'), c.get('forever')];
        const first = [c.get('short')?.n, long.n, forever.n];
        t += 2_000;
        await Promise.resolve();
        const second = {
          short: c.get('short'),
          hasShort: c.has('short'),
          long: c.get('long') === long,
          fetched: (await c.getOrFetch('long', () => ({ n: -1 }))) === long,
          listed: c.entries().map((e) => [e.key, e.value === (e.key === 'long' ? long : forever)]),
        };
        t += 10_000;
        await Promise.resolve();
        return { first, second, third: [c.get('long'), c.get('forever') === forever, c.keys()] };
      } finally {
        Date.now = real;
      }
    });
    assert.deepEqual(r, {
      first: [1, 2, 3],
      second: { short: null, hasShort: false, long: true, fetched: true, listed: [['forever', true], ['long', true]] },
      third: [null, true, ['forever']],
    });
    await ctx.close();
  });

  test('get is exact at the expiry boundary even when no timer has fired', { skip: ENGINE !== 'chromium' && "playwright's fake clock, which this harness has in Chromium only" }, async () => {
    const ctx = await env.context();
    const start = new Date('2026-11-21T10:00:00Z').getTime();
    const page = await openTab(ctx, env.page(), { before: (p) => p.clock.install({ time: start }) });
    const t = start + 5_000;
    await page.clock.pauseAt(t); // time stands still: the write is stamped exactly t
    const r = await page.evaluate(async () => {
      const c = (window.c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'edge_' }));
      await c.set('k', 1, 10);
      return [c.get('k'), JSON.parse(localStorage.getItem('edge_k')).t];
    });
    assert.deepEqual(r, [1, t]);
    // setSystemTime moves Date.now without running timers, like a throttled background tab:
    // the read cache must still honour the expiry.
    await page.clock.setSystemTime(t + 9_999);
    assert.equal(await page.evaluate(() => c.get('k')), 1);
    await page.clock.setSystemTime(t + 10_000);
    assert.equal(await page.evaluate(() => c.get('k')), null);
    await ctx.close();
  });

  test('non-JSON values reject with INVALID_VALUE and store nothing', async () => {
    const ctx = await env.context();
    const page = await openTab(ctx, env.page());
    const r = await page.evaluate(async () => {
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'bad_' });
      const cyclic = { a: 1 };
      cyclic.self = cyclic;
      const notified = [];
      c.subscribe('k', (v) => notified.push(v));
      const cases = {
        function: () => 1,
        symbol: Symbol('s'),
        cycle: cyclic,
        bigint: 10n,
        nestedBigint: { a: [1n] },
        nestedFunction: { a: () => 1 },
        nan: NaN,
        infinity: { x: Infinity },
        map: new Map([[1, 2]]),
        set: new Set([1]),
        typedArray: new Uint8Array(2),
        undefined: undefined,
      };
      const out = {};
      for (const [name, value] of Object.entries(cases)) {
        try {
          await c.set('k', value);
          out[name] = 'resolved';
        } catch (e) {
          out[name] = [e instanceof pkg.CacheError, e.type, e.retryable, e.key];
        }
      }
      return { out, stored: Object.keys(localStorage).filter((k) => k.startsWith('bad_')), get: c.get('k'), notified };
    });
    for (const [name, result] of Object.entries(r.out)) {
      assert.deepEqual(result, [true, 'INVALID_VALUE', false, 'k'], name);
    }
    assert.deepEqual(r.stored, []);
    assert.equal(r.get, null);
    assert.deepEqual(r.notified, []);
    await ctx.close();
  });

  test('invalid keys, TTLs and options are typed errors', async () => {
    const ctx = await env.context();
    const page = await openTab(ctx, env.page());
    const r = await page.evaluate(async () => {
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'inv_' });
      const attempt = async (f) => {
        try {
          await f();
          return 'ok';
        } catch (e) {
          return e instanceof pkg.CacheError ? e.type : `not a CacheError: ${e}`;
        }
      };
      const keys = ['', 42, null, undefined, {}, 'a\u0000b', 'x'.repeat(1025), 'é'.repeat(600)];
      // Strings are durations since issue 5 ("60", "5m"); one that is not stays an error.
      const ttls = [-1, NaN, Infinity, '60 parsecs', {}, 1e300];
      const options = [{ prefix: '' }, { prefix: 5 }, { defaultTTL: -1 }, { storage: {} }, { syncInterval: 0 }, { maxRetries: 1.5 }, { backendUrl: 3 }, { realtime: 'on' }];
      return {
        setKeys: await Promise.all(keys.map((k) => attempt(() => c.set(k, 1)))),
        getKeys: await Promise.all(keys.map((k) => attempt(() => c.get(k)))),
        removeKeys: await Promise.all(keys.map((k) => attempt(() => c.remove(k)))),
        subscribeKeys: await Promise.all(keys.map((k) => attempt(() => c.subscribe(k, () => {})))),
        ttls: await Promise.all(ttls.map((t) => attempt(() => c.set('k', 1, t)))),
        options: await Promise.all(options.map((o) => attempt(() => new pkg.BackendSyncedCacheService({ backendUrl: null, ...o })))),
        events: [await attempt(() => c.on('nope', () => {})), await attempt(() => c.on('error', 5))],
        stored: Object.keys(localStorage).filter((k) => k.startsWith('inv_')),
      };
    });
    assert.deepEqual(r.setKeys, Array(8).fill('INVALID_KEY'));
    assert.deepEqual(r.getKeys, Array(8).fill('INVALID_KEY'));
    assert.deepEqual(r.removeKeys, Array(8).fill('INVALID_KEY'));
    assert.deepEqual(r.subscribeKeys, Array(8).fill('INVALID_KEY'));
    assert.deepEqual(r.ttls, Array(6).fill('INVALID_TTL'));
    assert.deepEqual(r.options, Array(8).fill('INVALID_OPTION'));
    assert.deepEqual(r.events, ['INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
    assert.deepEqual(r.stored, []);
    await ctx.close();
  });

  test('corrupt and foreign storage entries are skipped, reported after construction, and left in place', async () => {
    const ctx = await env.context();
    const page = await openTab(ctx, env.page(), { allowConsoleErrors: true });
    const r = await page.evaluate(async () => {
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'cor_' });
      await c.set('good', { ok: true });
      c.dispose();
      localStorage.setItem('cor_garbage', '{not json');
      localStorage.setItem('cor_foreign', JSON.stringify({ value: 1, expires: 2 }));
      localStorage.setItem('cor_empty', '');
      const errors = [];
      const d = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'cor_' });
      d.on('error', (e) => errors.push([e.type, e.key, e.retryable, e instanceof pkg.CacheError]));
      await Promise.resolve();
      await new Promise((r) => setTimeout(r, 0));
      return {
        errors: errors.sort(),
        good: d.get('good'),
        left: ['cor_garbage', 'cor_foreign', 'cor_empty'].map((k) => localStorage.getItem(k)),
      };
    });
    assert.deepEqual(r.errors, [
      ['STORAGE_CORRUPT', 'cor_empty', false, true],
      ['STORAGE_CORRUPT', 'cor_foreign', false, true],
      ['STORAGE_CORRUPT', 'cor_garbage', false, true],
    ]);
    assert.deepEqual(r.good, { ok: true });
    assert.deepEqual(r.left, ['{not json', '{"value":1,"expires":2}', '']);
    await ctx.close();
  });

  test('caches with different prefixes never see each other, even when one prefix starts with the other', async () => {
    const ctx = await env.context();
    const page = await openTab(ctx, env.page());
    const r = await page.evaluate(async () => {
      const errors = [];
      const outer = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'app_' });
      const inner = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'app_x_' });
      await inner.set('k', 'inner');
      await outer.set('y', 'outer');
      const reopened = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'app_' });
      reopened.on('error', (e) => errors.push(e.type));
      await new Promise((r) => setTimeout(r, 0));
      await inner.clear();
      return { outerSeesInner: outer.get('x_k'), reopenedSeesInner: reopened.get('x_k'), y: reopened.get('y'), errors };
    });
    assert.deepEqual(r, { outerSeesInner: null, reopenedSeesInner: null, y: 'outer', errors: [] });
    await ctx.close();
  });

  test('a storage that throws keeps the cache usable in memory with typed errors; QUOTA from a custom storage too', async () => {
    const ctx = await env.context();
    const page = await openTab(ctx, env.page(), { allowConsoleErrors: true });
    const r = await page.evaluate(async () => {
      const broken = {
        get length() {
          throw new DOMException('denied', 'SecurityError');
        },
        key() {
          throw new DOMException('denied', 'SecurityError');
        },
        getItem() {
          throw new DOMException('denied', 'SecurityError');
        },
        setItem() {
          throw new DOMException('denied', 'SecurityError');
        },
        removeItem() {
          throw new DOMException('denied', 'SecurityError');
        },
      };
      const errors = [];
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'brk_', storage: broken });
      c.on('error', (e) => errors.push([e.type, e.retryable]));
      let setError;
      try {
        await c.set('k', 1);
      } catch (e) {
        setError = [e.type, e.key, e.retryable];
      }
      return { setError, value: c.get('k'), errors, stillWorks: (c.set('j', 2).catch(() => {}), c.get('j')) };
    });
    assert.deepEqual(r.setError, ['STORAGE_FAILED', 'k', true]);
    assert.equal(r.value, 1);
    assert.equal(r.stillWorks, 2);
    assert.ok(r.errors.length >= 2 && r.errors.every(([t]) => t === 'STORAGE_FAILED'), JSON.stringify(r.errors));
    await ctx.close();
  });

  test('dispose: later calls fail with DISPOSED, pending writes are persisted first', async () => {
    const ctx = await env.context();
    const page = await openTab(ctx, env.page());
    const r = await page.evaluate(async () => {
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'dsp_' });
      const pending = c.set('k', 'v');
      c.dispose();
      c.dispose();
      await pending;
      const out = { stored: localStorage.getItem('dsp_k') !== null };
      for (const [name, f] of Object.entries({ set: () => c.set('k', 1), get: () => c.get('k'), subscribe: () => c.subscribe('k', () => {}), clear: () => c.clear() })) {
        try {
          await f();
          out[name] = 'ok';
        } catch (e) {
          out[name] = e.type;
        }
      }
      return out;
    });
    assert.deepEqual(r, { stored: true, set: 'DISPOSED', get: 'DISPOSED', subscribe: 'DISPOSED', clear: 'DISPOSED' });
    await ctx.close();
  });

  test('entries() lists visible entries with expiry, writer and timestamp; change events name every changed key', { skip: ENGINE !== 'chromium' && "playwright's fake clock, which this harness has in Chromium only" }, async () => {
    const ctx = await env.context();
    const start = new Date('2026-11-21T10:00:00Z').getTime();
    const page = await openTab(ctx, env.page('?copies=2'), { before: (p) => p.clock.install({ time: start }) });
    const r = await page.evaluate(async () => {
      const a = (window.a = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'ent_' }));
      const b = new pkg2.BackendSyncedCacheService({ backendUrl: null, prefix: 'ent_' });
      window.changes = [];
      a.on('change', (key) => changes.push(key));
      await b.set('user', { name: 'Ada' }, 0);
      await a.set('cart', [1], 60);
      await a.set('gone', 1);
      await a.remove('gone');
      const list = a.entries();
      return { list, same: list[0].value === a.get('cart'), aNode: a.nodeId, bNode: b.nodeId, changes: [...changes] };
    });
    assert.deepEqual(
      r.list.map((e) => [e.key, e.value, e.expiresAt === null ? null : e.expiresAt - e.updatedAt, e.writer, e.pending]),
      [
        ['cart', [1], 60_000, r.aNode, false],
        ['user', { name: 'Ada' }, null, r.bNode, false],
      ],
    );
    assert.ok(r.list.every((e) => e.updatedAt >= start && e.updatedAt < start + 1000), 'timestamps are the writes\' HLC times');
    assert.equal(r.same, true, 'values are the same objects get returns');
    assert.deepEqual(r.changes, ['user', 'cart', 'gone', 'gone']);
    await page.clock.fastForward(61_000);
    const after = await page.evaluate(async () => {
      const keys = a.entries().map((e) => e.key);
      await a.clear();
      return { keys, changes, left: a.entries() };
    });
    assert.deepEqual(after, { keys: ['user'], changes: ['user', 'cart', 'gone', 'gone', 'cart', 'user'], left: [] });
    await ctx.close();
  });

  test('without a backend, syncStatus has every field: not enabled, offline, idle, nothing pending', async () => {
    const ctx = await env.context();
    const page = await openTab(ctx, env.page());
    const status = await page.evaluate(() => new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'st_' }).syncStatus);
    assert.deepEqual(status, { enabled: false, pending: 0, online: false, syncing: false, leader: false, failures: 0, retryAt: null, lastSyncedAt: null, lastError: null, realtime: 'off', backend: 'off' });
    await ctx.close();
  });

  test('with the default backendUrl and no backend there, it says so once, asks no more for minutes, and keeps the writes queued', async () => {
    const ctx = await env.context();
    // The page's server has no /api/cache: it answers 404, as an app without a backend does.
    const page = await openTab(ctx, env.page(), { allowConsoleErrors: true });
    const r = await page.evaluate(async () => {
      const requests = [];
      const fetch = window.fetch;
      window.fetch = (input, init) => (requests.push(new URL(input.url ?? input, location.href).pathname), fetch(input, init));
      const warnings = [];
      const c = new pkg.BackendSyncedCacheService({ prefix: 'nb_', logger: (record) => warnings.push(record) });
      await c.set('a', 1);
      const status = await new Promise((resolve) => {
        const seen = c.syncStatus;
        if (seen.backend === 'absent') return resolve(seen);
        const off = c.on('sync', (s) => s.backend === 'absent' && (off(), resolve(s)));
      });
      await c.set('b', 2);
      // The core decides when the write is flushed: a request for it would be in flight now.
      const { pending, syncing } = c.syncStatus;
      return { status, warnings, requests, pending, syncing, now: Date.now(), get: c.get('b') };
    });
    assert.deepEqual(r.requests, ['/api/cache/sync']);
    assert.equal(r.syncing, false, 'the second write is not sent');
    const { status, warnings } = r;
    assert.equal(status.backend, 'absent');
    assert.equal(status.realtime, 'off', 'not "retrying" a stream of a backend that is not there');
    assert.ok(status.retryAt - r.now >= 2 * 60_000, `the next check is minutes away: ${status.retryAt - r.now} ms`);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0].level, 'warn');
    assert.match(warnings[0].message, /no cache backend at \/api\/cache .*HTTP 404.*backendUrl: null/);
    assert.equal(r.pending, 2, 'the writes stay queued for when a backend answers');
    assert.equal(r.get, 2);
    assert.deepEqual(page.problems, []);
    await ctx.close();
  });
});
