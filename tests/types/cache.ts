// Type test of the published package's declarations (pkg/index.d.ts and pkg/react.d.ts, copied
// from pkg-template/), run by `node_modules/.bin/tsc -p tests/types` after `scripts/build-pkg.sh`;
// nothing here is executed. This file and react.tsx use the whole public API the way an MFE team
// would, importing 'mfe-shared-cache' and 'mfe-shared-cache/react' (resolved to pkg/, see
// tsconfig.json), and check the types they get with `Expect<Equal<…>>`. Each `@ts-expect-error`
// line is a misuse the declarations must reject (the reason is next to it): TypeScript fails the
// build if such a line compiles, so the test fails both when a type is too loose and when a
// correct use is refused. What the declarations promise is checked against the JavaScript
// (pkg-template/index.js, react.js): e.g. a Date is accepted at runtime (through toJSON) but comes
// back as a string, so the types refuse it.
import DefaultExport, {
  BackendSyncedCacheService,
  CacheError,
  MemoryStorage,
  type CacheEntryInfo,
  type CacheErrorType,
  type CacheOptions,
  type DeepReadonly,
  type JsonValue,
  type StorageLike,
  type SyncStatus,
} from 'mfe-shared-cache';

/** True when A and B are the same type (not merely assignable). */
export type Equal<A, B> = (<G>() => G extends A ? 1 : 2) extends <G>() => G extends B ? 1 : 2 ? true : false;
export declare function expect<T extends true>(): void;

// ---- the value types an MFE declares (type aliases: see the interface note at the end) --------
export type User = { id: number; name: string; roles: string[]; address?: { city: string } };
export type Cart = { items: { sku: string; qty: number }[]; coupon: string | null };

// ---- constructor options -------------------------------------------------------------------------
const everyOption: CacheOptions = {
  storage: new MemoryStorage(),
  prefix: 'shop_',
  defaultTTL: 0,
  backendUrl: 'https://cache.example.com/api/cache',
  syncInterval: 30_000,
  retryDelay: 5_000,
  maxRetries: 3,
  requestTimeout: 10_000,
  headers: { authorization: 'Bearer t0ken' },
  maxBatchBytes: 256 * 1024,
};
export const cache = new BackendSyncedCacheService(everyOption);
new BackendSyncedCacheService();
new BackendSyncedCacheService({});
new BackendSyncedCacheService({ backendUrl: null, storage: localStorage });
// @ts-expect-error a byte count, not a size string
new BackendSyncedCacheService({ maxBatchBytes: '512kb' });
new BackendSyncedCacheService({ backendUrl: false, storage: sessionStorage });
new BackendSyncedCacheService({ headers: () => ({ authorization: `Bearer ${Math.random()}` }) });
new BackendSyncedCacheService({ headers: async () => ({ authorization: 'Bearer from-a-refresh' }) });
// An option left undefined takes its default (index.js drops undefined options), also under
// exactOptionalPropertyTypes.
declare const env: { CACHE_URL?: string };
new BackendSyncedCacheService({ backendUrl: env.CACHE_URL, storage: undefined });
// Any object with the Storage interface will do.
const backing = new Map<string, string>();
const ownStorage: StorageLike = {
  get length() {
    return backing.size;
  },
  key: (i) => [...backing.keys()][i] ?? null,
  getItem: (k) => backing.get(k) ?? null,
  setItem: (k, v) => void backing.set(k, v),
  removeItem: (k) => void backing.delete(k),
};
new BackendSyncedCacheService({ storage: ownStorage });
expect<Equal<typeof DefaultExport, typeof BackendSyncedCacheService>>();

new BackendSyncedCacheService({ defaultTTL: '1h' }); // durations as strings since issue 5
// @ts-expect-error defaultTTL is seconds or a duration string, not a boolean
new BackendSyncedCacheService({ defaultTTL: true });
// @ts-expect-error backendUrl is a string, null or false (true means nothing)
new BackendSyncedCacheService({ backendUrl: true });
// @ts-expect-error header values are strings
new BackendSyncedCacheService({ headers: { 'x-retry': 3 } });
// @ts-expect-error a storage needs the whole Storage interface (key, length, removeItem missing)
new BackendSyncedCacheService({ storage: { getItem: () => null, setItem: () => {} } });
// @ts-expect-error unknown option (a typo of syncInterval)
new BackendSyncedCacheService({ syncIntervall: 1000 });

