#!/usr/bin/env bash
# Builds consumer projects against this spindle build.
# Usage: run.sh <spindle-source-dir> <spindle-build-dir> <work-dir> <c++-compiler> [<sanitizer>]
#
# Plain build (no <sanitizer>):
#   1. `cmake --install` into a temporary prefix, then find_package(spindle)
#      with every component (runtime, monitor, exporter);
#   2. find_package(spindle COMPONENTS runtime) with prometheus-cpp made
#      unfindable (-DCMAKE_DISABLE_FIND_PACKAGE_prometheus-cpp=ON);
#   3. find_package(spindle COMPONENTS runtime metrics) must fail and name
#      the unknown component;
#   4. add_subdirectory(<spindle source>) in a fresh project.
# Sanitizer build (<sanitizer> = address or thread): install, then step 2,
# whose program must come out compiled and linked with that sanitizer,
# with no flag of its own.
set -euo pipefail
src=$1 build=$2 work=$3 cxx=$4 sanitizer=${5:-}
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null

configure() {  # configure <dir> <source> [cmake args...]
  local dir=$1 source=$2
  shift 2
  if ! cmake -S "$source" -B "$dir" -DCMAKE_CXX_COMPILER="$cxx" "$@" >"$dir.log" 2>&1; then
    cat "$dir.log"
    return 1
  fi
}
build_and_run() {  # build_and_run <dir>
  if ! cmake --build "$1" -j 2 >"$1.build.log" 2>&1; then
    cat "$1.build.log"
    return 1
  fi
  "$1/consumer"
}

if [[ -n "$sanitizer" ]]; then
  configure "$work/san" "$src/tests/consumer/runtime_only" -DCMAKE_PREFIX_PATH="$work/prefix" \
            -DCMAKE_DISABLE_FIND_PACKAGE_prometheus-cpp=ON -DEXPECT_SANITIZER="$sanitizer"
  build_and_run "$work/san"
  echo "$sanitizer sanitizer consumer: ok"
  exit 0
fi

configure "$work/fp" "$src/tests/consumer/find_package" -DCMAKE_PREFIX_PATH="$work/prefix"
build_and_run "$work/fp"
echo "find_package consumer: ok"

configure "$work/rt" "$src/tests/consumer/runtime_only" -DCMAKE_PREFIX_PATH="$work/prefix" \
          -DCMAKE_DISABLE_FIND_PACKAGE_prometheus-cpp=ON
build_and_run "$work/rt"
echo "find_package COMPONENTS runtime consumer (no prometheus-cpp): ok"

if cmake -S "$src/tests/consumer/unknown_component" -B "$work/unknown" -DCMAKE_CXX_COMPILER="$cxx" \
         -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/unknown.log" 2>&1; then
  echo "find_package(spindle COMPONENTS runtime metrics) did not fail" >&2
  exit 1
fi
if ! grep -q "spindle has no component 'metrics'" "$work/unknown.log"; then
  echo "find_package(spindle COMPONENTS runtime metrics) failed without naming the component:" >&2
  cat "$work/unknown.log" >&2
  exit 1
fi
echo "unknown component: fails, naming it: ok"

configure "$work/sub" "$src/tests/consumer/subdirectory" -DSPINDLE_SOURCE_DIR="$src"
build_and_run "$work/sub"
echo "add_subdirectory consumer: ok"
