// As plain as a user's config: production mode, one entry, output to dist/. The package needs no
// loader, asset rule or experiment: its wasm travels inside its JavaScript.
// The page is written by a few lines below rather than html-webpack-plugin, to keep the install small.
import { fileURLToPath } from 'node:url';

const html = `<!doctype html>
<meta charset="utf-8">
<title>mfe-shared-cache + webpack</title>
<script>
  // A failure before the app's own try/catch runs (the package failing to load or to start its
  // wasm) still reaches the test.
  addEventListener('error', (e) => (window.__error ??= String(e.error?.stack ?? e.message)));
  addEventListener('unhandledrejection', (e) => (window.__error ??= String(e.reason?.stack ?? e.reason)));
</script>
<script defer src="main.js"></script>
<pre id="result">loading</pre>
`;

class WriteIndexHtml {
  apply(compiler) {
    const { RawSource } = compiler.webpack.sources;
    compiler.hooks.thisCompilation.tap('WriteIndexHtml', (compilation) => {
      compilation.hooks.processAssets.tap(
        { name: 'WriteIndexHtml', stage: compiler.webpack.Compilation.PROCESS_ASSETS_STAGE_ADDITIONAL },
        () => compilation.emitAsset('index.html', new RawSource(html)),
      );
    });
  }
}

export default {
  mode: 'production',
  context: fileURLToPath(new URL('.', import.meta.url)),
  entry: './src/main.js',
  output: {
    path: fileURLToPath(new URL('./dist/', import.meta.url)),
    filename: 'main.js',
    clean: true,
  },
  plugins: [new WriteIndexHtml()],
};
