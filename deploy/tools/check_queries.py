#!/usr/bin/env python3
"""Runs every dashboard and rule expression against a live Prometheus.

    python3 deploy/tools/check_queries.py --prometheus http://127.0.0.1:9090 \\
        --job spindle-demo --instance 127.0.0.1:9464 [--rate-interval 1m] [--verbose]

Takes the expressions from deploy/extract_queries.py (same substitution
options) and runs each as an instant query through /api/v1/query. Fails on a
query that errors; on a panel, variable or recording-rule query that returns
no series; and on an alert expression whose metrics do not exist (an alert's
own result may be empty). Also fails when a rule of the loaded rule files is
unhealthy (/api/v1/rules) or the scrape target is not up. Prints one line per
problem and a summary line. Python 3 standard library only.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import urllib.parse
import urllib.request

DEPLOY = pathlib.Path(__file__).resolve().parent.parent


def api(base, path, **params):
    url = base.rstrip("/") + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # 400/422: a bad query; the body says why
        return json.load(e)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prometheus", default="http://127.0.0.1:9090")
    ap.add_argument("--job", default="spindle-demo")
    ap.add_argument("--instance", default=".+")
    ap.add_argument("--monitor", default=".+")
    ap.add_argument("--rate-interval", default="1m")
    ap.add_argument("--verbose", action="store_true", help="print every query's number of series")
    args = ap.parse_args()

    out = subprocess.run(
        [sys.executable, str(DEPLOY / "extract_queries.py"), "--job", args.job, "--instance", args.instance,
         "--monitor", args.monitor, "--rate-interval", args.rate_interval],
        check=True, capture_output=True, text=True).stdout
    items = [json.loads(line) for line in out.splitlines() if line.strip()]
    problems, checked = [], 0

    for item in items:
        r = api(args.prometheus, "/api/v1/query", query=item["expr"])
        checked += 1
        if r.get("status") != "success":
            problems.append("%s: error: %s" % (item["source"], r.get("error")))
            continue
        n = len(r["data"]["result"])
        if args.verbose:
            print("%4d  %s" % (n, item["source"]))
        if item["kind"] == "alert":
            for metric in item["metrics"]:
                m = api(args.prometheus, "/api/v1/query", query='count({__name__="%s"})' % metric)
                if m.get("status") != "success" or not m["data"]["result"]:
                    problems.append("%s: metric %s does not exist" % (item["source"], metric))
        elif n == 0:
            problems.append("%s: no series" % item["source"])

    rules = api(args.prometheus, "/api/v1/rules")
    n_rules = 0
    for g in rules.get("data", {}).get("groups", []):
        for rule in g["rules"]:
            n_rules += 1
            if rule.get("health") != "ok":
                problems.append("rule %s/%s: health %s: %s" % (g["name"], rule["name"], rule.get("health"),
                                                             rule.get("lastError")))
    if n_rules == 0:
        problems.append("Prometheus has loaded no rules")
    targets = api(args.prometheus, "/api/v1/targets").get("data", {}).get("activeTargets", [])
    if not any(t.get("health") == "up" for t in targets):
        problems.append("no scrape target is up: %s" % [(t.get("scrapeUrl"), t.get("lastError")) for t in targets])

    for p in problems:
        print(p)
    print("check_queries: %d queries, %d rules, %d problems" % (checked, n_rules, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
