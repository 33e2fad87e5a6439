// The whole app: what a micro-frontend using the package does first. The page reads the outcome
// from window.__result / window.__error (and the #result element).
import { BackendSyncedCacheService } from 'mfe-shared-cache';

const out = document.getElementById('result');
try {
  const cache = new BackendSyncedCacheService({ backendUrl: null, prefix: 'bundler_' });
  await cache.set('k', { ok: [1, 2] });
  const value = cache.get('k');
  window.__result = value;
  out.textContent = JSON.stringify(value);
} catch (e) {
  window.__error = String((e && e.stack) || e);
  out.textContent = `error: ${window.__error}`;
}
