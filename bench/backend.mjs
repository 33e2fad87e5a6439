// The backend parts of `node bench/run.mjs` (the wire protocol):
//   - offline flush: a browser page writes 10,000 times over 1,000 keys while offline, comes back
//     online, and we count the requests it makes and time until its outbox is drained, against
//     mfe-cache-server behind the front server (as tests/browser/sync.test.mjs sets it up);
//     baseline: the naive client path, one awaited POST /api/cache/set per write;
//   - overload: /sync polls under wrk while thousands of idle keep-alive connections are held,
//     against the same polls with none held; then with more idle connections than
//     --max-connections, where new requests must get a 503 at once instead of hanging;
//   - server throughput: wrk at 64 connections against mfe-cache-server (release build, its
//     default embedded store in a temp dir) and a minimal Express server of the seed protocol
//     (bench/express-seed.mjs), /sync and /set, side by side; and /sync at 32 connections with
//     answers of a few changes (wrk/cache.lua's light mode), beside the large answers of the
//     64-connection /sync row.
// Each section adds rows to run.mjs's table through `report.row(...)` and notes through
// `report.note(...)`. Loopback only.
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, openTab, startServer } from '../tests/browser/harness.mjs';
import { proxy } from '../tests/servers/proxy.mjs';
import { fmt, int, median, sleep, spread } from './stats.mjs';

export const SERVER_BIN = join(ROOT, 'target/release/mfe-cache-server');
const PAGE = '/bench/bench.html';

// ---- servers ----------------------------------------------------------------------------------

/**
 * `cargo build --release -p mfe-cache-server`, or of its `example` (a no-op when up to date);
 * output to stderr. Returns the seconds it took.
 */
export function buildReleaseServer(example) {
  const t0 = performance.now();
  const args = ['build', '--release', '-p', 'mfe-cache-server', ...(example ? ['--example', example] : [])];
  const out = spawnSync('cargo', args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (out.status !== 0) throw new Error(`cargo ${args.join(' ')} failed (${out.status ?? out.signal})`);
  const bin = example ? join(ROOT, 'target/release/examples', example) : SERVER_BIN;
  if (!existsSync(bin)) throw new Error(`${bin} missing after the build`);
  return (performance.now() - t0) / 1000;
}

/** Runs a command; its trimmed stdout, or an error with the end of its stderr. */
export function run(cmd, args, options = {}) {
  const out = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', ...options });
  if (out.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${out.status ?? out.signal}): ${String(out.stderr ?? '').slice(-1500)}`);
  return String(out.stdout ?? '').trim();
}

/** The commit before the event streams were rebuilt (40b4d15: shared reads; 18ffc1a: outside hyper). */
export const BASELINE_REF = 'd8fd77c';
export const BASELINE_DIR = join(ROOT, 'target/bench-baseline');
export const BASELINE_BIN = join(BASELINE_DIR, 'target/release/mfe-cache-server');

/**
 * The baseline server, built from BASELINE_REF into target/bench-baseline/ unless the stamp there
 * names that commit and the binary exists. The sources are extracted with fresh mtimes (tar -m),
 * so cargo rebuilds the workspace's own crates whatever was there before; dependencies are reused.
 */
export function ensureBaseline() {
  const commit = run('git', ['rev-parse', '--verify', `${BASELINE_REF}^{commit}`]);
  const stamp = join(BASELINE_DIR, 'stamp');
  const stamped = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
  if (stamped === commit && existsSync(BASELINE_BIN)) return { commit, built: null };
  const t0 = performance.now();
  const src = join(BASELINE_DIR, 'src');
  rmSync(stamp, { force: true });
  rmSync(src, { recursive: true, force: true });
  mkdirSync(src, { recursive: true });
  process.stderr.write(`[bench] building the baseline server from ${BASELINE_REF} (${commit.slice(0, 12)}) into ${BASELINE_DIR}; log in build.log\n`);
  run('bash', ['-o', 'pipefail', '-c', 'git archive --format=tar "$1" | tar -x -m -C "$2"', 'bash', commit, src]);
  const logFile = join(BASELINE_DIR, 'build.log');
  const log = openSync(logFile, 'w');
  const out = spawnSync('cargo', ['build', '--release', '-p', 'mfe-cache-server'], {
    cwd: src,
    env: { ...process.env, CARGO_TARGET_DIR: join(BASELINE_DIR, 'target') },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  if (out.status !== 0 || !existsSync(BASELINE_BIN)) throw new Error(`building the baseline (${BASELINE_REF}) failed (${out.status ?? out.signal})${tail(logFile)}`);
  writeFileSync(stamp, `${commit}\n`);
  return { commit, built: (performance.now() - t0) / 1000 };
}

// Child processes of the bench that are still running: killed if node exits without stopping
// them (a crash between a start and the `finally` that stops it).
const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Kills `child` when node exits, unless it has exited by then. */
export function killOnExit(child) {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

// Spawns a server that prints `listening on http://…` on stdout; stderr goes to `logFile`.
export async function spawnListening(cmd, args, { env, logFile, what }) {
  const log = openSync(logFile, 'w');
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', log] });
  closeSync(log);
  const origin = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 15 s: ${out}${tail(logFile)}`)), 15000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code ?? signal}) before listening: ${out}${tail(logFile)}`));
    });
  });
  child.stdout.resume();
  let exited = null;
  child.once('exit', (code, signal) => (exited = { code, signal }));
  return {
    origin,
    pid: child.pid,
    exited: () => exited,
    /** CPU seconds (user + system) the process has used so far (Linux /proc). */
    cpuSeconds: () => {
      try {
        const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
        const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
        return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
      } catch {
        return NaN;
      }
    },
    stop: async () => {
      if (exited) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(t);
    },
  };
}

