// The shell (the order MFE of the seed): header, navigation and cart, plus the cache inspector. It
// hosts the product MFE, a separately built bundle it loads at run time.
import './network-switch.js'; // first: before any cache instance looks at the network
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { configureDefaultCache } from 'mfe-shared-cache/react';
import { CACHE_OPTIONS } from '../cart-contract.js';
import { App } from './App.jsx';

configureDefaultCache({ ...CACHE_OPTIONS, app: 'shell' });

createRoot(document.getElementById('shell')).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
