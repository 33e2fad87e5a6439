// Backend sync in headless Chromium, against a backend that speaks only the seed protocol and
// against the reference server (mfe-cache-server). A front server serves the test pages and the
// API on one origin; it answers the API itself (seed backend) or proxies it to mfe-cache-server,
// and in front of either it can misbehave on request (500, HTML, truncated JSON, resets, hangs).
import test, { describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { ENGINE, openTab, until } from './harness.mjs';
import { buildReactVendor } from './react-vendor.mjs';
import { environment, eventually, syncedTab } from './sync-env.mjs';
import { SERVER_BIN, referenceServer, seedBackend } from '../servers/backends.mjs';

// `byReceipt`: the backend returns every change accepted after lastSync. A seed-only backend
// returns changes *stamped* after it, so a device that polls between another client's write and
// that write's arrival at the server never receives it — the protocol's own limitation, which
// the reference server's delivery by receipt removes.
const BACKENDS = [['seed-only backend', seedBackend, { byReceipt: false }]];
if (existsSync(SERVER_BIN)) BACKENDS.push(['mfe-cache-server', referenceServer, { byReceipt: true }]);
else test('mfe-cache-server sync tests', { skip: `${SERVER_BIN} is not built` }, () => {});

for (const [name, makeBackend, { byReceipt }] of BACKENDS) {
  describe(`backend sync against the ${name}`, () => {
    let env;
    test.before(async () => {
      await buildReactVendor();
      env = await environment(makeBackend);
    });
    test.after(async () => env?.close());
    test.beforeEach(() => {
      env.state.mode = 'ok';
      env.state.requests.length = 0;
    });

    test('writes reach the backend promptly; a burst of 300 writes is one status change and a handful of requests', async () => {
      const ctx = await env.browser.newContext();
      const tab = await syncedTab(env, ctx);
      const announced = await tab.evaluate(async () => {
        const before = statuses.length;
        await Promise.all(Array.from({ length: 300 }, (_, i) => c.set('burst' + i, { i })));
        // The writes' promises settle in the task's own microtasks, before any answer can arrive.
        return statuses.slice(before).map((s) => s.pending);
      });
      assert.deepEqual(announced, [300], "one 'sync' event for the burst, when it is flushed");
      await eventually(async () => Object.keys(await env.backend.values()).filter((k) => k.startsWith('burst')).length === 300, 'all 300 writes on the backend');
      const calls = await tab.evaluate(() => apiCalls.length);
      assert.ok(calls >= 1 && calls <= 5, `requests made: ${calls}`);
      await eventually(() => tab.evaluate(() => c.syncStatus.pending === 0), 'the outbox to drain');
      assert.deepEqual(await tab.evaluate(() => errors), []);
      await ctx.close();
    });

    test('loaded values and sync: false writes stay in the browser; set and sync: true reach other devices', async () => {
      const deviceA = await env.browser.newContext();
      const deviceB = await env.browser.newContext();
      const a = await syncedTab(env, deviceA);
      const a2 = await syncedTab(env, deviceA);
      await a.evaluate(async () => {
        await c.getOrFetch('own:orders', async () => ({ of: 'A' }));
        await c.set('own:draft', 'A', undefined, { sync: false });
        await c.scope('own', { sync: false }).set('note', 'A');
        await c.scope('own', { sync: false }).getOrFetch('profile', async () => ({ of: 'A' }), { ttl: 60 });
        await c.getOrFetch('catalog', async () => ['shared'], { sync: true });
        await c.set('banner', 'hello');
      });
      // Every tab of the browser has them all.
      await until(a2, () => c.get('own:orders')?.of === 'A' && c.get('own:draft') === 'A' && c.get('own:note') === 'A' && c.get('own:profile')?.of === 'A');
      // Once the outbox is empty, whatever was to go has gone: the backend has only what is shared.
      await eventually(() => a.evaluate(() => c.syncStatus.pending === 0), 'the outbox to drain');
      const onBackend = await env.backend.values();
      assert.deepEqual(Object.keys(onBackend).filter((k) => k.startsWith('own:') || ['catalog', 'banner'].includes(k)).sort(), ['banner', 'catalog']);
      const b = await syncedTab(env, deviceB, { syncInterval: 200 });
      await until(b, () => c.get('banner') === 'hello' && c.get('catalog')?.[0] === 'shared', undefined, 8000);
      assert.deepEqual(await b.evaluate(() => c.getOrFetch('own:orders', async () => ({ of: 'B' }))), { of: 'B' }, "device B loads its own");
      assert.equal(await b.evaluate(() => c.get('own:draft')), null);
      assert.deepEqual(await a.evaluate(() => errors), []);
      await deviceA.close();
      await deviceB.close();
    });

    test('remove and invalidate with sync: false remove in this browser only; so does a sync: false scope', async () => {
      const ctx = await env.browser.newContext();
      const a = await syncedTab(env, ctx);
      const a2 = await syncedTab(env, ctx);
      const local = ['rm:kept', 'rm:scoped:x', 'rm:inv:1', 'rm:scoped:y1'];
      await a.evaluate((keys) => Promise.all([...keys, 'rm:gone'].map((k, i) => c.set(k, i))), local);
      await eventually(async () => (await env.backend.values())['rm:gone'] === local.length, 'the writes on the backend');
      const refused = await a.evaluate(async () => {
        const scoped = c.scope('rm', { sync: false }).scope('scoped');
        await c.remove('rm:kept', { sync: false });
        await scoped.remove('x');
        await c.invalidate('rm:inv:*', { sync: false });
        await scoped.invalidate('y*');
        await c.remove('rm:gone');
        return Promise.all([c.remove('rm:other', { sync: 'no' }).catch((e) => e.type), c.invalidate('rm:*', 0).catch((e) => e.type)]);
      });
      assert.deepEqual(refused, ['INVALID_OPTION', 'INVALID_OPTION']);
      // Gone in every tab of the browser; the removal for everyone reaches the backend, the others never.
      await until(a2, (keys) => [...keys, 'rm:gone'].every((k) => c.get(k) === null), local);
      await eventually(async () => !('rm:gone' in (await env.backend.values())), 'the removal for everyone on the backend');
      await eventually(() => a.evaluate(() => c.syncStatus.pending === 0), 'the outbox to drain');
      const left = await env.backend.values();
      assert.deepEqual(local.map((k) => left[k]), [0, 1, 2, 3]);
      assert.deepEqual(await a.evaluate(() => errors), []);
      await ctx.close();
    });

    test('a write for this browser only keeps the pending write for everyone it covers in the outbox, across a reload, and sends it as it was made', async () => {
      const ctx = await env.browser.newContext();
      const a = await syncedTab(env, ctx, { syncInterval: 300 });
      env.state.mode = '500';
      const made = await a.evaluate(async () => {
        await c.set('draft', 'for everyone');
        const at = c.getUpdatedAt('draft');
        await c.set('draft', 'here only', undefined, { sync: false });
        await c.set('profile', { v: 1 });
        await c.getOrFetch('profile', async () => ({ v: 2 }), { refresh: true });
        await c.set('gone', 1);
        await c.remove('gone', { sync: false });
        return at;
      });
      assert.equal(await a.evaluate(() => c.syncStatus.pending), 3, 'the three writes for everyone wait, covered');
      // The tab goes while the backend fails: a tab opened later finds them in storage and sends them.
      await a.close();
      env.state.mode = 'ok';
      const b = await syncedTab(env, ctx, { syncInterval: 300 });
      await eventually(() => b.evaluate(() => c.syncStatus.pending === 0), 'the outbox to drain');
      const values = await env.backend.values();
      assert.deepEqual([values.draft, values.profile, values.gone], ['for everyone', { v: 1 }, 1], 'each as it was written');
      assert.deepEqual(await b.evaluate(() => [c.get('draft'), c.get('profile'), c.get('gone')]), ['here only', { v: 2 }, null], 'this browser keeps the later writes');
      // Stamped when it was made, not when it was sent: a write another device made in between wins.
      const device = await env.browser.newContext();
      const other = await syncedTab(env, device, { syncInterval: 200 });
      await until(other, () => c.get('draft') === 'for everyone', undefined, 8000);
      assert.equal(await other.evaluate(() => c.getUpdatedAt('draft')), made);
      await device.close();
      await ctx.close();
    });

    test('useSharedMutation: the write a failed optimistic write covered still reaches the backend, and its rollback removes nothing there', async () => {
      const ctx = await env.browser.newContext();
      const tab = await syncedTab(env, ctx, { syncInterval: 300 }, { react: true });
      await tab.evaluate(() => {
        const h = React.createElement;
        window.calls = {};
        // The server call of each key: held until the test settles it.
        const call = (key) => new Promise((resolve, reject) => (calls[key] = { resolve, reject }));
        const Like = ({ id }) => {
          const m = pkgReact.useSharedMutation(id, () => call(id), { cache: c, optimistic: (current) => ({ count: (current?.count ?? 0) + 1 }) });
          (window.mutations ??= {})[id] = m;
          return h('b', { id }, m.status);
        };
        ReactDOM.createRoot(document.getElementById('a')).render(h(React.Fragment, null, h(Like, { id: 'likes' }), h(Like, { id: 'votes' })));
      });
      await until(tab, () => document.getElementById('likes')?.textContent === 'idle');
      // The backend turns every request away and the event stream is cut, so `likes` waits in
      // the outbox, and another device's `votes`, on the backend, does not arrive here.
      env.state.mode = '500';
      env.dropStreams();
      await tab.evaluate(() => c.set('likes', { count: 1 }));
      await env.backend.put({ key: 'votes', value: { count: 7 }, ttl: 0, timestamp: Date.now() - 5000, node: 'other-client' });
      const votesBefore = await tab.evaluate(() => {
        window.votesBefore = c.get('votes');
        mutations.likes.mutate();
        mutations.votes.mutate();
        return votesBefore;
      });
      await until(tab, () => c.get('likes')?.count === 2 && c.get('votes')?.count === (votesBefore?.count ?? 0) + 1 && calls.likes && calls.votes);
      env.state.mode = 'ok';
      await tab.evaluate(() => {
        calls.likes.reject(new Error('no'));
        calls.votes.reject(new Error('no'));
      });
      await until(tab, () => document.getElementById('likes').textContent === 'error' && document.getElementById('votes').textContent === 'error');
      assert.deepEqual(await tab.evaluate(() => [c.get('likes'), c.get('votes')]), [{ count: 1 }, votesBefore], 'rolled back here');
      // The write the optimistic one hid reaches the backend; the other device's value stays.
      await eventually(async () => (await env.backend.values()).likes?.count === 1, 'likes on the backend');
      await tab.evaluate(() => c.set('nudge', 1));
      await eventually(() => tab.evaluate(() => c.syncStatus.pending === 0), 'the outbox to drain');
      assert.deepEqual((await env.backend.values()).votes, { count: 7 });
      await ctx.close();
    });

    test('a change made on the backend reaches every tab; local writes reach the other tab', async () => {
      const ctx = await env.browser.newContext();
      const a = await syncedTab(env, ctx, { syncInterval: 200 });
      const b = await syncedTab(env, ctx, { syncInterval: 200 });
      // Stamped 1 ms ahead: a seed-only backend filters `timestamp > lastSync`, and a poll answered
      // in this very millisecond would otherwise hide it (its protocol, not the client).
      await env.backend.put({ key: 'from-server', value: { v: 1 }, ttl: 0, timestamp: Date.now() + 1, node: 'other-client' });
      for (const tab of [a, b]) await until(tab, () => c.get('from-server')?.v === 1, undefined, 8000);
      await a.evaluate(() => c.set('from-a', 'hello'));
      await until(b, () => c.get('from-a') === 'hello');
      await eventually(async () => (await env.backend.values())['from-a'] === 'hello', 'from-a on the backend');
      await ctx.close();
    });

    test('a server invalidation of stores:* reaches every tab; other keys stay', { skip: !byReceipt && 'POST /invalidate is an mfe-cache-server extension' }, async () => {
      const ctx = await env.browser.newContext();
      const a = await syncedTab(env, ctx, { syncInterval: 200 });
      const b = await syncedTab(env, ctx, { syncInterval: 200 });
      await a.evaluate(() => Promise.all([c.set('stores:1', 'one'), c.set('stores:2', 'two'), c.set('analytics:1', 'kept')]));
      await eventually(async () => (await env.backend.values())['stores:2'] === 'two', 'the writes on the server');
      const answer = await env.backend.invalidate(['stores:*']);
      assert.equal(answer.invalidated, 2);
      for (const tab of [a, b]) await until(tab, () => c.keys('stores:*').length === 0, undefined, 8000);
      for (const tab of [a, b]) assert.equal(await tab.evaluate(() => c.get('analytics:1')), 'kept');
      await ctx.close();
    });

    test('a backlog on the backend arrives at once, page after page', async () => {
      const now = Date.now();
      for (let i = 0; i < 150; i++) await env.backend.put({ key: 'backlog' + i, value: i, ttl: 0, timestamp: now + i, node: 'other-client' });
      const ctx = await env.browser.newContext();
      const tab = await syncedTab(env, ctx); // syncInterval 60 s: only paging explains a prompt arrival
      await until(tab, () => Array.from({ length: 150 }, (_, i) => c.get('backlog' + i)).every((v, i) => v === i), undefined, 5000);
      await ctx.close();
    });

    test('offline: writes wait in the outbox and are flushed at once when the browser is back online', { skip: ENGINE !== 'chromium' && "playwright's network switch (context.setOffline), which this harness has in Chromium only" }, async () => {
      const ctx = await env.browser.newContext();
      const tab = await syncedTab(env, ctx); // syncInterval 60 s: only the online event can flush
      await ctx.setOffline(true);
      await eventually(() => tab.evaluate(() => c.syncStatus.online === false), 'offline status');
      await tab.evaluate(() => Promise.all([c.set('off1', 1), c.set('off2', 2), c.remove('burst0')]));
      // That nothing is sent while offline, however long, is the core's schedule, tested on a
      // manual clock (crates/core/tests/client_schedule.rs); here the adapters' part: the
      // browser's offline and online events reach it.
      assert.equal(await tab.evaluate(() => c.syncStatus.pending), 3);
      await ctx.setOffline(false);
      await eventually(async () => {
        const v = await env.backend.values();
        return v.off1 === 1 && v.off2 === 2;
      }, 'the offline writes on the backend', 5000);
      await ctx.close();
    });

    test('backend unreachable: writes survive a reload and arrive when it is back', async () => {
      const ctx = await env.browser.newContext();
      let tab = await syncedTab(env, ctx);
      // The event stream (where the backend has one) settles first: a stream still opening could
      // answer after the writes failed, and rightly mark the backend reachable again.
      await eventually(() => tab.evaluate(() => ['open', 'unsupported'].includes(c.syncStatus.realtime)), 'the event stream settled');
      env.state.mode = 'reset';
      env.dropStreams(); // unreachable: the open stream too
      await tab.evaluate(() => Promise.all([c.set('durable1', 'a'), c.set('durable2', 'b')]));
      await eventually(() => tab.evaluate(() => errors.includes('NETWORK')), 'a NETWORK error');
      assert.equal(await tab.evaluate(() => c.syncStatus.online), false);
      await tab.close();
      tab = await syncedTab(env, ctx); // a reload: a new page, same storage
      assert.equal(await tab.evaluate(() => c.syncStatus.pending), 2, 'the outbox survived the reload');
      env.state.mode = 'ok';
      await eventually(async () => {
        const v = await env.backend.values();
        return v.durable1 === 'a' && v.durable2 === 'b';
      }, 'the writes on the backend');
      await eventually(() => tab.evaluate(() => c.syncStatus.pending === 0 && c.syncStatus.online), 'drained and online');
      await ctx.close();
    });

    for (const [mode, type] of [
      ['500', 'SERVER'],
      ['html', 'SERVER'],
      ['html-200', 'PROTOCOL'],
      ['truncated', 'PROTOCOL'],
      ['wrong-types', 'PROTOCOL'],
      ['reset', 'NETWORK'],
      ['hang', 'NETWORK'],
    ]) {
      test(`a failing backend (${mode}) gives ${type} errors, keeps local state, and recovers`, async () => {
        const ctx = await env.browser.newContext();
        const tab = await syncedTab(env, ctx);
        env.state.mode = mode;
        await tab.evaluate(() => c.set('fragile-' + Date.now(), { keep: true }).then(() => c.set('fragile', { keep: true })));
        await eventually(() => tab.evaluate((type) => errors.includes(type), type), `a ${type} error`);
        const local = await tab.evaluate(() => ({ value: c.get('fragile'), stored: localStorage.getItem('sync_fragile') !== null, pending: c.syncStatus.pending }));
        assert.deepEqual(local.value, { keep: true });
        assert.equal(local.stored, true);
        assert.ok(local.pending >= 1);
        env.state.mode = 'ok';
        await eventually(async () => (await env.backend.values()).fragile?.keep === true, 'the write on the backend after recovery');
        await ctx.close();
      });
    }

    test('hostile updates in a well-formed answer are refused one by one; the good one is applied', async () => {
      const ctx = await env.browser.newContext();
      env.state.mode = 'hostile-updates';
      const tab = await syncedTab(env, ctx, { syncInterval: 200 });
      await until(tab, () => c.get('hostile-good') === 'ok' && c.get('days-ahead') === 'ok', undefined, 5000);
      await eventually(() => tab.evaluate(() => errors.filter((t) => t === 'PROTOCOL').length >= 9), '9 PROTOCOL errors');
      const r = await tab.evaluate(() => ({
        refused: ['beyond-2^53', 'neg-ttl', 'float-ts', 'no-value', 'bad-node', 'x\ufffd'].map((k) => c.get(k)),
        time: Date.now() < 4e12, // the out-of-range stamp did not move the clock
        stillWorks: (c.set('after-hostile', 1), c.get('after-hostile')),
      }));
      assert.deepEqual(r, { refused: [null, null, null, null, null, null], time: true, stillWorks: 1 });
      await ctx.close();
    });

    const racesWithTimestampDeltas = !byReceipt && 'a seed-only backend can miss a write that reaches it after a poll (deltas by timestamp)';
    test('a remove and a clear reach another device through the backend', { skip: racesWithTimestampDeltas }, async () => {
      const deviceA = await env.browser.newContext();
      const deviceB = await env.browser.newContext(); // its own storage: only the backend connects them
      const a = await syncedTab(env, deviceA, { prefix: 'dev_', syncInterval: 200 });
      const b = await syncedTab(env, deviceB, { prefix: 'dev_', syncInterval: 200 });
      await a.evaluate(() => Promise.all([c.set('x', 1), c.set('y', 2), c.set('z', 3)]));
      await until(b, () => c.get('x') === 1 && c.get('y') === 2 && c.get('z') === 3, undefined, 8000);
      await a.evaluate(() => c.remove('x'));
      await until(b, () => c.get('x') === null, undefined, 8000);
      await a.evaluate(() => c.clear());
      await until(b, () => c.get('y') === null && c.get('z') === null, undefined, 8000);
      await b.evaluate(() => c.set('after-clear', true));
      await until(a, () => c.get('after-clear') === true, undefined, 8000);
      await eventually(async () => {
        const v = await env.backend.values();
        return v.y === undefined && v.z === undefined && v['after-clear'] === true;
      }, 'the backend to hold the cleared state');
      await deviceA.close();
      await deviceB.close();
    });

    test('a write made by a package copy that is disposed before sending is sent by the other copy on the page', async () => {
      const ctx = await env.browser.newContext();
      const page = await openTab(ctx, env.page.replace('page.html', 'page.html?copies=2'), { allowConsoleErrors: true });
      await page.evaluate(() => {
        const options = { prefix: 'copies_', backendUrl: '/api/cache', syncInterval: 200, retryDelay: 100 };
        window.first = new pkg.BackendSyncedCacheService(options);
        window.second = new pkg2.BackendSyncedCacheService(options);
      });
      await page.evaluate(() => {
        first.set('orphan', 'kept');
        first.dispose(); // persisted, never sent by its writer
      });
      assert.equal(await page.evaluate(() => second.get('orphan')), 'kept');
      await eventually(async () => (await env.backend.values()).orphan === 'kept', 'the orphaned write on the backend');
      await eventually(() => page.evaluate(() => second.syncStatus.pending === 0), 'the other copy to see it acknowledged');
      await ctx.close();
    });

    test('an acknowledgement received by one copy on the page clears the pending count of the others', async () => {
      const ctx = await env.browser.newContext();
      const page = await openTab(ctx, env.page.replace('page.html', 'page.html?copies=2'), { allowConsoleErrors: true });
      await page.evaluate(() => {
        // A long interval: the only way the idle copy learns of the acknowledgement is from its peer.
        const options = { prefix: 'acks_', backendUrl: '/api/cache', syncInterval: 600000, retryDelay: 100 };
        window.first = new pkg.BackendSyncedCacheService(options);
        window.second = new pkg2.BackendSyncedCacheService(options);
        window.secondStatuses = [];
        second.on('sync', (s) => secondStatuses.push(s.pending));
      });
      // The leader sends everyone's writes, a follower its own: either way one copy gets the ack.
      await page.evaluate(() => Promise.all([first.set('a', 1), second.set('b', 2), first.clear().then(() => first.set('c', 3))]));
      await eventually(async () => (await env.backend.values()).c === 3, 'the writes on the backend');
      const pending = await eventually(
        () => page.evaluate(() => first.syncStatus.pending === 0 && second.syncStatus.pending === 0 && [first.entries(), second.entries()]),
        'both copies to see every write acknowledged',
      );
      for (const list of pending) assert.deepEqual(list.map((e) => [e.key, e.pending]), [['c', false]]);
      assert.equal(await page.evaluate(() => secondStatuses.at(-1)), 0, 'the idle copy announced it');
      await ctx.close();
    });

    test('a tab whose clock is 10 minutes slow writes after seeing a backend value, and its write wins on the backend', async () => {
      const ctx = await env.browser.newContext();
      await env.backend.put({ key: 'skewed', value: 'server', ttl: 0, timestamp: Date.now(), node: 'other-client' });
      const slow = await syncedTab(env, ctx, { syncInterval: 200 }, {
        before: (p) =>
          p.addInitScript(() => {
            const realNow = Date.now.bind(Date);
            Date.now = () => realNow() - 10 * 60 * 1000;
          }),
      });
      await until(slow, () => c.get('skewed') === 'server', undefined, 15_000);
      await slow.evaluate(() => c.set('skewed', 'slow-tab'));
      await eventually(async () => (await env.backend.values()).skewed === 'slow-tab', 'the slow tab winning on the backend');
      await ctx.close();
    });

    test('without Web Locks, a lease in storage elects one polling tab, and a successor when it closes', async () => {
      const ctx = await env.browser.newContext();
      const noLocks = { before: (p) => p.addInitScript(() => delete Navigator.prototype.locks) };
      const tabs = [];
      for (let i = 0; i < 3; i++) tabs.push(await syncedTab(env, ctx, { syncInterval: 150 }, noLocks));
      assert.equal(await tabs[0].evaluate(() => 'locks' in navigator), false);
      await eventually(async () => (await Promise.all(tabs.map((t) => t.evaluate(() => c.syncStatus.leader)))).filter(Boolean).length === 1, 'one leader', 3000);
      const leader = (await Promise.all(tabs.map((t) => t.evaluate(() => c.syncStatus.leader)))).indexOf(true);
      await tabs[leader].evaluate(() => c.dispose()); // gives the lease up, as closing the tab does
      await tabs[leader].close();
      const rest = tabs.filter((_, i) => i !== leader);
      await eventually(async () => (await Promise.all(rest.map((t) => t.evaluate(() => c.syncStatus.leader)))).filter(Boolean).length === 1, 'a successor', 5000);
      await ctx.close();
    });

    test('with three idle tabs one polls; when it closes another takes over', async () => {
      const ctx = await env.browser.newContext();
      const tabs = [];
      // Polling, not the event stream (with which an idle leader makes no requests at all).
      for (let i = 0; i < 3; i++) tabs.push(await syncedTab(env, ctx, { syncInterval: 150, realtime: 'off' }));
      // How often the leader polls and that followers stay quiet is the core's schedule, tested
      // on a manual clock (crates/core/tests/client_schedule.rs); here Web Locks elect one tab
      // and its timer keeps polling.
      const leaders = await Promise.all(tabs.map((t) => t.evaluate(() => c.syncStatus.leader)));
      assert.equal(leaders.filter(Boolean).length, 1, `leaders: ${leaders}`);
      const leader = leaders.indexOf(true);
      await eventually(async () => (await tabs[leader].evaluate(() => apiCalls.length)) >= 3, 'the leader to poll three times');
      const counts = await Promise.all(tabs.map((t) => t.evaluate(() => apiCalls.length)));
      counts.forEach((n, i) => i !== leader && assert.equal(n, 0, `idle follower ${i} made ${n} requests`));
      await tabs[leader].close();
      const rest = tabs.filter((_, i) => i !== leader);
      await eventually(async () => (await Promise.all(rest.map((t) => t.evaluate(() => c.syncStatus.leader)))).filter(Boolean).length === 1, 'a new leader', 3000);
      const before = await Promise.all(rest.map((t) => t.evaluate(() => apiCalls.length)));
      await eventually(async () => (await Promise.all(rest.map((t) => t.evaluate(() => apiCalls.length)))).some((n, i) => n > before[i] + 1), 'the new leader polling', 3000);
      await ctx.close();
    });
  });
}
