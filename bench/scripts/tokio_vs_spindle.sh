#!/usr/bin/env bash
# spindle against tokio on this machine, in this hour: the tokio anchor
# (bench/tokio, Debian's tokio built offline) and spindle-bench run the shapes
# of BENCH_SHAPES.md side by side, interleaved shape by shape, for ROUNDS
# rounds, and a table per shape gives tokio, spindle and spindle_monitored
# times and the ratios spindle / tokio, monitored / spindle and
# monitored_recorded / spindle (a flight recorder on too: delay blame), each as the
# median over the rounds with its spread (min–max over the rounds).
#
#   bench/scripts/tokio_vs_spindle.sh [path/to/spindle-bench]
# Default binary: build/release/bench/spindle-bench. This script never builds
# the C++ project (make build does); it does build the anchor
# (cargo build --release --offline in bench/tokio; needs
# `apt-get install librust-tokio-dev` and a cargo, see bench/README.md).
#
# Environment:
#   ROUNDS    rounds (default 3); each round runs every shape once on each side,
#             tokio first in odd rounds and spindle first in even ones
#   REPS      repetitions per shape per round on each side; each side reports
#             the median of its repetitions (default 3)
#   MIN_TIME  seconds one repetition runs at least (default 0.3)
#   WORKERS   worker threads on both sides (default 2; one count)
#   SHAPES    comma-separated shapes (default all six)
#   CARGO     cargo to build the anchor with (default: cargo on PATH, else ~/.cargo/bin/cargo)
#   OUT       file that keeps the raw output of every run (default: a temp file)
#
# The machine's load average is printed before and after: on a shared 2-core
# machine another busy process shows up directly in these numbers, which is
# why the two sides are interleaved and the ratios are taken round by round.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

bin=${1:-build/release/bench/spindle-bench}
rounds=${ROUNDS:-3}
reps=${REPS:-3}
min_time=${MIN_TIME:-0.3}
workers=${WORKERS:-2}
shapes=${SHAPES:-spawn_many_local,spawn_many_remote,yield_many,ping_pong,chained_spawn,parallel_work}
out=${OUT:-$(mktemp /tmp/tokio-vs-spindle.XXXXXX)}
anchor_dir=bench/tokio
anchor=$anchor_dir/target/release/spindle-tokio-anchor

die() { echo "tokio_vs_spindle: $*" >&2; exit 1; }

