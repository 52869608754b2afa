// TaskMonitor::Builder and the monitor handle: settings, validation,
// identity and copies.

#include <gtest/gtest.h>

#include <chrono>
#include <spindle/monitor.hpp>
#include <string>

#include "monitor/monitor_support.hpp"

namespace {

using spindle::ConfigError;
using spindle::TaskMonitor;
using namespace std::chrono_literals;

// Expects build() to throw ConfigError whose message names `setting`.
void expect_rejected(const TaskMonitor::Builder& b, const std::string& setting) {
  try {
    (void)b.build();
    ADD_FAILURE() << setting << ": accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(setting), std::string::npos) << e.what();
  }
}

TEST(TaskMonitorBuilder, HasTheDocumentedDefaults) {
  TaskMonitor mon = TaskMonitor::Builder().build();
  EXPECT_EQ(mon.name(), "");
  EXPECT_EQ(mon.slow_poll_threshold(), 50us);
  EXPECT_EQ(mon.long_delay_threshold(), 50us);
  EXPECT_EQ(mon.stall_threshold(), 100ms);
  TaskMonitor plain;
  EXPECT_EQ(plain.slow_poll_threshold(), 50us);
  EXPECT_EQ(plain.name(), "");
}

TEST(TaskMonitorBuilder, KeepsTheSettingsGiven) {
  TaskMonitor mon = TaskMonitor::Builder()
                        .name("checkout")
                        .slow_poll_threshold(1ms)
                        .long_delay_threshold(2ms)
                        .stall_threshold(3s)
                        .build();
  EXPECT_EQ(mon.name(), "checkout");
  EXPECT_EQ(mon.slow_poll_threshold(), 1ms);
  EXPECT_EQ(mon.long_delay_threshold(), 2ms);
  EXPECT_EQ(mon.stall_threshold(), 3s);
}

TEST(TaskMonitorBuilder, RejectsNonPositiveThresholdsNamingTheSetting) {
  for (auto bad : {0ns, -1ns, std::chrono::nanoseconds(-5'000'000)}) {
    SCOPED_TRACE(bad.count());
    expect_rejected(TaskMonitor::Builder().slow_poll_threshold(bad), "slow_poll_threshold");
    expect_rejected(TaskMonitor::Builder().long_delay_threshold(bad), "long_delay_threshold");
    expect_rejected(TaskMonitor::Builder().stall_threshold(bad), "stall_threshold");
  }
  // The smallest positive values are fine.
  EXPECT_NO_THROW((void)TaskMonitor::Builder()
                      .slow_poll_threshold(1ns)
                      .long_delay_threshold(1ns)
                      .stall_threshold(1ns)
                      .build());
}

TEST(TaskMonitorBuilder, RejectsAStallThresholdBelowTheSlowPollThreshold) {
  // A never-yielded poll must also be a slow one.
  TaskMonitor::Builder b;
  b.slow_poll_threshold(50us).stall_threshold(10us);
  expect_rejected(b, "stall_threshold = 10000 ns is below slow_poll_threshold = 50000 ns");
  expect_rejected(TaskMonitor::Builder().slow_poll_threshold(200ms), "stall_threshold");
  // Equal is consistent: a poll of exactly the threshold is both.
  TaskMonitor equal = TaskMonitor::Builder().slow_poll_threshold(2ms).stall_threshold(2ms).build();
  EXPECT_EQ(equal.stall_threshold(), equal.slow_poll_threshold());
}

TEST(TaskMonitorBuilder, CanBuildSeveralIndependentMonitors) {
  TaskMonitor::Builder b;
  b.name("a");
  TaskMonitor one = b.build();
  TaskMonitor two = b.build();
  EXPECT_FALSE(one == two);
  EXPECT_NE(one.id(), two.id());
  EXPECT_EQ(one.name(), two.name());
}

TEST(TaskMonitorHandle, CopiesShareTheStateAndIdsAreNonZeroAndUnique) {
  spindle::test::ClockedRuntime c;
  TaskMonitor a = c.monitor("a");
  TaskMonitor b = c.monitor("b");
  EXPECT_NE(a.id(), 0U);
  EXPECT_NE(b.id(), 0U);
  EXPECT_NE(a.id(), b.id());
  TaskMonitor copy = a;
  EXPECT_TRUE(copy == a);
  EXPECT_EQ(copy.id(), a.id());
  auto h = c.rt.spawn(copy.instrument(spindle::test::value(1)));
  c.join(h);
  EXPECT_EQ(a.cumulative().instrumented_count, 1U);
  EXPECT_EQ(b.cumulative().instrumented_count, 0U);
  TaskMonitor moved = std::move(copy);
  EXPECT_TRUE(moved == a);
  EXPECT_EQ(moved.cumulative().total_poll_count, 1U);
  b = a;
  EXPECT_TRUE(b == a);
  EXPECT_EQ(b.name(), "a");
}

TEST(TaskMonitorHandle, TheTasksHooksReportTheMonitorsNameAndId) {
  spindle::test::ClockedRuntime c;
  TaskMonitor mon = c.monitor("named");
  auto h = c.rt.spawn(mon.instrument(spindle::test::value(1)));
  const spindle::TaskHooks* hooks = h.hooks();
  ASSERT_NE(hooks, nullptr);
  if (hooks != nullptr) {
    EXPECT_EQ(hooks->group_name(), "named");
    EXPECT_EQ(hooks->group_id(), mon.id());
  }
  c.join(h);
}

}  // namespace
