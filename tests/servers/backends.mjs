// The backends browser tests run against: a seed-only backend (in this process) and the
// reference server (mfe-cache-server, spawned on a loopback port). Both expose the same small
// interface to tests: handle (for the front server's api hook), values, put, stop.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSeedBackend } from './seed-backend.mjs';
import { proxy } from './proxy.mjs';

export const SERVER_BIN = join(new URL('../..', import.meta.url).pathname, 'target/debug/mfe-cache-server');

export async function seedBackend() {
  const seed = createSeedBackend();
  return {
    name: 'seed-only backend',
    handle: (req, res, path) => seed.handle(req, res, path),
    values: async () => seed.values(),
    put: async (change) => seed.put(change),
    stop: async () => {},
  };
}

// Starts mfe-cache-server on `dir`; resolves to the child and the origin it listens on.
function spawnServer(dir, args) {
  const child = spawn(SERVER_BIN, ['--listen', '127.0.0.1:0', '--data', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk) => {
      out += chunk;
      const m = out.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) resolve({ child, origin: m[1] });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`mfe-cache-server exited (${code}): ${out}`)));
    setTimeout(() => reject(new Error(`mfe-cache-server did not start: ${out}`)), 15000);
  });
}

/**
 * mfe-cache-server on a fresh data directory; `args` are extra flags. `kill()` crashes it
 * (SIGKILL) and `restart()` starts it again on the same data (on another port: `origin` follows).
 */
export async function referenceServer(args = ['--max-updates', '40']) {
  const dir = mkdtempSync(join(tmpdir(), 'mfe-cache-test-'));
  let { child, origin } = await spawnServer(dir, args);
  const call = async (path, body) => {
    const res = await fetch(origin + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return res.json();
  };
  return {
    name: 'mfe-cache-server',
    get origin() {
      return origin;
    },
    /** Crashes the server: what it acknowledged must already be on disk. */
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
    /** Starts it again on its data. */
    restart: async () => {
      ({ child, origin } = await spawnServer(dir, args));
    },
    invalidate: (patterns) => call('/api/cache/invalidate', { patterns }),
    handle: (req, res, path) => (path.startsWith('/api/cache/') ? proxy(req, res, origin) : false),
    values: async () => {
      const values = {};
      for (let lastSync = 0, more = true; more; ) {
        const answer = await call('/api/cache/sync', { lastSync, changes: [] });
        for (const u of answer.updates) {
          if (u.deleted) delete values[u.key];
          else values[u.key] = u.value;
        }
        lastSync = answer.timestamp;
        more = answer.more === true;
      }
      return values;
    },
    put: async (change) => call('/api/cache/set', change),
    stop: async () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
