// spindle::sync::mpsc: bounded and unbounded channels — order, waiting for
// room (FIFO among senders), the end of the stream, close and drop of the
// receiver, cross-thread use (foreign senders, blocking_recv), cancellation
// of waiting senders and receivers (every value received or destroyed exactly
// once), the cooperative budget, and many producers at once.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <spindle/runtime.hpp>
#include <spindle/sync/mpsc.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/counted.hpp"
#include "support/sync.hpp"
#include "sync/helpers.hpp"

namespace {

using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;
using spindle::sync::Closed;
using spindle::sync::mpsc::channel;
using spindle::sync::mpsc::Receiver;
using spindle::sync::mpsc::Sender;
using spindle::sync::mpsc::SendError;
using spindle::sync::mpsc::unbounded_channel;
using spindle::sync::mpsc::UnboundedSender;
using spindle::test::Counted;
using spindle::test::eventually;
using spindle::test::join;
using spindle::test::LifetimeCounts;
using spindle::test::until;

// Receives until the end of the channel; returns the values in order.
template <class T>
Task<std::vector<T>> drain(Receiver<T>& rx) {
  std::vector<T> out;
  while (std::optional<T> v = co_await rx.recv()) out.push_back(std::move(*v));
  co_return out;
}

// ---- basics -------------------------------------------------------------------------

TEST(Mpsc, BoundedChannelDeliversValuesInOrder) {
  auto rt = Runtime::Builder().current_thread().build();
  std::vector<int> got = rt.block_on([]() -> Task<std::vector<int>> {
    auto [tx, rx] = channel<int>(4);
    for (int i = 0; i < 4; ++i) co_await tx.send(i);
    EXPECT_EQ(tx.capacity(), 0u);
    EXPECT_EQ(tx.max_capacity(), 4u);
    EXPECT_EQ(rx.len(), 4u);
    tx = {};  // the only sender: the stream ends after the queued values
    co_return co_await drain(rx);
  }());
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3}));
}

