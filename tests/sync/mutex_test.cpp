// spindle::sync::Mutex<T>: exclusive access through the guard, a guard held
// across co_await (the worker stays free), FIFO order, cancellation of queued
// lockers and of holders, the cooperative budget, many tasks at once, and
// the fatal error of destroying it under waiting tasks.

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <optional>
#include <spindle/runtime.hpp>
#include <spindle/sync/mutex.hpp>
#include <spindle/sync/notify.hpp>
#include <string>
#include <vector>

#include "support/sync.hpp"
#include "sync/helpers.hpp"

namespace {

using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;
using spindle::sync::Mutex;
using spindle::sync::MutexGuard;
using spindle::sync::Notify;
using spindle::test::eventually;
using spindle::test::join;
using spindle::test::until;

// Locks, appends `id` to the guarded vector, then (if given) waits for
// `release` while still holding the lock.
Task<void> append(Mutex<std::vector<int>>& m, int id, Notify* release = nullptr) {
  MutexGuard<std::vector<int>> g = co_await m.lock();
  g->push_back(id);
  if (release != nullptr) co_await release->notified();
}

std::vector<int> contents(Mutex<std::vector<int>>& m) {
  std::optional<MutexGuard<std::vector<int>>> g = m.try_lock();
  if (!g) return {-1};
  return **g;
}

TEST(Mutex, LockGivesExclusiveAccessToTheValue) {
  Mutex<std::string> m("spin");
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Mutex<std::string>& m) -> Task<void> {
    MutexGuard<std::string> g = co_await m.lock();
    EXPECT_TRUE(g.owns_lock());
    g->append("dle");
    EXPECT_FALSE(m.try_lock().has_value());  // locked
    g.unlock();
    EXPECT_FALSE(g.owns_lock());
    std::optional<MutexGuard<std::string>> again = m.try_lock();
    EXPECT_TRUE(again.has_value());
    if (again) {
      EXPECT_EQ(**again, "spindle");
    }
  }(m));
  EXPECT_TRUE(m.try_lock().has_value());  // unlocked again
}

TEST(Mutex, InPlaceConstructionAndMovedGuards) {
  Mutex<std::vector<int>> m(std::in_place, 3, 7);
  std::optional<MutexGuard<std::vector<int>>> g = m.try_lock();
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(**g, (std::vector<int>{7, 7, 7}));
  MutexGuard<std::vector<int>> moved = std::move(*g);
  EXPECT_FALSE(g->owns_lock());
  EXPECT_TRUE(moved.owns_lock());
  g.reset();
  EXPECT_FALSE(m.try_lock().has_value());  // `moved` still holds it
  moved.unlock();
  EXPECT_TRUE(m.try_lock().has_value());
}

TEST(Mutex, GuardHeldAcrossAwaitDoesNotBlockOtherTasks) {
  // One worker thread: had the lock blocked the thread, nothing else could run.
  Mutex<std::vector<int>> m;
  Notify release;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Mutex<std::vector<int>>& m, Notify& release) -> Task<void> {
    auto holder = spindle::spawn(append(m, 1, &release));  // locks, then waits holding the guard
    EXPECT_TRUE(co_await until([&release] { return release.waiter_count() == 1; }));
    auto waiter = spindle::spawn(append(m, 2));  // queues behind the holder
    EXPECT_TRUE(co_await until([&m] { return m.waiter_count() == 1; }));
    // Unrelated work on the same (only) worker still runs.
    int other = co_await spindle::spawn([]() -> Task<int> { co_return 42; }());
    EXPECT_EQ(other, 42);
    release.notify_one();  // the holder finishes and unlocks; the waiter gets the lock
    co_await join(holder);
    co_await join(waiter);
  }(m, release));
  EXPECT_EQ(contents(m), (std::vector<int>{1, 2}));
}

TEST(Mutex, ServesLockersInFifoOrder) {
  Mutex<std::vector<int>> m;
  Notify release;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Mutex<std::vector<int>>& m, Notify& release) -> Task<void> {
    std::vector<JoinHandle<void>> hs;
    hs.push_back(spindle::spawn(append(m, 0, &release)));
    EXPECT_TRUE(co_await until([&release] { return release.waiter_count() == 1; }));
    for (int i = 1; i <= 4; ++i) {
      hs.push_back(spindle::spawn(append(m, i)));
      EXPECT_TRUE(
          co_await until([&m, i] { return m.waiter_count() == static_cast<std::size_t>(i); }));
    }
    release.notify_one();
    for (auto& h : hs) co_await join(h);
  }(m, release));
  EXPECT_EQ(contents(m), (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Mutex, AbortedLockerLeavesTheQueueAndTheLockPassesOn) {
  Mutex<std::vector<int>> m;
  Notify release;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Mutex<std::vector<int>>& m, Notify& release) -> Task<void> {
    auto holder = spindle::spawn(append(m, 0, &release));
    EXPECT_TRUE(co_await until([&release] { return release.waiter_count() == 1; }));
    auto a = spindle::spawn(append(m, 1));
    EXPECT_TRUE(co_await until([&m] { return m.waiter_count() == 1; }));
    auto b = spindle::spawn(append(m, 2));
    EXPECT_TRUE(co_await until([&m] { return m.waiter_count() == 2; }));
    a.abort();
    EXPECT_TRUE(co_await until([&m] { return m.waiter_count() == 1; }));
    release.notify_one();
    co_await join(holder);
    co_await join(b);
    EXPECT_THROW(co_await a, spindle::Cancelled);
  }(m, release));
  EXPECT_EQ(contents(m), (std::vector<int>{0, 2}));
}

