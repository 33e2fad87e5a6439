// Builds the Module Federation test pair: node build.mjs <webpack|rspack|vite> <own|shared> <remote origin> <out dir>
// writes <out>/remote (remoteEntry.js exposing ./widget) and <out>/host (host.html), each built on
// its own as two teams would. `own`: each MFE bundles its own copy of the package; `shared`: the
// package, its React entry and React are singletons the host provides.
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [tool, sharing, remoteOrigin, out] = process.argv.slice(2);
const here = fileURLToPath(new URL('.', import.meta.url));

const shared =
  sharing === 'shared'
    ? {
        'mfe-shared-cache': { singleton: true, requiredVersion: '^0.1.0' },
        'mfe-shared-cache/react': { singleton: true, requiredVersion: '^0.1.0' },
        react: { singleton: true, requiredVersion: '^19.0.0' },
      }
    : {};
const federation = {
  host: { name: 'mf_host', remotes: { remote: `mf_remote@${remoteOrigin}/remoteEntry.js` }, shared, dts: false, manifest: false },
  remote: { name: 'mf_remote', filename: 'remoteEntry.js', exposes: { './widget': './src/remote/widget.js' }, shared, dts: false, manifest: false },
};

async function bundle(role) {
  const dir = join(out, role);
  if (tool === 'vite') {
    const { build } = await import('vite');
    const { federation: plugin } = await import('@module-federation/vite');
    const options = role === 'host' ? { ...federation.host, remotes: { remote: { type: 'module', name: 'mf_remote', entry: `${remoteOrigin}/remoteEntry.js` } } } : federation.remote;
    await build({
      root: here,
      configFile: false,
      logLevel: 'warn',
      plugins: [plugin(options)],
      build: { outDir: dir, emptyOutDir: true, target: 'esnext', rollupOptions: { input: join(here, `${role}.html`) } },
    });
    return;
  }
  const { ModuleFederationPlugin } = await import(`@module-federation/enhanced/${tool}`);
  const config = {
    mode: 'production',
    context: here,
    entry: role === 'host' ? { main: './src/host/main.js' } : {},
    output: { path: dir, publicPath: 'auto', uniqueName: `mf_${role}`, clean: true },
    plugins: [new ModuleFederationPlugin(federation[role])],
  };
  const compiler = tool === 'rspack' ? (await import('@rspack/core')).rspack(config) : (await import('webpack')).default(config);
  const stats = await new Promise((resolve, reject) => compiler.run((err, s) => (err ? reject(err) : resolve(s))));
  await new Promise((resolve) => compiler.close(resolve));
  if (stats.hasErrors()) throw new Error(stats.toString({ all: false, errors: true }));
  const html = (await readFile(join(here, `${role}.html`), 'utf8')).replace('<script type="module" src="./src/host/main.js"></script>', '<script defer src="main.js"></script>');
  await writeFile(join(dir, `${role}.html`), html);
}

await mkdir(out, { recursive: true });
await bundle('remote');
await bundle('host');
