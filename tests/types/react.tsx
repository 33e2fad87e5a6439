// Type test of 'mfe-shared-cache/react' (see the header of cache.ts): the hooks, the provider and
// the default instance, as the components of a shell and two MFEs would use them.
import { BackendSyncedCacheService, type CacheError, MemoryStorage, type DeepReadonly, type JsonValue, type SyncStatus } from 'mfe-shared-cache';
import {
  SharedCacheProvider,
  configureDefaultCache,
  getDefaultCache,
  useSetSharedCache,
  useSharedCache,
  useSharedMutation,
  useSyncStatus,
  type HookOptions,
} from 'mfe-shared-cache/react';
import type { ReactNode } from 'react';
import type { Cart, Equal, User } from './cache';
import { expect } from './cache';

// ---- the page's default instance ---------------------------------------------------------------
configureDefaultCache({ backendUrl: '/api/cache', prefix: 'shop_', defaultTTL: 600 });
// @ts-expect-error configureDefaultCache takes the constructor's options (maxRetries is a number)
configureDefaultCache({ maxRetries: 'three' });
// @ts-expect-error the options object is required
configureDefaultCache();
const byDefault = getDefaultCache();
expect<Equal<typeof byDefault, BackendSyncedCacheService>>();

// ---- useSharedCache with a typed initial value -----------------------------------------------------
export function CartBadge(): ReactNode {
  const [cart, setCart] = useSharedCache<Cart>('cart', { items: [], coupon: null }, 3600);
  expect<Equal<typeof cart, DeepReadonly<Cart>>>(); // never null: the initial value stands in
  const count = cart.items.reduce((n, item) => n + item.qty, 0);
  const add = (sku: string) =>
    // The updater gets the current (frozen) value; spreading it into the result is fine.
    setCart((current) => ({ ...current, items: [...current.items, { sku, qty: 1 }] }));
  const p = setCart({ items: [], coupon: 'SPRING' });
  expect<Equal<typeof p, Promise<void>>>();
  setCart(cart); // a value read from the cache can be written back
  // @ts-expect-error setValue takes a Cart (qty is a number)
  setCart({ items: [{ sku: 'a', qty: '1' }], coupon: null });
  // @ts-expect-error the updater must return a Cart
  setCart((current) => current.items);
  // The value passes where a plain Cart is expected (it is frozen at runtime all the same).
  const total = (c: Cart) => c.items.reduce((n, item) => n + item.qty, 0);
  total(cart);
  // @ts-expect-error its properties are read-only, at every level
  cart.items[0]!.qty = 2;
  // @ts-expect-error …and at the top
  cart.coupon = 'SPRING';
  // A TTL is seconds or a duration string, as everywhere else.
  useSharedCache<Cart>('cart', { items: [], coupon: null }, '1h');
  // @ts-expect-error …not a boolean
  useSharedCache<Cart>('cart', { items: [], coupon: null }, true);
  return <button onClick={() => add('apple')}>{count} items</button>;
}

// ---- mutations ---------------------------------------------------------------------------------------
export function LikeButton({ postId }: { postId: string }): ReactNode {
  type Likes = { count: number; mine: boolean };
  const like = useSharedMutation<Likes, { postId: string }>(
    `likes:${postId}`,
    async ({ postId: id }) => (await fetch(`/api/posts/${id}/like`, { method: 'POST' })).json() as Promise<Likes>,
    {
      optimistic: (current) => ({ count: (current?.count ?? 0) + 1, mine: true }),
      onSuccess: (result, variables) => console.log(result?.count, variables.postId),
      onError: (error) => expect<Equal<typeof error, CacheError>>(),
      onSettled: (_result, error, { postId: id }) => error ?? id,
    },
  );
  const status: 'idle' | 'pending' | 'error' | 'success' = like.status;
  void like.mutateAsync({ postId }).then((result) => result?.count);
  like.mutate({ postId }, { onSuccess: (result) => result?.mine, onError: (error) => error.retryable });
  expect<Equal<typeof like.variables, { postId: string } | undefined>>();
  // @ts-expect-error the variables are { postId }
  like.mutate({ id: postId });
  // @ts-expect-error onSuccess gets the result, not a string
  like.mutate({ postId }, { onSuccess: (result: string) => result });
  return <button disabled={like.isPending} onClick={() => like.mutate({ postId })}>{status}</button>;
}

