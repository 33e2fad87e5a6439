#!/usr/bin/env node
// Benchmark of mfe-shared-cache: `node bench/run.mjs` (or `make bench`).
//
// Starts the test harness's static server (127.0.0.1, random port), launches headless Chromium,
// runs every section in one run and prints one table: metric, mfe-shared-cache, a baseline
// measured in the same run under the same conditions, the ratio, the goal. Informational only:
// no timing is asserted; the exit code is non-zero only when a section crashed.
// The backend sections (bench/backend.mjs) build mfe-cache-server in release mode and drive it
// from the page (offline flush) and with wrk (server throughput, vs bench/express-seed.mjs and,
// for latency, the server of the commit before the streams were rebuilt; and
// overload: polls while thousands of idle connections are held, and past --max-connections).
// The real-time parts (bench/realtime.mjs) push changes to SSE clients through 2 instances on one
// Redis (fan-out), compare /sync throughput on Redis and on the embedded store, and time pushed
// changes into 3 browser tabs against polling (push to tabs).
// The streams part (bench/streams.mjs) holds 10,000 and more idle event streams on one server
// (server/examples/stream_load.rs) and times writes to all of them, against the server of the
// commit before the streams were rebuilt, built into target/bench-baseline/ (streams).
// BENCH_SECTIONS=offline,server (names or name prefixes, comma-separated) runs only those; when
// none of them needs the browser, pkg/ and Chromium are left alone (BENCH_SECTIONS=overload).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { launch, openTab, startServer, ROOT } from '../tests/browser/harness.mjs';
import { benchOfflineFlush, benchOverload, benchServerThroughput } from './backend.mjs';
import { fmt, median, pairedRatio, percentile, signed, sleep, spread } from './stats.mjs';
import { benchFanOut, benchPushToTabs, benchSyncRedis } from './realtime.mjs';
import { benchStreams } from './streams.mjs';
import { benchBoundary } from './boundary.mjs';
import { benchFirstRender } from './first-render.mjs';
import { benchFirstVisit } from './first-visit.mjs';
import { plainOptimised, wasmBreakdown } from './wasm-size.mjs';

const PAGE = '/bench/bench.html';
const started = performance.now();
const rows = [];
const notes = [];
const crashes = [];

// ---- formatting ---------------------------------------------------------------------------
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');
const bytes = (n) => n.toLocaleString('en-US');
// Ratio of paired measurements (ours and the baseline run back to back in the same round): the
// median of the per-round ratios, robust to the machine's load changing between rounds.
const times = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a');

function row(metric, ours, baseline, r, goal, met = '') {
  rows.push({ metric, ours, baseline, ratio: r, goal, met });
}

function printTable() {
  const head = { metric: 'metric', ours: 'mfe-shared-cache', baseline: 'baseline (same run)', ratio: 'ratio', goal: 'goal', met: 'goal met?' };
  const cols = Object.keys(head);
  const width = Object.fromEntries(cols.map((c) => [c, Math.max(...[head, ...rows].map((r) => String(r[c]).length))]));
  const line = (r) => cols.map((c) => (c === 'ours' || c === 'baseline' || c === 'ratio' ? String(r[c]).padStart(width[c]) : String(r[c]).padEnd(width[c]))).join('  ').trimEnd();
  console.log(line(head));
  console.log(cols.map((c) => '-'.repeat(width[c])).join('  '));
  for (const r of rows) console.log(line(r));
}

const only = (process.env.BENCH_SECTIONS ?? '').split(',').map((x) => x.trim()).filter(Boolean);

const wanted = (name) => !only.length || only.some((x) => name.startsWith(x));

