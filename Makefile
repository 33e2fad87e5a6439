# The project's commands. Each installs what it needs and is missing (scripts/ensure-tools.sh).
.PHONY: pkg test bench demo clean

## Build the npm package into pkg/ (release wasm + JS shim + types).
pkg:
	scripts/build-pkg.sh

## Every test: native core, wasm in headless Chromium, the JS package in headless Chromium.
test:
	scripts/test.sh

## The benchmark (headless Chromium; mfe-cache-server under wrk), with its baselines side by side.
bench: pkg
	scripts/ensure-tools.sh browser npm wrk
	node bench/run.mjs

## The demo: mfe-cache-server on its embedded store, serving www-demo.
demo:
	scripts/demo.sh

clean:
	rm -rf pkg target node_modules
