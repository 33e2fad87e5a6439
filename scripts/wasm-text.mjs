// The wasm's bytes as a string of printable ASCII, for a JS string literal that every bundler
// keeps as it is: no `\xNN` escapes (which an ASCII bundle writes for every character above 0x7E
// and every control character, four bytes each), no question of the bundle's charset, and no
// quote, backslash, `$`, backtick or `<` (a bundle inlined into a page cannot close its script).
//
// The most frequent byte values (0x00 above all; together over 90 % of a wasm's bytes) are one
// character each; every other value is an escape character followed by one more. The mapping is
// one-to-one per byte, so every repetition gzip finds in the wasm it finds in the string: the
// bundle gzips about as small as the .wasm file and the JavaScript apart.
//
// `table` undoes it: 3 planes of 128 bytes, hex. Plane 0 gives the byte a plain character stands
// for, plane 1 the byte after the first escape character, plane 2 after the second.

const EXCLUDED = '"\\\'`$<';
/** Every character the string may hold. */
export const ALPHABET = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).filter((c) => !EXCLUDED.includes(c));
const ESCAPES = 2; // the last two characters of the alphabet; 87 plain + 2 × 89 escaped ≥ 256
const PLAIN = ALPHABET.length - ESCAPES;

/** @param {Uint8Array} bytes @returns {{ text: string, table: string, escapes: string }} */
export function encode(bytes) {
  const count = new Array(256).fill(0);
  for (const b of bytes) count[b]++;
  const byFrequency = [...count.keys()].sort((a, b) => count[b] - count[a] || a - b);
  const escapes = ALPHABET.slice(PLAIN).join('');
  const codeOf = new Array(256);
  const table = new Uint8Array(3 * 128);
  byFrequency.forEach((byte, rank) => {
    if (rank < PLAIN) {
      codeOf[byte] = ALPHABET[rank];
      table[ALPHABET[rank].charCodeAt(0)] = byte;
    } else {
      const plane = Math.floor((rank - PLAIN) / ALPHABET.length);
      const second = ALPHABET[(rank - PLAIN) % ALPHABET.length];
      codeOf[byte] = escapes[plane] + second;
      table[128 * (plane + 1) + second.charCodeAt(0)] = byte;
    }
  });
  let text = '';
  for (const b of bytes) text += codeOf[b];
  return { text, table: hex(table), escapes };
}

/** @param {Uint8Array} bytes */
export function hex(bytes) {
  return Buffer.from(bytes).toString('hex');
}
