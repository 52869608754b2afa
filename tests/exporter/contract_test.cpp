// The scrape against exporter/METRICS.md: every name, type and label set,
// values consistent with TaskMonitor::cumulative() and the runtime's
// counters, the histogram buckets, and `promtool check metrics`.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "scrape_support.hpp"
#include "spindle/exporter.hpp"
#include "spindle/monitor.hpp"
#include "spindle/runtime.hpp"

namespace {

using spindle::test::LabelMap;
using spindle::test::Scrape;
using namespace std::chrono_literals;

struct Contract {
  const char* name;
  const char* type;
  std::set<std::string> labels;  // besides the constant labels (and `le` on _bucket)
};

// exporter/METRICS.md, table by table.
const std::vector<Contract> kTaskContract = {
    {"spindle_task_instrumented_total", "counter", {"monitor"}},
    {"spindle_task_dropped_total", "counter", {"monitor"}},
    {"spindle_task_live_tasks", "gauge", {"monitor"}},
    {"spindle_task_first_polls_total", "counter", {"monitor"}},
    {"spindle_task_first_poll_delay_seconds_total", "counter", {"monitor"}},
    {"spindle_task_polls_total", "counter", {"monitor", "kind"}},
    {"spindle_task_poll_time_seconds_total", "counter", {"monitor", "kind"}},
    {"spindle_task_poll_duration_seconds", "histogram", {"monitor"}},
    {"spindle_task_scheduled_total", "counter", {"monitor", "kind"}},
    {"spindle_task_scheduled_time_seconds_total", "counter", {"monitor", "kind"}},
    {"spindle_task_scheduled_delay_seconds", "histogram", {"monitor"}},
    {"spindle_task_idled_total", "counter", {"monitor"}},
    {"spindle_task_idle_time_seconds_total", "counter", {"monitor"}},
    {"spindle_task_idle_duration_seconds", "histogram", {"monitor"}},
    {"spindle_task_max_idle_duration_seconds", "gauge", {"monitor"}},
    {"spindle_task_wakes_total", "counter", {"monitor", "kind"}},
    {"spindle_task_never_yielded_polls_total", "counter", {"monitor"}},
    {"spindle_task_slow_poll_threshold_seconds", "gauge", {"monitor"}},
    {"spindle_task_long_delay_threshold_seconds", "gauge", {"monitor"}},
};

const std::vector<Contract> kRuntimeContract = {
    {"spindle_runtime_workers", "gauge", {"runtime"}},
    {"spindle_runtime_live_tasks", "gauge", {"runtime"}},
    {"spindle_runtime_spawned_tasks_total", "counter", {"runtime"}},
    {"spindle_runtime_polls_total", "counter", {"runtime", "worker"}},
    {"spindle_runtime_busy_seconds_total", "counter", {"runtime", "worker"}},
    {"spindle_runtime_parks_total", "counter", {"runtime", "worker"}},
    {"spindle_runtime_noops_total", "counter", {"runtime", "worker"}},
    {"spindle_runtime_steals_total", "counter", {"runtime", "worker"}},
    {"spindle_runtime_steal_operations_total", "counter", {"runtime", "worker"}},
    {"spindle_runtime_local_schedules_total", "counter", {"runtime", "worker"}},
    {"spindle_runtime_remote_schedules_total", "counter", {"runtime"}},
    {"spindle_runtime_overflows_total", "counter", {"runtime", "worker"}},
    {"spindle_runtime_budget_forced_yields_total", "counter", {"runtime", "worker"}},
    {"spindle_runtime_io_driver_ready_total", "counter", {"runtime", "worker"}},
    {"spindle_runtime_global_queue_depth", "gauge", {"runtime"}},
    {"spindle_runtime_local_queue_depth", "gauge", {"runtime", "worker"}},
    {"spindle_runtime_blocking_threads", "gauge", {"runtime"}},
    {"spindle_runtime_idle_blocking_threads", "gauge", {"runtime"}},
    {"spindle_runtime_blocking_queue_depth", "gauge", {"runtime"}},
    {"spindle_runtime_max_blocking_threads", "gauge", {"runtime"}},
    {"spindle_runtime_unhandled_exceptions_total", "counter", {"runtime"}},
    {"spindle_runtime_stalls_total", "counter", {"runtime", "worker"}},
    {"spindle_runtime_uptime_seconds", "gauge", {"runtime"}},
    {"spindle_runtime_poll_duration_seconds", "histogram", {"runtime"}},
    {"spindle_runtime_scheduled_delay_seconds", "histogram", {"runtime"}},
};

// The endpoint's own series (PrometheusExporter only, not MetricsCollectable).
const std::vector<Contract> kExporterContract = {
    {"spindle_exporter_rejected_connections_total", "counter", {}},
    {"spindle_exporter_scrapes_total", "counter", {"encoding"}},
};

double seconds(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e9; }

// Durations travel as seconds in a double printed with 16 digits.
void expect_seconds(double scraped, std::chrono::nanoseconds expected, const std::string& what) {
  EXPECT_NEAR(scraped, seconds(expected), 1e-12 + 1e-12 * seconds(expected)) << what;
}

std::set<std::string> keys(const LabelMap& labels) {
  std::set<std::string> k;
  for (const auto& [name, value] : labels) k.insert(name);
  return k;
}

/// A 2-worker runtime with poll timing, two monitors whose tasks polled a
/// known number of times and now wait, an idle stall detector, and an
/// exporter on a free port.
class ExporterContract : public ::testing::Test {
 protected:
  static constexpr int kTasks = 6;
  static constexpr int kYields = 3;

