#!/usr/bin/env node
// The server benchmark's baseline: a minimal Express implementation of exactly the seed protocol
// (the four endpoints, no extensions), as a team would write it in an afternoon: one in-memory Map,
// last writer wins by timestamp, a delta is every entry whose timestamp is above `lastSync`, and
// `timestamp` in the answer is the server's Date.now(). No durability, no validation beyond
// JSON parsing, no auth, no logging.
//
//   node bench/express-seed.mjs [--listen 127.0.0.1:0]   → prints `listening on http://HOST:PORT`
import express from 'express';

const args = process.argv.slice(2);
const listenAt = args.includes('--listen') ? args[args.indexOf('--listen') + 1] : '127.0.0.1:0';
const [host, port] = listenAt.split(':');

const entries = new Map(); // key -> { key, value, ttl, timestamp, deleted }

function put(change) {
  const current = entries.get(change.key);
  if (!current || current.timestamp <= change.timestamp) {
    entries.set(change.key, {
      key: change.key,
      value: change.deleted ? null : change.value,
      ttl: change.ttl ?? 0,
      timestamp: change.timestamp,
      deleted: change.deleted === true,
    });
  }
}

const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.use(express.json({ limit: '1mb' }));

app.post('/api/cache/sync', (req, res) => {
  const since = Number(req.body?.lastSync) || 0;
  for (const change of req.body?.changes ?? []) put(change);
  const updates = [];
  for (const e of entries.values()) if (e.timestamp > since) updates.push(e);
  res.json({ updates, timestamp: Date.now() });
});

app.post('/api/cache/set', (req, res) => {
  const { key, value, ttl, timestamp } = req.body ?? {};
  put({ key, value, ttl, timestamp, deleted: false });
  res.json({ success: true });
});

app.post('/api/cache/remove', (req, res) => {
  const { key, timestamp } = req.body ?? {};
  put({ key, value: null, timestamp, deleted: true });
  res.json({ success: true });
});

app.post('/api/cache/clear', (req, res) => {
  const { timestamp } = req.body ?? {};
  for (const [key, e] of entries) if (e.timestamp <= timestamp) entries.set(key, { key, value: null, ttl: 0, timestamp, deleted: true });
  res.json({ success: true });
});

const server = app.listen(Number(port), host, () => {
  const { address, port: bound } = server.address();
  console.log(`listening on http://${address}:${bound}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
