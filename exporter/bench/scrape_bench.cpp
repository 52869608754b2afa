// spindle-exporter-bench — what one Prometheus scrape of spindle costs.
//
// A regression guard for the exporter: one scrape = read every monitor's
// cumulative metrics and the runtime's counters, then write the text.
//
//   BM_ScrapeFast          what PrometheusExporter's endpoint does per scrape minus the
//                          socket: MetricsCollectable::write_text_over() a buffer kept
//                          from scrape to scrape (no prometheus-cpp objects)
//   BM_ScrapeFastCold      the same with the caches flushed before each scrape (as after
//                          15 s of the service running): compares 100 and 1,000 fairly
//   BM_ScrapeChunks        the text written 128 KiB at a time into a sink that only counts
//                          it: the gzip path's text, without zlib
//   BM_ScrapeAppend        append_text() to a cleared string (zero-filled as it grows)
//   BM_ScrapeFreshString   the same into a new string each time (MetricsCollectable::text())
//   BM_ScrapeViaFamilies   Collect() (prometheus-cpp families) + spindle's writer: what the
//                          endpoint did before it wrote straight from the reading
//   BM_Scrape              Collect() + prometheus::TextSerializer: what a service's own
//                          prometheus-cpp Exposer does
//   BM_ScrapeGzip          a scrape for Prometheus (Accept-Encoding: gzip): the text
//                          compressed 128 KiB at a time as it is written, at zlib level
//                          range(1) (the endpoint uses 1), with the bytes before and after
//   BM_ScrapeGzipWhole     the whole text, then gzip of it (what the endpoint does when
//                          a client without gzip scrapes at the same moment)
//   BM_Collect             Collect() alone
//   BM_ScrapeProtobuf      the endpoint for a Prometheus with native histograms: the
//                          protobuf exposition (MetricsCollectable::write_protobuf_over() a
//                          kept buffer; classic and native buckets), same set-up as BM_ScrapeFast
//   BM_ScrapeProtobufGzip  the same, then gzip of it at level 1, as the endpoint does
//
// The run's context (printed first) gives the memory a monitor costs at
// the default resolution: sizeof(MonitorSlot), the block each worker that
// polls the monitor's tasks keeps (monitor/src/monitor_core.hpp), and what
// one reading of it takes at scrape time (TaskMetrics, ScrapeReading::Task).
//
// Measured with N task monitors (each with tasks that ran, so every series
// has values) on a 2-worker runtime. Targets: 100 monitors under 5 ms; 1,000
// at most 10x 100.
//
//   ./spindle-exporter-bench --benchmark_filter='BM_Scrape'   # all, /10, /100, /1000
//   ./spindle-exporter-bench --benchmark_filter=Gzip
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

#include "families.hpp"
#include "gzip.hpp"
#include "monitor_core.hpp"
#include "spindle/exporter.hpp"
#include "spindle/monitor.hpp"
#include "spindle/runtime.hpp"
#include "spindle/runtime/yield.hpp"
#include "text_format.hpp"

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

/// The scrape as PrometheusExporter's endpoint writes it: straight from the
/// reading into a buffer that the next scrape reuses. Same series, labels
/// and values as BM_Scrape's text; compare them in one run.
void BM_ScrapeFast(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  std::string buffer;
  std::size_t bytes = 0;
  for (auto _ : state) {
    bytes = f.collectable->write_text_over(buffer);
    benchmark::DoNotOptimize(buffer.data());
  }
  state.counters["bytes_per_scrape"] = static_cast<double>(bytes);
  state.counters["monitors"] = static_cast<double>(state.range(0));
  state.SetItemsProcessed(state.iterations() * state.range(0));  // monitors per second
}
BENCHMARK(BM_ScrapeFast)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

/// The text written a chunk at a time (LineWriter::kChunkBytes) into a sink
/// that only counts it: what the endpoint's streaming paths (gzip) pay for
/// the text itself, with the scratch buffer staying in cache.
void BM_ScrapeChunks(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  std::string scratch;
  std::size_t bytes = 0;
  for (auto _ : state) {
    bytes = 0;
    f.collectable->write_text_in_chunks(scratch, [&](std::string_view chunk) {
      bytes += chunk.size();
      benchmark::DoNotOptimize(chunk.data());
    });
  }
  state.counters["bytes_per_scrape"] = static_cast<double>(bytes);
  state.SetItemsProcessed(state.iterations() * state.range(0));  // monitors per second
}
BENCHMARK(BM_ScrapeChunks)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

/// Writes over 64 MiB, more than any cache here: what a scrape finds when
/// the previous one was 15 s ago and the service ran meanwhile.
void evict_caches() {
  static std::vector<char> junk(64 << 20);
  static char value = 0;
  ++value;
  for (std::size_t i = 0; i < junk.size(); i += 64) junk[i] = value;
  benchmark::DoNotOptimize(junk.data());
}

/// BM_ScrapeFast with cold caches, as a real scrape (the monitors' figures,
/// the buffer and the text's pieces all come from memory). A loop of
/// back-to-back scrapes keeps 100 monitors' data (~1 MB of text plus the
/// monitors) in cache but not 1,000's (~10 MB): the hot figures above flatter
/// small scrapes; these compare like with like.
void BM_ScrapeFastCold(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  std::string buffer;
  std::size_t bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    evict_caches();
    state.ResumeTiming();
    bytes = f.collectable->write_text_over(buffer);
    benchmark::DoNotOptimize(buffer.data());
  }
  state.counters["bytes_per_scrape"] = static_cast<double>(bytes);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ScrapeFastCold)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

