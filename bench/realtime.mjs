// The real-time and scale-out parts of `node bench/run.mjs` (issue 6):
//   - fan-out: 2 mfe-cache-server instances on one Redis (`--store redis://…`, one prefix), 50
//     Server-Sent-Events clients on each, writes through instance 1; per client per write, the
//     time from sending the POST until that client has the event. Baseline: the same 100 clients
//     and writes on ONE instance with the embedded store. Also checks every client saw every key
//     once, with strictly increasing ids.
//   - sync throughput, Redis vs embedded: wrk on /sync (bench/wrk/cache.lua, as the server
//     throughput section drives it) against one instance on Redis and one on redb.
//   - push to tabs: one browser context, 3 tabs of the bench page on a cache synced with
//     mfe-cache-server (realtime 'auto'); writes POSTed from node, as another device would, timed
//     until every tab has them; baseline: the same with realtime 'off', polling every 1 s. Also
//     counts the requests the idle tabs make.
// Each section adds rows to run.mjs's table through `report.row(...)` and notes through
// `report.note(...)`. Loopback only; every process started here is stopped before returning.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer, connect } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ROOT, openTab, startServer } from '../tests/browser/harness.mjs';
import { proxy } from '../tests/servers/proxy.mjs';
import { readEventStream } from './sse.mjs';
import { buildReleaseServer, ensureWrk, fsOf, killOnExit, post, runWrk, scanServerLog, startCacheServer, tail } from './backend.mjs';
import { fmt, int, median, percentile, sleep } from './stats.mjs';

const PAGE = '/bench/bench.html';
const max = (xs) => xs.reduce((m, x) => Math.max(m, x), -Infinity);
const wall = () => performance.timeOrigin + performance.now();