[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not '$rounds'"
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer, not '$reps'"
[[ $workers =~ ^[1-9][0-9]*$ ]] || die "WORKERS is one worker count, not '$workers'"

# ---- the C++ side: an existing binary, never built here ----------------------------
if [[ ! -x "$bin" ]]; then
  die "no spindle-bench at $bin: build it first with 'make build' (from $root), then rerun"
fi
if ldd "$bin" | grep -q 'not found'; then
  # A carried build directory keeps a copy of libbenchmark in bench/lib.
  libdir="$(cd "$(dirname "$bin")" && pwd)/lib"
  export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
"$bin" --benchmark_list_tests=true >/dev/null 2>&1 ||
  die "$bin does not run (a build in progress? rebuild with 'make build')"

# ---- the tokio side: build the anchor offline ---------------------------------------
ls -d /usr/share/cargo/registry/tokio-* >/dev/null 2>&1 ||
  die "Debian's tokio is not installed: apt-get install librust-tokio-dev"
cargo=${CARGO:-$(command -v cargo || echo "$HOME/.cargo/bin/cargo")}
[[ -x "$cargo" ]] || die "no cargo (set CARGO=/path/to/cargo)"
# Cargo finds bench/tokio/.cargo/config.toml (Debian's registry, offline) only
# when run from bench/tokio.
(cd "$anchor_dir" && "$cargo" build --release --offline --quiet) ||
  die "cargo build of the anchor failed (in $anchor_dir)"
tokio_version=$(awk '/^name = "tokio"$/ { getline; gsub(/"/, "", $3); print $3 }' "$anchor_dir/Cargo.lock")

# ---- the runs --------------------------------------------------------------------------
results=$(mktemp /tmp/tokio-vs-spindle-results.XXXXXX)
trap 'rm -f "$results"' EXIT
: >"$out"

run_tokio() {  # round shape
  local line ms
  echo "## round $1: tokio $2" >>"$out"
  "$anchor" --workers "$workers" --shapes "$2" --reps "$reps" --min-time "$min_time" >>"$out" 2>&1 ||
    die "the anchor failed on $2 (raw output: $out)"
  line=$(grep "^$2/tokio/workers:$workers " "$out" | tail -n 1)
  ms=$(sed -n 's/.* median_ms=\([^ ]*\).*/\1/p' <<<"$line")
  [[ -n $ms ]] || die "no result line for $2 from the anchor (raw output: $out)"
  echo "$1 $2 tokio $ms" >>"$results"
}

run_spindle() {  # round shape
  local tmp
  tmp=$(mktemp /tmp/tokio-vs-spindle-run.XXXXXX)
  echo "## round $1: spindle $2" >>"$out"
  env SPINDLE_BENCH_WORKERS="$workers" "$bin" \
    --benchmark_filter="^$2/spindle(_monitored(_recorded)?)?/workers:$workers(/|\$)" \
    --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true \
    --benchmark_min_time="$min_time" --benchmark_color=false >"$tmp" 2>&1 || {
    cat "$tmp" >>"$out"; rm -f "$tmp"
    die "spindle-bench failed on $2 (raw output: $out)"
  }
  cat "$tmp" >>"$out"
  if grep -q 'ERROR OCCURRED' "$tmp"; then
    rm -f "$tmp"
    die "spindle-bench reported an error on $2 (raw output: $out)"
  fi
  awk -v round="$1" -v shape="$2" '
    $1 ~ /_median$/ {
      name = $1; sub(/_median$/, "", name); n = split(name, part, "/")
      ms = $2; if ($3 == "us") ms /= 1000; else if ($3 == "s") ms *= 1000; else if ($3 == "ns") ms /= 1e6
      print round, shape, part[2], ms
    }' "$tmp" >>"$results"
  rm -f "$tmp"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
IFS=, read -r -a shape_list <<<"$shapes"
for ((r = 1; r <= rounds; r++)); do
  for s in "${shape_list[@]}"; do
    if ((r % 2 == 1)); then
      run_tokio "$r" "$s"; run_spindle "$r" "$s"
    else
      run_spindle "$r" "$s"; run_tokio "$r" "$s"
    fi
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table ---------------------------------------------------------------------------
echo "date: $started; machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)"
echo "load average before: $load_before; after: $load_after"
echo "tokio $tokio_version (Debian librust-tokio-dev, $anchor); spindle: $bin"
echo "workers: $workers; rounds: $rounds; per round and side: median of $reps repetitions of >= ${min_time} s"
echo
awk -v shapes="$shapes" -v rounds="$rounds" '
  { t[$1, $2, $3] = $4 }
  function sort(a, n,    i, j, v) {
    for (i = 2; i <= n; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
  }
  function num(x) { return sprintf(x < 1 ? "%.3f" : (x < 10 ? "%.2f" : "%.1f"), x) }
  # median over the rounds (min–max), of a time or of a per-round ratio
  function cell(shape, a, b, is_ratio,    r, n, v, m) {
    n = 0; delete v
    for (r = 1; r <= rounds; r++) {
      if (!((r, shape, a) in t)) continue
      if (is_ratio) { if (!((r, shape, b) in t) || t[r, shape, b] == 0) continue; v[++n] = t[r, shape, a] / t[r, shape, b] }
      else v[++n] = t[r, shape, a]
    }
    if (n == 0) return "-"
    sort(v, n)
    m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    if (is_ratio) return n == 1 ? sprintf("%.2fx", m) : sprintf("%.2fx (%.2f–%.2f)", m, v[1], v[n])
    return n == 1 ? num(m) : sprintf("%s (%s–%s)", num(m), num(v[1]), num(v[n]))
  }
  END {
    print "| shape | tokio ms | spindle ms | spindle_monitored ms | spindle / tokio | monitored / spindle | monitored_recorded / spindle |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    ns = split(shapes, s, ",")
    for (i = 1; i <= ns; i++)
      printf "| %s | %s | %s | %s | %s | %s | %s |\n", s[i], cell(s[i], "tokio"), cell(s[i], "spindle"),
        cell(s[i], "spindle_monitored"), cell(s[i], "spindle", "tokio", 1),
        cell(s[i], "spindle_monitored", "spindle", 1),
        cell(s[i], "spindle_monitored_recorded", "spindle", 1)
    if (rounds > 1) print "\ncells: median over the rounds (min–max over the rounds); ratios are taken within each round"
  }' "$results"
echo
echo "raw output: $out"
