// spindle::sync::Notify: the stored permit of notify_one, FIFO wake-up order,
// notify_waiters (current waiters and Notified objects created before it),
// cancellation (a notification is handed on, never lost), cross-thread
// notification, the cooperative budget, and a ping-pong stress test.

#include <gtest/gtest.h>

#include <atomic>
#include <spindle/runtime.hpp>
#include <spindle/sync/notify.hpp>
#include <thread>
#include <vector>

#include "support/sync.hpp"
#include "sync/helpers.hpp"

namespace {

using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;
using spindle::sync::Notify;
using spindle::test::eventually;
using spindle::test::join;
using spindle::test::until;

// Waits for one notification, then appends `id` to `order`.
Task<void> wait_then_record(Notify& n, int id, std::vector<int>& order) {
  co_await n.notified();
  order.push_back(id);
}

TEST(Notify, NotifyOneWithNobodyWaitingStoresOnePermit) {
  Notify n;
  std::vector<int> order;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Notify& n, std::vector<int>& order) -> Task<void> {
    n.notify_one();
    n.notify_one();         // still one permit
    co_await n.notified();  // consumes it at once
    auto h = spindle::spawn(wait_then_record(n, 1, order));
    EXPECT_TRUE(co_await until([&n] { return n.waiter_count() == 1; }));  // no second permit
    EXPECT_TRUE(order.empty());
    n.notify_one();
    co_await join(h);
  }(n, order));
  EXPECT_EQ(order, (std::vector<int>{1}));
}

TEST(Notify, NotifyOneWakesWaitersInFifoOrder) {
  Notify n;
  std::vector<int> order;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Notify& n, std::vector<int>& order) -> Task<void> {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 4; ++i) {
      hs.push_back(spindle::spawn(wait_then_record(n, i, order)));
      EXPECT_TRUE(
          co_await until([&n, i] { return n.waiter_count() == static_cast<std::size_t>(i) + 1; }));
    }
    for (int i = 0; i < 4; ++i) {
      n.notify_one();
      co_await join(hs[static_cast<std::size_t>(i)]);  // exactly that one was woken
      EXPECT_EQ(order.size(), static_cast<std::size_t>(i) + 1);
    }
  }(n, order));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

TEST(Notify, NotifyWaitersWakesEveryWaiterAndStoresNoPermit) {
  Notify n;
  std::vector<int> order;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Notify& n, std::vector<int>& order) -> Task<void> {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 40; ++i) hs.push_back(spindle::spawn(wait_then_record(n, i, order)));
    EXPECT_TRUE(co_await until([&n] { return n.waiter_count() == 40; }));
    n.notify_waiters();  // more than one wake batch (32)
    EXPECT_EQ(n.waiter_count(), 0u);
    for (auto& h : hs) co_await join(h);
    auto late = spindle::spawn(wait_then_record(n, 100, order));
    EXPECT_TRUE(co_await until([&n] { return n.waiter_count() == 1; }));  // no permit was stored
    n.notify_one();
    co_await join(late);
  }(n, order));
  EXPECT_EQ(order.size(), 41u);
  EXPECT_EQ(order.back(), 100);
}

TEST(Notify, NotifiedCreatedBeforeNotifyWaitersCompletesWhenAwaitedLater) {
  Notify n;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Notify& n) -> Task<void> {
    Notify::Notified early = n.notified();  // registers interest
    n.notify_waiters();                     // happens between the check and the wait
    co_await early;                         // completes at once
    EXPECT_EQ(n.waiter_count(), 0u);
  }(n));
}

TEST(Notify, AbortedWaiterLeavesTheQueue) {
  Notify n;
  std::vector<int> order;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Notify& n, std::vector<int>& order) -> Task<void> {
    auto a = spindle::spawn(wait_then_record(n, 0, order));
    EXPECT_TRUE(co_await until([&n] { return n.waiter_count() == 1; }));
    auto b = spindle::spawn(wait_then_record(n, 1, order));
    EXPECT_TRUE(co_await until([&n] { return n.waiter_count() == 2; }));
    a.abort();
    EXPECT_TRUE(co_await until([&n] { return n.waiter_count() == 1; }));
    n.notify_one();  // goes to B, not to the aborted A
    co_await join(b);
    EXPECT_THROW(co_await a, spindle::Cancelled);
  }(n, order));
  EXPECT_EQ(order, (std::vector<int>{1}));
}

