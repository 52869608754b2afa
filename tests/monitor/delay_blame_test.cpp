// TaskMetrics::delay_blame: who held the worker while a monitored task
// waited to be scheduled. A current_thread runtime with a flight recorder
// and a manual clock, so every figure is exact: only the polls move the
// clock, so the worker's own time ("runtime") is zero unless a test moves
// the clock outside a poll.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>
#include <string>
#include <vector>

#include "monitor/monitor_support.hpp"

namespace {

using spindle::DelayBlame;
using spindle::Runtime;
using spindle::Task;
using spindle::TaskMetrics;
using spindle::TaskMonitor;
using spindle::test::ManualClock;
using spindle::test::spin;
using namespace std::chrono_literals;

/// The setting: a flight recorder, both thresholds 50 us.
struct BlameSetting : spindle::test::ClockedRuntime {
  BlameSetting() : ClockedRuntime(false, 4096) {}
};

std::string describe(const std::vector<DelayBlame>& blame) {
  std::string s;
  for (const DelayBlame& b : blame) {
    if (!s.empty()) s += ", ";
    s += b.culprit + "=" + std::to_string(b.duration.count());
  }
  return s;
}

TEST(DelayBlame, AVictimsDelayIsBlamedOnTheHogAndABystanderBarely) {
  BlameSetting c;
  TaskMonitor victim = c.monitor("victim");
  TaskMonitor hog = c.monitor("hog");
  TaskMonitor bystander = c.monitor("bystander");
  // All three yield in a loop on the one worker: every scheduled delay of
  // the victim spans one poll of the hog (5 ms) and one of the bystander
  // (1 us). The hog and the bystander outlast the victim's 3 yields.
  auto hv = c.rt.spawn(victim.instrument(spin(c.clock.get(), 3, 0ns)));
  auto hh = c.rt.spawn(hog.instrument(spin(c.clock.get(), 6, 5ms)));
  auto hb = c.rt.spawn(bystander.instrument(spin(c.clock.get(), 6, 1us)));
  c.rt.block_on([](auto& a, auto& b, auto& d) -> Task<void> {
    co_await a;
    co_await b;
    co_await d;
  }(hv, hh, hb));

  const TaskMetrics m = victim.cumulative();
  EXPECT_EQ(m.total_long_delay_count, 3U);
  EXPECT_EQ(m.total_long_delay_duration, 3 * (5ms + 1us));
  ASSERT_EQ(m.delay_blame.size(), 2U) << describe(m.delay_blame);
  EXPECT_EQ(m.delay_blame[0], (DelayBlame{"hog", 15ms})) << describe(m.delay_blame);
  EXPECT_EQ(m.delay_blame[1], (DelayBlame{"bystander", 3us})) << describe(m.delay_blame);
  // The hog's own delays (a bystander poll and an empty victim poll: 1 us)
  // are short: nothing to blame.
  EXPECT_TRUE(hog.cumulative().delay_blame.empty()) << describe(hog.cumulative().delay_blame);
}

TEST(DelayBlame, ATaskWithoutAMonitorIsBlamedAsUnmonitored) {
  BlameSetting c;
  TaskMonitor victim = c.monitor("victim");
  auto hv = c.rt.spawn(victim.instrument(spin(c.clock.get(), 2, 0ns)));
  auto hh = c.rt.spawn(spin(c.clock.get(), 5, 2ms));  // no monitor
  c.rt.block_on([](auto& a, auto& b) -> Task<void> {
    co_await a;
    co_await b;
  }(hv, hh));
  const TaskMetrics m = victim.cumulative();
  EXPECT_EQ(m.total_long_delay_count, 2U);
  ASSERT_EQ(m.delay_blame.size(), 1U) << describe(m.delay_blame);
  EXPECT_EQ(m.delay_blame[0], (DelayBlame{"unmonitored", 4ms}));
}

TEST(DelayBlame, TheWorkersOwnTimeIsBlamedOnTheRuntime) {
  // A completion handler that runs between two polls (the worker's I/O
  // check) and takes 3 ms: not a poll, so "runtime".
  BlameSetting c;
  TaskMonitor victim = c.monitor("victim");
  auto hv = c.rt.spawn(victim.instrument([](ManualClock* clock) -> Task<void> {
    asio::post(spindle::this_executor(), [clock] { clock->advance(3ms); });
    co_await spindle::yield_now();  // requeued after the I/O check that runs the handler
  }(c.clock.get())));
  c.rt.block_on([](auto& a) -> Task<void> { co_await a; }(hv));
  const TaskMetrics m = victim.cumulative();
  EXPECT_EQ(m.total_long_delay_count, 1U);
  ASSERT_EQ(m.delay_blame.size(), 1U) << describe(m.delay_blame);
  EXPECT_EQ(m.delay_blame[0], (DelayBlame{"runtime", 3ms}));
}

TEST(DelayBlame, EachIntervalCarriesOnlyItsOwnBlame) {
  BlameSetting c;
  TaskMonitor victim = c.monitor("victim");
  TaskMonitor hog = c.monitor("hog");
  TaskMonitor other = c.monitor("other-hog");
  auto it = victim.intervals();
  {
    auto hv = c.rt.spawn(victim.instrument(spin(c.clock.get(), 2, 0ns)));
    auto hh = c.rt.spawn(hog.instrument(spin(c.clock.get(), 4, 1ms)));
    c.rt.block_on([](auto& a, auto& b) -> Task<void> {
      co_await a;
      co_await b;
    }(hv, hh));
  }
  const TaskMetrics first = it.next();
  ASSERT_EQ(first.delay_blame.size(), 1U) << describe(first.delay_blame);
  EXPECT_EQ(first.delay_blame[0], (DelayBlame{"hog", 2ms}));
  {
    auto hv = c.rt.spawn(victim.instrument(spin(c.clock.get(), 1, 0ns)));
    auto hh = c.rt.spawn(other.instrument(spin(c.clock.get(), 3, 7ms)));
    c.rt.block_on([](auto& a, auto& b) -> Task<void> {
      co_await a;
      co_await b;
    }(hv, hh));
  }
  const TaskMetrics second = it.next();
  ASSERT_EQ(second.delay_blame.size(), 1U) << describe(second.delay_blame);
  EXPECT_EQ(second.delay_blame[0], (DelayBlame{"other-hog", 7ms}));
  EXPECT_TRUE(it.next().delay_blame.empty());
  // The cumulative view has both, largest first.
  const TaskMetrics all = victim.cumulative();
  ASSERT_EQ(all.delay_blame.size(), 2U) << describe(all.delay_blame);
  EXPECT_EQ(all.delay_blame[0], (DelayBlame{"other-hog", 7ms}));
  EXPECT_EQ(all.delay_blame[1], (DelayBlame{"hog", 2ms}));
}

TEST(DelayBlame, ACulpritKeepsItsNameAfterItsMonitorIsGone) {
  BlameSetting c;
  TaskMonitor victim = c.monitor("victim");
  {
    TaskMonitor hog = c.monitor("short-lived");
    auto hv = c.rt.spawn(victim.instrument(spin(c.clock.get(), 1, 0ns)));
    auto hh = c.rt.spawn(hog.instrument(spin(c.clock.get(), 3, 1ms)));
    c.rt.block_on([](auto& a, auto& b) -> Task<void> {
      co_await a;
      co_await b;
    }(hv, hh));
  }
  const TaskMetrics m = victim.cumulative();
  ASSERT_EQ(m.delay_blame.size(), 1U) << describe(m.delay_blame);
  EXPECT_EQ(m.delay_blame[0].culprit, "short-lived");
}

TEST(DelayBlame, WithoutAFlightRecorderThereIsNoBlame) {
  auto clock = std::make_shared<ManualClock>();
  auto rt = Runtime::Builder().current_thread().clock(clock->source()).build();
  TaskMonitor victim = TaskMonitor::Builder()
                           .name("victim")
                           .clock(clock->source())
                           .long_delay_threshold(50us)
                           .build();
  auto hv = rt.spawn(victim.instrument(spin(clock.get(), 2, 0ns)));
  auto hh = rt.spawn(spin(clock.get(), 4, 1ms));
  rt.block_on([](auto& a, auto& b) -> Task<void> {
    co_await a;
    co_await b;
  }(hv, hh));
  const TaskMetrics m = victim.cumulative();
  EXPECT_EQ(m.total_long_delay_count, 2U);  // the delays are still measured
  EXPECT_TRUE(m.delay_blame.empty());
}

}  // namespace
