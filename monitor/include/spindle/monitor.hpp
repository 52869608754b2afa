// <spindle/monitor.hpp> — why are my tasks slow? Task and runtime metrics for spindle.
//
//   spindle::TaskMonitor, TaskMetrics, PerTaskMetrics, task_metrics()
//                                (spindle/monitor/task_monitor.hpp, task_metrics.hpp)
//   spindle::RuntimeMonitor, RuntimeMetrics, WorkerMetrics
//                                (spindle/monitor/runtime_monitor.hpp)
//   spindle::StallDetector, StallReport (spindle/monitor/stall_detector.hpp)
//   spindle::Histogram           (spindle/runtime/histogram.hpp: the shared bucket bounds)
//
// Example:
//   #include <spindle/monitor.hpp>
//
//   auto mon = spindle::TaskMonitor::Builder().name("checkout").build();
//   auto h = rt.spawn(mon.instrument(checkout(request)));
//   spindle::TaskMetrics m = mon.cumulative();
//   if (m.slow_poll_ratio() > 0.1) { /* blocking or heavy code inside the tasks */ }
//                                  // (NaN, so false, when nothing was polled)
//
//   spindle::RuntimeMonitor rmon(rt.handle());
//   auto rit = rmon.intervals();
//   spindle::RuntimeMetrics r = rit.next();
//
//   spindle::StallDetector stalls(rt.handle());   // names a task holding a worker > 100 ms
//
// The monitor layer plugs into the runtime's TaskHooks and counters; a
// runtime that links it but instruments nothing pays nothing.
#pragma once

#include "spindle/monitor/diagnose.hpp"
#include "spindle/monitor/runtime_monitor.hpp"
#include "spindle/monitor/stall_detector.hpp"
#include "spindle/monitor/task_metrics.hpp"
#include "spindle/monitor/task_monitor.hpp"
#include "spindle/runtime/histogram.hpp"
