// Module Federation, as users set it up: a host and a remote built separately (webpack 5 with
// @module-federation/enhanced, rspack, and Vite with @module-federation/vite; tests/mf/build.mjs),
// the remote served from another origin, in two tabs. Either each MFE bundles its own copy of the
// package (they meet on the page hub), or the package, its React entry and React are shared
// singletons (one instance). Either way a write in the remote is in the host's cache when the
// write returns, and reaches the other tab.
import test, { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT, ensureInstalled, launch, openTab, serveDirectory, sh, until } from './harness.mjs';

const MF = join(ROOT, 'tests', 'mf');
const OUT = join(ROOT, 'target', 'mf');
const TOOLS = ['webpack', 'rspack', 'vite'];
const SETUPS = ['own', 'shared'];

/** The scripts a page loaded (`urls`, served from `servers`: origin → directory), gzipped, in bytes. */
function scriptBytes(urls, servers) {
  let sum = 0;
  for (const url of new Set(urls)) {
    const { origin, pathname } = new URL(url);
    if (servers[origin] && /\.m?js$/.test(pathname)) sum += gzipSync(readFileSync(join(servers[origin], pathname)), { level: 9 }).length;
  }
  return sum;
}

describe('Module Federation: host and remote built apart, the remote on another origin', () => {
  const env = {};
  before(async () => {
    if (!existsSync(join(ROOT, 'pkg', 'index.js'))) await sh('bash', ['scripts/build-pkg.sh'], ROOT, 600_000);
    await ensureInstalled(MF);
    assert.equal(realpathSync(join(MF, 'node_modules', 'mfe-shared-cache')), realpathSync(join(ROOT, 'pkg')));
    env.browser = await launch();
  });
  after(() => env.browser?.close());

  for (const tool of TOOLS) {
    for (const setup of SETUPS) {
      test(`${tool}, ${setup === 'own' ? 'each MFE with its own copy' : 'the package a shared singleton'}`, { timeout: 180_000 }, async (t) => {
        const out = join(OUT, `${tool}-${setup}`);
        // Vite's remote is loaded as module scripts, which need CORS from any other origin;
        // webpack's and rspack's as classic scripts, which need none (nor does the wasm: it is
        // inside the scripts).
        const remote = await serveDirectory(join(out, 'remote'), { cors: tool === 'vite' });
        const host = await serveDirectory(join(out, 'host'));
        try {
          // The remote's origin is known once its server listens: the pair is built for it.
          await sh(process.execPath, ['build.mjs', tool, setup, remote.url, out], MF, 120_000);
          const ctx = await env.browser.newContext();
          // Counts the compiles of the cache's wasm on each page: one per copy of the package
          // (each copy also compiles the small module that unpacks it, which exports `unpack`,
          // not counted; the cache's own exports have minified names).
          await ctx.addInitScript(() => {
            window.__compiles = 0;
            const Module = WebAssembly.Module;
            WebAssembly.Module = new Proxy(Module, {
              construct(target, args) {
                const module = Reflect.construct(target, args);
                if (!Module.exports(module).some((e) => e.name === 'unpack')) window.__compiles++;
                return module;
              },
            });
          });
          const page = `${host.url}/host.html`;
          const loaded = [];
          const [a, b] = [await openTab(ctx, page, { before: (p) => p.on('response', (r) => loaded.push(r.url())) }), await openTab(ctx, page)];
          const value = { from: `${tool}-${setup}`, at: Date.now() };
          const r = await a.evaluate(async (value) => {
            const widget = await window.__mf.remote();
            widget.write('news', value); // not awaited: the host must have it when write returns
            return { seen: window.__mf.cache.get('news'), one: widget.cache() === window.__mf.cache, compiles: window.__compiles };
          }, value);
          assert.deepEqual(r.seen, value, 'the host sees the remote’s write synchronously');
          assert.equal(r.one, setup === 'shared', setup === 'shared' ? 'one shared instance' : 'an instance per copy');
          assert.equal(r.compiles, setup === 'shared' ? 1 : 2, 'wasm compiles on the page');
          assert.deepEqual(await until(b, (v) => JSON.stringify(window.__mf.cache.get('news')) === JSON.stringify(v) && window.__mf.cache.get('news'), value), value);
          assert.deepEqual([...a.problems, ...b.problems], []);
          const bytes = scriptBytes(loaded, { [host.url]: join(out, 'host'), [remote.url]: join(out, 'remote') });
          t.diagnostic(`${tool} ${setup}: the page loaded ${bytes} B of scripts (gzip -9), ${r.compiles} wasm compile(s)`);
          await ctx.close();
        } finally {
          await remote.close();
          await host.close();
        }
      });
    }
  }
});
