// A backend that implements exactly the seed protocol (seed 000's README) and nothing more: no
// writer ids, no cursor, no clear epochs — deltas by timestamp, `timestamp: Date.now()` as the
// seed's example does. The client must work against it as well as against mfe-cache-server.
// For tests it also misbehaves on request (`mode`) and records every request.
export function createSeedBackend() {
  const entries = new Map(); // key -> { key, value, ttl, timestamp, deleted }
  const backend = {
    mode: 'ok', // ok | 500 | html | truncated | wrong-types | reset | hang
    requests: [], // { path, body, at }
    entries,
    /** Writes an entry as another client would (for tests). */
    put(change) {
      const current = entries.get(change.key);
      if (!current || current.timestamp <= change.timestamp) entries.set(change.key, { deleted: false, ttl: 0, ...change });
    },
    /** Handles /api/cache/*; returns false for other paths. */
    async handle(req, res, path) {
      if (!path.startsWith('/api/cache/')) return false;
      const body = await readBody(req);
      backend.requests.push({ path, body, at: Date.now() });
      switch (backend.mode) {
        case '500':
          return send(res, 500, { error: 'internal' }), true;
        case 'html':
          res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body><h1>502 Bad Gateway</h1></body></html>');
          return true;
        case 'html-200':
          res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>maintenance</body></html>');
          return true;
        case 'truncated':
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"updates":[{"key":"x","val');
          return true;
        case 'wrong-types':
          return send(res, 200, { updates: 'nope', timestamp: 'yesterday' }), true;
        case 'reset':
          req.socket.destroy();
          return true;
        case 'hang':
          return true; // never answers
      }
      let data;
      try {
        data = JSON.parse(body);
      } catch {
        return send(res, 400, { error: 'invalid json' }), true;
      }
      const now = Date.now();
      if (path === '/api/cache/sync') {
        const since = Number(data.lastSync) || 0;
        for (const c of data.changes ?? []) backend.put(c);
        const updates = [...entries.values()].filter((e) => e.timestamp > since);
        return send(res, 200, { updates, timestamp: now }), true;
      }
      if (path === '/api/cache/set') backend.put({ key: data.key, value: data.value, ttl: data.ttl, timestamp: data.timestamp });
      else if (path === '/api/cache/remove') backend.put({ key: data.key, value: null, timestamp: data.timestamp, deleted: true });
      else if (path === '/api/cache/clear') {
        for (const [key, e] of entries) if (e.timestamp <= data.timestamp) entries.set(key, { key, value: null, ttl: 0, timestamp: data.timestamp, deleted: true });
      } else return send(res, 404, { error: 'not found' }), true;
      return send(res, 200, { success: true }), true;
    },
    /** The value of each live key, as a client would end up seeing it. */
    values() {
      return Object.fromEntries([...entries.values()].filter((e) => !e.deleted).map((e) => [e.key, e.value]));
    },
  };
  return backend;
}

function readBody(req) {
  return new Promise((resolve) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => resolve(body));
    req.on('error', () => resolve(body));
  });
}

function send(res, status, data) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(data));
}
