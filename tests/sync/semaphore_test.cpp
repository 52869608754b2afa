// spindle::sync::Semaphore: permits and their RAII guard, FIFO fairness (a
// large request at the front blocks smaller ones), close, cancellation of
// queued and granted waiters, the cooperative budget, and many tasks at once.
//
// Objects the tasks wait on are declared before the runtime, so that the
// runtime's shutdown (which destroys unfinished frames) runs while they live.

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <spindle/runtime.hpp>
#include <spindle/sync/notify.hpp>
#include <spindle/sync/semaphore.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/sync.hpp"
#include "sync/helpers.hpp"

namespace {

using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;
using spindle::sync::Closed;
using spindle::sync::Notify;
using spindle::sync::Semaphore;
using spindle::sync::SemaphorePermit;
using spindle::test::eventually;
using spindle::test::join;
using spindle::test::until;

// Acquires `n` permits, appends `id` to `order`, holds them until `release`
// is notified (if given), then returns them.
Task<void> take(Semaphore& sem, std::size_t n, int id, std::vector<int>& order,
                Notify* release = nullptr) {
  SemaphorePermit p = co_await sem.acquire(n);
  order.push_back(id);
  if (release != nullptr) co_await release->notified();
}

TEST(Semaphore, AcquireCompletesAtOnceWhenPermitsAreFree) {
  Semaphore sem(3);
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Semaphore& sem) -> Task<void> {
    SemaphorePermit p = co_await sem.acquire(2);
    EXPECT_EQ(p.count(), 2u);
    EXPECT_EQ(sem.available_permits(), 1u);
    SemaphorePermit none = co_await sem.acquire(0);
    EXPECT_EQ(none.count(), 0u);
  }(sem));
  EXPECT_EQ(sem.available_permits(), 3u);
}

TEST(Semaphore, AwaitingOneAcquireTwiceThrowsUsageError) {
  Semaphore sem(2);
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Semaphore& sem) -> Task<void> {
    Semaphore::Acquire a = sem.acquire(1);
    SemaphorePermit p = co_await a;
    EXPECT_THROW((void)co_await a, spindle::UsageError);
    EXPECT_EQ(sem.available_permits(), 1u);
  }(sem));
  EXPECT_EQ(sem.available_permits(), 2u);
}

TEST(Semaphore, PermitReturnsItsPermitsWhenDestroyedReleasedOrMoved) {
  Semaphore sem(4);
  {
    std::optional<SemaphorePermit> a = sem.try_acquire(3);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(sem.available_permits(), 1u);
    SemaphorePermit b = std::move(*a);
    EXPECT_EQ(a->count(), 0u);
    EXPECT_EQ(b.count(), 3u);
    a.reset();
    EXPECT_EQ(sem.available_permits(), 1u);  // the moved-from permit held nothing
    b.release();
    EXPECT_EQ(b.count(), 0u);
    EXPECT_EQ(sem.available_permits(), 4u);
  }
  EXPECT_EQ(sem.available_permits(), 4u);
}

TEST(Semaphore, ForgottenPermitsAreGoneUntilAdded) {
  Semaphore sem(2);
  {
    std::optional<SemaphorePermit> p = sem.try_acquire(2);
    ASSERT_TRUE(p.has_value());
    p->forget();
  }
  EXPECT_EQ(sem.available_permits(), 0u);
  sem.add_permits(2);
  EXPECT_EQ(sem.available_permits(), 2u);
  sem.release(1);
  EXPECT_EQ(sem.available_permits(), 3u);
}

TEST(Semaphore, TryAcquireFailsWithoutEnoughPermits) {
  Semaphore sem(1);
  EXPECT_FALSE(sem.try_acquire(2).has_value());
  std::optional<SemaphorePermit> p = sem.try_acquire(1);
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(sem.try_acquire(1).has_value());
}

TEST(Semaphore, RejectsPermitCountsAboveTheMaximum) {
  EXPECT_THROW(Semaphore(Semaphore::kMaxPermits + 1), std::invalid_argument);
  Semaphore sem(Semaphore::kMaxPermits);
  EXPECT_THROW(sem.add_permits(1), std::overflow_error);
  EXPECT_EQ(sem.available_permits(), Semaphore::kMaxPermits);
}