  ExporterContract()
      : rt_(spindle::Runtime::Builder()
                .worker_threads(2)
                .poll_timing(true)
                .max_blocking_threads(8)
                .build()),
        checkout_(spindle::TaskMonitor::Builder()
                      .name("checkout")
                      .slow_poll_threshold(50us)
                      .long_delay_threshold(200us)
                      .build()),
        search_(spindle::TaskMonitor::Builder().name("search").build()),
        stalls_(
            std::make_shared<spindle::StallDetector>(rt_.handle(), spindle::test::manual_scan())),
        exporter_({.bind_address = "127.0.0.1:0", .const_labels = {{"service", "checkout"}}}) {
    exporter_.add_runtime(rt_.handle(), "main", stalls_);
    exporter_.add_monitor(checkout_);
    exporter_.add_monitor(search_);
  }

  Scrape scrape_over_http(std::string* body = nullptr) {
    const auto r = spindle::test::http_get(exporter_.port(), "/metrics");
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.headers.count("content-type"), 0u);
    EXPECT_EQ(r.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    if (body != nullptr) *body = r.body;
    return spindle::test::parse_scrape(r.body);
  }

  spindle::Runtime rt_;
  spindle::TaskMonitor checkout_;
  spindle::TaskMonitor search_;
  std::shared_ptr<spindle::StallDetector> stalls_;
  spindle::PrometheusExporter exporter_;
};

TEST_F(ExporterContract, LiveScrapeOfRunningTasksPassesPromtoolCheckMetrics) {
  spindle::test::ParkedTasks parked(rt_.handle(), checkout_, kTasks, kYields);
  // Tasks that keep running while the scrape happens.
  std::atomic<bool> stop{false};
  auto busy = rt_.spawn(search_.instrument([](std::atomic<bool>& stop) -> spindle::Task<void> {
    while (!stop.load()) co_await spindle::yield_now();
  }(stop)));
  ASSERT_TRUE(parked.wait_parked());

  std::string body;
  scrape_over_http(&body);
  ASSERT_NE(body.find("spindle_task_polls_total"), std::string::npos);
  const auto check = spindle::test::promtool_check(body);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_EQ(check.output, "") << "promtool findings:\n" << check.output;

  stop.store(true);
  busy.join();
}

TEST_F(ExporterContract, EveryMetricOfTheContractIsScrapedWithItsTypeAndLabels) {
  spindle::test::ParkedTasks parked(rt_.handle(), checkout_, kTasks, kYields);
  spindle::test::ParkedTasks parked_search(rt_.handle(), search_, 2, 1);
  ASSERT_TRUE(parked.wait_parked());
  ASSERT_TRUE(parked_search.wait_parked());
  const Scrape s = scrape_over_http();

  const auto check_family = [&](const Contract& c, const std::set<std::string>& per_source) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(s.type(c.name), c.type);
    EXPECT_FALSE(s.helps.count(c.name) == 0 || s.helps.at(c.name).empty()) << "no help text";
    std::vector<std::string> names;
    if (std::string(c.type) == "histogram") {
      names = {std::string(c.name) + "_bucket", std::string(c.name) + "_sum",
               std::string(c.name) + "_count"};
    } else {
      names = {c.name};
    }
    for (const std::string& n : names) {
      const auto samples = s.find(n);
      EXPECT_FALSE(samples.empty()) << n << " missing";
      std::set<std::string> sources;
      for (const auto& sample : samples) {
        std::set<std::string> want = c.labels;
        want.insert("service");
        if (n.ends_with("_bucket")) want.insert("le");
        EXPECT_EQ(keys(sample.labels), want) << n;
        EXPECT_EQ(sample.labels.at("service"), "checkout") << n;
        for (const char* l : {"monitor", "runtime"}) {
          if (sample.labels.count(l) != 0) sources.insert(sample.labels.at(l));
        }
      }
      EXPECT_EQ(sources, per_source) << n;
    }
  };
  for (const Contract& c : kTaskContract) check_family(c, {"checkout", "search"});
  for (const Contract& c : kRuntimeContract) check_family(c, {"main"});
  for (const Contract& c : kExporterContract) check_family(c, {});

