#!/usr/bin/env node
// Writes pkg/core_wasm.js: the wasm's bytes as one latin1 string literal (a character per byte),
// so the package needs no .wasm file, no fetch and no top-level await.
//
// Bundlers rewrite string literals: printable ASCII stays as it is, but control characters become
// `\xNN` (four bytes), and so do characters above 0x7F unless the bundle is written as UTF-8 (two
// bytes then); a few must be escaped anyway (quote, backslash, line ends, NUL). So the bytes are
// renamed first: the most frequent byte values of this wasm (0x00 above all) become printable
// ASCII, the rarest the costly characters. Renaming keeps every repetition gzip finds: in an
// esbuild bundle the wasm now costs about 4 % more gzipped than as a .wasm file (as it was, 8 %).
// `order` undoes it: the byte each character stands for. `unpacker` is the small wasm module
// (scripts/unpack.wat) that undoes it in compiled code, as one latin1 string too.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [, , from, to] = process.argv;
const bytes = readFileSync(from);

const root = fileURLToPath(new URL('..', import.meta.url));
const unpackerFile = join(tmpdir(), `unpack-${process.pid}.wasm`);
const assembled = spawnSync(join(root, 'node_modules/.bin/wasm-as'), [join(root, 'scripts/unpack.wat'), '-o', unpackerFile], { encoding: 'utf8' });
if (assembled.status !== 0) throw new Error(`wasm-as scripts/unpack.wat failed: ${assembled.stderr}`);
const unpacker = readFileSync(unpackerFile);
rmSync(unpackerFile);

const ESCAPED = [0x22, 0x5c, 0x0a, 0x0d, 0x00];
const characters = []; // best first
const add = (c) => characters.includes(c) || ESCAPED.includes(c) || characters.push(c);
for (let c = 0x20; c < 0x7f; c++) if (!"'`$".includes(String.fromCharCode(c))) add(c); // as they are, everywhere
for (let c = 0x80; c < 0x100; c++) add(c); // two bytes in UTF-8, or \xNN where a bundler writes ASCII
for (let c = 0x01; c < 0x100; c++) add(c); // the rest: control characters and quotes
characters.push(...ESCAPED);

const count = new Array(256).fill(0);
for (const b of bytes) count[b]++;
const byFrequency = [...count.keys()].sort((a, b) => count[b] - count[a] || a - b);
const characterOf = new Uint8Array(256);
const order = new Uint8Array(256);
byFrequency.forEach((byte, i) => {
  characterOf[byte] = characters[i];
  order[characters[i]] = byte;
});

/** @param {ArrayLike<number>} codes */
function literal(codes) {
  let out = '"';
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    // NUL before a digit would read as an octal escape.
    else if (c === 0x00) out += codes[i + 1] >= 0x30 && codes[i + 1] <= 0x39 ? '\\x00' : '\\0';
    else out += String.fromCharCode(c);
  }
  return out + '"';
}

const renamed = Uint8Array.from(bytes, (b) => characterOf[b]);
writeFileSync(to, `export const order = ${literal(order)};\nexport const unpacker = ${literal(unpacker)};\nexport default ${literal(renamed)};\n`, 'utf8');
writeFileSync(
  to.replace(/\.js$/, '.d.ts'),
  "/** The wasm's bytes, one latin1 character each, renamed: `order.charCodeAt(c)` is the byte character `c` stands for. */\n" +
    'declare const bytes: string;\nexport default bytes;\nexport declare const order: string;\n' +
    '/** A wasm module (latin1, as it is) exporting `unpack(length)`, which undoes the renaming in compiled code. */\n' +
    'export declare const unpacker: string;\n',
  'utf8',
);
