// Several tabs and several copies of the package on one page, in real headless Chromium.
import test, { describe } from 'node:test';
import assert from 'node:assert/strict';
import { fillStorage, suite, openTab, until } from './harness.mjs';

const make = (prefix) => `window.c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: ${JSON.stringify(prefix)} });
  window.seen = []; window.errors = [];
  c.on('error', (e) => errors.push([e.type, e.message]));`;

async function tabs(env, n, prefix, options = {}) {
  const ctx = await env.context();
  const pages = [];
  for (let i = 0; i < n; i++) {
    const page = await openTab(ctx, env.page(), options);
    await page.evaluate(make(prefix));
    pages.push(page);
  }
  return { ctx, pages };
}

describe('across tabs and package copies', () => {
  const env = suite({ before: test.before, after: test.after });

  test('two tabs: set, remove and clear reach the other tab and its subscribers', async () => {
    const { ctx, pages: [a, b] } = await tabs(env, 2, 'tt_');
    assert.equal(await b.evaluate(() => c.tabLink), 'broadcast-channel');
    await b.evaluate(() => c.subscribe('cart', (v) => seen.push(v)));
    await a.evaluate(() => c.set('cart', { items: [1, 2] }));
    assert.deepEqual(await until(b, () => c.get('cart')), { items: [1, 2] });
    await a.evaluate(() => c.remove('cart'));
    await until(b, () => c.get('cart') === null);
    await a.evaluate(() => c.set('cart', { items: [3] }));
    await until(b, () => c.get('cart')?.items[0] === 3);
    await a.evaluate(() => c.clear());
    await until(b, () => c.get('cart') === null);
    assert.deepEqual(await b.evaluate(() => seen), [{ items: [1, 2] }, null, { items: [3] }, null]);
    // A tab opened now starts from the shared state.
    const late = await openTab(ctx, env.page());
    await late.evaluate(make('tt_'));
    await a.evaluate(() => c.set('user', 'ann'));
    assert.equal(await late.evaluate(() => c.get('user')), 'ann');
    for (const p of [a, b, late]) assert.deepEqual(await p.evaluate(() => errors), []);
    await ctx.close();
  });

  test('two separately loaded copies of the package on one page share state synchronously', async () => {
    const ctx = await env.context();
    const page = await openTab(ctx, env.page('?copies=2'));
    const r = await page.evaluate(async () => {
      const shell = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'cp_' });
      const product = new pkg2.BackendSyncedCacheService({ backendUrl: null, prefix: 'cp_' });
      const other = new pkg2.BackendSyncedCacheService({ backendUrl: null, prefix: 'cp_other_' });
      const heard = [];
      shell.subscribe('cart', (v) => heard.push(['shell', v, product.get('cart')]));
      // The copies also tell other tabs, on a channel every BroadcastChannel of this window hears.
      // A tap of our own, opened after theirs, learns when a message has been handed out here.
      const tap = new BroadcastChannel('cp_');
      const tapped = (key) => new Promise((resolve) => tap.addEventListener('message', (e) => String(e.data).includes(JSON.stringify(key)) && resolve()));
      const barriers = [tapped('barrier_product'), tapped('barrier_shell')];
      const out = { separateModules: pkg.BackendSyncedCacheService !== pkg2.BackendSyncedCacheService };
      const p = product.set('cart', ['apple']);
      out.syncGet = shell.get('cart');
      out.heardSync = heard.length;
      await p;
      shell.remove('cart');
      out.afterRemove = product.get('cart');
      shell.set('user', 'u1');
      await shell.clear();
      out.afterClear = [product.get('user'), shell.get('user')];
      out.otherPrefix = other.get('cart');
      // The copies' messages to other tabs reach each other's channels too, and must not be
      // applied (or told to subscribers) a second time. A window's channels get their messages in
      // the order they were posted (one task each, on one task source, oldest channel first), so
      // once a later message from each copy has reached the tap, every earlier one has reached
      // shell and product: a wrongly applied echo would be in `heard` by now.
      await Promise.all([product.set('barrier_product', 1), shell.set('barrier_shell', 1)]);
      await Promise.all(barriers);
      tap.close();
      out.heard = heard;
      product.dispose();
      await shell.set('after', 1);
      out.shellAlive = shell.get('after');
      return out;
    });
    assert.deepEqual(r, {
      separateModules: true,
      syncGet: ['apple'],
      heardSync: 1,
      afterRemove: null,
      afterClear: [null, null],
      otherPrefix: null,
      heard: [['shell', ['apple'], ['apple']], ['shell', null, null]],
      shellAlive: 1,
    });
    assert.deepEqual(page.problems, []);
    await ctx.close();
  });

  test('state survives reload', async () => {
    const { ctx, pages: [a] } = await tabs(env, 1, 'rl_');
    await a.evaluate(async () => {
      await c.set('a', { deep: [1, { x: 'y' }] }, 0);
      await c.set('b', 2);
      await c.remove('b');
    });
    await a.reload();
    await a.waitForFunction(() => window.__ready);
    await a.evaluate(make('rl_'));
    assert.deepEqual(await a.evaluate(() => [c.get('a'), c.get('b'), errors]), [{ deep: [1, { x: 'y' }] }, null, []]);
    await ctx.close();
  });

  test('a tab whose clock is 10 minutes slow writes after seeing another write, and its write wins everywhere', async () => {
    const ctx = await env.context();
    const fast = await openTab(ctx, env.page());
    const slow = await openTab(ctx, env.page(), {
      before: (p) =>
        p.addInitScript(() => {
          const realNow = Date.now.bind(Date);
          Date.now = () => realNow() - 10 * 60 * 1000;
        }),
    });
    for (const p of [fast, slow]) await p.evaluate(make('skew_'));
    assert.ok((await fast.evaluate(() => Date.now())) - (await slow.evaluate(() => Date.now())) > 9 * 60 * 1000);
    await fast.evaluate(() => c.set('theme', 'dark'));
    await until(slow, () => c.get('theme') === 'dark');
    await slow.evaluate(() => c.set('theme', 'light'));
    await until(fast, () => c.get('theme') === 'light');
    const record = await fast.evaluate(() => JSON.parse(localStorage.getItem('skew_theme')));
    assert.equal(record.v, 'light');
    // And it stays that way for a tab opened later, and after the fast tab reloads.
    await fast.reload();
    await fast.waitForFunction(() => window.__ready);
    await fast.evaluate(make('skew_'));
    assert.equal(await fast.evaluate(() => c.get('theme')), 'light');
    await ctx.close();
  });

  test('concurrent writers in two tabs converge, in memory and in storage', async () => {
    const { ctx, pages: [a, b] } = await tabs(env, 2, 'cw_');
    const write = (page, tag) =>
      page.evaluate(async (tag) => {
        for (let i = 0; i < 200; i++) {
          c.set('k' + (i % 5), `${tag}${i}`);
          if (i % 20 === 0) await new Promise((r) => setTimeout(r, 0));
        }
        await c.set('done_' + tag, true);
      }, tag);
    await Promise.all([write(a, 'a'), write(b, 'b')]);
    await until(a, () => c.get('done_b') && c.get('done_a'));
    await until(b, () => c.get('done_b') && c.get('done_a'));
    const state = () => ({
      mem: [0, 1, 2, 3, 4].map((i) => c.get('k' + i)),
      stored: [0, 1, 2, 3, 4].map((i) => JSON.parse(localStorage.getItem('cw_k' + i)).v),
    });
    // Poll (bounded) until the last messages and storage repairs have landed.
    let sa, sb;
    for (let i = 0; i < 50; i++) {
      sa = await a.evaluate(state);
      sb = await b.evaluate(state);
      if (JSON.stringify(sa.mem) === JSON.stringify(sb.mem) && JSON.stringify(sa.mem) === JSON.stringify(sa.stored)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(sa.mem, sb.mem, 'tabs agree');
    assert.deepEqual(sa.stored, sa.mem, 'storage holds the winning writes');
    for (const p of [a, b]) assert.deepEqual(await p.evaluate(() => errors), []);
    await ctx.close();
  });

  test('without BroadcastChannel, the storage event carries changes between tabs', async () => {
    const { ctx, pages: [a, b] } = await tabs(env, 2, 'se_', {
      before: (p) => p.addInitScript(() => delete window.BroadcastChannel),
    });
    assert.equal(await a.evaluate(() => c.tabLink), 'storage-event');
    await b.evaluate(() => c.subscribe('k', (v) => seen.push(v)));
    await a.evaluate(() => c.set('k', { v: 1 }));
    await until(b, () => c.get('k')?.v === 1);
    await a.evaluate(() => c.remove('k'));
    await until(b, () => c.get('k') === null);
    await a.evaluate(() => c.set('k', 2));
    await until(b, () => c.get('k') === 2);
    await a.evaluate(() => c.clear());
    await until(b, () => c.get('k') === null);
    assert.deepEqual(await b.evaluate(() => seen), [{ v: 1 }, null, 2, null]);
    await ctx.close();
  });

  test('hostile messages on the channel are typed PROTOCOL errors and change nothing', async () => {
    const { ctx, pages: [victim, attacker] } = await tabs(env, 2, 'hm_');
    await victim.evaluate(() => c.set('safe', 'value'));
    await attacker.evaluate(() => {
      // Tab news is the core's text (version 2) with storage records embedded: hostile variants.
      const ch = new BroadcastChannel('hm_');
      const good = localStorage.getItem('hm_safe');
      const news = (body) => `{"v":2,"page":"attacker",${body}}`;
      for (const m of [
        'not json',
        42,
        null,
        { a: 1 },
        '{"v":3,"page":"attacker"}',
        news('"w":{"safe":7}'),
        news('"w":{"safe":{garbage}'),
        news(`"w":{"safe":${good.replace(/"t":\d+/, '"t":1e400')}}`),
        news(`"w":{"":${good}}`),
        news('"clear":{"t":"soon","n":"x"}'),
      ]) ch.postMessage(m);
      ch.postMessage(news(`"w":{"marker":${good.replace(/"t":\d+/, `"t":${Date.now() + 1}`)}}`));
    });
    await until(victim, () => c.get('marker') === 'value');
    const r = await victim.evaluate(() => ({ safe: c.get('safe'), types: [...new Set(errors.map((e) => e[0]))].sort(), count: errors.length }));
    assert.equal(r.safe, 'value');
    assert.deepEqual(r.types, ['PROTOCOL']);
    assert.ok(r.count >= 8, `errors reported: ${r.count}`);
    await victim.evaluate(() => c.set('still', 'works'));
    assert.equal(await victim.evaluate(() => c.get('still')), 'works');
    await ctx.close();
  });

  test('a copy whose page hub is of another version still hears this one, through the channel', async () => {
    // The hub's global key carries its version: copies of two hub versions do not meet on the
    // page, but each has its own page id, so each applies the other's tab messages.
    const ctx = await env.context();
    const page = await openTab(ctx, env.page('?copies=2'));
    const seenAtOnce = await page.evaluate(() => {
      window.errors = [];
      window.a = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'hv_' });
      // What a copy of another hub version finds: no hub under its key.
      delete globalThis[Symbol.for('mfe-shared-cache.hub.v2')];
      window.b = new pkg2.BackendSyncedCacheService({ backendUrl: null, prefix: 'hv_' });
      for (const c of [a, b]) c.on('error', (e) => errors.push([e.type, e.message]));
      a.set('k', 1);
      return b.get('k');
    });
    assert.equal(seenAtOnce, null, 'two hubs: not before set returns');
    assert.equal(await until(page, () => b.get('k')), 1);
    await page.evaluate(() => b.set('k', 2));
    await until(page, () => a.get('k') === 2);
    await page.evaluate(() => a.remove('k'));
    await until(page, () => b.get('k') === null);
    assert.deepEqual(await page.evaluate(() => errors), []);
    await ctx.close();
  });

  test("a later version's records and news, with members this version does not know, are read", async () => {
    // MFEs update their copies one at a time: a newer copy in another MFE or tab may write
    // records and news with members this one does not know. It skips them and reads the rest.
    const { ctx, pages: [a, b] } = await tabs(env, 2, 'lv_');
    await a.evaluate(async () => {
      await c.set('seed', 1);
      const tag = JSON.parse(localStorage.getItem('lv_seed')).p;
      const now = Date.now();
      localStorage.setItem('lv_stored', `{"t":${now},"n":"later","p":"${tag}","x":{"k":["}"]},"v":"from storage"}`);
      const record = `{"t":${now + 1},"n":"later","p":"${tag}","u":1,"x":"}","v":[1,2]}`;
      new BroadcastChannel('lv_').postMessage(`{"v":2,"page":"later-page","hint":{"x":1},"w":{"posted":${record}},"later":true}`);
    });
    // b hears the storage write as a storage event, and the news on the channel.
    assert.equal(await until(b, () => c.get('stored')), 'from storage');
    assert.deepEqual(await until(b, () => c.get('posted')), [1, 2]);
    // A tab opened now reads the record from storage.
    const late = await openTab(ctx, env.page());
    await late.evaluate(make('lv_'));
    assert.equal(await late.evaluate(() => c.get('stored')), 'from storage');
    for (const p of [a, b, late]) assert.deepEqual(await p.evaluate(() => errors), []);
    await ctx.close();
  });

  test('real localStorage quota: frees least recently used entries, and a value that cannot fit stays in memory with QUOTA_EXCEEDED', async () => {
    const { ctx, pages: [a] } = await tabs(env, 1, 'q_', { allowConsoleErrors: true });
    await a.evaluate(async () => {
      const big = (ch) => ch.repeat(400_000);
      await c.set('old', big('o'));
      await c.set('recent', big('r'));
      c.get('recent'); // a use: 'old' is now the least recently used
    });
    // Fill the rest of the origin's quota with someone else's data.
    const filled = await a.evaluate(fillStorage);
    const r = await a.evaluate(async (filled) => {
      const big = (ch) => ch.repeat(400_000);
      const out = {};
      try {
        await c.set('new', big('n'));
        out.newSet = 'ok';
      } catch (e) {
        out.newSet = e.type;
      }
      out.stored = ['old', 'recent', 'new'].map((k) => localStorage.getItem('q_' + k) !== null);
      out.oldStillReadable = c.get('old')?.length;
      try {
        await c.set('huge', 'h'.repeat(6_000_000));
        out.hugeSet = 'ok';
      } catch (e) {
        out.hugeSet = [e.type, e.key, e.retryable];
      }
      out.hugeInMemory = c.get('huge')?.length;
      out.events = errors.map((e) => e[0]);
      for (let i = 0; i < filled; i++) localStorage.removeItem('junk_' + i);
      return out;
    }, filled);
    assert.deepEqual(r, {
      newSet: 'ok',
      stored: [false, true, true],
      oldStillReadable: 400_000,
      hugeSet: ['QUOTA_EXCEEDED', 'huge', true],
      hugeInMemory: 6_000_000,
      events: ['QUOTA_EXCEEDED'],
    });
    await ctx.close();
  });
});
