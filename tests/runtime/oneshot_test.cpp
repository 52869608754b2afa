// spindle::sync::oneshot: delivery between tasks and threads, blocking_recv,
// try_recv, dropped ends, cancellation, and the value's lifetime on every path.

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <optional>
#include <spindle/runtime.hpp>
#include <thread>
#include <vector>

#include "support/counted.hpp"
#include "support/sync.hpp"

namespace {

using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;
using spindle::UsageError;
using spindle::sync::oneshot;
using spindle::sync::Receiver;
using spindle::sync::RecvError;
using spindle::sync::Sender;
using spindle::test::Counted;
using spindle::test::Event;
using spindle::test::LifetimeCounts;

Task<int> recv(Receiver<int> rx) { co_return co_await rx; }

// ---- delivery ----------------------------------------------------------------------

TEST(Oneshot, DeliversAValueBetweenTasks) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  int v = rt.block_on([]() -> Task<int> {
    auto [tx, rx] = oneshot<int>();
    auto h = spindle::spawn([](Sender<int> tx) -> Task<void> {
      co_await spindle::yield_now();
      tx.send(41);
    }(std::move(tx)));
    int x = co_await rx;
    co_await h;
    co_return x + 1;
  }());
  EXPECT_EQ(v, 42);
}

TEST(Oneshot, DeliversFromAForeignThreadToASuspendedTask) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto [tx, rx] = oneshot<int>();
  Event waiting;
  auto h = rt.spawn([](Receiver<int> rx, Event& waiting) -> Task<int> {
    waiting.set();
    co_return co_await rx;
  }(std::move(rx), waiting));
  ASSERT_TRUE(waiting.wait());
  std::thread sender([tx = std::move(tx)]() mutable { EXPECT_TRUE(tx.send(17)); });
  sender.join();
  EXPECT_EQ(h.join(), 17);
}

TEST(Oneshot, DeliversFromATaskToAThreadBlockedInBlockingRecv) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto [tx, rx] = oneshot<int>();
  auto [go_tx, go_rx] = oneshot<int>();
  auto h = rt.spawn([](Sender<int> tx, Receiver<int> go) -> Task<void> {
    int v = co_await go;
    tx.send(v * 10);
  }(std::move(tx), std::move(go_rx)));
  int got = 0;
  std::thread receiver([&got, rx = std::move(rx)]() mutable { got = rx.blocking_recv(); });
  go_tx.send(3);
  receiver.join();
  h.join();
  EXPECT_EQ(got, 30);
}

TEST(Oneshot, WorksBetweenPlainThreadsWithoutARuntime) {
  auto [tx, rx] = oneshot<int>();
  std::thread sender([tx = std::move(tx)]() mutable { tx.send(5); });
  EXPECT_EQ(rx.blocking_recv(), 5);
  sender.join();
}

TEST(Oneshot, BlockingRecvReturnsAtOnceWhenTheValueIsAlreadyThere) {
  auto [tx, rx] = oneshot<int>();
  EXPECT_TRUE(tx.send(9));
  EXPECT_FALSE(tx.valid());
  EXPECT_EQ(rx.blocking_recv(), 9);
}

TEST(Oneshot, BlockingRecvOnAWorkerThreadThrowsUsageError) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  bool threw = rt.block_on([]() -> Task<bool> {
    auto [tx, rx] = oneshot<int>();
    try {
      (void)rx.blocking_recv();  // would block the worker
    } catch (const UsageError&) {
      co_return true;
    }
    co_return false;
  }());
  EXPECT_TRUE(threw);
}

TEST(Oneshot, BlockingRecvOnAWorkerThreadThrowsUsageErrorEvenWhenTheValueIsThere) {
  // As JoinHandle::join: the documented UsageError must not depend on timing.
  auto rt = Runtime::Builder().worker_threads(1).build();
  bool threw = rt.block_on([]() -> Task<bool> {
    auto [tx, rx] = oneshot<int>();
    tx.send(1);
    try {
      (void)rx.blocking_recv();
    } catch (const UsageError&) {
      co_return true;
    }
    co_return false;
  }());
  EXPECT_TRUE(threw);
}

TEST(Oneshot, TryRecvIsEmptyBeforeTheSendAndHoldsTheValueAfter) {
  auto [tx, rx] = oneshot<int>();
  EXPECT_EQ(rx.try_recv(), std::nullopt);
  EXPECT_EQ(rx.try_recv(), std::nullopt);
  tx.send(4);
  EXPECT_EQ(rx.try_recv(), std::optional<int>(4));
  EXPECT_THROW((void)rx.try_recv(), UsageError);  // already received
  EXPECT_THROW((void)rx.blocking_recv(), UsageError);
}