// ---- value types declared with interface --------------------------------------------------------
interface Settings {
  theme: 'light' | 'dark';
  pinned: string[];
}
export function SettingsPanel({ save }: { save: (s: Settings) => void }): ReactNode {
  const [settings, setSettings] = useSharedCache<Settings>('settings', { theme: 'light', pinned: [] }, '30d');
  save(settings);
  setSettings((s) => ({ ...s, theme: 'dark' }));
  const [other] = useSharedCache('settings-2', { theme: 'dark', pinned: [] } as Settings);
  save(other);
  return <span>{settings.theme}</span>;
}

// ---- select, and a setter alone ------------------------------------------------------------------
export function CartCount(): ReactNode {
  const [count, setCart] = useSharedCache<Cart, number>('cart', { items: [], coupon: null }, undefined, { select: (cart) => cart.items.length });
  expect<Equal<typeof count, number>>();
  setCart((cart) => ({ ...cart, coupon: null }));
  const [name] = useSharedCache<User, string>('user', null, undefined, { select: (user) => user?.name ?? 'guest' });
  expect<Equal<typeof name, string>>();
  const [dense] = useSharedCache('prefs', { dense: false, pageSize: 20 }, '1d', { select: (prefs) => prefs.dense });
  expect<Equal<typeof dense, boolean>>();
  const addToCart = useSetSharedCache<Cart>('cart', '1h', { sync: false });
  void addToCart((cart) => ({ items: [...(cart?.items ?? []), { sku: 'a', qty: 1 }], coupon: null }));
  // @ts-expect-error the setter takes a Cart
  void addToCart({ items: 'none' });
  return <span>{count}</span>;
}

// ---- inferred types: widened like useState --------------------------------------------------------
export function Counter(): ReactNode {
  const [count, setCount] = useSharedCache('visits', 0);
  expect<Equal<typeof count, number>>(); // number, not the literal 0
  setCount((n) => n + 1);
  setCount(10);
  const [theme, setTheme] = useSharedCache('theme', 'light');
  expect<Equal<typeof theme, string>>();
  setTheme('dark');
  const [open, setOpen] = useSharedCache('menu-open', false, 0, { sync: false });
  expect<Equal<typeof open, boolean>>();
  setOpen((o) => !o);
  const [prefs] = useSharedCache('prefs', { dense: false, pageSize: 20, tags: ['a'] });
  expect<Equal<typeof prefs, DeepReadonly<{ dense: boolean; pageSize: number; tags: string[] }>>>();
  // An explicit union type is kept as given.
  const [mode, setMode] = useSharedCache<'grid' | 'list'>('mode', 'grid');
  expect<Equal<typeof mode, 'grid' | 'list'>>();
  setMode('list');
  // @ts-expect-error not one of the union
  setMode('table');
  // @ts-expect-error setValue with a wrong type (count is a number)
  setCount('11');
  // @ts-expect-error the updater gets and must return a number
  setCount((n) => `${n}`);
  return <span>{count}</span>;
}

