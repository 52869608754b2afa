#!/usr/bin/env python3
"""Writes spindle's two Grafana dashboards (dashboards/*.json) from this file.

The JSON files are committed and provisioned as they are; this script is their
source, so that every panel follows the same conventions (the templated
datasource, job/instance/monitor in every selector, $__rate_interval in every
rate, a unit and a description on every panel, unique ids, a grid that fits).

    python3 deploy/grafana/generate.py          # rewrite dashboards/*.json
    python3 deploy/grafana/generate.py --check  # exit 1 if they differ (deploy/check.sh)

Edit a dashboard here, run the script, commit both. Metric names and labels:
exporter/METRICS.md. Python 3 standard library only.
"""

import argparse
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "dashboards"

GRAFANA_VERSION = "11.2.0"
DS = {"type": "prometheus", "uid": "${datasource}"}

# Selectors. Every query names these matchers in every selector (dashboard
# linter: target-job-rule, target-instance-rule).
RUNTIME = 'job=~"$job", instance=~"$instance"'
TASK = 'job=~"$job", instance=~"$instance", monitor=~"$monitor"'
RI = "$__rate_interval"


def sel(metric, base, extra=""):
    return "%s{%s%s}" % (metric, base, (", " + extra) if extra else "")


def rate(metric, base, extra="", by=None):
    """sum by (<by>) (rate(metric{...}[$__rate_interval])), or a bare rate."""
    r = "rate(%s[%s])" % (sel(metric, base, extra), RI)
    return "sum by (%s) (%s)" % (by, r) if by else r


def increase(metric, base, extra="", by=None):
    r = "increase(%s[%s])" % (sel(metric, base, extra), RI)
    return "sum by (%s) (%s)" % (by, r) if by else r


def quantile(q, metric, base, by):
    return "histogram_quantile(%s, sum by (%s, le) (rate(%s[%s])))" % (
        q, by, sel(metric + "_bucket", base), RI)


# ---- task formulas (the same as deploy/prometheus/rules/spindle-recording.yml,
# over $__rate_interval, summed over the selected instances per monitor) ----
def mean_poll(by="monitor"):
    return "%s\n/\n%s" % (rate("spindle_task_poll_time_seconds_total", TASK, by=by),
                          rate("spindle_task_polls_total", TASK, by=by))


def mean_scheduled(by="monitor"):
    return "%s\n/\n%s" % (rate("spindle_task_scheduled_time_seconds_total", TASK, by=by),
                          rate("spindle_task_scheduled_total", TASK, by=by))


def mean_idle(by="monitor"):
    return "%s\n/\n%s" % (rate("spindle_task_idle_time_seconds_total", TASK, by=by),
                          rate("spindle_task_idled_total", TASK, by=by))


def slow_poll_ratio(by="monitor"):
    return "%s\n/\n%s" % (rate("spindle_task_polls_total", TASK, 'kind="slow"', by=by),
                          rate("spindle_task_polls_total", TASK, by=by))


def long_delay_ratio(by="monitor"):
    return "%s\n/\n%s" % (rate("spindle_task_scheduled_total", TASK, 'kind="long"', by=by),
                          rate("spindle_task_scheduled_total", TASK, by=by))


def label(expr, value):
    return 'label_replace(\n  %s,\n  "state", "%s", "", ""\n)' % (expr.replace("\n", "\n  "), value)


ANSWER_POLLED = "1: being polled"
ANSWER_SCHEDULED = "2: waiting to be polled"
ANSWER_IDLE = "3: idle"


def dominant():
    """Per monitor, the largest of the three means, labelled state=<which>."""
    return "topk by (monitor) (1,\n  %s\n  or\n  %s\n  or\n  %s\n)" % (
        label(mean_poll(), ANSWER_POLLED).replace("\n", "\n  "),
        label(mean_scheduled(), ANSWER_SCHEDULED).replace("\n", "\n  "),
        label(mean_idle(), ANSWER_IDLE).replace("\n", "\n  "))


# ---- the verdict (the same as the recording rules instance_monitor:spindle_task_time:rate1m,
# ..._time_share:ratio_rate1m, ..._verdict:ratio_rate1m and
# ..._delay_blame_seconds:top_culprit_ratio_rate1m, and as spindle::diagnose()), per monitor over
# the selected instances and $__rate_interval ----
# The four causes, in the order that breaks a tie (the first listed wins).
CAUSES = (
    ("poll", "spindle_task_poll_time_seconds_total"),
    ("scheduled", "spindle_task_scheduled_time_seconds_total"),
    ("idle", "spindle_task_idle_time_seconds_total"),
    ("first_poll", "spindle_task_first_poll_delay_seconds_total"),
)
# What to do, per verdict: the seed talk's remedies (SEED.md), as the alert SpindleTaskSlowVerdict
# and spindle::diagnose() put them.
ADVICE = {
    "poll": "move blocking work to spindle::spawn_blocking or add spindle::yield_now() in long loops",
    "scheduled": "the top culprit holds the workers: fix its polls, or add workers",
    "idle": "the tasks wait for events: look downstream (the peer or service they call, a timer, a channel)",
    "first_poll": "new tasks wait for a worker to start them: fix the polls that hold the workers, or add workers",
}
VERDICT_TEXT = {"poll": "poll: being polled", "scheduled": "scheduled: waiting for a worker",
                "idle": "idle: waiting for an event", "first_poll": "first_poll: waiting to start"}
VERDICT_COLOR = {"poll": "orange", "scheduled": "red", "idle": "blue", "first_poll": "purple"}


