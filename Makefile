# The two commands of the README: `make run` and `make test`. Everything else is a helper.
BUILD_DIR ?= build
PRESET    ?= dev
JOBS      ?= $(shell nproc)

.PHONY: all deps configure build run test test-unit fuzz bench package format format-check clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@if [ ! -f $(BUILD_DIR)/build.ninja ]; then cmake --preset $(PRESET) >/dev/null; fi

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

## Start amoauth with its SQLite database in ./data and the built-in amoCRM sandbox.
run: build
	@mkdir -p data
	@$(BUILD_DIR)/amoauth serve --sandbox

## Install, build and run every test (unit, integration, e2e).
test: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

test-unit: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -L unit -j $(JOBS)

## The libFuzzer targets under fuzz/ (preset fuzz, clang-14), FUZZ_SECONDS (30) each; fails on a finding.
fuzz:
	@FUZZ_SECONDS=$(or $(FUZZ_SECONDS),30) scripts/fuzz.sh

bench:
	@scripts/bench.sh

## The Debian package, from a release build: build-release/amoauth_<version>_<arch>.deb
## (docs/operations.md, "Installing the Debian package").
package: deps
	@cmake --preset release >/dev/null
	@cmake --build build-release -j $(JOBS) --target amoauth
	@cd build-release && cpack

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format-14 -i

format-check:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format-14 --dry-run --Werror

clean:
	@rm -rf $(BUILD_DIR)