async function section(name, fn) {
  if (!wanted(name)) return;
  const t0 = performance.now();
  process.stderr.write(`[bench] ${name}…\n`);
  try {
    await fn();
  } catch (e) {
    crashes.push(`${name}: ${e?.stack ?? e}`);
    row(name, 'CRASHED', '', '', '', 'see below');
  }
  notes.push(`section "${name}" took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

async function withContext(browser, fn) {
  const context = await browser.newContext();
  try {
    return await fn(context);
  } finally {
    await context.close();
  }
}

const pages = [];
async function tab(context, url) {
  const page = await openTab(context, url);
  pages.push(page);
  return page;
}

// ---- sections -----------------------------------------------------------------------------
async function benchGet(browser, url) {
  await withContext(browser, async (context) => {
    const page = await tab(context, url + PAGE);
    const r = await page.evaluate(() => window.bench.getBench({ rounds: 15, targetMs: 40 }));
    const ns = (x) => `${fmt(x.ns, 1)} ns ${spread([x.min, x.max], 1)}`;
    const vsMap = pairedRatio(r.cache.rounds, r.map.rounds);
    row('get hit, default TTL (ns/op) vs Map.get', ns(r.cache), `Map.get ${ns(r.map)}`, times(vsMap), '≤ 1.5× Map.get', vsMap <= 1.5 ? 'yes' : 'NO');
    row('get hit, default TTL (ns/op) vs localStorage', ns(r.cache), `JSON.parse(ls.getItem) ${ns(r.localStorage)}`, times(pairedRatio(r.cache.rounds, r.localStorage.rounds)), '—');
    row('get hit, ttl 0 (ns/op) vs Map.get [diagnostic]', ns(r.cacheTtl0), `Map.get ${ns(r.map2)}`, times(pairedRatio(r.cacheTtl0.rounds, r.map2.rounds)), '—');
    notes.push(
      `get: median of 15 rounds, [min…max]; iterations per round: cache ${r.cache.iters}, Map ${r.map.iters}, localStorage ${r.localStorage.iters}; ` +
        `1024 keys, every read a hit, checksum of .id accumulated; loop overhead alone ${fmt(r.overhead.ns, 1)} ns/op (included in every figure); ` +
        `Date.now() alone costs ${fmt(r.dateNow.ns, 1)} ns/call in this page (a default-TTL hit calls it once)`,
    );
  });
}

async function benchWrites(browser, url) {
  await withContext(browser, async (context) => {
    const a = await tab(context, url + PAGE);
    const b = await tab(context, url + PAGE);
    const linkA = await a.evaluate(() => window.bench.setupWriter());
    const linkB = await b.evaluate(() => window.bench.setupListener());
    if (linkA !== 'broadcast-channel' || linkB !== 'broadcast-channel') notes.push(`writes: tab link is ${linkA}/${linkB}, expected broadcast-channel`);

    let gen = 0;
    let naiveSent = 0;
    // Storage writes tab A made so far: each raises a `storage` event in tab B (every write
    // stores a new value), which B's cache handles too.
    let storageWrites = 0;
    // Barriers: before the next measurement, tab B has processed everything sent so far, its
    // storage events included (else it would still be busy with them, on one of the 2 cores).
    const drainStorage = async () => {
      await b.waitForFunction((n) => window.bench.listenerState('w0').storageEvents >= n, storageWrites, { polling: 5, timeout: 30000 });
    };
    const drainNaive = async () => {
      await b.waitForFunction((n) => window.bench.listenerState('w0').received >= n, naiveSent, { polling: 5, timeout: 30000 });
      await drainStorage();
      await sleep(20);
    };
    const drainCache = async (key, g) => {
      await b.waitForFunction(([k, g]) => window.bench.listenerState(k).gen === g, [key, g], { polling: 5, timeout: 30000 });
      await drainStorage();
      await sleep(20);
    };
    // `stored`: the storage writes the run makes (the cache writes each key once per flush).
    const runCache = async (fn, stored, ...args) => {
      const g = ++gen;
      const r = await a.evaluate(([fn, args, g]) => window.bench[fn](...args.slice(0, 1), g, ...args.slice(1)), [fn, args, g]);
      storageWrites += stored;
      await drainCache(r.lastKey, g);
      return r.us;
    };
    const runNaive = async (fn, count, ...args) => {
      const g = ++gen;
      const r = await a.evaluate(([fn, args, g]) => window.bench[fn](...args.slice(0, 1), g, ...args.slice(1)), [fn, args, g]);
      naiveSent += count;
      storageWrites += count;
      await drainNaive();
      return r.us;
    };
    // Interleaved, alternating which goes first; the first `warm` repetitions are discarded.
    const compare = async (reps, warm, cacheRun, naiveRun) => {
      const ours = [];
      const base = [];
      for (let i = 0; i < warm + reps; i++) {
        const pair = i % 2 ? [naiveRun, cacheRun] : [cacheRun, naiveRun];
        const out = [];
        for (const f of pair) out.push(await f());
        const [c, n] = i % 2 ? [out[1], out[0]] : out;
        if (i >= warm) {
          ours.push(c);
          base.push(n);
        }
      }
      return { ours, base };
    };

    const SEQ = 2000;
    const seq = await compare(7, 1, () => runCache('seqCache', SEQ, SEQ), () => runNaive('seqNaive', SEQ, SEQ));
    const us = (xs) => `${fmt(median(xs))} µs ${spread(xs, 2)}`;
    row('awaited set, sequential (µs/op)', us(seq.ours), `setItem+postMessage ${us(seq.base)}`, times(pairedRatio(seq.ours, seq.base)), '—');

    for (const distinct of [1000, 100]) {
      const r = await compare(21, 3, () => runCache('burstCache', distinct, distinct), () => runNaive('burstNaive', 1000, distinct));
      const q = pairedRatio(r.ours, r.base);
      row(`burst 1000 sets → ${distinct} keys (µs/write)`, us(r.ours), `setItem+postMessage ${us(r.base)}`, times(q), '≤ 0.25× naive', q <= 0.25 ? 'yes' : 'NO');
    }
    // A burst of 1000 plain storage writes done by page.js's `fn`, then tab B drained.
    const runStorageOnly = (fn) => async () => {
      const us = (await a.evaluate(([fn, g]) => window.bench[fn](1000, g), [fn, ++gen])).us;
      storageWrites += 1000;
      await drainStorage();
      await sleep(20);
      return us;
    };
    // The floor: what storing the same 1000 values costs at the least (no other tab is told).
    const runFloor = runStorageOnly('burstFloor');
    const f = await compare(21, 3, () => runCache('burstCache', 1000, 1000), runFloor);
    const qf = pairedRatio(f.ours, f.base);
    row('burst 1000 sets → 1000 keys vs the storage floor', us(f.ours), `setItem(JSON.stringify) only ${us(f.base)}`, times(qf), '≤ 1.25× floor', qf <= 1.25 ? 'yes' : 'NO');
    // How much of the goal is left for a cache that keeps other tabs' writes: the floor with a
    // read before each write and the record the cache stores, in plain JavaScript.
    const rf = await compare(21, 3, runStorageOnly('burstRecordFloor'), runFloor);
    row(
      'the floor with a read before each write and a record of the cache\'s shape [diagnostic]',
      us(rf.ours),
      `setItem(JSON.stringify) only ${us(rf.base)}`,
      times(pairedRatio(rf.ours, rf.base)),
      '—',
    );
    notes.push(
      `writes: tab B holds a cache instance and a BroadcastChannel listener; sequential: ${SEQ} writes over 1000 keys per repetition, median of 7; ` +
        `bursts: median of 21 (3 discarded warm-ups), µs = burst time / 1000; every repetition writes new values and waits for tab B to drain (its messages and every storage event); ` +
        `the baselines' keys are as long as the cache's (prefix shared_mfe_naive_ against shared_mfe_cache_)`,
    );
  });
}

async function benchPropagation(browser, url) {
  await withContext(browser, async (context) => {
    const a = await tab(context, url + PAGE);
    const b = await tab(context, url + PAGE);
    await a.evaluate(() => window.bench.setupProp('A', { subscribe: false }));
    await b.evaluate(() => window.bench.setupProp('B', { subscribe: true }));
    const WARM = 30;
    const N = 300;
    const REVERSE = 100;
    const KINDS = ['cache', 'raw', 'naive'];
    const lostWarm = await a.evaluate(([n, k]) => window.bench.sendSamples(n, k, 1000, 0), [WARM, KINDS]);
    const lost = await a.evaluate(([n, s, k]) => window.bench.sendSamples(n, k, 1000, s), [N, WARM, KINDS]);
    const lostBack = await b.evaluate(([n]) => window.bench.sendSamples(n, ['raw'], 1000, 0), [REVERSE]);
    const ta = await a.evaluate(() => window.bench.propTimes());
    const tb = await b.evaluate(() => window.bench.propTimes());
    const lat = (kind, from, to, start, n) => {
      const out = [];
      for (let i = start; i < start + n; i++) {
        const id = `${kind}:${from.name}:${i}`;
        if (from.t.sent[id] !== undefined && to.t.recv[id] !== undefined) out.push(to.t.recv[id] - from.t.sent[id]);
      }
      return out;
    };
    const A = { name: 'A', t: ta };
    const B = { name: 'B', t: tb };
    const cache = lat('cache', A, B, WARM, N);
    const raw = lat('raw', A, B, WARM, N);
    const naive = lat('naive', A, B, WARM, N);
    const back = lat('raw', B, A, 0, REVERSE);
    const p50c = percentile(cache, 50);
    const p50r = percentile(raw, 50);
    const p99c = percentile(cache, 99);
    const p99r = percentile(raw, 99);
    const diff = Math.round((p50c - p50r) * 1e6) / 1e6; // the stamps are multiples of the timer resolution
    row(`cross-tab propagation p50 (ms, n=${cache.length})`, `${fmt(p50c)} ms`, `raw BroadcastChannel ${fmt(p50r)} ms (n=${raw.length})`, ratio(p50c, p50r), '≤ raw BC + 0.5 ms', `${diff <= 0.5 ? 'yes' : 'NO'} (${signed(diff)} ms)`);
    const diff99 = Math.round((p99c - p99r) * 1e6) / 1e6;
    row(`cross-tab propagation p99 (ms, n=${cache.length})`, `${fmt(p99c)} ms`, `raw BroadcastChannel ${fmt(p99r)} ms`, ratio(p99c, p99r), '≤ raw BC + 0.3 ms', `${diff99 <= 0.3 ? 'yes' : 'NO'} (${signed(diff99)} ms)`);
    const p50n = percentile(naive, 50);
    row(`cross-tab p50 vs setItem+postMessage [diagnostic]`, `${fmt(p50c)} ms`, `setItem+postMessage ${fmt(p50n)} ms (p99 ${fmt(percentile(naive, 99))})`, ratio(p50c, p50n), '—');
    const offset = (median(raw) - median(back)) / 2;
    notes.push(
      `propagation: ${N} samples each of cache / raw BroadcastChannel / setItem+postMessage A→B, rotating order, one in flight, 1–3 ms random pause, ` +
        `${WARM} warm-up rounds discarded; lost (no callback within 1 s): ${lost} (warm-up ${lostWarm}), reverse ${lostBack}; ` +
        `wall-clock stamps have the page timer's resolution (see header); ` +
        `raw B→A p50 ${fmt(median(back))} ms, so the A/B clock offset is about ${fmt(offset)} ms (it shifts both columns equally)`,
    );
    if (ta.errors.length || tb.errors.length) notes.push(`propagation: cache errors: ${[...ta.errors, ...tb.errors].slice(0, 5).join('; ')}`);
  });
}

