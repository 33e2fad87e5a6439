// `mfe-shared-cache/react` with React 19 in headless Chromium: several roots (one per MFE) on one
// store, per-key re-renders, no render loops, providers, cross-tab updates — and SSR in Node.
import test, { describe } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINE, suite, openTab, until } from './harness.mjs';
import { buildReactVendor } from './react-vendor.mjs';

// Mounts components into #a/#b/#c; each counts its renders in window.renders[name].
const setup = () => {
  const h = React.createElement;
  window.renders = {};
  window.setters = {};
  const count = (name) => (renders[name] = (renders[name] ?? 0) + 1);
  window.components = {
    // A cart in the shell MFE: reads and updates the cart with an updater function.
    Cart({ name, cache }) {
      count(name);
      const [cart, setCart] = pkgReact.useSharedCache('cart', { items: [] }, undefined, cache ? { cache } : undefined);
      setters[name] = setCart;
      return h('p', { id: name }, `${cart.items.length} items`);
    },
    // A badge in the product MFE: reads the same key.
    Badge({ name }) {
      count(name);
      const [cart] = pkgReact.useSharedCache('cart', { items: [] });
      return h('span', { id: name }, String(cart.items.length));
    },
    // A component on another key.
    User({ name }) {
      count(name);
      const [user] = pkgReact.useSharedCache('user', null);
      return h('span', { id: name }, user ? user.name : 'anonymous');
    },
    // Records the value it got on each render, re-rendering when its parent does.
    Probe({ name }) {
      count(name);
      const [cart] = pkgReact.useSharedCache('missing-key', { items: [] });
      (window.seen ??= []).push(cart);
      return h('span', { id: name }, String(cart.items.length));
    },
    Parent() {
      const [n, setN] = React.useState(0);
      window.rerenderParent = () => setN((x) => x + 1);
      return h('div', { 'data-n': n }, h(components.Probe, { name: 'probe' }));
    },
    Status({ name }) {
      count(name);
      const status = pkgReact.useSyncStatus();
      return h('span', { id: name }, `enabled=${status.enabled} pending=${status.pending}`);
    },
    // Wraps a root's components (given as children, so its own renders do not render them) and
    // commits a transition on `gates[name]()`, counted in the data-n of an empty #<name>.
    // React renders a root's lanes in priority order and flushes pending effects before it
    // renders: a transition commits only once every update already due in the root (an effect's,
    // a subscription's) has been rendered, so its commit is a barrier for the root's pending work.
    Gate({ name, children }) {
      const [n, setN] = React.useState(0);
      (window.gates ??= {})[name] = () => React.startTransition(() => setN((x) => x + 1));
      return h(React.Fragment, null, h('i', { id: name, 'data-n': n }), children);
    },
  };
};

// Commits a transition in each named gate and waits until all have committed; if updates keep
// coming ahead of it, fails with what `detail()` (run in the page) shows.
async function throughGates(tab, names, detail) {
  await tab.evaluate((names) => names.forEach((name) => gates[name]()), names);
  try {
    await until(tab, (names) => names.every((name) => document.getElementById(name).dataset.n === '1'), names);
  } catch (e) {
    assert.fail(`a transition never committed, updates kept coming ahead of it (${e.message}): ${JSON.stringify(await tab.evaluate(detail))}`);
  }
}

