// spindle/monitor/task_monitor.hpp — measuring a group of tasks, as tokio-metrics' TaskMonitor.
//
//   spindle::TaskMonitor           instruments tasks and reads their totals and distributions
//   spindle::TaskMonitor::Builder  name and thresholds
//   spindle::TaskIntervals         successive deltas of a monitor's metrics
//   spindle::task_metrics(handle)  one instrumented task's own figures, from its JoinHandle
//
// Example:
//   auto checkout = spindle::TaskMonitor::Builder()
//                       .name("checkout")
//                       .slow_poll_threshold(std::chrono::microseconds(50))
//                       .long_delay_threshold(std::chrono::microseconds(50))
//                       .build();
//   auto h = rt.spawn(checkout.instrument(handle_checkout(request)));
//   ...
//   spindle::TaskMetrics total = checkout.cumulative();
//   auto it = checkout.intervals();
//   for (;;) {
//     co_await spindle::sleep(std::chrono::seconds(1));
//     spindle::TaskMetrics m = it.next();          // the last second
//     log(m.mean_poll_duration(), m.scheduled_delay_histogram.quantile(0.99));
//   }
//
// How it is measured: instrument() attaches a small per-task record
// (TaskHooks) to the task; the polling worker calls it at the start and the
// end of each poll with the clock reading it took for that boundary (tasks
// that are not instrumented are never timed). A wake, from whatever thread,
// only stamps the task's cell; the next poll's start accounts the idle time
// and the scheduled delay it ended. The record adds each duration to
// counters and histograms kept per worker in cache-line aligned blocks that
// only that worker writes (relaxed stores, no read-modify-write, no shared
// cache line); threads that poll nothing (the blocking pool, foreign
// wakers) get no block. Readers sum the blocks; reading never blocks the
// workers. Only instrument() and the end of a task off the workers (a
// request built on the main thread, shutdown) add to a shared atomic.
//
// Lifetime: a TaskMonitor is a cheap, copyable handle to shared state that
// lives as long as any copy, interval iterator or instrumented task.
//
// Thread safety: all member functions are safe to call from any thread,
// concurrently with the instrumented tasks running on every worker.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "spindle/monitor/task_metrics.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/hooks.hpp"
#include "spindle/runtime/join_handle.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

namespace detail {
class MonitorCore;
struct IntervalReader;
/// Reserves a per-task record for `core` (counts the instrumentation); the
/// spawn builds it inside the task's cell (HooksRecipe).
PendingHooks reserve_task_probe(MonitorCore* core);
/// A new per-task record for `core` in a block of its own (counts the
/// instrumentation).
TaskHooks* new_task_probe(MonitorCore* core);
/// The figures of a record made by new_task_probe (the first of several
/// monitors, see add_probe), or nullopt for other hooks.
std::optional<PerTaskMetrics> probe_metrics(const TaskHooks* hooks);
/// `existing` (a task's hooks) with `added` attached too: every event goes to
/// both (a fan-out, which later probes join). Takes ownership of both, and
/// releases both if it throws (std::bad_alloc).
TaskHooks* add_probe(TaskHooks* existing, TaskHooks* added);
}  // namespace detail

class TaskIntervals;

class TaskMonitor {
 public:
  class Builder;

  /// A monitor with the default settings and no name.
  TaskMonitor();
  TaskMonitor(const TaskMonitor& other) noexcept;
  TaskMonitor(TaskMonitor&& other) noexcept;
  TaskMonitor& operator=(TaskMonitor other) noexcept;
  ~TaskMonitor();

  /// Attaches this monitor to `task`; spawn the result like a Task (the
  /// first-poll delay counts from here), or co_await it inside a task to
  /// measure it inline, without a spawn: `co_await mon.instrument(call())`
  /// (see HookedTask::operator co_await; its polls are part of the
  /// caller's, its scheduled and idle time the caller's). Precondition:
  /// task.valid(). The task's record is only reserved here: spawning builds
  /// it inside the task's cell, so that an instrumented task allocates no
  /// more than a plain one.
  template <class T>
  HookedTask<T> instrument(Task<T> task) const {
    return HookedTask<T>(std::move(task), detail::reserve_task_probe(core_));
  }
  /// Attaches this monitor as well to a task another monitor instrumented:
  /// one task, several monitors (a route's and a service-wide one). Each
  /// monitor counts the task and its polls; the task is named after the
  /// first (innermost) monitor in stall reports, traces and delay blame.
  template <class T>
  HookedTask<T> instrument(HookedTask<T> task) const {
    // Both records in blocks of their own (a fan-out calls both): build
    // the inner one, then this one; a throw leaves `task` owning its part.
    (void)task.hooks();
    TaskHooks* probe = detail::new_task_probe(core_);
    auto [inner, hooks] = task.release();  // built already: does not throw
    return HookedTask<T>(std::move(inner),
                         hooks != nullptr ? detail::add_probe(hooks, probe) : probe);
  }
  /// Attaches this monitor to `f()`, keeping the callable `f` (a coroutine
  /// lambda and its captures) alive inside the task for as long as it runs
  /// (see spindle::spawn(callable)): `rt.spawn(mon.instrument([s] () -> Task<T> {...}))`.
  /// Spawning the HookedCallable builds the callable and the record inside
  /// the task's cell and calls it there, so that the task is two blocks, as
  /// a plain spawned Task. Converted to a HookedTask (implicitly, to
  /// co_await it, or to stack another monitor) the callable moves into a
  /// frame of its own.
  template <spindle::detail::TaskFactory F>
  HookedCallable<std::decay_t<F>> instrument(F&& f) const {
    std::decay_t<F> own(std::forward<F>(f));  // may throw: nothing reserved yet
    return HookedCallable<std::decay_t<F>>(std::move(own), detail::reserve_task_probe(core_));
  }
  /// Stacks this monitor on an instrumented callable (as on a HookedTask).
  template <class F>
  HookedTask<typename HookedCallable<F>::value_type> instrument(HookedCallable<F> c) const {
    return instrument(std::move(c).to_task());
  }

