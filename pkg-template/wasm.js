// @ts-check
// The wasm, compiled and instantiated synchronously the first time a cache is made: importing the
// package waits for nothing (no top-level await, no fetch of a .wasm file), roots that never make
// a cache never pay for it, and a remote on another origin needs no CORS for a separate file.
// The bytes travel inside the JS as a latin1 string (one character per byte, renamed so that the
// frequent ones are printable ASCII, which bundlers keep as it is; see scripts/embed-wasm.mjs).
// TextEncoder and a 166-byte wasm module turn it back into bytes: a loop in JavaScript over every
// character runs once, so the engine interprets it: 4 to 6 ms of a cold page, as medians.
import { initSync } from './core.js';
import bytes, { order, unpacker } from './core_wasm.js';

const PAGE = 65536;
const TABLE = 256; // `order`'s bytes come first, then the string's UTF-8

let loaded = false;

export function loadWasm() {
  if (loaded) return;
  initSync({ module: new WebAssembly.Module(unpack(bytes, order)) });
  loaded = true;
}

/**
 * The bytes `text` stands for: character `c` of it is the byte `order.charCodeAt(c)`.
 * @param {string} text one character below U+0100 per byte @param {string} order 256 characters
 */
export function unpack(text, order) {
  const memory = new WebAssembly.Memory({ initial: Math.ceil((TABLE + 2 * text.length) / PAGE) });
  const view = new Uint8Array(memory.buffer);
  for (let c = 0; c < TABLE; c++) view[c] = order.charCodeAt(c);
  const { written } = new TextEncoder().encodeInto(text, view.subarray(TABLE));
  const run = new WebAssembly.Instance(new WebAssembly.Module(latin1(unpacker)), { unpack: { memory } }).exports.unpack;
  const length = /** @type {(length: number) => number} */ (run)(written);
  return view.subarray(TABLE, TABLE + length);
}

/** @param {string} text one character per byte */
function latin1(text) {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
