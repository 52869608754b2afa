// spindle/monitor/task_metrics.hpp — what a TaskMonitor reports.
//
//   spindle::TaskMetrics      totals over a monitor's tasks (cumulative, or one interval),
//                             fields named as in tokio-metrics, plus distributions
//   spindle::PerTaskMetrics   one instrumented task's own figures
//
// The time of a root task splits into three kinds, and each field below
// belongs to one of them (the events that separate them, and their order,
// are in spindle/runtime/hooks.hpp):
//   - busy (polled):   a worker is running the task's code. Long polls mean
//     blocking or CPU-heavy code inside the task.
//   - scheduled:       the task was woken and waits in a queue for a worker.
//     Long delays mean the workers are saturated, or one of them is stuck
//     in someone else's long poll.
//   - idle:            the task waits for an event (I/O, a timer, a channel,
//     another task). Long idle means a slow peer or downstream, or a sleep.
// A wake during the task's own poll (yield_now) starts its scheduled time
// at the end of that poll, so the three never overlap; the first poll's
// delay (from instrument() to the first poll) is reported separately.
//
// "Why are my tasks slow?" (the tokio-metrics procedure, with spindle's
// fields): compare mean_poll_duration(), mean_scheduled_duration() and
// mean_idle_duration(); then look at the distribution of the largest.
//   - slow_poll_ratio() high → some polls run long: find the blocking call
//     or the big loop (spawn_blocking / yield_now); the stall detector
//     names tasks whose poll exceeds its threshold while it happens.
//   - long_delay_ratio() high → tasks wait for a worker: too few workers
//     for the load, or polls of other tasks are slow (check their monitors
//     and RuntimeMetrics::busy_ratio()).
//   - idle dominates → the task is waiting on something outside the runtime.
//
// Empty periods: as in tokio-metrics, a ratio whose denominator is 0 (no
// polls, no scheduled delays, no wakes in the period) is NaN, 0/0, not 0: "no
// data" is not "no slow polls". A mean over no events is 0 ns (tokio-metrics'
// Duration::ZERO). Test a ratio with std::isnan(), or check its count first,
// before comparing it, printing it or exporting it.
//
// Thread safety: plain value types.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "spindle/runtime/histogram.hpp"
#include "spindle/runtime/hooks.hpp"

namespace spindle {

/// Who held the worker while the monitor's tasks waited to be scheduled:
/// one culprit's share of the long scheduled delays (see
/// TaskMetrics::delay_blame).
struct DelayBlame {
  /// The name of the TaskMonitor whose tasks were polled meanwhile;
  /// "unmonitored" for tasks without a monitor; "runtime" for the worker's
  /// own time outside polls (I/O checks, stealing, parking, the kernel's
  /// wake-up); "unrecorded" for a part older than the flight recorder keeps.
  std::string culprit;
  std::chrono::nanoseconds duration{0};  ///< its share of the delays
  friend bool operator==(const DelayBlame&, const DelayBlame&) = default;
};

/// Totals over the tasks of one TaskMonitor. Every `total_*` field is a sum
/// over the period the value covers (since the monitor was created for
/// TaskMonitor::cumulative(), or since the previous interval for
/// TaskIntervals::next()). Durations are nanoseconds.
struct TaskMetrics {
  /// Tasks instrumented (instrument() called). Recorded at instrument().
  std::uint64_t instrumented_count = 0;
  /// Tasks whose frame was destroyed: finished, aborted, or destroyed at
  /// shutdown. instrumented_count - dropped_count tasks are alive.
  std::uint64_t dropped_count = 0;
  /// Tasks polled for the first time.
  std::uint64_t first_poll_count = 0;
  /// Sum of delays from instrument() to the first poll. A rise means new
  /// tasks wait long to start: the runtime is saturated.
  std::chrono::nanoseconds total_first_poll_delay{0};
  /// Times a task went idle and was woken again (recorded at the wake).
  std::uint64_t total_idled_count = 0;
  /// Sum of idle durations (end of a poll → the wake). A rise means tasks
  /// wait longer on their I/O, timers, channels or other tasks.
  std::chrono::nanoseconds total_idle_duration{0};
  /// The longest single idle duration that ended in the period: measured,
  /// not a histogram bound, for the cumulative values and for each interval
  /// alike. (An interval's maximum saturates at 2^48 ns, about 78 hours; the
  /// cumulative value does not.) Intervals' maxima do not add up: the
  /// maximum over several intervals is the largest of theirs.
  std::chrono::nanoseconds max_idle_duration{0};
  /// Times a woken task was polled again (recorded at that poll).
  std::uint64_t total_scheduled_count = 0;
  /// Sum of wake → poll delays. A rise means tasks wait for a worker.
  std::chrono::nanoseconds total_scheduled_duration{0};
  /// Polls (recorded when each poll ends).
  std::uint64_t total_poll_count = 0;
  /// Sum of poll durations: time the tasks' own code ran on workers.
  std::chrono::nanoseconds total_poll_duration{0};
  /// Polls shorter than the monitor's slow_poll_threshold, and their sum.
  std::uint64_t total_fast_poll_count = 0;
  std::chrono::nanoseconds total_fast_poll_duration{0};
  /// Polls at least slow_poll_threshold long, and their sum. A rise means
  /// blocking or CPU-heavy code inside these tasks.
  std::uint64_t total_slow_poll_count = 0;
  std::chrono::nanoseconds total_slow_poll_duration{0};
  /// Scheduled delays shorter than long_delay_threshold, and their sum.
  std::uint64_t total_short_delay_count = 0;
  std::chrono::nanoseconds total_short_delay_duration{0};
  /// Scheduled delays at least long_delay_threshold long, and their sum. A
  /// rise means workers are busy elsewhere.
  std::uint64_t total_long_delay_count = 0;
  std::chrono::nanoseconds total_long_delay_duration{0};