  /// Totals and distributions since the monitor was created.
  [[nodiscard]] TaskMetrics cumulative() const;
  /// An iterator whose next() returns the metrics since its previous call
  /// (the first call: since the monitor was created).
  [[nodiscard]] TaskIntervals intervals() const;

  [[nodiscard]] const std::string& name() const noexcept;
  [[nodiscard]] std::chrono::nanoseconds slow_poll_threshold() const noexcept;
  [[nodiscard]] std::chrono::nanoseconds long_delay_threshold() const noexcept;
  [[nodiscard]] std::chrono::nanoseconds stall_threshold() const noexcept;
  /// Process-unique id (the TaskHooks group id of its tasks).
  [[nodiscard]] std::uint64_t id() const noexcept;

  /// Instrumented tasks alive now (instrumented, not yet dropped).
  [[nodiscard]] std::uint64_t live_tasks() const;

  friend bool operator==(const TaskMonitor& a, const TaskMonitor& b) noexcept {
    return a.core_ == b.core_;
  }

 private:
  explicit TaskMonitor(detail::MonitorCore* adopted) noexcept : core_(adopted) {}

  detail::MonitorCore* core_;  // counted reference to the shared state
};

/// Settings of a TaskMonitor; build() checks them.
class TaskMonitor::Builder {
 public:
  Builder();
  /// Shown in dumps, stall reports and the exporter's `monitor` label.
  Builder& name(std::string name);
  /// Polls at least this long count as slow (default 50 µs; > 0).
  Builder& slow_poll_threshold(std::chrono::nanoseconds d);
  /// Scheduled delays at least this long count as long (default 50 µs; > 0).
  Builder& long_delay_threshold(std::chrono::nanoseconds d);
  /// Polls at least this long count as never-yielded (default 100 ms; > 0,
  /// and at least slow_poll_threshold: a never-yielded poll is also slow).
  Builder& stall_threshold(std::chrono::nanoseconds d);
  /// The clock read by instrument() for the first-poll delay: must be the
  /// same clock as the runtime's (Runtime::Builder::clock). Default
  /// spindle::clock_now, the runtime's default.
  Builder& clock(std::function<Instant()> now);
  /// Called with a task's own figures when its frame is destroyed (it
  /// finished or was cancelled), on the thread that destroyed it: e.g. to
  /// log the slowest requests. Must be cheap and must not throw.
  Builder& on_task_finished(std::function<void(const PerTaskMetrics&)> f);
  /// Throws ConfigError naming the first invalid setting: a non-positive
  /// threshold, or a stall_threshold below the slow_poll_threshold.
  [[nodiscard]] TaskMonitor build() const;

 private:
  std::string name_;                                                    // monitor name
  std::chrono::nanoseconds slow_poll_{std::chrono::microseconds(50)};   // slow poll threshold
  std::chrono::nanoseconds long_delay_{std::chrono::microseconds(50)};  // long delay threshold
  std::chrono::nanoseconds stall_{std::chrono::milliseconds(100)};      // never-yielded threshold
  std::function<Instant()> clock_;                                      // injected clock, or empty
  std::function<void(const PerTaskMetrics&)> on_finished_;  // per-task callback, or empty
};

/// Successive deltas of a monitor's metrics (see TaskMonitor::intervals).
/// Each iterator keeps its own previous reading, so several can run side
/// by side. Thread safety: one iterator must not be used by two threads at once.
class TaskIntervals {
 public:
  TaskIntervals(TaskIntervals&&) noexcept;
  TaskIntervals& operator=(TaskIntervals&&) noexcept;
  TaskIntervals(const TaskIntervals&) = delete;
  TaskIntervals& operator=(const TaskIntervals&) = delete;
  ~TaskIntervals();

  /// Metrics since the previous call (since the monitor's creation the
  /// first time). Never blocks the workers (it briefly takes a lock that
  /// only the monitor's readers share). max_idle_duration is the longest
  /// idle that ended in the interval, as measured (see TaskMetrics); a wake
  /// that lands while next() runs may count in this interval or the next.
  /// Throws UsageError on a moved-from iterator.
  TaskMetrics next();

 private:
  friend class TaskMonitor;
  TaskIntervals(detail::MonitorCore* core, TaskMetrics previous);
  void release() noexcept;

  detail::MonitorCore* core_;       // counted reference; null when moved from
  detail::IntervalReader* reader_;  // this iterator's interval maxima, owned by *core_
  TaskMetrics previous_;            // the cumulative reading at the previous call
  bool first_ = true;               // next() not called yet: it covers the monitor's life
};

/// The figures of one instrumented task, read through its JoinHandle while
/// it runs or after it finished; nullopt when the task was not instrumented
/// by a TaskMonitor (or the handle is empty).
template <class T>
std::optional<PerTaskMetrics> task_metrics(const JoinHandle<T>& handle) {
  return detail::probe_metrics(handle.hooks());
}

}  // namespace spindle
