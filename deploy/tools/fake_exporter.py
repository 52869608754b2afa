#!/usr/bin/env python3
"""A stand-in for spindle's exporter: serves /metrics with every series of
exporter/METRICS.md, made up but consistent, so that the Prometheus config,
the rules and the dashboards can be tried without building the C++ demo.

    python3 deploy/tools/fake_exporter.py --listen 127.0.0.1:9464

Simulates one runtime ("main", 4 workers) and three TaskMonitors:
  checkout  slow polls (some polls take milliseconds)   -> row 1 answers
  search    long scheduling delays, mostly behind checkout's polls
                                                         -> row 2 answers
  sessions  long idle periods (waits on a "downstream")  -> row 3 answers
and a worker that stalls from time to time. Each long scheduling delay is
blamed on culprits in fixed proportions (spindle_task_delay_blame_seconds_total,
as with the runtime's flight recorder). Every series carries the constant
label service="spindle-demo", as an exporter option would add it.
Used by deploy/tools/smoke.sh. Python 3 standard library only.
"""

import argparse
import math
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# 2^k ns for k = 6..36 (64 ns .. 68.719476736 s): the exporter's classic view of
# histogram.hpp's buckets (exporter/METRICS.md).
BOUNDS = [(1 << k) / 1e9 for k in range(6, 37)]
CONST = 'service="spindle-demo"'
WORKERS = 4


def fmt(v):
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


def le(b):
    return repr(b)  # the shortest round-trip spelling, as the exporter writes it


class Hist:
    def __init__(self):
        self.counts = [0] * (len(BOUNDS) + 1)
        self.sum = 0.0

    def observe(self, d):
        for i, b in enumerate(BOUNDS):
            if d <= b:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.sum += d

    def lines(self, name, labels):
        out, cum = [], 0
        for i, b in enumerate(BOUNDS):
            cum += self.counts[i]
            out.append('%s_bucket{%s,le="%s"} %d' % (name, labels, le(b), cum))
        cum += self.counts[-1]
        out.append('%s_bucket{%s,le="+Inf"} %d' % (name, labels, cum))
        out.append("%s_sum{%s} %s" % (name, labels, fmt(self.sum)))
        out.append("%s_count{%s} %d" % (name, labels, cum))
        return out


