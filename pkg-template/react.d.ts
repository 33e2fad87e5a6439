import type { ReactNode } from 'react';
import type { BackendSyncedCacheService, CacheError, CacheOptions, DeepReadonly, GetOrFetchOptions, JsonValue, SyncStatus } from './index.js';

/**
 * Options of the page's default instance; call before the first hook renders. Several MFEs sharing
 * one copy of the package may each call it: with the same options it is a no-op, with others it
 * throws a `CacheError` (`INVALID_OPTION`) naming the options that differ.
 */
export function configureDefaultCache(options: CacheOptions): void;
/** The page's default instance, created on first use (the hooks never create it on the server). */
export function getDefaultCache(): BackendSyncedCacheService;
/** Makes `cache` the instance the hooks below it use. */
export function SharedCacheProvider(props: { cache: BackendSyncedCacheService; children?: ReactNode }): ReactNode;

export interface HookOptions {
  /** The instance to use instead of the provider's or the page's default. */
  cache?: BackendSyncedCacheService | undefined;
}

export interface SharedCacheHookOptions extends HookOptions {
  /** `setValue` sends the value to the backend (default true); false keeps it in this browser. */
  sync?: boolean | undefined;
}

/**
 * `[value, setValue]` for `key`; `value` is `initialValue` while there is none. `setValue` takes a
 * value or an updater (values read from the cache, deeply readonly, are accepted back) and returns
 * the `set` promise. `T` is inferred widened, as with `useState` (`0` gives `number`, not `0`):
 * the constraint checks that the value is JSON without making TypeScript keep the literal type.
 */
export function useSharedCache<T extends ([T] extends [JsonValue] ? unknown : JsonValue)>(
  key: string,
  initialValue: T,
  ttl?: number,
  options?: SharedCacheHookOptions,
): [DeepReadonly<T>, (next: T | DeepReadonly<T> | ((current: DeepReadonly<T>) => T | DeepReadonly<T>)) => Promise<void>];
/** The same with no initial value: `value` is null while there is none. */
export function useSharedCache<T extends JsonValue = JsonValue>(
  key: string,
  initialValue?: null,
  ttl?: number,
  options?: SharedCacheHookOptions,
): [
  DeepReadonly<T> | null,
  (next: T | DeepReadonly<T> | ((current: DeepReadonly<T> | null) => T | DeepReadonly<T>)) => Promise<void>,
];

/** The backend sync status, re-rendering when it changes. */
export function useSyncStatus(options?: HookOptions): SyncStatus;

export interface SharedQueryResult<T> {
  /** The value; an expired one while revalidating (`isStale`); null before the first load. */
  readonly data: DeepReadonly<T> | null;
  /** Why the last load failed (cleared by the next one). */
  readonly error: CacheError | null;
  /** A load is running or about to. */
  readonly isLoading: boolean;
  /** `data` has expired and a fresh value is loading. */
  readonly isStale: boolean;
  /** Loads again now, even on a hit; resolves to the value, or null when it fails (see `error`). */
  refetch(): Promise<DeepReadonly<T> | null>;
}

/** Loads `key` through `cache.getOrFetch` (one load across MFEs and tabs) and follows it. */
export function useSharedQuery<T extends JsonValue>(
  key: string,
  loader: () => T | Promise<T>,
  options?: GetOrFetchOptions<T> & HookOptions,
): SharedQueryResult<T>;
