// MetricsCollectable in a service's own Exposer, removal, escaping, stall
// counts, lifetime (scrapes during and after runtime shutdown) and
// registration from many threads during scrapes.
#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "scrape_support.hpp"
#include "spindle/exporter.hpp"
#include "spindle/monitor.hpp"
#include "spindle/runtime.hpp"
#include "support/manual_clock.hpp"
#include "support/sync.hpp"

namespace {

using namespace std::chrono_literals;
using spindle::test::http_get;
using spindle::test::parse_scrape;

spindle::TaskMonitor named(const std::string& name) {
  return spindle::TaskMonitor::Builder().name(name).build();
}

std::set<std::string> monitors_in(const spindle::test::Scrape& s) {
  std::set<std::string> names;
  for (const auto& sample : s.samples) {
    if (sample.labels.count("monitor") != 0) names.insert(sample.labels.at("monitor"));
  }
  return names;
}

TEST(ExporterCollectable, WorksInAServicesOwnExposerNextToItsRegistry) {
  auto rt = spindle::Runtime::Builder().worker_threads(2).build();
  auto checkout = named("checkout");
  spindle::test::ParkedTasks parked(rt.handle(), checkout, 3, 2);
  ASSERT_TRUE(parked.wait_parked());

  // The service's own setup: an Exposer serving its Registry.
  prometheus::Exposer exposer(std::vector<std::string>{"listening_ports", "127.0.0.1:0"});
  auto registry = std::make_shared<prometheus::Registry>();
  auto& requests = prometheus::BuildCounter()
                       .Name("service_requests_total")
                       .Help("Requests served.")
                       .Register(*registry)
                       .Add({});
  requests.Increment(5);
  exposer.RegisterCollectable(registry);

  auto spindle_metrics = std::make_shared<spindle::MetricsCollectable>(
      spindle::MetricsCollectable::Options{.const_labels = {{"service", "checkout"}}});
  spindle_metrics->add_runtime(rt.handle());
  spindle_metrics->add_monitor(checkout);
  exposer.RegisterCollectable(spindle_metrics);

  const auto port = static_cast<std::uint16_t>(exposer.GetListeningPorts().at(0));
  const auto r = http_get(port, "/metrics");
  ASSERT_EQ(r.status, 200);
  const auto s = parse_scrape(r.body);
  EXPECT_EQ(s.value("service_requests_total"), 5);
  EXPECT_EQ(s.value("spindle_task_instrumented_total",
                    {{"monitor", "checkout"}, {"service", "checkout"}}),
            3);
  EXPECT_EQ(s.value("spindle_runtime_workers", {{"runtime", "main"}}), 2);
  const auto check = spindle::test::promtool_check(r.body);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_EQ(check.output, "");
}

TEST(ExporterCollectable, RemoveMonitorRemovesItsSeries) {
  spindle::PrometheusExporter exporter({.bind_address = "127.0.0.1:0"});
  auto a = named("a");
  auto b = named("b");
  auto c = named("c");
  exporter.add_monitor(a);
  exporter.add_monitor(b);
  exporter.add_monitor(c);
  const auto scrape = [&] { return parse_scrape(http_get(exporter.port(), "/metrics").body); };
  EXPECT_EQ(monitors_in(scrape()), (std::set<std::string>{"a", "b", "c"}));

  EXPECT_TRUE(exporter.remove_monitor(b));
  EXPECT_EQ(monitors_in(scrape()), (std::set<std::string>{"a", "c"}));
  EXPECT_TRUE(exporter.remove_monitor("c"));
  EXPECT_EQ(monitors_in(scrape()), (std::set<std::string>{"a"}));
  EXPECT_FALSE(exporter.remove_monitor(b));
  EXPECT_FALSE(exporter.remove_monitor("nope"));

  // The last monitor gone: no spindle_task_* family at all.
  EXPECT_TRUE(exporter.remove_monitor(a));
  const auto s = scrape();
  EXPECT_EQ(s.type("spindle_task_polls_total"), "");
  // Re-adding after removal works.
  exporter.add_monitor(b);
  EXPECT_EQ(monitors_in(scrape()), (std::set<std::string>{"b"}));
}

TEST(ExporterCollectable, MonitorNamesAndLabelValuesAreEscaped) {
  const std::string weird = "we\"ird\\name\n";
  auto rt = spindle::Runtime::Builder().worker_threads(1).build();
  auto mon = named(weird);
  spindle::test::ParkedTasks parked(rt.handle(), mon, 1, 1);
  ASSERT_TRUE(parked.wait_parked());
  spindle::PrometheusExporter exporter(
      {.bind_address = "127.0.0.1:0", .const_labels = {{"service", "a\"b\\c\nd ü"}}});
  exporter.add_runtime(rt.handle(), "rt \"one\"");
  exporter.add_monitor(mon);

  const auto r = http_get(exporter.port(), "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("monitor=\"we\\\"ird\\\\name\\n\""), std::string::npos) << r.body;
  const auto s = parse_scrape(r.body);
  EXPECT_EQ(monitors_in(s), std::set<std::string>{weird});
  EXPECT_EQ(s.value("spindle_task_instrumented_total", {{"monitor", weird}}), 1);
  EXPECT_EQ(
      s.value("spindle_runtime_workers", {{"runtime", "rt \"one\""}, {"service", "a\"b\\c\nd ü"}}),
      1);
  const auto check = spindle::test::promtool_check(r.body);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_EQ(check.output, "");
}

