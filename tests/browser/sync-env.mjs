// The sync tests' environment: a front server that serves the test pages and the API on one
// origin (answering it with a backend from ../servers/backends.mjs, or misbehaving on request),
// a browser, and tabs with a synced cache whose API calls are counted.
import { launch, openTab, startServer } from './harness.mjs';

// Misbehaviours the front server can put in front of either backend.
export function misbehave(mode, req, res) {
  switch (mode) {
    case '500':
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"internal"}');
      return true;
    case 'html':
      res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body><h1>502 Bad Gateway</h1></body></html>');
      return true;
    case 'html-200':
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>maintenance</body></html>');
      return true;
    case 'truncated':
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"updates":[{"key":"x","val');
      return true;
    case 'wrong-types':
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"updates":"nope","timestamp":"yesterday"}');
      return true;
    case 'reset':
      req.socket.destroy();
      return true;
    case 'hang':
      return true;
    case 'hostile-updates': {
      // Well-shaped, but with updates no cache may take; one good update among them.
      const now = Date.now();
      const updates = [
        { key: 'hostile-good', value: 'ok', ttl: 0, timestamp: now, deleted: false },
        // Days ahead is no reason to refuse: a device whose clock is that fast must still sync.
        { key: 'days-ahead', value: 'ok', ttl: 0, timestamp: now + 3 * 24 * 3600 * 1000, deleted: false },
        { key: '', value: 1, ttl: 0, timestamp: now, deleted: false },
        { key: 'a\u0000b', value: 1, ttl: 0, timestamp: now, deleted: false },
        { key: 'beyond-2^53', value: 1, ttl: 0, timestamp: 2 ** 53 + 2, deleted: false },
        { key: 'x\ud800', value: 1, ttl: 0, timestamp: now, deleted: false },
        { key: 'neg-ttl', value: 1, ttl: -5, timestamp: now, deleted: false },
        { key: 'float-ts', value: 1, ttl: 0, timestamp: 1.5, deleted: false },
        { key: 'no-value', ttl: 0, timestamp: now, deleted: false },
        { key: 'bad-node', value: 1, ttl: 0, timestamp: now, deleted: false, node: 'has space' },
        { key: 7, value: 1, ttl: 0, timestamp: now, deleted: false },
      ];
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ updates, timestamp: now }));
      return true;
    }
    default:
      return false;
  }
}

// ---- the front server and pages ------------------------------------------------------------------
export async function environment(makeBackend) {
  const backend = await makeBackend();
  // urls: every API request with its query; streams: the event streams open now; eventsMode: a
  // misbehaviour for /events only; intercept(req, res, path): a test's own answer to a request,
  // returning true when it answered.
  const state = { mode: 'ok', eventsMode: 'ok', requests: [], urls: [], streams: new Set(), intercept: null };
  const front = await startServer({
    api: async (req, res, path) => {
      if (!path.startsWith('/api/cache/')) return false;
      state.requests.push(path);
      state.urls.push(req.url);
      if (path === '/api/cache/events') {
        state.streams.add(res);
        res.on('close', () => state.streams.delete(res));
      }
      if (state.intercept && (await state.intercept(req, res, path))) return true;
      if (misbehave(state.mode, req, res)) return true;
      if (path === '/api/cache/events' && misbehave(state.eventsMode, req, res)) return true;
      return backend.handle(req, res, path);
    },
  });
  const browser = await launch();
  return {
    backend,
    state,
    browser,
    page: `${front.url}/tests/browser/page.html`,
    /** Cuts every open event stream, as a network change or a proxy restart would. */
    dropStreams() {
      for (const res of state.streams) res.socket?.destroy();
    },
    async close() {
      await browser.close();
      await front.close();
      await backend.stop();
    },
  };
}

// Opens a tab with a synced cache; every fetch the page makes to the API is counted.
// `tabOptions.query` is added to the page's URL (`?copies=2` loads a second copy of the package);
// `tabOptions.react` opens the React test page (React and `pkgReact` too).
export async function syncedTab(env, ctx, options = {}, tabOptions = {}) {
  const url = tabOptions.react ? env.page.replace('page.html', 'react.html') : env.page;
  const page = await openTab(ctx, url + (tabOptions.query ?? ''), {
    allowConsoleErrors: true,
    ...tabOptions,
    before: async (p) => {
      await p.addInitScript(() => {
        window.apiCalls = [];
        const realFetch = window.fetch.bind(window);
        window.fetch = (input, init) => {
          const url = String(input?.url ?? input);
          if (url.includes('/api/cache/')) window.apiCalls.push(new URL(url, location.href).pathname);
          return realFetch(input, init);
        };
      });
      await tabOptions.before?.(p);
    },
  });
  await startCache(page, options);
  return page;
}

// Creates the tab's synced cache as `window.c`; its error types go to `errors`, whole errors to
// `errorLog` (`{ type, key, message }`), statuses to `statuses`. Also after a reload.
export async function startCache(page, options = {}) {
  await page.evaluate((options) => {
    window.c = new pkg.BackendSyncedCacheService({ prefix: 'sync_', backendUrl: '/api/cache', syncInterval: 60000, retryDelay: 100, requestTimeout: 1000, ...options });
    window.errors = [];
    window.errorLog = [];
    window.statuses = [];
    c.on('error', (e) => {
      errors.push(e.type);
      errorLog.push({ type: e.type, key: e.key ?? null, message: e.message });
    });
    c.on('sync', (s) => statuses.push(s));
  }, options);
}

export const eventually = async (f, what, timeout = 8000) => {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

