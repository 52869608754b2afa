#!/usr/bin/env bash
# Runs a real Prometheus with deploy/prometheus (config and rules) against an
# exporter, then every dashboard and rule expression against that Prometheus
# (deploy/tools/check_queries.py).
#
#   deploy/tools/smoke.sh                       against deploy/tools/fake_exporter.py
#   deploy/tools/smoke.sh --target 127.0.0.1:9464   against a running demo
#   options: --wait SECONDS (default 30) before querying; --keep (leave the temp dir)
#
# Needs the `prometheus` binary (Debian package prometheus) and python3. Not
# part of deploy/check.sh, which needs no server and no free port.
set -euo pipefail

deploy=$(cd "$(dirname "$0")/.." && pwd)
target="" wait_s=30 keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --target) target=$2; shift 2 ;;
    --wait) wait_s=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--target HOST:PORT] [--wait SECONDS] [--keep]" >&2; exit 2 ;;
  esac
done
command -v prometheus >/dev/null || { echo "smoke.sh: needs the prometheus binary" >&2; exit 77; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $keep -eq 1 ]]; then echo "smoke.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [[ -z "$target" ]]; then
  target="127.0.0.1:$(free_port)"
  python3 "$deploy/tools/fake_exporter.py" --listen "$target" &
  pids+=($!)
fi

# The integration test's way: copy the config and rewrite its one target.
cp -r "$deploy/prometheus" "$tmp/prometheus"
sed -i "s|\"demo:9464\"|\"$target\"|" "$tmp/prometheus/prometheus.yml"
grep -q "\"$target\"" "$tmp/prometheus/prometheus.yml" || { echo "smoke.sh: target not rewritten" >&2; exit 1; }

prom_port=$(free_port)
prometheus --config.file="$tmp/prometheus/prometheus.yml" --storage.tsdb.path="$tmp/data" \
  --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
  curl -fs "http://127.0.0.1:$prom_port/-/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "http://127.0.0.1:$prom_port/-/ready" >/dev/null || { tail -20 "$tmp/prometheus.log" >&2; exit 1; }
sleep "$wait_s"

python3 "$deploy/tools/check_queries.py" --prometheus "http://127.0.0.1:$prom_port" \
  --job spindle-demo --instance "$target" --rate-interval 1m