TEST(Mpsc, ZeroCapacityIsRejectedWithAClearMessage) {
  try {
    (void)channel<int>(0);
    FAIL() << "channel<int>(0) did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("capacity must be at least 1"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW((void)channel<int>(spindle::sync::mpsc::kMaxCapacity + 1), std::invalid_argument);
}

TEST(Mpsc, MoveOnlyValuesTravelThroughBothKinds) {
  auto rt = Runtime::Builder().current_thread().build();
  int sum = rt.block_on([]() -> Task<int> {
    auto [tx, rx] = channel<std::unique_ptr<int>>(2);
    auto [utx, urx] = unbounded_channel<std::unique_ptr<int>>();
    co_await tx.send(std::make_unique<int>(1));
    EXPECT_FALSE(tx.try_send(std::make_unique<int>(2)).has_value());
    utx.send(std::make_unique<int>(3));
    std::optional<std::unique_ptr<int>> a = co_await rx.recv();
    std::optional<std::unique_ptr<int>> b = rx.try_recv();
    std::optional<std::unique_ptr<int>> c = co_await urx.recv();
    co_return **a + **b + **c;
  }());
  EXPECT_EQ(sum, 6);
}

TEST(Mpsc, SenderCountTracksCopiesAndTheEndComesWithTheLast) {
  auto [tx, rx] = unbounded_channel<int>();
  EXPECT_EQ(tx.sender_count(), 1u);
  UnboundedSender<int> copy = tx;
  UnboundedSender<int> another;
  another = copy;
  EXPECT_EQ(rx.sender_count(), 3u);
  UnboundedSender<int> moved = std::move(copy);
  EXPECT_EQ(rx.sender_count(), 3u);
  EXPECT_FALSE(copy.valid());
  EXPECT_TRUE(moved.same_channel(tx));
  tx.send(1);
  tx = {};
  another = {};
  EXPECT_FALSE(rx.is_closed());
  moved.send(2);
  moved = {};
  EXPECT_EQ(rx.sender_count(), 0u);
  EXPECT_TRUE(rx.is_closed());
  EXPECT_EQ(rx.try_recv(), std::optional<int>(1));  // queued values outlive the senders
  EXPECT_EQ(rx.try_recv(), std::optional<int>(2));
  EXPECT_EQ(rx.try_recv(), std::nullopt);
  EXPECT_EQ(rx.blocking_recv(), std::nullopt);  // the end, without blocking
}

TEST(Mpsc, UsingAnEmptyEndThrowsUsageError) {
  Sender<int> tx;
  UnboundedSender<int> utx;
  Receiver<int> rx;
  EXPECT_THROW((void)tx.send(1), spindle::UsageError);
  EXPECT_THROW((void)tx.try_send(1), spindle::UsageError);
  EXPECT_THROW(utx.send(1), spindle::UsageError);
  EXPECT_THROW((void)rx.recv(), spindle::UsageError);
  EXPECT_THROW((void)rx.try_recv(), spindle::UsageError);
  EXPECT_TRUE(tx.is_closed());
  EXPECT_EQ(tx.sender_count(), 0u);
}

// ---- waiting ------------------------------------------------------------------------

TEST(Mpsc, SendWaitsWhileFullAndResumesWhenTheReceiverTakesOne) {
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([]() -> Task<void> {
    auto ch = channel<int>(1);
    Sender<int>& tx = ch.first;
    Receiver<int>& rx = ch.second;
    co_await tx.send(1);
    EXPECT_EQ(tx.try_send(2), std::optional<int>(2));  // full: the value comes back
    auto h = spindle::spawn([](Sender<int> tx) -> Task<void> { co_await tx.send(2); }(tx));
    EXPECT_TRUE(co_await until([&tx] { return tx.waiting_senders() == 1; }));
    EXPECT_EQ(rx.try_recv(), std::optional<int>(1));  // room goes to the waiting sender
    co_await join(h);
    EXPECT_EQ(rx.try_recv(), std::optional<int>(2));
    EXPECT_EQ(tx.capacity(), 1u);
  }());
}

TEST(Mpsc, WaitingSendersGetRoomInFifoOrder) {
  auto rt = Runtime::Builder().current_thread().build();
  std::vector<int> got = rt.block_on([]() -> Task<std::vector<int>> {
    auto ch = channel<int>(1);
    Sender<int>& tx = ch.first;
    Receiver<int>& rx = ch.second;
    co_await tx.send(0);
    std::vector<JoinHandle<void>> hs;
    for (int i = 1; i <= 4; ++i) {
      hs.push_back(
          spindle::spawn([](Sender<int> tx, int i) -> Task<void> { co_await tx.send(i); }(tx, i)));
      EXPECT_TRUE(
          co_await until([&tx, i] { return tx.waiting_senders() == static_cast<std::size_t>(i); }));
    }
    // A sender arriving now queues behind the waiting ones, even if room appears.
    EXPECT_EQ(tx.try_send(99), std::optional<int>(99));
    tx = {};
    std::vector<int> out = co_await drain(rx);
    for (auto& h : hs) co_await join(h);
    co_return out;
  }());
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Mpsc, DroppingTheLastSenderWakesAWaitingReceiver) {
  auto [tx, rx] = channel<int>(8);
  auto rt = Runtime::Builder().worker_threads(2).build();
  JoinHandle<std::vector<int>> h = rt.spawn(drain(rx));
  tx.try_send(5).reset();
  Sender<int> copy = tx;
  tx = {};
  EXPECT_FALSE(h.is_finished());
  copy = {};  // the last one
  ASSERT_TRUE(spindle::test::finished_in_time(h));
  EXPECT_EQ(h.join(), (std::vector<int>{5}));
}

// ---- close and drop -----------------------------------------------------------------

TEST(Mpsc, CloseFailsSendersButKeepsQueuedValuesForTheReceiver) {
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([]() -> Task<void> {
    auto ch = channel<std::string>(1);
    Sender<std::string>& tx = ch.first;
    Receiver<std::string>& rx = ch.second;
    co_await tx.send("kept");
    auto waiting = spindle::spawn([](Sender<std::string> tx) -> Task<std::string> {
      try {
        co_await tx.send("refused");
      } catch (const SendError<std::string>& e) {
        co_return std::move(e.value());  // the value comes back in the error
      }
      co_return "sent";
    }(tx));
    EXPECT_TRUE(co_await until([&tx] { return tx.waiting_senders() == 1; }));
    rx.close();
    EXPECT_TRUE(co_await spindle::test::finishes(waiting));  // woken by the close
    if (waiting.is_finished()) {
      EXPECT_EQ(co_await waiting, "refused");
    }
    EXPECT_TRUE(tx.is_closed());
    EXPECT_TRUE(rx.is_closed());
    try {
      co_await tx.send("late");
      ADD_FAILURE() << "send after close succeeded";
    } catch (const Closed& e) {  // SendError<T> is a Closed
      EXPECT_NE(std::string(e.what()).find("receiver is closed"), std::string::npos);
    }
    EXPECT_THROW((void)tx.try_send("late"), SendError<std::string>);
    EXPECT_EQ(co_await rx.recv(), std::optional<std::string>("kept"));
    EXPECT_EQ(co_await rx.recv(), std::nullopt);  // closed and drained, senders still alive
  }());
}

TEST(Mpsc, DroppingTheReceiverFailsSendsAndDestroysQueuedValuesOnce) {
  LifetimeCounts counts;
  {
    auto [tx, rx] = unbounded_channel<Counted>();
    for (int i = 0; i < 5; ++i) tx.send(Counted(counts, i));
    std::optional<Counted> first = rx.try_recv();
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->value(), 0);
    rx = {};                       // destroys the 4 values still queued
    EXPECT_EQ(counts.alive(), 1);  // `first`
    EXPECT_TRUE(tx.is_closed());
    try {
      tx.send(Counted(counts, 9));
      ADD_FAILURE() << "send to a dropped receiver succeeded";
    } catch (const SendError<Counted>& e) {
      EXPECT_EQ(e.value().value(), 9);
    }
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

// ---- cross-thread -------------------------------------------------------------------

TEST(Mpsc, UnboundedSendFromForeignThreadsReachesATask) {
  constexpr int kThreads = 3;
  constexpr int per_thread = 5000;
  auto [tx, rx] = unbounded_channel<int>();
  auto rt = Runtime::Builder().worker_threads(2).build();
  JoinHandle<std::vector<int>> h = rt.spawn(drain(rx));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([tx = tx, t]() mutable {
      for (int i = 0; i < per_thread; ++i) tx.send(t * per_thread + i);
    });
  }
  tx = {};
  for (auto& t : threads) t.join();
  ASSERT_TRUE(spindle::test::finished_in_time(h));
  std::vector<int> got = h.join();
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kThreads * per_thread));
  std::vector<int> last(kThreads, -1);
  std::int64_t sum = 0;
  for (int v : got) {
    int t = v / per_thread;
    EXPECT_GT(v, last[static_cast<std::size_t>(t)]);  // each thread's values in its order
    last[static_cast<std::size_t>(t)] = v;
    sum += v;
  }
  const std::int64_t n = static_cast<std::int64_t>(kThreads) * per_thread;
  EXPECT_EQ(sum, n * (n - 1) / 2);
}

