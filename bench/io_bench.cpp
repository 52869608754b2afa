// The I/O shapes of the runtime-on-Asio issue, spindle against plain Asio:
//
//   echo/<impl>/workers:2        64 loopback connections; one iteration = every
//                                connection does 100 round trips of 64 bytes
//                                (6,400 round trips; items/s = round trips/s)
//   timer_many/<impl>/workers:2  10,000 tasks each sleep 1 ms; the iteration
//                                ends when the last one wakes
//
// impl:
//   spindle          a 2-worker Runtime; server and clients are spindle Tasks on
//                    spindle::use_task, sockets spread over the workers
//   asio             one io_context run by 2 threads; asio::awaitable + co_spawn
//   asio_per_thread  two io_contexts, one thread each (the "io_context per core"
//                    pattern); connections alternate between them (echo only)
//
// Each implementation runs both ends of every connection (server and client
// tasks on the same runtime or io_contexts), so a round trip costs two reads,
// two writes and four wake-ups of that implementation. The connections are made
// once per benchmark run, before the timed loop.

#include <benchmark/benchmark.h>

#include <array>
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <spindle/runtime.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench_support.hpp"

namespace {

using spindle_bench::Latch;
using spindle_bench::SchedulerCounters;
using asio::ip::tcp;

constexpr int kConnections = 64;
constexpr int kRoundTrips = 100;      // per connection and iteration
constexpr std::size_t kMessage = 64;  // bytes per round trip
constexpr int kTimers = 10'000;
constexpr auto kSleep = std::chrono::milliseconds(1);

tcp::endpoint loopback(std::uint16_t port) {
  return {asio::ip::make_address("127.0.0.1"), port};
}

// ---- spindle ------------------------------------------------------------------


spindle::Task<void> sp_echo_connection(tcp::socket socket) {
  std::array<char, 4096> buffer{};
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer),
                                                   spindle::as_result(spindle::use_task));
    if (ec) co_return;  // the client closed: end of the benchmark run
    auto [wec, written] = co_await asio::async_write(socket, asio::buffer(buffer.data(), n),
                                                     spindle::as_result(spindle::use_task));
    if (wec || written != n) co_return;
  }
}

spindle::Task<void> sp_client(tcp::socket* socket, Latch* latch) {
  std::array<char, kMessage> out{};
  std::array<char, kMessage> in{};
  for (int i = 0; i < kRoundTrips; ++i) {
    out[0] = static_cast<char>(i);
    co_await asio::async_write(*socket, asio::buffer(out), spindle::use_task);
    co_await asio::async_read(*socket, asio::buffer(in), spindle::use_task);
    if (in[0] != out[0]) throw std::runtime_error("echo: wrong bytes back");
  }
  latch->count_down();
}

void echo_spindle(benchmark::State& state) {
  auto rt = spindle::Runtime::Builder().worker_threads(2).build();
  tcp::acceptor acceptor(rt.handle().executor(), loopback(0));
  const std::uint16_t port = acceptor.local_endpoint().port();
  std::vector<std::unique_ptr<tcp::socket>> clients;
  for (int i = 0; i < kConnections; ++i) {
    // Both ends of connection i on the same worker (the next one round-robin),
    // as asio_per_thread puts them on the same io_context: in a real service the
    // client is another machine, and no implementation should pay for waking
    // the other thread on every message because both ends live in this process.
    const auto ex = rt.handle().executor();
    clients.push_back(std::make_unique<tcp::socket>(ex));
    clients.back()->connect(loopback(port));
    clients.back()->set_option(tcp::no_delay(true));
    tcp::socket server_side(ex);
    acceptor.accept(server_side);
    server_side.set_option(tcp::no_delay(true));
    rt.spawn(sp_echo_connection(std::move(server_side))).detach();
  }
  Latch latch;
  const SchedulerCounters counters(rt);
  for (auto _ : state) {
    latch.arm(kConnections);
    for (auto& c : clients) rt.spawn(sp_client(c.get(), &latch)).detach();
    latch.wait();
  }
  state.SetItemsProcessed(state.iterations() * kConnections * kRoundTrips);
  counters.report(state);  // parks: each a sleep in epoll_wait and a wake-up
  // On return the client sockets close (no operation is pending on them), the
  // server's connection tasks read EOF and end, and the runtime goes last.
}

spindle::Task<void> sp_sleeper(Latch* latch) {
  co_await spindle::sleep(kSleep);
  latch->count_down();
}

spindle::Task<void> sp_timer_root(Latch* latch) {
  for (int i = 0; i < kTimers; ++i) spindle::spawn(sp_sleeper(latch)).detach();
  co_return;
}

void timer_many_spindle(benchmark::State& state) {
  auto rt = spindle::Runtime::Builder().worker_threads(2).build();
  Latch latch;
  for (auto _ : state) {
    latch.arm(kTimers);
    rt.spawn(sp_timer_root(&latch)).detach();
    latch.wait();
  }
  state.SetItemsProcessed(state.iterations() * kTimers);
}

// ---- plain Asio ---------------------------------------------------------------

