// The root that reads a value through `useCell`.
import { createElement as h } from 'react';
import { useCell } from 'cell';

export default function Cart() {
  const [items] = useCell('cart', 0);
  return h('p', null, `${items} items`);
}
