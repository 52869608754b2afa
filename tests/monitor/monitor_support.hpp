// tests/monitor/monitor_support.hpp — shared helpers of the monitor tests.
//
//   spindle::test::ClockedRuntime   a current_thread runtime and its monitors on one ManualClock
//   spindle::test::buckets(h)       a Histogram's non-empty buckets as text, "{93:2 172:1}"
//   spindle::test::diff(a, b)       the fields in which two TaskMetrics / PerTaskMetrics differ
//   spindle::test::plus(a, b)       the field-by-field sum of two interval deltas
//   spindle::test::value/recv/yields/joined  small tasks
//
// Every deterministic test drives a current_thread runtime step by step:
// tasks run only inside block_on, so the test decides what runs when, and
// the one ManualClock moves only when a task or the test advances it. The
// runtime and the monitors read that same clock, so every duration is exact.
//
// Example:
//   spindle::test::ClockedRuntime c;
//   spindle::TaskMonitor mon = c.monitor("checkout");
//   auto h = c.rt.spawn(mon.instrument(spindle::test::value(1)));
//   EXPECT_EQ(c.join(h), 1);
//   EXPECT_EQ(spindle::test::diff(mon.cumulative(), expected), "");
//
// Thread safety: ClockedRuntime is used by the test thread only (its clock
// may be advanced from any thread).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>
#include <string>
#include <utility>

#include "support/manual_clock.hpp"

namespace spindle::test {

// ---- small tasks ---------------------------------------------------------------

/// Finishes at once with `v`.
inline Task<int> value(int v) { co_return v; }

/// Waits for the oneshot's value.
inline Task<int> recv(sync::Receiver<int> rx) { co_return co_await rx; }

/// Yields `n` times (a block_on driver that lets every queued task run).
inline Task<void> yields(int n) {
  for (int i = 0; i < n; ++i) co_await yield_now();
}

/// Awaits the task behind `h` (which must outlive the returned task).
template <class T>
Task<T> joined(JoinHandle<T>* h) {
  co_return co_await *h;
}

/// One poll that lasts `d` by the manual clock.
inline Task<void> busy_for(ManualClock& clock, std::chrono::nanoseconds d) {
  clock.advance(d);
  co_return;
}

/// `rounds` polls, each moving the clock by `per_poll`, with a yield after
/// each (a task that keeps coming back to its worker's queue).
inline Task<void> spin(ManualClock* clock, int rounds, std::chrono::nanoseconds per_poll) {
  for (int i = 0; i < rounds; ++i) {
    clock->advance(per_poll);
    co_await yield_now();
  }
}

// ---- the deterministic setting ---------------------------------------------------

/// A current_thread runtime and monitors that all read one ManualClock;
/// `recorder_events` > 0 gives the runtime a flight recorder (delay blame).
struct ClockedRuntime {
  explicit ClockedRuntime(bool poll_timing = false, std::size_t recorder_events = 0)
      : clock(std::make_shared<ManualClock>()),
        rt(Runtime::Builder()
               .current_thread()
               .clock(clock->source())
               .poll_timing(poll_timing)
               .flight_recorder(recorder_events)
               .build()) {}

  /// A monitor on the manual clock, both thresholds 50 µs (the issue's).
  [[nodiscard]] TaskMonitor::Builder monitor_builder(std::string name) const {
    return TaskMonitor::Builder()
        .name(std::move(name))
        .clock(clock->source())
        .slow_poll_threshold(std::chrono::microseconds(50))
        .long_delay_threshold(std::chrono::microseconds(50));
  }
  [[nodiscard]] TaskMonitor monitor(std::string name) const {
    return monitor_builder(std::move(name)).build();
  }

  /// Runs block_on over a driver that yields `turns` times: every task
  /// queued now gets polled (its followers too, up to `turns` rounds). The
  /// driver is not instrumented and does not move the clock.
  void run_queued(int turns = 8) { rt.block_on(yields(turns)); }

  /// Runs the runtime until the task behind `h` finished; returns its value.
  template <class T>
  T join(JoinHandle<T>& h) {
    return rt.block_on(joined(&h));
  }

  /// An Instant `d` after the clock's start.
  static Instant at(std::chrono::nanoseconds d) { return ManualClock::at(d); }

