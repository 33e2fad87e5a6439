// Real-time push in headless Chromium: the leader tab holds mfe-cache-server's event stream and
// relays changes to the origin's other tabs; it resumes from its cursor after a drop, nobody
// polls while it is open, and a backend without the endpoint is polled instead (detected).
import test, { describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { until } from './harness.mjs';
import { SERVER_BIN, referenceServer, seedBackend } from '../servers/backends.mjs';
import { environment, eventually, syncedTab } from './sync-env.mjs';

const skip = existsSync(SERVER_BIN) ? false : `${SERVER_BIN} is not built (run make test)`;

// A server-side write (as another device or a backend job would make it).
const serverSet = (env, key, value) => env.backend.put({ key, value, ttl: 0, timestamp: Date.now(), node: 'server-job' });

const status = (tab) => tab.evaluate(() => c.syncStatus);
const calls = (tab, path) => tab.evaluate((path) => apiCalls.filter((p) => p === path).length, path);

// Two tabs of one device; the one that leads, and the other.
async function twoTabs(env, options) {
  const ctx = await env.browser.newContext();
  const a = await syncedTab(env, ctx, options);
  const b = await syncedTab(env, ctx, options);
  await eventually(async () => (await status(a)).leader !== (await status(b)).leader, 'one leader');
  const [leader, follower] = (await status(a)).leader ? [a, b] : [b, a];
  return { ctx, leader, follower };
}

describe('real-time push from mfe-cache-server', { skip }, () => {
  let env;
  test.before(async () => {
    env = await environment(() => referenceServer(['--heartbeat-ms', '500']));
  });
  test.after(async () => env?.close());
  test.beforeEach(() => {
    env.state.mode = 'ok';
    env.state.eventsMode = 'ok';
    env.state.urls.length = 0;
  });

  test('a change accepted by the server reaches every tab without polling, and idle tabs make no requests', async () => {
    // A 300 ms interval: polling would show up as several /sync calls in the idle window below.
    const { ctx, leader, follower } = await twoTabs(env, { syncInterval: 300 });
    await eventually(async () => (await status(leader)).realtime === 'open', 'the leader opens the stream');
    assert.equal((await status(follower)).realtime, 'follower');

    // That the leader stops polling while its stream is open and followers never poll is the
    // core's schedule, tested on a manual clock (crates/core/tests/client_schedule.rs).
    const before = { leader: await calls(leader, '/api/cache/sync') };
    assert.equal(await calls(follower, '/api/cache/events'), 0, 'one stream per origin: the leader\'s');

    await serverSet(env, 'pushed', { n: 1 });
    for (const tab of [leader, follower]) await until(tab, () => c.get('pushed')?.n === 1, undefined, 3000);
    assert.equal(await calls(leader, '/api/cache/sync'), before.leader, 'delivered by the stream, not by a poll');
    // Pushed changes keep the backend cursor, so a later /sync or stream starts after them.
    assert.deepEqual(await leader.evaluate(() => errors), []);
    await ctx.close();
  });

  test('a write from another device arrives through the stream in every tab of this one', async () => {
    const { ctx, leader, follower } = await twoTabs(env, { syncInterval: 60000 });
    await eventually(async () => (await status(leader)).realtime === 'open', 'stream open');
    const other = await syncedTab(env, await env.browser.newContext(), { syncInterval: 60000 });
    await other.evaluate(() => c.set('from-device-2', 'hi'));
    for (const tab of [leader, follower]) await until(tab, () => c.get('from-device-2') === 'hi', undefined, 3000);
    await other.context().close();
    await ctx.close();
  });

  test('after a dropped stream the leader reconnects from its cursor: nothing missed, nothing repeated', async () => {
    const { ctx, leader, follower } = await twoTabs(env, { syncInterval: 60000 });
    await eventually(async () => (await status(leader)).realtime === 'open', 'stream open');
    const r1 = await serverSet(env, 'r1', 1);
    await until(follower, () => c.get('r1') === 1, undefined, 3000);
    env.state.mode = 'reset'; // the reconnect attempts fail too, for a while
    env.state.urls.length = 0;
    env.dropStreams();
    await eventually(async () => (await status(leader)).realtime === 'retrying', 'the leader sees the drop');
    // Written while this device has no stream (its catch-up poll fails too).
    await serverSet(env, 'r2', 2);
    await serverSet(env, 'r3', 3);
    await new Promise((r) => setTimeout(r, 300));
    env.state.mode = 'ok';
    for (const tab of [leader, follower]) await until(tab, () => c.get('r2') === 2 && c.get('r3') === 3, undefined, 10000);
    await eventually(async () => (await status(leader)).realtime === 'open', 'the stream reopens', 10000);
    const reopened = env.state.urls.filter((u) => u.startsWith('/api/cache/events')).at(-1);
    const cursor = Number(new URL(reopened, 'http://x').searchParams.get('cursor'));
    assert.ok(cursor >= r1.timestamp, `resumes from its cursor (${r1.timestamp} or later), not from the start: ${reopened}`);
    // Every change after the resume point arrives once: count the change notifications.
    await leader.evaluate(() => {
      window.seen = [];
      c.on('change', (key) => seen.push(key));
    });
    await serverSet(env, 'r4', 4);
    await until(leader, () => c.get('r4') === 4, undefined, 3000);
    // The stream carries changes in the order the server accepted them: once a later change has
    // been told, a repeat of r4 (or of anything before it) would have been told before it.
    await serverSet(env, 'r5', 5);
    await until(leader, () => seen.includes('r5'), undefined, 3000);
    assert.deepEqual(await leader.evaluate(() => seen), ['r4', 'r5']);
    await ctx.close();
  });

  test('closing the leader tab hands the stream to the next tab', async () => {
    const { ctx, leader, follower } = await twoTabs(env, { syncInterval: 60000 });
    await eventually(async () => (await status(leader)).realtime === 'open', 'stream open');
    await leader.close();
    await eventually(async () => (await status(follower)).realtime === 'open', 'the follower takes the stream over', 10000);
    await serverSet(env, 'after-handover', true);
    await until(follower, () => c.get('after-handover') === true, undefined, 3000);
    await ctx.close();
  });

  test("realtime: 'off' never opens a stream and polls instead", async () => {
    const { ctx, leader } = await twoTabs(env, { syncInterval: 300, realtime: 'off' });
    await serverSet(env, 'polled', 1);
    await until(leader, () => c.get('polled') === 1, undefined, 3000);
    assert.equal((await status(leader)).realtime, 'off');
    assert.equal(await calls(leader, '/api/cache/events'), 0);
    assert.ok((await calls(leader, '/api/cache/sync')) >= 2, 'it polls');
    await ctx.close();
  });

  test('a stream that cannot be read (HTML from a proxy) is not taken for push: the leader polls', async () => {
    env.state.eventsMode = 'html-200';
    const { ctx, leader } = await twoTabs(env, { syncInterval: 300 });
    await eventually(async () => (await status(leader)).realtime === 'unsupported', 'detected');
    await ctx.close();
  });
});

describe('fallback against a seed-only backend (no event stream)', () => {
  let env;
  test.before(async () => {
    env = await environment(seedBackend);
  });
  test.after(async () => env?.close());

  test('the leader detects the missing endpoint once, then polls', async () => {
    const { ctx, leader, follower } = await twoTabs(env, { syncInterval: 300 });
    await eventually(async () => (await status(leader)).realtime === 'unsupported', 'the leader detects no push');
    await serverSet(env, 'seed-polled', 'yes');
    for (const tab of [leader, follower]) await until(tab, () => c.get('seed-polled') === 'yes', undefined, 5000);
    const polls = await calls(leader, '/api/cache/sync');
    await eventually(async () => (await calls(leader, '/api/cache/sync')) >= polls + 3, 'polling to carry on');
    assert.equal(await calls(leader, '/api/cache/events'), 1, 'asked once, not on every poll');
    assert.deepEqual(await leader.evaluate(() => errors), [], 'a missing push endpoint is not an error');
    await ctx.close();
  });
});
