// Where the wasm's bytes go: the optimised module rebuilt with its function names kept
// (wasm-bindgen --keep-debug, wasm-opt with the package's flags and -g), each function body's size put under the part of
// the code its name says, and the data segments. Names are after inlining, so a core function
// inlined into the binding counts as the binding's.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A LEB128 unsigned reader over `bytes` from `at`. */
function reader(bytes, at = 0) {
  const r = {
    at,
    u32() {
      let result = 0;
      let shift = 0;
      for (;;) {
        const b = bytes[r.at++];
        result |= (b & 0x7f) << shift;
        if (b < 0x80) return result >>> 0;
        shift += 7;
      }
    },
    name() {
      const n = r.u32();
      const text = new TextDecoder().decode(bytes.subarray(r.at, r.at + n));
      r.at += n;
      return text;
    },
  };
  return r;
}

/** `{ bodies: [[index, size]], names: Map<index, name>, data }` of a wasm module. */
function parse(bytes) {
  const bodies = [];
  const names = new Map();
  let imported = 0;
  let data = 0;
  const r = reader(bytes, 8);
  while (r.at < bytes.length) {
    const id = bytes[r.at++];
    const size = r.u32();
    const end = r.at + size;
    if (id === 2) {
      for (let i = r.u32(); i > 0; i--) {
        r.name();
        r.name();
        const kind = bytes[r.at++];
        if (kind === 0) {
          r.u32();
          imported++;
        } else if (kind === 1) {
          r.at++; // the table's element type
          if (bytes[r.at++] & 1) r.u32();
          r.u32();
        } else if (kind === 2) {
          if (bytes[r.at++] & 1) r.u32();
          r.u32();
        } else if (kind === 3) r.at += 2;
        else if (kind === 4) (r.at++, r.u32());
      }
    } else if (id === 10) {
      const count = r.u32();
      for (let i = 0; i < count; i++) {
        const length = r.u32();
        bodies.push([imported + i, length]);
        r.at += length;
      }
    } else if (id === 11) data += size;
    else if (id === 0 && r.name() === 'name') {
      while (r.at < end) {
        const sub = bytes[r.at++];
        const subEnd = r.u32() + r.at;
        if (sub === 1) for (let i = r.u32(); i > 0; i--) names.set(r.u32(), r.name());
        r.at = subEnd;
      }
    }
    r.at = end;
  }
  return { bodies, names, data };
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

/** The words of scripts/wasm-opt.flags, the package's wasm-opt flags. */
function packageFlags(root) {
  return readFileSync(join(root, 'scripts', 'wasm-opt.flags'), 'utf8')
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .flatMap((line) => line.split(/\s+/).filter(Boolean));
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
    run(join(root, 'node_modules/.bin/wasm-opt'), [...packageFlags(root), '-g', join(dir, 'core_bg.wasm'), '-o', join(dir, 'named.wasm')]);
    const { bodies, names, data } = parse(readFileSync(join(dir, 'named.wasm')));
    const sums = new Map(PARTS.map(([part]) => [part, 0]));
    let other = 0;
    for (const [index, size] of bodies) {
      const name = names.get(index) ?? '';
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
    const features = packageFlags(root).filter((flag) => flag.startsWith('--enable-'));
    run(join(root, 'node_modules/.bin/wasm-opt'), ['-Oz', ...features, join(dir, 'core_bg.wasm'), '-o', join(dir, 'plain.wasm')]);
    return readFileSync(join(dir, 'plain.wasm'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