TEST(Semaphore, WaiterIsWokenByAPermitAddedFromAnotherThread) {
  Semaphore sem(0);
  auto rt = Runtime::Builder().worker_threads(2).build();
  JoinHandle<std::size_t> h = rt.spawn([](Semaphore& sem) -> Task<std::size_t> {
    SemaphorePermit p = co_await sem.acquire(2);
    co_return p.count();
  }(sem));
  ASSERT_TRUE(eventually([&] { return sem.waiter_count() == 1; }));
  sem.add_permits(1);
  EXPECT_EQ(sem.waiter_count(), 1u);  // 1 of 2: still waiting
  std::thread([&] { sem.add_permits(1); }).join();
  ASSERT_TRUE(spindle::test::finished_in_time(h));
  EXPECT_EQ(h.join(), 2u);
  EXPECT_EQ(sem.available_permits(), 2u);
}

TEST(Semaphore, ServesWaitersInFifoOrder) {
  Semaphore sem(0);
  std::vector<int> order;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Semaphore& sem, std::vector<int>& order) -> Task<void> {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 5; ++i) {
      hs.push_back(spindle::spawn(take(sem, 1, i, order)));
      // Wait until it is queued, so that queue order is spawn order.
      EXPECT_TRUE(co_await until(
          [&sem, i] { return sem.waiter_count() == static_cast<std::size_t>(i) + 1; }));
    }
    sem.add_permits(1);  // each waiter returns it on exit, passing it down the queue
    for (auto& h : hs) co_await join(h);
  }(sem, order));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(sem.available_permits(), 1u);
}

TEST(Semaphore, LargeRequestAtTheFrontBlocksSmallerOnesBehindIt) {
  Semaphore sem(1);
  Notify release_big;
  std::vector<int> order;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Semaphore& sem, Notify& release_big, std::vector<int>& order) -> Task<void> {
    auto big = spindle::spawn(take(sem, 3, 3, order, &release_big));
    EXPECT_TRUE(co_await until([&sem] { return sem.waiter_count() == 1; }));
    auto small = spindle::spawn(take(sem, 1, 1, order));
    EXPECT_TRUE(co_await until([&sem] { return sem.waiter_count() == 2; }));
    // One permit is free, but the acquire(3) at the front holds back the acquire(1).
    EXPECT_EQ(sem.available_permits(), 1u);
    EXPECT_FALSE(sem.try_acquire(1).has_value());  // try_acquire respects the queue too
    for (int i = 0; i < 10; ++i) co_await spindle::yield_now();
    EXPECT_TRUE(order.empty());
    sem.add_permits(2);  // 3 free: the big request goes first
    EXPECT_TRUE(co_await until([&order] { return order.size() == 1; }));
    EXPECT_EQ(order, (std::vector<int>{3}));
    EXPECT_EQ(sem.waiter_count(), 1u);  // the small one waits for the big one's permits
    release_big.notify_one();
    co_await join(big);
    co_await join(small);
  }(sem, release_big, order));
  EXPECT_EQ(order, (std::vector<int>{3, 1}));
  EXPECT_EQ(sem.available_permits(), 3u);
}

TEST(Semaphore, AbortedWaiterLeavesTheQueueAndOthersProceed) {
  Semaphore sem(0);
  std::vector<int> order;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Semaphore& sem, std::vector<int>& order) -> Task<void> {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 3; ++i) {
      hs.push_back(spindle::spawn(take(sem, 1, i, order)));
      EXPECT_TRUE(co_await until(
          [&sem, i] { return sem.waiter_count() == static_cast<std::size_t>(i) + 1; }));
    }
    hs[1].abort();
    EXPECT_TRUE(co_await until([&sem] { return sem.waiter_count() == 2; }));  // its frame is gone
    sem.add_permits(1);
    co_await join(hs[0]);
    co_await join(hs[2]);
    EXPECT_THROW(co_await hs[1], spindle::Cancelled);
  }(sem, order));
  EXPECT_EQ(order, (std::vector<int>{0, 2}));
  EXPECT_EQ(sem.available_permits(), 1u);
}

TEST(Semaphore, AbortedLargeRequestAtTheFrontUnblocksSmallerOnes) {
  Semaphore sem(1);
  std::vector<int> order;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Semaphore& sem, std::vector<int>& order) -> Task<void> {
    auto big = spindle::spawn(take(sem, 5, 5, order));
    EXPECT_TRUE(co_await until([&sem] { return sem.waiter_count() == 1; }));
    auto small = spindle::spawn(take(sem, 1, 1, order));
    EXPECT_TRUE(co_await until([&sem] { return sem.waiter_count() == 2; }));
    big.abort();  // leaving the front lets the acquire(1) have the free permit
    co_await join(small);
  }(sem, order));
  EXPECT_EQ(order, (std::vector<int>{1}));
  EXPECT_EQ(sem.available_permits(), 1u);
}

