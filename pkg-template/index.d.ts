/**
 * A JSON value: what the cache stores. Arrays may be readonly, so values read from the cache
 * (deeply frozen) can be written back.
 */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { [key: string]: JsonValue };

/**
 * A value returned by the cache: its properties are read-only at every level (values are deeply
 * frozen, and assigning to a property throws). Arrays keep their type, so that a value read from
 * the cache can be passed wherever its plain type is expected (`function total(cart: Cart)`);
 * `push` on one throws at runtime all the same.
 */
export type DeepReadonly<T> = T extends (infer U)[]
  ? DeepReadonly<U>[]
  : T extends readonly (infer U)[]
    ? readonly DeepReadonly<U>[]
    : T extends object
      ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
      : T;

/** `T` as JSON would carry it, part by part (`never` where a part is not JSON: a function, a Date, a Map…). */
export type JsonCompatible<T> = T extends string | number | boolean | null
  ? T
  : T extends readonly unknown[]
    ? { [K in keyof T]: JsonCompatible<T[K]> }
    : T extends Function | symbol | bigint | undefined
      ? never
      : T extends object
        ? { [K in keyof T]: JsonCompatible<T[K]> }
        : never;

/**
 * The constraint of a value type: anything all of whose parts are JSON, declared with `type` or
 * `interface` alike; else `JsonValue`, so that TypeScript's error points at what is not JSON.
 */
export type AsJson<T> = [T] extends [JsonValue] ? unknown : [T] extends [JsonCompatible<T>] ? unknown : JsonValue;

/** Every `type` an error of this package can have. */
export type CacheErrorType =
  | 'FETCH_FAILED'
  | 'CACHE_SET_FAILED'
  | 'CACHE_GET_FAILED'
  | 'CLEANUP_FAILED'
  | 'RETRY_EXHAUSTED'
  | 'INVALID_KEY'
  | 'INVALID_VALUE'
  | 'INVALID_TTL'
  | 'INVALID_OPTION'
  | 'INVALID_ARGUMENT'
  | 'QUOTA_EXCEEDED'
  | 'STORAGE_CORRUPT'
  | 'STORAGE_FAILED'
  | 'PROTOCOL'
  | 'DISPOSED'
  | 'REENTRANT_CALL'
  | 'NETWORK'
  | 'SERVER'
  | 'UNAUTHORIZED'
  | 'REJECTED'
  | 'INTERNAL';

/** The error types as constants (`CacheErrorType.RETRY_EXHAUSTED`). */
export const CacheErrorType: { readonly [T in CacheErrorType]: T };

/**
 * Seconds (0: never expires), or a duration string: a number with a unit (`ms`, `s`, `m`, `h`,
 * `d`, `w` or their long forms), several of them (`"1h 30m"`), or a bare number of seconds.
 */
export type Ttl = number | string;

/** The one error type of the whole API. */
export class CacheError extends Error {
  readonly name: 'CacheError';
  readonly type: CacheErrorType;
  /** Whether the same operation may succeed later without changing its input. */
  readonly retryable: boolean;
  /** The key concerned, where there is one. */
  readonly key?: string;
  /** The underlying failure (a loader's error, a storage exception…), where there is one. */
  readonly cause?: unknown;
  constructor(type: CacheErrorType, message: string, options?: { retryable?: boolean | undefined; key?: string | undefined; cause?: unknown });
}

