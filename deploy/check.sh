#!/usr/bin/env bash
# Checks everything under deploy/ that can be checked without a server:
#   - Prometheus: promtool check config (prometheus.yml and the fleet
#     examples in prometheus/fleet/), check rules, test rules (every
#     recording and alerting rule has a test; every alert has for:, a severity
#     and summary/description annotations); fleet/leaf.yml is prometheus.yml
#     plus external_labels and remote_write
#   - Kubernetes: the committed PrometheusRule is what gen-prometheusrule.sh
#     makes of the rule files, and its rules pass promtool
#   - Grafana: the dashboards are valid JSON, what grafana/generate.py writes,
#     and pass tools/lint_dashboards.py; every PromQL expression of every panel
#     parses (promtool); extract_queries.py reads every rule
#   - the YAML files parse (when PyYAML is installed)
# Quiet on success but for one summary line; prints what failed otherwise.
# Exit status: 0 all passed, 1 a check failed, 77 promtool or python3 missing
# (install the Debian packages `prometheus` and `python3`).
set -uo pipefail

cd "$(dirname "$0")"
for tool in promtool python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "deploy/check.sh: $tool not found (Debian: apt-get install prometheus python3)" >&2
    exit 77
  fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0 passed=0 notes=()

# check NAME COMMAND...: runs COMMAND quietly; on failure prints its output.
check() {
  local name=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED: $name" >&2
    sed 's/^/  /' "$tmp/out" >&2
  fi
}

