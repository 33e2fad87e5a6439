// The wasm inside the package's JavaScript (scripts/embed-wasm.mjs writes it with
// scripts/wasm-text.mjs, pkg/wasm.js unpacks it with TextEncoder and a small wasm module): it must
// come back byte for byte, whatever the bytes, and be a string every bundler keeps as it is.
// Run in Node, on pkg/ as built.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, sh } from './harness.mjs';
import { encode } from '../../scripts/wasm-text.mjs';

const imported = async (file) => import(pathToFileURL(join(ROOT, 'pkg', file)).href);
// Printable ASCII without the quotes, backslash, `$`, backtick and `<`.
const PLAIN = /^[ !#%&(-;=-[\]-_a-~]*$/;

test('the embedded wasm unpacks to the optimised module, byte for byte', async () => {
  if (!existsSync(join(ROOT, 'pkg', 'wasm.js'))) await sh('bash', ['scripts/build-pkg.sh'], ROOT, 600_000);
  const { unpack } = await imported('wasm.js');
  const { default: bytes, table, escapes } = await imported('core_wasm.js');
  const wasm = readFileSync(join(ROOT, 'target', 'pkg-wasm', 'core_bg.wasm'));
  assert.ok(PLAIN.test(bytes), 'the embedded string holds a character a bundler would escape');
  assert.ok(Buffer.from(unpack(bytes, table, escapes)).equals(wasm), 'the unpacked bytes differ from target/pkg-wasm/core_bg.wasm');
});

test('every byte value comes back, the frequent ones and the escaped ones alike', async () => {
  const { unpack } = await imported('wasm.js');
  const every = Uint8Array.from({ length: 256 }, (_, b) => b);
  // Skewed so that some values are one character and the others escaped, in runs and alone.
  const skewed = Uint8Array.from({ length: 5000 }, (_, i) => (i % 7 === 0 ? 255 - (i % 256) : i % 40));
  const runs = Uint8Array.from([...every, ...every.slice().reverse(), 255, 255, 254, 0, 0, 128, 127, 1]);
  for (const bytes of [every, skewed, runs, new Uint8Array(0), Uint8Array.of(7)]) {
    const { text, table, escapes } = encode(bytes);
    assert.ok(PLAIN.test(text) && PLAIN.test(escapes), 'a character a bundler would escape');
    assert.deepEqual([...unpack(text, table, escapes)], [...bytes]);
  }
});
