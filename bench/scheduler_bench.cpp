// spindle-bench — the scheduler benchmarks of the project's BENCH_SHAPES.md,
// for spindle and for plain Asio, side by side.
//
//   <shape>/spindle/workers:<N>   spindle::Runtime with N worker threads
//   <shape>/asio/workers:<N>      one asio::io_context run by N threads,
//                                 tasks as asio::awaitable started with co_spawn
//
// Shapes (sizes follow tokio's benches/rt_multi_threaded.rs):
//   spawn_many_local   a task on a worker spawns 10,000 empty tasks
//   spawn_many_remote  a thread outside the runtime spawns 10,000 empty tasks, joins each
//   yield_many         200 tasks, spawned from outside, each yield 1,000 times
//   ping_pong          1,000 tasks, each a oneshot round trip with a spawned peer
//   chained_spawn      a chain of 1,000 tasks, each spawning the next
//   parallel_work      10,000 tasks of ~10 us of CPU each: does work reach every worker?
//
// Every iteration ends the same way for both implementations: the tasks
// count down a shared Latch (an atomic counter) and the last one releases a
// std::binary_semaphore that the benchmark thread waits on. spawn_many_remote
// is the exception named by the shape: the outside thread waits on every
// task's join handle (spindle::JoinHandle::join, std::future::get).
//
// The runtime (or the io_context and its threads) is built once per
// benchmark run, before the timed loop, as tokio's benches do.
//
// Worker counts: 2 by default (parallel_work also at 1). Override with
// --workers=1,2,4 on the command line or SPINDLE_BENCH_WORKERS=1,2,4 in the
// environment; parallel_work always runs at 1 worker too, for the speed-up.
//
// Instrumented variant: every spindle shape takes a Wrap policy, applied to every
// task before it is spawned. SpawnPlain does nothing; SpawnMonitored instruments
// the task with one TaskMonitor, giving `<shape>/spindle_monitored/workers:<N>`,
// whose ratio to `<shape>/spindle/workers:<N>` is the monitor's cost.
// `<shape>/spindle_monitored_recorded/workers:<N>` is the same on a runtime
// with a flight recorder of 4,096 events per worker, which delay blame needs:
// the cost of the whole instrumentation a service would turn on.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <asio.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <semaphore>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench_support.hpp"

