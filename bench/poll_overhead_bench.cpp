// poll_overhead: what instrumenting a task costs per poll, with nothing else in
// the way. One task on a current_thread runtime yields kPolls times; the time per
// poll of the same loop plain, under a TaskMonitor, and under hooks that do
// nothing (the runtime's share: the clock reading and the hook calls) is
// reported as ns_per_poll, and the differences between the rows are the costs.
//
//   poll_overhead/spindle/current_thread             no hooks
//   poll_overhead/spindle_noop_hooks/current_thread  TaskHooks whose calls do nothing
//   poll_overhead/spindle_monitored/current_thread   TaskMonitor::instrument
//
// Single-threaded on purpose: no stealing, no cache-line traffic between
// workers, so the difference is the instrumentation's own instructions (the
// yield_many/spindle_monitored shape shows the cost with two workers).

#include <benchmark/benchmark.h>

#include <cstdint>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>

namespace {

constexpr int kPolls = 100'000;

spindle::Task<void> yielder(int n) {
  for (int i = 0; i < n; ++i) co_await spindle::yield_now();
}

/// block_on's root: spawns the measured task and awaits it (2 polls of its own,
/// uninstrumented, against the task's kPolls + 1).
template <class Spawnable>
spindle::Task<void> run(Spawnable task) {
  co_await spindle::spawn(std::move(task));
}

/// Hooks that accept every call and do nothing with it.
class NoopHooks final : public spindle::TaskHooks {
 public:
  void on_spawn(const spindle::TaskInfo&, spindle::Instant) noexcept override {}
  void on_poll_start(const spindle::PollStart&) noexcept override {}
  void on_poll_end(spindle::Instant, bool) noexcept override {}
  void on_drop(bool) noexcept override {}
  void on_release() noexcept override { delete this; }
};

enum class Variant { kPlain, kNoopHooks, kMonitored };

void poll_overhead(benchmark::State& state, Variant variant) {
  auto rt = spindle::Runtime::Builder().current_thread().build();
  spindle::TaskMonitor monitor;
  for (auto _ : state) {
    spindle::Task<void> task = yielder(kPolls);
    switch (variant) {
      case Variant::kPlain:
        rt.block_on(run(std::move(task)));
        break;
      case Variant::kNoopHooks:
        rt.block_on(run(spindle::HookedTask<void>(std::move(task), new NoopHooks())));
        break;
      case Variant::kMonitored:
        rt.block_on(run(monitor.instrument(std::move(task))));
        break;
    }
  }
  const double polls = static_cast<double>(state.iterations()) * (kPolls + 1);
  state.counters["ns_per_poll"] =
      benchmark::Counter(polls, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  if (variant == Variant::kMonitored) {
    const spindle::TaskMetrics m = monitor.cumulative();
    if (static_cast<double>(m.total_poll_count) != polls) {
      state.SkipWithError("poll_overhead: the monitor did not see every poll");
    }
  }
}

BENCHMARK_CAPTURE(poll_overhead, spindle, Variant::kPlain)
    ->Name("poll_overhead/spindle/current_thread")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(poll_overhead, spindle_noop_hooks, Variant::kNoopHooks)
    ->Name("poll_overhead/spindle_noop_hooks/current_thread")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(poll_overhead, spindle_monitored, Variant::kMonitored)
    ->Name("poll_overhead/spindle_monitored/current_thread")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