TEST(Oneshot, TryRecvAfterTheSenderWasDroppedThrowsRecvError) {
  auto [tx, rx] = oneshot<int>();
  { Sender<int> gone = std::move(tx); }
  EXPECT_THROW((void)rx.try_recv(), RecvError);
  EXPECT_THROW((void)rx.blocking_recv(), RecvError);
}

TEST(Oneshot, DroppingTheSenderWakesASuspendedReceiverWithRecvError) {
  // current_thread makes the order certain: the receiver suspends before the drop.
  auto rt = Runtime::Builder().current_thread().build();
  bool got_error = rt.block_on([]() -> Task<bool> {
    auto [tx, rx] = oneshot<int>();
    auto h = spindle::spawn([](Receiver<int> rx) -> Task<bool> {
      try {
        (void)co_await rx;
      } catch (const RecvError&) {
        co_return true;
      }
      co_return false;
    }(std::move(rx)));
    co_await spindle::yield_now();  // the receiver runs and suspends
    EXPECT_FALSE(h.is_finished());
    { Sender<int> gone = std::move(tx); }
    co_return co_await h;
  }());
  EXPECT_TRUE(got_error);
}

TEST(Oneshot, DroppingTheSenderWakesABlockedThreadWithRecvError) {
  auto [tx, rx] = oneshot<int>();
  bool got_error = false;
  Event blocking;
  std::thread receiver([&, rx = std::move(rx)]() mutable {
    blocking.set();
    try {
      (void)rx.blocking_recv();
    } catch (const RecvError&) {
      got_error = true;
    }
  });
  ASSERT_TRUE(blocking.wait());
  { Sender<int> gone = std::move(tx); }
  receiver.join();
  EXPECT_TRUE(got_error);
}

TEST(Oneshot, DroppingTheReceiverMakesSendReturnFalse) {
  auto [tx, rx] = oneshot<int>();
  EXPECT_FALSE(tx.is_closed());
  { Receiver<int> gone = std::move(rx); }
  EXPECT_TRUE(tx.is_closed());
  EXPECT_FALSE(tx.send(1));
  EXPECT_FALSE(tx.valid());
}

TEST(Oneshot, SendOnAUsedOrEmptySenderThrowsUsageError) {
  auto [tx, rx] = oneshot<int>();
  tx.send(1);
  EXPECT_THROW(tx.send(2), UsageError);
  Sender<int> empty;
  EXPECT_THROW(empty.send(3), UsageError);
  EXPECT_TRUE(empty.is_closed());
  EXPECT_EQ(rx.try_recv(), std::optional<int>(1));
}

TEST(Oneshot, AwaitingAReceivedOrEmptyReceiverThrowsUsageError) {
  auto rt = Runtime::Builder().current_thread().build();
  int errors = rt.block_on([]() -> Task<int> {
    int errors = 0;
    auto [tx, rx] = oneshot<int>();
    tx.send(1);
    (void)co_await rx;
    try {
      (void)co_await rx;
    } catch (const UsageError&) {
      ++errors;
    }
    Receiver<int> empty;
    try {
      (void)co_await empty;
    } catch (const UsageError&) {
      ++errors;
    }
    co_return errors;
  }());
  EXPECT_EQ(errors, 2);
}

TEST(Oneshot, MovedEndsStayConnected) {
  auto [tx, rx] = oneshot<int>();
  Sender<int> tx2;
  tx2 = std::move(tx);
  Receiver<int> rx2;
  rx2 = std::move(rx);
  EXPECT_FALSE(tx.valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_FALSE(rx.valid());  // NOLINT(bugprone-use-after-move)
  tx2.send(8);
  EXPECT_EQ(rx2.try_recv(), std::optional<int>(8));
}

TEST(Oneshot, AbortingATaskSuspendedOnAReceiverLosesNothing) {
  // The Receiver lives outside the aborted task: the value sent afterwards
  // stays in the channel for whoever holds the Receiver.
  LifetimeCounts counts;
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    auto [tx, rx] = oneshot<Counted>();
    Event waiting;
    auto h = rt.spawn([](Receiver<Counted>& rx, Event& waiting) -> Task<int> {
      waiting.set();
      Counted c = co_await rx;
      co_return c.value();
    }(rx, waiting));
    ASSERT_TRUE(waiting.wait());
    h.abort();
    EXPECT_THROW((void)h.join(), spindle::Cancelled);
    EXPECT_TRUE(tx.send(Counted(counts, 77)));
    std::optional<Counted> got = rx.try_recv();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->value(), 77);
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
  EXPECT_EQ(counts.copy_constructed.load(), 0);
}

