#!/usr/bin/env bash
# Runs every shape of spindle-bench with repetitions and prints the medians
# as the markdown table of bench/README.md: spindle vs plain Asio (ratio
# asio/spindle) and vs the tokio 1.24 figures quoted in the issue.
#
#   bench/scripts/bench_table.sh [path/to/spindle-bench] [extra benchmark flags...]
# Default binary: build/release/bench/spindle-bench.
# Environment: REPS (default 5), MIN_TIME (seconds per repetition, default
# 0.5), WORKERS (default 2; parallel_work always also runs at 1), OUT (raw
# console output; default a temp file).
#
# The machine's load average is printed before and after: on a shared
# 2-core machine any other busy process shows up directly in these numbers.
set -euo pipefail

bin=build/release/bench/spindle-bench
if [[ $# -gt 0 && $1 != -* ]]; then
  bin=$1
  shift
fi
reps=${REPS:-5}
min_time=${MIN_TIME:-0.5}
workers=${WORKERS:-2}
out=${OUT:-$(mktemp /tmp/spindle-bench.XXXXXX)}

if [[ ! -x "$bin" ]]; then
  echo "bench_table: no executable at $bin (build with: make build)" >&2
  exit 1
fi
if ldd "$bin" | grep -q 'not found'; then
  export LD_LIBRARY_PATH="$(cd "$(dirname "$bin")" && pwd)/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
cmd=(env SPINDLE_BENCH_WORKERS="$workers" "$bin" --benchmark_repetitions="$reps"
     --benchmark_report_aggregates_only=true --benchmark_min_time="$min_time"
     --benchmark_color=false "$@")
"${cmd[@]}" >"$out" 2>&1 || {
  rc=$?
  echo "bench_table: spindle-bench failed (exit $rc):" >&2
  cat "$out" >&2
  exit "$rc"
}
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)"
echo "load average before: $load_before; after: $load_after"
echo "command: ${cmd[*]}"
echo
awk -v workers="$workers" '
  BEGIN {
    # tokio 1.24, 2 workers on a 2-core machine (figures quoted in the issue)
    tokio["spawn_many_local"] = 2.0; tokio["spawn_many_remote"] = 2.6
    tokio["yield_many"] = 10.3; tokio["ping_pong"] = 0.51; tokio["chained_spawn"] = 0.16
    nshapes = split("spawn_many_local spawn_many_remote yield_many ping_pong chained_spawn parallel_work", shapes, " ")
    split(workers, wl, ",")
  }
  $1 ~ /_(median|cv)$/ {
    name = $1; kind = name; sub(/.*_/, "", kind); sub(/_(median|cv)$/, "", name)
    if (kind == "cv") { cv[name] = $2; next }
    ms = $2; if ($3 == "us") ms /= 1000; else if ($3 == "s") ms *= 1000; else if ($3 == "ns") ms /= 1e6
    t[name] = ms
  }
  /ERROR OCCURRED/ { print "bench_table: " $0 > "/dev/stderr"; bad = 1 }
  function f(x) { return x == "" ? "-" : sprintf(x < 1 ? "%.3f" : (x < 10 ? "%.2f" : "%.1f"), x) }
  END {
    print "| shape | workers | spindle ms (cv) | asio ms (cv) | asio / spindle | asio_queued ms | tokio 1.24 ms | spindle / tokio | spindle_monitored ms (cv) | monitored / spindle |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for (i = 1; i <= nshapes; i++) {
      s = shapes[i]
      delete ws; nw = 0
      if (s == "parallel_work") { ws[++nw] = 1 }
      for (j in wl) if (!(s == "parallel_work" && wl[j] == 1)) ws[++nw] = wl[j]
      for (j = 1; j <= nw; j++) {
        w = ws[j]; sp = s "/spindle/workers:" w; as = s "/asio/workers:" w; aq = s "/asio_queued/workers:" w
        sm = s "/spindle_monitored/workers:" w
        if (!(sp in t)) continue
        ratio = (as in t) ? sprintf("%.1fx", t[as] / t[sp]) : "-"
        tk = (w == 2 && (s in tokio)) ? tokio[s] : ""
        vs = tk != "" ? sprintf("%.2f", t[sp] / tk) : "-"
        mon = (sm in t) ? sprintf("%s (%s%%)", f(t[sm]), cv[sm]) : "-"
        mratio = (sm in t) ? sprintf("%.2fx", t[sm] / t[sp]) : "-"
        printf "| %s | %s | %s (%s%%) | %s (%s%%) | %s | %s | %s | %s | %s | %s |\n", s, w, f(t[sp]), cv[sp], f(t[as]), cv[as], ratio, (aq in t) ? f(t[aq]) : "-", tk == "" ? "-" : f(tk), vs, mon, mratio
      }
    }
    for (impl_i = 1; impl_i <= 4; impl_i++) {
      impl = impl_i == 1 ? "spindle" : (impl_i == 2 ? "asio" : (impl_i == 3 ? "asio_queued" : "spindle_monitored"))

      one = "parallel_work/" impl "/workers:1"; two = "parallel_work/" impl "/workers:2"
      if ((one in t) && (two in t)) printf "\nparallel_work speed-up 1 -> 2 workers, %s: %.2fx", impl, t[one] / t[two]
    }
    print ""
    if (bad) exit 1
  }' "$out"
echo
echo "raw output: $out"
