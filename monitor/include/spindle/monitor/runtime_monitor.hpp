// spindle/monitor/runtime_monitor.hpp — the scheduler's own health, as tokio-metrics'
// RuntimeMonitor.
//
//   spindle::RuntimeMetrics      one interval of a runtime's scheduler figures (tokio-metrics
//   names) spindle::WorkerMetrics       one worker's figures in that interval
//   spindle::RuntimeMonitor      reads a runtime's counters
//   spindle::RuntimeIntervals    successive intervals
//
// Example:
//   spindle::RuntimeMonitor rmon(rt.handle());
//   auto rit = rmon.intervals();
//   spindle::RuntimeMetrics r = rit.next();   // since the runtime was built
//   ...one second later...
//   r = rit.next();                           // that second
//   if (r.busy_ratio() > 0.9) { /* workers nearly saturated */ }
//
// Reading: the runtime keeps per-worker counters that only their worker
// writes; an interval is the difference between two snapshots of them, so
// reading never blocks or slows a worker. For each per-worker counter X,
// total_X sums the workers, max_X and min_X are the largest and smallest
// single worker (a big gap between them means unbalanced work). Depths
// (queue lengths, blocking threads) are gauges read at the end of the
// interval.
//
// Thread safety: RuntimeMonitor is copyable and safe to use from any
// thread; one RuntimeIntervals must not be used by two threads at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "spindle/runtime/counters.hpp"
#include "spindle/runtime/histogram.hpp"
#include "spindle/runtime/runtime.hpp"

namespace spindle {

/// One worker's figures over an interval.
struct WorkerMetrics {
  std::uint64_t park_count = 0;               ///< times it went to sleep with nothing to do
  std::uint64_t noop_count = 0;               ///< wake-ups after which it found nothing to do
  std::uint64_t steal_count = 0;              ///< tasks it stole from other workers
  std::uint64_t steal_operations = 0;         ///< successful steal attempts
  std::uint64_t local_schedule_count = 0;     ///< tasks scheduled onto its own queue
  std::uint64_t overflow_count = 0;           ///< times its queue overflowed to the injection queue
  std::uint64_t polls_count = 0;              ///< task polls it ran
  std::chrono::nanoseconds busy_duration{0};  ///< time not parked
  std::size_t local_queue_depth = 0;          ///< tasks in its queue at the end of the interval
  std::uint64_t budget_forced_yield_count = 0;  ///< polls ended by the cooperative budget
  std::uint64_t io_driver_ready_count = 0;      ///< I/O and timer completions it ran
  /// busy_duration / interval length, 0..1: 1 means this worker never slept.
  [[nodiscard]] double busy_ratio(std::chrono::nanoseconds elapsed) const noexcept {
    return elapsed.count() <= 0
               ? 0.0
               : static_cast<double>(busy_duration.count()) / static_cast<double>(elapsed.count());
  }
};

/// A runtime's scheduler figures over one interval. Counts and durations
/// are for the interval; depths and thread counts are gauges at its end.
struct RuntimeMetrics {
  std::size_t workers_count = 0;     ///< worker threads (1 for current_thread)
  std::size_t live_tasks_count = 0;  ///< spawned tasks not yet finished (gauge)

  std::uint64_t total_park_count = 0, max_park_count = 0, min_park_count = 0;
  std::uint64_t total_noop_count = 0, max_noop_count = 0, min_noop_count = 0;
  std::uint64_t total_steal_count = 0, max_steal_count = 0, min_steal_count = 0;
  std::uint64_t total_steal_operations = 0, max_steal_operations = 0, min_steal_operations = 0;
  /// Tasks scheduled from outside the workers (spawns and wakes from other threads).
  std::uint64_t num_remote_schedules = 0;
  std::uint64_t total_local_schedule_count = 0, max_local_schedule_count = 0,
                min_local_schedule_count = 0;
  std::uint64_t total_overflow_count = 0, max_overflow_count = 0, min_overflow_count = 0;
  std::uint64_t total_polls_count = 0, max_polls_count = 0, min_polls_count = 0;
  std::chrono::nanoseconds total_busy_duration{0}, max_busy_duration{0}, min_busy_duration{0};
  /// Tasks waiting in the shared injection queue (gauge). Growing: the
  /// workers do not keep up with spawns and wakes from outside.
  std::size_t global_queue_depth = 0;
  std::size_t total_local_queue_depth = 0, max_local_queue_depth = 0, min_local_queue_depth = 0;
  /// Blocking pool: jobs waiting for a thread, threads, idle threads (gauges).
  /// A queue that does not drain while threads == max_blocking_threads
  /// means the pool is saturated.
  std::size_t blocking_queue_depth = 0;
  std::size_t blocking_threads_count = 0;
  std::size_t idle_blocking_threads_count = 0;
  /// Polls ended by the cooperative budget (all workers).
  std::uint64_t budget_forced_yield_count = 0;
  /// I/O and timer completions run by the workers.
  std::uint64_t io_driver_ready_count = 0;
  /// Length of the interval.
  std::chrono::nanoseconds elapsed{0};

  // ---- spindle's additions ------------------------------------------------
  std::vector<WorkerMetrics> workers;           ///< per worker, indexed by worker
  std::uint64_t spawned_tasks_count = 0;        ///< tasks spawned in the interval
  std::uint64_t unhandled_exception_count = 0;  ///< exceptions of detached tasks nobody awaited
  /// Every task's poll durations and wake → poll delays in the interval;
  /// empty unless the runtime was built with poll_timing(true).
  Histogram poll_duration_histogram;
  Histogram scheduled_delay_histogram;

  /// total_busy_duration / (elapsed × workers_count), 0..1. 1 means every
  /// worker was busy for the whole interval (polling, scheduling, I/O):
  /// the runtime is saturated and tasks queue up.
  [[nodiscard]] double busy_ratio() const noexcept {
    const double capacity =
        static_cast<double>(elapsed.count()) * static_cast<double>(workers_count);
    return capacity <= 0 ? 0.0 : static_cast<double>(total_busy_duration.count()) / capacity;
  }
  /// Polls per park: how much work a worker finds each time it wakes up.
  /// Low values mean workers wake often for little (many noops).
  [[nodiscard]] double mean_polls_per_park() const noexcept {
    return total_park_count == 0
               ? 0.0
               : static_cast<double>(total_polls_count) / static_cast<double>(total_park_count);
  }
};

class RuntimeIntervals;

/// Reads a runtime's scheduler counters. Keeps the runtime's shared state
/// alive (not its workers): after shutdown it reads the final values.
class RuntimeMonitor {
 public:
  explicit RuntimeMonitor(Handle runtime);
  /// Successive intervals; the first covers the time since the runtime was built.
  [[nodiscard]] RuntimeIntervals intervals() const;
  /// The raw counters now (what intervals subtract).
  [[nodiscard]] RuntimeCounters counters() const;
  [[nodiscard]] const Handle& handle() const noexcept { return runtime_; }

  /// The metrics between two counter snapshots of the same runtime.
  static RuntimeMetrics between(const RuntimeCounters& earlier, const RuntimeCounters& later);

 private:
  Handle runtime_;  // the observed runtime
};

/// Successive RuntimeMetrics (see RuntimeMonitor::intervals).
class RuntimeIntervals {
 public:
  /// The metrics since the previous call (the first: since the runtime was built).
  RuntimeMetrics next();

 private:
  friend class RuntimeMonitor;
  RuntimeIntervals(Handle runtime, RuntimeCounters start);

  Handle runtime_;            // the observed runtime
  RuntimeCounters previous_;  // the snapshot at the previous call
};

}  // namespace spindle