describe('React hooks', () => {
  const env = suite({ before: test.before, after: test.after });
  test.before(buildReactVendor);
  const page = (q = '') => env.page(q).replace('page.html', 'react.html');

  test('two roots share a key; an update in one re-renders the other; unrelated keys do not render', async () => {
    const ctx = await env.context();
    const tab = await openTab(ctx, page());
    await tab.evaluate(setup);
    await tab.evaluate(() => {
      pkgReact.configureDefaultCache({ backendUrl: null, prefix: 'react_' });
      const h = React.createElement;
      ReactDOM.createRoot(document.getElementById('a')).render(h(components.Cart, { name: 'shell' }));
      ReactDOM.createRoot(document.getElementById('b')).render(h(components.Badge, { name: 'product' }));
      ReactDOM.createRoot(document.getElementById('c')).render(h(components.User, { name: 'user' }));
    });
    await until(tab, () => document.getElementById('product')?.textContent === '0');
    const settled = await tab.evaluate(() => ({ ...renders }));
    await tab.evaluate(() => setters.shell((cart) => ({ items: [...cart.items, 'apple'] })));
    await until(tab, () => document.getElementById('product').textContent === '1' && document.getElementById('shell').textContent === '1 items');
    const promise = await tab.evaluate(() => setters.shell((cart) => ({ items: [...cart.items, 'pear'] })) instanceof Promise);
    await until(tab, () => document.getElementById('product').textContent === '2');
    const after = await tab.evaluate(() => ({ ...renders, stored: JSON.parse(localStorage.getItem('react_cart')).v }));
    assert.equal(promise, true, 'setValue returns the set promise');
    assert.deepEqual(after.stored, { items: ['apple', 'pear'] });
    assert.equal(after.user, settled.user, 'a component on another key did not render');
    assert.ok(after.shell - settled.shell <= 2 && after.product - settled.product <= 2, `renders bounded: ${JSON.stringify({ settled, after })}`);
    assert.deepEqual(tab.problems, []);
    await ctx.close();
  });

  test('a write in another tab re-renders components; providers and the cache option pick instances', async () => {
    const ctx = await env.context();
    const tab = await openTab(ctx, page());
    const other = await openTab(ctx, page());
    await tab.evaluate(setup);
    await tab.evaluate(() => {
      pkgReact.configureDefaultCache({ backendUrl: null, prefix: 'react2_' });
      const h = React.createElement;
      window.mine = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'react_mine_' });
      ReactDOM.createRoot(document.getElementById('a')).render(h(components.User, { name: 'default' }));
      ReactDOM.createRoot(document.getElementById('b')).render(h(pkgReact.SharedCacheProvider, { cache: mine }, h(components.User, { name: 'provided' })));
      ReactDOM.createRoot(document.getElementById('c')).render(h(components.Cart, { name: 'explicit', cache: mine }));
    });
    await until(tab, () => document.getElementById('provided')?.textContent === 'anonymous');
    await other.evaluate(() => new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'react2_' }).set('user', { name: 'Ann' }));
    await until(tab, () => document.getElementById('default').textContent === 'Ann');
    assert.equal(await tab.evaluate(() => document.getElementById('provided').textContent), 'anonymous', 'the provider’s instance is another cache');
    await tab.evaluate(() => mine.set('user', { name: 'Mine' }));
    await until(tab, () => document.getElementById('provided').textContent === 'Mine');
    await tab.evaluate(() => setters.explicit({ items: [1, 2, 3] }));
    assert.deepEqual(await tab.evaluate(() => mine.get('cart')), { items: [1, 2, 3] });
    assert.deepEqual(tab.problems, []);
    await ctx.close();
  });

  test('configureDefaultCache from several MFEs sharing one copy: the same options are a no-op, others a typed error naming them', async () => {
    const ctx = await env.context();
    const tab = await openTab(ctx, page());
    const r = await tab.evaluate(() => {
      const attempt = (options) => {
        try {
          pkgReact.configureDefaultCache(options);
          return 'ok';
        } catch (e) {
          return e instanceof pkg.CacheError ? `${e.type}: ${e.message}` : `not a CacheError: ${e}`;
        }
      };
      const logger = () => {};
      const host = { backendUrl: null, prefix: 'react_mf_', headers: { 'x-app': 'shop', 'x-team': 'cart' }, logger };
      return {
        first: attempt(host),
        // A remote with the same options, written out again (a new headers object, the same logger).
        same: attempt({ prefix: 'react_mf_', backendUrl: null, headers: { 'x-app': 'shop', 'x-team': 'cart' }, logger, app: undefined }),
        reordered: attempt({ logger, headers: { 'x-team': 'cart', 'x-app': 'shop' }, prefix: 'react_mf_', backendUrl: null }),
        otherHeaders: attempt({ ...host, headers: { 'x-app': 'shop', 'x-team': 'cart', 'x-extra': '1' } }),
        before: attempt({ ...host, prefix: 'other_', logger: () => {} }),
        prefix: pkgReact.getDefaultCache().options.prefix,
        sameAfter: attempt(host),
        after: attempt({ ...host, defaultTTL: 60 }),
      };
    });
    assert.equal(r.first, 'ok');
    assert.equal(r.same, 'ok');
    assert.equal(r.reordered, 'ok', 'plain data compares by what it holds, in any key order');
    assert.match(r.otherHeaders, /other options \(headers\)/);
    assert.match(r.before, /^INVALID_OPTION: configureDefaultCache: the page's default cache is configured with other options \(logger, prefix\)/);
    assert.equal(r.prefix, 'react_mf_', 'the first configuration stands');
    assert.equal(r.sameAfter, 'ok');
    assert.match(r.after, /^INVALID_OPTION: configureDefaultCache: the page's default cache exists with other options \(defaultTTL\)/);
    await ctx.close();
  });

  test('a literal initial value and useSyncStatus render without loops or warnings', async () => {
    const ctx = await env.context();
    const tab = await openTab(ctx, page());
    await tab.evaluate(setup);
    await tab.evaluate(() => {
      pkgReact.configureDefaultCache({ backendUrl: null, prefix: 'react3_' });
      const h = React.createElement;
      const gated = h(components.Gate, { name: 'gate' }, h(components.Cart, { name: 'strict' }), h(components.Status, { name: 'status' }));
      ReactDOM.createRoot(document.getElementById('a')).render(h(React.StrictMode, null, gated));
    });
    await until(tab, () => document.getElementById('status')?.textContent === 'enabled=false pending=0');
    // A loop through React (an effect or a subscription that sets state on every commit) keeps
    // updates due in the root, ahead of a transition: past the gate, it would have shown.
    await throughGates(tab, ['gate'], () => renders);
    const renders = await tab.evaluate(() => ({ ...renders }));
    assert.ok(renders.strict <= 4 && renders.status <= 4, `no render loop: ${JSON.stringify(renders)}`);
    assert.deepEqual(tab.problems, [], 'no React warnings (a getSnapshot that is not cached would warn)');
    await ctx.close();
  });

  test('the value keeps its identity across re-renders while nothing changed, even from a literal initial value', async () => {
    const ctx = await env.context();
    const tab = await openTab(ctx, page());
    await tab.evaluate(setup);
    await tab.evaluate(() => {
      pkgReact.configureDefaultCache({ backendUrl: null, prefix: 'react4_' });
      ReactDOM.createRoot(document.getElementById('a')).render(React.createElement(components.Parent));
    });
    await until(tab, () => window.seen?.length >= 1);
    await tab.evaluate(() => rerenderParent());
    await until(tab, () => window.seen.length >= 2);
    assert.equal(await tab.evaluate(() => seen.every((v) => v === seen[0])), true, 'an effect depending on the value would not re-run');
    await ctx.close();
  });

  test('useSharedQuery: two roots, one load; an error, then refetch; an expired value shown as stale while it reloads', async () => {
    const ctx = await env.context();
    // Real time (React's scheduler and Web Locks do not run under a fake clock): a 1 s TTL.
    const tab = await openTab(ctx, page());
    await tab.evaluate(setup);
    await tab.evaluate(() => {
      const h = React.createElement;
      window.calls = 0;
      window.fail = false;
      window.states = { a: [], b: [] };
      window.log = [];
      // The data source: slow, counted, logged, and made to fail on demand.
      window.source = () =>
        new Promise((resolve, reject) => {
          calls++;
          log.push(`load ${calls}`);
          setTimeout(() => (fail ? reject(Object.assign(new Error('upstream down'), { retryable: false })) : resolve({ stores: calls })), 50);
        });
      window.Stores = ({ name }) => {
        const q = pkgReact.useSharedQuery('stores', () => source(), { ttl: 1 });
        states[name].push([q.data?.stores ?? null, q.isLoading, q.isStale, q.error?.type ?? null]);
        window[`refetch_${name}`] = q.refetch;
        return h('span', { id: name }, q.data ? `stores v${q.data.stores}` : q.error ? `error ${q.error.type}` : 'loading');
      };
      pkgReact.configureDefaultCache({ backendUrl: null, prefix: 'query_' });
      ReactDOM.createRoot(document.getElementById('a')).render(h(components.Gate, { name: 'gate_a' }, h(Stores, { name: 'a' })));
      ReactDOM.createRoot(document.getElementById('b')).render(h(components.Gate, { name: 'gate_b' }, h(Stores, { name: 'b' })));
    });
    await until(tab, () => document.getElementById('a')?.textContent === 'stores v1' && document.getElementById('b')?.textContent === 'stores v1');
    assert.equal(await tab.evaluate(() => calls), 1, 'two roots, one load');
    assert.deepEqual(await tab.evaluate(() => states.a[0]), [null, true, false, null], 'first render: loading');

    // Expired: the old value stays on screen, marked stale, while the next load runs.
    await tab.evaluate(() => (fail = true));
    await until(tab, () => states.a.some(([data, , isStale]) => data === 1 && isStale));
    // The load fails: the stale value stays on screen, with the error beside it.
    const failedState = JSON.stringify([1, false, true, 'FETCH_FAILED']);
    const failed = await until(tab, (failedState) => Object.values(states).every((s) => JSON.stringify(s.at(-1)) === failedState) && { a: states.a.length, b: states.b.length }, failedState);
    assert.equal(await tab.evaluate(() => document.getElementById('a').textContent), 'stores v1');
    assert.equal(await tab.evaluate(() => calls), 2);
    // A failure waits for refetch. Loading again unasked would be the hook's doing (an effect, or
    // a load started in a render): it first renders isLoading, an update due in the root ahead of
    // a transition, so past the gates it would be in `states`.
    await throughGates(tab, ['gate_a', 'gate_b'], () => ({ calls, states }));
    const since = await tab.evaluate((failed) => [...states.a.slice(failed.a), ...states.b.slice(failed.b)], failed);
    assert.deepEqual(since.filter((s) => JSON.stringify(s) !== failedState), [], 'a failure waits for refetch: no load started');
    assert.equal(await tab.evaluate(() => calls), 2, 'a failure waits for refetch');

    await tab.evaluate(() => (fail = false));
    // Read as refetch resolves: the 1 s TTL starts the next reload soon after.
    const refetched = await tab.evaluate(async () => {
      log.push('refetch');
      return [await refetch_b(), calls, log];
    });
    assert.deepEqual(refetched, [{ stores: 3 }, 3, ['load 1', 'load 2', 'refetch', 'load 3']], 'refetch loads once for both roots, and only the refetch loads');
    await until(tab, () => /stores v[3-9]/.test(document.getElementById('a').textContent) && /stores v[3-9]/.test(document.getElementById('b').textContent));
    const renders = await tab.evaluate(() => states.a.length + states.b.length);
    assert.ok(renders < 40, `renders bounded: ${renders}`);
    assert.deepEqual(tab.problems, []);
    await ctx.close();
  });

  test('useSharedQuery as TanStack Query users know it: array keys, enabled, select, placeholderData, initialData, status flags', async () => {
    const ctx = await env.context();
    const tab = await openTab(ctx, page());
    await tab.evaluate(setup);
    await tab.evaluate(() => {
      const h = React.createElement;
      window.calls = [];
      window.states = [];
      // Orders of a user, page by page: slow enough to see the placeholder.
      const loadOrders = (userId, page) => new Promise((resolve) => {
        calls.push(`${userId}/${page}`);
        setTimeout(() => resolve({ items: Array.from({ length: page + 1 }, (_, i) => ({ id: `${page}-${i}` })) }), 30);
      });
      window.Orders = ({ userId, page }) => {
        const q = pkgReact.useSharedQuery(['orders', { userId, page }], () => loadOrders(userId, page), {
          enabled: userId !== null,
          select: (orders) => orders.items.length,
          placeholderData: (previous) => previous,
        });
        states.push({ page, data: q.data, status: q.status, isPending: q.isPending, isFetching: q.isFetching, isLoading: q.isLoading, isPlaceholderData: q.isPlaceholderData, updatedAt: q.dataUpdatedAt });
        return h('span', { id: 'orders' }, `${q.status} ${q.data}`);
      };
      window.Settings = () => {
        const q = pkgReact.useSharedQuery('settings', () => new Promise((resolve) => setTimeout(() => resolve({ theme: 'dark' }), 30)), { initialData: { theme: 'light' } });
        (window.settings ??= []).push([q.data.theme, q.status, q.isFetching]);
        return h('span', { id: 'settings' }, q.data.theme);
      };
      window.App = () => {
        const [props, setProps] = React.useState({ userId: null, page: 1 });
        window.show = setProps;
        return h(components.Gate, { name: 'gate' }, h(Orders, props));
      };
      pkgReact.configureDefaultCache({ backendUrl: null, prefix: 'tanstack_' });
      ReactDOM.createRoot(document.getElementById('a')).render(h(App));
      ReactDOM.createRoot(document.getElementById('b')).render(h(Settings));
    });
    // Not enabled: nothing loads, and nothing is pretended to.
    await until(tab, () => document.getElementById('orders')?.textContent === 'pending null');
    await throughGates(tab, ['gate'], () => ({ calls, states }));
    assert.deepEqual(await tab.evaluate(() => calls), [], 'a disabled query does not load');
    assert.deepEqual(await tab.evaluate(() => states.at(-1)), { page: 1, data: null, status: 'pending', isPending: true, isFetching: false, isLoading: false, isPlaceholderData: false, updatedAt: 0 });

    // Enabled: a first load (isLoading), then the selected data; the key is the array's JSON
    // whatever the order of its object's fields.
    await tab.evaluate(() => show({ userId: 7, page: 1 }));
    await until(tab, () => document.getElementById('orders').textContent === 'success 2');
    const first = await tab.evaluate(() => {
      const key = pkgReact.queryKeyOf(['orders', { userId: 7, page: 1 }]);
      const cache = pkgReact.getDefaultCache();
      return {
        calls: [...calls],
        loading: states.find((s) => s.page === 1 && s.isLoading),
        sameKey: key === pkgReact.queryKeyOf(['orders', { page: 1, userId: 7 }]),
        stored: cache.get(key),
        updatedAt: states.at(-1).updatedAt,
        writtenAt: cache.getUpdatedAt(key),
      };
    });
    assert.deepEqual(first.calls, ['7/1']);
    assert.deepEqual(first.loading, { page: 1, data: null, status: 'pending', isPending: true, isFetching: true, isLoading: true, isPlaceholderData: false, updatedAt: 0 });
    assert.ok(first.sameKey);
    assert.deepEqual(first.stored, { items: [{ id: '1-0' }, { id: '1-1' }] }, 'the cache holds the value, select only shapes what the component sees');
    assert.ok(first.updatedAt > 0 && first.updatedAt === first.writtenAt, JSON.stringify(first));

    // Another page: the previous page's data stays on screen as a placeholder while it loads.
    await tab.evaluate(() => show({ userId: 7, page: 2 }));
    await until(tab, () => document.getElementById('orders').textContent === 'success 3');
    const placeholder = await tab.evaluate(() => states.find((s) => s.page === 2 && s.isPlaceholderData));
    assert.deepEqual(placeholder, { page: 2, data: 2, status: 'success', isPending: false, isFetching: true, isLoading: false, isPlaceholderData: true, updatedAt: 0 });
    assert.equal((await tab.evaluate(() => states.at(-1))).isPlaceholderData, false);

    // initialData is shown at once, as data, and not stored: the load still runs.
    await until(tab, () => document.getElementById('settings')?.textContent === 'dark');
    assert.deepEqual(await tab.evaluate(() => settings[0]), ['light', 'success', true]);
    assert.deepEqual(await tab.evaluate(() => pkgReact.getDefaultCache().get('settings')), { theme: 'dark' });
    assert.deepEqual(tab.problems, []);
    await ctx.close();
  });

  test('refetchInterval is kept by one tab for the origin, and another takes it over when that tab goes', { skip: ENGINE !== 'chromium' && 'Firefox and WebKit throttle the timers of background tabs, so the foreground tab may rightly take the interval over' }, async () => {
    const ctx = await env.context();
    const tabs = [await openTab(ctx, page()), await openTab(ctx, page())];
    const mount = (tab) =>
      tab.evaluate(() => {
        window.calls = 0;
        window.seen = [];
        const h = React.createElement;
        const Rates = () => {
          const q = pkgReact.useSharedQuery('rates', async () => ({ n: ++calls, at: Date.now() }), { refetchInterval: 1500 });
          if (q.data && seen.at(-1) !== q.data.at) seen.push(q.data.at);
          return h('span', { id: 'rates' }, String(q.data?.n ?? ''));
        };
        pkgReact.configureDefaultCache({ backendUrl: null, prefix: 'interval_' });
        window.root = ReactDOM.createRoot(document.getElementById('a'));
        root.render(h(Rates));
      });
    await mount(tabs[0]);
    await until(tabs[0], () => calls === 1);
    await mount(tabs[1]);
    // Three more intervals: every reload is the first tab's (it wrote the value), and the second
    // tab sees each of them. (The second tab would reload a value 2,250 ms old: the interval is
    // long enough that a busy machine's late timer in the first tab does not get there.)
    await until(tabs[0], () => calls === 4, undefined, 15_000);
    await until(tabs[1], () => seen.length >= 3, undefined, 15_000);
    assert.equal(await tabs[1].evaluate(() => calls), 0, 'the other tab waits for the writer, half an interval longer');
    // The first tab stops showing the key: the second keeps the interval.
    await tabs[0].evaluate(() => root.unmount());
    await until(tabs[1], () => calls >= 2, undefined, 15_000);
    assert.deepEqual(tabs[0].problems.concat(tabs[1].problems), []);
    await ctx.close();
  });

  test('refetchOnWindowFocus: the page shown again reloads the value', async () => {
    const ctx = await env.context();
    const tab = await openTab(ctx, page());
    await tab.evaluate(() => {
      window.calls = 0;
      const h = React.createElement;
      const News = () => {
        const q = pkgReact.useSharedQuery('news', async () => ({ n: ++calls }), { refetchOnWindowFocus: true });
        return h('span', { id: 'news' }, String(q.data?.n ?? ''));
      };
      pkgReact.configureDefaultCache({ backendUrl: null, prefix: 'focus_' });
      ReactDOM.createRoot(document.getElementById('a')).render(h(News));
    });
    await until(tab, () => document.getElementById('news')?.textContent === '1');
    // What the browser fires when the tab is shown again (the page is visible).
    await tab.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
    await until(tab, () => document.getElementById('news').textContent === '2');
    assert.deepEqual(tab.problems, []);
    await ctx.close();
  });

  test('refetchOnReconnect: every tab hears online, the origin loads once', { skip: ENGINE !== 'chromium' && "playwright's network switch (context.setOffline), which this harness has in Chromium only" }, async () => {
    const ctx = await env.context();
    const tabs = [await openTab(ctx, page()), await openTab(ctx, page())];
    for (const tab of tabs) {
      await tab.evaluate(() => {
        window.calls = 0;
        window.fetching = null;
        const h = React.createElement;
        const Feed = () => {
          const q = pkgReact.useSharedQuery('feed', async () => ({ n: Date.now(), by: ++calls }), { refetchOnReconnect: true });
          window.fetching = q.isFetching;
          return h('span', { id: 'feed' }, q.data ? String(q.data.n) : '');
        };
        pkgReact.configureDefaultCache({ backendUrl: null, prefix: 'reconnect_' });
        ReactDOM.createRoot(document.getElementById('a')).render(h(Feed));
      });
      await until(tab, () => document.getElementById('feed').textContent !== '');
    }
    const before = await Promise.all(tabs.map((t) => t.evaluate(() => [calls, document.getElementById('feed').textContent])));
    await ctx.setOffline(true);
    await ctx.setOffline(false);
    // Both tabs reload on `online` and settle (isFetching false) showing a newer value.
    for (const [i, tab] of tabs.entries()) {
      await until(tab, (old) => fetching === false && document.getElementById('feed').textContent !== old, before[i][1]);
    }
    const after = await Promise.all(tabs.map((t) => t.evaluate(() => calls)));
    const loads = after[0] + after[1] - before[0][0] - before[1][0];
    assert.equal(loads, 1, `loads after one online event: ${JSON.stringify({ before, after })}`);
    await ctx.close();
  });

  test('select re-renders only when the selected part changes; useSetSharedCache never re-renders; an ignored failing setValue reaches error listeners, not unhandledrejection', async () => {
    const ctx = await env.context();
    const tab = await openTab(ctx, page());
    await tab.evaluate(setup);
    await tab.evaluate(() => {
      const h = React.createElement;
      window.rejections = [];
      window.addEventListener('unhandledrejection', (e) => rejections.push(String(e.reason?.message ?? e.reason)));
      window.errors = [];
      pkgReact.configureDefaultCache({ backendUrl: null, prefix: 'select_' });
      pkgReact.getDefaultCache().on('error', (e) => errors.push(e.type));
      window.Count = () => {
        renders.count = (renders.count ?? 0) + 1;
        const [n] = pkgReact.useSharedCache('basket', { items: [] }, undefined, { select: (b) => b.items.length });
        return h('span', { id: 'count' }, String(n));
      };
      window.Adder = () => {
        renders.adder = (renders.adder ?? 0) + 1;
        window.add = pkgReact.useSetSharedCache('basket');
        return h('span', { id: 'adder' });
      };
      ReactDOM.createRoot(document.getElementById('a')).render(h(components.Gate, { name: 'gate' }, h(Count), h(Adder)));
    });
    await until(tab, () => document.getElementById('count')?.textContent === '0');
    await tab.evaluate(() => add((b) => ({ items: [...(b?.items ?? []), 'apple'] })));
    await until(tab, () => document.getElementById('count').textContent === '1');
    const settled = await tab.evaluate(() => ({ ...renders }));
    // Same length, other content: the selection is equal, so no render.
    await tab.evaluate(() => add({ items: ['pear'] }));
    await throughGates(tab, ['gate'], () => renders);
    assert.deepEqual(await tab.evaluate(() => ({ ...renders })), settled, 'no render for an equal selection, none for the setter');
    await tab.evaluate(() => add((b) => ({ items: [...b.items, 'fig'] })));
    await until(tab, () => document.getElementById('count').textContent === '2');
    assert.equal(await tab.evaluate(() => renders.adder), 1, 'the setter alone never re-renders');

    // Not awaited and failing: reported, never unhandled. A control rejection left unhandled
    // right after is reported in order behind it, so once it is, the setter's would have been.
    await tab.evaluate(() => {
      add({ when: () => 'not JSON' });
      Promise.reject(new Error('control'));
    });
    await until(tab, () => rejections.includes('control'));
    assert.deepEqual(await tab.evaluate(() => ({ rejections, errors })), { rejections: ['control'], errors: ['INVALID_VALUE'] });
    await ctx.close();
  });

  test('useSharedMutation: the optimistic value shows at once in every root and tab, the result replaces it, a failure rolls it back everywhere', async () => {
    const ctx = await env.context();
    const tab = await openTab(ctx, page());
    const other = await openTab(ctx, page());
    await other.evaluate(() => {
      window.seen = [];
      const c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'mutation_' });
      c.subscribe('likes', (v) => seen.push(v?.count ?? null));
    });
    await tab.evaluate(setup);
    await tab.evaluate(() => {
      const h = React.createElement;
      window.server = { likes: 3, answer: null, answers: [] };
      // The server call: held until the test answers it.
      window.post = () => new Promise((resolve, reject) => server.answers.push((server.answer = { resolve, reject })));
      window.Like = () => {
        const m = pkgReact.useSharedMutation('likes', () => post(), { optimistic: (current) => (window.poison ? { count: () => 1 } : { count: (current?.count ?? 0) + 1 }) });
        window.mutation = m;
        return h('button', { id: 'like' }, `${m.status}${m.error ? ' ' + m.error.type : ''}`);
      };
      window.Count = () => {
        const [likes] = pkgReact.useSharedCache('likes', { count: 0 });
        return h('span', { id: 'count' }, String(likes.count));
      };
      pkgReact.configureDefaultCache({ backendUrl: null, prefix: 'mutation_' });
      pkgReact.getDefaultCache().set('likes', { count: 3 });
      ReactDOM.createRoot(document.getElementById('a')).render(h(Like));
      ReactDOM.createRoot(document.getElementById('b')).render(h(Count));
    });
    await until(tab, () => document.getElementById('count')?.textContent === '3' && document.getElementById('like').textContent === 'idle');
    // Succeeds: 4 at once everywhere, then the server's answer.
    await tab.evaluate(() => mutation.mutate());
    await until(tab, () => document.getElementById('count').textContent === '4' && document.getElementById('like').textContent === 'pending');
    await until(other, () => seen.at(-1) === 4);
    await tab.evaluate(() => server.answer.resolve({ count: 10 }));
    await until(tab, () => document.getElementById('count').textContent === '10' && document.getElementById('like').textContent === 'success');
    await until(other, () => seen.at(-1) === 10);
    // Fails: 11 at once, then 10 again, everywhere.
    await tab.evaluate(() => mutation.mutate());
    await until(other, () => seen.at(-1) === 11);
    await tab.evaluate(() => server.answer.reject(new Error('server said no')));
    await until(tab, () => document.getElementById('count').textContent === '10' && document.getElementById('like').textContent === 'error FETCH_FAILED');
    await until(other, () => seen.at(-1) === 10);
    assert.deepEqual(await other.evaluate(() => seen), [3, 4, 10, 11, 10]);
    // A write made while the call runs is not undone by its failure.
    await tab.evaluate(() => mutation.mutate());
    await tab.evaluate(() => pkgReact.getDefaultCache().set('likes', { count: 42 }));
    await tab.evaluate(() => server.answer.reject(new Error('no')));
    await until(tab, () => document.getElementById('like').textContent === 'error FETCH_FAILED' && document.getElementById('count').textContent === '42');
    // Two mutations started in one task: the first one's failure takes back its own +1 and not
    // the second's, and the second's success stores its +1 over what the first left.
    const likes = () => tab.evaluate(() => pkgReact.getDefaultCache().get('likes')?.count ?? null);
    await tab.evaluate(() => {
      server.answers = [];
      mutation.mutate();
      mutation.mutate();
    });
    await until(tab, () => document.getElementById('count').textContent === '44' && server.answers.length === 2);
    await tab.evaluate(() => server.answers[0].reject(new Error('no')));
    await until(tab, () => document.getElementById('count').textContent === '43');
    await tab.evaluate(() => server.answers[1].resolve(undefined));
    await until(tab, () => document.getElementById('like').textContent === 'success');
    assert.equal(await likes(), 43);
    // Both fail, in either order: the value from before both.
    for (const order of [[0, 1], [1, 0]]) {
      await tab.evaluate(() => {
        server.answers = [];
        mutation.mutate();
        mutation.mutate();
      });
      await until(tab, () => document.getElementById('count').textContent === '45' && server.answers.length === 2);
      await tab.evaluate(([first]) => server.answers[first].reject(new Error('no')), order);
      await until(tab, () => document.getElementById('count').textContent === '44');
      await tab.evaluate(([, second]) => server.answers[second].reject(new Error('no')), order);
      await until(tab, () => document.getElementById('count').textContent === '43' && document.getElementById('like').textContent === 'error FETCH_FAILED');
      await until(other, () => seen.at(-1) === 43);
    }
    // The first succeeds with the server's count while the second runs: the second's +1 shows over
    // it, and its failure leaves the server's count.
    await tab.evaluate(() => {
      server.answers = [];
      mutation.mutate();
      mutation.mutate();
    });
    await until(tab, () => document.getElementById('count').textContent === '45' && server.answers.length === 2);
    await tab.evaluate(() => server.answers[0].resolve({ count: 50 }));
    await until(tab, () => document.getElementById('count').textContent === '51');
    await tab.evaluate(() => server.answers[1].reject(new Error('no')));
    await until(tab, () => document.getElementById('count').textContent === '50' && document.getElementById('like').textContent === 'error FETCH_FAILED');
    await until(other, () => seen.at(-1) === 50);
    // An optimistic value that is not JSON: the mutation fails with INVALID_VALUE before its call,
    // nothing is taken back, and the next one runs as before.
    await tab.evaluate(() => {
      window.poison = true;
      server.answers = [];
      mutation.mutate();
    });
    await until(tab, () => document.getElementById('like').textContent === 'error INVALID_VALUE');
    assert.deepEqual([await likes(), await tab.evaluate(() => server.answers.length)], [50, 0]);
    await tab.evaluate(() => {
      window.poison = false;
      mutation.mutate();
    });
    await until(tab, () => document.getElementById('count').textContent === '51' && server.answers.length === 1);
    await tab.evaluate(() => server.answers[0].reject(new Error('no')));
    await until(tab, () => document.getElementById('count').textContent === '50' && document.getElementById('like').textContent === 'error FETCH_FAILED');
    assert.deepEqual(tab.problems, []);
    await ctx.close();
  });

  test('useSharedMutation: MFEs with their own copies of the package and its React entry chain their mutations of a key', async () => {
    const ctx = await env.context();
    const tab = await openTab(ctx, page());
    await tab.evaluate(async () => {
      const h = React.createElement;
      // The product MFE bundles its own copy (`/pkg-copy/`: another module, another wasm).
      window.pkgReact2 = await import('/pkg-copy/react.js');
      window.answers = [];
      const post = () => new Promise((resolve, reject) => answers.push({ resolve, reject }));
      const like = (n) => (n ?? 0) + 1;
      pkgReact.configureDefaultCache({ backendUrl: null, prefix: 'copies_' });
      pkgReact2.configureDefaultCache({ backendUrl: null, prefix: 'copies_' });
      window.shellCache = pkgReact.getDefaultCache();
      window.productCache = pkgReact2.getDefaultCache();
      window.Shell = () => {
        window.shell = pkgReact.useSharedMutation('likes', post, { optimistic: like });
        return h('i', { id: 'shell' }, window.shell.status);
      };
      window.Product = () => {
        window.product = pkgReact2.useSharedMutation('likes', post, { optimistic: like });
        return h('i', { id: 'product' }, window.product.status);
      };
      shellCache.set('likes', 42);
      ReactDOM.createRoot(document.getElementById('a')).render(h(Shell));
      ReactDOM.createRoot(document.getElementById('b')).render(h(Product));
    });
    const shows = () => tab.evaluate(() => [shellCache.get('likes'), productCache.get('likes')]);
    await until(tab, () => document.getElementById('shell')?.textContent === 'idle' && document.getElementById('product')?.textContent === 'idle');
    assert.notEqual(await tab.evaluate(() => shellCache === productCache), true, 'two instances, one per copy');
    // One like from each MFE; the shell's fails: its own +1 is taken back, not the product's,
    // and the product's success stores its +1 over what was there before both.
    await tab.evaluate(() => {
      shell.mutate();
      product.mutate();
    });
    await until(tab, () => answers.length === 2 && shellCache.get('likes') === 44);
    await tab.evaluate(() => answers[0].reject(new Error('no')));
    await until(tab, () => document.getElementById('shell').textContent === 'error');
    assert.deepEqual(await shows(), [43, 43]);
    await tab.evaluate(() => answers[1].resolve(undefined));
    await until(tab, () => document.getElementById('product').textContent === 'success');
    assert.deepEqual(await shows(), [43, 43]);
    assert.equal(await tab.evaluate(() => JSON.parse(localStorage.getItem('copies_likes')).v), 43, 'stored for everyone');
    // Both fail, the product's first: the value from before both.
    await tab.evaluate(() => {
      answers.length = 0;
      shell.mutate();
      product.mutate();
    });
    await until(tab, () => answers.length === 2 && productCache.get('likes') === 45);
    await tab.evaluate(() => answers[1].reject(new Error('no')));
    await until(tab, () => document.getElementById('product').textContent === 'error');
    assert.deepEqual(await shows(), [44, 44]);
    await tab.evaluate(() => answers[0].reject(new Error('no')));
    await until(tab, () => document.getElementById('shell').textContent === 'error');
    assert.deepEqual(await shows(), [43, 43]);
    assert.deepEqual(tab.problems, []);
    await ctx.close();
  });

  test('useSharedMutation: onSuccess, onError and onSettled (the hook\'s, then the call\'s) run once the cache holds the outcome; variables; a callback that throws is reported and changes nothing', async () => {
    const ctx = await env.context();
    const tab = await openTab(ctx, page());
    await tab.evaluate(() => {
      const h = React.createElement;
      window.log = [];
      window.answers = [];
      window.reported = [];
      // reportError's event: handled here, so it is not an uncaught error of the page.
      addEventListener('error', (e) => {
        reported.push(e.error?.message);
        e.preventDefault();
      });
      window.c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'callbacks_' });
      window.Rename = () => {
        const m = pkgReact.useSharedMutation('name', () => new Promise((resolve, reject) => answers.push({ resolve, reject })), {
          cache: c,
          optimistic: (_, to) => to,
          onSuccess: (result, to) => log.push(['hook success', result, to, c.get('name')]),
          onError: (error, to) => log.push(['hook error', error.type, to, c.get('name')]),
          onSettled: (result, error, to) => log.push(['hook settled', result ?? null, error?.type ?? null, to]),
        });
        window.m = m;
        return h('span', { id: 'm' }, `${m.status} ${m.variables ?? '-'}`);
      };
      c.set('name', 'a');
      ReactDOM.createRoot(document.getElementById('a')).render(h(Rename));
    });
    await until(tab, () => document.getElementById('m')?.textContent === 'idle -');
    await tab.evaluate(() => {
      window.done = m.mutateAsync('b', { onSuccess: (result) => log.push(['call success', result]), onSettled: () => log.push(['call settled']) });
    });
    await until(tab, () => document.getElementById('m').textContent === 'pending b' && answers.length === 1);
    assert.deepEqual(await tab.evaluate(() => log), [], 'nothing before the call settles');
    await tab.evaluate(() => answers[0].resolve('B'));
    assert.equal(await tab.evaluate(() => done), 'B', 'mutateAsync resolves after the callbacks');
    assert.deepEqual(await tab.evaluate(() => log), [['hook success', 'B', 'b', 'B'], ['call success', 'B'], ['hook settled', 'B', null, 'b'], ['call settled']]);
    // A failure, with a call's onError that throws: reported, and the rest runs as before.
    await tab.evaluate(() => {
      log.length = 0;
      m.mutate('c', {
        onError: () => {
          throw new Error('boom');
        },
        onSettled: (result, error, to) => log.push(['call settled', result ?? null, error.type, to]),
      });
    });
    await until(tab, () => answers.length === 2 && c.get('name') === 'c');
    await tab.evaluate(() => answers[1].reject(new Error('no')));
    await until(tab, () => log.length === 3 && document.getElementById('m').textContent === 'error c');
    assert.deepEqual(await tab.evaluate(() => [log, reported, c.get('name')]), [
      [['hook error', 'FETCH_FAILED', 'c', 'B'], ['hook settled', null, 'FETCH_FAILED', 'c'], ['call settled', null, 'FETCH_FAILED', 'c']],
      ['boom'],
      'B',
    ]);
    await tab.evaluate(() => m.reset());
    await until(tab, () => document.getElementById('m').textContent === 'idle -');
    // An `optimistic` that throws when applied again over a new base: reported, what is confirmed
    // shows, and the mutation still settles.
    await tab.evaluate(() => {
      const h = React.createElement;
      window.counts = [];
      window.Count = () => {
        const n = pkgReact.useSharedMutation('count', () => new Promise((resolve, reject) => counts.push({ resolve, reject })), {
          cache: c,
          optimistic: (current, v) => {
            if (current === v.throwOver) throw new Error('replay');
            return current + 1;
          },
        });
        window.n = n;
        return h('span', { id: 'n' }, n.status);
      };
      c.set('count', 0);
      ReactDOM.createRoot(document.getElementById('b')).render(h(Count));
    });
    await until(tab, () => document.getElementById('n')?.textContent === 'idle');
    await tab.evaluate(() => {
      reported.length = 0;
      n.mutate({});
      n.mutate({ throwOver: 0 });
    });
    await until(tab, () => counts.length === 2 && c.get('count') === 2);
    await tab.evaluate(() => counts[0].reject(new Error('no')));
    await until(tab, () => c.get('count') === 0 && reported.includes('replay'));
    await tab.evaluate(() => counts[1].resolve(undefined));
    await until(tab, () => document.getElementById('n').textContent === 'success');
    // WebKit logs a reported error even when a listener handled it.
    assert.deepEqual(tab.problems.filter((p) => !p.endsWith('Error: boom') && !p.endsWith('Error: replay')), []);
    await ctx.close();
  });

  test('a scope as the hooks\' cache (provider or option): its keys, a stale value while it reloads, a failed mutation rolled back, its sync status, change events of its keys', async () => {
    const ctx = await env.context();
    const tab = await openTab(ctx, page());
    await tab.evaluate(() => {
      const h = React.createElement;
      window.c = new pkg.BackendSyncedCacheService({ backendUrl: null, prefix: 'scoped_' });
      window.cart = c.scope('cart');
      window.changes = [];
      cart.on('change', (key) => changes.push(key));
      window.loads = 0;
      window.answers = [];
      window.states = [];
      c.set('cart:likes', 5);
      window.Items = () => {
        const [items, setItems] = pkgReact.useSharedCache('items', []);
        window.setItems = setItems;
        const q = pkgReact.useSharedQuery('price', () => new Promise((resolve) => setTimeout(() => resolve({ total: ++loads }), 30)), { ttl: 1 });
        const m = pkgReact.useSharedMutation('likes', () => new Promise((resolve, reject) => answers.push({ resolve, reject })), { optimistic: (n) => n + 1 });
        window.mutation = m;
        const status = pkgReact.useSyncStatus();
        states.push({ total: q.data?.total ?? null, stale: q.isStale });
        return h('span', { id: 'items' }, `${items.length} ${q.data?.total ?? '-'} ${m.status} ${status.enabled}`);
      };
      // Another MFE's root on the whole instance, reading the same key by its full name.
      window.Whole = () => {
        const [likes] = pkgReact.useSharedCache('cart:likes', 0, undefined, { cache: c });
        return h('b', { id: 'likes' }, String(likes));
      };
      ReactDOM.createRoot(document.getElementById('a')).render(h(pkgReact.SharedCacheProvider, { cache: cart }, h(Items)));
      ReactDOM.createRoot(document.getElementById('b')).render(h(Whole));
    });
    const text = (id) => tab.evaluate((id) => document.getElementById(id)?.textContent, id);
    await until(tab, () => document.getElementById('items')?.textContent === '0 1 idle false' && document.getElementById('likes')?.textContent === '5');
    assert.deepEqual(await tab.evaluate(() => c.get('cart:price')), { total: 1 }, 'the query loads into the scope');
    await tab.evaluate(() => c.set('cart:items', [1, 2]));
    await until(tab, () => document.getElementById('items').textContent.startsWith('2 '));
    await tab.evaluate(() => setItems([1]));
    assert.deepEqual(await tab.evaluate(() => c.get('cart:items')), [1], 'setValue writes the scope\'s key');
    // Expired: the old value shows, marked stale, while it reloads (the scope reads it).
    await until(tab, () => states.some((s) => s.total === 1 && s.stale) && document.getElementById('items').textContent.startsWith('1 2 '), undefined, 8000);
    // The mutation's optimistic value shows in both roots; its failure rolls it back in both.
    await tab.evaluate(() => mutation.mutate());
    await until(tab, () => document.getElementById('likes').textContent === '6' && answers.length === 1);
    await tab.evaluate(() => answers[0].reject(new Error('no')));
    await until(tab, () => document.getElementById('items').textContent.endsWith(' error false') && document.getElementById('likes').textContent === '5');
    assert.equal(await text('likes'), '5');
    // 'change' on a scope hears its own keys, without `cart:`, and no other.
    const heard = await tab.evaluate(() => {
      changes.length = 0;
      c.set('other', 1);
      c.set('cart:items', []);
      return [...changes];
    });
    assert.deepEqual(heard, ['items']);
    assert.deepEqual(tab.problems, []);
    await ctx.close();
  });

  test('useSuspenseSharedQuery: the fallback while loading, then the data; a failed load goes to the error boundary', async () => {
    const ctx = await env.context();
    const tab = await openTab(ctx, page(), { allowConsoleErrors: true });
    await tab.evaluate(() => {
      const h = React.createElement;
      window.calls = 0;
      class Boundary extends React.Component {
        constructor(props) {
          super(props);
          this.state = { error: null };
        }
        static getDerivedStateFromError(error) {
          return { error };
        }
        render() {
          return this.state.error ? h('span', { id: this.props.id }, `error ${this.state.error.type}`) : this.props.children;
        }
      }
      const Profile = ({ id, fail }) => {
        const q = pkgReact.useSuspenseSharedQuery(`profile-${id}`, () => new Promise((resolve, reject) => {
          calls++;
          setTimeout(() => (fail ? reject(Object.assign(new Error('gone'), { retryable: false })) : resolve({ name: 'Ada' })), 30);
        }));
        return h('span', { id }, q.data.name);
      };
      const slot = (id, fail) => h(Boundary, { id }, h(React.Suspense, { fallback: h('span', { id }, 'loading') }, h(Profile, { id, fail })));
      pkgReact.configureDefaultCache({ backendUrl: null, prefix: 'suspense_' });
      ReactDOM.createRoot(document.getElementById('a')).render(slot('ok', false));
      ReactDOM.createRoot(document.getElementById('b')).render(slot('bad', true));
    });
    await until(tab, () => document.getElementById('ok')?.textContent === 'Ada' && document.getElementById('bad')?.textContent === 'error FETCH_FAILED');
    assert.equal(await tab.evaluate(() => calls), 2, 'one load each, however many times React rendered while suspended');
    await ctx.close();
  });
});

test('server-side rendering renders the initial value and touches no storage', async () => {
  const { createElement: h } = await import('react');
  const { renderToString } = await import('react-dom/server');
  const { useSharedCache, useSharedQuery, useSyncStatus } = await import('../../pkg/react.js');
  let loads = 0;
  function App() {
    const [cart] = useSharedCache('cart', { items: ['ssr'] });
    const status = useSyncStatus();
    const q = useSharedQuery('stores', () => ++loads);
    return h('p', null, `${cart.items.join(',')} ${status.enabled} ${q.data} ${q.isLoading}`);
  }
  assert.equal(renderToString(h(App)), '<p>ssr false null false</p>');
  assert.equal(loads, 0, 'nothing loads on the server');
});