/** Anything with the Web Storage interface. */
export interface StorageLike {
  readonly length: number;
  key(index: number): string | null;
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Every option may be left out or `undefined` (index.js treats both as the default). */
export interface CacheOptions {
  /** Default: `localStorage` (an in-memory storage where it is unavailable). */
  storage?: StorageLike | undefined;
  /** Default `'shared_mfe_cache_'`; also names the cross-tab channel. */
  prefix?: string | undefined;
  /** Default 3600 seconds; 0 never expires; or a duration string such as `"1h"`. */
  defaultTTL?: Ttl | undefined;
  /** Default `'/api/cache'`; `null`/`false`: no backend (local + cross-tab only). */
  backendUrl?: string | null | false | undefined;
  /** ms, default 30000. */
  syncInterval?: number | undefined;
  /** ms, default 5000. */
  retryDelay?: number | undefined;
  /** Default 3. */
  maxRetries?: number | undefined;
  /** ms, default 10000: a request with no complete answer by then counts as a network failure. */
  requestTimeout?: number | undefined;
  /** Added to every backend request (e.g. an authorization header), or a function giving them. */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>) | undefined;
  /** The MFE's name (1–32 of `A-Z a-z 0-9 _ . -`): writer ids become `app:random`, so entries say who wrote them. */
  app?: string | null | undefined;
  /** Default `'warn'`: only errors nobody listens to. */
  logLevel?: LogLevel | undefined;
  /**
   * Default `'auto'`: the leader tab holds the backend's event stream (`GET {backendUrl}/events`)
   * and changes arrive as they are accepted, with no polling; a backend without it is polled
   * every `syncInterval` (detected, nothing to configure). `'off'`: always poll.
   */
  realtime?: 'auto' | 'off' | undefined;
  /**
   * Bytes one `POST /sync` carries at most, default 524288 (half the reference server's default
   * body limit); writes are sent in as many requests as it takes. A backend that answers 413
   * anyway makes the requests smaller.
   */
  maxBatchBytes?: number | undefined;
  /** Receives the log records; default: the console. */
  logger?: ((record: LogRecord) => void) | null | undefined;
}

export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug';

/** A structured log record. */
export interface LogRecord {
  readonly level: Exclude<LogLevel, 'silent'>;
  readonly message: string;
  readonly key?: string;
  /** ms, for loads. */
  readonly duration?: number;
  /** The failed attempt a retry follows. */
  readonly attempt?: number;
  readonly error?: string;
  readonly [field: string]: unknown;
}

/** Retries of a loader : attempt, wait initialDelay, × backoffFactor, … capped at maxDelay. */
export interface RetryConfig {
  /** Default 3. */
  maxRetries?: number | undefined;
  /** ms, default 100. */
  initialDelay?: number | undefined;
  /** ms, default 2000. */
  maxDelay?: number | undefined;
  /** Default 2. */
  backoffFactor?: number | undefined;
}

export interface GetOrFetchOptions<T> {
  /** Default: the cache's defaultTTL. */
  ttl?: Ttl | undefined;
  /** Serve an expired value at once and refresh it in the background. */
  staleWhileRevalidate?: boolean | undefined;
  /** Only failures that may go away (network errors, 5xx/408/429, `retryable: true`) are retried. */
  retry?: RetryConfig | undefined;
  /** Resolved (not stored) when loading fails for good; the failure still goes to 'error' listeners. */
  defaultValue?: T | DeepReadonly<T> | undefined;
  /** Transforms the loaded value before it is stored (a cacheSetFilter). */
  filter?: ((loaded: any) => T) | undefined;
  /** ms a caller waits for another tab's load of the same key before loading itself; default 10000. */
  graceTime?: number | undefined;
  /** Load even on a hit (a load another tab finished after this call started counts). */
  refresh?: boolean | undefined;
  /**
   * Send the loaded value to the backend too (every device of the namespace). Default false:
   * what a loader fetches is often the user's own, and stays in this browser (every MFE and tab).
   */
  sync?: boolean | undefined;
}

/** `set`'s options. */
export interface SetOptions {
  /** Default true: the backend gets it (every device of the namespace); false: this browser only. */
  sync?: boolean | undefined;
}

/** `getStats()`. */
export interface CacheStats {
  /** Values held: active + expired. */
  readonly size: number;
  readonly active: number;
  /** Values past their TTL, not yet collected. */
  readonly expired: number;
  /** This instance's reads (get, getOrFetch) that found a value. */
  readonly hits: number;
  readonly misses: number;
  /** hits / (hits + misses); 0 before any read. */
  readonly hitRate: number;
  /** Writes the backend has not acknowledged. */
  readonly pending: number;
}

