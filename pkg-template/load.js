// Loading through the cache: the loader's retries (seed 004's exponential backoff) and which
// failures are worth retrying.
import { CacheError, describe } from './errors.js';

export const DEFAULT_RETRY = Object.freeze({ maxRetries: 3, initialDelay: 100, maxDelay: 2000, backoffFactor: 2 });

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE']);

/**
 * Whether a loader's failure may go away by itself: it says so (`retryable`), it is a network
 * failure (fetch rejects with a TypeError; Node's codes), or an HTTP status that means "later".
 */
export function isRetryable(error) {
  if (error && typeof error === 'object') {
    if (typeof error.retryable === 'boolean') return error.retryable;
    if (NETWORK_CODES.has(error.code) || NETWORK_CODES.has(error.cause?.code)) return true;
    const status = error.status ?? error.response?.status;
    if (typeof status === 'number') return status >= 500 || status === 408 || status === 429;
    if (error.name === 'TypeError' && /fetch|network/i.test(String(error.message))) return true;
    if (error.name === 'TimeoutError') return true;
  }
  return false;
}

export function checkRetry(retry) {
  if (retry === undefined || retry === null) return DEFAULT_RETRY;
  if (typeof retry !== 'object') throw new CacheError('INVALID_OPTION', 'option retry must be an object');
  const r = { ...DEFAULT_RETRY, ...Object.fromEntries(Object.entries(retry).filter(([, v]) => v !== undefined)) };
  const bad = (name, why) => {
    throw new CacheError('INVALID_OPTION', `retry.${name} ${why}, got ${describe(r[name])}`);
  };
  if (!Number.isInteger(r.maxRetries) || r.maxRetries < 0) bad('maxRetries', 'must be an integer >= 0');
  for (const name of ['initialDelay', 'maxDelay']) if (typeof r[name] !== 'number' || !(r[name] >= 0) || !Number.isFinite(r[name])) bad(name, 'must be ms >= 0');
  if (typeof r.backoffFactor !== 'number' || !(r.backoffFactor >= 1) || !Number.isFinite(r.backoffFactor)) bad('backoffFactor', 'must be a number >= 1');
  return r;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `loader()` until it succeeds, retrying retryable failures after initialDelay,
 * initialDelay × backoffFactor, … (each capped at maxDelay). Rejects with FETCH_FAILED for a
 * failure not worth retrying, RETRY_EXHAUSTED after maxRetries retries; `cause` is the loader's.
 */
export async function loadWithRetry(key, loader, retry, onRetry) {
  let delay = retry.initialDelay;
  for (let attempt = 1; ; attempt++) {
    try {
      return await loader();
    } catch (cause) {
      const why = cause?.message ?? String(cause);
      if (!isRetryable(cause)) {
        throw new CacheError('FETCH_FAILED', `loading ${describe(key)} failed: ${why}`, { key, cause });
      }
      if (attempt > retry.maxRetries) {
        throw new CacheError('RETRY_EXHAUSTED', `loading ${describe(key)} failed ${attempt} times; last: ${why}`, { key, cause });
      }
      const wait = Math.min(delay, retry.maxDelay);
      onRetry(attempt, cause, wait);
      await sleep(wait);
      delay *= retry.backoffFactor;
    }
  }
}
