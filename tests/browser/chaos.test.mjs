// A seeded chaos run: two devices (browser contexts) of two tabs each write at random — sets with
// and without TTLs, removes, clears, and bursts larger than a request body — while devices go
// offline and online, tabs reload, and the server is killed with SIGKILL and restarted on its
// data. The second device's clock is 25 h fast. At the end every tab, every device and
// the server must hold the same state, and it must be the state the write log implies: per key the
// last write by (timestamp, writer), none ordered at or before the last clear, expired values gone.
//
// CHAOS_SEED picks the run (default 1); CHAOS_SECONDS how long it writes (default 30, bounded for
// CI; set it higher to soak).
import test, { describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { SERVER_BIN, referenceServer } from '../servers/backends.mjs';
import { environment, eventually, startCache, syncedTab } from './sync-env.mjs';

const skip = existsSync(SERVER_BIN) ? false : `${SERVER_BIN} is not built (run make test)`;
const SEED = Number(process.env.CHAOS_SEED ?? 1);
const SECONDS = Number(process.env.CHAOS_SECONDS ?? 30);
const PREFIX = 'chaos_';
const KEYS = Array.from({ length: 12 }, (_, i) => `k${i}`);
// Written in bursts of 20 KB values: about 1.2 MB, more than one request body may carry.
const BURST_KEYS = Array.from({ length: 60 }, (_, i) => `b${i}`);
const ALL_KEYS = [...KEYS, ...BURST_KEYS];
const SKEW_MS = 25 * 3_600_000;
const OPTIONS = { prefix: PREFIX, syncInterval: 500, retryDelay: 100, requestTimeout: 1000, realtime: 'auto' };

// A small seeded generator (mulberry32): the same seed makes the same run of choices.
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, below: (n) => Math.floor(next() * n), pick: (list) => list[Math.floor(next() * list.length)] };
}

// Every write a tab's cache makes reaches the page's other package copies through the page hub
// (a documented, versioned protocol: the core's news text, storage records embedded) with its
// stamp: a listener there is the write log.
async function watchWrites(tab) {
  await tab.evaluate((prefix) => {
    window.writeLog = [];
    const hub = globalThis[Symbol.for('mfe-shared-cache.hub.v2')];
    hub.groups.get(prefix).add({
      storage: localStorage,
      deliver: (text) => {
        const news = JSON.parse(text);
        if (news.clear) writeLog.push({ kind: 'clear', ts: news.clear.t, node: news.clear.n });
        for (const [key, r] of Object.entries(news.w ?? {})) {
          if (r.d === 1) writeLog.push({ kind: 'remove', key, ts: r.t, node: r.n });
          else writeLog.push({ kind: 'set', key, ts: r.t, node: r.n, json: JSON.stringify(r.v), ttl: (r.l ?? 0) / 1000, at: r.w ?? r.t });
        }
      },
    });
  }, PREFIX);
}

const order = (a, b) => a.ts - b.ts || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0);

// What the write log implies at `now`: per key the highest-stamped write, unless a clear is
// ordered at or after it; a set's value if it has not expired.
function implied(log, now) {
  let epoch = null;
  const last = new Map();
  for (const w of log) {
    if (w.kind === 'clear') {
      if (!epoch || order(w, epoch) > 0) epoch = w;
    } else if (!last.has(w.key) || order(w, last.get(w.key)) > 0) {
      last.set(w.key, w);
    }
  }
  const state = {};
  for (const key of ALL_KEYS) {
    const w = last.get(key);
    const visible = w && w.kind === 'set' && !(epoch && order(w, epoch) <= 0) && (!w.ttl || (w.at ?? w.ts) + w.ttl * 1000 > now);
    state[key] = visible ? JSON.parse(w.json) : null;
  }
  return state;
}

// What the server holds for a client that starts from nothing, expired values left out.
async function serverState(origin, now) {
  const state = Object.fromEntries(ALL_KEYS.map((k) => [k, null]));
  for (let lastSync = 0, more = true; more; ) {
    const res = await fetch(`${origin}/api/cache/sync`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ lastSync, changes: [] }) });
    const answer = await res.json();
    for (const u of answer.updates) {
      if (!(u.key in state)) continue;
      const live = !u.deleted && (!u.ttl || (u.writtenAt ?? u.timestamp) + u.ttl * 1000 > now);
      state[u.key] = live ? u.value : null;
    }
    lastSync = answer.timestamp;
    more = answer.more === true;
  }
  return state;
}

const tabState = (tab) => tab.evaluate((keys) => Object.fromEntries(keys.map((k) => [k, c.get(k)])), ALL_KEYS);

// The second device's clock runs ahead (its wasm reads Date.now() too).
const skewed = (page) =>
  page.addInitScript((ms) => {
    const real = Date.now.bind(Date);
    Date.now = () => real() + ms;
  }, SKEW_MS);

