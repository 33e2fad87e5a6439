// In-page benchmark bodies, driven by bench/run.mjs through Playwright. Every function measures
// mfe-shared-cache and its baseline with the same loop shape, the same keys and the same values,
// in the same page; run.mjs interleaves the two and takes medians over repetitions.
import { BackendSyncedCacheService } from '/pkg/index.js';

const OPTIONS = { backendUrl: null };
// The baselines store under a prefix of their own (they must not touch the cache's records) as
// long as the cache's default one, as the goal's floor, `setItem(prefix + key, …)`, is.
const NAIVE_PREFIX = 'shared_mfe_naive_';
const RECORD_PREFIX = 'shared_mfe_model_';
if (NAIVE_PREFIX.length !== 'shared_mfe_cache_'.length || RECORD_PREFIX.length !== NAIVE_PREFIX.length) throw new Error('the baselines key as long as the cache does');
const now = () => performance.now();
const wallNow = () => performance.timeOrigin + performance.now();

/** The value every benchmark writes: a small JSON object (~80 bytes as JSON). */
export function makeValue(i, gen = 0) {
  return { id: i, gen, name: `user-${i}`, roles: ['reader', 'editor'], active: i % 2 === 0 };
}

// Results of the measured loops end up here, so no loop can be optimised away.
export let sink = 0;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Timer resolution seen by this page (Chromium coarsens performance.now without COI). */
export function timerResolution() {
  let best = Infinity;
  let last = performance.now();
  const end = last + 20;
  while (last < end) {
    const t = performance.now();
    if (t !== last) {
      best = Math.min(best, t - last);
      last = t;
    }
  }
  return { resolutionMs: best, crossOriginIsolated: globalThis.crossOriginIsolated === true };
}

// ---- 1. get of a hit -----------------------------------------------------------------------
// One loop function per subject, so each gets its own type feedback and optimised code; the key
// array has 1024 keys (index masked), every read is a hit, and the checksum sums a field of the
// returned object.
const MASK = 1023;
function loopOverhead(_, keys, n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += keys[i & MASK].length;
  return s;
}
function loopMap(map, keys, n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += map.get(keys[i & MASK]).id;
  return s;
}
function loopCache(cache, keys, n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += cache.get(keys[i & MASK]).id;
  return s;
}
function loopCacheTtl0(cache, keys, n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += cache.get(keys[i & MASK]).id;
  return s;
}
function loopDateNow(_, keys, n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += Date.now() & keys[i & MASK].length;
  return s;
}
function loopLocalStorage(_, keys, n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += JSON.parse(localStorage.getItem(keys[i & MASK])).id;
  return s;
}

function timeLoop(fn, target, keys, n) {
  const t0 = now();
  const s = fn(target, keys, n);
  const t1 = now();
  sink += s;
  return ((t1 - t0) * 1e6) / n; // ns per op
}

// Grows n until one run takes at least targetMs (that is also the warm-up), then runs twice more
// unrecorded.
function calibrate(fn, target, keys, targetMs) {
  let n = 1024;
  for (;;) {
    const t0 = now();
    sink += fn(target, keys, n);
    if (now() - t0 >= targetMs || n >= 1 << 28) break;
    n *= 2;
  }
  timeLoop(fn, target, keys, n);
  timeLoop(fn, target, keys, n);
  return n;
}