def cause_times(by="monitor"):
    """Seconds per second of each cause, labelled cause=<which> (kind summed away)."""
    return "\nor\n".join('label_replace(%s, "cause", "%s", "", "")' % (rate(metric, TASK, by=by), cause)
                          for cause, metric in CAUSES)


def verdict():
    """Per monitor, the cause with the largest share of the four times, valued at its share; none
    where the monitor's tasks did nothing (NaN, dropped by >= 0). topk keeps the first of equal
    values in its input's order, which is CAUSES' (the rules break ties explicitly, in the same
    order). The cause is copied to the label `advice`, which the table's value mappings spell out."""
    times = cause_times().replace("\n", "\n      ")
    share = "(\n      %s\n    )\n    / ignoring (cause) group_left\n    sum by (monitor) (\n      %s\n    )" % (
        times, times)
    return 'label_join(\n  topk by (monitor) (1,\n    %s\n  ) >= 0,\n  "advice", "", "cause"\n)' % share


def top_culprit():
    """Per monitor, who held the worker most during its long scheduled delays (delay blame),
    valued at its share of the monitor's blamed time; none where nothing was blamed."""
    blame = "spindle_task_delay_blame_seconds_total"
    return "topk by (monitor) (1, %s > 0)\n/ ignoring (culprit) group_left\n%s" % (
        rate(blame, TASK, by="monitor, culprit"), rate(blame, TASK, by="monitor"))


# ---- panels ------------------------------------------------------------------
def target(expr, legend="", ref="A", instant=False, fmt=None):
    t = {"datasource": DS, "editorMode": "code", "expr": expr, "legendFormat": legend,
         "range": not instant, "instant": instant, "refId": ref}
    if fmt:
        t["format"] = fmt
    return t


def targets(*items):
    """targets((expr, legend), ...) with refIds A, B, C..."""
    return [target(e, l, chr(ord("A") + i)) for i, (e, l) in enumerate(items)]


def thresholds(*steps):
    """thresholds(("green", None), ("red", 0.9))"""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


GREEN = thresholds(("green", None))


def timeseries(title, description, tgts, unit, *, min_=0, max_=None, log=False, stack=False,
               bars=False, thresh=None, overrides=None, calcs=("mean", "max", "lastNotNull")):
    custom = {
        "axisBorderShow": False, "axisCenteredZero": False, "axisColorMode": "text",
        "axisLabel": "", "axisPlacement": "auto", "barAlignment": 0,
        "drawStyle": "bars" if bars else "line", "fillOpacity": 60 if bars else 10,
        "gradientMode": "none", "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "insertNulls": False, "lineInterpolation": "linear", "lineWidth": 1, "pointSize": 4,
        "scaleDistribution": {"type": "log", "log": 10} if log else {"type": "linear"},
        "showPoints": "never", "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stack else "none"},
        "thresholdsStyle": {"mode": "line+area" if thresh else "off"},
    }
    defaults = {"color": {"mode": "palette-classic"}, "custom": custom, "mappings": [],
                "thresholds": thresh or GREEN, "unit": unit}
    if min_ is not None and not log:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    return {
        "type": "timeseries", "title": title, "description": description, "datasource": DS,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": {
            "legend": {"calcs": list(calcs), "displayMode": "table", "placement": "bottom",
                       "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": tgts,
    }


def stat(title, description, tgts, unit, *, thresh=None, decimals=None, graph=True):
    defaults = {"color": {"mode": "thresholds"}, "mappings": [], "thresholds": thresh or GREEN,
                "unit": unit}
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat", "title": title, "description": description, "datasource": DS,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "colorMode": "value", "graphMode": "area" if graph else "none", "justifyMode": "auto",
            "orientation": "auto", "percentChangeColorMode": "standard",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showPercentChange": False, "textMode": "auto", "wideLayout": True,
        },
        "targets": tgts,
    }


def heatmap(title, description, metric, base, scheme, what):
    expr = "sum by (le) (rate(%s[%s]))" % (sel(metric + "_bucket", base), RI)
    t = target(expr, "{{le}}", "A", fmt="heatmap")
    return {
        "type": "heatmap", "title": title, "description": description, "datasource": DS,
        "fieldConfig": {"defaults": {
            "custom": {"hideFrom": {"legend": False, "tooltip": False, "viz": False},
                       "scaleDistribution": {"type": "linear"}},
            "unit": "ops"}, "overrides": []},
        "options": {
            "calculate": False, "cellGap": 1, "cellValues": {"unit": "ops"},
            "color": {"exponent": 0.5, "fill": "dark-orange", "mode": "scheme", "reverse": False,
                      "scale": "exponential", "scheme": scheme, "steps": 64},
            "exemplars": {"color": "rgba(255,0,255,0.7)"},
            "filterValues": {"le": 1e-09},
            "legend": {"show": True},
            "rowsFrame": {"layout": "auto", "value": what},
            "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": True},
            "yAxis": {"axisPlacement": "left", "reverse": False, "unit": "s"},
        },
        "targets": [t],
    }


def text(title, description, content):
    return {
        "type": "text", "title": title, "description": description,
        "options": {"mode": "markdown", "content": content.strip() + "\n",
                    "code": {"language": "plaintext", "showLineNumbers": False,
                             "showMiniMap": False}},
    }


def override_regex(pattern, *props):
    return {"matcher": {"id": "byRegexp", "options": pattern},
            "properties": [{"id": k, "value": v} for k, v in props]}


def override_name(name, *props):
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": k, "value": v} for k, v in props]}


DASHED = ("custom.lineStyle", {"dash": [10, 10], "fill": "dash"})


