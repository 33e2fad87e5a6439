#!/usr/bin/env bash
# Every test of the project. Installs what is missing first, so a fresh machine needs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-tools.sh wasm browser firefox webkit npm redis

step() { printf '\n\033[1;32m== %s ==\033[0m\n' "$*"; }

step "native: core and client crates"
cargo test --workspace

step "wasm client in headless Chromium (wasm-bindgen-test)"
CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver} cargo test --target wasm32-unknown-unknown -p mfe-shared-cache

step "npm package (pkg/): the shim type-checked against the wasm's declarations; the public types (tests/types)"
scripts/build-pkg.sh
node_modules/.bin/tsc -p tests/shim
node_modules/.bin/tsc -p tests/types

step "npm package, www-demo and mfe-cache-server in headless Chromium (Playwright)"
cargo build -p mfe-cache-server
node www-demo/build.mjs target/demo-site
node --test --test-concurrency=1 tests/browser/

step "the public API, tabs, backend sync and React hooks in headless Firefox (WebDriver BiDi)"
BROWSER=firefox node --test --test-concurrency=1 tests/browser/api.test.mjs tests/browser/tabs.test.mjs tests/browser/sync.test.mjs tests/browser/react.test.mjs

step "the same in WebKit: WebKitGTK's MiniBrowser under Xvfb (WebDriver)"
BROWSER=webkit xvfb-run -a node --test --test-concurrency=1 tests/browser/api.test.mjs tests/browser/tabs.test.mjs tests/browser/sync.test.mjs tests/browser/react.test.mjs