export async function getBench({ rounds = 9, targetMs = 40 } = {}) {
  localStorage.clear();
  const cache = new BackendSyncedCacheService(OPTIONS);
  const keys = Array.from({ length: MASK + 1 }, (_, i) => `key${i}`);
  const foreverKeys = Array.from({ length: MASK + 1 }, (_, i) => `forever${i}`);
  const lsKeys = keys.map((k) => NAIVE_PREFIX + k);
  const map = new Map();
  const writes = [];
  for (let i = 0; i <= MASK; i++) {
    writes.push(cache.set(keys[i], makeValue(i))); // default TTL (3600 s)
    writes.push(cache.set(foreverKeys[i], makeValue(i), 0)); // never expires
    map.set(keys[i], makeValue(i));
    localStorage.setItem(lsKeys[i], JSON.stringify(makeValue(i)));
  }
  await Promise.all(writes);
  for (let i = 0; i <= MASK; i++) {
    const v = cache.get(keys[i]);
    if (v?.id !== i || cache.get(keys[i]) !== v || cache.get(foreverKeys[i])?.id !== i) {
      throw new Error(`cache.get(${keys[i]}) returned ${JSON.stringify(v)}`);
    }
  }
  const subjects = [
    ['overhead', loopOverhead, null, keys],
    ['map', loopMap, map, keys],
    ['cache', loopCache, cache, keys],
    ['localStorage', loopLocalStorage, null, lsKeys],
  ];
  const result = {};
  const run = (list) => {
    const ns = Object.fromEntries(list.map(([name]) => [name, []]));
    const iters = Object.fromEntries(list.map(([name, fn, t, k]) => [name, calibrate(fn, t, k, targetMs)]));
    for (let r = 0; r < rounds; r++) {
      for (const [name, fn, t, k] of list) ns[name].push(timeLoop(fn, t, k, iters[name]));
    }
    for (const [name] of list) result[name] = { ns: median(ns[name]), min: Math.min(...ns[name]), max: Math.max(...ns[name]), iters: iters[name], rounds: ns[name] };
  };
  run(subjects);
  // Afterwards, so its branch feedback cannot colour the default-TTL measurement above.
  run([['cacheTtl0', loopCacheTtl0, cache, foreverKeys], ['map2', loopMap, map, keys], ['dateNow', loopDateNow, null, keys]]);
  cache.dispose();
  localStorage.clear();
  return result;
}

// ---- 2 and 3. writes ----------------------------------------------------------------------
// Tab A writes; tab B holds a cache instance (listening on the cache's channel) and a listener
// on the naive path's channel, so posting in either path does real work.
let writer = null;

export function setupWriter() {
  localStorage.clear();
  const keys = Array.from({ length: 1000 }, (_, i) => `w${i}`);
  writer = { cache: new BackendSyncedCacheService(OPTIONS), channel: new BroadcastChannel('bench-naive'), keys };
  return writer.cache.tabLink;
}

let listener = null;
export function setupListener() {
  listener = { cache: new BackendSyncedCacheService(OPTIONS), channel: new BroadcastChannel('bench-naive'), received: 0, sum: 0, storageEvents: 0 };
  listener.channel.onmessage = (e) => {
    listener.received++;
    listener.sum += e.data.value.id;
  };
  // Every write of tab A's storage reaches this tab as a `storage` event, which its cache also
  // handles: run.mjs waits for all of them before the next measurement, whichever run made them.
  addEventListener('storage', () => listener.storageEvents++);
  return listener.cache.tabLink;
}

/** For run.mjs's barrier: what B has seen so far. */
export function listenerState(key) {
  return { received: listener.received, storageEvents: listener.storageEvents, gen: listener.cache.get(key)?.gen ?? null };
}

function values(n, gen) {
  return Array.from({ length: n }, (_, i) => makeValue(i, gen));
}

/** Sequential awaited writes over the 1000 keys; µs per write. */
export async function seqCache(n, gen) {
  const { cache, keys } = writer;
  const vals = values(n, gen);
  const t0 = now();
  for (let i = 0; i < n; i++) await cache.set(keys[i % keys.length], vals[i]);
  const t1 = now();
  return { us: ((t1 - t0) * 1e3) / n, lastKey: keys[(n - 1) % keys.length] };
}

/** The naive path, one write at a time, over the same keys and values; µs per write. */
export function seqNaive(n, gen) {
  const { channel, keys } = writer;
  const vals = values(n, gen);
  const t0 = now();
  for (let i = 0; i < n; i++) {
    const k = keys[i % keys.length];
    const v = vals[i];
    localStorage.setItem(NAIVE_PREFIX + k, JSON.stringify(v));
    channel.postMessage({ key: k, value: v });
  }
  const t1 = now();
  return { us: ((t1 - t0) * 1e3) / n };
}

