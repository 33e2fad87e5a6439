// React bindings: `useSharedCache(key, initialValue, ttl)` and `useSyncStatus()`, built on
// useSyncExternalStore, so every root (each MFE mounts its own) reads one consistent store and a
// component re-renders only when its own key changes.
import { createContext, createElement, useCallback, useContext, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { BackendSyncedCacheService, CacheError, READ_STALE } from './index.js';

const CacheContext = createContext(null);
const IS_BROWSER = typeof window !== 'undefined' && typeof document !== 'undefined';

// The options of the first `configureDefaultCache` call: every later call must agree with them.
let defaultOptions = null;
let defaultCache = null;

/** @param {unknown} a @param {unknown} b */
function sameOption(a, b) {
  if (Object.is(a, b)) return true;
  // Plain data (headers given as an object literal, say) is the same when it holds the same,
  // in any key order; functions and instances (logger, storage) only when they are the same object.
  const plain = (v) => v !== null && typeof v === 'object' && (Array.isArray(v) || Object.getPrototypeOf(v) === Object.prototype);
  if (!plain(a) || !plain(b) || Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && sameOption(a[k], b[k]));
}

/** The names of the options on which `a` and `b` differ (an undefined option is not given). */
function differingOptions(a, b) {
  const names = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...names].filter((name) => !sameOption(a[name], b[name])).sort();
}

/**
 * Options of the page's default instance (used by hooks without a provider or `cache` option).
 * Several MFEs sharing one copy of the package (a Module Federation singleton) may each call it:
 * with the same options it is a no-op; with others it throws INVALID_OPTION naming them.
 */
export function configureDefaultCache(options = {}) {
  if (options === null || typeof options !== 'object') throw new CacheError('INVALID_OPTION', 'configureDefaultCache takes an options object');
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  if (defaultOptions === null && defaultCache === null) {
    defaultOptions = given;
    return;
  }
  const differing = differingOptions(defaultOptions ?? {}, given);
  if (differing.length) {
    throw new CacheError(
      'INVALID_OPTION',
      `configureDefaultCache: the page's default cache ${defaultCache ? 'exists' : 'is configured'} with other options (${differing.join(', ')}); ` +
        'configure it once (in the host) or with the same options in every MFE, or give an MFE its own instance with SharedCacheProvider',
    );
  }
}

/** The page's default instance, created on first use (never on the server). */
export function getDefaultCache() {
  defaultCache ??= new BackendSyncedCacheService(defaultOptions ?? {});
  return defaultCache;
}

/** Makes `cache` the instance the hooks below it use. */
export function SharedCacheProvider({ cache, children }) {
  return createElement(CacheContext.Provider, { value: cache }, children);
}

// False in the server's render and in the render that hydrates it, true in every other: what a
// hook shows from the cache outside useSyncExternalStore (which has its own server snapshot) waits
// for it, so that hydrating renders what the server did, and the stored values come right after.
const never = () => () => {};
const useHydrated = () => useSyncExternalStore(never, () => true, () => false);

function useCache(explicit) {
  const fromContext = useContext(CacheContext);
  // On the server there is no storage to share and no tab to talk to: hooks render initial values.
  return explicit ?? fromContext ?? (IS_BROWSER ? getDefaultCache() : null);
}

/**
 * `[value, setValue]` for `key`: `value` is the cached value or `initialValue` while there is none;
 * `setValue(valueOrUpdater)` returns the `set` promise. `options.cache` picks an instance;
 * `options.sync: false` keeps what it writes in this browser (never sent to the backend).
 */
