// spindle::diagnose (see spindle/monitor/diagnose.hpp).

#include "spindle/monitor/diagnose.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

namespace spindle {

std::string_view cause_name(Cause c) noexcept {
  switch (c) {
    case Cause::kNone:
      return "none";
    case Cause::kPoll:
      return "poll";
    case Cause::kScheduled:
      return "scheduled";
    case Cause::kIdle:
      return "idle";
    case Cause::kFirstPoll:
      return "first_poll";
  }
  return "none";
}

namespace {

std::string percent(double ratio) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f%%", 100.0 * ratio);
  return buf;
}

std::string advice_for(const Diagnosis& d, const TaskMetrics& m) {
  switch (d.cause) {
    case Cause::kNone:
      return "no task time in this period";
    case Cause::kPoll: {
      std::string a = "the tasks hold their worker";
      if (m.total_poll_count != 0) a += " (slow polls " + percent(m.slow_poll_ratio()) + ")";
      a += ": move blocking calls (file or socket I/O without co_await, sleeps, waiting on "
           "std::mutex) to co_await spindle::spawn_blocking(...), and break long loops with "
           "co_await spindle::yield_now()";
      return a;
    }
    case Cause::kScheduled:
      if (d.culprit.empty()) {
        return "the tasks wait for a worker: the workers are busy elsewhere; shorten other "
               "tasks' polls (spawn_blocking, yield_now) or add workers (a flight recorder, "
               "Runtime::Builder::flight_recorder, names who held them)";
      }
      if (d.culprit == "runtime") {
        return "the tasks wait for a worker that is busy with its own work (I/O, timers, "
               "stealing, waking up): add workers, or spread the I/O over more of them";
      }
      return "the tasks wait for a worker held by \"" + d.culprit + "\" (" +
             percent(d.culprit_share) +
             " of the delay): make its polls short (spawn_blocking for blocking calls, "
             "yield_now in long loops), or add workers";
    case Cause::kIdle:
      return "the tasks wait for events outside the runtime (timers, I/O, a downstream, a "
             "lock's queue): the runtime is not what slows them; look downstream";
    case Cause::kFirstPoll:
      return "new tasks wait for their first poll: spawn bursts queue up behind busy workers; "
             "add workers or spawn fewer at once";
  }
  return {};
}

}  // namespace

Diagnosis diagnose(const TaskMetrics& m) {
  const std::array<std::pair<Cause, std::chrono::nanoseconds>, 4> times = {{
      {Cause::kPoll, m.total_poll_duration},
      {Cause::kScheduled, m.total_scheduled_duration},
      {Cause::kIdle, m.total_idle_duration},
      {Cause::kFirstPoll, m.total_first_poll_delay},
  }};
  std::chrono::nanoseconds total{0};
  std::size_t best = 0;
  for (std::size_t i = 0; i < times.size(); ++i) {
    total += times[i].second;
    if (times[i].second > times[best].second) best = i;  // ties: the first listed
  }
  Diagnosis d;
  if (total.count() <= 0) {
    d.share = std::numeric_limits<double>::quiet_NaN();
    d.advice = advice_for(d, m);
    return d;
  }
  d.cause = times[best].first;
  d.time = times[best].second;
  d.share = static_cast<double>(d.time.count()) / static_cast<double>(total.count());
  if (d.cause == Cause::kScheduled && !m.delay_blame.empty()) {
    std::chrono::nanoseconds blamed{0};
    for (const DelayBlame& b : m.delay_blame) blamed += b.duration;
    d.culprit = m.delay_blame.front().culprit;
    if (blamed.count() > 0) {
      d.culprit_share = static_cast<double>(m.delay_blame.front().duration.count()) /
                        static_cast<double>(blamed.count());
    }
  }
  d.advice = advice_for(d, m);
  return d;
}

std::string Diagnosis::describe() const {
  if (cause == Cause::kNone) return "none: " + advice;
  return std::string(cause_name(cause)) + " " + percent(share) + " of the time: " + advice;
}

}  // namespace spindle