/** 1000 un-awaited writes over `distinct` keys, then Promise.all; µs per write. */
export async function burstCache(distinct, gen, n = 1000) {
  const { cache, keys } = writer;
  const vals = values(n, gen);
  const t0 = now();
  const pending = new Array(n);
  for (let i = 0; i < n; i++) pending[i] = cache.set(keys[i % distinct], vals[i]);
  await Promise.all(pending);
  const t1 = now();
  // Persisted and visible: each key holds the last value written to it in this burst.
  const last = keys[(n - 1) % distinct];
  const stored = JSON.parse(localStorage.getItem(`shared_mfe_cache_${last}`));
  if (stored?.v?.gen !== gen || cache.get(last)?.id !== n - 1) throw new Error(`burst not persisted: ${JSON.stringify(stored)}`);
  return { us: ((t1 - t0) * 1e3) / n, lastKey: last };
}

export function burstNaive(distinct, gen, n = 1000) {
  const { channel, keys } = writer;
  const vals = values(n, gen);
  const t0 = now();
  for (let i = 0; i < n; i++) {
    const k = keys[i % distinct];
    const v = vals[i];
    localStorage.setItem(NAIVE_PREFIX + k, JSON.stringify(v));
    channel.postMessage({ key: k, value: v });
  }
  const t1 = now();
  return { us: ((t1 - t0) * 1e3) / n };
}

/** The storage floor of a burst: only `setItem(prefix + key, JSON.stringify(value))`, in one task. */
export function burstFloor(distinct, gen, n = 1000) {
  const { keys } = writer;
  const vals = values(n, gen);
  const t0 = now();
  for (let i = 0; i < n; i++) localStorage.setItem(NAIVE_PREFIX + keys[i % distinct], JSON.stringify(vals[i]));
  const t1 = now();
  return { us: ((t1 - t0) * 1e3) / n };
}

/**
 * What the floor becomes for any cache that must not overwrite another tab's newer or unsent
 * write, in plain JavaScript: each key read first, then a record of the cache's shape (value,
 * stamp, writer, prefix tag, TTL) stored, with no merge or message at all.
 */
export function burstRecordFloor(distinct, gen, n = 1000) {
  const { keys } = writer;
  const vals = values(n, gen);
  const t0 = now();
  let held = 0;
  for (let i = 0; i < n; i++) held += (localStorage.getItem(RECORD_PREFIX + keys[i % distinct]) ?? '').length;
  for (let i = 0; i < n; i++) {
    const record = `{"t":${Date.now()},"n":"k3x9q1vz7w2m","p":"a1b2c3","l":3600000,"v":${JSON.stringify(vals[i])}}`;
    localStorage.setItem(RECORD_PREFIX + keys[i % distinct], record);
  }
  const t1 = now();
  sink += held;
  return { us: ((t1 - t0) * 1e3) / n };
}

// ---- 4. cross-tab propagation --------------------------------------------------------------
// Both tabs run the same setup. The sender stamps wall time just before `set` / `postMessage`,
// the receiver stamps it first thing in the subscribe callback / onmessage, then acknowledges on
// a separate channel; the sender waits for the ack (one sample in flight) and a short random
// pause before the next sample. Cache and raw samples alternate.
let prop = null;

export function setupProp(name, { subscribe }) {
  const cache = new BackendSyncedCacheService(OPTIONS);
  const raw = new BroadcastChannel('bench-raw');
  const ack = new BroadcastChannel('bench-ack');
  prop = { name, cache, raw, ack, sent: {}, recv: {}, waiter: null, errors: [] };
  cache.on('error', (e) => prop.errors.push(`${e.type}: ${e.message}`));
  // Only the receiving tab subscribes: a subscriber in the writing tab would run synchronously
  // inside `set`, before the tab message is posted, and be counted as propagation time.
  if (subscribe) {
    cache.subscribe('prop', (v) => {
      const t = wallNow();
      if (v === null) return;
      prop.recv[`cache:${v.from}:${v.i}`] = t;
      ack.postMessage(`cache:${v.from}:${v.i}`);
    });
  }
  // Raw BroadcastChannel pings, and the naive path (setItem, then postMessage) as a diagnostic.
  raw.onmessage = (e) => {
    const t = wallNow();
    const { kind, value: v } = e.data;
    prop.recv[`${kind}:${v.from}:${v.i}`] = t;
    ack.postMessage(`${kind}:${v.from}:${v.i}`);
  };
  ack.onmessage = (e) => {
    if (prop.waiter && prop.waiter.id === e.data) prop.waiter.resolve(true);
  };
  return cache.tabLink;
}

