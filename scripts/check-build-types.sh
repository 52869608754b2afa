#!/usr/bin/env bash
# Configures spindle the plain way a user would — a fresh build directory,
# `cmake -DCMAKE_BUILD_TYPE=<type> -DCMAKE_CXX_COMPILER=<c++>`, no preset, so
# no -Werror — and builds its libraries (runtime, monitor, exporter), for each
# compiler and build type given. Fails if a build fails or prints a warning:
# a user's plain build must be clean. (Tests, benchmarks and examples are off:
# the presets build and run those.)
#
# Usage: scripts/check-build-types.sh [-j N] [compiler ...] [-- build-type ...]
#   defaults: compilers g++ clang++-16, build type Release
# (e.g. `scripts/check-build-types.sh -- Release Debug MinSizeRel RelWithDebInfo`)
# Build trees: build/plain-<compiler>-<type> (removed first: a fresh configure).
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=2
if [[ ${1:-} == -j ]]; then
  jobs=$2
  shift 2
fi
compilers=()
while [[ $# -gt 0 && $1 != -- ]]; do
  compilers+=("$1")
  shift
done
[[ ${1:-} == -- ]] && shift
types=("$@")
[[ ${#compilers[@]} -eq 0 ]] && compilers=(g++ clang++-16)
[[ ${#types[@]} -eq 0 ]] && types=(Release)

failed=0
for cxx in "${compilers[@]}"; do
  for type in "${types[@]}"; do
    dir="build/plain-${cxx}-${type}"
    rm -rf "$dir"
    start=$SECONDS
    if ! cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DCMAKE_CXX_COMPILER="$cxx" \
         -DSPINDLE_BUILD_TESTS=OFF -DSPINDLE_BUILD_BENCHMARKS=OFF -DSPINDLE_BUILD_EXAMPLES=OFF \
         >"$dir.log" 2>&1; then
      cat "$dir.log"
      echo "spindle: configuring a plain $type build with $cxx failed" >&2
      failed=1
      continue
    fi
    if ! cmake --build "$dir" -j "$jobs" >>"$dir.log" 2>&1; then
      grep -E -B2 -A8 'error|Error' "$dir.log" | head -60
      echo "spindle: a plain $type build with $cxx failed (log: $dir.log)" >&2
      failed=1
      continue
    fi
    if grep -q 'warning:' "$dir.log"; then
      grep -E -A8 'warning:' "$dir.log" | head -60
      echo "spindle: a plain $type build with $cxx printed warnings (log: $dir.log)" >&2
      failed=1
      continue
    fi
    echo "spindle: plain $type build with $cxx: clean ($((SECONDS - start)) s)"
  done
done
exit $failed
