import { createElement } from 'react';
import { hydrateRoot } from 'react-dom/client';
import { configureDefaultCache, getDefaultCache } from 'mfe-shared-cache/react';
import { App } from './App.js';

configureDefaultCache({ backendUrl: null });
// React reports a hydration mismatch here (and discards the server's HTML of the root).
window.__recoverable = [];
hydrateRoot(document.getElementById('root'), createElement(App), {
  onRecoverableError: (error) => window.__recoverable.push(String(error?.message ?? error)),
});
// For the test: the page's default cache, to store values before the next load.
window.__cache = getDefaultCache;
window.__ready = true;
