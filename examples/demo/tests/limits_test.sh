#!/usr/bin/env bash
# spindle-demo's limits (server.hpp, "Limits") against idle floods and slow clients.
# Starts the demo under `ulimit -n 128` with --header-timeout 1s --idle-timeout 2s
# --body-timeout 1s, then limits_clients.py checks, from outside:
#   a. 200 idle connections (opened once): the service answers /healthy 200 within
#      header timeout + 2 s and refuses promptly before that (never hangs); /metrics
#      answers during the flood; connections over the cap get 503 at once, accepted idle
#      ones are closed after the header timeout; the demo's CPU stays under 50% of a core;
#   b. a keep-alive connection idle after its response is closed after the idle timeout,
#      a connection that sends nothing after the header timeout;
#   c. a client that sends its head one byte per 300 ms gets 408 after the header
#      timeout; one whose body stops coming gets 408 after the body timeout;
#   d. 200 idle connections that reconnect as soon as they are closed, for 3 s: no
#      request hangs, /metrics always answers, CPU under 50% of a core;
#   e. out of descriptors (the demo's soft RLIMIT_NOFILE lowered with prlimit below its
#      connection cap): waiting connections are refused with 503 at once, none is left
#      in the backlog, no spinning, and the service answers again afterwards.
# Then SIGTERM: the demo must exit 0 with a clean shutdown, its counters must show each
# kind of timeout and refusal, and no connection may be counted open after the clients
# are gone. Loopback only, free ports, about 25 s.
# Usage: limits_test.sh SPINDLE_DEMO_BINARY
set -euo pipefail
demo=${1:?usage: limits_test.sh SPINDLE_DEMO_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp "${TMPDIR:-/tmp}/spindle-demo-limits.XXXXXX")
pid=""
cleanup() {
  if [[ -n "$pid" ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$log"
}
trap cleanup EXIT

# The demo alone runs under the low descriptor limit (the clients need more than 128).
( ulimit -n 128 && exec "$demo" --no-table --duration 120 --workers 2 \
    --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
    --header-timeout 1s --idle-timeout 2s --body-timeout 1s ) >"$log" 2>&1 &
pid=$!

port="" metrics_port=""
for _ in $(seq 100); do
  port=$(sed -n 's|^spindle-demo: serving http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$log")
  metrics_port=$(sed -n 's|^spindle-demo: metrics on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$log")
  [[ -n "$port" && -n "$metrics_port" ]] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$port" || -z "$metrics_port" ]]; then
  echo "FAIL: spindle-demo did not start"; cat "$log"; exit 1
fi
grep '^spindle-demo: limits:' "$log"

status=0
python3 "$here/limits_clients.py" "$pid" "$port" "$metrics_port" || status=1

kill -TERM "$pid"
exit_code=0
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
  echo "FAIL: spindle-demo did not exit within 10 s of SIGTERM"; status=1
else
  wait "$pid" || exit_code=$?
fi
pid=""
grep -v '^spindle-demo: summary' "$log"

fail() { echo "FAIL: $*"; status=1; }
[[ $exit_code -eq 0 ]] || fail "spindle-demo exited with status $exit_code"
grep -q '^spindle-demo: OK: clean shutdown' "$log" || fail "no clean shutdown"
grep -Eq 'terminate called|Segmentation fault|INCOMPLETE' "$log" && fail "the demo crashed"
counters=$(grep '^spindle-demo: connections ' "$log" || true)
[[ -n "$counters" ]] || fail "no connection counters printed"
counter() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$counters"; }
for name in rejected accept_errors header_timeouts idle_timeouts body_timeouts; do
  value=$(counter "$name")
  [[ "${value:-0}" -gt 0 ]] || fail "counter $name is ${value:-missing}, expected > 0"
done
value=$(counter open_at_stop)
[[ "$value" == "0" ]] || fail "open_at_stop=${value:-missing}: connections counted open after every client left"

if [[ $status -eq 0 ]]; then echo "limits_test: PASS"; else echo "limits_test: FAIL"; fi
exit $status
