import { useEffect, useState } from 'react';
import { getDefaultCache, useSharedCache } from 'mfe-shared-cache/react';
import { EMPTY_CART, KEYS, TTL, itemCount } from '../cart-contract.js';
import { CartView } from './CartView.jsx';
import { DevPanel } from './DevPanel.jsx';
import { ProductHost, loadProductMfe } from './ProductHost.jsx';

const ROUTES = { '#/products': 'Products', '#/cart': 'Cart' };
const DEMO_USER = Object.freeze({ name: 'Ada Lovelace', email: 'ada@example.com' });

function useRoute() {
  const read = () => (ROUTES[location.hash] ? location.hash : '#/products');
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onHash = () => setRoute(read());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  return route;
}

export function App() {
  const route = useRoute();
  const [cart] = useSharedCache(KEYS.cart, EMPTY_CART, TTL.cart);
  const [user, setUser] = useSharedCache(KEYS.user, null, TTL.user);
  const [lastAdded] = useSharedCache(KEYS.lastAdded, null);
  useEffect(() => {
    loadProductMfe().catch(() => {}); // ProductHost shows the failure; the inspector finds its cache
  }, []);

  const count = itemCount(cart);
  return (
    <div className="layout">
      <header className="sh-header">
        <div className="sh-brand">
          <span className="sh-logo" aria-hidden="true">A</span>
          <div>
            <strong>Acme Coffee</strong>
            <small>orders · shell MFE</small>
          </div>
        </div>
        <nav className="sh-nav">
          {Object.entries(ROUTES).map(([hash, label]) => (
            <a key={hash} href={hash} className={route === hash ? 'active' : undefined}>
              {label}
              {hash === '#/cart' && (
                <span className="sh-badge" data-testid="cart-count" aria-label={`${count} items in cart`}>
                  {count}
                </span>
              )}
            </a>
          ))}
        </nav>
        {lastAdded && (
          <span className="sh-toast" data-testid="last-added" role="status">
            Added {lastAdded.name}
          </span>
        )}
        <div className="sh-user">
          {user ? (
            <>
              <span data-testid="user-name">{user.name}</span>
              <button type="button" className="ghost" onClick={() => getDefaultCache().remove(KEYS.user)}>
                Sign out
              </button>
            </>
          ) : (
            <button type="button" className="ghost" onClick={() => setUser(DEMO_USER)} data-testid="sign-in">
              Sign in
            </button>
          )}
        </div>
      </header>
      <main className="sh-main">{route === '#/cart' ? <CartView /> : <ProductHost />}</main>
      <DevPanel />
    </div>
  );
}
