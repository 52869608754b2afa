// One task's own figures (spindle::task_metrics, on_task_finished), and the
// derived values of TaskMetrics on known numbers.

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <mutex>
#include <optional>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "monitor/monitor_support.hpp"
#include "support/recording_hooks.hpp"

namespace {

using spindle::JoinHandle;
using spindle::PerTaskMetrics;
using spindle::Task;
using spindle::TaskMetrics;
using spindle::TaskMonitor;
using spindle::sync::oneshot;
using spindle::sync::Receiver;
using spindle::test::ClockedRuntime;
using spindle::test::diff;
using spindle::test::ManualClock;
using spindle::test::recv;
using spindle::test::value;
using namespace std::chrono_literals;

/// Collects what on_task_finished receives.
struct Finished {
  std::mutex mu;                     // guards seen
  std::vector<PerTaskMetrics> seen;  // one entry per call
  auto callback() {
    return [this](const PerTaskMetrics& m) {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(m);
    };
  }
  std::vector<PerTaskMetrics> get() {
    std::lock_guard<std::mutex> lock(mu);
    return seen;
  }
};

TEST(PerTaskMetrics, FollowTheTaskDuringAndAfterItsLife) {
  ClockedRuntime c;
  Finished finished;
  TaskMonitor mon = c.monitor_builder("checkout").on_task_finished(finished.callback()).build();
  auto [tx, rx] = oneshot<int>();
  auto hooked = mon.instrument([](Receiver<int> rx, ManualClock& clock) -> Task<int> {
    clock.advance(30us);            // poll 1, from 10 us: 30 us
    co_await spindle::yield_now();  // self-wake at 40 us
    clock.advance(70us);            // poll 2, from 42 us: 70 us
    int v = co_await rx;            // idle from 112 us to 1.112 ms
    clock.advance(5us);             // poll 3: 5 us
    co_return v;
  }(std::move(rx), *c.clock));
  c.clock->advance(4us);  // first-poll delay: 4 us before the spawn...
  auto h = c.rt.spawn(std::move(hooked));
  const unsigned spawn_line = __LINE__ - 1;  // the line above
  c.clock->advance(6us);                     // ...and 6 us after it

  auto before = spindle::task_metrics(h);
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(before->id, h.id());
  EXPECT_EQ(before->monitor, "checkout");
  EXPECT_TRUE(spindle::test::ends_with(before->location.file_name(), "task_metrics_test.cpp"));
  EXPECT_EQ(before->location.line(), spawn_line);
  EXPECT_NE(std::string(before->location.function_name()).find("TestBody"), std::string::npos)
      << before->location.function_name();
  EXPECT_EQ(before->polls, 0U);
  EXPECT_EQ(before->busy, 0ns);
  EXPECT_EQ(before->first_poll_delay, 0ns);
  EXPECT_FALSE(before->finished);
  EXPECT_FALSE(before->cancelled);

  // Polls 1 and 2 run here; another task polls 2 us between them.
  TaskMonitor other = c.monitor("other");
  auto between = c.rt.spawn(other.instrument(spindle::test::busy_for(*c.clock, 2us)));
  c.run_queued();
  auto during = spindle::task_metrics(h);
  ASSERT_TRUE(during.has_value());
  EXPECT_EQ(during->polls, 2U);
  EXPECT_EQ(during->busy, 100us);
  EXPECT_EQ(during->scheduled, 2us);
  EXPECT_EQ(during->idle, 0ns);
  EXPECT_EQ(during->first_poll_delay, 10us);
  EXPECT_EQ(during->longest_poll, 70us);
  EXPECT_FALSE(during->finished);
  EXPECT_TRUE(finished.get().empty());

  c.clock->advance(1ms);
  tx.send(9);
  EXPECT_EQ(c.join(h), 9);
  auto after = spindle::task_metrics(h);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->polls, 3U);
  EXPECT_EQ(after->busy, 105us);
  EXPECT_EQ(after->scheduled, 2us);
  EXPECT_EQ(after->idle, 1ms);
  EXPECT_EQ(after->first_poll_delay, 10us);
  EXPECT_EQ(after->longest_poll, 70us);
  EXPECT_TRUE(after->finished);
  EXPECT_FALSE(after->cancelled);
  EXPECT_EQ(after->id, h.id());
  EXPECT_EQ(after->monitor, "checkout");
  EXPECT_EQ(after->location.line(), spawn_line);

  // The callback ran once, with the same figures.
  std::vector<PerTaskMetrics> seen = finished.get();
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_EQ(diff(seen[0], *after), "");

  // The monitor's totals are this task's.
  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.total_poll_count, after->polls);
  EXPECT_EQ(m.total_poll_duration, after->busy);
  EXPECT_EQ(m.total_scheduled_duration, after->scheduled);
  EXPECT_EQ(m.total_idle_duration, after->idle);
  EXPECT_EQ(m.total_first_poll_delay, after->first_poll_delay);
}