// The options in force: defaults filled in, backendUrl normalised to string | null, read-only.
expect<Equal<typeof cache.options.backendUrl, string | null>>();
expect<Equal<typeof cache.options.requestTimeout, number>>();
expect<Equal<typeof cache.options.prefix, string>>();
// @ts-expect-error options are frozen
cache.options.prefix = 'other_';
// @ts-expect-error storage and headers are not part of `options` (index.js does not keep them there)
cache.options.headers;
expect<Equal<typeof cache.nodeId, string>>();
export function describeTabLink(c: BackendSyncedCacheService): string {
  switch (c.tabLink) {
    case 'broadcast-channel':
      return 'instant';
    case 'storage-event':
      return 'via storage events';
    case 'none':
      return 'this tab only';
    default: {
      const never: never = c.tabLink;
      return never;
    }
  }
}

// ---- set / get / remove / clear ------------------------------------------------------------------
export async function writes(): Promise<void> {
  expect<Equal<ReturnType<typeof cache.set>, Promise<void>>>();
  await cache.set('user', { id: 1, name: 'Ada', roles: ['admin'] } satisfies User, 3600);
  await cache.set('count', 0);
  await cache.set('flag', false, 0);
  await cache.set('name', 'Ada');
  await cache.set('nothing', null);
  await cache.set('matrix', [[1, 2], [3, 4]]);
  await cache.set('cart', { items: [{ sku: 'a-1', qty: 2 }], coupon: null } satisfies Cart);
  // An optional property that is absent (or undefined: JSON drops it, as index.js does) is fine.
  const user: User = { id: 2, name: 'Bob', roles: [] };
  await cache.set('user', user);
  // Kept in this browser (never sent to the backend).
  await cache.set('draft', 'text', '1h', { sync: false });
  await cache.set('draft', 'text', undefined, {});
  // @ts-expect-error sync is true or false
  await cache.set('draft', 'text', 0, { sync: 'no' });
  await cache.scope('me', { sync: false }).set('orders', [1, 2]);

  // A value read from the cache is deeply frozen; it (or a copy of it) can be written back.
  const cart = cache.get<Cart>('cart');
  if (cart) {
    await cache.set('cart', cart);
    await cache.set('cart', { ...cart, coupon: 'SPRING' });
    await cache.set('cart', { ...cart, items: [...cart.items, { sku: 'b-2', qty: 1 }] });
  }

  // @ts-expect-error a function is not JSON (index.js rejects it with INVALID_VALUE)
  await cache.set('fn', () => 1);
  // @ts-expect-error undefined is not JSON (JSON.stringify gives undefined; rejected)
  await cache.set('undef', undefined);
  // @ts-expect-error a Date would come back as a string (JSON.stringify calls toJSON)
  await cache.set('when', new Date());
  // @ts-expect-error a Map is not JSON (index.js rejects it rather than store {})
  await cache.set('map', new Map<string, number>());
  // @ts-expect-error BigInt is not JSON (JSON.stringify throws)
  await cache.set('big', 10n);
  // @ts-expect-error a symbol is not JSON
  await cache.set('sym', Symbol('s'));
  // @ts-expect-error a nested non-JSON value is refused too
  await cache.set('nested', { at: new Date() });
  await cache.set('user', user, '1h 30m');
  // @ts-expect-error ttl is seconds or a duration string
  await cache.set('user', user, { seconds: 3600 });
  // @ts-expect-error keys are strings
  await cache.set(42, 'x');
  // @ts-expect-error an explicit type argument must be JSON too
  await cache.set<Date>('when', new Date());

  expect<Equal<ReturnType<typeof cache.remove>, Promise<void>>>();
  expect<Equal<ReturnType<typeof cache.clear>, Promise<void>>>();
  await cache.remove('user');
  await cache.remove('draft', { sync: false });
  // @ts-expect-error sync is true or false
  await cache.remove('draft', { sync: 'no' });
  await cache.scope('own', { sync: false }).remove('draft', { sync: true });
  const removed: number = await cache.invalidate('draft:*', { sync: false });
  await cache.scope('own').invalidate('*', { sync: false });
  await cache.clear();
  // @ts-expect-error clear takes no key (it clears everything)
  await cache.clear('user');
}

