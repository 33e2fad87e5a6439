import type { ReactNode } from 'react';
import type { AsJson, BackendSyncedCacheService, CacheError, CacheScope, CacheOptions, DeepReadonly, GetOrFetchOptions, JsonValue, SyncStatus, Ttl } from './index.js';

/**
 * Options of the page's default instance; call before the first hook renders. Several MFEs sharing
 * one copy of the package may each call it: with the same options it is a no-op, with others it
 * throws a `CacheError` (`INVALID_OPTION`) naming the options that differ.
 */
export function configureDefaultCache(options: CacheOptions): void;
/** The page's default instance, created on first use (the hooks never create it on the server). */
export function getDefaultCache(): BackendSyncedCacheService;
/** Makes `cache` (an instance, or a scope of one: the hooks' keys are then the scope's) what the hooks below it use. */
export function SharedCacheProvider(props: { cache: BackendSyncedCacheService | CacheScope; children?: ReactNode }): ReactNode;

export interface HookOptions {
  /** The instance (or scope) to use instead of the provider's or the page's default. */
  cache?: BackendSyncedCacheService | CacheScope | undefined;
}

export interface SharedCacheHookOptions extends HookOptions {
  /** `setValue` sends the value to the backend (default true); false keeps it in this browser. */
  sync?: boolean | undefined;
}

/** What `setValue` takes: a value, or an updater of the current one (`C`). */
export type SetSharedValue<T, C> = (next: T | DeepReadonly<T> | ((current: C) => T | DeepReadonly<T>)) => Promise<void>;

/**
 * `[select(value), setValue]`: the component re-renders only when the selected part changes (a
 * selection holding the same data as the last one keeps its identity).
 */
export function useSharedCache<T extends AsJson<T>, S>(
  key: string,
  initialValue: T,
  ttl: Ttl | undefined,
  options: SharedCacheHookOptions & { select: (value: DeepReadonly<T>) => S },
): [S, SetSharedValue<T, DeepReadonly<T>>];
/** The same with no initial value: `select` gets null while there is none. */
export function useSharedCache<T extends AsJson<T>, S>(
  key: string,
  initialValue: null | undefined,
  ttl: Ttl | undefined,
  options: SharedCacheHookOptions & { select: (value: DeepReadonly<T> | null) => S },
): [S, SetSharedValue<T, DeepReadonly<T> | null>];
/**
 * `[value, setValue]` for `key`; `value` is `initialValue` while there is none. `setValue` takes a
 * value or an updater (values read from the cache, deeply readonly, are accepted back) and returns
 * the `set` promise; its failures also reach the cache's 'error' listeners, so a call left
 * unawaited in an event handler is never an unhandled rejection. `T` is inferred widened, as with
 * `useState` (`0` gives `number`, not `0`): the constraint checks that the value is JSON without
 * making TypeScript keep the literal type.
 */
export function useSharedCache<T extends AsJson<T>>(
  key: string,
  initialValue: T,
  ttl?: Ttl,
  options?: SharedCacheHookOptions,
): [DeepReadonly<T>, SetSharedValue<T, DeepReadonly<T>>];
/** The same with no initial value: `value` is null while there is none. */
export function useSharedCache<T extends AsJson<T> = JsonValue>(
  key: string,
  initialValue?: null,
  ttl?: Ttl,
  options?: SharedCacheHookOptions,
): [DeepReadonly<T> | null, SetSharedValue<T, DeepReadonly<T> | null>];

/** `setValue` of `key` alone: a component that only writes it never re-renders on its changes. */
export function useSetSharedCache<T extends AsJson<T> = JsonValue>(key: string, ttl?: Ttl, options?: SharedCacheHookOptions): SetSharedValue<T, DeepReadonly<T> | null>;

/** The backend sync status, re-rendering when it changes. */
export function useSyncStatus(options?: HookOptions): SyncStatus;

/** A query key: a string, or an array of JSON values (one cache key: see `queryKeyOf`). */
export type QueryKey = string | readonly JsonValue[];

/** The cache key of a query key: a string as it is; an array as its JSON, objects' fields sorted. */
export function queryKeyOf(queryKey: QueryKey): string;

export interface SharedQueryOptions<T, S = DeepReadonly<T>> extends Omit<GetOrFetchOptions<T>, 'refresh'>, HookOptions {
  /** false: no load (what the cache holds is still shown). Default true. */
  enabled?: boolean | undefined;
  /** What `data` is made of the value; the component re-renders only when it changes. */
  select?: ((value: DeepReadonly<T>) => S) | undefined;
  /** Shown, as a value, while the cache has none (it is not stored; the load still runs). */
  initialData?: T | (() => T) | undefined;
  /** Shown while there is no value, flagged `isPlaceholderData`; a function gets the last data shown (e.g. of the previous key). */
  placeholderData?: T | ((previous: DeepReadonly<T> | null) => T | null | undefined) | undefined;
  /** Reload when the page is shown again. Default false: a value is fresh until its TTL. */
  refetchOnWindowFocus?: boolean | undefined;
  /** Reload when the browser is back online (once for the origin). Default false. */
  refetchOnReconnect?: boolean | undefined;
  /** Reload when the value is this many ms old: once per interval for the origin, whichever tab. */
  refetchInterval?: number | undefined;
}