async function benchColdStart(browser, url) {
  await withContext(browser, async (context) => {
    const page = await tab(context, url + PAGE);
    const ENTRIES = 10000;
    const stored = await page.evaluate((n) => window.bench.populate(n), ENTRIES);
    if (stored < ENTRIES) throw new Error(`populate stored ${stored} of ${ENTRIES} entries`);
    const reload = async () => {
      await page.reload();
      await page.waitForFunction(() => window.__ready === true || window.__failed, null, { timeout: 15000 });
    };
    const RUNS = 9;
    const results = { cold: { cache: [], naive: [], touch: [], bad: 0 }, warm: { cache: [], naive: [], touch: [], bad: 0 } };
    const kinds = [['cache', false], ['naive', false], ['cache', true], ['naive', true]];
    for (let i = 0; i < RUNS + 1; i++) {
      // Every kind once per round, in rotating order; round 0 is a discarded warm-up.
      for (let j = 0; j < kinds.length; j++) {
        const [mode, warmStorage] = kinds[(i + j) % kinds.length];
        await reload(); // a fresh page: nothing of the previous run is in memory
        const out = await page.evaluate(([mode, warmStorage]) => (mode === 'cache' ? window.bench.coldCache({ warmStorage }) : window.bench.coldNaive({ warmStorage })), [mode, warmStorage]);
        const r = results[warmStorage ? 'warm' : 'cold'];
        if (!out.ok) r.bad++;
        if (i === 0) continue;
        r[mode].push(out.ms);
        if (out.touchMs !== null) r.touch.push(out.touchMs);
      }
    }
    const ms = (xs) => `${fmt(median(xs))} ms ${spread(xs, 1)}`;
    const c = results.cold;
    const w = results.warm;
    const vsNaive = pairedRatio(c.cache, c.naive);
    row(`cold start, ${ENTRIES / 1000}k entries (ms, median of ${RUNS})`, ms(c.cache), `naive hydrate ${ms(c.naive)}`, times(vsNaive), '≤ 1.1× naive', vsNaive <= 1.1 ? 'yes' : 'NO');
    row(`cold start, storage already loaded [diagnostic]`, ms(w.cache), `naive hydrate ${ms(w.naive)}`, times(pairedRatio(w.cache, w.naive)), '—');
    notes.push(
      `cold start: each run is a page reload with the package's modules imported; timer from before the constructor (which loads the wasm: the page's first cache) to after the first get ` +
        `(the naive hydrate: localStorage.key(i) loop + JSON.parse into a Map, then the same get); the first row includes the page's first localStorage access, ` +
        `the second touches localStorage.length first (that touch took median ${fmt(median(w.touch))} ms)` +
        (c.bad + w.bad ? `; ${c.bad + w.bad} runs returned WRONG values` : '; every run read back the right values'),
    );
  });
}