TEST(Mpsc, BlockingRecvOnAForeignThreadReceivesFromTasks) {
  constexpr int per_task = 2000;
  auto [tx, rx] = channel<int>(4);  // small: the tasks wait for the thread to make room
  auto rt = Runtime::Builder().worker_threads(2).build();
  std::vector<JoinHandle<void>> hs;
  for (int t = 0; t < 2; ++t) {
    hs.push_back(rt.spawn([](Sender<int> tx, int per_task) -> Task<void> {
      for (int i = 1; i <= per_task; ++i) co_await tx.send(i);
    }(tx, per_task)));
  }
  tx = {};
  std::int64_t sum = 0;
  int count = 0;
  while (std::optional<int> v = rx.blocking_recv()) {
    sum += *v;
    ++count;
  }
  for (auto& h : hs) ASSERT_TRUE(spindle::test::finished_in_time(h));
  for (auto& h : hs) h.join();
  EXPECT_EQ(count, 2 * per_task);
  EXPECT_EQ(sum, 2 * static_cast<std::int64_t>(per_task) * (per_task + 1) / 2);
}

TEST(Mpsc, BlockingRecvOnAWorkerThreadThrowsUsageError) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  bool threw = rt.block_on([]() -> Task<bool> {
    auto [tx, rx] = unbounded_channel<int>();
    try {
      (void)rx.blocking_recv();
    } catch (const spindle::UsageError&) {
      co_return true;
    }
    co_return false;
  }());
  EXPECT_TRUE(threw);
}

