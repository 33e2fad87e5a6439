// End to end through the www-demo, as a team would show it: the shell MFE and the product MFE (two
// bundles, each with its own copy of the package) on mfe-cache-server's embedded store, in headless
// Chromium. Screenshots go to tests/artifacts/. Needs target/demo-site (scripts/test.sh builds it).
import test, { describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, launch } from './harness.mjs';

const SERVER_BIN = join(ROOT, 'target/debug/mfe-cache-server');
const SITE = join(ROOT, 'target/demo-site');
const ARTIFACTS = join(ROOT, 'tests/artifacts');

async function freePort() {
  const probe = createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address();
  await new Promise((r) => probe.close(r));
  return port;
}

/** mfe-cache-server on its embedded store, serving the demo; restartable on the same port and data. */
async function demoServer() {
  const data = mkdtempSync(join(tmpdir(), 'mfe-demo-test-'));
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  let child = null;
  const start = async () => {
    child = spawn(SERVER_BIN, ['--listen', `127.0.0.1:${port}`, '--data', data, '--static', SITE], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise((resolve, reject) => {
      let out = '';
      const onData = (chunk) => {
        out += chunk;
        if (out.includes('listening on')) resolve();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => reject(new Error(`mfe-cache-server exited (${code}): ${out}`)));
      setTimeout(() => reject(new Error(`mfe-cache-server did not start: ${out}`)), 15000);
    });
  };
  const kill = async () => {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL'); // a crash, not a shutdown: what was acknowledged must already be on disk
    await exited;
  };
  await start();
  return {
    origin,
    start,
    kill,
    /** What the server holds, read through the protocol as a fresh client would. */
    values: async () => {
      const values = {};
      for (let lastSync = 0, more = true; more; ) {
        const res = await fetch(`${origin}/api/cache/sync`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ lastSync, changes: [] }) });
        const answer = await res.json();
        for (const u of answer.updates) {
          if (u.deleted) delete values[u.key];
          else values[u.key] = u.value;
        }
        lastSync = answer.cursor ?? answer.timestamp;
        more = answer.more === true;
      }
      return values;
    },
  };
}

/** Opens the demo, fails the test on page errors and console errors, waits for both MFEs. */
async function openDemo(ctx, server, { hash = '', allowConsole = () => false } = {}) {
  const page = await ctx.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !allowConsole(m.text())) page.problems.push(`console.error: ${m.text()}`);
  });
  await page.goto(`${server.origin}/${hash}`);
  await ready(page);
  return page;
}

async function ready(page) {
  await page.getByTestId('dev-panel').waitFor();
  if (!(await page.url()).includes('#/cart')) await page.getByTestId('add-espresso-beans').waitFor();
  await page.getByTestId('instance-product').waitFor();
}

const cartCount = (page) => page.getByTestId('cart-count').textContent();

async function eventually(fn, what, timeout = 10000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function shot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `demo-${name}.png`), fullPage: true });
}

const skip = !existsSync(SERVER_BIN) || !existsSync(join(SITE, 'shell/shell.js')) ? 'the server or the demo site is not built (run make test)' : false;