TEST(Semaphore, PermitsGrantedToAnAbortedWaiterGoToTheNextOne) {
  Semaphore sem(0);
  std::vector<int> order;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Semaphore& sem, std::vector<int>& order) -> Task<void> {
    auto a = spindle::spawn(take(sem, 2, 0, order));
    EXPECT_TRUE(co_await until([&sem] { return sem.waiter_count() == 1; }));
    auto b = spindle::spawn(take(sem, 2, 1, order));
    EXPECT_TRUE(co_await until([&sem] { return sem.waiter_count() == 2; }));
    // Within this one poll: the permits are assigned to A (and A is woken),
    // then A is aborted before it can resume. Its destructor must hand them to B.
    sem.add_permits(2);
    EXPECT_EQ(sem.waiter_count(), 1u);
    EXPECT_EQ(sem.available_permits(), 0u);
    a.abort();
    co_await join(b);
    EXPECT_THROW(co_await a, spindle::Cancelled);
  }(sem, order));
  EXPECT_EQ(order, (std::vector<int>{1}));
  EXPECT_EQ(sem.available_permits(), 2u);
}

TEST(Semaphore, PermitsTakenBeforeABudgetYieldReturnWhenTheTaskIsAborted) {
  Semaphore sem(3);
  std::atomic<int> reached{0};
  // A budget of 1: the second immediate acquire of a poll takes its permits
  // and then yields; the task is aborted during that yield.
  auto rt = Runtime::Builder().current_thread().budget(1).build();
  rt.block_on([](Semaphore& sem, std::atomic<int>& reached) -> Task<void> {
    auto h = spindle::spawn([](Semaphore& sem, std::atomic<int>& reached) -> Task<void> {
      SemaphorePermit first = co_await sem.acquire(1);   // spends the budget
      SemaphorePermit second = co_await sem.acquire(2);  // takes 2, yields
      reached = 1;
    }(sem, reached));
    EXPECT_TRUE(co_await until([&sem] { return sem.available_permits() == 0; }));
    h.abort();
    EXPECT_THROW(co_await h, spindle::Cancelled);
  }(sem, reached));
  EXPECT_EQ(reached.load(), 0);
  EXPECT_EQ(sem.available_permits(), 3u);
  EXPECT_GT(spindle::test::forced_yields(rt.handle()), 0u);
}

TEST(Semaphore, CloseFailsWaitersAndLaterAcquiresButKeepsHeldPermits) {
  Semaphore sem(1);
  auto rt = Runtime::Builder().worker_threads(2).build();
  std::optional<SemaphorePermit> held = sem.try_acquire(1);
  ASSERT_TRUE(held.has_value());
  auto waiter = [](Semaphore& sem) -> Task<bool> {
    try {
      SemaphorePermit p = co_await sem.acquire(1);
    } catch (const Closed&) {
      co_return true;
    }
    co_return false;
  };
  JoinHandle<bool> a = rt.spawn(waiter(sem));
  JoinHandle<bool> b = rt.spawn(waiter(sem));
  ASSERT_TRUE(eventually([&] { return sem.waiter_count() == 2; }));
  sem.close();
  ASSERT_TRUE(spindle::test::finished_in_time(a));
  EXPECT_TRUE(a.join());
  ASSERT_TRUE(spindle::test::finished_in_time(b));
  EXPECT_TRUE(b.join());
  EXPECT_TRUE(sem.is_closed());
  EXPECT_EQ(sem.waiter_count(), 0u);
  EXPECT_THROW((void)sem.try_acquire(1), Closed);
  held.reset();  // a held permit still goes back after close
  EXPECT_EQ(sem.available_permits(), 1u);
  EXPECT_TRUE(rt.block_on(waiter(sem)));  // fails at once although a permit is free
  EXPECT_THROW((void)sem.try_acquire(1), Closed);
  sem.close();  // idempotent
  EXPECT_TRUE(sem.is_closed());
}

