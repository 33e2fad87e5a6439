#!/usr/bin/env node
// Orders the wasm's functions so that similar ones sit next to each other: gzip finds a repeat
// only within the last 32 KB, and the compiler lays functions out in an order that scatters the
// monomorphs of one generic and the many small functions built alike. This names each defined
// function of `in` (a module with a name section: wasm-opt -g) by its place in a greedy order,
// each next function the one whose 4-byte sequences most overlap the last one's; then
// `wasm-opt --reorder-functions-by-name --strip-debug` moves them, renumbering every call, and
// drops the names. The functions themselves are untouched. Usage: order-functions.mjs in out
import { readFileSync, writeFileSync } from 'node:fs';
import { customName, functionBodies, importedFunctions, leb, sections } from './wasm-module.mjs';

const [, , from, to] = process.argv;
const bytes = readFileSync(from);
const all = sections(bytes);

/** A function body's distinct 4-byte sequences, sorted. */
function sequences(body) {
  const grams = new Uint32Array(Math.max(0, body.length - 3));
  for (let i = 0; i < grams.length; i++) grams[i] = ((body[i] << 24) | (body[i + 1] << 16) | (body[i + 2] << 8) | body[i + 3]) >>> 0;
  grams.sort();
  let distinct = 0;
  for (let i = 0; i < grams.length; i++) if (i === 0 || grams[i] !== grams[i - 1]) grams[distinct++] = grams[i];
  return grams.subarray(0, distinct);
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

const grams = functionBodies(bytes, all).map(sequences);
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
const imported = importedFunctions(bytes, all);
const names = [...leb(imported + grams.length)];
const name = (text) => [...leb(text.length), ...Buffer.from(text, 'latin1')];
for (let i = 0; i < imported; i++) names.push(...leb(i), ...name(`i${i}`));
const rank = new Array(grams.length);
order.forEach((index, place) => (rank[index] = place));
for (let k = 0; k < grams.length; k++) names.push(...leb(imported + k), ...name(`f${String(rank[k]).padStart(6, '0')}`));
const payload = [...name('name'), 1, ...leb(names.length), ...names];

const parts = [bytes.subarray(0, 8)];
for (const section of all) {
  if (section.id === 0 && customName(bytes, section) === 'name') continue;
  const { id, start, end } = section;
  parts.push(Buffer.from([id, ...leb(end - start)]), bytes.subarray(start, end));
}
parts.push(Buffer.from([0, ...leb(payload.length), ...payload]));
writeFileSync(to, Buffer.concat(parts));
