// `co_await mon.instrument(task)`: an operand measured inline, without a
// spawn (its polls are part of the caller's; its scheduled and idle time are
// the caller's), and one task carrying several monitors. A current_thread
// runtime and a manual clock: every figure is exact.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "monitor/monitor_support.hpp"

namespace {

using namespace std::chrono_literals;
using spindle::PerTaskMetrics;
using spindle::Task;
using spindle::TaskMetrics;
using spindle::TaskMonitor;
using spindle::test::ManualClock;
using spindle::test::yields;

/// The setting: both thresholds 50 us; a monitor may report each finished task.
struct Setting : spindle::test::ClockedRuntime {
  TaskMonitor monitor(const std::string& name,
                      std::function<void(const PerTaskMetrics&)> on_finished = {}) const {
    auto b = monitor_builder(name);
    if (on_finished) b.on_task_finished(std::move(on_finished));
    return b.build();
  }
};

/// Two polls of 30 us and 70 us, a yield between them; returns 7.
Task<int> two_polls(ManualClock* clock) {
  clock->advance(30us);
  co_await spindle::yield_now();
  clock->advance(70us);
  co_return 7;
}

TEST(InlineInstrument, AnAwaitedOperandIsMeasuredWithoutASpawn) {
  Setting c;
  TaskMonitor op = c.monitor("operand");
  TaskMonitor caller = c.monitor("caller");
  const std::uint64_t spawned_before = c.rt.handle().counters().spawned_tasks;
  auto h = c.rt.spawn(caller.instrument([](ManualClock* clock, TaskMonitor op) -> Task<int> {
    auto operand = op.instrument(two_polls(clock));
    clock->advance(5us);  // the caller's own work before the await
    const int v = co_await std::move(operand);
    co_return v + 1;
  }(c.clock.get(), op)));
  EXPECT_EQ(c.rt.block_on([](auto& h) -> Task<int> { co_return co_await h; }(h)), 8);
  EXPECT_EQ(c.rt.handle().counters().spawned_tasks - spawned_before, 2U)
      << "the caller and block_on's root: the operand is not spawned";

  const TaskMetrics m = op.cumulative();
  EXPECT_EQ(m.instrumented_count, 1U);
  EXPECT_EQ(m.dropped_count, 1U);
  EXPECT_EQ(m.total_poll_count, 2U);
  EXPECT_EQ(m.total_poll_duration, 100us);
  EXPECT_EQ(m.total_slow_poll_count, 1U);  // the 70 us one
  EXPECT_EQ(m.first_poll_count, 1U);
  EXPECT_EQ(m.total_first_poll_delay, 5us) << "instrument() → the operand's first poll";
  EXPECT_EQ(m.total_wake_count, 1U);
  EXPECT_EQ(m.total_self_wake_count, 1U) << "the yield wakes the caller, which resumes it";
  // The caller's monitor sees the whole: 5 + 30 us, then 70 us.
  const TaskMetrics cm = caller.cumulative();
  EXPECT_EQ(cm.total_poll_count, 2U);
  EXPECT_EQ(cm.total_poll_duration, 105us);
}

TEST(InlineInstrument, TheOperandsIdleAndScheduledTimeAreTheCallers) {
  Setting c;
  TaskMonitor op = c.monitor("operand");
  auto [tx, rx] = spindle::sync::oneshot<int>();
  auto waiter = c.rt.spawn([](TaskMonitor op, spindle::sync::Receiver<int> rx) -> Task<int> {
    co_return co_await op.instrument([](spindle::sync::Receiver<int> rx) -> Task<int> {
      co_return co_await std::move(rx);
    }(std::move(rx)));
  }(op, std::move(rx)));
  const int v = c.rt.block_on([](ManualClock* clock, spindle::sync::Sender<int> tx,
                                 spindle::JoinHandle<int>& h) -> Task<int> {
    co_await spindle::yield_now();  // the waiter's first poll: it waits
    clock->advance(10ms);
    tx.send(3);                     // the wake, at 10 ms
    clock->advance(2ms);            // 2 ms more before the waiter is polled
    co_return co_await h;
  }(c.clock.get(), std::move(tx), waiter));
  EXPECT_EQ(v, 3);
  const TaskMetrics m = op.cumulative();
  EXPECT_EQ(m.total_idled_count, 1U);
  EXPECT_EQ(m.total_idle_duration, 10ms);
  EXPECT_EQ(m.total_scheduled_count, 1U);
  EXPECT_EQ(m.total_scheduled_duration, 2ms);
  EXPECT_EQ(m.total_long_delay_count, 1U);
}

TEST(InlineInstrument, AnExceptionPropagatesAndTheOperandIsDropped) {
  Setting c;
  TaskMonitor op = c.monitor("operand");
  auto h = c.rt.spawn([](TaskMonitor op) -> Task<int> {
    try {
      co_await op.instrument([]() -> Task<int> {
        co_await spindle::yield_now();
        throw std::runtime_error("operand failed");
      }());
    } catch (const std::runtime_error& e) {
      co_return std::string(e.what()) == "operand failed" ? 1 : 0;
    }
    co_return 0;
  }(op));
  EXPECT_EQ(c.rt.block_on([](auto& h) -> Task<int> { co_return co_await h; }(h)), 1);
  const TaskMetrics m = op.cumulative();
  EXPECT_EQ(m.total_poll_count, 2U);
  EXPECT_EQ(op.live_tasks(), 0U);
}

TEST(InlineInstrument, AbortingTheCallerDropsTheWaitingOperandCancelled) {
  Setting c;
  std::vector<PerTaskMetrics> finished;
  TaskMonitor op = c.monitor("operand", [&finished](const PerTaskMetrics& p) {
    finished.push_back(p);
  });
  auto [tx, rx] = spindle::sync::oneshot<int>();
  auto h = c.rt.spawn([](TaskMonitor op, spindle::sync::Receiver<int> rx) -> Task<int> {
    co_return co_await op.instrument([](spindle::sync::Receiver<int> rx) -> Task<int> {
      co_return co_await std::move(rx);
    }(std::move(rx)));
  }(op, std::move(rx)));
  c.rt.block_on(yields(4));
  EXPECT_EQ(op.live_tasks(), 1U);
  h.abort();
  c.rt.block_on(yields(4));
  EXPECT_EQ(op.live_tasks(), 0U);
  ASSERT_EQ(finished.size(), 1U);
  EXPECT_TRUE(finished[0].cancelled);
  EXPECT_EQ(finished[0].polls, 1U);
  (void)tx;
}

TEST(InlineInstrument, AnEmptyOperandIsAUsageErrorAndReleasesItsHooks) {
  Setting c;
  TaskMonitor op = c.monitor("operand");
  auto h = c.rt.spawn([](TaskMonitor op) -> Task<int> {
    Task<int> empty;
    try {
      (void)co_await op.instrument(std::move(empty));
    } catch (const spindle::UsageError&) {
      co_return 1;
    }
    co_return 0;
  }(op));
  EXPECT_EQ(c.rt.block_on([](auto& h) -> Task<int> { co_return co_await h; }(h)), 1);
  EXPECT_EQ(op.live_tasks(), 0U);
}

TEST(SeveralMonitors, OneSpawnedTaskIsCountedByEachOfItsMonitors) {
  Setting c;
  int route_finished = 0;
  int service_finished = 0;
  TaskMonitor route = c.monitor("route", [&](const PerTaskMetrics& p) {
    ++route_finished;
    EXPECT_EQ(p.polls, 2U);
  });
  TaskMonitor service = c.monitor("service", [&](const PerTaskMetrics&) { ++service_finished; });
  auto h = c.rt.spawn(service.instrument(route.instrument(two_polls(c.clock.get()))));
  EXPECT_EQ(c.rt.block_on([](auto& h) -> Task<int> { co_return co_await h; }(h)), 7);
  for (const TaskMonitor* m : {&route, &service}) {
    const TaskMetrics t = m->cumulative();
    EXPECT_EQ(t.instrumented_count, 1U) << m->name();
    EXPECT_EQ(t.dropped_count, 1U) << m->name();
    EXPECT_EQ(t.total_poll_count, 2U) << m->name();
    EXPECT_EQ(t.total_poll_duration, 100us) << m->name();
  }
  EXPECT_EQ(route_finished, 1);
  EXPECT_EQ(service_finished, 1);
  // The task is named after its first monitor; per-task figures through
  // the handle are there.
  const auto per_task = spindle::task_metrics(h);
  ASSERT_TRUE(per_task.has_value());
  EXPECT_EQ(per_task->monitor, "route");
}

TEST(SeveralMonitors, AnInlineOperandCanCarrySeveralMonitorsToo) {
  Setting c;
  TaskMonitor route = c.monitor("route");
  TaskMonitor service = c.monitor("service");
  TaskMonitor third = c.monitor("third");
  auto h = c.rt.spawn([](ManualClock* clock, TaskMonitor a, TaskMonitor b,
                         TaskMonitor d) -> Task<int> {
    co_return co_await d.instrument(b.instrument(a.instrument(two_polls(clock))));
  }(c.clock.get(), route, service, third));
  EXPECT_EQ(c.rt.block_on([](auto& h) -> Task<int> { co_return co_await h; }(h)), 7);
  for (const TaskMonitor* m : {&route, &service, &third}) {
    EXPECT_EQ(m->cumulative().total_poll_count, 2U) << m->name();
    EXPECT_EQ(m->live_tasks(), 0U) << m->name();
  }
}

}  // namespace
