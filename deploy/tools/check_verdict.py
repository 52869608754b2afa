#!/usr/bin/env python3
"""Checks the verdict a live Prometheus computes for spindle's task monitors.

    python3 deploy/tools/check_verdict.py --prometheus http://127.0.0.1:9090 \\
        --job spindle-demo --instance 127.0.0.1:9464 \\
        --expect blocking-sleep=poll --expect slow-downstream=idle \\
        --expect victim=scheduled --expect-culprit victim=blocking-sleep --wait 60

Reads the recorded series of deploy/prometheus/rules/spindle-recording.yml for
one scraped instance:
  instance_monitor:spindle_task_verdict:ratio_rate1m{cause}      the verdict and its share
  instance_monitor:spindle_task_delay_blame_seconds:top_culprit_ratio_rate1m{culprit}
                                                                 who held the worker most
and the alert SpindleTaskSlowVerdict (spindle-alerts.yml) from /api/v1/alerts.
Passes when, at the rule group's last two evaluations (so that one lucky
evaluation is not enough), every --expect MONITOR=CAUSE is that monitor's
verdict and every --expect-culprit MONITOR=CULPRIT its top culprit; and when
SpindleTaskSlowVerdict is active (pending or firing: its `for` is longer than
a test runs) for each monitor expected at poll or scheduled, with that cause,
and with the expected culprit at the start of its `advice` annotation; and not
active for a monitor expected at idle or first_poll.

--wait SECONDS repeats the check every 2 s until it passes, for at most
SECONDS. Prints every monitor's verdict (a table) and one line per problem.
Exit status 0 when it passed, 1 otherwise, 2 on bad arguments. Python 3
standard library only.
"""

import argparse
import sys
import time

from check_queries import api  # the same Prometheus HTTP API helper (deploy/tools/)

VERDICT = "instance_monitor:spindle_task_verdict:ratio_rate1m"
CULPRIT = "instance_monitor:spindle_task_delay_blame_seconds:top_culprit_ratio_rate1m"
ALERT = "SpindleTaskSlowVerdict"
GROUP = "spindle-task-instance"  # the rule group that records VERDICT
CAUSES = ("poll", "scheduled", "idle", "first_poll")


def instant(base, query, at):
    """{monitor: (labels, value)} of an instant query at `at` (Unix seconds)."""
    r = api(base, "/api/v1/query", query=query, time="%.3f" % at)
    if r.get("status") != "success":
        raise SystemExit("check_verdict: %s: %s" % (query, r.get("error")))
    return {s["metric"].get("monitor", ""): (s["metric"], float(s["value"][1])) for s in r["data"]["result"]}


def group_interval(base):
    """The evaluation interval of the group that records the verdict, in seconds."""
    for g in api(base, "/api/v1/rules").get("data", {}).get("groups", []):
        if g.get("name") == GROUP:
            return float(g.get("interval") or 0) or None
    return None


