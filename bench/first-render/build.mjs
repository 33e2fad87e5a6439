// node build.mjs <out dir>: the app with the package (<out>/with) and without it (<out>/without);
// and the same two with the root that reads the value in its own chunk (<out>/split-with and
// <out>/split-without, page split.html).
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));
// Vite would take a relative outDir from the app's directory, not from where this runs.
const out = resolve(process.argv[2]);
for (const [variant, cell, page] of [
  ['with', 'cell-cache.js', 'index.html'],
  ['without', 'cell-state.js', 'index.html'],
  ['split-with', 'cell-cache.js', 'split.html'],
  ['split-without', 'cell-state.js', 'split.html'],
]) {
  await build({
    root: here,
    configFile: false,
    logLevel: 'warn',
    // The package is linked from pkg/, whose own path would lead to another copy of React.
    resolve: { alias: { cell: join(here, 'src', cell) }, dedupe: ['react', 'react-dom'] },
    build: { outDir: join(out, variant), emptyOutDir: true, rollupOptions: { input: join(here, page) } },
  });
}
