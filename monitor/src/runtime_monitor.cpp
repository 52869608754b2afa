#include "spindle/monitor/runtime_monitor.hpp"

#include <algorithm>
#include <limits>

namespace spindle {

namespace {

template <class T>
T sub(T later, T earlier) noexcept {
  return later >= earlier ? later - earlier : T{};
}

/// Accumulates total/max/min of one per-worker figure.
template <class T>
struct Spread {
  T total{};
  T max{};
  T min{};
  bool any = false;
  void add(T v) noexcept {
    total += v;
    if (!any || v > max) max = v;
    if (!any || v < min) min = v;
    any = true;
  }
};

}  // namespace

RuntimeMonitor::RuntimeMonitor(Handle runtime) : runtime_(std::move(runtime)) {
  if (!runtime_.valid()) throw UsageError("spindle: RuntimeMonitor needs a valid runtime Handle");
}

RuntimeCounters RuntimeMonitor::counters() const { return runtime_.counters(); }

RuntimeIntervals RuntimeMonitor::intervals() const {
  // The first interval starts when the runtime was built: all-zero counters
  // at that instant.
  RuntimeCounters start = runtime_.counters();
  RuntimeCounters zero;
  zero.workers.resize(start.workers.size());
  zero.now = start.now - start.elapsed;
  return RuntimeIntervals(runtime_, std::move(zero));
}

RuntimeMetrics RuntimeMonitor::between(const RuntimeCounters& earlier,
                                       const RuntimeCounters& later) {
  RuntimeMetrics m;
  m.workers_count = later.workers.size();
  m.live_tasks_count = later.live_tasks;
  m.num_remote_schedules = sub(later.remote_schedules, earlier.remote_schedules);
  m.global_queue_depth = later.global_queue_depth;
  m.blocking_queue_depth = later.blocking_queue_depth;
  m.blocking_threads_count = later.blocking_threads;
  m.idle_blocking_threads_count = later.idle_blocking_threads;
  m.elapsed = later.now > earlier.now
                  ? std::chrono::duration_cast<std::chrono::nanoseconds>(later.now - earlier.now)
                  : std::chrono::nanoseconds(0);
  m.spawned_tasks_count = sub(later.spawned_tasks, earlier.spawned_tasks);
  m.unhandled_exception_count = sub(later.unhandled_exceptions, earlier.unhandled_exceptions);

  Spread<std::uint64_t> parks, noops, steals, steal_ops, local, overflows, polls;
  Spread<std::chrono::nanoseconds> busy;
  Spread<std::size_t> depth;
  m.workers.reserve(later.workers.size());
  for (std::size_t i = 0; i < later.workers.size(); ++i) {
    const WorkerCounters& b = later.workers[i];
    const WorkerCounters a = i < earlier.workers.size() ? earlier.workers[i] : WorkerCounters{};
    WorkerMetrics w;
    w.park_count = sub(b.parks, a.parks);
    w.noop_count = sub(b.noops, a.noops);
    w.steal_count = sub(b.steals, a.steals);
    w.steal_operations = sub(b.steal_operations, a.steal_operations);
    w.local_schedule_count = sub(b.local_schedules, a.local_schedules);
    w.overflow_count = sub(b.overflows, a.overflows);
    w.polls_count = sub(b.polls, a.polls);
    w.busy_duration = sub(b.busy, a.busy);
    w.local_queue_depth = b.local_queue_depth;
    w.budget_forced_yield_count = sub(b.budget_forced_yields, a.budget_forced_yields);
    w.io_driver_ready_count = sub(b.io_driver_ready, a.io_driver_ready);
    parks.add(w.park_count);
    noops.add(w.noop_count);
    steals.add(w.steal_count);
    steal_ops.add(w.steal_operations);
    local.add(w.local_schedule_count);
    overflows.add(w.overflow_count);
    polls.add(w.polls_count);
    busy.add(w.busy_duration);
    depth.add(w.local_queue_depth);
    m.budget_forced_yield_count += w.budget_forced_yield_count;
    m.io_driver_ready_count += w.io_driver_ready_count;
    m.poll_duration_histogram += b.poll_durations - a.poll_durations;
    m.scheduled_delay_histogram += b.scheduled_delays - a.scheduled_delays;
    m.workers.push_back(w);
  }
  m.total_park_count = parks.total, m.max_park_count = parks.max, m.min_park_count = parks.min;
  m.total_noop_count = noops.total, m.max_noop_count = noops.max, m.min_noop_count = noops.min;
  m.total_steal_count = steals.total, m.max_steal_count = steals.max,
  m.min_steal_count = steals.min;
  m.total_steal_operations = steal_ops.total, m.max_steal_operations = steal_ops.max,
  m.min_steal_operations = steal_ops.min;
  m.total_local_schedule_count = local.total, m.max_local_schedule_count = local.max,
  m.min_local_schedule_count = local.min;
  m.total_overflow_count = overflows.total, m.max_overflow_count = overflows.max,
  m.min_overflow_count = overflows.min;
  m.total_polls_count = polls.total, m.max_polls_count = polls.max, m.min_polls_count = polls.min;
  m.total_busy_duration = busy.total, m.max_busy_duration = busy.max,
  m.min_busy_duration = busy.min;
  m.total_local_queue_depth = depth.total, m.max_local_queue_depth = depth.max,
  m.min_local_queue_depth = depth.min;
  return m;
}

RuntimeIntervals::RuntimeIntervals(Handle runtime, RuntimeCounters start)
    : runtime_(std::move(runtime)), previous_(std::move(start)) {}

RuntimeMetrics RuntimeIntervals::next() {
  RuntimeCounters now = runtime_.counters();
  RuntimeMetrics m = RuntimeMonitor::between(previous_, now);
  previous_ = std::move(now);
  return m;
}

}  // namespace spindle