TEST(PerTaskMetrics, AreNulloptForUninstrumentedTasksAndEmptyHandles) {
  ClockedRuntime c;
  auto plain = c.rt.spawn(value(1));
  EXPECT_FALSE(spindle::task_metrics(plain).has_value());
  c.join(plain);
  EXPECT_FALSE(spindle::task_metrics(plain).has_value());
  EXPECT_FALSE(spindle::task_metrics(JoinHandle<int>()).has_value());

  // Hooks that are not a TaskMonitor's are not mistaken for one.
  spindle::test::RecordingHooks hooks;
  auto other = c.rt.handle().spawn_with_hooks(value(2), &hooks);
  EXPECT_FALSE(spindle::task_metrics(other).has_value());
  c.join(other);
  other = JoinHandle<int>();
  EXPECT_TRUE(hooks.wait_released());
}

TEST(PerTaskMetrics, OnTaskFinishedRunsOncePerTaskWhateverEndsIt) {
  Finished finished;
  auto clock = std::make_shared<ManualClock>();
  TaskMonitor mon = TaskMonitor::Builder()
                        .name("ends")
                        .clock(clock->source())
                        .on_task_finished(finished.callback())
                        .build();
  auto [tx, rx] = oneshot<int>();
  std::vector<JoinHandle<int>> hs;
  {
    auto rt = spindle::Runtime::Builder().current_thread().clock(clock->source()).build();
    hs.push_back(rt.spawn(mon.instrument(value(1))));  // finishes
    hs.push_back(rt.spawn(mon.instrument(value(2))));  // aborted while queued
    hs.back().abort();
    hs.push_back(rt.spawn(mon.instrument(recv(std::move(rx)))));  // idle at shutdown
    rt.spawn(mon.instrument(value(3))).detach();                  // detached, finishes
    rt.block_on(spindle::test::yields(4));
    hs.push_back(rt.spawn(mon.instrument(value(4))));  // queued at shutdown
  }
  std::vector<PerTaskMetrics> seen = finished.get();
  ASSERT_EQ(seen.size(), 5U);
  int cancelled = 0;
  for (const PerTaskMetrics& m : seen) {
    EXPECT_TRUE(m.finished);
    EXPECT_EQ(m.monitor, "ends");
    cancelled += m.cancelled ? 1 : 0;
  }
  EXPECT_EQ(cancelled, 3);
  // Each handle's figures equal the callback's for that task.
  for (JoinHandle<int>& h : hs) {
    auto m = spindle::task_metrics(h);
    ASSERT_TRUE(m.has_value());
    int matches = 0;
    for (const PerTaskMetrics& s : seen) matches += s.id == m->id ? 1 : 0;
    EXPECT_EQ(matches, 1) << "task " << m->id;
    for (const PerTaskMetrics& s : seen) {
      if (s.id == m->id) {
        EXPECT_EQ(diff(s, *m), "");
      }
    }
  }
  EXPECT_EQ(mon.cumulative().dropped_count, 5U);
}

TEST(PerTaskMetrics, ATaskSpawnedFromInsideATaskCarriesThatSpawnsLocation) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("inner");
  struct Result {
    unsigned line = 0;
    std::optional<PerTaskMetrics> metrics;
  };
  Result r = c.rt.block_on([](TaskMonitor mon) -> Task<Result> {
    Result r;
    auto h = spindle::spawn(mon.instrument(value(1)));
    r.line = __LINE__ - 1;  // the line above
    (void)co_await h;
    r.metrics = spindle::task_metrics(h);
    co_return r;
  }(mon));
  ASSERT_TRUE(r.metrics.has_value());
  EXPECT_EQ(r.metrics->location.line(), r.line);
  EXPECT_TRUE(spindle::test::ends_with(r.metrics->location.file_name(), "task_metrics_test.cpp"));
  EXPECT_EQ(r.metrics->polls, 1U);
}

TEST(PerTaskMetrics, AThrowingOnTaskFinishedCallbackDoesNotDisturbTheTask) {
  ClockedRuntime c;
  int calls = 0;
  TaskMonitor mon = c.monitor_builder("throws")
                        .on_task_finished([&calls](const PerTaskMetrics&) {
                          ++calls;
                          throw std::runtime_error("callback failed");
                        })
                        .build();
  auto h = c.rt.spawn(mon.instrument(value(6)));
  EXPECT_EQ(c.join(h), 6);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(mon.cumulative().dropped_count, 1U);
  EXPECT_TRUE(spindle::task_metrics(h)->finished);
}

// ---- derived values --------------------------------------------------------------

