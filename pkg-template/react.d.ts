import type { ReactNode } from 'react';
import type { BackendSyncedCacheService, CacheOptions, DeepReadonly, JsonValue, SyncStatus } from './index.js';

/** Options of the page's default instance; call before the first hook renders. */
export function configureDefaultCache(options: CacheOptions): void;
/** The page's default instance (created on first use; never on the server). */
export function getDefaultCache(): BackendSyncedCacheService;
/** Makes `cache` the instance the hooks below it use. */
export function SharedCacheProvider(props: { cache: BackendSyncedCacheService; children?: ReactNode }): ReactNode;

export interface HookOptions {
  /** The instance to use instead of the provider's or the page's default. */
  cache?: BackendSyncedCacheService;
}

/** `[value, setValue]` for `key`; `setValue` returns the `set` promise. */
export function useSharedCache<T extends JsonValue>(
  key: string,
  initialValue: T,
  ttl?: number,
  options?: HookOptions,
): [DeepReadonly<T>, (next: T | ((current: DeepReadonly<T>) => T)) => Promise<void>];
export function useSharedCache<T extends JsonValue = JsonValue>(
  key: string,
  initialValue?: null,
  ttl?: number,
  options?: HookOptions,
): [DeepReadonly<T> | null, (next: T | ((current: DeepReadonly<T> | null) => T)) => Promise<void>];

/** The backend sync status, re-rendering when it changes. */
export function useSyncStatus(options?: HookOptions): SyncStatus;
