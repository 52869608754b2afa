// What a scrape reads, checked against the monitors themselves: the
// exported histograms keep only each monitor's used bucket range (the
// reading is sparse, and the monitor's per-worker slots are summed over
// that range only), so every `le` count must still equal the in-process
// cumulative count, from a duration below the first bound to one beyond
// the last. And the reading kept from scrape to scrape (its memory) must
// not keep a removed monitor alive.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "monitor/monitor_support.hpp"
#include "scrape_support.hpp"
#include "spindle/exporter.hpp"
#include "spindle/monitor.hpp"
#include "spindle/runtime.hpp"

namespace {

using namespace std::chrono_literals;
using spindle::Histogram;
using spindle::Task;
using spindle::TaskMonitor;
using spindle::test::parse_scrape;
using spindle::test::spin;

/// Checks every `le` bucket, _count and _sum of `family` for `monitor`
/// against `h`.
void expect_matches(const spindle::test::Scrape& s, const std::string& family,
                    const std::string& monitor, const Histogram& h) {
  SCOPED_TRACE(family + " of " + monitor);
  const auto buckets = s.find(family + "_bucket", {{"monitor", monitor}});
  ASSERT_EQ(buckets.size(), Histogram::kClassicBounds + 1);
  for (std::size_t c = 0; c < Histogram::kClassicBounds; ++c) {
    EXPECT_EQ(buckets[c].value,
              static_cast<double>(h.cumulative_count(Histogram::classic_bucket(c))))
        << "le=" << buckets[c].labels.at("le");
  }
  EXPECT_EQ(buckets.back().value, static_cast<double>(h.count()));
  EXPECT_EQ(s.value(family + "_count", {{"monitor", monitor}}), static_cast<double>(h.count()));
  EXPECT_DOUBLE_EQ(s.value(family + "_sum", {{"monitor", monitor}}),
                   static_cast<double>(h.sum().count()) / 1e9);
}

TEST(ExporterScrapeReading, SparseHistogramsExportEveryBucketOfTheMonitor) {
  spindle::test::ClockedRuntime c(/*poll_timing=*/false);
  // Polls from below the first bound (20 ns) to beyond the last (100 s):
  // the used range spans the whole histogram, with empty buckets inside.
  TaskMonitor wide = c.monitor("wide");
  // One duration (and the final, instant poll): a range of two buckets.
  TaskMonitor narrow = c.monitor("narrow");
  // Never polled: an empty range.
  TaskMonitor unused = c.monitor("unused");
  spindle::MetricsCollectable exporter;
  for (const TaskMonitor* m : {&wide, &narrow, &unused}) exporter.add_monitor(*m);

  const std::vector<std::chrono::nanoseconds> durations = {20ns, 150ns, 1500ns, 70us,
                                                           3ms,  2s,    100s};
  std::vector<spindle::JoinHandle<void>> hs;
  for (const auto d : durations)
    hs.push_back(c.rt.spawn(wide.instrument(spin(c.clock.get(), 3, d))));
  hs.push_back(c.rt.spawn(narrow.instrument(spin(c.clock.get(), 5, 1500ns))));
  c.rt.block_on([](std::vector<spindle::JoinHandle<void>>& hs) -> Task<void> {
    for (auto& h : hs) co_await h;
  }(hs));

  const auto s = parse_scrape(exporter.text());
  for (const TaskMonitor* m : {&wide, &narrow, &unused}) {
    const spindle::TaskMetrics t = m->cumulative();
    expect_matches(s, "spindle_task_poll_duration_seconds", m->name(), t.poll_duration_histogram);
    expect_matches(s, "spindle_task_scheduled_delay_seconds", m->name(),
                   t.scheduled_delay_histogram);
    expect_matches(s, "spindle_task_idle_duration_seconds", m->name(), t.idle_duration_histogram);
  }
  // The in-process figures themselves are the truth: each spin task polls
  // 3 times for its duration and once more, instantly, to finish (the
  // +Inf bucket holds the 100 s polls; the first, ≤ 64 ns, the 20 ns and
  // the instant ones).
  const spindle::TaskMetrics w = wide.cumulative();
  EXPECT_EQ(w.poll_duration_histogram.count(), 4 * durations.size());
  EXPECT_EQ(w.poll_duration_histogram.bucket_count(Histogram::kBuckets - 1), 3u);
  EXPECT_EQ(w.poll_duration_histogram.bucket_count(0), 3u + durations.size());
  const spindle::TaskMetrics n = narrow.cumulative();
  EXPECT_EQ(n.poll_duration_histogram.bucket_count(Histogram::bucket_for(1500)), 5u);
  EXPECT_EQ(s.value("spindle_task_poll_duration_seconds_count", {{"monitor", "unused"}}), 0.0);

  // The three writers agree on the same reading: text(), the families
  // (Collect) and the chunked endpoint path.
  std::string chunked;
  std::string scratch;
  exporter.write_text_in_chunks(scratch, [&](std::string_view chunk) { chunked += chunk; });
  EXPECT_EQ(chunked, exporter.text());
}

TEST(ExporterScrapeReading, TheKeptReadingDoesNotKeepARemovedMonitorAlive) {
  auto rt = spindle::Runtime::Builder().worker_threads(1).build();
  spindle::MetricsCollectable exporter;
  auto sentinel = std::make_shared<int>(1);
  std::weak_ptr<int> watch = sentinel;
  {
    // The monitor's callback owns the sentinel: it lives as long as the monitor.
    TaskMonitor m = TaskMonitor::Builder()
                        .name("short-lived")
                        .on_task_finished(
                            [s = std::move(sentinel)](const spindle::PerTaskMetrics&) { (void)s; })
                        .build();
    exporter.add_monitor(m);
    rt.spawn(m.instrument(spindle::test::yields(2))).join();
    const auto s = parse_scrape(exporter.text());
    EXPECT_EQ(
        s.value("spindle_task_polls_total", {{"monitor", "short-lived"}, {"kind", "fast"}}) +
            s.value("spindle_task_polls_total", {{"monitor", "short-lived"}, {"kind", "slow"}}),
        3.0);
    std::string scratch;
    exporter.write_text_in_chunks(scratch, [](std::string_view) {});
    EXPECT_TRUE(exporter.remove_monitor(m));
  }
  EXPECT_TRUE(watch.expired()) << "a scrape's kept reading still holds the removed monitor";
  // And the next scrape, on the kept reading, has no trace of it.
  const auto s = parse_scrape(exporter.text());
  EXPECT_TRUE(s.find("spindle_task_polls_total", {{"monitor", "short-lived"}}).empty());
}

}  // namespace
