// Server rendering: the app of tests/ssr, built by Vite for Node and for the browser, rendered
// in Node (where there is no cache) and hydrated in Chromium with values already in storage.
// The hydration render must equal the server's for every hook (else React reports a mismatch
// and throws the server's HTML away); the stored values show right after.
import test, { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, ensureInstalled, launch, openTab, serveDirectory, sh } from './harness.mjs';

const APP = join(ROOT, 'tests', 'ssr');
const OUT = join(ROOT, 'target', 'ssr');

describe('server rendering and hydration (Vite, React 19)', () => {
  const env = {};
  before(async () => {
    if (!existsSync(join(ROOT, 'pkg', 'index.js'))) await sh('bash', ['scripts/build-pkg.sh'], ROOT, 600_000);
    await ensureInstalled(APP);
    await sh(process.execPath, ['build.mjs', OUT], APP, 120_000);
    const { render } = await import(pathToFileURL(join(OUT, 'server', 'entry-server.js')).href);
    env.serverHtml = render();
    const page = join(OUT, 'client', 'index.html');
    writeFileSync(page, readFileSync(page, 'utf8').replace('<!--app-->', env.serverHtml));
    env.server = await serveDirectory(join(OUT, 'client'));
    env.browser = await launch();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.close();
  });

  const text = (page) => page.evaluate(() => ['greeting', 'profile', 'status'].map((id) => document.getElementById(id)?.textContent));

  test('the server renders initial values; hydrating with values in storage matches it, then shows them', async () => {
    assert.deepEqual(
      [...env.serverHtml.matchAll(/<p id="\w+">([^<]*)<\/p>/g)].map((m) => m[1]),
      ['hello from the server', 'none loading=false stale=false error=none', 'enabled=false backend=off realtime=off pending=0'],
    );
    const ctx = await env.browser.newContext();
    const page = await openTab(ctx, env.server.url + '/');
    await page.evaluate(async () => {
      const cache = window.__cache();
      await cache.set('greeting', 'hello from storage');
      await cache.set('profile', { name: 'stored' });
    });
    await page.reload();
    await page.waitForFunction(() => window.__ready === true);
    await page.waitForFunction(() => document.getElementById('greeting')?.textContent === 'hello from storage');
    await page.waitForFunction(() => document.getElementById('profile')?.textContent.startsWith('stored loading=false'));
    assert.deepEqual(await text(page), ['hello from storage', 'stored loading=false stale=false error=none', 'enabled=false backend=off realtime=off pending=0']);
    assert.deepEqual(await page.evaluate(() => window.__recoverable), [], 'no hydration mismatch');
    assert.deepEqual(page.problems, []);
    await ctx.close();
  });
});