  // Nothing else: every family is spindle's (no exposer_* self-metrics)
  // and in the contract.
  for (const auto& [name, type] : s.types) {
    if (!name.starts_with("spindle_")) {
      ADD_FAILURE() << "unexpected family " << name;
      continue;
    }
    bool listed = false;
    for (const auto* table : {&kTaskContract, &kRuntimeContract, &kExporterContract}) {
      for (const Contract& c : *table) listed = listed || name == c.name;
    }
    EXPECT_TRUE(listed) << name << " is not in METRICS.md";
  }

  // kind splits and worker labels take exactly the documented values.
  for (const auto& [family, kinds] : std::vector<std::pair<std::string, std::set<std::string>>>{
           {"spindle_task_polls_total", {"fast", "slow"}},
           {"spindle_task_poll_time_seconds_total", {"fast", "slow"}},
           {"spindle_task_scheduled_total", {"short", "long"}},
           {"spindle_task_scheduled_time_seconds_total", {"short", "long"}},
           {"spindle_task_wakes_total", {"self", "other"}}}) {
    std::set<std::string> seen;
    for (const auto& sample : s.find(family, {{"monitor", "checkout"}})) {
      seen.insert(sample.labels.at("kind"));
    }
    EXPECT_EQ(seen, kinds) << family;
  }
  std::set<std::string> encodings;
  for (const auto& sample : s.find("spindle_exporter_scrapes_total")) {
    encodings.insert(sample.labels.at("encoding"));
  }
  EXPECT_EQ(encodings, (std::set<std::string>{"gzip", "identity"}));
  for (const Contract& c : kRuntimeContract) {
    if (c.labels.count("worker") == 0) continue;
    std::set<std::string> workers;
    for (const auto& sample : s.find(c.name)) workers.insert(sample.labels.at("worker"));
    EXPECT_EQ(workers, (std::set<std::string>{"0", "1"})) << c.name;
  }
}