function waitAck(id, timeoutMs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    prop.waiter = {
      id,
      resolve: (v) => {
        clearTimeout(timer);
        prop.waiter = null;
        resolve(v);
      },
    };
  });
}

/** Sends `n` samples of each kind in `kinds`, alternating; returns how many were never acked. */
export async function sendSamples(n, kinds, timeoutMs = 1000, start = 0) {
  let lost = 0;
  const from = prop.name;
  for (let i = start; i < start + n; i++) {
    // Rotate which kind goes first, so none always follows another.
    const order = kinds.map((_, j) => kinds[(i + j) % kinds.length]);
    for (const kind of order) {
      const id = `${kind}:${from}:${i}`;
      const value = { ...makeValue(i), i, from };
      const acked = waitAck(id, timeoutMs);
      let write = null;
      const t0 = wallNow();
      if (kind === 'cache') write = prop.cache.set('prop', value);
      else if (kind === 'raw') prop.raw.postMessage({ kind, key: 'prop', value });
      else {
        localStorage.setItem(NAIVE_PREFIX + 'prop', JSON.stringify(value));
        prop.raw.postMessage({ kind, key: 'prop', value });
      }
      prop.sent[id] = t0;
      if (!(await acked)) lost++;
      if (write) await write;
      await sleep(1 + Math.random() * 2);
    }
  }
  return lost;
}

export function propTimes() {
  return { sent: prop.sent, recv: prop.recv, errors: prop.errors };
}

// ---- 5. cold start ------------------------------------------------------------------------
export async function populate(n) {
  localStorage.clear();
  const cache = new BackendSyncedCacheService(OPTIONS);
  const pending = [];
  for (let i = 0; i < n; i++) pending.push(cache.set(`item${i}`, makeValue(i)));
  await Promise.all(pending);
  cache.dispose();
  return localStorage.length;
}

const COLD_KEY = 'item5000';

/**
 * Time from just before the constructor to just after the first `get`. With `warmStorage`, the
 * page touches localStorage first (timed separately), so the figure excludes loading the storage
 * area into the renderer.
 */
export function coldCache({ warmStorage }) {
  const touchMs = warmStorage ? touchStorage() : null;
  const t0 = now();
  const cache = new BackendSyncedCacheService(OPTIONS);
  const v = cache.get(COLD_KEY);
  const t1 = now();
  const ok = v?.id === 5000 && cache.get('item9999')?.id === 9999 && cache.get('item0')?.id === 0;
  cache.dispose();
  sink += v?.id ?? 0;
  return { ms: t1 - t0, ok, touchMs };
}

/** The naive hydrate: every prefixed key JSON.parse'd into a Map, then the same first get. */
export function coldNaive({ warmStorage }) {
  const touchMs = warmStorage ? touchStorage() : null;
  const prefix = 'shared_mfe_cache_';
  const t0 = now();
  const map = new Map();
  for (let i = 0; i < localStorage.length; i++) {
    const k = localStorage.key(i);
    if (k.startsWith(prefix)) map.set(k.slice(prefix.length), JSON.parse(localStorage.getItem(k)));
  }
  const v = map.get(COLD_KEY)?.v ?? null;
  const t1 = now();
  const ok = v?.id === 5000 && map.size >= 10000;
  sink += v?.id ?? 0;
  return { ms: t1 - t0, ok, touchMs };
}

function touchStorage() {
  const t0 = now();
  sink += localStorage.length;
  return now() - t0;
}