/** What a UI shows about backend sync. */
export interface SyncStatus {
  readonly enabled: boolean;
  readonly online: boolean;
  readonly syncing: boolean;
  /** This instance polls for the whole origin. */
  readonly leader: boolean;
  /** Writes (and a clear) the backend has not acknowledged. */
  readonly pending: number;
  readonly failures: number;
  readonly lastError: string | null;
  readonly lastSyncedAt: number | null;
  readonly retryAt: number | null;
  /**
   * How other writers' changes arrive: `'open'` (this leader holds the event stream),
   * `'connecting'`, `'retrying'` (the stream dropped: polling until it reopens), `'unsupported'`
   * (the backend has no event stream: polling), `'follower'` (another tab leads) or `'off'`.
   */
  readonly realtime: 'off' | 'follower' | 'connecting' | 'open' | 'retrying' | 'unsupported';
  /**
   * `'off'` without a backend (`backendUrl: null`); `'absent'` when the backend answered that it
   * does not exist (`404`/`405`): nothing is sent until it is checked again (the next page load,
   * an `online` event, or every few minutes), and writes stay queued; `'on'` otherwise.
   */
  readonly backend: 'off' | 'on' | 'absent';
}

/** One entry as dev tools show it. */
export interface CacheEntryInfo {
  readonly key: string;
  readonly value: DeepReadonly<JsonValue>;
  /** ms since epoch; null: never expires. */
  readonly expiresAt: number | null;
  /** The write's timestamp (ms since epoch, hybrid logical clock). */
  readonly updatedAt: number;
  /** The `nodeId` of the instance that wrote it. */
  readonly writer: string;
  /** The writer's `app` option (the part of `writer` before `:`), or null. */
  readonly app: string | null;
  /** Not yet acknowledged by the backend. */
  readonly pending: boolean;
}

export class BackendSyncedCacheService {
  constructor(options?: CacheOptions);
  /** The options in force, defaults filled in (as index.js keeps them: no `storage`, no `headers`). */
  readonly options: {
    readonly prefix: string;
    readonly defaultTTL: number;
    readonly backendUrl: string | null;
    readonly syncInterval: number;
    readonly retryDelay: number;
    readonly maxRetries: number;
    readonly requestTimeout: number;
    readonly app: string | null;
    readonly logLevel: LogLevel;
    readonly realtime: 'auto' | 'off';
    readonly maxBatchBytes: number;
  };
  /** This instance's writer id. */
  readonly nodeId: string;
  /** How this instance reaches other tabs. */
  readonly tabLink: 'broadcast-channel' | 'storage-event' | 'none';
  /** Resolves once applied locally and persisted; rejects with a CacheError. */
  set<T extends AsJson<T>>(key: string, value: T, ttl?: Ttl, options?: SetOptions): Promise<void>;
  /** The value, or null when missing or expired; the same frozen object while unchanged. */
  get<T = JsonValue>(key: string): DeepReadonly<T> | null;
  /** When `key`'s value (expired or not) was written, in ms since epoch on this device's clock; null without one. */
  getUpdatedAt(key: string): number | null;
  /** Removes `key` (a tombstone); `sync: false` removes it in this browser only, never on the backend. */
  remove(key: string, options?: SetOptions): Promise<void>;
  clear(): Promise<void>;
  subscribe<T = JsonValue>(key: string, callback: (value: DeepReadonly<T> | null) => void): () => void;
  /** Every visible entry, sorted by key (for dev tools: walks the whole cache). */
  entries(): CacheEntryInfo[];
  /** Whether `key` has a value now (not counted in the hit rate). */
  has(key: string): boolean;
  /** Keys with a value, sorted; `pattern`: `*` any run, `?` one character, `\\` escapes. */
  keys(pattern?: string): string[];
  /** How many keys have a value. */
  size(): number;
  /** ms until `key` expires; null without a value; Infinity when it never expires. */
  getTimeToExpiry(key: string): number | null;
  getStats(): CacheStats;
  /** Removes every key matching (here, everywhere, and on the backend; `sync: false`: in this browser only); resolves to how many. */
  invalidate(keyOrPattern: string, options?: SetOptions): Promise<number>;
  /** The value, loaded once per key across the page's MFEs and the origin's tabs on a miss. */
  getOrFetch<T extends AsJson<T>>(key: string, loader: () => T | Promise<T>, options?: GetOrFetchOptions<T>): Promise<DeepReadonly<T>>;
  /** Like getOrFetch, never rejecting: failures resolve to `defaultValue` (default null). */
  getOrFetchWithFallback<T extends AsJson<T>>(
    key: string,
    loader: () => T | Promise<T>,
    options?: GetOrFetchOptions<T>,
  ): Promise<DeepReadonly<T> | null>;
  /** A view whose keys live under `name:`; with `{ sync: false }` its writes and loads stay in this browser unless a call says otherwise. */
  scope(name: string, options?: SetOptions): CacheScope;
  /** The backend sync status. */
  readonly syncStatus: SyncStatus;
  on(event: 'error', listener: (error: CacheError) => void): () => void;
  on(event: 'sync', listener: (status: SyncStatus) => void): () => void;
  /** Any key changed (set, removed, expired or cleared) here, in another MFE or another tab. */
  on(event: 'change', listener: (key: string) => void): () => void;
  off(event: 'error', listener: (error: CacheError) => void): void;
  off(event: 'sync', listener: (status: SyncStatus) => void): void;
  off(event: 'change', listener: (key: string) => void): void;
  dispose(): void;
}

