// spindle::use_task and as_result(use_task): awaiting Asio timers, posts and
// TCP operations over loopback from Tasks, on both runtime flavours — results,
// errors (thrown or returned), I/O objects used across workers, and tasks
// aborted while an operation is pending (frames destroyed, nothing leaked).

#include <gtest/gtest.h>

#include <array>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <spindle/runtime.hpp>
#include <spindle/sync/oneshot.hpp>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include "io/io_support.hpp"
#include "support/counted.hpp"

namespace {

using asio::ip::tcp;
using spindle::Cancelled;
using spindle::JoinHandle;
using spindle::Task;
using spindle::use_task;
using spindle::iotest::connected_pair;
using spindle::iotest::Flavor;
using spindle::iotest::make_runtime;
using spindle::iotest::SocketPair;
using spindle::test::Counted;
using spindle::test::LifetimeCounts;
using Clock = std::chrono::steady_clock;

constexpr auto kResult = spindle::as_result(spindle::use_task);

class UseTask : public ::testing::TestWithParam<Flavor> {};

// ---- results ------------------------------------------------------------------------------

TEST_P(UseTask, TimerWaitResumesTheTaskAfterTheExpiry) {
  auto rt = make_runtime(GetParam());
  Clock::duration waited = rt.block_on([]() -> Task<Clock::duration> {
    const auto start = Clock::now();
    asio::steady_timer timer(spindle::this_executor(), std::chrono::milliseconds(20));
    co_await timer.async_wait(use_task);
    co_return Clock::now() - start;
  }());
  EXPECT_GE(waited, std::chrono::milliseconds(20));
}

TEST_P(UseTask, PostToAWorkerExecutorResumesTheTask) {
  auto rt = make_runtime(GetParam());
  int posts = rt.block_on([]() -> Task<int> {
    int n = 0;
    co_await asio::post(spindle::this_executor(), use_task);
    ++n;
    // Handle::executor() picks the workers round-robin: posts land on each.
    spindle::Handle handle = spindle::Handle::current();
    for (int i = 0; i < 8; ++i) {
      co_await asio::post(handle.executor(), use_task);
      ++n;
    }
    co_return n;
  }());
  EXPECT_EQ(posts, 9);
}

Task<std::string> serve_one(tcp::acceptor& acceptor) {
  tcp::socket s = co_await acceptor.async_accept(use_task);
  std::string request(5, '\0');
  std::size_t n = co_await asio::async_read(s, asio::buffer(request), use_task);
  EXPECT_EQ(n, 5U);
  co_await asio::async_write(s, asio::buffer(std::string("pong:") + request), use_task);
  co_return request;
}

TEST_P(UseTask, AcceptConnectWriteAndReadOverLoopback) {
  auto rt = make_runtime(GetParam());
  auto [request, reply] = rt.block_on([]() -> Task<std::pair<std::string, std::string>> {
    tcp::acceptor acceptor(spindle::this_executor(),
                           tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    EXPECT_NE(acceptor.local_endpoint().port(), 0);
    JoinHandle<std::string> server = spindle::spawn(serve_one(acceptor));

    tcp::socket client(spindle::this_executor());
    co_await client.async_connect(acceptor.local_endpoint(), use_task);
    std::size_t written = co_await asio::async_write(client, asio::buffer("hello", 5), use_task);
    EXPECT_EQ(written, 5U);
    std::string reply(10, '\0');
    co_await asio::async_read(client, asio::buffer(reply), use_task);
    std::string request = co_await server;
    co_return std::pair{request, reply};
  }());
  EXPECT_EQ(request, "hello");
  EXPECT_EQ(reply, "pong:hello");
}

TEST_P(UseTask, ReadSomeReturnsTheBytesTransferred) {
  auto rt = make_runtime(GetParam());
  std::string got = rt.block_on([]() -> Task<std::string> {
    auto [client, server] = co_await connected_pair();
    co_await asio::async_write(client, asio::buffer("abc", 3), use_task);
    std::array<char, 16> buf{};
    std::string all;
    while (all.size() < 3) {
      std::size_t n = co_await server.async_read_some(asio::buffer(buf), use_task);
      all.append(buf.data(), n);
    }
    co_return all;
  }());
  EXPECT_EQ(got, "abc");
}

// ---- errors -------------------------------------------------------------------------------

TEST_P(UseTask, ConnectingToAClosedPortThrowsSystemError) {
  auto rt = make_runtime(GetParam());
  spindle::iotest::RefusingPort closed;
  asio::error_code code = rt.block_on([](tcp::endpoint ep) -> Task<asio::error_code> {
    tcp::socket s(spindle::this_executor());
    try {
      co_await s.async_connect(ep, use_task);
    } catch (const asio::system_error& e) {
      co_return e.code();
    }
    co_return asio::error_code();
  }(closed.endpoint()));
  EXPECT_EQ(code, asio::error::connection_refused) << code.message();
}

TEST_P(UseTask, ReadingAfterThePeerClosedThrowsEof) {
  auto rt = make_runtime(GetParam());
  asio::error_code code = rt.block_on([]() -> Task<asio::error_code> {
    auto [client, server] = co_await connected_pair();
    client.close();
    std::array<char, 8> buf{};
    try {
      (void)co_await server.async_read_some(asio::buffer(buf), use_task);
    } catch (const asio::system_error& e) {
      co_return e.code();
    }
    co_return asio::error_code();
  }());
  EXPECT_EQ(code, asio::error::eof) << code.message();
}

TEST_P(UseTask, AsResultReturnsTheErrorCodeInsteadOfThrowing) {
  auto rt = make_runtime(GetParam());
  spindle::iotest::RefusingPort refusing;
  rt.block_on([](tcp::endpoint closed) -> Task<void> {
    tcp::socket s(spindle::this_executor());
    auto refused = co_await s.async_connect(closed, kResult);
    static_assert(std::is_same_v<decltype(refused), std::tuple<asio::error_code>>);
    EXPECT_EQ(std::get<0>(refused), asio::error::connection_refused);

    auto [client, server] = co_await connected_pair();
    auto wrote = co_await asio::async_write(client, asio::buffer("xy", 2), kResult);
    static_assert(std::is_same_v<decltype(wrote), std::tuple<asio::error_code, std::size_t>>);
    EXPECT_FALSE(std::get<0>(wrote));
    EXPECT_EQ(std::get<1>(wrote), 2U);

    std::array<char, 2> buf{};
    auto [ec, n] = co_await asio::async_read(server, asio::buffer(buf), kResult);
    EXPECT_FALSE(ec);
    EXPECT_EQ(n, 2U);
    EXPECT_EQ(std::string(buf.data(), n), "xy");

    client.close();
    auto [eof, none] = co_await server.async_read_some(asio::buffer(buf), kResult);
    EXPECT_EQ(eof, asio::error::eof);
    EXPECT_EQ(none, 0U);
  }(refusing.endpoint()));
}

// ---- I/O objects and migrating tasks ----------------------------------------------------

// Creates a socket pair on its first worker, then does `rounds` round trips,
// yielding many times before each so that it can move between workers.
Task<int> ping_pong_while_moving(int rounds, std::atomic<int>& moved_tasks) {
  SocketPair p = co_await connected_pair();
  std::set<std::thread::id> threads{std::this_thread::get_id()};
  int ok = 0;
  for (int i = 0; i < rounds; ++i) {
    for (int y = 0; y < 10; ++y) {
      co_await spindle::yield_now();
      threads.insert(std::this_thread::get_id());
    }
    const std::string msg = "round-" + std::to_string(i);
    co_await asio::async_write(p.client, asio::buffer(msg), use_task);
    std::string at_server(msg.size(), '\0');
    co_await asio::async_read(p.server, asio::buffer(at_server), use_task);
    threads.insert(std::this_thread::get_id());
    co_await asio::async_write(p.server, asio::buffer(at_server), use_task);
    std::string back(msg.size(), '\0');
    co_await asio::async_read(p.client, asio::buffer(back), use_task);
    if (back == msg) ++ok;
  }
  if (threads.size() > 1) moved_tasks.fetch_add(1);
  co_return ok;
}

TEST_P(UseTask, IoObjectsKeepWorkingWhileTheirTaskMovesBetweenWorkers) {
  auto rt = make_runtime(GetParam());
  std::atomic<int> moved_tasks{0};
  constexpr int kTasks = 8;
  constexpr int kRounds = 30;
  int ok = rt.block_on([](std::atomic<int>& moved_tasks) -> Task<int> {
    std::vector<JoinHandle<int>> hs;
    for (int t = 0; t < kTasks; ++t)
      hs.push_back(spindle::spawn(ping_pong_while_moving(kRounds, moved_tasks)));
    int sum = 0;
    for (auto& h : hs) sum += co_await h;
    co_return sum;
  }(moved_tasks));
  EXPECT_EQ(ok, kTasks * kRounds);
  // Where the tasks ran is the scheduler's business; it is recorded, not asserted.
  RecordProperty("tasks_that_moved", moved_tasks.load());
}

// ---- aborted while an operation is pending ----------------------------------------------

// Owns a socket pair and waits on a read nobody will ever satisfy.
Task<void> read_forever(Counted frame_witness, std::atomic<bool>& reading) {
  SocketPair p = co_await connected_pair();
  std::array<char, 64> buf{};
  reading.store(true);
  (void)co_await p.server.async_read_some(asio::buffer(buf), use_task);
  ADD_FAILURE() << "the read completed: " << frame_witness.value();
}

TEST_P(UseTask, AbortingATaskWithAPendingReadDestroysItsFrame) {
  auto rt = make_runtime(GetParam());
  LifetimeCounts counts;
  bool cancelled = rt.block_on([](LifetimeCounts& counts) -> Task<bool> {
    std::atomic<bool> reading{false};
    JoinHandle<void> h = spindle::spawn(read_forever(Counted(counts), reading));
    while (!reading.load()) co_await spindle::yield_now();
    h.abort();
    bool cancelled = false;
    try {
      co_await h;
    } catch (const Cancelled&) {
      cancelled = true;
    }
    // The frame, its socket and its buffer are gone; Asio completes the
    // pending read with operation_aborted and the result is discarded.
    EXPECT_EQ(counts.alive(), 0);
    // The worker that owned the socket keeps serving I/O.
    auto [client, server] = co_await connected_pair();
    co_await asio::async_write(client, asio::buffer("ok", 2), use_task);
    std::array<char, 2> buf{};
    co_await asio::async_read(server, asio::buffer(buf), use_task);
    EXPECT_EQ(std::string(buf.data(), 2), "ok");
    co_return cancelled;
  }(counts));
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

// Reads into `buf` from a socket owned by its caller (the buffer, too, must
// outlive the operation: a frame-local buffer would dangle once the task is
// aborted and the socket receives data later).
Task<void> read_borrowed(Counted frame_witness, tcp::socket& s, std::array<char, 5>& buf,
                         std::atomic<bool>& reading) {
  reading.store(true);
  (void)co_await s.async_read_some(asio::buffer(buf), use_task);
  ADD_FAILURE() << "the aborted task was resumed: " << frame_witness.value();
}

TEST_P(UseTask, AbortedReadOnASocketThatOutlivesTheTaskIsCancelledAndConsumesNothing) {
  auto rt = make_runtime(GetParam());
  LifetimeCounts counts;
  std::string got = rt.block_on([](LifetimeCounts& counts) -> Task<std::string> {
    SocketPair p = co_await connected_pair();
    std::array<char, 5> orphan_buf{};
    std::atomic<bool> reading{false};
    JoinHandle<void> h =
        spindle::spawn(read_borrowed(Counted(counts), p.server, orphan_buf, reading));
    while (!reading.load()) co_await spindle::yield_now();
    h.abort();
    bool cancelled = false;
    try {
      co_await h;
    } catch (const Cancelled&) {
      cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    EXPECT_EQ(counts.alive(), 0);
    // The aborted read was cancelled before its frame went: the bytes sent
    // now all reach the next read, and the orphaned buffer is never written.
    co_await asio::async_write(p.client, asio::buffer("helloworld", 10), use_task);
    std::string next(10, '\0');
    co_await asio::async_read(p.server, asio::buffer(next), use_task);
    EXPECT_EQ(std::string(orphan_buf.data(), orphan_buf.size()), std::string(5, '\0'));
    co_return next;
  }(counts));
  EXPECT_EQ(got, "helloworld");
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST_P(UseTask, RuntimeShutdownWithAPendingReadDestroysTheTask) {
  LifetimeCounts counts;
  std::atomic<bool> reading{false};
  {
    auto rt = make_runtime(GetParam());
    JoinHandle<void> h = rt.spawn(read_forever(Counted(counts), reading));
    rt.block_on([](std::atomic<bool>& reading) -> Task<void> {
      while (!reading.load()) co_await spindle::yield_now();
    }(reading));
    EXPECT_EQ(counts.alive(), 1);
    // Destroying the runtime destroys the suspended task; the pending read's
    // handler dies with its io_context.
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

INSTANTIATE_TEST_SUITE_P(Flavors, UseTask, spindle::iotest::kBothFlavors,
                         spindle::iotest::flavor_name);

// ---- where an I/O completion resumes the task ------------------------------------------------
//
// On a current_thread runtime kept out of park() by a task that yields in a
// loop, every completion handler runs in the worker's I/O check between two
// polls. A use_task handler's wake there is polled at once, inside the
// handler (as plain Asio resumes a coroutine in its handler), so it is not
// a local schedule; a plain Asio handler's wake is queued as any other.

Task<void> spin_until(const bool* done) {
  while (!*done) co_await spindle::yield_now();
}

Task<int> read_bytes_one_by_one(tcp::socket* socket, int n) {
  int got = 0;
  char c = 0;
  for (int i = 0; i < n; ++i) {
    co_await asio::async_read(*socket, asio::buffer(&c, 1), use_task);
    if (c == static_cast<char>('a' + i % 26)) ++got;
  }
  co_return got;
}

TEST(UseTaskResume, ACompletionInTheWorkersIoCheckResumesTheTaskThereWithoutQueueingIt) {
  constexpr int kBytes = 200;
  auto rt = spindle::Runtime::Builder().current_thread().build();
  const auto local_schedules = [&rt] { return rt.handle().counters().workers[0].local_schedules; };
  std::uint64_t during = 0;
  const int got = rt.block_on([&]() -> Task<int> {
    auto [client, server] = co_await connected_pair();
    bool done = false;
    JoinHandle<void> spinner = spindle::spawn(spin_until(&done));
    JoinHandle<int> reader = spindle::spawn(read_bytes_one_by_one(&server, kBytes));
    std::string bytes;
    for (int i = 0; i < kBytes; ++i) bytes.push_back(static_cast<char>('a' + i % 26));
    const std::uint64_t before = local_schedules();
    co_await asio::async_write(client, asio::buffer(bytes), use_task);
    const int n = co_await reader;
    during = local_schedules() - before;
    done = true;
    co_await spinner;
    co_return n;
  }());
  EXPECT_EQ(got, kBytes);
  // Queued, the reader's kBytes wakes would be kBytes local schedules; what
  // is left is the root's own wakes (the write, the join) and the like.
  EXPECT_LT(during, static_cast<std::uint64_t>(kBytes / 10)) << "I/O wakes were queued";
}

TEST(UseTaskResume, APlainAsioHandlersWakeIsQueuedNotPolledInsideTheHandler) {
  auto rt = spindle::Runtime::Builder().current_thread().build();
  int received_before_the_handler_returned = -1;
  const int v = rt.block_on([&]() -> Task<int> {
    bool done = false;
    JoinHandle<void> spinner = spindle::spawn(spin_until(&done));
    auto [tx, rx] = spindle::sync::oneshot<int>();
    bool received = false;
    JoinHandle<int> receiver = spindle::spawn([](spindle::sync::Receiver<int> r,
                                                 bool* flag) -> Task<int> {
      const int value = co_await std::move(r);
      *flag = true;
      co_return value;
    }(std::move(rx), &received));
    asio::post(spindle::this_executor(), [&received, &received_before_the_handler_returned,
                                          tx = std::move(tx)]() mutable {
      tx.send(7);
      received_before_the_handler_returned = received ? 1 : 0;
    });
    const int value = co_await receiver;
    done = true;
    co_await spinner;
    co_return value;
  }());
  EXPECT_EQ(v, 7);
  EXPECT_EQ(received_before_the_handler_returned, 0);
}

}  // namespace
