// node build.mjs <out dir>: the app with the package (<out>/with) and without it (<out>/without).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));
const out = process.argv[2];
for (const [variant, cell] of [['with', 'cell-cache.js'], ['without', 'cell-state.js']]) {
  await build({
    root: here,
    configFile: false,
    logLevel: 'warn',
    // The package is linked from pkg/, whose own path would lead to another copy of React.
    resolve: { alias: { cell: join(here, 'src', cell) }, dedupe: ['react', 'react-dom'] },
    build: { outDir: join(out, variant), emptyOutDir: true },
  });
}
