#!/usr/bin/env python3
"""Runs every dashboard and rule expression against a live Prometheus.

    python3 deploy/tools/check_queries.py --prometheus http://127.0.0.1:9090 \\
        --job spindle-demo --instance 127.0.0.1:9464 [--rate-interval 1m] [--verbose]
    python3 deploy/tools/check_queries.py --prometheus http://central:9090 --central \\
        --external-label cluster=demo --external-label replica=a --wait 60

Takes the expressions from deploy/extract_queries.py (same substitution
options) and runs each as an instant query through /api/v1/query. Fails on a
query that errors; on a panel, variable or recording-rule query that returns
no series; and on an alert expression whose metrics do not exist (an alert's
own result may be empty).

A Prometheus that scrapes (a leaf, the default) must also have loaded rules,
all healthy (/api/v1/rules), and a scrape target that is up.

A central Prometheus (--central), which gets spindle's series from a leaf by
remote write or /federate, must load no rules of its own (the leaf evaluates
them; deploy/README.md, "Fleets") and instead hold every recorded series of
the rule files, as the leaf sent them; its scrape targets, if any (the
/federate job), must all be up. With --external-label NAME=VALUE (repeatable)
every spindle series it holds must carry that label: the leaf's
external_labels, proof that the series came through the leaf.

--wait SECONDS repeats the whole check every 2 s until it passes, for at most
SECONDS (data takes a few scrapes, rule evaluations and sends to appear); a
query that errors, or rules loaded by a central Prometheus, end the wait at
once, since waiting cannot fix them.

Prints one line per problem and a summary line. Python 3 standard library only.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

DEPLOY = pathlib.Path(__file__).resolve().parent.parent
# Every spindle series: raw (spindle_*) and recorded (level:spindle_*:operations).
SPINDLE_SERIES = '__name__=~"spindle_.+|[a-z_]+:spindle_.+"'


def api(base, path, **params):
    url = base.rstrip("/") + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # 400/422: a bad query; the body says why
        return json.load(e)


def count(base, selector):
    """The number of series `selector` selects, or None when the query fails."""
    r = api(base, "/api/v1/query", query="count(%s)" % selector)
    if r.get("status") != "success":
        return None
    result = r["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def check(args, items):
    """One round: returns (problems, errors, summary). errors are problems that
    waiting cannot fix (a query that Prometheus rejects, rules where none belong)."""
    base = args.prometheus
    problems, errors = [], []

    for item in items:
        r = api(base, "/api/v1/query", query=item["expr"])
        if r.get("status") != "success":
            errors.append("%s: error: %s" % (item["source"], r.get("error")))
            continue
        n = len(r["data"]["result"])
        if args.verbose:
            print("%4d  %s" % (n, item["source"]))
        if item["kind"] == "alert":
            for metric in item["metrics"]:
                if not count(base, '{__name__="%s"}' % metric):
                    problems.append("%s: metric %s does not exist" % (item["source"], metric))
        elif n == 0:
            problems.append("%s: no series" % item["source"])

    targets = api(base, "/api/v1/targets").get("data", {}).get("activeTargets", [])
    down = [(t.get("scrapeUrl"), t.get("lastError")) for t in targets if t.get("health") != "up"]
    groups = api(base, "/api/v1/rules").get("data", {}).get("groups", [])
    if args.central:
        if groups:
            # Its results would collide with the leaf's recorded series (deploy/README.md, "Fleets").
            errors.append("a central Prometheus must load no rules; it has loaded %s"
                          % [g["name"] for g in groups])
        for item in items:
            if item["kind"] == "record" and not count(base, '{__name__="%s"}' % item["name"]):
                problems.append("recorded series %s did not arrive" % item["name"])
        if down:
            problems.append("scrape targets not up: %s" % down)
        if args.external_label:
            total = count(base, "{%s}" % SPINDLE_SERIES)
            matchers = ",".join('%s="%s"' % tuple(kv.split("=", 1)) for kv in args.external_label)
            labelled = count(base, "{%s,%s}" % (SPINDLE_SERIES, matchers))
            if not total or labelled != total:
                problems.append("%s of %s spindle series carry %s" % (labelled, total, matchers))
        summary = "%d queries, %d recorded series, central" % (
            len(items), sum(1 for i in items if i["kind"] == "record"))
    else:
        n_rules = 0
        for g in groups:
            for rule in g["rules"]:
                n_rules += 1
                if rule.get("health") != "ok":
                    problems.append("rule %s/%s: health %s: %s" % (g["name"], rule["name"], rule.get("health"),
                                                                 rule.get("lastError")))
        if n_rules == 0:
            problems.append("Prometheus has loaded no rules")
        if not any(t.get("health") == "up" for t in targets):
            problems.append("no scrape target is up: %s" % down)
        summary = "%d queries, %d rules" % (len(items), n_rules)
    return problems, errors, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prometheus", default="http://127.0.0.1:9090")
    ap.add_argument("--job", default="spindle-demo")
    ap.add_argument("--instance", default=".+")
    ap.add_argument("--monitor", default=".+")
    ap.add_argument("--rate-interval", default="1m")
    ap.add_argument("--central", action="store_true",
                    help="a Prometheus fed by a leaf (remote write or /federate) that loads no rules")
    ap.add_argument("--external-label", action="append", default=[], metavar="NAME=VALUE",
                    help="with --central: every spindle series must carry this label (repeatable)")
    ap.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                    help="repeat until the check passes, for at most SECONDS (default 0: once)")
    ap.add_argument("--verbose", action="store_true", help="print every query's number of series")
    args = ap.parse_args()
    for kv in args.external_label:
        if "=" not in kv:
            ap.error("--external-label takes NAME=VALUE, not %r" % kv)

    out = subprocess.run(
        [sys.executable, str(DEPLOY / "extract_queries.py"), "--job", args.job, "--instance", args.instance,
         "--monitor", args.monitor, "--rate-interval", args.rate_interval],
        check=True, capture_output=True, text=True).stdout
    items = [json.loads(line) for line in out.splitlines() if line.strip()]

    start = time.monotonic()
    rounds = 0
    while True:
        rounds += 1
        problems, errors, summary = check(args, items)
        waited = time.monotonic() - start
        if errors or not problems or waited + 2 > args.wait:
            break
        time.sleep(2)
    problems = errors + problems
    for p in problems:
        print(p)
    print("check_queries: %s %s: %d problems (after %.0f s, %d rounds)" % (
        args.prometheus, summary, len(problems), waited, rounds))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
