#!/usr/bin/env bash
# A real Prometheus (Debian's `prometheus`) scrapes spindle's exporter over
# mutual TLS: job "spindle" with tls_config (ca_file, cert_file, key_file)
# must be up, and its scrapes gzip-compressed (Prometheus always asks; the
# exporter counts them in spindle_exporter_scrapes_total{encoding="gzip"});
# job "spindle_no_client_cert" (the CA only) must be refused (up == 0).
# Loopback only, random free ports, at most ~60 s.
# Usage: prometheus_scrape_test.sh SERVER_BINARY WORK_DIR
set -euo pipefail
server_bin=${1:?usage: prometheus_scrape_test.sh SERVER_BINARY WORK_DIR}
work=${2:?usage: prometheus_scrape_test.sh SERVER_BINARY WORK_DIR}
here=$(cd "$(dirname "$0")" && pwd)
command -v prometheus >/dev/null || { echo "SKIP: no prometheus binary"; exit 0; }

rm -rf "$work"
mkdir -p "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

"$here/make_test_certs.sh" "$work/certs"
"$server_bin" --monitors 5 --tls-dir "$work/certs" --mutual --port-file "$work/port" \
  >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
[[ -s "$work/port" ]] || { echo "FAIL: the test server did not start"; cat "$work/server.log"; exit 1; }
port=$(cat "$work/port")

prom_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: spindle
    scheme: https
    tls_config:
      ca_file: $work/certs/ca.crt
      cert_file: $work/certs/client.crt
      key_file: $work/certs/client.key
    static_configs:
      - targets: ["127.0.0.1:$port"]
  - job_name: spindle_no_client_cert
    scheme: https
    tls_config:
      ca_file: $work/certs/ca.crt
    static_configs:
      - targets: ["127.0.0.1:$port"]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)

# The value of an instant query's first sample, or "none".
query() {
  { curl -s --max-time 2 "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" ||
      true; } |
    python3 -c 'import json,sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "none")
except Exception:
    print("none")'
}

deadline=$((SECONDS + 45))
ok=""
while ((SECONDS < deadline)); do
  up=$(query 'up{job="spindle"}')
  refused=$(query 'up{job="spindle_no_client_cert"}')
  gzip=$(query 'max(spindle_exporter_scrapes_total{job="spindle",encoding="gzip"})')
  series=$(query 'count(spindle_task_polls_total{job="spindle"})')
  if [[ $up == 1 && $refused == 0 && $gzip != none && $series == 10 ]] &&
     python3 -c "import sys; sys.exit(0 if float('$gzip') >= 2 else 1)"; then
    ok=yes
    break
  fi
  sleep 1
done
echo "up{job=spindle}=$up up{job=spindle_no_client_cert}=$refused gzip_scrapes=$gzip polls_series=$series"
if [[ -z $ok ]]; then
  echo "FAIL: Prometheus did not scrape as expected"
  echo "--- targets"; curl -s "http://127.0.0.1:$prom_port/api/v1/targets" | head -c 3000; echo
  echo "--- prometheus.log"; tail -n 20 "$work/prometheus.log"
  echo "--- server.log"; tail -n 20 "$work/server.log"
  exit 1
fi
identity=$(query 'max(spindle_exporter_scrapes_total{job="spindle",encoding="identity"})')
[[ $identity == 0 ]] || { echo "FAIL: Prometheus got $identity uncompressed scrapes"; exit 1; }
echo "prometheus scrape over mutual TLS with gzip: ok"