// The loader of the getOrFetch section: a route on the bench's own server that counts its calls
// per round tag and answers after 20–50 ms (fixed per key index), like a slow API.
const loaderCalls = new Map(); // tag → { calls, perTab: [..] }
const loaderDelayMs = (i) => 20 + ((i * 7919) % 31);
async function benchApi(req, res, path) {
  if (path !== '/bench-api/load') return false;
  const q = new URL(req.url, 'http://x').searchParams;
  const tag = q.get('tag');
  const i = Number(q.get('i'));
  const c = loaderCalls.get(tag) ?? { calls: 0, perTab: [0, 0, 0] };
  c.calls++;
  c.perTab[Number(q.get('tab'))]++;
  loaderCalls.set(tag, c);
  await sleep(loaderDelayMs(i));
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ id: i, tag, name: `user-${i}`, roles: ['reader', 'editor'], active: i % 2 === 0 }));
  return true;
}

async function benchGetOrFetch(browser, url) {
  // (a) The cost of the async wrapper on a hit.
  await withContext(browser, async (context) => {
    const page = await tab(context, url + PAGE);
    const r = await page.evaluate(() => window.bench.getOrFetchHitBench({ rounds: 15, targetMs: 40 }));
    if (r.loaderCalls !== 0) throw new Error(`getOrFetch hit: the loader ran ${r.loaderCalls} times`);
    const ns = (x) => `${fmt(x.ns, 1)} ns ${spread([x.min, x.max], 1)}`;
    row('getOrFetch hit, awaited (ns/call) vs get', ns(r.getOrFetch), `cache.get (sync) ${ns(r.get)}`, times(pairedRatio(r.getOrFetch.rounds, r.get.rounds)), '—');
    const vsAwait = pairedRatio(r.getOrFetch.rounds, r.awaitMap.rounds);
    row('getOrFetch hit, awaited (ns/call) vs await Map', ns(r.getOrFetch), `await Promise.resolve(Map.get) ${ns(r.awaitMap)}`, times(vsAwait), '≤ 4×', vsAwait <= 4 ? 'yes' : 'NO');
    notes.push(
      `getOrFetch hit: median of 15 interleaved rounds, [min…max]; 1024 keys, every call a hit (loader never ran); iterations per round: ` +
        `getOrFetch ${r.getOrFetch.iters}, get ${r.get.iters}, await Map ${r.awaitMap.iters}; each call awaited in sequence`,
    );
  });

  // (b) 3 tabs × 100 concurrent loads of the same 100 keys.
  await withContext(browser, async (context) => {
    const TABS = 3;
    const N = 100;
    const pagesHere = [];
    for (let t = 0; t < TABS; t++) pagesHere.push(await tab(context, url + PAGE));
    let round = 0;
    const lockedAtStart = [];
    const run = async (mode, wait) => {
      const tag = `gof${++round}${mode[0]}${wait[0]}`;
      await Promise.all(pagesHere.map((p, t) => p.evaluate((clear) => window.bench.gofReset({ clear }), t === 0)));
      await sleep(30); // the clear's storage events have reached the other tabs
      // The previous cache round's "just loaded" lock markers (held 3 s) are gone first, so every
      // round starts alike: getOrFetch scans the origin's held locks on each miss.
      if (mode === 'cache') {
        const t = performance.now();
        while ((await pagesHere[0].evaluate(() => window.bench.gofLocksHeld())) > 0 && performance.now() - t < 10000) await sleep(100);
        lockedAtStart.push(await pagesHere[0].evaluate(() => window.bench.gofLocksHeld()));
      }
      for (let t = 1; t < TABS; t++) await pagesHere[t].evaluate((args) => window.bench.gofArm(args), { tab: t, mode, tag, n: N, wait });
      const r = await pagesHere[0].evaluate(([args, tabs]) => window.bench.gofLead(args, tabs), [{ tab: 0, mode, tag, n: N, wait }, TABS]);
      if (r.timedOut) throw new Error(`getOrFetch ${mode}: not every tab finished within 20 s`);
      const failed = r.tabs.find((x) => x.failed);
      if (failed) throw new Error(`getOrFetch ${mode}, tab ${failed.tab}: ${failed.failed}`);
      // Counted by the server, or in the pages when the loader does not use the network.
      const c = wait === 'page' ? { calls: r.tabs.reduce((n, x) => n + x.calls, 0), perTab: r.tabs.map((x) => x.calls) } : (loaderCalls.get(tag) ?? { calls: 0, perTab: [0, 0, 0] });
      return {
        ms: r.wallMs,
        calls: c.calls,
        perTab: c.perTab,
        wrong: r.tabs.reduce((n, x) => n + x.wrong, 0),
        loaderMs: r.tabs.flatMap((x) => x.loaderMs),
        tabMs: r.tabs.map((x) => x.ms),
        errors: r.tabs.flatMap((x) => x.errors),
      };
    };
    // Interleaved, alternating which goes first; the first `warm` rounds are discarded.
    const compare = async (wait, rounds, warm) => {
      const ours = [];
      const base = [];
      for (let i = 0; i < warm + rounds; i++) {
        const order = i % 2 ? ['naive', 'cache'] : ['cache', 'naive'];
        const out = {};
        for (const m of order) out[m] = await run(m, wait);
        if (i < warm) continue;
        ours.push(out.cache);
        base.push(out.naive);
      }
      return { ours, base };
    };
    const calls = (xs) => `${median(xs)} calls ${spread(xs, 0)}`;
    const ms = (xs) => `${fmt(median(xs), 1)} ms ${spread(xs, 1)}`;
    const loaderMs = (xs) => `${fmt(median(xs.flatMap((x) => x.loaderMs)), 1)} ms (p90 ${fmt(percentile(xs.flatMap((x) => x.loaderMs), 90), 1)})`;
    const all = [];
    // The diagnostic runs in the same tabs right after, so without a warm-up, and fewer rounds
    // (each of its cache rounds waits ~3 s for the previous one's markers).
    for (const [wait, label, rounds, warm] of [['server', '', 5, 1], ['page', ', 20–50 ms timer, no network [diagnostic]', 3, 0]]) {
      const { ours, base } = await compare(wait, rounds, warm);
      all.push(...ours, ...base);
      const callsOurs = ours.map((x) => x.calls);
      const callsBase = base.map((x) => x.calls);
      const exact = callsOurs.every((c) => c === N);
      row(`getOrFetch ${TABS} tabs × ${N} keys${label}: loader calls`, calls(callsOurs), `per-tab Map + dedup ${calls(callsBase)}`, ratio(median(callsOurs), median(callsBase)), `exactly ${N}`, exact ? 'yes' : 'NO');
      const msOurs = ours.map((x) => x.ms);
      const msBase = base.map((x) => x.ms);
      row(`getOrFetch ${TABS} tabs × ${N} keys${label}: wall time, all tabs`, ms(msOurs), `per-tab Map + dedup ${ms(msBase)}`, times(pairedRatio(msOurs, msBase)), '—');
      notes.push(
        `getOrFetch ${TABS} tabs, ${wait === 'server' ? 'server holds each answer 20–50 ms' : 'loader = 20–50 ms timer counted in the page, no fetch [diagnostic]'}: ` +
          `loader calls per tab (ours, tabs 0/1/2 per round): ${ours.map((x) => x.perTab.join('/')).join(', ')}; ` +
          `median of ${rounds} interleaved rounds${warm ? ` (${warm} warm-up discarded)` : ''}; per-tab time to all ${N} values ours ${fmt(median(ours.flatMap((x) => x.tabMs)), 1)} ms, baseline ${fmt(median(base.flatMap((x) => x.tabMs)), 1)} ms (medians); ` +
          `one loader call as the page saw it: ours ${loaderMs(ours)}, baseline ${loaderMs(base)}`,
      );
    }
    const wrong = all.reduce((n, x) => n + x.wrong, 0);
    const errors = [...new Set(all.flatMap((x) => x.errors))];
    notes.push(
      `getOrFetch ${TABS} tabs: same origin, one browser context; each tab starts ${N} concurrent calls (keys <round>:k0…k${N - 1}) on tab 0's BroadcastChannel "go"; ` +
        `the loader is a fetch to the bench server, which counts it and answers after 20–50 ms; wall time from "go" until tab 0 has every value and both other tabs reported theirs (tab 0's clock); ` +
        `fresh keys, fresh cache instances and localStorage cleared each round, and each cache round waits until the previous one's "just loaded" lock markers (held 3 s) are released; ` +
        `the tabs share Chromium's 6 HTTP/1.1 connections per host, so loader calls queue there (the diagnostic rows, without network, show the cross-tab coordination alone); ` +
        (lockedAtStart.some((x) => x > 0) ? `package locks still held at the start of a cache round: ${lockedAtStart.join(', ')}; ` : '') +
        (wrong ? `${wrong} WRONG values` : 'every tab got every value right') +
        (errors.length ? `; cache errors: ${errors.slice(0, 3).join('; ')}` : ''),
    );
  });
}

