/**
 * A JSON value: what the cache stores. Arrays may be readonly, so values read from the cache
 * (deeply frozen) can be written back.
 */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { [key: string]: JsonValue };

/** Deeply read-only view of a value returned by the cache (values are frozen). */
export type DeepReadonly<T> = T extends readonly (infer U)[]
  ? ReadonlyArray<DeepReadonly<U>>
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** Every `type` an error of this package can have. */
export type CacheErrorType =
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
  | 'INTERNAL';

/** The one error type of the whole API. */
export class CacheError extends Error {
  readonly name: 'CacheError';
  readonly type: CacheErrorType;
  /** Whether the same operation may succeed later without changing its input. */
  readonly retryable: boolean;
  /** The key concerned, where there is one. */
  readonly key?: string;
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
  /** Seconds; default 3600; 0 never expires. */
  defaultTTL?: number | undefined;
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
  };
  /** This instance's writer id. */
  readonly nodeId: string;
  /** How this instance reaches other tabs. */
  readonly tabLink: 'broadcast-channel' | 'storage-event' | 'none';
  /** Resolves once applied locally and persisted; rejects with a CacheError. */
  set<T extends JsonValue>(key: string, value: T, ttl?: number): Promise<void>;
  /** The value, or null when missing or expired; the same frozen object while unchanged. */
  get<T = JsonValue>(key: string): DeepReadonly<T> | null;
  remove(key: string): Promise<void>;
  clear(): Promise<void>;
  subscribe<T = JsonValue>(key: string, callback: (value: DeepReadonly<T> | null) => void): () => void;
  /** Every visible entry, sorted by key (for dev tools: walks the whole cache). */
  entries(): CacheEntryInfo[];
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