  std::shared_ptr<ManualClock> clock;  // the one clock
  Runtime rt;                          // current_thread, on `clock`
};

// ---- describing values ---------------------------------------------------------

inline std::string show(std::uint64_t v) { return std::to_string(v); }
inline std::string show(std::chrono::nanoseconds d) { return std::to_string(d.count()) + "ns"; }
/// The non-empty buckets, "{b:count ...}".
inline std::string buckets(const Histogram& h) {
  std::string s = "{";
  for (std::size_t b = 0; b < Histogram::kBuckets; ++b) {
    if (h.bucket_count(b) == 0) continue;
    if (s.size() > 1) s += ' ';
    s += std::to_string(b) + ":" + std::to_string(h.bucket_count(b));
  }
  return s + "}";
}
inline std::string show(const Histogram& h) { return buckets(h) + " sum " + show(h.sum()); }

/// Calls `f(name, member pointer)` for every TaskMetrics field that adds up
/// over intervals (everything but max_idle_duration).
template <class F>
void for_each_summable(F&& f) {
  f("instrumented_count", &TaskMetrics::instrumented_count);
  f("dropped_count", &TaskMetrics::dropped_count);
  f("first_poll_count", &TaskMetrics::first_poll_count);
  f("total_first_poll_delay", &TaskMetrics::total_first_poll_delay);
  f("total_idled_count", &TaskMetrics::total_idled_count);
  f("total_idle_duration", &TaskMetrics::total_idle_duration);
  f("total_scheduled_count", &TaskMetrics::total_scheduled_count);
  f("total_scheduled_duration", &TaskMetrics::total_scheduled_duration);
  f("total_poll_count", &TaskMetrics::total_poll_count);
  f("total_poll_duration", &TaskMetrics::total_poll_duration);
  f("total_fast_poll_count", &TaskMetrics::total_fast_poll_count);
  f("total_fast_poll_duration", &TaskMetrics::total_fast_poll_duration);
  f("total_slow_poll_count", &TaskMetrics::total_slow_poll_count);
  f("total_slow_poll_duration", &TaskMetrics::total_slow_poll_duration);
  f("total_short_delay_count", &TaskMetrics::total_short_delay_count);
  f("total_short_delay_duration", &TaskMetrics::total_short_delay_duration);
  f("total_long_delay_count", &TaskMetrics::total_long_delay_count);
  f("total_long_delay_duration", &TaskMetrics::total_long_delay_duration);
  f("total_wake_count", &TaskMetrics::total_wake_count);
  f("total_self_wake_count", &TaskMetrics::total_self_wake_count);
  f("total_never_yielded_count", &TaskMetrics::total_never_yielded_count);
  f("poll_duration_histogram", &TaskMetrics::poll_duration_histogram);
  f("scheduled_delay_histogram", &TaskMetrics::scheduled_delay_histogram);
  f("idle_duration_histogram", &TaskMetrics::idle_duration_histogram);
  f("elapsed", &TaskMetrics::elapsed);
}

/// The fields in which `a` and `b` differ, "name: a != b; ..."; empty when equal.
inline std::string diff(const TaskMetrics& a, const TaskMetrics& b) {
  std::string out;
  auto check = [&](const char* name, auto member) {
    if (a.*member == b.*member) return;
    if (!out.empty()) out += "; ";
    out += std::string(name) + ": " + show(a.*member) + " != " + show(b.*member);
  };
  for_each_summable(check);
  check("max_idle_duration", &TaskMetrics::max_idle_duration);
  return out;
}

/// The sum of two consecutive interval deltas (max_idle_duration: the larger).
inline TaskMetrics plus(const TaskMetrics& a, const TaskMetrics& b) {
  TaskMetrics s = a;
  for_each_summable([&](const char*, auto member) { s.*member = a.*member + b.*member; });
  s.max_idle_duration = std::max(a.max_idle_duration, b.max_idle_duration);
  return s;
}

inline bool same_location(const SourceLocation& a, const SourceLocation& b) {
  return std::strcmp(a.file_name(), b.file_name()) == 0 && a.line() == b.line() &&
         std::strcmp(a.function_name(), b.function_name()) == 0;
}

inline std::string show(const SourceLocation& l) {
  return std::string(l.file_name()) + ":" + std::to_string(l.line()) + " " + l.function_name();
}

/// The fields in which two PerTaskMetrics differ; empty when equal.
inline std::string diff(const PerTaskMetrics& a, const PerTaskMetrics& b) {
  std::string out;
  auto note = [&](const char* name, const std::string& x, const std::string& y) {
    if (x == y) return;
    if (!out.empty()) out += "; ";
    out += std::string(name) + ": " + x + " != " + y;
  };
  note("id", show(a.id), show(b.id));
  note("monitor", a.monitor, b.monitor);
  note("location", show(a.location), show(b.location));
  note("polls", show(a.polls), show(b.polls));
  note("busy", show(a.busy), show(b.busy));
  note("scheduled", show(a.scheduled), show(b.scheduled));
  note("idle", show(a.idle), show(b.idle));
  note("first_poll_delay", show(a.first_poll_delay), show(b.first_poll_delay));
  note("longest_poll", show(a.longest_poll), show(b.longest_poll));
  note("finished", a.finished ? "true" : "false", b.finished ? "true" : "false");
  note("cancelled", a.cancelled ? "true" : "false", b.cancelled ? "true" : "false");
  return out;
}

/// True when `file` (a __FILE__ or SourceLocation file name) ends with `suffix`.
inline bool ends_with(const std::string& file, const std::string& suffix) {
  return file.size() >= suffix.size() &&
         file.compare(file.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace spindle::test
