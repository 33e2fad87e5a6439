// Builds ES-module copies of React and react-dom/client (development builds, so React's own
// warnings — a getSnapshot that is not cached, say — reach the console and fail the tests) into
// tests/react-vendor/, sharing one React between them. Skipped when up to date.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT } from './harness.mjs';

const OUT = join(ROOT, 'tests/react-vendor');
const require = createRequire(join(ROOT, 'package.json'));

export async function buildReactVendor() {
  const stamp = join(OUT, '.version');
  const version = require('react/package.json').version;
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === version && statSync(stamp).isFile()) return;
  mkdirSync(join(OUT, 'entries'), { recursive: true });
  // React is CommonJS: list its names so the ES modules export them statically.
  const reexport = (spec) => {
    const names = Object.keys(require(spec)).filter((n) => /^[A-Za-z_$][\w$]*$/.test(n) && n !== 'default');
    return `import * as m from '${spec}';\nexport const { ${names.join(', ')} } = m;\nexport default m;\n`;
  };
  writeFileSync(join(OUT, 'entries/react.js'), reexport('react'));
  writeFileSync(join(OUT, 'entries/react-dom-client.js'), reexport('react-dom/client'));
  await build({
    entryPoints: [join(OUT, 'entries/react.js'), join(OUT, 'entries/react-dom-client.js')],
    outdir: OUT,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    define: { 'process.env.NODE_ENV': '"development"' },
    logLevel: 'error',
    absWorkingDir: ROOT,
  });
  writeFileSync(stamp, version);
}
