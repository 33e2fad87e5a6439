// The same two roots, the one that reads the cache loaded as its own chunk and mounted when it
// arrives, as a Module Federation remote mounts itself: the other root renders without waiting
// for the package. (React.lazy would do it too, but React holds back what a Suspense boundary
// reveals by up to 300 ms after its fallback, which would swamp what this app measures.)
import { createElement as h } from 'react';
import { createRoot } from 'react-dom/client';
import { Mark } from './mark.js';

import('./cart.js').then(({ default: Cart }) => {
  createRoot(document.getElementById('cart')).render(h(Mark, { name: 'cart' }, h(Cart)));
});
createRoot(document.getElementById('plain')).render(h(Mark, { name: 'plain' }, h('p', null, 'plain')));
