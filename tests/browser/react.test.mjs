// `mfe-shared-cache/react` with React 19 in headless Chromium: several roots (one per MFE) on one
// store, per-key re-renders, no render loops, providers, cross-tab updates — and SSR in Node.
import test, { describe } from 'node:test';
import assert from 'node:assert/strict';
import { suite, openTab, until } from './harness.mjs';
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
