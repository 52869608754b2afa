#!/usr/bin/env python3
"""Prints every PromQL expression of spindle's dashboards and rules, ready to run.

Reads deploy/grafana/dashboards/*.json and deploy/prometheus/rules/*.yml
directly and prints one JSON object per line:

  {"source": "...", "kind": "panel" | "variable" | "record" | "alert",
   "expr": "...", "metrics": ["spindle_...", ...]}
  and for rules also "name": the recorded series' or the alert's name.

  source   where it comes from: "<dashboard file> panel <id> '<title>' target <refId>",
           "<dashboard file> variable <name>" or "<rule file> <group> record|alert <name>"
  kind     panel:    a dashboard panel's query. Returns data whenever the service
                     runs under load (see below).
           variable: a template variable's label_values(M{...}, L), rewritten as
                     `group by (L) (M{...})`, the series Grafana reads the values from.
           record:   a recording rule's expression (returns data as a panel does).
           alert:    an alerting rule's expression: legitimately empty while
                     nothing is wrong. Its "metrics" must exist all the same.
  expr     the expression, Grafana's template variables replaced (below)
  metrics  the metric names it reads (raw spindle_* series and recorded
           level:metric:operation series), for checking that they exist

Template variables in dashboard queries are replaced by the options:
  $job, ${job}              --job            (regex, default "spindle-demo")
  $instance, ${instance}    --instance       (regex, default ".+")
  $monitor, ${monitor}      --monitor        (regex, default ".+")
  $__rate_interval          --rate-interval  (a PromQL duration, default "1m")
  $datasource, ${datasource} --datasource    (only in datasource fields; never in an expr)
The values are inserted as they are; they are regexes (the dashboards match
with =~), so an instance such as 127.0.0.1:9464 matches itself.

Which queries may return nothing: none of kind panel/variable/record, given a
demo under load with a StallDetector attached (spindle_runtime_stalls_total
exists only then), at least two scrapes within the rate interval, and for
recorded series one rule evaluation. A ratio or quantile with nothing to count
is NaN: a series all the same.

Examples:
  python3 deploy/extract_queries.py --job spindle-demo --instance 127.0.0.1:9464 --rate-interval 1m
  python3 deploy/extract_queries.py --kind panel --kind record

Python 3 standard library only (the rule files are read with a small parser
for the subset of YAML they are written in; promtool checks them in full).
"""

import argparse
import json
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
DASHBOARDS = HERE / "grafana" / "dashboards"
RULES = HERE / "prometheus" / "rules"

METRIC = re.compile(r"\b(?:[a-z_]+:)?spindle_[a-z0-9_]+(?::[a-z0-9_]+)?\b")
VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.+)\s*,\s*(\w+)\s*\)\s*$", re.S)


def substitute(expr, values, source):
    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise SystemExit("%s: unknown template variable $%s in %r" % (source, name, expr))
        return values[name]
    return VARIABLE.sub(repl, expr)


def metrics_of(expr):
    # Label names never start with spindle_, and metric names always do.
    return sorted(set(METRIC.findall(expr)))


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))  # collapsed rows keep their panels inside


def dashboard_queries(path, values):
    d = json.loads(path.read_text(encoding="utf-8"))
    for v in d.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = LABEL_VALUES.match(q)
        source = "%s variable %s" % (path.name, v["name"])
        if not m:
            raise SystemExit("%s: not a label_values(metric{...}, label) query: %r" % (source, q))
        expr = substitute("group by (%s) (%s)" % (m.group(2), m.group(1).strip()), values, source)
        yield {"source": source, "kind": "variable", "expr": expr, "metrics": metrics_of(expr)}
    for p in walk_panels(d.get("panels", [])):
        for t in p.get("targets", []):
            if not t.get("expr"):
                continue
            source = "%s panel %s '%s' target %s" % (path.name, p.get("id"), p.get("title", ""), t.get("refId"))
            expr = substitute(t["expr"], values, source)
            yield {"source": source, "kind": "panel", "expr": expr, "metrics": metrics_of(expr)}


def rule_queries(path):
    """The rules of a Prometheus rule file, read from the subset of YAML it uses:
    `- name:` of a group, `- record:` / `- alert:` of a rule, and `expr:` either
    on one line or as a block scalar (| or >, with or without -) indented below."""
    lines = path.read_text(encoding="utf-8").splitlines()
    group, kind, name, out, i = None, None, None, [], 0
    while i < len(lines):
        line = lines[i]
        i += 1
        m = re.match(r"^\s*-\s+name:\s*(.+?)\s*$", line)
        if m:
            group = m.group(1).strip("'\"")
            continue
        m = re.match(r"^\s*-\s+(record|alert):\s*(.+?)\s*$", line)
        if m:
            kind, name = m.group(1), m.group(2).strip("'\"")
            continue
        m = re.match(r"^(\s*)expr:\s*(.*?)\s*$", line)
        if not m:
            continue
        indent, value = len(m.group(1)), m.group(2)
        if value[:1] in ("|", ">"):
            block = []
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            pad = min(len(b) - len(b.lstrip()) for b in block if b.strip())
            body = [b[pad:] for b in block]
            expr = "\n".join(body) if value[0] == "|" else " ".join(b.strip() for b in body)
        else:
            if value[:1] in ("'", '"'):
                raise SystemExit("%s: quoted expr not supported by this reader; use a block scalar" % path)
            expr = value
        if kind is None:
            raise SystemExit("%s: expr outside a rule" % path)
        out.append({"source": "%s %s %s %s" % (path.name, group, kind, name), "kind": kind,
                    "name": name, "expr": expr.strip(), "metrics": metrics_of(expr)})
        kind, name = None, None
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--job", default="spindle-demo")
    ap.add_argument("--instance", default=".+")
    ap.add_argument("--monitor", default=".+")
    ap.add_argument("--rate-interval", default="1m")
    ap.add_argument("--datasource", default="spindle-prometheus")
    ap.add_argument("--kind", action="append", choices=["panel", "variable", "record", "alert"],
                    help="print only these kinds (repeatable; default all)")
    args = ap.parse_args()
    values = {"job": args.job, "instance": args.instance, "monitor": args.monitor,
              "__rate_interval": args.rate_interval, "datasource": args.datasource}
    items = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        items.extend(dashboard_queries(path, values))
    for path in sorted(RULES.glob("*.yml")):
        items.extend(rule_queries(path))
    for item in items:
        if args.kind and item["kind"] not in args.kind:
            continue
        print(json.dumps(item, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