export function tail(file) {
  try {
    const text = readFileSync(file, 'utf8');
    return text ? `\n--- log tail ---\n${text.slice(-1500)}` : '';
  } catch {
    return '';
  }
}

/**
 * mfe-cache-server (release) on its default embedded store in a fresh temp dir, or with `args`
 * instead of `--data DIR` (e.g. `--store redis://…`); the temp dir then holds only its log.
 */
export async function startCacheServer({ env = {}, args = null, bin = SERVER_BIN } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mfe-cache-bench-'));
  const logFile = join(dir, 'server.log');
  const proc = await spawnListening(bin, ['--listen', '127.0.0.1:0', ...(args ?? ['--data', join(dir, 'data')])], { env, logFile, what: 'mfe-cache-server' });
  return {
    ...proc,
    dir,
    logFile,
    stop: async () => {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** bench/express-seed.mjs in its own node process. */
export async function startExpressSeed() {
  const dir = mkdtempSync(join(tmpdir(), 'mfe-express-bench-'));
  const logFile = join(dir, 'express.log');
  const proc = await spawnListening(process.execPath, [join(ROOT, 'bench/express-seed.mjs'), '--listen', '127.0.0.1:0'], { logFile, what: 'express-seed' });
  return {
    ...proc,
    logFile,
    stop: async () => {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function post(origin, path, body) {
  const res = await fetch(origin + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path} answered HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
  return res.json();
}

// ---- 1. offline flush -----------------------------------------------------------------------

// Counts every request the page makes to the API: path, number of changes in the body, start and
// end (page clock), status or error. Also stamps the page's `online` event.
function instrumentPage() {
  window.apiCalls = [];
  window.onlineAt = null;
  addEventListener('online', () => (window.onlineAt = performance.now()));
  const realFetch = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const url = String(input?.url ?? input);
    if (!url.includes('/api/cache/')) return realFetch(input, init);
    const call = { path: new URL(url, location.href).pathname, start: performance.now(), end: null, status: null, error: null, changes: null, bytes: 0 };
    if (typeof init?.body === 'string') {
      call.bytes = init.body.length;
      try {
        const body = JSON.parse(init.body);
        call.changes = Array.isArray(body?.changes) ? body.changes.length : 1;
      } catch {
        // not JSON: leave changes unknown
      }
    }
    window.apiCalls.push(call);
    try {
      const res = await realFetch(input, init);
      call.status = res.status;
      call.end = performance.now();
      return res;
    } catch (e) {
      call.end = performance.now();
      call.error = String(e?.message ?? e);
      throw e;
    }
  };
}

const KEYS = 1000;
const PER_KEY = 10;
const WRITES = KEYS * PER_KEY;
const NAIVE_SEQ = 1000;

async function offlineRound(browser, frontUrl, backend, gen, { naive: withNaive }) {
  const context = await browser.newContext();
  try {
    await context.addInitScript(instrumentPage);
    const page = await openTab(context, frontUrl + PAGE, { allowConsoleErrors: true });
    // The synced cache, and its first sync (it downloads what earlier rounds left on the backend).
    await page.evaluate(() => {
      window.c = new pkg.BackendSyncedCacheService({ prefix: 'offline_', backendUrl: '/api/cache', syncInterval: 60000 });
      window.cacheErrors = [];
      window.drainedAt = null;
      c.on('error', (e) => cacheErrors.push(`${e.type}: ${e.message}`));
      c.on('sync', (s) => {
        if (window.onlineAt !== null && window.drainedAt === null && s.pending === 0) window.drainedAt = performance.now();
      });
    });
    await page.waitForFunction(() => apiCalls.length > 0 && apiCalls.every((x) => x.end !== null) && c.syncStatus.pending === 0 && !c.syncStatus.syncing, null, { polling: 10, timeout: 15000 });

    await context.setOffline(true);
    await page.waitForFunction(() => c.syncStatus.online === false, null, { polling: 5, timeout: 5000 });
    const offline = await page.evaluate(
      async ([keys, perKey, gen]) => {
        const before = apiCalls.length;
        const t0 = performance.now();
        const writes = [];
        for (let r = 0; r < perKey; r++) for (let i = 0; i < keys; i++) writes.push(c.set(`off${i}`, { i, r, gen, name: `user-${i}`, roles: ['reader', 'editor'] }));
        await Promise.all(writes);
        const ms = performance.now() - t0;
        return { before, ms, pending: c.syncStatus.pending, callsWhileWriting: apiCalls.length - before };
      },
      [KEYS, PER_KEY, gen],
    );
    await sleep(200); // nothing should go out while offline
    const pendingOffline = await page.evaluate(() => c.syncStatus.pending);

    // Back online: time until the outbox is empty (every change acknowledged by the server,
    // which acknowledges only what it has committed), then check the backend holds every value.
    const t0 = performance.now();
    await context.setOffline(false);
    await page.waitForFunction(() => window.drainedAt !== null && c.syncStatus.pending === 0 && apiCalls.every((x) => x.end !== null), null, { polling: 5, timeout: 30000 });
    const wallMs = performance.now() - t0;
    const updates = (await post(backend.origin, '/api/cache/sync', { lastSync: 0, changes: [] })).updates;
    const onServer = new Map(updates.filter((u) => !u.deleted).map((u) => [u.key, u.value]));
    let wrong = 0;
    for (let i = 0; i < KEYS; i++) {
      const v = onServer.get(`off${i}`);
      if (v?.i !== i || v?.r !== PER_KEY - 1 || v?.gen !== gen) wrong++;
    }
    const flush = await page.evaluate((before) => {
      const calls = apiCalls.slice(before);
      return {
        drainMs: window.drainedAt - window.onlineAt,
        calls: calls.map(({ path, changes, bytes, status, error, start, end }) => ({ path, changes, bytes, status, error, start: start - window.onlineAt, end: end - window.onlineAt })),
        errors: cacheErrors.slice(),
      };
    }, offline.before);

    // The naive client path on the same page, backend and proxy: one awaited POST /set per write.
    const naive = !withNaive ? null : await page.evaluate(
      async ([n, gen]) => {
        const t0 = performance.now();
        let bad = 0;
        for (let i = 0; i < n; i++) {
          const body = JSON.stringify({ key: `naive${i}`, value: { i, r: 0, gen, name: `user-${i}`, roles: ['reader', 'editor'] }, ttl: 3600, timestamp: Date.now() });
          const res = await fetch('/api/cache/set', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
          await res.text();
          if (!res.ok) bad++;
        }
        return { ms: performance.now() - t0, bad };
      },
      [NAIVE_SEQ, gen],
    );
    return { offline, pendingOffline, wallMs, wrong, ...flush, naive, problems: page.problems };
  } finally {
    await context.close();
  }
}

export async function benchOfflineFlush(browser, report) {
  buildReleaseServer();
  const backend = await startCacheServer();
  const front = await startServer({ api: async (req, res, path) => (path.startsWith('/api/cache/') ? proxy(req, res, backend.origin) : false) });
  const ROUNDS = 3;
  const rounds = [];
  try {
    // The naive baseline (~10 s) runs in the last round only.
    for (let gen = 1; gen <= ROUNDS; gen++) rounds.push(await offlineRound(browser, front.url, backend, gen, { naive: gen === ROUNDS }));
  } finally {
    await front.close();
    await backend.stop();
  }
  const reqs = rounds.map((r) => r.calls.length);
  const drain = rounds.map((r) => r.drainMs);
  const last = rounds[rounds.length - 1];
  const naivePerWrite = last.naive.ms / NAIVE_SEQ;
  const naive10k = naivePerWrite * WRITES;
  const maxReqs = Math.max(...reqs);
  const wireChanges = last.calls.reduce((n, c) => n + (c.changes ?? 0), 0);
  const failed = rounds.map((r) => r.calls.filter((c) => c.error !== null || !(c.status >= 200 && c.status < 300)).length);
  const wrong = rounds.reduce((n, r) => n + r.wrong, 0);
  const perReq = WRITES / maxReqs;

  report.row(
    `offline flush: requests for ${int(WRITES)} writes / ${int(KEYS)} keys`,
    `${reqs.join(', ')} requests = ${int(perReq)} writes/request`,
    `naive: ${int(WRITES)} POST /set = 1 write/request`,
    `${fmt(maxReqs / WRITES, 4)}× (${int(WRITES / maxReqs)}× fewer)`,
    '≤ 1 request / 500 writes (≤ 20)',
    maxReqs <= WRITES / 500 ? 'yes' : 'NO',
  );
  report.row(
    `offline flush: drain time after going online (ms)`,
    `${fmt(median(drain), 1)} ms ${spread(drain, 0)}`,
    `naive, 1 awaited POST /set per write: ${int(naive10k)} ms per 10k writes (EXTRAPOLATED: ${int(last.naive.ms)} ms for ${int(NAIVE_SEQ)} ×${WRITES / NAIVE_SEQ})`,
    `${fmt(median(drain) / naive10k, 4)}× (${int(naive10k / median(drain))}× faster)`,
    '—',
    wrong ? `${wrong} keys WRONG on the backend` : '',
  );
  const lastCalls = last.calls.map((c) => `${c.path.replace('/api/cache', '')} with ${c.changes ?? '?'} changes (${int(c.bytes)} B) +${fmt(c.start, 0)}→+${fmt(c.end, 0)} ms`).join(', ');
  report.note(
    `offline flush: ${ROUNDS} rounds, each a fresh browser context whose cache (syncInterval 60 s) first syncs, then goes offline (context.setOffline) and writes ` +
      `${int(WRITES)} times (${PER_KEY} rounds over ${int(KEYS)} keys, un-awaited; took median ${fmt(median(rounds.map((r) => r.offline.ms)), 0)} ms; ` +
      `outbox after the writes: ${rounds.map((r) => r.offline.pending).join(', ')} pending (${rounds.map((r) => r.pendingOffline).join(', ')} still after 200 ms more offline), ` +
      `requests while writing offline: ${rounds.map((r) => r.offline.callsWhileWriting).join(', ')}); ` +
      `drain = page's 'online' event → first 'sync' event with pending 0 (node-side, setOffline(false) → observed: median ${fmt(median(rounds.map((r) => r.wallMs)), 0)} ms); ` +
      `then the backend was read back: ${wrong === 0 ? `all ${int(KEYS)} keys held their final value in every round` : `${wrong} key-rounds held a WRONG value`}; ` +
      `failed requests: ${failed.join(', ')}; changes on the wire in the last round: ${int(wireChanges)} (the outbox keeps the latest write per key); ` +
      `last round's requests, page clock from the 'online' event to the answer's headers: ${lastCalls}, drained at +${fmt(last.drainMs, 0)} ms`,
  );
  report.note(
    `offline flush: backend = mfe-cache-server (release, --data in a temp dir) behind the front server's proxy (node http), same origin as the page; ` +
      `baseline (last round only) = ${NAIVE_SEQ} sequential awaited fetch POST /api/cache/set from the same page through the same proxy to the same server ` +
      `(${fmt(naivePerWrite, 2)} ms/write, each one a durable commit on the server), ×${WRITES / NAIVE_SEQ} for 10k writes` +
      (last.naive.bad ? `; naive non-2xx answers: ${last.naive.bad}` : ''),
  );
  const errors = rounds.flatMap((r) => r.errors);
  if (errors.length) report.note(`offline flush: cache 'error' events: ${[...new Set(errors)].slice(0, 5).join(' | ')} (${errors.length} in all)`);
  const problems = rounds.flatMap((r) => r.problems ?? []);
  if (problems.length) report.note(`offline flush: page problems: ${[...new Set(problems)].slice(0, 5).join(' | ')}`);
}

// ---- 2. server throughput -------------------------------------------------------------------

const WRK_SCRIPT = join(ROOT, 'bench/wrk/cache.lua');
const CONNECTIONS = 64;
// /sync with answers of ≤ 10 changes (bench/wrk/cache.lua's light mode) is measured at this many.
const LIGHT_CONNECTIONS = 32;
const DURATION_S = 8;
const WARMUP_S = 2;
const DIAG_S = 4;
const KEYSPACE = 10000;

export function ensureWrk() {
  if (spawnSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' }).status === 0) return;
  const out = spawnSync(join(ROOT, 'scripts/ensure-tools.sh'), ['wrk'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (out.status !== 0) throw new Error('scripts/ensure-tools.sh wrk failed');
}

/** A fresh cursor of `origin`'s default namespace (a full read, page by page). */
export async function latestCursor(origin) {
  let answer = await post(origin, '/api/cache/sync', { lastSync: 0, changes: [] });
  while (answer.more) answer = await post(origin, '/api/cache/sync', { lastSync: answer.cursor, changes: [] });
  return answer.cursor ?? answer.timestamp;
}

/**
 * One wrk run of bench/wrk/cache.lua (`mode`: sync, set or poll) against `server.origin`, from
 * `cursor` (default: a fresh one, so that no request starts from lastSync 0, a full dump).
 */
export async function runWrk(server, mode, seconds, { connections = CONNECTIONS, cursor = null } = {}) {
  cursor ??= await latestCursor(server.origin);
  return new Promise((resolve, reject) => {
    const path = mode === 'set' ? 'set' : 'sync';
    const args = ['-t2', `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '--latency', '-s', WRK_SCRIPT, `${server.origin}/api/cache/${path}`, '--', mode, String(KEYSPACE), String(cursor)];
    const cpu0 = server.cpuSeconds();
    // Through sh, which prints wrk's CPU time (its children's utime + stime) after it exits.
    const wrapper = 'wrk "$@"; s=$?; echo "WRKCPU $(cut -d" " -f16,17 /proc/$$/stat)"; exit $s';
    const child = spawn('sh', ['-c', wrapper, 'sh', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const m = out.match(/^WRKJSON (.*)$/m);
      if (code !== 0 || !m) {
        reject(new Error(`wrk ${args.join(' ')} exited ${code}: ${out.slice(-1500)} ${err.slice(-500)}`));
        return;
      }
      const r = JSON.parse(m[1]);
      r.rps = r.requests / (r.duration_us / 1e6);
      r.cpu = server.cpuSeconds() - cpu0;
      const w = out.match(/^WRKCPU (\d+) (\d+)/m);
      r.wrkCpu = w ? (Number(w[1]) + Number(w[2])) / 100 : NaN;
      r.firstBad = out.match(/^WRKBAD (.*)$/m)?.[1] ?? null;
      r.socketErrors = r.connect + r.read + r.write + r.timeout;
      r.stderr = err.trim();
      resolve(r);
    });
  });
}

// Status codes and warnings/errors in mfe-cache-server's log (one `done status=…` line per request).
export function scanServerLog(file) {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { statuses: {}, problems: [], bytes: 0 };
  }
  const statuses = {};
  text = text.replace(/\x1b\[[0-9;]*m/g, ''); // tracing colours its output even into a file
  for (const m of text.matchAll(/status=(\d{3})/g)) statuses[m[1]] = (statuses[m[1]] ?? 0) + 1;
  const problems = text.split('\n').filter((l) => /\b(WARN|ERROR)\b|panick/.test(l));
  return { statuses, problems, bytes: statSync(file).size };
}

export async function benchServerThroughput(report) {
  ensureWrk();
  buildReleaseServer();
  ensureBaseline();
  const startLoad = loadavg()[0];
  const results = {};
  const logs = {};
  const ours = await startCacheServer();
  let express;
  let before;
  let memory;
  try {
    express = await startExpressSeed();
    // "Today's design" for the latency rows: the server as it was before the streams were
    // rebuilt, on its own embedded store too.
    before = await startCacheServer({ bin: BASELINE_BIN });
    const servers = [
      ['ours', ours, 'mfe-cache-server'],
      ['before', before, `mfe-cache-server ${BASELINE_REF}`],
      ['express', express, 'express-seed'],
    ];
    const died = (name, s, mode) => s.exited() && new Error(`${name} died during the ${mode} run: ${JSON.stringify(s.exited())}${tail(s.logFile)}`);
    // Warm-up (discarded): V8's JIT for Express, redb's file and tokio's threads for ours.
    for (const [, s] of servers) await runWrk(s, 'sync', WARMUP_S);
    // Measured: interleaved, so a change in the machine's load hits all alike. `poll` last: it
    // reads what the write runs left (10,000 keys) and all answer empty deltas.
    for (const [mode, seconds, connections] of [
      ['sync', DURATION_S, CONNECTIONS],
      ['set', DURATION_S, CONNECTIONS],
      ['light', DURATION_S, LIGHT_CONNECTIONS],
      ['poll', DIAG_S, CONNECTIONS],
    ]) {
      for (const [name, s, what] of servers) {
        const r = await runWrk(s, mode, seconds, { connections });
        const dead = died(what, s, mode);
        if (dead) throw dead;
        results[`${name}:${mode}`] = r;
      }
    }
    await express.stop();
    express = null;
    await before.stop();
    before = null;
    logs.ours = { ...scanServerLog(ours.logFile), exited: ours.exited() };
    await ours.stop();
    // Diagnostic: the same server on its in-memory store (no fsync), as the Express baseline is.
    memory = await startCacheServer({ env: { MFE_CACHE_MEMORY: 'true' } });
    await runWrk(memory, 'sync', WARMUP_S);
    for (const mode of ['sync', 'set']) {
      results[`memory:${mode}`] = await runWrk(memory, mode, DIAG_S);
      const dead = died('mfe-cache-server --memory', memory, mode);
      if (dead) throw dead;
    }
    logs.memory = { ...scanServerLog(memory.logFile), exited: memory.exited() };
  } finally {
    await express?.stop();
    await before?.stop();
    logs.ours ??= { ...scanServerLog(ours.logFile), exited: ours.exited() };
    await ours.stop();
    await memory?.stop();
  }

  const ms = (us) => fmt(us / 1000, 2);
  const errs = (r) => (r.bad || r.socketErrors ? ` (${r.bad} non-2xx, ${r.socketErrors} socket errors)` : '');
  const rps = (r) => `${int(r.rps)} req/s${errs(r)}`;
  for (const [mode, what] of [
    ['sync', '/sync, 1–5 changes, lastSync = latest cursor'],
    ['set', '/set'],
  ]) {
    const a = results[`ours:${mode}`];
    const b = results[`express:${mode}`];
    const q = a.rps / b.rps;
    report.row(`server ${what} (req/s, ${CONNECTIONS} conns)`, rps(a), `Express seed ${rps(b)}`, `${fmt(q)}×`, '≥ 5× Express', q >= 5 ? 'yes' : `NO (${fmt(q)}×)`);
    // The /sync row's answers are large (every change the other connections made meanwhile):
    // the light row below is the one with small answers.
    const big = mode === 'sync' && a.sampled ? `, ${fmt(a.sampled_updates / a.sampled, 0)} updates/answer` : '';
    const d = results[`before:${mode}`];
    report.row(
      `server /${mode} latency p50 / p99 (ms)${big}`,
      `${ms(a.p50_us)} / ${ms(a.p99_us)} ms, ${rps(a)}`,
      `${BASELINE_REF} ${ms(d.p50_us)} / ${ms(d.p99_us)} ms, ${rps(d)}; Express seed ${ms(b.p50_us)} / ${ms(b.p99_us)} ms`,
      `${fmt(a.p99_us / d.p99_us)}× (p99 vs ${BASELINE_REF})`,
      'p99 ≤ 5 ms',
      a.p99_us <= 5000 ? 'yes' : `NO (${fmt(a.p99_us / 5000, 1)}× over)`,
    );
  }
  // Small answers: what a client that syncs often sees; the rows above carry ~180 updates per answer.
  const perAnswer = (r) => (r.counted ? r.counted_updates / r.counted : NaN);
  const light = [results['ours:light'], results['before:light'], results['express:light']];
  report.row(
    `server /sync latency p50 / p99, ${LIGHT_CONNECTIONS} conns, ≤ 10 changes per answer (1 change in 1 of 8 requests; mean ${fmt(perAnswer(light[0]), 1)} updates/answer)`,
    `${ms(light[0].p50_us)} / ${ms(light[0].p99_us)} ms, ${rps(light[0])}`,
    `${BASELINE_REF} ${ms(light[1].p50_us)} / ${ms(light[1].p99_us)} ms, ${rps(light[1])}; Express seed ${ms(light[2].p50_us)} / ${ms(light[2].p99_us)} ms, ${rps(light[2])}`,
    `${fmt(light[0].p99_us / light[1].p99_us)}× (p99 vs ${BASELINE_REF})`,
    'p99 ≤ 5 ms',
    light[0].p99_us <= 5000 ? 'yes' : `NO (${fmt(light[0].p99_us / 5000, 1)}× over)`,
  );
  const poll = [results['ours:poll'], results['express:poll']];
  report.row(
    `server /sync poll: no changes, lastSync = latest cursor [diagnostic]`,
    `${rps(poll[0])}, p50/p99 ${ms(poll[0].p50_us)}/${ms(poll[0].p99_us)} ms`,
    `Express seed ${rps(poll[1])}, p50/p99 ${ms(poll[1].p50_us)}/${ms(poll[1].p99_us)} ms`,
    `${fmt(poll[0].rps / poll[1].rps)}×`,
    '—',
  );
  for (const mode of ['sync', 'set']) {
    const m = results[`memory:${mode}`];
    const b = results[`express:${mode}`];
    report.row(
      `server /${mode}, in-memory store (--memory) [diagnostic]`,
      `${rps(m)}, p50/p99 ${ms(m.p50_us)}/${ms(m.p99_us)} ms`,
      `Express seed ${rps(b)} (run above)`,
      `${fmt(m.rps / b.rps)}×`,
      '—',
    );
  }

  const per = (r) =>
    `${int(r.requests)} req in ${fmt(r.duration_us / 1e6, 1)} s, ${int(r.bytes / r.requests)} B/answer` +
    (r.sampled ? `, ${fmt(r.sampled_updates / r.sampled, 1)} updates/answer (sampled)` : '') +
    `, p90 ${ms(r.p90_us)} p99.9 ${ms(r.p999_us)} max ${ms(r.max_us)} ms; CPU: server ${fmt(r.cpu, 1)} s (${int(r.requests / r.cpu)} req per CPU-s), wrk ${fmt(r.wrkCpu, 1)} s` +
    (r.unparsed ? `; ${r.unparsed} answers without a cursor` : '');
  for (const mode of ['sync', 'set', 'light', 'poll']) report.note(`server ${mode}: mfe-cache-server ${per(results[`ours:${mode}`])} | Express ${per(results[`express:${mode}`])}`);
  const counts = (r) => `mean ${fmt(perAnswer(r), 1)}, max ${int(r.max_updates)}, ${int(r.over10)} of ${int(r.counted)} answers over 10`;
  report.note(`server light (/sync at ${LIGHT_CONNECTIONS} conns, every answer counted): updates per answer: mfe-cache-server ${counts(light[0])} | Express ${counts(light[1])}`);
  for (const mode of ['sync', 'set']) report.note(`server ${mode}, mfe-cache-server --memory: ${per(results[`memory:${mode}`])}`);
  for (const [k, r] of Object.entries(results)) {
    if (r.firstBad) report.note(`server ${k}: first non-2xx answer: ${r.firstBad.slice(0, 300)}`);
    if (r.socketErrors) report.note(`server ${k}: wrk socket errors: connect ${r.connect}, read ${r.read}, write ${r.write}, timeout ${r.timeout}`);
  }
  for (const [name, log] of Object.entries(logs)) {
    const statusText = Object.entries(log.statuses).map(([st, n]) => `${st}×${int(n)}`).join(', ');
    report.note(
      `server: mfe-cache-server${name === 'memory' ? ' --memory' : ''} log (default RUST_LOG=info: one line per request, written to a file): statuses ${statusText || 'none logged'}; ` +
        `${log.problems.length ? `${log.problems.length} WARN/ERROR lines, first: ${log.problems[0].slice(0, 300)}` : 'no WARN/ERROR lines'}; ` +
        `${log.exited ? `the server had EXITED (${JSON.stringify(log.exited)})` : 'it was still running at the end'}`,
    );
  }
  report.note(
    `server: wrk -t2 -c${CONNECTIONS} --latency --timeout 5s, ${DURATION_S} s per measured run, ${DIAG_S} s per diagnostic run, after a ${WARMUP_S} s /sync warm-up per server process; ` +
      `bench/wrk/cache.lua: keys drawn from ${int(KEYSPACE)}, ~90-byte JSON values, wall-clock ms timestamps; /sync sends lastSync = the newest cursor (else timestamp) its wrk thread was answered (at first, one the runner fetched just before the run), ` +
      `so a correct server answers every change the other ~${CONNECTIONS - 1} in-flight requests made meanwhile, while the seed's delta-by-timestamp misses changes stamped before ` +
      `the cursor but accepted after it (compare updates/answer above: the Express figure is small because it drops those updates, not because it is efficient); runs interleaved per endpoint`,
  );
  report.note(
    `server: latency under wrk is closed-loop: ${CONNECTIONS} connections each waiting for its answer, so mean latency = ${CONNECTIONS} / throughput ` +
      `(Little's law) and p99 ≤ 5 ms needs well over ${int(CONNECTIONS / 0.005)} req/s at this concurrency`,
  );
  const bin = statSync(SERVER_BIN);
  report.note(
    `server: ${SERVER_BIN.slice(ROOT.length)} (${int(bin.size)} B, built ${bin.mtime.toISOString()}) = release build (the workspace's native release profile, opt-level 3), redb store in a temp dir on ${fsOf(tmpdir())}: every write is committed with fsync ` +
      `before its answer (group commit); Express 5 seed (bench/express-seed.mjs) = one node process, in-memory Map, no durability, every /sync scans every entry`,
  );
  report.note(
    `server: THIS MACHINE HAS ${cpus().length} CPU CORES shared by wrk (2 threads), the server under test and this node process, plus anything else running ` +
      `(load average ${fmt(startLoad)} at the start of this part, ${fmt(loadavg()[0])} at its end); absolute req/s and tail latencies are bounded by that, ` +
      `and the multi-threaded server competes with wrk for the same cores (see the CPU figures); loopback only (127.0.0.1)`,
  );
}

export function fsOf(dir) {
  const out = spawnSync('df', ['-T', dir], { encoding: 'utf8' });
  const type = out.stdout?.split('\n')[1]?.split(/\s+/)[1];
  return type ? `${type} (${dir})` : dir;
}

// ---- 3. overload ------------------------------------------------------------------------------

const IDLE = 3000;
const OVER_LIMIT = 1000;
const OVERLOAD_S = 3;
const OVERLOAD_ROUNDS = 2;
const OVERLOAD_CONNECTIONS = 16;

/**
 * Opens `n` keep-alive connections to `origin`, each answered one `GET /healthz` and then left
 * idle (a few hundred at a time, so the listener's backlog never overflows). Resolves to the
 * held sockets, how many were answered 200 and how many answers were something else.
 */
async function holdIdle(origin, n) {
  const { hostname, port } = new URL(origin);
  const held = [];
  let ok = 0;
  let other = 0;
  let closedByServer = 0;
  const one = () =>
    new Promise((resolve) => {
      const socket = connect({ host: hostname, port: Number(port) });
      let text = '';
      const timer = setTimeout(() => done('no answer within 10 s'), 10000);
      function done(outcome) {
        clearTimeout(timer);
        socket.removeAllListeners('data');
        if (outcome === 200) ok++;
        else other++;
        resolve();
      }
      socket.setNoDelay(true);
      socket.on('error', () => {});
      socket.once('close', () => {
        closedByServer++;
        done('closed');
      });
      socket.on('connect', () => socket.write(`GET /healthz HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`));
      socket.on('data', (chunk) => {
        text += chunk;
        // /healthz answers a small JSON object with a Content-Length: complete once it closes.
        if (text.includes('\r\n\r\n') && text.trimEnd().endsWith('}')) done(text.startsWith('HTTP/1.1 200') ? 200 : 'other');
      });
      held.push(socket);
    });
  const BATCH = 250;
  for (let i = 0; i < n; i += BATCH) await Promise.all(Array.from({ length: Math.min(BATCH, n - i) }, one));
  closedByServer = 0; // from here on, a close is the server dropping an idle connection
  return {
    held,
    ok,
    other,
    closedSince: () => closedByServer,
    release: () => held.forEach((s) => s.destroy()),
  };
}

/** Resident memory of a process in MiB (Linux /proc). */
function rssMiB(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export async function benchOverload(report) {
  ensureWrk();
  buildReleaseServer();
  // A fresh store's deltas are empty from 0, so no cursor is fetched first (fetch's pooled
  // keep-alive connection would be one more connection held).
  const run = (server) => runWrk(server, 'poll', OVERLOAD_S, { connections: OVERLOAD_CONNECTIONS, cursor: 0 });
  const ms = (us) => fmt(us / 1000, 2);
  const errors = (r) => r.socketErrors;
  const p99s = (runs) => runs.map((x) => x.p99_us / 1000);
  const figures = (runs) =>
    `${int(median(runs.map((x) => x.rps)))} req/s, p50 ${fmt(median(runs.map((x) => x.p50_us / 1000)), 2)} / p99 ${fmt(median(p99s(runs)), 2)} ms ${spread(p99s(runs), 1)}`;

  // 1. Idle keep-alive connections within --max-connections: are requests still served as fast?
  // Interleaved: none held, held, none held, held, none held.
  const server = await startCacheServer();
  let idle;
  const none = [];
  const held = [];
  const opened = [];
  const mem = {};
  let idleClosed = 0;
  let heldOk = 0;
  let log;
  try {
    await runWrk(server, 'poll', 1, { connections: OVERLOAD_CONNECTIONS, cursor: 0 }); // warm-up, discarded
    none.push(await run(server));
    for (let round = 0; round < OVERLOAD_ROUNDS; round++) {
      mem.before ??= rssMiB(server.pid);
      const t0 = performance.now();
      idle = await holdIdle(server.origin, IDLE);
      opened.push(performance.now() - t0);
      heldOk += idle.ok;
      mem.held ??= rssMiB(server.pid);
      held.push(await run(server));
      idleClosed += idle.closedSince();
      idle.release();
      idle = null;
      none.push(await run(server));
    }
    log = scanServerLog(server.logFile);
  } finally {
    idle?.release();
    await server.stop();
  }
  const bad = held.reduce((n, x) => n + x.bad + errors(x), 0);
  report.row(
    `server under ${int(IDLE)} idle keep-alive connections: /sync poll (${OVERLOAD_CONNECTIONS} conns)`,
    figures(held) + (bad ? ` (${bad} non-2xx or socket errors)` : ''),
    `no idle connections: ${figures(none)}`,
    `${fmt(median(p99s(held)) / median(p99s(none)))}× (p99)`,
    'every request answered, idle held',
    idleClosed === 0 && bad === 0 ? 'yes' : `NO (${idleClosed} idle closed, ${bad} failed)`,
  );

  // 2. More idle connections than --max-connections: new requests get a 503 at once.
  const limited = await startCacheServer({ args: ['--memory', '--max-connections', String(OVER_LIMIT)] });
  const o = {};
  try {
    await runWrk(limited, 'poll', 1, { connections: OVERLOAD_CONNECTIONS, cursor: 0 });
    o.before = await run(limited);
    idle = await holdIdle(limited.origin, OVER_LIMIT);
    o.heldOk = idle.ok;
    o.over = await run(limited);
    o.idleClosed = idle.closedSince();
    idle.release();
    idle = null;
    o.log = scanServerLog(limited.logFile);
  } finally {
    idle?.release();
    await limited.stop();
  }
  const over = o.over;
  const refused = over.firstBad?.startsWith('503') ? over.bad : 0;
  report.row(
    `server past --max-connections (${int(OVER_LIMIT)} idle held): new requests [diagnostic]`,
    `${figures([over])}: ${int(refused)} × 503 overloaded, ${int(over.ok)} × 200, ${errors(over)} socket errors`,
    `none held: ${figures([o.before])}, all 200`,
    `${fmt(over.p99_us / o.before.p99_us)}× (p99)`,
    'answered at once (503), none hang',
    over.requests > 0 && over.timeout === 0 && refused + over.ok === over.requests ? 'yes' : 'NO',
  );

  report.note(
    `overload: mfe-cache-server (release, redb in a temp dir, default limits: --max-connections from its open-file limit); ${OVERLOAD_ROUNDS} rounds, each opening ` +
      `${int(IDLE)} connections that get one GET /healthz answered and are then left open (${int(heldOk)} of ${int(IDLE * OVERLOAD_ROUNDS)} answered 200; ` +
      `${opened.map((t) => fmt(t / 1000, 1)).join(' / ')} s to open them), then released; wrk -t2 -c${OVERLOAD_CONNECTIONS} --timeout 5s, ${OVERLOAD_S} s of /sync polls (empty deltas) per run, ` +
      `interleaved: none held, held, none held, held, none held (median of the runs, [p99 min…max]; requests per run: none held ${none.map((x) => int(x.requests)).join(', ')}, held ${held.map((x) => int(x.requests)).join(', ')}); ` +
      `idle connections the server closed while held: ${idleClosed}; server memory (VmRSS) ${fmt(mem.before, 1)} MiB → ${fmt(mem.held, 1)} MiB with them held ` +
      `(${fmt(((mem.held - mem.before) * 1024) / IDLE, 1)} KiB per idle connection); log statuses ${Object.entries(log.statuses).map(([st, n]) => `${st}×${int(n)}`).join(', ')}` +
      (log.problems.length ? `; first WARN/ERROR: ${log.problems[0].slice(0, 200)}` : ''),
  );
  const warnings = o.log.problems.filter((l) => !/memory store/.test(l));
  report.note(
    `overload past the limit: mfe-cache-server --memory --max-connections ${OVER_LIMIT}, ${int(o.heldOk)} of ${int(OVER_LIMIT)} idle keep-alive connections served and held ` +
      `(closed by the server meanwhile: ${o.idleClosed}); then every wrk connection is refused once it has sent its request: 503 JSON with Connection: close, and wrk reconnects ` +
      `for the next one (a connect per request, where the baseline reuses 16 keep-alive connections); first non-2xx: ${(over.firstBad ?? 'none').slice(0, 160)}; ` +
      `wrk socket errors: connect ${over.connect}, read ${over.read}, write ${over.write}, timeout ${over.timeout}` +
      (warnings.length ? `; server log: ${warnings[0].slice(0, 200)}` : '') +
      '; loopback only',
  );
}
