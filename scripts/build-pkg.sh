#!/usr/bin/env bash
# Builds the npm package into pkg/: release wasm → wasm-bindgen (--target web, with its
# TypeScript declarations) → wasm-opt (scripts/wasm-opt.flags) → the wasm embedded in
# core_wasm.js (the package ships no .wasm file; the optimised one stays in target/pkg-wasm/ for
# the size benchmark) → the JS shim and types from pkg-template/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-tools.sh wasm npm

# Rust's standard library is rebuilt for the wasm (-Zbuild-std, with std's optimize_for_size),
# with the immediate-abort panic strategy: a panic in the wasm ends the instance as it did
# (panic = "abort"), without the code that formats a message nobody reads (the package sets no
# panic hook). These are unstable options of the stable toolchain, enabled for this one build
# (RUSTC_BOOTSTRAP): the wasm gzips 5.5 % smaller (97.3 → 91.9 KB). A toolchain without them
# (or the rust-src component) gets the prebuilt std, with a warning; PLAIN_STD=1 asks for it.
size_build() {
  RUSTC_BOOTSTRAP=1 RUSTFLAGS="--cfg=web_sys_unstable_apis -Zunstable-options -Cpanic=immediate-abort" \
    cargo build --quiet --profile wasm-release --target wasm32-unknown-unknown -p mfe-shared-cache \
    -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
}
mkdir -p target/pkg-wasm
if [ -z "${PLAIN_STD:-}" ] && size_build; then
  echo "rebuilt for size" > target/pkg-wasm/std
else
  [ -z "${PLAIN_STD:-}" ] && printf '\033[1;33m[build-pkg] warning:\033[0m std could not be rebuilt for size; building with the prebuilt one (a larger wasm)\n' >&2
  cargo build --quiet --profile wasm-release --target wasm32-unknown-unknown -p mfe-shared-cache
  echo "prebuilt" > target/pkg-wasm/std
fi
rm -rf pkg
wasm-bindgen --target web --omit-default-module-path --out-dir pkg --out-name core \
  target/wasm32-unknown-unknown/wasm-release/mfe_shared_cache.wasm
# Smaller and faster; the flags (scripts/wasm-opt.flags, which the size benchmark's name-keeping
# build reads too) say why.
# Then similar functions are put side by side, for gzip (scripts/order-functions.mjs, which
# names them by their place), and the names are dropped.
# shellcheck disable=SC2046 # the flags file is words, one or more per line
node_modules/.bin/wasm-opt $(grep -v '^#' scripts/wasm-opt.flags) -g pkg/core_bg.wasm -o target/pkg-wasm/named.wasm
node scripts/order-functions.mjs target/pkg-wasm/named.wasm target/pkg-wasm/ordered.wasm
# shellcheck disable=SC2046
node_modules/.bin/wasm-opt $(grep -v '^#' scripts/wasm-opt.flags | grep -- --enable) --reorder-functions-by-name \
  --strip-debug --strip-producers --strip-target-features target/pkg-wasm/ordered.wasm -o target/pkg-wasm/core_bg.wasm
rm target/pkg-wasm/named.wasm target/pkg-wasm/ordered.wasm
# Short import and export names, in the wasm and the glue alike.
node scripts/minify-wasm-names.mjs target/pkg-wasm/core_bg.wasm pkg/core.js pkg/core.d.ts
rm pkg/core_bg.wasm pkg/core_bg.wasm.d.ts
node scripts/embed-wasm.mjs target/pkg-wasm/core_bg.wasm pkg/core_wasm.js
cp pkg-template/*.js pkg-template/*.d.ts pkg-template/package.json pkg/
[ -f pkg-template/README.md ] && cp pkg-template/README.md pkg/
echo "built pkg/ ($(du -sh pkg | cut -f1); std $(cat target/pkg-wasm/std))" >&2
