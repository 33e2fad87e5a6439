// @ts-check
// The wasm, compiled and instantiated synchronously the first time a cache is made: importing the
// package waits for nothing (no top-level await, no fetch of a .wasm file), roots that never make
// a cache never pay for it, and a remote on another origin needs no CORS for a separate file.
// The bytes travel inside the JS as a latin1 string (one character per byte, renamed so that the
// frequent ones are printable ASCII, which bundlers keep as it is; see scripts/embed-wasm.mjs).
import { initSync } from './core.js';
import bytes, { order } from './core_wasm.js';

let loaded = false;

export function loadWasm() {
  if (loaded) return;
  const byteOf = new Uint8Array(256);
  for (let c = 0; c < 256; c++) byteOf[c] = order.charCodeAt(c);
  const buffer = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) buffer[i] = byteOf[bytes.charCodeAt(i)];
  initSync({ module: new WebAssembly.Module(buffer) });
  loaded = true;
}