// ---- 6. getOrFetch ------------------------------------------------------------------------
// (a) A hit: `await cache.getOrFetch(key, loader)` against the sync `cache.get(key)` and a plain
// `await Promise.resolve(map.get(key))`, same 1024 keys and values, every read a hit; the async
// loops are timed like the sync ones (calibrated, then interleaved rounds).
async function loopGetOrFetch(cache, keys, n, loader) {
  let s = 0;
  for (let i = 0; i < n; i++) s += (await cache.getOrFetch(keys[i & MASK], loader)).id;
  return s;
}
function loopCacheGet(cache, keys, n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += cache.get(keys[i & MASK]).id;
  return s;
}
async function loopAwaitMap(map, keys, n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += (await Promise.resolve(map.get(keys[i & MASK]))).id;
  return s;
}

async function timeLoopAsync(fn, target, keys, n, extra) {
  const t0 = now();
  const s = await fn(target, keys, n, extra);
  const t1 = now();
  sink += s;
  return ((t1 - t0) * 1e6) / n; // ns per call
}

async function calibrateAsync(fn, target, keys, targetMs, extra) {
  let n = 1024;
  for (;;) {
    const t0 = now();
    sink += await fn(target, keys, n, extra);
    if (now() - t0 >= targetMs || n >= 1 << 26) break;
    n *= 2;
  }
  await timeLoopAsync(fn, target, keys, n, extra);
  await timeLoopAsync(fn, target, keys, n, extra);
  return n;
}

export async function getOrFetchHitBench({ rounds = 15, targetMs = 40 } = {}) {
  localStorage.clear();
  const cache = new BackendSyncedCacheService(OPTIONS);
  const keys = Array.from({ length: MASK + 1 }, (_, i) => `gof${i}`);
  const map = new Map();
  const writes = [];
  for (let i = 0; i <= MASK; i++) {
    writes.push(cache.set(keys[i], makeValue(i)));
    map.set(keys[i], makeValue(i));
  }
  await Promise.all(writes);
  let loaderCalls = 0;
  const loader = () => {
    loaderCalls++;
    return makeValue(-1);
  };
  for (let i = 0; i <= MASK; i++) {
    const v = await cache.getOrFetch(keys[i], loader);
    if (v?.id !== i || cache.get(keys[i]) !== v) throw new Error(`getOrFetch(${keys[i]}) returned ${JSON.stringify(v)}`);
  }
  // [name, loop, target, async]
  const subjects = [
    ['getOrFetch', loopGetOrFetch, cache, true],
    ['get', loopCacheGet, cache, false],
    ['awaitMap', loopAwaitMap, map, true],
  ];
  const iters = {};
  for (const [name, fn, t, isAsync] of subjects) iters[name] = isAsync ? await calibrateAsync(fn, t, keys, targetMs, loader) : calibrate(fn, t, keys, targetMs);
  const ns = Object.fromEntries(subjects.map(([name]) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn, t, isAsync] of subjects) ns[name].push(isAsync ? await timeLoopAsync(fn, t, keys, iters[name], loader) : timeLoop(fn, t, keys, iters[name]));
  }
  cache.dispose();
  localStorage.clear();
  const result = { loaderCalls };
  for (const [name] of subjects) result[name] = { ns: median(ns[name]), min: Math.min(...ns[name]), max: Math.max(...ns[name]), iters: iters[name], rounds: ns[name] };
  return result;
}

// (b) Three tabs load the same 100 keys at once, each with 100 concurrent calls. The loader is a
// fetch to run.mjs's counting route (the server answers after 20–50 ms), or, as a diagnostic
// without the network, a 20–50 ms timer counted in the page. Tab 0 leads: it posts
// "go" on a BroadcastChannel, runs its own calls and waits for the other two tabs' "done"; its
// clock alone gives the wall time. Mode 'cache': `cache.getOrFetch(key, loader)` on a fresh
// instance; mode 'naive': a per-tab Map plus in-tab promise dedup (`map.get(k) ?? await loader()`).
let gof = null;

/** Disposes the previous round's cache; `clear` (one tab) empties localStorage. */
export function gofReset({ clear }) {
  gof?.cache?.dispose();
  gof?.channel?.close();
  gof = null;
  if (clear) localStorage.clear();
  return localStorage.length;
}