describe('chaos: tabs, devices, offline, reloads and server crashes', { skip }, () => {
  let env;
  test.before(async () => {
    env = await environment(() => referenceServer(['--heartbeat-ms', '1000']));
  });
  test.after(async () => env?.close());

  test(`seed ${SEED}, ${SECONDS} s: every replica converges on the state the write log implies`, { timeout: (SECONDS + 240) * 1000 }, async () => {
    const r = rng(SEED);
    const devices = [await env.browser.newContext(), await env.browser.newContext()];
    const tabs = [];
    for (const [d, ctx] of devices.entries()) {
      for (let t = 0; t < 2; t++) {
        const page = await syncedTab(env, ctx, OPTIONS, d === 1 ? { before: skewed } : {});
        await watchWrites(page);
        tabs.push({ page, device: d, name: `d${d}t${t}` });
      }
    }
    const log = [];
    const stats = { sets: 0, removes: 0, clears: 0, bursts: 0, offline: 0, reloads: 0, kills: 0 };
    const offline = [false, false];
    let restarting = null;
    let serial = 0;

    const write = async (tab, op) => {
      const written = await tab.page.evaluate(async (op) => {
        if (op.kind === 'set') await c.set(op.key, op.value, op.ttl);
        else if (op.kind === 'remove') await c.remove(op.key);
        else if (op.kind === 'burst') await Promise.all(op.keys.map((k) => c.set(k, { by: op.by, n: op.n, pad: 'p'.repeat(20_000) }, 0)));
        else await c.clear();
        return writeLog.splice(0);
      }, op);
      log.push(...written);
    };

    const end = Date.now() + SECONDS * 1000;
    while (Date.now() < end) {
      const tab = r.pick(tabs);
      const roll = r.next();
      if (roll < 0.55) {
        const ttl = r.pick([0, 0, 0, 1, 3600]);
        await write(tab, { kind: 'set', key: r.pick(KEYS), value: { by: tab.name, n: serial++ }, ttl });
        stats.sets++;
      } else if (roll < 0.7) {
        await write(tab, { kind: 'remove', key: r.pick(KEYS) });
        stats.removes++;
      } else if (roll < 0.72) {
        await write(tab, { kind: 'clear' });
        stats.clears++;
      } else if (roll < 0.74) {
        await write(tab, { kind: 'burst', keys: BURST_KEYS, by: tab.name, n: serial++ });
        stats.bursts++;
      } else if (roll < 0.8) {
        const d = r.below(2);
        offline[d] = !offline[d];
        await devices[d].setOffline(offline[d]);
        stats.offline++;
      } else if (roll < 0.85 && !offline[tab.device]) {
        // (An offline device cannot load the page again.)
        await tab.page.reload();
        await tab.page.waitForFunction(() => window.__ready === true);
        await startCache(tab.page, OPTIONS);
        await watchWrites(tab.page);
        stats.reloads++;
      } else if (roll < 0.89 && !restarting) {
        await env.backend.kill();
        stats.kills++;
        const down = 200 + r.below(1300);
        restarting = new Promise((resolve) => setTimeout(resolve, down)).then(() => env.backend.restart()).then(() => {
          restarting = null;
        });
      }
      await new Promise((resolve) => setTimeout(resolve, r.below(40)));
    }

    const compare = async () => {
      const now = Date.now();
      const want = implied(log, now);
      const server = await serverState(env.backend.origin, now);
      const replicas = { server };
      for (const tab of tabs) replicas[tab.name] = await tabState(tab.page);
      const divergent = ALL_KEYS.filter((k) => Object.values(replicas).some((state) => JSON.stringify(state[k]) !== JSON.stringify(want[k])));
      const lost = ALL_KEYS.filter((k) => want[k] !== null && JSON.stringify(server[k]) !== JSON.stringify(want[k]));
      return { want, replicas, divergent, lost };
    };
    let result;
    try {
      // Quiet: everyone online, the server up, every outbox empty.
      await restarting;
      for (const [d, ctx] of devices.entries()) if (offline[d]) await ctx.setOffline(false);
      for (const tab of tabs) await tab.page.evaluate(() => window.dispatchEvent(new Event('online')));
      await eventually(async () => {
        for (const tab of tabs) if ((await tab.page.evaluate(() => c.syncStatus.pending)) !== 0) return false;
        return true;
      }, 'every outbox to drain', 60_000);
      // Let the short TTLs run out (a wait on the data's own expiries, not a guess).
      const lastExpiry = Math.max(0, ...log.filter((w) => w.kind === 'set' && w.ttl === 1).map((w) => (w.at ?? w.ts) + 1000));
      if (lastExpiry > Date.now()) await new Promise((resolve) => setTimeout(resolve, lastExpiry - Date.now() + 50));

      await eventually(async () => (result = await compare()).divergent.length === 0, 'every replica to hold the implied state', 60_000);
      // And from storage: every tab reloaded holds it too.
      for (const tab of tabs) {
        await tab.page.reload();
        await tab.page.waitForFunction(() => window.__ready === true);
        await startCache(tab.page, OPTIONS);
      }
      await eventually(async () => (result = await compare()).divergent.length === 0, 'every reloaded tab to hold it', 30_000);
    } finally {
      result ??= await compare().catch(() => undefined);
      const summary = { seed: SEED, writes: log.length, ...stats, divergentKeys: result?.divergent ?? '?', lostWrites: result?.lost ?? '?' };
      console.log(`chaos: ${JSON.stringify(summary)}`);
      if (result?.divergent.length) {
        const show = (state) => Object.fromEntries(result.divergent.map((k) => [k, state[k]?.pad ? { ...state[k], pad: '…' } : state[k]]));
        console.log(`chaos: implied ${JSON.stringify(show(result.want))}`);
        for (const [name, state] of Object.entries(result.replicas)) console.log(`chaos: ${name} ${JSON.stringify(show(state))}`);
      }
    }
    assert.deepEqual(result.divergent, []);
    assert.deepEqual(result.lost, []);
    for (const ctx of devices) await ctx.close();
  });
});
