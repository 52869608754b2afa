// spindle/monitor/diagnose.hpp — a verdict per monitor: why are my tasks slow?
//
//   spindle::Cause       where a monitor's tasks spend most of their time
//   spindle::Diagnosis   that cause, its share, the culprit, one line of advice
//   spindle::diagnose()  the verdict for a TaskMetrics (cumulative or one interval)
//
// The time of the monitor's tasks splits into four (task_metrics.hpp):
//   poll        in polls (busy)                      total_poll_duration
//   scheduled   woken, waiting for a worker          total_scheduled_duration
//   idle        waiting for an event                 total_idle_duration
//   first poll  spawned, waiting for the first poll  total_first_poll_delay
// The verdict is the largest of the four, with its share of their sum, and
// the seed talk's remedy for it: a task that holds its worker (poll) needs
// spawn_blocking for blocking calls and yield_now in long loops; tasks that
// wait for a worker (scheduled) are starved by whoever held it — the top
// culprit of delay_blame — or need more workers; tasks that wait on events
// (idle) are not slowed by the runtime: look downstream. Prometheus
// computes the same verdict from the exported series (deploy/prometheus:
// spindle:task_time_share:ratio{monitor, cause}).
//
// Example:
//   spindle::Diagnosis d = spindle::diagnose(mon.intervals().next());
//   if (d.cause == spindle::Cause::kPoll && d.share > 0.5) log(d.describe());
//   // "poll 87% of the time: the tasks hold their worker (slow polls 92%) ..."
//
// Thread safety: a pure function of its argument.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "spindle/monitor/task_metrics.hpp"

namespace spindle {

/// Where the tasks spend most of their time.
enum class Cause {
  kNone,       ///< no time recorded in the period (nothing ran)
  kPoll,       ///< in their own polls: blocking or CPU-heavy code in the tasks
  kScheduled,  ///< woken but waiting for a worker: the workers are busy elsewhere
  kIdle,       ///< waiting for an event outside the runtime (timer, I/O, a downstream)
  kFirstPoll,  ///< spawned but not yet polled: spawn bursts, or too few workers
};

/// "poll", "scheduled", "idle", "first_poll", "none": the `cause` label of
/// spindle:task_time_share:ratio.
[[nodiscard]] std::string_view cause_name(Cause c) noexcept;

/// The verdict for one monitor over one period.
struct Diagnosis {
  Cause cause = Cause::kNone;
  /// The cause's share of the four times, 0..1; NaN for kNone.
  double share = 0;
  /// The cause's time in the period.
  std::chrono::nanoseconds time{0};
  /// kScheduled: the culprit that held the workers longest during the long
  /// delays (delay_blame's first entry: a monitor's name, "unmonitored",
  /// "runtime", ...); empty otherwise or without a flight recorder.
  std::string culprit;
  /// That culprit's share of the blamed delay time, 0..1 (0 without one).
  double culprit_share = 0;
  /// One line of advice in the seed talk's terms.
  std::string advice;
  /// One line: cause, share, culprit and advice.
  [[nodiscard]] std::string describe() const;
};

/// The verdict for `m` (TaskMonitor::cumulative() or an interval). Ties go
/// to the cause listed first in Cause (poll, scheduled, idle, first poll).
[[nodiscard]] Diagnosis diagnose(const TaskMetrics& m);

}  // namespace spindle
