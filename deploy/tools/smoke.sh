#!/usr/bin/env bash
# Runs a real Prometheus with deploy/prometheus (config and rules) against an
# exporter, then every dashboard and rule expression against that Prometheus
# (deploy/tools/check_queries.py).
#
#   deploy/tools/smoke.sh                       against deploy/tools/fake_exporter.py
#   deploy/tools/smoke.sh --target 127.0.0.1:9464   against a running demo
#   options: --wait SECONDS (default 90): the most to wait, in all, for the
#              queries to have data (polled every 2 s; passing takes ~15-30 s);
#            --fleet: the fleet of deploy/prometheus/fleet/ instead (below);
#            --expect-verdict MONITOR=CAUSE, --expect-culprit MONITOR=CULPRIT
#              (repeatable): then, within what is left of --wait, the verdict the
#              rules compute on the (leaf) Prometheus must be that
#              (deploy/tools/check_verdict.py; prints every monitor's verdict);
#            --keep: leave the temp dir
#
# --fleet starts three Prometheus on loopback ports picked at run time:
#   A  fleet/leaf.yml: scrapes the target with spindle's rules, labels what it
#      sends with its external_labels, remote-writes the spindle series to B;
#   B  fleet/central-remote-write.yml with --web.enable-remote-write-receiver;
#   C  fleet/central-federate.yml: scrapes A's /federate (honor_labels).
# Every expression then runs on A, and on B and C with check_queries.py
# --central: B and C load no rules (the leaf's recorded series arrive with the
# raw ones, and every rule's expression is evaluated there directly), and
# every spindle series on them must carry A's external labels. Last, A must
# have sent every sample without a failure.
#
# Needs the `prometheus` binary (Debian package prometheus) and python3. Not
# part of deploy/check.sh, which needs no server and no free port.
set -euo pipefail