class Monitor:
    def __init__(self, name, poll, sched, idle, tasks_per_s, polls_per_task, self_wake, blame):
        self.name, self.poll, self.sched, self.idle = name, poll, sched, idle
        self.blame_shares = blame  # culprit -> its part of each long delay
        self.blame = {c: 0.0 for c in blame}
        self.tasks_per_s, self.polls_per_task, self.self_wake = tasks_per_s, polls_per_task, self_wake
        self.slow_threshold, self.long_threshold, self.stall = 50e-6, 50e-6, 0.1
        self.c = {k: 0.0 for k in ("instrumented", "dropped", "first", "first_delay", "idled", "idle_time",
                                   "never_yielded", "wake_self", "wake_other")}
        self.polls = {"fast": 0, "slow": 0}
        self.poll_time = {"fast": 0.0, "slow": 0.0}
        self.sched_n = {"short": 0, "long": 0}
        self.sched_time = {"short": 0.0, "long": 0.0}
        self.h_poll, self.h_sched, self.h_idle = Hist(), Hist(), Hist()
        self.max_idle = 0.0
        self.live = 0

    def step(self, dt, rnd):
        tasks = int(self.tasks_per_s * dt + rnd.random())
        self.c["instrumented"] += tasks
        for _ in range(tasks):
            self.c["first"] += 1
            self.c["first_delay"] += self.sched(rnd)
            for p in range(self.polls_per_task):
                d = self.poll(rnd)
                kind = "slow" if d >= self.slow_threshold else "fast"
                self.polls[kind] += 1
                self.poll_time[kind] += d
                self.h_poll.observe(d)
                if d >= self.stall:
                    self.c["never_yielded"] += 1
                if p + 1 < self.polls_per_task:  # suspended: idle, then woken, then scheduled
                    if rnd.random() < self.self_wake:
                        self.c["wake_self"] += 1
                    else:
                        self.c["wake_other"] += 1
                        i = self.idle(rnd)
                        self.c["idled"] += 1
                        self.c["idle_time"] += i
                        self.h_idle.observe(i)
                        self.max_idle = max(self.max_idle, i)
                    s = self.sched(rnd)
                    kind = "long" if s >= self.long_threshold else "short"
                    self.sched_n[kind] += 1
                    self.sched_time[kind] += s
                    self.h_sched.observe(s)
                    if kind == "long":
                        for c, share in self.blame_shares.items():
                            self.blame[c] += s * share
        done = int(tasks * 0.99 + rnd.random()) if self.live < 50 else tasks
        self.c["dropped"] += done
        self.live = int(self.c["instrumented"] - self.c["dropped"])

    def lines(self):
        m = 'monitor="%s",%s' % (self.name, CONST)
        out = []
        add = out.append
        add("spindle_task_instrumented_total{%s} %d" % (m, self.c["instrumented"]))
        add("spindle_task_dropped_total{%s} %d" % (m, self.c["dropped"]))
        add("spindle_task_live_tasks{%s} %d" % (m, self.live))
        add("spindle_task_first_polls_total{%s} %d" % (m, self.c["first"]))
        add("spindle_task_first_poll_delay_seconds_total{%s} %s" % (m, fmt(self.c["first_delay"])))
        for k in ("fast", "slow"):
            add('spindle_task_polls_total{%s,kind="%s"} %d' % (m, k, self.polls[k]))
        for k in ("fast", "slow"):
            add('spindle_task_poll_time_seconds_total{%s,kind="%s"} %s' % (m, k, fmt(self.poll_time[k])))
        out += self.h_poll.lines("spindle_task_poll_duration_seconds", m)
        for k in ("short", "long"):
            add('spindle_task_scheduled_total{%s,kind="%s"} %d' % (m, k, self.sched_n[k]))
        for k in ("short", "long"):
            add('spindle_task_scheduled_time_seconds_total{%s,kind="%s"} %s' % (m, k, fmt(self.sched_time[k])))
        out += self.h_sched.lines("spindle_task_scheduled_delay_seconds", m)
        add("spindle_task_idled_total{%s} %d" % (m, self.c["idled"]))
        add("spindle_task_idle_time_seconds_total{%s} %s" % (m, fmt(self.c["idle_time"])))
        out += self.h_idle.lines("spindle_task_idle_duration_seconds", m)
        add("spindle_task_max_idle_duration_seconds{%s} %s" % (m, fmt(self.max_idle)))
        add('spindle_task_wakes_total{%s,kind="self"} %d' % (m, self.c["wake_self"]))
        add('spindle_task_wakes_total{%s,kind="other"} %d' % (m, self.c["wake_other"]))
        add("spindle_task_never_yielded_polls_total{%s} %d" % (m, self.c["never_yielded"]))
        add("spindle_task_slow_poll_threshold_seconds{%s} %s" % (m, fmt(self.slow_threshold)))
        add("spindle_task_long_delay_threshold_seconds{%s} %s" % (m, fmt(self.long_threshold)))
        if self.sched_n["long"]:  # as the exporter: only monitors that had a long delay
            for c, v in self.blame.items():
                add('spindle_task_delay_blame_seconds_total{%s,culprit="%s"} %s' % (m, c, fmt(v)))
        return out


def lognormal(median, sigma):
    return lambda rnd: rnd.lognormvariate(math.log(median), sigma)


