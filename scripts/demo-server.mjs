// Serves the demo (www-demo/) and the built package (pkg/, and again as /pkg-copy/ so the two
// demo "MFEs" load separate copies, as separately bundled MFEs do). Loopback by default.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 8080);
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.json': 'application/json' };
const routes = [['/pkg-copy/', 'pkg/'], ['/pkg/', 'pkg/'], ['/', 'www-demo/']];

createServer(async (req, res) => {
  let path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (path.endsWith('/')) path += 'index.html';
  const [prefix, dir] = routes.find(([p]) => path.startsWith(p));
  const file = normalize(join(root, dir, path.slice(prefix.length)));
  if (!file.startsWith(join(root, dir))) return res.writeHead(403).end();
  try {
    const body = await readFile(file);
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(body);
  } catch {
    res.writeHead(404).end('not found');
  }
}).listen(port, host, () => {
  console.log(`\n  mfe-shared-cache demo: http://${host}:${port}/  (open it in two tabs)\n`);
});