namespace {

// ---- shape sizes (BENCH_SHAPES.md) -------------------------------------------------

constexpr int kNumSpawn = 10'000;   // spawn_many_local, spawn_many_remote
constexpr int kYieldTasks = 200;    // yield_many: tasks
constexpr int kNumYield = 1'000;    // yield_many: yields per task
constexpr int kNumPings = 1'000;    // ping_pong: round trips
constexpr int kChainDepth = 1'000;  // chained_spawn: tasks in the chain
constexpr int kWorkTasks = 10'000;  // parallel_work: tasks
constexpr int kWorkRounds = 5'000;  // parallel_work: xorshift rounds per task

// ---- the signal shared by both implementations -----------------------------------

/// Counts tasks down; the last one releases the benchmark thread (bench_support.hpp).
using spindle_bench::Latch;
using spindle_bench::SchedulerCounters;

/// parallel_work's task body: ~10 us of CPU that the compiler cannot fold
/// (each round depends on the last; the result is summed and checked).
inline std::uint64_t xorshift_work(std::uint64_t index) noexcept {
  std::uint64_t x = index | 1;
  for (int i = 0; i < kWorkRounds; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

/// The sum every parallel_work iteration must produce (computed once, serially).
std::uint64_t expected_work_sum() {
  static const std::uint64_t sum = [] {
    std::uint64_t s = 0;
    for (int i = 0; i < kWorkTasks; ++i) s += xorshift_work(static_cast<std::uint64_t>(i));
    return s;
  }();
  return sum;
}

/// State shared by the tasks of one benchmark (lives for the whole run).
struct Shared {
  Latch latch;                        // end-of-iteration signal
  std::atomic<std::uint64_t> sum{0};  // parallel_work's result
};

void check_work_sum(benchmark::State& state, const Shared& shared) {
  std::uint64_t got = shared.sum.load(std::memory_order_relaxed);
  benchmark::DoNotOptimize(got);
  if (got != expected_work_sum()) state.SkipWithError("parallel_work: wrong sum");
}

// =====================================================================================
// spindle
// =====================================================================================

/// The wrap policy of plain spindle: tasks are spawned as they are.
struct SpawnPlain {
  std::size_t recorder = 0;  // the runtime's flight-recorder events per worker (0: off)
  template <class T>
  spindle::Task<T> wrap(spindle::Task<T> task) const {
    return task;
  }
};

/// The wrap policy of spindle_monitored: every task, the roots included, is
/// instrumented by one TaskMonitor, as a service would wrap a route's tasks. The
/// ratio of a shape's spindle_monitored time to its spindle time is what the
/// instrumentation costs.
struct SpawnMonitored {
  const spindle::TaskMonitor* monitor;
  std::size_t recorder = 0;  // as SpawnPlain's; spindle_monitored_recorded: kRecorderEvents
  template <class T>
  spindle::HookedTask<T> wrap(spindle::Task<T> task) const {
    return monitor->instrument(std::move(task));
  }
};

/// The runtime of one spindle run; `wrap` says whether it has a flight
/// recorder (delay blame needs one).
template <class Wrap>
spindle::Runtime make_spindle_runtime(int workers, const Wrap& wrap) {
  return spindle::Runtime::Builder()
      .worker_threads(workers)
      .flight_recorder(wrap.recorder)
      .build();
}


// Tasks take their state by parameter, never by lambda capture: a coroutine
// lambda's captures live in the lambda object, which dies before the task runs.

spindle::Task<void> sp_count_down(Shared* shared) {
  shared->latch.count_down();
  co_return;
}

spindle::Task<void> sp_empty() { co_return; }

template <class Wrap>
spindle::Task<void> sp_spawn_many_root(Shared* shared, Wrap wrap) {
  for (int i = 0; i < kNumSpawn; ++i) spindle::spawn(wrap.wrap(sp_count_down(shared))).detach();
  co_return;
}

template <class Wrap>
void spindle_spawn_many_local(benchmark::State& state, int workers, Wrap wrap) {
  Shared shared;  // declared first: outlives the workers that touch it
  auto rt = make_spindle_runtime(workers, wrap);
  SchedulerCounters counters(rt);
  for (auto _ : state) {
    shared.latch.arm(kNumSpawn);
    rt.spawn(wrap.wrap(sp_spawn_many_root(&shared, wrap))).detach();
    shared.latch.wait();
  }
  counters.report(state);
}

template <class Wrap>
void spindle_spawn_many_remote(benchmark::State& state, int workers, Wrap wrap) {
  auto rt = make_spindle_runtime(workers, wrap);
  std::vector<spindle::JoinHandle<void>> handles;
  handles.reserve(kNumSpawn);
  SchedulerCounters counters(rt);
  for (auto _ : state) {
    for (int i = 0; i < kNumSpawn; ++i) handles.push_back(rt.spawn(wrap.wrap(sp_empty())));
    for (auto& h : handles) h.join();
    handles.clear();
  }
  counters.report(state);
}

spindle::Task<void> sp_yielder(Shared* shared) {
  for (int i = 0; i < kNumYield; ++i) co_await spindle::yield_now();
  shared->latch.count_down();
}

template <class Wrap>
void spindle_yield_many(benchmark::State& state, int workers, Wrap wrap) {
  Shared shared;  // declared first: outlives the workers that touch it
  auto rt = make_spindle_runtime(workers, wrap);
  SchedulerCounters counters(rt);
  for (auto _ : state) {
    shared.latch.arm(kYieldTasks);
    for (int i = 0; i < kYieldTasks; ++i) rt.spawn(wrap.wrap(sp_yielder(&shared))).detach();
    shared.latch.wait();
  }
  counters.report(state);
}

spindle::Task<void> sp_pong(spindle::sync::Receiver<int> rx1, spindle::sync::Sender<int> tx2) {
  int v = co_await rx1;
  tx2.send(v);
}

template <class Wrap>
spindle::Task<void> sp_ping(Shared* shared, Wrap wrap) {
  auto [tx1, rx1] = spindle::sync::oneshot<int>();
  auto [tx2, rx2] = spindle::sync::oneshot<int>();
  spindle::spawn(wrap.wrap(sp_pong(std::move(rx1), std::move(tx2)))).detach();
  tx1.send(1);
  int v = co_await rx2;
  benchmark::DoNotOptimize(v);
  shared->latch.count_down();
}

template <class Wrap>
spindle::Task<void> sp_ping_pong_root(Shared* shared, Wrap wrap) {
  for (int i = 0; i < kNumPings; ++i) spindle::spawn(wrap.wrap(sp_ping(shared, wrap))).detach();
  co_return;
}

template <class Wrap>
void spindle_ping_pong(benchmark::State& state, int workers, Wrap wrap) {
  Shared shared;  // declared first: outlives the workers that touch it
  auto rt = make_spindle_runtime(workers, wrap);
  SchedulerCounters counters(rt);
  for (auto _ : state) {
    shared.latch.arm(kNumPings);
    rt.spawn(wrap.wrap(sp_ping_pong_root(&shared, wrap))).detach();
    shared.latch.wait();
  }
  counters.report(state);
}

template <class Wrap>
spindle::Task<void> sp_chain(Shared* shared, int n, Wrap wrap) {
  if (n == 0) {
    shared->latch.count_down();
  } else {
    spindle::spawn(wrap.wrap(sp_chain(shared, n - 1, wrap))).detach();
  }
  co_return;
}

template <class Wrap>
void spindle_chained_spawn(benchmark::State& state, int workers, Wrap wrap) {
  Shared shared;  // declared first: outlives the workers that touch it
  auto rt = make_spindle_runtime(workers, wrap);
  SchedulerCounters counters(rt);
  for (auto _ : state) {
    shared.latch.arm(1);
    // The outside thread spawns the head; tasks 1..kChainDepth spawn each other.
    rt.spawn(wrap.wrap(sp_chain(&shared, kChainDepth, wrap))).detach();
    shared.latch.wait();
  }
  counters.report(state);
}

spindle::Task<void> sp_work(Shared* shared, std::uint64_t index) {
  shared->sum.fetch_add(xorshift_work(index), std::memory_order_relaxed);
  shared->latch.count_down();
  co_return;
}

template <class Wrap>
spindle::Task<void> sp_parallel_root(Shared* shared, Wrap wrap) {
  for (int i = 0; i < kWorkTasks; ++i) {
    spindle::spawn(wrap.wrap(sp_work(shared, static_cast<std::uint64_t>(i)))).detach();
  }
  co_return;
}

template <class Wrap>
void spindle_parallel_work(benchmark::State& state, int workers, Wrap wrap) {
  Shared shared;  // declared first: outlives the workers that touch it
  auto rt = make_spindle_runtime(workers, wrap);
  SchedulerCounters counters(rt);
  for (auto _ : state) {
    shared.latch.arm(kWorkTasks);
    shared.sum.store(0, std::memory_order_relaxed);
    rt.spawn(wrap.wrap(sp_parallel_root(&shared, wrap))).detach();
    shared.latch.wait();
    check_work_sum(state, shared);
  }
  counters.report(state);
}

// =====================================================================================
// plain Asio
// =====================================================================================

/// One io_context run by `workers` threads until destroyed.
class AsioPool {
 public:
  explicit AsioPool(int workers) : ctx_(workers), guard_(ctx_.get_executor()) {
    threads_.reserve(static_cast<std::size_t>(workers));
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { ctx_.run(); });
  }
  ~AsioPool() {
    guard_.reset();
    ctx_.stop();
    for (auto& t : threads_) t.join();
  }
  AsioPool(const AsioPool&) = delete;
  AsioPool& operator=(const AsioPool&) = delete;

  asio::io_context& ctx() noexcept { return ctx_; }

 private:
  asio::io_context ctx_;                                              // the shared scheduler
  asio::executor_work_guard<asio::io_context::executor_type> guard_;  // keeps run() going
  std::vector<std::thread> threads_;                                  // the N runners
};

using OneshotChannel = asio::experimental::concurrent_channel<void(asio::error_code, int)>;

// How an Asio task spawns another. Plain co_spawn on the io_context's
// executor *dispatches*: called from a thread that is running the
// io_context, it starts the new coroutine inline, on the spawner's stack,
// until that coroutine first suspends (a blocking.never executor does not
// change that: co_spawn's entry point dispatches with blocking.possibly).
// That is what `asio` measures, the way Asio code is ordinarily written.
// `asio_queued` posts a handler that calls co_spawn, so that the new task
// is queued as spindle::spawn queues it and idle threads can pick it up; it
// only differs where tasks spawn from inside the io_context.
enum class AsioSpawn : bool { kInline, kQueued };

template <class Awaitable>
void asio_spawn(const asio::any_io_executor& ex, Awaitable task, AsioSpawn how) {
  if (how == AsioSpawn::kInline) {
    asio::co_spawn(ex, std::move(task), asio::detached);
  } else {
    asio::post(ex, [ex, task = std::move(task)]() mutable {
      asio::co_spawn(ex, std::move(task), asio::detached);
    });
  }
}

asio::awaitable<void> as_count_down(Shared* shared) {
  shared->latch.count_down();
  co_return;
}

asio::awaitable<void> as_empty() { co_return; }

asio::awaitable<void> as_spawn_many_root(Shared* shared, AsioSpawn how) {
  auto ex = co_await asio::this_coro::executor;
  for (int i = 0; i < kNumSpawn; ++i) asio_spawn(ex, as_count_down(shared), how);
}

void asio_spawn_many_local(benchmark::State& state, int workers, AsioSpawn how) {
  Shared shared;  // declared first: outlives the threads that touch it
  AsioPool pool(workers);
  for (auto _ : state) {
    shared.latch.arm(kNumSpawn);
    asio::co_spawn(pool.ctx(), as_spawn_many_root(&shared, how), asio::detached);
    shared.latch.wait();
  }
}

// The outside thread's join handles are std::futures (asio::use_future).
void asio_spawn_many_remote(benchmark::State& state, int workers, AsioSpawn /*how*/) {
  AsioPool pool(workers);
  std::vector<std::future<void>> handles;
  handles.reserve(kNumSpawn);
  for (auto _ : state) {
    for (int i = 0; i < kNumSpawn; ++i) {
      handles.push_back(asio::co_spawn(pool.ctx(), as_empty(), asio::use_future));
    }
    for (auto& h : handles) h.get();
    handles.clear();
  }
}

// Asio's yield: re-post the coroutine to the back of the io_context's queue.
asio::awaitable<void> as_yielder(Shared* shared) {
  auto ex = co_await asio::this_coro::executor;
  for (int i = 0; i < kNumYield; ++i) co_await asio::post(ex, asio::use_awaitable);
  shared->latch.count_down();
}

void asio_yield_many(benchmark::State& state, int workers, AsioSpawn /*how*/) {
  Shared shared;  // declared first: outlives the threads that touch it
  AsioPool pool(workers);
  for (auto _ : state) {
    shared.latch.arm(kYieldTasks);
    for (int i = 0; i < kYieldTasks; ++i) {
      asio::co_spawn(pool.ctx(), as_yielder(&shared), asio::detached);
    }
    shared.latch.wait();
  }
}

// The channels are shared (one heap block each, like spindle's oneshot): a
// sender may still be inside try_send when the receiver resumes elsewhere.
// A send into an empty capacity-1 channel never waits, so try_send is the
// oneshot's send (it cannot fail here; oneshot_send checks anyway).
void oneshot_send(OneshotChannel& ch, int v) {
  if (!ch.try_send(asio::error_code{}, v)) {
    std::fprintf(stderr, "spindle-bench: asio oneshot: try_send on an empty channel failed\n");
    std::abort();
  }
}

asio::awaitable<void> as_pong(std::shared_ptr<OneshotChannel> rx1,
                              std::shared_ptr<OneshotChannel> tx2) {
  int v = co_await rx1->async_receive(asio::use_awaitable);
  oneshot_send(*tx2, v);
}

asio::awaitable<void> as_ping(Shared* shared, AsioSpawn how) {
  auto ex = co_await asio::this_coro::executor;
  auto ch1 = std::make_shared<OneshotChannel>(ex, 1);
  auto ch2 = std::make_shared<OneshotChannel>(ex, 1);
  asio_spawn(ex, as_pong(ch1, ch2), how);
  oneshot_send(*ch1, 1);
  int v = co_await ch2->async_receive(asio::use_awaitable);
  benchmark::DoNotOptimize(v);
  shared->latch.count_down();
}

asio::awaitable<void> as_ping_pong_root(Shared* shared, AsioSpawn how) {
  auto ex = co_await asio::this_coro::executor;
  for (int i = 0; i < kNumPings; ++i) asio_spawn(ex, as_ping(shared, how), how);
}

void asio_ping_pong(benchmark::State& state, int workers, AsioSpawn how) {
  Shared shared;  // declared first: outlives the threads that touch it
  AsioPool pool(workers);
  for (auto _ : state) {
    shared.latch.arm(kNumPings);
    asio::co_spawn(pool.ctx(), as_ping_pong_root(&shared, how), asio::detached);
    shared.latch.wait();
  }
}

asio::awaitable<void> as_chain(Shared* shared, int n, AsioSpawn how) {
  if (n == 0) {
    shared->latch.count_down();
    co_return;
  }
  asio_spawn(co_await asio::this_coro::executor, as_chain(shared, n - 1, how), how);
}

void asio_chained_spawn(benchmark::State& state, int workers, AsioSpawn how) {
  Shared shared;  // declared first: outlives the threads that touch it
  AsioPool pool(workers);
  for (auto _ : state) {
    shared.latch.arm(1);
    asio::co_spawn(pool.ctx(), as_chain(&shared, kChainDepth, how), asio::detached);
    shared.latch.wait();
  }
}

asio::awaitable<void> as_work(Shared* shared, std::uint64_t index) {
  shared->sum.fetch_add(xorshift_work(index), std::memory_order_relaxed);
  shared->latch.count_down();
  co_return;
}

asio::awaitable<void> as_parallel_root(Shared* shared, AsioSpawn how) {
  auto ex = co_await asio::this_coro::executor;
  for (int i = 0; i < kWorkTasks; ++i) {
    asio_spawn(ex, as_work(shared, static_cast<std::uint64_t>(i)), how);
  }
}

void asio_parallel_work(benchmark::State& state, int workers, AsioSpawn how) {
  Shared shared;  // declared first: outlives the threads that touch it
  AsioPool pool(workers);
  for (auto _ : state) {
    shared.latch.arm(kWorkTasks);
    shared.sum.store(0, std::memory_order_relaxed);
    asio::co_spawn(pool.ctx(), as_parallel_root(&shared, how), asio::detached);
    shared.latch.wait();
    check_work_sum(state, shared);
  }
}

// =====================================================================================
// registration
// =====================================================================================

using BenchFn = void (*)(benchmark::State&, int);

template <void (*Body)(benchmark::State&, int, SpawnPlain)>
void spindle_plain(benchmark::State& state, int workers) {
  Body(state, workers, SpawnPlain{});
}
/// Runs a shape with every task under one TaskMonitor and reports, per iteration,
/// the polls the monitor timed and their mean duration, so that a monitor that
/// silently stopped measuring shows up in the output.
template <void (*Body)(benchmark::State&, int, SpawnMonitored), std::size_t Recorder = 0>
void spindle_monitored(benchmark::State& state, int workers) {
  spindle::TaskMonitor monitor;
  Body(state, workers, SpawnMonitored{&monitor, Recorder});
  const spindle::TaskMetrics m = monitor.cumulative();
  const auto iterations = static_cast<double>(std::max<benchmark::IterationCount>(state.iterations(), 1));
  state.counters["monitored_polls"] = static_cast<double>(m.total_poll_count) / iterations;
  state.counters["mean_poll_ns"] = static_cast<double>(m.mean_poll_duration().count());
  if (m.instrumented_count == 0) state.SkipWithError("spindle_monitored: nothing was instrumented");
}
template <void (*Body)(benchmark::State&, int, AsioSpawn)>
void asio_inline(benchmark::State& state, int workers) {
  Body(state, workers, AsioSpawn::kInline);
}
template <void (*Body)(benchmark::State&, int, AsioSpawn)>
void asio_queued(benchmark::State& state, int workers) {
  Body(state, workers, AsioSpawn::kQueued);
}

/// One shape: its name, how many tasks an iteration spawns (for items/s),
/// and its body for each implementation (nullptr: not registered).
struct Shape {
  const char* name;
  std::int64_t tasks_per_iteration;
  BenchFn spindle;
  BenchFn asio;
  BenchFn asio_queued;  // only where tasks spawn from inside the io_context
  BenchFn monitored;    // spindle with every task under one TaskMonitor
  BenchFn recorded;     // the same on a runtime with a flight recorder (delay blame on)
};

/// Flight-recorder events per worker of spindle_monitored_recorded (the
/// demo's recorder is 8,192; 4,096 is 128 KiB per worker).
constexpr std::size_t kRecorderEvents = 4096;

const Shape kShapes[] = {
    {"spawn_many_local", kNumSpawn, &spindle_plain<&spindle_spawn_many_local<SpawnPlain>>,
     &asio_inline<&asio_spawn_many_local>, &asio_queued<&asio_spawn_many_local>,
     &spindle_monitored<&spindle_spawn_many_local<SpawnMonitored>>,
     &spindle_monitored<&spindle_spawn_many_local<SpawnMonitored>, kRecorderEvents>},
    {"spawn_many_remote", kNumSpawn, &spindle_plain<&spindle_spawn_many_remote<SpawnPlain>>,
     &asio_inline<&asio_spawn_many_remote>, nullptr,
     &spindle_monitored<&spindle_spawn_many_remote<SpawnMonitored>>,
     &spindle_monitored<&spindle_spawn_many_remote<SpawnMonitored>, kRecorderEvents>},
    {"yield_many", std::int64_t{kYieldTasks} * kNumYield,
     &spindle_plain<&spindle_yield_many<SpawnPlain>>, &asio_inline<&asio_yield_many>, nullptr,
     &spindle_monitored<&spindle_yield_many<SpawnMonitored>>,
     &spindle_monitored<&spindle_yield_many<SpawnMonitored>, kRecorderEvents>},
    {"ping_pong", kNumPings, &spindle_plain<&spindle_ping_pong<SpawnPlain>>,
     &asio_inline<&asio_ping_pong>, &asio_queued<&asio_ping_pong>,
     &spindle_monitored<&spindle_ping_pong<SpawnMonitored>>,
     &spindle_monitored<&spindle_ping_pong<SpawnMonitored>, kRecorderEvents>},
    {"chained_spawn", kChainDepth, &spindle_plain<&spindle_chained_spawn<SpawnPlain>>,
     &asio_inline<&asio_chained_spawn>, &asio_queued<&asio_chained_spawn>,
     &spindle_monitored<&spindle_chained_spawn<SpawnMonitored>>,
     &spindle_monitored<&spindle_chained_spawn<SpawnMonitored>, kRecorderEvents>},
    {"parallel_work", kWorkTasks, &spindle_plain<&spindle_parallel_work<SpawnPlain>>,
     &asio_inline<&asio_parallel_work>, &asio_queued<&asio_parallel_work>,
     &spindle_monitored<&spindle_parallel_work<SpawnMonitored>>,
     &spindle_monitored<&spindle_parallel_work<SpawnMonitored>, kRecorderEvents>},
};

/// Parses "1,2,4" into worker counts; throws std::invalid_argument.
std::vector<int> parse_workers(std::string_view list) {
  std::vector<int> out;
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    int n = 0;
    auto [end, err] = std::from_chars(item.data(), item.data() + item.size(), n);
    if (err != std::errc() || end != item.data() + item.size() || n < 1 || n > 4096) {
      throw std::invalid_argument("bad worker count '" + std::string(item) + "'");
    }
    out.push_back(n);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  if (out.empty()) throw std::invalid_argument("empty worker list");
  return out;
}

/// Command-line settings of our own (not Google Benchmark's).
struct Options {
  std::vector<int> workers{2};  // --workers / SPINDLE_BENCH_WORKERS
  std::int64_t iterations = 0;  // --iterations: fixed count (profiling); 0 = automatic
};

void register_one(const std::string& shape, const char* impl, int workers, BenchFn fn,
                  std::int64_t tasks, const Options& options) {
  if (fn == nullptr) return;
  std::string name = shape + "/" + impl + "/workers:" + std::to_string(workers);
  auto* b =
      benchmark::RegisterBenchmark(name.c_str(), [fn, workers, tasks](benchmark::State& state) {
        fn(state, workers);
        state.SetItemsProcessed(state.iterations() * tasks);
      });
  b->UseRealTime()->Unit(benchmark::kMillisecond);
  if (options.iterations > 0) b->Iterations(options.iterations);
}

void register_all(const Options& options) {
  const std::vector<int>& workers = options.workers;
  for (const Shape& s : kShapes) {
    // parallel_work's speed-up needs its 1-worker baseline.
    const bool add_baseline = std::string_view(s.name) == "parallel_work" &&
                              std::find(workers.begin(), workers.end(), 1) == workers.end();
    std::vector<int> counts;
    if (add_baseline) counts.push_back(1);
    counts.insert(counts.end(), workers.begin(), workers.end());
    for (int n : counts) {
      register_one(s.name, "spindle", n, s.spindle, s.tasks_per_iteration, options);
      register_one(s.name, "asio", n, s.asio, s.tasks_per_iteration, options);
      register_one(s.name, "asio_queued", n, s.asio_queued, s.tasks_per_iteration, options);
      register_one(s.name, "spindle_monitored", n, s.monitored, s.tasks_per_iteration, options);
      register_one(s.name, "spindle_monitored_recorded", n, s.recorded, s.tasks_per_iteration,
                   options);

    }
  }
}

// ---- reporting ---------------------------------------------------------------------

/// Google Benchmark appends "/real_time" to the name of a UseRealTime()
/// benchmark; BENCH_SHAPES.md names are exactly <shape>/<impl>/workers:<N>.
/// This reporter drops the suffix and hands everything to `inner`.
class ShapeNameReporter final : public benchmark::BenchmarkReporter {
 public:
  explicit ShapeNameReporter(std::unique_ptr<benchmark::BenchmarkReporter> inner)
      : inner_(std::move(inner)) {}

  bool ReportContext(const Context& context) override {
    // The library sets the output file on us; the inner reporter writes there.
    inner_->SetOutputStream(&GetOutputStream());
    inner_->SetErrorStream(&GetErrorStream());
    return inner_->ReportContext(context);
  }
  void ReportRuns(const std::vector<Run>& runs) override {
    std::vector<Run> renamed = runs;
    for (Run& r : renamed) r.run_name.time_type.clear();
    inner_->ReportRuns(renamed);
  }
  void Finalize() override { inner_->Finalize(); }

 private:
  std::unique_ptr<benchmark::BenchmarkReporter> inner_;  // the reporter that prints
};

/// The reporter --benchmark_out_format asks for: console, else json (csv,
/// deprecated by Google Benchmark, falls back to json).
std::unique_ptr<benchmark::BenchmarkReporter> make_file_reporter(std::string_view format) {
  if (format == "console") return std::make_unique<benchmark::ConsoleReporter>();
  return std::make_unique<benchmark::JSONReporter>();
}

}  // namespace

int main(int argc, char** argv) {
  // Our own options first (Google Benchmark rejects flags it does not know).
  std::string workers_spec = "2";
  if (const char* env = std::getenv("SPINDLE_BENCH_WORKERS"); env != nullptr && *env != '\0') {
    workers_spec = env;
  }
  Options options;
  bool has_out_file = false;  // --benchmark_out given: we wrap the file reporter too
  std::string out_format = "json";
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg(argv[i]);
    if (arg.rfind("--workers=", 0) == 0) {
      workers_spec = std::string(arg.substr(10));
      continue;
    }
    if (arg.rfind("--iterations=", 0) == 0) {
      std::string_view v = arg.substr(13);
      auto [end, err] = std::from_chars(v.data(), v.data() + v.size(), options.iterations);
      if (err != std::errc() || end != v.data() + v.size() || options.iterations < 1) {
        std::fprintf(stderr, "spindle-bench: --iterations wants a positive count\n");
        return 2;
      }
      continue;
    }
    if (arg.rfind("--benchmark_out=", 0) == 0) has_out_file = arg.size() > 16;
    if (arg.rfind("--benchmark_out_format=", 0) == 0) out_format = std::string(arg.substr(23));
    if (arg == "--help" || arg == "-h") {
      std::printf(
          "spindle-bench [--workers=LIST] [--iterations=N] [Google Benchmark flags]\n"
          "  --workers=LIST   worker counts every shape runs at (default 2; env\n"
          "                   SPINDLE_BENCH_WORKERS=1,2,4,8,16); parallel_work also at 1\n"
          "  --iterations=N   run exactly N iterations per benchmark (for profilers)\n\n");
    }
    argv[kept++] = argv[i];
  }
  argc = kept;
  try {
    options.workers = parse_workers(workers_spec);
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "spindle-bench: --workers / SPINDLE_BENCH_WORKERS: %s (expected a list such "
                 "as 1,2,4,8,16)\n",
                 e.what());
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  (void)expected_work_sum();  // computed before any timing
  register_all(options);
  ShapeNameReporter display{
      std::unique_ptr<benchmark::BenchmarkReporter>(benchmark::CreateDefaultDisplayReporter())};
  if (has_out_file) {
    ShapeNameReporter file{make_file_reporter(out_format)};
    benchmark::RunSpecifiedBenchmarks(&display, &file);
  } else {
    benchmark::RunSpecifiedBenchmarks(&display);
  }
  benchmark::Shutdown();
  return 0;
}