function gofPrepare({ tab, mode, tag, n, wait }) {
  const channel = new BroadcastChannel('bench-gof');
  const state = { tab, mode, tag, n, wait, channel, calls: 0, cache: null, errors: [], loaderMs: [], done: [] };
  if (mode === 'cache') {
    state.cache = new BackendSyncedCacheService(OPTIONS);
    state.cache.on('error', (e) => state.errors.push(`${e.type}: ${e.message}`));
  }
  gof = state;
  return state;
}

/**
 * The loader: a fetch the server counts and holds 20–50 ms; or (`wait: 'page'`, diagnostic) no
 * network at all: the page counts the call and waits the same 20–50 ms on a timer.
 */
async function gofLoad(state, i) {
  const t0 = now();
  let v;
  if (state.wait === 'page') {
    state.calls++;
    await sleep(20 + ((i * 7919) % 31)); // the delay the server would have held
    v = { id: i, tag: state.tag, name: `user-${i}`, roles: ['reader', 'editor'], active: i % 2 === 0 };
  } else {
    const res = await fetch(`/bench-api/load?tag=${encodeURIComponent(state.tag)}&i=${i}&tab=${state.tab}`);
    if (!res.ok) throw new Error(`loader: HTTP ${res.status}`);
    v = await res.json();
  }
  state.loaderMs.push(now() - t0);
  return v;
}

async function gofWork(state) {
  const { tag, n, mode } = state;
  const keys = Array.from({ length: n }, (_, i) => `${tag}:k${i}`);
  const t0 = now();
  let values;
  if (mode === 'cache') {
    values = await Promise.all(keys.map((k, i) => state.cache.getOrFetch(k, () => gofLoad(state, i))));
  } else {
    const map = new Map();
    const inflight = new Map();
    const naiveGet = async (k, i) => {
      const hit = map.get(k);
      if (hit !== undefined) return hit;
      let p = inflight.get(k);
      if (!p) {
        p = gofLoad(state, i).then((v) => {
          map.set(k, v);
          inflight.delete(k);
          return v;
        });
        inflight.set(k, p);
      }
      return p;
    };
    values = await Promise.all(keys.map((k, i) => naiveGet(k, i)));
  }
  const ms = now() - t0;
  let wrong = 0;
  values.forEach((v, i) => {
    if (v?.id !== i || v?.tag !== tag) wrong++;
  });
  return { tab: state.tab, ms, wrong, calls: state.calls, loaderMs: state.loaderMs, errors: state.errors.slice(0, 5) };
}

/** Tabs 1 and 2: get ready, start on tab 0's "go", report "done" with this tab's result. */
export function gofArm(args) {
  const state = gofPrepare(args);
  state.channel.onmessage = async (e) => {
    if (e.data?.go !== state.tag) return;
    let out;
    try {
      out = await gofWork(state);
    } catch (err) {
      out = { tab: state.tab, failed: String(err?.stack ?? err) };
    }
    state.channel.postMessage({ done: state.tag, out });
  };
  return true;
}

/** Tab 0: starts every tab, runs its own share, resolves once all `tabs` have every value. */
export async function gofLead(args, tabs, timeoutMs = 20000) {
  const state = gofPrepare(args);
  const others = [];
  let allDone;
  const finished = new Promise((resolve) => (allDone = resolve));
  state.channel.onmessage = (e) => {
    if (e.data?.done !== state.tag) return;
    others.push({ out: e.data.out, at: now() });
    if (others.length === tabs - 1) allDone();
  };
  const t0 = now();
  state.channel.postMessage({ go: state.tag });
  const own = await gofWork(state);
  const ownAt = now();
  const timedOut = await Promise.race([finished.then(() => false), sleep(timeoutMs).then(() => true)]);
  const end = Math.max(ownAt, ...others.map((o) => o.at));
  return { wallMs: end - t0, timedOut, tabs: [own, ...others.map((o) => o.out)] };
}

/** Web Locks of the package held in this origin now (the 3 s "just loaded" markers linger). */
export async function gofLocksHeld() {
  const { held = [] } = await navigator.locks.query();
  return held.filter((l) => l.name?.startsWith('mfe-shared-cache:')).length;
}