// The package ships its wasm inside core_wasm.js; the optimised .wasm it was made from stays here.
const WASM = join(ROOT, 'target/pkg-wasm/core_bg.wasm');

function benchSize() {
  const esbuild = join(ROOT, 'node_modules/.bin/esbuild');
  const bundle = (...extra) => {
    const out = spawnSync(esbuild, ['pkg/index.js', '--bundle', '--minify', '--format=esm', '--platform=browser', '--log-level=warning', ...extra], { cwd: ROOT, maxBuffer: 64 << 20 });
    if (out.status !== 0) throw new Error(`esbuild failed: ${out.stderr}`);
    if (out.stderr.length) notes.push(`size: esbuild said: ${String(out.stderr).trim().replace(/\s+/g, ' ').slice(0, 300)}`);
    return out.stdout;
  };
  const gz = (b) => gzipSync(b, { level: 9 }).length;
  const wasm = readFileSync(WASM);
  const js = bundle('--external:./core_wasm.js');
  const whole = bundle();
  const jsRawSrc = ['index.js', 'core.js', 'errors.js', 'log.js', 'scope.js', 'symbols.js', 'wasm.js', 'memory-storage.js'].reduce((n, f) => n + readFileSync(join(ROOT, 'pkg', f)).length, 0);
  const total = gz(whole);
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  const bindgenInput = join(ROOT, 'target/wasm32-unknown-unknown/wasm-release/mfe_shared_cache.wasm');
  const plain = plainOptimised(ROOT, bindgenInput);
  row(
    'package size: wasm (as a .wasm file)',
    `${bytes(wasm.length)} B raw / ${bytes(gz(wasm))} B gz`,
    `the same wasm, wasm-opt -Oz alone: ${bytes(plain.length)} B raw / ${bytes(gz(plain))} B gz`,
    `${(gz(wasm) / gz(plain)).toFixed(2)}× (gz)`,
    '—',
  );
  row('package size: JS without the wasm (esbuild --minify bundle)', `${bytes(js.length)} B min / ${bytes(gz(js))} B gz`, 'n/a', 'n/a', '—');
  row('package size: total gzipped (one bundle, wasm embedded)', `${bytes(total)} B = ${kib(total)}`, 'n/a', 'n/a', '≤ 40 KB gz', total <= 40 * 1024 ? 'yes' : 'NO');
  notes.push(
    `size: the total is the esbuild bundle of pkg/index.js with the wasm inside it as a string of printable ASCII (${bytes(whole.length)} B minified), gzip level 9; ` +
      `it is ${((total / (gz(wasm) + gz(js)) - 1) * 100).toFixed(1)} % more than the .wasm and the JS gzipped apart; JS sources before minifying ${bytes(jsRawSrc)} B; 1 KB = 1024 B`,
  );
  const std = existsSync(join(ROOT, 'target/pkg-wasm/std')) ? readFileSync(join(ROOT, 'target/pkg-wasm/std'), 'utf8').trim() : 'unknown';
  notes.push(`size: Rust's std in the wasm: ${std} (scripts/build-pkg.sh)`);
  const parts = wasmBreakdown(ROOT, bindgenInput);
  const named = parts.reduce((n, [, size]) => n + size, 0);
  notes.push(
    `size: where the wasm's ${bytes(wasm.length)} B go (raw; by function name in a name-keeping build of the same module, after inlining; ` +
      `${bytes(wasm.length - named)} B of types, imports, exports and tables besides): ` +
      parts.map(([part, size]) => `${part} ${(size / 1024).toFixed(1)} KiB (${((100 * size) / wasm.length).toFixed(0)} %)`).join(', '),
  );
}