// ---- many producers -----------------------------------------------------------------

TEST(Mpsc, ManyProducersEveryValueReceivedExactlyOnce) {
  constexpr int kProducers = 4;
  constexpr int per_producer = 5000;
  auto [tx, rx] = channel<int>(16);
  auto rt = Runtime::Builder().worker_threads(2).build();
  std::vector<JoinHandle<void>> hs;
  for (int p = 0; p < kProducers; ++p) {
    hs.push_back(rt.spawn([](Sender<int> tx, int p, int per_producer) -> Task<void> {
      for (int i = 0; i < per_producer; ++i) co_await tx.send(p * per_producer + i);
    }(tx, p, per_producer)));
  }
  tx = {};
  JoinHandle<std::vector<int>> consumer = rt.spawn(drain(rx));
  ASSERT_TRUE(spindle::test::finished_in_time(consumer));
  std::vector<int> got = consumer.join();
  for (auto& h : hs) h.join();
  const int n = kProducers * per_producer;
  ASSERT_EQ(got.size(), static_cast<std::size_t>(n));
  std::vector<int> seen(static_cast<std::size_t>(n), 0);
  std::int64_t sum = 0;
  for (int v : got) {
    ++seen[static_cast<std::size_t>(v)];
    sum += v;
  }
  for (int i = 0; i < n; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], 1) << "value " << i;
  EXPECT_EQ(sum, static_cast<std::int64_t>(n) * (n - 1) / 2);
}

// ---- cancellation -------------------------------------------------------------------

TEST(Mpsc, AbortedSenderWaitingForRoomNeverQueuesItsValue) {
  LifetimeCounts counts;
  auto rt = Runtime::Builder().current_thread().build();
  std::vector<int> got = rt.block_on([](LifetimeCounts& counts) -> Task<std::vector<int>> {
    auto ch = channel<Counted>(1);
    Sender<Counted>& tx = ch.first;
    Receiver<Counted>& rx = ch.second;
    co_await tx.send(Counted(counts, 0));
    auto sender = [](Sender<Counted> tx, Counted v) -> Task<void> {
      co_await tx.send(std::move(v));
    };
    auto a = spindle::spawn(sender(tx, Counted(counts, 1)));
    EXPECT_TRUE(co_await until([&tx] { return tx.waiting_senders() == 1; }));
    auto b = spindle::spawn(sender(tx, Counted(counts, 2)));
    EXPECT_TRUE(co_await until([&tx] { return tx.waiting_senders() == 2; }));
    a.abort();
    EXPECT_TRUE(co_await until([&tx] { return tx.waiting_senders() == 1; }));
    tx = {};
    std::vector<int> out;
    while (std::optional<Counted> v = co_await rx.recv()) out.push_back(v->value());
    co_await join(b);
    EXPECT_THROW(co_await a, spindle::Cancelled);
    co_return out;
  }(counts));
  EXPECT_EQ(got, (std::vector<int>{0, 2}));
  EXPECT_EQ(counts.alive(), 0);  // value 1 destroyed with A's frame, exactly once
  EXPECT_EQ(counts.errors(), 0);
}

