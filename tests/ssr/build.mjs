// node build.mjs <out dir>: the app for the browser (<out>/client) and its server entry for
// Node (<out>/server/entry-server.js).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));
const out = process.argv[2];
// The package is linked from pkg/, whose own path would lead to another copy of React. The
// server entry bundles its dependencies, so that it runs from the output directory.
const shared = { root: here, configFile: false, logLevel: 'warn', resolve: { dedupe: ['react', 'react-dom'] }, ssr: { noExternal: true } };
const build_ = { emptyOutDir: true, chunkSizeWarningLimit: 4096 };
await build({ ...shared, build: { ...build_, outDir: join(out, 'client') } });
await build({ ...shared, build: { ...build_, ssr: 'src/entry-server.js', outDir: join(out, 'server') } });
