// The demo's offline switch: what DevTools' "Offline" checkbox does, for every tab of the demo at
// once and across reloads (the flag lives in localStorage), so the outbox can be watched filling
// up and draining. While it is on, requests to the cache API fail as they would without a network,
// and `navigator.onLine` and the online/offline events say so; page assets still load, so a tab
// can be reloaded while "offline". Imported before anything creates a cache instance.
const FLAG = 'mfe-demo:offline';
const API = '/api/cache/';

const browserOnline = Object.getOwnPropertyDescriptor(Navigator.prototype, 'onLine').get;
Object.defineProperty(navigator, 'onLine', {
  configurable: true,
  get: () => browserOnline.call(navigator) && !isOffline(),
});

const realFetch = globalThis.fetch.bind(globalThis);
globalThis.fetch = (input, init) => {
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url, location.href);
  if (isOffline() && url.origin === location.origin && url.pathname.startsWith(API)) {
    return Promise.reject(new TypeError('Failed to fetch (the demo is switched offline)'));
  }
  return realFetch(input, init);
};

export function isOffline() {
  try {
    return localStorage.getItem(FLAG) === '1';
  } catch {
    return false;
  }
}

export function setOffline(offline) {
  if (offline) localStorage.setItem(FLAG, '1');
  else localStorage.removeItem(FLAG);
  announce();
}

// Other tabs of the demo follow the switch.
addEventListener('storage', (e) => {
  if (e.key === FLAG || e.key === null) announce();
});

const listeners = new Set();
export function onNetworkChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function announce() {
  dispatchEvent(new Event(isOffline() ? 'offline' : 'online'));
  for (const l of listeners) l(isOffline());
}