describe('www-demo end to end', { skip }, () => {
  let browser;
  let server;
  test.before(async () => {
    browser = await launch();
  });
  test.after(async () => {
    await browser?.close();
  });
  test.beforeEach(async () => {
    server = await demoServer();
  });
  test.afterEach(async () => {
    await server?.kill().catch(() => {});
  });

  test('two MFEs, two copies of the package: add to cart in the product MFE updates the shell and a second tab', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const a = await openDemo(ctx, server);
    const b = await openDemo(ctx, server);

    // Each MFE is its own bundle, carrying its own wasm (nothing fetched for it), with its own
    // wasm instance and writer id.
    const scripts = await a.evaluate(() => performance.getEntriesByType('resource').map((r) => new URL(r.name).pathname).filter((p) => /\.(js|wasm)$/.test(p)).sort());
    assert.deepEqual(scripts, ['/product/remoteEntry.js', '/shell/shell.js']);
    const ids = await a.locator('[data-testid^=instance-] code').allTextContents();
    assert.equal(new Set(ids).size, 2);

    assert.equal(await cartCount(a), '0');
    await a.getByTestId('add-espresso-beans').click();
    await a.getByTestId('add-kettle').click();
    await a.getByTestId('add-espresso-beans').click();
    // The shell (another React root, another copy of the package) and the other tab follow.
    await eventually(async () => (await cartCount(a)) === '3', 'the shell badge');
    await eventually(async () => (await cartCount(b)) === '3', 'the second tab');
    assert.match(await b.getByTestId('last-added').textContent(), /Espresso beans/);
    assert.match(await b.getByTestId('product-espresso-beans').textContent(), /2 in cart/);

    // The inspector: who wrote what, TTLs counting down, and the server acknowledging.
    assert.match(await a.getByTestId('entry-cart').textContent(), /product MFE, this tab/);
    assert.match(await b.getByTestId('entry-cart').textContent(), /product MFE, another tab/);
    // The product MFE loads its catalogue through getOrFetch: the second tab found it in the cache.
    const catalogueFetches = (p) => p.evaluate(() => performance.getEntriesByType('resource').filter((r) => r.name.endsWith('/product/catalogue.json')).length);
    assert.deepEqual([await catalogueFetches(a), await catalogueFetches(b)], [1, 0]);
    assert.match(await b.getByTestId('entry-product:catalogue').textContent(), /Espresso beans.*product MFE/);
    await eventually(async () => (await a.getByTestId('sync-cart').textContent()) === 'synced', 'the cart to reach the server');
    const ttl = async () => Number((await a.getByTestId('ttl-lastAdded').textContent()).replace(' s', ''));
    const first = await ttl();
    assert.ok(first > 0 && first <= 20, `lastAdded lives 20 s, shows ${first}`);
    await eventually(async () => (await ttl()) < first, 'the TTL countdown to move');
    assert.ok((await a.getByTestId('leader-shell').textContent()).length > 0);
    const leaders = await Promise.all([a, b].flatMap((p) => ['shell', 'product'].map((n) => p.getByTestId(`leader-${n}`).textContent())));
    assert.equal(leaders.filter((l) => l.startsWith('leader')).length, 1, `one instance leads for the origin: ${leaders}`);
    await eventually(async () => {
      const all = await Promise.all([a, b].flatMap((p) => ['shell', 'product'].map((n) => p.getByTestId(`leader-${n}`).textContent())));
      return all.includes('leader: pushed by the server');
    }, 'the leader to hold the server\'s event stream');

    // Signing in in the shell of tab B gives member prices in the product MFE of tab A.
    await b.getByTestId('sign-in').click();
    await eventually(async () => /Signed in as Ada Lovelace/.test(await a.getByTestId('member-note').textContent()), 'member prices');
    await shot(a, 'products');

    await a.getByRole('link', { name: /Cart/ }).click();
    await a.getByTestId('cart-lines').waitFor();
    assert.equal(await a.getByTestId('cart-total').textContent(), '$97.00');
    await shot(a, 'cart');
    await a.getByTestId('place-order').click();
    await eventually(async () => (await cartCount(b)) === '0', 'the emptied cart in the other tab');
    // The other tab hears of it over BroadcastChannel, which may beat the request to the server.
    await eventually(async () => JSON.stringify((await server.values()).cart) === '{"items":[]}', 'the emptied cart on the server');

    assert.deepEqual(a.problems, []);
    assert.deepEqual(b.problems, []);
    await ctx.close();
  });

  test('offline: add, reload, back online: the server and another device get it', async () => {
    const laptop = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const phone = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const a = await openDemo(laptop, server);
    const other = await openDemo(phone, server);

    await a.getByTestId('offline-toggle').check();
    await eventually(async () => /offline/.test(await a.getByTestId('instance-shell').textContent()), 'the offline state');
    await a.getByTestId('add-grinder').click();
    await a.getByTestId('add-grinder').click();
    await eventually(async () => (await a.getByTestId('sync-cart').textContent()) === 'pending', 'a pending cart');
    assert.equal((await server.values()).cart, undefined, 'nothing reached the server while offline');

    // The outbox is durable: a reload while offline keeps the write and its pending mark.
    await a.reload();
    await ready(a);
    assert.equal(await cartCount(a), '2');
    assert.equal(await a.getByTestId('sync-cart').textContent(), 'pending');
    assert.ok(await a.getByTestId('offline-toggle').isChecked());
    await shot(a, 'offline-pending');

    await a.getByTestId('offline-toggle').uncheck();
    await eventually(async () => (await a.getByTestId('sync-cart').textContent()) === 'synced', 'the outbox to drain');
    const cart = (await server.values()).cart;
    assert.deepEqual(cart.items.map((i) => [i.id, i.qty]), [['grinder', 2]]);
    // The other device polls (every 2 s in the demo) and renders it.
    await eventually(async () => (await cartCount(other)) === '2', 'the other device', 15000);
    assert.match(await other.getByTestId('entry-cart').textContent(), /another tab, device/);

    assert.deepEqual(a.problems, []);
    assert.deepEqual(other.problems, []);
    await laptop.close();
    await phone.close();
  });

  test('the server crashes and restarts: nothing acknowledged is lost, and what was written meanwhile arrives', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    // While the server is down, the browser logs each refused request as a console error.
    const refused = (text) => /ERR_CONNECTION_REFUSED|Failed to load resource/.test(text);
    const a = await openDemo(ctx, server, { allowConsole: refused });
    await a.getByTestId('add-filters').click();
    await a.getByTestId('sign-in').click();
    await eventually(async () => (await a.getByTestId('sync-cart').textContent()) === 'synced' && (await a.getByTestId('sync-user').textContent()) === 'synced', 'acknowledgements');

    await server.kill();
    await a.getByTestId('add-frother').click();
    await eventually(async () => /NETWORK|cannot reach/.test(await a.getByTestId('instance-shell').textContent()) || /NETWORK|cannot reach/.test(await a.getByTestId('instance-product').textContent()), 'the failure to show');
    assert.equal(await a.getByTestId('sync-cart').textContent(), 'pending');
    await shot(a, 'server-down');

    await server.start();
    await eventually(async () => (await a.getByTestId('sync-cart').textContent()) === 'synced', 'the retry after the restart', 20000);
    const values = await server.values();
    assert.deepEqual(values.cart.items.map((i) => [i.id, i.qty]), [['filters', 1], ['frother', 1]]);
    assert.equal(values.user.name, 'Ada Lovelace');

    // A device that never saw any of it gets everything from the restarted server.
    const fresh = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const f = await openDemo(fresh, server);
    await eventually(async () => (await cartCount(f)) === '2', 'the fresh device');
    await eventually(async () => /Signed in as Ada Lovelace/.test(await f.getByTestId('member-note').textContent()), 'the user on the fresh device');

    assert.deepEqual(a.problems, []);
    assert.deepEqual(f.problems, []);
    await ctx.close();
    await fresh.close();
  });
});