export function useSharedCache(key, initialValue = null, ttl, options) {
  const cache = useCache(options?.cache);
  const sync = options?.sync;
  // The first initial value is kept: a literal passed on every render must not look like a change.
  const initial = useRef(initialValue).current;
  const subscribe = useCallback((onChange) => (cache ? cache.subscribe(key, onChange) : () => {}), [cache, key]);
  const read = () => {
    const value = cache ? cache.get(key) : null;
    return value === null ? initial : value;
  };
  const value = useSyncExternalStore(subscribe, read, () => initial);
  const setValue = useCallback(
    (next) => {
      if (!cache) return Promise.reject(new CacheError('INVALID_ARGUMENT', 'useSharedCache: there is no cache on the server; set values in the browser'));
      const current = cache.get(key);
      const resolved = typeof next === 'function' ? next(current === null ? initial : current) : next;
      return cache.set(key, resolved, ttl, sync === undefined ? undefined : { sync });
    },
    [cache, key, ttl, initial, sync],
  );
  return [value, setValue];
}

const SERVER_STATUS = Object.freeze({ enabled: false, online: false, syncing: false, leader: false, pending: 0, failures: 0, lastError: null, lastSyncedAt: null, retryAt: null, realtime: 'off', backend: 'off' });

/** The backend sync status (`cache.syncStatus`), re-rendering when it changes. */
export function useSyncStatus(options) {
  const cache = useCache(options?.cache);
  const latest = useRef(null);
  const subscribe = useCallback(
    (onChange) => {
      if (!cache) return () => {};
      latest.current = null;
      return cache.on('sync', (status) => {
        latest.current = status;
        onChange();
      });
    },
    [cache],
  );
  const read = () => {
    if (!cache) return SERVER_STATUS;
    latest.current ??= cache.syncStatus;
    return latest.current;
  };
  return useSyncExternalStore(subscribe, read, () => SERVER_STATUS);
}

/**
 * `{ data, error, isLoading, isStale, refetch }` for `key`, loaded through `cache.getOrFetch` (one
 * load per key across the page's MFEs and the origin's tabs) and kept in the same store as
 * `useSharedCache`. An expired value still held is shown (`isStale`) while the new one loads,
 * unless `staleWhileRevalidate: false`. After a failure it waits for `refetch()` (or a new key).
 * Options: those of getOrFetch, plus `cache`.
 */
export function useSharedQuery(key, loader, options = {}) {
  const cache = useCache(options.cache);
  const latest = useRef(null);
  latest.current = { loader, options };
  const subscribe = useCallback((onChange) => (cache ? cache.subscribe(key, onChange) : () => {}), [cache, key]);
  const fresh = useSyncExternalStore(subscribe, () => (cache ? cache.get(key) : null), () => null);
  const shown = useHydrated() ? cache : null;
  // Read in render: its identity is stable while unchanged, and any change to the key (expiry
  // included) re-renders through the subscription above.
  const stale = fresh === null && shown && options.staleWhileRevalidate !== false ? (shown[READ_STALE]?.(key) ?? null) : null;
  const [run, setRun] = useState({ key: null, loading: false, error: null });

  const load = useCallback(
    (refresh) => {
      if (!cache) return Promise.resolve(null);
      setRun({ key, loading: true, error: null });
      const { cache: _ignored, staleWhileRevalidate: _shownHere, ...loadOptions } = latest.current.options;
      return cache.getOrFetch(key, () => latest.current.loader(), { ...loadOptions, refresh }).then(
        (value) => {
          setRun({ key, loading: false, error: null });
          return value;
        },
        (error) => {
          setRun({ key, loading: false, error });
          return null;
        },
      );
    },
    [cache, key],
  );

  const missing = fresh === null;
  const failed = run.key === key && run.error !== null;
  // Not from the hydration render: the value in storage shows right after it, with no load.
  useEffect(() => {
    if (shown && missing && !failed) load(false);
  }, [shown, load, missing, failed]);

  const refetch = useCallback(() => load(true), [load]);
  return {
    data: fresh ?? stale,
    error: run.key === key ? run.error : null,
    isLoading: shown !== null && ((run.key === key && run.loading) || (missing && !failed)),
    isStale: missing && stale !== null,
    refetch,
  };
}