rule_files=(prometheus/rules/*.yml)
test_files=(prometheus/tests/*.yml)
dashboards=(grafana/dashboards/*.json)

# ---- Prometheus -----------------------------------------------------------------
check "promtool check config" promtool check config prometheus/prometheus.yml
check "one scrape target in prometheus.yml (the integration test rewrites it)" \
  test "$(grep -c 'targets:' prometheus/prometheus.yml)" -eq 1
check "promtool check config (fleet)" promtool check config prometheus/fleet/*.yml
check "one scrape target in fleet/leaf.yml and fleet/central-federate.yml (the integration test rewrites them)" \
  test "$(cat prometheus/fleet/leaf.yml prometheus/fleet/central-federate.yml | grep -c 'targets:')" -eq 2
# The leaf must scrape and evaluate as the single Prometheus does: compared
# line by line without comments, external_labels and remote_write.
check "fleet/leaf.yml is prometheus.yml plus external_labels and remote_write" python3 - \
  prometheus/prometheus.yml prometheus/fleet/leaf.yml <<'EOF'
import difflib, sys

def lines(path, drop=()):
    """The file's lines without comments and blank lines, and without the
    blocks (a key and everything indented below it) named in drop."""
    out, skip = [], None
    for line in open(path, encoding="utf-8"):
        line = "" if line.lstrip().startswith("#") else line.split(" #")[0].rstrip()
        if not line:
            continue
        indent = len(line) - len(line.lstrip())
        if skip is not None and indent > skip:
            continue
        skip = None
        if line.strip().rstrip(":") in drop:
            skip = indent
            continue
        out.append(line.replace("../rules/", "rules/"))
    return out

single, leaf = lines(sys.argv[1]), lines(sys.argv[2], drop=("external_labels", "remote_write"))
if single != leaf:
    print("\n".join(difflib.unified_diff(single, leaf, sys.argv[1], sys.argv[2], lineterm="")))
    sys.exit(1)
EOF
check "promtool check rules" promtool check rules "${rule_files[@]}"
check "promtool test rules" promtool test rules "${test_files[@]}"

check "every rule has a test; every alert has for, severity, summary, description" python3 - "${rule_files[@]}" -- "${test_files[@]}" <<'EOF'
import re, sys
args = sys.argv[1:]
rules, tests = args[:args.index("--")], args[args.index("--") + 1:]
test_text = "\n".join(open(t, encoding="utf-8").read() for t in tests)
problems = []
for path in rules:
    text = open(path, encoding="utf-8").read()
    for name in re.findall(r"^\s*-\s+record:\s*(\S+)", text, re.M):
        if not re.search(r"^\s*-\s+expr:\s*%s\s*$" % re.escape(name), test_text, re.M):
            problems.append("%s: recording rule %s has no promql_expr_test" % (path, name))
    blocks = re.split(r"^\s*-\s+(?=alert:|record:)", text, flags=re.M)[1:]
    for block in blocks:
        m = re.match(r"alert:\s*(\S+)", block)
        if not m:
            continue
        name = m.group(1)
        for key in ("for:", "severity:", "summary:", "description:"):
            if not re.search(r"^\s*%s" % key, block, re.M):
                problems.append("%s: alert %s has no %s" % (path, name, key))
        cases = re.findall(r"alertname:\s*%s\s*\n\s*exp_alerts:\s*(\[\])?" % re.escape(name), test_text)
        if not any(c == "[]" for c in cases) or not any(c == "" for c in cases):
            problems.append("%s: alert %s needs a firing and a not-firing alert_rule_test" % (path, name))
print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF

# ---- Kubernetes --------------------------------------------------------------------
check "kubernetes/prometheusrule.yaml is up to date" kubernetes/gen-prometheusrule.sh --check
# The PrometheusRule's spec, indented back to a rule file, must pass promtool too.
sed -n '/^spec:/,$p' kubernetes/prometheusrule.yaml | tail -n +2 | sed 's/^  //' >"$tmp/prometheusrule-spec.yml"
check "promtool check rules (PrometheusRule spec)" promtool check rules "$tmp/prometheusrule-spec.yml"

# ---- Grafana ---------------------------------------------------------------------------
for d in "${dashboards[@]}"; do
  check "$d is valid JSON" python3 -m json.tool "$d"
done
check "dashboards are what grafana/generate.py writes" python3 grafana/generate.py --check
check "dashboard lint" python3 tools/lint_dashboards.py "${dashboards[@]}"

# Every expression (dashboards and rules) must parse: make them recording rules.
check "extract_queries.py" sh -c 'python3 extract_queries.py >"$1"' sh "$tmp/queries.jsonl"
check "every dashboard and rule expression parses (promtool)" python3 - "$tmp/queries.jsonl" "$tmp/all-queries.yml" "${rule_files[@]}" <<'EOF'
import json, re, subprocess, sys
src, dst, rule_files = sys.argv[1], sys.argv[2], sys.argv[3:]
items = [json.loads(line) for line in open(src, encoding="utf-8")]
# extract_queries.py's small YAML reader must find every rule promtool finds.
expected = sum(len(re.findall(r"^\s*-\s+(?:record|alert):", open(f, encoding="utf-8").read(), re.M))
               for f in rule_files)
got = sum(1 for i in items if i["kind"] in ("record", "alert"))
if got != expected:
    sys.exit("extract_queries.py read %d rules, the rule files have %d" % (got, expected))
for i in items:
    if not i["metrics"]:
        sys.exit("%s: no spindle metric found in %r" % (i["source"], i["expr"]))
with open(dst, "w", encoding="utf-8") as f:
    f.write("groups:\n  - name: all-queries\n    rules:\n")
    for n, i in enumerate(items):
        f.write("      - record: query_%d\n        expr: %s\n" % (n, json.dumps(i["expr"])))
r = subprocess.run(["promtool", "check", "rules", dst], capture_output=True, text=True)
if r.returncode != 0:
    print(r.stdout + r.stderr)
    for n, i in enumerate(items):
        print("query_%d = %s" % (n, i["source"]))
    sys.exit(1)
EOF

# ---- YAML --------------------------------------------------------------------------------
if python3 -c 'import yaml' 2>/dev/null; then
  check "YAML files parse" python3 - docker-compose.yml grafana/provisioning/*/*.yml kubernetes/*.yaml \
    prometheus/fleet/*.yml <<'EOF'
import sys, yaml
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        list(yaml.safe_load_all(f))
EOF
else
  notes+=("YAML parse skipped: no PyYAML")
fi

if [[ $failed -ne 0 ]]; then
  echo "deploy/check.sh: $failed of $((passed + failed)) checks FAILED" >&2
  exit 1
fi
note=""
[[ ${#notes[@]} -gt 0 ]] && note=" (${notes[*]})"
echo "deploy/check.sh: all $passed checks passed: $(ls "${rule_files[@]}" | wc -l) rule files, $(ls "${test_files[@]}" | wc -l) rule test files, $(ls "${dashboards[@]}" | wc -l) dashboards, $(wc -l <"$tmp/queries.jsonl") queries$note"