TEST(ExporterCollectable, CustomPathServesTheMetricsThere) {
  spindle::PrometheusExporter exporter(
      {.bind_address = "127.0.0.1:0", .path = "/internal/spindle"});
  auto mon = named("checkout");
  exporter.add_monitor(mon);
  EXPECT_EQ(exporter.path(), "/internal/spindle");
  const auto r = http_get(exporter.port(), "/internal/spindle");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("spindle_task_polls_total"), std::string::npos);
  EXPECT_EQ(http_get(exporter.port(), "/metrics").status, 404);
}

TEST(ExporterCollectable, StallDetectorReportsAreCountedPerWorker) {
  auto clock = std::make_shared<spindle::test::ManualClock>();
  auto rt = spindle::Runtime::Builder().worker_threads(1).build();
  spindle::StallDetector::Options options = spindle::test::manual_scan();
  options.threshold = 100ms;
  options.on_stall = [](const spindle::StallReport&) {};
  options.clock = clock->source();
  auto stalls = std::make_shared<spindle::StallDetector>(rt.handle(), options);
  spindle::MetricsCollectable c;
  c.add_runtime(rt.handle(), "main", stalls);

  std::atomic<bool> started{false};
  std::atomic<bool> release{false};
  auto h =
      rt.spawn([](std::atomic<bool>& started, std::atomic<bool>& release) -> spindle::Task<void> {
        started.store(true);
        while (!release.load()) std::this_thread::yield();  // holds worker 0 without yielding
        co_return;
      }(started, release));
  ASSERT_TRUE(spindle::test::eventually([&] { return started.load(); }));
  stalls->scan();  // sees the poll
  clock->advance(150ms);
  stalls->scan();  // 150 ms >= 100 ms: one report
  release.store(true);
  h.join();

  const auto s = parse_scrape(c.text());
  EXPECT_EQ(stalls->stall_counts(), std::vector<std::uint64_t>{1});
  EXPECT_EQ(s.value("spindle_runtime_stalls_total", {{"runtime", "main"}, {"worker", "0"}}), 1);

  // Once removed, the detector is not read again, nor shared.
  EXPECT_TRUE(c.remove_runtime("main"));
  EXPECT_EQ(parse_scrape(c.text()).type("spindle_runtime_stalls_total"), "");
  EXPECT_EQ(stalls.use_count(), 1);
}