// ---- useSharedCache with no initial value (or null) -------------------------------------------
export function UserName(): ReactNode {
  const [user, setUser] = useSharedCache<User>('user');
  expect<Equal<typeof user, DeepReadonly<User> | null>>();
  const [sameUser] = useSharedCache<User>('user', null, 3600);
  expect<Equal<typeof sameUser, DeepReadonly<User> | null>>();
  setUser({ id: 1, name: 'Ada', roles: [] });
  setUser((current) => (current ? { ...current, name: current.name.trim() } : { id: 0, name: 'guest', roles: [] }));
  // An inferred null initial value means "any JSON value or null", not "always null".
  const [anything, setAnything] = useSharedCache('anything', null);
  expect<Equal<typeof anything, DeepReadonly<JsonValue> | null>>();
  setAnything({ free: ['form'] });
  // @ts-expect-error the value may be null: check it first
  user.name;
  // @ts-expect-error setValue with a wrong type (a User needs id and roles)
  setUser({ name: 'Ada' });
  // @ts-expect-error the updater gets null while there is no value
  setUser((current) => ({ ...current, name: 'x' }));
  // @ts-expect-error a Date is not JSON: it would come back as a string
  useSharedCache<Date>('when');
  return <span>{user?.name ?? 'guest'}</span>;
}

// ---- values the hook must refuse ----------------------------------------------------------------
export function Refused(): ReactNode {
  // @ts-expect-error a function is not JSON
  useSharedCache('fn', () => 1);
  // @ts-expect-error a Date is not JSON (comes back as a string)
  useSharedCache('when', new Date());
  // @ts-expect-error nested non-JSON values too
  useSharedCache('nested', { at: new Date() });
  // @ts-expect-error a Map is not JSON
  useSharedCache('map', new Map<string, string>());
  // @ts-expect-error a union with a non-JSON member
  useSharedCache('either', Math.random() > 0.5 ? 'now' : new Date());
  // @ts-expect-error key is a string
  useSharedCache(1, 0);
  return null;
}

// ---- useSyncStatus, the `cache` option, the provider ------------------------------------------------
export function SaveIndicator({ cache }: HookOptions): ReactNode {
  const status = useSyncStatus({ cache });
  expect<Equal<typeof status, SyncStatus>>();
  const fromDefault = useSyncStatus();
  // @ts-expect-error the status is read-only
  fromDefault.pending = 0;
  if (!status.enabled) return null;
  return <small>{status.pending ? `saving ${status.pending}…` : status.lastError ?? 'saved'}</small>;
}

// One MFE may use its own instance (another prefix, no backend) for some keys: pass it to a hook…
const draftCache = new BackendSyncedCacheService({ prefix: 'order_drafts_', backendUrl: null });
export function Draft(): ReactNode {
  const [draft, setDraft] = useSharedCache('draft', { lines: [] as string[] }, 0, { cache: draftCache });
  setDraft((d) => ({ lines: [...d.lines, 'x'] }));
  // @ts-expect-error the cache option is an instance, not options
  useSharedCache('draft', null, 0, { cache: { prefix: 'x' } });
  return <pre>{draft.lines.join('\n')}</pre>;
}

// An MFE that owns its part of the keyspace gives the hooks its scope: keys are the scope's.
const checkout = draftCache.scope('checkout', { sync: false });
export function CheckoutStep(): ReactNode {
  const [step, setStep] = useSharedCache('step', 1, 0, { cache: checkout });
  setStep((n) => n + 1);
  const save = useSharedMutation('step', (n: number) => Promise.resolve(n), { cache: checkout, optimistic: (_, n) => n });
  save.mutate(3);
  const off = checkout.on('change', (key) => key.startsWith('s'));
  off();
  return <SharedCacheProvider cache={checkout}>{String(step)}</SharedCacheProvider>;
}

// …or make it the instance of a whole subtree (tests and SSR use a MemoryStorage).
const testCache = new BackendSyncedCacheService({ storage: new MemoryStorage(), backendUrl: null });
export function OrderMfe(): ReactNode {
  return (
    <SharedCacheProvider cache={testCache}>
      <CartBadge />
      <Counter />
      <UserName />
      <SaveIndicator />
      <Draft />
    </SharedCacheProvider>
  );
}
export const withoutChildren = <SharedCacheProvider cache={testCache} />;
// @ts-expect-error the provider needs a cache
export const noCache = <SharedCacheProvider>x</SharedCacheProvider>;
// @ts-expect-error the provider takes an instance, not options
export const optionsInstead = <SharedCacheProvider cache={{ prefix: 'x' }}>x</SharedCacheProvider>;
