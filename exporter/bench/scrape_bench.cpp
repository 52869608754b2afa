// spindle-exporter-bench — what one Prometheus scrape of spindle costs.
//
// A regression guard for the exporter: one scrape = MetricsCollectable::
// Collect() (read every monitor's cumulative metrics and the runtime's
// counters, build the metric families) + the text serialization. BM_ScrapeFast
// serializes with spindle's own writer, which is what PrometheusExporter's
// HTTP endpoint does per request minus the socket; BM_Scrape with
// prometheus::TextSerializer, what a service's own prometheus-cpp Exposer
// does (and what the endpoint did before), kept for comparison. Measured with
// N task monitors (each with tasks that ran, so every series has values) on
// a 2-worker runtime. Target: 100 monitors under 5 ms, growing linearly.
//
//   ./spindle-exporter-bench --benchmark_filter='BM_Scrape'   # both, /10, /100, /1000
//   ./spindle-exporter-bench --benchmark_filter=Collect
//   ./spindle-exporter-bench --benchmark_filter=YieldMany   # a scrape's effect on the workers

#include <benchmark/benchmark.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <semaphore>
#include <sstream>
#include <string>
#include <thread>
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

/// The same scrape as PrometheusExporter serves it now: Collect() + spindle's
/// own text-format writer (MetricsCollectable::text()). Same series, labels
/// and values as BM_Scrape's text; compare the two in one run.
void BM_ScrapeFast(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = f.collectable->text();
    bytes = text.size();
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["bytes_per_scrape"] = static_cast<double>(bytes);
  state.counters["monitors"] = static_cast<double>(state.range(0));
  state.SetItemsProcessed(state.iterations() * state.range(0));  // monitors per second
}
BENCHMARK(BM_ScrapeFast)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

void BM_Collect(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    auto families = f.collectable->Collect();
    benchmark::DoNotOptimize(families.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Collect)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

spindle::Task<void> yielder(std::atomic<int>* left, std::binary_semaphore* done) {
  for (int i = 0; i < 1000; ++i) co_await spindle::yield_now();
  if (left->fetch_sub(1, std::memory_order_acq_rel) == 1) done->release();
}

/// BENCH_SHAPES.md's yield_many (200 tasks x 1,000 yields, 2 workers) on the
/// fixture's runtime while another thread scrapes its 100 monitors every
/// `range(0)` ms (0: no scraping), as Prometheus would. The bound: a
/// scrape every second moves yield_many by at most 2%. At 1 s a 3 s run sees only
/// a few scrapes, so /100 (ten times as many) shows the effect above the noise:
/// a tenth of its slowdown is the per-second figure.
void BM_YieldManyWhileScraping(benchmark::State& state) {
  Fixture f(100);
  const auto period = std::chrono::milliseconds(state.range(0));
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;  // guarded by mu
  int scrapes = 0;    // written by the scraper, read after join
  std::thread scraper;
  if (period.count() > 0) {
    // Sleeps until the next scrape is due, as an HTTP server thread blocked in
    // accept() would: no periodic wake-ups between scrapes.
    scraper = std::thread([&] {
      auto next = std::chrono::steady_clock::now();
      std::unique_lock lock(mu);
      while (!stop) {
        lock.unlock();
        const std::string body = f.collectable->text();  // what the endpoint serves
        benchmark::DoNotOptimize(body.size());
        ++scrapes;
        lock.lock();
        next += period;
        cv.wait_until(lock, next, [&] { return stop; });
      }
    });
  }
  for (auto _ : state) {
    std::atomic<int> left{200};
    std::binary_semaphore done{0};
    for (int i = 0; i < 200; ++i) f.rt.spawn(yielder(&left, &done)).detach();
    done.acquire();
  }
  {
    std::lock_guard lock(mu);
    stop = true;
  }
  cv.notify_one();
  if (scraper.joinable()) scraper.join();
  state.counters["scrapes"] = static_cast<double>(scrapes);
}
BENCHMARK(BM_YieldManyWhileScraping)
    ->Arg(0)
    ->Arg(1000)
    ->Arg(100)
    ->UseRealTime()
    ->MinTime(3.0)
    ->Unit(benchmark::kMillisecond);


}  // namespace

BENCHMARK_MAIN();
