// Two React roots, as two MFEs mount them: one reads a value through `useCell`, one never does.
// Each records when its first layout effect ran (ms since navigation started).
import { createElement as h, useLayoutEffect } from 'react';
import { createRoot } from 'react-dom/client';
import { useCell } from 'cell';

function Mark({ name, children }) {
  useLayoutEffect(() => {
    (window.__firstLayout ??= {})[name] ??= performance.now();
  }, []);
  return children;
}

function Cart() {
  const [items] = useCell('cart', 0);
  return h('p', null, `${items} items`);
}

createRoot(document.getElementById('cart')).render(h(Mark, { name: 'cart' }, h(Cart)));
createRoot(document.getElementById('plain')).render(h(Mark, { name: 'plain' }, h('p', null, 'plain')));