TEST(Oneshot, ValueIsDestroyedExactlyOnceOnEveryPath) {
  auto check = [](const char* path, LifetimeCounts& counts) {
    EXPECT_EQ(counts.alive(), 0) << path;
    EXPECT_EQ(counts.errors(), 0) << path;
    EXPECT_EQ(counts.copy_constructed.load(), 0) << path;
  };
  {
    LifetimeCounts counts;
    {
      auto [tx, rx] = oneshot<Counted>();
      tx.send(Counted(counts, 1));
      EXPECT_EQ(rx.try_recv()->value(), 1);
    }
    check("sent, try_recv", counts);
  }
  {
    LifetimeCounts counts;
    {
      auto [tx, rx] = oneshot<Counted>();
      EXPECT_TRUE(tx.send(Counted(counts, 1)));
    }
    check("sent, never received", counts);
  }
  {
    LifetimeCounts counts;
    {
      auto [tx, rx] = oneshot<Counted>();
      { Receiver<Counted> gone = std::move(rx); }
      EXPECT_FALSE(tx.send(Counted(counts, 1)));
    }
    check("receiver dropped before the send", counts);
  }
  {
    LifetimeCounts counts;
    {
      auto [tx, rx] = oneshot<Counted>();
      tx.send(Counted(counts, 1));
      EXPECT_EQ(rx.blocking_recv().value(), 1);
    }
    check("sent, blocking_recv", counts);
  }
  {
    LifetimeCounts counts;
    {
      auto rt = Runtime::Builder().worker_threads(2).build();
      auto [tx, rx] = oneshot<Counted>();
      auto h = rt.spawn([](Receiver<Counted> rx) -> Task<int> {
        Counted c = co_await rx;
        co_return c.value();
      }(std::move(rx)));
      tx.send(Counted(counts, 2));
      EXPECT_EQ(h.join(), 2);
    }
    check("sent to a task", counts);
  }
  {
    LifetimeCounts counts;
    {
      auto rt = Runtime::Builder().worker_threads(1).build();
      auto [tx, rx] = oneshot<Counted>();
      Event waiting;
      auto h = rt.spawn([](Receiver<Counted> rx, Event& waiting) -> Task<int> {
        waiting.set();
        Counted c = co_await rx;
        co_return c.value();
      }(std::move(rx), waiting));
      ASSERT_TRUE(waiting.wait());
      h.abort();
      EXPECT_THROW((void)h.join(), spindle::Cancelled);
      EXPECT_FALSE(tx.send(Counted(counts, 3)));  // the receiver died with the frame
    }
    check("receiving task aborted, then sent", counts);
  }
  {
    LifetimeCounts counts;
    {
      auto rt = Runtime::Builder().worker_threads(1).build();
      auto [tx, rx] = oneshot<Counted>();
      tx.send(Counted(counts, 4));
      // The task is aborted before it is polled: the value sits unread in the channel.
      auto h = rt.spawn([](Receiver<Counted> rx) -> Task<int> {
        Counted c = co_await rx;
        co_return c.value();
      }(std::move(rx)));
      h.abort();
      try {
        (void)h.join();
      } catch (const spindle::Cancelled&) {
      }
    }
    check("sent, receiving task aborted", counts);
  }
}

TEST(Oneshot, SendRacingReceiverDropDestroysTheValueOnce) {
  LifetimeCounts counts;
  int delivered = 0;
  for (int i = 0; i < 500; ++i) {
    auto [tx, rx] = oneshot<Counted>();
    std::thread dropper([rx = std::move(rx)]() mutable { Receiver<Counted> gone = std::move(rx); });
    if (tx.send(Counted(counts, i))) ++delivered;
    dropper.join();
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
  (void)delivered;  // either outcome is valid for each race
}

TEST(Oneshot, ManyChannelsRaceSendsAgainstSuspendingReceivers) {
  // Exercises the waker-registration race: each send may land before,
  // during or after its receiver's suspension.
  constexpr int kChannels = 2000;
  auto rt = Runtime::Builder().worker_threads(2).build();
  std::vector<Sender<int>> senders;
  std::vector<JoinHandle<int>> handles;
  for (int i = 0; i < kChannels; ++i) {
    auto [tx, rx] = oneshot<int>();
    senders.push_back(std::move(tx));
    handles.push_back(rt.spawn(recv(std::move(rx))));
  }
  std::thread a([&] {
    for (int i = 0; i < kChannels; i += 2) senders[i].send(i);
  });
  std::thread b([&] {
    for (int i = 1; i < kChannels; i += 2) {
      if (i % 3 == 0) {
        Sender<int> gone = std::move(senders[i]);  // dropped: RecvError
      } else {
        senders[i].send(i);
      }
    }
  });
  a.join();
  b.join();
  for (int i = 0; i < kChannels; ++i) {
    if (i % 2 == 1 && i % 3 == 0) {
      EXPECT_THROW((void)handles[i].join(), RecvError) << i;
    } else {
      EXPECT_EQ(handles[i].join(), i);
    }
  }
}

}  // namespace
