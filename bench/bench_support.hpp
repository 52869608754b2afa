// bench/bench_support.hpp — what spindle-bench's sources share.
//
//   Latch              counts tasks down; the one that reaches zero releases the
//                      waiting thread (every iteration of every implementation
//                      ends this way)
//   SchedulerCounters  reports a spindle runtime's parks, noops, steals and
//                      overflows per iteration as benchmark counters
//
// Latch: arm() and wait() are called by the benchmark thread, count_down() by
// tasks on any thread. SchedulerCounters: made before the timed loop, report()
// after it, both on the benchmark thread.
#pragma once

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <semaphore>
#include <spindle/runtime.hpp>

namespace spindle_bench {

class Latch {
 public:
  void arm(std::int64_t n) noexcept { remaining_.store(n, std::memory_order_relaxed); }
  void count_down() noexcept {
    // acq_rel: every task's writes (parallel_work's sum) happen-before the
    // release of the semaphore, which the waiter acquires.
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_.release();
  }
  void wait() noexcept { done_.acquire(); }

 private:
  std::atomic<std::int64_t> remaining_{0};  // tasks still to count down
  std::binary_semaphore done_{0};           // released by the last task
};

/// Reports what the scheduler did per iteration (summed over workers) as
/// user counters: parks (a worker went to sleep), noops (woke and found
/// nothing), steals (tasks moved by stealing), overflows (local queue spilled
/// to the injection queue). They explain a time: a wake-up is a futex call.
class SchedulerCounters {
 public:
  explicit SchedulerCounters(const spindle::Runtime& rt)
      : handle_(rt.handle()), start_(sum(handle_.counters())) {}

  void report(benchmark::State& state) const {
    Totals end = sum(handle_.counters());
    auto per_iteration = [](std::uint64_t v) {
      return benchmark::Counter(static_cast<double>(v), benchmark::Counter::kAvgIterations);
    };
    state.counters["parks"] = per_iteration(end.parks - start_.parks);
    state.counters["noops"] = per_iteration(end.noops - start_.noops);
    state.counters["steals"] = per_iteration(end.steals - start_.steals);
    state.counters["overflows"] = per_iteration(end.overflows - start_.overflows);
  }

 private:
  struct Totals {
    std::uint64_t parks = 0;      // sum over workers
    std::uint64_t noops = 0;      //   "
    std::uint64_t steals = 0;     //   "
    std::uint64_t overflows = 0;  //   "
  };
  static Totals sum(const spindle::RuntimeCounters& c) {
    Totals t;
    for (const spindle::WorkerCounters& w : c.workers) {
      t.parks += w.parks;
      t.noops += w.noops;
      t.steals += w.steals;
      t.overflows += w.overflows;
    }
    return t;
  }

  spindle::Handle handle_;  // the measured runtime
  Totals start_;            // counters before the timed loop
};

}  // namespace spindle_bench