class Runtime:
    def __init__(self):
        self.start = time.monotonic()
        self.per_worker = {k: [0.0] * WORKERS for k in (
            "polls", "busy", "parks", "noops", "steals", "steal_ops", "local", "overflows",
            "forced", "io", "stalls")}
        self.remote = 0
        self.spawned = 0
        self.exceptions = 0
        self.h_poll, self.h_sched = Hist(), Hist()
        self.local_depth = [0] * WORKERS
        self.global_depth = 0
        self.blocking, self.idle_blocking, self.blocking_queue = 4, 2, 0

    def step(self, dt, rnd, polls, spawned):
        w = self.per_worker
        for i in range(WORKERS):
            share = polls / WORKERS * (1.6 if i == 0 else 0.8)
            w["polls"][i] += int(share)
            w["busy"][i] += dt * min(0.98, (0.55 if i == 0 else 0.3) + rnd.random() * 0.1)
            w["parks"][i] += int(dt * 40 * rnd.random())
            w["noops"][i] += int(dt * 5 * rnd.random())
            w["steals"][i] += int(dt * 30 * rnd.random())
            w["steal_ops"][i] += int(dt * 10 * rnd.random())
            w["local"][i] += int(share * 0.7)
            w["overflows"][i] += int(dt * rnd.random() * 0.5)
            w["forced"][i] += int(dt * 3 * rnd.random())
            w["io"][i] += int(share * 0.4)
            self.local_depth[i] = int(rnd.random() * (20 if i == 0 else 4))
        if rnd.random() < dt / 20:  # a stall on worker 0 every 20 s or so
            w["stalls"][0] += 1
        self.remote += int(spawned * 0.5)
        self.spawned += spawned
        self.exceptions += 1 if rnd.random() < dt / 120 else 0
        for _ in range(min(polls, 2000)):
            self.h_poll.observe(rnd.lognormvariate(math.log(15e-6), 1.2))
            self.h_sched.observe(rnd.lognormvariate(math.log(8e-6), 1.0))
        self.global_depth = int(rnd.random() * 5)
        self.blocking_queue = 1 if rnd.random() < 0.2 else 0

    def lines(self, live):
        r = 'runtime="main",%s' % CONST
        out = []
        add = out.append
        add("spindle_runtime_workers{%s} %d" % (r, WORKERS))
        add("spindle_runtime_live_tasks{%s} %d" % (r, live))
        add("spindle_runtime_spawned_tasks_total{%s} %d" % (r, self.spawned))
        names = [("polls", "spindle_runtime_polls_total"), ("busy", "spindle_runtime_busy_seconds_total"),
                 ("parks", "spindle_runtime_parks_total"), ("noops", "spindle_runtime_noops_total"),
                 ("steals", "spindle_runtime_steals_total"), ("steal_ops", "spindle_runtime_steal_operations_total"),
                 ("local", "spindle_runtime_local_schedules_total"), ("overflows", "spindle_runtime_overflows_total"),
                 ("forced", "spindle_runtime_budget_forced_yields_total"),
                 ("io", "spindle_runtime_io_driver_ready_total"), ("stalls", "spindle_runtime_stalls_total")]
        for key, name in names:
            for i in range(WORKERS):
                add('%s{%s,worker="%d"} %s' % (name, r, i, fmt(self.per_worker[key][i])))
        add("spindle_runtime_remote_schedules_total{%s} %d" % (r, self.remote))
        add("spindle_runtime_global_queue_depth{%s} %d" % (r, self.global_depth))
        for i in range(WORKERS):
            add('spindle_runtime_local_queue_depth{%s,worker="%d"} %d' % (r, i, self.local_depth[i]))
        add("spindle_runtime_blocking_threads{%s} %d" % (r, self.blocking))
        add("spindle_runtime_idle_blocking_threads{%s} %d" % (r, self.idle_blocking))
        add("spindle_runtime_blocking_queue_depth{%s} %d" % (r, self.blocking_queue))
        add("spindle_runtime_max_blocking_threads{%s} %d" % (r, 512))
        add("spindle_runtime_unhandled_exceptions_total{%s} %d" % (r, self.exceptions))
        add("spindle_runtime_uptime_seconds{%s} %s" % (r, fmt(time.monotonic() - self.start)))
        out += self.h_poll.lines("spindle_runtime_poll_duration_seconds", r)
        out += self.h_sched.lines("spindle_runtime_scheduled_delay_seconds", r)
        return out


