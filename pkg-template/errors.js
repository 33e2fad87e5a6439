// The one error type of the whole API, and the conversion of everything else into it.

/** `{ type, message, retryable, key?, cause? }`: every failure of this package. */
export class CacheError extends Error {
  constructor(type, message, { retryable = false, key, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'CacheError';
    this.type = type;
    this.retryable = retryable;
    if (key !== undefined) this.key = key;
  }
}

/** Every `type` a CacheError can have (seed 004's names plus the cache's own). */
export const CacheErrorType = Object.freeze({
  FETCH_FAILED: 'FETCH_FAILED',
  CACHE_SET_FAILED: 'CACHE_SET_FAILED',
  CACHE_GET_FAILED: 'CACHE_GET_FAILED',
  CLEANUP_FAILED: 'CLEANUP_FAILED',
  RETRY_EXHAUSTED: 'RETRY_EXHAUSTED',
  INVALID_KEY: 'INVALID_KEY',
  INVALID_VALUE: 'INVALID_VALUE',
  INVALID_TTL: 'INVALID_TTL',
  INVALID_OPTION: 'INVALID_OPTION',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  STORAGE_CORRUPT: 'STORAGE_CORRUPT',
  STORAGE_FAILED: 'STORAGE_FAILED',
  PROTOCOL: 'PROTOCOL',
  DISPOSED: 'DISPOSED',
  REENTRANT_CALL: 'REENTRANT_CALL',
  NETWORK: 'NETWORK',
  SERVER: 'SERVER',
  UNAUTHORIZED: 'UNAUTHORIZED',
  REJECTED: 'REJECTED',
  INTERNAL: 'INTERNAL',
});

export function toCacheError(e) {
  if (e instanceof CacheError) return e;
  if (e && typeof e === 'object' && typeof e.type === 'string') {
    return new CacheError(e.type, String(e.message), { retryable: !!e.retryable, key: e.key });
  }
  return new CacheError('INTERNAL', String(e?.message ?? e), { cause: e });
}

export function describe(v) {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'bigint') return `${v}n`;
  return typeof v === 'symbol' || typeof v === 'function' ? typeof v : String(v);
}
