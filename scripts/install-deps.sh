#!/usr/bin/env bash
# Installs the Debian packages spindle needs to build, test and run its demo.
# Idempotent: prints nothing and exits 0 when everything is already installed.
# Usage: scripts/install-deps.sh [extra-package ...]
set -euo pipefail

packages=(
  # toolchain: GCC 12 and Clang 14 (Debian 12's defaults), Clang 16 (the
  # clang-release preset; the recommended compiler) with its sanitizer runtimes
  cmake make g++ clang libclang-rt-dev clang-16 libclang-rt-16-dev
  # make test's format check (clang-format 14, as the sources are formatted)
  clang-format
  # runtime and monitor layers
  libasio-dev
  # the demo's command-line flags
  libabsl-dev
  # exporter layer: prometheus-cpp (the Collectable types; its pull library in
  # the tests), its HTTP server's request parsing (also the demo's), TLS, gzip
  prometheus-cpp-dev libhttp-parser-dev libssl-dev zlib1g-dev
  # the exporter's protobuf exposition (native histograms): protobuf-lite and
  # protoc, which generates its code from exporter/proto at build time
  libprotobuf-dev protobuf-compiler
  # tests and benchmarks; prometheus (with promtool) for the exporter's and
  # deploy/'s checks and the end-to-end test, curl and python3 for its scripts,
  # openssl for the exporter's TLS test certificates, wrk for its HTTP figures
  libgtest-dev libgmock-dev libbenchmark-dev prometheus curl python3 openssl wrk
  # the flight recorder's trace is checked by parsing it (nlohmann/json)
  nlohmann-json3-dev
)
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "spindle: installing missing Debian packages: ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "spindle: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
apt_quiet=(-o Dpkg::Use-Pty=0 -qq)
# Try without refreshing the package lists first; refresh once if that fails.
if ! "${sudo_cmd[@]}" apt-get install -y "${apt_quiet[@]}" --no-install-recommends "${missing[@]}" >/tmp/spindle-apt.log 2>&1; then
  "${sudo_cmd[@]}" apt-get update "${apt_quiet[@]}" >>/tmp/spindle-apt.log 2>&1
  if ! "${sudo_cmd[@]}" apt-get install -y "${apt_quiet[@]}" --no-install-recommends "${missing[@]}" >>/tmp/spindle-apt.log 2>&1; then
    echo "spindle: apt-get failed; see /tmp/spindle-apt.log" >&2
    tail -n 20 /tmp/spindle-apt.log >&2
    exit 1
  fi
fi
