// The timeout_read shape (the "Performance" part of the "Safe to use" issue):
// what a deadline costs on a small socket read, spindle against plain Asio.
//
//   timeout_read/<impl>/workers:1   one iteration = 1,000 reads of a 64-byte
//                                   message on a loopback TCP connection
//                                   (items/s = reads/s)
//
// impl:
//   spindle          co_await sock.async_read_some(buf, spindle::use_task)
//   spindle_timeout  the same read as a Task under co_await spindle::timeout(1s, ...)
//   asio             co_await sock.async_read_some(buf, asio::use_awaitable)
//   asio_timeout     the same read raced against a 1 s asio::steady_timer with
//                    awaitable_operators' ||, the plain-Asio deadline: each
//                    operation gets a cancellation slot, the loser is
//                    cancelled and awaited before the || completes
//
// Each read: the reading task first writes 64 bytes into the connection's
// other end (a blocking write_some on the peer socket, which never waits for
// 64 bytes), then reads them. The data is there when the read starts, so
// Asio completes the read at once and posts its handler; what is measured
// is the await of one ready read — for the _timeout variants, plus arming
// a timer, and cancelling it (and completing its cancelled wait) when the
// read wins. The deadline never passes. The ratios spindle_timeout/spindle
// and asio_timeout/asio are the price of a deadline on each side.
//
// One worker (spindle) and one thread running one io_context (Asio): a
// deadline's cost is per operation, and one thread keeps cross-thread
// wake-ups out of the figure. The connection is made once per benchmark
// run, before the timed loop.

#include <benchmark/benchmark.h>

#include <array>
#include <asio.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <spindle/runtime.hpp>
#include <stdexcept>
#include <thread>
#include <variant>

#include "bench_support.hpp"

namespace {

using asio::ip::tcp;
using spindle_bench::Latch;

constexpr int kReads = 1000;          // per iteration
constexpr std::size_t kMessage = 64;  // bytes per read
constexpr auto kDeadline = std::chrono::seconds(1);

/// A connected loopback pair: `reader` and `peer`, both on `ex`'s context.
struct Connection {
  template <class Executor>
  explicit Connection(const Executor& ex) : reader(ex), peer(ex) {
    tcp::acceptor acceptor(ex, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    peer.connect(acceptor.local_endpoint());
    acceptor.accept(reader);
    peer.set_option(tcp::no_delay(true));
    reader.set_option(tcp::no_delay(true));
  }
  tcp::socket reader;  // the end the measured task reads from
  tcp::socket peer;    // the end written to, synchronously, before each read
};

/// Writes one message into the peer end (never blocks: 64 bytes fit).
void send_message(tcp::socket& peer, std::array<char, kMessage>& out, int i) {
  out[0] = static_cast<char>(i);
  if (peer.write_some(asio::buffer(out)) != kMessage) {
    throw std::runtime_error("timeout_read: short write");
  }
}

/// Checks that the message read back is the one sent.
void check_message(std::size_t n, const std::array<char, kMessage>& in,
                   const std::array<char, kMessage>& out) {
  if (n != kMessage || in[0] != out[0]) throw std::runtime_error("timeout_read: wrong bytes");
}

// ---- spindle ------------------------------------------------------------------

spindle::Task<std::size_t> sp_read(tcp::socket& socket, std::span<char> buffer) {
  co_return co_await socket.async_read_some(asio::buffer(buffer.data(), buffer.size()),
                                            spindle::use_task);
}

template <bool kWithTimeout>
spindle::Task<void> sp_reads(Connection* c, Latch* latch) {
  std::array<char, kMessage> out{};
  std::array<char, kMessage> in{};
  for (int i = 0; i < kReads; ++i) {
    send_message(c->peer, out, i);
    std::size_t n = 0;
    if constexpr (kWithTimeout) {
      n = co_await spindle::timeout(kDeadline, sp_read(c->reader, in));
    } else {
      n = co_await c->reader.async_read_some(asio::buffer(in), spindle::use_task);
    }
    check_message(n, in, out);
  }
  latch->count_down();
}

template <bool kWithTimeout>
void timeout_read_spindle(benchmark::State& state) {
  auto rt = spindle::Runtime::Builder().worker_threads(1).build();
  Connection c(rt.handle().executor());
  Latch latch;
  for (auto _ : state) {
    latch.arm(1);
    rt.spawn(sp_reads<kWithTimeout>(&c, &latch)).detach();
    latch.wait();
  }
  state.SetItemsProcessed(state.iterations() * kReads);
}

// ---- plain Asio ---------------------------------------------------------------

template <bool kWithTimeout>
asio::awaitable<void> as_reads(Connection* c, Latch* latch) {
  using namespace asio::experimental::awaitable_operators;
  std::array<char, kMessage> out{};
  std::array<char, kMessage> in{};
  for (int i = 0; i < kReads; ++i) {
    send_message(c->peer, out, i);
    std::size_t n = 0;
    if constexpr (kWithTimeout) {
      asio::steady_timer timer(co_await asio::this_coro::executor, kDeadline);
      std::variant<std::size_t, std::monostate> first =
          co_await (c->reader.async_read_some(asio::buffer(in), asio::use_awaitable) ||
                    timer.async_wait(asio::use_awaitable));
      if (first.index() != 0) throw std::runtime_error("timeout_read: the deadline passed");
      n = std::get<0>(first);
    } else {
      n = co_await c->reader.async_read_some(asio::buffer(in), asio::use_awaitable);
    }
    check_message(n, in, out);
  }
  latch->count_down();
}

template <bool kWithTimeout>
void timeout_read_asio(benchmark::State& state) {
  asio::io_context io(1);
  auto guard = asio::make_work_guard(io);
  std::thread runner([&io] { io.run(); });
  Connection c(io.get_executor());
  Latch latch;
  for (auto _ : state) {
    latch.arm(1);
    asio::co_spawn(io, as_reads<kWithTimeout>(&c, &latch), asio::detached);
    latch.wait();
  }
  state.SetItemsProcessed(state.iterations() * kReads);
  guard.reset();
  io.stop();
  runner.join();
}

void register_timeout_benchmarks() {
  const auto us = benchmark::kMicrosecond;
  benchmark::RegisterBenchmark("timeout_read/spindle/workers:1", timeout_read_spindle<false>)
      ->UseRealTime()
      ->Unit(us);
  benchmark::RegisterBenchmark("timeout_read/spindle_timeout/workers:1",
                               timeout_read_spindle<true>)
      ->UseRealTime()
      ->Unit(us);
  benchmark::RegisterBenchmark("timeout_read/asio/workers:1", timeout_read_asio<false>)
      ->UseRealTime()
      ->Unit(us);
  benchmark::RegisterBenchmark("timeout_read/asio_timeout/workers:1", timeout_read_asio<true>)
      ->UseRealTime()
      ->Unit(us);
}

/// Registered before main() runs, like the BENCHMARK macros.
[[maybe_unused]] const int kRegistered = (register_timeout_benchmarks(), 0);

}  // namespace
