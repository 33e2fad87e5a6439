// @ts-check
// The one error type of the whole API, and the conversion of everything else into it.

/** `{ type, message, retryable, key?, cause? }`: every failure of this package. */
export class CacheError extends Error {
  /**
   * @param {string} type
   * @param {string} message
   * @param {{ retryable?: boolean, key?: unknown, cause?: unknown }} [options]
   */
  constructor(type, message, { retryable = false, key, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'CacheError';
    this.type = type;
    this.retryable = retryable;
    if (key !== undefined) this.key = key;
  }
}

/** Every `type` a CacheError can have (the original API's names plus the cache's own). */
export const CacheErrorType = Object.freeze(
  Object.fromEntries(
    ['FETCH_FAILED', 'CACHE_SET_FAILED', 'CACHE_GET_FAILED', 'CLEANUP_FAILED', 'RETRY_EXHAUSTED', 'INVALID_KEY', 'INVALID_VALUE', 'INVALID_TTL', 'INVALID_OPTION', 'INVALID_ARGUMENT', 'QUOTA_EXCEEDED', 'STORAGE_CORRUPT', 'STORAGE_FAILED', 'PROTOCOL', 'DISPOSED', 'REENTRANT_CALL', 'NETWORK', 'SERVER', 'UNAUTHORIZED', 'REJECTED', 'INTERNAL'].map((t) => [t, t]),
  ),
);

/**
 * A CacheError from anything thrown: the core's `{ type, message, retryable, key? }` objects keep
 * their fields (and get `cause` when one is given); anything else is INTERNAL.
 * @param {unknown} e
 * @param {unknown} [cause]
 * @returns {CacheError}
 */
export function toCacheError(e, cause) {
  if (e instanceof CacheError) return e;
  const o = /** @type {any} */ (e);
  if (o && typeof o === 'object' && typeof o.type === 'string') {
    return new CacheError(o.type, String(o.message), { retryable: !!o.retryable, key: o.key, cause });
  }
  return new CacheError('INTERNAL', String(o?.message ?? o), { cause: e });
}

/** A value, short, for messages. @param {unknown} v */
export function describe(v) {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'bigint') return `${v}n`;
  return typeof v === 'symbol' || typeof v === 'function' ? typeof v : String(v);
}

/** Reports what a user's callback threw the way the browser reports an event listener's error. @param {unknown} e */
export function reportThrown(e) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(e);
  else setTimeout(() => { throw e; });
}
