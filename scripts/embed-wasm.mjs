#!/usr/bin/env node
// Writes pkg/core_wasm.js: the wasm's bytes as one string literal of printable ASCII (see
// scripts/wasm-text.mjs), so the package needs no .wasm file, no fetch and no top-level await;
// beside it the table that undoes the encoding, its two escape characters, and `unpacker`, the
// small wasm module (scripts/unpack.wat) that undoes it in compiled code, as hex.
// Usage: embed-wasm.mjs <wasm> <out .js>
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encode, hex } from './wasm-text.mjs';

const [, , from, to] = process.argv;
const root = fileURLToPath(new URL('..', import.meta.url));
const unpackerFile = join(tmpdir(), `unpack-${process.pid}.wasm`);
const assembled = spawnSync(join(root, 'node_modules/.bin/wasm-as'), [join(root, 'scripts/unpack.wat'), '-o', unpackerFile], { encoding: 'utf8' });
if (assembled.status !== 0) throw new Error(`wasm-as scripts/unpack.wat failed: ${assembled.stderr}`);
const unpacker = hex(readFileSync(unpackerFile));
rmSync(unpackerFile);

const { text, table, escapes } = encode(readFileSync(from));
// JSON.stringify quotes without escaping anything: the text holds no quote or backslash.
writeFileSync(
  to,
  `export const table = ${JSON.stringify(table)};\nexport const escapes = ${JSON.stringify(escapes)};\n` +
    `export const unpacker = ${JSON.stringify(unpacker)};\nexport default ${JSON.stringify(text)};\n`,
);
writeFileSync(
  to.replace(/\.js$/, '.d.ts'),
  "/** The wasm's bytes, one or two printable ASCII characters each (see `table`). */\n" +
    'declare const bytes: string;\nexport default bytes;\n' +
    '/** Hex, 3 planes of 128 bytes: the byte a character stands for, alone (plane 0) or after the first or second of `escapes`. */\n' +
    'export declare const table: string;\n' +
    '/** The two characters that start a two-character byte. */\n' +
    'export declare const escapes: string;\n' +
    '/** A wasm module, hex, exporting `unpack(length, escape1, escape2)`, which undoes the encoding in compiled code. */\n' +
    'export declare const unpacker: string;\n',
);
