#!/usr/bin/env python3
"""Checks spindle's Grafana dashboards against the rules they are written to.

    python3 deploy/tools/lint_dashboards.py deploy/grafana/dashboards/*.json

Prints one line per problem and exits 1 if there is any. The rules are those of
Grafana's dashboard-linter that apply (template-datasource, template-job,
template-instance, template-on-time-change-reload, template-uneditable,
panel-datasource, panel-title-description, panel-units, target-job,
target-instance, target-rate-interval, target-counter-agg), plus spindle's own:
the Grafana export format (schemaVersion 39, fixed uid, no __inputs), the panel
types used, unique ids, a gridPos for every panel without overlaps, a
`monitor` matcher on every task-monitor selector of a dashboard that has a
`monitor` variable, no irate. PromQL syntax itself is checked by deploy/check.sh
with promtool. Python 3 standard library only.
"""

import json
import re
import sys

DS = {"type": "prometheus", "uid": "${datasource}"}
PANEL_TYPES = {"row", "timeseries", "heatmap", "stat", "table", "text"}
UNITS = {"s", "ms", "µs", "ns", "percentunit", "percent", "ops", "short", "none", "reqps", "bytes"}
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
# A vector selector: a metric name, its matchers, and an optional range.
SELECTOR = re.compile(r"(?<![\w:\"])(" + NAME + r")\s*(\{[^}]*\})?\s*(\[[^\]]*\])?")
PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "topk", "bottomk", "quantile", "stddev", "stdvar", "group",
    "count_values", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile",
    "label_replace", "label_join", "abs", "ceil", "floor", "round", "clamp", "clamp_min", "clamp_max",
    "vector", "scalar", "time", "timestamp", "sort", "sort_desc", "absent", "absent_over_time",
    "max_over_time", "min_over_time", "avg_over_time", "sum_over_time", "count_over_time",
    "last_over_time", "quantile_over_time", "changes", "resets", "ln", "log2", "log10", "exp", "sqrt",
    "le", "inf", "nan",
}