TEST(Mpsc, RoomGrantedToAnAbortedSenderPassesToTheNext) {
  LifetimeCounts counts;
  auto rt = Runtime::Builder().current_thread().build();
  std::vector<int> got = rt.block_on([](LifetimeCounts& counts) -> Task<std::vector<int>> {
    auto ch = channel<Counted>(1);
    Sender<Counted>& tx = ch.first;
    Receiver<Counted>& rx = ch.second;
    co_await tx.send(Counted(counts, 0));
    auto sender = [](Sender<Counted> tx, Counted v) -> Task<void> {
      co_await tx.send(std::move(v));
    };
    auto a = spindle::spawn(sender(tx, Counted(counts, 1)));
    EXPECT_TRUE(co_await until([&tx] { return tx.waiting_senders() == 1; }));
    auto b = spindle::spawn(sender(tx, Counted(counts, 2)));
    EXPECT_TRUE(co_await until([&tx] { return tx.waiting_senders() == 2; }));
    std::vector<int> out;
    out.push_back(rx.try_recv()->value());  // frees the slot: it goes to A, which is woken...
    a.abort();                              // ...and destroyed before it resumes
    co_await join(b);                       // B gets the slot instead
    EXPECT_THROW(co_await a, spindle::Cancelled);
    tx = {};
    while (std::optional<Counted> v = co_await rx.recv()) out.push_back(v->value());
    co_return out;
  }(counts));
  EXPECT_EQ(got, (std::vector<int>{0, 2}));
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(Mpsc, SendYieldingForTheBudgetAndThenAbortedQueuesNothing) {
  LifetimeCounts counts;
  // Budget 1: the first send of a poll spends it; the second reserves a slot
  // and yields, and the task is aborted during that yield.
  auto rt = Runtime::Builder().current_thread().budget(1).build();
  std::vector<int> got = rt.block_on([](LifetimeCounts& counts) -> Task<std::vector<int>> {
    auto ch = channel<Counted>(4);
    Sender<Counted>& tx = ch.first;
    Receiver<Counted>& rx = ch.second;
    auto h = spindle::spawn([](Sender<Counted> tx, LifetimeCounts& counts) -> Task<void> {
      co_await tx.send(Counted(counts, 1));
      co_await tx.send(Counted(counts, 2));  // reserves, yields
      co_await tx.send(Counted(counts, 3));
    }(tx, counts));
    EXPECT_TRUE(co_await until([&tx] { return tx.capacity() == 2; }));  // one queued, one reserved
    h.abort();
    EXPECT_THROW(co_await h, spindle::Cancelled);
    EXPECT_EQ(tx.capacity(), 3u);  // the reserved slot came back
    tx = {};
    std::vector<int> out;
    while (std::optional<Counted> v = co_await rx.recv()) out.push_back(v->value());
    co_return out;
  }(counts));
  EXPECT_EQ(got, (std::vector<int>{1}));
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(Mpsc, AbortedReceiverLeavesTheValueInTheChannel) {
  auto [tx, rx] = unbounded_channel<int>();
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](UnboundedSender<int>& tx, Receiver<int>& rx) -> Task<void> {
    auto r = spindle::spawn(
        [](Receiver<int>& rx) -> Task<std::optional<int>> { co_return co_await rx.recv(); }(rx));
    for (int i = 0; i < 4; ++i) co_await spindle::yield_now();  // R waits in recv
    EXPECT_FALSE(r.is_finished());
    r.abort();
    EXPECT_THROW((void)co_await r, spindle::Cancelled);
    tx.send(11);  // nobody is registered to receive it any more...
    EXPECT_EQ(co_await rx.recv(), std::optional<int>(11));  // ...and the next recv gets it
  }(tx, rx));
}

TEST(Mpsc, ReceiverWokenAndThenAbortedLosesNoValue) {
  auto [tx, rx] = unbounded_channel<int>();
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](UnboundedSender<int>& tx, Receiver<int>& rx) -> Task<void> {
    auto r = spindle::spawn(
        [](Receiver<int>& rx) -> Task<std::optional<int>> { co_return co_await rx.recv(); }(rx));
    for (int i = 0; i < 4; ++i) co_await spindle::yield_now();  // R waits in recv
    EXPECT_FALSE(r.is_finished());
    tx.send(21);  // wakes R...
    r.abort();    // ...which is destroyed before it resumes
    EXPECT_THROW((void)co_await r, spindle::Cancelled);
    EXPECT_EQ(co_await rx.recv(), std::optional<int>(21));  // still there
  }(tx, rx));
}

