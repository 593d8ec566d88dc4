# The two commands of the README: `make run` and `make test`. Everything else is a helper.
BUILD_DIR ?= build
PRESET    ?= dev
JOBS      ?= $(shell nproc)
# ccache: one tree's objects in the dev, release, asan and tsan builds are 0.95 + 0.48 + 1.53 +
# 0.57 GB (2026-12-01), stored at 18 %; the rest of the cache is older versions of them, evicted
# oldest first. 10 GB instead of the default 5 keeps every configuration `make test` builds, and
# the fuzz build, warm through a day of branches (docs/adr/0006-sanitizers-in-ci.md).
export CCACHE_MAXSIZE ?= 10G
# Paths under the checkout are hashed relative to it, so a clone in another directory (CI's clean
# clone, a worktree) reuses what an earlier one compiled; without this every new path is cold.
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= true

.PHONY: all deps configure build run test test-unit test-asan test-tsan fuzz bench package format format-check clean

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

## Install, build and run every test (unit, integration, e2e, system), then the unit and
## integration tests again under ASan+UBSan and the concurrency tests under TSan.
test: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)
	@$(MAKE) --no-print-directory test-asan test-tsan

## The sanitizer builds (presets asan, tsan): only their test executables (target amoauth_tests),
## and ctest runs every test they registered (docs/adr/0006-sanitizers-in-ci.md).
test-asan test-tsan: test-%: deps
	@if [ ! -f build-$*/build.ninja ]; then cmake --preset $* >/dev/null; fi
	@cmake --build build-$* -j $(JOBS) --target amoauth_tests
	@ctest --test-dir build-$* --output-on-failure -j $(JOBS)

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
	@rm -rf $(BUILD_DIR) build-asan build-tsan