def one_round(args, interval):
    """Returns (problems, table rows)."""
    sel = '{job="%s", instance="%s"}' % (args.job, args.instance)
    now = time.time()
    # The latest evaluation, and the one before (a query at now - interval
    # reads the sample recorded one evaluation earlier).
    rounds = [(instant(args.prometheus, VERDICT + sel, t), instant(args.prometheus, CULPRIT + sel, t))
              for t in (now, now - interval)]
    problems = []
    for label, (verdicts, culprits) in zip(("now", "one evaluation earlier"), rounds):
        for monitor, cause in args.expect:
            got = verdicts.get(monitor)
            if got is None:
                problems.append("%s: %s has no verdict (expected %s)" % (label, monitor, cause))
            elif got[0].get("cause") != cause:
                problems.append("%s: %s's verdict is %s (%.3f), expected %s"
                                % (label, monitor, got[0].get("cause"), got[1], cause))
        for monitor, culprit in args.expect_culprit:
            got = culprits.get(monitor)
            if got is None:
                problems.append("%s: %s has no top culprit (expected %s)" % (label, monitor, culprit))
            elif got[0].get("culprit") != culprit:
                problems.append("%s: %s's top culprit is %s (%.3f of the blamed delay), expected %s"
                                % (label, monitor, got[0].get("culprit"), got[1], culprit))

    alerts = [a for a in api(args.prometheus, "/api/v1/alerts").get("data", {}).get("alerts", [])
              if a["labels"].get("alertname") == ALERT and a["labels"].get("instance") == args.instance]
    active = {a["labels"].get("monitor"): a for a in alerts}
    culprit_of = dict(args.expect_culprit)
    for monitor, cause in args.expect:
        a = active.get(monitor)
        if cause in ("poll", "scheduled"):
            if a is None:
                problems.append("%s is not active for %s" % (ALERT, monitor))
                continue
            if a["labels"].get("cause") != cause:
                problems.append("%s for %s: cause %s, expected %s" % (ALERT, monitor, a["labels"].get("cause"), cause))
            advice = a.get("annotations", {}).get("advice", "")
            if monitor in culprit_of and not advice.startswith(culprit_of[monitor] + " holds the workers"):
                problems.append("%s for %s: advice %r does not name %s" % (ALERT, monitor, advice, culprit_of[monitor]))
        elif a is not None:
            problems.append("%s is %s for %s, whose verdict should be %s" % (ALERT, a.get("state"), monitor, cause))

    verdicts, culprits = rounds[0]
    rows = []
    for monitor in sorted(set(verdicts) | set(culprits)):
        v, c, a = verdicts.get(monitor), culprits.get(monitor), active.get(monitor)
        rows.append((monitor, v[0].get("cause", "") if v else "-", "%.3f" % v[1] if v else "-",
                     c[0].get("culprit", "") if c else "-", "%.3f" % c[1] if c else "-",
                     a.get("state", "") if a else "-", a.get("annotations", {}).get("advice", "") if a else ""))
    return problems, rows


def parse_pairs(ap, values, what, allowed=None):
    out = []
    for v in values:
        monitor, sep, x = v.partition("=")
        if not sep or not monitor or not x or (allowed and x not in allowed):
            ap.error("%s takes MONITOR=%s, not %r" % (what, "|".join(allowed) if allowed else "CULPRIT", v))
        out.append((monitor, x))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prometheus", default="http://127.0.0.1:9090")
    ap.add_argument("--job", default="spindle-demo")
    ap.add_argument("--instance", required=True, help="the scraped instance, e.g. 127.0.0.1:9464")
    ap.add_argument("--expect", action="append", default=[], metavar="MONITOR=CAUSE",
                    help="the monitor's verdict must be CAUSE (repeatable)")
    ap.add_argument("--expect-culprit", action="append", default=[], metavar="MONITOR=CULPRIT",
                    help="the monitor's top culprit must be CULPRIT (repeatable)")
    ap.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                    help="repeat until the check passes, for at most SECONDS (default 0: once)")
    args = ap.parse_args()
    args.expect = parse_pairs(ap, args.expect, "--expect", CAUSES)
    args.expect_culprit = parse_pairs(ap, args.expect_culprit, "--expect-culprit")
    if not args.expect and not args.expect_culprit:
        ap.error("nothing to check: give --expect or --expect-culprit")

    start = time.monotonic()
    rounds = 0
    interval = None
    while True:
        rounds += 1
        interval = interval or group_interval(args.prometheus)
        if interval is None:
            problems, rows = ["rule group %s is not loaded" % GROUP], []
        else:
            problems, rows = one_round(args, interval)
        waited = time.monotonic() - start
        if not problems or waited + 2 > args.wait:
            break
        time.sleep(2)

    header = ("monitor", "verdict", "share", "top culprit", "of blame", "alert", "advice")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header) - 1)]
    for r in [header] + rows:
        print("  " + "  ".join(str(x).ljust(w) for x, w in zip(r, widths)) + "  " + r[-1])
    for p in problems:
        print(p)
    print("check_verdict: %s %s: %d expectations, %d problems (after %.0f s, %d rounds)" % (
        args.prometheus, args.instance, len(args.expect) + len(args.expect_culprit), len(problems),
        waited, rounds))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
