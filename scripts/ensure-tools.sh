#!/usr/bin/env bash
# Installs what the build and tests need and is missing; skips what is present. Usage:
#   scripts/ensure-tools.sh wasm      rust wasm target, rust-src + wasm-bindgen CLI at the pinned version
#   scripts/ensure-tools.sh browser   Debian's chromium + chromium-driver
#   scripts/ensure-tools.sh firefox   Debian's firefox-esr (the browser tests in Firefox, over WebDriver BiDi)
#   scripts/ensure-tools.sh webkit    Debian's webkit2gtk-driver (WebKitGTK's MiniBrowser + WebKitWebDriver) and xvfb
#   scripts/ensure-tools.sh npm       the dev npm packages (playwright-core, puppeteer-core, esbuild, binaryen, express)
#   scripts/ensure-tools.sh wrk       Debian's wrk (the HTTP load generator of the server benchmark)
#   scripts/ensure-tools.sh redis     Debian's redis-server (redis-server + redis-cli: the Redis store tests)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1;34m[ensure]\033[0m %s\n' "$*" >&2; }

pinned_wasm_bindgen() {
  sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' Cargo.toml | head -n1
}

ensure_wasm() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding rust target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
  # The package's build rebuilds std for the wasm from its sources (scripts/build-pkg.sh).
  if [ ! -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library" ]; then
    log "adding the rust-src component"
    rustup component add rust-src || log "rust-src is not available: the package builds with the prebuilt std"
  fi
  local want have
  want=$(pinned_wasm_bindgen)
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
  if [ "$have" != "$want" ]; then
    log "installing wasm-bindgen-cli $want (found: ${have:-none})"
    cargo install wasm-bindgen-cli --version "$want" --force
  fi
}

apt_install() {
  if [ -z "${_APT_UPDATED:-}" ]; then
    apt-get update -qq
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_browser() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    log "installing chromium and chromium-driver"
    apt_install chromium chromium-driver
  fi
}

ensure_firefox() {
  if ! command -v firefox-esr >/dev/null; then
    log "installing firefox-esr"
    apt_install firefox-esr
  fi
}

ensure_webkit() {
  if ! command -v WebKitWebDriver >/dev/null || ! command -v xvfb-run >/dev/null || ! command -v xauth >/dev/null; then
    log "installing webkit2gtk-driver, xvfb and xauth"
    apt_install webkit2gtk-driver xvfb xauth
  fi
}

ensure_wrk() {
  if ! command -v wrk >/dev/null; then
    log "installing wrk"
    apt_install wrk
  fi
}

ensure_redis() {
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    log "installing redis-server"
    apt_install redis-server
  fi
}

ensure_npm() {
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing npm dev packages"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

for what in "$@"; do
  case "$what" in
    wasm) ensure_wasm ;;
    browser) ensure_browser ;;
    firefox) ensure_firefox ;;
    webkit) ensure_webkit ;;
    npm) ensure_npm ;;
    wrk) ensure_wrk ;;
    redis) ensure_redis ;;
    *) echo "unknown: $what" >&2; exit 2 ;;
  esac
done