/** `cache.scope(name)`: the same API over the keys under `name:` (given without it). */
export class CacheScope {
  readonly name: string;
  /** The instance it writes through. */
  readonly cache: BackendSyncedCacheService;
  set<T extends AsJson<T>>(key: string, value: T, ttl?: Ttl, options?: SetOptions): Promise<void>;
  get<T = JsonValue>(key: string): DeepReadonly<T> | null;
  has(key: string): boolean;
  remove(key: string, options?: SetOptions): Promise<void>;
  subscribe<T = JsonValue>(key: string, callback: (value: DeepReadonly<T> | null) => void): () => void;
  getTimeToExpiry(key: string): number | null;
  getOrFetch<T extends AsJson<T>>(key: string, loader: () => T | Promise<T>, options?: GetOrFetchOptions<T>): Promise<DeepReadonly<T>>;
  getOrFetchWithFallback<T extends AsJson<T>>(key: string, loader: () => T | Promise<T>, options?: GetOrFetchOptions<T>): Promise<DeepReadonly<T> | null>;
  /** Keys of this scope (without `name:`), matching `pattern` within it. */
  keys(pattern?: string): string[];
  size(): number;
  /** Invalidates keys of this scope only (default: all of them). */
  invalidate(pattern?: string, options?: SetOptions): Promise<number>;
  entries(): CacheEntryInfo[];
  /** A scope inside this one (`name:inner:`), with this one's `sync`. */
  scope(name: string): CacheScope;
  /** The instance's writer id. */
  readonly nodeId: string;
  /** The instance's backend sync status. */
  readonly syncStatus: SyncStatus;
  /** When `key`'s value was written (ms since epoch); null without one. */
  getUpdatedAt(key: string): number | null;
  on(event: 'error', listener: (error: CacheError) => void): () => void;
  on(event: 'sync', listener: (status: SyncStatus) => void): () => void;
  /** A key of this scope changed (given without `name:`). */
  on(event: 'change', listener: (key: string) => void): () => void;
}

/** An in-memory Storage (SSR, workers, tests). */
export class MemoryStorage implements StorageLike {
  readonly length: number;
  key(index: number): string | null;
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
  clear(): void;
}

export default BackendSyncedCacheService;
