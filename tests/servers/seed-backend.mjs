// A backend that implements exactly the seed protocol (the README's four endpoints) and nothing more: no
// writer ids, no cursor, no clear epochs — deltas by timestamp, `timestamp: Date.now()` as the
// seed's example does. The client must work against it as well as against mfe-cache-server.
// (Faults are injected in front of it, by the test's front server, as for mfe-cache-server.)
export function createSeedBackend() {
  const entries = new Map(); // key -> { key, value, ttl, timestamp, deleted }
  const backend = {
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
