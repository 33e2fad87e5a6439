#!/usr/bin/env bash
# Builds the npm package into pkg/: release wasm → wasm-bindgen (--target web) → wasm-opt -Oz →
# the JS shim and types from pkg-template/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-tools.sh wasm npm

cargo build --quiet --profile wasm-release --target wasm32-unknown-unknown -p mfe-shared-cache
rm -rf pkg
wasm-bindgen --target web --out-dir pkg --out-name core --no-typescript \
  target/wasm32-unknown-unknown/wasm-release/mfe_shared_cache.wasm
# Smaller and faster; the features match what every browser of the last years supports.
node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types \
  pkg/core_bg.wasm -o pkg/core_bg.wasm
cp pkg-template/*.js pkg-template/*.d.ts pkg-template/package.json pkg/
[ -f pkg-template/README.md ] && cp pkg-template/README.md pkg/
echo "built pkg/ ($(du -sh pkg | cut -f1))" >&2
