// The remote MFE's exposed module: the page's default cache as the remote sees it. With its own
// copy of the package it has its own instance (which meets the host's on the page hub); with a
// shared singleton it is the host's instance.
import { configureDefaultCache, getDefaultCache } from 'mfe-shared-cache/react';
import { OPTIONS } from '../options.js';

configureDefaultCache(OPTIONS);

export const cache = () => getDefaultCache();
export function write(key, value) {
  return getDefaultCache().set(key, value);
}
