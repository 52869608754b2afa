// spindle::diagnose: the verdict per monitor. Synthetic metrics for each
// cause, ties and empty periods, then the verdict of real monitors on a
// current_thread runtime with a manual clock (a task that holds its
// worker, one that waits on an event, one starved by a hog).

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <spindle/monitor.hpp>
#include <spindle/monitor/diagnose.hpp>
#include <spindle/runtime.hpp>
#include <string>

#include "monitor/monitor_support.hpp"

namespace {

using namespace std::chrono_literals;
using spindle::Cause;
using spindle::DelayBlame;
using spindle::Diagnosis;
using spindle::Task;
using spindle::TaskMetrics;
using spindle::TaskMonitor;
using spindle::test::ManualClock;
using spindle::test::spin;

TaskMetrics times(std::chrono::nanoseconds poll, std::chrono::nanoseconds scheduled,
                  std::chrono::nanoseconds idle, std::chrono::nanoseconds first_poll) {
  TaskMetrics m;
  m.total_poll_duration = poll;
  m.total_slow_poll_duration = poll;
  m.total_poll_count = m.total_slow_poll_count = poll.count() > 0 ? 1 : 0;
  m.total_scheduled_duration = scheduled;
  m.total_idle_duration = idle;
  m.total_first_poll_delay = first_poll;
  return m;
}

TEST(Diagnose, NamesTheLargestOfTheFourTimesWithItsShare) {
  Diagnosis p = spindle::diagnose(times(60ms, 20ms, 10ms, 10ms));
  EXPECT_EQ(p.cause, Cause::kPoll);
  EXPECT_DOUBLE_EQ(p.share, 0.6);
  EXPECT_EQ(p.time, 60ms);
  EXPECT_NE(p.advice.find("spawn_blocking"), std::string::npos) << p.advice;
  EXPECT_NE(p.advice.find("yield_now"), std::string::npos) << p.advice;
  EXPECT_EQ(p.describe().rfind("poll 60% of the time: ", 0), 0U) << p.describe();

  Diagnosis i = spindle::diagnose(times(1ms, 1ms, 98ms, 0ms));
  EXPECT_EQ(i.cause, Cause::kIdle);
  EXPECT_DOUBLE_EQ(i.share, 0.98);
  EXPECT_NE(i.advice.find("downstream"), std::string::npos) << i.advice;

  Diagnosis f = spindle::diagnose(times(1ms, 1ms, 1ms, 7ms));
  EXPECT_EQ(f.cause, Cause::kFirstPoll);
  EXPECT_NE(f.advice.find("workers"), std::string::npos) << f.advice;
  EXPECT_EQ(spindle::cause_name(f.cause), "first_poll");
}

TEST(Diagnose, ScheduledNamesTheTopCulpritAndItsShareOfTheBlame) {
  TaskMetrics m = times(5ms, 80ms, 15ms, 0ms);
  m.delay_blame = {DelayBlame{"cpu-hog", 60ms}, DelayBlame{"runtime", 20ms}};
  Diagnosis d = spindle::diagnose(m);
  EXPECT_EQ(d.cause, Cause::kScheduled);
  EXPECT_DOUBLE_EQ(d.share, 0.8);
  EXPECT_EQ(d.culprit, "cpu-hog");
  EXPECT_DOUBLE_EQ(d.culprit_share, 0.75);
  EXPECT_NE(d.advice.find("\"cpu-hog\" (75% of the delay)"), std::string::npos) << d.advice;
  // The runtime's own time as the culprit: more workers.
  m.delay_blame = {DelayBlame{"runtime", 1ms}};
  EXPECT_NE(spindle::diagnose(m).advice.find("add workers"), std::string::npos);
  // No blame (no flight recorder): no culprit, the advice says how to get one.
  m.delay_blame.clear();
  Diagnosis none = spindle::diagnose(m);
  EXPECT_EQ(none.culprit, "");
  EXPECT_EQ(none.culprit_share, 0.0);
  EXPECT_NE(none.advice.find("flight_recorder"), std::string::npos) << none.advice;
  // Culprits only matter for a scheduled verdict.
  TaskMetrics p = times(90ms, 10ms, 0ms, 0ms);
  p.delay_blame = {DelayBlame{"x", 1ms}};
  EXPECT_EQ(spindle::diagnose(p).culprit, "");
}

TEST(Diagnose, TiesGoToTheCauseListedFirstAndAnEmptyPeriodIsNone) {
  EXPECT_EQ(spindle::diagnose(times(10ms, 10ms, 10ms, 10ms)).cause, Cause::kPoll);
  EXPECT_EQ(spindle::diagnose(times(0ms, 10ms, 10ms, 0ms)).cause, Cause::kScheduled);
  const Diagnosis empty = spindle::diagnose(TaskMetrics{});
  EXPECT_EQ(empty.cause, Cause::kNone);
  EXPECT_TRUE(std::isnan(empty.share));
  EXPECT_EQ(spindle::cause_name(empty.cause), "none");
  EXPECT_FALSE(empty.describe().empty());
}

// ---- real monitors ------------------------------------------------------------------

/// The setting: a flight recorder (for the culprit), both thresholds 50 us.
struct Setting : spindle::test::ClockedRuntime {
  Setting() : ClockedRuntime(false, 4096) {}
};

TEST(Diagnose, OfRealMonitorsNamesHoldingWaitingAndStarvedTasks) {
  Setting c;
  TaskMonitor blocking = c.monitor("blocking");
  TaskMonitor waiting = c.monitor("waiting");
  TaskMonitor victim = c.monitor("victim");
  TaskMonitor hog = c.monitor("hog");
  // A task whose polls take 10 ms each: poll.
  auto hb = c.rt.spawn(blocking.instrument(spin(c.clock.get(), 1, 10ms)));
  c.rt.block_on([](auto& h) -> Task<void> { co_await h; }(hb));
  // A task idle 40 ms on an event that another task sends: idle.
  auto [tx, rx] = spindle::sync::oneshot<int>();
  auto hw = c.rt.spawn(waiting.instrument([](spindle::sync::Receiver<int> rx) -> Task<void> {
    (void)co_await rx;
  }(std::move(rx))));
  c.rt.block_on([](ManualClock* clock, spindle::sync::Sender<int> tx, auto& h) -> Task<void> {
    co_await spindle::yield_now();  // the waiter polls once and waits
    clock->advance(40ms);
    tx.send(1);
    co_await h;
  }(c.clock.get(), std::move(tx), hw));
  // A victim that yields while a hog's polls take 5 ms: scheduled, the hog.
  auto hv = c.rt.spawn(victim.instrument(spin(c.clock.get(), 3, 0ns)));
  auto hh = c.rt.spawn(hog.instrument(spin(c.clock.get(), 5, 5ms)));
  c.rt.block_on([](auto& a, auto& b) -> Task<void> {
    co_await a;
    co_await b;
  }(hv, hh));

  EXPECT_EQ(spindle::diagnose(blocking.cumulative()).cause, Cause::kPoll);
  EXPECT_EQ(spindle::diagnose(waiting.cumulative()).cause, Cause::kIdle);
  const Diagnosis v = spindle::diagnose(victim.cumulative());
  EXPECT_EQ(v.cause, Cause::kScheduled) << v.describe();
  EXPECT_EQ(v.culprit, "hog") << v.describe();
  EXPECT_DOUBLE_EQ(v.culprit_share, 1.0);
}

}  // namespace
