// Where the wasm's bytes go: the optimised module rebuilt with its function names kept
// (wasm-bindgen --keep-debug, wasm-opt with the package's flags and -g), each function body's
// size put under the part of the code its name says, and the data segments. Names are after
// inlining, so a core function inlined into the binding counts as the binding's.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { functionBodies, functionNames, importedFunctions, sections } from '../scripts/wasm-module.mjs';
import { wasmOptFeatures, wasmOptFlags } from '../scripts/wasm-opt-flags.mjs';

/** `{ bodies: [[index, size]], names: Map<index, name>, data }` of a wasm module. */
function parse(bytes) {
  const all = sections(bytes);
  const imported = importedFunctions(bytes, all);
  const bodies = functionBodies(bytes, all).map((body, i) => [imported + i, body.length]);
  const data = all.filter(({ id }) => id === 11).reduce((n, { start, end }) => n + end - start, 0);
  return { bodies, names: functionNames(bytes, all), data };
}

const PARTS = [
  ['exported-method glue (wasm-bindgen)', /shim|^__wbg|^__wbindgen|^__externref|wasm_bindgen::|wasm_bindgen\[|convert::closures|^cachecore_|^checkkey|^ttlseconds/i],
  ['serde and serde-wasm-bindgen', /serde/],
  ['fetch, timers, futures (gloo, js-sys, web-sys)', /gloo|js_sys|web_sys|wasm_bindgen_futures/],
  ['the binding (src/)', /mfe_shared_cache::/],
  ['the core (crates/core)', /mfe_shared_cache_core::/],
  ['sorting', /slice::sort/],
  ['allocator', /talc|dlmalloc|__rdl_|__rust_(alloc|dealloc|realloc)|raw_vec/],
  ['hash and B-tree maps, heaps', /hashbrown|collections|binary_heap|btree/i],
  ['formatting (fmt)', /fmt|Display|Debug|format/],
];

/**
 * A function's name as its part is read from: without crate hashes (a std built from source names
 * `core[27cd0353e63fa9bc]::`) and without generic arguments (`Cache<WebStorage>::flush` is the
 * core's, whatever type it is instantiated with), but with a leading `<T as Trait>`.
 */
function plainName(name) {
  let out = '';
  let depth = 0;
  const plain = name.replace(/\[[0-9a-f]{8,}\]/g, '');
  for (let i = 0; i < plain.length; i++) {
    const c = plain[i];
    if (c === '<' && (depth > 0 || /[\w:]/.test(plain[i - 1] ?? ''))) depth++;
    else if (c === '>' && depth > 0) depth--;
    else if (depth === 0) out += c;
  }
  return out;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
}

/** `[[part, bytes]]` for the module at `path` (the build's name-keeping twin of it). */
export function wasmBreakdown(root, bindgenInput) {
  const dir = mkdtempSync(join(tmpdir(), 'wasm-size-'));
  try {
    run('wasm-bindgen', ['--target', 'web', '--keep-debug', '--out-dir', dir, '--out-name', 'core', bindgenInput]);
    // The package's own flags, names kept.
    run(join(root, 'node_modules/.bin/wasm-opt'), [...wasmOptFlags(), '-g', join(dir, 'core_bg.wasm'), '-o', join(dir, 'named.wasm')]);
    const { bodies, names, data } = parse(readFileSync(join(dir, 'named.wasm')));
    const sums = new Map(PARTS.map(([part]) => [part, 0]));
    let other = 0;
    for (const [index, size] of bodies) {
      const name = plainName(names.get(index) ?? '');
      const part = PARTS.find(([, pattern]) => pattern.test(name));
      if (part) sums.set(part[0], sums.get(part[0]) + size);
      else other += size;
    }
    return [...sums, ['Rust std, core and alloc, other', other], ['data (strings, tables)', data]].sort((a, b) => b[1] - a[1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The same wasm as plain `wasm-opt -Oz` makes it (the package's features only): the baseline of
 * the build's steps for gzip (its other flags, the function order, the short names).
 */
export function plainOptimised(root, bindgenInput) {
  const dir = mkdtempSync(join(tmpdir(), 'wasm-plain-'));
  try {
    run('wasm-bindgen', ['--target', 'web', '--out-dir', dir, '--out-name', 'core', bindgenInput]);
    run(join(root, 'node_modules/.bin/wasm-opt'), ['-Oz', ...wasmOptFeatures(), join(dir, 'core_bg.wasm'), '-o', join(dir, 'plain.wasm')]);
    return readFileSync(join(dir, 'plain.wasm'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
