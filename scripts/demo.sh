#!/usr/bin/env bash
# The demo: mfe-cache-server on its embedded store, serving www-demo: the shell MFE and the product
# MFE, built as two bundles that each carry their own copy of the package.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-pkg.sh
cargo build --quiet --release -p mfe-cache-server

site=target/demo-site
node www-demo/build.mjs "$site"

listen=${DEMO_LISTEN:-127.0.0.1:8080}
echo
echo "  mfe-shared-cache demo: open http://$listen/ (and again in a second tab); data in target/demo-data"
echo
exec target/release/mfe-cache-server --listen "$listen" --data target/demo-data --static "$site"
