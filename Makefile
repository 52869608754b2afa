# The two commands of the README, plus the steps they are made of.
#   make demo   install missing Debian packages, configure, build, run the demo
#               service with its load generator (live table; /metrics on :9464)
#   make test   the same set-up, then the whole suite: optimized build,
#               ThreadSanitizer build and AddressSanitizer build
# Build trees live in build/<preset> (see CMakePresets.json).

JOBS ?= $(shell nproc)

.PHONY: all deps build demo seed-demo starvation test test-release test-tsan test-asan bench clean format

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

test: test-release test-tsan test-asan
	@echo "spindle: all test suites passed (release, tsan, asan)"

test-release: deps build/release/CMakeCache.txt
	@cmake --build --preset release -j $(JOBS)
	@ctest --preset release

test-tsan: deps build/tsan/CMakeCache.txt
	@cmake --build --preset tsan -j $(JOBS)
	@ctest --preset tsan

test-asan: deps build/asan/CMakeCache.txt
	@cmake --build --preset asan -j $(JOBS)
	@ctest --preset asan

bench: build
	@./build/release/bench/spindle-bench $(BENCH_ARGS)

format:
	@find runtime monitor exporter tests bench examples -name '*.hpp' -o -name '*.cpp' | xargs clang-format -i

clean:
	rm -rf build
