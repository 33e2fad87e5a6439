// Two React roots, as two MFEs mount them: one reads a value through `useCell`, one never does.
// Each records when its first layout effect ran (ms since navigation started).
import { createElement as h } from 'react';
import { createRoot } from 'react-dom/client';
import Cart from './cart.js';
import { Mark } from './mark.js';

createRoot(document.getElementById('cart')).render(h(Mark, { name: 'cart' }, h(Cart)));
createRoot(document.getElementById('plain')).render(h(Mark, { name: 'plain' }, h('p', null, 'plain')));
