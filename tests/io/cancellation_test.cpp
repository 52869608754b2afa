// Cancellation that really cancels Asio I/O, and the inline combinators
// (timeout, when_all, when_any) built on it: aborted and timed-out reads
// never touch their buffers afterwards and never consume data sent after
// they were cancelled; combinators spawn nothing and complete their
// cancelled operands before they return.

#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/read_until.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <variant>

#include "io/io_support.hpp"
#include "support/counted.hpp"

namespace spindle::iotest {
namespace {

using asio::ip::tcp;
using namespace std::chrono_literals;
using spindle::test::Counted;
using spindle::test::LifetimeCounts;

class Cancellation : public ::testing::TestWithParam<Flavor> {};
INSTANTIATE_TEST_SUITE_P(Flavors, Cancellation, kBothFlavors, flavor_name);

/// Reads once into a buffer in its own frame and returns what it read.
Task<std::string> read_some_in_frame(tcp::socket& s) {
  char buf[64];
  std::size_t n = co_await s.async_read_some(asio::buffer(buf), use_task);
  co_return std::string(buf, n);
}

/// Reads exactly `n` bytes with a composed read into a frame buffer.
Task<std::string> read_exactly_in_frame(tcp::socket& s, std::size_t n) {
  char buf[64];
  std::size_t got = co_await asio::async_read(s, asio::buffer(buf, n), use_task);
  co_return std::string(buf, got);
}

/// Reads a line into a caller's std::string (a dynamic buffer the frame does not own).
Task<void> read_line_into(tcp::socket& s, std::string& out, std::atomic<bool>& started) {
  started.store(true);
  (void)co_await asio::async_read_until(s, asio::dynamic_buffer(out), '\n', use_task);
  ADD_FAILURE() << "the cancelled read_until completed: " << out;
}

/// Sends `text` and reads it back in full on the other end: proves no
/// abandoned read is still queued on `server`.
Task<std::string> round_trip(SocketPair& p, std::string text) {
  co_await asio::async_write(p.client, asio::buffer(text), use_task);
  std::string back(text.size(), '\0');
  co_await asio::async_read(p.server, asio::buffer(back), use_task);
  co_return back;
}

TEST_P(Cancellation, TimedOutReadsNeverConsumeLaterData) {
  auto rt = make_runtime(GetParam());
  const auto spawned_before = rt.handle().counters().spawned_tasks;
  int timeouts = rt.block_on([]() -> Task<int> {
    SocketPair p = co_await connected_pair();
    int timed_out = 0;
    constexpr int kRounds = 10'000;
    for (int i = 0; i < kRounds; ++i) {
      try {
        // Alternate a plain read and a composed read, both into the frame.
        if (i % 2 == 0) {
          (void)co_await spindle::timeout(0ns, read_some_in_frame(p.server));
        } else {
          (void)co_await spindle::timeout(0ns, read_exactly_in_frame(p.server, 8));
        }
        ADD_FAILURE() << "a read with nothing to read finished";
      } catch (const TimedOut&) {
        ++timed_out;
      }
      if (i % 500 == 0) {
        const std::string text = "round " + std::to_string(i);
        std::string back = co_await round_trip(p, text);
        EXPECT_EQ(back, text);
      }
    }
    // Every byte the peer sends now reaches the next read, exactly once.
    std::string tail = co_await round_trip(p, "the last bytes");
    EXPECT_EQ(tail, "the last bytes");
    co_return timed_out;
  }());
  EXPECT_EQ(timeouts, 10'000);
  // Inline: the 20,000 reads and their timeouts spawned nothing but block_on's root.
  EXPECT_EQ(rt.handle().counters().spawned_tasks - spawned_before, 1U);
}

TEST_P(Cancellation, ATimeoutThatDoesNotExpireReturnsTheValue) {
  auto rt = make_runtime(GetParam());
  std::string got = rt.block_on([]() -> Task<std::string> {
    SocketPair p = co_await connected_pair();
    co_await asio::async_write(p.client, asio::buffer("ready", 5), use_task);
    std::string s = co_await spindle::timeout(5s, read_exactly_in_frame(p.server, 5));
    co_return s;
  }());
  EXPECT_EQ(got, "ready");
}

TEST_P(Cancellation, ATimeoutRethrowsTheOperandsException) {
  auto rt = make_runtime(GetParam());
  bool caught = rt.block_on([]() -> Task<bool> {
    try {
      co_await spindle::timeout(1s, []() -> Task<void> {
        co_await spindle::yield_now();
        throw std::runtime_error("inner");
      }());
    } catch (const std::runtime_error& e) {
      co_return std::string(e.what()) == "inner";
    }
    co_return false;
  }());
  EXPECT_TRUE(caught);
}

TEST_P(Cancellation, AbortedReadUntilIntoACallersStringThenCloseTouchesNothing) {
  auto rt = make_runtime(GetParam());
  for (int round = 0; round < 200; ++round) {
    std::string leftover = rt.block_on([]() -> Task<std::string> {
      SocketPair p = co_await connected_pair();
      auto line = std::make_unique<std::string>();
      std::atomic<bool> started{false};
      JoinHandle<void> h = spindle::spawn(read_line_into(p.server, *line, started));
      while (!started.load()) co_await spindle::yield_now();
      co_await spindle::yield_now();  // let the read reach the socket
      h.abort();
      bool cancelled = false;
      try {
        co_await std::move(h);
      } catch (const Cancelled&) {
        cancelled = true;
      }
      EXPECT_TRUE(cancelled);
      // The string the read borrowed goes away, then the connection closes:
      // a read still pending would write into or shrink the freed string.
      std::string copy = *line;
      line.reset();
      p.server.close();
      p.client.close();
      co_await spindle::yield_now();
      co_return copy;
    }());
    EXPECT_EQ(leftover, "");
  }
}

TEST_P(Cancellation, AbortedReadsOnALiveSocketLeaveEveryByteForTheNextRead) {
  auto rt = make_runtime(GetParam());
  rt.block_on([]() -> Task<void> {
    SocketPair p = co_await connected_pair();
    for (int i = 0; i < 2'000; ++i) {
      std::string sink;
      std::atomic<bool> started{false};
      JoinHandle<void> h = spindle::spawn(read_line_into(p.server, sink, started));
      if (i % 2 == 0) {
        while (!started.load()) co_await spindle::yield_now();
      }
      h.abort();
      try {
        co_await std::move(h);
      } catch (const Cancelled&) {
      }
      EXPECT_EQ(sink, "");
      if (i % 100 == 0) {
        const std::string text = "message " + std::to_string(i) + "\n";
        std::string back = co_await round_trip(p, text);
        EXPECT_EQ(back, text);
      }
    }
  }());
}

TEST_P(Cancellation, WhenAllYieldsEveryValueInOrder) {
  auto rt = make_runtime(GetParam());
  const auto spawned_before = rt.handle().counters().spawned_tasks;
  auto [a, b, c] = rt.block_on([]() -> Task<std::tuple<int, std::monostate, std::string>> {
    auto t = co_await spindle::when_all(
        []() -> Task<int> {
          co_await spindle::sleep(2ms);
          co_return 1;
        }(),
        []() -> Task<void> { co_await spindle::yield_now(); }(),
        []() -> Task<std::string> { co_return "three"; }());
    co_return t;
  }());
  EXPECT_EQ(a, 1);
  (void)b;
  EXPECT_EQ(c, "three");
  EXPECT_EQ(rt.handle().counters().spawned_tasks - spawned_before, 1U);
}

Task<int> read_then_fail_witness(Counted witness, tcp::socket& s) {
  char buf[16];
  (void)co_await s.async_read_some(asio::buffer(buf), use_task);
  ADD_FAILURE() << "a cancelled when_all operand was resumed " << witness.value();
  co_return 0;
}

TEST_P(Cancellation, WhenAllCancelsTheOthersWaitsForThemThenRethrows) {
  auto rt = make_runtime(GetParam());
  LifetimeCounts counts;
  bool ok = rt.block_on([](LifetimeCounts& counts) -> Task<bool> {
    SocketPair p = co_await connected_pair();
    bool caught = false;
    try {
      (void)co_await spindle::when_all(read_then_fail_witness(Counted(counts), p.server),
                                       []() -> Task<int> {
                                         co_await spindle::sleep(1ms);
                                         throw std::runtime_error("boom");
                                       }());
    } catch (const std::runtime_error& e) {
      caught = std::string(e.what()) == "boom";
    }
    // The reading operand is gone (its frame destroyed) and its read no
    // longer pending: the next bytes reach the next read.
    EXPECT_EQ(counts.alive(), 0);
    std::string back = co_await round_trip(p, "after");
    co_return caught && back == "after";
  }(counts));
  EXPECT_TRUE(ok);
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST_P(Cancellation, WhenAnyNamesTheFirstAndCancelsTheLosers) {
  auto rt = make_runtime(GetParam());
  LifetimeCounts counts;
  auto [index, value, back] =
      rt.block_on([](LifetimeCounts& counts) -> Task<std::tuple<std::size_t, int, std::string>> {
        SocketPair p = co_await connected_pair();
        std::variant<int, int, std::monostate> r = co_await spindle::when_any(
            read_then_fail_witness(Counted(counts), p.server),
            []() -> Task<int> {
              co_await spindle::sleep(1ms);
              co_return 42;
            }(),
            []() -> Task<void> { co_await spindle::sleep(10s); }());
        EXPECT_EQ(counts.alive(), 0);
        std::string b = co_await round_trip(p, "loser left nothing");
        co_return std::make_tuple(r.index(), r.index() == 1 ? std::get<1>(r) : -1, b);
      }(counts));
  EXPECT_EQ(index, 1U);
  EXPECT_EQ(value, 42);
  EXPECT_EQ(back, "loser left nothing");
  EXPECT_EQ(counts.errors(), 0);
}

TEST_P(Cancellation, WhenAnyRethrowsTheWinnersException) {
  auto rt = make_runtime(GetParam());
  bool caught = rt.block_on([]() -> Task<bool> {
    try {
      (void)co_await spindle::when_any([]() -> Task<int> {
                                         if (true) throw std::logic_error("first");
                                         co_return 0;
                                       }(),
                                       []() -> Task<int> {
                                         co_await spindle::sleep(10s);
                                         co_return 0;
                                       }());
    } catch (const std::logic_error& e) {
      co_return std::string(e.what()) == "first";
    }
    co_return false;
  }());
  EXPECT_TRUE(caught);
}

TEST_P(Cancellation, CombinatorsNestAndTheInnerTimeoutCancelsItsRead) {
  auto rt = make_runtime(GetParam());
  auto [first, second] = rt.block_on([]() -> Task<std::tuple<std::string, std::string>> {
    SocketPair p = co_await connected_pair();
    auto timed = [](tcp::socket& s) -> Task<std::string> {
      try {
        co_return co_await spindle::timeout(2ms, read_some_in_frame(s));
      } catch (const TimedOut&) {
        co_return "timed out";
      }
    };
    auto [a, b] = co_await spindle::when_all(timed(p.server), []() -> Task<std::string> {
      auto r = co_await spindle::when_any(
          []() -> Task<std::string> {
            co_await spindle::sleep(1ms);
            co_return "fast";
          }(),
          []() -> Task<std::string> {
            co_await spindle::sleep(5s);
            co_return "slow";
          }());
      co_return std::get<0>(r);
    }());
    std::string back = co_await round_trip(p, "x");
    EXPECT_EQ(back, "x");
    co_return std::make_tuple(a, b);
  }());
  EXPECT_EQ(first, "timed out");
  EXPECT_EQ(second, "fast");
}

TEST_P(Cancellation, AbortingATaskInsideWhenAllCancelsEveryOperandsRead) {
  auto rt = make_runtime(GetParam());
  LifetimeCounts counts;
  rt.block_on([](LifetimeCounts& counts) -> Task<void> {
    SocketPair a = co_await connected_pair();
    SocketPair b = co_await connected_pair();
    JoinHandle<void> h = spindle::spawn(
        [](Counted w, tcp::socket& x, tcp::socket& y) -> Task<void> {
          (void)co_await spindle::when_all(read_some_in_frame(x), read_some_in_frame(y));
          ADD_FAILURE() << "resumed after abort " << w.value();
        }(Counted(counts), a.server, b.server));
    for (int i = 0; i < 5; ++i) co_await spindle::yield_now();
    h.abort();
    try {
      co_await std::move(h);
    } catch (const Cancelled&) {
    }
    EXPECT_EQ(counts.alive(), 0);
    std::string ra = co_await round_trip(a, "to a");
    std::string rb = co_await round_trip(b, "to b");
    EXPECT_EQ(ra, "to a");
    EXPECT_EQ(rb, "to b");
  }(counts));
  EXPECT_EQ(counts.errors(), 0);
}

TEST(CombinatorMisuse, AnEmptyOperandIsAUsageErrorBeforeAnythingRuns) {
  auto rt = Runtime::Builder().current_thread().build();
  bool threw = rt.block_on([]() -> Task<bool> {
    Task<int> empty;
    try {
      (void)co_await spindle::when_all([]() -> Task<int> { co_return 1; }(), std::move(empty));
    } catch (const UsageError&) {
      co_return true;
    }
    co_return false;
  }());
  EXPECT_TRUE(threw);
}

TEST(CombinatorMisuse, ANegativeTimeoutIsAUsageError) {
  auto rt = Runtime::Builder().current_thread().build();
  bool threw = rt.block_on([]() -> Task<bool> {
    try {
      co_await spindle::timeout(-1ms, []() -> Task<void> { co_return; }());
    } catch (const UsageError&) {
      co_return true;
    }
    co_return false;
  }());
  EXPECT_TRUE(threw);
}

}  // namespace
}  // namespace spindle::iotest

namespace spindle::iotest {
namespace {

TEST(IoAfterShutdown, ASocketReturnedAsAResultIsDestroyedSafelyAfterItsRuntime) {
  std::optional<SocketPair> kept;
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    kept.emplace(rt.block_on(connected_pair()));
    EXPECT_TRUE(kept->server.is_open());
  }  // the runtime and its workers are gone; the io_contexts live on for the sockets
  EXPECT_TRUE(kept->client.is_open());
  kept.reset();  // no heap-use-after-free in the socket service (ASan)
}

TEST(IoAfterShutdown, ObjectsMadeOnHandleExecutorOutliveTheRuntime) {
  std::optional<asio::ip::tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> timer;
  {
    auto rt = Runtime::Builder().worker_threads(1).build();
    acceptor.emplace(rt.handle().executor(),
                     tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    timer.emplace(rt.handle().executor(), std::chrono::hours(1));
    timer->async_wait([](const asio::error_code&) {});  // pending at shutdown: destroyed unrun
  }
  timer.reset();
  acceptor.reset();
}

TEST(IoAfterShutdown, AnOperationStartedAfterShutdownFailsWithRuntimeShutdown) {
  std::optional<SocketPair> dead;
  {
    auto rt = Runtime::Builder().worker_threads(1).build();
    dead.emplace(rt.block_on(connected_pair()));
  }
  auto other = Runtime::Builder().current_thread().build();
  std::string what = other.block_on([](SocketPair& p) -> Task<std::string> {
    char buf[8];
    try {
      (void)co_await p.server.async_read_some(asio::buffer(buf), use_task);
    } catch (const RuntimeShutdown& e) {
      co_return e.what();
    }
    co_return "no error";
  }(*dead));
  EXPECT_NE(what.find("runtime has shut down"), std::string::npos) << what;
}

TEST(IoAfterShutdown, ATimerOnAStrandOverADeadRuntimeFailsWithRuntimeShutdown) {
  std::optional<asio::steady_timer> dead;
  {
    auto rt = Runtime::Builder().worker_threads(1).build();
    dead.emplace(asio::make_strand(rt.handle().executor()), std::chrono::milliseconds(1));
  }
  auto other = Runtime::Builder().current_thread().build();
  const std::string what = other.block_on([](asio::steady_timer& t) -> Task<std::string> {
    try {
      co_await t.async_wait(use_task);
    } catch (const RuntimeShutdown& e) {
      co_return e.what();
    }
    co_return "no error";
  }(*dead));
  EXPECT_NE(what.find("runtime has shut down"), std::string::npos) << what;
}

// An I/O object on an io_context of the user's is not a dead runtime's: its
// executor was once mistaken for spindle's (Asio 1.22's any_executor
// target<T>() does not check the type), which read past the io_context
// executor and refused the operation, or worse.
TEST(IoAfterShutdown, AnIoObjectOnAPlainIoContextIsNotMistakenForADeadRuntime) {
  asio::io_context plain;
  auto guard = asio::make_work_guard(plain);
  std::thread runner([&plain] { plain.run(); });
  auto rt = Runtime::Builder().worker_threads(2).build();
  const std::string what = rt.block_on([](asio::io_context& plain) -> Task<std::string> {
    asio::steady_timer t(plain, std::chrono::milliseconds(1));
    try {
      co_await t.async_wait(use_task);
    } catch (const std::exception& e) {
      co_return e.what();
    }
    co_return "completed";
  }(plain));
  guard.reset();
  runner.join();
  EXPECT_EQ(what, "completed");
}

}  // namespace
}  // namespace spindle::iotest