TEST(Mutex, LockHandedToAnAbortedLockerPassesToTheNext) {
  Mutex<std::vector<int>> m;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Mutex<std::vector<int>>& m) -> Task<void> {
    std::optional<MutexGuard<std::vector<int>>> g = m.try_lock();
    EXPECT_TRUE(g.has_value());
    auto a = spindle::spawn(append(m, 1));
    EXPECT_TRUE(co_await until([&m] { return m.waiter_count() == 1; }));
    auto b = spindle::spawn(append(m, 2));
    EXPECT_TRUE(co_await until([&m] { return m.waiter_count() == 2; }));
    g.reset();  // hands the lock to A (and wakes it)...
    a.abort();  // ...which is destroyed before it resumes: B must get the lock
    co_await join(b);
    EXPECT_THROW(co_await a, spindle::Cancelled);
  }(m));
  EXPECT_EQ(contents(m), (std::vector<int>{2}));
}

TEST(Mutex, GuardInAnAbortedTaskUnlocks) {
  Mutex<std::vector<int>> m;
  Notify never;
  auto rt = Runtime::Builder().worker_threads(2).build();
  JoinHandle<void> holder = rt.spawn(append(m, 7, &never));
  ASSERT_TRUE(eventually([&] { return never.waiter_count() == 1; }));
  EXPECT_FALSE(m.try_lock().has_value());
  holder.abort();
  EXPECT_THROW(holder.join(), spindle::Cancelled);
  EXPECT_EQ(contents(m), (std::vector<int>{7}));
}

TEST(Mutex, ImmediateLocksSpendTheBudgetSoNeighboursRun) {
  Mutex<int> m;
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([](Mutex<int>& m) -> Task<void> {
    bool stop = false;
    auto neighbour = spindle::spawn([](bool& stop) -> Task<void> {
      stop = true;
      co_return;
    }(stop));
    while (!stop) ++*co_await m.lock();  // never suspends for real
    co_await neighbour;
  }(m));
  EXPECT_GT(spindle::test::forced_yields(rt.handle()), 0u);
  std::optional<MutexGuard<int>> g = m.try_lock();
  ASSERT_TRUE(g.has_value());
  EXPECT_GT(**g, 0);
}

TEST(Mutex, EightTasksIncrementingUnderTheLockLoseNoUpdates) {
  constexpr int kTasks = 8;
  constexpr int iterations = 10000;
  Mutex<long> counter(0);
  auto rt = Runtime::Builder().worker_threads(2).build();
  std::vector<JoinHandle<void>> hs;
  for (int t = 0; t < kTasks; ++t) {
    hs.push_back(rt.spawn([](Mutex<long>& counter, int iterations) -> Task<void> {
      for (int i = 0; i < iterations; ++i) {
        MutexGuard<long> g = co_await counter.lock();
        long seen = *g;
        if (i % 64 == 0) co_await spindle::yield_now();  // hold it across a suspension
        *g = seen + 1;  // a lost update would show if two tasks held the lock
      }
    }(counter, iterations)));
  }
  for (auto& h : hs) ASSERT_TRUE(spindle::test::finished_in_time(h));
  for (auto& h : hs) h.join();
  std::optional<MutexGuard<long>> g = counter.try_lock();
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(**g, static_cast<long>(kTasks) * iterations);
  EXPECT_EQ(counter.waiter_count(), 0u);
}

TEST(MutexDeathTest, DeletedWithWaitersNamesTheMutex) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto m = std::make_unique<Mutex<std::vector<int>>>();
        Notify release;
        auto rt = Runtime::Builder().current_thread().build();
        // A holder that keeps the lock (waiting on `release`) and a task
        // queued behind it; both stay suspended when block_on returns.
        rt.block_on([](Mutex<std::vector<int>>& m, Notify& release) -> Task<void> {
          spindle::spawn(append(m, 1, &release)).detach();
          EXPECT_TRUE(co_await until([&release] { return release.waiter_count() == 1; }));
          spindle::spawn(append(m, 2)).detach();
          EXPECT_TRUE(co_await until([&m] { return m.waiter_count() == 1; }));
        }(*m, release));
        m.reset();  // fatal: the queued task's frame points into the Mutex
      },
      "spindle::sync::Mutex destroyed while tasks wait to lock it");
}

}  // namespace