TEST(ExporterCollectable, AStallDetectorDroppedBeforeTheExporterCannotDangle) {
  // The caller's detector goes away while scrapes run: the registration
  // shares it, so scrapes keep reading a live detector until the runtime is
  // removed (ASan reports a use after free otherwise).
  auto rt = spindle::Runtime::Builder().worker_threads(2).build();
  spindle::PrometheusExporter exporter({.bind_address = "127.0.0.1:0"});
  auto stalls = std::make_shared<spindle::StallDetector>(rt.handle(), spindle::test::manual_scan());
  std::weak_ptr<spindle::StallDetector> watch = stalls;
  exporter.add_runtime(rt.handle(), "main", stalls);

  std::atomic<bool> stop{false};
  std::atomic<int> scrapes{0};
  std::atomic<int> bad{0};
  std::thread scraper([&] {
    while (!stop.load()) {
      const auto r = http_get(exporter.port(), "/metrics");
      if (r.status != 200 ||
          r.body.find("spindle_runtime_stalls_total{runtime=\"main\",worker=\"1\"} 0") ==
              std::string::npos) {
        bad.fetch_add(1);
      }
      scrapes.fetch_add(1);
    }
  });
  ASSERT_TRUE(spindle::test::eventually([&] { return scrapes.load() >= 2; }));
  stalls.reset();  // the caller's last reference
  EXPECT_FALSE(watch.expired()) << "kept alive by the registration";
  const int after = scrapes.load();
  ASSERT_TRUE(spindle::test::eventually([&] { return scrapes.load() >= after + 3; }));
  stop.store(true);
  scraper.join();
  EXPECT_EQ(bad.load(), 0);
  // Removing the runtime releases it.
  EXPECT_TRUE(exporter.remove_runtime("main"));
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(
      parse_scrape(http_get(exporter.port(), "/metrics").body).type("spindle_runtime_stalls_total"),
      "");
}

TEST(ExporterCollectable, AnExporterDestroyedFirstReleasesItsStallDetector) {
  auto rt = spindle::Runtime::Builder().worker_threads(1).build();
  std::weak_ptr<spindle::StallDetector> watch;
  {
    spindle::PrometheusExporter exporter({.bind_address = "127.0.0.1:0"});
    auto stalls = std::make_shared<spindle::StallDetector>(rt.handle());  // with its thread
    watch = stalls;
    exporter.add_runtime(rt.handle(), "main", std::move(stalls));
    EXPECT_EQ(http_get(exporter.port(), "/metrics").status, 200);
  }
  EXPECT_TRUE(watch.expired()) << "the last owner stopped and destroyed it";
}

TEST(ExporterCollectable, ScrapeAfterTheRuntimeIsDestroyedReadsItsFinalValues) {
  spindle::PrometheusExporter exporter({.bind_address = "127.0.0.1:0"});
  auto mon = named("checkout");
  {
    auto rt = spindle::Runtime::Builder().worker_threads(2).build();
    exporter.add_runtime(rt.handle());
    exporter.add_monitor(mon);
    spindle::test::ParkedTasks parked(rt.handle(), mon, 4, 2);
    ASSERT_TRUE(parked.wait_parked());
    parked.release();
  }  // the Runtime is destroyed; the exporter still holds a Handle
  for (int i = 0; i < 2; ++i) {
    const auto r = http_get(exporter.port(), "/metrics");
    ASSERT_EQ(r.status, 200);
    const auto s = parse_scrape(r.body);
    EXPECT_EQ(s.value("spindle_runtime_workers", {{"runtime", "main"}}), 2);
    EXPECT_EQ(s.value("spindle_runtime_live_tasks", {{"runtime", "main"}}), 0);
    EXPECT_EQ(s.value("spindle_task_dropped_total", {{"monitor", "checkout"}}), 4);
    EXPECT_EQ(s.value("spindle_task_live_tasks", {{"monitor", "checkout"}}), 0);
    const auto check = spindle::test::promtool_check(r.body);
    EXPECT_EQ(check.output, "");
  }
}