export function reads(): void {
  const user = cache.get<User>('user');
  expect<Equal<typeof user, DeepReadonly<User> | null>>();
  const untyped = cache.get('anything');
  expect<Equal<typeof untyped, DeepReadonly<JsonValue> | null>>();
  // @ts-expect-error get may return null (missing or expired)
  user.name;
  if (user === null) return;
  const name: string = user.name;
  const firstRole: string | undefined = user.roles[0];
  const city: string | undefined = user.address?.city;
  void [name, firstRole, city];
  // @ts-expect-error values are deeply frozen: properties are read-only
  user.name = 'Eve';
  // @ts-expect-error …and nested objects
  if (user.address) user.address.city = 'Paris';
  // A value read from the cache passes where its plain type is expected: arrays keep their type
  // (push on one throws at runtime: it is frozen).
  const roles: string[] = user.roles;
  const describeUser = (u: User) => `${u.name} (${u.roles.join(', ')})`;
  void [roles, describeUser(user)];
}

// ---- subscribe / on / off ------------------------------------------------------------------------
export function listeners(): void {
  const unsubscribe = cache.subscribe<Cart>('cart', (cart) => {
    expect<Equal<typeof cart, DeepReadonly<Cart> | null>>();
    console.log(cart?.items.length ?? 0);
  });
  expect<Equal<typeof unsubscribe, () => void>>();
  unsubscribe();
  cache.subscribe('anything', (value) => expect<Equal<typeof value, DeepReadonly<JsonValue> | null>>());
  // @ts-expect-error the callback receives the value, not (key, value)
  cache.subscribe('cart', (key: string, value: JsonValue) => console.log(key, value));

  const onError = (error: CacheError) => {
    const type: CacheErrorType = error.type;
    const retryable: boolean = error.retryable;
    const key: string | undefined = error.key;
    const message: string = error.message;
    const name: 'CacheError' = error.name;
    void [type, retryable, key, message, name];
  };
  const offError = cache.on('error', onError);
  expect<Equal<typeof offError, () => void>>();
  offError();
  cache.off('error', onError);

  const onSync = (status: SyncStatus) => {
    const pending: number = status.pending;
    const lastSyncedAt: number | null = status.lastSyncedAt;
    void [pending, lastSyncedAt];
  };
  cache.on('sync', onSync)();
  cache.off('sync', onSync);
  const onChange = (key: string) => console.log('changed', key);
  cache.on('change', onChange);
  cache.off('change', onChange);
  cache.on('error', (e) => expect<Equal<typeof e, CacheError>>());
  cache.on('sync', (s) => expect<Equal<typeof s, SyncStatus>>());
  cache.on('change', (k) => expect<Equal<typeof k, string>>());

  // @ts-expect-error unknown event (index.js throws INVALID_ARGUMENT)
  cache.on('update', () => {});
  // @ts-expect-error unknown event for off too
  cache.off('expire', onChange);
  // @ts-expect-error a 'change' listener gets the key, a string
  cache.on('change', (key: number) => key);
  // @ts-expect-error a 'sync' listener gets the status, not an error
  cache.on('sync', onError);
  // @ts-expect-error off returns nothing (on returns the off function)
  const nothing: () => void = cache.off('change', onChange);
  void nothing;
}