class Layout:
    """Places panels on Grafana's 24-column grid: each panel goes to the highest
    free spot (then the leftmost) below the current row header, like Grafana's
    own gravity; a row header spans the width below everything placed so far."""

    def __init__(self):
        self.panels, self.top, self.next_id = [], [0] * 24, 1

    def row(self, title):
        y = max(self.top)
        self.panels.append({"type": "row", "title": title, "collapsed": False, "panels": [],
                            "id": self._id(), "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
        self.top = [y + 1] * 24

    def add(self, panel, w, h):
        y, x = min((max(self.top[x:x + w]), x) for x in range(0, 25 - w))
        panel = dict(panel)
        panel["id"] = self._id()
        panel["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        panel["pluginVersion"] = GRAFANA_VERSION
        self.panels.append(panel)
        self.top[x:x + w] = [y + h] * w

    def _id(self):
        self.next_id += 1
        return self.next_id - 1


# ---- templating ----------------------------------------------------------------
def datasource_var():
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "includeAll": False, "multi": False,
            "options": [], "refresh": 1, "regex": "", "skipUrlSync": False}


def query_var(name, query, description):
    return {"name": name, "label": name.capitalize(), "description": description, "type": "query",
            "datasource": DS, "definition": query,
            "query": {"qryType": 1, "query": query,
                      "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "hide": 0, "includeAll": True, "allValue": ".+", "multi": True,
            "options": [], "refresh": 2, "regex": "", "skipUrlSync": False, "sort": 1}


def dashboard(uid, title, description, variables, panels):
    return {
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "description": description,
        "editable": False,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [{"asDropdown": False, "icon": "external link", "includeVars": True,
                   "keepTime": True, "tags": ["spindle"], "targetBlank": False,
                   "title": "Spindle dashboards", "tooltip": "", "type": "dashboards", "url": ""}],
        "panels": panels,
        "refresh": "30s",
        "schemaVersion": 39,
        "tags": ["spindle"],
        "templating": {"list": variables},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


# ---- Runtime ---------------------------------------------------------------------
WORKER = "{{instance}} {{runtime}} worker {{worker}}"
RT = "{{instance}} {{runtime}}"
BY_WORKER = "instance, runtime, worker"
BY_RT = "instance, runtime"


def runtime_dashboard():
    L = Layout()
    L.row("Overview")
    L.add(text("How to read this dashboard", "What the Runtime dashboard shows and how it relates to the Tasks dashboard.", """
**The runtime's workers, queues and blocking pool** (all tasks, instrumented or not).
A worker runs one task at a time until the task suspends: a task that computes or
blocks for long holds its worker and every task queued behind it.

- **Busy ratio** near 100% on *every* worker: the runtime is saturated; tasks wait
  to be scheduled (Tasks dashboard, row 2). Add workers or instances, or shed load.
- Near 100% on *one* worker while the others idle: a task holds it (slow polls,
  stalls below). Find it on the Tasks dashboard, row 1, and in the stall detector's log.
- **Blocking pool** at its maximum with a queue: `spawn_blocking` calls wait for a thread.
"""), 8, 8)
    L.add(stat("Workers", "Worker threads per runtime (spindle_runtime_workers).",
               [target("sum by (%s) (%s)" % (BY_RT, sel("spindle_runtime_workers", RUNTIME)), RT)],
               "short", graph=False), 4, 4)
    L.add(stat("Mean busy ratio", "The share of time the selected workers spent polling tasks, averaged over workers (rate of spindle_runtime_busy_seconds_total). Near 100%: saturated.",
               [target("avg(%s)" % rate("spindle_runtime_busy_seconds_total", RUNTIME), "mean busy ratio")],
               "percentunit", thresh=thresholds(("green", None), ("orange", 0.75), ("red", 0.9))), 4, 4)
    L.add(stat("Polls per second", "Task polls per second, all selected workers (rate of spindle_runtime_polls_total).",
               [target("sum(%s)" % rate("spindle_runtime_polls_total", RUNTIME), "polls/s")], "ops"), 4, 4)
    L.add(stat("Live tasks", "Tasks spawned and not yet finished (spindle_runtime_live_tasks), all selected runtimes.",
               [target("sum(%s)" % sel("spindle_runtime_live_tasks", RUNTIME), "live tasks")], "short"), 4, 4)
    L.add(stat("Blocking threads in use", "Blocking-pool threads running a spawn_blocking call (spindle_runtime_blocking_threads − spindle_runtime_idle_blocking_threads).",
               [target("sum(%s - %s)" % (sel("spindle_runtime_blocking_threads", RUNTIME),
                                         sel("spindle_runtime_idle_blocking_threads", RUNTIME)), "in use")],
               "short"), 4, 4)
    L.add(stat("Uptime (youngest runtime)", "Time since the most recently built of the selected runtimes started (spindle_runtime_uptime_seconds): a small value means a restart.",
               [target("min(%s)" % sel("spindle_runtime_uptime_seconds", RUNTIME), "uptime")],
               "s", graph=False), 4, 4)
    L.add(stat("Unhandled exceptions", "Exceptions thrown by detached tasks that nobody awaited, over the dashboard's rate interval (increase of spindle_runtime_unhandled_exceptions_total). Anything above 0 is a bug: a task failed silently.",
               [target("sum(%s)" % increase("spindle_runtime_unhandled_exceptions_total", RUNTIME), "exceptions")],
               "short", thresh=thresholds(("green", None), ("red", 1))), 4, 4)
    L.add(stat("Stalls", "Stall-detector reports over the dashboard's rate interval, all selected workers (increase of spindle_runtime_stalls_total): polls that held a worker past the detector's threshold (100 ms by default).",
               [target("sum(%s)" % increase("spindle_runtime_stalls_total", RUNTIME), "stalls")],
               "short", thresh=thresholds(("green", None), ("red", 1))), 4, 4)

    L.row("Workers")
    L.add(timeseries("Busy ratio per worker", "Share of time each worker spent polling tasks (rate of spindle_runtime_busy_seconds_total: seconds busy per second). 100% = never idle. All workers high: saturated, add workers or instances. One worker high: a task is holding it (see the Tasks dashboard, row 1).",
                     [target(rate("spindle_runtime_busy_seconds_total", RUNTIME), WORKER)],
                     "percentunit", max_=1, thresh=thresholds(("transparent", None), ("red", 0.9))), 12, 8)
    L.add(timeseries("Polls per second per worker", "Task polls each worker ran per second (rate of spindle_runtime_polls_total). Uneven polls with even busy ratios means some workers run longer polls.",
                     [target(rate("spindle_runtime_polls_total", RUNTIME), WORKER)], "ops"), 12, 8)
    L.add(timeseries("Steals", "Work stealing per worker: tasks stolen from other workers' queues per second (spindle_runtime_steals_total), and steal operations (spindle_runtime_steal_operations_total; one operation moves up to half a queue). Steals keep work spread; many steals with few tasks each mean workers run dry often.",
                     targets((rate("spindle_runtime_steals_total", RUNTIME), WORKER + " tasks stolen"),
                             (rate("spindle_runtime_steal_operations_total", RUNTIME), WORKER + " steal operations")),
                     "ops"), 8, 8)
    L.add(timeseries("Parks and no-op wake-ups", "Times per second each worker parked (went to sleep with nothing to do, spindle_runtime_parks_total) and woke up to find nothing to do (spindle_runtime_noops_total). Many parks with a low busy ratio is a lightly loaded runtime; many no-ops is wasted wake-ups.",
                     targets((rate("spindle_runtime_parks_total", RUNTIME), WORKER + " parks"),
                             (rate("spindle_runtime_noops_total", RUNTIME), WORKER + " no-ops")),
                     "ops"), 8, 8)
    L.add(timeseries("Scheduling", "Where woken and spawned tasks are queued, per second: on the waking worker's own queue (spindle_runtime_local_schedules_total), on the shared injection queue from outside the workers (spindle_runtime_remote_schedules_total, per runtime), and moved to the injection queue because a local queue was full (spindle_runtime_overflows_total). Overflows mean bursts larger than a local queue (256).",
                     targets((rate("spindle_runtime_local_schedules_total", RUNTIME), WORKER + " local"),
                             (rate("spindle_runtime_remote_schedules_total", RUNTIME), RT + " remote"),
                             (rate("spindle_runtime_overflows_total", RUNTIME), WORKER + " overflows")),
                     "ops"), 8, 8)

    L.row("Queues")
    L.add(timeseries("Injection (global) queue depth", "Tasks waiting in the shared injection queue (spindle_runtime_global_queue_depth): spawns and wakes from outside the workers. Workers check it every global_queue_interval polls; a queue that keeps growing means the workers cannot keep up.",
                     [target(sel("spindle_runtime_global_queue_depth", RUNTIME), RT)], "short"), 12, 8)
    L.add(timeseries("Local queue depth per worker", "Tasks waiting in each worker's local run queue (spindle_runtime_local_queue_depth, at most 256). One deep queue while others are empty: that worker is stuck in a long poll and stealing has not caught up.",
                     [target(sel("spindle_runtime_local_queue_depth", RUNTIME), WORKER)], "short"), 12, 8)

    L.row("Blocking pool")
    L.add(timeseries("Blocking threads", "Threads of the blocking pool that runs spawn_blocking calls: all of them (spindle_runtime_blocking_threads), the idle ones (spindle_runtime_idle_blocking_threads) and the pool's maximum (spindle_runtime_max_blocking_threads, dashed). Threads at the maximum with a queue (next panel) means blocking work waits.",
                     targets((sel("spindle_runtime_blocking_threads", RUNTIME), RT + " threads"),
                             (sel("spindle_runtime_idle_blocking_threads", RUNTIME), RT + " idle threads"),
                             (sel("spindle_runtime_max_blocking_threads", RUNTIME), RT + " maximum")),
                     "short", overrides=[override_regex(".* maximum$", DASHED)]), 8, 8)
    L.add(timeseries("Blocking pool in use", "Share of the pool's maximum that is running spawn_blocking calls: (threads − idle threads) / maximum. At 100% new calls queue.",
                     [target("(%s - %s)\n/\n%s" % (sel("spindle_runtime_blocking_threads", RUNTIME),
                                                  sel("spindle_runtime_idle_blocking_threads", RUNTIME),
                                                  sel("spindle_runtime_max_blocking_threads", RUNTIME)), RT)],
                     "percentunit", max_=1, thresh=thresholds(("transparent", None), ("red", 0.9))), 8, 8)
    L.add(timeseries("Blocking queue depth", "spawn_blocking calls waiting for a thread (spindle_runtime_blocking_queue_depth). Above 0 for long while the pool is at its maximum: the pool is saturated (alert SpindleBlockingPoolSaturated).",
                     [target(sel("spindle_runtime_blocking_queue_depth", RUNTIME), RT)], "short"), 8, 8)

    L.row("Cooperation and stalls")
    L.add(timeseries("Forced yields", "Times per second a task used up its cooperative budget (128 operations that completed at once) and was made to yield (spindle_runtime_budget_forced_yields_total). Healthy: tasks that would otherwise hog a worker are interrupted at an await.",
                     [target(rate("spindle_runtime_budget_forced_yields_total", RUNTIME), WORKER)], "ops"), 8, 8)
    L.add(timeseries("Stalls per worker", "Stall-detector reports per worker over each rate interval (increase of spindle_runtime_stalls_total): a poll held the worker past the detector's threshold (100 ms by default) without yielding. The service's log names the task, its monitor and where it was spawned.",
                     [target(increase("spindle_runtime_stalls_total", RUNTIME), WORKER)], "short",
                     bars=True, thresh=thresholds(("transparent", None), ("red", 1))), 8, 8)
    L.add(timeseries("I/O driver events", "Ready I/O events and timers each worker's reactor delivered per second (spindle_runtime_io_driver_ready_total).",
                     [target(rate("spindle_runtime_io_driver_ready_total", RUNTIME), WORKER)], "ops"), 8, 8)

    L.row("Tasks")
    L.add(timeseries("Live tasks", "Tasks spawned and not yet finished, per runtime (spindle_runtime_live_tasks). Growing without bound: tasks are spawned faster than they finish, or leak.",
                     [target(sel("spindle_runtime_live_tasks", RUNTIME), RT)], "short"), 8, 8)
    L.add(timeseries("Tasks spawned per second", "Root tasks spawned per second, per runtime (rate of spindle_runtime_spawned_tasks_total).",
                     [target(rate("spindle_runtime_spawned_tasks_total", RUNTIME), RT)], "ops"), 8, 8)
    L.add(timeseries("Unhandled exceptions", "Exceptions of detached tasks that nobody awaited, per rate interval (increase of spindle_runtime_unhandled_exceptions_total). Each one is a task that failed silently.",
                     [target(increase("spindle_runtime_unhandled_exceptions_total", RUNTIME), RT)], "short",
                     bars=True, thresh=thresholds(("transparent", None), ("red", 1))), 8, 8)

    variables = [
        datasource_var(),
        query_var("job", "label_values(spindle_runtime_workers, job)", "Prometheus job(s) scraping spindle services."),
        query_var("instance", 'label_values(spindle_runtime_workers{job=~"$job"}, instance)', "Scraped instance(s) of the selected jobs."),
    ]
    return dashboard("spindle-runtime", "Spindle / Runtime",
                     "spindle's task runtime: workers' busy ratio, polls, steals, parks, queues, blocking pool, cooperation and stalls (exporter/METRICS.md).",
                     variables, L.panels)


# ---- Tasks ---------------------------------------------------------------------
MON = "{{monitor}}"

HOW_TO = """
**Why are my tasks slow?** A task's time is spent in one of three states:

1. **being polled**: a worker runs the task's code;
2. **waiting to be polled** (scheduled): the task was woken and waits for a worker;
3. **idle**: the task waits for an event (I/O, a timer, a channel, another task);

and, before all that, waiting for its first poll.

Pick the monitor(s) above. The **verdict** (left) says, per monitor, which of
these took the largest share of its tasks' time, who held the worker during its
long waits, and what to do: the seed talk's remedies (`spawn_blocking`,
`yield_now`, more workers, look downstream). The table below compares the
**mean** times (*answer*) with the ratios of slow polls and long delays. Go to
the matching row and look at the distribution (p99, heatmap) to see whether a
few outliers or every task is slow. A task that waits for requests is mostly
idle: that is normal, and row 3 only matters when the wait is on something the
task calls.
"""

ROW1 = """
**Is the time spent being polled?** Long polls are the task's own code running without
reaching an `co_await` that suspends: a blocking call (file or socket I/O outside spindle,
a mutex, a synchronous client, a big computation) or a long loop. While it runs, every
task queued on that worker waits (row 2 of *other* monitors rises too).
**If the slow-poll ratio or the p99 is high:** move blocking calls to `spawn_blocking`,
and `co_await spindle::yield_now()` inside long loops. The stall detector's log names the
task and where it was spawned. *Never-yielded polls* (Lints, below) are the worst of them.
"""

ROW2 = """
**Is the time spent waiting to be polled?** The task was ready, but no worker took it.
*Who held the worker* names what was polling meanwhile (the delay blame). Look at the busy
ratio beside it. **Every worker near 100%:** the runtime is saturated: add worker threads or
instances, or shed load. **One worker near 100%, the others not:** a slow poller holds it:
the top culprit; select it and look at its row 1 (and the stall detector's log), then fix that
task. A long *first-poll delay* says the same for new tasks.
"""

ROW3 = """
**Is the time spent idle?** The task waits for something outside the runtime: a socket,
a timer, a channel, a lock, another task. The runtime is not the cause: **look downstream**
(the peer or service the task calls, the producer of the channel, a `sleep`) and at its own
latency. A task that waits for the next request is idle by design.
"""


def verdict_table():
    mappings = [{"type": "value", "options": {
        c: {"text": VERDICT_TEXT[c], "color": VERDICT_COLOR[c], "index": i} for i, c in enumerate(VERDICT_TEXT)}}]
    advice = [{"type": "value", "options": {c: {"text": ADVICE[c], "index": i} for i, c in enumerate(ADVICE)}}]
    return {
        "type": "table", "title": "Verdict: where the time goes, who held the worker, what to do",
        "description": "Per TaskMonitor, over the rate interval: the largest of the four times its tasks spend (being polled, waiting for a worker after a wake, idle, waiting for the first poll) and its share of the four (spindle_task_poll_time_seconds_total, spindle_task_scheduled_time_seconds_total, spindle_task_idle_time_seconds_total, spindle_task_first_poll_delay_seconds_total); the top culprit of its long scheduled delays and its share of the blamed time (spindle_task_delay_blame_seconds_total, needs the runtime's flight recorder); and the seed talk's remedy for the verdict. The same verdict as spindle::diagnose() and the recording rule instance_monitor:spindle_task_verdict:ratio_rate1m (ties go to poll, then scheduled, idle, first_poll); the alert SpindleTaskSlowVerdict fires on poll or scheduled above 50% for 5 minutes.",
        "datasource": DS,
        "fieldConfig": {
            "defaults": {"color": {"mode": "thresholds"},
                         "custom": {"align": "auto", "cellOptions": {"type": "auto"},
                                    "filterable": False, "inspect": False},
                         "mappings": [], "thresholds": GREEN, "unit": "percentunit"},
            "overrides": [
                override_name("verdict", ("custom.cellOptions", {"type": "color-background", "mode": "basic"}),
                              ("mappings", mappings)),
                override_name("advice", ("mappings", advice), ("custom.inspect", True)),
                override_name("share", ("custom.cellOptions", {"type": "gauge", "mode": "basic",
                                                               "valueDisplayMode": "text"}),
                              ("min", 0), ("max", 1)),
            ],
        },
        "options": {"cellHeight": "sm", "showHeader": True,
                    "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
                    "sortBy": [{"desc": False, "displayName": "monitor"}]},
        "targets": [target(verdict(), "", "A", instant=True, fmt="table"),
                    target(top_culprit(), "", "B", instant=True, fmt="table")],
        "transformations": [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True},
                "indexByName": {"monitor": 0, "cause": 1, "Value #A": 2, "culprit": 3, "Value #B": 4,
                                "advice": 5},
                "renameByName": {"cause": "verdict", "Value #A": "share", "culprit": "top culprit",
                                 "Value #B": "culprit's share of the blamed delay"},
            }},
        ],
    }


def tasks_dashboard():
    L = Layout()
    L.row("Which of the three is it? (per monitor)")
    L.add(verdict_table(), 16, 8)
    L.add(text("How to read this dashboard", "The procedure this dashboard follows (monitor/include/spindle/monitor/task_metrics.hpp).", HOW_TO), 8, 18)
    table_targets = [
        target(dominant(), "", "A", instant=True, fmt="table"),
        target(mean_poll(), "", "B", instant=True, fmt="table"),
        target(mean_scheduled(), "", "C", instant=True, fmt="table"),
        target(mean_idle(), "", "D", instant=True, fmt="table"),
        target(slow_poll_ratio(), "", "E", instant=True, fmt="table"),
        target(long_delay_ratio(), "", "F", instant=True, fmt="table"),
        target(rate("spindle_task_polls_total", TASK, by="monitor"), "", "G", instant=True, fmt="table"),
    ]
    answer_colors = {ANSWER_POLLED: ("orange", 0), ANSWER_SCHEDULED: ("red", 1), ANSWER_IDLE: ("blue", 2)}
    table = {
        "type": "table", "title": "Where the time goes, per monitor",
        "description": "Per TaskMonitor, over the rate interval: which of the three mean times is largest (answer), the three means (mean poll duration, mean wake → poll delay, mean idle period), the share of slow polls and of long delays, and polls per second. Means are coloured from 50 µs (yellow) and 1 ms (red).",
        "datasource": DS,
        "fieldConfig": {
            "defaults": {"color": {"mode": "thresholds"},
                         "custom": {"align": "auto", "cellOptions": {"type": "color-text"},
                                    "filterable": False, "inspect": False},
                         "mappings": [],
                         "thresholds": thresholds(("green", None), ("yellow", 5e-05), ("red", 0.001)),
                         "unit": "s"},
            "overrides": [
                override_name("answer",
                              ("custom.cellOptions", {"type": "color-background", "mode": "basic"}),
                              ("mappings", [{"type": "value", "options": {
                                  k: {"color": c, "index": i} for k, (c, i) in answer_colors.items()}}])),
                override_name("mean idle", ("custom.cellOptions", {"type": "auto"})),
                override_name("slow-poll ratio", ("unit", "percentunit"),
                              ("thresholds", thresholds(("green", None), ("yellow", 0.05), ("red", 0.1)))),
                override_name("long-delay ratio", ("unit", "percentunit"),
                              ("thresholds", thresholds(("green", None), ("yellow", 0.05), ("red", 0.1)))),
                override_name("polls/s", ("unit", "ops"), ("custom.cellOptions", {"type": "auto"})),
            ],
        },
        "options": {"cellHeight": "sm", "showHeader": True,
                    "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
                    "sortBy": [{"desc": False, "displayName": "monitor"}]},
        "targets": table_targets,
        "transformations": [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True, "Value #A": True},
                "indexByName": {"monitor": 0, "state": 1, "Value #B": 2, "Value #C": 3,
                                "Value #D": 4, "Value #E": 5, "Value #F": 6, "Value #G": 7},
                "renameByName": {"state": "answer", "Value #B": "mean poll", "Value #C": "mean wait for a worker",
                                 "Value #D": "mean idle", "Value #E": "slow-poll ratio",
                                 "Value #F": "long-delay ratio", "Value #G": "polls/s"},
            }},
        ],
    }
    L.add(table, 16, 10)
    L.add(timeseries("Mean polled, waiting and idle time", "Per monitor, the three means side by side over time (log scale): mean poll duration (polled), mean wake → poll delay (waiting to be polled), mean idle period (idle). The largest is where the time goes.",
                     targets((mean_poll(), MON + " polled"), (mean_scheduled(), MON + " waiting to be polled"),
                             (mean_idle(), MON + " idle")),
                     "s", log=True), 12, 8)
    L.add(timeseries("Tasks instrumented per second", "New tasks per second per monitor (rate of spindle_task_instrumented_total), and tasks finished per second (spindle_task_dropped_total): the load the monitors see.",
                     targets((rate("spindle_task_instrumented_total", TASK, by="monitor"), MON + " started"),
                             (rate("spindle_task_dropped_total", TASK, by="monitor"), MON + " finished")),
                     "ops"), 6, 8)
    L.add(timeseries("Live instrumented tasks", "Tasks of each monitor alive now (spindle_task_live_tasks: instrumented − dropped).",
                     [target("sum by (monitor) (%s)" % sel("spindle_task_live_tasks", TASK), MON)], "short"), 6, 8)

    L.row("1. Is the time spent being polled?")
    L.add(text("Row 1: what it means, what to do", "How to read row 1 and what to do when the answer is yes.", ROW1), 24, 5)
    L.add(timeseries("Mean poll duration", "Time in polls / polls, per monitor (spindle_task_poll_time_seconds_total / spindle_task_polls_total): how long the task's own code runs each time a worker polls it.",
                     [target(mean_poll(), MON)], "s"), 8, 8)
    L.add(timeseries("Poll duration p50 / p99", "Median and 99th percentile of poll durations per monitor (histogram spindle_task_poll_duration_seconds; estimates within a factor-of-two bucket), with the monitor's slow-poll threshold (dashed).",
                     targets((quantile(0.5, "spindle_task_poll_duration_seconds", TASK, "monitor"), MON + " p50"),
                             (quantile(0.99, "spindle_task_poll_duration_seconds", TASK, "monitor"), MON + " p99"),
                             ("max by (monitor) (%s)" % sel("spindle_task_slow_poll_threshold_seconds", TASK), MON + " slow-poll threshold")),
                     "s", log=True, overrides=[override_regex(".* threshold$", DASHED)]), 8, 8)
    L.add(timeseries("Slow-poll ratio", "Share of polls at least as long as the monitor's slow-poll threshold (spindle_task_polls_total{kind=\"slow\"} / all). Above 10% for 5 minutes fires SpindleTaskSlowPolls.",
                     [target(slow_poll_ratio(), MON)], "percentunit", max_=1,
                     thresh=thresholds(("transparent", None), ("red", 0.1))), 8, 8)
    L.add(heatmap("Poll duration distribution", "Polls per second in each duration bucket (spindle_task_poll_duration_seconds_bucket), all selected monitors together: select one monitor to see its own. A band far above the rest is a few slow polls; the whole mass moving up is every poll getting slower.",
                  "spindle_task_poll_duration_seconds", TASK, "Oranges", "polls/s"), 12, 8)
    L.add(timeseries("Share of poll time in slow polls", "Time in slow polls / time in all polls, per monitor (spindle_task_poll_time_seconds_total by kind). Few slow polls can take most of the poll time: this tells whether fixing them matters.",
                     [target("%s\n/\n%s" % (rate("spindle_task_poll_time_seconds_total", TASK, 'kind="slow"', by="monitor"),
                                           rate("spindle_task_poll_time_seconds_total", TASK, by="monitor")), MON)],
                     "percentunit", max_=1), 12, 8)

    L.row("2. Is the time spent waiting to be polled?")
    L.add(text("Row 2: what it means, what to do", "How to read row 2 and what to do when the answer is yes.", ROW2), 24, 5)
    L.add(timeseries("Mean scheduled delay", "Wake → poll time / number of such delays, per monitor (spindle_task_scheduled_time_seconds_total / spindle_task_scheduled_total): how long a woken task waits for a worker.",
                     [target(mean_scheduled(), MON)], "s"), 8, 8)
    L.add(timeseries("Scheduled delay p50 / p99", "Median and 99th percentile of wake → poll delays per monitor (histogram spindle_task_scheduled_delay_seconds), with the monitor's long-delay threshold (dashed).",
                     targets((quantile(0.5, "spindle_task_scheduled_delay_seconds", TASK, "monitor"), MON + " p50"),
                             (quantile(0.99, "spindle_task_scheduled_delay_seconds", TASK, "monitor"), MON + " p99"),
                             ("max by (monitor) (%s)" % sel("spindle_task_long_delay_threshold_seconds", TASK), MON + " long-delay threshold")),
                     "s", log=True, overrides=[override_regex(".* threshold$", DASHED)]), 8, 8)
    L.add(timeseries("Long-delay ratio", "Share of wake → poll delays at least as long as the monitor's long-delay threshold (spindle_task_scheduled_total{kind=\"long\"} / all). Above 10% for 5 minutes fires SpindleTaskLongSchedulingDelays.",
                     [target(long_delay_ratio(), MON)], "percentunit", max_=1,
                     thresh=thresholds(("transparent", None), ("red", 0.1))), 8, 8)
    L.add(timeseries("Who held the worker", "During the selected monitors' long scheduled delays, who was polling on the worker the task waited for: seconds of delay per second blamed on each culprit, stacked (rate of spindle_task_delay_blame_seconds_total). A culprit is a monitor's name (its tasks' polls: fix them, row 1 with that monitor selected), unmonitored (tasks under no TaskMonitor), runtime (the worker's own work: timers, I/O, stealing), unrecorded (the flight recorder's ring had already moved on) or other (beyond the 5 named per monitor). Select one monitor to see its own culprits. Empty without the runtime's flight recorder (Runtime::Builder::flight_recorder).",
                     [target(rate("spindle_task_delay_blame_seconds_total", TASK, by="culprit"), "{{culprit}}")],
                     "s", stack=True), 12, 8)
    L.add(timeseries("Runtime busy ratio per worker", "Share of time each worker of the selected instances spent polling (rate of spindle_runtime_busy_seconds_total). All near 100%: saturated. One near 100%: a slow poller holds it. Low while delays are long: look at the injection queue on the Runtime dashboard.",
                     [target(rate("spindle_runtime_busy_seconds_total", RUNTIME), WORKER)],
                     "percentunit", max_=1, thresh=thresholds(("transparent", None), ("red", 0.9))), 12, 8)
    L.add(heatmap("Scheduled delay distribution", "Wake → poll delays per second in each duration bucket (spindle_task_scheduled_delay_seconds_bucket), all selected monitors together.",
                  "spindle_task_scheduled_delay_seconds", TASK, "Reds", "delays/s"), 12, 8)
    L.add(timeseries("Mean first-poll delay", "Instrument → first poll, per new task, per monitor (spindle_task_first_poll_delay_seconds_total / spindle_task_first_polls_total): how long new tasks wait to start. Empty for monitors that start no tasks in the interval.",
                     [target("%s\n/\n%s" % (rate("spindle_task_first_poll_delay_seconds_total", TASK, by="monitor"),
                                           rate("spindle_task_first_polls_total", TASK, by="monitor")), MON)], "s"), 12, 8)

    L.row("3. Is the time spent idle?")
    L.add(text("Row 3: what it means, what to do", "How to read row 3 and what to do when the answer is yes.", ROW3), 24, 4)
    L.add(timeseries("Mean idle duration", "Idle time / idle periods, per monitor (spindle_task_idle_time_seconds_total / spindle_task_idled_total): how long a task waits for its event between the end of a poll and its wake.",
                     [target(mean_idle(), MON)], "s"), 8, 8)
    L.add(timeseries("Idle duration p50 / p99", "Median and 99th percentile of idle periods per monitor (histogram spindle_task_idle_duration_seconds).",
                     targets((quantile(0.5, "spindle_task_idle_duration_seconds", TASK, "monitor"), MON + " p50"),
                             (quantile(0.99, "spindle_task_idle_duration_seconds", TASK, "monitor"), MON + " p99")),
                     "s", log=True), 8, 8)
    L.add(timeseries("Longest idle period", "The longest single idle period of each monitor's tasks since the service started (spindle_task_max_idle_duration_seconds). A jump points at the moment something downstream hung.",
                     [target("max by (monitor) (%s)" % sel("spindle_task_max_idle_duration_seconds", TASK), MON)], "s"), 8, 8)
    L.add(heatmap("Idle duration distribution", "Idle periods per second in each duration bucket (spindle_task_idle_duration_seconds_bucket), all selected monitors together.",
                  "spindle_task_idle_duration_seconds", TASK, "Blues", "idle periods/s"), 12, 8)
    L.add(timeseries("Idle periods per second", "Idle periods ended by a wake, per second and monitor (rate of spindle_task_idled_total): how often the tasks wait.",
                     [target(rate("spindle_task_idled_total", TASK, by="monitor"), MON)], "ops"), 12, 8)

    L.row("Lints")
    L.add(timeseries("Self-wake ratio", "Share of wakes that came from inside the task's own poll (spindle_task_wakes_total{kind=\"self\"} / all): yield_now() or a task waking itself. High: the tasks spin through the scheduler instead of waiting for real events (busy-polling); replace the loop by a wait on the event.",
                     [target("%s\n/\n%s" % (rate("spindle_task_wakes_total", TASK, 'kind="self"', by="monitor"),
                                           rate("spindle_task_wakes_total", TASK, by="monitor")), MON)],
                     "percentunit", max_=1, thresh=thresholds(("transparent", None), ("orange", 0.5))), 8, 8)
    L.add(timeseries("Never-yielded polls", "Polls per second that ran past the monitor's stall threshold (100 ms by default) without yielding (rate of spindle_task_never_yielded_polls_total). Any is too many: each held a worker and everything queued on it.",
                     [target(rate("spindle_task_never_yielded_polls_total", TASK, by="monitor"), MON)],
                     "ops", thresh=thresholds(("transparent", None), ("red", 0.001))), 8, 8)
    L.add(timeseries("Wakes per second", "Wakes per second per monitor, from the task's own poll (self) and from elsewhere (other) (rate of spindle_task_wakes_total by kind).",
                     [target(rate("spindle_task_wakes_total", TASK, by="monitor, kind"), MON + " {{kind}}")], "ops"), 8, 8)

    variables = [
        datasource_var(),
        query_var("job", "label_values(spindle_task_polls_total, job)", "Prometheus job(s) scraping spindle services."),
        query_var("instance", 'label_values(spindle_task_polls_total{job=~"$job"}, instance)', "Scraped instance(s) of the selected jobs."),
        query_var("monitor", 'label_values(spindle_task_polls_total{job=~"$job", instance=~"$instance"}, monitor)', "TaskMonitor(s): the `monitor` label, the name given to TaskMonitor::Builder::name()."),
    ]
    return dashboard("spindle-tasks", "Spindle / Tasks — why are my tasks slow?",
                     "Per TaskMonitor: is the time spent being polled, waiting to be polled, or idle? The tokio-metrics procedure with spindle's metrics (exporter/METRICS.md).",
                     variables, L.panels)


def render(d):
    return json.dumps(d, indent=2, ensure_ascii=False) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if a committed dashboard differs")
    args = ap.parse_args()
    stale = []
    for name, d in (("spindle-runtime.json", runtime_dashboard()), ("spindle-tasks.json", tasks_dashboard())):
        path, want = OUT / name, render(d)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != want:
                stale.append(str(path))
        else:
            path.write_text(want, encoding="utf-8")
    if stale:
        print("out of date (run python3 deploy/grafana/generate.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