TEST_F(ExporterContract, TaskValuesMatchTheMonitorsCumulativeMetrics) {
  spindle::test::ParkedTasks parked(rt_.handle(), checkout_, kTasks, kYields);
  ASSERT_TRUE(parked.wait_parked());
  const Scrape s = scrape_over_http();
  const spindle::TaskMetrics m = checkout_.cumulative();  // parked: nothing changes
  const LabelMap mon = {{"monitor", "checkout"}};
  const auto with = [&](const char* kind) {
    LabelMap l = mon;
    l["kind"] = kind;
    return l;
  };

  EXPECT_EQ(m.total_poll_count, static_cast<std::uint64_t>(kTasks * (kYields + 1)));
  EXPECT_EQ(s.value("spindle_task_instrumented_total", mon), kTasks);
  EXPECT_EQ(s.value("spindle_task_dropped_total", mon), 0);
  EXPECT_EQ(s.value("spindle_task_live_tasks", mon), kTasks);
  EXPECT_EQ(s.value("spindle_task_first_polls_total", mon), m.first_poll_count);
  expect_seconds(s.value("spindle_task_first_poll_delay_seconds_total", mon),
                 m.total_first_poll_delay, "first poll delay");

  // Polls: fast + slow == total, each as in cumulative(); histogram count == polls.
  EXPECT_EQ(s.value("spindle_task_polls_total", with("fast")), m.total_fast_poll_count);
  EXPECT_EQ(s.value("spindle_task_polls_total", with("slow")), m.total_slow_poll_count);
  EXPECT_EQ(s.sum("spindle_task_polls_total", mon), m.total_poll_count);
  expect_seconds(s.value("spindle_task_poll_time_seconds_total", with("fast")),
                 m.total_fast_poll_duration, "fast poll time");
  expect_seconds(s.value("spindle_task_poll_time_seconds_total", with("slow")),
                 m.total_slow_poll_duration, "slow poll time");
  EXPECT_EQ(s.value("spindle_task_poll_duration_seconds_count", mon), m.total_poll_count);
  expect_seconds(s.value("spindle_task_poll_duration_seconds_sum", mon), m.total_poll_duration,
                 "poll histogram sum");

  // Scheduled: short + long == total_scheduled_count.
  EXPECT_EQ(s.value("spindle_task_scheduled_total", with("short")), m.total_short_delay_count);
  EXPECT_EQ(s.value("spindle_task_scheduled_total", with("long")), m.total_long_delay_count);
  EXPECT_EQ(s.sum("spindle_task_scheduled_total", mon), m.total_scheduled_count);
  expect_seconds(s.value("spindle_task_scheduled_time_seconds_total", with("short")),
                 m.total_short_delay_duration, "short delays");
  expect_seconds(s.value("spindle_task_scheduled_time_seconds_total", with("long")),
                 m.total_long_delay_duration, "long delays");
  EXPECT_EQ(s.value("spindle_task_scheduled_delay_seconds_count", mon), m.total_scheduled_count);

  // Idle.
  EXPECT_EQ(s.value("spindle_task_idled_total", mon), m.total_idled_count);
  expect_seconds(s.value("spindle_task_idle_time_seconds_total", mon), m.total_idle_duration,
                 "idle time");
  EXPECT_EQ(s.value("spindle_task_idle_duration_seconds_count", mon), m.total_idled_count);
  expect_seconds(s.value("spindle_task_max_idle_duration_seconds", mon), m.max_idle_duration,
                 "max idle");

  // Wakes: self + other == all; every yield_now is a self-wake.
  EXPECT_EQ(s.value("spindle_task_wakes_total", with("self")), m.total_self_wake_count);
  EXPECT_EQ(s.sum("spindle_task_wakes_total", mon), m.total_wake_count);
  EXPECT_GE(m.total_self_wake_count, static_cast<std::uint64_t>(kTasks * kYields));
  EXPECT_EQ(s.value("spindle_task_never_yielded_polls_total", mon), m.total_never_yielded_count);

  EXPECT_DOUBLE_EQ(s.value("spindle_task_slow_poll_threshold_seconds", mon), 50e-6);
  EXPECT_DOUBLE_EQ(s.value("spindle_task_long_delay_threshold_seconds", mon), 200e-6);
}

TEST_F(ExporterContract, HistogramsHaveThePowerOfTwoBucketsOfSpindleHistogramInSeconds) {
  spindle::test::ParkedTasks parked(rt_.handle(), checkout_, kTasks, kYields);
  ASSERT_TRUE(parked.wait_parked());
  const Scrape s = scrape_over_http();
  const spindle::TaskMetrics m = checkout_.cumulative();

  for (const char* family :
       {"spindle_task_poll_duration_seconds", "spindle_task_scheduled_delay_seconds",
        "spindle_task_idle_duration_seconds", "spindle_runtime_poll_duration_seconds",
        "spindle_runtime_scheduled_delay_seconds"}) {
    SCOPED_TRACE(family);
    const LabelMap source = std::string(family).starts_with("spindle_task_")
                                ? LabelMap{{"monitor", "checkout"}}
                                : LabelMap{{"runtime", "main"}};
    const auto buckets = s.find(std::string(family) + "_bucket", source);
    // METRICS.md: 2^k ns for k = 6…36, then +Inf — 32, not all 302 buckets.
    ASSERT_EQ(buckets.size(), spindle::Histogram::kClassicBounds + 1);
    ASSERT_EQ(buckets.size(), 32u);
    double previous = -1;
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      const std::string& le = buckets[i].labels.at("le");
      if (i < spindle::Histogram::kClassicBounds) {
        const double bound =
            seconds(spindle::Histogram::upper_bound(spindle::Histogram::classic_bucket(i)));
        EXPECT_NEAR(std::stod(le), bound, bound * 1e-12) << "le=" << le;
        EXPECT_NEAR(std::stod(le), std::ldexp(1.0, 6 + static_cast<int>(i)) / 1e9, bound * 1e-12)
            << "le=" << le;
      } else {
        EXPECT_EQ(le, "+Inf");
      }
      EXPECT_GE(buckets[i].value, previous) << "buckets are cumulative";
      previous = buckets[i].value;
    }
    EXPECT_EQ(buckets.back().value, s.value(std::string(family) + "_count", source));
  }

  // The buckets are the monitor's own counts, cumulative to each exported bound.
  const auto poll_buckets =
      s.find("spindle_task_poll_duration_seconds_bucket", {{"monitor", "checkout"}});
  ASSERT_EQ(poll_buckets.size(), spindle::Histogram::kClassicBounds + 1);
  for (std::size_t i = 0; i < spindle::Histogram::kClassicBounds; ++i) {
    EXPECT_EQ(poll_buckets[i].value,
              m.poll_duration_histogram.cumulative_count(spindle::Histogram::classic_bucket(i)))
        << i;
  }
  EXPECT_EQ(poll_buckets.back().value, m.poll_duration_histogram.count());
}

