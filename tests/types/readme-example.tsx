// The README's "Adding it to a micro-frontend" example, kept compiling.
import { configureDefaultCache, useSharedCache } from 'mfe-shared-cache/react';

export type Cart = { items: { id: string; name: string; price: number; qty: number }[] };
export const EMPTY_CART: Cart = { items: [] };
export const CACHE_OPTIONS = { prefix: 'acme_', backendUrl: '/api/cache', syncInterval: 30_000 };
configureDefaultCache(CACHE_OPTIONS);

export function AddToCart({ product }: { product: { id: string; name: string; price: number } }) {
  const [, setCart] = useSharedCache<Cart>('cart', EMPTY_CART, 7 * 24 * 3600);
  return <button onClick={() => setCart((cart) => ({ items: [...cart.items, { ...product, qty: 1 }] }))}>Add</button>;
}

export function CartBadge() {
  const [cart] = useSharedCache<Cart>('cart', EMPTY_CART);
  return <span>{cart.items.length}</span>;
}