  // ---- spindle's additions ------------------------------------------------
  /// Wakes of the tasks (from anywhere), and those that came from inside
  /// the task's own poll (yield_now, waking itself): tokio-console's
  /// self-wake lint. A high self_wake_ratio() means tasks spin through the
  /// scheduler instead of waiting for real events.
  std::uint64_t total_wake_count = 0;
  std::uint64_t total_self_wake_count = 0;
  /// Polls that ran past the monitor's stall threshold (default 100 ms)
  /// without yielding: tokio-console's never-yielded lint.
  std::uint64_t total_never_yielded_count = 0;
  /// Distributions over the same period (bucket bounds in histogram.hpp).
  Histogram poll_duration_histogram;
  Histogram scheduled_delay_histogram;
  Histogram idle_duration_histogram;
  /// Delay blame: each long scheduled delay (at least long_delay_threshold)
  /// split by what the worker that finally polled the task ran in the
  /// meantime, summed per culprit over the period, largest first. The
  /// shares of one delay add up to it, so the durations here add up to
  /// total_long_delay_duration (for the delays that had a recorder). Needs
  /// the runtime's flight recorder (Runtime::Builder::flight_recorder);
  /// empty without one. Each worker keeps up to 16 culprits per monitor;
  /// more go to "other".
  std::vector<DelayBlame> delay_blame;
  /// Length of the period these values cover.
  std::chrono::nanoseconds elapsed{0};

  // ---- derived values: means are 0 ns, ratios NaN, when the count is 0 -----
  [[nodiscard]] std::chrono::nanoseconds mean_first_poll_delay() const noexcept {
    return mean(total_first_poll_delay, first_poll_count);
  }
  [[nodiscard]] std::chrono::nanoseconds mean_idle_duration() const noexcept {
    return mean(total_idle_duration, total_idled_count);
  }
  [[nodiscard]] std::chrono::nanoseconds mean_scheduled_duration() const noexcept {
    return mean(total_scheduled_duration, total_scheduled_count);
  }
  [[nodiscard]] std::chrono::nanoseconds mean_poll_duration() const noexcept {
    return mean(total_poll_duration, total_poll_count);
  }
  [[nodiscard]] std::chrono::nanoseconds mean_fast_poll_duration() const noexcept {
    return mean(total_fast_poll_duration, total_fast_poll_count);
  }
  [[nodiscard]] std::chrono::nanoseconds mean_slow_poll_duration() const noexcept {
    return mean(total_slow_poll_duration, total_slow_poll_count);
  }
  [[nodiscard]] std::chrono::nanoseconds mean_short_delay_duration() const noexcept {
    return mean(total_short_delay_duration, total_short_delay_count);
  }
  [[nodiscard]] std::chrono::nanoseconds mean_long_delay_duration() const noexcept {
    return mean(total_long_delay_duration, total_long_delay_count);
  }
  /// Slow polls / all polls, 0..1; NaN when there was no poll (as in
  /// tokio-metrics).
  [[nodiscard]] double slow_poll_ratio() const noexcept {
    return ratio(total_slow_poll_count, total_poll_count);
  }
  /// Long delays / all scheduled delays, 0..1; NaN when no task was
  /// scheduled (as in tokio-metrics).
  [[nodiscard]] double long_delay_ratio() const noexcept {
    return ratio(total_long_delay_count, total_scheduled_count);
  }
  /// Self-wakes / all wakes, 0..1; NaN when no task was woken (like the
  /// two ratios above).
  [[nodiscard]] double self_wake_ratio() const noexcept {
    return ratio(total_self_wake_count, total_wake_count);
  }

 private:
  static std::chrono::nanoseconds mean(std::chrono::nanoseconds total, std::uint64_t n) noexcept {
    return n == 0 ? std::chrono::nanoseconds(0)
                  : std::chrono::nanoseconds(total.count() / static_cast<std::int64_t>(n));
  }
  /// a / b; NaN for b == 0 (0/0: the period has no data), whatever a is.
  static double ratio(std::uint64_t a, std::uint64_t b) noexcept {
    return b == 0 ? std::numeric_limits<double>::quiet_NaN()
                  : static_cast<double>(a) / static_cast<double>(b);
  }
};

/// One instrumented task's own figures (spindle::task_metrics(handle), or
/// the monitor's on_task_finished callback). Values are as of the last
/// completed poll.
struct PerTaskMetrics {
  TaskId id = 0;                                 ///< the task (0 before it was spawned)
  std::string monitor;                           ///< its monitor's name
  SourceLocation location;                       ///< where it was spawned
  std::uint64_t polls = 0;                       ///< polls so far
  std::chrono::nanoseconds busy{0};              ///< total poll time
  std::chrono::nanoseconds scheduled{0};         ///< total wake → poll delay
  std::chrono::nanoseconds idle{0};              ///< total idle time
  std::chrono::nanoseconds first_poll_delay{0};  ///< instrument() → first poll (0 until then)
  std::chrono::nanoseconds longest_poll{0};      ///< its slowest poll
  bool finished = false;                         ///< its frame is gone (done or cancelled)
  bool cancelled = false;                        ///< it was aborted or destroyed at shutdown
};

}  // namespace spindle
