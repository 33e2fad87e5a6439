import { useSharedCache, useSharedQuery } from 'mfe-shared-cache/react';
import { fetchCatalogue, memberPrice } from './catalogue.js';
import { EMPTY_CART, KEYS, TTL, addToCart, money } from '../cart-contract.js';

export function ProductList() {
  const [cart, setCart] = useSharedCache(KEYS.cart, EMPTY_CART, TTL.cart);
  const [user] = useSharedCache(KEYS.user, null);
  const [, setLastAdded] = useSharedCache(KEYS.lastAdded, null, TTL.lastAdded);
  const member = user !== null;
  // Keys of the product MFE's own data live under `product:` (its scope); cart and user are shared.
  const catalogue = useSharedQuery('product:catalogue', fetchCatalogue, { ttl: '5m' });

  const add = (product) => {
    const price = member ? memberPrice(product.price) : product.price;
    // The updater reads the cache's current cart, so an add made in another tab a moment ago counts.
    setCart((current) => addToCart(current, product, price));
    setLastAdded({ id: product.id, name: product.name, at: Date.now() });
  };

  return (
    <section className="pm" aria-label="Products">
      <div className="pm-head">
        <h2>Coffee gear</h2>
        <p className="pm-note" data-testid="member-note">
          {member ? `Signed in as ${user.name}: member prices, 10 % off.` : 'Sign in for member prices.'}
        </p>
      </div>
      {catalogue.data === null && (
        <p className="pm-note" role="status">
          {catalogue.error ? `The catalogue could not be loaded (${catalogue.error.message}). ` : 'Loading the catalogue…'}
          {catalogue.error && (
            <button type="button" className="ghost" onClick={catalogue.refetch}>
              Try again
            </button>
          )}
        </p>
      )}
      <ul className="pm-grid">
        {(catalogue.data ?? []).map((p) => {
          const inCart = cart.items.find((i) => i.id === p.id)?.qty ?? 0;
          return (
            <li key={p.id} className="pm-card" data-testid={`product-${p.id}`}>
              <div className="pm-swatch" style={{ '--hue': p.hue }} aria-hidden="true">
                {p.name.split(' ').map((w) => w[0]).join('').slice(0, 2)}
              </div>
              <h3>{p.name}</h3>
              <p className="pm-detail">{p.detail}</p>
              <p className="pm-price">
                {member ? (
                  <>
                    <s>{money(p.price)}</s> <strong>{money(memberPrice(p.price))}</strong>
                  </>
                ) : (
                  <strong>{money(p.price)}</strong>
                )}
              </p>
              <div className="pm-actions">
                <button type="button" onClick={() => add(p)} data-testid={`add-${p.id}`}>
                  Add to cart
                </button>
                {inCart > 0 && <span className="pm-incart">{inCart} in cart</span>}
              </div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