// The backend parts (bench/backend.mjs) add their rows and notes through this.
const report = { row, note: (text) => notes.push(text) };

// ---- main ---------------------------------------------------------------------------------
// The sections that need pkg/ and headless Chromium; a run of only the others starts neither.
const BROWSER_SECTIONS = ['get', 'writes', 'propagation', 'cold start', 'first render', 'first visit', 'loading', 'size', 'edges', 'offline flush', 'push to tabs'];

async function browserSections() {
  if (!existsSync(join(ROOT, 'pkg/index.js')) || !existsSync(WASM)) {
    process.stderr.write('[bench] pkg/ missing: building it with scripts/build-pkg.sh\n');
    const b = spawnSync(join(ROOT, 'scripts/build-pkg.sh'), { cwd: ROOT, stdio: 'inherit' });
    if (b.status !== 0) throw new Error('scripts/build-pkg.sh failed');
  }
  const server = await startServer({ api: benchApi });
  const browser = await launch();
  try {
    const probe = await withContext(browser, async (context) => {
      const page = await tab(context, server.url + PAGE);
      return page.evaluate(() => ({ ua: navigator.userAgent, ...window.bench.timerResolution() }));
    });
    console.log(`Chromium ${browser.version()} (headless, ${process.env.CHROMIUM ?? '/usr/bin/chromium'})`);
    const sha = createHash('sha256').update(readFileSync(WASM)).digest('hex').slice(0, 12);
    console.log(`pkg/: the embedded wasm's sha256 ${sha}…, built ${statSync(WASM).mtime.toISOString()}`);
    console.log(`performance.now() resolution in the page: ${probe.resolutionMs} ms (crossOriginIsolated: ${probe.crossOriginIsolated}); server ${server.url}`);
    console.log('');

    await section('get', () => benchGet(browser, server.url));
    await section('writes', () => benchWrites(browser, server.url));
    await section('propagation', () => benchPropagation(browser, server.url));
    await section('cold start', () => benchColdStart(browser, server.url));
    await section('first render', () => benchFirstRender(browser, report));
    await section('first visit', () => benchFirstVisit(browser, server.url, report));
    await section('loading', () => benchGetOrFetch(browser, server.url));
    await section('size', () => benchSize());
    await section('edges', () => benchBoundary(browser, report));
    await section('offline flush', () => benchOfflineFlush(browser, report));
    await section('push to tabs', () => benchPushToTabs(browser, report));
  } finally {
    await browser.close().catch(() => {});
    await server.close();
  }
}

