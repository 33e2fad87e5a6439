// The cache inspector of `mfe-shared-cache/devtools`, mounted on a plain page with no framework:
// it finds every instance on the page, shows entries and events, filters them, switches the
// page offline, and unmounts cleanly; an app that does not import it does not bundle it.
import test, { describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { build } from 'esbuild';
import { ROOT, openTab, suite, until } from './harness.mjs';

// Texts inside the inspector's shadow root (Playwright's locators pierce it).
const text = (tab, id) => tab.getByTestId(id).textContent();

describe('mfe-shared-cache/devtools', () => {
  const env = suite({ before: test.before, after: test.after });

  test('lists every instance and entry, logs events, filters, switches offline, and unmounts', async () => {
    const ctx = await env.context();
    // The page's server has no backend: the instance that syncs finds none, and says so.
    const tab = await openTab(ctx, env.page(), { allowConsoleErrors: true });
    await tab.evaluate(async () => {
      const { mountDevtools } = await import('/pkg/devtools.js');
      window.shell = new pkg.BackendSyncedCacheService({ prefix: 'dt_', app: 'shell', logLevel: 'silent' });
      window.unmount = mountDevtools(document.body);
      await shell.set('cart', { items: ['espresso'] }, 90);
      // An MFE loaded later, with its own instance: found on the next tick.
      window.product = new pkg.BackendSyncedCacheService({ prefix: 'dt_', app: 'product', backendUrl: null });
      await product.set('catalogue', ['espresso', 'kettle'], 0);
    });
    await tab.getByTestId('instance-product').waitFor();
    assert.match(await text(tab, 'instance-shell'), /shell.*no backend answers/);
    assert.match(await text(tab, 'instance-product'), /product.*none \(this browser only\)/);
    assert.match(await text(tab, 'entry-cart'), /\{"items":\["espresso"\]\}.*shell MFE, this tab/);
    assert.match(await text(tab, 'ttl-cart'), /^(1 min [0-9]+|[0-9]+) s$/);
    assert.equal(await text(tab, 'ttl-catalogue'), '∞');
    assert.match(await text(tab, 'dp-summary'), /^2 entries/);

    // A write from elsewhere shows, and the log says so.
    await tab.evaluate(() => product.set('cart', { items: ['espresso', 'kettle'] }));
    await until(tab, () => /kettle/.test(document.querySelector('[data-testid=dev-panel]').shadowRoot.querySelector('[data-testid="entry-cart"]').textContent));
    assert.match(await text(tab, 'dp-log'), /product.*change.*cart/);

    // The filter narrows entries and events.
    await tab.getByTestId('dp-filter').fill('catalogue');
    await until(tab, () => !document.querySelector('[data-testid=dev-panel]').shadowRoot.querySelector('[data-testid="entry-cart"]'));
    assert.match(await text(tab, 'entry-catalogue'), /kettle/);
    await tab.getByTestId('dp-filter').fill('');

    // The page's offline switch: the instance that syncs is offline, then asks again.
    await tab.getByTestId('offline-toggle').check();
    await until(tab, () => /offline/.test(document.querySelector('[data-testid=dev-panel]').shadowRoot.querySelector('[data-testid="instance-shell"]').textContent));
    await tab.getByTestId('offline-toggle').uncheck();
    await until(tab, () => /no backend answers/.test(document.querySelector('[data-testid=dev-panel]').shadowRoot.querySelector('[data-testid="instance-shell"]').textContent));

    // A disposed instance leaves the list; unmounting removes the panel.
    await tab.evaluate(() => product.dispose());
    await until(tab, () => !document.querySelector('[data-testid=dev-panel]').shadowRoot.querySelector('[data-testid="instance-product"]'));
    await tab.evaluate(() => unmount());
    assert.equal(await tab.evaluate(() => document.querySelector('[data-testid=dev-panel]')), null);
    assert.deepEqual(tab.problems, []);
    await ctx.close();
  });

  test('an app that does not import it does not bundle it', async () => {
    const bundle = async (source) => {
      const result = await build({
        stdin: { contents: source, resolveDir: ROOT, loader: 'js' },
        bundle: true,
        minify: true,
        write: false,
        format: 'esm',
        alias: { 'mfe-shared-cache': join(ROOT, 'pkg') },
        external: ['react'],
        logLevel: 'silent',
      });
      return result.outputFiles[0].text;
    };
    const without = await bundle("import { BackendSyncedCacheService } from 'mfe-shared-cache'; new BackendSyncedCacheService();");
    const withIt = await bundle("import { mountDevtools } from 'mfe-shared-cache/devtools'; mountDevtools();");
    assert.ok(withIt.includes('Cache inspector'), 'the marker is in the inspector');
    assert.ok(!without.includes('Cache inspector'), 'and not in an app without it');
  });
});