TEST(ExporterCollectable, ScrapesDuringRuntimeShutdownAnswerCleanly) {
  spindle::PrometheusExporter exporter({.bind_address = "127.0.0.1:0"});
  auto mon = named("checkout");
  std::optional<spindle::Runtime> rt(
      spindle::Runtime::Builder().worker_threads(2).poll_timing(true).build());
  exporter.add_runtime(rt->handle());
  exporter.add_monitor(mon);
  // Tasks that keep the workers busy until shutdown cancels them.
  for (int i = 0; i < 8; ++i) {
    rt->spawn(mon.instrument([]() -> spindle::Task<void> {
        for (;;) co_await spindle::yield_now();
      }()))
        .detach();
  }

  std::atomic<bool> stop{false};
  std::atomic<int> scrapes{0};
  std::atomic<int> failures{0};
  std::thread scraper([&] {
    while (!stop.load()) {
      const auto r = http_get(exporter.port(), "/metrics");
      if (r.status != 200 || r.body.find("spindle_runtime_workers") == std::string::npos) {
        failures.fetch_add(1);
      }
      scrapes.fetch_add(1);
      (void)exporter.collectable()->Collect();
    }
  });
  ASSERT_TRUE(spindle::test::eventually([&] { return scrapes.load() >= 2; }));
  rt.reset();  // shutdown while scrapes run
  const int after = scrapes.load();
  ASSERT_TRUE(spindle::test::eventually([&] { return scrapes.load() >= after + 2; }));
  stop.store(true);
  scraper.join();
  EXPECT_EQ(failures.load(), 0);
  const auto s = parse_scrape(http_get(exporter.port(), "/metrics").body);
  EXPECT_EQ(s.value("spindle_task_live_tasks", {{"monitor", "checkout"}}), 0);
}

TEST(ExporterCollectable, AddAndRemoveFromManyThreadsWhileScraping) {
  auto rt = spindle::Runtime::Builder().worker_threads(2).build();
  spindle::PrometheusExporter exporter({.bind_address = "127.0.0.1:0", .max_monitors = 64});
  exporter.add_runtime(rt.handle());
  auto keeper = named("keeper");
  exporter.add_monitor(keeper);

  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread scraper([&] {
    while (!stop.load()) {
      const auto r = http_get(exporter.port(), "/metrics");
      const auto s = parse_scrape(r.body);
      if (r.status != 200 || monitors_in(s).count("keeper") == 0) bad.fetch_add(1);
      (void)exporter.collectable()->text();
    }
  });
  constexpr int kThreads = 4;
  constexpr int kRounds = 50;
  std::vector<std::thread> editors;
  for (int t = 0; t < kThreads; ++t) {
    editors.emplace_back([&, t] {
      std::vector<spindle::TaskMonitor> mine;
      for (int i = 0; i < 4; ++i)
        mine.push_back(named("t" + std::to_string(t) + "_" + std::to_string(i)));
      for (int round = 0; round < kRounds; ++round) {
        for (auto& m : mine) exporter.add_monitor(m);
        auto h = rt.spawn(mine[0].instrument([]() -> spindle::Task<void> { co_return; }()));
        h.join();
        for (std::size_t i = 0; i < mine.size(); ++i) {
          if (i % 2 == 0) {
            EXPECT_TRUE(exporter.remove_monitor(mine[i]));
          } else {
            EXPECT_TRUE(exporter.remove_monitor(mine[i].name()));
          }
        }
      }
    });
  }
  for (auto& e : editors) e.join();
  stop.store(true);
  scraper.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(exporter.collectable()->monitor_count(), 1u);
  EXPECT_EQ(monitors_in(parse_scrape(exporter.collectable()->text())),
            std::set<std::string>{"keeper"});
}

}  // namespace
