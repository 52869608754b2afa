# The two commands of the README, plus the steps they are made of.
#   make demo   install missing Debian packages, configure, build, run the demo
#               service with its load generator (live table; /metrics on :9464)
#   make test   the same set-up, a format check of the library sources, then
#               the whole suite: optimized build (GCC),
#               optimized build (Clang 16), ThreadSanitizer build,
#               AddressSanitizer build, and a plain `-DCMAKE_BUILD_TYPE=Release`
#               configure + library build with each compiler (no preset)
# Build trees live in build/<preset> (see CMakePresets.json).

JOBS ?= $(shell nproc)

.PHONY: all deps build demo seed-demo starvation test test-release test-clang test-tsan test-asan \
        test-build-types bench clean format format-check

all: build

deps:
	@scripts/install-deps.sh

# Configures a preset once (and again whenever CMake asks for it).
build/%/CMakeCache.txt: | deps
	@cmake --preset $* >/dev/null

build: deps build/release/CMakeCache.txt
	@cmake --build --preset release -j $(JOBS)

DEMO_ARGS ?= --load

demo: build
	@./build/release/examples/demo/spindle-demo $(DEMO_ARGS)

# The seed talk's starvation demonstration and the starvation catalogue.
seed-demo: build
	@./build/release/examples/seed_demo/spindle-seed-demo
starvation: build
	@./build/release/examples/starvation/spindle-starvation

test: format-check test-release test-clang test-tsan test-asan test-build-types
	@echo "spindle: all test suites passed (format, release, clang-release, tsan, asan, build types)"

# The format check comes before any suite, also under make -j.
test-release test-clang test-tsan test-asan test-build-types: | format-check

test-release: deps build/release/CMakeCache.txt
	@cmake --build --preset release -j $(JOBS)
	@ctest --preset release

test-clang: deps build/clang-release/CMakeCache.txt
	@cmake --build --preset clang-release -j $(JOBS)
	@ctest --preset clang-release

test-tsan: deps build/tsan/CMakeCache.txt
	@cmake --build --preset tsan -j $(JOBS)
	@ctest --preset tsan

test-asan: deps build/asan/CMakeCache.txt
	@cmake --build --preset asan -j $(JOBS)
	@ctest --preset asan

# Plain configure + library build, no preset (so no -Werror), must be
# warning-free: BUILD_TYPES="Release Debug MinSizeRel RelWithDebInfo" for all.
BUILD_TYPES ?= Release
test-build-types: deps
	@scripts/check-build-types.sh -j $(JOBS) g++ clang++-16 -- $(BUILD_TYPES)

bench: build
	@./build/release/bench/spindle-bench $(BENCH_ARGS)

# clang-format 14 (Debian 12's), the version the sources are formatted with.
CLANG_FORMAT ?= $(shell command -v clang-format-14 || command -v clang-format)
# The library sources. tests/, bench/ and examples/ are not checked yet:
# about thirty of their files predate the formatting pass and differ.
FORMAT_DIRS = runtime/include runtime/src monitor/include monitor/src exporter/include exporter/src

format:
	@find runtime monitor exporter tests bench examples -name '*.hpp' -o -name '*.cpp' | xargs clang-format -i

# Fails (and names each file and line) when a library source is not formatted.
format-check: deps
	@find $(FORMAT_DIRS) \( -name '*.hpp' -o -name '*.cpp' \) -print0 | \
	  xargs -0 $(CLANG_FORMAT) --dry-run -Werror
	@echo "spindle: library sources are clang-formatted ($(notdir $(CLANG_FORMAT)))"

clean:
	rm -rf build
