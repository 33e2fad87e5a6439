# The project's commands. Each installs what it needs and is missing (scripts/ensure-tools.sh).
.PHONY: pkg test bench demo clean

## Build the npm package into pkg/ (release wasm + JS shim + types).
pkg:
	scripts/build-pkg.sh

## Every test: native core, wasm in headless Chromium, the JS package in headless Chromium.
test:
	scripts/test.sh

## The benchmark, in headless Chromium, with its baselines side by side.
bench: pkg
	scripts/ensure-tools.sh browser
	node bench/run.mjs

## Build the package and serve the demo page.
demo: pkg
	node scripts/demo-server.mjs

clean:
	rm -rf pkg target node_modules
