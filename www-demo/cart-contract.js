// The contract the MFEs share through the cache: key names, TTLs and the cart's shape. In a real
// organisation this is a tiny package both teams depend on; each bundle gets its own copy of it,
// as it does of mfe-shared-cache.
export const CACHE_OPTIONS = Object.freeze({ prefix: 'acme_', syncInterval: 2000 });

export const KEYS = Object.freeze({ cart: 'cart', user: 'user', lastAdded: 'lastAdded', lastOrder: 'lastOrder' });

export const TTL = Object.freeze({
  cart: 7 * 24 * 3600, // a week: a cart outlives the session
  user: 8 * 3600, // a working day
  lastAdded: 20, // the "just added" notice
  lastOrder: 24 * 3600,
});

export const EMPTY_CART = Object.freeze({ items: [] });

/** The cart with one more of `product` at `price` (values from the cache are frozen: copy). */
export function addToCart(cart, product, price) {
  const items = cart.items.map((i) => (i.id === product.id ? { ...i, qty: i.qty + 1 } : i));
  if (!items.some((i) => i.id === product.id)) items.push({ id: product.id, name: product.name, price, qty: 1 });
  return { items };
}

/** The cart with `qty` of item `id` (0 removes it). */
export function setQuantity(cart, id, qty) {
  return { items: cart.items.flatMap((i) => (i.id !== id ? [i] : qty > 0 ? [{ ...i, qty }] : [])) };
}

export const itemCount = (cart) => cart.items.reduce((n, i) => n + i.qty, 0);
export const cartTotal = (cart) => cart.items.reduce((sum, i) => sum + i.qty * i.price, 0);
export const money = (amount) => `$${amount.toFixed(2)}`;