// ---- entries, syncStatus, dispose ----------------------------------------------------------------
export function devTools(): void {
  const all = cache.entries();
  expect<Equal<typeof all, CacheEntryInfo[]>>();
  for (const { key, value, expiresAt, updatedAt, writer, pending } of all) {
    expect<Equal<typeof value, DeepReadonly<JsonValue>>>();
    const row: [string, number | null, number, string, boolean] = [key, expiresAt, updatedAt, writer, pending];
    void row;
  }

  const status = cache.syncStatus;
  const fields: [boolean, boolean, boolean, boolean, number, number, string | null, number | null, number | null] = [
    status.enabled,
    status.online,
    status.syncing,
    status.leader,
    status.pending,
    status.failures,
    status.lastError,
    status.lastSyncedAt,
    status.retryAt,
  ];
  void fields;
  expect<Equal<typeof status.realtime, 'off' | 'follower' | 'connecting' | 'open' | 'retrying' | 'unsupported'>>();
  expect<Equal<typeof cache.options.realtime, 'auto' | 'off'>>();
  new BackendSyncedCacheService({ realtime: 'off' });
  new BackendSyncedCacheService({ realtime: 'auto', syncInterval: 30000 });
  // @ts-expect-error realtime is 'auto' or 'off'
  new BackendSyncedCacheService({ realtime: true });
  // @ts-expect-error the status is a snapshot to read, not to change
  status.pending = 0;
  // @ts-expect-error syncStatus is a getter
  cache.syncStatus = status;

  expect<Equal<ReturnType<typeof cache.dispose>, void>>();
  cache.dispose();
}

// ---- errors ------------------------------------------------------------------------------------
export async function errors(): Promise<void> {
  try {
    await cache.set('', 1);
  } catch (e) {
    if (e instanceof CacheError) {
      switch (e.type) {
        case 'INVALID_KEY':
        case 'INVALID_VALUE':
        case 'INVALID_TTL':
        case 'INVALID_OPTION':
        case 'INVALID_ARGUMENT':
          throw e; // a bug in the caller
        case 'QUOTA_EXCEEDED':
        case 'STORAGE_FAILED':
          if (e.retryable) return;
          break;
        case 'NETWORK':
        case 'SERVER':
        case 'UNAUTHORIZED':
        case 'REJECTED':
        case 'PROTOCOL':
        case 'STORAGE_CORRUPT':
        case 'DISPOSED':
        case 'REENTRANT_CALL':
        case 'INTERNAL':
        case 'FETCH_FAILED':
        case 'CACHE_SET_FAILED':
        case 'CACHE_GET_FAILED':
        case 'CLEANUP_FAILED':
        case 'RETRY_EXHAUSTED':
          break;
        // @ts-expect-error not an error type of this package
        case 'TIMEOUT':
          break;
        default: {
          const never: never = e.type;
          void never;
        }
      }
    }
  }
  const own = new CacheError('STORAGE_FAILED', 'disk on fire', { retryable: true, key: 'k', cause: new Error('x') });
  const error: Error = own;
  void error;
  new CacheError('INTERNAL', 'no options');
  // @ts-expect-error the type is one of CacheErrorType
  new CacheError('OOPS', 'unknown type');
  // @ts-expect-error the fields are read-only
  own.retryable = false;
}

// ---- MemoryStorage -------------------------------------------------------------------------------
export function memoryStorage(): void {
  const storage = new MemoryStorage();
  storage.setItem('a', '1');
  const a: string | null = storage.getItem('a');
  const first: string | null = storage.key(0);
  const size: number = storage.length;
  storage.removeItem('a');
  storage.clear();
  const asStorage: StorageLike = storage;
  void [a, first, size, asStorage];
  // @ts-expect-error Storage holds strings (setItem(key, value: string))
  storage.setItem('a', 1);
}

// ---- interfaces -----------------------------------------------------------------------------------
// Value types declared with `interface` (which have no implicit index signature) are checked part
// by part, as type aliases are.
interface Profile {
  nick: string;
  tags: string[];
  address?: { city: string };
}
interface Event {
  at: Date;
}
export async function interfaces(p: Profile, e: Event): Promise<void> {
  await cache.set('profile', p);
  await cache.set('profile', { ...p });
  const back = cache.get<Profile>('profile');
  expect<Equal<typeof back, DeepReadonly<Profile> | null>>();
  const loaded = await cache.getOrFetch('profile', async (): Promise<Profile> => p);
  const keep = (profile: Profile) => profile.nick;
  keep(loaded);
  // @ts-expect-error an interface with a part that is not JSON (a Date comes back as a string)
  await cache.set('event', e);
}