HELP = {
    # name: (type, help)
    "spindle_task_instrumented_total": ("counter", "Tasks instrumented."),
    "spindle_task_dropped_total": ("counter", "Tasks finished, aborted or destroyed."),
    "spindle_task_live_tasks": ("gauge", "Instrumented tasks alive."),
    "spindle_task_first_polls_total": ("counter", "First polls."),
    "spindle_task_first_poll_delay_seconds_total": ("counter", "Instrument to first poll, summed."),
    "spindle_task_polls_total": ("counter", "Polls by kind."),
    "spindle_task_poll_time_seconds_total": ("counter", "Time in polls by kind."),
    "spindle_task_poll_duration_seconds": ("histogram", "Poll durations."),
    "spindle_task_scheduled_total": ("counter", "Wake to poll delays by kind."),
    "spindle_task_scheduled_time_seconds_total": ("counter", "Wake to poll delays summed, by kind."),
    "spindle_task_scheduled_delay_seconds": ("histogram", "Wake to poll delays."),
    "spindle_task_idled_total": ("counter", "Idle periods ended by a wake."),
    "spindle_task_idle_time_seconds_total": ("counter", "Idle periods summed."),
    "spindle_task_idle_duration_seconds": ("histogram", "Idle periods."),
    "spindle_task_max_idle_duration_seconds": ("gauge", "Longest idle period."),
    "spindle_task_wakes_total": ("counter", "Wakes by kind."),
    "spindle_task_never_yielded_polls_total": ("counter", "Polls past the stall threshold."),
    "spindle_task_slow_poll_threshold_seconds": ("gauge", "Slow-poll threshold."),
    "spindle_task_long_delay_threshold_seconds": ("gauge", "Long-delay threshold."),
    "spindle_task_delay_blame_seconds_total": ("counter", "Long scheduled delays by who held the worker."),
    "spindle_runtime_workers": ("gauge", "Workers."),
    "spindle_runtime_live_tasks": ("gauge", "Live tasks."),
    "spindle_runtime_spawned_tasks_total": ("counter", "Tasks spawned."),
    "spindle_runtime_polls_total": ("counter", "Polls per worker."),
    "spindle_runtime_busy_seconds_total": ("counter", "Busy time per worker."),
    "spindle_runtime_parks_total": ("counter", "Parks per worker."),
    "spindle_runtime_noops_total": ("counter", "No-op wake-ups per worker."),
    "spindle_runtime_steals_total": ("counter", "Tasks stolen per worker."),
    "spindle_runtime_steal_operations_total": ("counter", "Steal operations per worker."),
    "spindle_runtime_local_schedules_total": ("counter", "Local schedules per worker."),
    "spindle_runtime_remote_schedules_total": ("counter", "Remote schedules."),
    "spindle_runtime_overflows_total": ("counter", "Local queue overflows per worker."),
    "spindle_runtime_budget_forced_yields_total": ("counter", "Forced yields per worker."),
    "spindle_runtime_io_driver_ready_total": ("counter", "I/O driver ready events per worker."),
    "spindle_runtime_global_queue_depth": ("gauge", "Injection queue depth."),
    "spindle_runtime_local_queue_depth": ("gauge", "Local queue depth per worker."),
    "spindle_runtime_blocking_threads": ("gauge", "Blocking threads."),
    "spindle_runtime_idle_blocking_threads": ("gauge", "Idle blocking threads."),
    "spindle_runtime_blocking_queue_depth": ("gauge", "Blocking queue depth."),
    "spindle_runtime_max_blocking_threads": ("gauge", "Blocking pool maximum."),
    "spindle_runtime_unhandled_exceptions_total": ("counter", "Unhandled exceptions of detached tasks."),
    "spindle_runtime_stalls_total": ("counter", "Stall-detector reports per worker."),
    "spindle_runtime_uptime_seconds": ("gauge", "Time since the runtime was built."),
    "spindle_runtime_poll_duration_seconds": ("histogram", "Poll durations, all tasks."),
    "spindle_runtime_scheduled_delay_seconds": ("histogram", "Wake to poll delays, all tasks."),
}


def family(line):
    name = line.split("{", 1)[0].split(" ", 1)[0]
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in HELP and HELP[name[: -len(suffix)]][0] == "histogram":
            return name[: -len(suffix)]
    return name


class State:
    def __init__(self, seed):
        self.rnd = random.Random(seed)
        self.lock = threading.Lock()
        self.last = time.monotonic()
        self.runtime = Runtime()
        self.monitors = [
            Monitor("checkout", lognormal(30e-6, 1.5), lognormal(8e-6, 0.8), lognormal(20e-6, 0.5), 40, 4, 0.05,
                    {"checkout": 0.5, "unmonitored": 0.3, "runtime": 0.2}),
            Monitor("search", lognormal(12e-6, 0.6), lognormal(120e-6, 1.0), lognormal(30e-6, 0.5), 60, 3, 0.02,
                    {"checkout": 0.7, "unmonitored": 0.2, "runtime": 0.1}),
            Monitor("sessions", lognormal(8e-6, 0.5), lognormal(6e-6, 0.6), lognormal(0.25, 0.8), 10, 6, 0.4,
                    {"search": 0.6, "runtime": 0.4}),
        ]

    def render(self):
        with self.lock:
            now = time.monotonic()
            dt, self.last = now - self.last, now
            for m in self.monitors:
                m.step(dt, self.rnd)
            polls = int(sum(m.tasks_per_s * m.polls_per_task for m in self.monitors) * dt * 1.2)
            spawned = int(sum(m.tasks_per_s for m in self.monitors) * dt)
            lines = []
            for m in self.monitors:
                lines += m.lines()
            lines += self.runtime.lines(sum(m.live for m in self.monitors))
        # Group by family, each with its HELP and TYPE, as the exposition format wants.
        fams = {}
        for line in lines:
            fams.setdefault(family(line), []).append(line)
        out = []
        for name, ls in fams.items():
            kind, text = HELP[name]
            out.append("# HELP %s %s" % (name, text))
            out.append("# TYPE %s %s" % (name, kind))
            out += ls
        return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1:9464")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--print", action="store_true", help="print one scrape and exit")
    args = ap.parse_args()
    state = State(args.seed)
    if args.print:
        time.sleep(1)
        print(state.render(), end="")
        return

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = state.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    host, port = args.listen.rsplit(":", 1)
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