/// N threads running the given io_contexts (thread i runs context i % size),
/// kept alive by work guards until destruction.
class AsioThreads {
 public:
  AsioThreads(std::size_t contexts, std::size_t threads) : contexts_(contexts) {
    for (auto& c : contexts_) guards_.emplace_back(asio::make_work_guard(c));
    for (std::size_t i = 0; i < threads; ++i) {
      threads_.emplace_back([this, i] { contexts_[i % contexts_.size()].run(); });
    }
  }
  ~AsioThreads() {
    guards_.clear();
    for (auto& c : contexts_) c.stop();
    for (auto& t : threads_) t.join();
  }
  AsioThreads(const AsioThreads&) = delete;
  AsioThreads& operator=(const AsioThreads&) = delete;
  asio::io_context& context(std::size_t i) { return contexts_[i % contexts_.size()]; }

 private:
  std::vector<asio::io_context> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
};

asio::awaitable<void> as_echo_connection(tcp::socket socket) {
  std::array<char, 4096> buffer{};
  for (;;) {
    auto [ec, n] =
        co_await socket.async_read_some(asio::buffer(buffer), asio::experimental::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    auto [wec, written] = co_await asio::async_write(socket, asio::buffer(buffer.data(), n),
                                                     asio::experimental::as_tuple(asio::use_awaitable));
    if (wec || written != n) co_return;
  }
}

asio::awaitable<void> as_client(tcp::socket* socket, Latch* latch) {
  std::array<char, kMessage> out{};
  std::array<char, kMessage> in{};
  for (int i = 0; i < kRoundTrips; ++i) {
    out[0] = static_cast<char>(i);
    co_await asio::async_write(*socket, asio::buffer(out), asio::use_awaitable);
    co_await asio::async_read(*socket, asio::buffer(in), asio::use_awaitable);
    if (in[0] != out[0]) throw std::runtime_error("echo: wrong bytes back");
  }
  latch->count_down();
}

/// Plain-Asio echo over `contexts` io_contexts run by 2 threads in all.
void echo_asio(benchmark::State& state, std::size_t contexts) {
  AsioThreads io(contexts, 2);
  tcp::acceptor acceptor(io.context(0), loopback(0));
  const std::uint16_t port = acceptor.local_endpoint().port();
  std::vector<std::unique_ptr<tcp::socket>> clients;
  for (int i = 0; i < kConnections; ++i) {
    // Server side first, on the context this connection belongs to.
    tcp::socket server_side(io.context(static_cast<std::size_t>(i)));
    clients.push_back(std::make_unique<tcp::socket>(io.context(static_cast<std::size_t>(i))));
    clients.back()->connect(loopback(port));
    clients.back()->set_option(tcp::no_delay(true));
    acceptor.accept(server_side);
    server_side.set_option(tcp::no_delay(true));
    asio::co_spawn(server_side.get_executor(), as_echo_connection(std::move(server_side)),
                   asio::detached);
  }
  Latch latch;
  for (auto _ : state) {
    latch.arm(kConnections);
    for (auto& c : clients) asio::co_spawn(c->get_executor(), as_client(c.get(), &latch), asio::detached);
    latch.wait();
  }
  state.SetItemsProcessed(state.iterations() * kConnections * kRoundTrips);
  // On return the client sockets close first (no operation is pending on them),
  // then AsioThreads stops the contexts and destroys the server coroutines.
}

asio::awaitable<void> as_sleeper(Latch* latch) {
  asio::steady_timer timer(co_await asio::this_coro::executor, kSleep);
  co_await timer.async_wait(asio::use_awaitable);
  latch->count_down();
}

void timer_many_asio(benchmark::State& state) {
  AsioThreads io(1, 2);
  Latch latch;
  for (auto _ : state) {
    latch.arm(kTimers);
    asio::post(io.context(0), [&] {
      for (int i = 0; i < kTimers; ++i) asio::co_spawn(io.context(0), as_sleeper(&latch), asio::detached);
    });
    latch.wait();
  }
  state.SetItemsProcessed(state.iterations() * kTimers);
}

void register_io_benchmarks() {
  const auto ms = benchmark::kMillisecond;
  benchmark::RegisterBenchmark("echo/spindle/workers:2", echo_spindle)->UseRealTime()->Unit(ms);
  benchmark::RegisterBenchmark("echo/asio/workers:2",
                               [](benchmark::State& s) { echo_asio(s, 1); })
      ->UseRealTime()
      ->Unit(ms);
  benchmark::RegisterBenchmark("echo/asio_per_thread/workers:2",
                               [](benchmark::State& s) { echo_asio(s, 2); })
      ->UseRealTime()
      ->Unit(ms);
  benchmark::RegisterBenchmark("timer_many/spindle/workers:2", timer_many_spindle)
      ->UseRealTime()
      ->Unit(ms);
  benchmark::RegisterBenchmark("timer_many/asio/workers:2", timer_many_asio)
      ->UseRealTime()
      ->Unit(ms);
}

/// Registered before main() runs, like the BENCHMARK macros.
[[maybe_unused]] const int kRegistered = (register_io_benchmarks(), 0);

}  // namespace
