#!/usr/bin/env bash
# Builds two consumer projects against this spindle build:
#   1. `cmake --install` into a temporary prefix, then find_package(spindle);
#   2. add_subdirectory(<spindle source>) in a fresh project.
# Usage: run.sh <spindle-source-dir> <spindle-build-dir> <work-dir> <c++-compiler>
set -euo pipefail
src=$1 build=$2 work=$3 cxx=$4
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null

cmake -S "$src/tests/consumer/find_package" -B "$work/fp" -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/fp" -j 2 >/dev/null
"$work/fp/consumer"
echo "find_package consumer: ok"

cmake -S "$src/tests/consumer/subdirectory" -B "$work/sub" -DCMAKE_CXX_COMPILER="$cxx" \
      -DSPINDLE_SOURCE_DIR="$src" >/dev/null
cmake --build "$work/sub" -j 2 >/dev/null
"$work/sub/consumer"
echo "add_subdirectory consumer: ok"
