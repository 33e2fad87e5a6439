#!/usr/bin/env bash
# Builds the npm package into pkg/: release wasm → wasm-bindgen (--target web, with its
# TypeScript declarations) → wasm-opt -Oz → the wasm embedded in core_wasm.js (the package ships
# no .wasm file; the optimised one stays in target/pkg-wasm/ for the size benchmark) → the JS shim
# and types from pkg-template/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-tools.sh wasm npm

cargo build --quiet --profile wasm-release --target wasm32-unknown-unknown -p mfe-shared-cache
rm -rf pkg
wasm-bindgen --target web --omit-default-module-path --out-dir pkg --out-name core \
  target/wasm32-unknown-unknown/wasm-release/mfe_shared_cache.wasm
# Smaller and faster; the features match what every browser of the last years supports.
mkdir -p target/pkg-wasm
node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types \
  pkg/core_bg.wasm -o target/pkg-wasm/core_bg.wasm
rm pkg/core_bg.wasm pkg/core_bg.wasm.d.ts
node scripts/embed-wasm.mjs target/pkg-wasm/core_bg.wasm pkg/core_wasm.js
cp pkg-template/*.js pkg-template/*.d.ts pkg-template/package.json pkg/
[ -f pkg-template/README.md ] && cp pkg-template/README.md pkg/
echo "built pkg/ ($(du -sh pkg | cut -f1))" >&2
