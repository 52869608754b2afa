// spindle_task_delay_blame_seconds_total: the delay blame of each monitor
// (TaskMetrics::delay_blame) as counters, at most 5 named culprits per
// monitor and the rest as culprit="other". Which culprits are named is kept
// from scrape to scrape, so that no series ever goes down. A current_thread
// runtime with a flight recorder and a manual clock makes every value exact.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "scrape_support.hpp"
#include "spindle/exporter.hpp"
#include "spindle/monitor.hpp"
#include "spindle/runtime.hpp"
#include "monitor/monitor_support.hpp"

namespace {

using namespace std::chrono_literals;
using spindle::Task;
using spindle::TaskMonitor;
using spindle::test::ManualClock;
using spindle::test::spin;
using spindle::test::parse_scrape;

constexpr const char* kFamily = "spindle_task_delay_blame_seconds_total";

struct Setting : spindle::test::ClockedRuntime {
  Setting() : ClockedRuntime(false, 1 << 14) {}
  /// The victim yields once while each hog polls once for its duration.
  void round(const TaskMonitor& victim, const std::vector<std::pair<TaskMonitor, std::chrono::nanoseconds>>& hogs) {
    std::vector<spindle::JoinHandle<void>> hs;
    hs.push_back(rt.spawn(victim.instrument(spin(clock.get(), 1, 0ns))));
    for (const auto& [m, d] : hogs) hs.push_back(rt.spawn(m.instrument(spin(clock.get(), 2, d))));
    rt.block_on([](std::vector<spindle::JoinHandle<void>>& hs) -> Task<void> {
      for (auto& h : hs) co_await h;
    }(hs));
  }
};

double blame(const spindle::test::Scrape& s, const std::string& culprit) {
  return s.value(kFamily, {{"monitor", "victim"}, {"culprit", culprit}});
}

TEST(ExporterDelayBlame, FiveNamedCulpritsAndTheRestAsOtherKeptFromScrapeToScrape) {
  Setting c;
  TaskMonitor victim = c.monitor("victim");
  std::vector<std::pair<TaskMonitor, std::chrono::nanoseconds>> hogs;
  for (int i = 1; i <= 7; ++i) hogs.emplace_back(c.monitor("hog" + std::to_string(i)), i * 1ms);
  TaskMonitor quiet = c.monitor("quiet");  // registered, never waits
  spindle::MetricsCollectable exporter;
  exporter.add_monitor(victim);
  exporter.add_monitor(quiet);
  for (const auto& [m, d] : hogs) exporter.add_monitor(m);

  // No delay blamed yet: no family at all.
  EXPECT_EQ(parse_scrape(exporter.text()).type(kFamily), "");

  c.round(victim, hogs);  // one victim delay over every hog's first poll
  const auto first = parse_scrape(exporter.text());
  EXPECT_EQ(first.type(kFamily), "counter");
  const auto series = first.find(kFamily, {{"monitor", "victim"}});
  ASSERT_EQ(series.size(), 6U) << "5 named culprits and other";
  // The five largest are named; hog1 + hog2 (1 ms + 2 ms) are "other".
  for (int i = 3; i <= 7; ++i) EXPECT_DOUBLE_EQ(blame(first, "hog" + std::to_string(i)), i * 1e-3);
  EXPECT_DOUBLE_EQ(blame(first, "other"), 3e-3);
  EXPECT_TRUE(first.find(kFamily, {{"monitor", "quiet"}}).empty())
      << "a monitor without long delays has no blame series";
  EXPECT_FALSE(first.find(kFamily, {{"monitor", "hog1"}}).empty())
      << "the hogs waited for each other too";
  const auto check = spindle::test::promtool_check(exporter.text());
  EXPECT_EQ(check.exit_code, 0) << check.output;

  // A bigger newcomer later: the named set does not change, so every
  // series only grows; the newcomer is counted under "other".
  hogs.emplace_back(c.monitor("hog-big"), 20ms);
  exporter.add_monitor(hogs.back().first);
  c.round(victim, hogs);
  const auto second = parse_scrape(exporter.text());
  ASSERT_EQ(second.find(kFamily, {{"monitor", "victim"}}).size(), 6U);
  for (int i = 3; i <= 7; ++i) {
    EXPECT_DOUBLE_EQ(blame(second, "hog" + std::to_string(i)), 2 * i * 1e-3);
  }
  EXPECT_DOUBLE_EQ(blame(second, "other"), 3e-3 + 3e-3 + 20e-3);
  EXPECT_TRUE(second.find(kFamily, {{"culprit", "hog-big"}}).empty());
  // The exported shares add up to the monitor's long delays.
  EXPECT_NEAR(second.sum(kFamily, {{"monitor", "victim"}}),
              second.value("spindle_task_scheduled_time_seconds_total",
                           {{"monitor", "victim"}, {"kind", "long"}}),
              1e-9);
}

TEST(ExporterDelayBlame, ARemovedAndReaddedMonitorChoosesItsCulpritsAfresh) {
  Setting c;
  spindle::MetricsCollectable exporter;
  {
    TaskMonitor victim = c.monitor("victim");
    exporter.add_monitor(victim);
    std::vector<std::pair<TaskMonitor, std::chrono::nanoseconds>> hogs;
    for (int i = 1; i <= 6; ++i) hogs.emplace_back(c.monitor("old" + std::to_string(i)), 1ms);
    c.round(victim, hogs);
    EXPECT_EQ(parse_scrape(exporter.text()).find(kFamily, {{"culprit", "other"}}).size(), 1U);
    EXPECT_TRUE(exporter.remove_monitor(victim));
  }
  TaskMonitor victim = c.monitor("victim");  // a new monitor under the old name
  exporter.add_monitor(victim);
  c.round(victim, {{c.monitor("new"), 2ms}});
  const auto s = parse_scrape(exporter.text());
  EXPECT_DOUBLE_EQ(blame(s, "new"), 2e-3);
  EXPECT_TRUE(s.find(kFamily, {{"culprit", "old1"}}).empty());
}

}  // namespace
