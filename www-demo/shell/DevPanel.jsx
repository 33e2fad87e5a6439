import { useEffect, useRef } from 'react';
import { mountDevtools } from 'mfe-shared-cache/devtools';
import { isOffline, onNetworkChange, setOffline } from './network-switch.js';

// The package's cache inspector, with the demo's own offline switch: it holds every tab of the
// demo offline, across reloads, where the inspector's own switch holds this page only.
const DEMO_SWITCH = { isOffline, setOffline, onChange: onNetworkChange };

export function DevPanel() {
  const slot = useRef(null);
  useEffect(() => mountDevtools(slot.current, { offline: DEMO_SWITCH }), []);
  return <div ref={slot} />;
}