TEST(TaskMetricsDerived, MeansAndRatiosOnKnownValues) {
  TaskMetrics m;
  m.first_poll_count = 4;
  m.total_first_poll_delay = 40us;
  m.total_idled_count = 3;
  m.total_idle_duration = 31ms;
  m.total_scheduled_count = 8;
  m.total_scheduled_duration = 800us;
  m.total_poll_count = 10;
  m.total_poll_duration = 1ms;
  m.total_fast_poll_count = 8;
  m.total_fast_poll_duration = 200us;
  m.total_slow_poll_count = 2;
  m.total_slow_poll_duration = 800us;
  m.total_short_delay_count = 6;
  m.total_short_delay_duration = 60us;
  m.total_long_delay_count = 2;
  m.total_long_delay_duration = 740us;
  m.total_wake_count = 20;
  m.total_self_wake_count = 5;
  EXPECT_EQ(m.mean_first_poll_delay(), 10us);
  EXPECT_EQ(m.mean_idle_duration(), 10'333'333ns);  // 31 ms / 3, truncated
  EXPECT_EQ(m.mean_scheduled_duration(), 100us);
  EXPECT_EQ(m.mean_poll_duration(), 100us);
  EXPECT_EQ(m.mean_fast_poll_duration(), 25us);
  EXPECT_EQ(m.mean_slow_poll_duration(), 400us);
  EXPECT_EQ(m.mean_short_delay_duration(), 10us);
  EXPECT_EQ(m.mean_long_delay_duration(), 370us);
  EXPECT_DOUBLE_EQ(m.slow_poll_ratio(), 0.2);
  EXPECT_DOUBLE_EQ(m.long_delay_ratio(), 0.25);
  EXPECT_DOUBLE_EQ(m.self_wake_ratio(), 0.25);
}

TEST(TaskMetricsDerived, MeansOverNoEventsAreZeroAsInTokioMetrics) {
  TaskMetrics m;
  // Numerators set, counts zero: 0 ns (tokio-metrics' Duration::ZERO).
  m.total_first_poll_delay = 1ms;
  m.total_idle_duration = 1ms;
  m.total_scheduled_duration = 1ms;
  m.total_poll_duration = 1ms;
  m.total_fast_poll_duration = 1ms;
  m.total_slow_poll_duration = 1ms;
  m.total_short_delay_duration = 1ms;
  m.total_long_delay_duration = 1ms;
  EXPECT_EQ(m.mean_first_poll_delay(), 0ns);
  EXPECT_EQ(m.mean_idle_duration(), 0ns);
  EXPECT_EQ(m.mean_scheduled_duration(), 0ns);
  EXPECT_EQ(m.mean_poll_duration(), 0ns);
  EXPECT_EQ(m.mean_fast_poll_duration(), 0ns);
  EXPECT_EQ(m.mean_slow_poll_duration(), 0ns);
  EXPECT_EQ(m.mean_short_delay_duration(), 0ns);
  EXPECT_EQ(m.mean_long_delay_duration(), 0ns);
}

TEST(TaskMetricsDerived, RatiosOverNoEventsAreNaNAsInTokioMetrics) {
  // 0/0, and numerators without their denominators (all polls, delays, wakes).
  EXPECT_TRUE(std::isnan(TaskMetrics().slow_poll_ratio()));
  EXPECT_TRUE(std::isnan(TaskMetrics().long_delay_ratio()));
  EXPECT_TRUE(std::isnan(TaskMetrics().self_wake_ratio()));
  TaskMetrics r;
  r.total_slow_poll_count = 1;
  r.total_long_delay_count = 1;
  r.total_self_wake_count = 1;
  EXPECT_TRUE(std::isnan(r.slow_poll_ratio()));
  EXPECT_TRUE(std::isnan(r.long_delay_ratio()));
  EXPECT_TRUE(std::isnan(r.self_wake_ratio()));
  // One event in the denominator is enough for a number.
  TaskMetrics one;
  one.total_poll_count = 1;
  one.total_scheduled_count = 1;
  one.total_wake_count = 1;
  EXPECT_EQ(one.slow_poll_ratio(), 0.0);
  EXPECT_EQ(one.long_delay_ratio(), 0.0);
  EXPECT_EQ(one.self_wake_ratio(), 0.0);
}

TEST(TaskMetricsDerived, AnEmptyIntervalHasNaNRatiosAndZeroMeans) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("quiet");
  auto it = mon.intervals();
  auto h = c.rt.spawn(mon.instrument(value(1)));
  c.join(h);
  TaskMetrics busy = it.next();
  EXPECT_EQ(busy.slow_poll_ratio(), 0.0);  // one fast poll
  c.clock->advance(1s);
  TaskMetrics quiet = it.next();
  EXPECT_EQ(quiet.total_poll_count, 0U);
  EXPECT_TRUE(std::isnan(quiet.slow_poll_ratio()));
  EXPECT_TRUE(std::isnan(quiet.long_delay_ratio()));
  EXPECT_EQ(quiet.mean_poll_duration(), 0ns);
  EXPECT_EQ(quiet.elapsed, 1s);
}

TEST(TaskMetricsDerived, OfAFreshMonitorAreZeroOrNaN) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("fresh");
  c.clock->advance(3ms);
  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.instrumented_count, 0U);
  EXPECT_EQ(m.total_poll_count, 0U);
  EXPECT_EQ(m.poll_duration_histogram.count(), 0U);
  EXPECT_EQ(m.mean_poll_duration(), 0ns);
  EXPECT_TRUE(std::isnan(m.slow_poll_ratio()));  // no poll yet: 0/0
  EXPECT_EQ(m.elapsed, 3ms);  // since the monitor was built, by its clock
}

}  // namespace