class Linter:
    def __init__(self):
        self.problems = []

    def err(self, where, msg):
        self.problems.append("%s: %s" % (where, msg))

    def lint(self, path):
        d = json.load(open(path, encoding="utf-8"))
        w = path
        if d.get("schemaVersion") != 39:
            self.err(w, "schemaVersion should be 39")
        if not d.get("uid"):
            self.err(w, "no fixed uid")
        if "__inputs" in d:
            self.err(w, "__inputs present (provisioned dashboards use the datasource variable)")
        if d.get("editable") is not False:
            self.err(w, "editable should be false (template-uneditable-rule)")
        variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
        self.lint_variables(w, d, variables)
        has_monitor = "monitor" in variables
        ids = set()
        boxes = []
        for p in self.walk(d.get("panels", [])):
            pw = "%s panel %s '%s'" % (w, p.get("id"), p.get("title"))
            pid = p.get("id")
            if not isinstance(pid, int) or pid in ids:
                self.err(pw, "missing or duplicate id")
            ids.add(pid)
            g = p.get("gridPos") or {}
            if not all(isinstance(g.get(k), int) for k in ("h", "w", "x", "y")) or g["x"] + g["w"] > 24:
                self.err(pw, "bad gridPos %r" % g)
            else:
                for other, og in boxes:
                    if (g["x"] < og["x"] + og["w"] and og["x"] < g["x"] + g["w"]
                            and g["y"] < og["y"] + og["h"] and og["y"] < g["y"] + g["h"]):
                        self.err(pw, "overlaps panel %s" % other)
                boxes.append((pid, g))
            t = p.get("type")
            if t not in PANEL_TYPES:
                self.err(pw, "panel type %r not used here" % t)
            if t == "row":
                continue
            if not p.get("title") or not p.get("description"):
                self.err(pw, "needs a title and a description (panel-title-description-rule)")
            if t == "text":
                continue
            if p.get("datasource") != DS:
                self.err(pw, "datasource should be %r (panel-datasource-rule)" % DS)
            unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
            if unit not in UNITS:
                self.err(pw, "fieldConfig.defaults.unit %r missing or unexpected (panel-units-rule)" % unit)
            if not p.get("targets"):
                self.err(pw, "no targets")
            for tg in p.get("targets", []):
                tw = "%s target %s" % (pw, tg.get("refId"))
                if tg.get("datasource") != DS:
                    self.err(tw, "target datasource should be %r" % DS)
                self.lint_expr(tw, tg.get("expr", ""), has_monitor)
        return self

    def lint_variables(self, w, d, variables):
        ds = [v for v in variables.values() if v.get("type") == "datasource"]
        if len(ds) != 1 or ds[0].get("name") != "datasource" or ds[0].get("query") != "prometheus":
            self.err(w, "needs one datasource variable named datasource, query prometheus (template-datasource-rule)")
        elif ds[0].get("label") != "Data source":
            self.err(w, "datasource variable should be labelled 'Data source'")
        wanted = ["job", "instance"] + (["monitor"] if "monitor" in variables else [])
        for name in wanted:
            v = variables.get(name)
            if v is None:
                self.err(w, "missing %s variable (template-%s-rule)" % (name, name))
                continue
            vw = "%s variable %s" % (w, name)
            if v.get("type") != "query":
                self.err(vw, "should be a query variable")
            if (v.get("datasource") or {}).get("uid") not in ("${datasource}", "$datasource"):
                self.err(vw, "should use the datasource variable")
            if v.get("label") != name.capitalize():
                self.err(vw, "should be labelled %r" % name.capitalize())
            if not v.get("multi") or not v.get("includeAll") or v.get("allValue") != ".+":
                self.err(vw, "should be multi-select, include All, allValue '.+'")
            if v.get("refresh") != 2:
                self.err(vw, "should refresh on time range change (refresh 2)")
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else (q or "")
            if not re.match(r"^label_values\(" + NAME + r"(\{[^}]*\})?, *\w+\)$", q):
                self.err(vw, "query should be label_values(metric{...}, label): %r" % q)
        for v in variables.values():
            if v.get("type") == "query" and v.get("name") not in wanted and v.get("refresh") != 2:
                self.err(w, "variable %s should refresh on time range change" % v.get("name"))

    def lint_expr(self, w, expr, has_monitor):
        if not expr.strip():
            self.err(w, "empty expr")
            return
        if re.search(r"\birate\s*\(", expr):
            self.err(w, "irate used")
        # Drop string literals (label values, label_replace arguments) before looking for selectors.
        scrubbed = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: '"' + "_" * (len(m.group(0)) - 2) + '"', expr)
        # Grouping labels, e.g. by (monitor, le), are not selectors.
        scrubbed = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
                          lambda m: " " * len(m.group(0)), scrubbed)
        found = False
        for m in SELECTOR.finditer(scrubbed):
            name = m.group(1)
            after = scrubbed[m.end(1):].lstrip()
            if name.lower() in PROMQL_WORDS or after.startswith("(") or re.fullmatch(r"[0-9.e+-]+", name):
                continue
            found = True
            matchers = expr[m.start(2):m.end(2)] if m.group(2) else ""
            if 'job=~"$job"' not in matchers:
                self.err(w, '%s has no job=~"$job" matcher (target-job-rule)' % name)
            if 'instance=~"$instance"' not in matchers:
                self.err(w, '%s has no instance=~"$instance" matcher (target-instance-rule)' % name)
            if has_monitor and name.startswith("spindle_task_") and 'monitor=~"$monitor"' not in matchers:
                self.err(w, '%s has no monitor=~"$monitor" matcher' % name)
            before = scrubbed[:m.start(1)].rstrip()
            in_rate = re.search(r"\b(rate|increase)\s*\($", before) is not None
            rng = m.group(3)
            if rng is not None:
                if rng != "[$__rate_interval]":
                    self.err(w, "%s%s: ranges should be [$__rate_interval] (target-rate-interval-rule)" % (name, rng))
                if not in_rate:
                    self.err(w, "%s: range vector outside rate()/increase()" % name)
            if (name.endswith("_total") or name.endswith("_bucket")) and not (in_rate and rng):
                self.err(w, "counter %s not inside rate()/increase() (target-counter-agg-rule)" % name)
        if not found:
            self.err(w, "no selector found in %r" % expr)

    @staticmethod
    def walk(panels):
        for p in panels:
            yield p
            yield from Linter.walk(p.get("panels", []))


def main(paths):
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    linter = Linter()
    for path in paths:
        linter.lint(path)
    for problem in linter.problems:
        print(problem)
    return 1 if linter.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
