#!/usr/bin/env bash
# Every test of the project. Installs what is missing first, so a fresh machine needs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-tools.sh wasm browser npm

step() { printf '\n\033[1;32m== %s ==\033[0m\n' "$*"; }

step "native: core and client crates"
cargo test --workspace

step "wasm client in headless Chromium (wasm-bindgen-test)"
CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver} cargo test --target wasm32-unknown-unknown -p mfe-shared-cache

step "npm package (pkg/) in headless Chromium (Playwright), against mfe-cache-server too"
scripts/build-pkg.sh
cargo build -p mfe-cache-server
node --test --test-concurrency=1 tests/browser/
