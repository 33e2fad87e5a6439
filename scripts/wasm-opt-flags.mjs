// The words of scripts/wasm-opt.flags: wasm-opt's flags for the package's wasm (build-pkg.sh
// reads the file itself; the other scripts and the size benchmark through this).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function wasmOptFlags() {
  return readFileSync(fileURLToPath(new URL('wasm-opt.flags', import.meta.url)), 'utf8')
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .flatMap((line) => line.split(/\s+/).filter(Boolean));
}

/** Only the `--enable-*` flags: the wasm features every step that rewrites the module must keep. */
export const wasmOptFeatures = () => wasmOptFlags().filter((flag) => flag.startsWith('--enable-'));
