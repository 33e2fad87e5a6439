#!/usr/bin/env node
// Writes pkg/core_wasm.js: the wasm's bytes as one latin1 string literal (a character per byte),
// so the package needs no .wasm file, no fetch and no top-level await. Only what a string literal
// cannot hold as it is gets escaped (quote, backslash, line ends; NUL before a digit would read
// as an octal escape); the rest stays one character, which gzips about as well as the raw bytes.
import { readFileSync, writeFileSync } from 'node:fs';

const [, , from, to] = process.argv;
const bytes = readFileSync(from);
let out = 'export default "';
for (let i = 0; i < bytes.length; i++) {
  const b = bytes[i];
  if (b === 0x22) out += '\\"';
  else if (b === 0x5c) out += '\\\\';
  else if (b === 0x0a) out += '\\n';
  else if (b === 0x0d) out += '\\r';
  else if (b === 0x00) out += bytes[i + 1] >= 0x30 && bytes[i + 1] <= 0x39 ? '\\x00' : '\\0';
  else out += String.fromCharCode(b);
}
out += '";\n';
writeFileSync(to, out, 'utf8');
writeFileSync(to.replace(/\.js$/, '.d.ts'), '/** The wasm\'s bytes, one latin1 character each. */\ndeclare const bytes: string;\nexport default bytes;\n', 'utf8');
