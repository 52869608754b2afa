#!/usr/bin/env bash
# End-to-end: the demo service (with its load generator) scraped by a real
# Prometheus (Debian package `prometheus`) configured from deploy/, on
# loopback ports chosen at run time. Checks, in order:
#   1. a live scrape of the demo passes `promtool check metrics` with no finding;
#   2. deploy/check.sh: promtool check config / check rules / test rules and
#      the dashboard lints, on the files;
#   3. deploy/tools/smoke.sh --fleet, three Prometheus from
#      deploy/prometheus/fleet/: A scrapes the demo with spindle's rules and
#      external_labels and remote-writes the spindle series to B (run with
#      --web.enable-remote-write-receiver); C federates them from A's
#      /federate. Every expression of every dashboard panel and every rule is
#      evaluated through the HTTP API of A, B and C; any that errors or
#      returns no series fails, and so does a recorded series that did not
#      reach B or C, a series there without A's external labels, or a
#      sample A failed to send to B. Data is polled for, 90 s at most in
#      all (~25-40 s when it passes);
#   4. the verdict A's rules compute per route (deploy/tools/check_verdict.py,
#      run by smoke.sh on A, within the same 90 s), at two consecutive rule
#      evaluations: blocking-sleep and big-loop spend their time being polled
#      (poll), slow-downstream waiting for its "backend" (idle), and victim,
#      a well-behaved route starved by the others, waiting for a worker
#      (scheduled) with blocking-sleep, the biggest hog of the load plan, as
#      its top culprit; the alert SpindleTaskSlowVerdict is pending for the
#      first three with that cause and culprit, and not for slow-downstream.
#      The table of every route's verdict is printed.
# Usage: prometheus_integration.sh <source-dir> <spindle-demo binary>
set -euo pipefail
src=$1 demo=$2
for tool in prometheus promtool curl python3; do
  command -v "$tool" >/dev/null || { echo "integration: $tool not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
done

tmp=$(mktemp -d)
demo_pid=""
cleanup() {
  if [[ -n "$demo_pid" ]]; then kill "$demo_pid" 2>/dev/null || true; wait "$demo_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
metrics_port=$(free_port)
target="127.0.0.1:$metrics_port"

"$demo" --load --no-table --listen 127.0.0.1:0 --metrics "$target" --duration 0 >"$tmp/demo.log" 2>&1 &
demo_pid=$!
for _ in $(seq 1 100); do
  curl -fs "http://$target/metrics" -o "$tmp/scrape.txt" 2>/dev/null && break
  sleep 0.1
done
[[ -s "$tmp/scrape.txt" ]] || { echo "integration: the demo's /metrics did not come up"; cat "$tmp/demo.log"; exit 1; }

# 1. A live scrape after some load, so that every family has samples.
sleep 5
curl -fs "http://$target/metrics" -o "$tmp/scrape.txt"
if ! findings=$(promtool check metrics <"$tmp/scrape.txt" 2>&1) || [[ -n "$findings" ]]; then
  echo "integration: promtool check metrics found problems in a live scrape:"
  echo "$findings"
  exit 1
fi
echo "integration: live scrape ($(grep -c '^spindle_' "$tmp/scrape.txt") spindle_ samples) passes promtool check metrics"

# 2. The files.
"$src/deploy/check.sh"

# 3. Real Prometheus against the demo (a leaf, a remote-write receiver, a
# federating one); every dashboard and rule expression on each; 4. the verdict
# on the leaf, per route (the demo's causes: examples/demo/routes.hpp).
"$src/deploy/tools/smoke.sh" --target "$target" --fleet --wait 90 \
  --expect-verdict blocking-sleep=poll --expect-verdict big-loop=poll \
  --expect-verdict slow-downstream=idle \
  --expect-verdict victim=scheduled --expect-culprit victim=blocking-sleep
kill -0 "$demo_pid" || { echo "integration: the demo died"; cat "$tmp/demo.log"; exit 1; }
echo "integration: PASSED"
