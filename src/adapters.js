// The JavaScript the browser adapters run in the page (src/storage.rs, src/tabs.rs,
// src/locks.rs): loops over browser objects whose items would each cost a crossing into the
// wasm, and filters whose rejects need not cross at all. One module, since each is one more
// file a page (or a test runner's server) loads.

// ---- storage ----------------------------------------------------------------------------------

// Every item under `prefix` in one call: `[joined, count, key, value, key, value, …]`, where
// `joined` holds `count` keys and values separated by NUL, and the items holding a NUL follow.
export function scan(storage, prefix) {
  const joined = [];
  const apart = [];
  // Stops at the first missing key too: a storage may misreport its length.
  for (let i = 0, n = storage.length; i < n; i++) {
    const key = storage.key(i);
    if (key === null || key === undefined) break;
    if (typeof key === 'string' && key.startsWith(prefix)) {
      const value = storage.getItem(key);
      if (typeof value !== 'string') continue;
      if (key.includes('\0') || value.includes('\0')) apart.push(key, value);
      else joined.push(key, value);
    }
  }
  return [joined.join('\0'), joined.length / 2, ...apart];
}

// A long string written straight into the wasm's memory (`into` is a view of it), by the browser's
// encoder rather than wasm-bindgen's loop over its characters.
const encoder = new TextEncoder();

export function encodeInto(text, into) {
  return encoder.encodeInto(text, into).written;
}

let failure;

export function getEach(storage, joined, count) {
  const keys = joined.split('\0');
  if (keys.length !== count + 1) throw new Error('a storage key holds a NUL');
  let out = '';
  for (let i = 0; i < count; i++) {
    const value = storage.getItem(keys[i]);
    out += typeof value !== 'string' ? '0\0' : value.includes('\0') ? '2\0' : '1' + value + '\0';
  }
  return out;
}

export function setEach(storage, joined, count) {
  const parts = joined.split('\0');
  if (parts.length !== 2 * count + 1) {
    failure = new Error('a storage key or value holds a NUL');
    return 0;
  }
  for (let i = 0; i < count; i++) {
    try {
      storage.setItem(parts[2 * i], parts[2 * i + 1]);
    } catch (error) {
      failure = error;
      return i;
    }
  }
  return count;
}

export function takeFailure() {
  const error = failure;
  failure = undefined;
  return error;
}

// ---- the hash maps' secret ----------------------------------------------------------------------

export function fillRandom(into) {
  if (typeof globalThis.crypto?.getRandomValues === 'function') crypto.getRandomValues(into);
  else for (let i = 0; i < into.length; i++) into[i] = Math.random() * 256;
}

// ---- other tabs -------------------------------------------------------------------------------

// Every key a cache keeps starts with its prefix: the `storage` events of other scripts' writes
// to the same storage (or to another storage) stop here, before they cross into the wasm.
export function storageListener(prefix, storage, handler) {
  return (event) => {
    const key = event.key;
    if (typeof key === 'string' && key.startsWith(prefix) && event.storageArea === storage) handler(key, event.newValue);
  };
}

// ---- Web Locks --------------------------------------------------------------------------------

// A page's held locks are every tab's (the loads of a whole origin, with their markers): the
// names are filtered here, and only those asked for cross into the wasm.
export async function heldNames(locks, prefix) {
  const { held } = await locks.query();
  let out = '';
  for (const lock of held ?? []) if (typeof lock.name === 'string' && lock.name.startsWith(prefix)) out += lock.name + '\0';
  return out;
}
