#!/usr/bin/env node
// Orders the wasm's functions so that similar ones sit next to each other: gzip finds a repeat
// only within the last 32 KB, and the compiler lays functions out in an order that scatters the
// monomorphs of one generic and the many small functions built alike. This names each defined
// function of `in` (a module with a name section: wasm-opt -g) by its place in a greedy order,
// each next function the one whose 4-byte sequences most overlap the last one's; then
// `wasm-opt --reorder-functions-by-name --strip-debug` moves them, renumbering every call, and
// drops the names. The functions themselves are untouched. Usage: order-functions.mjs in out
import { readFileSync, writeFileSync } from 'node:fs';

const [, , from, to] = process.argv;
const bytes = readFileSync(from);

function reader(at) {
  const r = {
    at,
    u32() {
      let result = 0;
      for (let shift = 0; ; shift += 7) {
        const b = bytes[r.at++];
        result += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) return result;
      }
    },
    skipName() {
      const n = r.u32();
      r.at += n;
    },
  };
  return r;
}

function leb(n) {
  const out = [];
  do {
    const low = n & 0x7f;
    n = Math.floor(n / 128);
    out.push(n ? low | 0x80 : low);
  } while (n);
  return out;
}

/** `[id, start, end]` of every section. */
function sections() {
  const out = [];
  const r = reader(8);
  while (r.at < bytes.length) {
    const id = bytes[r.at++];
    const size = r.u32();
    out.push([id, r.at, r.at + size]);
    r.at += size;
  }
  return out;
}

const all = sections();

/** How many functions the module imports: they come before its own in the index space. */
function importedFunctions() {
  const section = all.find(([id]) => id === 2);
  if (!section) return 0;
  const r = reader(section[1]);
  let functions = 0;
  for (let n = r.u32(); n > 0; n--) {
    r.skipName();
    r.skipName();
    const kind = bytes[r.at++];
    if (kind === 0) {
      r.u32();
      functions++;
    } else if (kind === 1) {
      r.at++; // the element type
      if (r.u32() & 1) r.u32();
      r.u32();
    } else if (kind === 2) {
      if (r.u32() & 1) r.u32();
      r.u32();
    } else if (kind === 3) {
      r.at += 2; // value type, mutability
    } else {
      throw new Error(`order-functions: import kind ${kind} is not known here`);
    }
  }
  return functions;
}

/** Every function body's distinct 4-byte sequences, sorted. */
function bodies() {
  const [, start] = all.find(([id]) => id === 10);
  const r = reader(start);
  const out = [];
  for (let n = r.u32(); n > 0; n--) {
    const size = r.u32();
    const body = bytes.subarray(r.at, r.at + size);
    r.at += size;
    const grams = new Uint32Array(Math.max(0, size - 3));
    for (let i = 0; i < grams.length; i++) grams[i] = ((body[i] << 24) | (body[i + 1] << 16) | (body[i + 2] << 8) | body[i + 3]) >>> 0;
    grams.sort();
    let distinct = 0;
    for (let i = 0; i < grams.length; i++) if (i === 0 || grams[i] !== grams[i - 1]) grams[distinct++] = grams[i];
    out.push(grams.subarray(0, distinct));
  }
  return out;
}

function shared(a, b) {
  let i = 0;
  let j = 0;
  let count = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      count++;
      i++;
      j++;
    } else if (a[i] < b[j]) i++;
    else j++;
  }
  return count;
}

const grams = bodies();
const used = new Uint8Array(grams.length);
const order = [0];
used[0] = 1;
for (let placed = 1; placed < grams.length; placed++) {
  const last = grams[order[order.length - 1]];
  let best = -1;
  let bestScore = -1;
  for (let j = 0; j < grams.length; j++) {
    if (used[j]) continue;
    // The share of the two's sequences they have in common (Jaccard), so that a large function
    // does not pull every other after it.
    const common = shared(last, grams[j]);
    const score = common / (last.length + grams[j].length - common + 1);
    if (score > bestScore) {
      bestScore = score;
      best = j;
    }
  }
  used[best] = 1;
  order.push(best);
}

// The name section, function names only: imports keep their place, and each own function is
// named by its rank, zero-padded so that names sort as ranks do.
const imported = importedFunctions();
const names = [...leb(imported + grams.length)];
const name = (text) => [...leb(text.length), ...Buffer.from(text, 'latin1')];
for (let i = 0; i < imported; i++) names.push(...leb(i), ...name(`i${i}`));
const rank = new Array(grams.length);
order.forEach((index, place) => (rank[index] = place));
for (let k = 0; k < grams.length; k++) names.push(...leb(imported + k), ...name(`f${String(rank[k]).padStart(6, '0')}`));
const payload = [...name('name'), 1, ...leb(names.length), ...names];

const parts = [bytes.subarray(0, 8)];
for (const [id, start, end] of all) {
  if (id === 0) {
    const r = reader(start);
    const length = r.u32();
    if (bytes.subarray(r.at, r.at + length).toString('latin1') === 'name') continue;
  }
  parts.push(Buffer.from([id, ...leb(end - start)]), bytes.subarray(start, end));
}
parts.push(Buffer.from([0, ...leb(payload.length), ...payload]));
writeFileSync(to, Buffer.concat(parts));
