// Asio's recycling allocator on spindle's workers: a task's Asio operations
// (the operation, its cancellation handler, a composed operation's state)
// reuse the worker thread's cached blocks instead of a fresh operator new
// each, and the worker's call-stack entry that makes this happen changes
// nothing else (running_in_this_thread, dispatch).
//
// Its own binary: it replaces the global operator new to count allocations,
// which the other io tests should not pay for. The counting test is skipped
// in sanitizer builds, whose runtimes own operator new (and where spindle's
// task heaps are bypassed, so every block is a fresh allocation anyway).

#include <gtest/gtest.h>

#include <array>
#include <asio/detail/thread_context.hpp>
#include <asio/dispatch.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <spindle/runtime.hpp>
#include <thread>

#include "io/io_support.hpp"

// ---- allocation counting ----------------------------------------------------
// Every thread's allocations are counted while g_counting is on; otherwise
// these only forward to malloc/free.
#if !defined(SPINDLE_SANITIZER_BUILD)
namespace {
std::atomic<bool> g_counting{false};
std::atomic<std::size_t> g_allocations{0};

void* counted_malloc(std::size_t n) noexcept {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
  }
  return std::malloc(n == 0 ? 1 : n);
}
}  // namespace

// Not inlined: GCC would otherwise see free() of what `new` returned.
[[gnu::noinline]] void* operator new(std::size_t n) {
  if (void* p = counted_malloc(n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t n) {
  if (void* p = counted_malloc(n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new(std::size_t n, const std::nothrow_t& /*tag*/) noexcept {
  return counted_malloc(n);
}
[[gnu::noinline]] void* operator new[](std::size_t n, const std::nothrow_t& /*tag*/) noexcept {
  return counted_malloc(n);
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t /*n*/) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t /*n*/) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, const std::nothrow_t& /*tag*/) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p, const std::nothrow_t& /*tag*/) noexcept {
  std::free(p);
}
#endif  // !SPINDLE_SANITIZER_BUILD

namespace {

using spindle::Task;
using spindle::use_task;
using spindle::iotest::connected_pair;
using spindle::iotest::Flavor;
using spindle::iotest::make_runtime;
using spindle::iotest::SocketPair;

class AsioRecycling : public ::testing::TestWithParam<Flavor> {};

struct Where {
  bool task_has_asio_entry = false;       // a call-stack entry while the task runs
  bool task_runs_in_executor = true;      // running_in_this_thread() from the task body
  bool handler_runs_in_executor = false;  // ... from a handler the io_context runs
  bool dispatch_ran_inline = true;        // asio::dispatch from the task body ran at once
};

TEST_P(AsioRecycling, TasksHaveAnAsioThreadEntryAndNothingElseChanges) {
  auto rt = make_runtime(GetParam());
  const Where w = rt.block_on([]() -> Task<Where> {
    Where w;
    w.task_has_asio_entry = asio::detail::thread_context::top_of_thread_call_stack() != nullptr;
    const spindle::Executor ex = spindle::this_executor();
    w.task_runs_in_executor = ex.running_in_this_thread();
    // A task polls outside its worker's io_context: dispatch queues the
    // function (it runs at the worker's next I/O check), as it did before.
    bool ran = false;
    asio::dispatch(ex, [&ran] { ran = true; });
    w.dispatch_ran_inline = ran;
    std::atomic<bool> in_handler{false};
    asio::steady_timer timer(ex);
    timer.expires_after(std::chrono::milliseconds(0));
    asio::post(ex, [&in_handler, ex] { in_handler = ex.running_in_this_thread(); });
    co_await timer.async_wait(use_task);  // the posted handler has run by now (FIFO)
    w.handler_runs_in_executor = in_handler.load();
    EXPECT_TRUE(ran) << "the dispatched function never ran";
    co_return w;
  }());
  EXPECT_TRUE(w.task_has_asio_entry);
  EXPECT_FALSE(w.task_runs_in_executor);
  EXPECT_FALSE(w.dispatch_ran_inline);
  EXPECT_TRUE(w.handler_runs_in_executor);
  // The caller's thread keeps no entry once block_on has returned.
  EXPECT_EQ(asio::detail::thread_context::top_of_thread_call_stack(), nullptr);
}

/// Echoes 64-byte messages until the peer closes.
Task<void> echo_peer(asio::ip::tcp::socket s) {
  std::array<char, 64> buf{};
  for (;;) {
    auto [ec, n] = co_await asio::async_read(s, asio::buffer(buf), spindle::as_result(use_task));
    if (ec) co_return;
    co_await asio::async_write(s, asio::buffer(buf.data(), n), use_task);
  }
}

/// `rounds` round trips of 64 bytes; counts the allocations of the last
/// `rounds - warmup` (every thread's).
Task<std::size_t> round_trips(asio::ip::tcp::socket& s, int rounds, int warmup) {
  std::array<char, 64> out{};
  std::array<char, 64> in{};
  std::size_t counted = 0;
  for (int i = 0; i < rounds; ++i) {
#if !defined(SPINDLE_SANITIZER_BUILD)
    if (i == warmup) {
      g_allocations = 0;
      g_counting = true;
    }
#endif
    co_await asio::async_write(s, asio::buffer(out), use_task);
    co_await asio::async_read(s, asio::buffer(in), use_task);
  }
#if !defined(SPINDLE_SANITIZER_BUILD)
  g_counting = false;
  counted = g_allocations.load();
#endif
  co_return counted;
}

TEST_P(AsioRecycling, SocketRoundTripsAllocateNothingPerOperationOnceWarm) {
#if defined(SPINDLE_SANITIZER_BUILD)
  GTEST_SKIP() << "the sanitizer's runtime owns operator new, and task heaps are bypassed";
#endif
  constexpr int kRounds = 2000;
  constexpr int kWarmup = 200;
  auto rt = make_runtime(GetParam());
  const std::size_t allocations = rt.block_on([]() -> Task<std::size_t> {
    SocketPair p = co_await connected_pair();
    auto peer = spindle::spawn(echo_peer(std::move(p.server)));
    const std::size_t n = co_await round_trips(p.client, kRounds, kWarmup);
    p.client.close();
    co_await peer;
    co_return n;
  }());
  // 4 Asio operations per round trip (a write and a read on each end), each
  // with its operation block, its cancellation handler, the function object
  // its completion was wrapped in, and spindle's shared state. Before the
  // task heaps and the worker's Asio entry served them: 4.5 operator news
  // per operation (32,459 in 7,200). Now none on a current_thread runtime,
  // and 0-6 in 7,200 on two workers (the task heaps growing by a block while
  // blocks freed on the other worker are still on their way back). Before
  // the handler dropped its reference in the same step as it published the
  // results, the awaiter could resume on the other worker first, and the
  // state died inside the handler's run_one(): 0.3-0.8 per operation there.
  const double per_op = static_cast<double>(allocations) / (4.0 * (kRounds - kWarmup));
  EXPECT_LT(per_op, 0.01) << allocations << " allocations in " << 4 * (kRounds - kWarmup)
                          << " operations";
}

// Operations whose I/O executor names no io_context spindle can see through
// (a strand) keep Asio's own dispatch; those on a plain io_context outside
// the runtime complete on its thread. Both still resume the task, and a
// task aborted while one is pending is cancelled through it.
TEST_P(AsioRecycling, OperationsOnAStrandAndOnAForeignIoContextCompleteAndCancel) {
  asio::io_context foreign;
  auto guard = asio::make_work_guard(foreign);
  std::thread foreign_thread([&foreign] { foreign.run(); });
  // The foreign thread is joined however the runtime's part ends.
  struct Joiner {
    asio::executor_work_guard<asio::io_context::executor_type>& guard;
    std::thread& thread;
    ~Joiner() {
      guard.reset();
      thread.join();
    }
  } joiner{guard, foreign_thread};
  auto rt = make_runtime(GetParam());
  const int completed = rt.block_on([](asio::io_context& foreign) -> Task<int> {
    int n = 0;
    asio::steady_timer on_strand(asio::make_strand(spindle::this_executor()),
                                 std::chrono::milliseconds(1));
    co_await on_strand.async_wait(use_task);
    ++n;
    asio::steady_timer on_foreign(foreign, std::chrono::milliseconds(1));
    co_await on_foreign.async_wait(use_task);
    ++n;
    // Aborted while waiting: the wait is cancelled on its own executor and
    // the task ends Cancelled, long before the timer would have fired.
    auto waiter = spindle::spawn([](asio::io_context& foreign) -> Task<void> {
      asio::steady_timer never(asio::make_strand(foreign), std::chrono::hours(1));
      co_await never.async_wait(use_task);
    }(foreign));
    co_await spindle::sleep(std::chrono::milliseconds(5));
    waiter.abort();
    try {
      co_await waiter;
    } catch (const spindle::Cancelled&) {
      ++n;
    }
    co_return n;
  }(foreign));
  EXPECT_EQ(completed, 3);
}

INSTANTIATE_TEST_SUITE_P(Flavors, AsioRecycling, spindle::iotest::kBothFlavors,
                         spindle::iotest::flavor_name);

}  // namespace