deploy=$(cd "$(dirname "$0")/.." && pwd)
target="" wait_s=90 keep=0 fleet=0 verdict=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --target) target=$2; shift 2 ;;
    --wait) wait_s=$2; shift 2 ;;
    --fleet) fleet=1; shift ;;
    --expect-verdict) verdict+=(--expect "$2"); shift 2 ;;
    --expect-culprit) verdict+=(--expect-culprit "$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--target HOST:PORT] [--wait SECONDS] [--fleet]" \
         "[--expect-verdict MONITOR=CAUSE]... [--expect-culprit MONITOR=CULPRIT]... [--keep]" >&2; exit 2 ;;
  esac
done
command -v prometheus >/dev/null || { echo "smoke.sh: needs the prometheus binary" >&2; exit 77; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  # Last started first, each waited for: A flushes its remote-write queue to B
  # on the way down, so B must still be there (or A waits out its flush
  # deadline, --storage.remote.flush-deadline).
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  if [[ $keep -eq 1 ]]; then echo "smoke.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
deadline=$((SECONDS + wait_s))

if [[ -z "$target" ]]; then
  target="127.0.0.1:$(free_port)"
  python3 "$deploy/tools/fake_exporter.py" --listen "$target" &
  pids+=($!)
fi

# The integration test's way: copy the configs and rewrite the marked lines.
cp -r "$deploy/prometheus" "$tmp/prometheus"
# rewrite FILE FROM TO: replaces FROM by TO in FILE, and fails if it was not there.
rewrite() {
  grep -qF "$2" "$1" || { echo "smoke.sh: $2 not found in $1" >&2; exit 1; }
  sed -i "s|$2|$3|" "$1"
}

# start NAME CONFIG PORT [FLAGS...]: a Prometheus, waited for until ready.
start() {
  local name=$1 config=$2 port=$3
  shift 3
  prometheus --config.file="$config" --storage.tsdb.path="$tmp/data-$name" \
    --web.listen-address="127.0.0.1:$port" "$@" >"$tmp/prometheus-$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "smoke.sh: Prometheus $name did not become ready" >&2
  tail -20 "$tmp/prometheus-$name.log" >&2
  exit 1
}

# check NAME PORT [OPTIONS...]: check_queries.py against it, within what is left of --wait.
check() {
  local name=$1 port=$2
  shift 2
  local left=$((deadline - SECONDS))
  ((left > 0)) || left=0
  echo "smoke.sh: Prometheus $name (127.0.0.1:$port):"
  if ! python3 "$deploy/tools/check_queries.py" --prometheus "http://127.0.0.1:$port" \
      --job spindle-demo --instance "$target" --rate-interval 1m --wait "$left" "$@"; then
    local log
    for log in "$tmp"/prometheus-*.log; do
      echo "--- $(basename "$log"), last lines:" >&2
      tail -5 "$log" >&2
    done
    exit 1
  fi
}

# check_verdict PORT: the expected verdicts on the Prometheus that evaluates the rules.
check_verdict() {
  [[ ${#verdict[@]} -gt 0 ]] || return 0
  local left=$((deadline - SECONDS))
  ((left > 0)) || left=0
  echo "smoke.sh: the verdict on 127.0.0.1:$1:"
  python3 "$deploy/tools/check_verdict.py" --prometheus "http://127.0.0.1:$1" \
    --job spindle-demo --instance "$target" --wait "$left" "${verdict[@]}"
}

if [[ $fleet -eq 0 ]]; then
  a_port=$(free_port)
  rewrite "$tmp/prometheus/prometheus.yml" '"demo:9464"' "\"$target\""
  start single "$tmp/prometheus/prometheus.yml" "$a_port"
  check single "$a_port"
  check_verdict "$a_port"
  exit 0
fi

fleet_dir=$tmp/prometheus/fleet
a_port=$(free_port) b_port=$(free_port) c_port=$(free_port)
rewrite "$fleet_dir/leaf.yml" '"demo:9464"' "\"$target\""
rewrite "$fleet_dir/leaf.yml" 'http://central:9090/api/v1/write' "http://127.0.0.1:$b_port/api/v1/write"
rewrite "$fleet_dir/central-federate.yml" '"leaf:9090"' "\"127.0.0.1:$a_port\""
# A's external labels, as NAME=VALUE options for check_queries.py.
mapfile -t labels < <(python3 - "$fleet_dir/leaf.yml" <<'EOF'
import re, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
start = next(i for i, l in enumerate(lines) if re.match(r"^\s*external_labels:\s*$", l))
indent = len(lines[start]) - len(lines[start].lstrip())
for l in lines[start + 1:]:
    if not l.strip() or l.lstrip().startswith("#"):
        continue
    if len(l) - len(l.lstrip()) <= indent:
        break
    name, value = (s.strip().strip("'\"") for s in l.split(":", 1))
    print("--external-label=%s=%s" % (name, value))
EOF
)
[[ ${#labels[@]} -gt 0 ]] || { echo "smoke.sh: no external_labels in leaf.yml" >&2; exit 1; }

start B-remote-write "$fleet_dir/central-remote-write.yml" "$b_port" --web.enable-remote-write-receiver
start A-leaf "$fleet_dir/leaf.yml" "$a_port"
start C-federate "$fleet_dir/central-federate.yml" "$c_port"
echo "smoke.sh: fleet: A (leaf) 127.0.0.1:$a_port scrapes $target, remote-writes to B 127.0.0.1:$b_port;" \
  "C 127.0.0.1:$c_port federates A; external labels ${labels[*]#--external-label=}"
check A-leaf "$a_port"
check_verdict "$a_port"
check B-remote-write "$b_port" --central "${labels[@]}"
check C-federate "$c_port" --central "${labels[@]}"
# B accepted every request: a rejected one (HTTP 4xx, e.g. duplicate samples)
# is dropped by A whole, raw samples included, and may still leave every
# query above with data.
failed=$(curl -fs "http://127.0.0.1:$a_port/metrics" |
  awk '/^prometheus_remote_storage_samples_failed_total/ {n += $2} END {print n + 0}')
if [[ $failed != 0 ]]; then
  echo "smoke.sh: A failed to remote-write $failed samples to B:" >&2
  grep -E 'level=(warn|error)' "$tmp/prometheus-A-leaf.log" "$tmp/prometheus-B-remote-write.log" | tail -5 >&2
  exit 1
fi
echo "smoke.sh: A remote-wrote with no failed samples"
echo "smoke.sh: fleet: every query has data on A, B and C ($((SECONDS - deadline + wait_s)) s)"
