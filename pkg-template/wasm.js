// @ts-check
// The wasm, compiled and instantiated synchronously the first time a cache is made: importing the
// package waits for nothing (no top-level await, no fetch of a .wasm file), roots that never make
// a cache never pay for it, and a remote on another origin needs no CORS for a separate file.
// The bytes travel inside the JS as a string of printable ASCII (one character per frequent byte,
// two per rare one), which every bundler keeps as it is; see scripts/wasm-text.mjs.
// TextEncoder and a small wasm module turn it back into bytes: a loop in JavaScript over every
// character runs once, so the engine interprets it: 4 to 6 ms of a cold page, as medians.
import { initSync } from './core.js';
import bytes, { escapes, table, unpacker } from './core_wasm.js';

const PAGE = 65536;
const TABLE = 384; // `table`'s bytes come first, then the string's

let loaded = false;

export function loadWasm() {
  if (loaded) return;
  initSync({ module: new WebAssembly.Module(unpack(bytes, table, escapes)) });
  loaded = true;
}

/**
 * The bytes `text` stands for.
 * @param {string} text printable ASCII @param {string} table hex, 3 planes of 128 bytes @param {string} escapes 2 characters
 */
export function unpack(text, table, escapes) {
  const memory = new WebAssembly.Memory({ initial: Math.ceil((TABLE + text.length) / PAGE) });
  const view = new Uint8Array(memory.buffer);
  view.set(fromHex(table));
  const { written } = new TextEncoder().encodeInto(text, view.subarray(TABLE));
  const run = new WebAssembly.Instance(new WebAssembly.Module(fromHex(unpacker)), { unpack: { memory } }).exports.unpack;
  const length = /** @type {(length: number, escape1: number, escape2: number) => number} */ (run)(written, escapes.charCodeAt(0), escapes.charCodeAt(1));
  return view.subarray(TABLE, TABLE + length);
}

/** @param {string} text */
function fromHex(text) {
  const out = new Uint8Array(text.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}