TEST(Semaphore, TasksDestroyedAtShutdownReturnTheirPermitsAndLeaveTheQueue) {
  Semaphore sem(2);
  Notify never;
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    std::vector<JoinHandle<void>> hs;
    auto holder = [](Semaphore& sem, Notify& never) -> Task<void> {
      SemaphorePermit p = co_await sem.acquire(1);
      co_await never.notified();
    };
    hs.push_back(rt.spawn(holder(sem, never)));
    hs.push_back(rt.spawn(holder(sem, never)));
    ASSERT_TRUE(eventually([&] { return never.waiter_count() == 2; }));
    hs.push_back(rt.spawn(holder(sem, never)));
    ASSERT_TRUE(eventually([&] { return sem.waiter_count() == 1; }));
  }  // shutdown destroys all three frames
  EXPECT_EQ(sem.available_permits(), 2u);
  EXPECT_EQ(sem.waiter_count(), 0u);
  EXPECT_EQ(never.waiter_count(), 0u);
}

TEST(Semaphore, ImmediateAcquiresSpendTheBudgetSoNeighboursRun) {
  Semaphore sem(1);
  auto rt = Runtime::Builder().current_thread().build();
  std::uint64_t loops = rt.block_on([](Semaphore& sem) -> Task<std::uint64_t> {
    bool stop = false;
    auto neighbour = spindle::spawn([](bool& stop) -> Task<void> {
      stop = true;
      co_return;
    }(stop));
    std::uint64_t n = 0;
    // Never suspends for real: only the budget lets the neighbour run.
    while (!stop) {
      SemaphorePermit p = co_await sem.acquire(1);
      ++n;
    }
    co_await neighbour;
    co_return n;
  }(sem));
  EXPECT_GT(loops, 0u);
  EXPECT_GT(spindle::test::forced_yields(rt.handle()), 0u);
  EXPECT_EQ(sem.available_permits(), 1u);
}

TEST(Semaphore, ManyTasksNeverHoldMoreThanThePermits) {
  constexpr int kTasks = 16;
  constexpr int iterations = 2000;
  Semaphore sem(3);
  std::atomic<int> in_use{0};
  std::atomic<int> max_in_use{0};
  std::atomic<long> done{0};
  auto rt = Runtime::Builder().worker_threads(2).build();
  std::vector<JoinHandle<void>> hs;
  for (int t = 0; t < kTasks; ++t) {
    hs.push_back(rt.spawn([](Semaphore& sem, std::atomic<int>& in_use, std::atomic<int>& max_in_use,
                             std::atomic<long>& done, int iterations, int t) -> Task<void> {
      for (int i = 0; i < iterations; ++i) {
        std::size_t n = 1 + static_cast<std::size_t>((i + t) % 2);
        SemaphorePermit p = co_await sem.acquire(n);
        int now = in_use.fetch_add(static_cast<int>(n)) + static_cast<int>(n);
        int seen = max_in_use.load();
        while (now > seen && !max_in_use.compare_exchange_weak(seen, now)) {
        }
        if (i % 16 == 0) co_await spindle::yield_now();  // hold it across a suspension
        in_use.fetch_sub(static_cast<int>(n));
        done.fetch_add(1);
      }
    }(sem, in_use, max_in_use, done, iterations, t)));
  }
  for (auto& h : hs) ASSERT_TRUE(spindle::test::finished_in_time(h));
  for (auto& h : hs) h.join();
  EXPECT_EQ(done.load(), static_cast<long>(kTasks) * iterations);
  EXPECT_LE(max_in_use.load(), 3);
  EXPECT_EQ(in_use.load(), 0);
  EXPECT_EQ(sem.available_permits(), 3u);
  EXPECT_EQ(sem.waiter_count(), 0u);
}

TEST(SemaphoreDeathTest, DeletedWithWaitersNamesTheSemaphore) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto sem = std::make_unique<Semaphore>(0);
        std::vector<int> order;
        auto rt = Runtime::Builder().current_thread().build();
        rt.block_on([](Semaphore& sem, std::vector<int>& order) -> Task<void> {
          spindle::spawn(take(sem, 1, 1, order)).detach();
          EXPECT_TRUE(co_await until([&sem] { return sem.waiter_count() == 1; }));
        }(*sem, order));
        sem.reset();  // fatal: the queued task's frame points into the Semaphore
      },
      "spindle::sync::Semaphore destroyed while tasks wait on it");
}

}  // namespace
