// The wasm inside the package's JavaScript (scripts/embed-wasm.mjs writes it, pkg/wasm.js
// unpacks it with TextEncoder and a small wasm module): it must come back byte for byte, whatever
// the bytes. Run in Node, on pkg/ as built.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, sh } from './harness.mjs';

const imported = async (file) => import(pathToFileURL(join(ROOT, 'pkg', file)).href);

test('the embedded wasm unpacks to the optimised module, byte for byte', async () => {
  if (!existsSync(join(ROOT, 'pkg', 'wasm.js'))) await sh('bash', ['scripts/build-pkg.sh'], ROOT, 600_000);
  const { unpack } = await imported('wasm.js');
  const { default: bytes, order } = await imported('core_wasm.js');
  const wasm = readFileSync(join(ROOT, 'target', 'pkg-wasm', 'core_bg.wasm'));
  assert.ok(Buffer.from(unpack(bytes, order)).equals(wasm), 'the unpacked bytes differ from target/pkg-wasm/core_bg.wasm');
});

test('every character below U+0100 unpacks to the byte its order gives, in any order', async () => {
  const { unpack } = await imported('wasm.js');
  const all = String.fromCharCode(...Array.from({ length: 256 }, (_, c) => c));
  const reversed = String.fromCharCode(...Array.from({ length: 256 }, (_, c) => 255 - c));
  // Each character once, then runs of the two-byte ones (0x80 and up) around one-byte ones.
  const text = all + [...all].reverse().join('') + '\u00ff\u0080a\u00c2\u00c3\u007f\u0000\u00bf\u00c0';
  const codes = [...text].map((ch) => ch.charCodeAt(0));
  assert.deepEqual([...unpack(text, all)], codes);
  assert.deepEqual([...unpack(text, reversed)], codes.map((c) => 255 - c));
  assert.deepEqual([...unpack('', all)], []);
});