export interface SharedQueryResult<T, S = DeepReadonly<T>> {
  /** The value (selected); an expired one while revalidating (`isStale`); else initialData or placeholderData; null before the first load. */
  readonly data: S | null;
  /** Why the last load failed (cleared by the next one). */
  readonly error: CacheError | null;
  /** 'pending' while there is no data, 'error' after a failed load (data may still be shown), else 'success'. */
  readonly status: 'pending' | 'error' | 'success';
  readonly isPending: boolean;
  readonly isSuccess: boolean;
  readonly isError: boolean;
  /** A load is running or about to. */
  readonly isFetching: boolean;
  /** The first load: `isPending && isFetching`. */
  readonly isLoading: boolean;
  /** `data` has expired and a fresh value is loading. */
  readonly isStale: boolean;
  /** `data` is `placeholderData`. */
  readonly isPlaceholderData: boolean;
  /** When the value shown was written (ms since epoch, this device's clock), in whichever tab; 0 without one. */
  readonly dataUpdatedAt: number;
  /** Loads again now, even on a hit; resolves to the value, or null when it fails (see `error`). */
  refetch(): Promise<DeepReadonly<T> | null>;
}

/** Loads `queryKey` through `cache.getOrFetch` (one load across MFEs and tabs) and follows it. */
export function useSharedQuery<T extends AsJson<T>, S = DeepReadonly<T>>(
  queryKey: QueryKey,
  loader: () => T | Promise<T>,
  options?: SharedQueryOptions<T, S>,
): SharedQueryResult<T, S>;

/** `useSharedQuery` for Suspense: suspends while there is no value; a failed first load goes to the error boundary. */
export function useSuspenseSharedQuery<T extends AsJson<T>, S = DeepReadonly<T>>(
  queryKey: QueryKey,
  loader: () => T | Promise<T>,
  options?: Omit<SharedQueryOptions<T, S>, 'enabled' | 'placeholderData'>,
): SharedQueryResult<T, S> & { readonly data: S };

export interface SharedMutationOptions<T, V> extends SharedCacheHookOptions, MutationCallbacks<T, V> {
  /**
   * The value to show at once, everywhere in this browser, while the call runs. Pure: when an
   * overlapping mutation of the key settles, it is applied again over that one's outcome.
   */
  optimistic?: ((current: DeepReadonly<T> | null, variables: V) => T) | undefined;
  /** The TTL of what is written. */
  ttl?: Ttl | undefined;
}

/**
 * Called once the mutation settled and the cache holds its outcome; awaited before `mutateAsync`
 * resolves. One that throws is reported as an event listener's error; the outcome stands.
 */
export interface MutationCallbacks<T, V> {
  onSuccess?: ((result: T | void, variables: V) => unknown) | undefined;
  onError?: ((error: CacheError, variables: V) => unknown) | undefined;
  onSettled?: ((result: T | void | undefined, error: CacheError | null, variables: V) => unknown) | undefined;
}

export interface SharedMutationResult<T, V> {
  /** Runs the mutation; a failure goes to `error` (and the cache's 'error' listeners). `callbacks` run after the hook's. */
  mutate(variables: V, callbacks?: MutationCallbacks<T, V>): void;
  /** Runs the mutation; resolves to the call's result, rejects with its failure. */
  mutateAsync(variables: V, callbacks?: MutationCallbacks<T, V>): Promise<T | void>;
  /** The variables of the last mutation started (undefined after `reset`). */
  readonly variables: V | undefined;
  /** Back to `idle`. */
  reset(): void;
  readonly status: 'idle' | 'pending' | 'error' | 'success';
  /** The last successful call's result. */
  readonly data: T | void | undefined;
  readonly error: CacheError | null;
  readonly isIdle: boolean;
  readonly isPending: boolean;
  readonly isSuccess: boolean;
  readonly isError: boolean;
}

/**
 * A write through a server call: `mutateFn(variables)` gives the new value of `key` (stored for
 * everyone) or nothing (the optimistic value is then kept). With `optimistic`, that value shows at
 * once in every MFE and tab, and its change is taken back there if the call fails (the rollback
 * stays in this browser; a write from before that was still waiting for the backend goes as made).
 */
export function useSharedMutation<T extends AsJson<T>, V = void>(
  key: string,
  mutateFn: (variables: V) => T | void | Promise<T | void>,
  options?: SharedMutationOptions<T, V>,
): SharedMutationResult<T, V>;
