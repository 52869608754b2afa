// spindle-exporter-bench — what one Prometheus scrape of spindle costs.
//
// A regression guard for the exporter: one scrape = MetricsCollectable::
// Collect() (read every monitor's cumulative metrics and the runtime's
// counters, build the metric families) + prometheus::TextSerializer, which
// is what the HTTP endpoint does per request minus the socket. Measured with
// N task monitors (each with tasks that ran, so every series has values) on
// a 2-worker runtime. Target: 100 monitors under 5 ms, growing linearly.
//
//   ./spindle-exporter-bench                 # BM_Scrape/10, /100, /1000
//   ./spindle-exporter-bench --benchmark_filter=Collect
#include <benchmark/benchmark.h>
#include <prometheus/text_serializer.h>

#include <cstddef>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "spindle/exporter.hpp"
#include "spindle/monitor.hpp"
#include "spindle/runtime.hpp"
#include "spindle/runtime/yield.hpp"

namespace {

spindle::Task<void> a_few_polls() {
  for (int i = 0; i < 3; ++i) co_await spindle::yield_now();
}

/// A 2-worker runtime, `n` monitors that each ran a few tasks, and a
/// collectable exporting all of them.
struct Fixture {
  explicit Fixture(std::size_t n)
      : rt(spindle::Runtime::Builder().worker_threads(2).poll_timing(true).build()),
        collectable(
            std::make_shared<spindle::MetricsCollectable>(spindle::MetricsCollectable::Options{
                .const_labels = {{"service", "bench"}}, .max_monitors = n})) {
    collectable->add_runtime(rt.handle());
    std::vector<spindle::JoinHandle<void>> handles;
    for (std::size_t i = 0; i < n; ++i) {
      monitors.push_back(
          spindle::TaskMonitor::Builder().name("monitor_" + std::to_string(i)).build());
      collectable->add_monitor(monitors.back());
      for (int t = 0; t < 2; ++t)
        handles.push_back(rt.spawn(monitors.back().instrument(a_few_polls())));
    }
    for (auto& h : handles) h.join();
  }

  spindle::Runtime rt;                                       // 2 workers
  std::vector<spindle::TaskMonitor> monitors;                // the exported monitors
  std::shared_ptr<spindle::MetricsCollectable> collectable;  // what a scrape reads
};

void BM_Scrape(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  const prometheus::TextSerializer serializer;
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::ostringstream out;
    serializer.Serialize(out, f.collectable->Collect());
    bytes = out.str().size();
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["bytes_per_scrape"] = static_cast<double>(bytes);
  state.counters["monitors"] = static_cast<double>(state.range(0));
  state.SetItemsProcessed(state.iterations() * state.range(0));  // monitors per second
}
BENCHMARK(BM_Scrape)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

void BM_Collect(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    auto families = f.collectable->Collect();
    benchmark::DoNotOptimize(families.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Collect)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