TEST(Mpsc, ShutdownDestroysWaitingSendersAndTheirValuesOnce) {
  LifetimeCounts counts;
  {
    auto ch = channel<Counted>(1);
    Sender<Counted>& tx = ch.first;
    Receiver<Counted>& rx = ch.second;
    {
      auto rt = Runtime::Builder().worker_threads(2).build();
      tx.try_send(Counted(counts, 0)).reset();
      for (int i = 1; i <= 3; ++i) {
        (void)rt.spawn([](Sender<Counted> tx, Counted v) -> Task<void> {
          co_await tx.send(std::move(v));
        }(tx, Counted(counts, i)));
      }
      ASSERT_TRUE(eventually([&] { return tx.waiting_senders() == 3; }));
    }  // shutdown destroys the three frames
    EXPECT_EQ(tx.waiting_senders(), 0u);
    EXPECT_EQ(rx.len(), 1u);
    EXPECT_EQ(counts.alive(), 1);  // only the queued value
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

// ---- budget -------------------------------------------------------------------------

TEST(Mpsc, AlwaysReadyReceiverDoesNotStarveItsNeighbour) {
  auto rt = Runtime::Builder().current_thread().build();
  std::uint64_t received = rt.block_on([]() -> Task<std::uint64_t> {
    auto [tx, rx] = unbounded_channel<int>();
    bool stop = false;
    auto neighbour = spindle::spawn([](bool& stop) -> Task<void> {
      stop = true;
      co_return;
    }(stop));
    std::uint64_t n = 0;
    // Every recv is ready at once; without the budget this loop would never
    // let the neighbour run (with cooperation(false) it would hang).
    while (!stop) {
      tx.send(1);
      n += static_cast<std::uint64_t>(*co_await rx.recv());
    }
    co_await neighbour;
    co_return n;
  }());
  EXPECT_GT(received, 0u);
  EXPECT_GT(spindle::test::forced_yields(rt.handle()), 0u);
}

TEST(Mpsc, AlwaysReadySenderDoesNotStarveItsNeighbour) {
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([]() -> Task<void> {
    auto [tx, rx] = channel<int>(4);
    bool stop = false;
    auto neighbour = spindle::spawn([](bool& stop) -> Task<void> {
      stop = true;
      co_return;
    }(stop));
    while (!stop) {
      co_await tx.send(1);  // always room: ready at once
      (void)rx.try_recv();
    }
    co_await neighbour;
  }());
  EXPECT_GT(spindle::test::forced_yields(rt.handle()), 0u);
}

// A bounded loop of 1000 ready receives: with the default budget (128) it
// yields several times; with cooperation off it never does.
Task<int> thousand_ready_receives() {
  auto [tx, rx] = unbounded_channel<int>();
  int n = 0;
  for (int i = 0; i < 1000; ++i) {
    tx.send(1);
    n += *co_await rx.recv();
  }
  co_return n;
}

TEST(Mpsc, ReadyReceivesYieldEveryBudgetWithCooperationOn) {
  auto rt = Runtime::Builder().current_thread().build();
  EXPECT_EQ(rt.block_on(thousand_ready_receives()), 1000);
  EXPECT_GE(spindle::test::forced_yields(rt.handle()), 1000u / 128u);
}

TEST(Mpsc, ReadyReceivesNeverForceAYieldWithCooperationOff) {
  auto rt = Runtime::Builder().current_thread().cooperation(false).build();
  EXPECT_EQ(rt.block_on(thousand_ready_receives()), 1000);
  EXPECT_EQ(spindle::test::forced_yields(rt.handle()), 0u);
}

}  // namespace
