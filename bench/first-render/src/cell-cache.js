// The app with the package: the value comes from the shared cache.
import { configureDefaultCache, useSharedCache } from 'mfe-shared-cache/react';

configureDefaultCache({ backendUrl: null, prefix: 'first_render_' });
export const useCell = (key, initial) => useSharedCache(key, initial);
