// Bad input at the edges of the Asio layer: Builder settings out of range
// (ConfigError naming the setting), a JoinHandle awaited twice or after a
// move (UsageError), and socket errors inside tasks, which end those tasks
// only: the workers and every other task carry on.

#include <gtest/gtest.h>

#include <array>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <chrono>
#include <exception>
#include <spindle/runtime.hpp>
#include <string>
#include <vector>

#include "io/io_support.hpp"
#include "support/sync.hpp"

namespace {

using asio::ip::tcp;
using spindle::ConfigError;
using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;
using spindle::UsageError;
using spindle::use_task;
using spindle::iotest::Flavor;

// build() must throw ConfigError whose message names `setting`.
void expect_rejected(const Runtime::Builder& builder, const std::string& setting) {
  try {
    Runtime rt = builder.build();
    ADD_FAILURE() << "build() accepted an invalid " << setting;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(setting), std::string::npos)
        << "the message does not name " << setting << ": " << e.what();
  }
}

TEST(BadInput, BuilderRejectsZeroWorkerThreads) {
  expect_rejected(Runtime::Builder().worker_threads(0), "worker_threads");
}

TEST(BadInput, BuilderRejectsANegativeOrZeroThreadKeepAlive) {
  expect_rejected(Runtime::Builder().thread_keep_alive(std::chrono::milliseconds(-1)),
                  "thread_keep_alive");
  expect_rejected(Runtime::Builder().thread_keep_alive(std::chrono::nanoseconds(0)),
                  "thread_keep_alive");
}

TEST(BadInput, BuilderRejectsZeroMaxBlockingThreads) {
  expect_rejected(Runtime::Builder().max_blocking_threads(0), "max_blocking_threads");
  expect_rejected(Runtime::Builder().current_thread().max_blocking_threads(-2),
                  "max_blocking_threads");
}

TEST(BadInput, BuilderRejectsAZeroBudget) {
  expect_rejected(Runtime::Builder().budget(0), "budget");
}

Task<int> value(int v) { co_return v; }

TEST(BadInput, AwaitingAJoinHandleTwiceThrowsUsageError) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  bool second_refused = rt.block_on([]() -> Task<bool> {
    JoinHandle<int> h = spindle::spawn(value(4));
    EXPECT_EQ(co_await h, 4);
    try {
      (void)co_await h;
    } catch (const UsageError&) {
      co_return true;
    }
    co_return false;
  }());
  EXPECT_TRUE(second_refused);
}

TEST(BadInput, AwaitingAMovedFromJoinHandleThrowsUsageError) {
  auto rt = Runtime::Builder().current_thread().build();
  bool refused = rt.block_on([]() -> Task<bool> {
    JoinHandle<int> h = spindle::spawn(value(4));
    JoinHandle<int> taken = std::move(h);
    bool threw = false;
    try {
      (void)co_await h;  // NOLINT(bugprone-use-after-move): the point of the test
    } catch (const UsageError&) {
      threw = true;
    }
    EXPECT_EQ(co_await taken, 4);
    co_return threw;
  }());
  EXPECT_TRUE(refused);
}

// Connects to a port nobody listens on, without catching the error.
Task<void> connect_refused(tcp::endpoint ep) {
  tcp::socket s(spindle::this_executor());
  co_await s.async_connect(ep, use_task);
}

// Reads from a peer that closes at once, without catching the eof.
Task<void> read_from_closed_peer() {
  auto [client, server] = co_await spindle::iotest::connected_pair();
  client.close();
  std::array<char, 4> buf{};
  (void)co_await server.async_read_some(asio::buffer(buf), use_task);
}

class SocketErrors : public ::testing::TestWithParam<Flavor> {};

TEST_P(SocketErrors, ASocketErrorInATaskNeverTakesAWorkerDown) {
  std::atomic<int> unhandled{0};
  auto builder = Runtime::Builder().on_unhandled_exception(
      [&unhandled](spindle::TaskId, std::exception_ptr e) {
        try {
          std::rethrow_exception(e);
        } catch (const asio::system_error&) {
          unhandled.fetch_add(1);
        } catch (...) {
          ADD_FAILURE() << "not an asio::system_error";
        }
      });
  if (GetParam() == Flavor::kCurrentThread) {
    builder.current_thread();
  } else {
    builder.worker_threads(2);
  }
  auto rt = builder.build();
  spindle::iotest::RefusingPort refusing;
  const tcp::endpoint closed = refusing.endpoint();

  constexpr int kDetached = 20;
  int survivors = rt.block_on([](tcp::endpoint closed, std::atomic<int>& unhandled) -> Task<int> {
    // Detached tasks that die of socket errors nobody catches...
    for (int i = 0; i < kDetached; ++i) {
      if (i % 2 == 0) {
        spindle::spawn(connect_refused(closed)).detach();
      } else {
        spindle::spawn(read_from_closed_peer()).detach();
      }
    }
    // ...and a joined one, whose error reaches the joiner.
    bool rethrown = false;
    try {
      co_await spindle::spawn(connect_refused(closed));
    } catch (const asio::system_error& e) {
      rethrown = e.code() == asio::error::connection_refused;
    }
    EXPECT_TRUE(rethrown);
    // Every other task still runs, I/O included.
    std::vector<JoinHandle<int>> others;
    for (int i = 0; i < 100; ++i) {
      others.push_back(spindle::spawn([]() -> Task<int> {
        auto [client, server] = co_await spindle::iotest::connected_pair();
        co_await asio::async_write(client, asio::buffer("!", 1), use_task);
        std::array<char, 1> b{};
        co_return static_cast<int>(co_await server.async_read_some(asio::buffer(b), use_task));
      }()));
    }
    int n = 0;
    for (auto& h : others) n += co_await h;
    // The detached tasks have all died by now or will shortly (on
    // current_thread only while this task runs, so wait here).
    const auto deadline = std::chrono::steady_clock::now() + spindle::test::kPatience;
    while (unhandled.load() < kDetached && std::chrono::steady_clock::now() < deadline) {
      co_await spindle::sleep(std::chrono::milliseconds(1));
    }
    co_return n;
  }(closed, unhandled));
  EXPECT_EQ(survivors, 100);
  EXPECT_EQ(unhandled.load(), kDetached);
  EXPECT_EQ(rt.handle().counters().unhandled_exceptions, static_cast<std::uint64_t>(kDetached));
  // And the runtime still takes new work afterwards.
  EXPECT_EQ(rt.block_on(value(9)), 9);
}

INSTANTIATE_TEST_SUITE_P(Flavors, SocketErrors, spindle::iotest::kBothFlavors,
                         spindle::iotest::flavor_name);

}  // namespace
