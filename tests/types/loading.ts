// Type test of the loading, invalidation and inspection API (issue 5): getOrFetch and its options,
// scopes, stats, logging options and the seed-004 error constants.
import { BackendSyncedCacheService, CacheErrorType, CacheScope, type CacheStats, type LogRecord } from 'mfe-shared-cache';
import type { DeepReadonly } from 'mfe-shared-cache';
import type { Equal } from './cache.js';
import { expect } from './cache.js';

type Store = { code: string; name: string; open: boolean };

const records: LogRecord[] = [];
const cache = new BackendSyncedCacheService({ app: 'product', logLevel: 'info', logger: (r) => records.push(r), defaultTTL: '10m' });

export async function loading() {
  const stores = await cache.getOrFetch('stores:all', async (): Promise<Store[]> => [{ code: 'a', name: 'A', open: true }], {
    ttl: '5m',
    staleWhileRevalidate: true,
    retry: { maxRetries: 5, initialDelay: 50 },
    defaultValue: [],
    filter: (loaded: Store[]) => loaded.filter((s) => s.open),
    graceTime: 2000,
  });
  expect<Equal<typeof stores, DeepReadonly<Store[]>>>();
  const maybe = await cache.getOrFetchWithFallback('stores:all', () => [] as Store[]);
  expect<Equal<typeof maybe, DeepReadonly<Store[]> | null>>();
  // @ts-expect-error the loader must give JSON (a Map is not)
  await cache.getOrFetch('m', async () => new Map<string, number>());
  // Sent to the backend too (the default keeps a loaded value in this browser).
  await cache.getOrFetch('catalog', async () => ['a'], { sync: true });
  // @ts-expect-error retry has no `attempts` field
  await cache.getOrFetch('x', () => 1, { retry: { attempts: 3 } });
  // @ts-expect-error ttl is seconds or a duration string
  await cache.getOrFetch('x', () => 1, { ttl: true });
  // @ts-expect-error the default value must have the loaded type
  await cache.getOrFetch('x', () => 1, { defaultValue: 'one' });

  const removed: number = await cache.invalidate('stores:*');
  const keys: string[] = cache.keys('stores:?');
  const ttl: number | null = cache.getTimeToExpiry('stores:all');
  const stats: CacheStats = cache.getStats();
  const rate: number = stats.hitRate;
  const present: boolean = cache.has('stores:all');
  const n: number = cache.size();
  // @ts-expect-error stats are read-only
  stats.hits = 0;

  const product: CacheScope = cache.scope('product');
  await product.set('featured', ['a'], '1h');
  const featured = product.get<string[]>('featured');
  expect<Equal<typeof featured, string[] | null>>();
  const inner: CacheScope = product.scope('v2');
  const mine: string[] = inner.keys();
  const app: string | null = cache.entries()[0]?.app ?? null;

  const exhausted: 'RETRY_EXHAUSTED' = CacheErrorType.RETRY_EXHAUSTED;
  // @ts-expect-error not an error type of this package
  void CacheErrorType.TIMEOUT;
  // @ts-expect-error logLevel is one of silent, error, warn, info, debug
  new BackendSyncedCacheService({ logLevel: 'verbose' });
  return [removed, keys, ttl, rate, present, n, mine, app, exhausted];
}

// ---- useSharedQuery ----------------------------------------------------------------------------
import { queryKeyOf, useSharedQuery, useSuspenseSharedQuery, type SharedQueryResult } from 'mfe-shared-cache/react';

export function useStores() {
  const q = useSharedQuery('stores:all', async (): Promise<Store[]> => [], { ttl: '5m', retry: { maxRetries: 1 }, cache });
  expect<Equal<typeof q, SharedQueryResult<Store[]>>>();
  expect<Equal<typeof q.data, DeepReadonly<Store[]> | null>>();
  const flags: [boolean, boolean] = [q.isLoading, q.isStale];
  const reload: Promise<DeepReadonly<Store[]> | null> = q.refetch();
  // @ts-expect-error the loader must give JSON
  useSharedQuery('when', () => new Date());
  return [flags, reload, q.error?.type];
}

// As TanStack Query: array keys, enabled, select, initialData, placeholderData, status flags.
export function useOrders(userId: number | null, page: number) {
  type Order = { id: number; total: number };
  const q = useSharedQuery(['orders', { userId, page }], async (): Promise<Order[]> => [], {
    enabled: userId !== null,
    select: (orders) => orders.map((o) => o.total),
    placeholderData: (previous) => (previous ? [...previous] : []),
    refetchInterval: 60_000,
    refetchOnReconnect: true,
  });
  expect<Equal<typeof q.data, number[] | null>>();
  const status: 'pending' | 'error' | 'success' = q.status;
  const flags: boolean[] = [q.isPending, q.isSuccess, q.isError, q.isFetching, q.isLoading, q.isPlaceholderData];
  const at: number = q.dataUpdatedAt;
  const withInitial = useSharedQuery('count', async () => 1, { initialData: 0 });
  expect<Equal<typeof withInitial.data, number | null>>();
  // @ts-expect-error select gets the loaded type (numbers, not strings)
  useSharedQuery('count', async () => 1, { select: (n: string) => n });
  // @ts-expect-error a query key is a string or an array of JSON values
  useSharedQuery({ id: 1 }, async () => 1);
  const suspended = useSuspenseSharedQuery(['orders', 1], async (): Promise<Order[]> => []);
  expect<Equal<typeof suspended.data, DeepReadonly<Order[]>>>();
  const key: string = queryKeyOf(['orders', { page: 1 }]);
  return [status, flags, at, key];
}
