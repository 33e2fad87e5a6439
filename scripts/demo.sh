#!/usr/bin/env bash
# The demo: mfe-cache-server on its embedded store, serving www-demo and two copies of the package
# (/pkg/ and /pkg-copy/, as two separately bundled MFEs would carry their own).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-pkg.sh
cargo build --quiet --release -p mfe-cache-server

site=target/demo-site
rm -rf "$site"
mkdir -p "$site"
cp -r www-demo/. "$site/"
cp -r pkg "$site/pkg"
cp -r pkg "$site/pkg-copy"

listen=${DEMO_LISTEN:-127.0.0.1:8080}
echo
echo "  mfe-shared-cache demo: http://$listen/  (open it in two tabs; data in target/demo-data)"
echo
exec target/release/mfe-cache-server --listen "$listen" --data target/demo-data --static "$site"
