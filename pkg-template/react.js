// React bindings — `useSharedCache`, `useSetSharedCache`, `useSharedQuery` (and its Suspense
// variant), `useSharedMutation`, `useSyncStatus` — built on useSyncExternalStore, so every root
// (each MFE mounts its own) reads one consistent store and a component re-renders only when its
// own key (or the part of it it selects) changes.
import { createContext, createElement, useCallback, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import { BackendSyncedCacheService, CacheError, READ_STALE, REPORT, WRITTEN } from './index.js';
import { describe, reportThrown } from './errors.js';

const CacheContext = createContext(null);
const IS_BROWSER = typeof window !== 'undefined' && typeof document !== 'undefined';

// The options of the first `configureDefaultCache` call: every later call must agree with them.
let defaultOptions = null;
let defaultCache = null;

/** @param {unknown} a @param {unknown} b */
function sameData(a, b) {
  if (Object.is(a, b)) return true;
  // Plain data (headers given as an object literal, a selection) is the same when it holds the
  // same, in any key order; functions and instances (logger, storage) only when they are the same
  // object.
  const plain = (v) => v !== null && typeof v === 'object' && (Array.isArray(v) || Object.getPrototypeOf(v) === Object.prototype);
  if (!plain(a) || !plain(b) || Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && sameData(a[k], b[k]));
}

/** The names of the options on which `a` and `b` differ (an undefined option is not given). */
function differingOptions(a, b) {
  const names = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...names].filter((name) => !sameData(a[name], b[name])).sort();
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
 * `select(value)`, computed again only when the value or `select` changes, and the earlier result
 * kept while the new one holds the same data: a component re-renders only when its part changes.
 */
function selecting(memo, value, select) {
  if (!select) return value;
  const last = memo.current;
  if (last && last.value === value && last.select === select) return last.result;
  const result = select(value);
  memo.current = { value, select, result: last && sameData(last.result, result) ? last.result : result };
  return memo.current.result;
}

/**
 * The setter of `key` on `cache`: a value, or an updater of the current one (`fallback` while
 * there is none). It returns the `set` promise; its failures also reach the cache's 'error'
 * listeners (storage failures already do), so a setter called from an event handler and not
 * awaited never makes an unhandled rejection, nor a silent one.
 */
function setterOf(cache, key, ttl, sync, fallback) {
  return (next) => {
    if (!cache) return Promise.reject(new CacheError('INVALID_ARGUMENT', 'there is no cache on the server; set values in the browser'));
    let promise;
    try {
      const current = cache.get(key);
      promise = cache.set(key, typeof next === 'function' ? next(current === null ? fallback : current) : next, ttl, sync === undefined ? undefined : { sync });
    } catch (e) {
      promise = Promise.reject(e);
    }
    promise.catch((e) => e instanceof CacheError && e.type.startsWith('INVALID') && cache[REPORT]?.(e));
    return promise;
  };
}

/**
 * `[value, setValue]` for `key`: `value` is the cached value or `initialValue` while there is none
 * (`select(value)` with `options.select`, re-rendering only when that part changes);
 * `setValue(valueOrUpdater)` returns the `set` promise. `options.cache` picks an instance;
 * `options.sync: false` keeps what it writes in this browser (never sent to the backend).
 */
export function useSharedCache(key, initialValue = null, ttl, options) {
  const cache = useCache(options?.cache);
  const sync = options?.sync;
  // The first initial value is kept: a literal passed on every render must not look like a change.
  const initial = useRef(initialValue).current;
  const memo = useRef(null);
  const select = options?.select;
  const subscribe = useCallback((onChange) => (cache ? cache.subscribe(key, onChange) : () => {}), [cache, key]);
  const read = () => {
    const value = cache ? cache.get(key) : null;
    return selecting(memo, value === null ? initial : value, select);
  };
  const value = useSyncExternalStore(subscribe, read, () => selecting(memo, initial, select));
  const setValue = useMemo(() => setterOf(cache, key, ttl, sync, initial), [cache, key, ttl, initial, sync]);
  return [value, setValue];
}

/** `setValue` of `key` alone, for components that write and never show it: they never re-render on its changes. */
export function useSetSharedCache(key, ttl, options) {
  const cache = useCache(options?.cache);
  const sync = options?.sync;
  return useMemo(() => setterOf(cache, key, ttl, sync, null), [cache, key, ttl, sync]);
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
 * The cache key of a query key: a string as it is; an array as its JSON with the fields of each
 * object in sorted order, so that `['todos', { page: 1, q: 'x' }]` is one key however it is written.
 */
export function queryKeyOf(queryKey) {
  if (typeof queryKey === 'string') return queryKey;
  if (!Array.isArray(queryKey)) throw new CacheError('INVALID_KEY', `a query key is a string or an array, got ${describe(queryKey)}`);
  const sorted = (_, v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v);
  const key = JSON.stringify(queryKey, sorted);
  if (key === undefined) throw new CacheError('INVALID_KEY', 'a query key array must be JSON');
  return key;
}

// Options of useSharedQuery that are the hook's own: the rest go to getOrFetch.
const HOOK_ONLY = ['cache', 'staleWhileRevalidate', 'enabled', 'select', 'initialData', 'placeholderData', 'refetchOnWindowFocus', 'refetchOnReconnect', 'refetchInterval'];
/** The options of a query that are getOrFetch's. */
const loadOptionsOf = (options) => Object.fromEntries(Object.entries(options).filter(([name]) => !HOOK_ONLY.includes(name)));

/**
 * A query as TanStack Query users know it, for `queryKey` (a string, or an array: see
 * `queryKeyOf`), loaded through `cache.getOrFetch` (one load per key across the page's MFEs and the
 * origin's tabs) and kept in the same store as `useSharedCache`. An expired value still held is
 * shown (`isStale`) while the new one loads, unless `staleWhileRevalidate: false`. After a failure
 * it waits for `refetch()` (or another key) instead of looping.
 */
export function useSharedQuery(queryKey, loader, options = {}) {
  const key = queryKeyOf(queryKey);
  const cache = useCache(options.cache);
  const enabled = options.enabled !== false;
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
      return cache.getOrFetch(key, () => latest.current.loader(), { ...loadOptionsOf(latest.current.options), refresh }).then(
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
    if (shown && enabled && missing && !failed) load(false);
  }, [shown, enabled, load, missing, failed]);
  useRefetching(shown, enabled && key, load, options);

  // What is shown: the cached value (or an expired one), else initialData, else placeholderData
  // (given the last data shown, e.g. of the previous key).
  const previous = useRef(null);
  const real = fresh ?? stale;
  const initial = real === null ? valueOf(options.initialData) : undefined;
  const cached = real ?? initial ?? null;
  const placeholder = cached === null ? valueOf(options.placeholderData, previous.current) : undefined;
  const raw = cached ?? placeholder ?? null;
  const memo = useRef(null);
  const data = raw === null ? null : selecting(memo, raw, options.select);
  useEffect(() => {
    if (cached !== null) previous.current = cached;
  });

  // Read from the core when the value shown changes, not on every render.
  const dataUpdatedAt = useMemo(() => (real !== null && shown?.getUpdatedAt(key)) || 0, [real, shown, key]);
  const error = run.key === key ? run.error : null;
  const isFetching = shown !== null && enabled && ((run.key === key && run.loading) || (missing && !failed));
  const status = error ? 'error' : raw !== null ? 'success' : 'pending';
  const refetch = useCallback(() => load(true), [load]);
  return {
    data,
    error,
    status,
    isPending: status === 'pending',
    isSuccess: status === 'success',
    isError: status === 'error',
    isFetching,
    isLoading: status === 'pending' && isFetching,
    isStale: missing && stale !== null,
    isPlaceholderData: cached === null && raw !== null,
    dataUpdatedAt,
    refetch,
  };
}

// Optimistic mutations of one key that overlap form a chain: what the page shows is each one's
// `optimistic` applied in turn over the value they all started from (`base`). When one settles,
// `base` moves to its outcome (success) or stays (failure), and the ones still running are applied
// again over it, as Replicache rebases pending mutations: a failure takes back its own change and
// no other. `mine` is the stamp of the chain's last write, so a write by anyone else ends it.
// The chains belong to the page, not to this module: MFEs that each bundle their own copy of this
// entry (and of the package) chain their mutations of a key with each other's. A chain is filed
// under the cache's prefix and the key's full name (a scope's keys live under `name:`).
const CHAINS = Symbol.for('mfe-shared-cache.mutationChains.v1');

/** @returns {Map<string, { base: unknown, running: { optimistic: Function, variables: unknown }[], mine: unknown[] | null }>} */
function pageChains() {
  if (!globalThis[CHAINS]) Object.defineProperty(globalThis, CHAINS, { value: new Map(), configurable: true });
  return globalThis[CHAINS];
}

function chainId(cache, key) {
  const instance = cache.cache ?? cache;
  return `${instance.options.prefix}\u0000${instance === cache ? key : `${cache.name}:${key}`}`;
}

function ownsKey(cache, key, chain) {
  const now = cache[WRITTEN]?.(key);
  return chain.mine !== null && !!now && now[0] === chain.mine[0] && now[1] === chain.mine[1];
}

/**
 * A write through a server call, as TanStack Query's useMutation: `mutate(variables)` runs
 * `mutateFn(variables)`; with `optimistic(current, variables)` its value is written at once,
 * kept in this browser (every MFE and tab shows it) until the call succeeds, then the call's
 * result (or, when it gives undefined, the optimistic value) is written for everyone (`sync`,
 * default true). When the call fails, its optimistic change is taken back everywhere it was seen
 * (the others still running are applied again), unless the key was written again meanwhile.
 * `mutate` reports failures in `error` (and to 'error' listeners), `mutateAsync` rejects with them.
 */
export function useSharedMutation(key, mutateFn, options = {}) {
  const cache = useCache(options.cache);
  const latest = useRef(null);
  latest.current = { mutateFn, options };
  const [state, setState] = useState({ status: 'idle', data: undefined, error: null, variables: undefined });
  const mutateAsync = useCallback(
    async (variables, calls) => {
      if (!cache) throw new CacheError('INVALID_ARGUMENT', 'there is no cache on the server; mutate in the browser');
      const { mutateFn: run, options: o } = latest.current;
      // The hook's callback, then the call's, each awaited; one that throws is reported the way
      // an event listener's error is, and the mutation's outcome stands.
      const callback = async (name, ...args) => {
        for (const f of [o[name], calls?.[name]]) {
          try {
            if (typeof f === 'function') await f(...args);
          } catch (e) {
            reportThrown(e);
          }
        }
      };
      const sync = o.sync === undefined ? undefined : { sync: o.sync };
      // For this browser only: a removal sent to the backend would delete what another device
      // wrote there meanwhile. A write from before that still waits for the backend stays in the
      // outbox under these and goes as it was made.
      const here = { sync: false };
      setState({ status: 'pending', data: undefined, error: null, variables });
      const chains = pageChains();
      const id = chainId(cache, key);
      let chain = null;
      let step = null;
      let shown = false;
      // This mutation out of its chain, and the chain out of the map once nothing runs in it.
      const leave = () => {
        if (chain?.running.includes(step)) chain.running.splice(chain.running.indexOf(step), 1);
        if (chain && chain.running.length === 0 && chains.get(id) === chain) chains.delete(id);
      };
      // Takes this mutation out of its chain, stores `confirmed` (if any) as its outcome, and
      // shows the ones still running over what is confirmed; all in one task, before any await.
      const settle = (confirmed) => {
        const owned = chain !== null && ownsKey(cache, key, chain);
        leave();
        const writes = [];
        if (confirmed !== undefined) {
          writes.push(cache.set(key, confirmed, o.ttl, sync));
          // Stored (the key's stamp moved; a value that is not JSON is not): the chain's new base.
          if (owned && !ownsKey(cache, key, chain)) chain.base = confirmed;
        }
        if (owned && (chain.running.length > 0 || confirmed === undefined)) {
          let value = chain.base;
          try {
            value = chain.running.reduce((v, r) => r.optimistic(v, r.variables), chain.base);
          } catch (e) {
            // An `optimistic` that threw when applied again: what is confirmed shows.
            reportThrown(e);
          }
          writes.push(value === null ? cache.remove(key, here) : cache.set(key, value, o.ttl, here));
          chain.mine = cache[WRITTEN]?.(key) ?? null;
        }
        return Promise.all(writes);
      };
      let result;
      try {
        if (o.optimistic) {
          chain = chains.get(id);
          if (!chain || !ownsKey(cache, key, chain)) chains.set(id, (chain = { base: cache.get(key), running: [], mine: null }));
          step = { optimistic: o.optimistic, variables };
          const written = cache.set(key, o.optimistic(cache.get(key), variables), o.ttl, here);
          chain.running.push(step);
          // Read before awaiting: the write is in when `set` returns, and a second mutation of
          // the key started in the same task must not be taken for this one.
          chain.mine = cache[WRITTEN]?.(key) ?? null;
          await written;
        }
        shown = true;
        result = await run(variables);
        // The call's result, or its optimistic change over what is confirmed (what shows, when
        // it is the only one running), now for everyone.
        const owned = chain !== null && ownsKey(cache, key, chain);
        const alone = owned && chain.running.length === 1;
        await settle((result !== undefined ? result : alone ? cache.get(key) : owned ? step.optimistic(chain.base, variables) : null) ?? undefined);
        setState({ status: 'success', data: result, error: null, variables });
      } catch (cause) {
        // An optimistic value that could not be shown (`optimistic` threw, or gave no JSON) is
        // not taken back: there is nothing of it to take.
        if (shown) await settle(undefined);
        else leave();
        const error = cause instanceof CacheError ? cause : new CacheError('FETCH_FAILED', `the mutation of ${describe(key)} failed: ${cause?.message ?? cause}`, { key, cause });
        setState({ status: 'error', data: undefined, error, variables });
        await callback('onError', error, variables);
        await callback('onSettled', undefined, error, variables);
        throw error;
      }
      await callback('onSuccess', result, variables);
      await callback('onSettled', result, null, variables);
      return result;
    },
    [cache, key],
  );
  const mutate = useCallback((variables, calls) => void mutateAsync(variables, calls).catch((e) => cache?.[REPORT]?.(e)), [mutateAsync, cache]);
  const reset = useCallback(() => setState({ status: 'idle', data: undefined, error: null, variables: undefined }), []);
  const { status } = state;
  return { mutate, mutateAsync, reset, status, data: state.data, error: state.error, variables: state.variables, isIdle: status === 'idle', isPending: status === 'pending', isSuccess: status === 'success', isError: status === 'error' };
}

/** A value option given as it is or as a function (called with `arg`); undefined when not given. */
function valueOf(option, arg) {
  const value = typeof option === 'function' ? option(arg) : option;
  return value === null ? undefined : value;
}

/**
 * Reloads on the triggers the options ask for: the page shown again (`refetchOnWindowFocus`),
 * the browser back online (`refetchOnReconnect`: once for the origin, see `onOnline`), and a value
 * `refetchInterval` ms old. The interval is kept by one
 * tab for the origin: the one whose instance wrote the value reloads it when it is that old, and
 * so stays the writer; any other tab reloads only if the value is half an interval older still
 * (its writer has gone), and then keeps the interval itself.
 */
const RECONNECT_GRACE_MS = 1000;

function useRefetching(cache, key, load, { refetchOnWindowFocus = false, refetchOnReconnect = false, refetchInterval = 0 }) {
  useEffect(() => {
    if (!cache || key === false) return undefined;
    let timer;
    let grace;
    let live = true;
    const again = () => load(true);
    const onVisible = () => document.visibilityState === 'visible' && again();
    // Every tab hears `online`, not quite at once: the tab whose instance wrote the value reloads
    // it, the others only if it was not written since, a moment later (its writer has gone).
    const onOnline = () => {
      const since = Date.now();
      const written = cache[WRITTEN]?.(key);
      if (!written || written[1] === cache.nodeId) return again();
      clearTimeout(grace);
      grace = setTimeout(() => (cache[WRITTEN]?.(key)?.[0] ?? 0) < since && again(), RECONNECT_GRACE_MS);
    };
    if (refetchOnWindowFocus) document.addEventListener('visibilitychange', onVisible);
    if (refetchOnReconnect) window.addEventListener('online', onOnline);
    if (refetchInterval > 0) {
      // When this tab reloads the value: an interval after it was written here, half one more
      // after another writer wrote it (null: nothing to wait for).
      const due = () => {
        const written = cache[WRITTEN]?.(key);
        if (!written) return null;
        return written[0] + (written[1] === cache.nodeId ? refetchInterval : refetchInterval * 1.5);
      };
      const wake = (atLeast) => {
        if (!live) return;
        const at = due();
        timer = setTimeout(tick, Math.max(atLeast, at === null ? refetchInterval : at - Date.now()));
      };
      const tick = () => {
        const at = due();
        if (at !== null && Date.now() < at) return wake(0); // reloaded meanwhile
        // After this tab's own load, a whole interval at least: a failing loader is not hammered.
        load(true).finally(() => wake(refetchInterval));
      };
      wake(0);
    }
    return () => {
      live = false;
      document.removeEventListener('visibilitychange', onVisible);
      window.removeEventListener('online', onOnline);
      clearTimeout(timer);
      clearTimeout(grace);
    };
  }, [cache, key, load, refetchOnWindowFocus, refetchOnReconnect, refetchInterval]);
}

/**
 * `useSharedQuery` for React Suspense: `data` is always there. While there is no value the
 * component suspends on the load (the nearest `<Suspense>` shows its fallback); a failed load is
 * thrown to the nearest error boundary. On the server, where there is no cache, it stays
 * suspended, so server rendering shows the fallback and the browser loads.
 */
export function useSuspenseSharedQuery(queryKey, loader, options = {}) {
  const cache = useCache(options.cache);
  const query = useSharedQuery(queryKey, loader, { ...options, enabled: true, placeholderData: undefined });
  if (query.data !== null || query.error) return query.error && query.data === null ? raise(query.error) : query;
  return suspend(cache, queryKeyOf(queryKey), loader, options) ?? query;
}

const raise = (error) => {
  throw error;
};

const NEVER = new Promise(() => {});
// How long a failure (or a null value) answers the renders that ask again: React renders a
// component whose load failed again before its error boundary shows, in later tasks, and those
// renders must meet the same failure, not start another load; an error boundary reset after it
// loads again.
const SETTLED_KEPT_MS = 1000;
// While a key loads: one promise per cache and key, so that every render that suspends on it
// (React renders again before it settles) throws the same one. A component that suspends never
// mounts, so its state cannot remember a failure: the failure waits here (SETTLED_KEPT_MS).
const suspensions = new WeakMap();

/** Throws what the render must wait for, or fails with; returns when a load gave null (nothing to wait for). */
function suspend(cache, key, loader, options) {
  if (!cache) throw NEVER;
  let byKey = suspensions.get(cache);
  if (!byKey) suspensions.set(cache, (byKey = new Map()));
  const last = byKey.get(key);
  if (last?.settled) {
    if (last.error) throw last.error;
    return undefined; // the loader gave null: shown as no data rather than loading forever
  }
  if (last) throw last.promise;
  const entry = { settled: false, error: null, promise: null };
  entry.promise = cache.getOrFetch(key, loader, loadOptionsOf(options)).then(
    (value) => {
      // Shown from the cache on the render after; a later miss of the key suspends anew.
      if (value !== null) return byKey.delete(key);
      entry.settled = true;
      setTimeout(() => byKey.get(key) === entry && byKey.delete(key), SETTLED_KEPT_MS);
    },
    (error) => {
      entry.settled = true;
      entry.error = error;
      setTimeout(() => byKey.get(key) === entry && byKey.delete(key), SETTLED_KEPT_MS);
    },
  );
  byKey.set(key, entry);
  throw entry.promise;
}
