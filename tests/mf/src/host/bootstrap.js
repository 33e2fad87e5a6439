// The host MFE: configures and opens the page's default cache, and loads the remote's widget
// (from another origin) when the test asks.
import { configureDefaultCache, getDefaultCache } from 'mfe-shared-cache/react';
import { OPTIONS } from '../options.js';

configureDefaultCache(OPTIONS);
const cache = getDefaultCache();
window.__mf = { cache, remote: () => import('remote/widget') };
window.__ready = true;