async function main() {
  console.log(`mfe-shared-cache benchmark (browser, backend sync, server) — ${new Date().toISOString()}`);
  console.log(`Node ${process.version}; ${cpus().length} CPU(s) ${cpus()[0]?.model ?? ''}`.trim());
  console.log(`load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')} (other processes share these CPUs; figures are medians of interleaved runs)`);
  if (only.length) console.log(`sections: ${only.join(', ')} (BENCH_SECTIONS)`);
  if (BROWSER_SECTIONS.some(wanted)) await browserSections();
  else console.log('');
  // Without the browser: wrk, the servers and node share the machine's cores.
  await section('server throughput', () => benchServerThroughput(report));
  await section('overload', () => benchOverload(report));
  await section('fan-out', () => benchFanOut(report));
  await section('sync throughput: Redis vs embedded', () => benchSyncRedis(report));
  await section('streams', () => benchStreams(report));

  printTable();
  console.log('');
  console.log('- figures: median [min…max] over rounds; ratio: median of per-round ratios (ours / baseline measured back to back), except propagation (ratio of percentiles)');
  for (const n of notes) console.log(`- ${n}`);
  const problems = pages.flatMap((p) => p.problems ?? []);
  if (problems.length) console.log(`- page problems: ${[...new Set(problems)].slice(0, 10).join(' | ')}`);
  console.log(`- load average at end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`- total runtime ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (crashes.length) {
    console.log('');
    for (const c of crashes) console.log(`CRASH in ${c}`);
    process.exitCode = 1;
  }
}

main().catch((e) => {
  console.error(e?.stack ?? e);
  process.exit(1);
});
