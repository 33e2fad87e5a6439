// The product MFE ("product_management" in the seed): built as its own bundle, with its own React
// and its own copy of mfe-shared-cache, and loaded by the shell at run time. Its contract with the
// shell is this module: mount(element) → { unmount }, plus its cache instance (the inspector finds
// it on the page hub).
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { configureDefaultCache, getDefaultCache } from 'mfe-shared-cache/react';
import { CACHE_OPTIONS } from '../cart-contract.js';
import { ProductList } from './ProductList.jsx';

configureDefaultCache({ ...CACHE_OPTIONS, app: 'product' });

/** This MFE's cache instance (one per bundle, shared with the shell's through the page hub). */
export const cache = getDefaultCache();

export function mount(element) {
  const root = createRoot(element);
  root.render(
    <StrictMode>
      <ProductList />
    </StrictMode>,
  );
  return { unmount: () => root.unmount() };
}
