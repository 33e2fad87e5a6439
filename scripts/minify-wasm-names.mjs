#!/usr/bin/env node
// Gives the wasm's imports and exports short names, in the wasm and in wasm-bindgen's glue alike.
// wasm-bindgen names every import `__wbg_<function>_<16 hex digits>`, under the module
// "./core_bg.js", and the glue refers to the exports by their Rust names: the wasm's import
// section and the glue's import object each carry these names once more, and their hex digits are
// as good as random to gzip. wasm-opt renames them (--minify-imports-and-exports-and-modules) and
// prints what it renamed; this applies the same renaming to the glue and its declarations.
// Writes names.json beside the wasm: what each short name stands for.
// Usage: minify-wasm-names.mjs <wasm, rewritten in place> <glue .js> <glue .d.ts>
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { imports } from './wasm-module.mjs';
import { wasmOptFeatures } from './wasm-opt-flags.mjs';

const [, , wasmPath, gluePath, typesPath] = process.argv;
const root = fileURLToPath(new URL('..', import.meta.url));

const run = spawnSync(
  join(root, 'node_modules/.bin/wasm-opt'),
  [...wasmOptFeatures(), '--minify-imports-and-exports-and-modules', wasmPath, '-o', wasmPath],
  { encoding: 'utf8' },
);
if (run.status !== 0) throw new Error(`minify-wasm-names: wasm-opt failed: ${run.stderr}`);
/** @type {{ imports: [string, string, string][], exports: [string, string][] }} */
const renamed = JSON.parse(run.stdout);

const escape = (name) => name.replace(/[$]/g, '\\$');
/** Replaces every `pattern` match in `text`; a name the glue does not hold means its shape changed. */
function replaceAll(text, pattern, to, what) {
  let count = 0;
  const out = text.replace(pattern, () => (count++, to));
  if (count === 0) throw new Error(`minify-wasm-names: ${what} is not in the glue`);
  return out;
}

let glue = readFileSync(gluePath, 'utf8');
let types = readFileSync(typesPath, 'utf8');

// The glue's import object is `{ "<module>": importN, … }`: import0 is the glue's own object
// literal, whose keys are renamed where they stand; the others are snippets' modules, whose
// functions join it under their new names. The wasm then imports everything from one module.
const returned = /return \{\s*__proto__: null,\s*((?:"[^"]+": import\d+,\s*)+)\};/;
const objects = new Map([...(glue.match(returned)?.[1] ?? '').matchAll(/"([^"]+)": (import\d+)/g)].map(([, module, object]) => [module, object]));
const joined = [];
for (const [module, name, to] of renamed.imports) {
  const object = objects.get(module);
  if (object === undefined) throw new Error(`minify-wasm-names: the glue has no import object for ${module}`);
  if (object === 'import0') glue = replaceAll(glue, new RegExp(`(?<=^\\s*)${escape(name)}(?=: function)`, 'm'), to, `import ${name}`);
  else joined.push(`${to}: ${object}.${name}`);
}
// After the renaming every import comes from one module.
const module = imports(readFileSync(wasmPath))[0]?.module;
if (module === undefined) throw new Error('minify-wasm-names: the wasm has no imports');
glue = replaceAll(glue, returned, `return { __proto__: null, ${JSON.stringify(module)}: { ...import0, ${joined.join(', ')} } };`, 'the import object');
for (const [name, to] of renamed.exports) {
  // An export the glue never calls (wasm-bindgen's abort hooks) is renamed in the wasm only.
  glue = glue.replace(new RegExp(`(?<=\\bwasm\\.)${escape(name)}\\b`, 'g'), () => to);
  types = types.replace(new RegExp(`(?<=readonly )${escape(name)}(?=:)`), () => to);
}
writeFileSync(gluePath, glue);
writeFileSync(typesPath, types);
// What the short names stand for, beside the wasm (the benchmark lists the calls it counts).
writeFileSync(
  join(dirname(wasmPath), 'names.json'),
  `${JSON.stringify({
    imports: Object.fromEntries(renamed.imports.map(([, name, to]) => [to, name])),
    exports: Object.fromEntries(renamed.exports.map(([name, to]) => [to, name])),
  })}\n`,
);
