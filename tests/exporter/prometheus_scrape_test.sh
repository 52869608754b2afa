#!/usr/bin/env bash
# A real Prometheus (Debian's `prometheus`) scrapes spindle's exporter over
# mutual TLS: job "spindle" with tls_config (ca_file, cert_file, key_file)
# must be up, and its scrapes gzip-compressed (Prometheus always asks; the
# exporter counts them in spindle_exporter_scrapes_total{encoding="gzip"});
# job "spindle_no_client_cert" (the CA only) must be refused (up == 0).
#
# With --native-histograms, Prometheus runs with
# --enable-feature=native-histograms, so it asks for the protobuf format
# (which spindle serves, gzipped too), and the server also exports monitor
# "mix" (--poll-mix: 985 polls of 40 µs, 15 of 30 ms, timed on a manual
# clock). Then, besides the above:
#   - histogram_quantile(0.99, spindle_task_poll_duration_seconds{monitor="mix"})
#     over the native series agrees with the server's in-process
#     Histogram::quantile(0.99) within 10%, and histogram_count() is 1000;
#   - the series names Prometheus stored are those of a text scrape, a
#     histogram's _bucket, _sum and _count being its one native series
#     (counters keep their _total);
#   - no classic _bucket series were stored: Prometheus 2.42 ingests a
#     histogram that has native buckets as a native histogram only.
# Loopback only, random free ports, at most ~60 s (~10 s when it passes).
# A missing prometheus fails the ctest (its pass expression is the "ok").
# Usage: prometheus_scrape_test.sh SERVER_BINARY WORK_DIR [--native-histograms]
set -euo pipefail
server_bin=${1:?usage: prometheus_scrape_test.sh SERVER_BINARY WORK_DIR [--native-histograms]}
work=${2:?usage: prometheus_scrape_test.sh SERVER_BINARY WORK_DIR [--native-histograms]}
native=""
[[ ${3:-} == --native-histograms ]] && native=yes
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
server_args=(--monitors 5 --tls-dir "$work/certs" --mutual --port-file "$work/port")
prometheus_args=()
monitors=5
if [[ -n $native ]]; then
  server_args+=(--poll-mix "$work/p99")
  prometheus_args+=(--enable-feature=native-histograms)
  monitors=6
fi
"$server_bin" "${server_args[@]}" >"$work/server.log" 2>&1 &
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
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn ${prometheus_args[@]+"${prometheus_args[@]}"} \
  >"$work/prometheus.log" 2>&1 &
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
  if [[ -n $native ]]; then
    mix=$(query 'histogram_quantile(0.99, spindle_task_poll_duration_seconds{job="spindle",monitor="mix"})')
  else
    mix=n/a
  fi
  if [[ $up == 1 && $refused == 0 && $gzip != none && $series == $((2 * monitors)) &&
        $mix != none ]] &&
     python3 -c "import sys; sys.exit(0 if float('$gzip') >= 2 else 1)"; then
    ok=yes
    break
  fi
  sleep 1
done
echo "up{job=spindle}=$up up{job=spindle_no_client_cert}=$refused gzip_scrapes=$gzip polls_series=$series mix_p99=$mix"
if [[ -z $ok ]]; then
  echo "FAIL: Prometheus did not scrape as expected"
  echo "--- targets"; curl -s "http://127.0.0.1:$prom_port/api/v1/targets" | head -c 3000; echo
  echo "--- prometheus.log"; tail -n 20 "$work/prometheus.log"
  echo "--- server.log"; tail -n 20 "$work/server.log"
  exit 1
fi
identity=$(query 'max(spindle_exporter_scrapes_total{job="spindle",encoding="identity"})')
[[ $identity == 0 ]] || { echo "FAIL: Prometheus got $identity uncompressed scrapes"; exit 1; }
if [[ -z $native ]]; then
  echo "prometheus scrape over mutual TLS with gzip: ok"
  exit 0
fi

# The native histogram's p99 against the server's own.
in_process=$(cat "$work/p99")
echo "histogram_quantile(0.99) over the native series: $mix s; in-process Histogram::quantile(0.99): $in_process s"
python3 -c "import sys; a, b = float('$mix'), float('$in_process'); sys.exit(0 if abs(a - b) <= 0.10 * b else 1)" ||
  { echo "FAIL: the native p99 is not within 10% of the in-process one"; exit 1; }
count=$(query 'histogram_count(spindle_task_poll_duration_seconds{job="spindle",monitor="mix"})')
[[ $count == 1000 ]] || { echo "FAIL: histogram_count of the mix is $count, not 1000"; exit 1; }

# The names Prometheus stored from the protobuf scrapes, against a text scrape's.
curl -s --max-time 5 --cacert "$work/certs/ca.crt" --cert "$work/certs/client.crt" \
  --key "$work/certs/client.key" "https://127.0.0.1:$port/metrics" >"$work/text.txt"
curl -s --max-time 5 "http://127.0.0.1:$prom_port/api/v1/query" \
  --data-urlencode 'query=count by (__name__) ({job="spindle",__name__=~"spindle_.+"})' \
  >"$work/names.json"
python3 - "$work/text.txt" "$work/names.json" <<'PY' || exit 1
import json, sys
histograms, names = set(), set()
for line in open(sys.argv[1]):
    if line.startswith("# TYPE ") and line.split()[3] == "histogram":
        histograms.add(line.split()[2])
    elif line.strip() and not line.startswith("#"):
        names.add(line.split("{")[0].split(" ")[0])
# A histogram's classic series become its one native series.
expected = {n for n in names if not any(n in (h + "_bucket", h + "_sum", h + "_count")
                                        for h in histograms)} | histograms
stored = {r["metric"]["__name__"] for r in json.load(open(sys.argv[2]))["data"]["result"]}
print(f"series names: {len(stored)} stored from protobuf, {len(expected)} expected from the text")
if stored != expected:
    print("FAIL: only stored:", sorted(stored - expected), "only in the text:", sorted(expected - stored))
    sys.exit(1)
if "spindle_task_polls_total" not in stored:
    print("FAIL: the counters lost their _total")
    sys.exit(1)
PY
classic=$(query 'count({job="spindle",__name__=~"spindle_.+_bucket"})')
echo "classic _bucket series stored: $classic"
[[ $classic == none ]] || { echo "FAIL: Prometheus also stored classic _bucket series"; exit 1; }
echo "prometheus native histograms over mutual TLS with gzip: ok"