function cpuSecondsOf(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

// ---- Redis --------------------------------------------------------------------------------------

function ensureRedis() {
  if (spawnSync('sh', ['-c', 'command -v redis-server && command -v redis-cli'], { stdio: 'ignore' }).status === 0) return;
  const out = spawnSync(join(ROOT, 'scripts/ensure-tools.sh'), ['redis'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (out.status !== 0) throw new Error('scripts/ensure-tools.sh redis failed');
}

async function freePort() {
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

// One RESP command over a fresh connection; resolves to the first reply line.
function redisCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => socket.destroy(new Error('redis: no answer within 2 s')), 2000);
    socket.on('connect', () => socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`));
    socket.on('data', (c) => {
      data += c;
      if (data.includes('\r\n')) {
        clearTimeout(timer);
        socket.end();
        resolve(data.slice(0, data.indexOf('\r\n')));
      }
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** redis-server on a free loopback port, AOF with fsync on every write, in a temp dir. */
async function startRedis() {
  ensureRedis();
  const dir = mkdtempSync(join(tmpdir(), 'mfe-redis-bench-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir, '--daemonize', 'no', '--logfile', join(dir, 'redis.log')];
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  killOnExit(child);
  let exited = null;
  child.once('exit', (code, signal) => {
    exited = { code, signal };
  });
  const stop = async () => {
    if (!exited) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const t0 = performance.now();
  for (;;) {
    if (exited) {
      const log = tail(join(dir, 'redis.log'));
      await stop();
      throw new Error(`redis-server exited (${JSON.stringify(exited)}) before answering PING${log}`);
    }
    try {
      if ((await redisCommand(port, 'PING')) === '+PONG') break;
    } catch {
      // not listening yet
    }
    if (performance.now() - t0 > 10000) {
      await stop();
      throw new Error('redis-server did not answer PING within 10 s');
    }
    await sleep(50);
  }
  const version = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout?.match(/v=([0-9.]+)/)?.[1] ?? '?';
  return { url: `redis://127.0.0.1:${port}`, port, pid: child.pid, version, dir, exited: () => exited, cpuSeconds: () => cpuSecondsOf(child.pid), stop };
}

// ---- SSE clients ----------------------------------------------------------------------------------

/**
 * A Server-Sent-Events client on `origin`'s /api/cache/events (from the current cursor), on its
 * own connection. Calls `onChange(client, key, at)` per `change` event (`at`: performance.now()
 * when the chunk carrying it arrived) and records ids, so order can be checked after.
 */
function sseClient(origin, index, onChange) {
  const client = { index, origin, ready: false, ids: [], outOfOrder: 0, errors: [], req: null };
  let readyResolve;
  let readyReject;
  client.readyPromise = new Promise((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  const req = request(`${origin}/api/cache/events`, { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
    if (res.statusCode !== 200 || !String(res.headers['content-type']).startsWith('text/event-stream')) {
      readyReject(new Error(`/events answered HTTP ${res.statusCode} ${res.headers['content-type']}`));
      res.resume();
      return;
    }
    // The client library's own SSE reader, fed from this socket (one connection per client).
    let at = 0;
    const onEvents = (events) => {
      for (const e of events) {
        if (e.event === 'ready') {
          client.ready = true;
          readyResolve();
        } else if (e.event === 'change') {
          const n = Number(e.id);
          if (client.ids.length && !(n > client.ids[client.ids.length - 1])) client.outOfOrder++;
          client.ids.push(n);
          try {
            onChange(client, JSON.parse(e.data).key, at);
          } catch (err) {
            client.errors.push(String(err?.message ?? err));
          }
        }
      }
    };
    readEventStream(Readable.toWeb(res), onEvents, () => (at = performance.now())).catch((e) => client.errors.push(String(e?.message ?? e)));
    res.on('error', (e) => client.errors.push(String(e?.message ?? e)));
  });
  req.on('error', (e) => {
    client.errors.push(String(e?.message ?? e));
    readyReject(e);
  });
  req.end();
  client.req = req;
  client.close = () => req.destroy();
  return client;
}

// ---- 1. fan-out -------------------------------------------------------------------------------------

const FAN_CLIENTS = 100;
const FAN_WRITES = 200; // measured, per setup
const FAN_BLOCK = 50; // writes per block; the setups alternate block by block
const FAN_WARM = 10; // per setup, discarded
const FAN_TIMEOUT_MS = 3000; // per write: then the next write goes (late events still count)

// A keep-alive connection per writer: the POST /set that each write is.
function writer(origin) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  return (body) =>
    new Promise((resolve, reject) => {
      const text = JSON.stringify(body);
      const req = request(`${origin}/api/cache/set`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`/set answered HTTP ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(text);
    });
}

async function fanOutSetup(name, writeOrigin, clientOrigins, tag) {
  const setup = { name, tag, pending: new Map(), seen: [], samples: [], perOrigin: new Map(), postMs: [], timeouts: 0, clients: [] };
  const onChange = (client, key, at) => {
    if (!key.startsWith(`${tag}:`)) return;
    const seen = setup.seen[client.index];
    seen.set(key, (seen.get(key) ?? 0) + 1);
    const p = setup.pending.get(key);
    if (!p || seen.get(key) > 1) return;
    if (p.measured) {
      setup.samples.push(at - p.t0);
      const list = setup.perOrigin.get(client.origin) ?? [];
      list.push(at - p.t0);
      setup.perOrigin.set(client.origin, list);
    }
    if (--p.remaining === 0) p.resolve();
  };
  for (let i = 0; i < FAN_CLIENTS; i++) {
    setup.seen.push(new Map());
    setup.clients.push(sseClient(clientOrigins[i % clientOrigins.length], i, onChange));
  }
  await Promise.race([Promise.all(setup.clients.map((c) => c.readyPromise)), sleep(15000).then(() => Promise.reject(new Error(`${name}: not every SSE client got 'ready' within 15 s`)))]);
  setup.send = writer(writeOrigin);
  setup.sent = 0;
  setup.keys = [];
  setup.write = async (measured) => {
    const key = `${tag}:${setup.sent++}`;
    setup.keys.push(key);
    let resolve;
    const done = new Promise((r) => (resolve = r));
    const p = { t0: 0, remaining: FAN_CLIENTS, resolve, measured };
    setup.pending.set(key, p);
    p.t0 = performance.now();
    await setup.send({ key, value: { i: setup.sent, name: `user-${setup.sent}`, roles: ['reader', 'editor'] }, ttl: 3600, timestamp: Date.now(), node: 'bench-writer' });
    if (measured) setup.postMs.push(performance.now() - p.t0);
    let timer;
    const timedOut = await Promise.race([done.then(() => false), new Promise((r) => (timer = setTimeout(() => r(true), FAN_TIMEOUT_MS)))]);
    clearTimeout(timer);
    if (timedOut) setup.timeouts++;
  };
  return setup;
}

function fanOutTally(setup) {
  let lost = 0;
  let repeated = 0;
  let outOfOrder = 0;
  for (let i = 0; i < FAN_CLIENTS; i++) {
    const seen = setup.seen[i];
    for (const key of setup.keys) {
      const n = seen.get(key) ?? 0;
      if (n === 0) lost++;
      else if (n > 1) repeated += n - 1;
    }
    outOfOrder += setup.clients[i].outOfOrder;
  }
  const errors = setup.clients.flatMap((c) => c.errors);
  return { lost, repeated, outOfOrder, errors, expected: FAN_CLIENTS * setup.keys.length };
}

export async function benchFanOut(report) {
  buildReleaseServer();
  const startLoad = loadavg()[0];
  const run = randomBytes(4).toString('hex');
  const redis = await startRedis();
  const servers = [];
  const setups = [];
  let logs;
  try {
    const redisArgs = ['--store', redis.url, '--redis-prefix', `bench-fan-${run}`];
    const one = await startCacheServer({ args: redisArgs });
    servers.push(one);
    const two = await startCacheServer({ args: redisArgs });
    servers.push(two);
    const solo = await startCacheServer();
    servers.push(solo);
    const ours = await fanOutSetup('redis', one.origin, [one.origin, two.origin], `fanr${run}`);
    setups.push(ours);
    const base = await fanOutSetup('embedded', solo.origin, [solo.origin], `fane${run}`);
    setups.push(base);
    const cpu0 = { one: one.cpuSeconds(), two: two.cpuSeconds(), solo: solo.cpuSeconds(), redis: redis.cpuSeconds() };
    const t0 = performance.now();
    for (const s of [ours, base]) for (let i = 0; i < FAN_WARM; i++) await s.write(false);
    // Alternating blocks, so a change in the machine's load hits both alike; 1–3 ms between writes.
    for (let b = 0; b < FAN_WRITES / FAN_BLOCK; b++) {
      for (const s of b % 2 ? [base, ours] : [ours, base]) {
        for (let i = 0; i < FAN_BLOCK; i++) {
          await s.write(true);
          await sleep(1 + Math.random() * 2);
        }
      }
      if (performance.now() - t0 > 60000) break; // bounded: report what was measured
    }
    await sleep(500); // late events (after a per-write timeout) still count as delivered
    const cpu = { one: one.cpuSeconds() - cpu0.one, two: two.cpuSeconds() - cpu0.two, solo: solo.cpuSeconds() - cpu0.solo, redis: redis.cpuSeconds() - cpu0.redis };
    const tallies = { ours: fanOutTally(ours), base: fanOutTally(base) };
    for (const s of setups) for (const c of s.clients) c.close();
    setups.length = 0;
    const died = servers.find((s) => s.exited());
    if (died) throw new Error(`an mfe-cache-server exited during the run: ${JSON.stringify(died.exited())}${tail(died.logFile)}`);
    logs = servers.map((s) => scanServerLog(s.logFile));

    const lat = (s) => `${fmt(percentile(s.samples, 50))} / ${fmt(percentile(s.samples, 99))} / ${fmt(max(s.samples))} ms`;
    const writes = ours.postMs.length;
    report.row(
      `fan-out: write → ${FAN_CLIENTS} SSE clients, p50 / p99 / max (ms; ${writes} writes × ${FAN_CLIENTS} = ${int(ours.samples.length)} samples)`,
      `2 instances on Redis: ${lat(ours)}`,
      `1 instance, embedded store: ${lat(base)} (n=${int(base.samples.length)})`,
      `p50 ${fmt(percentile(ours.samples, 50) / percentile(base.samples, 50))}×, p99 ${fmt(percentile(ours.samples, 99) / percentile(base.samples, 99))}×`,
      '—',
    );
    const bad = (t) => `${int(t.lost)} lost / ${int(t.repeated)} repeated / ${int(t.outOfOrder)} ids out of order (of ${int(t.expected)}, warm-ups included)`;
    const clean = (t) => t.lost === 0 && t.repeated === 0 && t.outOfOrder === 0;
    report.row(
      `fan-out: events lost / repeated / out of order`,
      bad(tallies.ours),
      `embedded: ${bad(tallies.base)}`,
      'n/a',
      '0',
      clean(tallies.ours) && clean(tallies.base) ? 'yes' : 'NO',
    );
    const [o1, o2] = [one.origin, two.origin].map((o) => ours.perOrigin.get(o) ?? []);
    report.note(
      `fan-out: 2 mfe-cache-server instances (release) with --store ${redis.url.replace(/:\d+$/, ':PORT')} --redis-prefix bench-fan-<run> on one redis-server ${redis.version} ` +
        `(--appendonly yes --appendfsync always, --save '', loopback), ${FAN_CLIENTS / 2} SSE clients on each (GET /api/cache/events, one connection each, node http in this process); ` +
        `baseline: ${FAN_CLIENTS} SSE clients on one instance with the embedded redb store (--data in a temp dir); both setups run side by side, writes alternate in blocks of ${FAN_BLOCK} ` +
        `(${FAN_WARM} warm-up writes each discarded); a write = one POST /api/cache/set on a keep-alive connection (through instance 1 for Redis), unique key, then wait until all ` +
        `${FAN_CLIENTS} clients have its change event (≤ ${FAN_TIMEOUT_MS / 1000} s; timed out: Redis ${ours.timeouts}, embedded ${base.timeouts}), 1–3 ms pause; ` +
        `latency per client per write = POST sent → chunk carrying the event read by the client (node's performance.now(), so it includes this one event loop reading ${FAN_CLIENTS} sockets)`,
    );
    report.note(
      `fan-out, Redis: clients on instance 1 (the writer's) p50/p99 ${fmt(percentile(o1, 50))}/${fmt(percentile(o1, 99))} ms, ` +
        `on instance 2 (woken by Redis pub/sub) p50/p99 ${fmt(percentile(o2, 50))}/${fmt(percentile(o2, 99))} ms; ` +
        `POST /set answered p50/p99: Redis ${fmt(percentile(ours.postMs, 50))}/${fmt(percentile(ours.postMs, 99))} ms, embedded ${fmt(percentile(base.postMs, 50))}/${fmt(percentile(base.postMs, 99))} ms ` +
        `(the event can reach clients before the POST's answer); CPU over the measured part: instance 1 ${fmt(cpu.one, 1)} s, instance 2 ${fmt(cpu.two, 1)} s, redis-server ${fmt(cpu.redis, 1)} s, ` +
        `embedded instance ${fmt(cpu.solo, 1)} s; ${cpus().length} CPU cores shared by all of them and this node process (load average ${fmt(startLoad)} → ${fmt(loadavg()[0])})`,
    );
    const errs = [...tallies.ours.errors, ...tallies.base.errors];
    if (errs.length) report.note(`fan-out: SSE client errors: ${[...new Set(errs)].slice(0, 5).join(' | ')} (${errs.length} in all)`);
    const problems = logs.flatMap((l) => l.problems);
    if (problems.length) report.note(`fan-out: ${problems.length} WARN/ERROR lines in the servers' logs, first: ${problems[0].slice(0, 300)}`);
  } finally {
    for (const s of setups) for (const c of s.clients) c.close();
    for (const s of servers) await s.stop();
    await redis.stop();
  }
}

// ---- 2. /sync throughput, Redis vs embedded --------------------------------------------------------

const SYNC_CONNECTIONS = 32;
const SYNC_S = 6;
const SYNC_ROUNDS = 2;
const SYNC_WARMUP_S = 2;
const SET_S = 4;

export async function benchSyncRedis(report) {
  ensureWrk();
  buildReleaseServer();
  const startLoad = loadavg()[0];
  const run = randomBytes(4).toString('hex');
  const redis = await startRedis();
  const servers = [];
  const results = { redis: { sync: [], set: [] }, embedded: { sync: [], set: [] } };
  let logs;
  try {
    const onRedis = await startCacheServer({ args: ['--store', redis.url, '--redis-prefix', `bench-sync-${run}`] });
    servers.push(onRedis);
    const embedded = await startCacheServer();
    servers.push(embedded);
    // The Redis instance's CPU includes redis-server's: the store is both processes.
    const both = { origin: onRedis.origin, cpuSeconds: () => onRedis.cpuSeconds() + redis.cpuSeconds() };
    const targets = { redis: both, embedded };
    const check = (name, mode) => {
      const s = name === 'redis' ? onRedis : embedded;
      if (s.exited()) throw new Error(`mfe-cache-server (${name}) died during the ${mode} run: ${JSON.stringify(s.exited())}${tail(s.logFile)}`);
      if (name === 'redis' && redis.exited()) throw new Error(`redis-server died during the ${mode} run: ${JSON.stringify(redis.exited())}`);
    };
    const conns = { connections: SYNC_CONNECTIONS };
    const wrk = async (name, mode, seconds) => {
      const redis0 = redis.cpuSeconds();
      const r = await runWrk(targets[name], mode, seconds, conns);
      r.redisCpu = name === 'redis' ? redis.cpuSeconds() - redis0 : 0;
      check(name, mode);
      return r;
    };
    for (const name of ['redis', 'embedded']) await wrk(name, 'sync', SYNC_WARMUP_S);
    for (let r = 0; r < SYNC_ROUNDS; r++) {
      for (const name of r % 2 ? ['embedded', 'redis'] : ['redis', 'embedded']) results[name].sync.push(await wrk(name, 'sync', SYNC_S));
    }
    for (const name of ['embedded', 'redis']) results[name].set.push(await wrk(name, 'set', SET_S));
    logs = servers.map((s) => ({ ...scanServerLog(s.logFile) }));
  } finally {
    for (const s of servers) await s.stop();
    await redis.stop();
  }

  const ms = (us) => fmt(us / 1000, 2);
  const sum = (xs, f) => xs.reduce((n, r) => n + f(r), 0);
  const errs = (xs) => {
    const bad = sum(xs, (r) => r.bad);
    const socket = sum(xs, (r) => r.socketErrors);
    return bad || socket ? ` (${bad} non-2xx, ${socket} socket errors)` : '';
  };
  const all = (xs) => xs.map((r) => int(r.rps)).join(', ');
  const cell = (xs) => `${int(median(xs.map((r) => r.rps)))} req/s${errs(xs)}, p50/p99 ${ms(median(xs.map((r) => r.p50_us)))}/${ms(median(xs.map((r) => r.p99_us)))} ms`;
  const R = results.redis;
  const E = results.embedded;
  report.row(
    `/sync (1–5 changes) req/s, ${SYNC_CONNECTIONS} conns: ours = Redis store, baseline = embedded redb`,
    `Redis ${cell(R.sync)}`,
    `embedded ${cell(E.sync)}`,
    `${fmt(median(R.sync.map((r) => r.rps)) / median(E.sync.map((r) => r.rps)))}×`,
    '—',
  );
  report.row(
    `/set req/s, ${SYNC_CONNECTIONS} conns: Redis vs embedded [diagnostic]`,
    `Redis ${cell(R.set)}`,
    `embedded ${cell(E.set)}`,
    `${fmt(R.set[0].rps / E.set[0].rps)}×`,
    '—',
  );
  const perCpu = (xs) => int(sum(xs, (r) => r.requests) / sum(xs, (r) => r.cpu));
  report.note(
    `sync throughput, Redis vs embedded: wrk -t2 -c${SYNC_CONNECTIONS} --latency --timeout 5s with bench/wrk/cache.lua (the server throughput section's script and request mix: ` +
      `keys from 10,000, lastSync = the newest cursor the wrk thread was answered), ${SYNC_ROUNDS} interleaved ${SYNC_S} s /sync runs per store (median shown; Redis ${all(R.sync)}, embedded ${all(E.sync)} req/s) ` +
      `after a ${SYNC_WARMUP_S} s warm-up each, then one ${SET_S} s /set run each; one mfe-cache-server (release) per store: --store redis://127.0.0.1:PORT (redis-server ` +
      `--appendonly yes --appendfsync always, --save '': every write fsynced by Redis before it answers) vs --data in a temp dir on ${fsOf(tmpdir())} (redb, group commit with fsync); ` +
      `requests per CPU-second on /sync: Redis ${perCpu(R.sync)} (mfe-cache-server + redis-server; redis-server's share ${fmt((100 * sum(R.sync, (r) => r.redisCpu)) / sum(R.sync, (r) => r.cpu), 0)} %), embedded ${perCpu(E.sync)}; ` +
      `wrk's own CPU: Redis runs ${fmt(sum(R.sync, (r) => r.wrkCpu), 1)} s, embedded runs ${fmt(sum(E.sync, (r) => r.wrkCpu), 1)} s; ` +
      `${cpus().length} CPU cores shared by wrk, the server, redis-server and node (load average ${fmt(startLoad)} → ${fmt(loadavg()[0])})`,
  );
  for (const [name, xs] of Object.entries(results)) {
    for (const r of [...xs.sync, ...xs.set]) if (r.firstBad) report.note(`sync throughput ${name}: first non-2xx answer: ${r.firstBad.slice(0, 300)}`);
  }
  const problems = logs.flatMap((l) => l.problems);
  if (problems.length) report.note(`sync throughput: ${problems.length} WARN/ERROR lines in the servers' logs, first: ${problems[0].slice(0, 300)}`);
}

// ---- 3. push to tabs ---------------------------------------------------------------------------------

const TABS = 3;
const PUSH_WRITES = 50;
const PUSH_WARM = 5;
const IDLE_MS = 5000;

// Open-loop schedule: a write every 200–300 ms (random), so writes fall at every phase of a
// 1 s polling interval; the pushed ones arrive long before the next write.
const gap = () => 200 + Math.random() * 100;

async function pushRound(browser, front, backend, counter, { realtime, syncInterval }, tag) {
  const context = await browser.newContext();
  try {
    const tabs = [];
    for (let t = 0; t < TABS; t++) tabs.push(await openTab(context, front.url + PAGE, { allowConsoleErrors: true }));
    for (const page of tabs) {
      await page.evaluate(
        ([realtime, syncInterval]) => {
          window.push = { arrivals: {}, errors: [] };
          window.c = new pkg.BackendSyncedCacheService({ prefix: 'push_', backendUrl: '/api/cache', realtime, syncInterval });
          c.on('change', (key) => {
            if (push.arrivals[key] === undefined) push.arrivals[key] = performance.timeOrigin + performance.now();
          });
          c.on('error', (e) => push.errors.push(`${e.type}: ${e.message}`));
        },
        [realtime, syncInterval],
      );
    }
    // The leader has synced once and (realtime 'auto') holds the stream.
    const t0 = performance.now();
    let leader = null;
    while (!leader) {
      for (const page of tabs) {
        const s = await page.evaluate(() => c.syncStatus);
        if (s.leader && s.lastSyncedAt !== null && (realtime === 'off' || s.realtime === 'open')) leader = page;
      }
      if (performance.now() - t0 > 15000) throw new Error(`push to tabs (${realtime}): no tab ${realtime === 'off' ? 'synced as leader' : "reported realtime 'open'"} within 15 s`);
      if (!leader) await sleep(50);
    }
    const readyMs = performance.now() - t0;
    const statuses = await Promise.all(tabs.map((p) => p.evaluate(() => c.syncStatus.realtime)));

    // Clock check: node and the page read the same wall clock (performance.timeOrigin + now).
    const before = wall();
    const pageWall = await tabs[0].evaluate(() => performance.timeOrigin + performance.now());
    const after = wall();
    const clock = { offset: pageWall - (before + after) / 2, bound: (after - before) / 2 };

    const sentAt = {};
    const send = async (key, i) => {
      sentAt[key] = wall();
      await post(backend.origin, '/api/cache/set', { key, value: { i, name: `user-${i}`, roles: ['reader', 'editor'] }, ttl: 3600, timestamp: Date.now(), node: 'bench-device-2' });
    };
    const requests0 = counter.count;
    const keys = [];
    for (let i = 0; i < PUSH_WARM + PUSH_WRITES; i++) {
      const key = `${tag}:${i}`;
      if (i >= PUSH_WARM) keys.push(key);
      const next = performance.now() + gap();
      await send(key, i);
      await sleep(Math.max(0, next - performance.now()));
    }
    const last = `${tag}:${PUSH_WARM + PUSH_WRITES - 1}`;
    const t1 = performance.now();
    for (const page of tabs) {
      await page.waitForFunction((k) => push.arrivals[k] !== undefined, last, { polling: 20, timeout: Math.max(100, 5000 - (performance.now() - t1)) }).catch(() => {});
    }
    const requestsDuring = counter.count - requests0;
    const arrivals = await Promise.all(tabs.map((p) => p.evaluate(() => push.arrivals)));
    const samples = [];
    const perWrite = [];
    let missing = 0;
    for (const key of keys) {
      let slowest = -Infinity;
      for (const a of arrivals) {
        if (a[key] === undefined) {
          missing++;
          continue;
        }
        samples.push(a[key] - sentAt[key]);
        slowest = Math.max(slowest, a[key] - sentAt[key]);
      }
      if (Number.isFinite(slowest)) perWrite.push(slowest);
    }

    // Idle: every request the 3 tabs make to /api/cache/* in IDLE_MS (the open stream, begun
    // before, is not counted; its heartbeats are not requests).
    await sleep(500);
    const idle0 = counter.count;
    const idlePaths0 = { ...counter.paths };
    await sleep(IDLE_MS);
    const idle = counter.count - idle0;
    const idlePaths = Object.entries(counter.paths)
      .map(([p, n]) => [p, n - (idlePaths0[p] ?? 0)])
      .filter(([, n]) => n > 0)
      .map(([p, n]) => `${p.replace('/api/cache', '')}×${n}`)
      .join(', ');
    const errors = (await Promise.all(tabs.map((p) => p.evaluate(() => push.errors)))).flat();
    const problems = tabs.flatMap((p) => p.problems ?? []);
    return { samples, perWrite, missing, readyMs, statuses, clock, requestsDuring, idle, idlePaths, errors, problems };
  } finally {
    await context.close();
  }
}

export async function benchPushToTabs(browser, report) {
  buildReleaseServer();
  const run = randomBytes(4).toString('hex');
  const backend = await startCacheServer();
  // The page's origin: the repository's static files, and /api/cache/* proxied to the backend;
  // every proxied request is counted here (the long-lived stream once, when it opens).
  const counter = { count: 0, paths: {} };
  const front = await startServer({
    api: async (req, res, path) => {
      if (!path.startsWith('/api/cache/')) return false;
      counter.count++;
      counter.paths[path] = (counter.paths[path] ?? 0) + 1;
      return proxy(req, res, backend.origin);
    },
  });
  let push;
  let poll;
  try {
    push = await pushRound(browser, front, backend, counter, { realtime: 'auto', syncInterval: 30000 }, `push${run}`);
    poll = await pushRound(browser, front, backend, counter, { realtime: 'off', syncInterval: 1000 }, `poll${run}`);
  } finally {
    await front.close();
    await backend.stop();
  }
  const p99 = percentile(push.samples, 99);
  const lat = (r) => `${fmt(percentile(r.samples, 50), 1)} / ${fmt(percentile(r.samples, 99), 1)} ms`;
  report.row(
    `push to ${TABS} tabs: server write → tab has it, p50 / p99 (ms, ${PUSH_WRITES} writes × ${TABS} tabs)`,
    `realtime 'auto' (stream open): ${lat(push)}`,
    `realtime 'off', polling every 1 s: ${lat(poll)}`,
    `p50 ${fmt(percentile(push.samples, 50) / percentile(poll.samples, 50), 3)}×, p99 ${fmt(p99 / percentile(poll.samples, 99), 3)}× (${int(percentile(poll.samples, 50) / percentile(push.samples, 50))}× sooner)`,
    '≤ 100 ms p99',
    p99 <= 100 && push.missing === 0 ? 'yes' : push.missing ? `NO (${push.missing} missing)` : 'NO',
  );
  report.row(
    `push to ${TABS} tabs: /api/cache/* requests in ${IDLE_MS / 1000} s idle`,
    `${push.idle} requests${push.idlePaths ? ` (${push.idlePaths})` : ''}`,
    `polling every 1 s: ${poll.idle} requests${poll.idlePaths ? ` (${poll.idlePaths})` : ''}`,
    'n/a',
    '0 polling requests',
    push.idle === 0 ? 'yes' : 'NO',
  );
  const slowest = (r) => `p50 ${fmt(percentile(r.perWrite, 50), 1)} / p99 ${fmt(percentile(r.perWrite, 99), 1)} / max ${fmt(max(r.perWrite), 1)} ms`;
  report.note(
    `push to tabs: one browser context (one device), ${TABS} tabs of ${PAGE} on one origin (the harness's static server, /api/cache/* proxied to mfe-cache-server release on its embedded store), ` +
      `each with new BackendSyncedCacheService({ backendUrl: '/api/cache', prefix: 'push_', realtime, syncInterval }) and c.on('change') stamping performance.timeOrigin + now() on first arrival; ` +
      `a fresh context per mode; measured once the leader had synced (push: its stream open after ${fmt(push.readyMs, 0)} ms, tabs' realtime states ${push.statuses.join('/')}; polling: ${poll.statuses.join('/')}); ` +
      `${PUSH_WARM} warm-up writes discarded, then ${PUSH_WRITES} POST /api/cache/set from node straight to the backend (as another device), one every 200–300 ms (random, open loop), unique keys; ` +
      `latency = tab's arrival stamp − node's send stamp (node's performance.timeOrigin + now(), same machine and wall clock; page − node offset measured ${fmt(push.clock.offset, 2)} ms ± ${fmt(push.clock.bound, 2)})`,
  );
  report.note(
    `push to tabs: per write, the slowest of the ${TABS} tabs: push ${slowest(push)}, polling ${slowest(poll)}; missing arrivals (5 s after the last write): push ${push.missing}, polling ${poll.missing}; ` +
      `requests through the proxy while the ${PUSH_WARM + PUSH_WRITES} writes were arriving: push ${push.requestsDuring}, polling ${poll.requestsDuring}; ` +
      `idle window: ${IDLE_MS / 1000} s starting 0.5 s after the last write was seen, counted at the page origin's proxy (the stream opened earlier is not a new request)`,
  );
  const errors = [...push.errors, ...poll.errors];
  if (errors.length) report.note(`push to tabs: cache 'error' events: ${[...new Set(errors)].slice(0, 5).join(' | ')} (${errors.length} in all)`);
  const problems = [...push.problems, ...poll.problems];
  if (problems.length) report.note(`push to tabs: page problems: ${[...new Set(problems)].slice(0, 5).join(' | ')}`);
}