TEST(Notify, NotificationHandedToAnAbortedWaiterPassesToTheNext) {
  Notify n;
  std::vector<int> order;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Notify& n, std::vector<int>& order) -> Task<void> {
    auto a = spindle::spawn(wait_then_record(n, 0, order));
    EXPECT_TRUE(co_await until([&n] { return n.waiter_count() == 1; }));
    auto b = spindle::spawn(wait_then_record(n, 1, order));
    EXPECT_TRUE(co_await until([&n] { return n.waiter_count() == 2; }));
    n.notify_one();    // picks A and wakes it...
    a.abort();         // ...but A is destroyed before it resumes
    co_await join(b);  // so B gets the notification
    EXPECT_THROW(co_await a, spindle::Cancelled);
  }(n, order));
  EXPECT_EQ(order, (std::vector<int>{1}));
}

TEST(Notify, NotificationHandedToAnAbortedLastWaiterIsStoredAsThePermit) {
  Notify n;
  std::vector<int> order;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Notify& n, std::vector<int>& order) -> Task<void> {
    auto a = spindle::spawn(wait_then_record(n, 0, order));
    EXPECT_TRUE(co_await until([&n] { return n.waiter_count() == 1; }));
    n.notify_one();
    a.abort();
    EXPECT_THROW(co_await a, spindle::Cancelled);
    EXPECT_EQ(n.waiter_count(), 0u);
    auto c = spindle::spawn(wait_then_record(n, 2, order));  // takes the permit A never used
    co_await join(c);
  }(n, order));
  EXPECT_EQ(order, (std::vector<int>{2}));
}

TEST(Notify, NotifyFromAForeignThreadWakesATask) {
  Notify n;
  auto rt = Runtime::Builder().worker_threads(2).build();
  JoinHandle<int> h = rt.spawn([](Notify& n) -> Task<int> {
    co_await n.notified();
    co_return 5;
  }(n));
  ASSERT_TRUE(eventually([&] { return n.waiter_count() == 1; }));
  std::thread([&] { n.notify_one(); }).join();
  ASSERT_TRUE(spindle::test::finished_in_time(h));
  EXPECT_EQ(h.join(), 5);
}

TEST(Notify, ImmediateNotificationsSpendTheBudgetSoNeighboursRun) {
  Notify n;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Notify& n) -> Task<void> {
    bool stop = false;
    auto neighbour = spindle::spawn([](bool& stop) -> Task<void> {
      stop = true;
      co_return;
    }(stop));
    while (!stop) {
      n.notify_one();
      co_await n.notified();  // always ready: only the budget makes it yield
    }
    co_await neighbour;
  }(n));
  EXPECT_GT(spindle::test::forced_yields(rt.handle()), 0u);
}

TEST(Notify, PingPongBetweenTwoTasksLosesNoNotification) {
  constexpr int rounds = 10000;
  Notify ping;
  Notify pong;
  auto rt = Runtime::Builder().worker_threads(2).build();
  JoinHandle<int> a = rt.spawn([](Notify& ping, Notify& pong, int rounds) -> Task<int> {
    int n = 0;
    for (int i = 0; i < rounds; ++i) {
      ping.notify_one();
      co_await pong.notified();
      ++n;
    }
    co_return n;
  }(ping, pong, rounds));
  JoinHandle<int> b = rt.spawn([](Notify& ping, Notify& pong, int rounds) -> Task<int> {
    int n = 0;
    for (int i = 0; i < rounds; ++i) {
      co_await ping.notified();
      pong.notify_one();
      ++n;
    }
    co_return n;
  }(ping, pong, rounds));
  ASSERT_TRUE(spindle::test::finished_in_time(a));
  EXPECT_EQ(a.join(), rounds);
  ASSERT_TRUE(spindle::test::finished_in_time(b));
  EXPECT_EQ(b.join(), rounds);
}

TEST(Notify, ManyWaitersNotifiedFromManyThreadsAllWake) {
  constexpr int kTasks = 64;
  Notify n;
  std::atomic<int> woken{0};
  auto rt = Runtime::Builder().worker_threads(2).build();
  std::vector<JoinHandle<void>> hs;
  for (int i = 0; i < kTasks; ++i) {
    hs.push_back(rt.spawn([](Notify& n, std::atomic<int>& woken) -> Task<void> {
      co_await n.notified();
      woken.fetch_add(1);
    }(n, woken)));
  }
  // Each notify_one either wakes a waiter or leaves the one permit; a permit
  // is consumed by the next waiter to arrive. Keep notifying until all woke.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (woken.load() < kTasks) {
        n.notify_one();
        std::this_thread::yield();
      }
    });
  }
  for (auto& h : hs) ASSERT_TRUE(spindle::test::finished_in_time(h));
  for (auto& h : hs) h.join();
  for (auto& t : threads) t.join();
  EXPECT_EQ(woken.load(), kTasks);
}

}  // namespace
