// A wasm module's binary format, as far as the package build (scripts/order-functions.mjs,
// scripts/minify-wasm-names.mjs) and the size benchmark (bench/wasm-size.mjs) read it: its
// sections, its imports, its function bodies and their names.

/** A LEB128 reader over `bytes` from `at`. */
export function reader(bytes, at = 0) {
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
    name() {
      const n = r.u32();
      const text = new TextDecoder().decode(bytes.subarray(r.at, r.at + n));
      r.at += n;
      return text;
    },
  };
  return r;
}

/** `n` as LEB128 bytes. */
export function leb(n) {
  const out = [];
  do {
    const low = n % 128;
    n = Math.floor(n / 128);
    out.push(n ? low | 0x80 : low);
  } while (n);
  return out;
}

/** `{ id, start, end }` of every section (start and end of its contents). */
export function sections(bytes) {
  const out = [];
  const r = reader(bytes, 8);
  while (r.at < bytes.length) {
    const id = bytes[r.at++];
    const size = r.u32();
    out.push({ id, start: r.at, end: r.at + size });
    r.at += size;
  }
  return out;
}

/** The custom section's name (its contents start with it). */
export function customName(bytes, { start }) {
  return reader(bytes, start).name();
}

/** `{ module, name, kind }` of every import (kind 0: a function). */
export function imports(bytes, all = sections(bytes)) {
  const section = all.find(({ id }) => id === 2);
  if (!section) return [];
  const r = reader(bytes, section.start);
  const limits = () => {
    if (r.u32() & 1) r.u32(); // the maximum, when the flags say there is one
    r.u32();
  };
  const out = [];
  for (let n = r.u32(); n > 0; n--) {
    const module = r.name();
    const name = r.name();
    const kind = bytes[r.at++];
    if (kind === 0) r.u32(); // the type
    else if (kind === 1) (r.at++, limits()); // a table: element type, limits
    else if (kind === 2) limits(); // a memory
    else if (kind === 3) r.at += 2; // a global: value type, mutability
    else if (kind === 4) (r.at++, r.u32()); // a tag: attribute, type
    else throw new Error(`wasm-module: import kind ${kind} is not known here`);
    out.push({ module, name, kind });
  }
  return out;
}

/** How many functions the module imports: they come before its own in the index space. */
export function importedFunctions(bytes, all = sections(bytes)) {
  return imports(bytes, all).filter(({ kind }) => kind === 0).length;
}

/** Every function body of the code section, in order (the first is function `importedFunctions`). */
export function functionBodies(bytes, all = sections(bytes)) {
  const section = all.find(({ id }) => id === 10);
  if (!section) return [];
  const r = reader(bytes, section.start);
  const out = [];
  for (let n = r.u32(); n > 0; n--) {
    const size = r.u32();
    out.push(bytes.subarray(r.at, r.at + size));
    r.at += size;
  }
  return out;
}

/** Function index → name, from the name section (empty without one). */
export function functionNames(bytes, all = sections(bytes)) {
  const names = new Map();
  const section = all.find((s) => s.id === 0 && customName(bytes, s) === 'name');
  if (!section) return names;
  const r = reader(bytes, section.start);
  r.name();
  while (r.at < section.end) {
    const sub = bytes[r.at++];
    const end = r.u32() + r.at;
    if (sub === 1) for (let i = r.u32(); i > 0; i--) names.set(r.u32(), r.name());
    r.at = end;
  }
  return names;
}
