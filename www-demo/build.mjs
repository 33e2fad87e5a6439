// Builds the demo site: the shell and the product MFE as two separate esbuild bundles, each with
// its own React and its own copy of mfe-shared-cache (from pkg/, built by scripts/build-pkg.sh).
// Usage: node www-demo/build.mjs [outdir]   (default target/demo-site)
import { build } from 'esbuild';
import { cp, mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const here = join(root, 'www-demo');
const out = join(root, process.argv[2] ?? 'target/demo-site');

const MFES = [
  { name: 'shell', entry: 'shell/main.jsx', file: 'shell.js' },
  { name: 'product', entry: 'product/remoteEntry.jsx', file: 'remoteEntry.js', assets: ['catalogue.json'] },
];

await rm(out, { recursive: true, force: true });
for (const mfe of MFES) {
  await build({
    entryPoints: [join(here, mfe.entry)],
    outfile: join(out, mfe.name, mfe.file),
    bundle: true,
    format: 'esm',
    target: 'es2022',
    jsx: 'automatic',
    minify: true,
    sourcemap: true,
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
    // As if installed from npm: `mfe-shared-cache` and `mfe-shared-cache/react` are the built package.
    alias: { 'mfe-shared-cache': join(root, 'pkg') },
  });
  for (const asset of mfe.assets ?? []) await cp(join(here, mfe.name, asset), join(out, mfe.name, asset));
}
await mkdir(out, { recursive: true });
for (const file of ['index.html', 'demo.css']) await cp(join(here, file), join(out, file));
console.error(`built the demo into ${out}`);
