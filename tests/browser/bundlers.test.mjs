// The built package (pkg/) as a user's bundler sees it: two tiny apps under tests/bundlers/ depend
// on it (`file:../../../pkg`, so resolution goes through node_modules and pkg/package.json
// `exports`), are built by Vite and by webpack 5 with plain configs, and run in headless Chromium:
// the value must round-trip, the wasm must travel inside the script (no .wasm asset, no fetch, no
// top-level await for the importing module graph to wait on), and nothing may error. Each app's bundler is its own devDependency, installed here from its lock file when
// node_modules is missing or older than the lock.
import test, { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { ROOT, ensureInstalled, launch, sh, startServer } from './harness.mjs';

const PKG = join(ROOT, 'pkg');
const BUNDLERS = join(ROOT, 'tests', 'bundlers');

const APPS = [
  { name: 'vite-app', tool: 'vite', args: ['build'] },
  { name: 'webpack-app', tool: 'webpack-cli', args: ['--config', 'webpack.config.js'] },
];

/** Builds pkg/ only when it is missing (scripts/test.sh builds it before the tests). */
async function ensurePkg() {
  if (['index.js', 'core.js', 'core_wasm.js', 'package.json'].every((f) => existsSync(join(PKG, f)))) return;
  await sh('bash', ['scripts/build-pkg.sh'], ROOT, 600_000);
}

/** The JS file of a package's command, run with this node (no shell, no .bin shims). */
function binOf(dir, tool) {
  const meta = JSON.parse(readFileSync(join(dir, 'node_modules', tool, 'package.json'), 'utf8'));
  const bin = typeof meta.bin === 'string' ? meta.bin : meta.bin[tool.replace(/-cli$/, '')] ?? Object.values(meta.bin)[0];
  return join(dir, 'node_modules', tool, bin);
}

function filesUnder(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath ?? d.path, d.name)).split(sep).join('/'));
}

describe('the package bundled by Vite and webpack, in Chromium', () => {
  const env = {};
  before(async () => {
    await ensurePkg();
    env.server = await startServer();
    env.browser = await launch();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.close();
  });

  for (const app of APPS) {
    const dir = join(BUNDLERS, app.name);
    const dist = join(dir, 'dist');

    test(`${app.name}: installs, builds, and round-trips a value`, { timeout: 240_000 }, async (t) => {
      await t.test('the package is installed as a dependency linked to pkg/', async () => {
        await ensureInstalled(dir);
        assert.equal(realpathSync(join(dir, 'node_modules', 'mfe-shared-cache')), realpathSync(PKG));
      });

      await t.test('the build emits the page and a script carrying the wasm, and no .wasm asset', async () => {
        await sh(process.execPath, [binOf(dir, app.tool), ...app.args], dir, 120_000);
        const files = filesUnder(dist);
        assert.ok(files.includes('index.html'), `no index.html in ${files}`);
        const scripts = files.filter((f) => f.endsWith('.js'));
        assert.ok(scripts.length > 0, `no script in ${files}`);
        assert.deepEqual(files.filter((f) => f.endsWith('.wasm')), [], 'the wasm is embedded, not a separate asset');
        // The embedded module's bytes are renamed characters, so look for a run of them that every
        // bundler writes as it is (printable ASCII without quotes, backslash, $ or backtick).
        const embedded = readFileSync(join(PKG, 'core_wasm.js'), 'utf8');
        const sample = embedded.slice(embedded.length >> 1).match(/[ !#%&(-[\]-_a-~]{24,}/)?.[0];
        assert.ok(sample, 'no plain run in the embedded wasm');
        assert.ok(scripts.some((f) => readFileSync(join(dist, f), 'utf8').includes(sample)), 'no script carries the wasm');
        app.built = true;
      });

      await t.test('the page sets and gets a value through the wasm core, without errors', async () => {
        assert.ok(app.built, 'the build did not pass');
        const base = `${env.server.url}/tests/bundlers/${app.name}/dist/`;
        const context = await env.browser.newContext();
        try {
          const page = await context.newPage();
          const problems = [];
          const wasmFetches = [];
          page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
          page.on('console', (m) => m.type() === 'error' && problems.push(`console.error: ${m.text()}`));
          page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
          page.on('request', (r) => {
            if (!r.url().startsWith(env.server.url)) problems.push(`request off the test server: ${r.url()}`);
          });
          page.on('response', (r) => {
            if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
            if (new URL(r.url()).pathname.endsWith('.wasm')) wasmFetches.push({ url: r.url(), status: r.status(), type: r.headers()['content-type'] });
          });

          await page.goto(`${base}index.html`);
          await page.waitForFunction(() => '__result' in window || '__error' in window, null, { timeout: 15_000 });
          const r = await page.evaluate(() => ({
            error: window.__error ?? null,
            result: window.__result ?? null,
            text: document.getElementById('result')?.textContent,
            stored: Object.keys(localStorage).filter((k) => k.startsWith('bundler_')),
          }));

          assert.equal(r.error, null, `the app failed: ${r.error}`);
          assert.deepEqual(r.result, { ok: [1, 2] });
          assert.equal(r.text, '{"ok":[1,2]}');
          assert.ok(r.stored.length > 0, 'nothing was persisted under the prefix bundler_ in localStorage');
          assert.deepEqual(wasmFetches, [], 'nothing fetched for the wasm');
          assert.deepEqual(problems, []);
        } finally {
          await context.close();
        }
      });
    });
  }
});

// `npm pack` keeps only what pkg/package.json `files` lists. core.js imports
// ./snippets/<crate>-<hash>/inline0.js (a wasm-bindgen inline JS snippet); a tarball without it
// cannot be bundled or loaded, and the apps above link pkg/, so they would not notice.
test(
  'npm pack of pkg/ ships every file the build put in pkg/',
  async () => {
    await ensurePkg();
    const { stdout } = await sh('npm', ['pack', '--dry-run', '--json', '--ignore-scripts', '--loglevel=error'], PKG, 60_000);
    const packed = new Set(JSON.parse(stdout)[0].files.map((f) => f.path));
    const missing = filesUnder(PKG).filter((f) => !packed.has(f));
    assert.deepEqual(missing, [], `left out of the tarball: ${missing.join(', ')}`);
  },
);

// No top-level await anywhere in the package: an importing module graph (a Module Federation
// shared scope, an SSR renderer) never waits on it, and a cache made in the importing task works
// at once. esbuild refuses to write CommonJS for a module graph that has a top-level await, so a
// CommonJS bundle of the package is the check; Node then runs it the way SSR would.
test('the package has no top-level await: a cache made in the importing task works in Node', async () => {
  await ensurePkg();
  const esbuild = join(ROOT, 'node_modules', '.bin', 'esbuild');
  const { stdout } = await sh(esbuild, [join(PKG, 'index.js'), '--bundle', '--format=cjs', '--platform=node', '--log-level=error'], ROOT, 60_000);
  assert.ok(stdout.length > 0);
  const script = `
    import { BackendSyncedCacheService } from ${JSON.stringify(join(PKG, 'index.js'))};
    const cache = new BackendSyncedCacheService({ backendUrl: null, prefix: 'ssr_' });
    const before = cache.get('k');
    cache.set('k', { rendered: true });
    console.log(JSON.stringify({ before, after: cache.get('k') }));
    cache.dispose(); // closes its BroadcastChannel (Node has one), so the process can end
  `;
  const { stdout: out } = await sh(process.execPath, ['--input-type=module', '-e', script], ROOT, 60_000);
  assert.deepEqual(JSON.parse(out), { before: null, after: { rendered: true } });
});