TEST_F(ExporterContract, RuntimeValuesMatchItsCounters) {
  spindle::test::ParkedTasks parked(rt_.handle(), checkout_, kTasks, kYields);
  ASSERT_TRUE(parked.wait_parked());
  const Scrape s = scrape_over_http();
  const LabelMap main = {{"runtime", "main"}};

  EXPECT_EQ(s.value("spindle_runtime_workers", main), 2);
  EXPECT_EQ(s.value("spindle_runtime_max_blocking_threads", main), 8);
  EXPECT_GE(s.value("spindle_runtime_spawned_tasks_total", main), kTasks);
  EXPECT_GE(s.value("spindle_runtime_live_tasks", main), kTasks);
  EXPECT_GT(s.value("spindle_runtime_uptime_seconds", main), 0);
  EXPECT_GE(s.sum("spindle_runtime_polls_total", main), kTasks * (kYields + 1));
  EXPECT_EQ(s.value("spindle_runtime_unhandled_exceptions_total", main), 0);
  // With poll timing on, every poll is in the runtime histogram: the
  // counters are read in one snapshot, and nothing runs now.
  EXPECT_EQ(s.value("spindle_runtime_poll_duration_seconds_count", main),
            s.sum("spindle_runtime_polls_total", main));
  // The detector is attached but was never run.
  EXPECT_EQ(s.sum("spindle_runtime_stalls_total", main), 0);
  // The counters only grow: a later reading is at least the scraped one.
  const spindle::RuntimeCounters c = rt_.handle().counters();
  for (std::size_t w = 0; w < c.workers.size(); ++w) {
    const LabelMap worker = {{"runtime", "main"}, {"worker", std::to_string(w)}};
    EXPECT_LE(s.value("spindle_runtime_polls_total", worker), c.workers[w].polls);
    EXPECT_LE(s.value("spindle_runtime_parks_total", worker), c.workers[w].parks);
    EXPECT_LE(s.value("spindle_runtime_busy_seconds_total", worker), seconds(c.workers[w].busy));
  }
}

TEST(ExporterFamilies, RuntimeWithoutPollTimingHasNoRuntimeHistogramsAndNoStallsWithoutDetector) {
  auto rt = spindle::Runtime::Builder().worker_threads(1).build();
  spindle::MetricsCollectable c;
  c.add_runtime(rt.handle(), "plain");
  const Scrape s = spindle::test::parse_scrape(c.text());
  EXPECT_EQ(s.value("spindle_runtime_workers", {{"runtime", "plain"}}), 1);
  EXPECT_EQ(s.type("spindle_runtime_poll_duration_seconds"), "");
  EXPECT_EQ(s.type("spindle_runtime_scheduled_delay_seconds"), "");
  EXPECT_EQ(s.type("spindle_runtime_stalls_total"), "");
  EXPECT_EQ(s.type("spindle_task_polls_total"), "") << "no monitor, no task family";
  for (const auto& [name, type] : s.types)
    EXPECT_FALSE(s.find(name).empty() && s.find(name + "_count").empty()) << name;
}

}  // namespace
