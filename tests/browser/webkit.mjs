// WebKit (Safari's engine): WebKitGTK's MiniBrowser driven by Debian's webkit2gtk-driver
// (WebKitWebDriver, classic WebDriver over HTTP on loopback), behind the part of playwright-core's
// API the browser tests use, so that the same tests run in WebKit (`BROWSER=webkit`, under
// xvfb-run). A context is a WebDriver session (a browser of its own, with its own storage) and a
// page one of its windows; WebDriver drives one window at a time, so each session runs its
// commands one after the other. Classic WebDriver has no init scripts and no console events:
// init scripts run right after each load, before the test's next command, and the page's errors
// (console.error, uncaught errors and rejections) are collected in the page and handed to the
// page's listeners after each command.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';

const MINIBROWSER = process.env.MINIBROWSER ?? '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

// Installed in every page after each load: collects what Playwright would report as console
// errors and page errors.
const COLLECT = `if (!window.__problems) {
  window.__problems = [];
  const error = console.error.bind(console);
  console.error = (...args) => { window.__problems.push(['console', args.map(String).join(' ')]); error(...args); };
  addEventListener('error', (e) => window.__problems.push(['pageerror', String(e.message)]));
  addEventListener('unhandledrejection', (e) => window.__problems.push(['pageerror', String(e.reason && e.reason.message || e.reason)]));
}`;

// Runs a test's function (its source) with its argument, and answers with a copy of its result
// (plain data, as Playwright gives back) and the problems collected since the last command.
const RUN = `const [source, arg, isScript, done] = arguments;
const copy = (v) => Array.isArray(v) ? v.map(copy) : v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x)])) : v === undefined ? null : v;
const drain = () => (window.__problems || []).splice(0);
Promise.resolve().then(() => (isScript ? (0, eval)(source) : (0, eval)('(\\n' + source + '\\n)')(arg))).then(
  (r) => done({ ok: copy(r), problems: drain() }),
  (e) => done({ error: String((e && e.message) || e), problems: drain() }),
);`;

/** One WebDriver session: its commands in order, one at a time. */
class Session {
  constructor(base, id) {
    this.base = base;
    this.id = id;
    this.queue = Promise.resolve();
    this.current = null;
    /** The windows in use, and those kept blank for the next page. */
    this.open = new Set();
    this.spare = [];
  }

  async raw(method, path, body) {
    const r = await fetch(`${this.base}/session/${this.id}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
    const json = await r.json();
    if (json.value?.error) throw new Error(`${json.value.error}: ${json.value.message}`);
    return json.value;
  }

  /** Runs `f` once the commands before it are done. */
  next(f) {
    const run = this.queue.then(f);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Runs `f` on window `handle` once the commands before it are done. */
  on(handle, f) {
    return this.next(async () => {
      if (this.current !== handle) {
        await this.raw('POST', '/window', { handle });
        this.current = handle;
      }
      return f();
    });
  }
}

function pageOf(session, handle, initScripts) {
  const listeners = { console: [], pageerror: [] };
  const report = (problems) => {
    for (const [kind, text] of problems ?? []) {
      if (kind === 'console') listeners.console.forEach((f) => f({ type: () => 'error', text: () => text }));
      else listeners.pageerror.forEach((f) => f(new Error(text)));
    }
  };
  const afterLoad = async () => {
    await session.raw('POST', '/execute/sync', { script: COLLECT, args: [] });
    for (const s of initScripts) {
      const script = typeof s.fn === 'function' ? `(\n${s.fn}\n)(arguments[0])` : String(s.fn.content ?? s.fn);
      await session.raw('POST', '/execute/sync', { script, args: [s.arg ?? null] });
    }
  };
  const evaluate = (fn, arg) =>
    session.on(handle, async () => {
      const out = await session.raw('POST', '/execute/async', { script: RUN, args: [String(fn), arg ?? null, typeof fn !== 'function'] });
      report(out.problems);
      if ('error' in out) throw new Error(`page.evaluate: ${out.error}`);
      return out.ok;
    });
  const page = {
    on(event, f) {
      listeners[event]?.push(f);
      return page;
    },
    goto: (url) =>
      session.on(handle, async () => {
        await session.raw('POST', '/url', { url });
        await afterLoad();
      }),
    reload: () =>
      session.on(handle, async () => {
        await session.raw('POST', '/refresh', {});
        await afterLoad();
      }),
    evaluate,
    async addInitScript(fn, arg) {
      initScripts.push({ fn, arg });
    },
    async waitForFunction(fn, arg, { timeout = 30_000, polling = 100 } = {}) {
      const until = Date.now() + timeout;
      for (;;) {
        const value = await evaluate(fn, arg);
        if (value) return { jsonValue: async () => value };
        if (Date.now() > until) throw new Error(`waitForFunction: ${timeout} ms exceeded`);
        await new Promise((r) => setTimeout(r, typeof polling === 'number' ? Math.max(polling, 10) : 16));
      }
    },
    // Closing a session's last window would end the session: that one is blanked and kept for
    // the context's next page instead.
    close: () =>
      session.on(handle, async () => {
        session.open.delete(handle);
        if (session.open.size > 0) {
          await session.raw('DELETE', '/window');
          session.current = null;
        } else {
          await session.raw('POST', '/url', { url: 'about:blank' });
          session.spare.push(handle);
        }
      }),
  };
  session.open.add(handle);
  return page;
}

/** A WebKitWebDriver on a free loopback port, once it answers. */
async function startDriver() {
  const port = await freePort();
  const process_ = spawn('WebKitWebDriver', [`--port=${port}`, '--host=127.0.0.1'], { stdio: 'ignore' });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      await fetch(`${base}/status`);
      return { base, kill: () => process_.kill() };
    } catch (e) {
      if (i > 100) throw new Error(`WebKitWebDriver did not start: ${e.message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * A playwright-like browser over WebKitWebDriver. A driver holds one session at a time, so each
 * context (a device: a browser with its own storage) gets a driver of its own.
 */
export async function launchWebKit() {
  const contexts = new Set();
  return {
    async close() {
      await Promise.all([...contexts].map((c) => c.close()));
    },
    async newContext() {
      const driver = await startDriver();
      const r = await fetch(`${driver.base}/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ capabilities: { alwaysMatch: { 'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] } } } }),
      });
      const created = (await r.json()).value;
      if (!created.sessionId) {
        driver.kill();
        throw new Error(`no WebKit session: ${JSON.stringify(created)}`);
      }
      const session = new Session(driver.base, created.sessionId);
      await session.raw('POST', '/timeouts', { script: 300_000, pageLoad: 60_000 });
      const initScripts = [];
      session.current = await session.raw('GET', '/window');
      session.spare.push(session.current);
      const context = {
        async newPage() {
          const handle = session.spare.pop() ?? (await session.next(() => session.raw('POST', '/window/new', { type: 'tab' }))).handle;
          return pageOf(session, handle, initScripts);
        },
        async addInitScript(fn, arg) {
          initScripts.push({ fn, arg });
        },
        async close() {
          if (!contexts.delete(context)) return;
          await session.queue;
          await session.raw('DELETE', '').catch(() => {});
          driver.kill();
        },
      };
      contexts.add(context);
      return context;
    },
  };
}
