// RuntimeMonitor: intervals of the scheduler's counters, their per-worker
// spread, busy_ratio on known values, and the poll_timing histograms.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>
#include <thread>
#include <vector>

#include "monitor/monitor_support.hpp"
#include "support/sync.hpp"

namespace {

using spindle::Histogram;
using spindle::JoinHandle;
using spindle::Runtime;
using spindle::RuntimeCounters;
using spindle::RuntimeIntervals;
using spindle::RuntimeMetrics;
using spindle::RuntimeMonitor;
using spindle::Task;
using spindle::WorkerCounters;
using spindle::WorkerMetrics;
using spindle::test::buckets;
using spindle::test::ClockedRuntime;
using spindle::test::eventually;
using spindle::test::ManualClock;
using spindle::test::value;
using spindle::test::yields;
using namespace std::chrono_literals;

// Checks that total/max/min of every per-worker figure agree with `workers`.
void expect_consistent_spread(const RuntimeMetrics& r) {
  ASSERT_EQ(r.workers.size(), r.workers_count);
  auto check = [&](const char* name, auto field, auto total, auto max, auto min) {
    SCOPED_TRACE(name);
    using V = decltype(total);
    V t{};
    V hi{};
    V lo{};
    for (std::size_t i = 0; i < r.workers.size(); ++i) {
      V v = field(r.workers[i]);
      t += v;
      hi = i == 0 ? v : std::max(hi, v);
      lo = i == 0 ? v : std::min(lo, v);
    }
    EXPECT_EQ(total, t);
    EXPECT_EQ(max, hi);
    EXPECT_EQ(min, lo);
    EXPECT_GE(max, min);
  };
  check(
      "park", [](const WorkerMetrics& w) { return w.park_count; }, r.total_park_count,
      r.max_park_count, r.min_park_count);
  check(
      "noop", [](const WorkerMetrics& w) { return w.noop_count; }, r.total_noop_count,
      r.max_noop_count, r.min_noop_count);
  check(
      "steal", [](const WorkerMetrics& w) { return w.steal_count; }, r.total_steal_count,
      r.max_steal_count, r.min_steal_count);
  check(
      "steal_operations", [](const WorkerMetrics& w) { return w.steal_operations; },
      r.total_steal_operations, r.max_steal_operations, r.min_steal_operations);
  check(
      "local_schedule", [](const WorkerMetrics& w) { return w.local_schedule_count; },
      r.total_local_schedule_count, r.max_local_schedule_count, r.min_local_schedule_count);
  check(
      "overflow", [](const WorkerMetrics& w) { return w.overflow_count; }, r.total_overflow_count,
      r.max_overflow_count, r.min_overflow_count);
  check(
      "polls", [](const WorkerMetrics& w) { return w.polls_count; }, r.total_polls_count,
      r.max_polls_count, r.min_polls_count);
  check(
      "busy", [](const WorkerMetrics& w) { return w.busy_duration; }, r.total_busy_duration,
      r.max_busy_duration, r.min_busy_duration);
  check(
      "local_queue_depth", [](const WorkerMetrics& w) { return w.local_queue_depth; },
      r.total_local_queue_depth, r.max_local_queue_depth, r.min_local_queue_depth);
  std::uint64_t forced = 0;
  std::uint64_t io = 0;
  for (const WorkerMetrics& w : r.workers) {
    forced += w.budget_forced_yield_count;
    io += w.io_driver_ready_count;
  }
  EXPECT_EQ(r.budget_forced_yield_count, forced);
  EXPECT_EQ(r.io_driver_ready_count, io);
}

std::uint64_t polls(const RuntimeCounters& c) {
  std::uint64_t n = 0;
  for (const WorkerCounters& w : c.workers) n += w.polls;
  return n;
}
std::uint64_t parks(const RuntimeCounters& c) {
  std::uint64_t n = 0;
  for (const WorkerCounters& w : c.workers) n += w.parks;
  return n;
}
std::chrono::nanoseconds busy(const RuntimeCounters& c) {
  std::chrono::nanoseconds n{0};
  for (const WorkerCounters& w : c.workers) n += w.busy;
  return n;
}

TEST(RuntimeMonitor, NeedsAValidHandle) {
  EXPECT_THROW((void)RuntimeMonitor(spindle::Handle()), spindle::UsageError);
}

TEST(RuntimeMonitor, IntervalsOnCurrentThreadCountPollsAndSpawnsExactly) {
  ClockedRuntime c;
  RuntimeMonitor rmon(c.rt.handle());
  EXPECT_TRUE(rmon.handle() == c.rt.handle());
  RuntimeIntervals rit = rmon.intervals();
  RuntimeMetrics r0 = rit.next();
  EXPECT_EQ(r0.workers_count, 1U);
  EXPECT_EQ(r0.total_polls_count, 0U);
  EXPECT_EQ(r0.spawned_tasks_count, 0U);

  c.rt.block_on(yields(10));  // one task, 11 polls
  RuntimeMetrics r1 = rit.next();
  EXPECT_EQ(r1.total_polls_count, 11U);
  EXPECT_EQ(r1.workers[0].polls_count, 11U);
  EXPECT_EQ(r1.max_polls_count, 11U);
  EXPECT_EQ(r1.min_polls_count, 11U);
  EXPECT_EQ(r1.spawned_tasks_count, 1U);
  EXPECT_EQ(r1.live_tasks_count, 0U);
  expect_consistent_spread(r1);

  // Five spawns from this thread wait in the injection queue (gauges).
  std::vector<JoinHandle<int>> hs;
  for (int i = 0; i < 5; ++i) hs.push_back(c.rt.spawn(value(i)));
  RuntimeMetrics r2 = rit.next();
  EXPECT_EQ(r2.spawned_tasks_count, 5U);
  EXPECT_EQ(r2.global_queue_depth, 5U);
  EXPECT_EQ(r2.live_tasks_count, 5U);
  EXPECT_GE(r2.num_remote_schedules, 5U);
  EXPECT_EQ(r2.total_polls_count, 0U);

  c.run_queued(2);  // 5 polls, and 3 of the driver
  RuntimeMetrics r3 = rit.next();
  EXPECT_EQ(r3.total_polls_count, 8U);
  EXPECT_EQ(r3.global_queue_depth, 0U);
  EXPECT_EQ(r3.live_tasks_count, 0U);
  EXPECT_DOUBLE_EQ(r3.mean_polls_per_park(),
                   r3.total_park_count == 0 ? 0.0 : 8.0 / static_cast<double>(r3.total_park_count));

  // Nothing runs outside block_on: the counters stand still, and the
  // intervals add up to them.
  RuntimeCounters now = rmon.counters();
  EXPECT_EQ(
      r0.total_polls_count + r1.total_polls_count + r2.total_polls_count + r3.total_polls_count,
      polls(now));
  EXPECT_EQ(r0.total_park_count + r1.total_park_count + r2.total_park_count + r3.total_park_count,
            parks(now));
  EXPECT_EQ(r0.total_busy_duration + r1.total_busy_duration + r2.total_busy_duration +
                r3.total_busy_duration,
            busy(now));
  EXPECT_EQ(now.spawned_tasks, 7U);
}

TEST(RuntimeMonitor, TheFirstIntervalStartsWhenTheRuntimeWasBuilt) {
  ClockedRuntime c;
  c.clock->advance(5ms);
  RuntimeMonitor rmon(c.rt.handle());
  RuntimeIntervals rit = rmon.intervals();
  c.clock->advance(1ms);
  EXPECT_EQ(rit.next().elapsed, 6ms);
  c.clock->advance(250ms);
  EXPECT_EQ(rit.next().elapsed, 250ms);
  EXPECT_EQ(rit.next().elapsed, 0ns);
}

TEST(RuntimeMonitor, IntervalsOnTwoWorkersAgreeWithTheCountersAndSpreadConsistently) {
  auto rt = Runtime::Builder().worker_threads(2).local_queue_capacity(4).build();
  RuntimeMonitor rmon(rt.handle());
  // Both workers park once they have started: no start-up busy time
  // is left to be accounted in the intervals below.
  ASSERT_TRUE(eventually([&] {
    RuntimeCounters c = rmon.counters();
    return c.workers[0].parks >= 1 && c.workers[1].parks >= 1;
  }));
  RuntimeIntervals rit = rmon.intervals();
  std::vector<RuntimeMetrics> rs;
  rs.push_back(rit.next());
  const RuntimeCounters start = rmon.counters();
  for (int round = 0; round < 3; ++round) {
    const std::uint64_t parks_before = parks(rmon.counters());
    rt.block_on([]() -> Task<void> {
      std::vector<JoinHandle<void>> hs;
      for (int i = 0; i < 200; ++i) {
        hs.push_back(spindle::spawn([]() -> Task<void> {
          for (int k = 0; k < 5; ++k) co_await spindle::yield_now();
        }()));
      }
      for (auto& h : hs) co_await h;
    }());
    // Wait until the workers are back asleep: their busy time is accounted.
    ASSERT_TRUE(eventually([&] {
      RuntimeCounters c = rmon.counters();
      return parks(c) >= parks_before + 2;
    }));
    RuntimeMetrics r = rit.next();
    SCOPED_TRACE(round);
    EXPECT_EQ(r.workers_count, 2U);
    EXPECT_GE(r.total_polls_count, 200U * 6U + 1U);
    EXPECT_EQ(r.spawned_tasks_count, 201U);
    expect_consistent_spread(r);
    EXPECT_GE(r.busy_ratio(), 0.0);
    // (Not checked per interval: busy time is accounted when a worker parks,
    // so one interval can receive busy time of the one before and exceed 1.
    // BusyTimeOfAPollInProgressIsReportedInItsOwnInterval reproduces that
    // deterministically.)
    rs.push_back(r);
  }
  // No task runs any more: the polls of all intervals add up to the counters'.
  RuntimeCounters c = rmon.counters();
  // Over the whole run (from a moment both workers slept), busy ≤ elapsed.
  RuntimeMetrics whole = RuntimeMonitor::between(start, c);
  EXPECT_GT(whole.total_busy_duration, 0ns);
  EXPECT_GE(whole.busy_ratio(), 0.0);
  EXPECT_LE(whole.busy_ratio(), 1.0);
  for (const WorkerMetrics& w : whole.workers) EXPECT_LE(w.busy_ratio(whole.elapsed), 1.0);
  expect_consistent_spread(whole);
  std::uint64_t total = 0;
  std::uint64_t steals = 0;
  std::uint64_t steal_operations = 0;
  std::uint64_t local = 0;
  std::uint64_t overflows = 0;
  std::uint64_t parked = 0;
  for (const RuntimeMetrics& r : rs) {
    total += r.total_polls_count;
    steals += r.total_steal_count;
    steal_operations += r.total_steal_operations;
    local += r.total_local_schedule_count;
    overflows += r.total_overflow_count;
    parked += r.total_park_count;
  }
  std::uint64_t c_steals = 0;
  std::uint64_t c_steal_operations = 0;
  std::uint64_t c_local = 0;
  std::uint64_t c_overflows = 0;
  for (const WorkerCounters& w : c.workers) {
    c_steals += w.steals;
    c_steal_operations += w.steal_operations;
    c_local += w.local_schedules;
    c_overflows += w.overflows;
  }
  EXPECT_EQ(total, polls(c));
  EXPECT_EQ(steals, c_steals);
  EXPECT_EQ(steal_operations, c_steal_operations);
  EXPECT_EQ(local, c_local);
  EXPECT_EQ(overflows, c_overflows);
  EXPECT_GT(overflows, 0U);     // 200 spawns into queues of 4
  EXPECT_LE(parked, parks(c));  // an idle worker may still wake and park
  EXPECT_EQ(c.spawned_tasks, 3U * 201U);
}

TEST(RuntimeMonitor, BetweenComputesBusyRatioAndSpreadFromKnownCounters) {
  RuntimeCounters earlier;
  earlier.workers.resize(2);
  earlier.now = ManualClock::at(0ns);
  earlier.workers[0].polls = 10;
  earlier.workers[0].parks = 1;
  earlier.workers[0].busy = 10ms;
  earlier.workers[1].polls = 5;
  earlier.workers[1].busy = 0ms;
  earlier.remote_schedules = 3;
  earlier.spawned_tasks = 4;
  earlier.unhandled_exceptions = 1;

  RuntimeCounters later = earlier;
  later.now = ManualClock::at(100ms);
  later.workers[0].polls = 110;  // +100
  later.workers[0].parks = 5;    // +4
  later.workers[0].busy = 60ms;  // +50 ms
  later.workers[0].steals = 7;
  later.workers[0].steal_operations = 2;
  later.workers[0].local_queue_depth = 3;
  later.workers[0].budget_forced_yields = 2;
  later.workers[1].polls = 35;   // +30
  later.workers[1].parks = 6;    // +6
  later.workers[1].busy = 25ms;  // +25 ms
  later.workers[1].local_queue_depth = 1;
  later.workers[1].io_driver_ready = 9;
  later.remote_schedules = 13;
  later.spawned_tasks = 24;
  later.unhandled_exceptions = 1;
  later.global_queue_depth = 4;
  later.live_tasks = 12;
  later.blocking_threads = 3;
  later.idle_blocking_threads = 2;
  later.blocking_queue_depth = 1;

  RuntimeMetrics r = RuntimeMonitor::between(earlier, later);
  EXPECT_EQ(r.workers_count, 2U);
  EXPECT_EQ(r.elapsed, 100ms);
  EXPECT_EQ(r.total_busy_duration, 75ms);
  EXPECT_EQ(r.max_busy_duration, 50ms);
  EXPECT_EQ(r.min_busy_duration, 25ms);
  EXPECT_DOUBLE_EQ(r.busy_ratio(), 75.0 / 200.0);
  EXPECT_DOUBLE_EQ(r.workers[0].busy_ratio(r.elapsed), 0.5);
  EXPECT_DOUBLE_EQ(r.workers[1].busy_ratio(r.elapsed), 0.25);
  EXPECT_EQ(r.total_polls_count, 130U);
  EXPECT_EQ(r.max_polls_count, 100U);
  EXPECT_EQ(r.min_polls_count, 30U);
  EXPECT_EQ(r.total_park_count, 10U);
  EXPECT_DOUBLE_EQ(r.mean_polls_per_park(), 13.0);
  EXPECT_EQ(r.total_steal_count, 7U);
  EXPECT_EQ(r.min_steal_count, 0U);
  EXPECT_EQ(r.total_steal_operations, 2U);
  EXPECT_EQ(r.total_local_queue_depth, 4U);
  EXPECT_EQ(r.max_local_queue_depth, 3U);
  EXPECT_EQ(r.min_local_queue_depth, 1U);
  EXPECT_EQ(r.budget_forced_yield_count, 2U);
  EXPECT_EQ(r.io_driver_ready_count, 9U);
  EXPECT_EQ(r.num_remote_schedules, 10U);
  EXPECT_EQ(r.spawned_tasks_count, 20U);
  EXPECT_EQ(r.unhandled_exception_count, 0U);
  EXPECT_EQ(r.global_queue_depth, 4U);
  EXPECT_EQ(r.live_tasks_count, 12U);
  EXPECT_EQ(r.blocking_threads_count, 3U);
  EXPECT_EQ(r.idle_blocking_threads_count, 2U);
  EXPECT_EQ(r.blocking_queue_depth, 1U);
  expect_consistent_spread(r);

  // Degenerate intervals: no time, or no workers, give ratios of 0.
  RuntimeMetrics same = RuntimeMonitor::between(later, later);
  EXPECT_EQ(same.elapsed, 0ns);
  EXPECT_EQ(same.busy_ratio(), 0.0);
  EXPECT_EQ(same.total_polls_count, 0U);
  EXPECT_EQ(same.mean_polls_per_park(), 0.0);
  RuntimeMetrics none = RuntimeMonitor::between(RuntimeCounters{}, RuntimeCounters{});
  EXPECT_EQ(none.workers_count, 0U);
  EXPECT_EQ(none.busy_ratio(), 0.0);
  EXPECT_EQ(WorkerMetrics{}.busy_ratio(0ns), 0.0);
}

TEST(RuntimeMonitor, BusyTimeOfAPollInProgressIsReportedInItsOwnInterval) {
  // One worker runs one task that holds it for 100 ms (by the injected
  // clock); an interval is read in the middle of that poll and another
  // 1 ms after the worker went back to sleep. The first interval's worker
  // was busy throughout; the second one's was busy for (at most) its 1 ms.
  // busy_ratio() is documented as 0..1.
  auto clock = std::make_shared<ManualClock>();
  auto rt = Runtime::Builder().worker_threads(1).clock(clock->source()).build();
  RuntimeMonitor rmon(rt.handle());
  ASSERT_TRUE(eventually([&] { return rmon.counters().workers[0].parks >= 1; }));
  RuntimeIntervals rit = rmon.intervals();
  (void)rit.next();
  const std::uint64_t parks_before = rmon.counters().workers[0].parks;
  std::atomic<bool> release{false};
  spindle::test::Event started;
  auto h = rt.spawn([](std::atomic<bool>& release, spindle::test::Event& started) -> Task<void> {
    started.set();
    while (!release.load()) std::this_thread::yield();
    co_return;
  }(release, started));
  ASSERT_TRUE(started.wait());
  clock->advance(100ms);
  RuntimeMetrics during = rit.next();
  release = true;
  h.join();
  ASSERT_TRUE(eventually([&] { return rmon.counters().workers[0].parks > parks_before; }));
  clock->advance(1ms);
  RuntimeMetrics after = rit.next();
  EXPECT_EQ(during.elapsed, 100ms);
  EXPECT_EQ(after.elapsed, 1ms);
  EXPECT_LE(after.busy_ratio(), 1.0)
      << "busy " << after.total_busy_duration.count() << " ns in an interval of "
      << after.elapsed.count() << " ns: the 100 ms poll was accounted when the worker parked";
  EXPECT_EQ(during.total_busy_duration, 100ms)
      << "the worker was busy for the whole interval, but reported "
      << during.total_busy_duration.count() << " ns";
}

TEST(RuntimeMonitor, WithPollTimingTheHistogramsCountEveryPollAndWakeInKnownBuckets) {
  ClockedRuntime c(/*poll_timing=*/true);
  ASSERT_TRUE(c.rt.handle().poll_timing());
  RuntimeMonitor rmon(c.rt.handle());
  RuntimeIntervals rit = rmon.intervals();
  EXPECT_EQ(rit.next().poll_duration_histogram.count(), 0U);

  auto a = c.rt.spawn([](ManualClock& clock) -> Task<void> {
    clock.advance(3us);  // poll 1: 3 us, bucket 55
    co_await spindle::yield_now();
    clock.advance(100us);  // poll 2, 10 us after its wake: 100 us, bucket 106
  }(*c.clock));
  c.rt.block_on([](JoinHandle<void>* a, ManualClock& clock) -> Task<void> {
    clock.advance(10us);  // the driver's poll 1 runs between A's two polls: bucket 73
    co_await *a;          // poll 2, woken when A ends: 0 us, bucket 0
  }(&a, *c.clock));

  RuntimeMetrics r = rit.next();
  EXPECT_EQ(r.total_polls_count, 4U);
  EXPECT_EQ(r.poll_duration_histogram.count(), r.total_polls_count);
  EXPECT_EQ(buckets(r.poll_duration_histogram), "{0:1 55:1 73:1 106:1}");
  EXPECT_EQ(r.poll_duration_histogram.sum(), 113us);
  // Every poll but the two first polls follows a wake.
  EXPECT_EQ(buckets(r.scheduled_delay_histogram), "{0:1 73:1}");
  EXPECT_EQ(r.scheduled_delay_histogram.sum(), 10us);

  // The raw counters hold the same (cumulative) histograms.
  RuntimeCounters now = rmon.counters();
  EXPECT_EQ(now.workers[0].poll_durations, r.poll_duration_histogram);
  EXPECT_EQ(now.workers[0].scheduled_delays, r.scheduled_delay_histogram);

  // The next interval holds only what follows.
  c.rt.block_on(spindle::test::busy_for(*c.clock, 1ms));
  RuntimeMetrics r2 = rit.next();
  EXPECT_EQ(buckets(r2.poll_duration_histogram), "{140:1}");  // 1 ms: (996,148, 1,048,576] ns
  EXPECT_EQ(r2.scheduled_delay_histogram.count(), 0U);
}

TEST(RuntimeMonitor, WithoutPollTimingTheHistogramsStayEmpty) {
  ClockedRuntime c;
  RuntimeMonitor rmon(c.rt.handle());
  RuntimeIntervals rit = rmon.intervals();
  c.rt.block_on(yields(5));
  RuntimeMetrics r = rit.next();
  EXPECT_EQ(r.total_polls_count, 6U);
  EXPECT_EQ(r.poll_duration_histogram.count(), 0U);
  EXPECT_EQ(r.scheduled_delay_histogram.count(), 0U);
}

TEST(RuntimeMonitor, ReadsTheFinalValuesAfterTheRuntimeIsGone) {
  std::optional<RuntimeMonitor> rmon;
  std::optional<RuntimeIntervals> rit;
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    rmon.emplace(rt.handle());
    rit.emplace(rmon->intervals());
    rt.block_on(yields(10));
  }
  RuntimeMetrics r = rit->next();
  EXPECT_EQ(r.workers_count, 2U);
  EXPECT_GE(r.total_polls_count, 11U);
  EXPECT_EQ(r.live_tasks_count, 0U);
  expect_consistent_spread(r);
  RuntimeMetrics again = rit->next();
  EXPECT_EQ(again.total_polls_count, 0U);
}

}  // namespace
