import { useSharedCache } from 'mfe-shared-cache/react';
import { EMPTY_CART, KEYS, TTL, cartTotal, money, setQuantity } from '../cart-contract.js';

export function CartView() {
  const [cart, setCart] = useSharedCache(KEYS.cart, EMPTY_CART, TTL.cart);
  const [lastOrder, setLastOrder] = useSharedCache(KEYS.lastOrder, null, TTL.lastOrder);

  const placeOrder = async () => {
    await setLastOrder({ id: `A-${Date.now().toString(36).toUpperCase()}`, total: cartTotal(cart), items: cart.items.length });
    await setCart(EMPTY_CART);
  };

  return (
    <section className="sh-cart" aria-label="Cart">
      <h2>Your cart</h2>
      {lastOrder && (
        <p className="sh-ordered" data-testid="last-order">
          Order {lastOrder.id} placed: {money(lastOrder.total)}.
        </p>
      )}
      {cart.items.length === 0 ? (
        <p className="sh-empty">Nothing here yet. Add something from the products page.</p>
      ) : (
        <>
          <table className="sh-lines" data-testid="cart-lines">
            <thead>
              <tr>
                <th>Item</th>
                <th className="num">Price</th>
                <th className="num">Qty</th>
                <th className="num">Subtotal</th>
              </tr>
            </thead>
            <tbody>
              {cart.items.map((i) => (
                <tr key={i.id} data-testid={`line-${i.id}`}>
                  <td>{i.name}</td>
                  <td className="num">{money(i.price)}</td>
                  <td className="num qty">
                    <button type="button" className="ghost" aria-label={`one ${i.name} less`} onClick={() => setCart((c) => setQuantity(c, i.id, i.qty - 1))}>
                      −
                    </button>
                    <span>{i.qty}</span>
                    <button type="button" className="ghost" aria-label={`one more ${i.name}`} onClick={() => setCart((c) => setQuantity(c, i.id, i.qty + 1))}>
                      +
                    </button>
                  </td>
                  <td className="num">{money(i.qty * i.price)}</td>
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr>
                <td colSpan={3}>Total</td>
                <td className="num" data-testid="cart-total">
                  {money(cartTotal(cart))}
                </td>
              </tr>
            </tfoot>
          </table>
          <button type="button" onClick={placeOrder} data-testid="place-order">
            Place order
          </button>
        </>
      )}
    </section>
  );
}
