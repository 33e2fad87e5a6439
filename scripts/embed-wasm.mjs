#!/usr/bin/env node
// Writes pkg/core_wasm.js: the wasm's bytes as one latin1 string literal (a character per byte),
// so the package needs no .wasm file, no fetch and no top-level await.
//
// A character of the literal is one byte in the file only below 0x80 (above, UTF-8 takes two),
// and a few must be escaped (quote, backslash, line ends, NUL). So the bytes are renamed first:
// the most frequent byte values of this wasm (0x00 above all) become the plain one-byte
// characters, the rarest the escaped ones. Renaming keeps every repetition gzip finds, so the
// literal gzips within about 2 % of the .wasm file (as it is, 5 to 6 %). `order` undoes it: the
// byte each character stands for.
import { readFileSync, writeFileSync } from 'node:fs';

const [, , from, to] = process.argv;
const bytes = readFileSync(from);

const ESCAPED = [0x22, 0x5c, 0x0a, 0x0d, 0x00];
const plain = [];
for (let c = 1; c < 0x100; c++) if (!ESCAPED.includes(c)) plain.push(c);
const characters = [...plain, ...ESCAPED]; // best first: one byte, two bytes, escaped

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
writeFileSync(to, `export const order = ${literal(order)};\nexport default ${literal(renamed)};\n`, 'utf8');
writeFileSync(
  to.replace(/\.js$/, '.d.ts'),
  "/** The wasm's bytes, one latin1 character each, renamed: `order.charCodeAt(c)` is the byte character `c` stands for. */\n" +
    'declare const bytes: string;\nexport default bytes;\nexport declare const order: string;\n',
  'utf8',
);
