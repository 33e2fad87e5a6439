// Shared test harness: a static server for the repository (pkg/ and test pages) and headless
// Debian Chromium driven by playwright-core. Loopback only.
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.css': 'text/css',
};

// `/pkg-copy/…` serves pkg/ again under another URL: the browser loads it as a separate module
// graph with its own wasm instance, like a second MFE that bundled its own copy of the package.
const ALIASES = [['/pkg-copy/', '/pkg/']];

/**
 * Serves the repository over loopback. `api(req, res, path)` may handle a request first (a test
 * backend on the same origin) by returning true.
 */
export async function startServer({ api, port = 0 } = {}) {
  const server = createServer(async (req, res) => {
    let path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (api && (await api(req, res, path))) return;
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    for (const [from, to] of ALIASES) if (path.startsWith(from)) path = to + path.slice(from.length);
    if (path === '/' || path.endsWith('/')) path += 'index.html';
    const file = normalize(join(ROOT, path));
    if (!file.startsWith(ROOT)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const bound = server.address().port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    // Closes at once, dropping open (e.g. hanging) connections, as a crashed server would.
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

/**
 * Serves the files of one built app directory over loopback (no store in the browser's cache, so
 * every load is cold); `cors` adds `Access-Control-Allow-Origin: *`, as a remote's server must
 * for module scripts loaded from another origin.
 */
export async function serveDirectory(dir, { cors = false } = {}) {
  const server = createServer(async (req, res) => {
    const headers = cors ? { 'access-control-allow-origin': '*' } : {};
    let path = normalize(join(dir, decodeURIComponent(new URL(req.url, 'http://x').pathname)));
    if (path.endsWith('/')) path = join(path, 'index.html');
    if (req.url === '/favicon.ico') return res.writeHead(204, headers).end();
    if (!path.startsWith(dir) || !existsSync(path) || !statSync(path).isFile()) return res.writeHead(404, headers).end();
    res.writeHead(200, { ...headers, 'content-type': TYPES[extname(path)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(await readFile(path));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

const run = promisify(execFile);

/** Runs `file` with `args` in `cwd`; a failure carries the command's output. */
export async function sh(file, args, cwd, timeout) {
  try {
    return await run(file, args, { cwd, timeout, maxBuffer: 16 << 20, env: { ...process.env, NO_COLOR: '1' } });
  } catch (e) {
    throw new Error(`${file} ${args.join(' ')} (in ${relative(ROOT, cwd) || '.'}) failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** `npm ci` in `dir` when its node_modules is absent or older than its package-lock.json. */
export async function ensureInstalled(dir) {
  const lock = join(dir, 'package-lock.json');
  const installed = join(dir, 'node_modules', '.package-lock.json');
  if (existsSync(installed) && statSync(installed).mtimeMs >= statSync(lock).mtimeMs) return false;
  await sh('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], dir, 300_000);
  return true;
}

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The engine the tests run in: `BROWSER=firefox` or `BROWSER=webkit`, else Chromium. */
export const ENGINE = ['firefox', 'webkit'].includes(process.env.BROWSER) ? process.env.BROWSER : 'chromium';

export async function launch() {
  if (ENGINE === 'firefox') return (await import('./firefox.mjs')).launchFirefox();
  if (ENGINE === 'webkit') return (await import('./webkit.mjs')).launchWebKit();
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

/** Opens `path` in a new tab of `context`, failing the test on page errors and console errors. */
export async function openTab(context, url, { allowConsoleErrors = false, before } = {}) {
  const page = await context.newPage();
  if (before) await before(page);
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !allowConsoleErrors) problems.push(`console.error: ${m.text()}`);
  });
  page.problems = problems;
  await page.goto(url);
  await page.waitForFunction(() => window.__ready === true || window.__failed, null, { timeout: 15000 });
  const failed = await page.evaluate(() => window.__failed ?? null);
  if (failed) throw new Error(`page failed to start: ${failed}`);
  return page;
}

/**
 * Run in a page (`page.evaluate(fillStorage)`): fills what is left of the origin's localStorage
 * quota with someone else's data (`junk_N` keys); returns how many keys it wrote.
 */
export function fillStorage() {
  let filled = 0;
  for (let size = 1 << 20; size >= 1024; ) {
    try {
      localStorage.setItem('junk_' + filled++, 'j'.repeat(size));
    } catch {
      size >>= 1;
    }
  }
  return filled;
}

/** Waits until `fn(arg)` evaluated in `page` is truthy, returning its value. */
export async function until(page, fn, arg, timeout = 5000) {
  const handle = await page.waitForFunction(fn, arg, { timeout, polling: 10 });
  return handle.jsonValue();
}

/** A browser, a server and a fresh context per test, torn down after. */
export function suite(t) {
  const state = {};
  t.before(async () => {
    state.server = await startServer();
    state.browser = await launch();
  });
  t.after(async () => {
    await state.browser?.close();
    await state.server?.close();
  });
  state.page = (query = '') => `${state.server.url}/tests/browser/page.html${query}`;
  state.context = () => state.browser.newContext();
  return state;
}