/// append_text() to a string cleared each time: the same memory, zero-filled
/// again by std::string as the text grows into it.
void BM_ScrapeAppend(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  std::string text;
  for (auto _ : state) {
    text.clear();
    f.collectable->append_text(text);
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["bytes_per_scrape"] = static_cast<double>(text.size());
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ScrapeAppend)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

/// MetricsCollectable::text(): a new string per scrape (malloc hands
/// megabytes back to the kernel and faults them in again).
void BM_ScrapeFreshString(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = f.collectable->text();
    bytes = text.size();
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["bytes_per_scrape"] = static_cast<double>(bytes);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ScrapeFreshString)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

/// The previous endpoint: Collect()'s prometheus-cpp families, then spindle's writer.
void BM_ScrapeViaFamilies(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = spindle::detail::text_format(f.collectable->Collect());
    bytes = text.size();
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["bytes_per_scrape"] = static_cast<double>(bytes);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ScrapeViaFamilies)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

/// A scrape for a client that sent `Accept-Encoding: gzip` (Prometheus), as
/// the endpoint serves it: the text compressed as it is written, at zlib
/// level range(1), into a reused buffer.
void BM_ScrapeGzip(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  const int level = static_cast<int>(state.range(1));
  std::string scratch;
  std::string zipped;
  std::size_t text_bytes = 0;
  std::size_t gzip_bytes = 0;
  for (auto _ : state) {
    spindle::detail::GzipStream stream(zipped, level);
    text_bytes = 0;
    f.collectable->write_text_in_chunks(scratch, [&](std::string_view chunk) {
      text_bytes += chunk.size();
      stream.write(chunk);
    });
    gzip_bytes = stream.finish();
    benchmark::DoNotOptimize(zipped.data());
  }
  state.counters["bytes_text"] = static_cast<double>(text_bytes);
  state.counters["bytes_gzip"] = static_cast<double>(gzip_bytes);
  state.counters["ratio"] = static_cast<double>(text_bytes) / static_cast<double>(gzip_bytes);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ScrapeGzip)
    ->Args({100, 1})
    ->Args({1000, 1})
    ->Args({100, 6})
    ->Args({1000, 6})
    ->Unit(benchmark::kMillisecond);

/// The whole text first, then gzip of it.
void BM_ScrapeGzipWhole(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  const int level = static_cast<int>(state.range(1));
  std::string text;
  std::string zipped;
  std::size_t text_bytes = 0;
  std::size_t gzip_bytes = 0;
  for (auto _ : state) {
    text_bytes = f.collectable->write_text_over(text);
    gzip_bytes = spindle::detail::gzip_compress_over(std::string_view(text.data(), text_bytes),
                                                     zipped, level);
    benchmark::DoNotOptimize(zipped.data());
  }
  state.counters["bytes_text"] = static_cast<double>(text_bytes);
  state.counters["bytes_gzip"] = static_cast<double>(gzip_bytes);
  state.counters["ratio"] = static_cast<double>(text_bytes) / static_cast<double>(gzip_bytes);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ScrapeGzipWhole)->Args({100, 1})->Args({1000, 1})->Unit(benchmark::kMillisecond);

/// The protobuf exposition as the endpoint writes it for a Prometheus with
/// native histograms (the same families as BM_ScrapeFast's text, every
/// histogram with its classic and its native buckets), over a kept buffer.
void BM_ScrapeProtobuf(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  std::string buffer;
  std::size_t bytes = 0;
  for (auto _ : state) {
    bytes = f.collectable->write_protobuf_over(buffer);
    benchmark::DoNotOptimize(buffer.data());
  }
  state.counters["bytes_per_scrape"] = static_cast<double>(bytes);
  state.counters["monitors"] = static_cast<double>(state.range(0));
  state.SetItemsProcessed(state.iterations() * state.range(0));  // monitors per second
}
BENCHMARK(BM_ScrapeProtobuf)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

/// BM_ScrapeProtobuf, then gzip (level 1) of the whole body: what the
/// endpoint serves Prometheus (which always accepts gzip).
void BM_ScrapeProtobufGzip(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  std::string body;
  std::string zipped;
  std::size_t body_bytes = 0;
  std::size_t gzip_bytes = 0;
  for (auto _ : state) {
    body_bytes = f.collectable->write_protobuf_over(body);
    gzip_bytes =
        spindle::detail::gzip_compress_over(std::string_view(body.data(), body_bytes), zipped, 1);
    benchmark::DoNotOptimize(zipped.data());
  }
  state.counters["bytes_protobuf"] = static_cast<double>(body_bytes);
  state.counters["bytes_gzip"] = static_cast<double>(gzip_bytes);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ScrapeProtobufGzip)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

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

/// The memory behind one monitor at the default resolution, from the types
/// themselves (printed in the run's context, before the results).
const bool kSizesInContext = [] {
  benchmark::AddCustomContext("sizeof(MonitorSlot) per monitor and polling worker",
                              std::to_string(sizeof(spindle::detail::MonitorSlot)));
  benchmark::AddCustomContext("sizeof(Histogram)", std::to_string(sizeof(spindle::Histogram)));
  benchmark::AddCustomContext("sizeof(TaskMetrics) per reading",
                              std::to_string(sizeof(spindle::TaskMetrics)));
  benchmark::AddCustomContext("sizeof(ScrapeReading::Task) per monitor and scrape",
                              std::to_string(sizeof(spindle::detail::ScrapeReading::Task)));
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
